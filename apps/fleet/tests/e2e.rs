//! The fleet end to end, composed from the same Scores as production: only
//! the topology changes. Once per test binary, the stack comes up: the
//! `k8s` topology on the test API server deploys `FleetServerScore` (its
//! namespace, NATS, the operator's CRD, RBAC and Deployment, each verified;
//! NATS's smoke test logs in to the real nats-server through a port-forward
//! and does a KV round trip),
//! and `FleetAgentScore` for each device. Then the real operator runs against
//! the test API server and the real nats-server, and real agents run here,
//! as the Scores describe them. Stale test namespaces are deleted first, so
//! the same suite can run against a real cluster.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fleet::{FleetAgentScore, FleetServerScore};
use fleet_agent::agent::{self, Config};
use fleet_agent::process::Timings;
use fleet_model::{FileSpec, ProcessSpec, Resource};
use fleet_operator::controller::{self, Context};
use fleet_operator::crd::{FleetDeployment, FleetDeploymentSpec};
use fleet_testing::NatsServer;
use harmony::run::Silent;
use harmony::{Secret, engine};
use harmony_k8s::K8s;
use harmony_k8s::settings::Settings;
use harmony_test_cluster::TestCluster;
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};

// The operator's test support: its status poll.
#[path = "../operator/tests/world/mod.rs"]
mod world;

use world::status_until;

const NS: &str = "fleet-e2e";
const E2E_LABEL: &str = "harmony.deploy/e2e";

/// Devices and their labels, as their `FleetAgentScore`s say.
fn devices() -> Vec<FleetAgentScore> {
    let nats = fleet::FleetNatsScore::new(NS, Secret::new(String::new()));
    ["lyon-1", "lyon-2", "paris-1"]
        .iter()
        .map(|id| {
            let site = id.split('-').next().unwrap();
            FleetAgentScore::new(NS, id, "localhost/fleet-agent:e2e", &nats).label("site", site)
        })
        .collect()
}

/// Everything the tests share, brought up once.
struct Stack {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    _cluster: TestCluster,
    _nats: NatsServer,
    _dirs: tempfile::TempDir,
}

fn stack() -> &'static Stack {
    static STACK: OnceLock<Stack> = OnceLock::new();
    STACK.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dirs = tempfile::tempdir().unwrap();
        let cluster = TestCluster::start().unwrap();
        let kubeconfig = dirs.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        let nats = NatsServer::start();
        // The cluster's Service `fleet-nats` is the real server, for the smoke test.
        cluster.serve_service(NS, "fleet-nats", 4222, nats.client_addr());
        let client = runtime.block_on(async {
            let client = kube::Client::try_from(kube::Config::new(cluster.url().parse().unwrap())).unwrap();
            delete_stale_namespaces(&client).await;
            let k8s = K8s::new(Settings::for_kubeconfig(&kubeconfig, &dirs.path().join("state")).unwrap());
            let mut server = FleetServerScore::new(NS, "localhost/fleet-operator:e2e", Secret::new(fleet_testing::PASSWORD.into()));
            server.nats.user = fleet_testing::USER.into();
            server.namespace.labels.insert(E2E_LABEL.into(), "fleet".into());
            engine::plan_and_apply("fleet-server", &server, &k8s, Arc::new(Silent))
                .await
                .unwrap_or_else(|e| panic!("{e}: {}", harmony::Diagnostic::notes(&e).join("; ")));
            // One app of all the devices, side by side: each its own Score.
            engine::plan_and_apply("fleet-agents", &devices(), &k8s, Arc::new(Silent))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            // The operator the Score deployed, run here against the same API server and NATS.
            let connection = fleet_kv::Connection::open(&nats.settings("fleet-operator"), |_| {}).await.unwrap();
            let buckets = connection.create_buckets().await.unwrap();
            let context = Arc::new(Context {
                client: client.clone(),
                fleet: fleet_operator::view::watch_buckets(&buckets),
                buckets,
                silence: Duration::from_secs(30),
            });
            tokio::spawn(controller::run(Api::all(client.clone()), context, std::future::pending()));
            // The agents the Scores describe: their device ids and labels.
            for device in devices() {
                let config = Config {
                    nats: nats.settings(&device.device),
                    device: device.device.clone(),
                    labels: device.labels.clone(),
                    state: dirs.path().join(&device.device),
                    heartbeat: Duration::from_millis(500),
                    timings: Timings {
                        settle: Duration::from_millis(100),
                        ..Timings::default()
                    },
                };
                tokio::spawn(agent::run(config, std::future::pending()));
            }
            client
        });
        Stack {
            runtime,
            client,
            _cluster: cluster,
            _nats: nats,
            _dirs: dirs,
        }
    })
}

/// Namespaces a previous run left behind (on a real cluster): deleted, so a
/// run starts from nothing of its own.
async fn delete_stale_namespaces(client: &kube::Client) {
    use harmony::k8s_openapi::api::core::v1::Namespace;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let stale = namespaces.list(&ListParams::default().labels(E2E_LABEL)).await.unwrap();
    for ns in stale.items {
        let name = ns.metadata.name.unwrap_or_default();
        namespaces.delete(&name, &DeleteParams::default()).await.unwrap();
    }
}

fn deployments(stack: &Stack) -> Api<FleetDeployment> {
    Api::namespaced(stack.client.clone(), NS)
}

#[test]
fn the_fleet_server_is_deployed_by_its_scores_and_verified() {
    let stack = stack();
    stack.runtime.block_on(async {
        use harmony::k8s_openapi::api::apps::v1::Deployment;
        use harmony::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds: Api<CustomResourceDefinition> = Api::all(stack.client.clone());
        let crd = crds.get("fleetdeployments.fleet.harmony.deploy").await.unwrap();
        let established = crd.status.and_then(|s| s.conditions).unwrap_or_default();
        assert!(established.iter().any(|c| c.type_ == "Established" && c.status == "True"));
        let deployments: Api<Deployment> = Api::namespaced(stack.client.clone(), NS);
        for name in ["fleet-nats", "fleet-operator", "fleet-agent-lyon-1", "fleet-agent-paris-1"] {
            let d = deployments.get(name).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or_default();
            assert_eq!(ready, 1, "{name} was waited for until ready");
        }
        let operator = deployments.get("fleet-operator").await.unwrap();
        let container = &operator.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(
            container.args.as_deref().unwrap(),
            ["--nats", "nats://fleet-nats.fleet-e2e:4222"],
            "the operator dials the NATS Score's Service"
        );
    });
}

#[test]
fn a_fleet_deployment_reaches_the_selected_devices_and_their_statuses_come_back() {
    let stack = stack();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("sensor.toml");
    stack.runtime.block_on(async {
        let api = deployments(stack);
        let fd = FleetDeployment::new(
            "sensors",
            FleetDeploymentSpec {
                selector: BTreeMap::from([("site".into(), "lyon".into())]),
                resources: vec![
                    Resource::File(FileSpec {
                        name: "config".into(),
                        path: config.to_str().unwrap().into(),
                        content: "rate = 5\n".into(),
                        mode: 0o644,
                    }),
                    Resource::Process(ProcessSpec {
                        name: "reader".into(),
                        argv: vec!["sleep".into(), "60".into()],
                        env: BTreeMap::new(),
                        restart: Default::default(),
                    }),
                ],
            },
        );
        api.patch("sensors", &PatchParams::apply("fleet-e2e").force(), &Patch::Apply(&fd))
            .await
            .unwrap();
        let status = status_until(&api, "sensors", |s| s.ready == 2).await;
        assert_eq!((status.selected, status.failed), (2, 0), "lyon-1 and lyon-2, not paris-1");
        assert!(status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        assert_eq!(std::fs::read_to_string(&config).unwrap(), "rate = 5\n");
        // The process runs on both devices: two `sleep 60` children of this test.
        let sleepers = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == b"sleep\x0060\x00")
                    && std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| !s.contains(") Z "))
            })
            .count();
        assert!(sleepers >= 2, "{sleepers} reader processes");

        // Deleting it withdraws everything it sent.
        api.delete("sensors", &DeleteParams::default()).await.unwrap();
        for _ in 0..200 {
            if api.get_opt("sensors").await.unwrap().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(api.get_opt("sensors").await.unwrap().is_none());
        for _ in 0..200 {
            if !config.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!config.exists(), "the devices removed the file they no longer hold");
    });
}

/// NATS's smoke test logs in to the real server, so a server without
/// JetStream, without auth, or with other credentials fails it, saying which.
#[test]
fn the_nats_smoke_test_fails_on_a_server_without_jetstream_without_auth_or_with_other_credentials() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for (auth, jetstream, expected) in [
        (true, false, "JetStream is not up"),
        (false, true, "lets clients in without a password"),
        (true, true, "NATS refused user `fleet`: 'Authorization Violation'"),
    ] {
        let dirs = tempfile::tempdir().unwrap();
        let cluster = TestCluster::start().unwrap();
        let nats = NatsServer::start_with(auth, jetstream);
        cluster.serve_service("fleet-smoke", "fleet-nats", 4222, nats.client_addr());
        cluster.write_kubeconfig(&dirs.path().join("kubeconfig")).unwrap();
        let k8s = K8s::new(Settings::for_kubeconfig(&dirs.path().join("kubeconfig"), &dirs.path().join("state")).unwrap());
        let server = FleetServerScore::new("fleet-smoke", "localhost/fleet-operator:e2e", Secret::new("pw".into()));
        let err = runtime
            .block_on(engine::plan_and_apply("fleet-server", &server, &k8s, Arc::new(Silent)))
            .unwrap_err();
        let text = format!(
            "{err} {} {}",
            harmony::Diagnostic::notes(&err).join(" "),
            harmony::Diagnostic::help(&err)
        );
        assert!(text.contains(expected), "auth {auth}, jetstream {jetstream}: {text}");
        assert!(!text.contains("\"pw\""), "the password is never shown");
        // Gated: the operator after NATS was never applied.
        assert!(
            cluster
                .object("apps/v1", "Deployment", Some("fleet-smoke"), "fleet-operator")
                .is_none()
        );
    }
}
