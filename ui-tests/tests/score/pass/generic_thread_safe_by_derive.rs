// A generic Score need not spell out `Send + Sync`: the derive adds them to
// its impls (as `derive(Clone)` adds `Clone`), and it runs on `Local` for a
// thread-safe parameter.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Labelled<L> {
    pub label: L,
}

impl<L> Render for Labelled<L> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) -> bool {
    true
}

fn main() {
    assert!(run_on::<harmony::Local, _>(&Labelled { label: String::from("x") }));
}
