//! Deploying the fleet: one Score per component, composed.
//!
//! - [`FleetNatsScore`]: NATS with JetStream, trusting the fleet's
//!   authority (ADR 0023): every party logs in with credentials of its own,
//!   which the authority signs, and NATS enforces what each may do. Its
//!   smoke test connects to the live server (a port-forward through the API
//!   server), logs in with the operator's credentials and does a KV round
//!   trip.
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
//! Each Score that needs credentials is given the authority (the text
//! `fleet-operator nats-authority` writes, from `FLEET_NATS_AUTHORITY`) and
//! renders its party's own into its Secret: derived, so the same on every
//! render. The authority itself never reaches the cluster.
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
use harmony::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use harmony::k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, HTTPGetAction, Namespace,
    ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, PodTemplateSpec, Probe, Secret as K8sSecret,
    SecretVolumeSource, Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use harmony::k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role as RbacRole, RoleBinding, RoleRef, Subject};
use harmony::k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use harmony::k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use harmony::k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use harmony::release::{ChartRef, ReleaseCx};
use harmony::{Desired, K8sClient, ObjectRef, Render, RenderCx, Score, ScoreError, Secret, SmokeError};

pub use fleet_model::identity::{Authority, Revocations, Role};

/// The NATS client port.
pub const NATS_PORT: i32 = 4222;
/// The Secret, in the operator's namespace, where the operator keeps the key
/// that signs every manifest (it makes it on first start).
pub const SIGNING_KEY_SECRET: &str = "fleet-operator-signing-key";
pub use fleet_model::signed::MANIFEST_KEY_CONFIGMAP;
/// The port NATS's servers route to each other on, in a cluster.
pub const NATS_CLUSTER_PORT: i32 = 6222;
/// The NATS monitoring port (`/healthz`, `/varz`).
pub const NATS_MONITOR_PORT: i32 = 8222;

/// NATS with JetStream, trusting the fleet's authority, smoke-tested live.
///
/// A ConfigMap with its configuration (public keys and JWTs only: no secret
/// in it), a StatefulSet whose pod keeps JetStream and the accounts on a
/// persistent volume of its own (a claim of [`FleetNatsScore::storage`], of
/// the cluster's default class), a Service (client and monitoring ports) and
/// a headless Service that names each pod for its peers. The volume outlives
/// the pod: a restarted NATS has its data.
///
/// With [`FleetNatsScore::replicas`] above one, the servers form a NATS
/// cluster (routes between the pods, by name; JetStream clustered): the
/// fleet's buckets are then kept in three copies, and one server may go
/// without the fleet noticing.
#[derive(Score, Clone, Debug)]
#[score(requires(K8sClient), smoke = Self::smoke)]
pub struct FleetNatsScore {
    pub namespace: String,
    /// The name of every object, and of the Service agents connect to.
    pub name: String,
    pub image: String,
    /// The fleet's NATS authority (`fleet-operator nats-authority`): the
    /// server is configured to trust it. Never printed, never sent.
    #[score(secret)]
    pub authority: Secret<String>,
    /// The parties revoked, as `fleet-operator revoke` keeps them (public
    /// key → time): a NATS that lost its data still refuses them.
    pub revoked: Revocations,
    /// The size of its volume (JetStream and the accounts), as Kubernetes
    /// writes a quantity: `1Gi`.
    pub storage: String,
    /// How many servers: 1, or 3 or more for a cluster that outlives one
    /// server (JetStream needs a majority).
    pub replicas: u32,
}

impl FleetNatsScore {
    pub fn new(namespace: &str, authority: Secret<String>) -> Self {
        Self {
            namespace: namespace.to_owned(),
            name: "fleet-nats".into(),
            image: "docker.io/library/nats:2.10-alpine".into(),
            authority,
            revoked: Revocations::new(),
            storage: "1Gi".into(),
            replicas: 1,
        }
    }

    /// The same NATS as a cluster of `replicas` servers.
    pub fn clustered(mut self, replicas: u32) -> Self {
        self.replicas = replicas;
        self
    }

    /// The headless Service that names each server for the others.
    fn peers(&self) -> String {
        format!("{}-peers", self.name)
    }

    /// The `cluster` block of the configuration: its routes name every
    /// server by its pod's name under the headless Service.
    fn cluster_config(&self) -> String {
        if self.replicas <= 1 {
            return String::new();
        }
        let routes: Vec<String> = (0..self.replicas)
            .map(|i| {
                format!(
                    "    nats://{}-{i}.{}.{}.svc.cluster.local:{NATS_CLUSTER_PORT}",
                    self.name,
                    self.peers(),
                    self.namespace
                )
            })
            .collect();
        format!(
            "server_name: $POD_NAME\ncluster {{\n  name: {}\n  listen: 0.0.0.0:{NATS_CLUSTER_PORT}\n  routes: [\n{}\n  ]\n}}\n",
            self.name,
            routes.join("\n")
        )
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
    /// API server), auth and JetStream on, a login with the operator's
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
        let authority = Authority::from_text(self.authority.expose()).map_err(|e| SmokeError::new(what.clone(), e.to_string()))?;
        let credentials = authority.credentials(&Role::Operator, 0);
        nats::round_trip(conn, &credentials, std::time::Duration::from_secs(20))
            .await
            .map_err(|f| SmokeError::new(format!("{what} ({})", f.step), f.why).with_help(f.help))
    }
}

impl Render for FleetNatsScore {
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        check_name("name", &self.name)?;
        if self.replicas == 0 || self.replicas == 2 {
            return Err(ScoreError::invalid(
                format!("NATS `{}` of {} servers", self.name, self.replicas),
                "JetStream needs a majority of its servers: two cannot lose one, and none serves nothing",
                "use 1 server, or 3 (or more) for a cluster that outlives one",
            ));
        }
        let labels = labels(&self.name);
        let Some(authority) = authority(&self.authority, cx)? else {
            return Err(ScoreError::invalid(
                "the fleet's NATS authority",
                "NATS cannot be configured without it",
                "set `FLEET_NATS_AUTHORITY` to the text `fleet-operator nats-authority FILE` wrote",
            ));
        };
        let config = format!(
            "listen: 0.0.0.0:{NATS_PORT}\nhttp: 0.0.0.0:{NATS_MONITOR_PORT}\njetstream {{ store_dir: /data }}\n{}{}",
            self.cluster_config(),
            authority.server_config(ACCOUNTS_DIR, &self.revoked)
        );
        let mut d = Desired::new();
        d.push(&ConfigMap {
            metadata: meta(&self.namespace, &self.name),
            data: Some(BTreeMap::from([("nats.conf".to_owned(), config)])),
            ..Default::default()
        })?;
        let container = Container {
            name: "nats".into(),
            image: Some(self.image.clone()),
            args: Some(vec!["-c".into(), "/etc/nats/nats.conf".into()]),
            ports: Some(vec![
                port("client", NATS_PORT),
                port("cluster", NATS_CLUSTER_PORT),
                port("monitor", NATS_MONITOR_PORT),
            ]),
            // The configuration's `server_name`: each server of a cluster its own.
            env: Some(vec![EnvVar {
                name: "POD_NAME".into(),
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        field_path: "metadata.name".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }]),
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
        let volumes = vec![Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: self.name.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }];
        // The data volume is a claim of the pod's own, made from the template: kept when the
        // pod goes, given to the pod that replaces it.
        let data = PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some("data".into()),
                ..Default::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec!["ReadWriteOnce".into()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(self.storage.clone()))])),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        d.push(&StatefulSet {
            metadata: meta(&self.namespace, &self.name),
            spec: Some(StatefulSetSpec {
                replicas: Some(i32::try_from(self.replicas).unwrap_or(i32::MAX)),
                service_name: Some(self.peers()),
                // Together: a clustered JetStream is ready only once a majority is up.
                pod_management_policy: Some("Parallel".into()),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: pod_template(&labels, container, volumes, None),
                volume_claim_templates: Some(vec![data]),
                ..Default::default()
            }),
            ..Default::default()
        })?;
        d.push(&Service {
            metadata: meta(&self.namespace, &self.name),
            spec: Some(ServiceSpec {
                selector: Some(labels.clone()),
                ports: Some(vec![service_port("client", NATS_PORT), service_port("monitor", NATS_MONITOR_PORT)]),
                ..Default::default()
            }),
            ..Default::default()
        })?;
        // Each pod by name (`fleet-nats-0.fleet-nats-peers…`), ready or not: the servers
        // find each other before any of them is ready.
        d.push(&Service {
            metadata: meta(&self.namespace, &self.peers()),
            spec: Some(ServiceSpec {
                cluster_ip: Some("None".into()),
                publish_not_ready_addresses: Some(true),
                selector: Some(labels),
                ports: Some(vec![service_port("cluster", NATS_CLUSTER_PORT)]),
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
/// which logs into NATS with the operator's credentials, signed by the
/// fleet's authority and kept in a Secret of its own.
#[derive(Score, Clone, Debug)]
pub struct FleetOperatorScore {
    pub namespace: String,
    pub image: String,
    /// The NATS the operator dials (`FleetNatsScore::url`).
    pub nats_url: String,
    /// The fleet's NATS authority: the operator's credentials are derived
    /// from it into its Secret. Never printed, never sent.
    #[score(secret)]
    pub authority: Secret<String>,
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
        Self::new("fleet", &cx.image.to_string(), &FleetNatsScore::new("fleet", nats_authority()))
    }

    pub fn new(namespace: &str, image: &str, nats: &FleetNatsScore) -> Self {
        Self {
            namespace: namespace.to_owned(),
            image: image.to_owned(),
            nats_url: nats.url(),
            authority: nats.authority.clone(),
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
            &credentials_text(&self.authority, &Role::Operator, 0, cx)?,
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
        d.push(&RbacRole {
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
                "--creds".into(),
                CREDS_FILE.into(),
                "--signing-key-secret".into(),
                SIGNING_KEY_SECRET.into(),
            ]),
            volume_mounts: Some(vec![mount("nats", CREDS_DIR)]),
            ..Default::default()
        };
        let volumes = vec![secret_volume("nats", &credentials)];
        d.push(&deployment(&self.namespace, name, &labels, container, volumes, Some(name)))?;
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
            CREDS_ENTRY: credentials_text(&self.authority, &Role::Operator, 0, cx)?,
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
    /// The fleet's NATS authority: the device's credentials are derived
    /// from it into the agent's Secret (enrolling the device). Never
    /// printed, never sent.
    #[score(secret)]
    pub authority: Secret<String>,
    /// The device's enrolment number: after its credentials were revoked,
    /// the next number enrols it again with a new key.
    pub enrolment: u32,
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
            authority: nats.authority.clone(),
            enrolment: 0,
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
            &FleetNatsScore::new("fleet", nats_authority()),
        )
    }
}

impl Render for FleetAgentScore {
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        check_name("device", &self.device)?;
        let FleetAgentTarget::Pod = self.target;
        let name = format!("fleet-agent-{}", self.device.to_lowercase());
        let mut args = vec![
            "--nats".to_owned(),
            self.nats_url.clone(),
            "--creds".into(),
            AGENT_CREDS_FILE.into(),
            "--device".into(),
            self.device.clone(),
        ];
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
        let credentials = format!("{name}-nats");
        let mut volumes = vec![
            Volume {
                name: "state".into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
            secret_volume("nats", &credentials),
        ];
        let mut mounts = vec![mount("state", "/var/lib/fleet-agent"), mount("nats", AGENT_CREDS_DIR)];
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
            volume_mounts: Some(mounts),
            ..Default::default()
        };
        let mut d = Desired::new();
        let device = Role::Device(self.device.clone());
        d.push(&credentials_secret(
            &self.namespace,
            &credentials,
            &credentials_text(&self.authority, &device, self.enrolment, cx)?,
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
    pub fn new(namespace: &str, authority: Secret<String>) -> Self {
        Self {
            namespace: FleetNamespace {
                name: namespace.to_owned(),
                labels: BTreeMap::new(),
            },
            nats: FleetNatsScore::new(namespace, authority),
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
    pub fn new(namespace: &str, operator_image: &str, authority: Secret<String>) -> Self {
        let FleetNatsServer { namespace: ns, nats } = FleetNatsServer::new(namespace, authority);
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
    score: crate::FleetNatsServer::new("fleet", crate::nats_authority()),
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

/// The fleet's NATS authority for a release or `apply`: `FLEET_NATS_AUTHORITY`
/// (the text `fleet-operator nats-authority FILE` wrote), which must be set
/// wherever credentials would leave this machine (no default:
/// [`Secret::value`] says which variable is missing).
fn nats_authority() -> Secret<String> {
    Secret::required_env("FLEET_NATS_AUTHORITY")
}

/// Where the server keeps the accounts (its full resolver), on its data volume.
const ACCOUNTS_DIR: &str = "/data/accounts";
/// The key of a credentials Secret that holds the `.creds` text.
const CREDS_ENTRY: &str = "creds";
const CREDS_DIR: &str = "/etc/fleet-operator/nats";
const CREDS_FILE: &str = "/etc/fleet-operator/nats/creds";
const AGENT_CREDS_DIR: &str = "/etc/fleet-agent/nats";
const AGENT_CREDS_FILE: &str = "/etc/fleet-agent/nats/creds";

/// The authority a Score was given, read. `None` on `local` when it was not
/// set: there a Secret is kept as a digest and never leaves this machine.
fn authority(secret: &Secret<String>, cx: &RenderCx) -> Result<Option<Authority>, ScoreError> {
    let text = secret.value("the fleet's NATS authority", cx)?;
    if text.is_empty() && secret.unset().is_some() {
        return Ok(None);
    }
    Authority::from_text(text).map(Some).map_err(|e| {
        ScoreError::invalid(
            "the fleet's NATS authority",
            e.to_string(),
            "give the text `fleet-operator nats-authority FILE` wrote (`FLEET_NATS_AUTHORITY`)",
        )
    })
}

/// The `.creds` text of `role`, derived from the authority (empty on `local`
/// without one).
fn credentials_text(secret: &Secret<String>, role: &Role, enrolment: u32, cx: &RenderCx) -> Result<String, ScoreError> {
    Ok(authority(secret, cx)?.map_or_else(String::new, |a| a.credentials(role, enrolment).to_text()))
}

/// A component's own NATS credentials.
fn credentials_secret(namespace: &str, name: &str, creds: &str) -> K8sSecret {
    K8sSecret {
        metadata: meta(namespace, name),
        string_data: Some(BTreeMap::from([(CREDS_ENTRY.to_owned(), creds.to_owned())])),
        ..Default::default()
    }
}

fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
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
            template: pod_template(labels, container, volumes, service_account),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_template(
    labels: &BTreeMap<String, String>,
    container: Container,
    volumes: Vec<Volume>,
    service_account: Option<&str>,
) -> PodTemplateSpec {
    PodTemplateSpec {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clustered_nats_names_its_peers_and_two_servers_are_refused() {
        let authority = Secret::new(Authority::generate().to_text());
        let three = FleetNatsScore::new("fleet", authority.clone()).clustered(3);
        let objects = harmony::engine::render("fleet-nats", "test", &three).unwrap();
        let config = objects.iter().find(|o| o.id().kind == "ConfigMap").unwrap().body()["data"]["nats.conf"]
            .as_str()
            .unwrap()
            .to_owned();
        for i in 0..3 {
            assert!(
                config.contains(&format!("nats://fleet-nats-{i}.fleet-nats-peers.fleet.svc.cluster.local:6222")),
                "{config}"
            );
        }
        assert!(config.contains("server_name: $POD_NAME"), "{config}");
        let set = objects.iter().find(|o| o.id().kind == "StatefulSet").unwrap().body().clone();
        assert_eq!(set["spec"]["replicas"], 3);
        assert_eq!(set["spec"]["serviceName"], "fleet-nats-peers");
        let one = harmony::engine::render("fleet-nats", "test", &FleetNatsScore::new("fleet", authority.clone())).unwrap();
        let config = one.iter().find(|o| o.id().kind == "ConfigMap").unwrap().body()["data"]["nats.conf"].to_string();
        assert!(!config.contains("cluster {"), "one server, no cluster: {config}");
        let two = FleetNatsScore::new("fleet", authority).clustered(2);
        let err = harmony::engine::render("fleet-nats", "test", &two).unwrap_err();
        let said = format!("{err} {}", harmony::Diagnostic::notes(&err).join(" "));
        assert!(said.contains("majority"), "{said}");
    }
}
