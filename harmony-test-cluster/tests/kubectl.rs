//! Real kubectl v1.33.9 against the test server (installed by scripts/install-k8s-tools).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use harmony_test_cluster::TestCluster;
use serde_json::Value;

fn kubectl_path() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kubectl/kubectl");
    assert!(
        path.exists(),
        "kubectl v1.33.9 is missing at {}: run scripts/install-k8s-tools",
        path.display()
    );
    path
}

/// A kubectl bound to one cluster, with its own kubeconfig and cache.
struct Kubectl {
    dir: tempfile::TempDir,
    kubeconfig: PathBuf,
}

impl Kubectl {
    fn new(cluster: &TestCluster) -> Kubectl {
        let dir = tempfile::tempdir().expect("tempdir");
        let kubeconfig = dir.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).expect("kubeconfig");
        Kubectl { dir, kubeconfig }
    }

    fn for_kubeconfig(kubeconfig: &Path) -> Kubectl {
        Kubectl {
            dir: tempfile::tempdir().expect("tempdir"),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("write manifest");
        path
    }

    fn run(&self, args: &[&str], applyset: bool) -> Output {
        let cache = self.dir.path().join("cache");
        let mut cmd = Command::new(kubectl_path());
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&cache)
            .args(args)
            .env("HOME", self.dir.path());
        if applyset {
            cmd.env("KUBECTL_APPLYSET", "true");
        }
        cmd.output().expect("run kubectl")
    }

    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, false)
    }

    fn ok_with(&self, args: &[&str], applyset: bool) -> String {
        let out = self.run(args, applyset);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        serde_json::from_str(&self.ok(args)).expect("kubectl printed JSON")
    }
}

const TWO_MAPS: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\ndata:\n  k: v\n";
const ONE_MAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v2\n";

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn kubectl_lists_namespaces() {
    let cluster = TestCluster::start().expect("start");
    let k = Kubectl::new(&cluster);
    let list = k.json(&["get", "ns", "-o", "json"]);
    let names = names(&list);
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(names.contains(&ns.to_string()), "{names:?}");
    }
}

#[test]
fn kubectl_server_side_apply_records_its_manager() {
    let cluster = TestCluster::start().expect("start");
    let k = Kubectl::new(&cluster);
    let file = k.file("maps.yaml", TWO_MAPS);
    let out = k.ok(&["apply", "--server-side", "--validate=false", "-f", file.to_str().expect("path")]);
    assert!(out.contains("configmap/a serverside-applied"), "{out}");
    let cm = k.json(&["get", "cm", "a", "-o", "json", "--show-managed-fields"]);
    let managers: Vec<&str> = cm["metadata"]["managedFields"]
        .as_array()
        .expect("managed fields")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(managers, ["kubectl"]);
    assert_eq!(
        cm["metadata"]["managedFields"][0]["fieldsV1"]["f:data"]["f:k"],
        serde_json::json!({})
    );
    let list = k.json(&["get", "cm", "-o", "json"]);
    assert_eq!(names(&list), ["a", "b"]);
}

#[test]
fn kubectl_applyset_prunes_what_left_the_set() {
    let cluster = TestCluster::start().expect("start");
    let k = Kubectl::new(&cluster);
    let first = k.file("first.yaml", TWO_MAPS);
    let args = |f: &Path| -> Vec<String> {
        [
            "apply",
            "--server-side",
            "--validate=false",
            "--prune",
            "--applyset=myset",
            "-n",
            "default",
            "-f",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([f.to_string_lossy().into_owned()])
        .collect()
    };
    let a1 = args(&first);
    let a1: Vec<&str> = a1.iter().map(String::as_str).collect();
    k.ok_with(&a1, true);
    let parent = cluster.object("v1", "Secret", Some("default"), "myset").expect("the parent Secret");
    assert_eq!(
        parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        "applyset-51uXdjs_k8zt9KVdAtPaWnW_O9B-EVzd2Bkztfa9DSA-v1"
    );
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap"
    );
    let b = cluster.object("v1", "ConfigMap", Some("default"), "b").expect("b");
    assert_eq!(
        b["metadata"]["labels"]["applyset.kubernetes.io/part-of"],
        "applyset-51uXdjs_k8zt9KVdAtPaWnW_O9B-EVzd2Bkztfa9DSA-v1"
    );

    let second = k.file("second.yaml", ONE_MAP);
    // A server-side dry run prunes nothing.
    let mut dry = args(&second);
    dry.push("--dry-run=server".into());
    let dry: Vec<&str> = dry.iter().map(String::as_str).collect();
    let out = k.ok_with(&dry, true);
    assert!(out.contains("configmap/b pruned"), "{out}");
    assert!(cluster.object("v1", "ConfigMap", Some("default"), "b").is_some());
    assert_eq!(
        cluster.object("v1", "ConfigMap", Some("default"), "a").expect("a")["data"]["k"],
        "v"
    );

    let a2 = args(&second);
    let a2: Vec<&str> = a2.iter().map(String::as_str).collect();
    let out = k.ok_with(&a2, true);
    assert!(out.contains("configmap/b pruned"), "{out}");
    assert!(cluster.object("v1", "ConfigMap", Some("default"), "b").is_none());
    assert_eq!(
        cluster.object("v1", "ConfigMap", Some("default"), "a").expect("a")["data"]["k"],
        "v2"
    );
}

#[test]
fn kubectl_server_dry_run_persists_nothing() {
    let cluster = TestCluster::start().expect("start");
    let k = Kubectl::new(&cluster);
    let file = k.file("maps.yaml", TWO_MAPS);
    let rv = cluster.resource_version();
    k.ok(&[
        "apply",
        "--server-side",
        "--validate=false",
        "--dry-run=server",
        "-f",
        file.to_str().expect("path"),
    ]);
    assert!(cluster.objects("v1", "ConfigMap").is_empty());
    assert_eq!(cluster.resource_version(), rv);
}

#[test]
fn kubectl_diff_reports_changes_by_exit_code() {
    let cluster = TestCluster::start().expect("start");
    let k = Kubectl::new(&cluster);
    let file = k.file("maps.yaml", TWO_MAPS);
    let path = file.to_str().expect("path");
    k.ok(&["apply", "--server-side", "--validate=false", "-f", path]);
    let same = k.run(&["diff", "--server-side", "-f", path], false);
    assert_eq!(same.status.code(), Some(0), "{}", String::from_utf8_lossy(&same.stderr));
    let changed = k.file("changed.yaml", ONE_MAP);
    let diff = k.run(&["diff", "--server-side", "-f", changed.to_str().expect("path")], false);
    assert_eq!(diff.status.code(), Some(1), "{}", String::from_utf8_lossy(&diff.stderr));
    assert!(String::from_utf8_lossy(&diff.stdout).contains("+  k: v2"));
}

#[test]
fn the_binary_prints_its_kubeconfig_first_and_serves_kubectl() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_harmony-test-cluster"))
        .args(["--ready-after", "10"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the binary");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").expect("read");
    let path = first.strip_prefix("KUBECONFIG=").expect("KUBECONFIG= first").to_string();
    let second = lines.next().expect("a second line").expect("read");
    assert!(second.contains("healthy cluster"), "{second}");
    let k = Kubectl::for_kubeconfig(Path::new(&path));
    let list = k.json(&["get", "ns", "-o", "json"]);
    assert!(names(&list).contains(&"default".to_string()));
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "exits 0 on SIGTERM: {status:?}");
}
