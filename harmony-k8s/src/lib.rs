//! The `k8s` topology: deploy to a live Kubernetes cluster.
//!
//! Where each part lives:
//! - [`settings`]: which cluster, from `KUBECONFIG` (context selectable) or in-cluster;
//! - `cluster`: the client and every API request (retried, errors explained);
//! - `discovery`: what the cluster serves, read in two requests alongside the first;
//! - `applyset`: the ApplySet parent and member label, as kubectl 1.33 writes them;
//! - `lease`: the lock of each app on the cluster, a `coordination.k8s.io` Lease;
//! - `fields`: what Harmony manages of an object (its managedFields), which plans compare;
//! - this file: `K8sDeploy` — observe, dry-run, server-side apply, prune, commit;
//! - `readiness` and `wait`: readiness by the kstatus rules, waited for with watches;
//! - `report`: why an object is not ready — its pods, events and logs.
//!
//! Link this crate into a binary (`harmony_registry::main!(my_app, harmony_k8s)`)
//! and `--topology k8s` deploys there.

mod applyset;
mod cluster;
mod discovery;
mod error;
mod fields;
mod filled_in;
mod lease;
mod probe;
mod readiness;
mod redact;
mod report;
pub mod settings;
mod tunnel;
mod wait;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures_util::{StreamExt as _, TryStreamExt as _};
use harmony::capability::{ApplySet, BoxFuture, DeployError, HttpAnswer, Observed, OwnedElsewhere};
use harmony::cluster::Place;
use harmony::engine::any_topology::AnyTopology;
use harmony::lock::{Attempt, Holder, LockError};
use harmony::oci::Artifact;
use harmony::ready_when::Ready;
use harmony::release::{Delivery, HttpCheck, HttpProbe};
use harmony::secret::Redactor;
use harmony::secret_key::SecretKeyFile;
use harmony::topology::{SelectableTopology, Topology, TopologyError};
use harmony::{K8sClient, K8sDeploy, Object, ObjectRef, SmokeError};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::applyset::{GroupKind, Listed, PART_OF, Parent};
use crate::cluster::Cluster;
use crate::cluster::Served;
use crate::error::Subject;
pub use crate::fields::MANAGER;
use crate::settings::Settings;

/// How many objects of one step are applied at once.
const CONCURRENCY: usize = 16;
/// How many objects that are not ready a plan reports in full (pods, events, log).
const REPORTED_IN_FULL: usize = 3;

/// The annotation that lets Harmony prune a protected object (a Namespace, a
/// CustomResourceDefinition, a PersistentVolumeClaim): `allow`.
pub const PRUNE_ANNOTATION: &str = "harmony.deploy/prune";

/// A live Kubernetes cluster: server-side apply as field manager `harmony`,
/// ApplySet pruning, and readiness by the kstatus rules.
///
/// Its client is made on first use and lives on the tokio runtime that made
/// it: use one `K8s` within one runtime.
pub struct K8s {
    settings: Settings,
    cluster: OnceCell<Cluster>,
    sets: Mutex<HashMap<String, SetState>>,
    /// Held while an ApplySet parent is read, widened and written.
    parent_writes: tokio::sync::Mutex<()>,
    key: SecretKeyFile,
    pretended: Mutex<Pretended>,
}

impl std::fmt::Debug for K8s {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8s")
            .field("target", &self.settings.target())
            .finish_non_exhaustive()
    }
}

/// One app's set during a run.
#[derive(Debug, Default)]
struct SetState {
    /// What the parent lists on the cluster now.
    listed: Listed,
    /// Whether the parent exists.
    parent_exists: bool,
    /// The members the last observation found, with their UIDs.
    members: BTreeMap<ObjectRef, Member>,
    /// What this pass applied (or tried to: a failed request may have landed).
    touched: BTreeMap<ObjectRef, GroupKind>,
    /// What this pass pruned.
    pruned: BTreeSet<ObjectRef>,
}

/// Namespaces and kinds a dry run of this process only pretended to create
/// (for any app: one app's dry run may create what the next one's objects
/// live in): objects in them cannot be checked by the server until they
/// exist. An apply that creates one for real takes it off.
#[derive(Debug, Default)]
struct Pretended {
    namespaces: BTreeSet<String>,
    kinds: BTreeSet<GroupKind>,
}

#[derive(Clone, Debug)]
struct Member {
    uid: String,
    kind: GroupKind,
    protected: bool,
}

/// One member as a LIST found it.
struct Found {
    id: ObjectRef,
    /// What Harmony manages of it.
    projected: Value,
    member: Member,
    /// Its fields other managers own.
    elsewhere: Vec<OwnedElsewhere>,
    /// Its readiness and the live object, when it is not ready.
    not_ready: Option<(readiness::Readiness, Value)>,
}

impl Topology for K8s {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// The app's Lease on the cluster (see `lease`).
    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move {
            let configured = self.settings.namespace.as_deref().unwrap_or("default");
            let cluster = self
                .cluster()
                .await
                .map_err(|e| lease::refusal(e, app, configured, &self.settings.target()))?;
            let namespace = self.settings.namespace.as_deref().unwrap_or(&cluster.default_namespace);
            lease::try_take(cluster, &self.settings, namespace, app, me).await
        })
    }
}

impl SelectableTopology for K8s {
    const NAME: &'static str = "k8s";
    const ABOUT: &'static str = "a live Kubernetes cluster (`KUBECONFIG`): server-side apply, ApplySet pruning, readiness";

    fn from_env() -> Result<Self, TopologyError> {
        Ok(Self::new(Settings::from_env()?))
    }
}

harmony::topology!(K8s);

/// The `k8s` topology at a place on a cluster: how the `ci` topology
/// delivers each stage of a release (and `apply`) to clusters.
fn connect(place: &Place) -> Result<AnyTopology, TopologyError> {
    let k8s = K8s::new(Settings::from_env()?.at(place)?);
    harmony::engine::registry::registered(k8s).ok_or_else(|| TopologyError::Unsupported {
        what: "the `k8s` topology is not registered in this binary".into(),
        help: "link `harmony_k8s` by naming it in `harmony_registry::main!(..)`".into(),
    })
}

harmony::connector!(K8s::NAME, connect);

impl K8s {
    pub fn new(settings: Settings) -> Self {
        Self {
            key: SecretKeyFile::in_dir(&settings.state_dir),
            settings,
            cluster: OnceCell::new(),
            sets: Mutex::new(HashMap::new()),
            parent_writes: tokio::sync::Mutex::new(()),
            pretended: Mutex::new(Pretended::default()),
        }
    }

    /// The cluster, connected on first use.
    async fn cluster(&self) -> Result<&Cluster, DeployError> {
        self.cluster
            .get_or_try_init(|| async {
                let target = self.settings.target();
                let config = self.settings.config().await.map_err(|why| DeployError::Unreachable {
                    target: target.clone(),
                    why: format!("its client configuration cannot be used: {why}"),
                })?;
                let namespace = config.default_namespace.clone();
                let client = kube::Client::try_from(config).map_err(|e| DeployError::Unreachable {
                    target: target.clone(),
                    why: format!("no client can be made for it: {e}"),
                })?;
                Ok(Cluster::new(client, target, namespace, self.settings.request_timeout))
            })
            .await
    }

    fn parent(&self, cluster: &Cluster, set: &ApplySet) -> Parent {
        let namespace = self.settings.namespace.as_deref().unwrap_or(&cluster.default_namespace);
        Parent::of(set.name(), namespace)
    }

    fn with_set<R>(&self, set: &ApplySet, f: impl FnOnce(&mut SetState) -> R) -> R {
        let mut sets = self.sets.lock().unwrap_or_else(|p| p.into_inner());
        f(sets.entry(set.name().to_owned()).or_default())
    }

    /// The kind of `id` as the cluster serves it, or an error saying it does not.
    async fn served(&self, cluster: &Cluster, id: &ObjectRef) -> Result<Served, DeployError> {
        cluster
            .served(&id.api_version, &id.kind)
            .await?
            .ok_or_else(|| DeployError::Rejected {
                object: Box::new(id.clone()),
                why: format!("the cluster does not serve kind `{}` in `{}`", id.kind, id.api_version),
                help: "check its apiVersion and kind; a custom resource needs its CustomResourceDefinition deployed in an earlier step"
                    .into(),
            })
    }

    /// Read the parent of `set`: whether it exists and what it lists.
    async fn read_parent(&self, cluster: &Cluster, set: &ApplySet) -> Result<(bool, Listed), DeployError> {
        let parent = self.parent(cluster, set);
        let secrets = secrets_api(cluster, &parent.namespace);
        let subject = format!("Secret {}/{}", parent.namespace, parent.name);
        let found = cluster
            .call("get", Subject::Named(&subject), || secrets.get_opt(&parent.name))
            .await?;
        let Some(found) = found else {
            return Ok((false, Listed::default()));
        };
        let body = serde_json::to_value(&found).unwrap_or(Value::Null);
        let listed = Listed::read(&parent, &body).map_err(|why| DeployError::Rejected {
            object: Box::new(parent_ref(&parent)),
            why: format!("the ApplySet parent of app `{}` cannot be used: {why}", set.name()),
            help: format!(
                "this Secret holds another tool's set: move it aside, or set `{}` to a namespace where `{}` is free",
                settings::NAMESPACE_VAR,
                parent.name
            ),
        })?;
        Ok((true, listed))
    }

    /// Make the parent list at least `kinds` and `namespaces` (before their
    /// objects are applied), or exactly them (`commit`).
    async fn write_parent(
        &self,
        cluster: &Cluster,
        set: &ApplySet,
        kinds: &BTreeSet<GroupKind>,
        namespaces: &BTreeSet<String>,
    ) -> Result<(), DeployError> {
        let parent = self.parent(cluster, set);
        let body = parent.body(kinds, namespaces);
        let secrets = secrets_api(cluster, &parent.namespace);
        let params = PatchParams::apply(MANAGER).force();
        let id = parent_ref(&parent);
        let patch = Patch::Apply(&body);
        cluster
            .call("apply", Subject::Object(&id), || secrets.patch(&parent.name, &params, &patch))
            .await?;
        self.with_set(set, |s| {
            s.parent_exists = true;
            s.listed = Listed {
                kinds: kinds.clone(),
                namespaces: namespaces.iter().cloned().chain([parent.namespace.clone()]).collect(),
            };
        });
        Ok(())
    }

    /// One server-side apply of `object` as a member of `set`. The answer
    /// is not read: nothing needs it, and parsing 4000 of them was a third
    /// of an apply's time.
    async fn apply_one(&self, cluster: &Cluster, set_id: &str, object: &Object, dry_run: bool) -> Result<(), DeployError> {
        let mut params = PatchParams::apply(MANAGER);
        if self.settings.force || harmony::capability::forcing_conflicts() {
            params = params.force();
        }
        if dry_run {
            params = params.dry_run();
        }
        let verb = if dry_run { "dry-run apply" } else { "apply" };
        self.send_apply(cluster, set_id, object, &params, verb).await.map(drop)
    }

    /// What the server would store for `object` if Harmony applied it now (a dry run); None if
    /// it would not say.
    async fn dry_run_answer(&self, cluster: &Cluster, set_id: &str, object: &Object) -> Option<Value> {
        let params = PatchParams::apply(MANAGER).dry_run();
        let answer = self.send_apply(cluster, set_id, object, &params, "dry-run apply").await.ok()?;
        serde_json::from_str(&answer).ok()
    }

    /// Server-side applies `object`, labelled a member of the set `set_id`; the server's answer.
    async fn send_apply(
        &self,
        cluster: &Cluster,
        set_id: &str,
        object: &Object,
        params: &PatchParams,
        verb: &'static str,
    ) -> Result<String, DeployError> {
        let id = object.id();
        let served = self.served(cluster, id).await?;
        let namespace = if served.namespaced { id.namespace.as_deref() } else { None };
        let path = <kube::api::DynamicObject as kube::Resource>::url_path(&served.resource, namespace);
        let mut body = object.body().clone();
        label(&mut body, set_id);
        let patch = Patch::Apply(&body);
        cluster
            .call(verb, Subject::Object(id), || async {
                let request = kube::core::Request::new(&path)
                    .patch(&id.name, params, &patch)
                    .map_err(kube::Error::BuildRequest)?;
                cluster.client.request_text(request).await
            })
            .await
    }

    /// Apply (or dry-run) one step's objects: Namespaces and CRDs first (each
    /// CRD established before anything else), then the rest, concurrently.
    async fn apply_step(&self, set: &ApplySet, objects: &[Object], dry_run: bool) -> Result<(), DeployError> {
        let unreadable: Vec<String> = objects
            .iter()
            .filter_map(|o| Ready::of(o.body()).err().map(|why| format!("{}: {why}", o.id())))
            .collect();
        if !unreadable.is_empty() {
            return Err(DeployError::Unrunnable { problems: unreadable });
        }
        let cluster = self.cluster().await?;
        cluster.secrets.learn(objects);
        let parent = self.parent(cluster, set);
        let set_id = parent.id();
        let (first, rest): (Vec<&Object>, Vec<&Object>) = objects.iter().partition(|o| is_namespace(o.id()) || is_crd(o.id()));

        if !dry_run {
            // One writer of the parent at a time: peers deployed side by side
            // each widen it, and none may narrow what another added.
            let _writing = self.parent_writes.lock().await;
            let (kinds, namespaces) = self
                .with_set(set, |s| {
                    let mut kinds = s.listed.kinds.clone();
                    let mut namespaces = s.listed.namespaces.clone();
                    for o in objects {
                        kinds.insert(GroupKind::of(&o.id().api_version, &o.id().kind));
                        namespaces.extend(o.id().namespace.clone());
                    }
                    let grew = !s.parent_exists || kinds != s.listed.kinds || namespaces != s.listed.namespaces;
                    grew.then_some((kinds, namespaces))
                })
                .unzip();
            if let (Some(kinds), Some(namespaces)) = (kinds, namespaces) {
                self.write_parent(cluster, set, &kinds, &namespaces).await?;
            }
        }

        for batch in [first, rest] {
            let mut established = Vec::new();
            // By index: a closure over `&Object` is not general enough for a `Send` future.
            futures_util::stream::iter(0..batch.len())
                .map(|i| self.apply_member(cluster, set, &set_id, batch[i], dry_run))
                .buffer_unordered(CONCURRENCY)
                .try_for_each(|crd| {
                    established.extend(crd);
                    async { Ok(()) }
                })
                .await?;
            for crd in established {
                wait::established(cluster, &crd, self.settings.timeout).await?;
                if let Some(object) = batch.iter().find(|o| *o.id() == crd) {
                    wait::served(cluster, object, self.settings.timeout).await?;
                }
            }
        }
        Ok(())
    }

    /// Apply one object of a step; returns the CRD to wait for, if it is one.
    async fn apply_member(
        &self,
        cluster: &Cluster,
        set: &ApplySet,
        set_id: &str,
        object: &Object,
        dry_run: bool,
    ) -> Result<Option<ObjectRef>, DeployError> {
        let id = object.id();
        let kind = GroupKind::of(&id.api_version, &id.kind);
        if dry_run {
            let pretended = {
                let p = self.pretended.lock().unwrap_or_else(|p| p.into_inner());
                id.namespace.as_ref().is_some_and(|ns| p.namespaces.contains(ns)) || p.kinds.contains(&kind)
            };
            if pretended {
                // Its namespace or kind does not exist until the apply creates it.
                tracing::debug!(object = %id, "not checked by the server: its namespace or kind is created by this apply");
                return Ok(None);
            }
            let member = self.with_set(set, |s| s.members.contains_key(id));
            // An object that is not ours yet: does it exist, and does another set own it?
            let live = if member { None } else { self.get(cluster, id).await? };
            if let Some(other) = live.as_ref().and_then(|l| l.pointer(&format!("/metadata/labels/{}", PART_OF.replace('/', "~1"))))
                && let Some(other) = other.as_str().filter(|o| *o != set_id)
                // A CRD is a cluster-wide type: every placement of a chart needs the same one.
                && !is_crd(id)
            {
                return Err(DeployError::Owned {
                    object: Box::new(id.clone()),
                    owner: self.owner(cluster, other).await,
                });
            }
            if is_namespace(id) || is_crd(id) {
                let exists = member || live.is_some();
                if !exists {
                    let mut p = self.pretended.lock().unwrap_or_else(|p| p.into_inner());
                    if is_namespace(id) {
                        p.namespaces.insert(id.name.clone());
                    } else if let Some(kind) = crd_kind(object.body()) {
                        p.kinds.insert(kind);
                    }
                }
            }
            self.apply_one(cluster, set_id, object, true).await?;
            return Ok(None);
        }
        self.with_set(set, |s| s.touched.insert(id.clone(), kind.clone()));
        self.apply_one(cluster, set_id, object, false).await?;
        {
            let mut p = self.pretended.lock().unwrap_or_else(|p| p.into_inner());
            if is_namespace(id) {
                p.namespaces.remove(&id.name);
            } else if let Some(kind) = crd_kind(object.body()) {
                p.kinds.remove(&kind);
            }
        }
        if is_crd(id) {
            if let Some(kind) = crd_kind(object.body()) {
                cluster.forget_group(&kind.group);
            }
            return Ok(Some(id.clone()));
        }
        Ok(None)
    }

    /// The members of one kind, each projected onto what Harmony manages of it.
    async fn list_members(&self, cluster: &Cluster, kind: &GroupKind, set_id: &str) -> Result<Vec<Found>, DeployError> {
        let Some(version) = cluster.preferred_version(&kind.group).await? else {
            return Ok(Vec::new());
        };
        let api_version = if kind.group.is_empty() {
            version
        } else {
            format!("{}/{version}", kind.group)
        };
        let Some(served) = cluster.served(&api_version, &kind.kind).await? else {
            return Ok(Vec::new());
        };
        // Read as JSON values, parsed once: what is compared is JSON anyway.
        let params = ListParams::default().labels(&format!("{PART_OF}={set_id}"));
        let path = <kube::api::DynamicObject as kube::Resource>::url_path(&served.resource, None);
        let subject = format!("{kind} labelled {PART_OF}={set_id}");
        let list: Listing = cluster
            .call("list", Subject::Named(&subject), || async {
                let request = kube::core::Request::new(&path).list(&params).map_err(kube::Error::BuildRequest)?;
                cluster.client.request::<Listing>(request).await
            })
            .await?;
        let mut out = Vec::with_capacity(list.items.len());
        for item in list.items {
            let live = with_types(item, &served);
            let (projected, applied_as) = match fields::applied_by_harmony(&live) {
                Some((set, applied_as)) => (fields::project(&live, set, applied_as), applied_as.to_owned()),
                None => (fields::project(&live, &serde_json::Map::new(), &api_version), api_version.clone()),
            };
            let text = |p: &str| live.pointer(p).and_then(Value::as_str).map(str::to_owned);
            let id = ObjectRef {
                api_version: applied_as,
                kind: kind.kind.clone(),
                namespace: text("/metadata/namespace"),
                name: text("/metadata/name").unwrap_or_default(),
            };
            let allowed = live
                .pointer(&format!("/metadata/annotations/{}", PRUNE_ANNOTATION.replace('/', "~1")))
                .and_then(Value::as_str)
                == Some("allow");
            let member = Member {
                uid: text("/metadata/uid").unwrap_or_default(),
                kind: kind.clone(),
                protected: is_protected(&id) && !allowed,
            };
            // Judged by the rules `verify` waits with (a rule that cannot be read is the default).
            let rule = Ready::of(&live).unwrap_or_default();
            let readiness = (!rule.is_skip()).then(|| readiness::readiness(&live, &rule));
            let elsewhere = fields::owned_elsewhere(&live);
            let not_ready = readiness.filter(|r| r.state != readiness::State::Current).map(|r| (r, live));
            out.push(Found {
                id,
                projected,
                member,
                elsewhere,
                not_ready,
            });
        }
        Ok(out)
    }

    /// The app whose ApplySet has id `set_id`, as its parent Secret names it
    /// (`harmony-<app>`); else the set's id.
    async fn owner(&self, cluster: &Cluster, set_id: &str) -> String {
        let secrets: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
            cluster.client.clone(),
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&()),
        );
        let params = ListParams::default().labels(&format!("{}={set_id}", applyset::ID));
        let subject = format!("Secret labelled {}={set_id}", applyset::ID);
        let parents = cluster
            .call("list", Subject::Named(&subject), || secrets.list_metadata(&params))
            .await;
        let parent = parents.ok().and_then(|l| l.items.into_iter().next());
        match parent
            .as_ref()
            .and_then(|p| Some((p.metadata.namespace.clone()?, p.metadata.name.clone()?)))
        {
            Some((ns, name)) => match name.strip_prefix("harmony-") {
                Some(app) => format!("app `{app}` (its ApplySet's parent is Secret {ns}/{name})"),
                None => format!("the ApplySet whose parent is Secret {ns}/{name}"),
            },
            None => format!("another ApplySet (`{PART_OF}: {set_id}`)"),
        }
    }

    /// The object as the cluster has it now.
    async fn get(&self, cluster: &Cluster, id: &ObjectRef) -> Result<Option<Value>, DeployError> {
        let Some(served) = cluster.served(&id.api_version, &id.kind).await? else {
            return Ok(None);
        };
        let api = cluster.api(&served, id.namespace.as_deref());
        let found = cluster.call("get", Subject::Object(id), || api.get_opt(&id.name)).await?;
        Ok(found.map(|o| with_types(serde_json::to_value(&o).unwrap_or(Value::Null), &served)))
    }

    /// The digest key of secret values, kept under the state directory so
    /// that a plan saved now is checked by a later apply with equal digests.
    fn redactor(&self, write: bool) -> Result<Redactor, DeployError> {
        self.key.redactor(write)
    }
}

impl K8sDeploy for K8s {
    fn begin<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            let cluster = self.cluster().await?;
            let (exists, listed) = self.read_parent(cluster, set).await?;
            self.with_set(set, |s| {
                s.parent_exists = exists;
                s.listed = listed;
                s.touched.clear();
                s.pruned.clear();
            });
            Ok(())
        })
    }

    fn pin_secret_digests(&self) -> BoxFuture<'_, Result<(), DeployError>> {
        Box::pin(async move { self.redactor(true).map(|_| ()) })
    }

    fn observe<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        Box::pin(async move {
            let cluster = self.cluster().await?;
            let redactor = self.redactor(false)?;
            // Discovery is read alongside the parent: the LISTs below wait for neither again.
            let ((exists, listed), ()) = futures_util::future::try_join(self.read_parent(cluster, set), cluster.read_discovery()).await?;
            let set_id = self.parent(cluster, set).id();
            let mut objects = BTreeMap::new();
            let mut members = BTreeMap::new();
            // One LIST per kind the parent lists, across namespaces, by the member label; all at once.
            let kinds: Vec<&GroupKind> = listed.kinds.iter().collect();
            let found = futures_util::stream::iter(0..kinds.len())
                .map(|i| self.list_members(cluster, kinds[i], &set_id))
                .buffer_unordered(CONCURRENCY)
                .try_collect::<Vec<_>>()
                .await?;
            let mut elsewhere = BTreeMap::new();
            let mut not_ready = Vec::new();
            for found in found.into_iter().flatten() {
                let Found {
                    id,
                    projected: body,
                    member,
                    elsewhere: others,
                    not_ready: unready,
                } = found;
                if !others.is_empty() {
                    elsewhere.insert(id.clone(), others);
                }
                if let Some((readiness, live)) = unready {
                    not_ready.push((id.clone(), readiness, live));
                }
                // Only a Secret's body is copied, to replace its values by digests.
                let body = match Object::from_value(body) {
                    Ok(secret) if secret.id().is_secret() => redactor.redact(&secret),
                    Ok(other) => other.into_body(),
                    Err(_) => Value::Null,
                };
                objects.insert(id.clone(), body);
                members.insert(id, member);
            }
            self.with_set(set, |s| {
                s.parent_exists = exists;
                s.listed = listed;
                s.members = members;
            });
            // The first few are reported as a failed verification would be (their pods, events
            // and log: requests of their own); the rest by their status alone.
            let mut unhealthy = Vec::with_capacity(not_ready.len());
            for (n, (id, readiness, live)) in not_ready.into_iter().enumerate() {
                unhealthy.push(if n < REPORTED_IN_FULL {
                    report::not_ready(cluster, &id, &live, &readiness).await
                } else {
                    harmony::capability::Unhealthy {
                        object: id,
                        why: cluster.secrets.redact(&readiness.reason),
                        help: None,
                    }
                });
            }
            Ok(Observed {
                objects,
                redactor,
                elsewhere,
                unhealthy,
            })
        })
    }

    /// One server-side dry run per object whose live fields hold values the desired ones leave
    /// out (`fieldRef.apiVersion`, which the API server fills in inside a selector Harmony owns
    /// whole): the values the server would fill in again are set aside, and a plan shows only
    /// what applying would change. An answer of "nothing to change" is remembered (in the state
    /// directory, per app), so a steady state costs no request. A dry run that fails sets nothing
    /// aside: the plan shows the difference, and the apply's own checks report why.
    fn set_aside_filled_in<'a>(
        &'a self,
        set: &'a ApplySet,
        desired: &'a [Object],
        observed: &'a mut Observed,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            let remembered = filled_in::Remembered::load(&self.settings.state_dir, set.name());
            let mut unchanged = std::collections::BTreeSet::new();
            let mut ask = Vec::new();
            for object in desired.iter().filter(|o| !o.id().is_secret()) {
                let Some(live) = observed.objects.get(object.id()) else { continue };
                if !harmony::engine::plan::holds_values_left_out(object.body(), live) {
                    continue;
                }
                let key = filled_in::key(object.id(), object.body(), live);
                if remembered.contains(&key) {
                    observed.objects.insert(object.id().clone(), object.body().clone());
                    unchanged.insert(key);
                } else {
                    ask.push((object, key));
                }
            }
            if !ask.is_empty() {
                let cluster = self.cluster().await?;
                let set_id = self.parent(cluster, set).id();
                let answers: Vec<Option<(ObjectRef, Value, String)>> = futures_util::stream::iter(0..ask.len())
                    .map(|i| {
                        let (object, key) = (ask[i].0, ask[i].1.clone());
                        let live = observed.objects.get(object.id());
                        let set_id = set_id.as_str();
                        async move {
                            let answer = self.dry_run_answer(cluster, set_id, object).await?;
                            let (fields, applied_as) = fields::applied_by_harmony(&answer)?;
                            let stored = fields::project(&answer, fields, applied_as);
                            let kept = harmony::engine::plan::without_filled_in(live?, object.body(), &stored);
                            Some((object.id().clone(), kept, key))
                        }
                    })
                    .buffer_unordered(CONCURRENCY)
                    .collect()
                    .await;
                for (id, kept, key) in answers.into_iter().flatten() {
                    if desired
                        .iter()
                        .any(|o| *o.id() == id && harmony::engine::plan::same(o.body(), &kept))
                    {
                        unchanged.insert(key);
                    }
                    observed.objects.insert(id, kept);
                }
            }
            remembered.save(&self.settings.state_dir, set.name(), unchanged);
            Ok(())
        })
    }

    fn dry_run<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(self.apply_step(set, objects, true))
    }

    fn apply<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(self.apply_step(set, objects, false))
    }

    fn prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        let span = tracing::info_span!("prune", app = set.name(), objects = objects.len());
        Box::pin(tracing::Instrument::instrument(
            async move {
                let cluster = self.cluster().await?;
                for id in objects {
                    let Some(member) = self.with_set(set, |s| s.members.get(id).cloned()) else {
                        // Not a member the last observation found: never delete it.
                        continue;
                    };
                    let Some(served) = cluster.served(&id.api_version, &id.kind).await? else {
                        continue;
                    };
                    let api = cluster.api(&served, id.namespace.as_deref());
                    if member.protected {
                        // Kept, but no longer part of the set.
                        let body = serde_json::json!({"metadata": {"labels": {PART_OF: null}}});
                        let patch = Patch::Merge(&body);
                        let params = PatchParams::default();
                        cluster
                            .call("release", Subject::Object(id), || api.patch(&id.name, &params, &patch))
                            .await?;
                        tracing::warn!(object = %id, "kept: a {} is pruned only with the annotation `{PRUNE_ANNOTATION}: allow`", id.kind);
                    } else {
                        let params = DeleteParams {
                            propagation_policy: Some(PropagationPolicy::Background),
                            preconditions: Some(Preconditions {
                                uid: Some(member.uid.clone()),
                                resource_version: None,
                            }),
                            ..DeleteParams::default()
                        };
                        match cluster.call("delete", Subject::Object(id), || api.delete(&id.name, &params)).await {
                            Ok(_) => {}
                            // Gone already, or replaced by an object that is not the member: leave it.
                            Err(DeployError::Rejected { why, .. })
                                if why.contains("NotFound") || why.contains("Precondition") || why.contains("UID") => {}
                            Err(e) => return Err(e),
                        }
                    }
                    self.with_set(set, |s| s.pruned.insert(id.clone()));
                }
                Ok(())
            },
            span,
        ))
    }

    fn dry_run_prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            let cluster = self.cluster().await?;
            for id in objects {
                // Protected members are kept (released from the set), not deleted.
                let Some(member) = self.with_set(set, |s| s.members.get(id).cloned()).filter(|m| !m.protected) else {
                    continue;
                };
                let Some(served) = cluster.served(&id.api_version, &id.kind).await? else {
                    continue;
                };
                let api = cluster.api(&served, id.namespace.as_deref());
                let params = DeleteParams {
                    dry_run: true,
                    propagation_policy: Some(PropagationPolicy::Background),
                    preconditions: Some(Preconditions {
                        uid: Some(member.uid.clone()),
                        resource_version: None,
                    }),
                    ..DeleteParams::default()
                };
                cluster
                    .call("dry-run delete", Subject::Object(id), || api.delete(&id.name, &params))
                    .await?;
            }
            Ok(())
        })
    }

    fn commit<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            let cluster = self.cluster().await?;
            let parent = self.parent(cluster, set);
            let _writing = self.parent_writes.lock().await;
            // Everything that may exist now: the members found, less what was
            // pruned, plus whatever this pass applied or tried to apply. The
            // parent never lists less than what exists.
            let update = self.with_set(set, |s| {
                let mut kinds = BTreeSet::new();
                let mut namespaces = BTreeSet::from([parent.namespace.clone()]);
                let kept = s
                    .members
                    .iter()
                    .filter(|(id, _)| !s.pruned.contains(*id))
                    .map(|(id, m)| (id, &m.kind));
                for (id, kind) in kept.chain(s.touched.iter()) {
                    kinds.insert(kind.clone());
                    namespaces.extend(id.namespace.clone());
                }
                let changed = kinds != s.listed.kinds || namespaces != s.listed.namespaces;
                let wanted = s.parent_exists || !s.touched.is_empty();
                (wanted && changed).then_some((kinds, namespaces))
            });
            if let Some((kinds, namespaces)) = update {
                self.write_parent(cluster, set, &kinds, &namespaces).await?;
            }
            self.redactor(true)?;
            Ok(())
        })
    }

    fn verify<'a>(&'a self, _: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async move {
            let cluster = self.cluster().await.map_err(|e| SmokeError::new("readiness", e.to_string()))?;
            wait::ready(cluster, objects, self.settings.timeout).await
        })
    }
}

impl K8sClient for K8s {
    fn get<'a>(&'a self, id: &'a ObjectRef) -> BoxFuture<'a, Result<Option<Value>, DeployError>> {
        Box::pin(async move {
            let cluster = self.cluster().await?;
            K8s::get(self, cluster, id).await
        })
    }

    fn http_get<'a>(&'a self, service: &'a ObjectRef, port: &'a str, path: &'a str) -> BoxFuture<'a, Result<HttpAnswer, DeployError>> {
        Box::pin(async move { probe::http_get(self.cluster().await?, service, port, path).await })
    }

    fn connect<'a>(&'a self, service: &'a ObjectRef, port: &'a str) -> BoxFuture<'a, Result<Box<dyn harmony::Tunnel>, DeployError>> {
        Box::pin(async move { tunnel::connect(self.cluster().await?, service, port).await })
    }
}

impl HttpProbe for K8s {
    /// Asks the delivered Service through the API server's service proxy;
    /// the image is the one the cluster runs.
    fn probe<'a>(&'a self, delivery: &'a Delivery, _: &'a Artifact, check: &'a HttpCheck) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async move {
            let cluster = self
                .cluster()
                .await
                .map_err(|e| SmokeError::new(format!("GET {}", check.path), e.to_string()))?;
            probe::probe(cluster, delivery, check).await
        })
    }
}

fn secrets_api(cluster: &Cluster, namespace: &str) -> kube::Api<kube::api::DynamicObject> {
    let resource = kube::discovery::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Secret".into(),
        plural: "secrets".into(),
    };
    kube::Api::namespaced_with(cluster.client.clone(), namespace, &resource)
}

fn parent_ref(parent: &Parent) -> ObjectRef {
    ObjectRef {
        api_version: "v1".into(),
        kind: "Secret".into(),
        namespace: Some(parent.namespace.clone()),
        name: parent.name.clone(),
    }
}

/// A LIST's answer, its items as JSON.
#[derive(serde::Deserialize)]
struct Listing {
    #[serde(default)]
    items: Vec<Value>,
}

/// Add the member label.
fn label(body: &mut Value, set_id: &str) {
    let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = metadata.entry("labels").or_insert_with(|| Value::Object(serde_json::Map::new()));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(PART_OF.into(), Value::String(set_id.to_owned()));
    }
}

/// A listed or fetched object with its `apiVersion` and `kind` (list items may lack them).
fn with_types(mut value: Value, served: &Served) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(served.resource.api_version.clone()));
        map.insert("kind".into(), Value::String(served.resource.kind.clone()));
    }
    value
}

fn is_namespace(id: &ObjectRef) -> bool {
    id.api_version == "v1" && id.kind == "Namespace"
}

fn is_crd(id: &ObjectRef) -> bool {
    id.kind == "CustomResourceDefinition" && id.api_version.starts_with("apiextensions.k8s.io/")
}

/// Kinds whose loss loses data or other apps' objects: pruned only on request.
fn is_protected(id: &ObjectRef) -> bool {
    is_namespace(id) || is_crd(id) || (id.api_version == "v1" && id.kind == "PersistentVolumeClaim")
}

/// The kind a CRD defines.
fn crd_kind(body: &Value) -> Option<GroupKind> {
    Some(GroupKind {
        group: body.pointer("/spec/group")?.as_str()?.to_owned(),
        kind: body.pointer("/spec/names/kind")?.as_str()?.to_owned(),
    })
}
