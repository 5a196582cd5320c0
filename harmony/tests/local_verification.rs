//! The `local` topology verifies each step against everything the target
//! would hold: this app's objects so far, and what every other app stored.

use harmony::{Local, Object, engine};
use serde_json::json;

fn deployment(name: &str, labels: serde_json::Value, config: &str) -> Object {
    Object::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "site"},
        "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
            "containers": [{"name": "c", "image": "registry.example/app:1", "ports": [{"name": "http", "containerPort": 80}],
                            "envFrom": [{"configMapRef": {"name": config}}]}]}}}
    }))
    .unwrap()
}

fn config_map(name: &str) -> Object {
    Object::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "site"}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn service(name: &str, selector: serde_json::Value) -> Object {
    Object::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "site"},
        "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": "http"}]}
    }))
    .unwrap()
}

#[test]
fn a_step_sees_what_other_apps_stored_and_only_that() {
    let state = tempfile::tempdir().unwrap();
    let local = Local::at(state.path());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let web = [
        deployment("web", json!({"app": "web"}), "shared"),
        service("api", json!({"app": "api"})),
    ];

    // Nothing deploys the ConfigMap the pods read, nor the pods the Service selects.
    let err = rt.block_on(engine::apply_objects("web", &web, &local)).unwrap_err();
    let told = format!("{err} {:?}", harmony::Diagnostic::notes(&err));
    assert!(told.contains("needs ConfigMap `shared`, which nothing deploys"), "{told}");
    assert!(told.contains("its selector `app=api` matches no pods"), "{told}");

    // Two other apps store them: the same step now passes, and is written.
    rt.block_on(engine::apply_objects("config", &[config_map("shared")], &local))
        .unwrap();
    rt.block_on(engine::apply_objects(
        "api",
        &[deployment("api", json!({"app": "api"}), "shared")],
        &local,
    ))
    .unwrap();
    let plan = rt.block_on(engine::apply_objects("web", &web, &local)).unwrap();
    assert_eq!(plan.changes.len(), 2, "{plan:?}");
}
