//! The simulated controllers: workloads settle (or fail in the chosen way) after a delay, the
//! Deployment/StatefulSet/DaemonSet/ReplicaSet/Job controllers create pods, the kubelet's
//! Warning events and container logs appear, CRDs become Established, and the garbage collector
//! removes what an owner leaves behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Workloads;
use crate::apply::{self, Writer};
use crate::fields::Schema;
use crate::kubelet::{ContainerSpec, Mount, Phase, PodRun};
use crate::resources::{ResourceType, TypeKey, version_priority};
use crate::store::{State, Work};
use crate::util;

const NODE: &str = "harmony-test-node";
const CONTROLLER: &str = "kube-controller-manager";

fn workload_kind(key: &TypeKey) -> bool {
    matches!(
        (key.group.as_str(), key.kind.as_str()),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") | ("batch", "Job") | ("", "Pod" | "PersistentVolumeClaim")
    )
}

pub(crate) fn crd_key() -> TypeKey {
    TypeKey::new("apiextensions.k8s.io", "CustomResourceDefinition")
}

fn generation(obj: &Value) -> Option<i64> {
    obj.pointer("/metadata/generation").and_then(Value::as_i64)
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn controlled_by_us(obj: &Value) -> bool {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| refs.iter().any(|r| r.get("controller") == Some(&json!(true))))
}

/// The delay before the controllers act on a workload in the current mode.
fn settle_delay(state: &State) -> Duration {
    match &state.workloads {
        Workloads::Ready { after } => *after,
        _ => state.ready_after,
    }
}

/// Called after every API write: schedules the controllers that care.
pub(crate) fn on_written(state: &mut State, key: &TypeKey, namespace: &str, name: &str, old: Option<&Value>, new: &Value) {
    let spec_changed = old.is_none() || old.and_then(generation) != generation(new);
    if *key == crate::argocd::application_key() {
        crate::argocd::on_written(state, namespace, name, spec_changed, new);
    } else if *key == crd_key() && spec_changed {
        let due = Instant::now() + state.crd_established_after;
        state.schedule(due, Work::Crd(name.to_string()));
    } else if workload_kind(key) && spec_changed && !(key.kind == "Pod" && controlled_by_us(new)) {
        let due = Instant::now() + settle_delay(state);
        state.schedule(due, Work::Workload(key.clone(), namespace.to_string(), name.to_string()));
    }
}

/// Called after an object is removed for good.
pub(crate) fn on_deleted(state: &mut State, key: &TypeKey, removed: &Value) {
    if *key != crd_key() {
        return;
    }
    let group = str_at(removed, "/spec/group");
    let kind = str_at(removed, "/spec/names/kind");
    let custom = TypeKey::new(group, kind);
    if state.registry.get(&custom).is_some_and(|t| t.custom) {
        state.registry.remove(&custom);
        let keys: Vec<(String, String)> = state.range(&custom, None, None).map(|(k, _)| k.clone()).collect();
        for (ns, name) in keys {
            state.remove(&custom, &ns, &name);
        }
        state.objects.remove(&custom);
    }
}

/// Removes the pods an owner made (the garbage collector's background propagation).
pub(crate) fn collect_garbage(state: &mut State, key: &TypeKey, namespace: &str, owner: &Value) {
    if !workload_kind(key) || key.kind == "Pod" || key.kind == "PersistentVolumeClaim" {
        return;
    }
    let uid = str_at(owner, "/metadata/uid").to_string();
    let name = str_at(owner, "/metadata/name").to_string();
    for pod in owned_pods(state, namespace, &name, &uid) {
        state.remove(&pod_key(), namespace, &pod);
    }
}

fn pod_key() -> TypeKey {
    TypeKey::new("", "Pod")
}

/// Names of the pods `<owner>-…` in `namespace` controlled by the owner with this uid.
fn owned_pods(state: &State, namespace: &str, owner: &str, uid: &str) -> Vec<String> {
    let prefix = format!("{owner}-");
    // Names starting with `<owner>-` sort right after `<owner>-` itself, which no pod is named.
    let start = (namespace.to_string(), prefix.clone());
    state
        .range(&pod_key(), Some(namespace), Some(&start))
        .take_while(|((_, n), _)| n.starts_with(&prefix))
        .filter(|(_, pod)| {
            pod.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|refs| refs.iter().any(|r| r.get("uid") == Some(&json!(uid))))
        })
        .map(|((_, n), _)| n.clone())
        .collect()
}

/// Switches the workload behaviour and reconsiders every workload under it.
pub(crate) fn set_workloads(state: &mut State, workloads: Workloads) {
    if workloads != Workloads::Run {
        state.kubelet.stop_all();
    }
    state.workloads = workloads;
    let due = Instant::now() + settle_delay(state);
    let mut work = Vec::new();
    let keys: Vec<TypeKey> = state.objects.keys().filter(|k| workload_kind(k)).cloned().collect();
    for key in keys {
        for ((ns, name), obj) in state.range(&key, None, None) {
            if key.kind == "Pod" && controlled_by_us(obj) {
                continue;
            }
            work.push(Work::Workload(key.clone(), ns.clone(), name.clone()));
        }
    }
    for w in work {
        state.schedule(due, w);
    }
}

/// Runs every piece of work that is due; returns when the next one is.
pub(crate) fn run_due(state: &mut State, now: Instant) -> Option<Instant> {
    crate::argocd::collect_renders(state);
    let changed: std::collections::BTreeSet<(String, String)> = state.kubelet.take_changed().into_iter().collect();
    for (namespace, pod) in changed {
        refresh_running_pod(state, &namespace, &pod, now);
    }
    loop {
        let std::cmp::Reverse((due, _, _)) = state.queue.peek()?;
        if *due > now {
            return Some(*due);
        }
        let std::cmp::Reverse((_, _, work)) = state.queue.pop()?;
        match work {
            Work::Crd(name) => establish_crd(state, &name),
            Work::Workload(key, ns, name) => reconcile(state, &key, &ns, &name),
            Work::Application(ns, name) => crate::argocd::reconcile(state, &ns, &name),
            Work::ApplicationHealth(ns, name, sync) => crate::argocd::assess(state, &ns, &name, sync),
        }
    }
}

/// Writes `.status` as a controller does (a status-subresource update by
/// kube-controller-manager), skipping writes that change nothing.
fn write_status(state: &mut State, key: &TypeKey, namespace: &str, name: &str, status: Value) {
    write_status_as(state, key, namespace, name, status, CONTROLLER);
}

/// Writes `.status` as `manager` does: through the status subresource when the kind has one,
/// else as an update of the whole object (a CRD without one); skips writes that change nothing.
pub(crate) fn write_status_as(state: &mut State, key: &TypeKey, namespace: &str, name: &str, status: Value, manager: &str) {
    let Some(old) = state.get(key, namespace, name) else {
        return;
    };
    if old.get("status") == Some(&status) {
        return;
    }
    let mut new = (*old).clone();
    new["status"] = status;
    let api_version = str_at(&old, "/apiVersion").to_string();
    let (custom, has_status) = state.registry.get(key).map_or((false, true), |t| (t.custom, t.status));
    apply::record_update(
        &Schema { kind: &key.kind, custom },
        Some(&old),
        &mut new,
        Writer {
            manager,
            api_version: &api_version,
            subresource: if has_status { "status" } else { "" },
            has_status,
        },
    );
    state.commit(key, namespace, name, new);
}

/// Stores a new object made by a controller.
pub(crate) fn create_internal(state: &mut State, key: &TypeKey, namespace: &str, name: &str, mut obj: Value, manager: &str) -> Arc<Value> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("uid".into(), json!(util::new_uid()));
        meta.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
    }
    let api_version = str_at(&obj, "/apiVersion").to_string();
    apply::record_update(
        &Schema {
            kind: &key.kind,
            custom: false,
        },
        None,
        &mut obj,
        Writer {
            manager,
            api_version: &api_version,
            subresource: "",
            has_status: false,
        },
    );
    state.commit(key, namespace, name, obj)
}

/// A condition, keeping the transition time of an unchanged earlier one.
pub(crate) fn condition(previous: Option<&Value>, kind: &str, status: &str, reason: &str, message: &str, update_time: bool) -> Value {
    let now = util::now_rfc3339();
    let earlier = previous
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c.get("type") == Some(&json!(kind))));
    let unchanged = earlier.is_some_and(|c| c.get("status") == Some(&json!(status)) && c.get("reason") == Some(&json!(reason)));
    let transition = match earlier {
        Some(c) if unchanged => c.get("lastTransitionTime").cloned().unwrap_or(json!(now)),
        _ => json!(now),
    };
    let mut c = json!({
        "type": kind,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    });
    if update_time {
        c["lastUpdateTime"] = match earlier {
            Some(e) if unchanged => e.get("lastUpdateTime").cloned().unwrap_or(json!(now)),
            _ => json!(now),
        };
    }
    c
}

/// Drops zero counters, as the real API omits them.
fn without_zeros(mut status: Value) -> Value {
    if let Some(map) = status.as_object_mut() {
        map.retain(|_, v| v.as_i64() != Some(0));
    }
    status
}

fn reconcile(state: &mut State, key: &TypeKey, namespace: &str, name: &str) {
    let Some(obj) = state.get(key, namespace, name) else {
        return;
    };
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return;
    }
    let run = kubelet_runs(state, obj.pointer("/spec/template/spec"));
    let ready = matches!(state.workloads, Workloads::Ready { .. });
    let uid = str_at(&obj, "/metadata/uid").to_string();
    // How many of the owner's pods are ready: all or none in the played modes, the real
    // count when the kubelet runs them.
    let ready_count = |state: &State, replicas: i64| {
        if run {
            owned_pods(state, namespace, name, &uid)
                .iter()
                .filter(|p| state.get(&pod_key(), namespace, p).is_some_and(|p| pod_ready(&p)))
                .count() as i64
        } else if ready {
            replicas
        } else {
            0
        }
    };
    let generation = generation(&obj).unwrap_or(1);
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1).max(0);
    let template = obj.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let hash = util::stable_hash(&template, 10);
    let previous = obj.get("status");
    let status = match (key.group.as_str(), key.kind.as_str()) {
        ("apps", "Deployment") => {
            let names: Vec<String> = (0..replicas).map(|_| format!("{name}-{hash}-{}", util::random_suffix(5))).collect();
            sync_pods(state, &obj, &template, &hash, names, false);
            let rs = format!("{name}-{hash}");
            let ready_replicas = ready_count(state, replicas);
            if (run && ready_replicas >= replicas) || (!run && ready) {
                without_zeros(json!({
                    "observedGeneration": generation,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": replicas,
                    "availableReplicas": replicas,
                    "conditions": [
                        condition(previous, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", true),
                        condition(previous, "Progressing", "True", "NewReplicaSetAvailable", &format!("ReplicaSet \"{rs}\" has successfully progressed."), true),
                    ],
                }))
            } else {
                without_zeros(json!({
                    "observedGeneration": generation,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": ready_replicas,
                    "availableReplicas": ready_replicas,
                    "unavailableReplicas": replicas - ready_replicas,
                    "conditions": [
                        condition(previous, "Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", true),
                        condition(previous, "Progressing", "True", "ReplicaSetUpdated", &format!("ReplicaSet \"{rs}\" is progressing."), true),
                    ],
                }))
            }
        }
        ("apps", "StatefulSet") => {
            let names: Vec<String> = (0..replicas).map(|i| format!("{name}-{i}")).collect();
            sync_pods(state, &obj, &template, &hash, names, true);
            let revision = format!("{name}-{hash}");
            let ready_replicas = ready_count(state, replicas);
            without_zeros(json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "readyReplicas": ready_replicas,
                "currentReplicas": replicas,
                "updatedReplicas": replicas,
                "availableReplicas": ready_replicas,
                "currentRevision": revision,
                "updateRevision": revision,
                "collisionCount": 0,
            }))
        }
        ("apps", "DaemonSet") => {
            let existing = owned_pods(state, namespace, name, str_at(&obj, "/metadata/uid"));
            let names = vec![
                existing
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("{name}-{}", util::random_suffix(5))),
            ];
            sync_pods(state, &obj, &template, &hash, names, true);
            let ready = ready_count(state, 1) >= 1;
            json!({
                "observedGeneration": generation,
                "desiredNumberScheduled": 1,
                "currentNumberScheduled": 1,
                "updatedNumberScheduled": 1,
                "numberAvailable": if ready { 1 } else { 0 },
                "numberReady": if ready { 1 } else { 0 },
                "numberUnavailable": if ready { 0 } else { 1 },
                "numberMisscheduled": 0,
            })
        }
        ("apps", "ReplicaSet") => {
            let names: Vec<String> = (0..replicas).map(|_| format!("{name}-{}", util::random_suffix(5))).collect();
            sync_pods(state, &obj, &template, &hash, names, false);
            let ready_replicas = ready_count(state, replicas);
            without_zeros(json!({
                "observedGeneration": generation,
                "replicas": replicas,
                "fullyLabeledReplicas": replicas,
                "readyReplicas": ready_replicas,
                "availableReplicas": ready_replicas,
            }))
        }
        ("batch", "Job") => {
            let existing = owned_pods(state, namespace, name, str_at(&obj, "/metadata/uid"));
            let names = vec![
                existing
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("{name}-{}", util::random_suffix(5))),
            ];
            sync_pods(state, &obj, &template, &hash, names, true);
            // When the kubelet runs it, the Job completes when its pod succeeded.
            let ready = if run {
                owned_pods(state, namespace, name, &uid).iter().any(|p| {
                    state
                        .get(&pod_key(), namespace, p)
                        .is_some_and(|p| str_at(&p, "/status/phase") == "Succeeded")
                })
            } else {
                ready
            };
            let start = previous
                .and_then(|s| s.get("startTime"))
                .cloned()
                .unwrap_or_else(|| json!(util::now_rfc3339()));
            if ready {
                json!({
                    "startTime": start,
                    "completionTime": util::now_rfc3339(),
                    "succeeded": 1,
                    "ready": 0,
                    "terminating": 0,
                    "uncountedTerminatedPods": {},
                    "conditions": [
                        condition(previous, "SuccessCriteriaMet", "True", "CompletionsReached", "Reached expected number of succeeded pods", false),
                        condition(previous, "Complete", "True", "CompletionsReached", "Reached expected number of succeeded pods", false),
                    ],
                })
            } else {
                json!({"startTime": start, "active": 1, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
            }
        }
        ("", "Pod") => {
            let pod = (*obj).clone();
            let status = pod_status(state, &pod);
            write_status(state, key, namespace, name, status);
            return;
        }
        ("", "PersistentVolumeClaim") => {
            if ready || run {
                json!({
                    "phase": "Bound",
                    "accessModes": obj.pointer("/spec/accessModes").cloned().unwrap_or(json!(["ReadWriteOnce"])),
                    "capacity": {"storage": obj.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("1Gi"))},
                })
            } else {
                json!({"phase": "Pending"})
            }
        }
        _ => return,
    };
    write_status(state, key, namespace, name, status);
}

/// Makes the owner's pods match: one per wanted name (pods of an older template go), each with
/// the status the current mode gives. `stable` keeps existing pods by name (StatefulSet-like);
/// otherwise any current pods count towards the wanted number.
fn sync_pods(state: &mut State, owner: &Value, template: &Value, hash: &str, wanted: Vec<String>, stable: bool) {
    let namespace = str_at(owner, "/metadata/namespace").to_string();
    let owner_name = str_at(owner, "/metadata/name").to_string();
    let owner_uid = str_at(owner, "/metadata/uid").to_string();
    let mut kept: Vec<String> = Vec::new();
    for pod in owned_pods(state, &namespace, &owner_name, &owner_uid) {
        let current = state
            .get(&pod_key(), &namespace, &pod)
            .is_some_and(|p| str_at(&p, "/metadata/labels/pod-template-hash") == hash);
        let still_wanted = if stable { wanted.contains(&pod) } else { kept.len() < wanted.len() };
        if current && still_wanted {
            kept.push(pod);
        } else {
            state.remove(&pod_key(), &namespace, &pod);
        }
    }
    let missing: Vec<String> = if stable {
        wanted.into_iter().filter(|n| !kept.contains(n)).collect()
    } else {
        let n = wanted.len().saturating_sub(kept.len());
        wanted.into_iter().take(n).collect()
    };
    for name in &missing {
        let mut labels = template.pointer("/metadata/labels").cloned().unwrap_or(json!({}));
        labels["pod-template-hash"] = json!(hash);
        let mut metadata = json!({
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [{
                "apiVersion": str_at(owner, "/apiVersion"),
                "kind": str_at(owner, "/kind"),
                "name": owner_name,
                "uid": owner_uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        });
        if let Some(annotations) = template.pointer("/metadata/annotations") {
            metadata["annotations"] = annotations.clone();
        }
        let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
        spec["nodeName"] = json!(NODE);
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": spec,
            "status": {"phase": "Pending", "qosClass": "BestEffort"},
        });
        create_internal(state, &pod_key(), &namespace, name, pod, CONTROLLER);
    }
    for name in kept.iter().chain(missing.iter()) {
        if let Some(pod) = state.get(&pod_key(), &namespace, name) {
            let status = pod_status(state, &pod);
            write_status(state, &pod_key(), &namespace, name, status);
        }
    }
}

fn container_names(pod: &Value) -> Vec<(String, String)> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| (str_at(c, "/name").to_string(), str_at(c, "/image").to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// The status the current mode gives a pod; records the kubelet's events and logs on the way.
fn pod_status(state: &mut State, pod: &Value) -> Value {
    let namespace = str_at(pod, "/metadata/namespace").to_string();
    let name = str_at(pod, "/metadata/name").to_string();
    let previous = pod.get("status");
    let now = util::now_rfc3339();
    let start = previous.and_then(|s| s.get("startTime")).cloned().unwrap_or_else(|| json!(now));
    let containers = container_names(pod);
    let names: Vec<&str> = containers.iter().map(|(n, _)| n.as_str()).collect();
    let unready = format!("containers with unready status: [{}]", names.join(" "));
    let by_job = pod.pointer("/metadata/ownerReferences/0/kind").and_then(Value::as_str) == Some("Job");
    let scheduled = |state: &str, reason: Option<&str>, message: Option<&str>| {
        let mut c = condition(previous, "PodScheduled", state, reason.unwrap_or(""), message.unwrap_or(""), false);
        if reason.is_none()
            && let Some(m) = c.as_object_mut()
        {
            m.remove("reason");
            m.remove("message");
        }
        c
    };
    let simple = |kind: &str, status: &str, reason: Option<&str>, message: Option<&str>| {
        let mut c = condition(previous, kind, status, reason.unwrap_or(""), message.unwrap_or(""), false);
        if reason.is_none()
            && let Some(m) = c.as_object_mut()
        {
            m.remove("reason");
            m.remove("message");
        }
        c
    };
    let ip = format!("10.244.0.{}", util::random_u64() % 250 + 2);
    let pod_ip = previous.and_then(|s| s.get("podIP")).cloned().unwrap_or_else(|| json!(ip));
    let base = |phase: &str, conditions: Vec<Value>, statuses: Vec<Value>| {
        let mut s = json!({
            "phase": phase,
            "conditions": conditions,
            "hostIP": "10.0.0.1",
            "hostIPs": [{"ip": "10.0.0.1"}],
            "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}],
            "startTime": start,
            "qosClass": "BestEffort",
        });
        if !statuses.is_empty() {
            s["containerStatuses"] = Value::Array(statuses);
        }
        s
    };
    let container_status = |c: &(String, String), ready: bool, state: Value, extra: Option<(&str, Value)>| {
        let mut s = json!({
            "name": c.0,
            "image": c.1,
            "imageID": "",
            "containerID": format!("containerd://{}", util::stable_hash(&json!([name, c.0]), 16)),
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": state,
            "lastState": {},
        });
        if let Some((k, v)) = extra {
            s[k] = v;
        }
        s
    };
    if kubelet_runs(state, pod.get("spec")) {
        return running_pod_status(state, pod);
    }
    match state.workloads.clone() {
        Workloads::Ready { .. } if by_job => {
            let statuses = containers
                .iter()
                .map(|c| {
                    container_status(
                        c,
                        false,
                        json!({"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": now}}),
                        None,
                    )
                })
                .collect();
            base(
                "Succeeded",
                vec![
                    simple("Initialized", "True", None, None),
                    simple("Ready", "False", Some("PodCompleted"), None),
                    simple("ContainersReady", "False", Some("PodCompleted"), None),
                    scheduled("True", None, None),
                ],
                statuses,
            )
        }
        Workloads::Ready { .. } => {
            let statuses = containers
                .iter()
                .map(|c| container_status(c, true, json!({"running": {"startedAt": start}}), None))
                .collect();
            base(
                "Running",
                vec![
                    simple("PodReadyToStartContainers", "True", None, None),
                    simple("Initialized", "True", None, None),
                    simple("Ready", "True", None, None),
                    simple("ContainersReady", "True", None, None),
                    scheduled("True", None, None),
                ],
                statuses,
            )
        }
        Workloads::NeverReady => {
            let statuses = containers
                .iter()
                .map(|c| container_status(c, false, json!({"waiting": {"reason": "ContainerCreating"}}), None))
                .collect();
            base(
                "Pending",
                vec![
                    simple("Initialized", "True", None, None),
                    simple("Ready", "False", Some("ContainersNotReady"), Some(&unready)),
                    simple("ContainersReady", "False", Some("ContainersNotReady"), Some(&unready)),
                    scheduled("True", None, None),
                ],
                statuses,
            )
        }
        Workloads::CrashLoop { exit_code, log } => {
            let mut statuses = Vec::new();
            for c in &containers {
                let waiting = json!({"waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": format!("back-off 10s restarting failed container={} pod={name}_{namespace}({})", c.0, str_at(pod, "/metadata/uid")),
                }});
                let mut s = container_status(
                    c,
                    false,
                    waiting,
                    Some((
                        "lastState",
                        json!({"terminated": {
                            "exitCode": exit_code,
                            "reason": "Error",
                            "startedAt": start,
                            "finishedAt": now,
                        }}),
                    )),
                );
                s["restartCount"] = json!(3);
                statuses.push(s);
                state.logs.insert((namespace.clone(), name.clone(), c.0.clone()), log.clone());
                record_event(
                    state,
                    pod,
                    Some(&c.0),
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {} in pod {name}_{namespace}({})",
                        c.0,
                        str_at(pod, "/metadata/uid")
                    ),
                    "kubelet",
                );
            }
            base(
                "Running",
                vec![
                    simple("PodReadyToStartContainers", "True", None, None),
                    simple("Initialized", "True", None, None),
                    simple("Ready", "False", Some("ContainersNotReady"), Some(&unready)),
                    simple("ContainersReady", "False", Some("ContainersNotReady"), Some(&unready)),
                    scheduled("True", None, None),
                ],
                statuses,
            )
        }
        Workloads::ImagePullBackOff => {
            let mut statuses = Vec::new();
            for c in &containers {
                let waiting = json!({"waiting": {
                    "reason": "ImagePullBackOff",
                    "message": format!("Back-off pulling image \"{}\"", c.1),
                }});
                statuses.push(container_status(c, false, waiting, None));
                record_event(
                    state,
                    pod,
                    Some(&c.0),
                    "Failed",
                    &format!(
                        "Failed to pull image \"{}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{}\": not found",
                        c.1, c.1
                    ),
                    "kubelet",
                );
            }
            base(
                "Pending",
                vec![
                    simple("Initialized", "True", None, None),
                    simple("Ready", "False", Some("ContainersNotReady"), Some(&unready)),
                    simple("ContainersReady", "False", Some("ContainersNotReady"), Some(&unready)),
                    scheduled("True", None, None),
                ],
                statuses,
            )
        }
        Workloads::Run => running_pod_status(state, pod),
        Workloads::Unschedulable => {
            let message = "0/1 nodes are available: 1 Insufficient cpu.";
            record_event(
                state,
                pod,
                None,
                "FailedScheduling",
                &format!("{message} preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."),
                "default-scheduler",
            );
            json!({
                "phase": "Pending",
                "conditions": [scheduled("False", Some("Unschedulable"), Some(message))],
                "qosClass": "BestEffort",
            })
        }
    }
}

/// Whether the kubelet really runs pods of this spec: always under [`Workloads::Run`], and
/// under [`Workloads::Ready`] when it holds every container's image.
pub(crate) fn kubelet_runs(state: &State, pod_spec: Option<&Value>) -> bool {
    match state.workloads {
        Workloads::Run => true,
        Workloads::Ready { .. } => {
            let containers = pod_spec.and_then(|s| s.get("containers")).and_then(Value::as_array);
            state
                .kubelet
                .holds_all(containers.into_iter().flatten().map(|c| str_at(c, "/image")))
        }
        _ => false,
    }
}

/// Whether a pod's Ready condition is True.
fn pod_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// A pod the kubelet runs changed: rewrites its status and has its owner look again.
fn refresh_running_pod(state: &mut State, namespace: &str, name: &str, now: Instant) {
    let Some(pod) = state.get(&pod_key(), namespace, name) else {
        return;
    };
    if !kubelet_runs(state, pod.get("spec")) {
        return;
    }
    let status = pod_status(state, &pod);
    write_status(state, &pod_key(), namespace, name, status);
    let owner = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r.get("controller") == Some(&json!(true))))
        .cloned();
    if let Some(owner) = owner {
        let (group, _) = crate::resources::split_api_version(str_at(&owner, "/apiVersion"));
        let key = TypeKey::new(group, str_at(&owner, "/kind"));
        state.schedule(now, Work::Workload(key, namespace.to_string(), str_at(&owner, "/name").to_string()));
    }
}

/// A value of a Secret's or ConfigMap's key, as the kubelet reads it for the environment.
fn key_of(state: &State, namespace: &str, kind: &str, name: &str, key: &str) -> Result<Option<String>, String> {
    let Some(obj) = state.get(&TypeKey::new("", kind), namespace, name) else {
        return Err(format!("{} \"{name}\" not found", kind.to_lowercase()));
    };
    let value = if kind == "Secret" {
        obj.pointer(&format!("/data/{}", key.replace('~', "~0").replace('/', "~1")))
            .and_then(Value::as_str)
            .and_then(|b| {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.decode(b).ok()
            })
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    } else {
        obj.get("data").and_then(|d| d.get(key)).and_then(Value::as_str).map(str::to_string)
    };
    Ok(value)
}

/// Every pair of a Secret or ConfigMap (`envFrom`).
fn all_keys(state: &State, namespace: &str, kind: &str, name: &str) -> Result<Vec<(String, String)>, String> {
    let Some(obj) = state.get(&TypeKey::new("", kind), namespace, name) else {
        return Err(format!("{} \"{name}\" not found", kind.to_lowercase()));
    };
    let keys: Vec<String> = obj
        .get("data")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    Ok(keys
        .into_iter()
        .filter_map(|k| key_of(state, namespace, kind, name, &k).ok().flatten().map(|v| (k, v)))
        .collect())
}

/// What the kubelet needs to run a pod's containers, their environment read from the store.
/// Err: the container and kubelet's message for a missing Secret, ConfigMap or key.
fn container_specs(state: &State, pod: &Value) -> Result<Vec<ContainerSpec>, (String, String)> {
    let namespace = str_at(pod, "/metadata/namespace");
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
    };
    let mut specs = Vec::new();
    for c in &containers {
        let container = str_at(c, "/name").to_string();
        let fail = |m: String| (container.clone(), m);
        let mut env: Vec<(String, String)> = Vec::new();
        for from in c.get("envFrom").and_then(Value::as_array).into_iter().flatten() {
            let prefix = str_at(from, "/prefix");
            for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                let Some(r) = from.get(field) else { continue };
                match all_keys(state, namespace, kind, str_at(r, "/name")) {
                    Ok(pairs) => env.extend(pairs.into_iter().map(|(k, v)| (format!("{prefix}{k}"), v))),
                    Err(_) if r.get("optional") == Some(&json!(true)) => {}
                    Err(m) => return Err(fail(m)),
                }
            }
        }
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            let name = str_at(e, "/name").to_string();
            let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
                Some(v.to_string())
            } else if let Some(from) = e.get("valueFrom") {
                let keyed = [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")]
                    .into_iter()
                    .find_map(|(field, kind)| from.get(field).map(|r| (r, kind)));
                if let Some((r, kind)) = keyed {
                    let optional = r.get("optional") == Some(&json!(true));
                    let (obj, key) = (str_at(r, "/name"), str_at(r, "/key"));
                    match key_of(state, namespace, kind, obj, key) {
                        Ok(Some(v)) => Some(v),
                        Ok(None) if !optional => {
                            return Err(fail(format!("couldn't find key {key} in {kind} {namespace}/{obj}")));
                        }
                        Err(m) if !optional => return Err(fail(m)),
                        _ => None,
                    }
                } else {
                    match str_at(from, "/fieldRef/fieldPath") {
                        "metadata.name" => Some(str_at(pod, "/metadata/name").to_string()),
                        "metadata.namespace" => Some(namespace.to_string()),
                        "metadata.uid" => Some(str_at(pod, "/metadata/uid").to_string()),
                        "spec.nodeName" => Some(NODE.to_string()),
                        _ => None,
                    }
                }
            } else {
                Some(String::new())
            };
            if let Some(v) = value {
                env.retain(|(k, _)| *k != name);
                env.push((name, v));
            }
        }
        specs.push(ContainerSpec {
            name: container.clone(),
            image: str_at(c, "/image").to_string(),
            command: strings(c.get("command")),
            args: strings(c.get("args")),
            working_dir: c.get("workingDir").and_then(Value::as_str).map(str::to_string),
            env,
            mounts: mounts(state, pod, c).map_err(fail)?,
        });
    }
    Ok(specs)
}

/// The volumes a container mounts, with their content: a ConfigMap's or Secret's keys (or the
/// `items` chosen), nothing for an `emptyDir`. Err: kubelet's words for a missing source.
fn mounts(state: &State, pod: &Value, container: &Value) -> Result<Vec<Mount>, String> {
    let namespace = str_at(pod, "/metadata/namespace");
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array);
    let mut out = Vec::new();
    for m in container.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
        let name = str_at(m, "/name");
        let Some(volume) = volumes.into_iter().flatten().find(|v| str_at(v, "/name") == name) else {
            return Err(format!("volume \"{name}\" is mounted but the pod has no such volume"));
        };
        let source = [("configMap", "ConfigMap", "/name"), ("secret", "Secret", "/secretName")]
            .into_iter()
            .find_map(|(field, kind, name_at)| volume.get(field).map(|s| (s, kind, str_at(s, name_at))));
        let mut files: Vec<(String, Vec<u8>)> = match source {
            None => Vec::new(),
            Some((s, kind, object)) => match all_keys(state, namespace, kind, object) {
                Err(_) if s.get("optional") == Some(&json!(true)) => Vec::new(),
                Err(why) => return Err(format!("MountVolume.SetUp failed for volume \"{name}\" : {why}")),
                Ok(pairs) => match s.get("items").and_then(Value::as_array) {
                    None => pairs.into_iter().map(|(k, v)| (k, v.into_bytes())).collect(),
                    Some(items) => items
                        .iter()
                        .filter_map(|i| {
                            let (key, path) = (str_at(i, "/key"), str_at(i, "/path"));
                            pairs
                                .iter()
                                .find(|(k, _)| k == key)
                                .map(|(_, v)| (path.to_string(), v.clone().into_bytes()))
                        })
                        .collect(),
                },
            },
        };
        let mut path = str_at(m, "/mountPath").to_string();
        let sub_path = str_at(m, "/subPath");
        if !sub_path.is_empty() {
            // One key mounted as the file `mountPath`.
            let (dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            files = files
                .into_iter()
                .filter(|(k, _)| k == sub_path)
                .map(|(_, v)| (file.to_string(), v))
                .collect();
            path = dir.to_string();
        }
        out.push(Mount { path, files });
    }
    Ok(out)
}

/// Formats a back-off as Go prints a duration (`200ms`, `1.6s`).
fn go_duration(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// A pod's status under [`Workloads::Run`]: starts it on first sight, then reports what the
/// kubelet sees (pulls, config errors, running, crash loops), recording kubelet's events.
fn running_pod_status(state: &mut State, pod: &Value) -> Value {
    let namespace = str_at(pod, "/metadata/namespace").to_string();
    let name = str_at(pod, "/metadata/name").to_string();
    let uid = str_at(pod, "/metadata/uid").to_string();
    let previous = pod.get("status");
    let containers = container_names(pod);
    // Waiting reasons that hold for the whole pod: it cannot be started (yet).
    let mut blocked: Option<(Option<String>, &str, String)> = None;
    let run = match state.kubelet.status(&namespace, &name, &uid) {
        Some(run) => run,
        None => match container_specs(state, pod) {
            Err((container, message)) => {
                // The kubelet looks again, as it does, in case the object appears.
                state.schedule(
                    Instant::now() + Duration::from_secs(1),
                    Work::Workload(pod_key(), namespace.clone(), name.clone()),
                );
                blocked = Some((Some(container), "CreateContainerConfigError", message));
                PodRun::default()
            }
            Ok(specs) => {
                let policy = str_at(pod, "/spec/restartPolicy").to_string();
                match state.kubelet.start(&namespace, &name, &uid, specs, &policy, state.ready_after) {
                    Ok(()) => state.kubelet.status(&namespace, &name, &uid).unwrap_or_default(),
                    Err(message) => {
                        blocked = Some((None, "CreateContainerError", message));
                        PodRun::default()
                    }
                }
            }
        },
    };
    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let (mut started, mut terminated, mut failed) = (false, 0, false);
    for (cname, image) in &containers {
        let c = run.containers.iter().find(|c| c.name == *cname);
        let waiting = |reason: &str, message: &str| json!({"waiting": {"reason": reason, "message": message}});
        let mut event = None;
        let (container_state, ready) = match (c.map(|c| &c.phase), &blocked) {
            (_, Some((only, reason, message))) if only.as_ref().is_none_or(|o| o == cname) => {
                event = Some(("Failed", format!("Error: {message}")));
                (waiting(reason, message), false)
            }
            (None | Some(Phase::Creating), _) => (json!({"waiting": {"reason": "ContainerCreating"}}), false),
            (Some(Phase::PullFailed { message, backoff }), _) => {
                event = Some(("Failed", format!("Failed to pull image \"{image}\": {message}")));
                if *backoff {
                    let m = format!("Back-off pulling image \"{image}\": ErrImagePull: {message}");
                    (waiting("ImagePullBackOff", &m), false)
                } else {
                    (waiting("ErrImagePull", message), false)
                }
            }
            (Some(Phase::CreateFailed(message)), _) => {
                event = Some(("Failed", format!("Error: {message}")));
                (waiting("CreateContainerError", message), false)
            }
            (Some(Phase::Running { started_at, ready }), _) => {
                started = true;
                (json!({"running": {"startedAt": started_at}}), *ready)
            }
            (Some(Phase::BackOff { delay }), _) => {
                started = true;
                event = Some((
                    "BackOff",
                    format!("Back-off restarting failed container {cname} in pod {name}_{namespace}({uid})"),
                ));
                let m = format!(
                    "back-off {} restarting failed container={cname} pod={name}_{namespace}({uid})",
                    go_duration(*delay)
                );
                (waiting("CrashLoopBackOff", &m), false)
            }
            (Some(Phase::Terminated), _) => {
                started = true;
                terminated += 1;
                let exit = c.and_then(|c| c.last_exit.clone());
                let code = exit.as_ref().map_or(0, |e| e.code);
                failed |= code != 0;
                let (s, f) = exit.map(|e| (e.started_at, e.finished_at)).unwrap_or_default();
                let reason = if code == 0 { "Completed" } else { "Error" };
                (
                    json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": s, "finishedAt": f}}),
                    false,
                )
            }
        };
        if let Some((reason, message)) = event {
            record_event(state, pod, Some(cname), reason, &message, "kubelet");
        }
        if !ready {
            unready.push(cname.as_str());
        }
        let last_state = match c.and_then(|c| c.last_exit.as_ref()) {
            Some(e) if !matches!(c.map(|c| &c.phase), Some(Phase::Terminated)) => json!({"terminated": {
                "exitCode": e.code,
                "reason": if e.code == 0 { "Completed" } else { "Error" },
                "startedAt": e.started_at,
                "finishedAt": e.finished_at,
            }}),
            _ => json!({}),
        };
        let mut s = json!({
            "name": cname,
            "image": image,
            "imageID": c.map(|c| c.image_id.clone()).unwrap_or_default(),
            "ready": ready,
            "started": ready || container_state.get("running").is_some(),
            "restartCount": c.map_or(0, |c| c.restarts),
            "state": container_state,
            "lastState": last_state,
        });
        if started {
            s["containerID"] = json!(format!("containerd://{}", util::stable_hash(&json!([uid, cname]), 16)));
        }
        statuses.push(s);
    }
    let phase = if !containers.is_empty() && terminated == containers.len() {
        if failed { "Failed" } else { "Succeeded" }
    } else if started {
        "Running"
    } else {
        "Pending"
    };
    let simple = |kind: &str, ok: bool| {
        let message = format!("containers with unready status: [{}]", unready.join(" "));
        let mut c = condition(
            previous,
            kind,
            if ok { "True" } else { "False" },
            "ContainersNotReady",
            &message,
            false,
        );
        // Only the readiness conditions say which containers hold them back.
        let explained = !ok && matches!(kind, "Ready" | "ContainersReady");
        if !explained && let Some(m) = c.as_object_mut() {
            m.remove("reason");
            m.remove("message");
        }
        c
    };
    let all_ready = unready.is_empty() && !containers.is_empty();
    let now = util::now_rfc3339();
    let mut status = json!({
        "phase": phase,
        "conditions": [
            simple("PodReadyToStartContainers", run.ip.is_some()),
            simple("Initialized", true),
            simple("Ready", all_ready),
            simple("ContainersReady", all_ready),
            simple("PodScheduled", true),
        ],
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "startTime": previous.and_then(|s| s.get("startTime")).cloned().unwrap_or_else(|| json!(now)),
        "qosClass": "BestEffort",
        "containerStatuses": statuses,
    });
    if let Some(ip) = &run.ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    status
}

/// Records a Warning event about `pod` (or counts one more of the same reason).
fn record_event(state: &mut State, pod: &Value, container: Option<&str>, reason: &str, message: &str, component: &str) {
    let namespace = str_at(pod, "/metadata/namespace").to_string();
    let pod_name = str_at(pod, "/metadata/name").to_string();
    let uid = str_at(pod, "/metadata/uid").to_string();
    let event_key = TypeKey::new("", "Event");
    let name = format!("{pod_name}.{}", util::stable_hash(&json!([uid, reason, container]), 16));
    let now = util::now_rfc3339();
    if let Some(existing) = state.get(&event_key, &namespace, &name) {
        let mut updated = (*existing).clone();
        let count = updated.get("count").and_then(Value::as_i64).unwrap_or(1);
        updated["count"] = json!(count + 1);
        updated["lastTimestamp"] = json!(now);
        updated["message"] = json!(message);
        state.commit(&event_key, &namespace, &name, updated);
        return;
    }
    let mut involved = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod_name,
        "namespace": namespace,
        "uid": uid,
    });
    if let Some(c) = container {
        involved["fieldPath"] = json!(format!("spec.containers{{{c}}}"));
    }
    let host = if component == "kubelet" { json!(NODE) } else { Value::Null };
    let mut source = json!({"component": component});
    if !host.is_null() {
        source["host"] = host;
    }
    let event = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": "Warning",
        "count": 1,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "source": source,
        "reportingComponent": component,
        "reportingInstance": if component == "kubelet" { NODE } else { "" },
    });
    create_internal(state, &event_key, &namespace, &name, event, component);
}

pub(crate) fn establish_crd(state: &mut State, name: &str) {
    let key = crd_key();
    let Some(crd) = state.get(&key, "", name) else {
        return;
    };
    let group = str_at(&crd, "/spec/group").to_string();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let kind = str_at(&names, "/kind").to_string();
    let plural = str_at(&names, "/plural").to_string();
    if group.is_empty() || kind.is_empty() || plural.is_empty() {
        return;
    }
    let singular = match str_at(&names, "/singular") {
        "" => kind.to_lowercase(),
        s => s.to_string(),
    };
    let list_kind = match str_at(&names, "/listKind") {
        "" => format!("{kind}List"),
        s => s.to_string(),
    };
    let versions: Vec<Value> = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut served: Vec<String> = versions
        .iter()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_string))
        .collect();
    served.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
    if served.is_empty() {
        return;
    }
    let status_subresource = versions.iter().any(|v| v.pointer("/subresources/status").is_some());
    let storage = versions
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name").and_then(Value::as_str))
        .unwrap_or(&served[0])
        .to_string();
    let strings = |field: &str| -> Vec<String> {
        names
            .get(field)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let rt = ResourceType {
        group: group.clone(),
        versions: served,
        kind: kind.clone(),
        plural: plural.clone(),
        singular: singular.clone(),
        namespaced: str_at(&crd, "/spec/scope") != "Cluster",
        short_names: strings("shortNames"),
        categories: strings("categories"),
        status: status_subresource,
        subresources: Vec::new(),
        custom: true,
        generation: true,
    };
    if let Some(existing) = state.registry.get(&rt.key())
        && !existing.custom
    {
        return;
    }
    state.registry.insert(rt);
    let previous = crd.get("status");
    let mut accepted = json!({"kind": kind, "plural": plural, "singular": singular, "listKind": list_kind});
    for field in ["shortNames", "categories"] {
        if let Some(v) = names.get(field) {
            accepted[field] = v.clone();
        }
    }
    let status = json!({
        "conditions": [
            condition(previous, "NamesAccepted", "True", "NoConflicts", "no conflicts found", false),
            condition(previous, "Established", "True", "InitialNamesAccepted", "the initial names have been accepted", false),
        ],
        "acceptedNames": accepted,
        "storedVersions": [storage],
    });
    write_status(state, &key, "", name, status);
}
