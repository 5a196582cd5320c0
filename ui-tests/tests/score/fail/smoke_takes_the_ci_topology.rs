// A smoke test written for `Ci` alone, where the Score runs on any topology.
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
    async fn check(&self, _: &harmony::Ci) -> Result<(), SmokeError> {
        Ok(())
    }
}

fn main() {}
