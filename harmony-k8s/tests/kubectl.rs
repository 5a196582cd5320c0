//! Real kubectl v1.33.9 as the independent judge of what the `k8s` topology
//! writes: it sees Harmony's objects as its own server-side apply would make
//! them, and Harmony's ApplySet as its own `--applyset` would write it.

use std::path::{Path, PathBuf};
use std::process::Command;

use harmony::Object;
use harmony::engine;
use harmony_k8s::K8s;
use harmony_k8s::settings::Settings;
use harmony_test_cluster::TestCluster;
use serde_json::{Value, json};

/// Installed by `scripts/install-k8s-tools` (which `scripts/test` runs).
fn kubectl_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kubectl/kubectl");
    assert!(path.is_file(), "kubectl is missing: run scripts/install-k8s-tools");
    path
}

/// A test cluster with its kubeconfig, a kubectl cache and Harmony's state.
struct Server {
    /// Kept for its lifetime: dropping it stops the server.
    _cluster: TestCluster,
    dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let cluster = TestCluster::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        cluster.write_kubeconfig(&dir.path().join("kubeconfig")).unwrap();
        Self { _cluster: cluster, dir }
    }

    fn topology(&self) -> K8s {
        K8s::new(Settings::for_kubeconfig(&self.dir.path().join("kubeconfig"), &self.dir.path().join("state")).unwrap())
    }

    /// A topology whose ApplySet parents live in `namespace`.
    fn topology_with_parents_in(&self, namespace: &str) -> K8s {
        let mut settings = Settings::for_kubeconfig(&self.dir.path().join("kubeconfig"), &self.dir.path().join("state")).unwrap();
        settings.namespace = Some(namespace.to_owned());
        K8s::new(settings)
    }

    /// Run kubectl against this server; returns (success, stdout, stderr).
    fn kubectl(&self, args: &[&str], applyset: bool) -> (bool, String, String) {
        let kubeconfig = self.dir.path().join("kubeconfig");
        let cache = self.dir.path().join("kubectl-cache");
        let mut command = Command::new(kubectl_path());
        command
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .env("HOME", self.dir.path());
        if applyset {
            command.env("KUBECTL_APPLYSET", "true");
        }
        let out = command.output().expect("kubectl runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> Value {
        let mut args = vec!["get", kind, name, "-o", "json", "--show-managed-fields"];
        if let Some(ns) = namespace {
            args.extend(["-n", ns]);
        }
        let (ok, out, err) = self.kubectl(&args, false);
        assert!(ok, "kubectl get {kind} {name}: {err}");
        serde_json::from_str(&out).unwrap()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn objects() -> Vec<Object> {
    let o = |v: Value| Object::from_value(v).unwrap();
    vec![
        o(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})),
        o(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop"}, "data": {"greeting": "hello"}}),
        ),
        o(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": "example.com/web:1.0", "ports": [{"containerPort": 8080, "name": "http"}],
                     "env": [{"name": "MODE", "value": "production"}]}]}}}}),
        ),
        o(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}),
        ),
    ]
}

/// Write objects as manifests kubectl reads in this order.
fn manifests(dir: &Path, objects: &[Object]) -> PathBuf {
    let out = dir.join("manifests");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    for (i, o) in objects.iter().enumerate() {
        std::fs::write(
            out.join(format!("{i:02}-{}.json", o.id().file_stem())),
            serde_json::to_vec_pretty(o.body()).unwrap(),
        )
        .unwrap();
    }
    out
}

/// An object as a second server would also have it: no identity, versions,
/// times, field sets, status or ApplySet label.
fn comparable(mut v: Value) -> Value {
    let metadata = v["metadata"].as_object_mut().unwrap();
    for key in ["uid", "resourceVersion", "creationTimestamp", "managedFields", "generation"] {
        metadata.remove(key);
    }
    if let Some(labels) = metadata.get_mut("labels").and_then(Value::as_object_mut) {
        labels.remove("applyset.kubernetes.io/part-of");
        if labels.is_empty() {
            metadata.remove("labels");
        }
    }
    v.as_object_mut().unwrap().remove("status");
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        // Assigned by the server, different on each.
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    v
}

#[test]
fn kubectl_sees_harmonys_objects_as_its_own_server_side_apply_makes_them() {
    let harmony = Server::start();
    let kubectl = Server::start();
    runtime()
        .block_on(engine::apply_objects("shop", &objects(), &harmony.topology()))
        .unwrap();
    let dir = manifests(kubectl.dir.path(), &objects());
    let (ok, _, err) = kubectl.kubectl(
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "--field-manager=harmony",
            "-f",
            dir.to_str().unwrap(),
        ],
        false,
    );
    assert!(ok, "{err}");

    for (kind, ns, name) in [
        ("namespace", None, "shop"),
        ("configmap", Some("shop"), "settings"),
        ("deployment", Some("shop"), "web"),
        ("service", Some("shop"), "web"),
    ] {
        let ours = harmony.get(kind, ns, name);
        let managers: Vec<&str> = ours["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["operation"] == "Apply")
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert_eq!(managers, ["harmony"], "{kind} {name} is applied by manager harmony");
        assert_eq!(comparable(ours), comparable(kubectl.get(kind, ns, name)), "{kind} {name}");
    }
}

#[test]
fn harmonys_applyset_is_the_one_kubectl_writes_and_prunes_alike() {
    let harmony = Server::start();
    let kubectl = Server::start();
    let rt = runtime();
    // kubectl keeps a set's objects in its parent's namespace (`-n`), which must exist first.
    // (`kubectl create` would send protobuf, which the test cluster does not speak.)
    for server in [&harmony, &kubectl] {
        let ns = manifests(server.dir.path(), &objects()[..1]);
        let (ok, _, err) = server.kubectl(&["apply", "--server-side", "--validate=false", "-f", ns.to_str().unwrap()], false);
        assert!(ok, "{err}");
    }
    let topology = harmony.topology_with_parents_in("shop");
    let apply_with_kubectl = |objects: &[Object]| {
        let dir = manifests(kubectl.dir.path(), objects);
        let (ok, _, err) = kubectl.kubectl(
            &[
                "apply",
                "--server-side",
                "--validate=false",
                "--prune",
                "--applyset=harmony-shop",
                "-n",
                "shop",
                "-f",
                dir.to_str().unwrap(),
            ],
            true,
        );
        assert!(ok, "{err}");
    };

    rt.block_on(engine::apply_objects("shop", &objects(), &topology)).unwrap();
    apply_with_kubectl(&objects());
    let parents = || {
        (
            harmony.get("secret", Some("shop"), "harmony-shop"),
            kubectl.get("secret", Some("shop"), "harmony-shop"),
        )
    };
    let same_parent = |(ours, theirs): (Value, Value)| {
        assert_eq!(ours["metadata"]["labels"], theirs["metadata"]["labels"], "the id kubectl computes");
        let mut ours = ours["metadata"]["annotations"].clone();
        let mut theirs = theirs["metadata"]["annotations"].clone();
        assert_eq!(
            ours["applyset.kubernetes.io/tooling"],
            format!("harmony/v{}", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(theirs["applyset.kubernetes.io/tooling"], "kubectl/v1.33.9");
        ours.as_object_mut().unwrap().remove("applyset.kubernetes.io/tooling");
        theirs.as_object_mut().unwrap().remove("applyset.kubernetes.io/tooling");
        assert_eq!(ours, theirs, "the kinds and namespaces, written alike");
    };
    same_parent(parents());
    let member = |s: &Server| s.get("deployment", Some("shop"), "web")["metadata"]["labels"].clone();
    assert_eq!(member(&harmony), member(&kubectl));

    // Both drop the ConfigMap and the Service: both prune the same objects.
    let fewer: Vec<Object> = objects()
        .into_iter()
        .filter(|o| o.id().kind != "ConfigMap" && o.id().kind != "Service")
        .collect();
    rt.block_on(engine::apply_objects("shop", &fewer, &topology)).unwrap();
    apply_with_kubectl(&fewer);
    for server in [&harmony, &kubectl] {
        let (ok, out, _) = server.kubectl(&["get", "configmaps,services", "-n", "shop", "-o", "name"], false);
        assert!(ok);
        assert_eq!(out.trim(), "", "pruned");
    }
    same_parent(parents());

    // kubectl does not take over a set Harmony manages.
    let dir = manifests(harmony.dir.path(), &fewer);
    let (ok, _, err) = harmony.kubectl(
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "--prune",
            "--applyset=harmony-shop",
            "-n",
            "shop",
            "-f",
            dir.to_str().unwrap(),
        ],
        true,
    );
    assert!(!ok);
    assert!(err.contains("managed by tooling \"harmony\""), "{err}");
}
