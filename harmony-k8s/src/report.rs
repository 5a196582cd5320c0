//! Why an object is not ready, as a user would dig it out with kubectl: its
//! status, its pods' containers (what they wait for, how they ended), the
//! recent Warning events of the object and its pods, and the last lines of
//! the failing container's log. Secret values are redacted throughout.

use std::time::Duration;

use harmony::capability::Unhealthy;
use harmony::{ObjectRef, SmokeError};
use kube::api::{ListParams, LogParams};
use serde_json::Value;

use crate::cluster::Cluster;
use crate::cluster::Served;
use crate::error::Subject;
use crate::readiness::{Readiness, State};

/// What waiting for one object ended with: what a report starts from.
#[derive(Debug)]
pub struct Waited {
    pub readiness: Readiness,
    /// The object as last seen (`None` if it is gone).
    pub object: Option<Value>,
    pub timed_out: bool,
}

/// How many pods, events and log lines a report shows.
const PODS: usize = 3;
const EVENTS: usize = 5;
const LOG_LINES: i64 = 10;

/// The report of an object that failed or timed out.
pub async fn culprit(cluster: &Cluster, id: &ObjectRef, waited: &Waited, timeout: Duration) -> SmokeError {
    let mut lines = Vec::new();
    if waited.timed_out {
        lines.push(format!("not ready after {} s: {}", timeout.as_secs(), waited.readiness.reason));
    } else {
        lines.push(waited.readiness.reason.clone());
    }
    let mut help = None;
    if let Some(object) = &waited.object {
        help = findings(cluster, id, object, &mut lines).await;
    }
    let help = help.unwrap_or_else(|| {
        if waited.timed_out {
            format!(
                "look at the events and logs above for why it is not ready, or allow it longer with `{}`; what was applied stays applied",
                crate::settings::TIMEOUT_VAR
            )
        } else {
            "fix the cause above and apply again; what was applied stays applied".into()
        }
    });
    let why = lines.iter().map(|l| cluster.secrets.redact(l)).collect::<Vec<_>>().join("\n  ");
    SmokeError::new(format!("readiness of {id}"), why).with_help(cluster.secrets.redact(&help))
}

/// An object found not ready by a plan, with the same report a failed
/// verification gives (help only where a problem calls for one: an object
/// merely on its way needs none).
pub async fn not_ready(cluster: &Cluster, id: &ObjectRef, object: &Value, readiness: &Readiness) -> Unhealthy {
    let mut lines = vec![readiness.reason.clone()];
    let mut help = findings(cluster, id, object, &mut lines).await;
    if help.is_none() && readiness.state == State::Failed {
        help = Some("fix the cause above and apply again".into());
    }
    Unhealthy {
        object: id.clone(),
        why: lines.iter().map(|l| cluster.secrets.redact(l)).collect::<Vec<_>>().join("\n"),
        help: help.map(|h| cluster.secrets.redact(&h)),
    }
}

/// What the object's pods, events and log say, added to `lines`; the help
/// the first problem found calls for.
async fn findings(cluster: &Cluster, id: &ObjectRef, object: &Value, lines: &mut Vec<String>) -> Option<String> {
    let namespace = id.namespace.as_deref()?;
    let mut help = None;
    let pods = pods_of(cluster, id, object, namespace).await;
    let mut names = vec![id.name.clone()];
    let mut log_of = None;
    for pod in pods.iter().take(PODS) {
        let pod_name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?").to_owned();
        for problem in pod_problems(pod) {
            if help.is_none() {
                help = Some(help_for(&problem.reason, &problem.detail));
            }
            if log_of.is_none() && problem.has_log {
                log_of = Some((pod_name.clone(), problem.container.clone(), problem.restarted));
            }
            let line = format!("pod {pod_name}: {}", problem.describe());
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
        names.push(pod_name);
    }
    lines.extend(warnings(cluster, namespace, &names).await);
    if let Some((pod, container, previous)) = log_of {
        lines.extend(log_tail(cluster, namespace, &pod, &container, previous).await);
    }
    help
}

/// Container states that do not pass without a change: a workload whose pod
/// shows one has failed, however long it would be waited for.
const STUCK: [&str; 5] = [
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// Why a workload cannot become ready without a change, if one of its pods says so.
pub async fn stuck(cluster: &Cluster, id: &ObjectRef, object: &Value) -> Option<String> {
    let namespace = id.namespace.as_deref()?;
    object.pointer("/spec/selector")?;
    for pod in pods_of(cluster, id, object, namespace).await {
        let name = pod.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("?").to_owned();
        if let Some(problem) = pod_problems(&pod).into_iter().find(|p| STUCK.contains(&p.reason.as_str())) {
            return Some(format!("pod {name}: {}", problem.describe()));
        }
    }
    None
}

/// The pods of a workload (by its selector), or the pod itself.
async fn pods_of(cluster: &Cluster, id: &ObjectRef, object: &Value, namespace: &str) -> Vec<Value> {
    if id.api_version == "v1" && id.kind == "Pod" {
        return vec![object.clone()];
    }
    let Some(labels) = object.pointer("/spec/selector/matchLabels").and_then(Value::as_object) else {
        return Vec::new();
    };
    let selector: Vec<String> = labels.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect();
    let api = cluster.api(&core("Pod", "pods"), Some(namespace));
    let params = ListParams::default().labels(&selector.join(","));
    match cluster.call("list", Subject::Named("pods"), || api.list(&params)).await {
        Ok(list) => list.items.iter().map(|p| serde_json::to_value(p).unwrap_or(Value::Null)).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "pods could not be listed for the report");
            Vec::new()
        }
    }
}

/// Something wrong with one container of a pod, or with the pod's scheduling.
struct Problem {
    container: String,
    reason: String,
    detail: String,
    has_log: bool,
    restarted: bool,
}

impl Problem {
    fn describe(&self) -> String {
        match (self.container.is_empty(), self.detail.is_empty()) {
            (true, _) => format!("{}: {}", self.reason, self.detail),
            (false, true) => format!("container `{}` is {}", self.container, self.reason),
            (false, false) => format!("container `{}` is {}: {}", self.container, self.reason, self.detail),
        }
    }
}

fn pod_problems(pod: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(conditions) = pod.pointer("/status/conditions").and_then(Value::as_array) {
        for c in conditions {
            let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("");
            if field("type") == "PodScheduled" && field("status") == "False" {
                problems.push(Problem {
                    container: String::new(),
                    reason: field("reason").to_owned(),
                    detail: field("message").to_owned(),
                    has_log: false,
                    restarted: false,
                });
            }
        }
    }
    for status in pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = status.get("name").and_then(Value::as_str).unwrap_or("?").to_owned();
        let restarts = status.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
        if let Some(waiting) = status.pointer("/state/waiting") {
            let reason = waiting.get("reason").and_then(Value::as_str).unwrap_or("waiting").to_owned();
            let mut detail = waiting.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
            if let Some(code) = status.pointer("/lastState/terminated/exitCode").and_then(Value::as_i64) {
                detail = format!("{detail} (last exit code {code}, {restarts} restarts)").trim().to_owned();
            }
            let has_log = reason == "CrashLoopBackOff" || restarts > 0;
            problems.push(Problem {
                container: name,
                reason,
                detail,
                has_log,
                restarted: restarts > 0,
            });
        } else if let Some(terminated) = status.pointer("/state/terminated") {
            let code = terminated.get("exitCode").and_then(Value::as_i64).unwrap_or(0);
            if code != 0 {
                problems.push(Problem {
                    container: name,
                    reason: "Terminated".into(),
                    detail: format!("exit code {code}"),
                    has_log: true,
                    restarted: false,
                });
            }
        }
    }
    problems
}

/// The recent Warning events of the named objects.
async fn warnings(cluster: &Cluster, namespace: &str, names: &[String]) -> Vec<String> {
    let api = cluster.api(&core("Event", "events"), Some(namespace));
    let params = ListParams::default();
    let Ok(list) = cluster.call("list", Subject::Named("events"), || api.list(&params)).await else {
        return Vec::new();
    };
    let mut events: Vec<Value> = list
        .items
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
        .filter(|e| e.get("type").and_then(Value::as_str) == Some("Warning"))
        .filter(|e| {
            let name = e.pointer("/involvedObject/name").and_then(Value::as_str).unwrap_or("");
            names.iter().any(|n| n == name)
        })
        .collect();
    let when = |e: &Value| {
        ["/lastTimestamp", "/eventTime", "/metadata/creationTimestamp"]
            .iter()
            .find_map(|p| e.pointer(p).and_then(Value::as_str))
            .unwrap_or("")
            .to_owned()
    };
    events.sort_by_key(when);
    let start = events.len().saturating_sub(EVENTS);
    events[start..]
        .iter()
        .map(|e| {
            let field = |p: &str| e.pointer(p).and_then(Value::as_str).unwrap_or("");
            let count = e.get("count").and_then(Value::as_i64).filter(|c| *c > 1);
            let times = count.map(|c| format!(" (x{c})")).unwrap_or_default();
            format!(
                "event {} on {} {}: {}{times}",
                field("/reason"),
                field("/involvedObject/kind"),
                field("/involvedObject/name"),
                field("/message")
            )
        })
        .collect()
}

/// The last lines of a container's log (of its previous run if it restarted).
async fn log_tail(cluster: &Cluster, namespace: &str, pod: &str, container: &str, previous: bool) -> Vec<String> {
    let api: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(cluster.client.clone(), namespace);
    let params = LogParams {
        container: Some(container.to_owned()),
        tail_lines: Some(LOG_LINES),
        previous,
        ..LogParams::default()
    };
    match cluster
        .call("read the log of", Subject::Named(pod), || api.logs(pod, &params))
        .await
    {
        Ok(text) if !text.trim().is_empty() => {
            let mut out = vec![format!("last lines of the log of {pod}/{container}:")];
            out.extend(text.lines().map(|l| format!("  | {l}")));
            out
        }
        _ => Vec::new(),
    }
}

fn help_for(reason: &str, detail: &str) -> String {
    match reason {
        "ImagePullBackOff" | "ErrImagePull" | "InvalidImageName" => format!(
            "the cluster cannot pull the image ({detail}): check that it exists at that reference and that the cluster can reach the registry (credentials: `imagePullSecrets`)"
        ),
        "CrashLoopBackOff" => {
            "the container starts and exits: read its log above, fix the cause, and apply again; what was applied stays applied".into()
        }
        "CreateContainerConfigError" => {
            "a ConfigMap or Secret the container references is missing or lacks the key: deploy it in an earlier step, or fix the reference"
                .into()
        }
        "Unschedulable" => {
            "no node can run the pod: lower its resource requests, add capacity, or fix its node selector and tolerations".into()
        }
        "ContainerCreating" | "PodInitializing" => format!(
            "the container is still {reason} (its image pulled, its volumes mounted): its pod's events (`kubectl describe pod`) \
             say what it waits for; if it is only slow, wait longer with `{}`",
            crate::settings::TIMEOUT_VAR
        ),
        _ => format!("the container is {reason}: its pod's events (`kubectl describe pod`) say why"),
    }
}

fn core(kind: &str, plural: &str) -> Served {
    Served {
        resource: kube::discovery::ApiResource {
            group: String::new(),
            version: "v1".into(),
            api_version: "v1".into(),
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced: true,
    }
}
