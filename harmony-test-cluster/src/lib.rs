//! The real Kubernetes control plane for tests, and our kubelet as its node.
//!
//! [`ControlPlane::start`] runs etcd, kube-apiserver, kube-controller-manager and
//! kube-scheduler (built from Go modules by `scripts/install-control-plane`) on loopback, with
//! their own CA, RBAC and bearer-token users, and starts the kubelet ([`kubelet`]): it registers
//! a Node, and runs the pods the scheduler binds to it for real or plays them as [`Workloads`]
//! says. A default StorageClass ([`STORAGE_CLASS`]) and its provisioner ([`volumes`]) give
//! claims volumes: directories in the control plane's own ([`ControlPlane::volumes_dir`]),
//! which the kubelet mounts into the containers it runs. Everything else — server-side apply,
//! managed fields, validation, watches, readiness of Deployments and StatefulSets, binding
//! claims to volumes, garbage collection — is Kubernetes itself.
//!
//! A test takes a [`TestCluster`]: by default a handle on the one control plane its test binary
//! shares (started on first use, gone with the process), with namespaces of its own
//! ([`TestCluster::ns`]) and a [`proxy`] in front of the API server that records its requests
//! and injects the faults it asks for. [`TestCluster::dedicated`] starts a control plane of its
//! own, for tests that deploy into fixed namespaces or act on the whole cluster.

mod argocd;
mod bind_mounts;
mod control_plane;
mod error;
mod faults;
mod kubelet;
mod pki;
mod process;
pub mod proxy;
mod util;
mod volumes;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

pub use argocd::ArgoCd;
pub use control_plane::{BIN_VAR, ControlPlane, etcd_version, kubeconfig, kubernetes_version};
pub use error::StartError;
pub use faults::Fault;
pub use pki::User;
pub use proxy::{FaultProxy, Request};
pub use volumes::{PROVISIONER, STORAGE_CLASS};

/// How the kubelet treats the pods of a namespace whose images it does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workloads {
    /// Played: each container is Running and Ready `after` its pod was bound (a pod that runs to
    /// completion, `restartPolicy` `Never` or `OnFailure`, exits 0 instead).
    Ready { after: Duration },
    /// Played: the containers are never created; pods stay Pending (`ContainerCreating`).
    NeverReady,
    /// Played: each container writes `log`, exits with `exit_code` and is restarted with a
    /// growing back-off (`CrashLoopBackOff`).
    CrashLoop { exit_code: i32, log: Vec<String> },
    /// Played: pulling each image fails (`ErrImagePull`, then `ImagePullBackOff`).
    ImagePullBackOff,
    /// The kubelet runs each pod for real: it pulls the images from an OCI registry on loopback
    /// (plain HTTP), unpacks them into a root per container, and runs the entrypoint there
    /// (chroot) in the pod's own network namespace at `status.podIP`, which the other pods
    /// reach. There is no DNS add-on: the root's `/etc/hosts` names the StatefulSet pods of its
    /// namespace as a cluster's DNS does (`<pod>.<service>.<namespace>.svc.cluster.local`),
    /// kept current as they come and go. A process that keeps running for
    /// [`Options::ready_after`] makes its container ready; one that exits is restarted with
    /// its real exit code and log. A claim's volume, or a `hostPath`, is a directory of the
    /// host mounted into the root while the process runs (`mount --bind`).
    /// Needs root, `ip`, `tar`, `mknod`, `setpriv`, `unshare`, `mount` and `umount`; without
    /// them the pods say why.
    Run,
}

/// How to start a control plane.
#[derive(Debug, Clone)]
pub struct Options {
    /// The name the kubelet registers its Node under.
    pub node: String,
    /// How pods are treated where no namespace says otherwise. Default: played, ready after
    /// [`Options::ready_after`].
    pub workloads: Workloads,
    /// How long a container that runs for real must keep running to be ready, and how long a
    /// played one takes under the default. Default 200 ms.
    pub ready_after: Duration,
    /// Images the kubelet holds from the start: `(REFERENCE, PROGRAM)` (see
    /// [`TestCluster::hold_image`]).
    pub images: Vec<(String, PathBuf)>,
    /// Latency the proxy adds to every request. Default none.
    pub latency: Duration,
    /// The directory that holds etcd, kube-apiserver, kube-controller-manager and
    /// kube-scheduler. Default: `HARMONY_CONTROL_PLANE_BIN`, else what
    /// `scripts/install-control-plane` built under `target/tools/`.
    pub programs: Option<PathBuf>,
    /// The helm the simulated Argo CD ([`TestCluster::play_argocd`]) syncs charts with.
    /// Default: `HARMONY_HELM` if set, else `helm` on `PATH`.
    pub helm: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        let ready_after = Duration::from_millis(200);
        Options {
            node: "harmony-node".into(),
            workloads: Workloads::Ready { after: ready_after },
            ready_after,
            images: Vec::new(),
            latency: Duration::ZERO,
            programs: None,
            helm: None,
        }
    }
}

/// Locks a mutex, ignoring poisoning (a panicking test must not wedge the cluster).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The control plane this process's tests share.
fn shared() -> Result<Arc<ControlPlane>, StartError> {
    static SHARED: OnceLock<Result<Arc<ControlPlane>, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| ControlPlane::start(Options::default()).map(Arc::new).map_err(|e| e.to_string()))
        .clone()
        .map_err(StartError::Node)
}

/// A test's view of a control plane: namespaces of its own, and a proxy in front of the API
/// server that records its requests and injects its faults. Dropping it deletes its
/// namespaces (and stops a dedicated control plane).
#[derive(Debug)]
pub struct TestCluster {
    plane: Arc<ControlPlane>,
    proxy: FaultProxy,
    /// Unique among the handles of one control plane: the suffix of its namespaces.
    id: String,
    dedicated: bool,
    /// The namespace of its kubeconfig's context, made at start.
    namespace: String,
    namespaces: Mutex<Vec<String>>,
    mode: Mutex<Workloads>,
}

impl TestCluster {
    /// A handle on the control plane this test binary shares (started on first use).
    pub fn start() -> Result<TestCluster, StartError> {
        TestCluster::start_with(Options::default())
    }

    /// A handle on the shared control plane; `options.ready_after` (played pods) and
    /// `options.latency` apply to this handle's namespaces and proxy only.
    pub fn start_with(options: Options) -> Result<TestCluster, StartError> {
        let mode = Workloads::Ready {
            after: options.ready_after,
        };
        TestCluster::on(shared()?, false, mode, options.latency)
    }

    /// A control plane of its own (with `options`), stopped when the handle is dropped.
    pub fn dedicated(options: Options) -> Result<TestCluster, StartError> {
        let (mode, latency) = (options.workloads.clone(), options.latency);
        TestCluster::on(Arc::new(ControlPlane::start(options)?), true, mode, latency)
    }

    fn on(plane: Arc<ControlPlane>, dedicated: bool, mode: Workloads, latency: Duration) -> Result<TestCluster, StartError> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        let id = format!("t{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let proxy = plane.proxy(latency).map_err(StartError::Node)?;
        let namespace = if dedicated { "default".to_owned() } else { format!("test-{id}") };
        let cluster = TestCluster {
            plane,
            proxy,
            id,
            dedicated,
            namespace: namespace.clone(),
            namespaces: Mutex::new(Vec::new()),
            mode: Mutex::new(mode.clone()),
        };
        if dedicated {
            cluster.plane.kubelet().set_mode(&[], mode);
        } else {
            cluster.register(&namespace);
            cluster.create_namespace(&namespace).map_err(StartError::Node)?;
        }
        Ok(cluster)
    }

    fn register(&self, namespace: &str) {
        lock(&self.namespaces).push(namespace.to_owned());
        let mode = lock(&self.mode).clone();
        self.plane.kubelet().set_mode(&[namespace.to_owned()], mode);
    }

    fn create_namespace(&self, name: &str) -> Result<(), String> {
        let client = self.plane.client();
        let name = name.to_owned();
        self.plane.block_on(async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
            let ns = serde_json::from_value(json!({"metadata": {"name": name}})).map_err(|e| e.to_string())?;
            match api.create(&Default::default(), &ns).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(format!("cannot create namespace {name}: {e}")),
            }
        })
    }

    /// A namespace name of this test's own (`shop` → `shop-t3`), so tests that share a control
    /// plane never meet; its pods are treated as this handle says ([`TestCluster::set_workloads`]).
    /// It is not created: what the test deploys creates it, or not. On a dedicated control plane
    /// the name is `base` itself.
    pub fn ns(&self, base: &str) -> String {
        let name = if self.dedicated {
            base.to_owned()
        } else {
            format!("{base}-{}", self.id)
        };
        self.register(&name);
        name
    }

    /// The namespace of this handle's kubeconfig context (where an ApplySet's parent goes when
    /// nothing says otherwise): made at start, `default` on a dedicated control plane.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The control plane behind the handle.
    pub fn plane(&self) -> &ControlPlane {
        &self.plane
    }

    /// `https://127.0.0.1:PORT`: this handle's proxy.
    pub fn url(&self) -> String {
        self.proxy.url()
    }

    /// The administrator's kubeconfig, through this handle's proxy, its context in
    /// [`TestCluster::namespace`].
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.url(), self.plane.ca_pem(), &self.plane.pki().users.admin, &self.namespace)
    }

    /// Writes [`TestCluster::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// The administrator's kubeconfig straight to the API server: nothing of ours between the
    /// client and Kubernetes (what kubectl judges with).
    pub fn direct_kubeconfig(&self) -> String {
        kubeconfig(
            &self.plane.url(),
            self.plane.ca_pem(),
            &self.plane.pki().users.admin,
            &self.namespace,
        )
    }

    /// The kubeconfig of `harmony-restricted`, a user with no rights until a test grants some,
    /// through this handle's proxy.
    pub fn restricted_kubeconfig(&self) -> String {
        kubeconfig(
            &self.url(),
            self.plane.ca_pem(),
            &self.plane.pki().users.restricted,
            &self.namespace,
        )
    }

    /// An administrator's client, straight to the API server (for a test's own reads and
    /// writes; they are not among [`TestCluster::requests`]).
    pub fn client(&self) -> kube::Client {
        self.plane.client()
    }

    /// Runs a future on the control plane's runtime and waits for it, from any thread.
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.plane.block_on(future)
    }

    fn api(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Option<kube::Api<DynamicObject>> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (String::new(), api_version.to_owned()),
        };
        let gvk = kube::api::GroupVersionKind::gvk(&group, &version, kind);
        let client = self.client();
        let namespace = namespace.map(str::to_owned);
        self.plane.block_on(async move {
            let (resource, _): (ApiResource, _) = kube::discovery::pinned_kind(&client, &gvk).await.ok()?;
            Some(match namespace {
                Some(ns) => kube::Api::namespaced_with(client, &ns, &resource),
                None => kube::Api::all_with(client, &resource),
            })
        })
    }

    /// Reads an object from the API server (for assertions); None if it (or its kind) does not
    /// exist.
    pub fn object(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let api = self.api(api_version, kind, namespace)?;
        let name = name.to_owned();
        self.plane
            .block_on(async move { api.get_opt(&name).await.ok().flatten() })
            .and_then(|o| serde_json::to_value(o).ok())
    }

    /// Every object of a kind in every namespace, in the server's order.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let Some(api) = self.api(api_version, kind, None) else {
            return Vec::new();
        };
        self.plane
            .block_on(async move { api.list(&Default::default()).await.map(|l| l.items).unwrap_or_default() })
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()
    }

    /// Writes an object's `.status` as its controller would (the status subresource).
    pub fn set_status(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str, status: Value) {
        let Some(api) = self.api(api_version, kind, namespace) else {
            return;
        };
        let name = name.to_owned();
        self.plane.block_on(async move {
            let patch = Patch::Merge(json!({"status": status}));
            let _ = api.patch_status(&name, &PatchParams::default(), &patch).await;
        });
    }

    /// Sets how the kubelet treats the pods of this handle's namespaces (all namespaces, on a
    /// dedicated control plane), from now on: pods already there start over the new way.
    pub fn set_workloads(&self, behaviour: Workloads) {
        *lock(&self.mode) = behaviour.clone();
        if self.dedicated {
            self.plane.kubelet().set_mode(&[], behaviour);
        } else {
            let namespaces = lock(&self.namespaces).clone();
            self.plane.kubelet().set_mode(&namespaces, behaviour);
        }
    }

    /// Gives the kubelet the image `reference` (`nats:2.10-alpine` and
    /// `docker.io/library/nats:2.10-alpine` are one): the static `program` is its whole content
    /// and its entrypoint. It is never pulled, and a pod whose images are all held runs for real
    /// (needs root, as [`Workloads::Run`] does), on every namespace of the node.
    pub fn hold_image(&self, reference: &str, program: impl Into<PathBuf>) {
        self.plane.kubelet().hold(reference, program.into());
    }

    /// Installs a simulated Argo CD on the control plane (once: the namespace `argocd`, the
    /// Application CRD, Established when this returns) and sets how its controller treats every
    /// Application from now on (see [`ArgoCd`]). Charts are pulled and rendered by the helm
    /// of [`Options::helm`].
    pub fn play_argocd(&self, mode: ArgoCd) {
        self.plane.play_argocd(mode).expect("Argo CD installs");
    }

    /// Puts `backend` behind `port` of the pods the kubelet plays in `namespace`: a port-forward
    /// to one of them (through the API server, as kube's client and kubectl make one) reaches
    /// `backend`, as if the pod ran that server. For a smoke test against a server the Score's
    /// own image cannot be made into (one without JetStream, say).
    pub fn serve_port(&self, namespace: &str, port: u16, backend: std::net::SocketAddr) {
        self.plane.kubelet().serve_port(namespace, port, backend);
    }

    /// Restarts kube-apiserver, as an upgrade or a crash would: killed at once, started again
    /// on the same port; returns once it is ready. Only on a [`TestCluster::dedicated`] plane
    /// (on a shared one it would fail the other tests' requests).
    pub fn restart_apiserver(&self) -> Result<(), StartError> {
        assert!(self.dedicated, "restart_apiserver is for a dedicated control plane");
        self.plane.restart_apiserver()
    }

    /// Injects a fault into this handle's proxy.
    pub fn inject(&self, fault: Fault) {
        self.proxy.inject(fault);
    }

    /// Removes every fault injected so far.
    pub fn clear_faults(&self) {
        self.proxy.clear_faults();
    }

    /// Every request this handle's proxy passed on (or answered itself), in order.
    pub fn requests(&self) -> Vec<Request> {
        self.proxy.requests()
    }

    pub fn clear_requests(&self) {
        self.proxy.clear_requests();
    }

    /// Ends every watch open through this handle's proxy with `410 Gone`: watchers must list
    /// again.
    pub fn expire_watches(&self) {
        self.proxy.inject(Fault::ExpireWatches);
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.dedicated {
            return;
        }
        // The namespace controller removes what they hold, and the kubelet stops their pods.
        let namespaces = std::mem::take(&mut *lock(&self.namespaces));
        let client = self.plane.client();
        self.plane.handle().spawn(async move {
            let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
            for ns in namespaces {
                let _ = api.delete(&ns, &Default::default()).await;
            }
        });
    }
}
