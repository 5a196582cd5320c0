// `score: Labelled::<String>`: a generic Score's type, where a value belongs.
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
    name: "site",
    score: Labelled::<String>,
}

fn main() {}
