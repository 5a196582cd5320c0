// A key given twice in `#[score(..)]` is an error on the second one.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(smoke = Self::a, smoke = Self::b)]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
