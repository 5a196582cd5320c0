// A smoke test that needs `K8sClient` on a Score that does not `require` it:
// the error says to add it to `requires(..)`, at the `smoke = ..` path.
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError, SmokeError};

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
    async fn ping<T: K8sClient>(&self, _: &T) -> Result<(), SmokeError> {
        Ok(())
    }
}

fn main() {}
