//! An in-process Kubernetes API server for tests.
//!
//! [`TestCluster::start`] serves plain HTTP on 127.0.0.1 from a background thread with its own
//! tokio runtime, so sync tests, async tests on any runtime, kube-rs clients and a real kubectl
//! can all talk to it. It implements what a deploy tool relies on: discovery, CRUD with
//! optimistic concurrency, server-side apply with `managedFields` (conflicts, force, removal of
//! dropped fields), dry runs, label and field selectors, paginated lists, watches with bookmarks
//! and 410 expiry, CRDs, admission defaults, simulated controllers (workloads become ready, or
//! fail the way [`Workloads`] says, or a kubelet really runs their images: [`Workloads::Run`],
//! and the images it holds in every mode: [`TestCluster::hold_image`]),
//! pod logs and events, a service proxy, port-forwards to the pods it runs, fault injection, and an opt-in Argo CD
//! ([`TestCluster::play_argocd`]).

mod admission;
mod apply;
mod argocd;
mod controllers;
mod discovery;
mod faults;
mod fields;
mod kubelet;
mod ops;
mod patch;
mod portforward;
mod proxy;
mod resources;
mod selectors;
mod server;
mod status;
mod store;
mod util;
mod watch;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::Value;

pub use argocd::ArgoCd;
pub use faults::Fault;

use crate::resources::{TypeKey, split_api_version};
use crate::store::State;

/// How the simulated controllers treat Deployments, StatefulSets, DaemonSets, ReplicaSets,
/// Jobs, Pods and PersistentVolumeClaims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workloads {
    /// Everything becomes ready (Jobs complete, claims bind) `after` a spec change.
    Ready { after: Duration },
    /// Status is observed but nothing ever becomes ready; pods stay Pending.
    NeverReady,
    /// Pods run but their containers crash and back off; logs hold `log`.
    CrashLoop { exit_code: i32, log: Vec<String> },
    /// Pods stay Pending, their images failing to pull.
    ImagePullBackOff,
    /// Pods stay Pending, unschedulable for lack of CPU.
    Unschedulable,
    /// The kubelet really runs each pod (one per replica): it pulls the images from an OCI
    /// registry on loopback (plain HTTP), unpacks them into a root per container, and runs the
    /// entrypoint there (chroot) in the pod's own network namespace at `status.podIP`. A process
    /// that keeps running for [`Options::ready_after`] makes its pod Ready; one that exits crash
    /// loops with its real exit code and log; a failed pull is `ErrImagePull`/`ImagePullBackOff`;
    /// the service proxy reaches ready pods. Needs root, `ip`, `tar`, `mknod`, `setpriv` and
    /// `unshare`; without them pods stay Pending and say why. Processes are killed when their pod
    /// goes, and when the cluster is dropped.
    Run,
}

/// How to start a [`TestCluster`].
#[derive(Debug, Clone)]
pub struct Options {
    /// The port to listen on (0: any free port).
    pub port: u16,
    /// How long workloads take to become ready under the default [`Workloads::Ready`] (and how
    /// long the other modes take to show their state). Default 200 ms.
    pub ready_after: Duration,
    /// How long a new CRD takes to become Established. Default 50 ms.
    pub crd_established_after: Duration,
    /// Latency added to every request. Default none.
    pub latency: Duration,
    /// How many events the watch log keeps; a watch from an older resourceVersion gets 410 Gone.
    /// Default 10 000.
    pub event_window: usize,
    /// The helm binary the simulated Argo CD ([`TestCluster::play_argocd`]) syncs charts with.
    /// Default: `HARMONY_HELM` if set, else `helm` on `PATH`.
    pub helm: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            port: 0,
            ready_after: Duration::from_millis(200),
            crd_established_after: Duration::from_millis(50),
            latency: Duration::ZERO,
            event_window: 10_000,
            helm: None,
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The status code answered (0 when the connection was dropped or the request hung).
    pub code: u16,
}

/// What the server threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub faults: Mutex<faults::Faults>,
    pub requests: Mutex<Vec<Request>>,
    pub backends: Mutex<HashMap<(String, String, u16), SocketAddr>>,
    pub wake: Arc<tokio::sync::Notify>,
    pub latency: Duration,
    pub addr: SocketAddr,
    /// The helm binary Argo CD runs.
    pub helm: PathBuf,
}

/// Locks a mutex, ignoring poisoning (a panicking test must not wedge the server).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running test API server. Dropping it shuts the server down.
#[derive(Debug)]
pub struct TestCluster {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestCluster {
    /// Starts a server on 127.0.0.1 and a free port, playing a healthy cluster.
    pub fn start() -> std::io::Result<TestCluster> {
        TestCluster::start_with(Options::default())
    }

    /// Starts a server with these options.
    pub fn start_with(options: Options) -> std::io::Result<TestCluster> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", options.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let (notify, _) = tokio::sync::watch::channel(0u64);
        let mut state = State::new(
            Workloads::Ready {
                after: options.ready_after,
            },
            options.ready_after,
            options.crd_established_after,
            options.event_window,
            notify,
            wake.clone(),
        );
        server::seed(&mut state);
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            faults: Mutex::new(faults::Faults::default()),
            requests: Mutex::new(Vec::new()),
            backends: Mutex::new(HashMap::new()),
            wake,
            latency: options.latency,
            addr,
            helm: options
                .helm
                .or_else(|| std::env::var_os("HARMONY_HELM").filter(|h| !h.is_empty()).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("helm")),
        });
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("harmony-test-cluster-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                    server::serve(listener, serving, rx).await;
                });
            })?;
        Ok(TestCluster {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// A kubeconfig for this server: cluster, context and user all named
    /// `harmony-test-cluster`, the context current, namespace `default`.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: harmony-test-cluster\n  cluster:\n    server: {url}\n\
             contexts:\n\
             - name: harmony-test-cluster\n  context:\n    cluster: harmony-test-cluster\n    user: harmony-test-cluster\n    namespace: default\n\
             current-context: harmony-test-cluster\n\
             users:\n\
             - name: harmony-test-cluster\n  user: {{}}\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// Writes [`TestCluster::kubeconfig`] to `path`.
    pub fn write_kubeconfig(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig())
    }

    /// Reads an object straight from the store (for assertions).
    pub fn object(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let (group, _) = split_api_version(api_version);
        let state = lock(&self.shared.state);
        state
            .get(&TypeKey::new(group, kind), namespace.unwrap_or(""), name)
            .map(|v| (*v).clone())
    }

    /// Every stored object of a kind, in namespace/name order.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let (group, _) = split_api_version(api_version);
        let state = lock(&self.shared.state);
        state
            .range(&TypeKey::new(group, kind), None, None)
            .map(|(_, v)| (**v).clone())
            .collect()
    }

    /// Sets how the simulated controllers treat workloads from now on (existing ones are
    /// reconsidered after the mode's delay).
    pub fn set_workloads(&self, behaviour: Workloads) {
        let mut state = lock(&self.shared.state);
        controllers::set_workloads(&mut state, behaviour);
    }

    /// Installs a simulated Argo CD, as `kubectl apply` of its manifests would: the namespace
    /// `argocd` and the `applications.argoproj.io` CRD (group `argoproj.io`, version
    /// `v1alpha1`, kind `Application`, namespaced, Established when this returns), and an
    /// application controller that acts on every new generation of an Application after
    /// [`Options::ready_after`], the way `mode` says (see [`ArgoCd`]). Calling it again changes
    /// the mode; existing Applications are reconsidered. What a sync applies is server-side
    /// applied by the manager `argocd-controller` with the label
    /// `app.kubernetes.io/instance: <application>`, so the workload controllers act on it;
    /// deleting an Application leaves it (Argo CD's finalizers are removed, not played).
    /// Charts are pulled and rendered by the helm of [`Options::helm`].
    pub fn play_argocd(&self, mode: ArgoCd) {
        let mut state = lock(&self.shared.state);
        argocd::install(&mut state, mode, self.shared.helm.clone());
    }

    /// Plays a controller: replaces `.status` (bumping resourceVersion and emitting a
    /// MODIFIED event). Does nothing if the object does not exist.
    pub fn set_status(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str, status: Value) {
        let (group, _) = split_api_version(api_version);
        let key = TypeKey::new(group, kind);
        let ns = namespace.unwrap_or("");
        let mut state = lock(&self.shared.state);
        if let Some(old) = state.get(&key, ns, name) {
            let mut new = (*old).clone();
            new["status"] = status;
            state.commit(&key, ns, name, new);
        }
    }

    /// Injects a fault.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).inject(fault);
    }

    /// Removes every injected fault.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Gives the kubelet the image `reference` (`nats:2.10-alpine` and
    /// `docker.io/library/nats:2.10-alpine` are one): the static `program` is its whole content
    /// and its entrypoint. It is never pulled, and under [`Workloads::Ready`] a pod whose images
    /// are all held runs for real (needs root, as [`Workloads::Run`] does) while the others are
    /// played. Pods already there are reconsidered.
    pub fn hold_image(&self, reference: &str, program: impl Into<PathBuf>) {
        let mut state = lock(&self.shared.state);
        state.kubelet.hold(reference, program.into());
        let workloads = state.workloads.clone();
        controllers::set_workloads(&mut state, workloads);
    }

    /// Makes the service proxy forward `NAME:PORT` in `namespace` to `backend`.
    pub fn serve_service(&self, namespace: &str, service: &str, port: u16, backend: SocketAddr) {
        lock(&self.shared.backends).insert((namespace.to_string(), service.to_string(), port), backend);
    }

    /// Forgets the watch history and ends every open watch with a 410 Gone (as after an etcd
    /// compaction): watchers must relist.
    pub fn expire_watches(&self) {
        lock(&self.shared.state).expire_watches();
    }

    /// The current (last handed out) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.state).rv
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        lock(&self.shared.state).kubelet.shutdown();
    }
}
