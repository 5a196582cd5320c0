// `requires(K8sClient)` with `smoke = Self::ping` compiles and runs on a
// user-defined topology that provides `K8sDeploy` and `K8sClient`.
use harmony::capability::{ApplySet, BoxFuture, DeployError, K8sClient, K8sDeploy, Observed};
use harmony::object::{Object, ObjectRef};
use harmony::secret::Redactor;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, SmokeError, Topology};

/// A cluster this test pretends to reach.
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

impl K8sClient for Cluster {
    fn get<'a>(&'a self, _: &'a ObjectRef) -> BoxFuture<'a, Result<Option<harmony::k8s_openapi::serde_json::Value>, DeployError>> {
        Box::pin(async { Ok(None) })
    }
    fn http_get<'a>(&'a self, _: &'a ObjectRef, _: &'a str, _: &'a str) -> BoxFuture<'a, Result<harmony::capability::HttpAnswer, DeployError>> {
        Box::pin(async { Ok(harmony::capability::HttpAnswer { status: 200, body: String::new() }) })
    }
}

/// A server whose smoke test asks the cluster.
#[derive(Score)]
#[score(requires(K8sClient), smoke = Self::ping)]
pub struct Server {
    pub namespace: String,
}

impl Server {
    async fn ping<T: K8sClient>(&self, _topology: &T) -> Result<(), SmokeError> {
        Ok(())
    }
}

impl Render for Server {
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
    assert_eq!(run_on::<Cluster, _>(&Server { namespace: "default".into() }), ["K8sClient", "K8sDeploy"]);
}
