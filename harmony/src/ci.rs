//! The `ci` topology: a CI runner. Images and charts go to a real OCI
//! registry; what is deployed goes to clusters (`apply` to the cluster the
//! environment names, each release stage to its own place), or, as an
//! explicit choice, to a GitOps directory (one per stage for releases), from
//! where a CD system or a later job applies it.
//!
//! | variable | meaning |
//! |---|---|
//! | `HARMONY_REGISTRY` | the registry, `host[:port]` (plain HTTP only on loopback) — required |
//! | `HARMONY_REGISTRY_NAMESPACE` | where under it: `team/apps` — required |
//! | `HARMONY_REGISTRY_USERNAME`, `HARMONY_REGISTRY_PASSWORD` | basic auth: both, or neither for anonymous access |
//! | `HARMONY_DELIVERY` | `direct` (default: server-side apply to clusters, through the `k8s` topology), `argocd` (an Argo CD Application per stage, see [`crate::argocd`]) or `gitops` |
//! | `KUBECONFIG`, `HARMONY_K8S_*` | the cluster `apply` deploys to, as for the `k8s` topology (`direct`) |
//! | `HARMONY_STAGE_<STAGE>_CONTEXT`, `HARMONY_STAGE_<STAGE>_NAMESPACE` | where a stage lives: a kubeconfig context, a namespace, or both (`direct`; each stage names at least one) |
//! | `HARMONY_STATE_DIR` | the GitOps directory, and the runner's state (default `target/harmony/ci`) |
//! | `HARMONY_BUILDER` | what builds Dockerfiles: `buildah` (default) or `docker` |

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::argocd::ArgoCd;
use crate::build::{BuildCx, BuildError, DockerfileTool, ImageSource};
use crate::capability::{ApplySet, BoxFuture, DeployError, HttpAnswer, K8sClient, K8sDeploy, Observed};
use crate::chart::Chart;
use crate::cluster::{Connect, Place};
use crate::engine;
use crate::engine::any_topology::AnyTopology;
use crate::engine::plan::Plan;
use crate::engine::run::Mode;
use crate::gitops::{GitOpsDir, deliver_to_directory, plan_in_directory};
use crate::lock::{Attempt, Holder, LockError};
use crate::object::{Object, ObjectRef};
use crate::oci::distribution::{Credentials, Remote};
use crate::oci::tag_of;
use crate::oci::{Artifact, Digest, ImageRef};
use crate::release::HttpProbe;
use crate::release::capability::build_dir;
use crate::release::capability::resolved;
use crate::release::{
    ChartRef, ContainerBuilder, ContinuousDelivery, Delivery, DeliveryError, HelmRegistry, OciRegistry, PublishError, Version,
};
use crate::score::SmokeError;
use crate::secret::Secret;
use crate::topology::{SelectableTopology, Topology, TopologyError};

pub const DELIVERY_VAR: &str = "HARMONY_DELIVERY";
pub const REGISTRY_VAR: &str = "HARMONY_REGISTRY";
pub const NAMESPACE_VAR: &str = "HARMONY_REGISTRY_NAMESPACE";
pub const USERNAME_VAR: &str = "HARMONY_REGISTRY_USERNAME";
pub const PASSWORD_VAR: &str = "HARMONY_REGISTRY_PASSWORD";
const DEFAULT_STATE_DIR: &str = "target/harmony/ci";

/// A CI runner with a registry.
#[derive(Debug)]
pub struct Ci {
    directory: GitOpsDir,
    build: PathBuf,
    remote: Remote,
    namespace: String,
    dockerfiles: DockerfileTool,
    delivering: Delivering,
}

/// Where `apply` deploys and each stage of a release goes.
enum Delivering {
    /// Into the GitOps directory, a directory per stage (`HARMONY_DELIVERY=gitops`).
    Directory,
    /// To clusters, through the cluster topology the binary links (`direct`):
    /// `apply` to the one the environment names, each stage to its [`Place`];
    /// with `argocd`, each stage through an Argo CD Application on the
    /// environment's cluster.
    Direct {
        connect: Connect,
        here: AnyTopology,
        stages: Mutex<BTreeMap<String, (Place, Arc<AnyTopology>)>>,
        argocd: Option<ArgoCd>,
    },
}

impl std::fmt::Debug for Delivering {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Directory => f.write_str("Directory"),
            Self::Direct { here, argocd, .. } => f
                .debug_struct("Direct")
                .field("here", here)
                .field("argocd", argocd)
                .finish_non_exhaustive(),
        }
    }
}

impl Ci {
    /// A CI topology pushing to `registry` under `namespace`, writing manifests under `state`.
    pub fn new(
        registry: &str,
        namespace: &str,
        credentials: Option<&Credentials>,
        state: impl Into<PathBuf>,
    ) -> Result<Self, TopologyError> {
        ImageRef::new(Some(registry), &format!("{namespace}/x")).map_err(|e| TopologyError::BadSetting {
            var: REGISTRY_VAR,
            why: format!("`{registry}/{namespace}`: {}", e.why),
        })?;
        let state = state.into();
        Ok(Self {
            build: build_dir(&state),
            directory: GitOpsDir::at(state),
            remote: Remote::new(registry, credentials),
            namespace: namespace.to_owned(),
            dockerfiles: DockerfileTool::Buildah,
            delivering: Delivering::Directory,
        })
    }

    /// Deliver to clusters instead of the GitOps directory: `apply` to the
    /// cluster `connect` sets up with the environment's settings, each stage
    /// to the place its settings name.
    pub fn delivering_to_clusters(mut self, connect: Connect) -> Result<Self, TopologyError> {
        let here = connect(&Place::default())?;
        let lacks = [
            ("K8sDeploy", here.provides::<dyn K8sDeploy>()),
            ("K8sClient", here.provides::<dyn K8sClient>()),
            ("HttpProbe", here.provides::<dyn HttpProbe>()),
        ]
        .into_iter()
        .filter_map(|(name, has)| (!has).then_some(name))
        .collect::<Vec<_>>();
        if !lacks.is_empty() {
            return Err(TopologyError::Unsupported {
                what: format!("the cluster topology `{}` lacks {}", here.name(), lacks.join(", ")),
                help: format!("set `{DELIVERY_VAR}=gitops`, or link a cluster topology that provides them"),
            });
        }
        self.delivering = Delivering::Direct {
            connect,
            here,
            stages: Mutex::new(BTreeMap::new()),
            argocd: None,
        };
        Ok(self)
    }

    /// Deliver each stage through an Argo CD Application on the cluster
    /// `apply` deploys to (after [`Ci::delivering_to_clusters`]).
    pub fn through_argocd(mut self, argo: ArgoCd) -> Self {
        if let Delivering::Direct { argocd, .. } = &mut self.delivering {
            *argocd = Some(argo);
        }
        self
    }

    /// Keep builders' state in `dir` (see [`crate::Local::with_build_dir`]).
    pub fn with_build_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.build = dir.into();
        self
    }

    /// Build Dockerfiles with `tool` instead of buildah.
    pub fn with_dockerfile_tool(mut self, tool: DockerfileTool) -> Self {
        self.dockerfiles = tool;
        self
    }

    fn repository(&self, name: &str) -> String {
        format!("{}/{name}", self.namespace)
    }
}

fn var(name: &'static str, help: &'static str) -> Result<Option<String>, TopologyError> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Err(TopologyError::BadSetting {
            var: name,
            why: format!("it is empty; {help}"),
        }),
        Ok(v) => Ok(Some(v)),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(TopologyError::BadSetting {
            var: name,
            why: "it is not valid UTF-8".into(),
        }),
    }
}

fn required(name: &'static str, help: &'static str) -> Result<String, TopologyError> {
    var(name, help)?.ok_or(TopologyError::Missing { var: name, help })
}

impl Topology for Ci {
    fn name(&self) -> &str {
        Self::NAME
    }

    /// The GitOps directory's lock and, when `apply` deploys to a cluster,
    /// that cluster's lock of the app too.
    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move {
            let directory = self.directory.try_lock(app, me)?;
            let Delivering::Direct { here, .. } = &self.delivering else {
                return Ok(directory);
            };
            let (lock, took_over) = match directory {
                Attempt::Acquired { lock, took_over } => (lock, took_over),
                busy => return Ok(busy),
            };
            match here.try_lock(app, me).await {
                Ok(Attempt::Acquired {
                    lock: cluster,
                    took_over: cluster_took_over,
                }) => Ok(Attempt::Acquired {
                    lock: Box::new(crate::lock::Several(vec![lock, cluster])),
                    took_over: took_over.or(cluster_took_over),
                }),
                busy_or_failed => {
                    lock.release().await?;
                    busy_or_failed
                }
            }
        })
    }
}

crate::topology!(Ci);

impl SelectableTopology for Ci {
    const NAME: &'static str = "ci";
    const ABOUT: &'static str = "a CI runner: a registry from the environment; deploys to clusters (or a GitOps directory)";

    fn from_env() -> Result<Self, TopologyError> {
        let registry = required(REGISTRY_VAR, "set it to the registry's `host[:port]`, e.g. `registry.example.com`")?;
        let namespace = required(NAMESPACE_VAR, "set it to the path images go under, e.g. `team/apps`")?;
        let username = var(USERNAME_VAR, "set it to the registry user, or unset both credentials")?;
        let password = var(PASSWORD_VAR, "set it to the registry password, or unset both credentials")?;
        let credentials = match (username, password) {
            (Some(username), Some(password)) => Some(Credentials {
                username,
                password: Secret::new(password),
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(TopologyError::Missing {
                    var: PASSWORD_VAR,
                    help: "set it too: a registry user needs a password",
                });
            }
            (None, Some(_)) => {
                return Err(TopologyError::Missing {
                    var: USERNAME_VAR,
                    help: "set it too: a registry password needs a user",
                });
            }
        };
        let state = var(crate::local::STATE_DIR_VAR, "set it to a directory, or unset it")?.unwrap_or_else(|| DEFAULT_STATE_DIR.into());
        let tool = DockerfileTool::from_env()?;
        let ci = Self::new(&registry, &namespace, credentials.as_ref(), state)?.with_dockerfile_tool(tool);
        let delivery = var(DELIVERY_VAR, "set it to `direct`, `argocd` or `gitops`, or unset it")?;
        let to_clusters = |ci: Self| match crate::cluster::connector() {
            Some(connector) => ci.delivering_to_clusters(connector.connect),
            None => Err(TopologyError::Unsupported {
                what: "the `ci` topology delivers to clusters by default, and this binary links no cluster topology".into(),
                help: format!(
                    "link one (`harmony_registry::main!(.., harmony_k8s)`), or deliver to a GitOps directory with `{DELIVERY_VAR}=gitops`"
                ),
            }),
        };
        match delivery.as_deref().map(str::trim) {
            None | Some("direct") => to_clusters(ci),
            Some("argocd") => Ok(to_clusters(ci)?.through_argocd(ArgoCd::from_env()?)),
            Some("gitops") => Ok(ci),
            Some(other) => Err(TopologyError::BadSetting {
                var: DELIVERY_VAR,
                why: format!("`{other}` is not one of `direct`, `argocd`, `gitops`"),
            }),
        }
    }
}

impl Ci {
    /// Where `apply` deploys: the GitOps directory, or the environment's cluster.
    fn target(&self) -> &dyn K8sDeploy {
        match &self.delivering {
            Delivering::Directory => &self.directory,
            Delivering::Direct { here, .. } => here,
        }
    }

    /// Argo CD, and the cluster its Applications go to, when delivering through it.
    fn argocd(&self) -> Option<(&ArgoCd, &AnyTopology)> {
        match &self.delivering {
            Delivering::Direct {
                argocd: Some(argo), here, ..
            } => Some((argo, here)),
            _ => None,
        }
    }

    /// The place and the cluster of `stage`, when delivering to clusters.
    fn stage(&self, stage: &str) -> Result<Option<(Place, Arc<AnyTopology>)>, DeliveryError> {
        let Delivering::Direct { connect, stages, .. } = &self.delivering else {
            return Ok(None);
        };
        let mut stages = stages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(known) = stages.get(stage) {
            return Ok(Some(known.clone()));
        }
        let place = Place::of_stage(stage).ok_or_else(|| DeliveryError::Unplaced {
            stage: stage.to_owned(),
            context_var: crate::cluster::context_var(stage),
            namespace_var: crate::cluster::namespace_var(stage),
        })?;
        let cluster = connect(&place).map_err(|source| DeliveryError::Setting {
            stage: stage.to_owned(),
            source,
        })?;
        let known = (place, Arc::new(cluster));
        stages.insert(stage.to_owned(), known.clone());
        Ok(Some(known))
    }

    /// `delivery` as it lands on its stage's cluster: its objects placed,
    /// and the name of the group they form there (one per app and stage, so
    /// two stages on one cluster never prune each other).
    fn placed(place: &Place, delivery: &Delivery) -> Result<(Delivery, String), DeliveryError> {
        let objects = place.place_stage(&delivery.objects).map_err(|why| DeliveryError::Unplaceable {
            stage: delivery.stage.clone(),
            why,
        })?;
        Ok((
            Delivery {
                app: delivery.app.clone(),
                stage: delivery.stage.clone(),
                chart: delivery.chart.clone(),
                chart_digest: delivery.chart_digest.clone(),
                objects: objects.into(),
            },
            Self::group(delivery),
        ))
    }

    /// The group `delivery`'s objects form on its stage's cluster: one per
    /// app and stage, so two stages on one cluster never prune each other.
    fn group(delivery: &Delivery) -> String {
        format!("{}-{}", delivery.app, delivery.stage)
    }
}

impl K8sDeploy for Ci {
    fn begin<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().begin(set)
    }

    fn pin_secret_digests(&self) -> BoxFuture<'_, Result<(), DeployError>> {
        self.target().pin_secret_digests()
    }

    fn observe<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        self.target().observe(set)
    }

    fn set_aside_filled_in<'a>(
        &'a self,
        set: &'a ApplySet,
        desired: &'a [Object],
        observed: &'a mut Observed,
    ) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().set_aside_filled_in(set, desired, observed)
    }

    fn dry_run<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().dry_run(set, objects)
    }

    fn apply<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().apply(set, objects)
    }

    fn prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().prune(set, objects)
    }

    fn dry_run_prune<'a>(&'a self, set: &'a ApplySet, objects: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().dry_run_prune(set, objects)
    }

    fn commit<'a>(&'a self, set: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        self.target().commit(set)
    }

    fn verify<'a>(&'a self, set: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>> {
        self.target().verify(set, objects)
    }
}

impl K8sClient for Ci {
    /// The environment's cluster, when delivering to clusters.
    fn get<'a>(&'a self, id: &'a ObjectRef) -> BoxFuture<'a, Result<Option<Value>, DeployError>> {
        match &self.delivering {
            Delivering::Direct { here, .. } => K8sClient::get(here, id),
            Delivering::Directory => Box::pin(async { Err(no_cluster()) }),
        }
    }

    fn http_get<'a>(&'a self, service: &'a ObjectRef, port: &'a str, path: &'a str) -> BoxFuture<'a, Result<HttpAnswer, DeployError>> {
        match &self.delivering {
            Delivering::Direct { here, .. } => here.http_get(service, port, path),
            Delivering::Directory => Box::pin(async { Err(no_cluster()) }),
        }
    }

    fn connect<'a>(&'a self, service: &'a ObjectRef, port: &'a str) -> BoxFuture<'a, Result<Box<dyn crate::Tunnel>, DeployError>> {
        match &self.delivering {
            Delivering::Direct { here, .. } => here.connect(service, port),
            Delivering::Directory => Box::pin(async { Err(no_cluster()) }),
        }
    }
}

fn no_cluster() -> DeployError {
    DeployError::NoCluster {
        why: format!("`{DELIVERY_VAR}=gitops`: the `ci` topology writes a GitOps directory and reads no cluster"),
        help: format!("unset `{DELIVERY_VAR}` (clusters are the default) and point `KUBECONFIG` at the cluster to read"),
    }
}

impl ContainerBuilder for Ci {
    /// Daemonless for buildable sources; Dockerfiles with the tool `HARMONY_BUILDER` names.
    fn build_image<'a>(
        &'a self,
        source: &'a ImageSource,
        dir: &'a Path,
        name: &'a str,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Artifact, BuildError>> {
        Box::pin(async move {
            let scratch = self.build.join(name);
            let dockerfiles = self.dockerfiles.builder(&scratch);
            resolved(source, dir).build(&BuildCx::new(dir, &scratch, name, version.clone()), &*dockerfiles)
        })
    }

    fn check_build(&self, source: &ImageSource, dir: &Path, name: &str) -> Result<(), BuildError> {
        resolved(source, dir).check(&*self.dockerfiles.builder(&self.build.join(name)))
    }
}

impl OciRegistry for Ci {
    fn image_location(&self, name: &str) -> Result<ImageRef, PublishError> {
        ImageRef::new(Some(self.remote.registry()), &self.repository(name)).map_err(|e| PublishError::BadName {
            name: name.into(),
            why: e.why,
        })
    }

    fn push_image<'a>(&'a self, name: &'a str, tag: &'a str, image: &'a Artifact) -> BoxFuture<'a, Result<ImageRef, PublishError>> {
        Box::pin(async move { Ok(self.remote.push(&self.repository(name), tag, image).await?) })
    }

    fn image_digest<'a>(&'a self, name: &'a str, tag: &'a str) -> BoxFuture<'a, Result<Option<Digest>, PublishError>> {
        Box::pin(async move {
            let image = self.image_location(name)?.with_tag(tag).map_err(|e| PublishError::BadName {
                name: tag.into(),
                why: e.why,
            })?;
            Ok(self.remote.resolve(&image).await?)
        })
    }
}

impl HelmRegistry for Ci {
    fn chart_location(&self, name: &str, version: &Version) -> Result<ChartRef, PublishError> {
        ChartRef::new(
            Some(self.remote.registry()),
            &format!("{}/charts", self.namespace),
            name,
            version.clone(),
        )
        .map_err(|e| PublishError::BadName {
            name: name.into(),
            why: e.why,
        })
    }

    fn push_chart<'a>(&'a self, chart: &'a Chart, version: &'a Version) -> BoxFuture<'a, Result<(ChartRef, Digest), PublishError>> {
        Box::pin(async move {
            let location = self.chart_location(chart.name(), version)?;
            let artifact = chart.clone().stamped(version).artifact()?;
            let pushed = self
                .remote
                .push(&format!("{}/charts/{}", self.namespace, chart.name()), &tag_of(version), &artifact)
                .await?;
            let digest = pushed.digest().cloned().unwrap_or_else(|| artifact.digest());
            Ok((location, digest))
        })
    }
}

impl ContinuousDelivery for Ci {
    /// Every stage names its place, and its cluster's settings hold (nothing is contacted).
    fn check_stages(&self, stages: &[String]) -> Result<(), DeliveryError> {
        stages.iter().try_for_each(|stage| self.stage(stage).map(drop))
    }

    /// On clusters: a server-side dry run of the stage (admission and
    /// validation included), prunes too.
    fn plan_delivery<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move {
            match self.stage(&delivery.stage)? {
                Some((place, cluster)) => self.to_cluster(delivery, &place, &cluster, Mode::DryRun).await,
                None => plan_in_directory(&self.directory.stage(&delivery.stage), delivery).await,
            }
        })
    }

    /// On clusters: the stage's cluster's lock of the app's group there.
    fn try_lock_stage<'a>(&'a self, delivery: &'a Delivery, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move {
            let stage = self.stage(&delivery.stage).map_err(|e| LockError::Unavailable {
                app: delivery.app.clone(),
                target: format!("stage `{}`", delivery.stage),
                why: e.to_string(),
                help: crate::Diagnostic::help(&e),
            })?;
            match stage {
                Some((_, cluster)) => cluster.try_lock(&Self::group(delivery), me).await,
                None => Ok(Attempt::free()),
            }
        })
    }

    /// On clusters: the stage's apply, as `k8s` applies (server-side, pruned,
    /// waited until ready).
    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move {
            match self.stage(&delivery.stage)? {
                Some((place, cluster)) => self.to_cluster(delivery, &place, &cluster, Mode::Apply).await,
                None => deliver_to_directory(&self.directory.stage(&delivery.stage), delivery).await,
            }
        })
    }
}

impl Ci {
    /// `delivery` applied (or dry-run) on its stage's cluster: its objects,
    /// or, through Argo CD, its Secrets (and their Namespace) by Harmony, then
    /// the Application, waited for until Argo CD synced it and reports it Healthy.
    async fn to_cluster(&self, delivery: &Delivery, place: &Place, cluster: &AnyTopology, mode: Mode) -> Result<Plan, DeliveryError> {
        let (placed, set) = Self::placed(place, delivery)?;
        let set = set.as_str();
        let plan = match self.argocd() {
            None => send(mode, set, &placed.objects, cluster).await,
            Some((argo, here)) => {
                let application = argo.application(delivery, place, &placed.objects)?;
                match send(mode, &format!("{set}-secrets"), &ArgoCd::brought(&placed.objects), cluster).await {
                    Ok(_) => send(mode, &format!("{set}-argocd"), &[application], here).await,
                    Err(e) => Err(e),
                }
            }
        }
        .map_err(|e| DeliveryError::on_stage(&delivery.stage, e))?;
        Ok(Plan {
            topology: delivery.stage.clone(),
            ..plan
        })
    }
}

/// `objects` applied (or dry-run) as the group `set` on `on`.
async fn send(mode: Mode, set: &str, objects: &[Object], on: &AnyTopology) -> Result<Plan, engine::EngineError> {
    match mode {
        Mode::Apply => engine::apply_objects(set, objects, on).await,
        Mode::DryRun => engine::dry_run_objects(set, objects, on).await,
    }
}

impl HttpProbe for Ci {
    /// On clusters, asks the service the stage runs, through its cluster.
    /// With a GitOps directory, runs the released image's entrypoint here,
    /// with the environment the delivery gives it, and asks it (see
    /// [`crate::release::smoke`]).
    fn probe<'a>(
        &'a self,
        delivery: &'a Delivery,
        image: &'a Artifact,
        check: &'a crate::release::HttpCheck,
    ) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async move {
            let stage = self
                .stage(&delivery.stage)
                .map_err(|e| SmokeError::new("the stage's cluster", e.to_string()))?;
            let Some((place, cluster)) = stage else {
                return crate::release::smoke::run_image(image, &delivery.objects, check);
            };
            let (placed, _) = Self::placed(&place, delivery).map_err(|e| SmokeError::new("the stage's cluster", e.to_string()))?;
            cluster.probe(&placed, image, check).await
        })
    }
}
