//! The real Kubernetes control plane, started the way envtest starts it, but complete: etcd,
//! kube-apiserver (its own CA and serving certificate, RBAC, bearer-token users, service
//! accounts), kube-controller-manager (every default controller, each under its own service
//! account) and kube-scheduler, on loopback ports, with their data and logs in a directory of
//! their own. Our kubelet ([`crate::kubelet`]) is the node, and a default StorageClass with its
//! provisioner ([`crate::volumes`]) gives claims their volumes, in that directory too.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::StartError;
use crate::kubelet::Kubelet;
use crate::pki::{Pki, User};
use crate::process::Process;
use crate::{Options, Workloads, lock};

/// The versions `scripts/install-control-plane` builds, from the module that pins them.
const GO_MOD: &str = include_str!("../../tools/control-plane/go.mod");

fn required_version(module: &str) -> &'static str {
    GO_MOD
        .lines()
        .map(str::trim)
        .find_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some(module)).then(|| words.next()).flatten()
        })
        .unwrap_or("unknown")
}

/// The Kubernetes version of the control plane (`v1.33.13`).
pub fn kubernetes_version() -> &'static str {
    required_version("k8s.io/kubernetes")
}

/// The etcd version of the control plane (`v3.5.21`).
pub fn etcd_version() -> &'static str {
    required_version("go.etcd.io/etcd/server/v3")
}

/// Where the four programs are.
#[derive(Debug, Clone)]
struct Programs {
    etcd: PathBuf,
    apiserver: PathBuf,
    controller_manager: PathBuf,
    scheduler: PathBuf,
}

/// The variable that names a directory holding all four programs instead.
pub const BIN_VAR: &str = "HARMONY_CONTROL_PLANE_BIN";

impl Programs {
    fn find(dir: Option<&Path>) -> Result<Programs, StartError> {
        let named = dir
            .map(|d| d.as_os_str().to_owned())
            .or_else(|| std::env::var_os(BIN_VAR).filter(|v| !v.is_empty()));
        let (k8s, etcd) = match named {
            Some(dir) => (PathBuf::from(&dir), PathBuf::from(dir)),
            None => {
                let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools");
                (
                    tools.join("kubernetes").join(kubernetes_version()),
                    tools.join("etcd").join(etcd_version()),
                )
            }
        };
        let programs = Programs {
            etcd: etcd.join("etcd"),
            apiserver: k8s.join("kube-apiserver"),
            controller_manager: k8s.join("kube-controller-manager"),
            scheduler: k8s.join("kube-scheduler"),
        };
        for path in [
            &programs.etcd,
            &programs.apiserver,
            &programs.controller_manager,
            &programs.scheduler,
        ] {
            if !path.is_file() {
                return Err(StartError::NotBuilt {
                    path: path.clone(),
                    version: kubernetes_version().to_owned(),
                });
            }
        }
        Ok(programs)
    }
}

/// A free port on 127.0.0.1 (free when asked: a process that takes it first makes the start
/// retry with others).
fn free_port() -> Result<u16, StartError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| StartError::io("find a free port on 127.0.0.1", e))
}

/// The directory of one control plane: `harmony-control-plane-<pid>-<n>` in the temporary
/// directory. Those of processes that died (a killed test run) are removed first.
fn state_dir() -> Result<PathBuf, StartError> {
    let temp = std::env::temp_dir();
    for entry in std::fs::read_dir(&temp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("harmony-control-plane-")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        // A killed process left its pods' volumes mounted in their roots: undone first, and a
        // directory that keeps one is kept.
        if !crate::process::alive(pid) {
            let _ = crate::bind_mounts::remove_dir(&entry.path());
        }
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("harmony-control-plane-{}-", std::process::id()))
        .tempdir_in(&temp)
        .map_err(|e| StartError::io(format!("create a directory in {}", temp.display()), e))?;
    Ok(dir.keep())
}

/// A kubeconfig for `user` at `server`: cluster, context and user named `harmony-test-cluster`,
/// TLS verified against the cluster's CA.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &User, namespace: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\n\
         kind: Config\n\
         clusters:\n\
         - name: harmony-test-cluster\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
         contexts:\n\
         - name: harmony-test-cluster\n  context:\n    cluster: harmony-test-cluster\n    user: {name}\n    namespace: {namespace}\n\
         current-context: harmony-test-cluster\n\
         users:\n\
         - name: {name}\n  user:\n    token: {token}\n\
         preferences: {{}}\n",
        name = user.name,
        token = user.token,
    )
}

/// A kube client for `user`, TLS verified against the cluster's CA.
pub async fn client(server: &str, ca_pem: &str, user: &User, namespace: &str) -> Result<kube::Client, String> {
    let config = kube::config::Kubeconfig::from_yaml(&kubeconfig(server, ca_pem, user, namespace)).map_err(|e| e.to_string())?;
    let mut config = kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    // What a test or the kubelet sees is what the server answered: no retries behind its back.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| e.to_string())
}

/// A running control plane and its node. Dropping it stops every process it started (the
/// node's pods first) and removes its directory.
#[derive(Debug)]
pub struct ControlPlane {
    dir: PathBuf,
    pki: Pki,
    server: SocketAddr,
    etcd: SocketAddr,
    processes: Mutex<Vec<Process>>,
    apiserver_args: Vec<String>,
    programs: Programs,
    runtime: Option<tokio::runtime::Runtime>,
    kubelet: Arc<Kubelet>,
    provisioner: Mutex<Option<crate::volumes::Provisioner>>,
    pub(crate) options: Options,
    argocd: Mutex<Option<crate::argocd::Controller>>,
}

/// How long each component may take to be ready.
const READY_TIMEOUT: Duration = Duration::from_secs(90);

impl ControlPlane {
    /// Starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the kubelet,
    /// and returns once the node is Ready and the controllers run. A port another process took
    /// in the meantime makes it try again with others.
    pub fn start(options: Options) -> Result<ControlPlane, StartError> {
        let programs = Programs::find(options.programs.as_deref())?;
        let mut last = None;
        for _ in 0..3 {
            match ControlPlane::try_start(&programs, &options) {
                Err(StartError::Exited { log_tail, .. }) if log_tail.contains("address already in use") => {
                    last = Some(log_tail);
                }
                other => return other,
            }
        }
        Err(StartError::Node(format!(
            "every try found a port taken: {}",
            last.unwrap_or_default()
        )))
    }

    fn try_start(programs: &Programs, options: &Options) -> Result<ControlPlane, StartError> {
        let dir = state_dir()?;
        let node = options.node.clone();
        let pki = Pki::generate(&node)?;
        pki.write(&dir)?;
        std::fs::write(dir.join("owner"), std::process::id().to_string()).map_err(|e| StartError::io("write the owner file", e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("harmony-test-cluster")
            .enable_all()
            .build()
            .map_err(|e| StartError::io("start the control plane's runtime", e))?;

        let etcd = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let peer = free_port()?;
        let etcd_args = vec![
            "--name=harmony".to_owned(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls=http://{etcd}"),
            format!("--advertise-client-urls=http://{etcd}"),
            format!("--listen-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"),
            format!("--initial-cluster=harmony=http://127.0.0.1:{peer}"),
            "--unsafe-no-fsync".to_owned(),
            "--log-level=warn".to_owned(),
        ];
        let mut processes = Vec::new();
        let mut etcd_process = Process::start("etcd", &programs.etcd, &etcd_args, &dir.join("etcd.log"))?;
        wait_until(&mut etcd_process, || etcd_healthy(etcd))?;
        processes.push(etcd_process);

        let server = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let file = |name: &str| dir.join(name).display().to_string();
        let apiserver_args = vec![
            "--advertise-address=127.0.0.1".to_owned(),
            "--bind-address=127.0.0.1".to_owned(),
            format!("--secure-port={}", server.port()),
            format!("--cert-dir={}", file("apiserver-certs")),
            format!("--tls-cert-file={}", file("serving.crt")),
            format!("--tls-private-key-file={}", file("serving.key")),
            format!("--client-ca-file={}", file("ca.crt")),
            format!("--etcd-servers=http://{etcd}"),
            "--service-cluster-ip-range=10.96.0.0/16".to_owned(),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".to_owned(),
            format!("--service-account-key-file={}", file("service-account.pub")),
            format!("--service-account-signing-key-file={}", file("service-account.key")),
            "--authorization-mode=Node,RBAC".to_owned(),
            format!("--token-auth-file={}", file("tokens.csv")),
            "--allow-privileged=true".to_owned(),
            "--kubelet-preferred-address-types=InternalIP".to_owned(),
            "--profiling=false".to_owned(),
        ];
        let mut apiserver = Process::start(
            "kube-apiserver",
            &programs.apiserver,
            &apiserver_args,
            &dir.join("kube-apiserver.log"),
        )?;
        let url = format!("https://{server}");
        let on = runtime.handle();
        let (ca, admin_user) = (pki.ca_cert.clone(), pki.users.admin.clone());
        let admin = run_on(on, {
            let url = url.clone();
            async move { client(&url, &ca, &admin_user, "default").await }
        })
        .map_err(StartError::Node)?;
        wait_until(&mut apiserver, || run_on(on, readyz(admin.clone())))?;
        processes.push(apiserver);

        for (name, user) in [
            ("controller-manager", &pki.users.controller_manager),
            ("scheduler", &pki.users.scheduler),
        ] {
            crate::util::write_private(
                &dir.join(format!("{name}.kubeconfig")),
                kubeconfig(&url, &pki.ca_cert, user, "default").as_bytes(),
            )?;
        }
        let controller_manager_args = vec![
            format!("--kubeconfig={}", file("controller-manager.kubeconfig")),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
            format!("--service-account-private-key-file={}", file("service-account.key")),
            format!("--root-ca-file={}", file("ca.crt")),
            "--use-service-account-credentials=true".to_owned(),
            // The defaults (20 requests a second, 5 workers a controller) are a large cluster's
            // manners towards a shared API server; this one is the tests' own, and a workload of
            // thousands of pods would wait on them, not on the client under test.
            "--kube-api-qps=1000".to_owned(),
            "--kube-api-burst=2000".to_owned(),
            "--concurrent-deployment-syncs=20".to_owned(),
            "--concurrent-replicaset-syncs=20".to_owned(),
            "--concurrent-statefulset-syncs=20".to_owned(),
        ];
        processes.push(Process::start(
            "kube-controller-manager",
            &programs.controller_manager,
            &controller_manager_args,
            &dir.join("kube-controller-manager.log"),
        )?);
        let scheduler_args = vec![
            format!("--kubeconfig={}", file("scheduler.kubeconfig")),
            "--leader-elect=false".to_owned(),
            "--secure-port=0".to_owned(),
            "--kube-api-qps=1000".to_owned(),
            "--kube-api-burst=2000".to_owned(),
        ];
        processes.push(Process::start(
            "kube-scheduler",
            &programs.scheduler,
            &scheduler_args,
            &dir.join("kube-scheduler.log"),
        )?);

        let kubelet = run_on(on, {
            let (url, pki, dir, options) = (url.clone(), pki.clone(), dir.clone(), options.clone());
            async move {
                let client = client(&url, &pki.ca_cert, &pki.users.kubelet, "default").await?;
                Kubelet::start(client, &pki, &dir, options, kubernetes_version()).await
            }
        })
        .map_err(StartError::Node)?;
        let provisioner = run_on(on, {
            let (url, pki, volumes, node) = (url.clone(), pki.clone(), dir.join("volumes"), node.clone());
            let admin = admin.clone();
            async move {
                let client = client(&url, &pki.ca_cert, &pki.users.provisioner, "default").await?;
                crate::volumes::install(admin, client, volumes, node).await
            }
        })
        .map_err(StartError::Node)?;

        let plane = ControlPlane {
            dir,
            pki,
            server,
            etcd,
            processes: Mutex::new(processes),
            apiserver_args,
            programs: programs.clone(),
            runtime: Some(runtime),
            kubelet,
            provisioner: Mutex::new(Some(provisioner)),
            options: options.clone(),
            argocd: Mutex::new(None),
        };
        plane.wait_for_controllers(&admin)?;
        Ok(plane)
    }

    /// The controller manager runs once it made the `default` namespace's service account; the
    /// node is Ready once the kubelet's first status is in.
    fn wait_for_controllers(&self, admin: &kube::Client) -> Result<(), StartError> {
        use k8s_openapi::api::core::v1::{Node, ServiceAccount};
        let started = Instant::now();
        let accounts: kube::Api<ServiceAccount> = kube::Api::namespaced(admin.clone(), "default");
        let nodes: kube::Api<Node> = kube::Api::all(admin.clone());
        loop {
            let (accounts, nodes, name) = (accounts.clone(), nodes.clone(), self.options.node.clone());
            let account = self.block_on(async move { accounts.get_opt("default").await.ok().flatten() });
            let node = self.block_on(async move { nodes.get_opt(&name).await.ok().flatten() });
            let ready = node
                .and_then(|n| n.status)
                .and_then(|s| s.conditions)
                .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if account.is_some() && ready {
                return Ok(());
            }
            if let Some(failure) = lock(&self.processes).iter_mut().find_map(Process::failure) {
                return Err(failure);
            }
            if started.elapsed() > READY_TIMEOUT {
                let (component, why) = if account.is_none() {
                    (
                        "kube-controller-manager",
                        "it made no service account `default` in namespace `default`",
                    )
                } else {
                    ("the kubelet", "its Node is not Ready")
                };
                let log = self.dir.join("kube-controller-manager.log");
                return Err(StartError::NotReady {
                    component,
                    waited: READY_TIMEOUT,
                    why: why.to_owned(),
                    log_tail: tail(&log, 20),
                    log,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs a future on the control plane's runtime and waits for it, from any thread (an
    /// async test's too).
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        run_on(&self.handle(), future)
    }

    pub(crate) fn handle(&self) -> tokio::runtime::Handle {
        self.runtime.as_ref().expect("running").handle().clone()
    }

    /// `https://127.0.0.1:PORT`: the API server itself.
    pub fn url(&self) -> String {
        format!("https://{}", self.server)
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// The cluster CA's certificate (PEM): what clients verify the API server with.
    pub fn ca_pem(&self) -> &str {
        &self.pki.ca_cert
    }

    pub(crate) fn pki(&self) -> &Pki {
        &self.pki
    }

    /// A kubeconfig of the administrator (group `system:masters`), straight to the API server.
    pub fn kubeconfig(&self) -> String {
        kubeconfig(&self.url(), &self.pki.ca_cert, &self.pki.users.admin, "default")
    }

    /// A kubeconfig of the user `harmony-restricted`, who may do nothing until granted.
    pub fn restricted_kubeconfig(&self) -> String {
        kubeconfig(&self.url(), &self.pki.ca_cert, &self.pki.users.restricted, "default")
    }

    /// The administrator's kubeconfig for another address of this cluster (a proxy in front of
    /// it), its context in `namespace`.
    pub fn kubeconfig_at(&self, server: &str, namespace: &str) -> String {
        kubeconfig(server, &self.pki.ca_cert, &self.pki.users.admin, namespace)
    }

    /// Starts a proxy in front of the API server that adds `latency` to every request (and
    /// injects the faults it is given).
    pub fn proxy(&self, latency: Duration) -> Result<crate::FaultProxy, String> {
        let (server, pki) = (self.server, self.pki.clone());
        self.block_on(async move { crate::FaultProxy::start(server, &pki, latency).await })
    }

    /// The name of the node (the kubelet's).
    pub fn node(&self) -> &str {
        &self.options.node
    }

    /// An administrator's client, straight to the API server.
    pub fn client(&self) -> kube::Client {
        let (url, ca, admin) = (self.url(), self.pki.ca_cert.clone(), self.pki.users.admin.clone());
        self.block_on(async move { client(&url, &ca, &admin, "default").await })
            .expect("a client of the running control plane")
    }

    pub(crate) fn kubelet(&self) -> &Arc<Kubelet> {
        &self.kubelet
    }

    /// How the kubelet treats the played pods of `namespace` from now on (the others keep
    /// [`Options::workloads`]).
    pub fn set_workloads_in(&self, namespace: &str, workloads: Workloads) {
        self.kubelet.set_mode(&[namespace.to_owned()], workloads);
    }

    /// Where the control plane keeps its data and logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the provisioner of the default StorageClass ([`crate::STORAGE_CLASS`]) makes the
    /// volumes' directories: `volumes/` in [`ControlPlane::dir`], one directory a volume,
    /// `pvc-<claim uid>_<namespace>_<claim>`.
    pub fn volumes_dir(&self) -> PathBuf {
        self.dir.join("volumes")
    }

    /// The components' logs: `kube-apiserver.log`, `etcd.log`, …
    pub fn log(&self, component: &str) -> PathBuf {
        self.dir.join(format!("{component}.log"))
    }

    /// Restarts kube-apiserver (as an upgrade or a crash would): it is killed at once and started
    /// again on the same port; returns once it is ready again.
    pub fn restart_apiserver(&self) -> Result<(), StartError> {
        let mut processes = lock(&self.processes);
        let Some(index) = processes.iter().position(|p| p.name == "kube-apiserver") else {
            return Err(StartError::Launcher);
        };
        processes[index].kill();
        let mut apiserver = Process::start(
            "kube-apiserver",
            &self.programs.apiserver,
            &self.apiserver_args,
            &self.dir.join("kube-apiserver.log"),
        )?;
        let admin = self.client();
        wait_until(&mut apiserver, || self.block_on(readyz(admin.clone())))?;
        processes[index] = apiserver;
        Ok(())
    }

    /// Installs a simulated Argo CD (once; see [`crate::ArgoCd`]) and sets how it treats
    /// Applications from now on.
    pub fn play_argocd(&self, mode: crate::ArgoCd) -> Result<(), String> {
        let mut argocd = lock(&self.argocd);
        match argocd.as_ref() {
            Some(controller) => controller.set_mode(mode),
            None => {
                let (client, delay) = (self.client(), self.options.ready_after);
                let helm = self.options.helm.clone().unwrap_or_else(|| {
                    std::env::var_os("HARMONY_HELM")
                        .filter(|h| !h.is_empty())
                        .map_or_else(|| PathBuf::from("helm"), PathBuf::from)
                });
                *argocd = Some(self.block_on(crate::argocd::install(client, mode, delay, helm))?);
            }
        }
        Ok(())
    }

    /// etcd's client address.
    pub fn etcd(&self) -> SocketAddr {
        self.etcd
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        drop(lock(&self.argocd).take());
        drop(lock(&self.provisioner).take());
        self.kubelet.shutdown();
        // The scheduler and controllers first, the store last.
        let mut processes = std::mem::take(&mut *lock(&self.processes));
        while let Some(mut process) = processes.pop() {
            process.stop(Duration::from_secs(5));
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        // The pods are stopped and their volumes unmounted; a directory that still holds a mount
        // is kept rather than removed through it.
        if let Err(e) = crate::bind_mounts::remove_dir(&self.dir) {
            eprintln!("harmony-test-cluster: {e}");
        }
    }
}

/// Runs a future on `runtime` and waits for it from this thread, which may be another runtime's
/// (an async test's): the future runs on the control plane's runtime, never on the caller's.
fn run_on<F>(runtime: &tokio::runtime::Handle, future: F) -> F::Output
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let task = runtime.spawn(future);
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(task.await);
    });
    match rx.recv() {
        Ok(Ok(output)) => output,
        // A panic in the future is the caller's.
        Ok(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        _ => panic!("the control plane's runtime stopped"),
    }
}

/// Polls `ready` until it holds, failing when the process exits or after [`READY_TIMEOUT`].
fn wait_until(process: &mut Process, mut ready: impl FnMut() -> bool) -> Result<(), StartError> {
    let started = Instant::now();
    loop {
        if ready() {
            return Ok(());
        }
        if let Some(failure) = process.failure() {
            return Err(failure);
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(StartError::NotReady {
                component: process.name,
                waited: READY_TIMEOUT,
                why: "it never answered its health check".into(),
                log: process.log.clone(),
                log_tail: process.log_tail(20),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// etcd's `/health` says `"health":"true"`.
fn etcd_healthy(addr: SocketAddr) -> bool {
    use std::io::{Read as _, Write as _};
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET /health HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("\"health\":\"true\"")
}

/// The API server's `/readyz` answers `ok`.
async fn readyz(client: kube::Client) -> bool {
    let request = http::Request::get("/readyz").body(Vec::new()).expect("a valid request");
    matches!(client.request_text(request).await, Ok(text) if text.trim() == "ok")
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
