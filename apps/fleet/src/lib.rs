//! Deploying the fleet: one Score per component, composed.
//!
//! - [`FleetNatsScore`]: NATS with JetStream and user/password auth; its
//!   smoke test connects to the live server (a port-forward through the API
//!   server), logs in and does a KV round trip.
//! - [`FleetOperatorScore`]: the operator's CustomResourceDefinition, RBAC
//!   and Deployment, built from typed Rust. The operator signs every
//!   manifest with a key it makes on first start and keeps in a Secret
//!   ([`SIGNING_KEY_SECRET`]); its public half, which devices trust, is in
//!   the ConfigMap [`MANIFEST_KEY_CONFIGMAP`] beside it.
//! - [`FleetAgentScore`]: one device's agent, on a target
//!   ([`FleetAgentTarget`]).
//! - [`FleetServerScore`]: NATS, then the operator, each gated by its
//!   verification and smoke test; [`FleetNatsServer`], NATS alone.
//!
//! The apps: `fleet-nats` (NATS in namespace `fleet`), `fleet-operator`
//! and `fleet-agent` (each released with its image and chart). They do not
//! share an object: an object has one owner, and `apply` without names
//! deploys them all.
//!
//! The runtime binaries (`apps/fleet/{agent,operator}`) do not depend on
//! this crate nor on harmony: they ship to devices and pods alone.

use std::collections::BTreeMap;

pub mod nats;

use harmony::cluster::Place;
use harmony::helm::Helm;
use harmony::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use harmony::k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    PodSpec, PodTemplateSpec, Probe, Secret as K8sSecret, SecretKeySelector, Service, ServiceAccount, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use harmony::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject};
use harmony::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use harmony::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use harmony::release::{ChartRef, ReleaseCx};
use harmony::{Desired, K8sClient, ObjectRef, Render, RenderCx, Score, ScoreError, Secret, SmokeError};

/// The NATS client port.
pub const NATS_PORT: i32 = 4222;
/// The Secret, in the operator's namespace, where the operator keeps the key
/// that signs every manifest (it makes it on first start).
pub const SIGNING_KEY_SECRET: &str = "fleet-operator-signing-key";
pub use fleet_model::signed::MANIFEST_KEY_CONFIGMAP;
/// The NATS monitoring port (`/healthz`, `/varz`).
pub const NATS_MONITOR_PORT: i32 = 8222;

/// NATS with JetStream and user/password auth, smoke-tested live.
///
/// A ConfigMap with its configuration (no secret in it), a Secret with the
/// credentials, a Deployment and a Service (client and monitoring ports).
#[derive(Score, Clone, Debug)]
#[score(requires(K8sClient), smoke = Self::smoke)]
pub struct FleetNatsScore {
    pub namespace: String,
    /// The name of every object, and of the Service agents connect to.
    pub name: String,
    pub image: String,
    pub user: String,
    /// Never printed: plans show only that it changed.
    #[score(secret)]
    pub password: Secret<String>,
}

impl FleetNatsScore {
    pub fn new(namespace: &str, password: Secret<String>) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: "fleet-nats".into(),
            image: "docker.io/library/nats:2.10-alpine".into(),
            user: "fleet".into(),
            password,
        }
    }

    /// `nats://<service>.<namespace>:4222`, what agents and the operator dial.
    pub fn url(&self) -> String {
        format!("nats://{}.{}:{NATS_PORT}", self.name, self.namespace)
    }

    fn service(&self) -> ObjectRef {
        ObjectRef {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some(self.namespace.clone()),
            name: self.name.clone(),
        }
    }

    /// The live server, as the agents and the operator meet it: a
    /// connection to the Service's client port (a port-forward through the
    /// API server), auth and JetStream on, a login with the Score's
    /// credentials, and a KV round trip (bucket [`nats::SMOKE_BUCKET`]).
    async fn smoke<T: K8sClient>(&self, topology: &T) -> Result<(), SmokeError> {
        let what = format!("a KV round trip with NATS at Service {}", self.name);
        let mut attempt = 0;
        let conn = loop {
            attempt += 1;
            match topology.connect(&self.service(), "client").await {
                Ok(conn) => break conn,
                // The pod may still be taking its first breath.
                Err(_) if attempt < 5 => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                Err(e) => return Err(SmokeError::new(what, e.to_string()).with_help(harmony::Diagnostic::help(&e))),
            }
        };
        nats::round_trip(conn, &self.user, self.password.expose(), std::time::Duration::from_secs(20))
            .await
            .map_err(|f| SmokeError::new(format!("{what} ({})", f.step), f.why).with_help(f.help))
    }
}

impl Render for FleetNatsScore {
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        check_name("name", &self.name)?;
        let labels = labels(&self.name);
        let config = format!(
            "listen: 0.0.0.0:{NATS_PORT}\nhttp: 0.0.0.0:{NATS_MONITOR_PORT}\njetstream {{ store_dir: /data }}\n\
             authorization {{ user: \"{}\", password: $NATS_PASSWORD }}\n",
            self.user
        );
        let mut d = Desired::new();
        d.push(&ConfigMap {
            metadata: meta(&self.namespace, &self.name),
            data: Some(BTreeMap::from([("nats.conf".to_owned(), config)])),
            ..Default::default()
        })?;
        let password = self.password.value("the fleet's NATS password", cx)?;
        d.push(&credentials_secret(&self.namespace, &self.name, &self.user, password))?;
        let container = Container {
            name: "nats".into(),
            image: Some(self.image.clone()),
            args: Some(vec!["-c".into(), "/etc/nats/nats.conf".into()]),
            ports: Some(vec![port("client", NATS_PORT), port("monitor", NATS_MONITOR_PORT)]),
            env: Some(vec![password_env("NATS_PASSWORD", &self.name)]),
            readiness_probe: Some(Probe {
                http_get: Some(HTTPGetAction {
                    path: Some("/healthz?js-enabled-only=true".into()),
                    port: IntOrString::String("monitor".into()),
                    ..Default::default()
                }),
                period_seconds: Some(5),
                ..Default::default()
            }),
            volume_mounts: Some(vec![mount("config", "/etc/nats"), mount("data", "/data")]),
            ..Default::default()
        };
        let volumes = vec![
            Volume {
                name: "config".into(),
                config_map: Some(ConfigMapVolumeSource {
                    name: self.name.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            Volume {
                name: "data".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
        ];
        d.push(&deployment(&self.namespace, &self.name, &labels, container, volumes, None))?;
        d.push(&Service {
            metadata: meta(&self.namespace, &self.name),
            spec: Some(ServiceSpec {
                selector: Some(labels),
                ports: Some(vec![service_port("client", NATS_PORT), service_port("monitor", NATS_MONITOR_PORT)]),
                ..Default::default()
            }),
            ..Default::default()
        })?;
        Ok(d)
    }
}

/// A chart in a registry, installed at a pinned version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedChart {
    /// `oci://registry/path/fleet-operator`
    pub url: String,
    pub version: String,
}

/// The fleet's operator: its CRD, RBAC and Deployment, from typed Rust.
///
/// The CustomResourceDefinition (`FleetDeployment`), a ServiceAccount with a
/// ClusterRole to read them and write their status, and its Deployment,
/// which logs into NATS with the credentials of [`FleetNatsScore`]'s Secret.
#[derive(Score, Clone, Debug)]
pub struct FleetOperatorScore {
    pub namespace: String,
    pub image: String,
    /// The NATS the operator dials (`FleetNatsScore::url`).
    pub nats_url: String,
    pub nats_user: String,
    /// Kept in a Secret of the operator's own. Never printed.
    #[score(secret)]
    pub nats_password: Secret<String>,
    /// `None`: the operator's objects from this crate's source. `Some`: the
    /// published chart at its pinned version, pulled and rendered by helm,
    /// moved into `namespace`, with these credentials; the image and NATS
    /// address are the ones the chart was released with.
    pub chart: Option<PublishedChart>,
}

impl FleetOperatorScore {
    /// The operator of one release of `fleet-operator`, dialing the NATS of
    /// the `fleet-nats` app.
    pub fn release(cx: &ReleaseCx) -> Self {
        Self::new("fleet", &cx.image.to_string(), &FleetNatsScore::new("fleet", nats_password()))
    }

    pub fn new(namespace: &str, image: &str, nats: &FleetNatsScore) -> Self {
        Self {
            namespace: namespace.to_owned(),
            image: image.to_owned(),
            nats_url: nats.url(),
            nats_user: nats.user.clone(),
            nats_password: nats.password.clone(),
            chart: None,
        }
    }
}

/// The operator's CustomResourceDefinition, generated from its types by
/// `fleet-operator` and checked in there (its test keeps the two equal).
pub const CRD_JSON: &str = include_str!("../operator/crd.json");

impl Render for FleetOperatorScore {
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        let name = "fleet-operator";
        if let Some(chart) = &self.chart {
            return self.published(name, chart, cx);
        }
        let labels = labels(name);
        let crd: CustomResourceDefinition = serde_json::from_str(CRD_JSON).map_err(|e| {
            ScoreError::invalid(
                "the FleetDeployment CRD",
                format!("it does not parse: {e}"),
                "regenerate it (FLEET_UPDATE_CRD=1)",
            )
        })?;
        let mut d = Desired::new();
        d.push(&crd)?;
        let credentials = format!("{name}-nats");
        d.push(&credentials_secret(
            &self.namespace,
            &credentials,
            &self.nats_user,
            self.nats_password.value("the fleet's NATS password", cx)?,
        ))?;
        d.push(&ServiceAccount {
            metadata: meta(&self.namespace, name),
            ..Default::default()
        })?;
        let group = "fleet.harmony.deploy".to_owned();
        let rule = |resources: &[&str], verbs: &[&str]| PolicyRule {
            api_groups: Some(vec![group.clone()]),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        };
        // Cluster-scoped, so one operator per cluster: named after its namespace.
        let cluster_name = format!("{name}-{}", self.namespace);
        d.push(&ClusterRole {
            metadata: cluster_meta(&cluster_name),
            rules: Some(vec![
                rule(&["fleetdeployments"], &["get", "list", "watch", "patch", "update"]),
                rule(&["fleetdeployments/status"], &["get", "patch", "update"]),
            ]),
            ..Default::default()
        })?;
        let subjects = Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: name.into(),
            namespace: Some(self.namespace.clone()),
            ..Default::default()
        }]);
        d.push(&ClusterRoleBinding {
            metadata: cluster_meta(&cluster_name),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: cluster_name.clone(),
            },
            subjects: subjects.clone(),
        })?;
        // Its key: the Secret it makes on first start and reads after, and
        // the ConfigMap where it publishes the public half.
        let core = |resources: &[&str], names: &[&str], verbs: &[&str]| PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(resources.iter().map(|r| r.to_string()).collect()),
            resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
            verbs: verbs.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        };
        let keys = format!("{name}-keys");
        d.push(&Role {
            metadata: meta(&self.namespace, &keys),
            rules: Some(vec![
                core(&["secrets"], &[SIGNING_KEY_SECRET], &["get"]),
                // `create` cannot be limited by name: Kubernetes checks it before the object has one.
                core(&["secrets", "configmaps"], &[], &["create"]),
                core(&["configmaps"], &[MANIFEST_KEY_CONFIGMAP], &["get", "patch"]),
            ]),
        })?;
        d.push(&RoleBinding {
            metadata: meta(&self.namespace, &keys),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: keys.clone(),
            },
            subjects,
        })?;
        let container = Container {
            name: name.into(),
            image: Some(self.image.clone()),
            args: Some(vec![
                "--nats".into(),
                self.nats_url.clone(),
                "--signing-key-secret".into(),
                SIGNING_KEY_SECRET.into(),
            ]),
            env: Some(credentials_env(&credentials)),
            ..Default::default()
        };
        d.push(&deployment(&self.namespace, name, &labels, container, Vec::new(), Some(name)))?;
        Ok(d)
    }
}

impl FleetOperatorScore {
    /// The objects of the published chart: its Secret filled with these
    /// credentials, everything moved into this Score's namespace.
    fn published(&self, name: &str, chart: &PublishedChart, cx: &RenderCx) -> Result<Desired, ScoreError> {
        let what = format!("chart {} {}", chart.url, chart.version);
        let fail = |e: &dyn harmony::Diagnostic, why: String| ScoreError::invalid(what.clone(), why, e.help());
        let reference = ChartRef::parse(&chart.url, &chart.version).map_err(|e| fail(&e, e.to_string()))?;
        let values = serde_json::json!({"secrets": {format!("{name}-nats"): {
            "user": self.nats_user,
            "password": self.nats_password.value("the fleet's NATS password", cx)?,
        }}});
        let rendered = Helm::find()
            .and_then(|helm| helm.render(&reference, name, Some(&self.namespace), &values))
            .map_err(|e| fail(&e, e.to_string()))?;
        let place = Place {
            context: None,
            namespace: Some(self.namespace.clone()),
        };
        let objects = place.place(&rendered.objects).map_err(|why| {
            ScoreError::invalid(
                what.clone(),
                why,
                "publish the operator's chart from `FleetOperatorScore` (one namespace)",
            )
        })?;
        let mut d = Desired::new();
        for object in objects {
            d.push_object(object);
        }
        Ok(d)
    }
}

/// Where an agent runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FleetAgentTarget {
    /// A pod on the cluster: a device simulated, or a node's own agent.
    Pod,
    // To come: `Vm { host, ssh }`, the agent installed on a virtual machine
    // as a system service. The Score stays the same; only the target moves.
}

/// One device's agent.
#[derive(Score, Clone, Debug)]
pub struct FleetAgentScore {
    pub namespace: String,
    /// The device's id: its key in the fleet's buckets.
    pub device: String,
    /// What FleetDeployments select it by.
    pub labels: BTreeMap<String, String>,
    pub image: String,
    pub nats_url: String,
    pub nats_user: String,
    /// Kept in a Secret of the agent's own. Never printed.
    #[score(secret)]
    pub nats_password: Secret<String>,
    pub target: FleetAgentTarget,
    /// The directories the fleet may write files under on the device
    /// (`--file-root`); none: the device takes no `File` resources.
    pub file_roots: Vec<String>,
    /// The programs the fleet may run on the device (`--allow-program`);
    /// none: the device runs no processes.
    pub programs: Vec<String>,
    /// The operator's public key the device trusts (`ed25519:…`, from
    /// `fleet-operator public-key`). `None`: the one the operator publishes
    /// in the ConfigMap [`MANIFEST_KEY_CONFIGMAP`] of `namespace`, given to
    /// the pod as a file (the agent waits for it, then pins it).
    pub manifest_key: Option<String>,
}

impl FleetAgentScore {
    pub fn new(namespace: &str, device: &str, image: &str, nats: &FleetNatsScore) -> Self {
        Self {
            namespace: namespace.to_owned(),
            device: device.to_owned(),
            labels: BTreeMap::new(),
            image: image.to_owned(),
            nats_url: nats.url(),
            nats_user: nats.user.clone(),
            nats_password: nats.password.clone(),
            target: FleetAgentTarget::Pod,
            file_roots: vec![FleetAgentScore::FILES.to_owned()],
            programs: Vec::new(),
            manifest_key: None,
        }
    }

    /// Where a pod's agent may write files by default: a directory of its state volume.
    pub const FILES: &'static str = "/var/lib/fleet-agent/files";

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.insert(key.to_owned(), value.to_owned());
        self
    }

    /// The agent of one device, for a release of `fleet-agent`.
    pub fn release(cx: &ReleaseCx) -> Self {
        Self::new(
            "fleet",
            "device-1",
            &cx.image.to_string(),
            &FleetNatsScore::new("fleet", nats_password()),
        )
    }
}

impl Render for FleetAgentScore {
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        check_name("device", &self.device)?;
        let FleetAgentTarget::Pod = self.target;
        let name = format!("fleet-agent-{}", self.device.to_lowercase());
        let mut args = vec!["--nats".to_owned(), self.nats_url.clone(), "--device".into(), self.device.clone()];
        for (k, v) in &self.labels {
            args.extend(["--label".to_owned(), format!("{k}={v}")]);
        }
        args.extend(["--state-dir".to_owned(), "/var/lib/fleet-agent".to_owned()]);
        for root in &self.file_roots {
            args.extend(["--file-root".to_owned(), root.clone()]);
        }
        for program in &self.programs {
            args.extend(["--allow-program".to_owned(), program.clone()]);
        }
        let mut volumes = vec![Volume {
            name: "state".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        }];
        let mut mounts = vec![mount("state", "/var/lib/fleet-agent")];
        match &self.manifest_key {
            Some(key) => {
                key.parse::<fleet_model::signed::ManifestKey>().map_err(|e| {
                    ScoreError::invalid(
                        format!("the manifest key of device `{}`", self.device),
                        e.to_string(),
                        "give the operator's public key, as `fleet-operator public-key FILE` prints it, or `None` for the one it publishes",
                    )
                })?;
                args.extend(["--manifest-key".to_owned(), key.clone()]);
            }
            None => {
                // Optional: the pod starts before the operator has published its key, and the
                // agent waits for the file (the kubelet fills it in once the ConfigMap exists).
                volumes.push(Volume {
                    name: "trust".into(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: MANIFEST_KEY_CONFIGMAP.into(),
                        optional: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
                mounts.push(mount("trust", "/etc/fleet-agent/trust"));
                let file = format!("/etc/fleet-agent/trust/{}", fleet_model::signed::MANIFEST_KEY_ENTRY);
                args.extend(["--manifest-key-file".to_owned(), file]);
            }
        }
        let container = Container {
            name: "agent".into(),
            image: Some(self.image.clone()),
            args: Some(args),
            env: Some(credentials_env(&format!("{name}-nats"))),
            volume_mounts: Some(mounts),
            ..Default::default()
        };
        let mut d = Desired::new();
        d.push(&credentials_secret(
            &self.namespace,
            &format!("{name}-nats"),
            &self.nats_user,
            self.nats_password.value("the fleet's NATS password", cx)?,
        ))?;
        d.push(&deployment(&self.namespace, &name, &labels(&name), container, volumes, None))?;
        Ok(d)
    }
}

/// The namespace the fleet's server lives in.
#[derive(Score, Clone, Debug)]
pub struct FleetNamespace {
    pub name: String,
    /// Labels of its own, besides the fleet's (e.g. to find test namespaces).
    pub labels: BTreeMap<String, String>,
}

impl Render for FleetNamespace {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        check_name("namespace", &self.name)?;
        let mut d = Desired::new();
        let mut metadata = cluster_meta(&self.name);
        metadata.labels.get_or_insert_default().extend(self.labels.clone());
        d.push(&Namespace {
            metadata,
            ..Default::default()
        })?;
        Ok(d)
    }
}

/// The fleet's NATS in its own namespace: what the `fleet-nats` app deploys.
/// The operator is an app of its own (`fleet-operator`), applied after it.
#[derive(Score, Clone, Debug)]
pub struct FleetNatsServer {
    #[score(child)]
    pub namespace: FleetNamespace,
    #[score(child)]
    pub nats: FleetNatsScore,
}

impl FleetNatsServer {
    pub fn new(namespace: &str, password: Secret<String>) -> Self {
        Self {
            namespace: FleetNamespace {
                name: namespace.to_owned(),
                labels: BTreeMap::new(),
            },
            nats: FleetNatsScore::new(namespace, password),
        }
    }
}

/// The fleet's server: its namespace, NATS, then the operator, in order.
///
/// Each is verified and smoke-tested before the next starts.
#[derive(Score, Clone, Debug)]
pub struct FleetServerScore {
    #[score(child)]
    pub namespace: FleetNamespace,
    #[score(child)]
    pub nats: FleetNatsScore,
    #[score(child)]
    pub operator: FleetOperatorScore,
}

impl FleetServerScore {
    pub fn new(namespace: &str, operator_image: &str, nats_password: Secret<String>) -> Self {
        let FleetNatsServer { namespace: ns, nats } = FleetNatsServer::new(namespace, nats_password);
        let operator = FleetOperatorScore::new(namespace, operator_image, &nats);
        Self {
            namespace: ns,
            nats,
            operator,
        }
    }
}

harmony::app! {
    /// The fleet's NATS on a cluster, in namespace `fleet` (the operator's
    /// app, `fleet-operator`, dials it). Its smoke test asks the live server.
    name: "fleet-nats",
    score: crate::FleetNatsServer::new("fleet", crate::nats_password()),
    topologies: [harmony_k8s::K8s, harmony::Ci],
}

harmony::app! {
    /// The operator, released: its image and its chart (CRD, RBAC, Deployment).
    name: "fleet-operator",
    image: Dockerfile("operator/image/Dockerfile", "operator/image", binaries: ["fleet-operator"]),
    chart: builder(crate::FleetOperatorScore::release),
    stages: [staging, production],
}

harmony::app! {
    /// One device's agent.
    name: "fleet-agent",
    image: Dockerfile("agent/image/Dockerfile", "agent/image", binaries: ["fleet-agent"]),
    chart: builder(crate::FleetAgentScore::release),
    stages: [staging, production],
}

/// The fleet's NATS password for a release or `apply`: `FLEET_NATS_PASSWORD`,
/// which must be set wherever the password would leave this machine (no
/// default: [`Secret::value`] says which variable is missing).
fn nats_password() -> Secret<String> {
    Secret::required_env("FLEET_NATS_PASSWORD")
}

/// A component's own copy of the NATS credentials.
fn credentials_secret(namespace: &str, name: &str, user: &str, password: &str) -> K8sSecret {
    K8sSecret {
        metadata: meta(namespace, name),
        string_data: Some(BTreeMap::from([
            ("user".to_owned(), user.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ])),
        ..Default::default()
    }
}

/// `FLEET_NATS_USER` and `FLEET_NATS_PASSWORD` from a credentials Secret.
fn credentials_env(secret: &str) -> Vec<EnvVar> {
    vec![
        secret_env("FLEET_NATS_USER", secret, "user"),
        password_env("FLEET_NATS_PASSWORD", secret),
    ]
}

fn check_name(what: &str, name: &str) -> Result<(), ScoreError> {
    let ok = !name.is_empty()
        && name.len() <= 52
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ScoreError::invalid(
            format!("{what} `{name}`"),
            "it names Kubernetes objects, which take letters, digits and `-` (at most 52)",
            "use a DNS label such as `sensor-07`",
        ))
    }
}

fn labels(name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), name.to_owned()),
        ("app.kubernetes.io/part-of".to_owned(), "fleet".to_owned()),
    ])
}

fn meta(namespace: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels(name)),
        ..Default::default()
    }
}

fn cluster_meta(name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(labels(name)),
        ..Default::default()
    }
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: number,
        ..Default::default()
    }
}

fn service_port(name: &str, number: i32) -> ServicePort {
    ServicePort {
        name: Some(name.into()),
        port: number,
        target_port: Some(IntOrString::String(name.into())),
        ..Default::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn secret_env(var: &str, secret: &str, key: &str) -> EnvVar {
    EnvVar {
        name: var.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret.into(),
                key: key.into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn password_env(var: &str, secret: &str) -> EnvVar {
    secret_env(var, secret, "password")
}

fn deployment(
    namespace: &str,
    name: &str,
    labels: &BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
    service_account: Option<&str>,
) -> Deployment {
    Deployment {
        metadata: meta(namespace, name),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: (!volumes.is_empty()).then_some(volumes),
                    service_account_name: service_account.map(str::to_owned),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}
