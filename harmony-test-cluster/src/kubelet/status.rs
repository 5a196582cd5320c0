//! A pod's status as a kubelet reports it, from what the runtime knows of its containers: the
//! phase, the readiness conditions, each container's state (waiting with its reason, running,
//! terminated with its exit code), restart counts, the last termination, and the pod's IP; and
//! the events a kubelet sends when a container enters a new state.

use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt as _;
use serde_json::{Value, json};

use super::runtime::{Phase, PodRun};
use crate::util;

/// A container's state, and the events that entering it sends.
#[derive(Debug, Clone)]
pub(crate) struct Note {
    pub container: String,
    /// Changes whenever the container enters a state that sends events.
    pub state: String,
    /// (type, reason, message)
    pub events: Vec<(&'static str, &'static str, String)>,
}

/// Formats a back-off as Go prints a duration (`200ms`, `1.6s`).
fn go_duration(d: std::time::Duration) -> String {
    if d < std::time::Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

/// The QoS class the pod's resources put it in.
fn qos_class(pod: &Pod) -> &'static str {
    let containers = pod.spec.iter().flat_map(|s| s.containers.iter());
    let (mut any, mut guaranteed) = (false, true);
    for c in containers {
        let resources = c.resources.clone().unwrap_or_default();
        let (requests, limits) = (resources.requests.unwrap_or_default(), resources.limits.unwrap_or_default());
        any |= !requests.is_empty() || !limits.is_empty();
        for resource in ["cpu", "memory"] {
            let limit = limits.get(resource);
            let request = requests.get(resource).or(limit);
            guaranteed &= limit.is_some() && request == limit;
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// The status to report, and the state of each container. `blocked`: a container that cannot
/// be created yet and why (a missing Secret or ConfigMap), or why the pod cannot run at all.
pub(crate) fn pod_status(pod: &Pod, run: &PodRun, blocked: Option<&(String, String)>) -> (Value, Vec<Note>) {
    let (ns, name, uid) = (pod.namespace().unwrap_or_default(), pod.name_any(), pod.uid().unwrap_or_default());
    let previous = pod.status.as_ref();
    let containers: Vec<(String, String)> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
        .collect();
    let mut statuses = Vec::new();
    let mut notes = Vec::new();
    let mut unready = Vec::new();
    let (mut started, mut terminated, mut failed) = (false, 0, false);
    for (cname, image) in &containers {
        let c = run.containers.iter().find(|c| c.name == *cname);
        let waiting = |reason: &str, message: &str| json!({"waiting": {"reason": reason, "message": message}});
        let mut events: Vec<(&'static str, &'static str, String)> = Vec::new();
        let restarts = c.map_or(0, |c| c.restarts);
        let (container_state, ready, state_key) = match (c.map(|c| &c.phase), blocked) {
            (_, Some((only, message))) if only.is_empty() || only == cname => {
                let reason = if message.contains("not found") || message.contains("couldn't find key") {
                    "CreateContainerConfigError"
                } else {
                    "CreateContainerError"
                };
                events.push(("Warning", "Failed", format!("Error: {message}")));
                (waiting(reason, message), false, format!("blocked:{message}"))
            }
            (None | Some(Phase::Creating), _) => (json!({"waiting": {"reason": "ContainerCreating"}}), false, "creating".to_owned()),
            (Some(Phase::PullFailed { message, backoff }), _) => {
                if *backoff {
                    events.push(("Normal", "BackOff", format!("Back-off pulling image \"{image}\"")));
                    events.push(("Warning", "Failed", "Error: ImagePullBackOff".to_owned()));
                    let m = format!("Back-off pulling image \"{image}\": ErrImagePull: {message}");
                    (waiting("ImagePullBackOff", &m), false, "pull-backoff".to_owned())
                } else {
                    events.push(("Warning", "Failed", format!("Failed to pull image \"{image}\": {message}")));
                    events.push(("Warning", "Failed", "Error: ErrImagePull".to_owned()));
                    (waiting("ErrImagePull", message), false, "pull-failed".to_owned())
                }
            }
            (Some(Phase::CreateFailed(message)), _) => {
                events.push(("Warning", "Failed", format!("Error: {message}")));
                (waiting("CreateContainerError", message), false, "create-failed".to_owned())
            }
            (Some(Phase::Running { started_at, ready }), _) => {
                started = true;
                events.push((
                    "Normal",
                    "Pulled",
                    format!("Container image \"{image}\" already present on machine"),
                ));
                events.push(("Normal", "Created", format!("Created container: {cname}")));
                events.push(("Normal", "Started", format!("Started container {cname}")));
                (json!({"running": {"startedAt": started_at}}), *ready, format!("running:{restarts}"))
            }
            (Some(Phase::BackOff { delay }), _) => {
                started = true;
                events.push((
                    "Warning",
                    "BackOff",
                    format!("Back-off restarting failed container {cname} in pod {name}_{ns}({uid})"),
                ));
                let m = format!(
                    "back-off {} restarting failed container={cname} pod={name}_{ns}({uid})",
                    go_duration(*delay)
                );
                (waiting("CrashLoopBackOff", &m), false, format!("backoff:{restarts}"))
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
                    "terminated".to_owned(),
                )
            }
        };
        notes.push(Note {
            container: cname.clone(),
            state: state_key,
            events,
        });
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
            "restartCount": restarts,
            "state": container_state,
            "lastState": last_state,
        });
        if started {
            s["containerID"] = json!(format!("harmony://{}", util::stable_hash(&json!([uid, cname]), 16)));
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
    let all_ready = unready.is_empty() && !containers.is_empty();
    let now = util::now_rfc3339();
    // A condition keeps its transition time while its status holds.
    let condition = |kind: &str, ok: bool| {
        let status = if ok { "True" } else { "False" };
        let since = previous
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == kind && c.status == status))
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| json!(t))
            .unwrap_or_else(|| json!(now));
        let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
        if !ok && matches!(kind, "Ready" | "ContainersReady") {
            let done = matches!(phase, "Succeeded" | "Failed");
            c["reason"] = json!(if done { "PodCompleted" } else { "ContainersNotReady" });
            if !done {
                c["message"] = json!(format!("containers with unready status: [{}]", unready.join(" ")));
            }
        }
        c
    };
    let mut conditions = vec![
        condition("PodReadyToStartContainers", run.ip.is_some()),
        condition("Initialized", true),
        condition("Ready", all_ready),
        condition("ContainersReady", all_ready),
    ];
    // The conditions others own (the scheduler's PodScheduled) stay as they are.
    let ours = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady"];
    conditions.extend(
        previous
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .filter(|c| !ours.contains(&c.type_.as_str()))
            .filter_map(|c| serde_json::to_value(c).ok()),
    );
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "startTime": previous
            .and_then(|s| s.start_time.as_ref())
            .map(|t| json!(t))
            .unwrap_or_else(|| json!(now)),
        "qosClass": qos_class(pod),
        "containerStatuses": statuses,
    });
    if let Some(ip) = &run.ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{"ip": ip}]);
    }
    (status, notes)
}
