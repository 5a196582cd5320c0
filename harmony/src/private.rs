//! What generated code names, and nothing else uses. Not a public API: it
//! changes with the macros, which are pinned to this exact crate version.

use std::marker::PhantomData;

pub use ::core::future::Future;
pub use ::core::result::Result;
pub use ::inventory;
pub use ::std::vec::Vec;

pub use crate::capability::{IsCapability, K8sDeploy};
pub use crate::object::Desired;
pub use crate::registry::{AppEntry, FieldInfo, Location, Runner, ScoreEntry};
pub use crate::run::{InterpretError, Run};
pub use crate::score::{Interpret, Render, RenderCx, Score, ScoreError, SmokeError};
pub use crate::topology::{BuiltinTopology, Topology};
pub use crate::{__app_runners as app_runners, __release_runners as release_runners, __score_topologies as score_topologies};

pub use crate::build::{ImageSource, RustBinary};
use crate::engine;
use crate::registry::{Outcome, Request, RunError};
pub use crate::registry::{ReleaseEntry, ReleaseRunner};
use crate::release::pipeline;
pub use crate::release::pipeline::{HttpSmoke, NoSmoke, StageSmoke};
pub use crate::release::{
    AppSpec, ChartSource, ContainerBuilder, ContinuousDelivery, HelmRegistry, HttpCheck, HttpProbe, OciRegistry, ReleaseCx,
};

/// Marks the types `#[derive(Score)]` implements `Score` for (on some
/// topology), so that a child or an app that is not a Score is an error where
/// it is written, whatever the topology.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Score",
    label = "not a Score",
    note = "derive it with `#[derive(harmony::Score)]`, or use a `Vec` of Scores"
)]
pub trait IsScore {}

impl<S: IsScore> IsScore for Vec<S> {}

/// Fails to compile unless `S` is a Score.
pub const fn assert_score<S: IsScore>() {}

/// Fails to compile unless `make` makes a Score.
pub fn score_of<S: IsScore>(_make: impl Fn() -> S) {}

/// The runner of an app on a built-in topology. Fails to compile, naming the
/// missing capability, when the app's Score cannot run there.
pub fn runner<T, S>(app: &'static str, make: impl Fn() -> S + Send + Sync + 'static) -> Runner
where
    T: BuiltinTopology + K8sDeploy,
    S: Score<T> + 'static,
{
    Runner::new(
        T::NAME,
        Box::new(move |request| {
            let score = make();
            Box::pin(async move {
                let topology = T::from_env()?;
                let outcome = match request {
                    Request::Render => Outcome::Rendered(engine::render::<T, S>(app, T::NAME, &score)?),
                    Request::Plan => Outcome::Planned(engine::plan(app, &score, &topology).await?),
                    Request::DryRun { progress } => Outcome::Planned(engine::dry_run(app, &score, &topology, progress).await?),
                    Request::Apply { progress } => Outcome::Planned(engine::apply(app, &score, &topology, progress).await?),
                };
                Ok::<_, RunError>(outcome)
            })
        }),
    )
}

/// The release runner of an app on a built-in topology. Fails to compile,
/// naming the missing capability, when the topology cannot release (or, with
/// `S = HttpSmoke`, cannot run the app's smoke test).
pub fn release_runner<T, S>(spec: fn() -> AppSpec) -> ReleaseRunner
where
    T: BuiltinTopology + ContainerBuilder + OciRegistry + HelmRegistry + ContinuousDelivery,
    S: StageSmoke<T> + 'static,
{
    ReleaseRunner::new(
        T::NAME,
        Box::new(move |version, mode, progress| {
            let spec = spec();
            Box::pin(async move {
                let topology = T::from_env()?;
                Ok(pipeline::release::<T, S>(&spec, &version, &topology, mode, &*progress).await?)
            })
        }),
    )
}

/// A chart builder from a function that makes the app's Score for a release.
pub fn chart_builder<S>(app: &'static str, make: fn(&ReleaseCx) -> S) -> ChartSource
where
    S: Score<crate::local::Local> + 'static,
{
    ChartSource::Builder(std::sync::Arc::new(move |cx: &ReleaseCx| {
        engine::render::<crate::local::Local, S>(app, "release", &make(cx)).map_err(|e| match e {
            engine::EngineError::Render { source, .. } => source,
            other => ScoreError::invalid(format!("the chart of `{app}`"), other.why(), other.help()),
        })
    }))
}

/// The type name of what `make` returns.
pub fn type_name_of<S>(_make: impl Fn() -> S) -> &'static str {
    std::any::type_name::<S>()
}

// Autoref specialization: method lookup on `&&Probe` takes the impl on `&Probe`
// when its bounds hold (the Score runs on `T`), and falls back to the impl on
// `Probe` when they do not. See docs/adr/0003-registry.md.

/// Probes whether an app's Score (made by `F`) runs on topology `T`.
#[derive(Debug)]
pub struct AppProbe<F, T> {
    app: &'static str,
    make: F,
    topology: PhantomData<T>,
}

impl<F, T> AppProbe<F, T> {
    pub fn new(app: &'static str, make: F) -> Self {
        Self {
            app,
            make,
            topology: PhantomData,
        }
    }
}

pub trait AppRuns {
    fn runner(&self) -> Option<Runner>;
}

impl<F, S, T> AppRuns for &AppProbe<F, T>
where
    F: Fn() -> S + Copy + Send + Sync + 'static,
    S: Score<T> + 'static,
    T: BuiltinTopology + K8sDeploy,
{
    fn runner(&self) -> Option<Runner> {
        Some(runner::<T, S>(self.app, self.make))
    }
}

pub trait AppDoesNotRun {
    fn runner(&self) -> Option<Runner>;
}

impl<F, T> AppDoesNotRun for AppProbe<F, T> {
    fn runner(&self) -> Option<Runner> {
        None
    }
}

/// Probes whether Score type `S` runs on topology `T`.
#[derive(Debug)]
pub struct ScoreProbe<S, T>(PhantomData<(fn() -> S, T)>);

impl<S, T> ScoreProbe<S, T> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

pub trait ScoreRuns {
    fn topology(&self) -> Option<&'static str>;
}

impl<S: Score<T>, T: BuiltinTopology> ScoreRuns for &ScoreProbe<S, T> {
    fn topology(&self) -> Option<&'static str> {
        Some(T::NAME)
    }
}

pub trait ScoreDoesNotRun {
    fn topology(&self) -> Option<&'static str>;
}

impl<S, T> ScoreDoesNotRun for ScoreProbe<S, T> {
    fn topology(&self) -> Option<&'static str> {
        None
    }
}

/// The built-in topologies a Score type runs on (every built-in topology is listed here).
#[doc(hidden)]
#[macro_export]
macro_rules! __score_topologies {
    ($score:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::{ScoreDoesNotRun as _, ScoreProbe, ScoreRuns as _};
        let mut topologies = $crate::__private::Vec::new();
        topologies.extend((&&ScoreProbe::<$score, $crate::local::Local>::new()).topology());
        topologies.extend((&&ScoreProbe::<$score, $crate::ci::Ci>::new()).topology());
        topologies
    }};
}

/// The runners of an app on every built-in topology its Score runs on.
#[doc(hidden)]
#[macro_export]
macro_rules! __app_runners {
    ($app:expr, $make:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::{AppDoesNotRun as _, AppProbe, AppRuns as _};
        let mut runners = $crate::__private::Vec::new();
        runners.extend((&&AppProbe::<_, $crate::local::Local>::new($app, $make)).runner());
        runners.extend((&&AppProbe::<_, $crate::ci::Ci>::new($app, $make)).runner());
        runners
    }};
}

/// Probes whether built-in topology `T` can release an app smoke-tested by `S`.
#[derive(Debug)]
pub struct ReleaseProbe<T, S>(PhantomData<(T, S)>);

impl<T, S> ReleaseProbe<T, S> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

pub trait Releases {
    fn runner(&self, spec: fn() -> AppSpec) -> Option<ReleaseRunner>;
}

impl<T, S> Releases for &ReleaseProbe<T, S>
where
    T: BuiltinTopology + ContainerBuilder + OciRegistry + HelmRegistry + ContinuousDelivery,
    S: StageSmoke<T> + 'static,
{
    fn runner(&self, spec: fn() -> AppSpec) -> Option<ReleaseRunner> {
        Some(release_runner::<T, S>(spec))
    }
}

pub trait DoesNotRelease {
    fn runner(&self, spec: fn() -> AppSpec) -> Option<ReleaseRunner>;
}

impl<T, S> DoesNotRelease for ReleaseProbe<T, S> {
    fn runner(&self, _: fn() -> AppSpec) -> Option<ReleaseRunner> {
        None
    }
}

/// The release runners of an app (smoke-tested by `$smoke`) on every built-in
/// topology that can release it.
#[doc(hidden)]
#[macro_export]
macro_rules! __release_runners {
    ($spec:expr, $smoke:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::{DoesNotRelease as _, ReleaseProbe, Releases as _};
        let mut runners = $crate::__private::Vec::new();
        runners.extend((&&ReleaseProbe::<$crate::local::Local, $smoke>::new()).runner($spec));
        runners.extend((&&ReleaseProbe::<$crate::ci::Ci, $smoke>::new()).runner($spec));
        runners
    }};
}
