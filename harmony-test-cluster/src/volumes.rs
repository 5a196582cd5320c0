//! Persistent volumes, as a cluster with a default StorageClass gives them: a claim with no
//! class (a StatefulSet's `volumeClaimTemplates`, say) gets a volume, and its data outlives
//! the pods that mount it.
//!
//! [`install`] creates the StorageClass [`STORAGE_CLASS`], the cluster's default
//! (`storageclass.kubernetes.io/is-default-class`, so kube-apiserver's `DefaultStorageClass`
//! admission gives it to claims that name none), `volumeBindingMode: Immediate`, reclaim policy
//! `Delete`; and starts its provisioner, an external provisioner as Kubernetes defines one: a
//! client of the API server with only the rights one is given. kube-controller-manager's volume
//! binder marks each claim of that class it cannot bind with
//! `volume.kubernetes.io/storage-provisioner: harmony.deploy/host-path`; for each such claim the
//! provisioner makes a directory under the control plane's own (`<dir>/volumes/`) and a
//! PersistentVolume `pvc-<claim uid>`: that directory as its `hostPath`, the claim's request as
//! its capacity, its access modes, its class, a `claimRef` to it, and the node as its only
//! place. The binder binds the two (the provisioner never writes a claim), the scheduler places
//! the claim's pods, and our kubelet mounts the directory into their containers.
//!
//! Reclaim: `Delete`, as the default class of most clusters. A claim outlives its pods (and a
//! StatefulSet's claims outlive the StatefulSet, by its default retention policy), so its data
//! does too; once the claim is deleted (by hand, or with its namespace) the binder marks the
//! volume `Released`, and the provisioner removes its directory, then the volume. A volume of
//! another class with this provisioner and `Retain` keeps both. A directory is never removed
//! through a mount ([`crate::bind_mounts::remove_dir`]), nor outside `<dir>/volumes/`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, PostParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};
use serde_json::json;

use crate::{bind_mounts, lock, util};

/// The name of the default StorageClass.
pub const STORAGE_CLASS: &str = "host-path";
/// The provisioner it names, and that its volumes say made them.
pub const PROVISIONER: &str = "harmony.deploy/host-path";
/// The user the provisioner acts as, and the ClusterRole that gives it its rights.
pub(crate) const PROVISIONER_USER: &str = "harmony-host-path-provisioner";
const ROLE: &str = "harmony:host-path-provisioner";

/// What kube-controller-manager writes on a claim it leaves to an external provisioner.
const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// What a provisioned volume says made it (kube-controller-manager leaves the deletion of such
/// a volume to that provisioner).
const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";

/// The running provisioner; dropping it stops it.
#[derive(Debug)]
pub(crate) struct Provisioner {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Creates the default StorageClass and the provisioner's rights (as `admin`), and starts the
/// provisioner (as `client`, its own user): volumes go under `dir`, on `node`.
pub(crate) async fn install(admin: kube::Client, client: kube::Client, dir: PathBuf, node: String) -> Result<Provisioner, String> {
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create the volumes' directory {}: {e}", dir.display()))?;
    let dir = std::fs::canonicalize(&dir).map_err(|e| format!("cannot resolve {}: {e}", dir.display()))?;
    let role: ClusterRole = from_json(json!({
        "metadata": {"name": ROLE},
        "rules": [
            {"apiGroups": [""], "resources": ["persistentvolumes"], "verbs": ["get", "list", "watch", "create", "delete"]},
            {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
        ],
    }))?;
    let binding: ClusterRoleBinding = from_json(json!({
        "metadata": {"name": ROLE},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": ROLE},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": PROVISIONER_USER}],
    }))?;
    let class: StorageClass = from_json(json!({
        "metadata": {
            "name": STORAGE_CLASS,
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
        },
        "provisioner": PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": "Immediate",
    }))?;
    create(&Api::all(admin.clone()), &role).await?;
    create(&Api::all(admin.clone()), &binding).await?;
    create(&Api::all(admin), &class).await?;
    let provisioner = Arc::new(Controller {
        client,
        dir,
        node,
        claims: Mutex::new(BTreeMap::new()),
        volumes: Mutex::new(BTreeMap::new()),
        reported: Mutex::new(HashMap::new()),
        wake: tokio::sync::Notify::new(),
    });
    Ok(Provisioner {
        task: tokio::spawn(provisioner.run()),
    })
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_json::from_value(value).map_err(|e| format!("cannot make an object of the volume provisioner: {e}"))
}

/// Creates an object; one already there is fine.
async fn create<K>(api: &Api<K>, object: &K) -> Result<(), String>
where
    K: kube::Resource<DynamicType = ()> + Clone + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(format!(
            "cannot create {} {}: {e}",
            K::kind(&()),
            object.meta().name.as_deref().unwrap_or_default()
        )),
    }
}

/// The provisioner's view of the cluster, and what it already said.
struct Controller {
    client: kube::Client,
    /// `<control plane>/volumes`, resolved: every directory it makes is in it.
    dir: PathBuf,
    node: String,
    /// Claims by uid, volumes by name, as last seen.
    claims: Mutex<BTreeMap<String, PersistentVolumeClaim>>,
    volumes: Mutex<BTreeMap<String, PersistentVolume>>,
    /// The last failure reported for a claim or volume (an event is sent once per failure).
    reported: Mutex<HashMap<String, String>>,
    wake: tokio::sync::Notify,
}

impl Controller {
    /// Follows claims and volumes, and acts on every change (and every second: a failed step
    /// is tried again).
    async fn run(self: Arc<Self>) {
        let act = async {
            loop {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
                self.reconcile().await;
            }
        };
        // One task: stopping it stops the watches too.
        tokio::join!(self.follow_claims(), self.follow_volumes(), act);
    }

    async fn follow_claims(&self) {
        let api: Api<PersistentVolumeClaim> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(c) | watcher::Event::InitApply(c)) => {
                    lock(&self.claims).insert(c.uid().unwrap_or_default(), c);
                }
                Ok(watcher::Event::Delete(c)) => {
                    lock(&self.claims).remove(&c.uid().unwrap_or_default());
                }
                Ok(watcher::Event::Init) => lock(&self.claims).clear(),
                Ok(watcher::Event::InitDone) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            self.wake.notify_one();
        }
    }

    async fn follow_volumes(&self) {
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(v) | watcher::Event::InitApply(v)) => {
                    lock(&self.volumes).insert(v.name_any(), v);
                }
                Ok(watcher::Event::Delete(v)) => {
                    lock(&self.volumes).remove(&v.name_any());
                    // A volume deleted by hand, bound or not: its data goes as its policy says.
                    if ours(&v) && reclaim_policy(&v) == "Delete" {
                        let _ = self.remove_directory(&v);
                    }
                }
                Ok(watcher::Event::Init) => lock(&self.volumes).clear(),
                Ok(watcher::Event::InitDone) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            self.wake.notify_one();
        }
    }

    async fn reconcile(&self) {
        let claims: Vec<PersistentVolumeClaim> = lock(&self.claims).values().cloned().collect();
        for claim in claims.iter().filter(|c| self.waits_for_us(c)) {
            let key = claim.uid().unwrap_or_default();
            match self.provision(claim).await {
                Ok(()) => {
                    lock(&self.reported).remove(&key);
                }
                Err(why) => self.failed(&key, claim_event(claim), "ProvisioningFailed", why).await,
            }
        }
        let volumes: Vec<PersistentVolume> = lock(&self.volumes).values().cloned().collect();
        for volume in volumes.iter().filter(|v| released_to_delete(v)) {
            let key = volume.name_any();
            match self.delete(volume).await {
                Ok(()) => {
                    lock(&self.reported).remove(&key);
                }
                Err(why) => self.failed(&key, volume_event(volume), "VolumeFailedDelete", why).await,
            }
        }
    }

    /// A claim kube-controller-manager left to this provisioner, and that has no volume yet.
    fn waits_for_us(&self, claim: &PersistentVolumeClaim) -> bool {
        let annotated = claim.annotations().get(STORAGE_PROVISIONER).map(String::as_str) == Some(PROVISIONER);
        let unbound = claim
            .spec
            .as_ref()
            .and_then(|s| s.volume_name.as_deref())
            .unwrap_or_default()
            .is_empty()
            && claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound");
        let provisioned = lock(&self.volumes).contains_key(&volume_name(claim));
        annotated && unbound && !provisioned && claim.metadata.deletion_timestamp.is_none()
    }

    /// Makes the claim's directory and its PersistentVolume, pre-bound to it.
    async fn provision(&self, claim: &PersistentVolumeClaim) -> Result<(), String> {
        let (namespace, name, uid) = (
            claim.namespace().unwrap_or_default(),
            claim.name_any(),
            claim.uid().unwrap_or_default(),
        );
        let spec = claim.spec.clone().unwrap_or_default();
        let class_name = spec.storage_class_name.clone().unwrap_or_default();
        let classes: Api<StorageClass> = Api::all(self.client.clone());
        let class = classes
            .get_opt(&class_name)
            .await
            .map_err(|e| format!("cannot read StorageClass {class_name}: {e}"))?
            .ok_or_else(|| format!("storageclass.storage.k8s.io \"{class_name}\" not found"))?;
        if class.provisioner != PROVISIONER {
            // Another provisioner's class: kube-controller-manager named us by mistake, or the
            // class changed since; nothing to do.
            return Ok(());
        }
        if spec.volume_mode.as_deref() == Some("Block") {
            return Err(format!(
                "{PROVISIONER} makes directories: a claim of volumeMode Block cannot have one; help: leave volumeMode unset (Filesystem)"
            ));
        }
        let request = spec
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .cloned()
            .ok_or_else(|| "the claim requests no storage (spec.resources.requests.storage)".to_owned())?;
        let volume = volume_name(claim);
        let path = self.dir.join(format!("{volume}_{namespace}_{name}"));
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::create_dir_all(&path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
            // A container may run as any user: the volume is theirs to write, as a real
            // host-path provisioner leaves it.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                .map_err(|e| format!("cannot open {} to every user: {e}", path.display()))?;
        }
        let pv: PersistentVolume = from_json(json!({
            "metadata": {
                "name": volume,
                "annotations": {PROVISIONED_BY: PROVISIONER},
            },
            "spec": {
                "capacity": {"storage": request},
                "accessModes": spec.access_modes.clone().unwrap_or_default(),
                "persistentVolumeReclaimPolicy": class.reclaim_policy.clone().unwrap_or_else(|| "Delete".into()),
                "storageClassName": class_name,
                "volumeMode": "Filesystem",
                "mountOptions": class.mount_options.clone().unwrap_or_default(),
                "hostPath": {"path": path.display().to_string(), "type": "Directory"},
                "claimRef": {
                    "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "namespace": namespace, "name": name, "uid": uid,
                },
                "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": [self.node]},
                ]}]}},
            },
        }))?;
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        match api.create(&PostParams::default(), &pv).await {
            Ok(created) => {
                lock(&self.volumes).insert(volume.clone(), created);
                let message = format!("Successfully provisioned volume {volume}");
                self.event(claim_event(claim), "Normal", "ProvisioningSucceeded", &message).await;
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(format!("cannot create PersistentVolume {volume}: {e}")),
        }
    }

    /// Removes a released volume's directory, then the volume.
    async fn delete(&self, volume: &PersistentVolume) -> Result<(), String> {
        self.remove_directory(volume)?;
        let api: Api<PersistentVolume> = Api::all(self.client.clone());
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: volume.uid(),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&volume.name_any(), &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(format!("cannot delete PersistentVolume {}: {e}", volume.name_any())),
        }
    }

    /// Removes the directory of one of its volumes: only one it made (under its own
    /// directory), and never through a mount.
    fn remove_directory(&self, volume: &PersistentVolume) -> Result<(), String> {
        let path = volume
            .spec
            .as_ref()
            .and_then(|s| s.host_path.as_ref())
            .map(|h| PathBuf::from(&h.path))
            .unwrap_or_default();
        if !inside(&self.dir, &path) {
            return Err(format!(
                "kept {}: it is not a directory this provisioner made (those are in {})",
                path.display(),
                self.dir.display()
            ));
        }
        bind_mounts::remove_dir(&path).map_err(|e| e.to_string())
    }

    /// Reports a failure as an event on its object, once per distinct failure.
    async fn failed(&self, key: &str, on: EventTarget, reason: &str, why: String) {
        let new = lock(&self.reported).insert(key.to_owned(), why.clone()).as_ref() != Some(&why);
        if new {
            self.event(on, "Warning", reason, &why).await;
        }
    }

    async fn event(&self, on: EventTarget, kind: &str, reason: &str, message: &str) {
        let namespace = on.namespace.clone().unwrap_or_else(|| "default".into());
        let now = util::now_rfc3339();
        let event: Result<Event, String> = from_json(json!({
            "metadata": {"name": format!("{}.{}", on.name, util::random_suffix(16)), "namespace": namespace},
            "involvedObject": {
                "apiVersion": "v1", "kind": on.kind, "name": on.name, "namespace": on.namespace, "uid": on.uid,
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": PROVISIONER},
            "reportingComponent": PROVISIONER,
            "reportingInstance": PROVISIONER_USER,
        }));
        if let Ok(event) = event {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let _ = api.create(&PostParams::default(), &event).await;
        }
    }
}

/// What an event is about.
struct EventTarget {
    kind: &'static str,
    namespace: Option<String>,
    name: String,
    uid: String,
}

fn claim_event(claim: &PersistentVolumeClaim) -> EventTarget {
    EventTarget {
        kind: "PersistentVolumeClaim",
        namespace: claim.namespace(),
        name: claim.name_any(),
        uid: claim.uid().unwrap_or_default(),
    }
}

fn volume_event(volume: &PersistentVolume) -> EventTarget {
    EventTarget {
        kind: "PersistentVolume",
        namespace: None,
        name: volume.name_any(),
        uid: volume.uid().unwrap_or_default(),
    }
}

/// The volume a claim gets: `pvc-<uid>`, as external provisioners name them (one per claim,
/// whoever asks twice).
fn volume_name(claim: &PersistentVolumeClaim) -> String {
    format!("pvc-{}", claim.uid().unwrap_or_default())
}

fn ours(volume: &PersistentVolume) -> bool {
    volume.annotations().get(PROVISIONED_BY).map(String::as_str) == Some(PROVISIONER)
}

fn reclaim_policy(volume: &PersistentVolume) -> &str {
    volume
        .spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Delete")
}

/// One of its volumes whose claim is gone (the binder marked it `Released`) and whose policy
/// is `Delete`.
fn released_to_delete(volume: &PersistentVolume) -> bool {
    ours(volume)
        && reclaim_policy(volume) == "Delete"
        && volume.metadata.deletion_timestamp.is_none()
        && volume.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Released")
}

/// Whether `path` is strictly inside `dir` (both resolved; a path that does not exist is
/// judged as written).
fn inside(dir: &Path, path: &Path) -> bool {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    path != dir && path.starts_with(dir) && !path.components().any(|c| c == std::path::Component::ParentDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_only_what_is_inside_its_own_directory() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(scratch.path()).unwrap().join("volumes");
        std::fs::create_dir_all(dir.join("pvc-1_ns_data")).unwrap();
        assert!(inside(&dir, &dir.join("pvc-1_ns_data")));
        assert!(inside(&dir, &dir.join("gone-already")));
        assert!(!inside(&dir, &dir), "not the directory itself");
        assert!(!inside(&dir, Path::new("/etc")));
        assert!(!inside(&dir, &dir.join("../elsewhere")));
        std::os::unix::fs::symlink("/etc", dir.join("link")).unwrap();
        assert!(!inside(&dir, &dir.join("link")), "a link out is judged by where it leads");
    }
}
