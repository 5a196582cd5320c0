//! The `ci` topology: a CI runner. Images and charts go to a real OCI
//! registry; manifests go to a GitOps directory (one per stage for releases),
//! from where a CD system or a later job applies them.
//!
//! | variable | meaning |
//! |---|---|
//! | `HARMONY_REGISTRY` | the registry, `host[:port]` (plain HTTP only on loopback) — required |
//! | `HARMONY_REGISTRY_NAMESPACE` | where under it: `team/apps` — required |
//! | `HARMONY_REGISTRY_USERNAME`, `HARMONY_REGISTRY_PASSWORD` | basic auth: both, or neither for anonymous access |
//! | `HARMONY_STATE_DIR` | the GitOps directory (default `target/harmony/ci`) |
//! | `HARMONY_BUILDER` | what builds Dockerfiles: `buildah` (default) or `docker` |

use std::path::{Path, PathBuf};

use crate::build::{BuildCx, BuildError, DockerfileTool, ImageSource};
use crate::capability::BoxFuture;
use crate::chart::Chart;
use crate::gitops::{GitOps, GitOpsDir, deliver_to_directory, plan_in_directory};
use crate::local::tag_of;
use crate::lock::{Attempt, Holder, LockError};
use crate::oci::distribution::{Credentials, Remote};
use crate::oci::{Artifact, Digest, ImageRef};
use crate::plan::Plan;
use crate::release::capability::build_dir;
use crate::release::capability::resolved;
use crate::release::{
    ChartRef, ContainerBuilder, ContinuousDelivery, Delivery, DeliveryError, HelmRegistry, OciRegistry, PublishError, Version,
};
use crate::score::SmokeError;
use crate::secret::Secret;
use crate::topology::{SelectableTopology, Topology, TopologyError};

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
        })
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

    /// The GitOps directory's lock.
    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move { self.directory.try_lock(app, me) })
    }
}

crate::topology!(Ci);

impl SelectableTopology for Ci {
    const NAME: &'static str = "ci";
    const ABOUT: &'static str = "a CI runner: a registry from the environment, manifests to a GitOps directory";

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
        Ok(Self::new(&registry, &namespace, credentials.as_ref(), state)?.with_dockerfile_tool(tool))
    }
}

impl GitOps for Ci {
    fn directory(&self) -> &GitOpsDir {
        &self.directory
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
    fn plan_delivery<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move { plan_in_directory(&self.directory.stage(&delivery.stage), delivery).await })
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move { deliver_to_directory(&self.directory.stage(&delivery.stage), delivery).await })
    }
}

impl crate::release::HttpProbe for Ci {
    /// Runs the released image's entrypoint here, with the environment the
    /// delivery gives it, and asks it (see [`crate::release::smoke`]).
    fn probe<'a>(
        &'a self,
        delivery: &'a Delivery,
        image: &'a Artifact,
        check: &'a crate::release::HttpCheck,
    ) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async move { crate::release::smoke::run_image(image, &delivery.objects, check) })
    }
}
