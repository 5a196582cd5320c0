//! The `k8s` topology's lock: one `coordination.k8s.io/v1` Lease per app, in
//! the namespace that holds the apps' ApplySet parents, so that two runs that
//! would write one app on one cluster never interleave, from any machine.
//!
//! The Lease says who holds it as Kubernetes tools read it (`holderIdentity`,
//! `renewTime`, `leaseDurationSeconds`, `kubectl get lease`), and names the
//! holder as a file lock does (pid, host, command, since) in an annotation.
//! Every write is a compare-and-set on the resource version. A thread of its
//! own renews it while held, whatever the caller's runtime is doing (waiting
//! for a confirmation, say); a holder that dies stops renewing, and the next
//! run takes it over once it has expired, and says so.

use std::collections::BTreeMap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use harmony::BoxFuture;
use harmony::capability::DeployError;
use harmony::lock::{Attempt, Held, Holder, LockError};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::cluster::Cluster;
use crate::error::Subject;
use crate::settings::Settings;

/// How long a lease lasts unless renewed: how long a run that died holds up
/// the next one.
pub const DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews it.
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// The annotation that names the holder (a [`Holder`], as JSON).
pub const HOLDER_ANNOTATION: &str = "harmony.deploy/holder";

/// The Lease that locks `app`.
pub fn name(app: &str) -> String {
    format!("harmony-lock-{app}")
}

/// Try once to take the lease of `app` in `namespace` for `me`.
pub async fn try_take(cluster: &Cluster, settings: &Settings, namespace: &str, app: &str, me: &Holder) -> Result<Attempt, LockError> {
    let name = name(app);
    let api: Api<Lease> = Api::namespaced(cluster.client.clone(), namespace);
    let subject = format!("coordination.k8s.io/v1 Lease {namespace}/{name}");
    let refused = |e: DeployError| refusal(e, app, namespace, &cluster.target);
    let live = cluster
        .call("get", Subject::Named(&subject), || api.get_opt(&name))
        .await
        .map_err(refused)?;
    let now = Timestamp::now();
    let post = PostParams::default();
    let (took_over, written) = match live {
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    namespace: Some(namespace.to_owned()),
                    labels: Some(BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "harmony".to_owned())])),
                    annotations: Some(holder_annotation(me)),
                    ..ObjectMeta::default()
                },
                spec: Some(spec(me, now, now, 0)),
            };
            let created = cluster
                .call("create", Subject::Named(&subject), || unless_conflict(api.create(&post, &lease)))
                .await
                .map_err(refused)?;
            match created {
                Some(lease) => (None, lease),
                // Another run created it first.
                None => return Ok(Attempt::Busy { holder: None }),
            }
        }
        Some(lease) => {
            let held_by = lease
                .spec
                .as_ref()
                .and_then(|s| s.holder_identity.clone())
                .filter(|h| !h.is_empty());
            let holder = holder_of(&lease);
            if held_by.is_some() && !expired(&lease, now) {
                return Ok(Attempt::Busy { holder });
            }
            let transitions = lease.spec.as_ref().and_then(|s| s.lease_transitions).unwrap_or(0);
            let mut taken = lease.clone();
            taken.metadata.annotations.get_or_insert_default().extend(holder_annotation(me));
            taken.spec = Some(spec(me, now, now, transitions + 1));
            // A replace carries the resource version read: it fails if anyone wrote in between.
            let replaced = cluster
                .call("update", Subject::Named(&subject), || {
                    unless_conflict(api.replace(&name, &post, &taken))
                })
                .await
                .map_err(refused)?;
            match replaced {
                Some(written) => (held_by.and(holder), written),
                // Another run took it first.
                None => return Ok(Attempt::Busy { holder: None }),
            }
        }
    };
    let lock = LeaseLock::start(settings.clone(), namespace.to_owned(), name, app.to_owned(), me.clone(), written)?;
    Ok(Attempt::Acquired {
        lock: Box::new(lock),
        took_over,
    })
}

/// `request`'s answer, or `None` if the server refused it as a conflict (409):
/// another run wrote the lease first.
async fn unless_conflict(request: impl std::future::Future<Output = Result<Lease, kube::Error>>) -> Result<Option<Lease>, kube::Error> {
    match request.await {
        Ok(lease) => Ok(Some(lease)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
        Err(e) => Err(e),
    }
}

fn spec(me: &Holder, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(me.id.clone()),
        lease_duration_seconds: Some(DURATION.as_secs() as i32),
        acquire_time: Some(MicroTime(acquired)),
        renew_time: Some(MicroTime(renewed)),
        lease_transitions: Some(transitions),
        ..LeaseSpec::default()
    }
}

fn holder_annotation(me: &Holder) -> BTreeMap<String, String> {
    BTreeMap::from([(
        HOLDER_ANNOTATION.to_owned(),
        serde_json::to_string(me).expect("a holder is plain JSON"),
    )])
}

/// Who holds `lease`, as its annotation says (a lease another tool wrote names no one we can describe).
fn holder_of(lease: &Lease) -> Option<Holder> {
    let text = lease.metadata.annotations.as_ref()?.get(HOLDER_ANNOTATION)?;
    serde_json::from_str(text).ok()
}

/// Whether `lease` was last renewed longer ago than it lasts.
fn expired(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = &lease.spec else { return true };
    let lasts = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(DURATION.as_secs() as i32)));
    match spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) {
        Some(MicroTime(renewed)) => renewed.checked_add(lasts).is_ok_and(|end| end < now),
        None => true,
    }
}

/// A refusal of the cluster, as a lock error that says what the lock needs.
pub(crate) fn refusal(e: DeployError, app: &str, namespace: &str, target: &str) -> LockError {
    use harmony::Diagnostic as _;
    let help = match &e {
        DeployError::Forbidden { .. } => format!(
            "the `k8s` topology locks each app with a Lease: grant this user `get`, `create` and `update` on \
             `leases` of group `coordination.k8s.io` in namespace `{namespace}`; nothing was changed"
        ),
        DeployError::Rejected { why, .. } if why.starts_with("namespaces ") => format!(
            "namespace `{namespace}` holds the apps' locks and ApplySet parents and does not exist: create it, or set \
             `HARMONY_K8S_NAMESPACE` to one that exists; nothing was changed"
        ),
        other => format!("{}; nothing was changed", other.help()),
    };
    LockError::Unavailable {
        app: app.to_owned(),
        target: target.to_owned(),
        why: e.to_string(),
        help,
    }
}

/// A lease this run holds, renewed by a thread of its own until released.
#[derive(Debug)]
struct LeaseLock {
    stop: mpsc::Sender<()>,
    done: tokio::sync::oneshot::Receiver<Result<(), LockError>>,
}

impl LeaseLock {
    fn start(settings: Settings, namespace: String, name: String, app: String, me: Holder, lease: Lease) -> Result<Self, LockError> {
        let (app_name, target) = (app.clone(), settings.target());
        let (stop, stopped) = mpsc::channel();
        let (report, done) = tokio::sync::oneshot::channel();
        let renewer = Renewer {
            settings,
            namespace,
            name,
            app,
            me,
            version: lease.metadata.resource_version.unwrap_or_default(),
        };
        std::thread::Builder::new()
            .name("harmony-lease".into())
            .spawn(move || {
                if let Some(outcome) = renewer.run(&stopped) {
                    let _ = report.send(outcome);
                }
            })
            .map_err(|e| LockError::Unavailable {
                app: app_name,
                target,
                why: format!("no thread to renew its lease: {e}"),
                help: "the machine is out of threads: try again once fewer processes run; the lease expires by itself".into(),
            })?;
        Ok(Self { stop, done })
    }
}

impl Held for LeaseLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), LockError>> {
        Box::pin(async move {
            let Self { stop, done } = *self;
            let _ = stop.send(());
            done.await.unwrap_or(Ok(()))
        })
    }
}

/// Whose a lease is, as read again.
enum Now {
    /// Still this run's, at this resource version.
    Mine(String),
    /// Another's (named, when its annotation says who), or deleted.
    Theirs(Option<Holder>),
    /// The read failed.
    Unknown,
}

/// What renews one lease, on its own thread and runtime.
struct Renewer {
    settings: Settings,
    namespace: String,
    name: String,
    app: String,
    me: Holder,
    /// The resource version of the lease as this run last wrote it.
    version: String,
}

impl Renewer {
    /// Renew until told to stop, then release; `None` if the lock was dropped
    /// without a release (as a crash leaves it: the lease then expires).
    fn run(mut self, stopped: &mpsc::Receiver<()>) -> Option<Result<(), LockError>> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        let api = runtime.block_on(async {
            let config = self.settings.config().await.ok()?;
            let client = kube::Client::try_from(config).ok()?;
            Some(Api::<Lease>::namespaced(client, &self.namespace))
        });
        let mut lost: Option<Option<Holder>> = None;
        loop {
            match stopped.recv_timeout(RENEW_EVERY) {
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let (Some(api), None) = (&api, &lost) {
                        lost = runtime.block_on(self.renew(api));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return None,
                Ok(()) => break,
            }
        }
        if let Some(by) = lost {
            return Some(Err(LockError::Lost {
                app: self.app,
                by: by.map(Box::new),
            }));
        }
        let Some(api) = api else { return Some(Ok(())) };
        Some(runtime.block_on(self.release(&api)))
    }

    /// Renew the lease; `Some(holder)` if another run holds it now.
    async fn renew(&mut self, api: &Api<Lease>) -> Option<Option<Holder>> {
        let patch = json!({
            "metadata": {"resourceVersion": self.version},
            "spec": {"renewTime": MicroTime(Timestamp::now())},
        });
        match tokio::time::timeout(RENEW_EVERY, api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))).await {
            Ok(Ok(lease)) => {
                self.version = lease.metadata.resource_version.unwrap_or_default();
                None
            }
            // Written by someone else since: whose is it now?
            Ok(Err(kube::Error::Api(status))) if status.code == 409 => match self.read(api).await {
                Now::Mine(version) => {
                    self.version = version;
                    None
                }
                Now::Theirs(holder) => Some(holder),
                // Not known yet: try again at the next renewal.
                Now::Unknown => None,
            },
            // The cluster is not answering: the next renewal tries again, and
            // the lease lasts three renewals.
            _ => {
                tracing::debug!(lease = %self.name, "the lease could not be renewed this time");
                None
            }
        }
    }

    /// Whose the lease is now, read again after a write of this run lost a race.
    async fn read(&self, api: &Api<Lease>) -> Now {
        match api.get_opt(&self.name).await {
            Ok(Some(lease)) if lease.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(self.me.id.as_str()) => {
                Now::Mine(lease.metadata.resource_version.unwrap_or_default())
            }
            Ok(Some(lease)) => Now::Theirs(holder_of(&lease)),
            Ok(None) => Now::Theirs(None),
            Err(_) => Now::Unknown,
        }
    }

    /// Give the lease back: no holder, so the next run takes it at once.
    async fn release(&self, api: &Api<Lease>) -> Result<(), LockError> {
        let patch = json!({
            "metadata": {"resourceVersion": self.version, "annotations": {HOLDER_ANNOTATION: null}},
            "spec": {"holderIdentity": null},
        });
        let started = Instant::now();
        let mut last = String::new();
        // A few tries: a lease left held only delays the next run by its duration.
        while started.elapsed() < DURATION {
            match tokio::time::timeout(RENEW_EVERY, api.patch(&self.name, &PatchParams::default(), &Patch::Merge(&patch))).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(kube::Error::Api(status))) if status.code == 409 => {
                    // Someone else wrote it: if they hold it, it is no longer ours to give back.
                    return match self.read(api).await {
                        Now::Theirs(by) => Err(LockError::Lost {
                            app: self.app.clone(),
                            by: by.map(Box::new),
                        }),
                        Now::Mine(_) | Now::Unknown => Ok(()),
                    };
                }
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "no answer".into(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(LockError::Unavailable {
            app: self.app.clone(),
            target: self.settings.target(),
            why: format!("the lease `{}/{}` could not be given back: {last}", self.namespace, self.name),
            help: format!(
                "nothing is lost: the next run takes it over once it expires, {} s after its last renewal",
                DURATION.as_secs()
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            metadata: ObjectMeta::default(),
            spec: Some(LeaseSpec {
                holder_identity: Some("x".into()),
                lease_duration_seconds: Some(seconds),
                renew_time: Some(MicroTime(renewed)),
                ..LeaseSpec::default()
            }),
        }
    }

    #[test]
    fn a_lease_expires_its_duration_after_its_last_renewal() {
        let now = Timestamp::now();
        let ago = |s: i64| now.checked_sub(SignedDuration::from_secs(s)).unwrap();
        assert!(!expired(&lease(ago(10), 15), now));
        assert!(expired(&lease(ago(16), 15), now));
        assert!(expired(&Lease::default(), now), "a lease that says nothing holds nothing");
    }

    #[test]
    fn the_holder_is_read_back_from_its_annotation() {
        let me = Holder::this_process("apply");
        let mut l = lease(Timestamp::now(), 15);
        l.metadata.annotations = Some(holder_annotation(&me));
        assert_eq!(holder_of(&l), Some(me));
        l.metadata.annotations = Some(BTreeMap::from([(HOLDER_ANNOTATION.to_owned(), "{".to_owned())]));
        assert_eq!(holder_of(&l), None);
    }
}
