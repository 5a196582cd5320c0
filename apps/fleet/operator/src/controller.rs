//! The controller: one reconcile per `FleetDeployment`, woken by the resource
//! and by every change in the fleet's buckets.
//!
//! A reconcile selects the registered devices whose labels carry the
//! selector, writes each one's manifest, signed (compare-and-set, only when
//! it differs, never over another deployment's; a value that does not verify
//! with the operator's key is nobody's, and is written over), withdraws the
//! manifests of devices no longer selected (a signed withdrawal, never a
//! deleted key: see [`fleet_model::signed`]), and writes the devices'
//! statuses, summed up, into `.status`. Deleting the resource withdraws every
//! manifest it wrote (finalizer `fleet.harmony.deploy/withdraw`). It is
//! idempotent: a restarted operator picks up where the buckets and the
//! resources say it is, and rewrites what the buckets lost.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fleet_kv::{Buckets, KvError};
use fleet_model::signed::SigningKey;
use fleet_model::{AgentManifest, AgentStatus, State};
use futures_util::StreamExt as _;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};

use crate::crd::{Condition, DeviceFailure, FleetDeployment, FleetDeploymentStatus};
use crate::view::{Held, Shared, View};

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").field("silence", &self.silence).finish_non_exhaustive()
    }
}

pub const FINALIZER: &str = "fleet.harmony.deploy/withdraw";

/// At most this many manifests are written at once.
const WRITES_IN_FLIGHT: usize = 64;
/// A device told its manifest changed and still behind after this is told again.
const RETELL_AFTER: Duration = Duration::from_secs(1);
/// At most this many failures are listed in a status.
const FAILURES_LISTED: usize = 10;

/// What every reconcile shares.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    /// The fleet's NATS: its buckets, and the subjects that tell a device
    /// its manifest changed ([`fleet_model::bucket::changed`]).
    pub nats: fleet_kv::Connection,
    pub buckets: Buckets,
    pub fleet: Shared,
    /// What signs every manifest; devices trust its public key.
    pub signer: Arc<SigningKey>,
    /// When each device was last told its manifest changed.
    pub told: Arc<std::sync::Mutex<BTreeMap<String, std::time::Instant>>>,
    /// A device whose last report is older than this is `silent`.
    pub silence: Duration,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Kv(#[from] KvError),
    #[error("{0}")]
    Finalizer(String),
}

/// Run the controller until `shutdown` completes.
pub async fn run(api: Api<FleetDeployment>, context: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    // No reconcile before the buckets are read in full: a partial view
    // withdraws what it has not seen yet.
    let mut shutdown = Box::pin(shutdown);
    tokio::select! {
        () = context.fleet.read_in_full() => {}
        () = &mut shutdown => return,
    }
    let mut changes = context.fleet.changes.clone();
    changes.borrow_and_update();
    let trigger = futures_util::stream::unfold(changes, |mut changes| async move {
        changes.changed().await.ok()?;
        // Coalesce a burst of reports into one pass.
        tokio::time::sleep(Duration::from_millis(50)).await;
        changes.borrow_and_update();
        Some(((), changes))
    });
    Controller::new(api, watcher::Config::default())
        .reconcile_all_on(trigger)
        .graceful_shutdown_on(shutdown)
        .run(reconcile, on_error, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                eprintln!("fleet-operator: {e}");
            }
        })
        .await;
}

/// Make the fleet's buckets again whenever they are missing, checking every
/// `every`, until the runtime ends: a NATS that lost its data (a restart
/// without its volume) has none, and agents wait for them. The view notices
/// the new buckets and the controller writes every manifest again.
pub async fn keep_buckets(connection: fleet_kv::Connection, every: Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        match connection.make_missing_buckets().await {
            Ok(made) if !made.is_empty() => {
                eprintln!("fleet-operator: made the missing buckets {} (NATS lost its data?)", made.join(", "));
            }
            Ok(_) => {}
            Err(e) => eprintln!("fleet-operator: cannot check the buckets ({e}); trying again"),
        }
    }
}

fn on_error(fd: Arc<FleetDeployment>, error: &OperatorError, _: Arc<Context>) -> Action {
    eprintln!("fleet-operator: {}: {error}; trying again in 5 s", fd.owner());
    Action::requeue(Duration::from_secs(5))
}

async fn reconcile(fd: Arc<FleetDeployment>, context: Arc<Context>) -> Result<Action, OperatorError> {
    let namespace = fd.namespace().unwrap_or_default();
    let api: Api<FleetDeployment> = Api::namespaced(context.client.clone(), &namespace);
    finalizer(&api, FINALIZER, fd, |event| async {
        match event {
            Event::Apply(fd) => roll_out(&fd, &api, &context).await,
            Event::Cleanup(fd) => withdraw_all(&fd, &context).await,
        }
    })
    .await
    .map_err(|e| match e {
        kube::runtime::finalizer::Error::ApplyFailed(e) | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
        other => OperatorError::Finalizer(other.to_string()),
    })
}

/// What one reconcile must do, computed from the view alone.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub selected: Vec<String>,
    pub write: Vec<String>,
    pub withdraw: Vec<String>,
    /// Selected devices another deployment owns, with that owner.
    pub conflicts: BTreeMap<String, String>,
}

/// The manifest `fd` wants on each of its devices.
pub fn desired(fd: &FleetDeployment) -> AgentManifest {
    AgentManifest {
        owner: Some(fd.owner()),
        ..AgentManifest::new(generation(fd), fd.spec.resources.clone())
    }
}

fn generation(fd: &FleetDeployment) -> u64 {
    fd.metadata.generation.and_then(|g| u64::try_from(g).ok()).unwrap_or_default()
}

pub fn plan(fd: &FleetDeployment, view: &View) -> Plan {
    let owner = fd.owner();
    let desired = desired(fd);
    let mut plan = Plan::default();
    for (id, device) in &view.devices {
        if !fd.spec.selector.iter().all(|(k, v)| device.labels.get(k) == Some(v)) {
            continue;
        }
        match view.manifest(id) {
            Some(current) if current.owner.as_ref().is_some_and(|o| *o != owner) => {
                plan.conflicts.insert(id.clone(), current.owner.clone().unwrap_or_default());
            }
            current => {
                plan.selected.push(id.clone());
                if current != Some(&desired) {
                    plan.write.push(id.clone());
                }
            }
        }
    }
    let selected: BTreeSet<&String> = plan.selected.iter().collect();
    plan.withdraw = owned_by(view, &owner).filter(|id| !selected.contains(id)).cloned().collect();
    plan
}

/// The devices whose manifest `owner` wrote.
fn owned_by<'a>(view: &'a View, owner: &'a str) -> impl Iterator<Item = &'a String> {
    view.manifests
        .iter()
        .filter(move |(_, held)| held.manifest().is_some_and(|m| m.owner.as_deref() == Some(owner)))
        .map(|(id, _)| id)
}

/// When a value written now over one issued at `previous` is issued: now,
/// by the operator's clock, and always after `previous`, which devices would
/// otherwise refuse as a replay.
fn issue_after(previous: Option<u64>) -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    previous.map_or(now, |p| now.max(p.saturating_add(1)))
}

async fn roll_out(fd: &FleetDeployment, api: &Api<FleetDeployment>, context: &Context) -> Result<Action, OperatorError> {
    if let Err(e) = desired(fd).validate() {
        // Nothing is sent: the devices keep what they run.
        let status = FleetDeploymentStatus {
            observed_generation: fd.metadata.generation,
            conditions: vec![Condition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: "InvalidSpec".into(),
                message: format!("{e}; nothing was sent to the devices"),
            }],
            ..Default::default()
        };
        write_status(fd, api, status).await?;
        return Ok(Action::await_change());
    }
    let plan = plan(fd, &context.fleet.view.read().unwrap());
    let owner = fd.owner();
    let desired = desired(fd);
    // What the view says each key holds: the write expects it, and reads
    // only if another writer moved the key since.
    let known: Vec<(String, fleet_kv::Known, Option<Held>)> = {
        let view = context.fleet.view.read().unwrap();
        plan.write
            .iter()
            .map(|id| {
                let held = view.manifests.get(id).cloned();
                let value = held.as_ref().map(|held| held.value.to_vec());
                (id.clone(), (value, view.manifest_revisions.get(id).copied()), held)
            })
            .collect()
    };
    let wrote: Vec<Result<Option<Written>, KvError>> = futures_util::stream::iter(known)
        .map(|(id, known, held)| write_manifest(id, known, held, &owner, &desired, context))
        .buffer_unordered(WRITES_IN_FLIGHT)
        .collect()
        .await;
    let wrote = wrote.into_iter().collect::<Result<Vec<_>, _>>()?;
    {
        // Written through to the view: a pass that comes before the watch
        // has delivered these must not take them for stale.
        let mut view = context.fleet.view.write().unwrap();
        for w in wrote.into_iter().flatten() {
            view.record_manifest(&w.device, w.revision, Some(w.held));
        }
    }
    withdraw(&plan.withdraw, &owner, context).await?;
    // A notice is sent once and may be lost (a subscription not yet known across a cluster, a
    // reconnect): a device that reports, but not yet this manifest, a while after it was told, is
    // told again, at most once a second, rather than left to its heartbeat. (A silent device is
    // not: it reads its key when it is back; nor one that refused it: its status says why.)
    let behind: Vec<String> = {
        let view = context.fleet.view.read().unwrap();
        let (generation, now) = (Some(desired.generation), now());
        plan.selected
            .iter()
            .filter(|id| {
                view.statuses.get(*id).is_some_and(|s| {
                    s.observed_generation != generation && s.error.is_none() && now.saturating_sub(s.heartbeat) <= context.silence.as_secs()
                })
            })
            .cloned()
            .collect()
    };
    for id in &behind {
        let due = context.told.lock().unwrap().get(id).is_none_or(|t| t.elapsed() >= RETELL_AFTER);
        if due {
            tell(context, id).await;
        }
    }

    let status = {
        let view = context.fleet.view.read().unwrap();
        summarize(fd, &plan, &view.statuses, view.devices.len(), now(), context.silence)
    };
    write_status(fd, api, status).await?;
    // Come back soon while devices are on their way, else to notice them falling silent.
    Ok(Action::requeue(if behind.is_empty() { context.silence } else { RETELL_AFTER }))
}

/// A manifest written: where, at which revision, and what.
struct Written {
    device: String,
    revision: u64,
    held: Held,
}

/// Write `desired`, signed, into `device`'s key, starting from what the view
/// says it holds (`known`, verified as `held`: not verified again while the
/// key still holds it). Checked again against what the key holds: another
/// deployment may have taken the device since the view was read. `None`:
/// nothing needed writing.
async fn write_manifest(
    device: String,
    known: fleet_kv::Known,
    held: Option<Held>,
    owner: &str,
    desired: &AgentManifest,
    context: &Context,
) -> Result<Option<Written>, KvError> {
    let signer = &context.signer;
    let trust = signer.public();
    let mut written = None;
    let revision = fleet_kv::update_from(&context.buckets.manifests, &device, Some(known), |current| {
        let current = current.and_then(|c| match &held {
            Some(held) if held.value == c => Some(held.signed.clone()),
            _ => trust.open(&device, c).ok(),
        });
        match current.as_ref().and_then(|c| c.manifest.as_ref()) {
            Some(c) if c.owner.as_deref().is_some_and(|o| o != owner) => return None,
            Some(c) if c == desired => return None,
            _ => {}
        }
        let issued = issue_after(current.map(|c| c.issued));
        let value = signer.sign(&device, issued, Some(desired));
        written = Some((issued, value.clone()));
        Some(value)
    })
    .await?;
    if revision.is_some() {
        tell(context, &device).await;
    }
    Ok(revision.zip(written).map(|(revision, (issued, value))| Written {
        held: Held {
            signed: fleet_model::signed::Signed {
                device: device.clone(),
                issued,
                manifest: Some(desired.clone()),
            },
            value: value.into(),
        },
        device,
        revision,
    }))
}

async fn write_status(fd: &FleetDeployment, api: &Api<FleetDeployment>, status: FleetDeploymentStatus) -> Result<(), OperatorError> {
    if fd.status.as_ref() != Some(&status) {
        let patch = serde_json::json!({ "status": status });
        api.patch_status(&fd.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(())
}

async fn withdraw_all(fd: &FleetDeployment, context: &Context) -> Result<Action, OperatorError> {
    let owner = fd.owner();
    let owned: Vec<String> = {
        let view = context.fleet.view.read().unwrap();
        owned_by(&view, &owner).cloned().collect()
    };
    withdraw(&owned, &owner, context).await?;
    Ok(Action::await_change())
}

/// Withdraw the manifests of `devices` that `owner` still owns: a signed
/// withdrawal over each (a deleted key would not stop a device).
async fn withdraw(devices: &[String], owner: &str, context: &Context) -> Result<(), OperatorError> {
    let trust = context.signer.public();
    for id in devices {
        let written = fleet_kv::update(&context.buckets.manifests, id, |current| {
            let current = current.and_then(|c| trust.open(id, c).ok())?;
            let owned = current.manifest.as_ref().is_some_and(|m| m.owner.as_deref() == Some(owner));
            owned.then(|| context.signer.sign(id, issue_after(Some(current.issued)), None))
        })
        .await?;
        if written.is_some() {
            tell(context, id).await;
        }
    }
    Ok(())
}

/// Tell `device` its manifest changed. Best effort: a device that misses it
/// reads its key at its next heartbeat.
async fn tell(context: &Context, device: &str) {
    let subject = fleet_model::bucket::changed(device);
    context.told.lock().unwrap().insert(device.to_owned(), std::time::Instant::now());
    if let Err(e) = context.nats.client.publish(subject, bytes::Bytes::new()).await {
        eprintln!("fleet-operator: cannot tell `{device}` its manifest changed ({e}); it reads it at its next heartbeat");
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// The devices' reports, summed up for `.status`.
pub fn summarize(
    fd: &FleetDeployment,
    plan: &Plan,
    statuses: &BTreeMap<String, AgentStatus>,
    registered: usize,
    now: u64,
    silence: Duration,
) -> FleetDeploymentStatus {
    let generation = generation(fd);
    let mut status = FleetDeploymentStatus {
        observed_generation: fd.metadata.generation,
        selected: count(plan.selected.len() + plan.conflicts.len()),
        conflicts: count(plan.conflicts.len()),
        ..Default::default()
    };
    let mut fail = |device: &str, message: String| {
        if status.failures.len() < FAILURES_LISTED {
            status.failures.push(DeviceFailure {
                device: device.to_owned(),
                message,
            });
        }
    };
    let (mut ready, mut progressing, mut failed, mut silent) = (0, 0, 0, 0);
    for id in &plan.selected {
        match statuses.get(id) {
            None => progressing += 1,
            Some(s) if now.saturating_sub(s.heartbeat) > silence.as_secs() => {
                silent += 1;
                // Said the same way on every pass while the device stays silent, so
                // the status is not rewritten for it.
                let since = i64::try_from(s.heartbeat)
                    .ok()
                    .and_then(|secs| k8s_openapi::jiff::Timestamp::from_second(secs).ok())
                    .map_or_else(|| format!("{} (Unix time)", s.heartbeat), |t| t.to_string());
                fail(id, format!("silent: no report since {since}"));
            }
            Some(AgentStatus { error: Some(e), .. }) => {
                failed += 1;
                fail(id, e.to_string());
            }
            Some(s) if s.observed_generation != Some(generation) => progressing += 1,
            Some(s) => match first_failure(s) {
                Some(message) => {
                    failed += 1;
                    fail(id, message);
                }
                None if s.counts().keys().any(|state| *state != State::Ready) => progressing += 1,
                None => ready += 1,
            },
        }
    }
    for (id, owner) in &plan.conflicts {
        fail(id, format!("already runs FleetDeployment {owner}"));
    }
    (status.ready, status.progressing, status.failed, status.silent) = (count(ready), count(progressing), count(failed), count(silent));
    status.conditions = conditions(fd, &status, registered);
    status
}

fn first_failure(status: &AgentStatus) -> Option<String> {
    status.resources.iter().find_map(|(name, r)| {
        let (state, message) = r.state()?;
        (state == State::Failed).then(|| format!("{name}: {}", message.unwrap_or("failed")))
    })
}

fn conditions(fd: &FleetDeployment, s: &FleetDeploymentStatus, registered: usize) -> Vec<Condition> {
    let condition = |type_: &str, on: bool, reason: &str, message: String| Condition {
        type_: type_.into(),
        status: if on { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
    };
    let selector = fd
        .spec
        .selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let all_ready = s.selected > 0 && s.ready == s.selected;
    let ready = if s.selected == 0 {
        condition(
            "Ready",
            false,
            "NoDevicesSelected",
            format!(
                "the selector `{selector}` matches none of the {registered} registered devices: check the devices' labels (`fleet-agent --label`) or the selector"
            ),
        )
    } else if all_ready {
        condition(
            "Ready",
            true,
            "AllDevicesReady",
            format!("{} of {} devices ready", s.ready, s.selected),
        )
    } else {
        condition(
            "Ready",
            false,
            if s.conflicts > 0 { "Conflict" } else { "DevicesNotReady" },
            format!("{} of {} devices ready", s.ready, s.selected),
        )
    };
    let troubled = s.failed + s.silent + s.conflicts;
    let degraded = condition(
        "Degraded",
        troubled > 0,
        if troubled > 0 { "DevicesFailing" } else { "NoFailures" },
        s.failures
            .iter()
            .take(3)
            .map(|f| format!("{}: {}", f.device, f.message))
            .collect::<Vec<_>>()
            .join("; "),
    );
    let progressing = condition(
        "Progressing",
        s.progressing > 0,
        if s.progressing > 0 { "DevicesUpdating" } else { "Settled" },
        format!("{} devices on their way", s.progressing),
    );
    vec![ready, progressing, degraded]
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
