//! The object store: objects by kind, namespace and name; the global resourceVersion counter;
//! the bounded event log that watches read.

use std::collections::{BTreeMap, BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Workloads;
use crate::argocd::ArgoCdController;
use crate::kubelet::Kubelet;
use crate::resources::{Registry, TypeKey};

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One entry of the event log.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: EventType,
    pub key: TypeKey,
    pub namespace: String,
    pub object: Arc<Value>,
}

/// Work the simulated controllers do at a given time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Work {
    /// Reconcile a workload (Deployment, Pod, Job…).
    Workload(TypeKey, String, String),
    /// Establish a CustomResourceDefinition.
    Crd(String),
    /// Argo CD's application controller: sync an Application (namespace, name).
    Application(String, String),
    /// Argo CD's application controller: assess an Application's health again (namespace,
    /// name, and the number of the sync whose health is watched).
    ApplicationHealth(String, String, u64),
}

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub(crate) type ObjectKey = (String, String);

/// Everything the server keeps, behind one lock.
#[derive(Debug)]
pub(crate) struct State {
    pub registry: Registry,
    pub objects: HashMap<TypeKey, BTreeMap<ObjectKey, Arc<Value>>>,
    /// The last resourceVersion handed out.
    pub rv: u64,
    pub events: VecDeque<Event>,
    pub event_window: usize,
    /// Events up to this resourceVersion are gone from the log: older watches get 410.
    pub compacted_rv: u64,
    /// Bumped to end every open watch with a 410.
    pub expire_epoch: u64,
    next_ip: u32,
    pub workloads: Workloads,
    /// The delay before workloads settle in the modes that carry no delay of their own.
    pub ready_after: Duration,
    pub crd_established_after: Duration,
    pub queue: BinaryHeap<std::cmp::Reverse<(Instant, u64, Work)>>,
    queue_seq: u64,
    /// Container logs per (namespace, pod, container).
    pub logs: HashMap<(String, String, String), Vec<String>>,
    /// The pods [`Workloads::Run`] really runs.
    pub kubelet: Kubelet,
    /// The simulated Argo CD, once [`crate::TestCluster::play_argocd`] installed it.
    pub argocd: Option<ArgoCdController>,
    notify: tokio::sync::watch::Sender<u64>,
    wake: Arc<tokio::sync::Notify>,
}

impl State {
    pub fn new(
        workloads: Workloads,
        ready_after: Duration,
        crd_established_after: Duration,
        event_window: usize,
        notify: tokio::sync::watch::Sender<u64>,
        wake: Arc<tokio::sync::Notify>,
    ) -> State {
        State {
            registry: Registry::builtin(),
            objects: HashMap::new(),
            rv: 0,
            events: VecDeque::new(),
            event_window: event_window.max(1),
            compacted_rv: 0,
            expire_epoch: 0,
            next_ip: 1,
            workloads,
            ready_after,
            crd_established_after,
            queue: BinaryHeap::new(),
            queue_seq: 0,
            logs: HashMap::new(),
            kubelet: Kubelet::new(wake.clone()),
            argocd: None,
            notify,
            wake,
        }
    }

    /// A receiver that changes whenever an event is logged.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.notify.subscribe()
    }

    pub fn get(&self, key: &TypeKey, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.objects.get(key)?.get(&(namespace.to_string(), name.to_string())).cloned()
    }

    pub fn namespace_exists(&self, namespace: &str) -> bool {
        self.get(&TypeKey::new("", "Namespace"), "", namespace).is_some()
    }

    /// Objects of a kind, in one namespace or all, in key order, starting after `after`.
    pub fn range<'a>(
        &'a self,
        key: &TypeKey,
        namespace: Option<&'a str>,
        after: Option<&'a ObjectKey>,
    ) -> Box<dyn Iterator<Item = (&'a ObjectKey, &'a Arc<Value>)> + 'a> {
        let Some(map) = self.objects.get(key) else {
            return Box::new(std::iter::empty());
        };
        let start = match (after, namespace) {
            (Some(a), _) => std::ops::Bound::Excluded(a.clone()),
            (None, Some(ns)) => std::ops::Bound::Included((ns.to_string(), String::new())),
            (None, None) => std::ops::Bound::Unbounded,
        };
        let iter = map
            .range((start, std::ops::Bound::Unbounded))
            .take_while(move |((ns, _), _)| namespace.is_none_or(|want| want == ns));
        Box::new(iter)
    }

    pub fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Stores `object` (setting a fresh resourceVersion), logs the event and wakes watchers.
    pub fn commit(&mut self, key: &TypeKey, namespace: &str, name: &str, mut object: Value) -> Arc<Value> {
        let rv = self.next_rv();
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let object = Arc::new(object);
        let previous = self
            .objects
            .entry(key.clone())
            .or_default()
            .insert((namespace.to_string(), name.to_string()), object.clone());
        let kind = if previous.is_some() {
            EventType::Modified
        } else {
            EventType::Added
        };
        self.log(rv, kind, key, namespace, object.clone());
        object
    }

    /// Removes an object, logging a DELETED event carrying a fresh resourceVersion.
    pub fn remove(&mut self, key: &TypeKey, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let removed = self.objects.get_mut(key)?.remove(&(namespace.to_string(), name.to_string()))?;
        let rv = self.next_rv();
        let mut last = (*removed).clone();
        if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
        }
        let last = Arc::new(last);
        self.log(rv, EventType::Deleted, key, namespace, last.clone());
        self.logs
            .retain(|(ns, pod, _), _| !(key.kind == "Pod" && ns == namespace && pod == name));
        if key.kind == "Pod" && key.group.is_empty() {
            self.kubelet.stop(namespace, name);
        }
        Some(last)
    }

    fn log(&mut self, rv: u64, kind: EventType, key: &TypeKey, namespace: &str, object: Arc<Value>) {
        self.events.push_back(Event {
            rv,
            kind,
            key: key.clone(),
            namespace: namespace.to_string(),
            object,
        });
        while self.events.len() > self.event_window {
            if let Some(old) = self.events.pop_front() {
                self.compacted_rv = old.rv;
            }
        }
        self.notify.send_replace(rv);
    }

    /// Drops the whole event log and ends every open watch with a 410 (as after an etcd
    /// compaction): clients must relist.
    pub fn expire_watches(&mut self) {
        self.events.clear();
        self.compacted_rv = self.rv;
        self.expire_epoch += 1;
        self.notify.send_replace(self.rv);
    }

    /// Events after `rv` of one kind (optionally one namespace), or `None` if some were
    /// already dropped from the log.
    pub fn events_after(&self, rv: u64, key: &TypeKey, namespace: Option<&str>) -> Option<Vec<Event>> {
        if rv < self.compacted_rv {
            return None;
        }
        let start = self.events.partition_point(|e| e.rv <= rv);
        Some(
            self.events
                .range(start..)
                .filter(|e| e.key == *key && namespace.is_none_or(|ns| ns == e.namespace))
                .cloned()
                .collect(),
        )
    }

    /// A fresh Service address, 10.96.x.y.
    pub fn allocate_cluster_ip(&mut self) -> String {
        let n = self.next_ip;
        self.next_ip += 1;
        format!("10.96.{}.{}", (n / 250) % 256, n % 250 + 1)
    }

    /// What wakes the controllers (for threads that finish work for them).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.wake.clone()
    }

    /// Queues controller work at `due`.
    pub fn schedule(&mut self, due: Instant, work: Work) {
        self.queue_seq += 1;
        self.queue.push(std::cmp::Reverse((due, self.queue_seq, work)));
        self.wake.notify_one();
    }
}
