//! Where a release happens: build the image, push it, render the chart
//! against the pinned image, package and push the chart, then deliver it to
//! each stage in order, each gated by its verification. The image is
//! referenced by digest, so every stage runs the same bits.
//!
//! A dry run does everything that writes nothing: it builds (builds are
//! reproducible, so the digest it shows is the one a release pushes) and
//! plans each stage against what the stage holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use semver::Version;
use serde::Serialize;
use serde_json::Value;

use super::capability::{ContinuousDelivery, Delivery, DeliveryError, HelmRegistry, OciRegistry, PublishError, StageSmoke};
use super::smoke::HttpCheck;
use super::{ChartRef, ContainerBuilder};
use crate::Diagnostic;
use crate::build::{BuildError, ImageSource};
use crate::chart::{Chart, ChartError};
use crate::engine::plan::Plan;
use crate::engine::run::{Event, Mode, Progress};
use crate::object::Object;
use crate::oci::Digest;
use crate::oci::ImageRef;
use crate::oci::tag_of;
use crate::score::ScoreError;

/// What to release, as data: what to build, what to package, where to deliver.
#[derive(Clone)]
pub struct AppSpec {
    /// The app's name (e.g. `webapp-server`): release tags read `<app>-v<semver>`.
    pub name: String,
    /// The app's doc comment in `app!`; a chart made by a builder carries it as its description.
    pub doc: String,
    /// The directory paths are relative to (the declaring crate's).
    pub dir: PathBuf,
    /// What the app's image is built from.
    pub image: ImageSource,
    /// Where the app's chart comes from.
    pub chart: ChartSource,
    /// The stages, in promotion order.
    pub stages: Vec<String>,
    /// The HTTP check run after each stage's delivery, if any (besides its verification).
    pub smoke: Option<HttpCheck>,
}

impl std::fmt::Debug for AppSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSpec")
            .field("name", &self.name)
            .field("image", &self.image.describe())
            .field("stages", &self.stages)
            .finish()
    }
}

/// The objects a chart builder renders for one release.
pub type ChartBuilder = Arc<dyn Fn(&ReleaseCx) -> Result<Vec<Object>, ScoreError> + Send + Sync>;

/// Where the chart comes from.
#[derive(Clone)]
pub enum ChartSource {
    /// Built from typed Rust: a Score rendered against the pinned image.
    Builder(ChartBuilder),
    /// A chart directory, relative to the declaring crate.
    Dir(PathBuf),
    /// A chart already in a registry, installed at a pinned version.
    Published {
        /// Where the chart is: `oci://host[:port]/namespace/name`.
        url: &'static str,
        /// The pinned version, semver (`1.4.2`; a leading `v` is accepted).
        version: &'static str,
    },
}

impl std::fmt::Debug for ChartSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Builder(_) => f.write_str("Builder(..)"),
            Self::Dir(d) => f.debug_tuple("Dir").field(d).finish(),
            Self::Published { url, version } => write!(f, "Published({url}, {version})"),
        }
    }
}

/// What a chart builder knows: which app, which version, which image.
#[derive(Clone, Debug)]
pub struct ReleaseCx {
    /// The app being released.
    pub app: String,
    /// The version being released; `0.0.0` for an unreleased working tree.
    pub version: Version,
    /// The released image, pinned to its digest.
    pub image: ImageRef,
}

impl ReleaseCx {
    /// The context of an unreleased working tree (`apply`): the image is
    /// referenced by the `dev` tag and not built.
    pub fn development(app: &str) -> Self {
        let image = ImageRef::new(None, app)
            .and_then(|i| i.with_tag("dev"))
            .expect("app names are valid image names");
        Self {
            app: app.to_owned(),
            version: Version::new(0, 0, 0),
            image,
        }
    }
}

/// What a release did, or (dry run) would do.
#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    /// The app released.
    pub app: String,
    /// The version released (`1.4.2`).
    pub version: String,
    /// The name of the topology the release ran on.
    pub topology: String,
    /// The image's reference, tagged and pinned to its digest.
    pub image: String,
    /// What the image was built from, in one line ([`ImageSource::describe`]).
    pub image_source: String,
    /// Whether the registry already held this exact image.
    pub image_already_released: bool,
    /// Where the chart is, at its version: `oci://host/ns/name:1.4.2`, or
    /// `oci-layout:ns/name:1.4.2` for a local one.
    pub chart: String,
    /// The chart's digest.
    pub chart_digest: String,
    /// What delivering did (or would do) to each stage, in promotion order.
    pub stages: Vec<Plan>,
    /// Whether this was a dry run: nothing was pushed or delivered.
    pub dry_run: bool,
}

impl ReleasePlan {
    /// The release as the CLI prints it.
    pub fn to_text(&self) -> String {
        let mut out = format!("{} {} on {}:\n", self.app, self.version, self.topology);
        let verb = |done: &str, todo: &str| if self.dry_run { todo.to_owned() } else { done.to_owned() };
        out.push_str(&format!("  image  {}: {}\n", verb("built", "would build"), self.image_source));
        let pushed = if self.image_already_released {
            "already released".to_owned()
        } else {
            verb("pushed", "would push")
        };
        out.push_str(&format!("         {pushed}: {}\n", self.image));
        out.push_str(&format!(
            "  chart  {}: {} ({})\n",
            verb("pushed", "would push"),
            self.chart,
            self.chart_digest
        ));
        for plan in &self.stages {
            let s = plan.summary();
            let state = if s.is_empty() { "up to date".to_owned() } else { s.to_string() };
            out.push_str(&format!(
                "  stage  {}: {} ({state})\n",
                plan.topology,
                verb("delivered and verified", "would deliver")
            ));
            for line in plan.to_text().lines().skip(1) {
                out.push_str(&format!("    {line}\n"));
            }
        }
        out
    }
}

/// A release failed; what was done before the failure stays done.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The image could not be built, or the check made before any build (the Dockerfile is
    /// there, the tool runs) failed.
    #[error("the image of `{app}` could not be built")]
    Build {
        /// The app being released.
        app: String,
        /// Why the build failed.
        source: BuildError,
    },
    /// A registry could not be read or written (the image, the chart, the records of
    /// stages where a version failed), or a name or tag cannot form a reference.
    #[error("`{app}` {version} could not be published")]
    Publish {
        /// The app being released.
        app: String,
        /// The version being released.
        version: String,
        /// Why publishing failed.
        source: Box<PublishError>,
    },
    /// The registry already holds this version's tag with another image than the one just
    /// built. Nothing is pushed: a released version is never overwritten.
    #[error("`{app}` {version} was already released with a different image ({existing}); this build is {built}")]
    AlreadyReleased {
        /// The app being released.
        app: String,
        /// The version being released.
        version: String,
        /// The digest the registry holds under the version's tag.
        existing: String,
        /// The digest of the image this run built.
        built: String,
    },
    /// The chart could not be made: its builder failed, its directory cannot be read or
    /// holds templates that are not plain manifests, or a published chart could not be
    /// pulled and rendered.
    #[error("the chart of `{app}` could not be made")]
    Chart {
        /// The app being released.
        app: String,
        /// What went wrong.
        why: String,
        /// What to do about it.
        help: String,
    },
    /// This version failed on a stage in an earlier release and `--retry-failed` was not
    /// given. Found before any build.
    #[error("`{app}` {version} failed on stage `{stage}` before, and is not delivered there again")]
    FailedBefore {
        /// The app being released.
        app: String,
        /// The version being released.
        version: String,
        /// The first stage, in promotion order, where the version failed.
        stage: String,
    },
    /// A stage cannot be delivered to as set up. Found by the check made before any work.
    #[error("`{app}` cannot be released: {source}")]
    Undeliverable {
        /// The app being released.
        app: String,
        /// Why the stage cannot be delivered to.
        source: Box<DeliveryError>,
    },
    /// Delivering to a stage (or, in a dry run, planning it) failed; earlier stages keep
    /// the release and later ones are not touched.
    #[error("`{app}` {version} failed on stage `{stage}`")]
    Delivery {
        /// The app being released.
        app: String,
        /// The version being released.
        version: String,
        /// The stage that failed.
        stage: String,
        /// Why the delivery failed.
        source: Box<DeliveryError>,
    },
}

impl crate::Diagnostic for ReleaseError {
    fn notes(&self) -> Vec<String> {
        match self {
            Self::Build { source, .. } => vec![source.to_string()],
            Self::Publish { source, .. } => vec![source.to_string()],
            Self::AlreadyReleased { .. } => vec!["a released version is immutable: its tag already names other bits".into()],
            Self::Chart { why, .. } => vec![why.clone()],
            Self::Delivery { source, .. } => std::iter::once(source.to_string()).chain(source.notes()).collect(),
            Self::Undeliverable { source, .. } => source.notes(),
            Self::FailedBefore { stage, .. } => vec![format!(
                "its smoke test or verification did not pass on `{stage}`; a rerun stops here instead of delivering the same bits again"
            )],
        }
    }

    fn help(&self) -> String {
        match self {
            Self::Build { source, .. } => source.help(),
            Self::Publish { source, .. } => source.help(),
            Self::AlreadyReleased { .. } => "release a new version (a new tag); the released one stays as it is".into(),
            Self::Chart { help, .. } => help.clone(),
            Self::Delivery { source, .. } | Self::Undeliverable { source, .. } => source.help(),
            Self::FailedBefore { version, .. } => format!(
                "release a fixed version (a new tag), or deliver {version} again with `release --retry-failed` once what failed is fixed outside the release"
            ),
        }
    }
}

static RETRY_FAILED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The user asked to deliver again to stages where a version failed before
/// (`release --retry-failed`); for the rest of the process.
pub fn retry_failed() {
    RETRY_FAILED.store(true, std::sync::atomic::Ordering::Relaxed);
}

fn retrying_failed() -> bool {
    RETRY_FAILED.load(std::sync::atomic::Ordering::Relaxed)
}

/// What a stage remembers of a version that did not pass there: a small
/// artifact next to the app's images, tagged `<version>.failed-on-<stage>`,
/// so every runner that releases sees it, and a rerun never silently
/// delivers a version that failed. A retry that passes overwrites it with a
/// record whose digest is known in advance, which clears it.
struct StageRecord;

impl StageRecord {
    const MEDIA: &'static str = "application/vnd.harmony.stage-record.v1+json";

    fn tag(version: &Version, stage: &str) -> String {
        format!("{}.failed-on-{stage}", tag_of(version))
    }

    fn artifact(app: &str, version: &Version, stage: &str, outcome: Value) -> crate::oci::Artifact {
        let record = serde_json::json!({"app": app, "version": version.to_string(), "stage": stage, "outcome": outcome});
        let bytes = serde_json::to_vec(&record).expect("a record is JSON");
        crate::oci::Artifact::new(
            crate::oci::Blob::new(Self::MEDIA, bytes.clone()),
            vec![crate::oci::Blob::new(Self::MEDIA, bytes)],
        )
    }

    fn failed(app: &str, version: &Version, stage: &str, image: &ImageRef, why: &str) -> crate::oci::Artifact {
        Self::artifact(app, version, stage, serde_json::json!({"failed": why, "image": image.to_string()}))
    }

    fn cleared(app: &str, version: &Version, stage: &str) -> crate::oci::Artifact {
        Self::artifact(app, version, stage, Value::String("passed on retry".into()))
    }
}

/// The stages where `version` failed before and was not retried since.
async fn failed_stages<T: OciRegistry>(spec: &AppSpec, version: &Version, topology: &T) -> Result<Vec<String>, PublishError> {
    let mut failed = Vec::new();
    for stage in &spec.stages {
        let cleared = StageRecord::cleared(&spec.name, version, stage).digest();
        let record = topology.image_digest(&spec.name, &StageRecord::tag(version, stage)).await?;
        if record.is_some_and(|d| d != cleared) {
            failed.push(stage.clone());
        }
    }
    Ok(failed)
}

/// Release `spec` at `version` on `topology`; `S` says whether stages are
/// also smoke-tested over HTTP.
pub async fn release<T, S>(
    spec: &AppSpec,
    version: &Version,
    topology: &T,
    mode: Mode,
    progress: &dyn Progress,
) -> Result<ReleasePlan, ReleaseError>
where
    T: ContainerBuilder + OciRegistry + HelmRegistry + ContinuousDelivery,
    S: StageSmoke<T>,
{
    let prober = S::prober(topology);
    let app = spec.name.clone();
    let v = version.to_string();
    let publish = |source| ReleaseError::Publish {
        app: app.clone(),
        version: v.clone(),
        source: Box::new(source),
    };
    let say = |line: String| progress.event(&Event::Release { line });
    // Everything that can be checked at once is, before the slow work: where
    // the stages go, and what the image build needs.
    topology.check_stages(&spec.stages).map_err(|source| ReleaseError::Undeliverable {
        app: app.clone(),
        source: Box::new(source),
    })?;
    topology
        .check_build(&spec.image, &spec.dir, &spec.name)
        .map_err(|source| ReleaseError::Build { app: app.clone(), source })?;
    let failed_before = failed_stages(spec, version, topology).await.map_err(publish)?;
    if let Some(stage) = failed_before.first().filter(|_| !retrying_failed()) {
        return Err(ReleaseError::FailedBefore {
            app,
            version: v,
            stage: stage.clone(),
        });
    }
    // A published chart does not depend on the image: it is pulled and
    // rendered first, so a chart that cannot be had stops the release before any work.
    let published = match &spec.chart {
        ChartSource::Published { .. } => Some(chart_of(spec, &ReleaseCx::development(&spec.name))?),
        _ => None,
    };

    // 1. The image: build it, refuse to overwrite a released version, push it.
    say(format!(
        "building image: {} (a first build compiles everything; later ones reuse the cache)",
        spec.image.describe()
    ));
    let built = topology
        .build_image(&spec.image, &spec.dir, &spec.name, version)
        .await
        .map_err(|source| ReleaseError::Build { app: app.clone(), source })?;
    let tag = tag_of(version);
    say(format!("built image {} ({})", built.digest(), spec.image.describe()));
    let existing = topology.image_digest(&spec.name, &tag).await.map_err(publish)?;
    if let Some(existing) = existing.as_ref().filter(|e| **e != built.digest()) {
        return Err(ReleaseError::AlreadyReleased {
            app,
            version: v,
            existing: existing.to_string(),
            built: built.digest().to_string(),
        });
    }
    let image = match mode {
        Mode::Apply => {
            let pushed = topology.push_image(&spec.name, &tag, &built).await.map_err(publish)?;
            say(format!("pushed image {pushed}"));
            pushed
        }
        Mode::DryRun => topology
            .image_location(&spec.name)
            .map_err(publish)?
            .with_tag(&tag)
            .map_err(|e| {
                publish(PublishError::BadName {
                    name: tag.clone(),
                    why: e.why,
                })
            })?
            .with_digest(built.digest()),
    };

    // 2. The chart: rendered against the pinned image, stamped, packaged, pushed.
    let cx = ReleaseCx {
        app: app.clone(),
        version: version.clone(),
        image: image.clone(),
    };
    let (chart_ref, chart_digest, objects): (ChartRef, Digest, Vec<Object>) =
        match (published.map_or_else(|| chart_of(spec, &cx), Ok)?, mode) {
            (Packaged::Made(chart, objects), Mode::Apply) => {
                let (location, digest) = topology.push_chart(&chart, version).await.map_err(publish)?;
                say(format!("pushed chart {location} ({digest})"));
                (location, digest, objects)
            }
            (Packaged::Made(chart, objects), Mode::DryRun) => {
                let location = topology.chart_location(chart.name(), version).map_err(publish)?;
                let digest = chart
                    .clone()
                    .stamped(version)
                    .artifact()
                    .map_err(|e| publish(PublishError::Chart(e)))?
                    .digest();
                (location, digest, objects)
            }
            (Packaged::Published(location, digest, objects), _) => {
                say(format!(
                    "chart {location} is published: pulled and rendered by helm ({digest}, {} objects)",
                    objects.len()
                ));
                (location, digest, objects)
            }
        };

    // 3. The stages, in order: each delivered and verified before the next.
    let objects: std::sync::Arc<[Object]> = objects.into();
    let mut stages = Vec::with_capacity(spec.stages.len());
    for stage in &spec.stages {
        let delivery = Delivery {
            app: app.clone(),
            stage: stage.clone(),
            chart: chart_ref.clone(),
            chart_digest: chart_digest.clone(),
            objects: objects.clone(),
        };
        let plan = match mode {
            Mode::Apply => {
                let fail = |source: DeliveryError| ReleaseError::Delivery {
                    app: app.clone(),
                    version: v.clone(),
                    stage: stage.clone(),
                    source: Box::new(source),
                };
                // The stage's lock, for as long as the delivery writes it.
                let me = crate::lock::Holder::this_process(format!("release {app} {v} to {stage}"));
                let waiting = |holder: Option<&crate::lock::Holder>| {
                    let who = holder.map_or_else(|| "another run".to_owned(), crate::lock::Holder::describe);
                    say(format!(
                        "waiting for stage {stage}: it is locked by {who} (up to {}s, `--lock-timeout`)",
                        crate::lock::timeout_from_env().as_secs()
                    ));
                };
                let (lock, took_over) = crate::lock::acquire(
                    || topology.try_lock_stage(&delivery, &me),
                    &format!("{app} on stage {stage}"),
                    crate::lock::timeout_from_env(),
                    &waiting,
                )
                .await
                .map_err(|source| {
                    fail(DeliveryError::Locked {
                        stage: stage.clone(),
                        source,
                    })
                })?;
                if let Some(ended) = took_over {
                    say(format!(
                        "took over the lock of stage {stage} from {}, which ended without releasing it",
                        ended.describe()
                    ));
                }
                let delivered = match topology.deliver(&delivery).await {
                    Ok(plan) => {
                        say(format!("delivered to {stage} and verified ({})", plan.summary()));
                        match (&spec.smoke, prober) {
                            (Some(check), Some(prober)) => match prober.probe(&delivery, &built, check).await {
                                Ok(()) => {
                                    say(format!("smoke test on {stage} passed: GET {} answered 2xx", check.path));
                                    Ok(plan)
                                }
                                Err(source) => Err(DeliveryError::Unhealthy {
                                    stage: stage.clone(),
                                    source,
                                }),
                            },
                            _ => Ok(plan),
                        }
                    }
                    Err(e) => Err(e),
                };
                let record = match &delivered {
                    // Only a stage that took the release and is not healthy
                    // holds a failed version; one that could not be reached did not fail it.
                    // What the check said stays out of the record: a server's
                    // answer could quote anything, and the registry is widely read.
                    Err(e @ DeliveryError::Unhealthy { .. }) => Some(StageRecord::failed(&app, version, stage, &image, &e.to_string())),
                    Ok(_) if failed_before.contains(stage) => Some(StageRecord::cleared(&app, version, stage)),
                    _ => None,
                };
                if let Some(record) = record {
                    let recorded = topology.push_image(&spec.name, &StageRecord::tag(version, stage), &record).await;
                    if let Err(e) = recorded {
                        say(format!("warning: the outcome on {stage} could not be recorded: {e}"));
                    }
                }
                let released = lock.release().await;
                let plan = delivered.map_err(fail)?;
                released.map_err(|source| {
                    fail(DeliveryError::Locked {
                        stage: stage.clone(),
                        source,
                    })
                })?;
                plan
            }
            Mode::DryRun => topology.plan_delivery(&delivery).await.map_err(|e| ReleaseError::Delivery {
                app: app.clone(),
                version: v.clone(),
                stage: stage.clone(),
                source: Box::new(e),
            })?,
        };
        stages.push(plan);
    }

    Ok(ReleasePlan {
        app,
        version: v,
        topology: topology.name().to_owned(),
        image: image.to_string(),
        image_source: spec.image.describe(),
        image_already_released: existing.is_some(),
        chart: chart_ref.to_string(),
        chart_digest: chart_digest.to_string(),
        stages,
        dry_run: mode == Mode::DryRun,
    })
}

/// The chart of a release, and the objects it holds.
enum Packaged {
    /// Made here, from a builder or a directory: pushed with the release.
    Made(Chart, Vec<Object>),
    /// Published already, at its pinned version: pulled and rendered by
    /// helm, never pushed again.
    Published(ChartRef, Digest, Vec<Object>),
}

fn chart_of(spec: &AppSpec, cx: &ReleaseCx) -> Result<Packaged, ReleaseError> {
    package(&spec.name, &spec.doc, &spec.dir, &spec.chart, cx).map_err(|(why, help)| ReleaseError::Chart {
        app: spec.name.clone(),
        why,
        help,
    })
}

/// The chart of `app` and the objects it delivers: a builder's for `cx`, a
/// directory's plain manifests (relative to the declaring crate's `dir`), or
/// a published chart rendered by helm. Err: why, and what to do.
fn package(app: &str, doc: &str, dir: &Path, source: &ChartSource, cx: &ReleaseCx) -> Result<Packaged, (String, String)> {
    match source {
        ChartSource::Builder(build) => {
            let objects = build(cx).map_err(|e| (e.to_string(), e.help()))?;
            Ok(Packaged::Made(Chart::from_objects(app, doc, &objects), objects))
        }
        ChartSource::Dir(chart_dir) => {
            let path = dir.join(chart_dir);
            let chart = Chart::from_dir(&path).map_err(|e: ChartError| (e.to_string(), e.help()))?;
            let objects = chart.plain_objects().map_err(|(file, why)| {
                (
                    format!("template `{file}` of `{}` {why}", path.display()),
                    "the GitOps delivery takes charts whose templates are plain manifests; render templated charts with `chart: builder(…)`".into(),
                )
            })?;
            Ok(Packaged::Made(chart, objects))
        }
        ChartSource::Published { url, version } => {
            let chart = ChartRef::parse(url, version).map_err(|e| (e.to_string(), e.help()))?;
            let rendered = crate::helm::Helm::find()
                .and_then(|helm| helm.render(&chart, app, Some(app), &serde_json::json!({})))
                .map_err(|e| (e.to_string(), e.help()))?;
            Ok(Packaged::Published(chart, rendered.digest, rendered.objects))
        }
    }
}

impl Packaged {
    fn objects(&self) -> &[Object] {
        match self {
            Packaged::Made(_, objects) | Packaged::Published(_, _, objects) => objects,
        }
    }
}

/// What `apply` deploys for an app whose chart is a directory or a published
/// chart (`app! { chart: dir(..) }`, `published(..)`): that chart's objects,
/// as its releases deliver them. One app, one thing it deploys.
#[derive(Clone, Debug)]
pub struct ChartObjects {
    app: &'static str,
    /// The declaring crate's directory, which `dir(..)` is relative to.
    dir: PathBuf,
    source: ChartSource,
}

impl ChartObjects {
    /// The objects of app `app`'s chart `source`, read relative to `dir` (the app crate's directory).
    pub fn new(app: &'static str, dir: PathBuf, source: ChartSource) -> Self {
        Self { app, dir, source }
    }
}

// Kept out of rustc's "other types" lists: users never write it.
#[diagnostic::do_not_recommend]
impl crate::score::Render for ChartObjects {
    fn render(&self, _: &crate::score::RenderCx) -> Result<crate::object::Desired, ScoreError> {
        let cx = ReleaseCx::development(self.app);
        let packaged = package(self.app, "", &self.dir, &self.source, &cx)
            .map_err(|(why, help)| ScoreError::invalid(format!("the chart of `{}`", self.app), why, help))?;
        let mut desired = crate::object::Desired::new();
        for object in packaged.objects() {
            desired.push_object(object.clone());
        }
        Ok(desired)
    }
}

// Kept out of rustc's "other types" lists: users never write it.
#[diagnostic::do_not_recommend]
impl crate::score::IsScore for ChartObjects {
    fn needs(out: &mut Vec<&'static str>) {
        out.push(<dyn crate::capability::K8sDeploy as crate::capability::IsCapability>::NAME);
    }

    fn render_tree(&self, cx: &crate::score::RenderCx) -> Result<crate::object::Desired, ScoreError> {
        cx.part(crate::score::Render::render(self, cx))
    }
}

// Kept out of rustc's "other types" lists: users never write it.
#[diagnostic::do_not_recommend]
impl<T: crate::topology::Topology + crate::capability::K8sDeploy> crate::score::Score<T> for ChartObjects {}

// Kept out of rustc's "other types" lists: users never write it.
#[diagnostic::do_not_recommend]
impl<T: crate::topology::Topology + crate::capability::K8sDeploy> crate::score::Interpret<T> for ChartObjects {
    async fn execute(&self, topology: &T, run: &mut crate::engine::run::Run) -> Result<(), crate::engine::run::InterpretError> {
        let desired = run.desired(|cx| crate::score::Render::render(self, cx))?;
        run.deploy(topology, &desired).await?;
        run.verify(topology, &desired).await
    }
}

/// What a chart builder returns: the app's Score (`builder`'s bound).
#[diagnostic::on_unimplemented(
    message = "a chart builder returns the app's Score, and `{Self}` is not a Score",
    label = "its chart builder returns `{Self}`",
    note = "return the Score itself (`fn my_chart(cx: &harmony::release::ReleaseCx) -> MyScore`), a struct of your own with `#[derive(harmony::Score)]`",
    note = "a chart that cannot be made is a `ScoreError` from the Score's `impl Render`, which the release reports"
)]
#[allow(non_camel_case_types)] // named for the key the user wrote
pub trait chart_builder_returns_a_score: crate::score::IsScore {}

#[diagnostic::do_not_recommend]
impl<S: crate::score::IsScore> chart_builder_returns_a_score for S {}

/// A chart builder from a function that makes the app's Score for a release
/// (`app! { chart: builder(f) }`: named as the user writes it, for rustc's
/// notes). Rendering is pure, so it needs no particular topology.
#[rustfmt::skip] // one argument a line: rustc's note on a non-Score shows the name and the bound
pub fn builder<S>(
    app: &'static str,
    make: impl Fn(&ReleaseCx) -> S + Send + Sync + 'static,
) -> ChartSource
where
    S: chart_builder_returns_a_score + 'static,
{
    ChartSource::Builder(std::sync::Arc::new(move |cx: &ReleaseCx| {
        crate::engine::render(app, "release", &make(cx)).map_err(|e| match e {
            crate::engine::EngineError::Render { source, .. } => source,
            other => ScoreError::invalid(format!("the chart of `{app}`"), other.notes().join("; "), other.help()),
        })
    }))
}
