// A generic Score whose `Render` needs more of its parameters than the struct
// says (`impl<L: AsRef<str>> Render for Labelled<L>`, a second parameter, an
// associated type): it compiles as written and is a Score for those types.
use std::fmt::Display;

use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Labelled<L> {
    pub label: L,
}

impl<L: AsRef<str>> Render for Labelled<L> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        assert!(!self.label.as_ref().is_empty());
        Ok(Desired::new())
    }
}

#[derive(Score)]
pub struct Pair<A, B> {
    pub first: A,
    pub second: B,
}

impl<A: Display, B: Clone> Render for Pair<A, B> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let _ = (self.first.to_string(), self.second.clone());
        Ok(Desired::new())
    }
}

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
    run_on::<harmony::Local, _>(&Labelled { label: "site" });
    run_on::<harmony::Local, _>(&Pair { first: 1, second: "x" });
    run_on::<harmony::Ci, _>(&List { items: vec!["a", "b"] });
}
