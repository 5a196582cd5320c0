//! The simulated controllers: readiness, the failure modes, pods, events and logs.

mod common;

use std::time::Duration;

use harmony_test_cluster::{Options, TestCluster, Workloads};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, ListParams, LogParams, Patch, PatchParams};
use kube::runtime::wait::{Condition, await_condition};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn quick() -> TestCluster {
    TestCluster::start_with(Options {
        ready_after: Duration::from_millis(20),
        ..Options::default()
    })
    .expect("start")
}

fn deployment(replicas: i64, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "web", "image": image}]}}
        }
    })
}

fn ready_deployment() -> impl Condition<Deployment> {
    |d: Option<&Deployment>| {
        d.is_some_and(|d| {
            let generation = d.metadata.generation;
            let status = d.status.as_ref();
            status.and_then(|s| s.observed_generation) == generation
                && status.and_then(|s| s.ready_replicas) == d.spec.as_ref().and_then(|s| s.replicas)
        })
    }
}

async fn wait_for<K, C>(api: Api<K>, name: &str, condition: C) -> K
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    C: Condition<K>,
{
    tokio::time::timeout(WAIT, await_condition(api, name, condition))
        .await
        .expect("in time")
        .expect("wait")
        .expect("object")
}

#[tokio::test]
async fn deployments_become_ready_with_pods_and_lag_after_a_spec_change() {
    let cluster = quick();
    let client = common::client(&cluster);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let applied = api
        .patch("web", &PatchParams::apply("harmony"), &Patch::Apply(deployment(2, "nginx:1.27")))
        .await
        .expect("apply");
    assert!(
        applied.status.as_ref().and_then(|s| s.observed_generation).is_none(),
        "not observed yet"
    );
    let ready = wait_for(api.clone(), "web", ready_deployment()).await;
    let status = ready.status.expect("status");
    assert_eq!(status.available_replicas, Some(2));
    let conditions = status.conditions.expect("conditions");
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Available" && c.status == "True" && c.reason.as_deref() == Some("MinimumReplicasAvailable"))
    );
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Progressing" && c.status == "True" && c.reason.as_deref() == Some("NewReplicaSetAvailable"))
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let list = pods.list(&ListParams::default().labels("app=web")).await.expect("pods");
    assert_eq!(list.items.len(), 2);
    for pod in &list.items {
        let name = pod.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("web-"), "{name}");
        assert_eq!(name.split('-').count(), 3, "{name}");
        let status = pod.status.as_ref().expect("pod status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(
            status
                .conditions
                .as_ref()
                .expect("conditions")
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        );
        assert_eq!(status.container_statuses.as_ref().map(Vec::len), Some(1));
    }

    // A spec change is not ready until the controller catches up.
    let changed = api
        .patch("web", &PatchParams::apply("harmony"), &Patch::Apply(deployment(3, "nginx:1.28")))
        .await
        .expect("change");
    assert_eq!(changed.metadata.generation, Some(2));
    assert_eq!(changed.status.and_then(|s| s.observed_generation), Some(1));
    wait_for(api.clone(), "web", ready_deployment()).await;
    let list = pods.list(&ListParams::default().labels("app=web")).await.expect("pods");
    assert_eq!(list.items.len(), 3, "old pods replaced by three new ones");
    assert!(
        list.items
            .iter()
            .all(|p| p.spec.as_ref().map(|s| s.containers[0].image.as_deref()) == Some(Some("nginx:1.28")))
    );
}

#[tokio::test]
async fn crash_loops_show_in_pods_events_and_logs() {
    let cluster = quick();
    cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 3,
        log: vec!["starting".into(), "config missing".into(), "exiting".into()],
    });
    let client = common::client(&cluster);
    let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
    api.patch("web", &PatchParams::apply("harmony"), &Patch::Apply(deployment(1, "app:1")))
        .await
        .expect("apply");
    let observed = wait_for(api.clone(), "web", |d: Option<&Deployment>| {
        d.is_some_and(|d| d.status.as_ref().and_then(|s| s.observed_generation).is_some())
    })
    .await;
    let status = observed.status.expect("status");
    assert_eq!(status.ready_replicas, None);
    assert!(
        status
            .conditions
            .expect("conditions")
            .iter()
            .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ReplicaSetUpdated"))
    );

    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods")
        .items
        .remove(0);
    let name = pod.metadata.name.clone().expect("name");
    let cs = &pod.status.as_ref().expect("status").container_statuses.as_ref().expect("statuses")[0];
    let waiting = cs.state.as_ref().and_then(|s| s.waiting.as_ref()).expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    assert!(
        waiting
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with(&format!("back-off 10s restarting failed container=web pod={name}"))
    );
    assert_eq!(
        cs.last_state.as_ref().and_then(|s| s.terminated.as_ref()).map(|t| t.exit_code),
        Some(3)
    );
    assert!(cs.restart_count > 0);

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let events = events.list(&ListParams::default()).await.expect("events").items;
    let backoff = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("BackOff"))
        .expect("a BackOff event");
    assert_eq!(backoff.type_.as_deref(), Some("Warning"));
    assert_eq!(backoff.involved_object.name.as_deref(), Some(name.as_str()));
    assert_eq!(backoff.involved_object.kind.as_deref(), Some("Pod"));
    assert!(
        backoff
            .message
            .as_deref()
            .unwrap_or_default()
            .starts_with("Back-off restarting failed container web")
    );

    let logs = pods
        .logs(
            &name,
            &LogParams {
                container: Some("web".into()),
                tail_lines: Some(2),
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(logs, "config missing\nexiting\n");
}

#[tokio::test]
async fn image_pull_failures_and_unschedulable_pods() {
    let cluster = quick();
    cluster.set_workloads(Workloads::ImagePullBackOff);
    let client = common::client(&cluster);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod =
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nope:1"}]}});
    pods.patch("p", &PatchParams::apply("harmony"), &Patch::Apply(&pod))
        .await
        .expect("apply");
    let waiting_pod = wait_for(pods.clone(), "p", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.container_statuses.as_ref())
            .is_some()
    })
    .await;
    let status = waiting_pod.status.expect("status");
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let waiting = status.container_statuses.expect("statuses")[0]
        .state
        .clone()
        .and_then(|s| s.waiting)
        .expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("ImagePullBackOff"));
    assert_eq!(waiting.message.as_deref(), Some("Back-off pulling image \"nope:1\""));
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let events = events.list(&ListParams::default()).await.expect("events").items;
    assert!(events.iter().any(|e| {
        e.reason.as_deref() == Some("Failed")
            && e.message
                .as_deref()
                .unwrap_or_default()
                .starts_with("Failed to pull image \"nope:1\"")
    }));

    cluster.set_workloads(Workloads::Unschedulable);
    let unscheduled = wait_for(pods.clone(), "p", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "PodScheduled" && c.status == "False"))
    })
    .await;
    let cond = unscheduled.status.and_then(|s| s.conditions).expect("conditions").remove(0);
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(cond.message.as_deref(), Some("0/1 nodes are available: 1 Insufficient cpu."));
    let events: Api<Event> = Api::namespaced(client, "default");
    let events = events.list(&ListParams::default()).await.expect("events").items;
    assert!(events.iter().any(|e| e.reason.as_deref() == Some("FailedScheduling")));
}

#[tokio::test]
async fn never_ready_keeps_pods_pending_and_other_kinds_settle() {
    let cluster = quick();
    let client = common::client(&cluster);
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(client.clone(), "default");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
                     "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
    jobs.patch("j", &PatchParams::apply("harmony"), &Patch::Apply(&job))
        .await
        .expect("job");
    tokio::time::timeout(
        WAIT,
        await_condition(jobs.clone(), "j", kube::runtime::wait::conditions::is_job_completed()),
    )
    .await
    .expect("in time")
    .expect("wait");
    let pvcs: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    pvcs.patch("data", &PatchParams::apply("harmony"), &Patch::Apply(&pvc))
        .await
        .expect("pvc");
    let bound = wait_for(pvcs, "data", |p: Option<&k8s_openapi::api::core::v1::PersistentVolumeClaim>| {
        p.and_then(|p| p.status.as_ref()).and_then(|s| s.phase.as_deref()) == Some("Bound")
    })
    .await;
    assert_eq!(bound.status.and_then(|s| s.phase).as_deref(), Some("Bound"));

    cluster.set_workloads(Workloads::NeverReady);
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(client.clone(), "default");
    let set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                     "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                              "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:17"}]}}}});
    sts.patch("db", &PatchParams::apply("harmony"), &Patch::Apply(&set))
        .await
        .expect("sts");
    let observed = wait_for(sts, "db", |s: Option<&k8s_openapi::api::apps::v1::StatefulSet>| {
        s.and_then(|s| s.status.as_ref()).and_then(|s| s.observed_generation).is_some()
    })
    .await;
    assert_eq!(observed.status.and_then(|s| s.ready_replicas), None);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let db0 = pods.get("db-0").await.expect("db-0");
    assert_eq!(db0.status.and_then(|s| s.phase).as_deref(), Some("Pending"));
    assert!(pods.get("db-1").await.is_ok());
}

#[tokio::test]
async fn set_status_plays_a_controller() {
    let cluster = quick();
    let client = common::client(&cluster);
    let api: Api<Deployment> = Api::namespaced(client, "default");
    cluster.set_workloads(Workloads::NeverReady);
    api.patch("web", &PatchParams::apply("harmony"), &Patch::Apply(deployment(1, "nginx")))
        .await
        .expect("apply");
    let before = cluster.resource_version();
    cluster.set_status(
        "apps/v1",
        "Deployment",
        Some("default"),
        "web",
        json!({"observedGeneration": 1, "readyReplicas": 7}),
    );
    assert!(cluster.resource_version() > before);
    let d = api.get("web").await.expect("get");
    assert_eq!(d.status.and_then(|s| s.ready_replicas), Some(7));
}
