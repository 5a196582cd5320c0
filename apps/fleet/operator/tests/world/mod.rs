//! The world the operator's tests and its benchmark run in: the real control plane with the
//! FleetDeployment CRD and a namespace of the world's own (operators watch only it), a real
//! nats-server (or a cluster of them) that trusts the world's NATS authority, with the fleet's
//! buckets, agents run in this process, and operators. Every party logs in with credentials of
//! its own (ADR 0023): each agent as its device, so everything the tests see an agent do, NATS
//! allowed that device to do.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use fleet_agent::agent::{self, Config};
use fleet_agent::process::Timings;
use fleet_kv::{Buckets, Connection};
use fleet_model::Resource;
use fleet_operator::controller::{self, Context};
use fleet_operator::crd::{FleetDeployment, FleetDeploymentSpec, FleetDeploymentStatus};
use fleet_operator::view;
use fleet_testing::Nats;
use harmony_test_cluster::TestCluster;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, CustomResourceExt as _};
use tokio::sync::oneshot;

/// A cluster with the CRD and a namespace, a NATS with the buckets, and
/// agents registered with their labels.
pub struct World {
    pub cluster: TestCluster,
    /// The namespace of the world's FleetDeployments.
    pub ns: String,
    pub nats: Nats,
    /// The keys that vouch for every party on the world's NATS.
    pub authority: fleet_kv::identity::Authority,
    pub client: kube::Client,
    connection: Connection,
    pub buckets: Buckets,
    devices: tempfile::TempDir,
    agents: Vec<oneshot::Sender<()>>,
    /// How often the agents report when nothing changes.
    pub heartbeat: Duration,
}

impl World {
    pub async fn new(devices: &[(&str, &[(&str, &str)])]) -> Self {
        let mut world = Self::empty(Duration::from_millis(500)).await;
        for (id, labels) in devices {
            world.start_agent(id, labels);
        }
        for (id, _) in devices {
            world.until_registered(id).await;
        }
        world
    }

    /// No agents yet; they report every `heartbeat` when nothing changes.
    pub async fn empty(heartbeat: Duration) -> Self {
        Self::empty_on(heartbeat, 1).await
    }

    /// [`World::empty`], on `nodes` NATS servers (a cluster when more than one).
    pub async fn empty_on(heartbeat: Duration, nodes: usize) -> Self {
        let authority = fleet_kv::identity::Authority::generate();
        let nats = Nats::trusting(nodes, &authority);
        let cluster = TestCluster::start().unwrap();
        let client = cluster.client();
        // The CRD is cluster-wide: every world applies the same one.
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.patch(
            "fleetdeployments.fleet.harmony.deploy",
            &PatchParams::apply("fleet-tests").force(),
            &Patch::Apply(&FleetDeployment::crd()),
        )
        .await
        .unwrap();
        let ns = cluster.ns("fleet");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        namespaces.create(&PostParams::default(), &namespace).await.unwrap();
        // Wait until the CRD serves.
        let api: Api<FleetDeployment> = Api::namespaced(client.clone(), &ns);
        for _ in 0..100 {
            if api.list(&Default::default()).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let operator = authority.credentials(&fleet_kv::identity::Role::Operator, 0);
        let connection = Connection::open(&nats.login(&operator, None, "test"), |_| {}).await.unwrap();
        let buckets = create_buckets(&connection).await;
        World {
            cluster,
            ns,
            nats,
            authority,
            client,
            connection,
            buckets,
            devices: devices_dir(),
            agents: Vec::new(),
            heartbeat,
        }
    }

    /// Each simulated device's own filesystem: where its agent writes a
    /// manifest's `/x` (`Policy::on_host`), created empty.
    pub fn filesystem_of(&self, id: &str) -> std::path::PathBuf {
        let dir = self.devices.path().join(id).join("fs");
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Where device `id` holds the file a manifest names `path`.
    pub fn file_on(&self, id: &str, path: &std::path::Path) -> std::path::PathBuf {
        self.filesystem_of(id).join(path.strip_prefix("/").unwrap())
    }

    pub fn start_agent(&mut self, id: &str, labels: &[(&str, &str)]) {
        let config = Config {
            nats: self
                .nats
                .login(&self.authority.device(id).unwrap(), Some(fleet_kv::identity::inbox_prefix(id)), id),
            device: id.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            trust: fleet_testing::operator_key().public(),
            state: self.devices.path().join(id),
            files: fleet_agent::files::Policy::under(["/"]).on_host(self.filesystem_of(id)),
            programs: fleet_agent::process::Programs::allowing(["sleep"]).unwrap(),
            heartbeat: self.heartbeat,
            timings: Timings {
                settle: Duration::from_millis(100),
                grace: Duration::from_secs(2),
                backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(400),
                stable: Duration::from_secs(30),
            },
        };
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(agent::run(config, async {
            let _ = stopped.await;
        }));
        self.agents.push(stop);
    }

    /// Start an agent for each of `ids`, all with `labels`, and return once every one has
    /// registered.
    pub async fn start_registered(&mut self, ids: &[String], labels: &[(&str, &str)]) {
        for id in ids {
            self.start_agent(id, labels);
        }
        for id in ids {
            self.until_registered(id).await;
        }
    }

    /// Stop every agent started so far; their devices fall silent.
    pub fn stop_agents(&mut self) {
        for stop in self.agents.drain(..) {
            let _ = stop.send(());
        }
    }

    pub async fn until_registered(&self, id: &str) {
        for _ in 0..200 {
            if fleet_kv::read(&self.buckets.devices, id).await.unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{id} never registered");
    }

    /// Start an operator; it stops when the sender is dropped or sent to.
    pub fn start_operator(&self) -> oneshot::Sender<()> {
        self.start_operator_silent_after(Duration::from_secs(30))
    }

    /// An operator for which a device without a report for `silence` is silent.
    pub fn start_operator_silent_after(&self, silence: Duration) -> oneshot::Sender<()> {
        let key = fleet_testing::operator_key();
        let signer = Arc::new(fleet_model::signed::SigningKey::from_text(&key.to_text()).unwrap());
        let context = Arc::new(Context {
            client: self.client.clone(),
            fleet: view::watch_buckets(&self.buckets, key.public()),
            nats: self.connection.clone(),
            buckets: self.buckets.clone(),
            signer,
            told: Default::default(),
            silence,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        // As the binary does: the buckets made again whenever NATS has lost them.
        let keeper = tokio::spawn(controller::keep_buckets(self.connection.clone(), Duration::from_millis(500)));
        // An operator of this world's namespace: other tests' worlds share the control plane.
        tokio::spawn(controller::run(
            Api::namespaced(self.client.clone(), &self.ns),
            context,
            async move {
                let _ = stopped.await;
                keeper.abort();
            },
        ));
        stop
    }

    pub fn api(&self) -> Api<FleetDeployment> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    pub async fn apply(&self, name: &str, selector: &[(&str, &str)], resources: Vec<Resource>) {
        let fd = FleetDeployment::new(
            name,
            FleetDeploymentSpec {
                selector: selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                resources,
            },
        );
        self.api()
            .patch(name, &PatchParams::apply("fleet-tests").force(), &Patch::Apply(&fd))
            .await
            .unwrap();
    }

    /// Poll the resource's status until `done` says so (at most 20 s).
    pub async fn status_until(&self, name: &str, done: impl Fn(&FleetDeploymentStatus) -> bool) -> FleetDeploymentStatus {
        status_until(&self.api(), name, done).await
    }

    /// Who wrote the manifest `device` holds (`None`: none, or withdrawn).
    pub async fn manifest_owner(&self, device: &str) -> Option<String> {
        let (bytes, _) = fleet_kv::read(&self.buckets.manifests, device).await.unwrap()?;
        let signed = fleet_testing::operator_key().public().open(device, &bytes).unwrap();
        signed.manifest?.owner
    }
}

/// The fleet's buckets, made through `connection` as the operator makes them: a cluster that
/// has just elected its leader may still refuse for a moment.
pub async fn create_buckets(connection: &Connection) -> Buckets {
    let mut tries = 0;
    loop {
        match connection.create_buckets().await {
            Ok(buckets) => return buckets,
            Err(e) if e.is_transient() && tries < 40 => tries += 1,
            Err(e) => panic!("the buckets: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Poll a FleetDeployment's status until `done` says so (at most 20 s).
pub async fn status_until(api: &Api<FleetDeployment>, name: &str, done: impl Fn(&FleetDeploymentStatus) -> bool) -> FleetDeploymentStatus {
    let mut last = None;
    for _ in 0..400 {
        if let Ok(fd) = api.get(name).await
            && let Some(status) = fd.status
        {
            if done(&status) {
                return status;
            }
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{name} never got there: {last:#?}");
}

/// Where the simulated devices keep their state and filesystems: on tmpfs
/// where there is one, so that a benchmark measures NATS and the agents.
fn devices_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    }
}
