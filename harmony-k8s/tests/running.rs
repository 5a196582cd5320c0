//! The `k8s` topology against a test cluster that really runs its images
//! (`Workloads::Run`): a workload whose program exits fails the apply with
//! the culprit in its own words — the crash loop, the real exit code, and
//! the last lines the real program printed.

#[allow(dead_code)]
#[path = "../../harmony-test-cluster/tests/image/mod.rs"]
mod image;
#[allow(dead_code)]
#[path = "../../harmony/tests/support/registry.rs"]
mod registry;
mod support;

use std::time::Duration;

use harmony::engine::{self, EngineError};
use harmony::{Diagnostic as _, Object};
use harmony_test_cluster::{Options, Workloads};
use serde_json::json;

#[test]
fn a_program_that_exits_is_reported_with_its_exit_code_and_its_last_words() {
    let registry = registry::Registry::anonymous();
    let image = image::push(
        &registry.address,
        "team/worker",
        "1",
        "",
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "echo 'worker starting'; echo 'error: cannot open /etc/worker/queue.toml' >&2; exit 3",
        ],
    );
    let f = support::fixture_with(
        Options {
            ready_after: Duration::from_millis(300),
            ..Options::default()
        },
        Duration::from_secs(30),
    );
    let jobs = f.cluster.ns("jobs");
    f.cluster.set_workloads(Workloads::Run);
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": jobs}}),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": jobs},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "worker"}},
                "template": {"metadata": {"labels": {"app": "worker"}},
                    "spec": {"containers": [{"name": "worker", "image": image}]}}},
        }),
    ]
    .map(|v| Object::from_value(v).unwrap());
    let err = support::runtime()
        .block_on(engine::apply_objects("jobs", &objects, &f.topology))
        .unwrap_err();
    let EngineError::Interpret { .. } = &err else { panic!("{err}") };
    let text = format!("{err}\n{}\n{}", err.notes().join("\n"), err.help());
    assert!(text.contains("CrashLoopBackOff"), "{text}");
    assert!(
        text.contains("exit code 3") || text.contains("exited with 3"),
        "the real exit code: {text}"
    );
    assert!(
        text.contains("error: cannot open /etc/worker/queue.toml"),
        "the real last words: {text}"
    );
}
