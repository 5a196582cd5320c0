//! Helpers shared by the integration tests: raw requests with the administrator's client, and
//! waiting for what the cluster's controllers and kubelet do.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use harmony_test_cluster::TestCluster;
use http_body_util::BodyExt as _;
use serde_json::Value;

pub const WAIT: Duration = Duration::from_secs(60);

/// An answer of the API server.
#[derive(Debug)]
pub struct Answer {
    pub code: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request with the administrator's client, straight to the API server.
pub fn request(cluster: &TestCluster, method: &str, path: &str, content_type: Option<&str>, body: &str) -> Answer {
    let client = cluster.client();
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        request = request.header(http::header::CONTENT_TYPE, ct);
    }
    let request = request.body(body.as_bytes().to_vec().into()).expect("a valid request");
    cluster.block_on(async move {
        let answer = client.send(request).await.expect("the API server answers");
        let code = answer.status().as_u16();
        let body = answer.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        Answer {
            code,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
}

pub fn get(cluster: &TestCluster, path: &str) -> Answer {
    request(cluster, "GET", path, None, "")
}

/// Server-side applies `object` at `path` as the field manager `test`.
pub fn apply(cluster: &TestCluster, path: &str, object: &Value) {
    let answer = request(
        cluster,
        "PATCH",
        &format!("{path}?fieldManager=test&force=true"),
        Some("application/apply-patch+yaml"),
        &object.to_string(),
    );
    assert!(
        answer.code == 200 || answer.code == 201,
        "apply {path}: {} {}",
        answer.code,
        answer.body
    );
}

/// Polls until `check` gives a value, or fails with `what` and what `seen` says.
pub fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>, seen: impl Fn() -> String) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; seen: {}", seen());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The pods of a namespace.
pub fn pods(cluster: &TestCluster, namespace: &str) -> Vec<Value> {
    get(cluster, &format!("/api/v1/namespaces/{namespace}/pods")).json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn seen_pods<'a>(cluster: &'a TestCluster, namespace: &'a str) -> impl Fn() -> String + 'a {
    move || {
        pods(cluster, namespace)
            .iter()
            .map(|p| p["status"].to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The events of a namespace.
pub fn events(cluster: &TestCluster, namespace: &str) -> Vec<Value> {
    get(cluster, &format!("/api/v1/namespaces/{namespace}/events")).json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A Deployment `name` of `replicas` pods with this one container.
pub fn deployment(cluster: &TestCluster, namespace: &str, name: &str, replicas: i64, container: Value) {
    apply(
        cluster,
        &format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
        &serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
            },
        }),
    );
}

pub fn namespace(cluster: &TestCluster, name: &str) {
    apply(
        cluster,
        &format!("/api/v1/namespaces/{name}"),
        &serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    );
}

/// Waits until the Deployment is ready by the kstatus rules, as its controller reports it.
pub fn wait_ready(cluster: &TestCluster, namespace: &str, name: &str, replicas: i64) -> Value {
    wait_until(
        &format!("deployment {namespace}/{name} to be ready"),
        || {
            let d = cluster.object("apps/v1", "Deployment", Some(namespace), name)?;
            let status = &d["status"];
            (status["observedGeneration"] == d["metadata"]["generation"]
                && status["readyReplicas"] == replicas
                && status["availableReplicas"] == replicas
                && status["updatedReplicas"] == replicas
                && status["replicas"] == replicas)
                .then_some(d)
        },
        seen_pods(cluster, namespace),
    )
}
