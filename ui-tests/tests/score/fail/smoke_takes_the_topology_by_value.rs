// A smoke test that takes the topology by value, not by reference.
use harmony::{Desired, Render, RenderCx, Score, ScoreError, SmokeError};

#[derive(Score)]
#[score(smoke = Self::check)]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

impl Probe {
    async fn check<T: harmony::Topology>(&self, _: T) -> Result<(), SmokeError> {
        Ok(())
    }
}

fn main() {}
