// A smoke test that returns `Result<(), String>`: the error says which result it must return.
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Topology};

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
    async fn ping<T: Topology>(&self, _: &T) -> Result<(), String> {
        Ok(())
    }
}

fn main() {}
