// A smoke test that does not take `&self`.
use harmony::{Desired, Render, RenderCx, Score, ScoreError, SmokeError, Topology};

#[derive(Score)]
#[score(smoke = Self::ping)]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

impl Probe {
    async fn ping<T: Topology>(_: &T) -> Result<(), SmokeError> {
        Ok(())
    }
}

fn main() {}
