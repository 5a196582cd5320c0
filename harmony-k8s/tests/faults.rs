//! What the `k8s` topology does when the cluster misbehaves: transient
//! failures are retried with a bounded backoff, lasting ones are reported
//! saying which verb on which object, and an expired watch is resumed.

use std::time::Duration;

use harmony::{Diagnostic as _, Object, engine};
use harmony_test_cluster::{Fault, Options, TestCluster};
use serde_json::json;

mod support;
use support::{Fixture, fixture_with, runtime};

fn fixture(ready_after: Duration) -> Fixture {
    fixture_with(
        Options {
            ready_after,
            ..Options::default()
        },
        Duration::from_millis(500),
    )
}

fn objects() -> Vec<Object> {
    let o = |v| Object::from_value(v).unwrap();
    vec![
        o(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "default"}, "data": {"a": "1"}})),
        o(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}),
        ),
    ]
}

fn patches_answered(cluster: &TestCluster, code: u16) -> usize {
    cluster.requests().iter().filter(|r| r.method == "PATCH" && r.code == code).count()
}

#[test]
fn transient_failures_are_retried_and_the_apply_goes_through() {
    let f = fixture(Duration::from_millis(100));
    for code in [500, 429, 503] {
        f.cluster.inject(Fault::Status {
            code,
            times: 1,
            path_contains: Some("/deployments/".into()),
            method: Some("PATCH".into()),
        });
    }
    f.cluster.inject(Fault::ResetConnection {
        times: 1,
        path_contains: Some("/configmaps/".into()),
    });
    let plan = runtime().block_on(engine::apply_objects("shop", &objects(), &f.topology)).unwrap();
    assert_eq!(plan.summary().add, 2);
    assert_eq!(
        patches_answered(&f.cluster, 500) + patches_answered(&f.cluster, 429) + patches_answered(&f.cluster, 503),
        3
    );
    assert!(f.cluster.object("apps/v1", "Deployment", Some("default"), "web").is_some());
}

#[test]
fn a_lasting_failure_is_reported_after_a_bounded_number_of_tries() {
    let f = fixture(Duration::from_millis(100));
    f.cluster.inject(Fault::Status {
        code: 500,
        times: 100,
        path_contains: Some("/deployments/".into()),
        method: Some("PATCH".into()),
    });
    let err = runtime()
        .block_on(engine::apply_objects("shop", &objects(), &f.topology))
        .unwrap_err();
    let text = format!("{err} {}", err.notes().join(" "));
    assert!(text.contains("tried 6 times"), "{text}");
    assert!(text.contains("dry-run apply apps/v1 Deployment default/web"), "{text}");
    assert_eq!(patches_answered(&f.cluster, 500), 6, "bounded");
    // The check before the first write failed: nothing was written.
    assert!(f.cluster.object("v1", "ConfigMap", Some("default"), "settings").is_none());
    assert!(f.cluster.object("v1", "Secret", Some("default"), "harmony-shop").is_none());
}

#[test]
fn a_hung_request_times_out_and_is_retried() {
    let f = fixture(Duration::from_millis(100));
    f.cluster.inject(Fault::Hang {
        times: 1,
        path_contains: Some("/configmaps/".into()),
    });
    let plan = runtime().block_on(engine::apply_objects("shop", &objects(), &f.topology)).unwrap();
    assert_eq!(plan.summary().add, 2);
}

#[test]
fn forbidden_says_which_verb_on_which_object() {
    let f = fixture(Duration::from_millis(100));
    f.cluster.inject(Fault::Status {
        code: 403,
        times: 100,
        path_contains: Some("/deployments/".into()),
        method: Some("PATCH".into()),
    });
    let err = runtime()
        .block_on(engine::apply_objects("shop", &objects(), &f.topology))
        .unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    assert!(
        text.contains("not allowed to dry-run apply apps/v1 Deployment default/web"),
        "{text}"
    );
    assert!(text.contains("grant the identity"), "{text}");
    assert_eq!(patches_answered(&f.cluster, 403), 1, "a refusal is not retried");
}

#[test]
fn an_expired_watch_is_resumed_from_a_fresh_read() {
    let f = fixture(Duration::from_secs(2));
    let cluster = &f.cluster;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // While apply waits for the Deployment, expire every watch twice.
            for _ in 0..2 {
                std::thread::sleep(Duration::from_millis(600));
                cluster.expire_watches();
            }
        });
        let plan = runtime().block_on(engine::apply_objects("shop", &objects(), &f.topology)).unwrap();
        assert_eq!(plan.summary().add, 2);
    });
    let deployment = f.cluster.object("apps/v1", "Deployment", Some("default"), "web").unwrap();
    assert_eq!(deployment["status"]["readyReplicas"], 1);
}
