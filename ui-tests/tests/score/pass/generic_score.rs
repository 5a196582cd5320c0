// A generic Score: its own generics and where clause are kept beside the
// topology's bounds (and, having no single type, it is not registered).
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Labelled<L>
where
    L: AsRef<str> + Send + Sync,
{
    pub label: L,
}

impl<L: AsRef<str> + Send + Sync> Render for Labelled<L> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    run_on::<harmony::Local, _>(&Labelled { label: "x" });
}
