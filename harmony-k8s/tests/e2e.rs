//! End to end against a real cluster, when `HARMONY_E2E_KUBECONFIG` names
//! one (kind, k3d, …); skipped, saying so, otherwise. An explicit variable,
//! not `KUBECONFIG`: running the tests must never deploy to whatever cluster
//! a shell happens to point at.
//!
//! Deploys a namespace, settings and a workload (`HARMONY_E2E_IMAGE`, by
//! default the pause image every kind and k3d node holds), waits until it is
//! ready, reads it back live, changes it, prunes part of it, and removes it all.

use std::time::Duration;

use harmony::capability::ApplySet;
use harmony::engine;
use harmony::{K8sClient as _, K8sDeploy as _, Object, ObjectRef};
use harmony_k8s::K8s;
use harmony_k8s::settings::Settings;
use serde_json::{Value, json};

const NAMESPACE: &str = "harmony-e2e";

fn objects(replicas: i64, with_settings: bool) -> Vec<Object> {
    let image = std::env::var("HARMONY_E2E_IMAGE").unwrap_or_else(|_| "registry.k8s.io/pause:3.10".into());
    let o = |v: Value| Object::from_value(v).unwrap();
    let mut all = vec![o(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE,
        "annotations": {"harmony.deploy/prune": "allow"}}}))];
    if with_settings {
        all.push(o(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": NAMESPACE},
            "data": {"greeting": "hello"}}),
        ));
    }
    all.push(o(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NAMESPACE},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}}),
    ));
    all
}

#[test]
fn deploy_wait_read_change_prune_and_clean_up_on_a_real_cluster() {
    let Some(kubeconfig) = std::env::var_os("HARMONY_E2E_KUBECONFIG") else {
        eprintln!("skipped: set HARMONY_E2E_KUBECONFIG to a test cluster's kubeconfig to run the end-to-end suite (see the README)");
        return;
    };
    let state = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_kubeconfig(std::path::Path::new(&kubeconfig), state.path()).unwrap();
    settings.timeout = Duration::from_secs(180);
    let topology = K8s::new(settings);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let first = engine::apply_objects("harmony-e2e", &objects(1, true), &topology).await.unwrap();
        assert_eq!(first.summary().add, 3);

        let id = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some(NAMESPACE.into()),
            name: "web".into(),
        };
        let live = topology.get(&id).await.unwrap().expect("it exists");
        assert_eq!(live["status"]["readyReplicas"], 1, "apply returned once it was ready");
        assert!(
            engine::plan_objects("harmony-e2e", &objects(1, true), &topology)
                .await
                .unwrap()
                .is_empty()
        );

        let changed = engine::apply_objects("harmony-e2e", &objects(2, false), &topology).await.unwrap();
        assert_eq!((changed.summary().change, changed.summary().remove), (1, 1));
        let settings = ObjectRef {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(NAMESPACE.into()),
            name: "settings".into(),
        };
        assert!(topology.get(&settings).await.unwrap().is_none(), "pruned");
        let live = topology.get(&id).await.unwrap().unwrap();
        assert_eq!(live["status"]["readyReplicas"], 2);

        // Clean up: an empty app prunes everything, the namespace included (it allows it).
        let set = ApplySet::new("harmony-e2e");
        topology.observe(&set).await.unwrap();
        let gone = engine::apply_objects("harmony-e2e", &[], &topology).await.unwrap();
        assert_eq!(gone.summary().remove, 2);
    });
}
