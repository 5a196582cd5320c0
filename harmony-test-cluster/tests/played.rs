//! Pods the kubelet plays (no process, no root needed): each mode gives the status, events and
//! log a real kubelet would report, and the real controllers act on them.

mod common;

use std::time::Duration;

use common::{deployment, events, pods, seen_pods, wait_ready, wait_until};
use harmony_test_cluster::{Options, TestCluster, Workloads};
use serde_json::json;

fn cluster() -> TestCluster {
    TestCluster::start_with(Options {
        ready_after: Duration::from_millis(100),
        ..Options::default()
    })
    .expect("start")
}

fn container() -> serde_json::Value {
    json!({"name": "web", "image": "example.com/web:1"})
}

#[test]
fn a_played_deployment_rolls_out_as_the_real_controller_says() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    deployment(&cluster, &ns, "web", 3, container());
    let ready = wait_ready(&cluster, &ns, "web", 3);
    let conditions = ready["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable"),
        "{conditions:?}"
    );
    for pod in pods(&cluster, &ns) {
        assert_eq!(pod["status"]["phase"], "Running");
        assert_eq!(pod["spec"]["nodeName"], "harmony-node", "bound by the real scheduler");
        assert!(pod["status"]["podIP"].is_string(), "{}", pod["status"]);
        let c = &pod["status"]["containerStatuses"][0];
        assert_eq!((c["ready"].clone(), c["started"].clone()), (json!(true), json!(true)));
    }
    // A new template: the controller surges, and the old ReplicaSet is scaled to zero.
    let mut changed = container();
    changed["image"] = json!("example.com/web:2");
    deployment(&cluster, &ns, "web", 3, changed);
    wait_ready(&cluster, &ns, "web", 3);
    let sets = common::get(&cluster, &format!("/apis/apps/v1/namespaces/{ns}/replicasets")).json();
    let replicas: Vec<i64> = sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["spec"]["replicas"].as_i64().unwrap())
        .collect();
    assert_eq!(replicas.len(), 2, "{sets}");
    assert!(replicas.contains(&0) && replicas.contains(&3), "{replicas:?}");
    let started = events(&cluster, &ns);
    assert!(
        started
            .iter()
            .any(|e| e["reason"] == "Started" && e["source"]["component"] == "kubelet"),
        "{started:?}"
    );
}

#[test]
fn a_crash_loop_has_its_exit_code_restarts_events_and_log() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 3,
        log: vec!["starting".into(), "error: cannot read /etc/web/config.toml".into()],
    });
    deployment(&cluster, &ns, "web", 1, container());
    let pod = wait_until(
        "a crash loop",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let c = &pod["status"]["containerStatuses"][0];
            (c["state"]["waiting"]["reason"] == "CrashLoopBackOff" && c["restartCount"].as_i64() >= Some(2)).then_some(pod)
        },
        seen_pods(&cluster, &ns),
    );
    let c = &pod["status"]["containerStatuses"][0];
    assert_eq!(c["lastState"]["terminated"]["exitCode"], 3);
    assert_eq!(c["lastState"]["terminated"]["reason"], "Error");
    let name = pod["metadata"]["name"].as_str().unwrap();
    let log = common::get(&cluster, &format!("/api/v1/namespaces/{ns}/pods/{name}/log?previous=true"));
    assert_eq!(
        (log.code, log.body.as_str()),
        (200, "starting\nerror: cannot read /etc/web/config.toml\n")
    );
    let back_off = wait_until(
        "a BackOff event",
        || {
            events(&cluster, &ns)
                .into_iter()
                .find(|e| e["reason"] == "BackOff" && e["type"] == "Warning")
        },
        String::new,
    );
    assert!(
        back_off["message"]
            .as_str()
            .unwrap()
            .starts_with("Back-off restarting failed container web")
    );
    let d = cluster.object("apps/v1", "Deployment", Some(&ns), "web").unwrap();
    assert!(d["status"]["readyReplicas"].is_null(), "{}", d["status"]);
}

#[test]
fn a_failed_pull_and_a_pod_never_created_stay_pending_saying_why() {
    let cluster = cluster();
    let (pull, never) = (cluster.ns("pull"), cluster.ns("never"));
    cluster.set_workloads(Workloads::ImagePullBackOff);
    common::namespace(&cluster, &pull);
    deployment(&cluster, &pull, "web", 1, container());
    let waiting = wait_until(
        "ImagePullBackOff",
        || {
            let pod = pods(&cluster, &pull).into_iter().next()?;
            let w = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            (w["reason"] == "ImagePullBackOff").then_some(w)
        },
        seen_pods(&cluster, &pull),
    );
    assert!(waiting["message"].as_str().unwrap().contains("example.com/web:1"), "{waiting}");

    cluster.set_workloads(Workloads::NeverReady);
    common::namespace(&cluster, &never);
    deployment(&cluster, &never, "web", 1, container());
    let pod = wait_until(
        "ContainerCreating",
        || {
            let pod = pods(&cluster, &never).into_iter().next()?;
            (pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating").then_some(pod)
        },
        seen_pods(&cluster, &never),
    );
    assert_eq!(pod["status"]["phase"], "Pending");
}

#[test]
fn a_job_completes_and_a_pod_too_big_for_the_node_is_unschedulable() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    common::apply(
        &cluster,
        &format!("/apis/batch/v1/namespaces/{ns}/jobs/once"),
        &json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container()]}}}}),
    );
    wait_until(
        "the job to complete",
        || {
            let job = cluster.object("batch/v1", "Job", Some(&ns), "once")?;
            (job["status"]["succeeded"] == 1).then_some(())
        },
        seen_pods(&cluster, &ns),
    );

    let mut huge = container();
    huge["resources"] = json!({"requests": {"cpu": "5000"}});
    deployment(&cluster, &ns, "huge", 1, huge);
    let event = wait_until(
        "FailedScheduling",
        || events(&cluster, &ns).into_iter().find(|e| e["reason"] == "FailedScheduling"),
        seen_pods(&cluster, &ns),
    );
    assert!(event["message"].as_str().unwrap().contains("Insufficient cpu"), "{event}");
}

/// A pod that needs a Secret that does not exist waits (CreateContainerConfigError) until it
/// does, played or not.
#[test]
fn a_missing_secret_blocks_a_played_pod_until_it_exists() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    let mut needs = container();
    needs["env"] = json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]);
    deployment(&cluster, &ns, "web", 1, needs);
    let waiting = wait_until(
        "CreateContainerConfigError",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let w = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            (w["reason"] == "CreateContainerConfigError").then_some(w)
        },
        seen_pods(&cluster, &ns),
    );
    assert_eq!(waiting["message"], "secret \"api\" not found");
    common::apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/secrets/api"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"}, "stringData": {"token": "t"}}),
    );
    wait_ready(&cluster, &ns, "web", 1);
}

/// Pods that ran fine and start crashing (the mode changes under them) report the crash loop:
/// their container is no longer running, it waits to restart.
#[test]
fn a_ready_pod_that_starts_crashing_reports_the_crash_loop() {
    let cluster = cluster();
    let ns = cluster.namespace().to_owned();
    deployment(&cluster, &ns, "web", 1, container());
    wait_ready(&cluster, &ns, "web", 1);
    cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 2,
        log: vec!["out of memory".into()],
    });
    let state = wait_until(
        "the crash loop",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let state = pod["status"]["containerStatuses"][0]["state"].clone();
            (state["waiting"]["reason"] == "CrashLoopBackOff").then_some(state)
        },
        seen_pods(&cluster, &ns),
    );
    assert!(state.get("running").is_none(), "one state at a time: {state}");
}
