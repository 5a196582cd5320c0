//! The binary (`scripts/test-cluster`) as a user runs it, with real kubectl v1.33.9 (installed
//! by `scripts/install-k8s-tools`): the kubeconfig first, the real server's version, health and
//! tables, the real controllers' statuses, logs through the kubelet, and a clean stop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// The binary, started: its kubeconfig and the directory it says holds its logs.
struct Binary {
    child: std::process::Child,
    kubeconfig: PathBuf,
    said: Vec<String>,
}

impl Binary {
    fn start(args: &[&str]) -> Binary {
        let mut child = Command::new(env!("CARGO_BIN_EXE_harmony-test-cluster"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the binary");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().expect("a first line").expect("read");
        let kubeconfig = PathBuf::from(first.strip_prefix("KUBECONFIG=").expect("KUBECONFIG= first"));
        let said: Vec<String> = lines.take(2).map_while(Result::ok).collect();
        Binary { child, kubeconfig, said }
    }

    /// SIGTERM, and how it exited.
    fn stop(mut self) -> std::process::ExitStatus {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        self.child.wait().expect("wait")
    }
}

/// The processes whose command line names `text` (the control plane's directory).
fn processes_naming(text: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(text)))
        .collect()
}

#[test]
fn the_binary_serves_kubectl_the_real_kubernetes_and_stops_everything_it_started() {
    let binary = Binary::start(&["--ready-after", "100"]);
    let k = Kubectl::for_kubeconfig(&binary.kubeconfig);
    assert!(
        binary.said[0].contains(harmony_test_cluster::kubernetes_version()),
        "{:?}",
        binary.said
    );

    let version = k.json(&["version", "-o", "json"]);
    assert_eq!(version["serverVersion"]["gitVersion"], harmony_test_cluster::kubernetes_version());
    assert_eq!(version["clientVersion"]["gitVersion"], "v1.33.9");
    let readyz = k.ok(&["get", "--raw", "/readyz?verbose"]);
    assert!(readyz.contains("[+]etcd ok"), "{readyz}");

    // Imperative kubectl speaks protobuf to the server: it just works.
    k.ok(&["create", "deployment", "web", "--image=example.com/web:1", "--replicas=2"]);
    k.ok(&["rollout", "status", "deployment/web", "--timeout=60s"]);
    let reasons = k.ok(&[
        "get", "deploy", "-A", "-o",
        "jsonpath={range .items[*]}{.status.conditions[?(@.type==\"Available\")].status} {.status.conditions[?(@.type==\"Progressing\")].reason}{end}",
    ]);
    assert_eq!(reasons, "True NewReplicaSetAvailable");
    let logs = k.run(&["logs", "deployment/web"], false);
    assert!(
        logs.status.success(),
        "kubectl logs through the kubelet: {}",
        String::from_utf8_lossy(&logs.stderr)
    );

    // A custom resource is shown with its CRD's printer columns (the server's tables).
    let crd = k.file(
        "crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: widgets.example.com\nspec:\n  group: example.com\n  scope: Namespaced\n  names: {plural: widgets, singular: widget, kind: Widget}\n  versions:\n  - name: v1\n    served: true\n    storage: true\n    schema: {openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer}}}}}}\n    additionalPrinterColumns:\n    - {name: Size, type: integer, jsonPath: .spec.size}\n",
    );
    k.ok(&["apply", "--server-side", "-f", crd.to_str().unwrap()]);
    k.ok(&["wait", "--for=condition=Established", "crd/widgets.example.com", "--timeout=30s"]);
    let widget = k.file(
        "widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: small}\nspec: {size: 3}\n",
    );
    k.ok(&["apply", "--server-side", "-f", widget.to_str().unwrap()]);
    let table = k.ok(&["get", "widgets"]);
    assert!(table.lines().next().unwrap().contains("SIZE"), "{table}");
    assert!(table.contains("small") && table.contains('3'), "{table}");
    // The schema is enforced: validation is on.
    let bad = k.file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: big}\n",
    );
    let refused = k.run(&["apply", "--server-side", "-f", bad.to_str().unwrap()], false);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("spec.size"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let dir = binary.said[0].rsplit_once("logs in ").expect("where its logs are").1.to_owned();
    assert_eq!(
        processes_naming(&dir).len(),
        4,
        "etcd, kube-apiserver, kube-controller-manager, kube-scheduler"
    );
    let status = binary.stop();
    assert!(status.success(), "exits 0 on SIGTERM: {status:?}");
    assert!(processes_naming(&dir).is_empty(), "every process it started is gone");
    assert!(!std::path::Path::new(&dir).exists(), "and its directory");
}

/// Two at once: each has its own ports, directory and node; stopping one leaves the other.
#[test]
fn two_test_clusters_run_side_by_side() {
    let one = Binary::start(&[]);
    let two = Binary::start(&[]);
    let (a, b) = (Kubectl::for_kubeconfig(&one.kubeconfig), Kubectl::for_kubeconfig(&two.kubeconfig));
    a.ok(&["create", "configmap", "only-in-one"]);
    assert!(!b.run(&["get", "configmap", "only-in-one"], false).status.success());
    assert!(one.stop().success());
    assert!(b.ok(&["get", "nodes"]).contains("Ready"));
    assert!(two.stop().success());
}

/// Started by a process that then dies (here `timeout`, killed), the binary stops everything it
/// started and removes its directory, as on SIGTERM.
#[test]
fn the_binary_stops_everything_when_the_process_that_started_it_dies() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = std::fs::File::create(out_dir.path().join("out")).unwrap();
    let mut parent = Command::new("timeout")
        .arg("600")
        .arg(env!("CARGO_BIN_EXE_harmony-test-cluster"))
        .stdout(out)
        .spawn()
        .expect("start the binary under timeout");
    let said = |n: usize| {
        std::fs::read_to_string(out_dir.path().join("out"))
            .unwrap_or_default()
            .lines()
            .count()
            >= n
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !said(2) {
        assert!(std::time::Instant::now() < deadline, "the binary never started");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(out_dir.path().join("out")).unwrap();
    let dir = text
        .rsplit_once("logs in ")
        .expect("where its logs are")
        .1
        .lines()
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(processes_naming(&dir).len(), 4, "{text}");
    parent.kill().unwrap();
    let _ = parent.wait();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !processes_naming(&dir).is_empty() || std::path::Path::new(&dir).exists() {
        assert!(std::time::Instant::now() < deadline, "left behind: {:?}", processes_naming(&dir));
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
