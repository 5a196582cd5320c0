// Struct keys go on the struct and field keys on fields: a key in the wrong
// place says where it belongs.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(child)]
pub struct Probe {
    #[score(smoke = Self::ping)]
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
