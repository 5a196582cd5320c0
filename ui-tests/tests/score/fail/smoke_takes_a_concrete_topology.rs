// A smoke test written for one topology (`&Local`) where the Score runs on
// any: the error is at the `smoke = ..` path and shows the shape it needs.
use harmony::{Desired, Local, Render, RenderCx, Score, ScoreError, SmokeError};

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
    async fn check(&self, _: &Local) -> Result<(), SmokeError> {
        Ok(())
    }
}

fn main() {}
