//! The simulated Argo CD on the real control plane: the Application CRD as Argo CD installs
//! it, and an application controller, a client of the API server, that syncs Helm charts from a
//! real OCI registry with the real helm. Each test has a control plane of its own: Argo CD is
//! cluster-wide.

mod common;
#[allow(dead_code)]
#[path = "../../harmony/tests/support/registry.rs"]
mod registry;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use harmony_test_cluster::{ArgoCd, Options, TestCluster};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

fn helm_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/helm/helm");
    assert!(
        path.exists(),
        "helm is missing at {}: run scripts/test (it installs helm)",
        path.display()
    );
    path
}

fn kubectl_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kubectl/kubectl");
    assert!(
        path.exists(),
        "kubectl is missing at {}: run scripts/install-k8s-tools",
        path.display()
    );
    path
}

/// Runs helm with its own configuration and caches under `home`.
fn helm(home: &Path, args: &[&str]) {
    let out = Command::new(helm_path())
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .expect("run helm");
    assert!(
        out.status.success(),
        "helm {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A registry holding the chart `team/charts/webapp-server` at 0.1.0 and 0.2.0: a ConfigMap
/// saying `.Values.greeting` and the chart version, and a Deployment, neither namespaced.
struct Charts {
    registry: registry::Registry,
    _dir: tempfile::TempDir,
}

impl Charts {
    fn publish() -> Charts {
        let registry = registry::Registry::anonymous();
        let dir = tempfile::tempdir().expect("tempdir");
        let chart = dir.path().join("webapp-server");
        std::fs::create_dir_all(chart.join("templates")).expect("chart dir");
        std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: webapp-server\nversion: 0.1.0\n").expect("Chart.yaml");
        std::fs::write(chart.join("values.yaml"), "greeting: hello\n").expect("values.yaml");
        std::fs::write(
            chart.join("templates/configmap.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  \
             greeting: {{ .Values.greeting | quote }}\n  version: {{ .Chart.Version | quote }}\n",
        )
        .expect("configmap");
        std::fs::write(
            chart.join("templates/deployment.yaml"),
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  replicas: 2\n  \
             selector:\n    matchLabels:\n      app: {{ .Release.Name }}\n  template:\n    metadata:\n      labels:\n        \
             app: {{ .Release.Name }}\n    spec:\n      containers:\n      - name: web\n        image: 127.0.0.1:1/web:{{ .Chart.Version }}\n",
        )
        .expect("deployment");
        let out = dir.path().join("out");
        let target = format!("oci://{}/team/charts", registry.address);
        for version in ["0.1.0", "0.2.0"] {
            let chart_dir = chart.display().to_string();
            let out_dir = out.display().to_string();
            helm(
                dir.path(),
                &["package", &chart_dir, "--version", version, "--destination", &out_dir],
            );
            let tgz = out.join(format!("webapp-server-{version}.tgz")).display().to_string();
            helm(dir.path(), &["push", &tgz, &target, "--plain-http"]);
        }
        Charts { registry, _dir: dir }
    }

    fn repo(&self) -> String {
        format!("{}/team/charts", self.registry.address)
    }
}

fn cluster(mode: ArgoCd) -> TestCluster {
    let cluster = TestCluster::dedicated(Options {
        ready_after: Duration::from_millis(300),
        workloads: harmony_test_cluster::Workloads::Ready {
            after: Duration::from_millis(300),
        },
        helm: Some(helm_path()),
        ..Options::default()
    })
    .expect("start");
    cluster.play_argocd(mode);
    cluster
}

/// An Application of the chart at `version`, into namespace `shop` (created by the sync).
fn application(charts: &Charts, version: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": "shop-web",
            "namespace": "argocd",
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": "default",
            "source": {
                "repoURL": charts.repo(),
                "chart": "webapp-server",
                "targetRevision": version,
                "helm": {"releaseName": "web", "valuesObject": {"greeting": "hi from argo"}},
            },
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"},
            "syncPolicy": {"automated": {"prune": true}, "syncOptions": ["CreateNamespace=true"]},
        },
    })
}

const APP_PATH: &str = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/shop-web";

/// Server-side applies an Application as a deploy tool would.
fn apply(cluster: &TestCluster, app: &Value) {
    let answer = common::request(
        cluster,
        "PATCH",
        &format!("{APP_PATH}?fieldManager=deployer&force=true"),
        Some("application/apply-patch+yaml"),
        &app.to_string(),
    );
    assert!(answer.code == 200 || answer.code == 201, "apply: {} {}", answer.code, answer.body);
}

fn app_status(cluster: &TestCluster) -> Value {
    cluster
        .object("argoproj.io/v1alpha1", "Application", Some("argocd"), "shop-web")
        .and_then(|a| a.get("status").cloned())
        .unwrap_or(Value::Null)
}

/// Polls the Application's status until `done` holds; returns it and every health seen.
fn wait_status(cluster: &TestCluster, what: &str, done: impl Fn(&Value) -> bool) -> (Value, Vec<String>) {
    let deadline = Instant::now() + WAIT;
    let mut healths: Vec<String> = Vec::new();
    loop {
        let status = app_status(cluster);
        let health = status
            .pointer("/health/status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if healths.last() != Some(&health) {
            healths.push(health);
        }
        if done(&status) {
            return (status, healths);
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; status: {status:#}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

#[test]
fn installs_the_application_crd_as_argo_cd_does() {
    let cluster = cluster(ArgoCd::Syncs);
    assert!(cluster.object("v1", "Namespace", None, "argocd").is_some(), "namespace argocd");
    let crd = cluster
        .object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            None,
            "applications.argoproj.io",
        )
        .expect("the Application CRD");
    let established = crd["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "{crd:#}");
    let resources = common::get(&cluster, "/apis/argoproj.io/v1alpha1").json();
    let names: Vec<&str> = resources["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["applications"], "{resources:#}");
    let applications = &resources["resources"][0];
    assert_eq!(
        (applications["kind"].as_str(), applications["namespaced"].as_bool()),
        (Some("Application"), Some(true))
    );

    // Real kubectl lists them, by their full name and short name.
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).expect("kubeconfig");
    let kubectl = |args: &[&str]| {
        let out = Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(args)
            .env("HOME", dir.path())
            .output()
            .expect("kubectl");
        assert!(out.status.success(), "kubectl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let app = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "listed", "namespace": "argocd"},
        "spec": {"project": "default", "source": {"repoURL": "127.0.0.1:1/none", "chart": "none", "targetRevision": "1.0.0"},
                 "destination": {"namespace": "default"}},
    });
    let answer = common::request(
        &cluster,
        "PATCH",
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/listed?fieldManager=deployer",
        Some("application/apply-patch+yaml"),
        &app.to_string(),
    );
    assert_eq!(answer.code, 201, "{}", answer.body);
    let listed = kubectl(&["get", "applications.argoproj.io", "-n", "argocd", "-o", "name"]);
    assert_eq!(listed.trim(), "application.argoproj.io/listed");
    let listed = kubectl(&[
        "get",
        "apps.argoproj.io",
        "-n",
        "argocd",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    assert_eq!(listed.trim(), "listed");
    // kube's client LISTs them, and a WATCH from the list's resourceVersion sees the
    // controller's status writes.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        use futures_util::StreamExt as _;
        use kube::api::{Api, DynamicObject, ListParams, WatchEvent, WatchParams};
        use kube::discovery::ApiResource;
        let resource = ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(cluster.client(), "argocd", &resource);
        let list = api.list(&ListParams::default()).await.expect("list");
        let names: Vec<String> = list.items.iter().filter_map(|a| a.metadata.name.clone()).collect();
        assert_eq!(names, ["listed"]);
        let rv = list.metadata.resource_version.expect("resourceVersion");
        let mut events = api.watch(&WatchParams::default().timeout(20), &rv).await.expect("watch").boxed();
        // The sync may have failed before the list already.
        let already = list
            .items
            .into_iter()
            .find(|app| app.data.pointer("/status/operationState/phase") == Some(&json!("Failed")));
        let failed = tokio::time::timeout(WAIT, async {
            if let Some(app) = already {
                return app;
            }
            while let Some(event) = events.next().await {
                if let Ok(WatchEvent::Modified(app)) = event
                    && app.data.pointer("/status/operationState/phase") == Some(&json!("Failed"))
                {
                    return app;
                }
            }
            panic!("the watch ended before the unreachable chart failed");
        })
        .await
        .expect("the unreachable chart's sync failed in time");
        assert_eq!(at(&failed.data, "/status/sync/status"), "OutOfSync");
    });
}

#[test]
fn syncs_a_helm_chart_and_follows_its_health_and_new_versions() {
    let charts = Charts::publish();
    let cluster = cluster(ArgoCd::Syncs);
    apply(&cluster, &application(&charts, "0.1.0"));

    let (status, healths) = wait_status(&cluster, "Synced and Healthy at 0.1.0", |s| {
        at(s, "/sync/status") == "Synced" && at(s, "/health/status") == "Healthy"
    });
    assert_eq!(at(&status, "/sync/revision"), "0.1.0");
    assert_eq!(at(&status, "/operationState/phase"), "Succeeded");
    assert_eq!(at(&status, "/operationState/message"), "successfully synced (all tasks run)");
    assert_eq!(at(&status, "/operationState/syncResult/revision"), "0.1.0");
    assert!(!at(&status, "/reconciledAt").is_empty(), "{status:#}");
    assert!(healths.iter().any(|h| h == "Progressing"), "health went {healths:?}");

    // What the chart rendered is in the destination namespace, created by the sync.
    assert!(cluster.object("v1", "Namespace", None, "shop").is_some(), "namespace shop");
    let config = cluster
        .object("v1", "ConfigMap", Some("shop"), "web-config")
        .expect("the chart's ConfigMap");
    assert_eq!(at(&config, "/data/greeting"), "hi from argo");
    assert_eq!(at(&config, "/data/version"), "0.1.0");
    assert_eq!(at(&config, "/metadata/labels/app.kubernetes.io~1instance"), "shop-web");
    let managers: Vec<&str> = config["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["argocd-controller"]);
    let deployment = cluster
        .object("apps/v1", "Deployment", Some("shop"), "web")
        .expect("the chart's Deployment");
    assert_eq!(deployment["status"]["readyReplicas"], 2, "{deployment:#}");
    let resources = status["resources"].as_array().expect("resources");
    let web = resources
        .iter()
        .find(|r| r["kind"] == "Deployment")
        .expect("the Deployment in resources");
    assert_eq!((at(web, "/namespace"), at(web, "/health/status")), ("shop", "Healthy"));

    // A new chart version is synced again.
    apply(&cluster, &application(&charts, "0.2.0"));
    let (status, _) = wait_status(&cluster, "Synced and Healthy at 0.2.0", |s| {
        at(s, "/sync/revision") == "0.2.0" && at(s, "/sync/status") == "Synced" && at(s, "/health/status") == "Healthy"
    });
    assert_eq!(at(&status, "/operationState/syncResult/revision"), "0.2.0");
    assert_eq!(status["history"].as_array().map(Vec::len), Some(2), "{status:#}");
    let config = cluster.object("v1", "ConfigMap", Some("shop"), "web-config").expect("ConfigMap");
    assert_eq!(at(&config, "/data/version"), "0.2.0");
    let deployment = cluster.object("apps/v1", "Deployment", Some("shop"), "web").expect("Deployment");
    assert_eq!(at(&deployment, "/spec/template/spec/containers/0/image"), "127.0.0.1:1/web:0.2.0");

    // Deleting the Application is not held by its finalizer, and leaves what it applied.
    let answer = common::request(&cluster, "DELETE", APP_PATH, None, "");
    assert_eq!(answer.code, 200, "{}", answer.body);
    let deadline = Instant::now() + WAIT;
    while cluster
        .object("argoproj.io/v1alpha1", "Application", Some("argocd"), "shop-web")
        .is_some()
    {
        assert!(Instant::now() < deadline, "the Application was never deleted");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(cluster.object("v1", "ConfigMap", Some("shop"), "web-config").is_some());
    assert!(cluster.object("apps/v1", "Deployment", Some("shop"), "web").is_some());
}

#[test]
fn a_missing_chart_version_fails_the_sync_with_helms_words() {
    let charts = Charts::publish();
    let cluster = cluster(ArgoCd::Syncs);
    apply(&cluster, &application(&charts, "9.9.9"));
    let (status, _) = wait_status(&cluster, "a failed sync", |s| at(s, "/operationState/phase") == "Failed");
    let message = at(&status, "/operationState/message");
    assert!(message.contains("helm pull") && message.contains("9.9.9"), "{message}");
    assert!(message.contains("Error:"), "helm's stderr is in the message: {message}");
    assert_eq!(at(&status, "/sync/status"), "OutOfSync");
    assert_eq!(at(&status, "/conditions/0/type"), "ComparisonError");
    assert_eq!(at(&status, "/conditions/0/message"), message);
    assert!(cluster.object("v1", "ConfigMap", Some("shop"), "web-config").is_none());
}

#[test]
fn a_failing_sync_applies_nothing() {
    let charts = Charts::publish();
    let message = "one or more synchronization tasks are not valid".to_string();
    let cluster = cluster(ArgoCd::FailsSync { message: message.clone() });
    apply(&cluster, &application(&charts, "0.1.0"));
    let (status, _) = wait_status(&cluster, "a failed sync", |s| at(s, "/operationState/phase") == "Failed");
    assert_eq!(at(&status, "/operationState/message"), message);
    assert_eq!(at(&status, "/sync/status"), "OutOfSync");
    assert_eq!(
        (at(&status, "/conditions/0/type"), at(&status, "/conditions/0/message")),
        ("SyncError", message.as_str())
    );
    assert!(cluster.object("v1", "Namespace", None, "shop").is_none());
    assert!(cluster.object("v1", "ConfigMap", Some("shop"), "web-config").is_none());
}

#[test]
fn a_degrading_application_syncs_then_reports_degraded() {
    let charts = Charts::publish();
    let message = "Deployment \"web\" exceeded its progress deadline".to_string();
    let cluster = cluster(ArgoCd::Degrades { message: message.clone() });
    apply(&cluster, &application(&charts, "0.1.0"));
    let (status, _) = wait_status(&cluster, "a degraded application", |s| at(s, "/health/status") == "Degraded");
    assert_eq!(at(&status, "/health/message"), message);
    assert_eq!((at(&status, "/sync/status"), at(&status, "/sync/revision")), ("Synced", "0.1.0"));
    assert_eq!(at(&status, "/operationState/phase"), "Succeeded");
    let config = cluster.object("v1", "ConfigMap", Some("shop"), "web-config").expect("ConfigMap");
    assert_eq!(at(&config, "/data/greeting"), "hi from argo");
}

#[test]
fn an_application_never_synced_stays_out_of_sync_and_missing() {
    let charts = Charts::publish();
    let cluster = cluster(ArgoCd::NeverSyncs);
    apply(&cluster, &application(&charts, "0.1.0"));
    let (status, _) = wait_status(&cluster, "a compared application", |s| !s.is_null());
    assert_eq!(
        (at(&status, "/sync/status"), at(&status, "/health/status")),
        ("OutOfSync", "Missing")
    );
    // Well past the controller's delay: still nothing synced.
    std::thread::sleep(Duration::from_millis(1500));
    let status = app_status(&cluster);
    assert_eq!(
        (at(&status, "/sync/status"), at(&status, "/health/status")),
        ("OutOfSync", "Missing")
    );
    assert!(status.get("operationState").is_none(), "{status:#}");
    assert!(cluster.object("v1", "ConfigMap", Some("shop"), "web-config").is_none());
}
