//! The `k8s` topology against the real control plane: kube's real client, the real API
//! server's server-side apply, managed fields and validation, the real controllers' statuses.
//! The tests share one control plane and never meet: each names its namespaces with `ns`.

use std::sync::Arc;
use std::time::Duration;

use harmony::capability::DeployError;
use harmony::engine::plan::Action;
use harmony::engine::run::Silent;
use harmony::engine::{self, EngineError};
use harmony::ready_when::Ready;
use harmony::{Diagnostic as _, Object, Secret};
use harmony_k8s::K8s;
use harmony_test_cluster::{Options, Workloads};
use serde_json::{Value, json};

mod support;
use support::{Fixture, apply_as, fixture_with, runtime};

fn fixture() -> Fixture {
    fixture_with(Options::default(), Duration::from_secs(30))
}

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn namespace(name: &str) -> Object {
    object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
}

fn config_map(ns: &str, name: &str, data: Value) -> Object {
    object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}))
}

fn deployment(ns: &str, name: &str, replicas: i64) -> Object {
    object(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "example.com/web:1.0", "ports": [{"containerPort": 8080}]}]}
            }
        }
    }))
}

fn service(ns: &str, name: &str) -> Object {
    object(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}
    }))
}

#[test]
fn the_webapp_deploys_waits_for_readiness_and_a_second_apply_changes_nothing() {
    let f = fixture();
    let rt = runtime();
    let ns = f.cluster.ns("webapp");
    let app = webapp::WebApp::new(&ns, Secret::new("s3cr3t-value".to_owned()));
    let plan = rt
        .block_on(engine::plan_and_apply("webapp-server", &app, &f.topology, Arc::new(Silent)))
        .unwrap_or_else(|e| panic!("{e}: {}", e.notes().join("; ")));
    assert_eq!(plan.summary().add, 5, "{plan:?}");

    let deployment = f.cluster.object("apps/v1", "Deployment", Some(&ns), "webapp").expect("applied");
    let managers: Vec<&str> = deployment["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"harmony"), "{managers:?}");
    assert_eq!(
        deployment["status"]["readyReplicas"], 2,
        "apply returned only once the rollout was complete"
    );
    assert!(
        deployment["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True"),
        "the deployment controller says so: {}",
        deployment["status"]
    );

    let parent = f
        .cluster
        .object("v1", "Secret", Some(f.cluster.namespace()), "harmony-webapp-server")
        .expect("the ApplySet parent, in the kubeconfig context's namespace");
    let id = parent["metadata"]["labels"]["applyset.kubernetes.io/id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(deployment["metadata"]["labels"]["applyset.kubernetes.io/part-of"], id.as_str());
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "ConfigMap,Deployment.apps,Namespace,Secret,Service"
    );
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/additional-namespaces"],
        ns.as_str()
    );

    let again = rt.block_on(engine::plan("webapp-server", &app, &f.topology)).unwrap();
    assert!(again.is_empty(), "defaults and status are not drift: {again:?}");

    f.cluster.clear_requests();
    let applied = rt
        .block_on(engine::plan_and_apply("webapp-server", &app, &f.topology, Arc::new(Silent)))
        .unwrap();
    assert!(applied.is_empty());
    let writes: Vec<_> = f.cluster.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "a second apply with no change writes nothing: {writes:?}");
}

#[test]
fn plans_see_only_harmonys_fields_and_show_real_changes() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let objects = vec![namespace(&shop), deployment(&shop, "web", 2)];
    rt.block_on(engine::apply_objects("shop", &objects, &f.topology)).unwrap();

    // Another manager scales it (as an autoscaler would) and annotates it (as a webhook would).
    let other = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": shop,
        "annotations": {"webhook.example.com/injected": "yes"}}, "spec": {"replicas": 2}});
    apply_as(
        &f.cluster,
        "autoscaler",
        &format!("/apis/apps/v1/namespaces/{shop}/deployments/web"),
        &other,
        false,
    );
    let plan = rt.block_on(engine::plan_objects("shop", &objects, &f.topology)).unwrap();
    assert!(plan.is_empty(), "another manager's fields are not drift: {plan:?}");

    let changed = vec![namespace(&shop), deployment(&shop, "web", 3)];
    let plan = rt.block_on(engine::plan_objects("shop", &changed, &f.topology)).unwrap();
    assert_eq!(plan.changes.len(), 1, "{plan:?}");
    assert_eq!(plan.changes[0].action, Action::Change);
    assert_eq!(plan.changes[0].fields[0].path, "spec.replicas");
}

#[test]
fn a_conflict_names_the_field_and_the_other_manager() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    rt.block_on(engine::apply_objects(
        "shop",
        &[namespace(&shop), deployment(&shop, "web", 2)],
        &f.topology,
    ))
    .unwrap();
    let other =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": shop}, "spec": {"replicas": 5}});
    apply_as(
        &f.cluster,
        "autoscaler",
        &format!("/apis/apps/v1/namespaces/{shop}/deployments/web"),
        &other,
        true,
    );

    let err = rt
        .block_on(engine::apply_objects(
            "shop",
            &[namespace(&shop), deployment(&shop, "web", 3)],
            &f.topology,
        ))
        .unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    assert!(text.contains("autoscaler"), "{text}");
    assert!(text.contains(".spec.replicas"), "{text}");
    assert!(text.contains("take ownership"), "{text}");
}

/// An object has one owner: a second app that renders an object the first
/// one applied is refused before it writes anything, naming the first app;
/// an object nobody applied (kubectl's) is adopted as before.
#[test]
fn an_object_another_app_owns_is_refused_naming_that_app_and_nothing_is_written() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let objects = vec![namespace(&shop), config_map(&shop, "settings", json!({"a": "1"}))];
    rt.block_on(engine::apply_objects("shop", &objects, &f.topology)).unwrap();

    let other = vec![
        config_map(&shop, "extra", json!({"b": "2"})),
        config_map(&shop, "settings", json!({"a": "1"})),
    ];
    let err = rt.block_on(engine::apply_objects("shop-admin", &other, &f.topology)).unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    assert!(
        text.contains(&format!("v1 ConfigMap {shop}/settings belongs to app `shop`")),
        "{text}"
    );
    assert!(text.contains("deploy it from one app only"), "{text}");
    assert!(
        f.cluster.object("v1", "ConfigMap", Some(shop.as_str()), "extra").is_none(),
        "nothing was written"
    );
    let settings = f.cluster.object("v1", "ConfigMap", Some(shop.as_str()), "settings").unwrap();
    let part_of = &settings["metadata"]["labels"]["applyset.kubernetes.io/part-of"];
    let shop_parent = f
        .cluster
        .object("v1", "Secret", Some(f.cluster.namespace()), "harmony-shop")
        .unwrap();
    assert_eq!(
        part_of, &shop_parent["metadata"]["labels"]["applyset.kubernetes.io/id"],
        "still the first app's"
    );

    bystander(&f.cluster, &shop);
    let adopted = vec![config_map(&shop, "bystander", json!({"c": "3"}))];
    rt.block_on(engine::apply_objects("shop-admin", &adopted, &f.topology)).unwrap();
}

#[test]
fn what_is_no_longer_rendered_is_pruned_and_nothing_else() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let all = vec![
        namespace(&shop),
        config_map(&shop, "settings", json!({"a": "1"})),
        deployment(&shop, "web", 1),
        service(&shop, "web"),
    ];
    rt.block_on(engine::apply_objects("shop", &all, &f.topology)).unwrap();
    // An object Harmony never applied, in the same namespace.
    bystander(&f.cluster, &shop);

    let fewer = vec![namespace(&shop), deployment(&shop, "web", 1)];
    let plan = rt.block_on(engine::plan_objects("shop", &fewer, &f.topology)).unwrap();
    let removed: Vec<String> = plan.removals().iter().map(|r| format!("{}/{}", r.kind, r.name)).collect();
    assert_eq!(removed, ["ConfigMap/settings", "Service/web"]);
    rt.block_on(engine::apply_objects("shop", &fewer, &f.topology)).unwrap();

    assert!(f.cluster.object("v1", "Service", Some(shop.as_str()), "web").is_none());
    assert!(f.cluster.object("v1", "ConfigMap", Some(shop.as_str()), "settings").is_none());
    assert!(
        f.cluster.object("v1", "ConfigMap", Some(shop.as_str()), "bystander").is_some(),
        "not a member: never pruned"
    );
    let parent = f
        .cluster
        .object("v1", "Secret", Some(f.cluster.namespace()), "harmony-shop")
        .unwrap();
    assert_eq!(
        parent["metadata"]["annotations"]["applyset.kubernetes.io/contains-group-kinds"],
        "Deployment.apps,Namespace"
    );
    let plan = rt.block_on(engine::plan_objects("shop", &fewer, &f.topology)).unwrap();
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn a_dry_run_writes_nothing_and_surfaces_validation_errors() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let objects = vec![namespace(&shop), config_map(&shop, "settings", json!({"a": "1"}))];
    let plan = rt.block_on(engine::plan_objects("shop", &objects, &f.topology)).unwrap();
    assert_eq!(plan.summary().add, 2);
    // The namespace does not exist yet: what goes into it is checked once it does.
    let checked = rt.block_on(check_objects(&f.topology, &objects));
    assert!(checked.is_ok(), "{checked:?}");
    assert!(
        f.cluster.object("v1", "Namespace", None, &shop).is_none(),
        "a dry run persists nothing"
    );
    let home = f.cluster.namespace();
    let in_default = vec![config_map(home, "settings", json!({"a": "1"}))];
    rt.block_on(check_objects(&f.topology, &in_default)).unwrap();
    assert!(
        f.cluster.object("v1", "ConfigMap", Some(home), "settings").is_none(),
        "a dry run persists nothing"
    );

    let broken = object(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": home},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "x"}]}}}}),
    );
    let err = rt.block_on(check_objects(&f.topology, &[broken])).unwrap_err();
    assert!(
        matches!(err, DeployError::Invalid { ref field, .. } if field.contains("selector")),
        "{err}"
    );
}

async fn check_objects(topology: &K8s, objects: &[Object]) -> Result<(), DeployError> {
    use harmony::K8sDeploy as _;
    let set = harmony::capability::ApplySet::new("shop");
    topology.begin(&set).await?;
    topology.dry_run(&set, objects).await
}

#[test]
fn a_crash_looping_deployment_is_reported_with_its_culprit() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    f.cluster.set_workloads(Workloads::CrashLoop {
        exit_code: 3,
        log: vec!["starting".into(), "error: cannot read /etc/web/config.toml".into()],
    });
    let err = rt
        .block_on(engine::apply_objects(
            "shop",
            &[namespace(&shop), deployment(&shop, "web", 1)],
            &f.topology,
        ))
        .unwrap_err();
    let EngineError::Interpret { .. } = &err else { panic!("{err}") };
    let text = format!("{err}\n{}\n{}", err.notes().join("\n"), err.help());
    assert!(text.contains("CrashLoopBackOff"), "{text}");
    assert!(text.contains("cannot read /etc/web/config.toml"), "the log tail is shown: {text}");
    assert!(text.contains("BackOff"), "the Warning event is shown: {text}");
    assert!(text.contains("read its log"), "{text}");
}

/// Server-side apply as another field manager, with kube's client.
/// A ConfigMap `bystander` that kubectl made, not Harmony.
fn bystander(cluster: &harmony_test_cluster::TestCluster, namespace: &str) {
    apply_as(
        cluster,
        "kubectl",
        &format!("/api/v1/namespaces/{namespace}/configmaps/bystander"),
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bystander", "namespace": namespace}}),
        false,
    );
}

/// A CRD of a group of the test's own (`<namespace>.example.com`): CRDs are cluster-wide.
fn widget_crd(namespace: &str) -> Object {
    object(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{namespace}.example.com")},
        "spec": {
            "group": format!("{namespace}.example.com"), "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
}

fn widget(namespace: &str, name: &str) -> Object {
    object(json!({"apiVersion": format!("{namespace}.example.com/v1"), "kind": "Widget",
        "metadata": {"name": name, "namespace": namespace}, "spec": {"size": 3}}))
}

#[test]
fn a_crd_and_its_custom_resources_deploy_in_one_run() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let objects = vec![namespace(&shop), widget_crd(&shop), widget(&shop, "small")];
    let plan = rt
        .block_on(engine::apply_objects("widgets", &objects, &f.topology))
        .unwrap_or_else(|e| panic!("{e}: {}", e.notes().join("; ")));
    assert_eq!(plan.summary().add, 3);
    assert!(
        f.cluster
            .object(&format!("{shop}.example.com/v1"), "Widget", Some(shop.as_str()), "small")
            .is_some()
    );
    let again = rt.block_on(engine::plan_objects("widgets", &objects, &f.topology)).unwrap();
    assert!(again.is_empty(), "{again:?}");
}

#[test]
fn a_custom_resource_whose_score_asks_for_a_condition_waits_for_it() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    rt.block_on(engine::apply_objects(
        "widgets",
        &[namespace(&shop), widget_crd(&shop)],
        &f.topology,
    ))
    .unwrap();
    let cluster = &f.cluster;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            // Play the widget's controller: ready a moment after it appears.
            while cluster
                .object(&format!("{shop}.example.com/v1"), "Widget", Some(shop.as_str()), "big")
                .is_none()
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            std::thread::sleep(Duration::from_millis(300));
            cluster.set_status(
                &format!("{shop}.example.com/v1"),
                "Widget",
                Some(shop.as_str()),
                "big",
                json!({"conditions": [{"type": "Synced", "status": "True", "reason": "Built"}]}),
            );
        });
        let big = widget(&shop, "big").ready_when(Ready::condition("Synced"));
        let objects = vec![namespace(&shop), widget_crd(&shop), big];
        rt.block_on(engine::apply_objects("widgets", &objects, &f.topology)).unwrap();
    });
    let big = f
        .cluster
        .object(&format!("{shop}.example.com/v1"), "Widget", Some(shop.as_str()), "big")
        .unwrap();
    assert_eq!(big["status"]["conditions"][0]["status"], "True", "apply returned once it was ready");
}

#[test]
fn an_optional_object_is_applied_and_never_waited_for() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    f.cluster.set_workloads(Workloads::NeverReady);
    let optional = deployment(&shop, "batch", 1).ready_when(Ready::Skip);
    let plan = rt
        .block_on(engine::apply_objects("shop", &[namespace(&shop), optional], &f.topology))
        .unwrap_or_else(|e| panic!("{e}: {}", e.notes().join("; ")));
    assert_eq!(plan.summary().add, 2);
    assert!(f.cluster.object("apps/v1", "Deployment", Some(shop.as_str()), "batch").is_some());
    assert!(
        !f.cluster.requests().iter().any(|r| r.query.iter().any(|(k, _)| k == "watch")),
        "nothing was watched"
    );
}

#[test]
fn a_malformed_readiness_rule_is_refused_before_anything_is_written() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let mut body = deployment(&shop, "web", 1).into_body();
    body["metadata"]["annotations"] = json!({"harmony.deploy/readiness": "when-it-feels-like-it"});
    let err = rt
        .block_on(engine::apply_objects("shop", &[namespace(&shop), object(body)], &f.topology))
        .unwrap_err();
    let text = format!("{err}\n{}\n{}", err.notes().join("\n"), err.help());
    assert!(
        text.contains(&format!(
            "apps/v1 Deployment {shop}/web: `harmony.deploy/readiness: when-it-feels-like-it` is not a readiness rule"
        )),
        "{text}"
    );
    assert!(text.contains("`condition:<Type>`"), "{text}");
    let writes: Vec<_> = f.cluster.requests().into_iter().filter(|r| r.method != "GET").collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[test]
fn namespaces_are_kept_when_dropped_unless_the_score_allows_pruning_them() {
    let f = fixture();
    let rt = runtime();
    let (kept_name, gone_name) = (f.cluster.ns("kept"), f.cluster.ns("gone"));
    let kept = namespace(&kept_name);
    let mut gone = namespace(&gone_name);
    gone = object({
        let mut body = gone.body().clone();
        body["metadata"]["annotations"] = json!({"harmony.deploy/prune": "allow"});
        body
    });
    rt.block_on(engine::apply_objects("spaces", &[kept, gone], &f.topology)).unwrap();
    let plan = rt.block_on(engine::plan_objects("spaces", &[], &f.topology)).unwrap();
    assert_eq!(plan.removals().len(), 2, "every prune shows in the plan");
    rt.block_on(engine::apply_objects("spaces", &[], &f.topology)).unwrap();
    let kept = f
        .cluster
        .object("v1", "Namespace", None, &kept_name)
        .expect("a Namespace is protected");
    assert!(
        kept["metadata"]["labels"].get("applyset.kubernetes.io/part-of").is_none(),
        "it left the set"
    );
    // Allowed: pruned. A real namespace terminates first (its controller empties it).
    let gone = f.cluster.object("v1", "Namespace", None, &gone_name);
    assert!(
        gone.as_ref().is_none_or(|g| g["metadata"]["deletionTimestamp"].is_string()),
        "deleted: {gone:?}"
    );
    let plan = rt.block_on(engine::plan_objects("spaces", &[], &f.topology)).unwrap();
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn a_dry_run_checks_the_prunes_too_and_removes_nothing() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let all = vec![namespace(&shop), config_map(&shop, "settings", json!({"a": "1"}))];
    rt.block_on(engine::apply_objects("shop", &all, &f.topology)).unwrap();
    f.cluster.clear_requests();
    let plan = rt
        .block_on(engine::dry_run_objects("shop", &[namespace(&shop)], &f.topology))
        .unwrap();
    assert_eq!(plan.removals().len(), 1);
    let deletes: Vec<_> = f.cluster.requests().into_iter().filter(|r| r.method == "DELETE").collect();
    assert_eq!(deletes.len(), 1, "the prune was checked by the server: {deletes:?}");
    assert!(deletes[0].path.ends_with("/configmaps/settings"), "{deletes:?}");
    assert!(
        f.cluster.object("v1", "ConfigMap", Some(shop.as_str()), "settings").is_some(),
        "and nothing was removed"
    );
}

/// The API server fills in `fieldRef.apiVersion` inside a selector Harmony owns whole: the
/// plan asks the server (one dry run) instead of showing it as a change forever, and a real
/// change beside it still shows.
#[test]
fn a_value_the_server_fills_in_is_no_change_but_a_real_change_still_is() {
    let f = fixture();
    let rt = runtime();
    let shop = f.cluster.ns("shop");
    let with_env = |image: &str| {
        let mut body = deployment(&shop, "web", 1).into_body();
        body["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        body["spec"]["template"]["spec"]["containers"][0]["env"] =
            json!([{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]);
        vec![namespace(&shop), object(body)]
    };
    rt.block_on(engine::apply_objects("shop", &with_env("example.com/web:1.0"), &f.topology))
        .unwrap();
    let live = f.cluster.object("apps/v1", "Deployment", Some(&shop), "web").unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1",
        "the server filled it in"
    );
    f.cluster.clear_requests();
    let plan = rt
        .block_on(engine::plan_objects("shop", &with_env("example.com/web:1.0"), &f.topology))
        .unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    let dry_runs: Vec<_> = f
        .cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.query.iter().any(|(k, v)| k == "dryRun" && v == "All"))
        .collect();
    assert_eq!(dry_runs.len(), 1, "one question to the server: {dry_runs:?}");
    // Remembered: the same desired object against the same live fields needs no question.
    f.cluster.clear_requests();
    let plan = rt
        .block_on(engine::plan_objects("shop", &with_env("example.com/web:1.0"), &f.topology))
        .unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert!(
        !f.cluster.requests().iter().any(|r| r.method == "PATCH"),
        "{:?}",
        f.cluster.requests()
    );

    let plan = rt
        .block_on(engine::plan_objects("shop", &with_env("example.com/web:2.0"), &f.topology))
        .unwrap();
    let paths: Vec<&str> = plan.changes[0].fields.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["spec.template.spec.containers[0].image"], "{plan:?}");
}
