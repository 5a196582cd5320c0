//! Captures, from the real control plane, the objects the unit tests of `readiness.rs` and
//! `fields.rs` read: what kube-apiserver and the controllers really write, never what we believe
//! they write. `scripts/capture-k8s-fixtures` runs it; the files land in `harmony-k8s/fixtures/`.
//!
//! - `deployment-rollout.json`: a Deployment at each distinct status its controller wrote while
//!   a new template rolled out (the old ReplicaSet scaling down, `updatedReplicas` lagging), and
//!   once complete.
//! - `deployment-deadline.json`: a Deployment whose pods never get ready, once its controller
//!   gave up (`ProgressDeadlineExceeded`).
//! - `statefulset-rollout.json`: a StatefulSet at each distinct status while it rolled out.
//! - `job-complete.json`, `job-failed.json`: a Job that succeeded, and one whose pod failed.
//! - `crd-established.json`: a CRD as created, then once Established.
//! - `deployment-two-managers.json`: a Deployment applied by `harmony`, then by `autoscaler`
//!   (its replicas) and annotated by a `webhook`: the managedFields of three managers.
//! - `secret-string-data.json`: a Secret `harmony` applied with `stringData`.
//! - `configmap-finalizers.json`: a ConfigMap whose finalizers (a set) two managers applied.
//!
//! Identities, times and versions are replaced by fixed values, so a capture changes only when
//! Kubernetes does, but for how many states a rollout passes through on the way, which depends
//! on timing (the tests read every one of them, whatever their number).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use harmony_test_cluster::{Options, TestCluster, Workloads};
use kube::api::{DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    std::fs::create_dir_all(&out)?;
    let cluster = TestCluster::dedicated(Options {
        workloads: Workloads::Ready {
            after: Duration::from_millis(500),
        },
        ..Options::default()
    })?;
    let capture = Capture { cluster: &cluster };
    let write = |name: &str, value: Value| -> Result<()> {
        let path = out.join(name);
        std::fs::write(&path, serde_json::to_string_pretty(&normalize(value))? + "\n")?;
        eprintln!("wrote {}", path.display());
        Ok(())
    };

    let ns = "fixtures";
    capture.apply("v1", "Namespace", None, ns, json!({}), "harmony")?;

    // A rollout: two replicas ready, then a new image.
    let deployment = |image: &str, deadline: i64| {
        json!({"spec": {"replicas": 2, "progressDeadlineSeconds": deadline, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}})
    };
    capture.apply(
        "apps/v1",
        "Deployment",
        Some(ns),
        "web",
        deployment("example.com/web:1", 600),
        "harmony",
    )?;
    capture.until("apps/v1", "Deployment", Some(ns), "web", available)?;
    let seen = capture.follow("apps/v1", "Deployment", Some(ns), "web", available, || {
        capture.apply(
            "apps/v1",
            "Deployment",
            Some(ns),
            "web",
            deployment("example.com/web:2", 600),
            "harmony",
        )
    })?;
    write("deployment-rollout.json", Value::Array(seen))?;

    // A rollout that never gets ready, past its deadline.
    cluster.set_workloads(Workloads::NeverReady);
    capture.apply(
        "apps/v1",
        "Deployment",
        Some(ns),
        "stuck",
        deployment("example.com/stuck:1", 3),
        "harmony",
    )?;
    let stuck = capture.until("apps/v1", "Deployment", Some(ns), "stuck", |d| {
        condition(d, "Progressing").is_some_and(|c| c["reason"] == "ProgressDeadlineExceeded")
    })?;
    write("deployment-deadline.json", stuck)?;
    cluster.set_workloads(Workloads::Ready {
        after: Duration::from_millis(500),
    });

    // A StatefulSet's rollout.
    let statefulset = |image: &str| {
        json!({"spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": image}]}}}})
    };
    let sts_done = |s: &Value| {
        let status = &s["status"];
        status["observedGeneration"] == s["metadata"]["generation"]
            && status["readyReplicas"] == 2
            && status["updatedReplicas"] == 2
            && status["currentRevision"] == status["updateRevision"]
    };
    capture.apply("apps/v1", "StatefulSet", Some(ns), "db", statefulset("example.com/db:1"), "harmony")?;
    capture.until("apps/v1", "StatefulSet", Some(ns), "db", sts_done)?;
    let seen = capture.follow("apps/v1", "StatefulSet", Some(ns), "db", sts_done, || {
        capture.apply("apps/v1", "StatefulSet", Some(ns), "db", statefulset("example.com/db:2"), "harmony")
    })?;
    write("statefulset-rollout.json", Value::Array(seen))?;

    // Jobs: one that succeeds, one whose only try fails.
    let job = || {
        json!({"spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "once", "image": "example.com/once:1"}]}}}})
    };
    capture.apply("batch/v1", "Job", Some(ns), "complete", job(), "harmony")?;
    let complete = capture.until("batch/v1", "Job", Some(ns), "complete", |j| {
        condition(j, "Complete").is_some_and(|c| c["status"] == "True")
    })?;
    write("job-complete.json", complete)?;
    cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 1,
        log: vec!["cannot connect".into()],
    });
    capture.apply("batch/v1", "Job", Some(ns), "failed", job(), "harmony")?;
    let failed = capture.until("batch/v1", "Job", Some(ns), "failed", |j| {
        condition(j, "Failed").is_some_and(|c| c["status"] == "True")
    })?;
    write("job-failed.json", failed)?;

    // A CRD, as created and once Established.
    let crd = json!({"spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
        "versions": [{"name": "v1", "served": true, "storage": true,
            "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let created = capture.apply(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "widgets.example.com",
        crd,
        "harmony",
    )?;
    let established = capture.until(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        "widgets.example.com",
        |c| condition(c, "Established").is_some_and(|c| c["status"] == "True"),
    )?;
    write("crd-established.json", Value::Array(vec![created, established]))?;

    // Three managers on one Deployment.
    let web = json!({"metadata": {"labels": {"app": "api"}}, "spec": {"selector": {"matchLabels": {"app": "api"}},
        "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [
            {"name": "api", "image": "example.com/api:1", "ports": [{"containerPort": 8080}]}]}}}});
    capture.apply("apps/v1", "Deployment", Some(ns), "api", web, "harmony")?;
    capture.apply(
        "apps/v1",
        "Deployment",
        Some(ns),
        "api",
        json!({"spec": {"replicas": 5}}),
        "autoscaler",
    )?;
    capture.apply(
        "apps/v1",
        "Deployment",
        Some(ns),
        "api",
        json!({"metadata": {"annotations": {"webhook.example.com/injected": "yes"}}}),
        "webhook",
    )?;
    let api = capture.until("apps/v1", "Deployment", Some(ns), "api", available)?;
    write("deployment-two-managers.json", api)?;

    // A Secret applied with stringData.
    let secret = capture.apply(
        "v1",
        "Secret",
        Some(ns),
        "db",
        json!({"stringData": {"password": "hunter2"}, "data": {"user": "YWRtaW4="}}),
        "harmony",
    )?;
    write("secret-string-data.json", secret)?;

    // A set list two managers share.
    capture.apply(
        "v1",
        "ConfigMap",
        Some(ns),
        "shared",
        json!({"metadata": {"finalizers": ["b.example/y"]}, "data": {"k": "v"}}),
        "harmony",
    )?;
    let shared = capture.apply(
        "v1",
        "ConfigMap",
        Some(ns),
        "shared",
        json!({"metadata": {"finalizers": ["a.example/x"]}}),
        "operator",
    )?;
    write("configmap-finalizers.json", shared)?;
    Ok(())
}

/// A Deployment whose controller reports its rollout done and every replica available.
fn available(d: &Value) -> bool {
    let status = &d["status"];
    status["observedGeneration"] == d["metadata"]["generation"]
        && status["updatedReplicas"] == d["spec"]["replicas"]
        && status["availableReplicas"] == d["spec"]["replicas"]
        && status["replicas"] == d["spec"]["replicas"]
        && condition(d, "Progressing").is_some_and(|c| c["reason"] == "NewReplicaSetAvailable")
}

fn condition<'a>(object: &'a Value, kind: &str) -> Option<&'a Value> {
    object["status"]["conditions"].as_array()?.iter().find(|c| c["type"] == kind)
}

struct Capture<'a> {
    cluster: &'a TestCluster,
}

impl Capture<'_> {
    fn api(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Result<kube::Api<DynamicObject>> {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let client = self.cluster.client();
        let namespace = namespace.map(str::to_owned);
        let resource: ApiResource = self
            .cluster
            .block_on(async move { kube::discovery::pinned_kind(&client, &gvk).await.map(|(r, _)| r) })?;
        let client = self.cluster.client();
        Ok(match namespace {
            Some(ns) => kube::Api::namespaced_with(client, &ns, &resource),
            None => kube::Api::all_with(client, &resource),
        })
    }

    /// Server-side applies `body` (its type and name filled in) as `manager`; what the server
    /// answered.
    fn apply(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str, mut body: Value, manager: &str) -> Result<Value> {
        body["apiVersion"] = json!(api_version);
        body["kind"] = json!(kind);
        body["metadata"]["name"] = json!(name);
        if let Some(ns) = namespace {
            body["metadata"]["namespace"] = json!(ns);
        }
        let api = self.api(api_version, kind, namespace)?;
        let (name, manager) = (name.to_owned(), manager.to_owned());
        let answer = self
            .cluster
            .block_on(async move { api.patch(&name, &PatchParams::apply(&manager).force(), &Patch::Apply(&body)).await })?;
        Ok(serde_json::to_value(answer)?)
    }

    fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Result<Option<Value>> {
        let api = self.api(api_version, kind, namespace)?;
        let name = name.to_owned();
        let live = self.cluster.block_on(async move { api.get_opt(&name).await })?;
        Ok(live.map(serde_json::to_value).transpose()?)
    }

    /// Polls until `done` holds; the object then.
    fn until(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
        let started = Instant::now();
        loop {
            if let Some(live) = self.get(api_version, kind, namespace, name)?
                && done(&live)
            {
                return Ok(live);
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("{kind} {name} never got there").into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `change`, then polls until `done`: every distinct status seen on the way, in order.
    fn follow(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        done: impl Fn(&Value) -> bool,
        change: impl FnOnce() -> Result<Value>,
    ) -> Result<Vec<Value>> {
        change()?;
        let mut seen: Vec<Value> = Vec::new();
        let started = Instant::now();
        loop {
            let live = self.get(api_version, kind, namespace, name)?.ok_or("it is gone")?;
            let new = seen
                .last()
                .is_none_or(|last| last["status"] != live["status"] || last["metadata"]["generation"] != live["metadata"]["generation"]);
            if new {
                seen.push(live.clone());
            }
            if done(&live) {
                return Ok(seen);
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(format!("{kind} {name} never finished its rollout").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Whether a string is a UUID (a uid, or a label holding one).
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// Fixed identities, times and versions, so a capture changes only when Kubernetes does.
fn normalize(value: Value) -> Value {
    match value {
        Value::String(s) if is_uuid(&s) => json!("00000000-0000-0000-0000-000000000000"),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let v = match (k.as_str(), &v) {
                        ("resourceVersion", Value::String(_)) => json!("1"),
                        (
                            "creationTimestamp" | "lastTransitionTime" | "lastUpdateTime" | "lastProbeTime" | "time" | "startTime"
                            | "completionTime" | "lastHeartbeatTime",
                            Value::String(_),
                        ) => json!("2026-01-01T00:00:00Z"),
                        _ => normalize(v),
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(normalize).collect()),
        other => other,
    }
}
