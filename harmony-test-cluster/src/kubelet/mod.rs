//! Our kubelet: the cluster's one node. It registers a `Node` with the API server, keeps its
//! lease in `kube-node-lease`, watches the pods the scheduler binds to it, runs or plays them
//! ([`runtime`]), and reports their status as a kubelet does: phase, conditions,
//! `containerStatuses` with restart counts and waiting reasons, `podIP`, and its events. It
//! serves the kubelet API the API server proxies to ([`api`]: container logs, port-forwards),
//! and finishes the deletion of the pods it stopped. A pod's claims must be bound before it
//! starts; the directories of the host its volumes are (`hostPath`, a claim's PersistentVolume)
//! are mounted into the containers it runs ([`runtime`]). There is no DNS add-on: the
//! `/etc/hosts` of the containers it runs names the pods of their namespace as a cluster's DNS
//! does for a headless Service's pods ([`hosts`]).
//!
//! Which pods run for real and which are played is set per namespace ([`Kubelet::set_mode`]);
//! a pod whose images are all held ([`Kubelet::hold`]) always runs.

mod api;
mod hosts;
mod http;
mod portforward;
pub(crate) mod runtime;
mod spdy;
mod spec;

pub(crate) use api::tls_config as server_tls;
pub(crate) use http::query;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::watcher;
use kube::{Api, ResourceExt as _};
use serde_json::{Value, json};

use crate::pki::Pki;
use crate::{Options, Workloads, lock, util};
use runtime::{How, Runtime};

/// The field manager of what the kubelet writes (a real kubelet's user agent).
const MANAGER: &str = "kubelet";

/// How the pods of each namespace are treated.
#[derive(Debug, Clone)]
struct Modes {
    default: Workloads,
    namespaces: HashMap<String, Workloads>,
}

impl Modes {
    fn of(&self, namespace: &str) -> &Workloads {
        self.namespaces.get(namespace).unwrap_or(&self.default)
    }
}

/// What the kubelet last told the API server about a pod.
#[derive(Debug, Default)]
struct Reported {
    status: Value,
    /// The state each container was last reported in (its events are sent on a change).
    states: BTreeMap<String, String>,
}

/// An event the kubelet sent: (pod uid, container, reason, message).
type EventKey = (String, String, String, String);

/// The node.
pub(crate) struct Kubelet {
    node: String,
    /// The version it reports: the control plane's, as a kubelet of that release would.
    version: String,
    client: kube::Client,
    runtime: Mutex<Runtime>,
    modes: Mutex<Modes>,
    wake: Arc<tokio::sync::Notify>,
    api: SocketAddr,
    /// The pods bound to this node, as last seen.
    pods: Mutex<BTreeMap<(String, String), Pod>>,
    /// Pods that could not be started yet, and why (a missing Secret: kubelet looks again).
    blocked: Mutex<HashMap<String, (String, String)>>,
    /// Pods waiting for their volumes (a claim not bound yet), and kubelet's `FailedMount`
    /// message, by uid: their containers stay `ContainerCreating`.
    unmounted: Mutex<HashMap<String, String>>,
    reported: Mutex<HashMap<String, Reported>>,
    /// Events already sent: name and count.
    events: Mutex<HashMap<EventKey, (String, i32)>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Servers behind the ports of played pods, by namespace and port.
    ports: Mutex<HashMap<(String, u16), SocketAddr>>,
    /// The `/etc/hosts` of the containers that run, which name their namespace's pods.
    hosts: Arc<hosts::Hosts>,
}

impl std::fmt::Debug for Kubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubelet")
            .field("node", &self.node)
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Kubelet {
    /// Serves the kubelet API, registers the node (as a kubelet of `version`), and starts
    /// watching and reporting pods.
    pub async fn start(client: kube::Client, pki: &Pki, dir: &Path, options: Options, version: &str) -> Result<Arc<Kubelet>, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen for the kubelet API: {e}"))?;
        let api = listener.local_addr().map_err(|e| e.to_string())?;
        let wake = Arc::new(tokio::sync::Notify::new());
        let hosts = Arc::new(hosts::Hosts::default());
        let kubelet = Arc::new(Kubelet {
            node: options.node.clone(),
            version: version.to_owned(),
            client,
            runtime: Mutex::new(Runtime::new(dir.join("kubelet"), wake.clone(), options.ready_after, hosts.clone())),
            modes: Mutex::new(Modes {
                default: options.workloads.clone(),
                namespaces: HashMap::new(),
            }),
            wake,
            api,
            pods: Mutex::new(BTreeMap::new()),
            blocked: Mutex::new(HashMap::new()),
            unmounted: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashMap::new()),
            events: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            ports: Mutex::new(HashMap::new()),
            hosts,
        });
        for (reference, program) in &options.images {
            kubelet.hold(reference, program.clone());
        }
        let tls = api::tls_config(pki)?;
        kubelet.register().await?;
        let tasks = vec![
            tokio::spawn(api::serve(listener, tls, kubelet.clone())),
            tokio::spawn(kubelet.clone().heartbeat()),
            tokio::spawn(kubelet.clone().watch()),
            tokio::spawn(kubelet.clone().sync_loop()),
        ];
        *lock(&kubelet.tasks) = tasks;
        Ok(kubelet)
    }

    /// Gives the runtime the image `reference`: the static `program` is its whole content.
    /// Pods already there are looked at again.
    pub fn hold(&self, reference: &str, program: PathBuf) {
        lock(&self.runtime).hold(reference, program);
        self.wake.notify_one();
    }

    /// Sets how pods are treated: in `namespaces`, or (none named) everywhere no namespace of
    /// its own says otherwise. Pods already there are started again the new way.
    pub fn set_mode(&self, namespaces: &[String], mode: Workloads) {
        let mut modes = lock(&self.modes);
        if namespaces.is_empty() {
            modes.default = mode;
        } else {
            for ns in namespaces {
                modes.namespaces.insert(ns.clone(), mode.clone());
            }
        }
        drop(modes);
        self.wake.notify_one();
    }

    /// Stops every pod and the kubelet's own work.
    pub fn shutdown(&self) {
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        lock(&self.runtime).shutdown();
    }

    /// The log file of a container's current (or, `previous`, last) run.
    pub(crate) fn log_file(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Option<PathBuf> {
        lock(&self.runtime).log_file(namespace, pod, container, previous)
    }

    /// Where a port-forward to a pod's port connects: the pod's own address when its
    /// containers run for real; for a played pod, the server a test put behind that port of
    /// the namespace's played pods ([`Kubelet::serve_port`]), if any.
    pub(crate) fn port_target(&self, namespace: &str, pod: &str, port: u16) -> Result<SocketAddr, String> {
        match lock(&self.runtime).status(namespace, pod) {
            Some((_, How::Run, run)) => {
                let ip = run.ip.ok_or_else(|| "the pod has no network yet".to_owned())?;
                let ip: std::net::IpAddr = ip.parse().map_err(|_| format!("the pod's address {ip} is not an IP"))?;
                Ok(SocketAddr::new(ip, port))
            }
            Some((_, How::Play(_), _)) => lock(&self.ports)
                .get(&(namespace.to_owned(), port))
                .copied()
                .ok_or_else(|| "connection refused (the test cluster plays this pod: nothing runs in it)".into()),
            None => Err(format!("pod {namespace}/{pod} is not on this node")),
        }
    }

    /// Puts `backend` behind `port` of every played pod of `namespace`: what a port-forward to
    /// it reaches, as if the pod ran that server.
    pub fn serve_port(&self, namespace: &str, port: u16, backend: SocketAddr) {
        lock(&self.ports).insert((namespace.to_owned(), port), backend);
    }

    fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    /// Creates the Node (or takes over one of its name) and reports it Ready.
    async fn register(&self) -> Result<(), String> {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.node,
                "labels": {
                    "kubernetes.io/hostname": self.node,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "beta.kubernetes.io/os": "linux",
                    "beta.kubernetes.io/arch": "amd64",
                },
            },
        }))
        .map_err(|e| e.to_string())?;
        match self.nodes().create(&PostParams::default(), &node).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(format!("cannot register Node {}: {e}", self.node)),
        }
        self.report_node().await
    }

    /// The Node's status: capacity, addresses, where its API is, and Ready.
    async fn report_node(&self) -> Result<(), String> {
        let now = util::now_rfc3339();
        let condition = |kind: &str, status: &str, reason: &str, message: &str| {
            json!({"type": kind, "status": status, "reason": reason, "message": message,
                   "lastHeartbeatTime": now, "lastTransitionTime": now})
        };
        // A node as big as a small cluster: a played pod costs nothing, and a workload of
        // thousands of pods (the benchmarks) must fit on the one node there is.
        let capacity = json!({"cpu": "1000", "memory": "4Ti", "pods": "20000", "ephemeral-storage": "100Ti"});
        let status = json!({"status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": self.node}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": self.api.port()}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "harmony-test-cluster",
                "containerRuntimeVersion": "harmony://0.1.0",
                "kubeletVersion": self.version,
                "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": "amd64",
            },
        }});
        self.nodes()
            .patch_status(&self.node, &PatchParams::default(), &Patch::Strategic(status))
            .await
            .map(|_| ())
            .map_err(|e| format!("cannot report Node {}'s status: {e}", self.node))
    }

    /// Renews the node's lease every 10 s, and its status every minute, as a kubelet does.
    async fn heartbeat(self: Arc<Self>) {
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), "kube-node-lease");
        let mut beats = 0u32;
        loop {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.node, "namespace": "kube-node-lease"},
                "spec": {
                    "holderIdentity": self.node,
                    "leaseDurationSeconds": 40,
                    "renewTime": util::now_rfc3339_micros(),
                },
            });
            let _ = leases
                .patch(&self.node, &PatchParams::apply(MANAGER).force(), &Patch::Apply(lease))
                .await;
            if beats.is_multiple_of(6) {
                let _ = self.report_node().await;
            }
            beats = beats.wrapping_add(1);
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }

    /// Follows the pods bound to this node.
    async fn watch(self: Arc<Self>) {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("spec.nodeName={}", self.node));
        let mut stream = watcher(pods, config).boxed();
        let key = |p: &Pod| (p.namespace().unwrap_or_default(), p.name_any());
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                    lock(&self.pods).insert(key(&pod), pod);
                }
                Ok(watcher::Event::Delete(pod)) => {
                    lock(&self.pods).remove(&key(&pod));
                }
                Ok(watcher::Event::Init) => lock(&self.pods).clear(),
                Ok(watcher::Event::InitDone) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            self.wake.notify_one();
        }
    }

    /// Brings the runtime in line with the pods, and the pods' statuses in line with the
    /// runtime: on every change, and every second (a missing Secret may have appeared).
    async fn sync_loop(self: Arc<Self>) {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
            self.sync().await;
        }
    }

    async fn sync(&self) {
        let pods: Vec<Pod> = lock(&self.pods).values().cloned().collect();
        let wanted: std::collections::HashSet<(String, String, String)> = pods
            .iter()
            .map(|p| (p.namespace().unwrap_or_default(), p.name_any(), p.uid().unwrap_or_default()))
            .collect();
        // Pods that are gone, or replaced by a pod of the same name.
        let stale: Vec<(String, String, String)> = lock(&self.runtime).pods().into_iter().filter(|p| !wanted.contains(p)).collect();
        for (ns, name, uid) in stale {
            lock(&self.runtime).stop(&ns, &name);
            lock(&self.reported).remove(&uid);
            lock(&self.blocked).remove(&uid);
            lock(&self.unmounted).remove(&uid);
        }
        lock(&self.runtime).take_changed();
        // Pods are independent: a kubelet works on many at once.
        futures_util::stream::iter(pods)
            .for_each_concurrent(32, |pod| async move { self.sync_pod(&pod).await })
            .await;
        self.hosts.update(&self.named_pods());
    }

    /// The pods that have names in their namespace, by namespace: those with a `hostname` and
    /// a `subdomain` (a StatefulSet's), not being deleted, and the IP the runtime gave them.
    fn named_pods(&self) -> BTreeMap<String, Vec<hosts::Peer>> {
        let named: Vec<(String, String, String, hosts::Peer)> = lock(&self.pods)
            .values()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                let spec = p.spec.as_ref()?;
                let hostname = spec.hostname.clone().filter(|h| !h.is_empty())?;
                let subdomain = spec.subdomain.clone().filter(|s| !s.is_empty())?;
                let peer = hosts::Peer {
                    hostname,
                    subdomain,
                    ip: String::new(),
                };
                Some((p.namespace().unwrap_or_default(), p.name_any(), p.uid().unwrap_or_default(), peer))
            })
            .collect();
        let runtime = lock(&self.runtime);
        let mut by_namespace: BTreeMap<String, Vec<hosts::Peer>> = BTreeMap::new();
        for (namespace, name, uid, mut peer) in named {
            let Some((_, _, run)) = runtime.status(&namespace, &name).filter(|(u, _, _)| *u == uid) else {
                continue;
            };
            let Some(ip) = run.ip else {
                continue;
            };
            peer.ip = ip;
            by_namespace.entry(namespace).or_default().push(peer);
        }
        by_namespace
    }

    /// How a pod is to be treated now.
    fn how(&self, pod: &Pod) -> How {
        let images = pod.spec.iter().flat_map(|s| s.containers.iter()).filter_map(|c| c.image.as_deref());
        if lock(&self.runtime).holds_all(images) {
            return How::Run;
        }
        match lock(&self.modes).of(&pod.namespace().unwrap_or_default()) {
            Workloads::Run => How::Run,
            mode => How::Play(mode.clone()),
        }
    }

    async fn sync_pod(&self, pod: &Pod) {
        let (ns, name, uid) = (pod.namespace().unwrap_or_default(), pod.name_any(), pod.uid().unwrap_or_default());
        if pod.metadata.deletion_timestamp.is_some() {
            // Stop its containers, then let the API server forget it.
            lock(&self.runtime).stop(&ns, &name);
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: Some(uid.clone()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            let _ = api.delete(&name, &params).await;
            return;
        }
        let how = self.how(pod);
        let current = lock(&self.runtime).status(&ns, &name);
        let started = current.as_ref().is_some_and(|(u, h, _)| *u == uid && *h == how);
        if !started {
            let value = serde_json::to_value(pod).unwrap_or_default();
            match spec::container_specs(&self.client, &value, &self.node, matches!(how, How::Play(_))).await {
                Err(spec::Blocked::Container(container, message)) => {
                    lock(&self.runtime).stop(&ns, &name);
                    lock(&self.unmounted).remove(&uid);
                    lock(&self.blocked).insert(uid.clone(), (container, message));
                }
                Err(spec::Blocked::Volumes(message)) => {
                    lock(&self.runtime).stop(&ns, &name);
                    lock(&self.blocked).remove(&uid);
                    let new = lock(&self.unmounted).insert(uid.clone(), message.clone()).as_ref() != Some(&message);
                    if new {
                        // About the pod, not a container: it was never created.
                        self.event(pod, "", "Warning", "FailedMount", &message).await;
                    }
                }
                Ok(specs) => {
                    lock(&self.blocked).remove(&uid);
                    lock(&self.unmounted).remove(&uid);
                    let policy = pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.restart_policy.clone())
                        .unwrap_or_else(|| "Always".into());
                    let started = lock(&self.runtime).start(&ns, &name, &uid, specs, &policy, how);
                    if let Err(why) = started {
                        let first = pod
                            .spec
                            .as_ref()
                            .and_then(|s| s.containers.first())
                            .map(|c| c.name.clone())
                            .unwrap_or_default();
                        lock(&self.blocked).insert(uid.clone(), (first, why));
                    }
                }
            }
        }
        let run = lock(&self.runtime)
            .status(&ns, &name)
            .filter(|(u, _, _)| *u == uid)
            .map(|(_, _, run)| run)
            .unwrap_or_default();
        let blocked = lock(&self.blocked).get(&uid).cloned();
        let (status, notes) = status::pod_status(pod, &run, blocked.as_ref());
        self.report(pod, status, notes).await;
    }

    /// Writes the pod's status if it changed, and the events of its containers' new states.
    async fn report(&self, pod: &Pod, status: Value, notes: Vec<status::Note>) {
        let uid = pod.uid().unwrap_or_default();
        let (changed, new_states) = {
            let reported = lock(&self.reported);
            let old = reported.get(&uid);
            let changed = old.is_none_or(|r| r.status != status);
            let new_states: Vec<status::Note> = notes
                .into_iter()
                .filter(|n| old.and_then(|r| r.states.get(&n.container)) != Some(&n.state))
                .collect();
            (changed, new_states)
        };
        for note in &new_states {
            for (kind, reason, message) in &note.events {
                self.event(pod, &note.container, kind, reason, message).await;
            }
        }
        if changed {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &pod.namespace().unwrap_or_default());
            // A merge patch from the status the pod has: what a container no longer is (its
            // `running` once it waits) goes, and the lists are replaced whole.
            let old = pod.status.as_ref().and_then(|s| serde_json::to_value(s).ok()).unwrap_or_default();
            let patch = Patch::Merge(json!({"status": util::merge_patch(&old, &status)}));
            if api.patch_status(&pod.name_any(), &PatchParams::default(), &patch).await.is_err() {
                // Reported again on the next pass.
                return;
            }
        }
        let mut reported = lock(&self.reported);
        let entry = reported.entry(uid).or_default();
        entry.status = status;
        for note in new_states {
            entry.states.insert(note.container, note.state);
        }
    }

    /// Records an event about a pod's container (the pod itself if `container` is empty), or
    /// counts one more of the same.
    async fn event(&self, pod: &Pod, container: &str, kind: &str, reason: &str, message: &str) {
        let (ns, name, uid) = (pod.namespace().unwrap_or_default(), pod.name_any(), pod.uid().unwrap_or_default());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let now = util::now_rfc3339();
        let key = (uid.clone(), container.to_owned(), reason.to_owned(), message.to_owned());
        let seen = lock(&self.events).get(&key).cloned();
        if let Some((event, count)) = seen {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            if api.patch(&event, &PatchParams::default(), &Patch::Merge(patch)).await.is_ok() {
                lock(&self.events).insert(key, (event, count + 1));
            }
            return;
        }
        let event_name = format!("{name}.{}", util::random_suffix(16));
        let event: Event = match serde_json::from_value(json!({
            "metadata": {"name": event_name, "namespace": ns},
            "involvedObject": {
                "apiVersion": "v1", "kind": "Pod", "name": name, "namespace": ns, "uid": uid,
                "fieldPath": (!container.is_empty()).then(|| format!("spec.containers{{{container}}}")),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "count": 1,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": "kubelet", "host": self.node},
            "reportingComponent": "kubelet",
            "reportingInstance": self.node,
        })) {
            Ok(e) => e,
            Err(_) => return,
        };
        if api.create(&PostParams::default(), &event).await.is_ok() {
            lock(&self.events).insert(key, (event_name, 1));
        }
    }
}

mod status;
