// A generic Score is a Score where its `Render` is: used with a type its
// `impl Render` does not cover, the error is at the use and names the bound.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Labelled<L> {
    pub label: L,
}

impl<L: AsRef<str>> Render for Labelled<L> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

harmony::app! {
    name: "labelled",
    score: Labelled { label: 7 },
    topologies: [harmony::Local],
}

fn main() {}
