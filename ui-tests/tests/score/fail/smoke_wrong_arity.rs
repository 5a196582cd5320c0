// A `smoke = ..` function that does not take `(&self, topology: &T)` is one
// error on the path, which also points at the function's signature.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(smoke = Self::ping)]
pub struct Probe {
    pub namespace: String,
}

impl Probe {
    fn ping(&self) -> bool {
        true
    }
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
