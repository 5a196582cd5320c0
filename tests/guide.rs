//! The guide's example crate (docs/example), built from outside this
//! workspace as a user's crate would be, then run: docs/guide.md stays true.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use harmony_test_cluster::{Options, TestCluster, Workloads};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_guides_example_builds_outside_the_workspace_and_runs() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let krate = dir.path().join("greeter");
    copy_dir(&repo.join("docs/example"), &krate);
    // The guide's `path = "../../…"` points into this repository; out here it is absolute.
    let manifest = fs::read_to_string(krate.join("Cargo.toml")).unwrap();
    let manifest = manifest.replace("\"../../", &format!("\"{}/", repo.display()));
    fs::write(krate.join("Cargo.toml"), manifest).unwrap();
    // The same dependency versions as the workspace, so the build needs no network.
    fs::copy(repo.join("Cargo.lock"), krate.join("Cargo.lock")).unwrap();

    // The workspace's own target directory: the dependencies built with the same
    // versions and features are reused (cargo holds no lock on it while tests run).
    let target: PathBuf = Path::new(env!("CARGO_BIN_EXE_harmony")).ancestors().nth(2).unwrap().to_owned();
    let cargo = env!("CARGO");
    let build = Command::new(cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .unwrap();
    assert!(build.status.success(), "{}", String::from_utf8_lossy(&build.stderr));

    let binary = target.join("debug/harmony-greeter");
    let state = dir.path().join("state");
    let run = |args: &[&str], greeting: &str| {
        Command::new(&binary)
            .args(args)
            .current_dir(&krate)
            .env("HARMONY_STATE_DIR", &state)
            .env("GREETING", greeting)
            .output()
            .unwrap()
    };
    let list = run(&["list"], "hello");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.trim_start().starts_with("greeter ") && l.contains("[ci, k8s, local]")),
        "{listed}"
    );

    let empty = run(&["apply", "--yes"], " ");
    assert_eq!(empty.status.code(), Some(1));
    let err = String::from_utf8_lossy(&empty.stderr);
    assert!(err.contains("the greeting: it is empty") && err.contains("set `GREETING`"), "{err}");

    let apply = run(&["apply", "--yes"], "hello");
    assert!(apply.status.success(), "{}", String::from_utf8_lossy(&apply.stderr));
    assert!(String::from_utf8_lossy(&apply.stderr).contains("verified greeter (smoke test passed)"));
    assert!(state.join("greeter/manifests/greeter/configmap-greeting.yaml").is_file());

    // On a cluster (docs/guide.md, "On a cluster"): a custom resource before its CRD, in one apply.
    let ready_after = Duration::from_millis(300);
    let cluster = TestCluster::dedicated(Options {
        ready_after,
        workloads: Workloads::Ready { after: ready_after },
        ..Options::default()
    })
    .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let on_cluster = |args: &[&str]| {
        Command::new(&binary)
            .args(args)
            .args(["--topology", "k8s"])
            .current_dir(&krate)
            .env("KUBECONFIG", &kubeconfig)
            .env("HARMONY_STATE_DIR", dir.path().join("k8s-state"))
            .output()
            .unwrap()
    };
    let said = |o: &std::process::Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let apply = on_cluster(&["apply", "greeter-cluster", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", said(&apply));
    let greeting = cluster
        .object("greeter.example.com/v1", "Greeting", Some("default"), "hello")
        .expect("the custom resource was applied after its CRD");
    assert_eq!(greeting["spec"]["text"], "hello");
    let plan = on_cluster(&["plan", "greeter-cluster"]);
    assert_eq!(plan.status.code(), Some(0), "{}", said(&plan));

    // The test cluster fails the workload on purpose: `plan` says so, and exits 3.
    cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 2,
        log: vec!["greeter: no greeting configured".into()],
    });
    let pods = kube::api::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
    };
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(cluster.client(), "default", &pods);
    cluster
        .block_on(async move { api.delete_collection(&Default::default(), &Default::default()).await.map(|_| ()) })
        .unwrap();
    let mut unhealthy = None;
    for _ in 0..60 {
        let plan = on_cluster(&["plan", "greeter-cluster"]);
        if plan.status.code() == Some(3) && said(&plan).contains("no greeting configured") {
            unhealthy = Some(plan);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let plan = unhealthy.expect("plan exits 3 once the greeter crash-loops");
    assert!(
        said(&plan).contains("! apps/v1 Deployment default/greeter is not healthy now"),
        "{}",
        said(&plan)
    );
}
