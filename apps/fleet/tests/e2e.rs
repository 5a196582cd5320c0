//! The fleet end to end, composed from the same Scores as production: only
//! the topology changes. Once per test binary, the stack comes up: the
//! `k8s` topology on the real control plane deploys `FleetServerScore` (its
//! namespace, NATS, the operator's CRD, RBAC and Deployment, each verified;
//! NATS runs for real in its pod, the static nats-server standing for its image, and its
//! smoke test logs in through a port-forward and does a KV round trip),
//! and `FleetAgentScore` for each device. Then the real operator runs against
//! the API server and that NATS, and real agents run here, as the Scores describe
//! them, connected to the same NATS. Stale test namespaces are deleted first, so
//! the same suite can run against a real cluster.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use fleet::{FleetAgentScore, FleetServerScore};
use fleet_agent::agent::{self, Config};
use fleet_agent::process::Timings;
use fleet_kv::identity::{Authority, Role};
use fleet_model::{FileSpec, LinkSpec, ProcessSpec, Resource};
use fleet_operator::controller::{self, Context};
use fleet_operator::crd::{FleetDeployment, FleetDeploymentSpec};
use fleet_testing::NatsServer;
use harmony::engine::run::Silent;
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

const E2E_LABEL: &str = "harmony.deploy/e2e";
const NATS_IMAGE: &str = "docker.io/library/nats:2.10-alpine";

/// The static nats-server `scripts/install-nats-server` fetched: NATS's image, held by the kubelet.
fn nats_program() -> std::path::PathBuf {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/nats-server/nats-server");
    assert!(path.is_file(), "{} is missing: run scripts/install-nats-server", path.display());
    path
}

/// Devices and their labels, as their `FleetAgentScore`s say, each enrolled by the authority.
fn devices(ns: &str, authority: &Authority) -> Vec<FleetAgentScore> {
    let nats = fleet::FleetNatsScore::new(ns, Secret::new(authority.to_text()));
    ["lyon-1", "lyon-2", "paris-1"]
        .iter()
        .map(|id| {
            let site = id.split('-').next().unwrap();
            FleetAgentScore::new(ns, id, "localhost/fleet-agent:e2e", &nats).label("site", site)
        })
        .collect()
}

/// Everything the tests share, brought up once.
struct Stack {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    ns: String,
    authority: Authority,
    _cluster: TestCluster,
    dirs: tempfile::TempDir,
}

impl Stack {
    /// Where device `device` holds the file a manifest names `path`: each
    /// device of the stack has a filesystem of its own (`Policy::on_host`).
    fn file_on(&self, device: &str, path: &std::path::Path) -> std::path::PathBuf {
        self.dirs.path().join(device).join("fs").join(path.strip_prefix("/").unwrap())
    }
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
        let ns = cluster.ns("fleet-e2e");
        let kubeconfig = dirs.path().join("kubeconfig");
        cluster.write_kubeconfig(&kubeconfig).unwrap();
        // NATS runs for real in its pod: the kubelet holds its image as the static nats-server.
        cluster.hold_image(NATS_IMAGE, nats_program());
        let client = cluster.client();
        let authority = Authority::generate();
        runtime.block_on(async {
            delete_stale_namespaces(&client).await;
            let k8s = K8s::new(Settings::for_kubeconfig(&kubeconfig, &dirs.path().join("state")).unwrap());
            let mut server = FleetServerScore::new(&ns, "localhost/fleet-operator:e2e", Secret::new(authority.to_text()));
            server.namespace.labels.insert(E2E_LABEL.into(), "fleet".into());
            engine::plan_and_apply("fleet-server", &server, &k8s, Arc::new(Silent))
                .await
                .unwrap_or_else(|e| panic!("{e}: {}", harmony::Diagnostic::notes(&e).join("; ")));
            // The operator's key, in the Secret its Score names, made as the operator makes it on
            // first start (its pod here is played, not run): the public half is published where
            // the agents' pods read it, so they start only once it exists.
            let signer = fleet_operator::keys::from_secret(&client, &ns, fleet::SIGNING_KEY_SECRET)
                .await
                .unwrap();
            let trust = signer.public();
            // One app of all the devices, side by side: each its own Score.
            engine::plan_and_apply("fleet-agents", &devices(&ns, &authority), &k8s, Arc::new(Silent))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            // The NATS the Score deployed, at its pod's address (this node's network reaches it).
            let pods: Api<harmony::k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), &ns);
            let listed = pods.list(&ListParams::default()).await.unwrap();
            let nats_pod = listed
                .items
                .iter()
                .find(|p| p.metadata.name.as_deref().is_some_and(|n| n.starts_with("fleet-nats-")))
                .expect("NATS's pod");
            let ip = nats_pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .expect("NATS's pod has an IP");
            // Each party logs in with its own credentials, as the Scores derive them.
            let nats = |role: &Role, name: &str| fleet_kv::Settings {
                url: format!("nats://{ip}:4222"),
                login: fleet_kv::Login::Credentials {
                    text: authority.credentials(role, 0).to_text(),
                    inbox: match role {
                        Role::Device(id) => Some(fleet_kv::identity::inbox_prefix(id)),
                        Role::Operator => None,
                    },
                },
                name: name.into(),
            };
            // The operator the Score deployed, run here against the same API server and NATS.
            let connection = fleet_kv::Connection::open(&nats(&Role::Operator, "fleet-operator"), |_| {})
                .await
                .unwrap();
            let buckets = connection.create_buckets().await.unwrap();
            let context = Arc::new(Context {
                client: client.clone(),
                fleet: fleet_operator::view::watch_buckets(&buckets, trust),
                nats: connection,
                buckets,
                signer: Arc::new(signer),
                told: Default::default(),
                silence: Duration::from_secs(30),
            });
            tokio::spawn(controller::run(
                Api::namespaced(client.clone(), &ns),
                context,
                std::future::pending(),
            ));
            // The agents the Scores describe: their device ids and labels.
            for device in devices(&ns, &authority) {
                let config = Config {
                    nats: nats(&Role::Device(device.device.clone()), &device.device),
                    device: device.device.clone(),
                    labels: device.labels.clone(),
                    trust,
                    state: dirs.path().join(&device.device),
                    files: {
                        let host = dirs.path().join(&device.device).join("fs");
                        std::fs::create_dir_all(&host).unwrap();
                        fleet_agent::files::Policy::under(["/"]).on_host(host)
                    },
                    programs: fleet_agent::process::Programs::allowing(["sleep"]).unwrap(),
                    heartbeat: Duration::from_millis(500),
                    timings: Timings {
                        settle: Duration::from_millis(100),
                        ..Timings::default()
                    },
                };
                tokio::spawn(agent::run(config, std::future::pending()));
            }
        });
        Stack {
            runtime,
            client,
            ns,
            authority,
            _cluster: cluster,
            dirs,
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
    Api::namespaced(stack.client.clone(), &stack.ns)
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
        let deployments: Api<Deployment> = Api::namespaced(stack.client.clone(), &stack.ns);
        let sets: Api<harmony::k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(stack.client.clone(), &stack.ns);
        let nats = sets.get("fleet-nats").await.unwrap();
        assert_eq!(
            nats.status.and_then(|s| s.ready_replicas),
            Some(1),
            "NATS was waited for until ready"
        );
        for name in ["fleet-operator", "fleet-agent-lyon-1", "fleet-agent-paris-1"] {
            let d = deployments.get(name).await.unwrap_or_else(|e| panic!("{name}: {e}"));
            let ready = d.status.and_then(|s| s.ready_replicas).unwrap_or_default();
            assert_eq!(ready, 1, "{name} was waited for until ready");
        }
        let operator = deployments.get("fleet-operator").await.unwrap();
        let container = &operator.spec.unwrap().template.spec.unwrap().containers[0];
        assert_eq!(
            container.args.as_deref().unwrap(),
            [
                "--nats",
                &format!("nats://fleet-nats.{}:4222", stack.ns),
                "--creds",
                "/etc/fleet-operator/nats/creds",
                "--signing-key-secret",
                fleet::SIGNING_KEY_SECRET
            ],
            "the operator dials the NATS Score's Service with its own credentials and keeps its key in the Secret"
        );
        // Each party's credentials, derived from the authority into its own Secret: the
        // device's are its enrolment, and the authority itself never reached the cluster.
        let secrets: Api<harmony::k8s_openapi::api::core::v1::Secret> = Api::namespaced(stack.client.clone(), &stack.ns);
        for (secret, role) in [
            ("fleet-operator-nats", Role::Operator),
            ("fleet-agent-lyon-1-nats", Role::Device("lyon-1".into())),
        ] {
            let data = secrets.get(secret).await.unwrap().data.unwrap();
            assert_eq!(
                String::from_utf8(data["creds"].0.clone()).unwrap(),
                stack.authority.credentials(&role, 0).to_text(),
                "{secret}"
            );
        }
        let seeds: Vec<String> = stack
            .authority
            .to_text()
            .lines()
            .skip(1)
            .map(|l| l.split(": ").nth(1).unwrap().to_owned())
            .collect();
        for secret in secrets.list(&ListParams::default()).await.unwrap().items {
            let text = format!("{:?}", secret.data);
            assert!(
                seeds.iter().all(|seed| !text.contains(seed.as_str())),
                "the authority is in no Secret"
            );
        }
        // The agents' pods started (they are ready, above) with the key the operator published.
        let configmaps: Api<harmony::k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(stack.client.clone(), &stack.ns);
        let published = configmaps.get(fleet::MANIFEST_KEY_CONFIGMAP).await.unwrap();
        let key = &published.data.unwrap()[fleet_model::signed::MANIFEST_KEY_ENTRY];
        assert!(key.parse::<fleet_model::signed::ManifestKey>().is_ok(), "{key}");
    });
}

#[test]
fn a_fleet_deployment_reaches_the_selected_devices_and_their_statuses_come_back() {
    let stack = stack();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("sensor.toml");
    let current = out.path().join("current");
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
                    // Through the API server's structural schema, every field kept.
                    Resource::Link(LinkSpec {
                        name: "current".into(),
                        path: current.to_str().unwrap().into(),
                        target: config.to_str().unwrap().into(),
                    }),
                ],
            },
        );
        api.patch("sensors", &PatchParams::apply("fleet-e2e").force(), &Patch::Apply(&fd))
            .await
            .unwrap();
        let status = status_until(&api, "sensors", |s| s.ready == 2).await;
        assert_eq!((status.selected, status.failed), (2, 0), "lyon-1 and lyon-2, not paris-1");
        let stored = api.get("sensors").await.unwrap();
        assert_eq!(stored.spec.resources, fd.spec.resources, "nothing pruned by the schema");
        assert!(status.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        for device in ["lyon-1", "lyon-2"] {
            assert_eq!(std::fs::read_to_string(stack.file_on(device, &config)).unwrap(), "rate = 5\n");
            assert_eq!(
                std::fs::read_link(stack.file_on(device, &current)).unwrap(),
                config,
                "as the manifest spells it"
            );
        }
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
        let written = [stack.file_on("lyon-1", &config), stack.file_on("lyon-2", &config)];
        for _ in 0..200 {
            if !written.iter().any(|f| f.exists()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            !written.iter().any(|f| f.exists()),
            "the devices removed the file they no longer hold"
        );
    });
}

/// NATS's smoke test logs in to the real server, so a server without JetStream, without auth,
/// with passwords instead of the fleet's authority, or trusting another authority fails it,
/// saying which. The pod NATS's Score deploys is played, with such a server behind its port:
/// the port-forward goes through the real API server and the kubelet to it. (A control plane of
/// its own: on the shared one, NATS's image runs for real.)
#[test]
fn the_nats_smoke_test_fails_on_a_server_without_jetstream_without_auth_or_trusting_another_authority() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let authority = Authority::generate();
    let another = Authority::generate();
    let cases = [
        ("no JetStream", "JetStream is not up"),
        ("no auth", "lets clients in without credentials"),
        ("passwords", "asks for a password, not for credentials"),
        (
            "another authority",
            "NATS refused the operator's credentials: 'Authorization Violation'",
        ),
    ];
    let seeds: Vec<String> = authority
        .to_text()
        .lines()
        .skip(1)
        .map(|l| l.split(": ").nth(1).unwrap().to_owned())
        .collect();
    for (case, expected) in cases {
        let dirs = tempfile::tempdir().unwrap();
        let cluster = TestCluster::dedicated(harmony_test_cluster::Options::default()).unwrap();
        let nats = match case {
            "no JetStream" => NatsServer::start_trusting_with(&authority, false),
            "no auth" => NatsServer::start_with(false, true),
            "passwords" => NatsServer::start_with(true, true),
            _ => NatsServer::start_trusting(&another),
        };
        cluster.serve_port("fleet-smoke", 4222, nats.client_addr());
        cluster.write_kubeconfig(&dirs.path().join("kubeconfig")).unwrap();
        let k8s = K8s::new(Settings::for_kubeconfig(&dirs.path().join("kubeconfig"), &dirs.path().join("state")).unwrap());
        let server = FleetServerScore::new("fleet-smoke", "localhost/fleet-operator:e2e", Secret::new(authority.to_text()));
        let err = runtime
            .block_on(engine::plan_and_apply("fleet-server", &server, &k8s, Arc::new(Silent)))
            .unwrap_err();
        let text = format!(
            "{err} {} {}",
            harmony::Diagnostic::notes(&err).join(" "),
            harmony::Diagnostic::help(&err)
        );
        assert!(text.contains(expected), "{case}: {text}");
        assert!(
            seeds.iter().all(|seed| !text.contains(seed.as_str())),
            "no key of the authority is shown"
        );
        // Gated: the operator after NATS was never applied.
        assert!(
            cluster
                .object("apps/v1", "Deployment", Some("fleet-smoke"), "fleet-operator")
                .is_none()
        );
    }
}

/// NATS keeps its data on a volume of its own: its pod deleted, the StatefulSet starts another,
/// which has the fleet's buckets, their keys and the accounts as they were, and lets the same
/// credentials in. NATS's image runs for real (the static nats-server), on a control plane of
/// its own (the shared stack's agents dial the first pod's address).
#[test]
fn nats_keeps_its_data_on_its_volume_when_its_pod_is_replaced() {
    use harmony::k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_dirs, cluster, k8s) = running_nats();
    let authority = Authority::generate();
    let ns = "fleet-durable";
    let server = fleet::FleetNatsServer::new(ns, Secret::new(authority.to_text()));
    let client = cluster.client();
    runtime.block_on(async {
        engine::plan_and_apply("fleet-nats", &server, &k8s, Arc::new(Silent))
            .await
            .unwrap_or_else(|e| panic!("{e}: {}", harmony::Diagnostic::notes(&e).join("; ")));
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
        let claim = claims.get("data-fleet-nats-0").await.unwrap();
        assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let operator = |ip: String| fleet_kv::Settings {
            url: format!("nats://{ip}:4222"),
            login: fleet_kv::Login::Credentials {
                text: authority.credentials(&Role::Operator, 0).to_text(),
                inbox: None,
            },
            name: "fleet-operator".into(),
        };
        let (first, ip) = ready_pod(&pods, "fleet-nats-0", None).await;
        let connection = fleet_kv::Connection::open(&operator(ip), |_| {}).await.unwrap();
        let buckets = connection.create_buckets().await.unwrap();
        fleet_kv::overwrite(&buckets.devices, "d1", b"registered before", None)
            .await
            .unwrap();
        drop((buckets, connection));

        pods.delete("fleet-nats-0", &DeleteParams::default()).await.unwrap();
        let (_, ip) = ready_pod(&pods, "fleet-nats-0", Some(&first)).await;
        let connection = fleet_kv::Connection::open(&operator(ip), |_| {}).await.unwrap();
        let buckets = connection.buckets().await.expect("the buckets are still there");
        let kept = buckets.devices.get("d1").await.unwrap();
        assert_eq!(kept.as_deref(), Some(&b"registered before"[..]), "the key is still there");
    });
}

/// A control plane of its own whose kubelet runs NATS's image for real, and the `k8s`
/// topology on it (the directory holds its kubeconfig and state).
fn running_nats() -> (tempfile::TempDir, TestCluster, K8s) {
    let dirs = tempfile::tempdir().unwrap();
    let cluster = TestCluster::dedicated(harmony_test_cluster::Options::default()).unwrap();
    cluster.hold_image(NATS_IMAGE, nats_program());
    cluster.write_kubeconfig(&dirs.path().join("kubeconfig")).unwrap();
    let k8s = K8s::new(Settings::for_kubeconfig(&dirs.path().join("kubeconfig"), &dirs.path().join("state")).unwrap());
    (dirs, cluster, k8s)
}

/// The pod `name` once it is ready, with another uid than `not` (its predecessor's): its uid and IP.
async fn ready_pod(pods: &Api<harmony::k8s_openapi::api::core::v1::Pod>, name: &str, not: Option<&str>) -> (String, String) {
    for _ in 0..600 {
        if let Some(pod) = pods.get_opt(name).await.unwrap() {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let status = pod.status.unwrap_or_default();
            let ready = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            if ready
                && Some(uid.as_str()) != not
                && pod.metadata.deletion_timestamp.is_none()
                && let Some(ip) = status.pod_ip
            {
                return (uid, ip);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("pod {name} is not ready after 60 s");
}

/// A clustered NATS from the same Score (`clustered(3)`): three servers that find each other by
/// name under the headless Service, one cluster, the fleet's buckets kept in three copies; with
/// one server's pod deleted, the fleet's keys are still read and written, and the server the
/// StatefulSet starts in its place has every key. NATS's image runs for real, three times.
#[test]
fn a_clustered_nats_forms_one_cluster_and_outlives_one_server() {
    use harmony::k8s_openapi::api::core::v1::Pod;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (_dirs, cluster, k8s) = running_nats();
    let authority = Authority::generate();
    let ns = "fleet-clustered";
    let mut server = fleet::FleetNatsServer::new(ns, Secret::new(authority.to_text()));
    server.nats = server.nats.clustered(3);
    let client = cluster.client();
    runtime.block_on(async {
        engine::plan_and_apply("fleet-nats", &server, &k8s, Arc::new(Silent))
            .await
            .unwrap_or_else(|e| panic!("{e}: {}", harmony::Diagnostic::notes(&e).join("; ")));
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        let mut ips = Vec::new();
        let mut first = String::new();
        for i in 0..3 {
            let (uid, ip) = ready_pod(&pods, &format!("fleet-nats-{i}"), None).await;
            if i == 0 {
                first = uid;
            }
            ips.push(ip);
        }
        let operator = |urls: &[String]| fleet_kv::Settings {
            url: urls.iter().map(|ip| format!("nats://{ip}:4222")).collect::<Vec<_>>().join(","),
            login: fleet_kv::Login::Credentials {
                text: authority.credentials(&Role::Operator, 0).to_text(),
                inbox: None,
            },
            name: "fleet-operator".into(),
        };
        let connection = fleet_kv::Connection::open(&operator(&ips[1..]), |_| {}).await.unwrap();
        assert!(connection.client.server_info().cluster.is_some(), "the server is in a cluster");
        let buckets = connection.create_buckets().await.unwrap();
        let status = buckets.devices.status().await.unwrap();
        assert_eq!(status.info.config.num_replicas, 3, "three copies of each bucket");
        let peers = status.info.cluster.map(|c| c.replicas.len()).unwrap_or_default();
        assert_eq!(peers, 2, "the leader and two replicas, on three servers");
        fleet_kv::overwrite(&buckets.devices, "d1", b"before", None).await.unwrap();

        // One server goes: the others carry on.
        pods.delete("fleet-nats-0", &DeleteParams::default()).await.unwrap();
        fleet_kv::overwrite(&buckets.devices, "d2", b"while one server is away", None)
            .await
            .unwrap();
        assert_eq!(buckets.devices.get("d1").await.unwrap().as_deref(), Some(&b"before"[..]));

        // Its successor has every key, read from it alone.
        let (_, ip) = ready_pod(&pods, "fleet-nats-0", Some(&first)).await;
        let alone = fleet_kv::Connection::open(&operator(&[ip]), |_| {}).await.unwrap();
        // Running is not caught up: a server that just joined answers for the buckets once its
        // JetStream has the cluster's state (the test kubelet runs no readiness probe).
        let mut opened = alone.buckets().await;
        for _ in 0..60 {
            if opened.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            opened = alone.buckets().await;
        }
        let buckets = opened.unwrap();
        for (key, value) in [("d1", &b"before"[..]), ("d2", &b"while one server is away"[..])] {
            let mut got = None;
            for _ in 0..100 {
                got = buckets.devices.get(key).await.ok().flatten();
                if got.as_deref() == Some(value) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(got.as_deref(), Some(value), "{key} on the server started in place of the first");
        }
    });
}
