// A capability of the user's own, declared with `#[harmony::capability]`, is
// accepted by `requires(..)` and provided by a user topology.
use harmony::capability::{ApplySet, BoxFuture, DeployError, K8sDeploy, Observed};
use harmony::object::{Object, ObjectRef};
use harmony::secret::Redactor;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, SmokeError, Topology};

/// Creates and verifies DNS records.
#[harmony::capability]
pub trait DnsRecords: Topology {
    fn zone(&self) -> &str;
}

#[derive(Debug)]
pub struct Edge;

impl Topology for Edge {
    fn name(&self) -> &str {
        "edge"
    }
}

impl DnsRecords for Edge {
    fn zone(&self) -> &str {
        "example.org"
    }
}

impl K8sDeploy for Edge {
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

/// A record in the topology's zone.
#[derive(Score)]
#[score(requires(DnsRecords))]
pub struct Record {
    pub host: String,
}

impl Render for Record {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

/// Compiles only if `S` runs on `T`; returns what `S` needs, from its types.
fn run_on<T: Topology, S: Score<T> + harmony::score::IsScore>(_: &S) -> Vec<&'static str> {
    let mut needs = Vec::new();
    S::needs(&mut needs);
    needs.sort_unstable();
    needs.dedup();
    needs
}

fn main() {
    assert_eq!(run_on::<Edge, _>(&Record { host: "www".into() }), ["DnsRecords", "K8sDeploy"]);
}
