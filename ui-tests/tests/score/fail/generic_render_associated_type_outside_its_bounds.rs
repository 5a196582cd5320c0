// A bound on an associated type of a generic Score's parameter, not met.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct List<I> {
    pub items: I,
}

impl<I> Render for List<I>
where
    I: IntoIterator + Clone,
    I::Item: AsRef<str>,
{
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    run_on::<harmony::Local, _>(&List { items: vec![1, 2] });
}
