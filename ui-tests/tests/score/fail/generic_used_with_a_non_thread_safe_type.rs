// A generic Score used with a parameter that is not `Send + Sync`: one error,
// where it is used, naming the parameter's type.
use std::rc::Rc;

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

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    run_on::<harmony::Local, _>(&Labelled { label: Rc::new(1) });
}
