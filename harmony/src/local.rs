//! The `local` topology: a GitOps directory on this machine (`crate::gitops`),
//! no servers. Under `$HARMONY_STATE_DIR` (default: `target/harmony/local`)
//! it adds `registry/`, an OCI image-layout directory for released images and
//! charts, to the directory's own layout.

use std::path::{Path, PathBuf};

use crate::build::{BuildCx, BuildError, DockerfileTool, ImageSource};
use crate::capability::BoxFuture;
use crate::engine::plan::Plan;
use crate::gitops::{GitOps, GitOpsDir, deliver_to_directory, plan_in_directory};
use crate::lock::{Attempt, Holder, LockError};
use crate::oci::layout::Layout;
use crate::oci::{Artifact, Digest, ImageRef};
use crate::release::capability::{build_dir, resolved};
use crate::release::{
    ChartRef, ContainerBuilder, ContinuousDelivery, Delivery, DeliveryError, HelmRegistry, OciRegistry, PublishError, Version,
};
use crate::score::SmokeError;
use crate::topology::{SelectableTopology, Topology, TopologyError};

/// The environment variable that moves the state directory.
pub const STATE_DIR_VAR: &str = "HARMONY_STATE_DIR";
const DEFAULT_STATE_DIR: &str = "target/harmony/local";

/// A GitOps directory on this machine (see [`crate::gitops`]), with
/// daemonless builds and an image-layout directory for releases; no servers.
#[derive(Debug)]
pub struct Local {
    directory: GitOpsDir,
    build: PathBuf,
    dockerfiles: DockerfileTool,
}

impl GitOps for Local {
    fn directory(&self) -> &GitOpsDir {
        &self.directory
    }
}

impl Topology for Local {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn try_lock<'a>(&'a self, app: &'a str, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        Box::pin(async move { self.directory.try_lock(app, me) })
    }
}

crate::topology!(Local);

impl SelectableTopology for Local {
    const NAME: &'static str = "local";
    const ABOUT: &'static str = "a GitOps directory on this machine; no servers (the default)";

    fn from_env() -> Result<Self, TopologyError> {
        let root = match std::env::var_os(STATE_DIR_VAR) {
            Some(dir) if dir.is_empty() => {
                return Err(TopologyError::BadSetting {
                    var: STATE_DIR_VAR,
                    why: "it is empty".into(),
                });
            }
            Some(dir) => PathBuf::from(dir),
            None => PathBuf::from(DEFAULT_STATE_DIR),
        };
        if root.exists() && !root.is_dir() {
            return Err(TopologyError::StateDir {
                path: root,
                why: "it exists and is not a directory".into(),
            });
        }
        Ok(Self::at(root).with_dockerfile_tool(DockerfileTool::from_env()?))
    }
}

impl Local {
    /// A local topology whose state lives in `root`.
    pub fn at(root: impl Into<PathBuf>) -> Self {
        let directory = GitOpsDir::at(root);
        Self {
            build: build_dir(directory.root()),
            directory,
            dockerfiles: DockerfileTool::Buildah,
        }
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        self.directory.root()
    }

    /// Keep builders' state (target dirs, stores) in `dir` instead of
    /// `HARMONY_BUILD_DIR` / `<state>/.build`.
    pub fn with_build_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.build = dir.into();
        self
    }

    /// Build Dockerfiles with `tool`.
    pub fn with_dockerfile_tool(mut self, tool: DockerfileTool) -> Self {
        self.dockerfiles = tool;
        self
    }

    /// The image-layout directory released images and charts are stored in.
    pub fn registry(&self) -> Layout {
        Layout::at(self.root().join("registry"))
    }

    /// The GitOps directory of one release stage.
    pub fn stage(&self, stage: &str) -> GitOpsDir {
        self.directory.stage(stage)
    }
}

impl ContainerBuilder for Local {
    /// Daemonless for buildable sources; Dockerfiles with the tool
    /// `HARMONY_BUILDER` names (buildah by default).
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

impl OciRegistry for Local {
    fn image_location(&self, name: &str) -> Result<ImageRef, PublishError> {
        ImageRef::new(None, name).map_err(|e| PublishError::BadName {
            name: name.into(),
            why: e.why,
        })
    }

    fn push_image<'a>(&'a self, name: &'a str, tag: &'a str, image: &'a Artifact) -> BoxFuture<'a, Result<ImageRef, PublishError>> {
        Box::pin(async move {
            let location = self.image_location(name)?.with_tag(tag).map_err(|e| PublishError::BadName {
                name: tag.into(),
                why: e.why,
            })?;
            let digest = self.registry().put(&format!("{name}:{tag}"), image)?;
            Ok(location.with_digest(digest))
        })
    }

    fn image_digest<'a>(&'a self, name: &'a str, tag: &'a str) -> BoxFuture<'a, Result<Option<Digest>, PublishError>> {
        Box::pin(async move { Ok(self.registry().resolve(&format!("{name}:{tag}"))?) })
    }
}

impl HelmRegistry for Local {
    fn chart_location(&self, name: &str, version: &Version) -> Result<ChartRef, PublishError> {
        ChartRef::new(None, "charts", name, version.clone()).map_err(|e| PublishError::BadName {
            name: name.into(),
            why: e.why,
        })
    }

    fn push_chart<'a>(
        &'a self,
        chart: &'a crate::chart::Chart,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<(ChartRef, Digest), PublishError>> {
        Box::pin(async move {
            let location = self.chart_location(chart.name(), version)?;
            let artifact = chart.clone().stamped(version).artifact()?;
            let digest = self
                .registry()
                .put(&format!("charts/{}:{}", chart.name(), crate::oci::tag_of(version)), &artifact)?;
            Ok((location, digest))
        })
    }
}

impl ContinuousDelivery for Local {
    fn plan_delivery<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move { plan_in_directory(&self.stage(&delivery.stage), delivery).await })
    }

    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>> {
        Box::pin(async move { deliver_to_directory(&self.stage(&delivery.stage), delivery).await })
    }
}

impl crate::release::HttpProbe for Local {
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
