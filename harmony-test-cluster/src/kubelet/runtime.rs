//! The kubelet's container runtime. It runs a pod's containers for real: pulls each image from
//! an OCI registry on loopback (plain HTTP, anonymous), unpacks its layers into a root of its
//! own, and runs the entrypoint there, chrooted, in the pod's own network namespace (a veth pair
//! per pod). Or it plays them, as [`Workloads`] says: no process, but the same life a real one
//! would have (created, running and ready after a delay, crash-looping with an exit code and a
//! log, failing to pull). Either way it records what happens in a [`PodRun`], which the kubelet
//! turns into the pod's status, and keeps each container's log in a file the kubelet serves.
//!
//! It also holds images it was given ([`Runtime::hold`]): a static program that is the image's
//! whole content and entrypoint. A held image is never pulled, and a pod whose images are all
//! held runs for real whatever the mode (`scripts/test-cluster` runs NATS so).

use std::collections::HashMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::hosts::{Hosts, HostsError};
use crate::Workloads;
use crate::bind_mounts::{self, MountError};
use crate::lock;
use crate::util;

/// The tools the kubelet runs, found on `PATH` once.
#[derive(Debug, Clone)]
struct Tools {
    ip: PathBuf,
    tar: PathBuf,
    mknod: PathBuf,
    setpriv: PathBuf,
    unshare: PathBuf,
    kill: PathBuf,
    mount: PathBuf,
    umount: PathBuf,
}

/// Why this machine cannot run images: not root, or a tool is missing.
fn tools() -> Result<Tools, String> {
    let uid = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .unwrap_or_else(|| "unknown".into());
    if uid != "0" {
        return Err(format!(
            "the test cluster cannot run images on this machine: it runs as uid {uid}, and a pod needs root \
             (network namespaces, veth pairs, mknod, chroot); help: run the tests as root, or use a Workloads mode that only plays the pods"
        ));
    }
    let find = |name: &str| -> Result<PathBuf, String> {
        std::env::var_os("PATH")
            .into_iter()
            .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
            .chain(["/usr/sbin".into(), "/usr/bin".into(), "/sbin".into(), "/bin".into()])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                format!(
                    "the test cluster cannot run images on this machine: `{name}` is not installed; \
                     help: install iproute2, tar, coreutils and util-linux"
                )
            })
    };
    Ok(Tools {
        ip: find("ip")?,
        tar: find("tar")?,
        mknod: find("mknod")?,
        setpriv: find("setpriv")?,
        unshare: find("unshare")?,
        kill: find("kill")?,
        mount: find("mount")?,
        umount: find("umount")?,
    })
}

/// Why a step of running a container failed; the message a pod status shows.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RunError {
    #[error("{0}")]
    Pull(String),
    #[error("`{tool}` failed ({status}): {stderr}")]
    Tool { tool: String, status: String, stderr: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no command specified: the image has no Entrypoint or Cmd and the container no command")]
    NoCommand,
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("cannot mount a volume at {path}: {why}")]
    MountPoint { path: String, why: String },
    #[error(transparent)]
    Hosts(#[from] HostsError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RunError {
    let what = what.into();
    move |source| RunError::Io { what, source }
}

/// Runs a tool with an argument vector; its stderr goes into the error.
fn run_tool(program: &Path, args: &[&str]) -> Result<(), RunError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("cannot start {}", program.display())))?;
    if out.status.success() {
        return Ok(());
    }
    Err(RunError::Tool {
        tool: format!("{} {}", program.display(), args.join(" ")),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    })
}

/// Where a container is in its life, as the kubelet knows it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phase {
    /// Pulling, unpacking or starting.
    Creating,
    /// The last pull failed (`backoff`: waiting to try again).
    PullFailed { message: String, backoff: bool },
    /// Creating the container failed (unpacking, tools).
    CreateFailed(String),
    /// Its process runs; ready once it kept running for `ready_after`.
    Running { started_at: String, ready: bool },
    /// Its process exited; restarted after `delay`.
    BackOff { delay: Duration },
    /// Its process exited and the restart policy keeps it down.
    Terminated,
}

/// How a container's process last ended.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Exit {
    pub code: i32,
    pub started_at: String,
    pub finished_at: String,
}

/// What the kubelet reports about one container.
#[derive(Debug, Clone)]
pub(crate) struct ContainerRun {
    pub name: String,
    pub phase: Phase,
    pub restarts: u32,
    pub last_exit: Option<Exit>,
    pub image_id: String,
    /// The log of the current (or last) run, and of the one before.
    pub log: Option<PathBuf>,
    pub previous_log: Option<PathBuf>,
}

/// What the kubelet reports about one pod.
#[derive(Debug, Clone, Default)]
pub(crate) struct PodRun {
    pub ip: Option<String>,
    pub containers: Vec<ContainerRun>,
}

/// What a container needs to run, resolved from the pod and the store.
#[derive(Debug, Clone)]
pub(crate) struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub command: Option<Vec<String>>,
    pub args: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub env: Vec<(String, String)>,
    /// The pod's volumes this container mounts, resolved from the store.
    pub mounts: Vec<Mount>,
}

/// A volume as the container sees it: written into its root at `path` before it starts, or a
/// directory of the host mounted there while it runs.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mount {
    pub path: String,
    /// Files relative to `path` (a ConfigMap's or Secret's keys); none for an `emptyDir`.
    pub files: Vec<(String, Vec<u8>)>,
    /// A directory (or file) of the host that appears at `path`: a `hostPath` volume, or the
    /// PersistentVolume a claim is bound to. None for the volumes written into the root, and
    /// for every volume of a played pod (nothing runs to see it).
    pub host: Option<HostDir>,
}

/// A directory (or file) of the host, bind-mounted into a container's root for each run of its
/// process and unmounted when the process ends: what the process writes there outlives the
/// root.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostDir {
    pub source: PathBuf,
    pub read_only: bool,
}

/// A pod the kubelet runs.
#[derive(Debug)]
struct PodHandle {
    uid: String,
    how: How,
    run: Arc<Mutex<PodRun>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PodHandle {
    fn stop(&mut self) -> Option<JoinHandle<()>> {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take()
    }
}

/// How the runtime treats one pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum How {
    /// Its containers run for real (needs root).
    Run,
    /// Its containers are played as the mode says.
    Play(Workloads),
}

/// The pods this node runs or plays, and where their roots and logs live.
#[derive(Debug)]
pub(crate) struct Runtime {
    dir: PathBuf,
    pods: HashMap<(String, String), PodHandle>,
    /// Threads of stopped pods, still cleaning up.
    retired: Vec<JoinHandle<()>>,
    /// Pods whose run changed since the kubelet last looked.
    changed: Arc<Mutex<Vec<(String, String)>>>,
    wake: Arc<tokio::sync::Notify>,
    /// Images it holds, by normalized reference: the program each one is.
    held: Arc<Mutex<HashMap<String, PathBuf>>>,
    /// Cleared once the network namespaces dead processes left behind were removed.
    stale_checked: bool,
    /// How long a container that runs for real must keep running to be ready.
    ready_after: Duration,
    /// The `/etc/hosts` of the containers that run, which name their namespace's pods.
    hosts: Arc<Hosts>,
}

impl Runtime {
    /// A runtime that keeps its pods' roots and logs under `dir`, and their `/etc/hosts` with
    /// `hosts`.
    pub fn new(dir: PathBuf, wake: Arc<tokio::sync::Notify>, ready_after: Duration, hosts: Arc<Hosts>) -> Runtime {
        Runtime {
            dir,
            pods: HashMap::new(),
            retired: Vec::new(),
            changed: Arc::new(Mutex::new(Vec::new())),
            wake,
            held: Arc::new(Mutex::new(HashMap::new())),
            stale_checked: false,
            ready_after,
            hosts,
        }
    }

    /// Holds the image `reference`: a static `program`, its whole content and entrypoint.
    pub fn hold(&self, reference: &str, program: PathBuf) {
        lock(&self.held).insert(normalize(reference), program);
    }

    /// Whether every one of these images is held (and there is at least one).
    pub fn holds_all<'a>(&self, images: impl IntoIterator<Item = &'a str>) -> bool {
        let held = lock(&self.held);
        let mut any = false;
        for image in images {
            if !held.contains_key(&normalize(image)) {
                return false;
            }
            any = true;
        }
        any
    }

    /// The pods whose run changed since the last call.
    pub fn take_changed(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *lock(&self.changed))
    }

    /// What the runtime knows about a pod: its uid, how it is treated, and its run.
    pub fn status(&self, namespace: &str, pod: &str) -> Option<(String, How, PodRun)> {
        let handle = self.pods.get(&(namespace.to_string(), pod.to_string()))?;
        Some((handle.uid.clone(), handle.how.clone(), lock(&handle.run).clone()))
    }

    /// The pods it has, with their uids.
    pub fn pods(&self) -> Vec<(String, String, String)> {
        self.pods
            .iter()
            .map(|((ns, name), h)| (ns.clone(), name.clone(), h.uid.clone()))
            .collect()
    }

    /// Starts a pod (once per uid); a pod of the same name but another uid is stopped first.
    /// Err: why this machine cannot run it.
    pub fn start(
        &mut self,
        namespace: &str,
        pod: &str,
        uid: &str,
        containers: Vec<ContainerSpec>,
        restart_policy: &str,
        how: How,
    ) -> Result<(), String> {
        let key = (namespace.to_string(), pod.to_string());
        if self.pods.get(&key).is_some_and(|h| h.uid == uid && h.how == how) {
            return Ok(());
        }
        self.stop(namespace, pod);
        let tools = match how {
            How::Run => {
                let tools = tools()?;
                if !self.stale_checked {
                    remove_stale_namespaces(&tools);
                    self.stale_checked = true;
                }
                Some(tools)
            }
            How::Play(_) => None,
        };
        let pod_dir = self.dir.join(format!("{namespace}_{pod}_{}", util::random_suffix(5)));
        let run = Arc::new(Mutex::new(PodRun {
            ip: None,
            containers: containers
                .iter()
                .map(|c| ContainerRun {
                    name: c.name.clone(),
                    phase: Phase::Creating,
                    restarts: 0,
                    last_exit: None,
                    image_id: String::new(),
                    log: None,
                    previous_log: None,
                })
                .collect(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let ctx = PodCtx {
            key: key.clone(),
            dir: pod_dir,
            tools,
            run: run.clone(),
            stop: stop.clone(),
            changed: self.changed.clone(),
            wake: self.wake.clone(),
            ready_after: self.ready_after,
            restart_policy: restart_policy.to_string(),
            hostname: pod.to_string(),
            held: self.held.clone(),
            hosts: self.hosts.clone(),
        };
        let played = how.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kubelet-{pod}"))
            .spawn(move || match played {
                How::Run => run_pod(ctx, containers),
                How::Play(mode) => play_pod(ctx, containers, mode),
            })
            .map_err(|e| format!("cannot start the kubelet's thread: {e}"))?;
        self.pods.insert(
            key,
            PodHandle {
                uid: uid.to_string(),
                how,
                run,
                stop,
                thread: Some(thread),
            },
        );
        Ok(())
    }

    /// Stops a pod: its processes are killed, its network and root removed.
    pub fn stop(&mut self, namespace: &str, pod: &str) {
        if let Some(mut handle) = self.pods.remove(&(namespace.to_string(), pod.to_string())) {
            self.retired.extend(handle.stop());
        }
        self.retired.retain(|t| !t.is_finished());
    }

    /// Stops every pod and waits (up to 20 s) until their processes are gone.
    pub fn shutdown(&mut self) {
        let keys: Vec<(String, String)> = self.pods.keys().cloned().collect();
        for (ns, pod) in keys {
            self.stop(&ns, &pod);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for thread in std::mem::take(&mut self.retired) {
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }

    /// The log file of a container's current (or, `previous`, last but one) run.
    pub fn log_file(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<PathBuf> {
        let handle = self.pods.get(&(namespace.to_string(), pod.to_string()))?;
        let run = lock(&handle.run);
        let c = run.containers.iter().find(|c| c.name == container)?;
        if previous { c.previous_log.clone() } else { c.log.clone() }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// What a pod's threads share.
#[derive(Debug, Clone)]
struct PodCtx {
    key: (String, String),
    dir: PathBuf,
    /// The tools a real run uses; none when the pod is played.
    tools: Option<Tools>,
    run: Arc<Mutex<PodRun>>,
    stop: Arc<AtomicBool>,
    changed: Arc<Mutex<Vec<(String, String)>>>,
    wake: Arc<tokio::sync::Notify>,
    ready_after: Duration,
    restart_policy: String,
    hostname: String,
    held: Arc<Mutex<HashMap<String, PathBuf>>>,
    hosts: Arc<Hosts>,
}

impl PodCtx {
    /// The tools of a pod that runs for real (only those are given a network and processes).
    fn tools(&self) -> &Tools {
        self.tools.as_ref().expect("a pod that runs for real has its tools")
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Tells the controllers the pod's run changed.
    fn changed(&self) {
        lock(&self.changed).push(self.key.clone());
        self.wake.notify_one();
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut ContainerRun)) {
        if let Some(c) = lock(&self.run).containers.get_mut(index) {
            f(c);
        }
        self.changed();
    }

    /// Sleeps `d`, waking early when the pod is stopped; false when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.stopped() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
        !self.stopped()
    }
}

/// The pod's network: a namespace and a veth pair.
#[derive(Debug)]
struct Network {
    netns: String,
    host_link: String,
    pod_ip: String,
}

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

/// Creates the pod's network namespace with `eth0` at 10.254.N.(4k+2)/30 and the host side at
/// .(4k+1), loopback up. Several test processes may share the machine: a taken name is skipped.
/// The host forwards what arrives on the host side (and only there: the machine's own
/// interfaces are left as they are), so pods reach each other as on a cluster's network.
fn create_network(tools: &Tools) -> Result<Network, RunError> {
    let pid = std::process::id();
    let mut last = None;
    for _ in 0..16 {
        let n = (pid.wrapping_mul(131).wrapping_add(NEXT_NET.fetch_add(1, Ordering::Relaxed))) % 16_000;
        let netns = format!("htc-{pid}-{n}");
        let host_link = format!("htc{n}h");
        let (third, base) = (n / 64, (n % 64) * 4);
        let host_ip = format!("10.254.{third}.{}", base + 1);
        let pod_ip = format!("10.254.{third}.{}", base + 2);
        if let Err(e) = run_tool(&tools.ip, &["netns", "add", &netns]) {
            last = Some(e);
            continue;
        }
        let network = Network { netns, host_link, pod_ip };
        let (netns, host_link) = (network.netns.as_str(), network.host_link.as_str());
        let (host_cidr, pod_cidr) = (format!("{host_ip}/30"), format!("{}/30", network.pod_ip));
        let steps: [&[&str]; 7] = [
            &["link", "add", host_link, "type", "veth", "peer", "name", "eth0", "netns", netns],
            &["addr", "add", &host_cidr, "dev", host_link],
            &["link", "set", host_link, "up"],
            &["-n", netns, "addr", "add", &pod_cidr, "dev", "eth0"],
            &["-n", netns, "link", "set", "eth0", "up"],
            &["-n", netns, "link", "set", "lo", "up"],
            &["-n", netns, "route", "add", "default", "via", &host_ip],
        ];
        let forwarding = PathBuf::from(format!("/proc/sys/net/ipv4/conf/{host_link}/forwarding"));
        let made = steps.iter().try_for_each(|args| run_tool(&tools.ip, args)).and_then(|()| {
            fs::write(&forwarding, "1").map_err(io(format!(
                "cannot let the host forward the pod's packets, {} (the test cluster needs a writable /proc/sys)",
                forwarding.display()
            )))
        });
        match made {
            Ok(()) => return Ok(network),
            Err(e) => {
                remove_network(tools, &network);
                last = Some(e);
            }
        }
    }
    Err(last.unwrap_or(RunError::NoCommand))
}

fn remove_network(tools: &Tools, network: &Network) {
    let _ = run_tool(&tools.ip, &["netns", "del", &network.netns]);
    let _ = run_tool(&tools.ip, &["link", "del", &network.host_link]);
}

/// Removes network namespaces a test process that died left behind (`htc-PID-N`, PID gone).
fn remove_stale_namespaces(tools: &Tools) {
    for entry in fs::read_dir("/run/netns").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("htc-").and_then(|r| r.split('-').next()) else {
            continue;
        };
        if !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !Path::new("/proc").join(pid).exists() {
            let _ = run_tool(&tools.ip, &["netns", "del", &name]);
        }
    }
}

/// A pod's life: its network, then one thread per container; cleans up when they end.
fn run_pod(ctx: PodCtx, containers: Vec<ContainerSpec>) {
    let network = match create_network(ctx.tools()) {
        Ok(n) => n,
        Err(e) => {
            for i in 0..containers.len() {
                ctx.update(i, |c| {
                    c.phase = Phase::CreateFailed(format!("cannot create the pod's network: {e}"))
                });
            }
            return;
        }
    };
    lock(&ctx.run).ip = Some(network.pod_ip.clone());
    ctx.changed();
    let threads: Vec<_> = containers
        .into_iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let ctx = ctx.clone();
            let netns = network.netns.clone();
            let pod_ip = network.pod_ip.clone();
            std::thread::Builder::new()
                .name(format!("kubelet-{}", spec.name))
                .spawn(move || run_container(&ctx, i, &spec, &netns, &pod_ip))
                .ok()
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    ctx.hosts.forget(&ctx.dir);
    remove_network(ctx.tools(), &network);
    remove_pod_dir(&ctx.dir);
}

/// Removes a stopped pod's directory (its containers' roots and logs), never through a volume
/// still mounted in a root: such a directory is kept, and said so on stderr (nothing else is
/// left to tell: the pod is gone).
fn remove_pod_dir(dir: &Path) {
    if let Err(e) = bind_mounts::remove_dir(dir) {
        eprintln!("harmony-test-cluster: the kubelet {e}");
    }
}

static NEXT_PLAYED_IP: AtomicU32 = AtomicU32::new(0);

/// A played pod's life: an address that nothing answers at, and each container as `mode` says.
fn play_pod(ctx: PodCtx, containers: Vec<ContainerSpec>, mode: Workloads) {
    let n = NEXT_PLAYED_IP.fetch_add(1, Ordering::Relaxed) % 60_000;
    lock(&ctx.run).ip = Some(format!("10.253.{}.{}", n / 250, n % 250 + 2));
    ctx.changed();
    let threads: Vec<_> = containers
        .into_iter()
        .enumerate()
        .filter_map(|(i, spec)| {
            let (ctx, mode) = (ctx.clone(), mode.clone());
            std::thread::Builder::new()
                .name(format!("kubelet-{}", spec.name))
                .spawn(move || play_container(&ctx, i, &spec, &mode))
                .ok()
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    remove_pod_dir(&ctx.dir);
}

/// One played container: the states a real one would go through, with the log it would write.
fn play_container(ctx: &PodCtx, index: usize, spec: &ContainerSpec, mode: &Workloads) {
    let dir = ctx.dir.join(&spec.name);
    if let Err(e) = fs::create_dir_all(&dir) {
        ctx.update(index, |c| {
            c.phase = Phase::CreateFailed(format!("cannot create {}: {e}", dir.display()))
        });
        return;
    }
    let image_id = format!("sha256:{}", sha256(spec.image.as_bytes()));
    let mut delay = Duration::from_millis(200);
    let mut runs = 0u32;
    loop {
        match mode {
            Workloads::Ready { after } => {
                if !ctx.sleep(*after) {
                    return;
                }
                let log = dir.join("1.log");
                let _ = fs::File::create(&log);
                let started_at = util::now_rfc3339();
                let batch = ctx.restart_policy != "Always" && !ctx.restart_policy.is_empty();
                ctx.update(index, |c| {
                    c.image_id = image_id.clone();
                    c.log = Some(log.clone());
                    if batch {
                        // A pod that runs to completion: its work is done.
                        c.last_exit = Some(Exit {
                            code: 0,
                            started_at: started_at.clone(),
                            finished_at: util::now_rfc3339(),
                        });
                        c.phase = Phase::Terminated;
                    } else {
                        c.phase = Phase::Running { started_at, ready: true };
                    }
                });
                return;
            }
            Workloads::NeverReady | Workloads::Run => return,
            Workloads::ImagePullBackOff => {
                let message = format!(
                    "rpc error: code = NotFound desc = failed to pull and unpack image \"{}\": not found",
                    spec.image
                );
                ctx.update(index, |c| {
                    c.phase = Phase::PullFailed {
                        message: message.clone(),
                        backoff: false,
                    }
                });
                if !ctx.sleep(Duration::from_millis(500)) {
                    return;
                }
                ctx.update(index, |c| c.phase = Phase::PullFailed { message, backoff: true });
                if !ctx.sleep(delay) {
                    return;
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
            Workloads::CrashLoop { exit_code, log } => {
                runs += 1;
                let path = dir.join(format!("{runs}.log"));
                let mut text = log.join("\n");
                if !text.is_empty() {
                    text.push('\n');
                }
                let _ = fs::write(&path, text);
                let started_at = util::now_rfc3339();
                ctx.update(index, |c| {
                    c.image_id = image_id.clone();
                    c.previous_log = c.log.replace(path.clone());
                    c.phase = Phase::Running {
                        started_at: started_at.clone(),
                        ready: false,
                    };
                });
                if !ctx.sleep(Duration::from_millis(100)) {
                    return;
                }
                let restart = match ctx.restart_policy.as_str() {
                    "Never" => false,
                    "OnFailure" => *exit_code != 0,
                    _ => true,
                };
                ctx.update(index, |c| {
                    c.last_exit = Some(Exit {
                        code: *exit_code,
                        started_at,
                        finished_at: util::now_rfc3339(),
                    });
                    if restart {
                        c.restarts += 1;
                        c.phase = Phase::BackOff { delay };
                    } else {
                        c.phase = Phase::Terminated;
                    }
                });
                if !restart || !ctx.sleep(delay) {
                    return;
                }
                delay = (delay * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// An image's config, as far as running it goes.
#[derive(Debug, Default)]
struct ImageConfig {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
    working_dir: String,
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

/// One container: pull (retrying with back-off), unpack, furnish, then run and restart its
/// process per the restart policy.
fn run_container(ctx: &PodCtx, index: usize, spec: &ContainerSpec, netns: &str, pod_ip: &str) {
    let dir = ctx.dir.join(&spec.name);
    let root = dir.join("rootfs");
    let mut pull_delay = Duration::from_secs(1);
    let (image_id, config) = loop {
        if ctx.stopped() {
            return;
        }
        match pull_and_unpack(ctx, spec, &dir, &root) {
            Ok(done) => break done,
            Err(RunError::Pull(message)) => {
                ctx.update(index, |c| {
                    c.phase = Phase::PullFailed {
                        message: message.clone(),
                        backoff: false,
                    }
                });
                if !ctx.sleep(Duration::from_millis(500)) {
                    return;
                }
                ctx.update(index, |c| c.phase = Phase::PullFailed { message, backoff: true });
                if !ctx.sleep(pull_delay) {
                    return;
                }
                pull_delay = (pull_delay * 2).min(Duration::from_secs(10));
            }
            Err(e) => {
                ctx.update(index, |c| c.phase = Phase::CreateFailed(e.to_string()));
                return;
            }
        }
    };
    let argv = match (&spec.command, &spec.args) {
        (Some(command), args) => command.iter().chain(args.iter().flatten()).cloned().collect(),
        (None, Some(args)) => config.entrypoint.iter().chain(args).cloned().collect(),
        (None, None) => config.entrypoint.iter().chain(&config.cmd).cloned().collect::<Vec<_>>(),
    };
    if argv.is_empty() {
        ctx.update(index, |c| c.phase = Phase::CreateFailed(RunError::NoCommand.to_string()));
        return;
    }
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: &str| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v.to_string()));
    };
    set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    set("HOSTNAME", &ctx.hostname);
    for (k, v) in config.env.iter().chain(&spec.env) {
        set(k, v);
    }
    let argv: Vec<String> = argv.iter().map(|a| expand(a, &env)).collect();
    let working_dir = spec
        .working_dir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| config.working_dir.clone());
    let working_dir = if working_dir.is_empty() { "/".to_string() } else { working_dir };
    if let Err(e) = furnish(ctx, &root, pod_ip).and_then(|()| mount(&root, &spec.mounts)) {
        ctx.update(index, |c| c.phase = Phase::CreateFailed(e.to_string()));
        return;
    }
    ctx.update(index, |c| c.image_id = image_id.clone());
    let mut delay = Duration::from_millis(200);
    let mut runs = 0u32;
    loop {
        if ctx.stopped() {
            return;
        }
        // The host's directories are in the root while its process runs, and only then.
        if let Err(e) = bind_volumes(ctx.tools(), &root, &spec.mounts) {
            ctx.update(index, |c| c.phase = Phase::CreateFailed(e.to_string()));
            return;
        }
        runs += 1;
        let log_path = dir.join(format!("{runs}.log"));
        let started_at = util::now_rfc3339();
        let child = fs::File::create(&log_path)
            .and_then(|out| Ok((out.try_clone()?, out)))
            .and_then(|(out, err)| {
                Command::new(&ctx.tools().ip)
                    .args(["netns", "exec", netns])
                    .arg(&ctx.tools().setpriv)
                    .args(["--pdeathsig", "KILL"])
                    .arg(&ctx.tools().unshare)
                    .arg(format!("--root={}", root.display()))
                    .arg(format!("--wd={working_dir}"))
                    .arg("--")
                    .args(&argv)
                    .env_clear()
                    .envs(env.iter().map(|(k, v)| (k, v)))
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .process_group(0)
                    .spawn()
            });
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = unbind_volumes(ctx.tools(), &root);
                ctx.update(index, |c| c.phase = Phase::CreateFailed(format!("cannot start the container: {e}")));
                return;
            }
        };
        ctx.update(index, |c| {
            c.previous_log = c.log.replace(log_path.clone());
            c.phase = Phase::Running {
                started_at: started_at.clone(),
                ready: false,
            };
        });
        let status = supervise(ctx, index, &mut child);
        // Its process group is gone: the volumes leave the root before anything else is done
        // to it (a restart, or the pod's removal).
        if let Err(e) = unbind_volumes(ctx.tools(), &root) {
            ctx.update(index, |c| c.phase = Phase::CreateFailed(e.to_string()));
            return;
        }
        let Some(status) = status else {
            return;
        };
        let code = exit_code(status);
        let restart = match ctx.restart_policy.as_str() {
            "Never" => false,
            "OnFailure" => code != 0,
            _ => true,
        };
        ctx.update(index, |c| {
            c.last_exit = Some(Exit {
                code,
                started_at,
                finished_at: util::now_rfc3339(),
            });
            if restart {
                c.restarts += 1;
                c.phase = Phase::BackOff { delay };
            } else {
                c.phase = Phase::Terminated;
            }
        });
        if !restart || !ctx.sleep(delay) {
            return;
        }
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

/// Waits for the process (marking it ready after `ready_after`); kills its process group when
/// it exits or the pod is stopped. None when stopped.
fn supervise(ctx: &PodCtx, index: usize, child: &mut Child) -> Option<ExitStatus> {
    let started = Instant::now();
    let mut ready = false;
    let kill_group = |child: &Child| {
        let _ = Command::new(&ctx.tools().kill)
            .args(["-s", "KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
    };
    loop {
        if ctx.stopped() {
            kill_group(child);
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                kill_group(child);
                return Some(status);
            }
            Ok(None) => {}
            Err(_) => {
                kill_group(child);
                return child.wait().ok();
            }
        }
        if !ready && started.elapsed() >= ctx.ready_after {
            ready = true;
            ctx.update(index, |c| {
                if let Phase::Running { ready, .. } = &mut c.phase {
                    *ready = true;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The exit code a runtime reports: the code, or 128 + the signal.
fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Expands `$(NAME)` in a command or argument as Kubernetes does (`$$(` escapes).
fn expand(s: &str, env: &[(String, String)]) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("$(") {
            out.push_str("$(");
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')'))
            && let Some((_, value)) = env.iter().find(|(k, _)| k == name)
        {
            out.push_str(value);
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// Gives the root what a runtime gives a container: device nodes, `/tmp`, `/etc/hostname`, and
/// `/etc/hosts`, which also names the pods of its namespace and is kept so ([`Hosts`]).
fn furnish(ctx: &PodCtx, root: &Path, pod_ip: &str) -> Result<(), RunError> {
    use std::os::unix::fs::PermissionsExt;
    for d in ["dev", "tmp", "etc", "proc"] {
        fs::create_dir_all(root.join(d)).map_err(io(format!("cannot create /{d} in {}", root.display())))?;
    }
    for (name, minor) in [("null", "3"), ("zero", "5"), ("full", "7"), ("random", "8"), ("urandom", "9")] {
        let path = root.join("dev").join(name);
        let _ = fs::remove_file(&path);
        let path = path.to_string_lossy().into_owned();
        run_tool(&ctx.tools().mknod, &["-m", "666", &path, "c", "1", minor])?;
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))
        .map_err(io(format!("cannot make {}/tmp world-writable", root.display())))?;
    let hostname = &ctx.hostname;
    let own = format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{pod_ip}\t{hostname}\n");
    ctx.hosts.furnish(&ctx.key.0, root, own)?;
    fs::write(root.join("etc/hostname"), format!("{hostname}\n")).map_err(io("cannot write /etc/hostname"))?;
    Ok(())
}

/// Writes the container's volumes into its root: a ConfigMap's or Secret's keys as files
/// (mode 0644), an `emptyDir` as an empty directory. The host's directories are mounted for
/// each run instead ([`bind_volumes`]).
fn mount(root: &Path, mounts: &[Mount]) -> Result<(), RunError> {
    for m in mounts.iter().filter(|m| m.host.is_none()) {
        let dir = root.join(m.path.trim_start_matches('/'));
        fs::create_dir_all(&dir).map_err(io(format!("cannot create the mount point {}", m.path)))?;
        for (name, content) in &m.files {
            let file = dir.join(name.trim_start_matches('/'));
            if let Some(parent) = file.parent() {
                fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
            }
            fs::write(&file, content).map_err(io(format!("cannot write {}/{name}", m.path)))?;
        }
    }
    Ok(())
}

/// Mounts the container's host directories into its root (`mount --bind`), the shallower first
/// so that one inside another lands on top. Whatever was mounted is unmounted if one fails.
fn bind_volumes(tools: &Tools, root: &Path, mounts: &[Mount]) -> Result<(), RunError> {
    let mut hosts: Vec<(&Mount, &HostDir)> = mounts.iter().filter_map(|m| m.host.as_ref().map(|h| (m, h))).collect();
    hosts.sort_by_key(|(m, _)| m.path.split('/').filter(|p| !p.is_empty()).count());
    for (m, host) in hosts {
        let bound = mount_point(root, &m.path, !host.source.is_dir()).and_then(|target| {
            Ok(bind_mounts::bind(
                &tools.mount,
                &tools.umount,
                &host.source,
                &target,
                host.read_only,
            )?)
        });
        if let Err(e) = bound {
            let _ = unbind_volumes(tools, root);
            return Err(e);
        }
    }
    Ok(())
}

/// Unmounts everything mounted in the root (its process has ended).
fn unbind_volumes(tools: &Tools, root: &Path) -> Result<(), RunError> {
    Ok(bind_mounts::unmount_under(&tools.umount, root)?)
}

/// Where a volume is mounted in a container's root: `path` under `root`, the directories on the
/// way made, and the last one a file if the volume is one. Never through a symbolic link: an
/// image's link (`/data -> /var/lib`) would lead the mount out of the root, onto the host's own
/// directories.
fn mount_point(root: &Path, path: &str, file: bool) -> Result<PathBuf, RunError> {
    let refuse = |why: &str| RunError::MountPoint {
        path: path.to_owned(),
        why: why.to_owned(),
    };
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    if parts.is_empty() {
        return Err(refuse("it is the container's root"));
    }
    let mut at = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        if *part == ".." {
            return Err(refuse("a mount path has no `..`"));
        }
        at.push(part);
        // Every step is a directory, but the last one when the volume is a file.
        let a_file = file && i + 1 == parts.len();
        match fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(&format!(
                    "/{} is a symbolic link in the image, and a mount through it could leave the container's root",
                    parts[..=i].join("/")
                )));
            }
            Ok(meta) if a_file && !meta.is_file() => return Err(refuse("the volume is a file, and the image has a directory there")),
            Ok(meta) if !a_file && !meta.is_dir() => {
                return Err(refuse(&format!(
                    "/{} is a file in the image, not a directory",
                    parts[..=i].join("/")
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let made = if a_file {
                    fs::File::create(&at).map(drop)
                } else {
                    fs::create_dir(&at)
                };
                made.map_err(io(format!("cannot create the mount point {}", at.display())))?;
            }
            Err(e) => return Err(io(format!("cannot read {}", at.display()))(e)),
        }
    }
    Ok(at)
}

/// A held image's root: its program alone, at `/<file name>`, which is also its entrypoint.
fn unpack_held(program: &Path, root: &Path) -> Result<(String, ImageConfig), RunError> {
    use std::os::unix::fs::PermissionsExt;
    let name = program
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "program".into());
    bind_mounts::remove_dir(root)?;
    fs::create_dir_all(root).map_err(io(format!("cannot create {}", root.display())))?;
    let bytes = fs::read(program).map_err(|e| RunError::Pull(format!("the held image's program {}: {e}", program.display())))?;
    let target = root.join(&name);
    fs::write(&target, &bytes).map_err(io(format!("cannot write {}", target.display())))?;
    fs::set_permissions(&target, fs::Permissions::from_mode(0o755)).map_err(io(format!("cannot make {} executable", target.display())))?;
    let config = ImageConfig {
        entrypoint: vec![format!("/{name}")],
        ..ImageConfig::default()
    };
    Ok((sha256(&bytes), config))
}

/// Pulls the image (or takes the held one) and unpacks it into a fresh `root`; the image ID
/// and its config.
fn pull_and_unpack(ctx: &PodCtx, spec: &ContainerSpec, dir: &Path, root: &Path) -> Result<(String, ImageConfig), RunError> {
    let held = lock(&ctx.held).get(&normalize(&spec.image)).cloned();
    if let Some(program) = held {
        return unpack_held(&program, root);
    }
    let reference = ImageRef::parse(&spec.image).map_err(RunError::Pull)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(io("cannot start the pull's runtime"))?;
    let layers_dir = dir.join("layers");
    bind_mounts::remove_dir(root)?;
    fs::create_dir_all(root).map_err(io(format!("cannot create {}", root.display())))?;
    fs::create_dir_all(&layers_dir).map_err(io(format!("cannot create {}", layers_dir.display())))?;
    let pulled = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(120), pull(ctx, &reference, &layers_dir)).await })
        .map_err(|_| RunError::Pull(reference.failure("timed out after 120 s")))??;
    for (path, gzip) in &pulled.layers {
        let layer = path.to_string_lossy().into_owned();
        let target = root.to_string_lossy().into_owned();
        let flags = if *gzip { "-xzf" } else { "-xf" };
        run_tool(&ctx.tools().tar, &[flags, &layer, "-C", &target])?;
    }
    let _ = fs::remove_dir_all(&layers_dir);
    Ok((pulled.image_id, pulled.config))
}

/// An image reference as a runtime reads it: `nats:2.10` is `docker.io/library/nats:2.10`,
/// and a reference without a tag or digest means `:latest`.
fn normalize(image: &str) -> String {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let (host, path) = match name.split_once('/') {
        Some((h, p)) if h.contains('.') || h.contains(':') || h == "localhost" => (h, p.to_string()),
        _ => ("docker.io", name.to_string()),
    };
    let path = if host == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    let tagged = path.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/'));
    match (digest, tagged) {
        (Some(d), _) => format!("{host}/{path}@{d}"),
        (None, true) => format!("{host}/{path}"),
        (None, false) => format!("{host}/{path}:latest"),
    }
}

/// An image reference on a registry: `HOST[:PORT]/REPO[:TAG][@sha256:…]`.
#[derive(Debug, Clone, PartialEq)]
struct ImageRef {
    image: String,
    host: String,
    repository: String,
    tag: String,
    digest: Option<String>,
}

impl ImageRef {
    fn parse(image: &str) -> Result<ImageRef, String> {
        let (name, digest) = match image.split_once('@') {
            Some((n, d)) => (n, Some(d.to_string())),
            None => (image, None),
        };
        let (host, path) = match name.split_once('/') {
            Some((h, p)) if h.contains('.') || h.contains(':') || h == "localhost" => (h.to_string(), p),
            _ => ("docker.io".to_string(), name),
        };
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
            _ => (path.to_string(), "latest".to_string()),
        };
        let hostname = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
        if !matches!(hostname, "127.0.0.1" | "localhost" | "[::1]") {
            return Err(format!(
                "rpc error: code = Unknown desc = failed to pull image \"{image}\": the test cluster pulls only from \
                 registries on loopback over plain HTTP (like 127.0.0.1:5000/team/app:1.0), not from {host}; \
                 help: push the image to a local registry and reference it there"
            ));
        }
        Ok(ImageRef {
            image: image.to_string(),
            host,
            repository,
            tag,
            digest,
        })
    }

    /// The manifest reference to ask for: the digest when there is one, else the tag.
    fn reference(&self) -> &str {
        self.digest.as_deref().unwrap_or(&self.tag)
    }

    /// The message of a failed pull, shaped like containerd's.
    fn failure(&self, why: &str) -> String {
        format!(
            "rpc error: code = Unknown desc = failed to pull and unpack image \"{}\": {why}",
            self.image
        )
    }
}

/// What a pull leaves: layer files (and whether gzip), the config, the image ID.
#[derive(Debug)]
struct Pulled {
    layers: Vec<(PathBuf, bool)>,
    config: ImageConfig,
    image_id: String,
}

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

fn sha256(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// GETs a path of the registry; the status, content type and body.
async fn get(host: &str, path: &str, accept: &str) -> Result<(u16, String, Bytes), String> {
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| format!("cannot connect to {host}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = http::Request::get(path)
        .header(http::header::HOST, host)
        .header(http::header::ACCEPT, accept)
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, content_type, body))
}

/// The registry's own words for an error answer (`errors[].code: message`).
fn registry_reason(code: u16, body: &[u8]) -> String {
    let reasons: Vec<String> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.get("code").and_then(Value::as_str).unwrap_or_default(),
                e.get("message").and_then(Value::as_str).unwrap_or_default()
            )
        })
        .collect();
    if reasons.is_empty() {
        format!("HTTP {code}: {}", String::from_utf8_lossy(body).trim())
    } else {
        format!("HTTP {code} {}", reasons.join("; "))
    }
}

async fn pull(ctx: &PodCtx, image: &ImageRef, layers_dir: &Path) -> Result<Pulled, RunError> {
    let fail = |why: String| RunError::Pull(image.failure(&why));
    let manifest_url = |reference: &str| format!("/v2/{}/manifests/{reference}", image.repository);
    let (code, content_type, body) = get(&image.host, &manifest_url(image.reference()), MANIFEST_TYPES)
        .await
        .map_err(|e| fail(format!("failed to resolve reference \"{}\": {e}", image.image)))?;
    if code == 404 {
        return Err(fail(format!(
            "failed to resolve reference \"{}\": {}: not found (registry {} answered {})",
            image.image,
            image.image,
            image.host,
            registry_reason(code, &body)
        )));
    }
    if code != 200 {
        return Err(fail(format!(
            "failed to resolve reference \"{}\": registry {} answered {}",
            image.image,
            image.host,
            registry_reason(code, &body)
        )));
    }
    let image_id = sha256(&body);
    if let Some(want) = &image.digest
        && *want != image_id
    {
        return Err(fail(format!("manifest digest mismatch: asked for {want}, got {image_id}")));
    }
    let mut manifest: Value = serde_json::from_slice(&body).map_err(|e| fail(format!("the manifest is not JSON: {e}")))?;
    let media_type = manifest
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(&content_type)
        .to_string();
    if media_type.contains("index") || media_type.contains("manifest.list") {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let entries = manifest.get("manifests").and_then(Value::as_array).cloned().unwrap_or_default();
        let chosen = entries
            .iter()
            .find(|m| {
                m.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
                    && m.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch)
            })
            .or_else(|| entries.first())
            .and_then(|m| m.get("digest").and_then(Value::as_str))
            .ok_or_else(|| fail(format!("the image index has no manifest for linux/{arch}")))?
            .to_string();
        let (code, _, body) = get(&image.host, &manifest_url(&chosen), MANIFEST_TYPES).await.map_err(fail)?;
        if code != 200 {
            return Err(fail(format!("manifest {chosen}: {}", registry_reason(code, &body))));
        }
        if sha256(&body) != chosen {
            return Err(fail(format!("manifest {chosen}: digest mismatch")));
        }
        manifest = serde_json::from_slice(&body).map_err(|e| fail(format!("the manifest is not JSON: {e}")))?;
    }
    let blob = |digest: String| {
        let fail = &fail;
        async move {
            if ctx.stopped() {
                return Err(fail("the pod was stopped".into()));
            }
            let path = format!("/v2/{}/blobs/{digest}", image.repository);
            let (code, _, body) = get(&image.host, &path, "*/*").await.map_err(fail)?;
            if code != 200 {
                return Err(fail(format!("blob {digest}: {}", registry_reason(code, &body))));
            }
            let got = sha256(&body);
            if got != digest {
                return Err(fail(format!("blob {digest}: digest mismatch (the registry sent {got})")));
            }
            Ok(body)
        }
    };
    let config_digest = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or_else(|| fail("the manifest names no config".into()))?
        .to_string();
    let config: Value =
        serde_json::from_slice(&blob(config_digest).await?).map_err(|e| fail(format!("the image config is not JSON: {e}")))?;
    let c = config.get("config").cloned().unwrap_or(Value::Null);
    let image_config = ImageConfig {
        entrypoint: strings(c.get("Entrypoint")),
        cmd: strings(c.get("Cmd")),
        env: strings(c.get("Env"))
            .into_iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (kv, String::new()),
            })
            .collect(),
        working_dir: c.get("WorkingDir").and_then(Value::as_str).unwrap_or_default().to_string(),
    };
    let mut layers = Vec::new();
    for (i, layer) in manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let digest = layer.get("digest").and_then(Value::as_str).unwrap_or_default().to_string();
        let gzip = layer.get("mediaType").and_then(Value::as_str).unwrap_or_default().contains("gzip");
        let bytes = blob(digest).await?;
        let path = layers_dir.join(format!("{i}.tar"));
        fs::write(&path, &bytes).map_err(io(format!("cannot write {}", path.display())))?;
        layers.push((path, gzip));
    }
    Ok(Pulled {
        layers,
        config: image_config,
        image_id: format!("{}/{}@{image_id}", image.host, image.repository),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_image_references() {
        let r = ImageRef::parse("127.0.0.1:5000/team/app:0.1.0@sha256:abc").expect("ref");
        assert_eq!(
            (r.host.as_str(), r.repository.as_str(), r.tag.as_str(), r.reference()),
            ("127.0.0.1:5000", "team/app", "0.1.0", "sha256:abc")
        );
        let r = ImageRef::parse("localhost:5000/app").expect("ref");
        assert_eq!((r.repository.as_str(), r.reference()), ("app", "latest"));
        let err = ImageRef::parse("nginx:1.27").expect_err("not loopback");
        assert!(err.contains("only from registries on loopback"), "{err}");
    }

    #[test]
    fn normalizes_references_as_a_runtime_reads_them() {
        assert_eq!(normalize("nats:2.10-alpine"), "docker.io/library/nats:2.10-alpine");
        assert_eq!(
            normalize("docker.io/library/nats:2.10-alpine"),
            "docker.io/library/nats:2.10-alpine"
        );
        assert_eq!(normalize("team/app"), "docker.io/team/app:latest");
        assert_eq!(normalize("127.0.0.1:5000/app@sha256:ab"), "127.0.0.1:5000/app@sha256:ab");
        assert_eq!(normalize("localhost:5000/app"), "localhost:5000/app:latest");
    }

    #[test]
    fn mount_points_are_made_inside_the_root_and_never_through_a_link() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("rootfs");
        fs::create_dir_all(root.join("etc")).unwrap();
        assert_eq!(mount_point(&root, "/var/lib/data", false).unwrap(), root.join("var/lib/data"));
        assert!(root.join("var/lib/data").is_dir());
        assert_eq!(mount_point(&root, "/etc/app.conf", true).unwrap(), root.join("etc/app.conf"));
        assert!(root.join("etc/app.conf").is_file(), "a file volume gets a file to mount on");

        let host = scratch.path().join("host");
        fs::create_dir_all(&host).unwrap();
        std::os::unix::fs::symlink(&host, root.join("data")).unwrap();
        let refused = mount_point(&root, "/data/x", false).unwrap_err().to_string();
        assert!(refused.contains("/data is a symbolic link in the image"), "{refused}");
        assert!(!host.join("x").exists(), "nothing made outside the root");
        assert!(mount_point(&root, "/", false).is_err(), "not over the root itself");
        assert!(mount_point(&root, "/a/../b", false).is_err());
        assert!(
            mount_point(&root, "/etc/app.conf", false).is_err(),
            "a file is no directory to mount on"
        );
    }

    #[test]
    fn expands_variable_references() {
        let env = vec![("PORT".to_string(), "8080".to_string())];
        assert_eq!(expand("-p $(PORT)", &env), "-p 8080");
        assert_eq!(expand("$$(PORT) $(NONE) $", &env), "$(PORT) $(NONE) $");
    }
}
