// An app whose Score needs `K8sClient`, on a topology of the user's that
// does not provide it: the error names the built-in topologies that do.
use harmony::capability::{ApplySet, BoxFuture, DeployError, K8sDeploy, Observed};
use harmony::object::{Object, ObjectRef};
use harmony::secret::Redactor;
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError, SelectableTopology, SmokeError, Topology};

#[derive(Debug)]
pub struct Cluster;

impl Topology for Cluster {
    fn name(&self) -> &str {
        "cluster"
    }
}

impl K8sDeploy for Cluster {
    fn observe<'a>(&'a self, _: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        Box::pin(async { Ok(Observed::new(Default::default(), Redactor::new([0; 32]))) })
    }
    fn dry_run<'a>(&'a self, _: &'a ApplySet, _: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn apply<'a>(&'a self, _: &'a ApplySet, _: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn prune<'a>(&'a self, _: &'a ApplySet, _: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn commit<'a>(&'a self, _: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn verify<'a>(&'a self, _: &'a ApplySet, _: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async { Ok(()) })
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
    topologies: [Cluster],
}

fn main() {}
