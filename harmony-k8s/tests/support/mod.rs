//! A `k8s` topology on a test cluster: the control plane this test binary shares, through the
//! test's own proxy, with namespaces of the test's own.

// Each test binary uses some of these.
#![allow(dead_code)]

use std::time::Duration;

use harmony_k8s::K8s;
use harmony_k8s::settings::Settings;
use harmony_test_cluster::{Options, TestCluster};
use serde_json::Value;

pub struct Fixture {
    pub cluster: TestCluster,
    _dir: tempfile::TempDir,
    pub topology: K8s,
}

/// A handle on the shared control plane with `options`; readiness waited for up to 60 s, each
/// request up to `request_timeout`.
pub fn fixture_with(options: Options, request_timeout: Duration) -> Fixture {
    let cluster = TestCluster::start_with(options).expect("the test cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let mut settings = Settings::for_kubeconfig(&kubeconfig, &dir.path().join("state")).unwrap();
    settings.timeout = Duration::from_secs(60);
    settings.request_timeout = request_timeout;
    Fixture {
        cluster,
        _dir: dir,
        topology: K8s::new(settings),
    }
}

/// A second `k8s` topology on `cluster`, as another run would make it, with its own state
/// directory (removed with the returned directory).
pub fn fixture_on(cluster: &TestCluster, request_timeout: Duration) -> (K8s, tempfile::TempDir) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let kubeconfig = dir.join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let mut settings = Settings::for_kubeconfig(&kubeconfig, &dir.join("state")).unwrap();
    settings.timeout = Duration::from_secs(60);
    settings.request_timeout = request_timeout;
    (K8s::new(settings), temp)
}

/// A `k8s` topology on `cluster` as the user `harmony-restricted`, who may do what the test
/// granted it (its files removed with the returned directory).
pub fn restricted_on(cluster: &TestCluster) -> (K8s, tempfile::TempDir) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.restricted_kubeconfig()).unwrap();
    let mut settings = Settings::for_kubeconfig(&kubeconfig, &dir.join("state")).unwrap();
    settings.timeout = Duration::from_secs(60);
    (K8s::new(settings), temp)
}

/// One runtime for a topology's whole life: its client lives on it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// Server-side apply of `body` at `path` as another field manager (an autoscaler, kubectl),
/// straight to the API server.
pub fn apply_as(cluster: &TestCluster, manager: &str, path: &str, body: &Value, force: bool) {
    let client = cluster.client();
    let uri = format!("{path}?fieldManager={manager}&force={force}");
    let body = serde_json::to_vec(body).unwrap();
    cluster
        .block_on(async move {
            let request = http::Request::patch(uri)
                .header("content-type", "application/apply-patch+yaml")
                .body(body)
                .unwrap();
            client.request::<Value>(request).await
        })
        .unwrap();
}

/// The image the kubelet holds as the static busybox: pods of it run for real.
pub const BUSYBOX: &str = "example.com/harmony-test/busybox:1";

/// A web server that really runs in `namespace`: busybox's httpd on port 80 of pods labelled
/// `app: <name>`, serving `/healthz` with `healthz` as its body. Returns once it is available.
pub fn web_server(cluster: &TestCluster, namespace: &str, name: &str, healthz: &str) {
    cluster.hold_image(BUSYBOX, "/bin/busybox");
    let www = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": format!("{name}-www"), "namespace": namespace}, "data": {"healthz": healthz}});
    let deployment = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "httpd", "image": BUSYBOX, "args": ["httpd", "-f", "-p", "80", "-h", "/www"],
                    "volumeMounts": [{"name": "www", "mountPath": "/www"}]}],
                "volumes": [{"name": "www", "configMap": {"name": format!("{name}-www")}}]}}}});
    apply_as(
        cluster,
        "test",
        &format!("/api/v1/namespaces/{namespace}/configmaps/{name}-www"),
        &www,
        true,
    );
    apply_as(
        cluster,
        "test",
        &format!("/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
        &deployment,
        true,
    );
    let started = std::time::Instant::now();
    loop {
        let live = cluster.object("apps/v1", "Deployment", Some(namespace), name);
        if live.as_ref().and_then(|d| d["status"]["availableReplicas"].as_i64()) == Some(1) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} never became available: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
