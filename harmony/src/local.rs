//! The `local` topology: a GitOps directory on this machine, no servers.
//!
//! ```text
//! $HARMONY_STATE_DIR (default: target/harmony/local)
//! ├── .secret-key                 key of the digests that stand in for secret values
//! ├── .locks/<app>.lock           who is applying or releasing the app now (see `crate::lock`)
//! ├── <app>/                      what `apply` deployed
//! │   ├── inventory.json          every object the last apply left, as stored (the plan's baseline)
//! │   └── manifests/<namespace>/<kind>-<name>.yaml
//! ├── registry/                   released images and charts: an OCI image-layout directory
//! └── stages/<stage>/<app>/       what `release` delivered to each stage (same shape as above)
//! ```
//!
//! `inventory.json` is written last and atomically, so a failed or interrupted
//! apply never leaves it half-written; manifests are rewritten only when they
//! change. Secret values never reach the disk: they are stored as keyed digests.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::build::{BUILDER_ENV, BuildCx, BuildError, Buildah, DockerfileBuilder, ImageSource, dockerfile_builder_from_env};
use crate::capability::{ApplySet, BoxFuture, DeployError, K8sDeploy, Observed};
use crate::engine;
use crate::lock::{Attempt, FileLock, Holder, LockError};
use crate::object::{Object, ObjectRef};
use crate::oci::layout::Layout;
use crate::oci::{Artifact, Digest};
use crate::plan::Plan;
use crate::release::capability::{build_dir, resolved};
use crate::release::{
    ChartRef, ContainerBuilder, ContinuousDelivery, Delivery, DeliveryError, HelmRegistry, ImageRef, OciRegistry, PublishError, Version,
};
use crate::score::SmokeError;
use crate::secret::{Redactor, random_key};
use crate::topology::{SelectableTopology, Topology, TopologyError};
use crate::verify;

/// The environment variable that moves the state directory.
pub const STATE_DIR_VAR: &str = "HARMONY_STATE_DIR";
const DEFAULT_STATE_DIR: &str = "target/harmony/local";
const INVENTORY_FORMAT: u32 = 1;

/// A GitOps directory on this machine: `apply` writes manifests and an
/// inventory; `plan` diffs against that inventory; verification is offline.
#[derive(Debug)]
pub struct Local {
    root: PathBuf,
    build: PathBuf,
    sets: Mutex<BTreeMap<ApplySet, SetState>>,
    /// The key of the digests, while `.secret-key` does not exist yet.
    unwritten_key: Mutex<Option<[u8; 32]>>,
}

/// One app's state during a run: what was stored, and what this run changed.
#[derive(Debug, Default)]
struct SetState {
    stored: BTreeMap<ObjectRef, Value>,
    pending: BTreeMap<ObjectRef, Value>,
    removed: Vec<ObjectRef>,
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct Inventory {
    format: u32,
    app: String,
    objects: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    id: ObjectRef,
    body: Value,
}

impl Topology for Local {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// `.locks/<app>.lock` under the state directory.
    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move { FileLock::try_take(&self.root.join(".locks").join(format!("{app}.lock")), me) })
    }
}

crate::topology!(Local);

impl SelectableTopology for Local {
    const NAME: &'static str = "local";
    const ABOUT: &'static str = "a GitOps directory on this machine; no servers (the default)";

    fn from_env() -> Result<Self, TopologyError> {
        let root = match std::env::var_os(STATE_DIR_VAR) {
            Some(dir) if dir.is_empty() => {
                return Err(TopologyError::BadSetting {
                    var: STATE_DIR_VAR,
                    why: "it is empty".into(),
                });
            }
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        if root.exists() && !root.is_dir() {
            return Err(TopologyError::StateDir {
                path: root,
                why: "it exists and is not a directory".into(),
            });
        }
        Ok(Self::at(root))
    }
}

impl Local {
    /// A local topology whose state lives in `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            build: build_dir(),
            sets: Mutex::new(BTreeMap::new()),
            unwritten_key: Mutex::new(None),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keep builders' state (target dirs, stores) in `dir` instead of
    /// `HARMONY_BUILD_DIR` / `target/harmony/build`.
    pub fn with_build_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.build = dir.into();
        self
    }

    pub(crate) fn build_dir(&self) -> &Path {
        &self.build
    }

    /// The image-layout directory released images and charts are stored in.
    pub fn registry(&self) -> Layout {
        Layout::at(self.root.join("registry"))
    }

    /// The GitOps directory of one release stage.
    pub fn stage(&self, stage: &str) -> Local {
        Local::at(self.root.join("stages").join(stage)).with_build_dir(&self.build)
    }

    fn set_dir(&self, set: &ApplySet) -> PathBuf {
        self.root.join(set.name())
    }

    fn inventory_path(&self, set: &ApplySet) -> PathBuf {
        self.set_dir(set).join("inventory.json")
    }

    fn manifest_path(&self, set: &ApplySet, id: &ObjectRef) -> PathBuf {
        let ns = id.namespace.as_deref().unwrap_or("_cluster");
        self.set_dir(set)
            .join("manifests")
            .join(ns)
            .join(format!("{}.yaml", id.file_stem()))
    }

    fn key_path(&self) -> PathBuf {
        self.root.join(".secret-key")
    }

    /// The stored objects of `set`; none if it was never applied.
    fn load(&self, set: &ApplySet) -> Result<BTreeMap<ObjectRef, Value>, DeployError> {
        let path = self.inventory_path(set);
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => {
                return Err(DeployError::Io {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        let inventory: Inventory = serde_json::from_slice(&text).map_err(|e| DeployError::StateCorrupt {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if inventory.format != INVENTORY_FORMAT {
            return Err(DeployError::StateCorrupt {
                path,
                why: format!("it has format {}, this build reads format {INVENTORY_FORMAT}", inventory.format),
            });
        }
        if inventory.app != set.name() {
            return Err(DeployError::StateCorrupt {
                path,
                why: format!("it belongs to app `{}`, not `{}`", inventory.app, set.name()),
            });
        }
        Ok(inventory.objects.into_iter().map(|e| (e.id, e.body)).collect())
    }

    /// The redactor of this state directory: its key is made on first apply.
    fn redactor(&self, create: bool) -> Result<Redactor, DeployError> {
        let path = self.key_path();
        match fs::read_to_string(&path) {
            Ok(hex) => parse_key(hex.trim()).map(Redactor::new).ok_or_else(|| DeployError::StateCorrupt {
                path,
                why: "it does not hold a 64-digit hexadecimal key".into(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // One key per instance until it is written: a plan and the apply
                // of that plan in one process see the same digests.
                let mut unwritten = self.unwritten_key.lock().unwrap_or_else(|p| p.into_inner());
                let key = match *unwritten {
                    Some(key) => key,
                    None => random_key().map_err(|source| DeployError::Io {
                        action: "read random bytes for",
                        path: path.clone(),
                        source,
                    })?,
                };
                *unwritten = Some(key);
                if create {
                    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                    write_atomic(&path, hex.as_bytes(), true)?;
                }
                Ok(Redactor::new(key))
            }
            Err(source) => Err(DeployError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Run `f` on the in-memory state of `set`, loading it first if needed.
    fn with_set<R>(&self, set: &ApplySet, f: impl FnOnce(&mut SetState) -> Result<R, DeployError>) -> Result<R, DeployError> {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        if !sets.contains_key(set) {
            let stored = self.load(set)?;
            sets.insert(
                set.clone(),
                SetState {
                    stored,
                    ..SetState::default()
                },
            );
        }
        f(sets.get_mut(set).expect("inserted above"))
    }

    /// What the target would hold with `pending` applied, for verification:
    /// this run's objects of `set`, and what every other app stored. Objects of
    /// `set` that this run has not (yet) deployed do not count: they are either
    /// deployed later, or pruned.
    fn checked(&self, set: &ApplySet, objects: &[(ObjectRef, Value)]) -> Result<Vec<String>, DeployError> {
        let mut others = Vec::new();
        if let Ok(dirs) = fs::read_dir(&self.root) {
            for dir in dirs.flatten() {
                let name = dir.file_name().to_string_lossy().into_owned();
                if name != set.name() && dir.path().join("inventory.json").is_file() {
                    others.push(self.load(&ApplySet::new(name))?);
                }
            }
        }
        self.with_set(set, |state| {
            let mut view: verify::View = others.iter().flat_map(|m| m.iter()).collect();
            view.extend(state.pending.iter());
            view.extend(objects.iter().map(|(id, body)| (id, body)));
            Ok(verify::check(objects.iter().map(|(id, body)| (id, body)), &view))
        })
    }

    fn redacted(&self, objects: &[Object], create_key: bool) -> Result<Vec<(ObjectRef, Value)>, DeployError> {
        let redactor = self.redactor(create_key)?;
        Ok(objects.iter().map(|o| (o.id().clone(), redactor.redact(o))).collect())
    }

    /// Fail before writing anything if the state directory cannot be written.
    fn ensure_writable(&self, set: &ApplySet) -> Result<(), DeployError> {
        let dir = self.set_dir(set);
        let unwritable = |source| DeployError::StateUnwritable { path: dir.clone(), source };
        fs::create_dir_all(&dir).map_err(unwritable)?;
        let probe = dir.join(format!(".probe-{}", std::process::id()));
        fs::write(&probe, b"").map_err(unwritable)?;
        fs::remove_file(&probe).map_err(unwritable)
    }
}

impl K8sDeploy for Local {
    fn begin<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner()).remove(set);
        Box::pin(async { Ok(()) })
    }

    fn pin_secret_digests(&self) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(async move { self.redactor(true).map(drop) })
    }

    fn observe<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        Box::pin(async move {
            Ok(Observed {
                objects: self.load(set)?,
                redactor: self.redactor(false)?,
            })
        })
    }

    fn dry_run<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            let redacted = self.redacted(objects, false)?;
            let problems = self.checked(set, &redacted)?;
            if !problems.is_empty() {
                return Err(DeployError::Unrunnable { problems });
            }
            self.with_set(set, |state| {
                state.pending.extend(redacted);
                Ok(())
            })
        })
    }

    fn apply<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            self.ensure_writable(set)?;
            let redacted = self.redacted(objects, true)?;
            self.with_set(set, |state| {
                for (id, body) in redacted {
                    let path = self.manifest_path(set, &id);
                    if state.stored.get(&id) != Some(&body) || !path.is_file() {
                        let yaml = serde_yaml_ng::to_string(&body).map_err(|e| DeployError::Rejected {
                            object: Box::new(id.clone()),
                            why: e.to_string(),
                            help: "report this".into(),
                        })?;
                        write_atomic(&path, yaml.as_bytes(), false)?;
                        state.dirty = true;
                    }
                    state.pending.insert(id, body);
                }
                Ok(())
            })
        })
    }

    fn prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            self.with_set(set, |state| {
                for id in objects {
                    let path = self.manifest_path(set, id);
                    match fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(DeployError::Io {
                                action: "remove",
                                path,
                                source,
                            });
                        }
                    }
                    if let Some(dir) = path.parent() {
                        let _ = fs::remove_dir(dir); // only succeeds once the namespace is empty
                    }
                    state.removed.push(id.clone());
                    state.dirty = true;
                }
                Ok(())
            })
        })
    }

    fn commit<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
            let Some(state) = sets.remove(set) else { return Ok(()) };
            if !state.dirty && state.removed.is_empty() && state.pending.iter().all(|(k, v)| state.stored.get(k) == Some(v)) {
                return Ok(());
            }
            let mut objects = state.stored;
            for id in &state.removed {
                objects.remove(id);
            }
            objects.extend(state.pending);
            let inventory = Inventory {
                format: INVENTORY_FORMAT,
                app: set.name().to_owned(),
                objects: objects.into_iter().map(|(id, body)| Entry { id, body }).collect(),
            };
            let bytes = serde_json::to_vec(&inventory).expect("an inventory is plain JSON");
            write_atomic(&self.inventory_path(set), &bytes, true)
        })
    }

    fn verify<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async move {
            let problems = self
                .redacted(objects, false)
                .and_then(|redacted| self.checked(set, &redacted))
                .map_err(|e| SmokeError::new("offline verification", e.to_string()))?;
            if problems.is_empty() {
                return Ok(());
            }
            Err(SmokeError::new(
                "offline verification",
                format!("{} problem(s):\n  - {}", problems.len(), problems.join("\n  - ")),
            )
            .with_help("these objects were written but would not run on a cluster; fix the Score and apply again"))
        })
    }
}

/// OCI tags cannot hold `+`: semver build metadata is written with `_`, as Helm does.
pub(crate) fn tag_of(version: &Version) -> String {
    version.to_string().replace('+', "_")
}

impl ContainerBuilder for Local {
    /// Daemonless for buildable sources; Dockerfiles with buildah (or the tool
    /// `HARMONY_BUILDER` names).
    fn build_image<'a>(
        &'a self,
        source: &'a ImageSource,
        dir: &'a Path,
        name: &'a str,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Artifact, BuildError>> {
        Box::pin(async move {
            let scratch = self.build.join(name);
            let dockerfiles: Box<dyn DockerfileBuilder> = match std::env::var_os(BUILDER_ENV) {
                None => Box::new(Buildah::in_scratch(&scratch)),
                Some(_) => dockerfile_builder_from_env(&scratch)?,
            };
            resolved(source, dir).build(&BuildCx::new(dir, &scratch, name, version.clone()), &*dockerfiles)
        })
    }
}

impl OciRegistry for Local {
    fn image_location(&self, name: &str) -> Result<ImageRef, PublishError> {
        ImageRef::new(None, name).map_err(|e| PublishError::BadName {
            name: name.into(),
            why: e.why,
        })
    }

    fn push_image<'a>(&'a self, name: &'a str, tag: &'a str, image: &'a Artifact) -> BoxFuture<'a, Result<ImageRef, PublishError>> {
        Box::pin(async move {
            let location = self.image_location(name)?.with_tag(tag).map_err(|e| PublishError::BadName {
                name: tag.into(),
                why: e.why,
            })?;
            let digest = self.registry().put(&format!("{name}:{tag}"), image)?;
            Ok(location.with_digest(digest))
        })
    }

    fn image_digest<'a>(&'a self, name: &'a str, tag: &'a str) -> BoxFuture<'a, Result<Option<Digest>, PublishError>> {
        Box::pin(async move { Ok(self.registry().resolve(&format!("{name}:{tag}"))?) })
    }
}

impl HelmRegistry for Local {
    fn chart_location(&self, name: &str, version: &Version) -> Result<ChartRef, PublishError> {
        ChartRef::new(None, "charts", name, version.clone()).map_err(|e| PublishError::BadName {
            name: name.into(),
            why: e.why,
        })
    }

    fn push_chart<'a>(
        &'a self,
        chart: &'a crate::chart::Chart,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<(ChartRef, Digest), PublishError>> {
        Box::pin(async move {
            let location = self.chart_location(chart.name(), version)?;
            let artifact = chart.clone().stamped(version).artifact()?;
            let digest = self
                .registry()
                .put(&format!("charts/{}:{}", chart.name(), tag_of(version)), &artifact)?;
            Ok((location, digest))
        })
    }
}

impl ContinuousDelivery for Local {
    fn plan_delivery<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move { plan_in_directory(&self.stage(&delivery.stage), delivery).await })
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move { deliver_to_directory(&self.stage(&delivery.stage), delivery).await })
    }
}

/// What delivering a release into a GitOps directory would change.
pub(crate) async fn plan_in_directory(target: &Local, delivery: &Delivery) -> Result<Plan, DeliveryError> {
    let plan = engine::plan_objects(&delivery.app, &delivery.objects, target)
        .await
        .map_err(|e| DeliveryError::on_stage(&delivery.stage, e))?;
    Ok(Plan {
        topology: delivery.stage.clone(),
        ..plan
    })
}

/// Deliver a release into a GitOps directory, with the sequence `apply` uses.
pub(crate) async fn deliver_to_directory(target: &Local, delivery: &Delivery) -> Result<Plan, DeliveryError> {
    let plan = engine::apply_objects(&delivery.app, &delivery.objects, target)
        .await
        .map_err(|e| DeliveryError::on_stage(&delivery.stage, e))?;
    Ok(Plan {
        topology: delivery.stage.clone(),
        ..plan
    })
}

fn parse_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Write through a temporary file and a rename, so readers see the old file or
/// the new one, never half of one.
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), DeployError> {
    let io = |action, source| DeployError::Io {
        action,
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|source| DeployError::StateUnwritable {
            path: dir.to_owned(),
            source,
        })?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(|e| io("create", e))?;
    file.write_all(bytes).map_err(|e| io("write", e))?;
    if durable {
        file.sync_all().map_err(|e| io("flush", e))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io("replace", e)
    })
}

impl crate::release::HttpProbe for Local {
    /// Runs the released image's entrypoint here, with the environment the
    /// delivery gives it, and asks it (see [`crate::release::smoke`]).
    fn probe<'a>(
        &'a self,
        delivery: &'a Delivery,
        image: &'a Artifact,
        check: &'a crate::release::HttpCheck,
    ) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async move { crate::release::smoke::run_image(image, &delivery.objects, check) })
    }
}
