// One capability twice in `requires(..)`, once under a name `use` gave it.
use harmony::K8sClient as Cluster;
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(requires(K8sClient, Cluster))]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
