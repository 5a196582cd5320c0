//! What generated code names, and nothing else uses. Not a public API: it
//! changes with the macros, which are pinned to this exact crate version.

pub use ::core::future::Future;
pub use ::core::result::Result;
pub use ::inventory;
pub use ::std::boxed::Box;
pub use ::std::path::PathBuf;
pub use ::std::string::String;
pub use ::std::sync::Arc;
pub use ::std::vec::Vec;

pub use crate::capability::{BoxFuture, IsCapability, K8sDeploy};
pub use crate::checks::{
    Asked, Capability, ChartBuilder, ChildFieldsOnly, Different, IsNotAScore, NotAScorePromise, Placement, Promise, RunsOnCi, RunsOnLocal,
    SendAndSync, SmokeFn, SmokeOfTheRightShape, TakesTheReleaseContext, a_Score_with_child_fields_has_no_impl_Render, app, app_topologies,
    buildable, builder as builder_of_a_chart, harmony_capability, releases_on_topologies, requires as requires_listed_once, requires,
    score, score_child, score_secret, smoke as smoke_of_another_shape, smoke_for_any_topology, topologies as topologies_listed_once,
};
pub use crate::engine::any_topology::AnyTopology;
pub use crate::engine::registry::{AppEntry, CapabilityEntry, FieldInfo, Location, ScoreEntry};
pub use crate::engine::run::{InterpretError, Run, ScoreAt};
pub use crate::object::{Desired, Object};
pub use crate::release::pipeline::{ChartObjects, builder};
pub use crate::score::{Interpret, IsScore, Render, RenderCx, Score, ScoreError, SmokeError};
pub use crate::topology::{SelectableTopology, Topology};
pub use crate::{__probe_capability as probe_capability, __shipped_capabilities as shipped_capabilities};

pub use crate::build::{ImageSource, RustBinary};
use crate::engine;
pub use crate::engine::EngineError;
pub use crate::engine::plan::{ExactPlan, Plan};
pub use crate::engine::registry::RegisteredApp;
pub use crate::engine::registry::ReleaseEntry;
pub use crate::engine::run::{Mode, Progress};
pub use crate::release::capability::{HttpSmoke, NoSmoke, StageSmoke};
use crate::release::pipeline;
pub use crate::release::{
    AppSpec, ChartSource, ContainerBuilder, ContinuousDelivery, HelmRegistry, HttpCheck, HttpProbe, OciRegistry, ReleaseCx, ReleaseError,
    ReleasePlan, Version,
};

/// The capabilities Score type `S` needs, sorted.
pub fn needs<S: IsScore>() -> Vec<&'static str> {
    let mut out = Vec::new();
    S::needs(&mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// What an app needs: its Score tree's needs, and `K8sDeploy`, through which
/// every app is planned and applied.
fn app_needs<S: IsScore>() -> Vec<&'static str> {
    let mut out = needs::<S>();
    out.push(<dyn K8sDeploy as IsCapability>::NAME);
    out.sort_unstable();
    out.dedup();
    out
}

// Autoref specialization: `(&&AppFns(make))` takes the impl on `&AppFns`
// when `make` makes a Score, and the fallback on `AppFns` when it does not,
// so that a non-Score in `app!` is the one error `score` reports, not a
// cascade. The fallback is never part of a program that compiles. The
// `RegisteredApp` that `app!` generates hands each command to these.

/// The commands of an app whose root Score `make` makes.
#[derive(Debug)]
pub struct AppFns<F>(pub F);

type Answer<'a, T> = BoxFuture<'a, Result<T, EngineError>>;

pub trait AppIsScore {
    fn needs(&self) -> Vec<&'static str>;
    fn render(&self, app: &'static str, topology: &AnyTopology) -> Result<Vec<Object>, EngineError>;
    fn plan<'a>(&self, app: &'static str, topology: &'a AnyTopology) -> Answer<'a, Plan>;
    fn exact_plan<'a>(&self, app: &'static str, topology: &'a AnyTopology) -> Answer<'a, ExactPlan>;
    fn dry_run<'a>(
        &self,
        app: &'static str,
        topology: &'a AnyTopology,
        plan: &'a ExactPlan,
        progress: Arc<dyn Progress>,
    ) -> Answer<'a, Plan>;
    fn apply<'a>(&self, app: &'static str, topology: &'a AnyTopology, plan: &'a ExactPlan, progress: Arc<dyn Progress>)
    -> Answer<'a, Plan>;
}

impl<F, S> AppIsScore for &AppFns<F>
where
    F: Fn() -> S,
    S: Score<AnyTopology> + IsScore + 'static,
{
    fn needs(&self) -> Vec<&'static str> {
        app_needs::<S>()
    }

    fn render(&self, app: &'static str, topology: &AnyTopology) -> Result<Vec<Object>, EngineError> {
        engine::render(app, topology.name(), &(self.0)())
    }

    fn plan<'a>(&self, app: &'static str, topology: &'a AnyTopology) -> Answer<'a, Plan> {
        let score = (self.0)();
        Box::pin(async move { engine::plan(app, &score, topology).await })
    }

    fn exact_plan<'a>(&self, app: &'static str, topology: &'a AnyTopology) -> Answer<'a, ExactPlan> {
        let score = (self.0)();
        Box::pin(async move { engine::exact_plan(app, &score, topology).await })
    }

    fn dry_run<'a>(
        &self,
        app: &'static str,
        topology: &'a AnyTopology,
        plan: &'a ExactPlan,
        progress: Arc<dyn Progress>,
    ) -> Answer<'a, Plan> {
        let score = (self.0)();
        Box::pin(async move { engine::dry_run_plan(app, &score, topology, plan, progress).await })
    }

    fn apply<'a>(
        &self,
        app: &'static str,
        topology: &'a AnyTopology,
        plan: &'a ExactPlan,
        progress: Arc<dyn Progress>,
    ) -> Answer<'a, Plan> {
        let score = (self.0)();
        Box::pin(async move { engine::apply(app, &score, topology, plan, progress).await })
    }
}

pub trait AppIsNotScore {
    fn needs(&self) -> Vec<&'static str>;
    fn render(&self, app: &'static str, topology: &AnyTopology) -> Result<Vec<Object>, EngineError>;
    fn plan<'a>(&self, app: &'static str, topology: &'a AnyTopology) -> Answer<'a, Plan>;
    fn exact_plan<'a>(&self, app: &'static str, topology: &'a AnyTopology) -> Answer<'a, ExactPlan>;
    fn dry_run<'a>(
        &self,
        app: &'static str,
        topology: &'a AnyTopology,
        plan: &'a ExactPlan,
        progress: Arc<dyn Progress>,
    ) -> Answer<'a, Plan>;
    fn apply<'a>(&self, app: &'static str, topology: &'a AnyTopology, plan: &'a ExactPlan, progress: Arc<dyn Progress>)
    -> Answer<'a, Plan>;
}

/// What every command of an app whose `score` is not a Score answers (never
/// reached: such a program does not compile).
fn not_a_score(app: &str) -> EngineError {
    EngineError::Render {
        app: app.to_owned(),
        source: ScoreError::invalid(
            "the app's `score`",
            "it is not a Score",
            "derive it with `#[derive(harmony::Score)]`",
        ),
    }
}

impl<F> AppIsNotScore for AppFns<F> {
    fn needs(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn render(&self, app: &'static str, _: &AnyTopology) -> Result<Vec<Object>, EngineError> {
        Err(not_a_score(app))
    }

    fn plan<'a>(&self, app: &'static str, _: &'a AnyTopology) -> Answer<'a, Plan> {
        Box::pin(async move { Err(not_a_score(app)) })
    }

    fn exact_plan<'a>(&self, app: &'static str, _: &'a AnyTopology) -> Answer<'a, ExactPlan> {
        Box::pin(async move { Err(not_a_score(app)) })
    }

    fn dry_run<'a>(&self, app: &'static str, _: &'a AnyTopology, _: &'a ExactPlan, _: Arc<dyn Progress>) -> Answer<'a, Plan> {
        Box::pin(async move { Err(not_a_score(app)) })
    }

    fn apply<'a>(&self, app: &'static str, _: &'a AnyTopology, _: &'a ExactPlan, _: Arc<dyn Progress>) -> Answer<'a, Plan> {
        Box::pin(async move { Err(not_a_score(app)) })
    }
}

/// What releasing needs of a topology; `smoke` adds `HttpProbe`.
pub fn release_needs(smoke: bool) -> Vec<&'static str> {
    let mut out = vec![
        <dyn ContainerBuilder as IsCapability>::NAME,
        <dyn OciRegistry as IsCapability>::NAME,
        <dyn HelmRegistry as IsCapability>::NAME,
        <dyn ContinuousDelivery as IsCapability>::NAME,
    ];
    if smoke {
        out.push(<dyn HttpProbe as IsCapability>::NAME);
    }
    out.sort_unstable();
    out
}

/// Release `spec` at `version` on the selected topology; `S` says whether
/// each stage is also asked over HTTP.
pub fn release<S>(
    spec: AppSpec,
    topology: Arc<AnyTopology>,
    version: Version,
    mode: Mode,
    progress: Arc<dyn Progress>,
) -> BoxFuture<'static, Result<ReleasePlan, ReleaseError>>
where
    S: StageSmoke<AnyTopology> + 'static,
{
    Box::pin(async move { pipeline::release::<AnyTopology, S>(&spec, &version, &topology, mode, &*progress).await })
}

/// The type name of what `make` returns.
pub fn type_name_of<S>(_make: impl Fn() -> S) -> &'static str {
    std::any::type_name::<S>()
}

/// Whether topology type `$ty` implements capability `$cap`, and if so how
/// [`AnyTopology`] reaches it. Autoref specialization: method lookup on
/// `&&Probe` takes the impl on `&Probe` when its bound holds, and falls back
/// to the impl on `Probe` when it does not (docs/adr/0009-open-topologies.md).
#[doc(hidden)]
#[macro_export]
macro_rules! __probe_capability {
    ($ty:ty, $cap:path) => {{
        struct Probe<X>(::core::marker::PhantomData<X>);
        // One of the two traits is never called for a given `$ty`.
        #[allow(dead_code)]
        trait Provides {
            fn provided(&self) -> ::core::option::Option<$crate::engine::any_topology::Provided>;
        }
        impl<X: $cap> Provides for &Probe<X> {
            fn provided(&self) -> ::core::option::Option<$crate::engine::any_topology::Provided> {
                ::core::option::Option::Some($crate::engine::any_topology::Provided::new::<dyn $cap>(|t| {
                    t.downcast_ref::<X>().map(|t| t as &dyn $cap)
                }))
            }
        }
        #[allow(dead_code)]
        trait Lacks {
            fn provided(&self) -> ::core::option::Option<$crate::engine::any_topology::Provided>;
        }
        impl<X> Lacks for Probe<X> {
            fn provided(&self) -> ::core::option::Option<$crate::engine::any_topology::Provided> {
                ::core::option::Option::None
            }
        }
        (&&Probe::<$ty>(::core::marker::PhantomData)).provided()
    }};
}

/// Which of the capabilities harmony ships topology type `$ty` implements.
#[doc(hidden)]
#[macro_export]
macro_rules! __shipped_capabilities {
    ($ty:ty) => {{
        let mut provided = $crate::__private::Vec::new();
        provided.extend($crate::__private::probe_capability!($ty, $crate::capability::K8sDeploy));
        provided.extend($crate::__private::probe_capability!($ty, $crate::capability::K8sClient));
        provided.extend($crate::__private::probe_capability!($ty, $crate::release::ContainerBuilder));
        provided.extend($crate::__private::probe_capability!($ty, $crate::release::OciRegistry));
        provided.extend($crate::__private::probe_capability!($ty, $crate::release::HelmRegistry));
        provided.extend($crate::__private::probe_capability!($ty, $crate::release::ContinuousDelivery));
        provided.extend($crate::__private::probe_capability!($ty, $crate::release::HttpProbe));
        provided
    }};
}
