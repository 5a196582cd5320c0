//! kube-rs 5's real client against the test server: discovery, server-side apply, conflicts,
//! dry runs, selectors, watches, CRDs.

mod common;

use std::time::Duration;

use futures_util::StreamExt;
use harmony_test_cluster::{Options, TestCluster};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn deployment(name: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}
            }
        }
    })
}

async fn deployments(client: &kube::Client) -> Api<DynamicObject> {
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments are discovered");
    assert_eq!(caps.scope, Scope::Namespaced);
    Api::namespaced_with(client.clone(), "default", &ar)
}

fn api_error(err: kube::Error) -> Box<kube::core::Status> {
    match err {
        kube::Error::Api(status) => status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn discovery_finds_builtin_kinds_and_subresources() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    for (group, version, kind) in [
        ("", "v1", "ConfigMap"),
        ("", "v1", "Namespace"),
        ("apps", "v1", "StatefulSet"),
        ("batch", "v1", "Job"),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole"),
        ("networking.k8s.io", "v1", "Ingress"),
        ("policy", "v1", "PodDisruptionBudget"),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
    ] {
        let found = discovery.resolve_gvk(&GroupVersionKind::gvk(group, version, kind));
        assert!(found.is_some(), "{group}/{version} {kind} is discovered");
    }
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Namespace"))
        .expect("namespaces");
    assert_eq!(ar.plural, "namespaces");
    assert_eq!(caps.scope, Scope::Cluster);
    let (_, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments");
    assert!(caps.subresources.iter().any(|(sub, _)| sub.plural == "status"));
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(version.git_version, "v1.33.9-harmony-test");
    assert_eq!((version.major.as_str(), version.minor.as_str()), ("1", "33"));
}

#[tokio::test]
async fn server_side_apply_creates_records_managers_and_skips_no_ops() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api = deployments(&client).await;
    let obj: DynamicObject = serde_json::from_value(deployment("web", 2)).expect("object");
    let created = api
        .patch("web", &PatchParams::apply("harmony"), &Patch::Apply(&obj))
        .await
        .expect("apply creates");
    let managed = created.metadata.managed_fields.clone().expect("managed fields");
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("harmony"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(&managed[0].fields_v1).expect("fields");
    assert_eq!(fields["f:spec"]["f:replicas"], json!({}));
    assert!(
        fields["f:spec"].get("f:progressDeadlineSeconds").is_none(),
        "defaults are owned by nobody"
    );
    assert_eq!(created.data["spec"]["progressDeadlineSeconds"], 600);
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.metadata.uid.is_some());

    let rv = created.metadata.resource_version.clone();
    let again = api
        .patch("web", &PatchParams::apply("harmony"), &Patch::Apply(&obj))
        .await
        .expect("apply again");
    assert_eq!(again.metadata.resource_version, rv, "a no-op apply writes nothing");

    // Typed access sees the same object.
    let typed: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let d = typed.get("web").await.expect("get");
    assert_eq!(d.spec.and_then(|s| s.replicas), Some(2));
}

#[tokio::test]
async fn a_second_manager_conflicts_on_differing_values_and_force_takes_over() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api = deployments(&client).await;
    let obj: DynamicObject = serde_json::from_value(deployment("web", 2)).expect("object");
    api.patch("web", &PatchParams::apply("harmony"), &Patch::Apply(&obj))
        .await
        .expect("create");
    // Same value: shared, no conflict.
    api.patch("web", &PatchParams::apply("other"), &Patch::Apply(&obj))
        .await
        .expect("equal values share ownership");
    // Different value: conflict.
    let three: DynamicObject = serde_json::from_value(deployment("web", 3)).expect("object");
    let err = api
        .patch("web", &PatchParams::apply("third"), &Patch::Apply(&three))
        .await
        .expect_err("conflict");
    let status = api_error(err);
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    let causes = status.details.expect("details").causes;
    assert!(causes.iter().all(|c| c.reason == "FieldManagerConflict"));
    assert!(
        causes
            .iter()
            .any(|c| c.field == ".spec.replicas" && c.message == "conflict with \"harmony\"")
    );
    // Force moves ownership.
    let forced = api
        .patch("web", &PatchParams::apply("third").force(), &Patch::Apply(&three))
        .await
        .expect("forced");
    assert_eq!(forced.data["spec"]["replicas"], 3);
    let stored = cluster.object("apps/v1", "Deployment", Some("default"), "web").expect("stored");
    let entries = stored["metadata"]["managedFields"].as_array().expect("entries").clone();
    let harmony = entries.iter().find(|e| e["manager"] == "harmony").expect("harmony keeps the rest");
    assert!(harmony["fieldsV1"]["f:spec"].get("f:replicas").is_none());
}

#[tokio::test]
async fn dropped_fields_are_removed_by_the_next_apply() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1", "b": "2"}}, "data": {"x": "1", "y": "2"}});
    api.patch("c", &PatchParams::apply("harmony"), &Patch::Apply(&first))
        .await
        .expect("create");
    let second = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "1"}}, "data": {"x": "1"}});
    let after = api
        .patch("c", &PatchParams::apply("harmony"), &Patch::Apply(&second))
        .await
        .expect("apply");
    let data = after.data.expect("data");
    assert_eq!(data.len(), 1);
    assert!(data.contains_key("x"));
    let labels = after.metadata.labels.expect("labels");
    assert!(!labels.contains_key("b"));
}

#[tokio::test]
async fn apply_rejects_managed_fields_wrong_kinds_and_missing_managers() {
    let cluster = TestCluster::start().expect("start");
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "managedFields": [{"manager": "x"}]}}).to_string();
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=m",
        Some("application/apply-patch+yaml"),
        &body,
    );
    assert_eq!(answer.code, 400);
    assert_eq!(answer.json()["message"], "metadata.managedFields must be nil");
    let body = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "c"}}).to_string();
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=m",
        Some("application/apply-patch+yaml"),
        &body,
    );
    assert_eq!(answer.code, 400);
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}).to_string();
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c",
        Some("application/apply-patch+yaml"),
        &body,
    );
    assert_eq!(answer.code, 400);
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  k: v\n";
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=m",
        Some("application/apply-patch+yaml"),
        yaml,
    );
    assert_eq!(answer.code, 201, "{}", answer.body);
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=m",
        Some("application/apply-patch+yaml"),
        yaml,
    );
    assert_eq!(answer.code, 200);
    let stale = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  resourceVersion: \"1\"\n";
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c?fieldManager=m",
        Some("application/apply-patch+yaml"),
        stale,
    );
    assert_eq!(answer.code, 409);
}

#[tokio::test]
async fn dry_runs_persist_nothing() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"k": "v"}});
    let rv_before = cluster.resource_version();
    let answer = api
        .patch("dry", &PatchParams::apply("harmony").dry_run(), &Patch::Apply(&cm))
        .await
        .expect("dry-run apply");
    assert_eq!(answer.data.expect("data")["k"], "v");
    let typed: ConfigMap = serde_json::from_value(cm.clone()).expect("typed");
    api.create(
        &PostParams {
            dry_run: true,
            field_manager: None,
        },
        &typed,
    )
    .await
    .expect("dry-run create");
    assert!(cluster.object("v1", "ConfigMap", Some("default"), "dry").is_none());
    assert_eq!(cluster.resource_version(), rv_before, "nothing was written");

    api.patch("dry", &PatchParams::apply("harmony"), &Patch::Apply(&cm))
        .await
        .expect("real apply");
    let rv = cluster.resource_version();
    let dp = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    api.delete("dry", &dp).await.expect("dry-run delete");
    assert!(
        cluster.object("v1", "ConfigMap", Some("default"), "dry").is_some(),
        "the body's dryRun is honoured"
    );
    assert_eq!(cluster.resource_version(), rv);
    let changed = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "dry"}, "data": {"k": "changed"}});
    api.patch("dry", &PatchParams::apply("harmony").dry_run(), &Patch::Apply(&changed))
        .await
        .expect("dry-run change");
    let stored = cluster.object("v1", "ConfigMap", Some("default"), "dry").expect("stored");
    assert_eq!(stored["data"]["k"], "v");
    let answer = common::http(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/configmaps?dryRun=Yes",
        Some("application/json"),
        &cm.to_string(),
    );
    assert_eq!(answer.code, 400);
}

#[tokio::test]
async fn crud_with_optimistic_concurrency_and_status_errors() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "c"}, "data": {"k": "v"}})).expect("cm");
    let created = api.create(&PostParams::default(), &cm).await.expect("create");
    let err = api.create(&PostParams::default(), &cm).await.expect_err("exists");
    let status = api_error(err);
    assert_eq!((status.code, status.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(status.message, "configmaps \"c\" already exists");

    let mut updated = created.clone();
    updated.data.as_mut().expect("data").insert("k".into(), "w".into());
    let replaced = api.replace("c", &PostParams::default(), &updated).await.expect("replace");
    // The old resourceVersion is now stale.
    let err = api.replace("c", &PostParams::default(), &updated).await.expect_err("stale");
    assert_eq!(api_error(err).code, 409);
    assert_ne!(replaced.metadata.resource_version, created.metadata.resource_version);

    let patched = api
        .patch("c", &PatchParams::default(), &Patch::Merge(json!({"data": {"k": null, "n": "1"}})))
        .await
        .expect("merge patch");
    let data = patched.data.expect("data");
    assert_eq!(data.get("n").map(String::as_str), Some("1"));
    assert!(!data.contains_key("k"));

    let err = api.get("missing").await.expect_err("missing");
    let status = api_error(err);
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));

    let other_ns: Api<ConfigMap> = Api::namespaced(client.clone(), "nope");
    let err = other_ns.create(&PostParams::default(), &cm).await.expect_err("no namespace");
    let status = api_error(err);
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nope\" not found");

    let deleted = api.delete("c", &DeleteParams::default()).await.expect("delete");
    assert!(deleted.is_left(), "the deleted object comes back");
    assert!(cluster.object("v1", "ConfigMap", Some("default"), "c").is_none());
}

#[tokio::test]
async fn invalid_objects_get_422_with_causes() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api = deployments(&client).await;
    let mut bad = deployment("web", 1);
    bad["spec"].as_object_mut().expect("spec").remove("selector");
    let obj: DynamicObject = serde_json::from_value(bad).expect("object");
    let status = api_error(
        api.patch("web", &PatchParams::apply("harmony"), &Patch::Apply(&obj))
            .await
            .expect_err("no selector"),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    let causes = status.details.expect("details").causes;
    assert_eq!(causes[0].field, "spec.selector");
    assert_eq!(causes[0].reason, "FieldValueRequired");

    let cms: Api<ConfigMap> = Api::namespaced(client, "default");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "Not_Valid"}})).expect("cm");
    let status = api_error(cms.create(&PostParams::default(), &cm).await.expect_err("bad name"));
    assert_eq!(status.code, 422);
}

#[tokio::test]
async fn finalizers_delay_deletion_and_namespaces_take_their_contents() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("ns");
    let created = namespaces.create(&PostParams::default(), &ns).await.expect("namespace");
    assert_eq!(created.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})).expect("cm");
    api.create(&PostParams::default(), &cm).await.expect("create");
    api.delete("held", &DeleteParams::default()).await.expect("delete");
    let held = api.get("held").await.expect("still there");
    assert!(held.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("release");
    assert!(cluster.object("v1", "ConfigMap", Some("team"), "held").is_none());

    let plain: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "plain"}})).expect("cm");
    let made = api.create(&PostParams::default(), &plain).await.expect("create");
    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-it".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(api_error(api.delete("plain", &wrong_uid).await.expect_err("uid")).code, 409);
    let right_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: made.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    api.delete("plain", &right_uid).await.expect("delete with the right uid");
    api.create(&PostParams::default(), &plain).await.expect("create again");
    namespaces.delete("team", &DeleteParams::default()).await.expect("delete namespace");
    assert!(
        cluster
            .objects("v1", "ConfigMap")
            .iter()
            .all(|c| c["metadata"]["namespace"] != "team")
    );
}

#[tokio::test]
async fn lists_filter_by_labels_and_fields_and_paginate() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for (name, app) in [("a", "web"), ("b", "db"), ("c", "cache"), ("d", "web")] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}})).expect("cm");
        api.create(&PostParams::default(), &cm).await.expect("create");
    }
    let names =
        |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> { list.items.into_iter().filter_map(|c| c.metadata.name).collect() };
    assert_eq!(
        names(api.list(&ListParams::default().labels("app=web")).await.expect("list")),
        ["a", "d"]
    );
    assert_eq!(
        names(api.list(&ListParams::default().labels("app in (db,cache)")).await.expect("list")),
        ["b", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("app notin (web),app!=db"))
                .await
                .expect("list")
        ),
        ["c"]
    );
    assert_eq!(
        names(api.list(&ListParams::default().labels("!app")).await.expect("list")),
        Vec::<String>::new()
    );
    assert_eq!(
        names(api.list(&ListParams::default().fields("metadata.name=b")).await.expect("list")),
        ["b"]
    );
    assert_eq!(
        names(api.list(&ListParams::default().fields("metadata.name!=b")).await.expect("list")).len(),
        3
    );

    let first = api.list(&ListParams::default().limit(3)).await.expect("page 1");
    let token = first.metadata.continue_.clone().expect("a continue token");
    assert!(first.metadata.resource_version.is_some());
    assert_eq!(names(first), ["a", "b", "c"]);
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .expect("page 2");
    assert!(second.metadata.continue_.as_deref().unwrap_or_default().is_empty());
    assert_eq!(names(second), ["d"]);

    let all: Api<ConfigMap> = Api::all(client);
    let everything = all.list(&ListParams::default()).await.expect("all namespaces");
    assert_eq!(everything.items.len(), 4);
}

#[tokio::test]
async fn the_runtime_watcher_sees_events_and_relists_after_410() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = |name: &str| -> ConfigMap { serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm") };
    api.create(&PostParams::default(), &cm("before")).await.expect("create");
    let mut stream = kube::runtime::watcher(api.clone(), kube::runtime::watcher::Config::default()).boxed();
    let mut inits = 0;
    let mut done = 0;
    let mut seen = Vec::new();
    let mut expired = false;
    let outcome = tokio::time::timeout(WAIT, async {
        while let Some(event) = stream.next().await {
            match event {
                Ok(kube::runtime::watcher::Event::Init) => inits += 1,
                Ok(kube::runtime::watcher::Event::InitApply(o)) | Ok(kube::runtime::watcher::Event::Apply(o)) => {
                    seen.push(o.metadata.name.unwrap_or_default())
                }
                Ok(kube::runtime::watcher::Event::InitDone) => {
                    done += 1;
                    if inits == 1 {
                        api.create(&PostParams::default(), &cm("during")).await.expect("create");
                    }
                }
                Ok(_) => {}
                Err(_) => {}
            }
            if seen.iter().any(|n| n == "during") && !expired {
                expired = true;
                cluster.expire_watches();
            }
            if done >= 2 {
                break;
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "the watcher relisted after the 410");
    assert_eq!(inits, 2);
    assert!(seen.contains(&"before".to_string()));
    assert!(seen.contains(&"during".to_string()));
    let lists = cluster
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path == "/api/v1/namespaces/default/configmaps" && !r.query.iter().any(|(k, _)| k == "watch"))
        .count();
    assert!(lists >= 2, "a relist happened");
}

#[tokio::test]
async fn watches_from_a_compacted_version_get_410_gone() {
    let cluster = TestCluster::start_with(Options {
        event_window: 2,
        ..Options::default()
    })
    .expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    for i in 0..5 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}})).expect("cm");
        api.create(&PostParams::default(), &cm).await.expect("create");
    }
    let mut stream = api.watch(&WatchParams::default(), "1").await.expect("watch").boxed();
    let first = tokio::time::timeout(WAIT, stream.next()).await.expect("an event");
    match first {
        Some(Ok(WatchEvent::Error(status))) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watches_stream_changes_with_selectors_and_bookmarks() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let list = api.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("rv");
    let mut params = WatchParams::default().labels("app=web").timeout(30);
    params.bookmarks = true;
    let mut stream = api.watch(&params, &rv).await.expect("watch").boxed();
    for (name, app) in [("skip", "db"), ("seen", "web")] {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}})).expect("cm");
        api.create(&PostParams::default(), &cm).await.expect("create");
    }
    api.delete("seen", &DeleteParams::default()).await.expect("delete");
    let mut kinds = Vec::new();
    let mut bookmarks = 0;
    tokio::time::timeout(WAIT, async {
        while let Some(Ok(event)) = stream.next().await {
            match event {
                WatchEvent::Added(o) => kinds.push(format!("ADDED {}", o.metadata.name.unwrap_or_default())),
                WatchEvent::Modified(o) => kinds.push(format!("MODIFIED {}", o.metadata.name.unwrap_or_default())),
                WatchEvent::Deleted(o) => kinds.push(format!("DELETED {}", o.metadata.name.unwrap_or_default())),
                WatchEvent::Bookmark(_) => bookmarks += 1,
                WatchEvent::Error(e) => panic!("unexpected error {e:?}"),
            }
            if kinds.len() >= 2 && bookmarks >= 1 {
                break;
            }
        }
    })
    .await
    .expect("events arrive");
    assert_eq!(kinds, ["ADDED seen", "DELETED seen"]);
    assert!(bookmarks >= 1);
}

#[tokio::test]
async fn a_crd_then_its_custom_resources_in_one_run() {
    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    });
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
    crds.patch("widgets.example.com", &PatchParams::apply("harmony"), &Patch::Apply(&crd))
        .await
        .expect("apply the CRD");
    let established = tokio::time::timeout(
        WAIT,
        kube::runtime::wait::await_condition(
            crds.clone(),
            "widgets.example.com",
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .expect("established in time")
    .expect("wait");
    let status = established.and_then(|c| c.status).expect("status");
    assert_eq!(status.accepted_names.map(|n| n.plural), Some("widgets".to_string()));

    let discovery = Discovery::new(client.clone()).run().await.expect("discovery");
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("the new kind is served");
    assert_eq!(caps.scope, Scope::Namespaced);
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3, "tags": ["a", "b"]}, "status": {"ignored": true}
    }))
    .expect("widget");
    let made = widgets
        .patch("w1", &PatchParams::apply("harmony"), &Patch::Apply(&w))
        .await
        .expect("apply a widget");
    assert_eq!(made.data["spec"]["size"], 3);
    assert!(made.data.get("status").is_none(), "the main resource ignores status");
    let status_patch = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w1"}, "status": {"ready": true}});
    let with_status = widgets
        .patch_status("w1", &PatchParams::apply("controller"), &Patch::Apply(&status_patch))
        .await
        .expect("status apply");
    assert_eq!(with_status.data["status"]["ready"], true);
    assert_eq!(with_status.data["spec"]["size"], 3);
    let entries = with_status.metadata.managed_fields.expect("managed");
    assert!(
        entries
            .iter()
            .any(|e| e.manager.as_deref() == Some("controller") && e.subresource.as_deref() == Some("status"))
    );

    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .expect("delete CRD");
    assert!(cluster.objects("example.com/v1", "Widget").is_empty());
    let answer = common::http(&cluster, "GET", "/apis/example.com/v1/namespaces/default/widgets", None, "");
    assert_eq!(answer.code, 404);
    assert_eq!(answer.json()["kind"], "Status");
}

/// kube's port-forward reaches what a Service's registered backend serves, through a pod the
/// Service selects, at its `targetPort` (named in the pod). A port nothing serves in a played
/// pod is refused on the error channel, as a kubelet refuses a port nothing listens on.
#[tokio::test]
async fn a_port_forward_reaches_the_backend_behind_the_pods_port_and_a_dead_port_says_why() {
    use k8s_openapi::api::core::v1::Pod;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let cluster = TestCluster::start().expect("start");
    let client = common::client(&cluster);
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = echo.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 || conn.write_all(&[b"echo: ", &buf[..n]].concat()).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut web = deployment("web", 1);
    web["spec"]["template"]["spec"]["containers"][0]["ports"] = json!([{"name": "http", "containerPort": 8080}]);
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}
    });
    let pp = PatchParams::apply("test");
    deployments(&client)
        .await
        .patch("web", &pp, &Patch::Apply(&web))
        .await
        .expect("deployment");
    let services: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
    );
    services.patch("web", &pp, &Patch::Apply(&service)).await.expect("service");
    cluster.serve_service("default", "web", 80, addr);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + WAIT;
    let pod = loop {
        let running = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .expect("pods")
            .items
            .into_iter()
            .find(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"));
        if let Some(pod) = running {
            break pod.metadata.name.expect("name");
        }
        assert!(tokio::time::Instant::now() < deadline, "no running pod");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let mut forwarder = pods.portforward(&pod, &[8080]).await.expect("port-forward");
    let mut stream = forwarder.take_stream(8080).expect("stream");
    stream.write_all(b"hello").await.expect("write");
    let mut answer = [0u8; 11];
    stream.read_exact(&mut answer).await.expect("read");
    assert_eq!(&answer, b"echo: hello");
    drop(stream);

    let mut forwarder = pods.portforward(&pod, &[9999]).await.expect("port-forward");
    let error = forwarder.take_error(9999).expect("error channel").await.expect("an error");
    assert!(
        error.contains("error forwarding port 9999") && error.contains("nothing runs in it"),
        "{error}"
    );

    let Err(missing) = pods.portforward("nope", &[80]).await else {
        panic!("a port-forward to a pod that does not exist");
    };
    assert!(missing.to_string().contains("nope"), "{missing}");
}
