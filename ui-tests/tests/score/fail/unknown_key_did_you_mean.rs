// An unknown struct key in `#[score(..)]` is an error on the key, suggesting
// the closest real one (`smok` → `smoke`).
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(smok = Self::ping)]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
