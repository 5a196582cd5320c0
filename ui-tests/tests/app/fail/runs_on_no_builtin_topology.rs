// An app whose Score runs on neither `local` nor `ci`, and that names no
// topology, is warned about at its `score` (denied here to show the message).
#![deny(deprecated)]
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError};

#[derive(Score, Default)]
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
    score: Probe::default(),
}

fn main() {}
