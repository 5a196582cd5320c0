//! kube-apiserver restarted in the middle of an apply of the 1000-app workload (4000 objects),
//! on a control plane of the test's own: the apply either completes (its requests retried) or
//! fails cleanly; a rerun converges; every object is in its ApplySet and nothing is orphaned.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harmony_test_cluster::{Options, TestCluster, Workloads};

const N: usize = 1000;

#[test]
fn an_api_server_restarted_in_the_middle_of_a_big_apply_loses_nothing_and_a_rerun_converges() {
    let cluster = TestCluster::dedicated(Options {
        ready_after: Duration::ZERO,
        workloads: Workloads::Ready { after: Duration::ZERO },
        ..Options::default()
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let bench = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harmony-bench"));
        cmd.args(args)
            .env("HARMONY_BENCH_N", N.to_string())
            .env("KUBECONFIG", &kubeconfig)
            .env("HARMONY_STATE_DIR", dir.path().join("state"))
            .env("HARMONY_K8S_TIMEOUT", "600")
            .env_remove("HARMONY_K8S_CONTEXT")
            .env_remove("HARMONY_K8S_NAMESPACE");
        cmd
    };
    let namespace = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"bench"}}"#;
    cluster
        .block_on({
            let client = cluster.client();
            async move {
                let request = http::Request::post("/api/v1/namespaces")
                    .header("content-type", "application/json")
                    .body(namespace.as_bytes().to_vec())
                    .unwrap();
                client.request_text(request).await
            }
        })
        .unwrap();

    // Its output goes to files: a pipe nobody reads would stop it once full.
    let mut child = bench(&["apply", "--topology", "k8s", "--yes", "bench"])
        .stdout(Stdio::from(std::fs::File::create(dir.path().join("apply.out")).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(dir.path().join("apply.err")).unwrap()))
        .spawn()
        .unwrap();
    // Restart once some apps are written, well before all are (each app is waited for until
    // ready before the next takes its place, sixteen at a time: this takes minutes).
    let started = Instant::now();
    loop {
        let written = members(&cluster, "v1", "ConfigMap");
        if written >= 50 {
            assert!(written < N, "the apply wrote everything before the restart: too fast to test");
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the apply ended before the restart ({status})");
        }
        assert!(started.elapsed() < Duration::from_secs(300), "the apply never got going");
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.restart_apiserver().unwrap();
    let status = child.wait().unwrap();
    let said = std::fs::read_to_string(dir.path().join("apply.err")).unwrap();
    match status.code() {
        Some(0) => {}
        Some(1) => assert!(said.contains("error:"), "a failure says why:\n{said}"),
        other => panic!("neither completed nor failed cleanly ({other:?}):\n{said}"),
    }

    let rerun = bench(&["apply", "--topology", "k8s", "--yes", "bench"]).output().unwrap();
    assert_eq!(
        rerun.status.code(),
        Some(0),
        "the rerun finishes: {}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let plan = bench(&["plan", "--topology", "k8s", "bench"]).output().unwrap();
    assert_eq!(plan.status.code(), Some(0), "converged: {}", String::from_utf8_lossy(&plan.stdout));

    // Exactly one of each object, each a member of the set, and the parent lists every kind.
    for (api_version, kind) in [
        ("v1", "ServiceAccount"),
        ("v1", "ConfigMap"),
        ("v1", "Service"),
        ("apps/v1", "Deployment"),
    ] {
        let objects = cluster.objects(api_version, kind);
        let ours: Vec<_> = objects
            .iter()
            .filter(|o| o["metadata"]["namespace"] == "bench" && o["metadata"]["name"].as_str().is_some_and(|n| n.starts_with("app-")))
            .collect();
        assert_eq!(ours.len(), N, "{kind}s: nothing lost, nothing duplicated");
        let orphans: Vec<_> = ours
            .iter()
            .filter(|o| !o["metadata"]["labels"]["applyset.kubernetes.io/part-of"].is_string())
            .map(|o| o["metadata"]["name"].clone())
            .collect();
        assert!(orphans.is_empty(), "{kind}s outside the set: {orphans:?}");
    }
    let parent = cluster
        .object("v1", "Secret", Some(cluster.namespace()), "harmony-bench")
        .expect("the parent, in the namespace of the kubeconfig's context");
    let kinds = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap()
        .to_owned();
    for kind in ["ServiceAccount", "ConfigMap", "Service", "Deployment.apps"] {
        assert!(kinds.split(',').any(|k| k == kind), "the parent lists {kind}: {kinds}");
    }
}

/// How many objects of a kind carry an ApplySet's member label.
fn members(cluster: &TestCluster, api_version: &str, kind: &str) -> usize {
    cluster
        .objects(api_version, kind)
        .iter()
        .filter(|o| o["metadata"]["labels"]["applyset.kubernetes.io/part-of"].is_string())
        .count()
}
