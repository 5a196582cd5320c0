// A `smoke = ..` function that is not async (or returns something other than
// `Result<(), SmokeError>`) is one error on the path that says what it must be.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(smoke = Self::ping)]
pub struct Probe {
    pub namespace: String,
}

impl Probe {
    fn ping<T>(&self, _topology: &T) -> bool {
        true
    }
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
