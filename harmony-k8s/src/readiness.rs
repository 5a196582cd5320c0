//! Readiness: whether an applied object is working, by the kstatus rules
//! (the ones `kubectl wait`'s successors and Helm 4 use), computed from the
//! object alone. Generic rules first (deletion, observed generation,
//! `Reconciling`/`Stalled`), then the rules of the built-in kinds, then the
//! rule the Score set on the object (`harmony::ready_when::Ready`): a
//! condition or a status field its kind's rules do not know.

use harmony::ready_when::Ready;
use serde_json::Value;

/// Where an object stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Working as applied.
    Current,
    /// Getting there.
    InProgress,
    /// It will not get there without a change.
    Failed,
    /// Being deleted.
    Terminating,
}

/// A state and the reason for it, in words a user reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub state: State,
    pub reason: String,
}

impl Readiness {
    fn current(reason: impl Into<String>) -> Self {
        Self {
            state: State::Current,
            reason: reason.into(),
        }
    }

    fn in_progress(reason: impl Into<String>) -> Self {
        Self {
            state: State::InProgress,
            reason: reason.into(),
        }
    }

    fn failed(reason: impl Into<String>) -> Self {
        Self {
            state: State::Failed,
            reason: reason.into(),
        }
    }

    /// Whether waiting longer can change it.
    pub fn is_terminal(&self) -> bool {
        matches!(self.state, State::Current | State::Failed)
    }
}

/// The readiness of `object` as the cluster has it now: its kind's rules,
/// then the Score's own `rule` if it set one.
pub fn readiness(object: &Value, rule: &Ready) -> Readiness {
    let int = |p: &str| object.pointer(p).and_then(Value::as_i64);
    if object.pointer("/metadata/deletionTimestamp").is_some_and(|v| !v.is_null()) {
        return Readiness {
            state: State::Terminating,
            reason: "it is being deleted".into(),
        };
    }
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let group = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.split_once('/'))
        .map_or("", |(g, _)| g);
    if let (Some(generation), Some(observed)) = (int("/metadata/generation"), int("/status/observedGeneration"))
        && observed != generation
    {
        return Readiness::in_progress(format!(
            "its controller has not seen the latest change yet (generation {generation}, observed {observed})"
        ));
    }
    let conditions = Conditions(object.pointer("/status/conditions"));
    if let Some(c) = conditions.find("Reconciling").filter(|c| c.is_true()) {
        return Readiness::in_progress(c.describe("reconciling"));
    }
    if let Some(c) = conditions.find("Stalled").filter(|c| c.is_true()) {
        return Readiness::failed(c.describe("stalled"));
    }
    let specific = match (group, kind) {
        ("apps", "Deployment") => deployment(object, &conditions),
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps", "DaemonSet") => daemon_set(object),
        ("apps", "ReplicaSet") => replica_set(object, &conditions),
        ("batch", "Job") => job(object, &conditions),
        ("", "Pod") => pod(object, &conditions),
        ("", "PersistentVolumeClaim") => match object.pointer("/status/phase").and_then(Value::as_str) {
            Some("Bound") => None,
            phase => Some(Readiness::in_progress(format!(
                "it is not bound yet (phase {})",
                phase.unwrap_or("unknown")
            ))),
        },
        ("", "Service") => {
            let load_balancer = object.pointer("/spec/type").and_then(Value::as_str) == Some("LoadBalancer");
            let no_ip = object.pointer("/spec/clusterIP").and_then(Value::as_str).unwrap_or("").is_empty();
            (load_balancer && no_ip).then(|| Readiness::in_progress("its cluster IP is not allocated yet"))
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(&conditions),
        ("argoproj.io", "Application") => argo_application(object),
        _ => None,
    };
    specific
        .or_else(|| own_rule(object, &conditions, rule))
        .unwrap_or_else(|| Readiness::current("it is ready"))
}

/// What the Score's own rule still waits for, if anything.
fn own_rule(object: &Value, conditions: &Conditions<'_>, rule: &Ready) -> Option<Readiness> {
    match rule {
        Ready::Condition(wanted) => match conditions.find(wanted) {
            Some(c) if c.is_true() => None,
            Some(c) => Some(Readiness::in_progress(
                c.describe(&format!("its `{wanted}` condition is {}", c.status())),
            )),
            None => Some(Readiness::in_progress(format!("it has no `{wanted}` condition yet"))),
        },
        Ready::Field { pointer, equals } => {
            let now = match object.pointer(pointer) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => Some(other.to_string()),
            };
            match now {
                Some(now) if now == *equals => None,
                Some(now) => Some(Readiness::in_progress(format!("`{pointer}` reads `{now}`, waiting for `{equals}`"))),
                None => Some(Readiness::in_progress(format!(
                    "`{pointer}` is not set yet, waiting for `{equals}`"
                ))),
            }
        }
        Ready::Default | Ready::Skip => None,
    }
}

fn count(object: &Value, path: &str) -> i64 {
    object.pointer(path).and_then(Value::as_i64).unwrap_or(0)
}

fn spec_replicas(object: &Value) -> i64 {
    object.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1)
}

fn deployment(object: &Value, conditions: &Conditions<'_>) -> Option<Readiness> {
    if let Some(c) = conditions.find("Progressing").filter(|c| c.reason() == "ProgressDeadlineExceeded") {
        return Some(Readiness::failed(c.describe("its rollout exceeded its progress deadline")));
    }
    let spec = spec_replicas(object);
    let status = count(object, "/status/replicas");
    let updated = count(object, "/status/updatedReplicas");
    let available = count(object, "/status/availableReplicas");
    let ready = count(object, "/status/readyReplicas");
    if spec > status {
        return Some(Readiness::in_progress(format!("{status} of {spec} replicas exist")));
    }
    if spec > updated {
        return Some(Readiness::in_progress(format!("{updated} of {spec} replicas are updated")));
    }
    if status > spec {
        return Some(Readiness::in_progress(format!(
            "{} old replicas are still terminating",
            status - spec
        )));
    }
    if updated > available {
        return Some(Readiness::in_progress(format!(
            "{available} of {updated} updated replicas are available"
        )));
    }
    if spec > ready {
        return Some(Readiness::in_progress(format!("{ready} of {spec} replicas are ready")));
    }
    let progressed = conditions
        .find("Progressing")
        .is_some_and(|c| c.is_true() && c.reason() == "NewReplicaSetAvailable");
    let available_condition = conditions.find("Available").is_some_and(|c| c.is_true());
    if !progressed || !available_condition {
        return Some(Readiness::in_progress("its rollout is not complete yet"));
    }
    None
}

fn stateful_set(object: &Value) -> Option<Readiness> {
    if object.pointer("/spec/updateStrategy/type").and_then(Value::as_str) == Some("OnDelete") {
        return None;
    }
    let spec = spec_replicas(object);
    let status = count(object, "/status/replicas");
    let ready = count(object, "/status/readyReplicas");
    if spec > status || spec > ready {
        return Some(Readiness::in_progress(format!("{ready} of {spec} replicas are ready")));
    }
    if status > spec {
        return Some(Readiness::in_progress(format!(
            "{} extra replicas are still terminating",
            status - spec
        )));
    }
    if let Some(partition) = object
        .pointer("/spec/updateStrategy/rollingUpdate/partition")
        .and_then(Value::as_i64)
    {
        let updated = count(object, "/status/updatedReplicas");
        return (updated < spec - partition)
            .then(|| Readiness::in_progress(format!("{updated} of {} replicas are updated", spec - partition)));
    }
    if spec > count(object, "/status/currentReplicas") {
        return Some(Readiness::in_progress("not every replica runs the current revision yet"));
    }
    let revision = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    if revision("/status/currentRevision") != revision("/status/updateRevision") {
        return Some(Readiness::in_progress("its rolling update is not complete yet"));
    }
    None
}

fn daemon_set(object: &Value) -> Option<Readiness> {
    if object.pointer("/metadata/generation").is_none() || object.pointer("/status/observedGeneration").is_none() {
        return Some(Readiness::in_progress("its controller has not observed it yet"));
    }
    let Some(desired) = object.pointer("/status/desiredNumberScheduled").and_then(Value::as_i64) else {
        return Some(Readiness::in_progress("its pods are not scheduled yet"));
    };
    for (path, what) in [
        ("/status/currentNumberScheduled", "scheduled"),
        ("/status/updatedNumberScheduled", "updated"),
        ("/status/numberAvailable", "available"),
        ("/status/numberReady", "ready"),
    ] {
        let n = count(object, path);
        if desired > n {
            return Some(Readiness::in_progress(format!("{n} of {desired} pods are {what}")));
        }
    }
    None
}

fn replica_set(object: &Value, conditions: &Conditions<'_>) -> Option<Readiness> {
    if let Some(c) = conditions.find("ReplicaFailure").filter(|c| c.is_true()) {
        return Some(Readiness::in_progress(c.describe("replicas cannot be created")));
    }
    let spec = spec_replicas(object);
    for (path, what) in [
        ("/status/fullyLabeledReplicas", "labelled"),
        ("/status/availableReplicas", "available"),
        ("/status/readyReplicas", "ready"),
    ] {
        let n = count(object, path);
        if spec > n {
            return Some(Readiness::in_progress(format!("{n} of {spec} replicas are {what}")));
        }
    }
    let status = count(object, "/status/replicas");
    (status > spec).then(|| Readiness::in_progress(format!("{} extra replicas are still terminating", status - spec)))
}

fn job(object: &Value, conditions: &Conditions<'_>) -> Option<Readiness> {
    if conditions.find("Complete").is_some_and(|c| c.is_true()) {
        return None;
    }
    if let Some(c) = conditions.find("Failed").filter(|c| c.is_true()) {
        return Some(Readiness::failed(c.describe("the job failed")));
    }
    if conditions.find("Suspended").is_some_and(|c| c.is_true()) {
        return None;
    }
    object
        .pointer("/status/startTime")
        .is_none()
        .then(|| Readiness::in_progress("the job has not started yet"))
}

fn pod(object: &Value, conditions: &Conditions<'_>) -> Option<Readiness> {
    match object.pointer("/status/phase").and_then(Value::as_str).unwrap_or("") {
        "Succeeded" | "Failed" => None,
        "Running" => {
            if conditions.find("Ready").is_some_and(|c| c.is_true()) {
                return None;
            }
            if let Some((container, message)) = waiting_in(object, "CrashLoopBackOff") {
                return Some(Readiness::failed(format!("container `{container}` is crash-looping: {message}")));
            }
            Some(Readiness::in_progress("its containers are not ready yet"))
        }
        "Pending" => match conditions.find("PodScheduled") {
            Some(c) if c.status() == "False" && c.reason() == "Unschedulable" => {
                Some(Readiness::failed(c.describe("it cannot be scheduled")))
            }
            _ => Some(Readiness::in_progress("it is pending")),
        },
        _ => Some(Readiness::in_progress("it has no phase yet")),
    }
}

/// The first container waiting for `reason`, and the message it gives.
fn waiting_in(pod: &Value, reason: &str) -> Option<(String, String)> {
    let statuses = pod.pointer("/status/containerStatuses")?.as_array()?;
    statuses.iter().find_map(|s| {
        let waiting = s.pointer("/state/waiting")?;
        (waiting.get("reason")?.as_str()? == reason).then(|| {
            (
                s.get("name").and_then(Value::as_str).unwrap_or("?").to_owned(),
                waiting.get("message").and_then(Value::as_str).unwrap_or("").to_owned(),
            )
        })
    })
}

fn crd(conditions: &Conditions<'_>) -> Option<Readiness> {
    if let Some(c) = conditions.find("NamesAccepted").filter(|c| c.status() == "False") {
        return Some(Readiness::failed(c.describe("its names are not accepted")));
    }
    match conditions.find("Established") {
        Some(c) if c.is_true() => None,
        Some(c) if c.status() == "False" && c.reason() != "Installing" => Some(Readiness::failed(c.describe("it is not established"))),
        _ => Some(Readiness::in_progress("it is not established yet")),
    }
}

/// An Argo CD Application: ready once Argo CD synced it at the revision it
/// asks for and reports it Healthy; failed when its sync failed or it
/// reports an error condition, in Argo CD's own words. (It has no
/// observedGeneration, so the generic rules would call it ready at once.)
fn argo_application(object: &Value) -> Option<Readiness> {
    let at = |p: &str| object.pointer(p).and_then(Value::as_str).unwrap_or("");
    let (wanted, sync, revision) = (
        at("/spec/source/targetRevision"),
        at("/status/sync/status"),
        at("/status/sync/revision"),
    );
    let (health, phase, operation) = (
        at("/status/health/status"),
        at("/status/operationState/phase"),
        at("/status/operationState/message"),
    );
    let errors: Vec<String> = object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|c| c.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with("Error")))
        .map(|c| {
            let field = |f: &str| c.get(f).and_then(Value::as_str).unwrap_or("");
            format!("{}: {}", field("type"), field("message"))
        })
        .collect();
    if matches!(phase, "Failed" | "Error") || !errors.is_empty() {
        let mut why = String::from("Argo CD could not sync it");
        if !operation.is_empty() {
            why.push_str(&format!(": {operation}"));
        }
        if !errors.is_empty() {
            why.push_str(&format!(" ({})", errors.join("; ")));
        }
        return Some(Readiness::failed(why));
    }
    if sync == "Synced" && revision == wanted && health == "Healthy" && matches!(phase, "" | "Succeeded") {
        return None;
    }
    let or = |v: &'static str, s: &str| if s.is_empty() { v.to_owned() } else { s.to_owned() };
    let at_revision = if revision == wanted {
        revision.to_owned()
    } else {
        format!("{} (wanted {wanted})", or("none", revision))
    };
    let mut why = format!(
        "Argo CD reports sync {} at revision {at_revision}, health {}",
        or("not reported", sync),
        or("not reported", health)
    );
    let health_message = at("/status/health/message");
    if !health_message.is_empty() {
        why.push_str(&format!(": {health_message}"));
    }
    Some(Readiness::in_progress(why))
}

/// `status.conditions`, as a list of `{type, status, reason, message}`.
struct Conditions<'a>(Option<&'a Value>);

impl<'a> Conditions<'a> {
    fn find(&self, kind: &str) -> Option<Condition<'a>> {
        self.0?
            .as_array()?
            .iter()
            .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
            .map(Condition)
    }
}

struct Condition<'a>(&'a Value);

impl Condition<'_> {
    fn field(&self, name: &str) -> &str {
        self.0.get(name).and_then(Value::as_str).unwrap_or("")
    }

    fn status(&self) -> &str {
        self.field("status")
    }

    fn is_true(&self) -> bool {
        self.status() == "True"
    }

    fn reason(&self) -> &str {
        self.field("reason")
    }

    /// `what (Reason: message)`.
    fn describe(&self, what: &str) -> String {
        match (self.reason(), self.field("message")) {
            ("", "") => what.to_owned(),
            (reason, "") => format!("{what} ({reason})"),
            ("", message) => format!("{what}: {message}"),
            (reason, message) => format!("{what} ({reason}: {message})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(object: &Value) -> State {
        readiness(object, &Ready::Default).state
    }

    /// An object (or a sequence of them) the real control plane wrote, captured by
    /// `scripts/capture-k8s-fixtures`.
    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    /// Every status the real controller wrote during a rollout is in progress, but the last.
    fn rolls_out(name: &str) {
        let seen = fixture(name);
        let (last, during) = seen.as_array().unwrap().split_last().unwrap();
        assert!(!during.is_empty(), "the capture saw the rollout");
        for object in during {
            let r = readiness(object, &Ready::Default);
            assert_eq!(r.state, State::InProgress, "{}: {}", r.reason, object["status"]);
            assert!(!r.reason.is_empty());
        }
        assert_eq!(state(last), State::Current, "{}", last["status"]);
    }

    #[test]
    fn a_deployment_is_current_only_once_its_controller_reports_the_rollout_complete() {
        rolls_out("deployment-rollout.json");
        let stuck = readiness(&fixture("deployment-deadline.json"), &Ready::Default);
        assert_eq!(stuck.state, State::Failed);
        assert!(stuck.reason.contains("has timed out progressing"), "{}", stuck.reason);
    }

    #[test]
    fn a_statefulset_is_current_only_once_every_pod_runs_the_new_revision() {
        rolls_out("statefulset-rollout.json");
    }

    #[test]
    fn jobs_as_their_controller_ends_them() {
        assert_eq!(state(&fixture("job-complete.json")), State::Current);
        let failed = readiness(&fixture("job-failed.json"), &Ready::Default);
        assert_eq!(failed.state, State::Failed);
        assert!(failed.reason.contains("backoff limit"), "{}", failed.reason);
    }

    #[test]
    fn a_crd_is_current_once_established() {
        let seen = fixture("crd-established.json");
        assert_eq!(state(&seen[0]), State::InProgress, "as created: {}", seen[0]["status"]);
        assert_eq!(state(&seen[1]), State::Current);
    }

    #[test]
    fn generic_rules_come_first() {
        let mut stalled = fixture("deployment-deadline.json");
        stalled["status"]["conditions"] = json!([{"type": "Stalled", "status": "True", "reason": "Broken"}]);
        assert_eq!(state(&stalled), State::Failed);
        stalled["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        assert_eq!(state(&stalled), State::Terminating);
        let reconciling = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "status": {"conditions": [{"type": "Reconciling", "status": "True"}]}});
        assert_eq!(state(&reconciling), State::InProgress);
    }

    #[test]
    fn pods_claims_and_a_crd_whose_names_are_taken() {
        let crash = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Running",
            "containerStatuses": [{"name": "web", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}}]}});
        let r = readiness(&crash, &Ready::Default);
        assert_eq!(r.state, State::Failed);
        assert!(r.reason.contains("`web` is crash-looping"));
        let unschedulable = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Pending",
            "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes are available"}]}});
        assert_eq!(state(&unschedulable), State::Failed);

        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"}, "status": {"phase": "Pending"}});
        assert_eq!(state(&pvc), State::InProgress);

        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"}, "status": {"conditions": [{"type": "Established", "status": "False", "reason": "NotAccepted"}]}});
        assert_eq!(state(&crd), State::Failed, "names another CRD holds");
    }

    #[test]
    fn a_score_can_ask_for_a_condition() {
        let widget = |ready: &str| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "status": {"conditions": [{"type": "Ready", "status": ready, "reason": "Waiting"}]}})
        };
        let ready = Ready::condition("Ready");
        assert_eq!(state(&widget("False")), State::Current, "upstream kstatus ignores Ready");
        let waiting = readiness(&widget("False"), &ready);
        assert_eq!(waiting.state, State::InProgress);
        assert_eq!(waiting.reason, "its `Ready` condition is False (Waiting)");
        assert_eq!(readiness(&widget("True"), &ready).state, State::Current);
        let synced = readiness(&widget("True"), &Ready::condition("Synced"));
        assert_eq!(
            (synced.state, synced.reason.as_str()),
            (State::InProgress, "it has no `Synced` condition yet")
        );
    }

    #[test]
    fn a_score_can_ask_for_a_field() {
        let machine = |phase: Value| json!({"apiVersion": "example.com/v1", "kind": "Machine", "metadata": {"name": "m"}, "status": {"phase": phase}});
        let running = Ready::field("/status/phase", "Running");
        let pending = readiness(&machine(json!("Pending")), &running);
        assert_eq!(pending.reason, "`/status/phase` reads `Pending`, waiting for `Running`");
        assert_eq!(readiness(&machine(json!("Running")), &running).state, State::Current);
        let counted = readiness(&machine(json!(3)), &Ready::field("/status/phase", "3"));
        assert_eq!(counted.state, State::Current, "numbers compare by their text");
        let unset = readiness(&machine(Value::Null), &running);
        assert_eq!(unset.reason, "`/status/phase` is not set yet, waiting for `Running`");
    }

    #[test]
    fn a_kinds_own_rules_come_before_the_scores() {
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"replicas": 2}, "status": {"replicas": 1}});
        let r = readiness(&deployment, &Ready::field("/spec/replicas", "2"));
        assert_eq!(r.reason, "1 of 2 replicas exist");
    }

    #[test]
    fn an_argo_cd_application_is_ready_when_synced_at_its_revision_and_healthy() {
        let app = |status: Value| {
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "web"},
                   "spec": {"source": {"targetRevision": "0.2.0"}}, "status": status})
        };
        let synced = json!({"sync": {"status": "Synced", "revision": "0.2.0"}, "health": {"status": "Healthy"},
                            "operationState": {"phase": "Succeeded"}});
        assert_eq!(state(&app(synced)), State::Current);
        let old = json!({"sync": {"status": "Synced", "revision": "0.1.0"}, "health": {"status": "Healthy"}});
        let r = readiness(&app(old), &Ready::Default);
        assert_eq!(r.state, State::InProgress, "synced at the previous revision");
        assert!(r.reason.contains("revision 0.1.0 (wanted 0.2.0)"), "{}", r.reason);
        let degraded = json!({"sync": {"status": "Synced", "revision": "0.2.0"}, "health": {"status": "Degraded", "message": "Deployment web: progress deadline exceeded"}});
        let r = readiness(&app(degraded), &Ready::Default);
        assert_eq!(r.state, State::InProgress);
        assert!(
            r.reason.ends_with("health Degraded: Deployment web: progress deadline exceeded"),
            "{}",
            r.reason
        );
        let failed = json!({"sync": {"status": "OutOfSync"}, "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"},
                            "conditions": [{"type": "SyncError", "message": "Deployment.apps \"web\" is invalid"}]});
        let r = readiness(&app(failed), &Ready::Default);
        assert_eq!(r.state, State::Failed);
        assert_eq!(
            r.reason,
            "Argo CD could not sync it: one or more objects failed to apply (SyncError: Deployment.apps \"web\" is invalid)"
        );
        assert_eq!(state(&app(json!({}))), State::InProgress, "not reconciled yet");
    }

    #[test]
    fn config_is_current_at_once() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(state(&cm), State::Current);
    }
}
