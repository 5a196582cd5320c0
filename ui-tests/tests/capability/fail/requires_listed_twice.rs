// Listing a capability twice in `requires(..)` is a likely typo: the second one is flagged.
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(requires(K8sClient, K8sClient))]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
