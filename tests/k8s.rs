//! The `k8s` topology as a user runs it: the real binary against the real control plane
//! (`scripts/test-cluster` runs the same standalone). The apps deploy into the namespaces they
//! name, so each test has a control plane of its own.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use harmony_test_cluster::{ArgoCd, Options, TestCluster, Workloads};

// Only the anonymous registry is used here.
#[allow(dead_code)]
#[path = "../harmony/tests/support/registry.rs"]
mod registry;

struct Setup {
    cluster: TestCluster,
    dir: tempfile::TempDir,
    /// The fleet's NATS authority the apps are given (`FLEET_NATS_AUTHORITY`).
    authority: String,
}

impl Setup {
    fn new() -> Self {
        Self::with(Options::default())
    }

    /// A control plane of its own, whose played pods are ready after 300 ms.
    fn with(options: Options) -> Self {
        let ready_after = Duration::from_millis(300);
        let cluster = TestCluster::dedicated(Options {
            ready_after,
            workloads: Workloads::Ready { after: ready_after },
            ..options
        })
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        cluster.write_kubeconfig(&dir.path().join("kubeconfig")).unwrap();
        let authority = fleet::Authority::generate().to_text();
        Self { cluster, dir, authority }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// The CLI with `args`, pointed at this cluster and state directory.
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harmony"));
        cmd.args(args)
            .env("KUBECONFIG", self.kubeconfig())
            .env("HARMONY_STATE_DIR", self.dir.path().join("state"))
            .env("HARMONY_K8S_TIMEOUT", "20")
            .env_remove("HARMONY_K8S_CONTEXT")
            .env_remove("HARMONY_TOPOLOGY")
            .env_remove("WEBAPP_DB_PASSWORD")
            // The fleet's NATS authority has no default: a cluster is refused without it.
            .env("FLEET_NATS_AUTHORITY", &self.authority);
        cmd
    }
}

/// A JSON answer of the cluster's API server, asked as the administrator.
fn api_get(cluster: &TestCluster, path: &str) -> serde_json::Value {
    let client = cluster.client();
    let request = http::Request::get(path).body(Vec::new()).unwrap();
    let answer = cluster.block_on(async move { client.request_text(request).await }).unwrap();
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn apply_deploys_the_webapp_to_the_cluster_waits_until_ready_and_plan_then_exits_0() {
    let s = Setup::new();
    let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    assert_eq!(plan.status.code(), Some(2), "changes to make: {}", text(&plan));

    let apply = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(text(&apply).contains("5 added"), "{}", text(&apply));
    let deployment = s.cluster.object("apps/v1", "Deployment", Some("webapp"), "webapp").unwrap();
    assert_eq!(deployment["status"]["readyReplicas"], 2, "it returned once the rollout was ready");

    let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    assert!(text(&plan).contains("no changes"), "{}", text(&plan));

    // A member deleted by hand, then four applies at once: the app's Lease lets one at a
    // time write it, so exactly one restores the member and the others find nothing to do.
    let client = s.cluster.client();
    let delete = http::Request::delete("/api/v1/namespaces/webapp/services/webapp")
        .body(Vec::new())
        .unwrap();
    s.cluster.block_on(async move { client.request_text(delete).await }).unwrap();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let mut cmd = s.command(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
            std::thread::spawn(move || cmd.output().unwrap())
        })
        .collect();
    let said: Vec<String> = runs
        .into_iter()
        .map(|run| {
            let out = run.join().unwrap();
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            text(&out)
        })
        .collect();
    let restored = said.iter().filter(|t| t.contains("1 added")).count();
    let idle = said.iter().filter(|t| t.contains("no changes")).count();
    assert_eq!((restored, idle), (1, 3), "one run restores the Service:\n{}", said.join("\n---\n"));
    assert!(s.cluster.object("v1", "Service", Some("webapp"), "webapp").is_some());
    let lease = s
        .cluster
        .object("coordination.k8s.io/v1", "Lease", Some("default"), "harmony-lock-webapp-server")
        .expect("the app's lock is a Lease in the parents' namespace");
    assert_eq!(lease["spec"].get("holderIdentity"), None, "given back: {lease}");
}

#[test]
fn a_crash_loop_fails_the_apply_naming_the_culprit_and_a_rerun_does_not_pretend_it_works() {
    let s = Setup::new();
    s.cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 1,
        log: vec!["listening on :8080".into(), "panic: WEBAPP_GREETING is empty".into()],
    });
    let apply = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    let said = text(&apply);
    assert_eq!(apply.status.code(), Some(1), "{said}");
    for culprit in [
        "apps/v1 Deployment webapp/webapp",
        "CrashLoopBackOff",
        "panic: WEBAPP_GREETING is empty",
        "BackOff",
        "help:",
        // The Score whose object failed, where it is declared, and its place in the app.
        "apps/webapp/src/lib.rs:",
        ": Score `Server` at `webapp-server/",
    ] {
        assert!(said.contains(culprit), "`{culprit}` in:\n{said}");
    }

    // A plan reads live state: next to what is left to add, it says what is not healthy.
    let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    let said = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert_eq!(plan.status.code(), Some(2), "the Service is still to add: {said}");
    for culprit in [
        "! apps/v1 Deployment webapp/webapp is not healthy now",
        "CrashLoopBackOff",
        "panic: WEBAPP_GREETING is empty",
        "1 object is not healthy now",
    ] {
        assert!(said.contains(culprit), "`{culprit}` in:\n{said}");
    }
    let json = s.run(&["plan", "webapp-server", "--topology", "k8s", "--output", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    let unhealthy = &doc["plans"][0]["unhealthy"];
    assert_eq!(unhealthy.as_array().map(Vec::len), Some(1), "{doc}");
    assert_eq!(unhealthy[0]["object"]["kind"], "Deployment");
    assert!(unhealthy[0]["why"].as_str().unwrap().contains("CrashLoopBackOff"), "{doc}");

    let again = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(
        again.status.code(),
        Some(1),
        "nothing changed, and it still does not work: {}",
        text(&again)
    );
    assert!(text(&again).contains("CrashLoopBackOff"), "{}", text(&again));
    assert!(text(&again).contains("is not healthy now"), "said up front: {}", text(&again));
}

#[test]
fn a_plan_with_nothing_to_change_still_says_what_is_not_healthy() {
    let s = Setup::new();
    let apply = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));

    // The app's pods start crash-looping without any change of Harmony's (a bad node, a
    // dependency gone): its next pods crash.
    s.cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 3,
        log: vec!["fatal: the database is gone".into()],
    });
    let pods = kube::api::ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Pod".into(),
        plural: "pods".into(),
    };
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(s.cluster.client(), "webapp", &pods);
    s.cluster
        .block_on(async move { api.delete_collection(&Default::default(), &Default::default()).await.map(|_| ()) })
        .unwrap();

    let mut last = None;
    for _ in 0..60 {
        let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
        if plan.status.code() == Some(3) && text(&plan).contains("fatal: the database is gone") {
            last = Some(plan);
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let plan = last.expect("plan exits 3 once the Deployment is unhealthy");
    let said = String::from_utf8_lossy(&plan.stdout).into_owned();
    for line in [
        "webapp-server on k8s: no changes",
        "! apps/v1 Deployment webapp/webapp is not healthy now",
        "last exit code 3",
        "No changes, but 1 object is not healthy",
    ] {
        assert!(said.contains(line), "`{line}` in:\n{said}");
    }
    let apply = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(apply.status.code(), Some(1), "{}", text(&apply));
    assert!(text(&apply).contains("is not healthy now"), "said up front: {}", text(&apply));
}

#[test]
fn an_unreachable_cluster_or_a_bad_kubeconfig_is_reported_before_any_work() {
    let s = Setup::new();
    let dead = s.dir.path().join("dead");
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n\
         contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {}}]\n",
    )
    .unwrap();
    let out = s.run_with(
        &["plan", "webapp-server", "--topology", "k8s"],
        &[("KUBECONFIG", dead.to_str().unwrap()), ("HARMONY_K8S_REQUEST_TIMEOUT", "1")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is not reachable"), "{}", text(&out));
    assert!(text(&out).contains("http://127.0.0.1:9"), "{}", text(&out));

    let garbage = s.dir.path().join("garbage");
    std::fs::write(&garbage, "clusters: {").unwrap();
    let out = s.run_with(
        &["plan", "webapp-server", "--topology", "k8s"],
        &[("KUBECONFIG", garbage.to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).contains("is not a kubeconfig"), "{}", text(&out));

    let out = s.run_with(&["plan", "webapp-server", "--topology", "k8s"], &[("HARMONY_K8S_CONTEXT", "prod")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("has no context `prod`; it has: harmony-test-cluster"),
        "{}",
        text(&out)
    );
    assert!(s.cluster.requests().is_empty(), "nothing reached the cluster");

    // Kubeconfigs that reach nothing, or the wrong thing, each told apart; none retried.
    let good = std::fs::read_to_string(s.kubeconfig()).unwrap();
    let variant = |name: &str, text: String| {
        let path = s.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let server = good.lines().find_map(|l| l.trim().strip_prefix("server: ")).unwrap().to_owned();
    let token = good.lines().find_map(|l| l.trim().strip_prefix("token: ")).unwrap().to_owned();
    let ca_line = good.lines().find(|l| l.contains("certificate-authority-data")).unwrap().to_owned();
    let cases = [
        (
            variant("dns", good.replace(&server, "https://no-such-host.invalid:6443")),
            vec![
                "`https://no-such-host.invalid:6443",
                "cannot be connected to: its host name does not resolve",
                "check the `server`",
            ],
        ),
        (
            variant("other-ca", good.replace(&format!("{ca_line}\n"), "")),
            vec![
                server.as_str(),
                "its TLS certificate is not trusted",
                "UnknownIssuer",
                "certificate-authority-data",
            ],
        ),
        (
            variant("bad-token", good.replace(&token, "not-the-token")),
            vec![
                server.as_str(),
                "did not accept this run's credentials",
                "401 Unauthorized",
                "renew them",
            ],
        ),
    ];
    for (kubeconfig, expected) in cases {
        let out = s.run_with(
            &["apply", "webapp-server", "--topology", "k8s", "--yes"],
            &[("KUBECONFIG", kubeconfig.to_str().unwrap())],
        );
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        for e in expected {
            assert!(said.contains(e), "`{e}` for {}:\n{said}", kubeconfig.display());
        }
        assert!(!said.contains("tried"), "a lasting failure is not retried: {said}");
        assert!(!said.contains("not-the-token"), "no credential in messages: {said}");
    }
    assert!(s.cluster.object("v1", "Namespace", None, "webapp").is_none(), "nothing was written");
}

#[test]
fn verbose_logs_replay_the_run_span_by_span_without_secret_values() {
    let s = Setup::new();
    let canary = "canary-password-0123";
    let out = s.run_with(
        &["apply", "webapp-server", "--topology", "k8s", "--yes", "-vv"],
        &[("WEBAPP_DB_PASSWORD", canary)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let logs = String::from_utf8_lossy(&out.stderr);
    for span in [
        "observe{app=\"webapp-server\"",
        "step{path=webapp-server/server",
        "verify{path=webapp-server/server",
        "request{verb=\"apply\"",
    ] {
        assert!(logs.contains(span), "`{span}` in:\n{logs}");
    }
    assert!(!text(&out).contains(canary), "no secret value in logs");

    let quiet = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    assert!(
        !String::from_utf8_lossy(&quiet.stderr).contains("close time.busy"),
        "nothing is logged without -v"
    );
}

/// `apply webapp-server` on `s`, sent `signal` once it has written its first member.
fn apply_stopped_by(s: &Setup, signal: &str) -> Output {
    // Slow enough that the signal lands in the middle of the apply.
    s.cluster.inject(harmony_test_cluster::Fault::Latency(Duration::from_millis(60)));
    let child = s
        .command(&["apply", "webapp-server", "--topology", "k8s", "--yes"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while s
        .cluster
        .objects("v1", "Namespace")
        .iter()
        .all(|n| n["metadata"]["name"] != "webapp")
    {
        assert!(started.elapsed() < Duration::from_secs(30), "the apply never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    s.cluster.clear_faults();
    out
}

/// Whatever exists of the app, its ApplySet parent lists the kind.
fn assert_the_parent_lists_every_member(s: &Setup) {
    let parent = s
        .cluster
        .object("v1", "Secret", Some("default"), "harmony-webapp-server")
        .expect("the parent came first");
    let listed = parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"]
        .as_str()
        .unwrap()
        .to_owned();
    for (api_version, kind, group_kind) in [
        ("v1", "Namespace", "Namespace"),
        ("v1", "ConfigMap", "ConfigMap"),
        ("v1", "Secret", "Secret"),
        ("apps/v1", "Deployment", "Deployment.apps"),
        ("v1", "Service", "Service"),
    ] {
        let members = s
            .cluster
            .objects(api_version, kind)
            .into_iter()
            .filter(|o| o["metadata"]["labels"]["applyset.kubernetes.io/part-of"].is_string())
            .count();
        if members > 0 {
            assert!(
                listed.split(',').any(|k| k == group_kind),
                "{group_kind} exists but the parent lists only {listed}"
            );
        }
    }
}

/// A rerun finishes the apply, and then nothing is left to change or duplicated.
fn assert_a_rerun_converges(s: &Setup) -> String {
    let rerun = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(rerun.status.code(), Some(0), "{}", text(&rerun));
    let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    assert_eq!(plan.status.code(), Some(0), "converged: {}", text(&plan));
    assert_eq!(s.cluster.objects("apps/v1", "Deployment").len(), 1, "nothing duplicated");
    text(&rerun)
}

fn lock_of_webapp_server(s: &Setup) -> serde_json::Value {
    s.cluster
        .object("coordination.k8s.io/v1", "Lease", Some("default"), "harmony-lock-webapp-server")
        .expect("the app's lock is a Lease")
}

#[test]
fn an_interrupted_apply_leaves_an_applyset_that_lists_everything_and_a_rerun_converges() {
    stopped_at_a_safe_point("INT");
}

/// SIGTERM, as a CI runner stops a job, is a Ctrl-C.
#[test]
fn a_terminated_apply_stops_at_a_safe_point_too() {
    stopped_at_a_safe_point("TERM");
}

fn stopped_at_a_safe_point(signal: &str) {
    let s = Setup::new();
    let out = apply_stopped_by(&s, &format!("-{signal}"));
    assert_eq!(out.status.code(), Some(1), "it was interrupted");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "interrupted (SIG{signal}): app `webapp-server` on `k8s` stopped at a safe point"
        )),
        "{said}"
    );
    assert!(said.contains("apply again to finish"), "{said}");
    assert_the_parent_lists_every_member(&s);
    let lease = lock_of_webapp_server(&s);
    assert_eq!(lease["spec"].get("holderIdentity"), None, "the lock was given back: {lease}");
    assert_a_rerun_converges(&s);
}

/// SIGKILL gives the run no chance to say anything or give its lock back: the next run waits
/// until the lease expires, takes it over, says so, and finishes the apply.
#[test]
fn a_killed_apply_leaves_its_lease_to_expire_and_a_rerun_takes_it_over_and_converges() {
    let s = Setup::new();
    let out = apply_stopped_by(&s, "-KILL");
    assert_eq!(out.status.code(), None, "killed by a signal");
    assert_the_parent_lists_every_member(&s);
    assert!(lock_of_webapp_server(&s)["spec"]["holderIdentity"].is_string(), "left held");
    let said = assert_a_rerun_converges(&s);
    assert!(said.contains("took over the lock of `webapp-server` from pid"), "{said}");
    assert!(said.contains("which ended without releasing it"), "{said}");
}

#[test]
fn an_apply_with_nothing_to_change_still_fails_while_the_app_is_not_ready() {
    let s = Setup::new();
    let first = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // The server starts crashing after the deploy, with nothing changed on our side.
    s.cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 2,
        log: vec!["out of memory".into()],
    });
    std::thread::sleep(Duration::from_millis(700));
    let again = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(
        text(&again).contains("has nothing to change, but it does not pass its verification"),
        "{}",
        text(&again)
    );
    assert!(text(&again).contains("out of memory"), "{}", text(&again));
}

#[test]
fn a_conflict_stops_the_apply_and_force_conflicts_takes_ownership() {
    let s = Setup::new();
    let first = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // Another manager takes the replicas over, with another value.
    let client = s.cluster.client();
    s.cluster
        .block_on(async move {
            let body = serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "webapp", "namespace": "webapp"}, "spec": {"replicas": 7}});
            let request = http::Request::patch("/apis/apps/v1/namespaces/webapp/deployments/webapp?fieldManager=autoscaler&force=true")
                .header("content-type", "application/apply-patch+yaml")
                .body(serde_json::to_vec(&body).unwrap())
                .unwrap();
            client.request::<serde_json::Value>(request).await
        })
        .unwrap();

    let plan = s.run(&["plan", "webapp-server", "--topology", "k8s"]);
    assert_eq!(plan.status.code(), Some(2), "ours is 2, theirs 7: {}", text(&plan));
    assert!(
        text(&plan).contains("spec.replicas: 7 (owned by autoscaler) -> 2"),
        "the live value and its owner: {}",
        text(&plan)
    );
    let json = s.run(&["plan", "webapp-server", "--topology", "k8s", "--output", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    let fields = json
        .pointer("/plans/0/changes/0/fields")
        .or_else(|| json.pointer("/changes/0/fields"));
    assert_eq!(
        fields.unwrap()[0],
        serde_json::json!({"path": "spec.replicas", "before": 7, "after": 2, "owner": "autoscaler"}),
        "{json}"
    );
    let stopped = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes"]);
    assert_eq!(stopped.status.code(), Some(1), "{}", text(&stopped));
    for said in ["owned by field manager `autoscaler`", ".spec.replicas", "apply --force-conflicts"] {
        assert!(text(&stopped).contains(said), "`{said}` in {}", text(&stopped));
    }
    let forced = s.run(&["apply", "webapp-server", "--topology", "k8s", "--yes", "--force-conflicts"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    let deployment = s.cluster.object("apps/v1", "Deployment", Some("webapp"), "webapp").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
}

/// The settings of a `ci` runner that releases to the test cluster: the real
/// registry, and a namespace per stage (`stages` of them named).
fn ci_env<'a>(registry: &'a registry::Registry, build: &'a str, stages: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("HARMONY_REGISTRY", registry.address.as_str()),
        ("HARMONY_REGISTRY_NAMESPACE", "team"),
        ("HARMONY_BUILD_DIR", build),
    ];
    env.extend_from_slice(stages);
    env
}

fn build_dir() -> String {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("harmony-build")
        .display()
        .to_string()
}

/// `apply --topology ci` deploys to the cluster `KUBECONFIG` names, through
/// the `k8s` topology (server-side apply, readiness), not to a directory.
#[test]
fn apply_on_ci_deploys_to_the_cluster_the_environment_names() {
    let s = Setup::new();
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let env = ci_env(&registry, &build, &[]);
    let apply = s.run_with(&["apply", "webapp-server", "--topology", "ci", "--yes"], &env);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let deployment = s.cluster.object("apps/v1", "Deployment", Some("webapp"), "webapp").unwrap();
    assert_eq!(deployment["status"]["readyReplicas"], 2, "it returned once the rollout was ready");
    assert!(
        !s.dir.path().join("state/webapp-server").exists(),
        "no GitOps directory was written"
    );

    let gitops = [env.as_slice(), &[("HARMONY_DELIVERY", "gitops")]].concat();
    let apply = s.run_with(&["apply", "webapp-server", "--topology", "ci", "--yes"], &gitops);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    assert!(
        s.dir.path().join("state/webapp-server/inventory.json").is_file(),
        "`HARMONY_DELIVERY=gitops` writes the directory"
    );
}

/// `release --topology ci` checks that every stage names its place before
/// any work, then delivers stage by stage, each to its namespace of the
/// cluster, through the `k8s` topology. Staging's smoke test asks the real
/// service through the API server's proxy; here nothing answers there (the
/// cluster only plays its workloads), so staging fails and production is
/// never touched.
#[test]
fn a_release_on_ci_checks_every_stage_first_then_stops_at_stagings_failed_smoke_test() {
    let s = Setup::new();
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let release = ["release", "--from-tag", "webapp-server-v0.1.0", "--topology", "ci", "--yes"];

    let unplaced = s.run_with(
        &release,
        &ci_env(&registry, &build, &[("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging")]),
    );
    let said = text(&unplaced);
    assert_eq!(unplaced.status.code(), Some(1), "{said}");
    assert!(said.contains("stage `production` names no place to deliver to"), "{said}");
    assert!(
        said.contains("HARMONY_STAGE_PRODUCTION_NAMESPACE") && said.contains("HARMONY_STAGE_PRODUCTION_CONTEXT"),
        "{said}"
    );
    assert!(registry.tags("team/webapp-server").is_empty(), "nothing was built or pushed");

    let stages = [
        ("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "webapp-production"),
    ];
    let out = s.run_with(&release, &ci_env(&registry, &build, &stages));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("failed on stage `staging`"), "{said}");
    // The image, and the record of its failure on staging (below).
    assert_eq!(registry.tags("team/webapp-server"), ["0.1.0", "0.1.0.failed-on-staging"]);
    let deployment = s
        .cluster
        .object("apps/v1", "Deployment", Some("webapp-staging"), "webapp")
        .expect("staging was delivered into its namespace");
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!("{}/team/webapp-server:0.1.0@sha256:", registry.address)),
        "{image}"
    );
    assert!(
        s.cluster.object("v1", "Namespace", None, "webapp").is_none(),
        "the chart's namespace became the stage's"
    );
    assert!(
        s.cluster
            .object("apps/v1", "Deployment", Some("webapp-production"), "webapp")
            .is_none(),
        "production was not touched"
    );

    // The failure is recorded next to the image: a rerun stops before any
    // work instead of delivering the same bits again...
    s.cluster.clear_requests();
    let rerun = s.run_with(&release, &ci_env(&registry, &build, &stages));
    let said = text(&rerun);
    assert_eq!(rerun.status.code(), Some(1), "{said}");
    assert!(
        said.contains("failed on stage `staging` before, and is not delivered there again"),
        "{said}"
    );
    assert!(said.contains("--retry-failed"), "{said}");
    // (The run takes the app's lock, a Lease, before it reads the record.)
    let asked: Vec<_> = s
        .cluster
        .requests()
        .into_iter()
        .filter(|r| !r.path.starts_with("/apis/coordination.k8s.io/v1/namespaces/default/leases/"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(asked.is_empty(), "nothing but the lock was asked of the cluster: {asked:?}");

    // ...until asked to retry: now the cluster runs the server, staging
    // passes, production follows, and the record is cleared for later reruns.
    s.cluster.set_workloads(Workloads::Run);
    let retry = [&release[..], &["--retry-failed"]].concat();
    let out = s.run_with(&retry, &ci_env(&registry, &build, &stages));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let again = s.run_with(&release, &ci_env(&registry, &build, &stages));
    assert_eq!(again.status.code(), Some(0), "a passed retry clears the record: {}", text(&again));
}

/// The whole release on a cluster that runs what it is given: the image is
/// built and pushed to the real registry, staging and production each get
/// their namespace, the test cluster's kubelet pulls and runs the released
/// server, and each stage's smoke test asks the real server through the API
/// server's service proxy. A rerun finishes without changing anything.
#[test]
fn a_release_on_ci_deploys_staging_then_production_and_asks_the_real_server_on_each() {
    let s = Setup::new();
    s.cluster.set_workloads(Workloads::Run);
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let stages = [
        ("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "webapp-production"),
    ];
    let env = ci_env(&registry, &build, &stages);
    let release = ["release", "--from-tag", "webapp-server-v0.1.0", "--topology", "ci", "--yes"];
    let out = s.run_with(&release, &env);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for stage in ["staging", "production"] {
        assert!(
            said.contains(&format!("smoke test on {stage} passed: GET /healthz answered 2xx")),
            "{said}"
        );
        let pods = s.cluster.objects("v1", "Pod");
        let running = pods
            .iter()
            .filter(|p| p["metadata"]["namespace"] == format!("webapp-{stage}"))
            .filter(|p| p["status"]["podIP"].is_string())
            .count();
        assert_eq!(running, 2, "both replicas of {stage} run the released image");
    }
    let rerun = s.run_with(&release, &env);
    let said = text(&rerun);
    assert_eq!(rerun.status.code(), Some(0), "{said}");
    assert!(said.contains("already released") && said.contains("up to date"), "{said}");
    // Each stage was delivered under its own lock on its cluster, given back since.
    for stage in ["staging", "production"] {
        let lease = s
            .cluster
            .object(
                "coordination.k8s.io/v1",
                "Lease",
                Some("default"),
                &format!("harmony-lock-webapp-server-{stage}"),
            )
            .unwrap_or_else(|| panic!("stage {stage} was locked"));
        assert_eq!(lease["spec"].get("holderIdentity"), None, "{lease}");
        assert!(
            lease["spec"]["leaseTransitions"].as_i64() >= Some(1),
            "taken again by the rerun: {lease}"
        );
    }
}

/// `release --dry-run` on `ci` builds, and asks the cluster for a
/// server-side dry run of every stage, in one report: nothing is pushed and
/// nothing is written. A stage whose context the kubeconfig lacks stops the
/// release before any work.
#[test]
fn a_release_dry_run_on_ci_is_the_servers_dry_run_of_every_stage() {
    let s = Setup::new();
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let stages = [
        ("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "webapp-production"),
    ];
    let out = s.run_with(
        &["release", "--from-tag", "webapp-server-v0.1.0", "--topology", "ci", "--dry-run"],
        &ci_env(&registry, &build, &stages),
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for stage in ["staging", "production"] {
        assert!(said.contains(&format!("stage  {stage}: would deliver")), "{said}");
        assert!(said.contains(&format!("+ apps/v1 Deployment webapp-{stage}/webapp")), "{said}");
    }
    assert!(registry.tags("team/webapp-server").is_empty(), "nothing was pushed");
    let writes: Vec<_> = s
        .cluster
        .requests()
        .into_iter()
        .filter(|r| !matches!(r.method.as_str(), "GET" | "HEAD"))
        .collect();
    assert!(!writes.is_empty(), "the stages were asked");
    assert!(
        writes.iter().all(|r| r.query.iter().any(|(k, v)| k == "dryRun" && v == "All")),
        "every write was a dry run: {writes:?}"
    );
    assert!(s.cluster.object("v1", "Namespace", None, "webapp-staging").is_none());

    let unknown = [("HARMONY_STAGE_STAGING_CONTEXT", "elsewhere"), stages[1]];
    let out = s.run_with(
        &["release", "--from-tag", "webapp-server-v0.1.0", "--topology", "ci", "--yes"],
        &ci_env(&registry, &build, &unknown),
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("has no context `elsewhere`") && said.contains("harmony-test-cluster"),
        "{said}"
    );
    assert!(registry.tags("team/webapp-server").is_empty(), "nothing was built or pushed");
}

fn argocd_setup() -> Setup {
    let helm = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/helm/helm");
    assert!(helm.is_file(), "helm is missing: run scripts/install-k8s-tools");
    Setup::with(Options {
        helm: Some(helm),
        ..Options::default()
    })
}

/// The release on `ci` through Argo CD: each stage becomes an Application
/// that points at the pushed chart at the exact version, Argo CD (simulated
/// on the test cluster, syncing with real helm) renders and applies it, the
/// kubelet runs the released server, and each stage's smoke test asks it
/// through the service proxy. The Secrets reach the stage from Harmony, never
/// through the Application. A failed sync is reported in Argo CD's words.
#[test]
fn a_release_on_ci_through_argo_cd_syncs_each_stage_at_the_released_version() {
    let s = argocd_setup();
    s.cluster.set_workloads(Workloads::Run);
    s.cluster.play_argocd(ArgoCd::Syncs);
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let stages = [
        ("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "webapp-production"),
        ("HARMONY_DELIVERY", "argocd"),
        ("WEBAPP_DB_PASSWORD", "canary-argo-9f1"),
    ];
    let release = ["release", "--from-tag", "webapp-server-v0.1.0", "--topology", "ci", "--yes"];
    let out = s.run_with(&release, &ci_env(&registry, &build, &stages));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    for stage in ["staging", "production"] {
        assert!(said.contains(&format!("smoke test on {stage} passed")), "{said}");
        let app = s
            .cluster
            .object(
                "argoproj.io/v1alpha1",
                "Application",
                Some("argocd"),
                &format!("webapp-server-{stage}"),
            )
            .expect("an Application per stage");
        assert_eq!(app["spec"]["source"]["targetRevision"], "0.1.0");
        assert_eq!(app["spec"]["source"]["chart"], "webapp-server");
        assert_eq!(app["spec"]["source"]["repoURL"], format!("{}/team/charts", registry.address));
        assert_eq!(app["spec"]["destination"]["namespace"], format!("webapp-{stage}"));
        assert_eq!(app["status"]["sync"]["status"], "Synced");
        assert_eq!(app["status"]["health"]["status"], "Healthy");
        assert!(!app.to_string().contains("canary-argo-9f1"), "no secret value in the Application");
        let secret = s
            .cluster
            .object("v1", "Secret", Some(&format!("webapp-{stage}")), "webapp-database")
            .expect("the Secret reached the stage");
        assert!(secret.to_string().contains("managedFields"));
        let deployment = s
            .cluster
            .object("apps/v1", "Deployment", Some(&format!("webapp-{stage}")), "webapp")
            .expect("Argo CD applied the chart into the stage's namespace");
        let managers = deployment["metadata"]["managedFields"].to_string();
        assert!(managers.contains("argocd-controller"), "{managers}");
    }
    assert!(!said.contains("canary-argo-9f1"), "{said}");

    // A sync that fails: the release stops at staging with Argo CD's words.
    let s = argocd_setup();
    s.cluster.play_argocd(ArgoCd::FailsSync {
        message: "one or more objects failed to apply, reason: admission webhook denied the request".into(),
    });
    let registry = registry::Registry::anonymous();
    let out = s.run_with(&release, &ci_env(&registry, &build, &stages));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("failed on stage `staging`"), "{said}");
    assert!(
        said.contains("Argo CD could not sync it: one or more objects failed to apply, reason: admission webhook denied the request"),
        "{said}"
    );
    assert!(
        s.cluster
            .object("argoproj.io/v1alpha1", "Application", Some("argocd"), "webapp-server-production")
            .is_none(),
        "production was not touched"
    );

    // An app Argo CD reports Degraded, and one it never gets to: each
    // stops at staging once the wait runs out, saying what Argo CD reports.
    for (mode, words) in [
        (
            ArgoCd::Degrades {
                message: "Deployment \"webapp\" exceeded its progress deadline".into(),
            },
            "health Degraded: Deployment \"webapp\" exceeded its progress deadline",
        ),
        (
            ArgoCd::NeverSyncs,
            "Argo CD reports sync OutOfSync at revision 0.1.0, health Missing",
        ),
    ] {
        let s = argocd_setup();
        s.cluster.play_argocd(mode);
        let registry = registry::Registry::anonymous();
        let quick = [stages.as_slice(), &[("HARMONY_K8S_TIMEOUT", "3")]].concat();
        let out = s.run_with(&release, &ci_env(&registry, &build, &quick));
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(said.contains("failed on stage `staging`") && said.contains(words), "{said}");
    }
}

/// The fleet's operator released on `ci`: its `FROM scratch` image with the
/// static `fleet-operator` binary is built by buildah, pushed, and each stage
/// runs it on the test cluster, where the real binary starts alone in its
/// empty root and says, in its log, that it waits for its NATS.
#[test]
fn the_fleet_operator_is_released_on_ci_and_its_image_runs_alone() {
    let s = Setup::new();
    s.cluster.set_workloads(Workloads::Run);
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let stages = [
        ("HARMONY_STAGE_STAGING_NAMESPACE", "fleet-staging"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "fleet-production"),
    ];
    let out = s.run_with(
        &["release", "--from-tag", "fleet-operator-v0.1.0", "--topology", "ci", "--yes"],
        &ci_env(&registry, &build, &stages),
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("Released fleet-operator 0.1.0 through staging, production."),
        "{said}"
    );
    let kubectl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/kubectl/kubectl");
    for stage in ["staging", "production"] {
        let namespace = format!("fleet-{stage}");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let logs = Command::new(&kubectl)
                .arg("--kubeconfig")
                .arg(s.kubeconfig())
                .args(["logs", "-n", &namespace, "deployment/fleet-operator"])
                .output()
                .unwrap();
            let log = text(&logs);
            if log.contains("fleet-operator: NATS at nats://fleet-nats.fleet:4222 cannot be reached") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the operator's own words on {stage}: {log}");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// A stage whose cluster cannot be reached: staging is released, production
/// fails naming its cluster, and no failure is recorded (the version did not
/// fail there); once production's place is fixed, a rerun finishes the
/// release without redoing staging.
#[test]
fn a_stage_whose_cluster_is_down_fails_by_name_and_a_rerun_finishes_the_release() {
    let s = Setup::new();
    s.cluster.set_workloads(Workloads::Run);
    let registry = registry::Registry::anonymous();
    let build = build_dir();
    let down = s.dir.path().join("down-kubeconfig");
    std::fs::write(
        &down,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: down\n  cluster:\n    server: http://127.0.0.1:9\n\
         contexts:\n- name: down\n  context:\n    cluster: down\n    user: down\nusers:\n- name: down\n  user: {}\n",
    )
    .unwrap();
    let kubeconfig = format!("{}:{}", s.kubeconfig().display(), down.display());
    let release = ["release", "--from-tag", "webapp-server-v0.1.0", "--topology", "ci", "--yes"];
    let broken = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("HARMONY_K8S_REQUEST_TIMEOUT", "2"),
        ("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging"),
        ("HARMONY_STAGE_PRODUCTION_CONTEXT", "down"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "webapp-production"),
    ];
    let out = s.run_with(&release, &ci_env(&registry, &build, &broken));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("smoke test on staging passed"), "{said}");
    assert!(
        said.contains("failed on stage `production`") && said.contains("127.0.0.1:9"),
        "{said}"
    );
    assert!(
        !registry.tags("team/webapp-server").iter().any(|t| t.contains("failed-on")),
        "an unreachable stage records no failure: {:?}",
        registry.tags("team/webapp-server")
    );

    s.cluster.clear_requests();
    let fixed = [
        ("HARMONY_STAGE_STAGING_NAMESPACE", "webapp-staging"),
        ("HARMONY_STAGE_PRODUCTION_NAMESPACE", "webapp-production"),
    ];
    let out = s.run_with(&release, &ci_env(&registry, &build, &fixed));
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("already released"), "the image is not pushed again: {said}");
    assert!(said.contains("stage  staging: delivered and verified (up to date)"), "{said}");
    assert!(said.contains("smoke test on production passed"), "{said}");
}

/// No fallback credentials: the fleet's NATS applied to a cluster without `FLEET_NATS_AUTHORITY`
/// (or with it empty) is refused before anything is written, and the error names the setting;
/// so is an authority that is not one, without repeating it.
#[test]
fn the_fleets_nats_without_its_authority_is_refused_naming_the_setting() {
    let s = Setup::new();
    let out = s.run_with(
        &["apply", "fleet-nats", "--topology", "k8s", "--yes"],
        &[("FLEET_NATS_AUTHORITY", "")],
    );
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("`FLEET_NATS_AUTHORITY`") && said.contains("not set"), "{said}");
    let garbled = "operator: SOnot-a-seed-5e1\n";
    let out = s.run_with(
        &["apply", "fleet-nats", "--topology", "k8s", "--yes"],
        &[("FLEET_NATS_AUTHORITY", garbled)],
    );
    let said_garbled = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said_garbled}");
    assert!(said_garbled.contains("fleet-operator nats-authority"), "{said_garbled}");
    assert!(!said_garbled.contains("not-a-seed-5e1"), "a key is never repeated: {said_garbled}");
    assert!(said.contains("no default value"), "{said}");
    assert!(!said.contains("applied"), "nothing was written: {said}");
}

/// The README's `k8s` commands as written, with no app name: every app that
/// runs on `k8s` is deployed and waited for, then `plan` exits 0. The cluster
/// runs NATS for real, as `scripts/test-cluster` does (the static
/// nats-server stands for NATS's image), so `fleet-nats`'s smoke test asks a
/// live server; the other workloads are played. The apps go in the order
/// their namespaces need: `fleet-nats` creates `fleet` before `fleet-agent`
/// and `fleet-operator` (whose charts expect it, as Helm charts do) go there.
#[test]
fn apply_without_names_deploys_every_app_in_the_order_namespaces_need_and_plan_then_exits_0() {
    let s = Setup::new();
    let nats = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/nats-server/nats-server");
    assert!(
        nats.is_file(),
        "{} is missing: run scripts/install-nats-server (scripts/test does)",
        nats.display()
    );
    s.cluster.hold_image("docker.io/library/nats:2.10-alpine", &nats);

    // The dry run goes in the same order, so `fleet` is known to be created first.
    let dry = s.run(&["dry-run", "--topology", "k8s"]);
    assert_eq!(dry.status.code(), Some(0), "{}", text(&dry));
    assert!(text(&dry).contains("nothing was written"), "{}", text(&dry));
    assert!(s.cluster.object("v1", "Namespace", None, "fleet").is_none());

    let out = s.run(&["apply", "--topology", "k8s", "--yes"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    let order: Vec<usize> = [
        "applied fleet-nats/namespace",
        "applied fleet-agent",
        "applied webapp-server/namespace",
    ]
    .iter()
    .map(|step| said.find(step).unwrap_or_else(|| panic!("{step}: {said}")))
    .collect();
    assert!(order[0] < order[1], "the namespace's creator goes first: {said}");
    assert!(said.contains("verified fleet-nats/nats (smoke test passed)"), "{said}");
    let webapp = s.cluster.object("apps/v1", "Deployment", Some("webapp"), "webapp").unwrap();
    assert_eq!(webapp["status"]["readyReplicas"], 2, "it returned once the rollout was ready");
    let nats = s.cluster.object("apps/v1", "StatefulSet", Some("fleet"), "fleet-nats").unwrap();
    assert_eq!(nats["status"]["readyReplicas"], 1, "{nats}");
    // The smoke test's KV round trip left its key in the live server's bucket.
    let jsz = api_get(
        &s.cluster,
        "/api/v1/namespaces/fleet/services/fleet-nats:8222/proxy/jsz?streams=true",
    );
    let streams = &jsz["account_details"][0]["stream_detail"];
    assert_eq!(streams[0]["name"], "KV_fleet-smoke", "{jsz}");
    assert_eq!(streams[0]["state"]["messages"], 1, "{jsz}");

    let plan = s.run(&["plan", "--topology", "k8s"]);
    assert_eq!(plan.status.code(), Some(0), "every app is as applied: {}", text(&plan));
    assert_eq!(text(&plan).matches("no changes").count(), 4, "{}", text(&plan));

    // Every manifest the apps render passes the real server's validation (OpenAPI and the
    // fleet's CRD schema), as kubectl sends it, with validation on.
    let rendered = s.dir.path().join("rendered");
    let render = s.run(&["render", "--topology", "k8s", "--out", rendered.to_str().unwrap()]);
    assert_eq!(render.status.code(), Some(0), "{}", text(&render));
    let kubectl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/tools/kubectl/kubectl");
    let checked = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=harmony",
            "--validate=strict",
            "-R",
            "-f",
        ])
        .arg(&rendered)
        .env("HOME", s.dir.path())
        .output()
        .unwrap();
    assert!(checked.status.success(), "{}", text(&checked));
    assert_eq!(
        String::from_utf8_lossy(&checked.stdout).matches("(server dry run)").count(),
        // NATS holds no secret (it trusts the fleet's authority by its public keys alone), and
        // names its servers for each other with a headless Service.
        20,
        "{}",
        text(&checked)
    );
}
