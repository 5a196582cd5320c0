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

/// A ConfigMap and a Deployment in the test's own namespace.
fn objects(f: &Fixture) -> Vec<Object> {
    let o = |v| Object::from_value(v).unwrap();
    let ns = f.cluster.namespace();
    vec![
        o(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns}, "data": {"a": "1"}})),
        o(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
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
    let plan = runtime()
        .block_on(engine::apply_objects("shop", &objects(&f), &f.topology))
        .unwrap();
    assert_eq!(plan.summary().add, 2);
    assert_eq!(
        patches_answered(&f.cluster, 500) + patches_answered(&f.cluster, 429) + patches_answered(&f.cluster, 503),
        3
    );
    assert!(
        f.cluster
            .object("apps/v1", "Deployment", Some(f.cluster.namespace()), "web")
            .is_some()
    );
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
        .block_on(engine::apply_objects("shop", &objects(&f), &f.topology))
        .unwrap_err();
    let text = format!("{err} {}", err.notes().join(" "));
    assert!(text.contains("tried 6 times"), "{text}");
    let web = format!("dry-run apply apps/v1 Deployment {}/web", f.cluster.namespace());
    assert!(text.contains(&web), "{text}");
    assert_eq!(patches_answered(&f.cluster, 500), 6, "bounded");
    // The check before the first write failed: nothing was written.
    let ns = f.cluster.namespace();
    assert!(f.cluster.object("v1", "ConfigMap", Some(ns), "settings").is_none());
    assert!(f.cluster.object("v1", "Secret", Some(ns), "harmony-shop").is_none());
}

#[test]
fn a_hung_request_times_out_and_is_retried() {
    let f = fixture(Duration::from_millis(100));
    f.cluster.inject(Fault::Hang {
        times: 1,
        path_contains: Some("/configmaps/".into()),
    });
    let plan = runtime()
        .block_on(engine::apply_objects("shop", &objects(&f), &f.topology))
        .unwrap();
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
        .block_on(engine::apply_objects("shop", &objects(&f), &f.topology))
        .unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    let web = format!("not allowed to dry-run apply apps/v1 Deployment {}/web", f.cluster.namespace());
    assert!(text.contains(&web), "{text}");
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
        let plan = runtime()
            .block_on(engine::apply_objects("shop", &objects(&f), &f.topology))
            .unwrap();
        assert_eq!(plan.summary().add, 2);
    });
    let deployment = f
        .cluster
        .object("apps/v1", "Deployment", Some(f.cluster.namespace()), "web")
        .unwrap();
    assert_eq!(deployment["status"]["readyReplicas"], 1);
}

/// The real RBAC refuses a user who may write ConfigMaps and Secrets but only read
/// Deployments: the error names the verb, the object and the user, in the server's words, and
/// nothing is written past the refusal.
#[test]
fn a_user_rbac_refuses_is_told_which_verb_on_which_resource_it_lacks() {
    let f = fixture(Duration::from_millis(100));
    let ns = f.cluster.namespace().to_owned();
    let role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
    "metadata": {"name": "deployer", "namespace": ns},
    "rules": [
        {"apiGroups": [""], "resources": ["configmaps", "secrets", "events"], "verbs": ["*"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "watch"]},
    ]});
    let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "deployer", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "deployer"},
        "subjects": [{"kind": "User", "name": "harmony-restricted", "apiGroup": "rbac.authorization.k8s.io"}]});
    support::apply_as(
        &f.cluster,
        "test",
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles/deployer"),
        &role,
        true,
    );
    support::apply_as(
        &f.cluster,
        "test",
        &format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/deployer"),
        &binding,
        true,
    );
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, f.cluster.restricted_kubeconfig()).unwrap();
    let mut settings = harmony_k8s::settings::Settings::for_kubeconfig(&kubeconfig, &dir.path().join("state")).unwrap();
    settings.timeout = Duration::from_secs(60);
    let restricted = harmony_k8s::K8s::new(settings);

    let err = runtime()
        .block_on(engine::apply_objects("shop", &objects(&f), &restricted))
        .unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    assert!(
        text.contains(&format!("not allowed to dry-run apply apps/v1 Deployment {ns}/web")),
        "{text}"
    );
    assert!(text.contains("harmony-restricted"), "the user: {text}");
    assert!(
        text.contains("cannot patch resource \"deployments\""),
        "the verb and resource: {text}"
    );
    assert!(
        f.cluster.object("v1", "ConfigMap", Some(&ns), "settings").is_none(),
        "the check before the first write failed: nothing was written"
    );
}

/// The real API server's validation refuses an object (422): the error names the object and
/// the field path in the server's words, before anything is written.
#[test]
fn an_object_the_server_finds_invalid_is_named_with_its_field_path() {
    let f = fixture(Duration::from_millis(100));
    let ns = f.cluster.namespace().to_owned();
    let o = |v| Object::from_value(v).unwrap();
    let objects = vec![
        o(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": ns}, "data": {"a": "1"}})),
        o(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": ns},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 99999, "targetPort": 8080}]}}),
        ),
    ];
    let err = runtime()
        .block_on(engine::apply_objects("shop", &objects, &f.topology))
        .unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    assert!(
        text.contains(&format!("v1 Service {ns}/web is invalid at `spec.ports[0].port`")),
        "{text}"
    );
    assert!(text.contains("must be between 1 and 65535"), "the server's words: {text}");
    assert!(text.contains("fix `spec.ports[0].port` in the Score"), "{text}");
    assert!(
        f.cluster.object("v1", "ConfigMap", Some(&ns), "settings").is_none(),
        "refused by the dry run before the first write: nothing was written"
    );
}

/// A workload that never becomes ready: the apply waits as long as it is told, then fails with
/// the culprit (the object, and why its pods are not ready) and keeps what it applied.
#[test]
fn a_workload_that_never_becomes_ready_times_out_naming_the_culprit() {
    let f = fixture(Duration::from_millis(100));
    let ns = f.cluster.namespace().to_owned();
    f.cluster.set_workloads(harmony_test_cluster::Workloads::NeverReady);
    let (_, dir) = support::fixture_on(&f.cluster, Duration::from_secs(5));
    let mut settings = harmony_k8s::settings::Settings::for_kubeconfig(&dir.path().join("kubeconfig"), &dir.path().join("state")).unwrap();
    settings.timeout = Duration::from_secs(3);
    let impatient = harmony_k8s::K8s::new(settings);
    let err = runtime()
        .block_on(engine::apply_objects("shop", &objects(&f), &impatient))
        .unwrap_err();
    let text = format!("{err}\n{}\n{}", err.notes().join("\n"), err.help());
    assert!(
        text.contains(&format!("readiness of apps/v1 Deployment {ns}/web: not ready after 3 s")),
        "{text}"
    );
    assert!(text.contains("0 of 1 updated replicas are available"), "{text}");
    assert!(
        text.contains("container `web` is ContainerCreating"),
        "why its pod is not ready: {text}"
    );
    assert!(text.contains("HARMONY_K8S_TIMEOUT"), "what to do: {text}");
    assert!(
        f.cluster.object("apps/v1", "Deployment", Some(&ns), "web").is_some(),
        "what was applied stays applied"
    );
}
