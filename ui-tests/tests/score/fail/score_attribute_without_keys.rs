// A bare `#[score]`, with no keys.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
