//! Real kubectl v1.33.9 as the independent judge of what the `k8s` topology
//! writes, straight to the real API server with validation on: it sees Harmony's
//! objects as its own server-side apply would make them, finds nothing to change in
//! them, and sees Harmony's ApplySet as its own `--applyset` would write it.

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
    /// Kept for its lifetime: dropping it stops a dedicated control plane.
    cluster: TestCluster,
    dir: tempfile::TempDir,
}

impl Server {
    /// A handle on the shared control plane.
    fn start() -> Self {
        Self::on(TestCluster::start().unwrap())
    }

    /// A control plane of its own (an ApplySet's id depends on its parent's namespace).
    fn dedicated() -> Self {
        Self::on(TestCluster::dedicated(harmony_test_cluster::Options::default()).unwrap())
    }

    fn on(cluster: TestCluster) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), cluster.direct_kubeconfig()).unwrap();
        Self { cluster, dir }
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

fn objects(ns: &str) -> Vec<Object> {
    let o = |v: Value| Object::from_value(v).unwrap();
    vec![
        o(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
        o(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns}, "data": {"greeting": "hello"}}),
        ),
        o(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns, "labels": {"app": "web"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                    {"name": "web", "image": "example.com/web:1.0", "ports": [{"containerPort": 8080, "name": "http"}],
                     "env": [{"name": "MODE", "value": "production"}]}]}}}}),
        ),
        o(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
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

/// An object as kubectl's twin in another namespace also has it: no identity, versions,
/// times, field sets, status, ApplySet label or namespace.
fn comparable(mut v: Value) -> Value {
    let namespace_kind = v["kind"] == "Namespace";
    let metadata = v["metadata"].as_object_mut().unwrap();
    for key in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
        "generation",
        "namespace",
    ] {
        metadata.remove(key);
    }
    if namespace_kind {
        metadata.remove("name");
    }
    if let Some(labels) = metadata.get_mut("labels").and_then(Value::as_object_mut) {
        labels.remove("applyset.kubernetes.io/part-of");
        labels.remove("kubernetes.io/metadata.name");
        if labels.is_empty() {
            metadata.remove("labels");
        }
    }
    v.as_object_mut().unwrap().remove("status");
    if let Some(spec) = v.get_mut("spec").and_then(Value::as_object_mut) {
        // Assigned by the server, different for each.
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    v
}

#[test]
fn kubectl_sees_harmonys_objects_as_its_own_server_side_apply_makes_them_and_validation_passes() {
    let server = Server::start();
    let (ours, theirs) = (server.cluster.ns("shop"), server.cluster.ns("twin"));
    runtime()
        .block_on(engine::apply_objects("shop", &objects(&ours), &server.topology()))
        .unwrap();

    // The same manifests pass the real OpenAPI validation in a server-side dry run, and kubectl
    // finds nothing to change in what Harmony applied.
    let mine = manifests(server.dir.path(), &objects(&ours));
    let (ok, out, err) = server.kubectl(&["apply", "--server-side", "--dry-run=server", "-f", mine.to_str().unwrap()], false);
    assert!(ok, "validation: {err}");
    assert!(out.contains("serverside-applied (server dry run)"), "{out}");
    // What Harmony applies carries its ApplySet's label, which kubectl must see as well.
    let set = server.get("deployment", Some(&ours), "web")["metadata"]["labels"]["applyset.kubernetes.io/part-of"].clone();
    let applied: Vec<Object> = objects(&ours)
        .into_iter()
        .map(|o| {
            let mut body = o.into_body();
            body["metadata"]["labels"]["applyset.kubernetes.io/part-of"] = set.clone();
            Object::from_value(body).unwrap()
        })
        .collect();
    let applied_dir = tempfile::tempdir().unwrap();
    let applied = manifests(applied_dir.path(), &applied);
    let (ok, out, err) = server.kubectl(
        &["diff", "--server-side", "--field-manager=harmony", "-f", applied.to_str().unwrap()],
        false,
    );
    assert!(ok, "kubectl diff found a difference:\n{out}{err}");
    assert_eq!(out.trim(), "");

    let dir = tempfile::tempdir().unwrap();
    let twin = manifests(dir.path(), &objects(&theirs));
    let (ok, _, err) = server.kubectl(
        &["apply", "--server-side", "--field-manager=harmony", "-f", twin.to_str().unwrap()],
        false,
    );
    assert!(ok, "{err}");
    for (kind, ns, name) in [
        ("namespace", None, None),
        ("configmap", Some(()), Some("settings")),
        ("deployment", Some(()), Some("web")),
        ("service", Some(()), Some("web")),
    ] {
        let get = |namespace: &str| server.get(kind, ns.map(|()| namespace), name.unwrap_or(namespace));
        let harmonys = get(&ours);
        let managers: Vec<&str> = harmonys["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["operation"] == "Apply")
            .filter_map(|m| m["manager"].as_str())
            .collect();
        assert_eq!(managers, ["harmony"], "{kind} {name:?} is applied by manager harmony");
        assert_eq!(comparable(harmonys), comparable(get(&theirs)), "{kind} {name:?}");
    }
}

/// Imperative kubectl works alongside: what it adds to Harmony's objects (a label, an
/// annotation) is its own and no drift; what it deletes, Harmony puts back; what it creates
/// beside them, Harmony leaves alone.
#[test]
fn imperative_kubectl_works_alongside_harmony() {
    let server = Server::start();
    let shop = server.cluster.ns("shop");
    let rt = runtime();
    let topology = server.topology();
    rt.block_on(engine::apply_objects("shop", &objects(&shop), &topology)).unwrap();
    for args in [
        vec!["label", "deployment", "web", "team=payments", "-n", &shop],
        vec!["annotate", "configmap", "settings", "owner=ops", "-n", &shop],
        vec!["create", "configmap", "extra", "--from-literal=a=b", "-n", &shop],
    ] {
        let (ok, _, err) = server.kubectl(&args, false);
        assert!(ok, "kubectl {args:?}: {err}");
    }
    let plan = rt.block_on(engine::plan_objects("shop", &objects(&shop), &topology)).unwrap();
    assert!(plan.is_empty(), "kubectl's label and annotation are not drift: {plan:?}");

    let (ok, _, err) = server.kubectl(&["delete", "configmap", "settings", "-n", &shop], false);
    assert!(ok, "{err}");
    let plan = rt.block_on(engine::apply_objects("shop", &objects(&shop), &topology)).unwrap();
    assert_eq!(plan.summary().add, 1, "{plan:?}");
    let (ok, out, _) = server.kubectl(&["get", "configmaps", "-n", &shop, "-o", "name"], false);
    assert!(ok);
    assert!(out.contains("configmap/settings") && out.contains("configmap/extra"), "{out}");
    let live = server.get("deployment", Some(&shop), "web");
    assert_eq!(live["metadata"]["labels"]["team"], "payments", "kubectl's label stays");
}

#[test]
fn harmonys_applyset_is_the_one_kubectl_writes_and_prunes_alike() {
    // Two clusters: an ApplySet's id is its parent's name and namespace, the same on both.
    let harmony = Server::dedicated();
    let kubectl = Server::dedicated();
    let rt = runtime();
    // kubectl keeps a set's objects in its parent's namespace (`-n`), which must exist first.
    for server in [&harmony, &kubectl] {
        let (ok, _, err) = server.kubectl(&["create", "namespace", "shop"], false);
        assert!(ok, "{err}");
    }
    let topology = harmony.topology_with_parents_in("shop");
    let apply_with_kubectl = |objects: &[Object]| {
        let dir = manifests(kubectl.dir.path(), objects);
        let (ok, _, err) = kubectl.kubectl(
            &[
                "apply",
                "--server-side",
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

    rt.block_on(engine::apply_objects("shop", &objects("shop"), &topology)).unwrap();
    apply_with_kubectl(&objects("shop"));
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
    let fewer: Vec<Object> = objects("shop")
        .into_iter()
        .filter(|o| o.id().kind != "ConfigMap" && o.id().kind != "Service")
        .collect();
    rt.block_on(engine::apply_objects("shop", &fewer, &topology)).unwrap();
    apply_with_kubectl(&fewer);
    for server in [&harmony, &kubectl] {
        let (ok, out, _) = server.kubectl(&["get", "configmaps,services", "-n", "shop", "-o", "name"], false);
        assert!(ok);
        // The root CA's ConfigMap is the controller manager's, in every namespace.
        assert_eq!(out.trim(), "configmap/kube-root-ca.crt", "pruned");
    }
    same_parent(parents());

    // kubectl does not take over a set Harmony manages.
    let dir = manifests(harmony.dir.path(), &fewer);
    let (ok, _, err) = harmony.kubectl(
        &[
            "apply",
            "--server-side",
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
