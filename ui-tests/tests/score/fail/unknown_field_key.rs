// An unknown field key (`chld`) is an error on the key, suggesting `child`.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Probe {
    #[score(chld)]
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
