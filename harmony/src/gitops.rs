//! A GitOps directory: what `apply` deploys, written as manifests, with an
//! inventory per app that the next plan diffs against. The `local` and `ci`
//! topologies keep their objects in one (they implement [`GitOps`]), and a
//! topology of a user's can too.
//!
//! ```text
//! <root>
//! ├── .secret-key                 key of the digests that stand in for secret values
//! ├── .locks/<app>.lock           who is applying or releasing the app now (see `crate::lock`)
//! ├── <app>/                      what `apply` deployed
//! │   ├── inventory.json          every object the last apply left, as stored (the plan's baseline)
//! │   └── manifests/<namespace>/<kind>-<name>.yaml
//! └── stages/<stage>/<app>/       what `release` delivered to each stage (same shape as above)
//! ```
//!
//! `inventory.json` is written last and atomically, so a failed or interrupted
//! apply never leaves it half-written; manifests are rewritten only when they
//! change. Secret values never reach the disk: they are stored as keyed digests.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capability::{ApplySet, BoxFuture, DeployError, K8sDeploy, Observed};
use crate::engine;
use crate::engine::plan::Plan;
use crate::files::{Whole, sweep_temporaries, write_whole};
use crate::lock::{Attempt, FileLock, Holder, LockError};
use crate::object::{Object, ObjectRef};
use crate::release::{Delivery, DeliveryError};
use crate::score::SmokeError;
use crate::secret::Redactor;
use crate::secret_key::SecretKeyFile;
use crate::topology::Topology;
use crate::verify;

const INVENTORY_FORMAT: u32 = 1;

/// A GitOps directory on this machine: `apply` writes manifests and an
/// inventory; `plan` diffs against that inventory; verification is offline.
#[derive(Debug)]
pub struct GitOpsDir {
    root: PathBuf,
    sets: Mutex<BTreeMap<ApplySet, SetState>>,
    /// The key of the digests that stand in for secret values.
    key: SecretKeyFile,
}

/// A topology that keeps the objects it is given in a GitOps directory: it
/// gets `K8sDeploy` from it. Give it the directory's lock too:
/// `fn try_lock(..) { Box::pin(async move { self.directory().try_lock(app, me) }) }`.
pub trait GitOps: Topology {
    /// The directory it keeps its objects in.
    fn directory(&self) -> &GitOpsDir;
}

impl Topology for GitOpsDir {
    fn name(&self) -> &str {
        "gitops"
    }

    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move { GitOpsDir::try_lock(self, app, me) })
    }
}

impl GitOps for GitOpsDir {
    fn directory(&self) -> &GitOpsDir {
        self
    }
}

/// One app's state during a run: what was stored, and what this run changed.
#[derive(Debug, Default)]
struct SetState {
    stored: BTreeMap<ObjectRef, Value>,
    pending: BTreeMap<ObjectRef, Value>,
    removed: Vec<ObjectRef>,
    dirty: bool,
    /// What every other app stored, read once per pass (by its first check).
    others: Option<Vec<BTreeMap<ObjectRef, Value>>>,
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

impl GitOpsDir {
    /// The GitOps directory at `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            key: SecretKeyFile::in_dir(&root),
            root,
            sets: Mutex::new(BTreeMap::new()),
        }
    }

    /// Where it is.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of one release stage: `stages/<stage>/` under this one.
    pub fn stage(&self, stage: &str) -> GitOpsDir {
        GitOpsDir::at(self.root.join("stages").join(stage))
    }

    /// Take the lock of `app`: `.locks/<app>.lock` (see [`crate::lock`]).
    pub fn try_lock(&self, app: &str, me: &Holder) -> Result<Attempt, LockError> {
        let attempt = FileLock::try_take(&self.root.join(".locks").join(format!("{app}.lock")), me)?;
        if matches!(attempt, Attempt::Acquired { .. }) {
            // What a run killed in the middle of a write left: its files are
            // whole (see `crate::files`), its temporaries are not.
            sweep_temporaries(&self.root, false);
            sweep_temporaries(&self.root.join(app), true);
        }
        Ok(attempt)
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
        self.key.redactor(create)
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
        if self.with_set(set, |state| Ok(state.others.is_none()))? {
            let others = self.others(set)?;
            self.with_set(set, |state| {
                state.others = Some(others);
                Ok(())
            })?;
        }
        self.with_set(set, |state| {
            let mut view = verify::View::default()
                .below_step(objects.iter().map(|(id, body)| (id, body)))
                .below(&state.pending);
            for other in state.others.iter().flatten() {
                view = view.below(other);
            }
            Ok(verify::check(objects.iter().map(|(id, body)| (id, body)), &view))
        })
    }

    /// What every app but `set` stored.
    fn others(&self, set: &ApplySet) -> Result<Vec<BTreeMap<ObjectRef, Value>>, DeployError> {
        let mut others = Vec::new();
        if let Ok(dirs) = fs::read_dir(&self.root) {
            for dir in dirs.flatten() {
                let name = dir.file_name().to_string_lossy().into_owned();
                if name != set.name() && dir.path().join("inventory.json").is_file() {
                    others.push(self.load(&ApplySet::new(name))?);
                }
            }
        }
        Ok(others)
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

/// Every topology that keeps its objects in a GitOps directory deploys them
/// there. Kept out of "required for" notes: a missing `K8sDeploy` reads as
/// the capability's own message.
#[diagnostic::do_not_recommend]
impl<T: GitOps> K8sDeploy for T {
    fn begin<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        let dir = self.directory();
        dir.sets.lock().unwrap_or_else(|p| p.into_inner()).remove(set);
        Box::pin(async { Ok(()) })
    }

    fn pin_secret_digests(&self) -> BoxFuture<'_, Result<(), DeployError>> {
        let dir = self.directory();
        Box::pin(async move { dir.redactor(true).map(drop) })
    }

    fn observe<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        let dir = self.directory();
        Box::pin(async move { Ok(Observed::new(dir.load(set)?, dir.redactor(false)?)) })
    }

    fn dry_run<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        let dir = self.directory();
        Box::pin(async move {
            let redacted = dir.redacted(objects, false)?;
            let problems = dir.checked(set, &redacted)?;
            if !problems.is_empty() {
                return Err(DeployError::Unrunnable { problems });
            }
            dir.with_set(set, |state| {
                state.pending.extend(redacted);
                Ok(())
            })
        })
    }

    fn apply<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        let dir = self.directory();
        Box::pin(async move {
            dir.ensure_writable(set)?;
            let redacted = dir.redacted(objects, true)?;
            dir.with_set(set, |state| {
                for (id, body) in redacted {
                    let path = dir.manifest_path(set, &id);
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
        let dir = self.directory();
        Box::pin(async move {
            dir.with_set(set, |state| {
                for id in objects {
                    let path = dir.manifest_path(set, id);
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
        let dir = self.directory();
        Box::pin(async move {
            let mut sets = dir.sets.lock().unwrap_or_else(|p| p.into_inner());
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
            write_atomic(&dir.inventory_path(set), &bytes, true)
        })
    }

    fn verify<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>> {
        let dir = self.directory();
        Box::pin(async move {
            let problems = dir
                .redacted(objects, false)
                .and_then(|redacted| dir.checked(set, &redacted))
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

/// What delivering a release into a GitOps directory would change.
pub(crate) async fn plan_in_directory(target: &GitOpsDir, delivery: &Delivery) -> Result<Plan, DeliveryError> {
    let plan = engine::plan_objects(&delivery.app, &delivery.objects, target)
        .await
        .map_err(|e| DeliveryError::on_stage(&delivery.stage, e))?;
    Ok(Plan {
        topology: delivery.stage.clone(),
        ..plan
    })
}

/// Deliver a release into a GitOps directory, with the sequence `apply` uses.
pub(crate) async fn deliver_to_directory(target: &GitOpsDir, delivery: &Delivery) -> Result<Plan, DeliveryError> {
    let plan = engine::apply_objects(&delivery.app, &delivery.objects, target)
        .await
        .map_err(|e| DeliveryError::on_stage(&delivery.stage, e))?;
    Ok(Plan {
        topology: delivery.stage.clone(),
        ..plan
    })
}

/// Write a file of the state directory whole (see [`crate::files`]).
fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<(), DeployError> {
    write_whole(path, bytes, Whole { durable, private: false }).map_err(DeployError::from)
}
