//! The capabilities a release needs, each an industry concept:
//! [`OciRegistry`] stores images, [`HelmRegistry`] stores charts,
//! [`ContinuousDelivery`] brings a released chart to a stage and verifies it.
//! (`ContainerBuilder`, which turns an image source into an image, lives with
//! the builders.) Swapping the adapter behind one touches no Score and no app.

use std::path::Path;

use semver::Version;

use super::ChartRef;
use crate::build::{BuildError, ImageSource};
use crate::capability::BoxFuture;
use crate::chart::{Chart, ChartError};
use crate::engine::EngineError;
use crate::engine::plan::Plan;
use crate::engine::run::InterpretError;
use crate::lock::{Attempt, Holder, LockError};
use crate::object::Object;
use crate::oci::ImageRef;
use crate::oci::distribution::RegistryError;
use crate::oci::{Artifact, Digest, OciError};
use crate::topology::Topology;

/// Builds container images from their sources.
///
/// Turns an image source (a Dockerfile, or a daemonless build such as a Rust
/// binary) into an OCI image. Paths in the source are relative to `dir`.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `ContainerBuilder`",
    label = "needs `ContainerBuilder` (builds container images)",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `local` (`harmony::Local`); the generated CLI's `list` shows every topology and what it provides",
    note = "release on a topology that provides it, or, if `{Self}` is a topology of your own, implement `harmony::release::ContainerBuilder` for it"
)]
pub trait ContainerBuilder: Topology {
    /// Build `source` (paths relative to `dir`) as image `name` at `version`.
    fn build_image<'a>(
        &'a self,
        source: &'a ImageSource,
        dir: &'a Path,
        name: &'a str,
        version: &'a Version,
    ) -> BoxFuture<'a, Result<Artifact, BuildError>>;

    /// Check, without building, that `source` can be built here (its
    /// Dockerfile is there, the tool that builds it runs): a release asks
    /// before any slow work. The default checks nothing.
    fn check_build(&self, source: &ImageSource, dir: &Path, name: &str) -> Result<(), BuildError> {
        let _ = (source, dir, name);
        Ok(())
    }
}

/// The source with its paths made relative to `dir` (a Dockerfile's and
/// context's paths are written relative to the crate that declares them).
pub(crate) fn resolved(source: &ImageSource, dir: &Path) -> ImageSource {
    match source {
        ImageSource::Dockerfile {
            dockerfile,
            context,
            binaries,
        } => ImageSource::Dockerfile {
            dockerfile: dir.join(dockerfile),
            context: dir.join(context),
            binaries: binaries.clone(),
        },
        other => other.clone(),
    }
}

/// Where builders keep their state: `HARMONY_BUILD_DIR`, or `.build` under the
/// topology's state directory, so that a release writes nowhere else (not in
/// the directory it is run from). Made absolute: builders run in other directories.
pub fn build_dir(state: &Path) -> std::path::PathBuf {
    let dir = std::env::var_os("HARMONY_BUILD_DIR").map_or_else(|| state.join(".build"), Into::into);
    std::env::current_dir().map(|cwd| cwd.join(&dir)).unwrap_or(dir)
}

/// Stores released images.
///
/// A release pushes its image here under the version's tag and deploys it
/// pinned to its digest; a version's tag is never moved to another image.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `OciRegistry`",
    label = "needs `OciRegistry` (a place to store released images)",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `local` (`harmony::Local`); the generated CLI's `list` shows every topology and what it provides",
    note = "release on a topology that provides it, or, if `{Self}` is a topology of your own, implement `harmony::release::OciRegistry` for it"
)]
pub trait OciRegistry: Topology {
    /// Where an image called `name` is stored: `registry/namespace/name`.
    fn image_location(&self, name: &str) -> Result<ImageRef, PublishError>;

    /// Store `image` as `name:tag`; returns its reference pinned to the digest.
    fn push_image<'a>(&'a self, name: &'a str, tag: &'a str, image: &'a Artifact) -> BoxFuture<'a, Result<ImageRef, PublishError>>;

    /// The digest stored under `name:tag`, if any.
    fn image_digest<'a>(&'a self, name: &'a str, tag: &'a str) -> BoxFuture<'a, Result<Option<Digest>, PublishError>>;
}

/// Stores released Helm charts.
///
/// A release pushes its chart here, stamped with the version, and each stage
/// is delivered from it.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `HelmRegistry`",
    label = "needs `HelmRegistry` (a place to store released charts)",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `local` (`harmony::Local`); the generated CLI's `list` shows every topology and what it provides",
    note = "release on a topology that provides it, or, if `{Self}` is a topology of your own, implement `harmony::release::HelmRegistry` for it"
)]
pub trait HelmRegistry: Topology {
    /// Where the chart `name` at `version` is stored.
    fn chart_location(&self, name: &str, version: &Version) -> Result<ChartRef, PublishError>;

    /// Store a packaged, version-stamped chart; returns where it is, and its digest.
    fn push_chart<'a>(&'a self, chart: &'a Chart, version: &'a Version) -> BoxFuture<'a, Result<(ChartRef, Digest), PublishError>>;
}

/// One released chart on its way to one stage: where the chart is, and the
/// objects it holds (adapters that apply objects directly use those; adapters
/// that hand the chart to a CD system use the reference). The objects are
/// shared: every stage of a release delivers the same ones.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The app being released.
    pub app: String,
    /// The stage it goes to: one of the app's stages.
    pub stage: String,
    /// Where the chart is stored, at the released version.
    pub chart: ChartRef,
    /// The chart's digest: its manifest's when the release pushed it, its archive's for a
    /// published chart.
    pub chart_digest: Digest,
    /// The objects the chart holds, as rendered for the release.
    pub objects: std::sync::Arc<[Object]>,
}

/// Brings a released chart to each stage and verifies it.
///
/// Called once per stage, in promotion order; a stage is done when what it
/// received is healthy.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `ContinuousDelivery`",
    label = "needs `ContinuousDelivery` (brings a released chart to each stage)",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `local` (`harmony::Local`); the generated CLI's `list` shows every topology and what it provides",
    note = "release on a topology that provides it, or, if `{Self}` is a topology of your own, implement `harmony::release::ContinuousDelivery` for it"
)]
pub trait ContinuousDelivery: Topology {
    /// Check, before any work, that each of these stages can be delivered to
    /// (each names its place, its settings hold). Contacts nothing.
    fn check_stages(&self, stages: &[String]) -> Result<(), DeliveryError> {
        let _ = stages;
        Ok(())
    }

    /// What delivering would change on the stage. Writes nothing.
    fn plan_delivery<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>>;

    /// Deliver, then verify; returns only once the stage is healthy.
    fn deliver<'a>(&'a self, delivery: &'a Delivery) -> BoxFuture<'a, Result<Plan, DeliveryError>>;

    /// Try once to take the lock of `delivery`'s stage for `me`, so that no
    /// other run writes the stage while this one delivers (see
    /// [`crate::lock`]). The default suits a target whose stages are guarded
    /// by the topology's own lock: always free.
    fn try_lock_stage<'a>(&'a self, delivery: &'a Delivery, me: &'a Holder) -> BoxFuture<'a, Result<Attempt, LockError>> {
        let _ = (delivery, me);
        Box::pin(async { Ok(Attempt::free()) })
    }
}

/// Storing an artifact failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// A remote registry could not be reached, refused access, or answered unexpectedly.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The image-layout directory the `local` topology stores artifacts in could not be
    /// read or written.
    #[error(transparent)]
    Layout(#[from] OciError),
    /// The chart could not be stamped with its version or packaged.
    #[error(transparent)]
    Chart(#[from] ChartError),
    /// An app name or tag cannot form an image or chart reference.
    #[error("`{name}` cannot name an image or chart: {why}")]
    BadName {
        /// The name or tag refused.
        name: String,
        /// What makes it invalid.
        why: String,
    },
}

impl crate::Diagnostic for PublishError {
    fn help(&self) -> String {
        match self {
            Self::Registry(e) => e.help(),
            Self::Layout(e) => e.help(),
            Self::Chart(e) => e.help(),
            Self::BadName { .. } => "app names are lowercase letters, digits and `-`".into(),
        }
    }
}

/// A delivery failed: the stage did not take it, or it is not healthy.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeliveryError {
    /// The stage did not take the release: delivering (or, in a dry run, planning) it
    /// failed.
    #[error("stage `{stage}` did not take the release")]
    Failed {
        /// The stage.
        stage: String,
        /// The engine's error.
        source: Box<EngineError>,
    },
    /// The stage took the release, but its verification or a smoke test did not pass.
    #[error("stage `{stage}` received the release but it is not healthy")]
    Unhealthy {
        /// The stage.
        stage: String,
        /// The check that did not pass, and why.
        source: crate::score::SmokeError,
    },
    /// Neither a kubeconfig context nor a namespace is set for the stage, so there is
    /// nowhere to deliver it.
    #[error("stage `{stage}` names no place to deliver to")]
    Unplaced {
        /// The stage.
        stage: String,
        /// The variable that names the stage's context, e.g. `HARMONY_STAGE_STAGING_CONTEXT`.
        context_var: String,
        /// The variable that names the stage's namespace, e.g. `HARMONY_STAGE_STAGING_NAMESPACE`.
        namespace_var: String,
    },
    /// The stage's settings name a place, but its cluster cannot be set up from them.
    #[error("the cluster of stage `{stage}` cannot be reached as set up")]
    Setting {
        /// The stage.
        stage: String,
        /// What is wrong with the settings.
        source: crate::topology::TopologyError,
    },
    /// The release's objects cannot go to the stage as it is set up: the chart spans
    /// several namespaces while the stage names one, or Argo CD lacks a registry to pull
    /// the chart from or a namespace to put it in.
    #[error("the release cannot be placed on stage `{stage}`: {why}")]
    Unplaceable {
        /// The stage.
        stage: String,
        /// What stands in the way.
        why: String,
    },
    /// The stage's lock could not be taken, or it was lost or could not be given back
    /// during the delivery.
    #[error("stage `{stage}` could not be locked for the release")]
    Locked {
        /// The stage.
        stage: String,
        /// Why the lock failed.
        source: crate::lock::LockError,
    },
}

impl DeliveryError {
    /// The stage it happened on.
    pub fn stage(&self) -> &str {
        match self {
            Self::Failed { stage, .. }
            | Self::Unhealthy { stage, .. }
            | Self::Unplaced { stage, .. }
            | Self::Setting { stage, .. }
            | Self::Unplaceable { stage, .. }
            | Self::Locked { stage, .. } => stage,
        }
    }

    /// The engine's failure on `stage`; a failed verification or smoke test means unhealthy.
    pub fn on_stage(stage: &str, e: EngineError) -> Self {
        match e {
            EngineError::Interpret { app, source } => match *source {
                InterpretError::Unverified { source, .. } | InterpretError::Smoke { source, .. } => Self::Unhealthy {
                    stage: stage.to_owned(),
                    source,
                },
                other => Self::Failed {
                    stage: stage.to_owned(),
                    source: Box::new(EngineError::Interpret {
                        app,
                        source: Box::new(other),
                    }),
                },
            },
            other => Self::Failed {
                stage: stage.to_owned(),
                source: Box::new(other),
            },
        }
    }
}

impl crate::Diagnostic for DeliveryError {
    fn notes(&self) -> Vec<String> {
        match self {
            Self::Failed { source, .. } => std::iter::once(source.to_string()).chain(source.notes()).collect(),
            Self::Unhealthy { source, .. } => vec![source.to_string()],
            Self::Unplaced { .. } | Self::Unplaceable { .. } => Vec::new(),
            Self::Setting { source, .. } => vec![source.to_string()],
            Self::Locked { source, .. } => vec![source.to_string()],
        }
    }

    fn help(&self) -> String {
        match self {
            Self::Failed { source, .. } => source.help(),
            Self::Unhealthy { source, .. } => source.given_help().map_or_else(
                || "later stages were not touched; fix the release and release a new version".into(),
                str::to_owned,
            ),
            Self::Unplaced {
                stage,
                context_var,
                namespace_var,
            } => format!(
                "set `{namespace_var}` (a namespace of the cluster `KUBECONFIG` names), `{context_var}` (a kubeconfig context), or both, to say where `{stage}` lives; nothing was released"
            ),
            Self::Setting { source, .. } => source.help(),
            Self::Locked { source, .. } => format!("{}; earlier stages keep the release", source.help()),
            Self::Unplaceable { .. } => {
                "render the chart into one namespace (a stage's namespace replaces it), or give the stage no namespace".into()
            }
        }
    }
}

/// Asks a delivered service over HTTP whether it answers.
///
/// Checks over HTTP that a delivered service answers: the smoke test of
/// `app! { smoke: http_get("/healthz") }`, run after each stage's delivery.
#[crate::capability(crate = crate)]
#[diagnostic::on_unimplemented(
    message = "topology `{Self}` does not provide capability `HttpProbe`",
    label = "needs `HttpProbe` (asks a delivered service over HTTP), because the app has `smoke: http_get(..)`",
    note = "it is provided by the built-in topologies `ci` (`harmony::Ci`), `k8s` (`harmony_k8s::K8s`), `local` (`harmony::Local`); the generated CLI's `list` shows every topology and what it provides",
    note = "release on a topology that provides it, or drop `smoke` to use the default verification"
)]
pub trait HttpProbe: Topology {
    /// Ask the service `delivery` brought to its stage, running `image`.
    fn probe<'a>(
        &'a self,
        delivery: &'a Delivery,
        image: &'a Artifact,
        check: &'a super::HttpCheck,
    ) -> BoxFuture<'a, Result<(), crate::score::SmokeError>>;
}

/// Whether a release asks each stage over HTTP after delivering it:
/// [`NoSmoke`] runs on any releasing topology, [`HttpSmoke`] (an app with
/// `smoke: http_get(..)`) only on one that provides [`HttpProbe`].
pub trait StageSmoke<T> {
    /// How `topology` asks a stage over HTTP, when the release does.
    fn prober(topology: &T) -> Option<&dyn HttpProbe>;
}

/// Each stage is checked by its delivery's verification only.
#[derive(Debug)]
pub enum NoSmoke {}

impl<T> StageSmoke<T> for NoSmoke {
    fn prober(_: &T) -> Option<&dyn HttpProbe> {
        None
    }
}

/// Each stage is also asked over HTTP (`AppSpec::smoke`).
#[derive(Debug)]
pub enum HttpSmoke {}

impl<T: HttpProbe> StageSmoke<T> for HttpSmoke {
    fn prober(topology: &T) -> Option<&dyn HttpProbe> {
        Some(topology)
    }
}
