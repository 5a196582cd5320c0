//! Live smoke tests on a cluster: a Score's own `smoke = path` reads the
//! cluster and asks its Service through the API server's service proxy, and
//! a release's `smoke: http_get(..)` does the same (`HttpProbe`). What answers is a real
//! web server in a pod the kubelet runs (needs root).

use std::sync::Arc;
use std::time::Duration;

use harmony::capability::HttpAnswer;
use harmony::engine::run::Silent;
use harmony::k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::release::{HttpCheck, HttpProbe as _};
use harmony::{Desired, K8sClient, ObjectRef, Render, RenderCx, Score, ScoreError, SmokeError, engine};
use harmony_k8s::K8s;
use harmony_k8s::settings::Settings;
use harmony_test_cluster::TestCluster;

mod support;

fn topology(cluster: &TestCluster, dir: &std::path::Path) -> K8s {
    cluster.write_kubeconfig(&dir.join("kubeconfig")).unwrap();
    K8s::new(Settings::for_kubeconfig(&dir.join("kubeconfig"), &dir.join("state")).unwrap())
}

/// A Service whose smoke test asks it for `/healthz`, live.
#[derive(Score, Debug)]
#[score(requires(K8sClient), smoke = Self::ask)]
pub struct Front {
    pub namespace: String,
}

impl Front {
    fn id(&self) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some(self.namespace.clone()),
            name: "front".into(),
        }
    }

    async fn ask<T: K8sClient>(&self, topology: &T) -> Result<(), SmokeError> {
        let check = |e: String| SmokeError::new("GET /healthz from Service front", e);
        let live = topology.get(&self.id()).await.map_err(|e| check(e.to_string()))?;
        if live.is_none() {
            return Err(check("it does not exist".into()));
        }
        let answer: HttpAnswer = topology
            .http_get(&self.id(), "80", "/healthz")
            .await
            .map_err(|e| check(e.to_string()))?;
        if answer.is_success() && answer.body == "ok" {
            Ok(())
        } else {
            Err(check(format!("it answered {}: {}", answer.status, answer.body)))
        }
    }
}

impl Render for Front {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
        desired.push(&Service {
            metadata: ObjectMeta {
                name: Some("front".into()),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(ServiceSpec {
                selector: Some([("app".to_owned(), "front".to_owned())].into()),
                ports: Some(vec![ServicePort {
                    port: 80,
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        })?;
        Ok(desired)
    }
}

#[test]
fn a_scores_own_smoke_test_reads_the_cluster_and_asks_its_service_live() {
    let cluster = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let k8s = topology(&cluster, dir.path());
    let score = Front {
        namespace: cluster.namespace().to_owned(),
    };
    support::web_server(&cluster, cluster.namespace(), "front", "ok");
    let plan = support::runtime()
        .block_on(engine::plan_and_apply("front", &score, &k8s, Arc::new(Silent)))
        .unwrap();
    assert_eq!(plan.summary().add, 1);

    // A server that answers wrongly fails the smoke test, with its answer.
    let cluster = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let k8s = topology(&cluster, dir.path());
    let score = Front {
        namespace: cluster.namespace().to_owned(),
    };
    support::web_server(&cluster, cluster.namespace(), "front", "database down");
    let err = support::runtime()
        .block_on(engine::plan_and_apply("front", &score, &k8s, Arc::new(Silent)))
        .unwrap_err();
    let text = format!("{err} {}", harmony::Diagnostic::notes(&err).join(" "));
    assert!(text.contains("smoke test failed"), "{text}");
    assert!(text.contains("database down"), "{text}");
}

#[test]
fn a_release_smoke_test_asks_the_delivered_service_through_the_proxy() {
    let cluster = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let k8s = topology(&cluster, dir.path());
    let objects = harmony::engine::render(
        "front",
        "k8s",
        &Front {
            namespace: cluster.namespace().to_owned(),
        },
    )
    .unwrap();
    // One runtime for the topology's whole life: its client lives on it.
    let rt = support::runtime();
    rt.block_on(engine::apply_objects("front", &objects, &k8s)).unwrap();
    let delivery = harmony::release::Delivery {
        app: "front".into(),
        stage: "staging".into(),
        chart: harmony::release::ChartRef::new(None, "charts", "front", "0.1.0".parse().unwrap()).unwrap(),
        chart_digest: harmony::oci::Digest::sha256_of(b"chart"),
        objects: objects.into(),
    };
    // The cluster runs the image; the probe does not need it.
    let image = harmony::oci::Artifact::new(
        harmony::oci::Blob::new("application/vnd.oci.image.config.v1+json", b"{}".to_vec()),
        Vec::new(),
    );
    let mut check = HttpCheck::get("/healthz");
    check.timeout = Duration::from_secs(2);

    let err = rt.block_on(k8s.probe(&delivery, &image, &check)).unwrap_err();
    assert!(err.why.contains("503"), "no endpoints yet: {err}");

    support::web_server(&cluster, cluster.namespace(), "front", "ok");
    rt.block_on(k8s.probe(&delivery, &image, &check)).unwrap();
}

/// A smoke test's connection to a Service that cannot take it names what is missing and what to
/// look at, not the network: the Service is not there, has no such port, or no pod behind it is
/// ready.
#[test]
fn a_connection_to_a_service_that_cannot_take_it_says_what_is_missing() {
    let cluster = TestCluster::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let k8s = topology(&cluster, dir.path());
    let namespace = cluster.namespace().to_owned();
    let front = Front {
        namespace: namespace.clone(),
    }
    .id();
    // One runtime: the topology's client lives on it.
    let rt = support::runtime();
    let refused = |port: &str| {
        let err = match rt.block_on(k8s.connect(&front, port)) {
            Ok(_) => panic!("connected to {front}:{port}"),
            Err(e) => e,
        };
        assert!(matches!(err, harmony::capability::DeployError::NotServing { .. }), "{err:?}");
        (err.to_string(), harmony::Diagnostic::help(&err))
    };
    let (why, help) = refused("80");
    assert!(why.contains("does not exist"), "{why}");
    assert!(help.contains("kubectl get services"), "{help}");

    // The Service, and no pod behind it.
    let service = serde_json::json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "front", "namespace": namespace},
        "spec": {"selector": {"app": "front"}, "ports": [{"name": "http", "port": 80}]}});
    support::apply_as(
        &cluster,
        "test",
        &format!("/api/v1/namespaces/{namespace}/services/front"),
        &service,
        true,
    );
    let (why, help) = refused("9090");
    assert!(why.contains("no port `9090`") && why.contains("http (80)"), "{why}");
    assert!(help.contains("by number or by name"), "{help}");
    let (why, help) = refused("http");
    assert!(why.contains("app=front") && why.contains("is ready"), "{why}");
    assert!(help.contains("kubectl describe pods"), "{help}");
}
