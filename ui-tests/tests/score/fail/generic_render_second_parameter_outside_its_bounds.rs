// The second parameter of a generic Score outside its `Render`'s bounds.
use std::fmt::Display;

use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Pair<A, B> {
    pub first: A,
    pub second: B,
}

impl<A: Display, B: Display> Render for Pair<A, B> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

#[derive(Default)]
pub struct Opaque;

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    run_on::<harmony::Local, _>(&Pair { first: 1, second: Opaque });
}
