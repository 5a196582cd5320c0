// An app whose Score runs on neither `local` nor `ci`, and that names no
// topology, is warned about at its `score` (denied here to show the message).
#![deny(deprecated)]
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Topology};

/// DNS records in a zone: no built-in topology provides it.
#[harmony::capability]
pub trait DnsRecords: Topology {
    fn zone(&self) -> &str;
}

#[derive(Score, Default)]
#[score(requires(DnsRecords))]
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
