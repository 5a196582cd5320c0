//! Capabilities: what a topology can do, named after the industry concept and
//! never after the tool behind it. A Score states the capabilities it needs as
//! trait bounds; a topology that lacks one is a compile error that says which.
//!
//! Every capability trait is dyn-compatible and marked as a capability by an
//! [`IsCapability`] impl on its trait object, which is how `#[derive(Score)]`
//! checks that `requires(..)` names capabilities and nothing else.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use crate::errors::SmokeError;
use crate::object::{Object, ObjectRef};
use crate::secret::Redactor;
use crate::topology::Topology;

pub use crate::BoxFuture;

static FORCE_CONFLICTS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The user asked to take ownership of fields another field manager owns
/// (`apply --force-conflicts`): a target that tracks field ownership honours
/// it for the rest of the process.
pub fn force_conflicts() {
    FORCE_CONFLICTS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`force_conflicts`] was asked for.
pub fn forcing_conflicts() -> bool {
    FORCE_CONFLICTS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Marks a trait object type as a capability: implemented for `dyn Cap` by
/// [`#[capability]`](macro@crate::capability), which is how `#[derive(Score)]`
/// checks that `requires(..)` names capabilities and nothing else.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a capability",
    label = "`requires(..)` takes capability traits only",
    note = "a capability is a trait declared with `#[harmony::capability]`, such as `K8sDeploy` or `K8sClient`",
    note = "to make a trait of yours a capability, put `#[harmony::capability]` above it"
)]
pub trait IsCapability {
    /// The trait's name, as `list` and errors show it.
    const NAME: &'static str;
    /// One line on what it provides.
    const ABOUT: &'static str;
}

/// The group of objects one app owns on a target, so that what it no longer
/// renders can be pruned (an ApplySet, in Kubernetes terms).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApplySet {
    name: String,
}

impl ApplySet {
    /// The set of the app `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }

    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// What a target holds for an [`ApplySet`] now, with secret values replaced by
/// the digests of `redactor` (apply the same redactor to desired objects
/// before comparing).
#[derive(Debug)]
pub struct Observed {
    /// The objects of the set as the target holds them, by identity, secret
    /// values redacted. Empty if the set was never applied.
    pub objects: BTreeMap<ObjectRef, Value>,
    /// What replaced the secret values in `objects`.
    pub redactor: Redactor,
    /// Fields of these objects that someone else owns now (another field
    /// manager of a cluster: an autoscaler, a hand edit), with their live
    /// values; plans show them where applying would take them back. Empty for
    /// a target where nobody else writes.
    pub elsewhere: BTreeMap<ObjectRef, Vec<OwnedElsewhere>>,
    /// Objects that are not ready now, by the rules `verify` waits with.
    /// Empty for a target with nothing that becomes ready.
    pub unhealthy: Vec<Unhealthy>,
}

impl Observed {
    /// What a target holds, where nobody but Harmony writes.
    pub fn new(objects: BTreeMap<ObjectRef, Value>, redactor: Redactor) -> Self {
        Self {
            objects,
            redactor,
            elsewhere: BTreeMap::new(),
            unhealthy: Vec::new(),
        }
    }
}

/// An object of the app, on the target now, that is not ready by the rules
/// `apply` verifies with: why, in the words of its status, pods, events and
/// log (secret values redacted), and what to do.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Unhealthy {
    /// The object that is not ready.
    pub object: ObjectRef,
    /// Why not, one finding a line.
    pub why: String,
    /// What to do about it; `None` for an object merely on its way to ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

/// Fields of an object that another owner holds, as a partial object of
/// their live values (secret values already replaced).
#[derive(Clone, Debug, PartialEq)]
pub struct OwnedElsewhere {
    /// Who holds them: a field manager's name (`ops`, `kubectl-edit`).
    pub owner: String,
    /// The fields it holds, with their live values, as a partial object.
    pub fields: Value,
}

/// Accepts desired Kubernetes objects and verifies them.
///
/// A GitOps directory verifies offline; a cluster waits for readiness.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `K8sDeploy`",
    label = "needs `K8sDeploy` (a place that accepts and verifies Kubernetes objects)",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `k8s` (`harmony_k8s::K8s`), `local` (`harmony::Local`); the generated CLI's `list` shows every topology and what it provides",
    note = "run the app on one of them (`topologies: [..]`), or, if `{Self}` is a topology of your own, implement `harmony::K8sDeploy` for it"
)]
pub trait K8sDeploy: Topology {
    /// A pass over `set` begins (the checks before an apply, or its writes):
    /// forget whatever an earlier pass of this process kept in memory for it.
    fn begin<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        let _ = set;
        Box::pin(async { Ok(()) })
    }

    /// Keep the digests that stand in for secret values the same from one
    /// process to the next, so that a plan saved now can be checked by a later
    /// apply. Writes no object. The default suits a topology whose digests
    /// are stable already.
    fn pin_secret_digests(&self) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }

    /// What the target holds for `set` now (what the last apply left).
    fn observe<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>>;

    /// Sets aside what the target filled in itself: an observed object that holds values its
    /// desired one leaves out may hold defaults (inside a value a field manager owns whole). The
    /// target is asked what it would store for the desired object, and those values are taken
    /// out of the observed body, so a plan shows only what applying would change. The default
    /// suits a target that fills in nothing (a directory).
    fn set_aside_filled_in<'a>(
        &'a self,
        set: &'a ApplySet,
        desired: &'a [Object],
        observed: &'a mut Observed,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        let _ = (set, desired, observed);
        Box::pin(async { Ok(()) })
    }

    /// Check that these objects would be accepted, storing nothing.
    fn dry_run<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>>;

    /// Make these objects exist as given, as part of `set`.
    fn apply<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>>;

    /// Remove these objects of `set`: it no longer renders them.
    fn prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>>;

    /// Check that these objects of `set` could be removed, removing nothing.
    /// The default suits a target that cannot refuse a removal (a directory).
    fn dry_run_prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        let _ = (set, objects);
        Box::pin(async { Ok(()) })
    }

    /// Record what `set` now holds. Called once at the end of every apply,
    /// whether it succeeded or not, so the record matches what was written.
    fn commit<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>>;

    /// The default smoke test: are these just-applied objects healthy?
    fn verify<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>>;
}

/// Live read access to a Kubernetes cluster.
///
/// For smoke tests that ask the cluster what is really running.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `K8sClient`",
    label = "needs `K8sClient` (live read access to a Kubernetes cluster)",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `k8s` (`harmony_k8s::K8s`); the generated CLI's `list` shows every topology and what it provides",
    note = "run the app on one of them (`topologies: [..]`); a Score whose smoke test reads the cluster says so with `#[score(requires(K8sClient))]`"
)]
pub trait K8sClient: Topology {
    /// The object as the cluster has it now, or `None` if it does not exist.
    fn get<'a>(&'a self, id: &'a ObjectRef) -> BoxFuture<'a, Result<Option<Value>, DeployError>>;

    /// `GET path` from a Service's `port` (its number or name), as the
    /// cluster routes it (through the API server's service proxy, no
    /// port-forward): what a smoke test asks the real thing.
    fn http_get<'a>(&'a self, service: &'a ObjectRef, port: &'a str, path: &'a str) -> BoxFuture<'a, Result<HttpAnswer, DeployError>>;

    /// A connection to a Service's `port` (its number or name), through the
    /// API server: a port-forward to a ready pod the Service selects, at that
    /// port's `targetPort`, as `kubectl port-forward svc/NAME` opens. What a
    /// smoke test speaks a protocol other than HTTP over. A topology that
    /// cannot open one says so (the default).
    fn connect<'a>(&'a self, service: &'a ObjectRef, port: &'a str) -> BoxFuture<'a, Result<Box<dyn Tunnel>, DeployError>> {
        let _ = port;
        Box::pin(async move {
            Err(DeployError::NoCluster {
                why: format!("topology `{}` cannot open a connection to {service}", self.name()),
                help: "smoke-test over HTTP (`http_get`), or deploy to a topology that opens connections, such as `k8s`".into(),
            })
        })
    }
}

/// A byte stream to a port inside a cluster (see [`K8sClient::connect`]).
pub trait Tunnel: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Tunnel for T {}

/// What a service answered over HTTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpAnswer {
    /// The HTTP status code. Through a cluster's API-server proxy (the `k8s`
    /// topology) every success reads as 200: the proxy's client keeps only the body.
    pub status: u16,
    /// The body, as text.
    pub body: String,
}

impl HttpAnswer {
    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A capability could not do its work. Adapters for live targets add to it
/// (hence `non_exhaustive`); each variant says what a user needs to act.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// A directory where a topology keeps its state could not be created or
    /// written to. Checked before an apply writes anything.
    #[error("the state directory `{}` cannot be written: {source}", path.display())]
    StateUnwritable {
        /// The directory.
        path: PathBuf,
        /// Why it could not be written.
        source: std::io::Error,
    },
    /// A state file an earlier apply wrote cannot be used: it does not parse,
    /// has a format this build does not read, or belongs to another app.
    #[error("the state file `{}` is corrupt: {why}", path.display())]
    StateCorrupt {
        /// The state file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Reading, writing or removing a file of the target failed.
    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done to the file, as a verb: `read`, `remove`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The target refuses this object, or cannot take it as rendered (a kind
    /// it does not serve, a namespace that does not exist).
    #[error("{object} would be rejected: {why}")]
    Rejected {
        /// The refused object.
        object: Box<ObjectRef>,
        /// Why, in the target's words where it gave some.
        why: String,
        /// What to do about it.
        help: String,
    },
    /// Checks made before anything is written found objects that would not
    /// run as rendered (a selector that matches nothing, an unreadable
    /// readiness rule).
    #[error("{} problem(s) would keep these objects from running:\n  - {}", problems.len(), problems.join("\n  - "))]
    Unrunnable {
        /// One line per problem, each naming its object.
        problems: Vec<String>,
    },
    /// The target did not answer in time, answered with a server error, or
    /// could not be reached at all. A later run may succeed.
    #[error("the target `{target}` is not reachable: {why}")]
    Unreachable {
        /// The target, as a user would recognise it (a cluster's server and context).
        target: String,
        /// What failed, and how.
        why: String,
    },
    /// A Service a smoke test connects to cannot take the connection as it is
    /// deployed: it does not exist, has no such port, selects no pod, or no pod
    /// behind it is ready. The target itself answered.
    #[error("{service} cannot be connected to: {why}")]
    NotServing {
        /// The Service.
        service: Box<ObjectRef>,
        /// What stands in the way.
        why: String,
        /// What to check or fix.
        help: String,
    },
    /// Reached, but this run cannot talk to it as set up (its name does not
    /// resolve, its certificate is not the one trusted): retrying will not help.
    #[error("the target `{target}` cannot be connected to: {why}")]
    Unconnectable {
        /// The target, as a user would recognise it.
        target: String,
        /// What stands in the way.
        why: String,
        /// What to check or fix.
        help: String,
    },
    /// The target refused the credentials this run presented (HTTP 401).
    #[error("the target `{target}` did not accept this run's credentials: {why}")]
    Unauthenticated {
        /// The target, as a user would recognise it.
        target: String,
        /// The refused request and the target's message.
        why: String,
    },
    /// The identity this run uses may not do something the deploy needs
    /// (HTTP 403).
    #[error("not allowed to {verb} {resource}: {why}")]
    Forbidden {
        /// What it tried to do: `get`, `create`, `patch`.
        verb: String,
        /// What it tried to do it to: an object, or a kind of them.
        resource: String,
        /// The target's message.
        why: String,
    },
    /// Applying would take fields another field manager owns (an autoscaler,
    /// a hand edit), and `apply --force-conflicts` was not asked for.
    #[error("{object}: field `{field}` is owned by field manager `{manager}`")]
    Conflict {
        /// The object whose fields are contested.
        object: Box<ObjectRef>,
        /// The contested field's path; several are joined by `` `, ` ``.
        field: String,
        /// The field manager that owns them.
        manager: String,
    },
    /// The target checked the object against its schema and refused it
    /// (HTTP 422).
    #[error("{object} is invalid at `{field}`: {why}")]
    Invalid {
        /// The refused object.
        object: Box<ObjectRef>,
        /// The path of the field at fault; `?` when the target names none.
        field: String,
        /// The target's message.
        why: String,
    },
    /// An object the deploy waits for (a CustomResourceDefinition, before
    /// objects of its kind) did not become ready in the time allowed.
    #[error("{object} did not become ready within {waited_secs} s: {why}")]
    TimedOut {
        /// The object waited for.
        object: Box<ObjectRef>,
        /// How long was waited, in seconds.
        waited_secs: u64,
        /// What it was still waiting for.
        why: String,
    },
    /// A cluster was asked something (a read, a connection) by a topology
    /// that has no cluster to ask, or cannot ask it that.
    #[error("no cluster to ask: {why}")]
    NoCluster {
        /// Which topology could not ask, and why.
        why: String,
        /// What to do instead.
        help: String,
    },
    /// An object this app renders already exists on the target as a member
    /// of another app's set.
    #[error("{object} belongs to {owner}; an object has one owner, and two apps would take turns claiming it")]
    Owned {
        /// The object both apps render.
        object: Box<ObjectRef>,
        /// The other owner, described for the user (its app, where it can be told).
        owner: String,
    },
}

/// A state file that could not be written: its directory is not writable,
/// or the write itself failed.
impl From<crate::files::Failed> for DeployError {
    fn from(f: crate::files::Failed) -> Self {
        match f.path.parent().filter(|_| f.directory) {
            Some(dir) => Self::StateUnwritable {
                path: dir.to_owned(),
                source: f.source,
            },
            None => Self::Io {
                action: f.action,
                path: f.path,
                source: f.source,
            },
        }
    }
}

impl crate::Diagnostic for DeployError {
    /// What to do about it.
    fn help(&self) -> String {
        match self {
            Self::StateUnwritable { .. } => {
                "make the directory writable, or point `HARMONY_STATE_DIR` at one that is; nothing was changed".into()
            }
            Self::StateCorrupt { path, .. } => format!(
                "`{}` is written only by `apply`: restore it from version control, or move its directory aside \
                 to start over (the next apply then recreates every object); nothing was changed",
                path.display()
            ),
            Self::Io { .. } => "check the disk and the permissions, then rerun: apply picks up where it stopped".into(),
            Self::Rejected { help, .. } => help.clone(),
            Self::Unrunnable { .. } => "fix the Score that renders them; nothing was written".into(),
            Self::Unreachable { .. } => "check that the target is up and that this machine reaches it (its address, the network, the credentials' endpoint), then rerun".into(),
            Self::Unconnectable { help, .. } | Self::NotServing { help, .. } => help.clone(),
            Self::Unauthenticated { .. } => "the credentials for it are wrong or have expired (a token, a client certificate): \
                                             renew them, then rerun; `kubectl auth whoami` checks them"
                .into(),
            Self::Forbidden { verb, resource, .. } => {
                format!("grant the identity this run uses the right to {verb} {resource}, or run as one that has it")
            }
            Self::Conflict { manager, field, .. } => format!(
                "`{manager}` manages `{field}`: leave the field to it (remove it from the Score), or take ownership explicitly with `apply --force-conflicts`"
            ),
            Self::Invalid { field, .. } => format!("fix `{field}` in the Score that renders this object"),
            Self::TimedOut { .. } => "look at the object's events and logs for why it is not ready; what was applied stays applied".into(),
            Self::NoCluster { help, .. } => help.clone(),
            Self::Owned { .. } => "deploy it from one app only: remove it from this app's Scores, or from the other's \
                                   (whose next apply prunes it), then apply again; nothing was written"
                .into(),
        }
    }
}
