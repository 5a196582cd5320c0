// Releasing on a topology that can deploy but not build or store images is
// refused at the topology's name, naming the first missing capability.
use harmony::capability::{ApplySet, BoxFuture, DeployError, K8sDeploy, Observed};
use harmony::object::{Object, ObjectRef};
use harmony::secret::Redactor;
use harmony::release::ReleaseCx;
use harmony::topology::TopologyError;
use harmony::{SelectableTopology, Desired, Render, RenderCx, Score, ScoreError, SmokeError, Topology};

/// A GitOps target without registries or builders.
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
    fn from_env() -> Result<Self, TopologyError> {
        Ok(Cluster)
    }
}

#[derive(Score, Default)]
pub struct Site {
    pub image: String,
}

impl Render for Site {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn site(cx: &ReleaseCx) -> Site {
    Site { image: cx.image.to_string() }
}

harmony::app! {
    name: "site",
    image: Dockerfile("Dockerfile"),
    chart: builder(site),
    topologies: [Cluster],
}

fn main() {}
