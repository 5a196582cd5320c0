//! One device's loop: its manifest in from NATS, its reconcilers, its status
//! back out.
//!
//! - At start the agent first runs what it last applied (kept in
//!   `<state>/applied.json`), so a device works while NATS is away, and a
//!   restarted agent adopts its processes instead of restarting them.
//! - It connects (retrying while the server is unreachable or the buckets
//!   are missing; a refused login ends the run, since retrying cannot fix
//!   it), registers the device with its labels (again after every reconnect:
//!   the server may have lost its data), and reads the device's key in
//!   `fleet-manifests`: at start, whenever the operator says it changed (a
//!   plain subscription to [`fleet_model::bucket::changed`], not a JetStream
//!   consumer: a server takes only so many of those, and a fleet has more
//!   devices), after every reconnect, and at every heartbeat.
//! - It runs only what the operator signed for this device, newer than what
//!   it runs ([`fleet_model::signed`]), checked against the key the device
//!   was enrolled with. A key that is missing (deleted, or a bucket new and
//!   empty after the server lost its data) is not a withdrawal: the device
//!   keeps running what it runs and says so. Only a signed withdrawal stops it.
//! - Applying is idempotent: a manifest equal to the applied one changes
//!   nothing, a file already right is not rewritten, a process whose spec is
//!   unchanged keeps running. Resources a new manifest drops are removed; a
//!   signed withdrawal removes everything.
//! - The status goes to `fleet-status` when it changes and at every
//!   heartbeat, compare-and-set on the key's revision. At each heartbeat the
//!   agent also re-reads its key (a notice missed cannot leave it behind) and
//!   re-checks its files (a file changed by hand is put back).
//! - A manifest it cannot run is reported in the status as a typed
//!   [`ManifestError`]; the device keeps running what it ran.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fleet_kv::{Buckets, Connection, KvError, Settings};
use fleet_model::signed::ManifestKey;
use fleet_model::{AgentManifest, AgentStatus, Device, ManifestError, SCHEMA_VERSION};
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::process::{Programs, Supervisor, Timings};
use crate::reconcile::{Log, Reconciler};
use crate::{files, links};

/// What an agent run needs to know.
#[derive(Clone, Debug)]
pub struct Config {
    pub nats: Settings,
    pub device: String,
    pub labels: BTreeMap<String, String>,
    /// The operator's public key, pinned at enrolment: the agent runs only
    /// what it signed.
    pub trust: ManifestKey,
    /// Where the agent keeps what it applied, its process records and logs.
    pub state: PathBuf,
    /// Where the fleet may write files on this device, and how.
    pub files: files::Policy,
    /// The programs the fleet may run on this device.
    pub programs: Programs,
    pub heartbeat: Duration,
    pub timings: Timings,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    #[error(transparent)]
    Nats(KvError),
    #[error("{0}")]
    DeviceId(String),
    #[error("cannot use the state directory `{path}`: {source}")]
    State { path: PathBuf, source: std::io::Error },
}

/// What `<state>/applied.json` holds: the manifest last applied, if any,
/// and when the operator issued it (0: never; a replay is refused against it).
#[derive(Default, Serialize, Deserialize)]
struct Applied {
    manifest: Option<AgentManifest>,
    #[serde(default)]
    issued: u64,
}

struct Agent {
    config: Config,
    log: Log,
    /// One per kind of resource ([`reconcilers`]).
    reconcilers: Reconcilers,
    /// Woken when a status changes on its own (a process exits).
    changed: Arc<Notify>,
    applied: Option<AgentManifest>,
    /// When the operator issued what the device runs (0: nothing yet).
    issued: u64,
    error: Option<ManifestError>,
    /// What the status says besides: no manifest in NATS for a device that runs one.
    note: Option<String>,
    /// Set at every reconnect: register again (the server may have lost it).
    reconnected: Arc<Notify>,
}

type Reconcilers = Vec<Box<dyn Reconciler>>;

/// The kinds of resource a device holds, as its configuration allows them:
/// where a new kind is registered. Reconciled in this order: files, links
/// (which may point at them), processes (which may read both). `changed` is
/// woken when a status changes on its own.
fn reconcilers(config: &Config, log: &Log) -> std::io::Result<(Reconcilers, Arc<Notify>)> {
    let processes = Supervisor::new(&config.state, config.timings, config.programs.clone())?;
    let changed = processes.changed();
    let files = files::Files::new(&config.state, config.files.clone(), log.clone());
    let links = links::Links::new(&config.state, config.files.clone(), log.clone());
    Ok((vec![Box::new(files), Box::new(links), Box::new(processes)], changed))
}

/// Run the agent until `shutdown` completes. Its processes keep running
/// after it returns, for the next run to adopt.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), AgentError> {
    fleet_model::check_device_id(&config.device).map_err(AgentError::DeviceId)?;
    let state_error = |source| AgentError::State {
        path: config.state.clone(),
        source,
    };
    let log = Log::new(&config.device);
    let (reconcilers, changed) = reconcilers(&config, &log).map_err(state_error)?;
    let applied: Applied = std::fs::read(config.state.join("applied.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    let mut agent = Agent {
        config,
        log,
        reconcilers,
        changed,
        applied: None,
        issued: applied.issued,
        error: None,
        note: None,
        reconnected: Default::default(),
    };
    if let Some(manifest) = applied.manifest {
        agent.apply(Some(manifest), applied.issued).await;
    }
    tokio::pin!(shutdown);
    let (connection, buckets) = tokio::select! {
        () = &mut shutdown => return Ok(()),
        connected = agent.connect() => connected?,
    };
    agent.serve(&connection, &buckets, shutdown).await;
    Ok(())
}

impl Agent {
    fn log(&self, message: impl std::fmt::Display) {
        self.log.say(message);
    }

    /// Connect, open the buckets and register, retrying what may pass.
    async fn connect(&self) -> Result<(Connection, Buckets), AgentError> {
        let mut delay = Duration::from_millis(250);
        loop {
            match self.try_connect().await {
                Ok(buckets) => return Ok(buckets),
                Err(e) if e.is_transient() => {
                    self.log(format_args!("{e}; trying again in {} ms", delay.as_millis()));
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(e) => return Err(AgentError::Nats(e)),
            }
        }
    }

    async fn try_connect(&self) -> Result<(Connection, Buckets), KvError> {
        let device = self.config.device.clone();
        let reconnected = self.reconnected.clone();
        let connection = Connection::open(&self.config.nats, move |event| {
            if matches!(event, fleet_kv::Event::Connected) {
                reconnected.notify_one();
            }
            eprintln!("fleet-agent[{device}]: NATS {event}");
        })
        .await?;
        let buckets = connection.buckets().await?;
        self.register(&buckets).await?;
        Ok((connection, buckets))
    }

    /// Put the device's record (its labels) in `fleet-devices`.
    async fn register(&self, buckets: &Buckets) -> Result<(), KvError> {
        let record = Device::new(&self.config.device, self.config.labels.clone());
        buckets
            .devices
            .put(&self.config.device, record.to_json().into())
            .await
            .map(drop)
            .map_err(|e| KvError::Request {
                bucket: fleet_model::bucket::DEVICES.into(),
                key: self.config.device.clone(),
                why: e.to_string(),
            })
    }

    async fn serve(&mut self, connection: &Connection, buckets: &Buckets, shutdown: std::pin::Pin<&mut impl Future<Output = ()>>) {
        let mut shutdown = shutdown;
        let key = self.config.device.clone();
        let changed = self.changed.clone();
        let mut heartbeat = tokio::time::interval(self.config.heartbeat);
        let mut notices = None;
        let mut written: Option<(AgentStatus, u64)> = None;
        let mut registered = true;
        loop {
            if notices.is_none() {
                match connection.client.subscribe(fleet_model::bucket::changed(&key)).await {
                    Ok(s) => {
                        notices = Some(s);
                        // Subscribed first, then read: a change in between is not missed.
                        self.read_manifest(buckets).await;
                    }
                    Err(e) => self.log(format_args!(
                        "cannot hear of changes to its manifest ({e}); reading it at each heartbeat"
                    )),
                }
            }
            let mut beat = false;
            tokio::select! {
                () = &mut shutdown => return,
                notice = next(&mut notices) => match notice {
                    Some(()) => self.read_manifest(buckets).await,
                    None => notices = None,
                },
                () = changed.notified() => {}
                () = self.reconnected.notified() => {
                    // Back after a reconnect: the server may be a new one, or have lost its data.
                    registered = false;
                    self.read_manifest(buckets).await;
                }
                _ = heartbeat.tick() => {
                    beat = true;
                    self.read_manifest(buckets).await;
                    self.recheck().await;
                }
            }
            if !registered {
                match self.register(buckets).await {
                    Ok(()) => registered = true,
                    Err(e) => self.log(format_args!(
                        "cannot register again after a reconnect ({e}); trying at the next heartbeat"
                    )),
                }
            }
            if notices.is_none() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let status = self.status();
            let same = written.as_ref().is_some_and(|(w, _)| same_but_heartbeat(w, &status));
            if same && !beat {
                continue;
            }
            let revision = written.as_ref().map(|(_, r)| *r);
            match fleet_kv::overwrite(&buckets.status, &key, &status.to_bounded_json(AgentStatus::MAX_BYTES), revision).await {
                Ok(revision) => written = Some((status, revision)),
                Err(e) => self.log(format_args!("cannot report the status: {e}")),
            }
        }
    }

    /// Read the device's key and act on what it holds.
    async fn read_manifest(&mut self, buckets: &Buckets) {
        match fleet_kv::read(&buckets.manifests, &self.config.device).await {
            Ok(value) => self.receive(value.as_ref().map(|(v, _)| &v[..])).await,
            Err(e) => self.log(e),
        }
    }

    /// The device's key holds `value` (`None`: absent or deleted).
    async fn receive(&mut self, value: Option<&[u8]>) {
        let Some(bytes) = value else {
            // Not a withdrawal, which is signed: the key was deleted, or the
            // server lost its data. The operator writes it again.
            let note = self.applied.as_ref().map(|m| {
                format!(
                    "no manifest for this device in NATS (deleted, or the server lost its data): still running generation {}",
                    m.generation
                )
            });
            if note.is_some() && self.note != note {
                self.log(note.as_deref().unwrap_or_default());
            }
            self.note = note;
            return;
        };
        let opened = self.config.trust.open(&self.config.device, bytes).and_then(|signed| {
            if signed.issued < self.issued {
                return Err(ManifestError::Replayed {
                    issued: signed.issued,
                    running: self.issued,
                });
            }
            Ok(signed)
        });
        match opened {
            Ok(signed) => {
                self.error = None;
                self.note = None;
                if signed.issued == self.issued {
                    return;
                }
                match &signed.manifest {
                    Some(m) => self.log(format_args!("applying generation {}", m.generation)),
                    None if self.applied.is_some() => self.log("the manifest was withdrawn: stopping and removing everything it held"),
                    None => {}
                }
                self.apply(signed.manifest, signed.issued).await;
            }
            Err(e) => {
                if self.error.as_ref() != Some(&e) {
                    self.log(format_args!("{e}; still running generation {:?}", self.generation()));
                }
                self.error = Some(e);
            }
        }
    }

    /// Make the device hold `manifest` (`None`: nothing), issued at `issued`,
    /// idempotently, through every reconciler; what it holds is saved when
    /// either changed.
    async fn apply(&mut self, manifest: Option<AgentManifest>, issued: u64) {
        let resources = manifest.as_ref().map(|m| &m.resources[..]).unwrap_or_default();
        for reconciler in &mut self.reconcilers {
            reconciler.reconcile(resources).await;
        }
        if self.applied != manifest || self.issued != issued {
            self.applied = manifest;
            self.issued = issued;
            let saved = serde_json::to_vec(&Applied {
                manifest: self.applied.clone(),
                issued: self.issued,
            })
            .unwrap_or_default();
            if let Err(e) = files::write_atomically(&self.config.state.join("applied.json"), &saved, 0o600) {
                self.log(format_args!("cannot save what was applied: {e}"));
            }
        }
    }

    /// Look again at what the device holds: put back what changed behind the agent's back.
    async fn recheck(&mut self) {
        let resources = self.applied.as_ref().map(|m| &m.resources[..]).unwrap_or_default();
        for reconciler in &mut self.reconcilers {
            reconciler.reconcile(resources).await;
        }
    }

    fn generation(&self) -> Option<u64> {
        self.applied.as_ref().map(|m| m.generation)
    }

    fn status(&self) -> AgentStatus {
        let resources = self.reconcilers.iter().flat_map(|r| r.statuses()).collect();
        AgentStatus {
            schema_version: SCHEMA_VERSION,
            device: self.config.device.clone(),
            observed_generation: self.generation(),
            heartbeat: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
            resources,
            error: self.error.clone(),
            note: self.note.clone(),
            left_out: 0,
        }
    }
}

fn same_but_heartbeat(a: &AgentStatus, b: &AgentStatus) -> bool {
    AgentStatus {
        heartbeat: b.heartbeat,
        ..a.clone()
    } == *b
}

/// The next notice that the manifest changed, or never when there is no
/// subscription. `None`: the subscription ended.
async fn next(notices: &mut Option<fleet_kv::Subscriber>) -> Option<()> {
    match notices {
        Some(s) => s.next().await.map(drop),
        None => std::future::pending().await,
    }
}
