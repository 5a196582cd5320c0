// `topologies: [Local]` in `app!` is a promise checked at compile time: a root
// Score that needs `K8sClient` breaks it, and the error points at `Local`.
use harmony::{Desired, K8sClient, Local, Render, RenderCx, Score, ScoreError};

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
    topologies: [Local],
}

fn main() {}
