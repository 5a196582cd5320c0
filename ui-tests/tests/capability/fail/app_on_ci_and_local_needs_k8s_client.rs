// Two topologies named, one of which lacks `K8sClient`: the error is at that
// one, and names those that provide it.
use harmony::{Ci, Desired, K8sClient, Local, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(requires(K8sClient))]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

harmony::app! {
    name: "probe",
    score: Probe { namespace: "default".into() },
    topologies: [Ci, Local],
}

fn main() {}
