// An app on a topology of the user's that cannot deploy at all (no `K8sDeploy`):
// the error names the built-in topologies that can.
use harmony::{Desired, Render, RenderCx, Score, ScoreError, SelectableTopology, Topology};

#[derive(Debug)]
pub struct Cluster;

impl Topology for Cluster {
    fn name(&self) -> &str {
        "cluster"
    }
}

impl SelectableTopology for Cluster {
    const NAME: &'static str = "cluster";
    const ABOUT: &'static str = "deploys only";
    fn from_env() -> Result<Self, harmony::topology::TopologyError> {
        Ok(Cluster)
    }
}

#[derive(Score)]
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
    topologies: [Cluster],
}

fn main() {}
