//! The machinery the generated CLI drives, in one place: what a binary
//! carries ([`registry`]), the topology chosen at run time ([`any_topology`]),
//! one execution of a Score tree ([`run`]), what would change ([`mod@plan`]) and
//! the reviewed plan kept in a file ([`saved_plan`]). The functions here
//! render an app's tree once, compute its plan and carry it out, for one
//! app on one topology; the CLI reaches them through
//! [`registry::RegisteredApp`].
//!
//! An app author never names this module. A topology author meets three
//! pieces of it: [`registry::registered`] (to hand a topology to the CLI by
//! hand), [`mod@plan`]'s comparisons of a desired object with a live one, and
//! [`run::terminal_progress`] (whether to draw progress bars).

pub mod any_topology;
pub mod plan;
pub mod registry;
pub mod run;
pub mod saved_plan;

use std::collections::HashSet;
use std::sync::Arc;

use tracing::Instrument as _;

use crate::Diagnostic;
use crate::capability::{ApplySet, DeployError, K8sDeploy, Observed};
use crate::object::Desired;
use crate::object::{Object, ObjectRef, Rendered};
use crate::score::{Interpret, IsScore, RenderCx, Score, ScoreError};
use plan::{Basis, ExactPlan, Plan};
use run::{InterpretError, Mode, Progress, Run, Silent};

/// Render an app's Score tree: pure, no topology instance needed.
pub fn render<S: IsScore>(app: &str, topology: &str, score: &S) -> Result<Vec<Object>, EngineError> {
    Ok(render_once(app, topology, score, Use::Plan)?.into_objects())
}

/// What a render is for: a plan (or a `render`) reads its objects; a run
/// also deploys each Score's part of it.
#[derive(Clone, Copy)]
enum Use {
    Plan,
    Run,
}

/// The tree rendered for a command (two objects of one identity refused):
/// the plan is computed from it and every pass deploys from it.
fn render_once<S: IsScore>(app: &str, topology: &str, score: &S, to: Use) -> Result<Rendered, EngineError> {
    let cx = match to {
        Use::Plan => RenderCx::new(app, topology),
        Use::Run => RenderCx::new(app, topology).for_a_run(),
    };
    let desired = score.render_tree(&cx).map_err(|source| EngineError::Render {
        app: app.to_owned(),
        source,
    })?;
    let mut seen = HashSet::with_capacity(desired.len());
    for o in desired.objects() {
        if !seen.insert(o.id()) {
            return Err(EngineError::Duplicate {
                app: app.to_owned(),
                object: o.id().clone(),
            });
        }
    }
    Ok(Rendered::new(desired))
}

/// What the target holds for the app, given what it renders.
async fn observe<T: K8sDeploy>(app: &str, desired: &[Object], topology: &T) -> Result<Observed, EngineError> {
    let span = tracing::info_span!("observe", app, topology = topology.name(), desired = desired.len());
    let set = ApplySet::new(app);
    let observe = async {
        let mut observed = topology.observe(&set).await?;
        topology.set_aside_filled_in(&set, desired, &mut observed).await?;
        Ok(observed)
    };
    observe.instrument(span).await.map_err(|source| EngineError::Observe {
        app: app.to_owned(),
        source,
    })
}

/// The render `exact` was computed from, when it was made in this process;
/// the tree rendered again when it was not (a saved plan).
fn render_of<T: K8sDeploy, S: IsScore>(app: &str, score: &S, topology: &T, exact: &ExactPlan) -> Result<Arc<Rendered>, EngineError> {
    match &exact.rendered {
        Some(rendered) => Ok(rendered.clone()),
        None => Ok(Arc::new(render_once(app, topology.name(), score, Use::Run)?)),
    }
}

/// What applying would change. Writes nothing.
pub async fn plan<T: K8sDeploy, S: Score<T> + IsScore>(app: &str, score: &S, topology: &T) -> Result<Plan, EngineError> {
    let rendered = render_once(app, topology.name(), score, Use::Plan)?;
    let observed = observe(app, rendered.objects(), topology).await?;
    Ok(Plan::compute(app, topology.name(), rendered.objects(), &observed))
}

/// What applying would change, with what it was computed from: the plan
/// [`apply`] carries out. Writes nothing.
pub async fn exact_plan<T: K8sDeploy, S: Score<T> + IsScore>(app: &str, score: &S, topology: &T) -> Result<ExactPlan, EngineError> {
    exact_plan_of(app, Arc::new(render_once(app, topology.name(), score, Use::Run)?), topology).await
}

/// The exact plan of `rendered` against what the target holds now.
async fn exact_plan_of<T: K8sDeploy>(app: &str, rendered: Arc<Rendered>, topology: &T) -> Result<ExactPlan, EngineError> {
    let observed = observe(app, rendered.objects(), topology).await?;
    Ok(ExactPlan {
        plan: Plan::compute(app, topology.name(), rendered.objects(), &observed),
        basis: Basis::of(rendered.objects(), &observed),
        rendered: Some(rendered),
    })
}

/// The whole pipeline with every write suppressed: the target checks each
/// step as it would on apply, so validation errors surface. Returns the plan.
pub async fn dry_run<T: K8sDeploy, S: Score<T> + IsScore>(
    app: &str,
    score: &S,
    topology: &T,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let exact = exact_plan(app, score, topology).await?;
    dry_run_plan(app, score, topology, &exact, progress).await
}

/// [`dry_run`] of a plan just made (the CLI makes every app's plan first, to
/// order the apps): the target checks each step of `exact`'s render, and the
/// removals it makes. Returns the plan.
pub async fn dry_run_plan<T: K8sDeploy, S: Score<T> + IsScore>(
    app: &str,
    score: &S,
    topology: &T,
    exact: &ExactPlan,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let rendered = render_of(app, score, topology, exact)?;
    pass(app, score, &rendered, topology, Mode::DryRun, progress).await?;
    check_prune(app, topology, &exact.plan).await?;
    Ok(exact.plan.clone())
}

/// The target checks the removals a plan makes, removing nothing.
async fn check_prune<T: K8sDeploy>(app: &str, topology: &T, plan: &Plan) -> Result<(), EngineError> {
    let removals = plan.removals();
    if removals.is_empty() {
        return Ok(());
    }
    topology
        .dry_run_prune(&ApplySet::new(app), &removals)
        .await
        .map_err(|source| EngineError::CannotPrune {
            app: app.to_owned(),
            source,
        })
}

/// One pass over the Score tree, each Score deploying its part of `rendered`.
async fn pass<T: K8sDeploy, S: Score<T> + IsScore>(
    app: &str,
    score: &S,
    rendered: &Arc<Rendered>,
    topology: &T,
    mode: Mode,
    progress: Arc<dyn Progress>,
) -> Result<(), EngineError> {
    topology.begin(&ApplySet::new(app)).await.map_err(|source| EngineError::Observe {
        app: app.to_owned(),
        source,
    })?;
    let mut run = Run::new(app, topology.name(), mode, progress).from_rendered(rendered.clone());
    let span = tracing::info_span!("pass", app, topology = topology.name(), mode = ?mode);
    score
        .execute(topology, &mut run)
        .instrument(span)
        .await
        .map_err(|source| EngineError::Interpret {
            app: app.to_owned(),
            source: Box::new(source),
        })
}

/// Carry out `exact`, the plan the user saw, and nothing else: if the desired
/// state or the target moved since it was computed, refuse, naming what
/// moved. Every check a dry run makes runs first, so a problem it would report
/// stops the apply before its first write. Then every Score of the tree is
/// deployed in order, each gated by its verification and smoke test, what is
/// no longer rendered is pruned, and the result recorded.
///
/// A plan made in this process is applied with the render it was made from
/// (give it the Score it was made from: a render is pure, so that render is
/// this Score's); a saved one is rendered again, and its desired state
/// compared too.
pub async fn apply<T: K8sDeploy, S: Score<T> + IsScore>(
    app: &str,
    score: &S,
    topology: &T,
    exact: &ExactPlan,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let rendered = render_of(app, score, topology, exact)?;
    let now = exact_plan_of(app, rendered.clone(), topology).await?;
    let moved = exact.basis.moved(&now.basis);
    if !moved.is_empty() {
        return Err(EngineError::Moved {
            app: app.to_owned(),
            moved,
        });
    }
    carry_out(app, score, &rendered, topology, exact, progress).await
}

/// Carry out `exact`, known to be current and computed from `rendered`:
/// checks, writes, prune, record.
async fn carry_out<T: K8sDeploy, S: Score<T> + IsScore>(
    app: &str,
    score: &S,
    rendered: &Arc<Rendered>,
    topology: &T,
    exact: &ExactPlan,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let set = ApplySet::new(app);
    if exact.plan.is_empty() {
        // Nothing to write, but "applied" still means "working": a target
        // that checks readiness is asked again (a rollout that failed before
        // does not pass because nothing changed since).
        topology
            .verify(&set, rendered.objects())
            .await
            .map_err(|source| EngineError::Unverified {
                app: app.to_owned(),
                source,
            })?;
        return Ok(exact.plan.clone());
    }
    pass(app, score, rendered, topology, Mode::DryRun, Arc::new(Silent)).await?;
    check_prune(app, topology, &exact.plan).await?;
    let mut result = pass(app, score, rendered, topology, Mode::Apply, progress.clone()).await;
    if result.is_ok() {
        let removals = exact.plan.removals();
        if !removals.is_empty() {
            result = topology.prune(&set, &removals).await.map_err(|source| EngineError::Prune {
                app: app.to_owned(),
                source,
            });
            if result.is_ok() {
                progress.event(&run::Event::Pruned { objects: removals });
            }
        }
    }
    // Record what was written even when a step failed, so the next plan starts from the truth.
    let committed = topology.commit(&set).await.map_err(|source| EngineError::Commit {
        app: app.to_owned(),
        source,
    });
    result.and(committed).map(|()| exact.plan.clone())
}

/// Plan and carry out that plan at once: what a program that composes Scores
/// (a test harness, a controller, a release's stage) calls, with no one to
/// confirm in between. The tree is rendered once and the target observed
/// once: the plan just made is the current one, so there is nothing to
/// compare it with.
pub async fn plan_and_apply<T: K8sDeploy, S: Score<T> + IsScore>(
    app: &str,
    score: &S,
    topology: &T,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let rendered = Arc::new(render_once(app, topology.name(), score, Use::Run)?);
    let exact = exact_plan_of(app, rendered.clone(), topology).await?;
    carry_out(app, score, &rendered, topology, &exact, progress).await
}

/// Objects made elsewhere (a released chart's) as one Score, so that they go
/// through the same sequence as an app: plan, check, write, verify, prune.
struct Objects<'a>(&'a [Object]);

impl IsScore for Objects<'_> {
    fn needs(out: &mut Vec<&'static str>) {
        out.push(<dyn K8sDeploy as crate::capability::IsCapability>::NAME);
    }

    fn render_tree(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
        for object in self.0 {
            desired.push_object(object.clone());
        }
        cx.part(Ok(desired))
    }
}

impl<T: K8sDeploy> Interpret<T> for Objects<'_> {
    async fn execute(&self, topology: &T, run: &mut Run) -> Result<(), InterpretError> {
        let desired = run.desired(|cx| self.render_tree(cx))?;
        run.deploy(topology, &desired).await?;
        run.verify(topology, &desired).await
    }
}

impl<T: K8sDeploy> Score<T> for Objects<'_> {}

/// What delivering `objects` as app `app` would change. Writes nothing.
pub async fn plan_objects<T: K8sDeploy>(app: &str, objects: &[Object], topology: &T) -> Result<Plan, EngineError> {
    plan(app, &Objects(objects), topology).await
}

/// Check delivering `objects` as app `app`, writing nothing: what `dry-run` does.
pub async fn dry_run_objects<T: K8sDeploy>(app: &str, objects: &[Object], topology: &T) -> Result<Plan, EngineError> {
    dry_run(app, &Objects(objects), topology, Arc::new(Silent)).await
}

/// Deliver `objects` as app `app`, with the sequence `apply` uses.
pub async fn apply_objects<T: K8sDeploy>(app: &str, objects: &[Object], topology: &T) -> Result<Plan, EngineError> {
    plan_and_apply(app, &Objects(objects), topology, Arc::new(Silent)).await
}

/// An app could not be rendered, planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A Score of the tree returned an error from its render.
    #[error("app `{app}` could not render")]
    Render {
        /// The app whose tree was rendered.
        app: String,
        /// What the Score said.
        source: ScoreError,
    },
    /// Two Scores of the tree (or one, twice) rendered objects of the same identity.
    #[error("app `{app}` renders {object} twice")]
    Duplicate {
        /// The app whose tree was rendered.
        app: String,
        /// The identity rendered twice.
        object: ObjectRef,
    },
    /// The topology could not say what is there now, so no plan could be made.
    #[error("the current state of app `{app}` could not be read")]
    Observe {
        /// The app being planned.
        app: String,
        /// Why the target could not be read.
        source: DeployError,
    },
    /// A Score's Interpret failed: a deploy, a wait for readiness, or a smoke test.
    #[error("{source}")]
    Interpret {
        /// The app being applied.
        app: String,
        /// What failed, and at which Score of the tree.
        source: Box<InterpretError>,
    },
    /// A dry run found that removing what the app no longer renders would fail.
    #[error("app `{app}` could not remove what it no longer renders; nothing was written")]
    CannotPrune {
        /// The app being checked.
        app: String,
        /// Why the removal would fail.
        source: DeployError,
    },
    /// Everything rendered was applied and verified, but removing what the app no longer
    /// renders failed.
    #[error("app `{app}` was applied but what it no longer renders could not be removed")]
    Prune {
        /// The app being applied.
        app: String,
        /// Why the removal failed.
        source: DeployError,
    },
    /// The record of what the app now keeps on the target (its ApplySet) could not be
    /// written after the apply (it is written even when a step failed).
    #[error("app `{app}` was applied but its record could not be written")]
    Commit {
        /// The app being applied.
        app: String,
        /// Why the record could not be written.
        source: DeployError,
    },
    /// The rendered objects or the target changed between the plan and its apply;
    /// nothing was written.
    #[error("app `{app}` is not as it was when it was planned")]
    Moved {
        /// The app being applied.
        app: String,
        /// What moved, one line each (an object's identity and which side changed).
        moved: Vec<String>,
    },
    /// The plan was empty, but what the app keeps is not ready: applying nothing cannot
    /// mend it.
    #[error("app `{app}` has nothing to change, but it does not pass its verification")]
    Unverified {
        /// The app being applied.
        app: String,
        /// The check that failed.
        source: crate::errors::SmokeError,
    },
}

impl Diagnostic for EngineError {
    /// Where it went wrong, as a Score path (`webapp/config`), when known.
    fn location(&self) -> Option<String> {
        match self {
            Self::Interpret { source, .. } => source.location(),
            _ => None,
        }
    }

    fn notes(&self) -> Vec<String> {
        match self {
            Self::Render { source, .. } => vec![source.to_string()],
            Self::Duplicate { .. } => vec!["two Scores of the tree render an object with the same identity".into()],
            Self::Observe { source, .. } | Self::CannotPrune { source, .. } | Self::Prune { source, .. } | Self::Commit { source, .. } => {
                vec![source.to_string()]
            }
            Self::Interpret { source, .. } => source.notes(),
            Self::Moved { moved, .. } => vec![format!(
                "what was planned is no longer what would be done:\n  {}",
                moved.join("\n  ")
            )],
            Self::Unverified { source, .. } => vec![source.to_string()],
        }
    }

    fn help(&self) -> String {
        match self {
            Self::Render { source, .. } => source.help(),
            Self::Duplicate { .. } => "give the objects distinct names or namespaces".into(),
            Self::Observe { source, .. } | Self::CannotPrune { source, .. } | Self::Prune { source, .. } | Self::Commit { source, .. } => {
                source.help()
            }
            Self::Interpret { source, .. } => source.help(),
            Self::Moved { .. } => "nothing was applied; plan again, review, and apply that plan".into(),
            Self::Unverified { source, .. } => source.help(),
        }
    }
}
