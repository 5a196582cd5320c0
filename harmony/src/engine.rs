//! Where a plan is computed and an apply is carried out, for one app's Score
//! tree on one topology. The CLI calls these through the registry.

use std::collections::HashSet;
use std::sync::Arc;

use crate::capability::{ApplySet, DeployError, K8sDeploy};
use crate::object::{Object, ObjectRef};
use crate::plan::Plan;
use crate::run::{InterpretError, Mode, Progress, Run};
use crate::score::{RenderCx, Score, ScoreError};
use crate::topology::Topology;

/// Render an app's Score tree: pure, no topology instance needed.
pub fn render<T: Topology, S: Score<T>>(app: &str, topology: &str, score: &S) -> Result<Vec<Object>, EngineError> {
    let desired = score
        .render(&RenderCx::new(app, topology))
        .map_err(|source| EngineError::Render {
            app: app.to_owned(),
            source,
        })?
        .into_objects();
    let mut seen = HashSet::with_capacity(desired.len());
    for o in &desired {
        if !seen.insert(o.id()) {
            return Err(EngineError::Duplicate {
                app: app.to_owned(),
                object: o.id().clone(),
            });
        }
    }
    Ok(desired)
}

/// What applying would change. Writes nothing.
pub async fn plan<T: K8sDeploy, S: Score<T>>(app: &str, score: &S, topology: &T) -> Result<Plan, EngineError> {
    let desired = render(app, topology.name(), score)?;
    let observed = topology.observe(&ApplySet::new(app)).await.map_err(|source| EngineError::Observe {
        app: app.to_owned(),
        source,
    })?;
    Ok(Plan::compute(app, topology.name(), &desired, &observed))
}

/// The whole pipeline with every write suppressed: the target checks each
/// step as it would on apply, so validation errors surface. Returns the plan.
pub async fn dry_run<T: K8sDeploy, S: Score<T>>(
    app: &str,
    score: &S,
    topology: &T,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let plan = plan(app, score, topology).await?;
    let mut run = Run::new(app, topology.name(), Mode::DryRun, progress);
    score.execute(topology, &mut run).await.map_err(|source| EngineError::Interpret {
        app: app.to_owned(),
        source: Box::new(source),
    })?;
    Ok(plan)
}

/// Plan, then, if anything differs, deploy every Score of the tree in order,
/// each gated by its smoke test, prune what is no longer rendered, and record
/// the result. With no changes it writes nothing.
pub async fn apply<T: K8sDeploy, S: Score<T>>(
    app: &str,
    score: &S,
    topology: &T,
    progress: Arc<dyn Progress>,
) -> Result<Plan, EngineError> {
    let plan = plan(app, score, topology).await?;
    if plan.is_empty() {
        return Ok(plan);
    }
    let set = ApplySet::new(app);
    let mut run = Run::new(app, topology.name(), Mode::Apply, progress);
    let mut result = score.execute(topology, &mut run).await.map_err(|source| EngineError::Interpret {
        app: app.to_owned(),
        source: Box::new(source),
    });
    if result.is_ok() {
        let removals = plan.removals();
        if !removals.is_empty() {
            result = topology.prune(&set, &removals).await.map_err(|source| EngineError::Prune {
                app: app.to_owned(),
                source,
            });
            if result.is_ok() {
                run.progress().event(&crate::run::Event::Pruned { objects: removals });
            }
        }
    }
    // Record what was written even when a step failed, so the next plan starts from the truth.
    let committed = topology.commit(&set).await.map_err(|source| EngineError::Commit {
        app: app.to_owned(),
        source,
    });
    result.and(committed).map(|()| plan)
}

/// An app could not be rendered, planned or applied.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("app `{app}` could not render")]
    Render { app: String, source: ScoreError },
    #[error("app `{app}` renders {object} twice")]
    Duplicate { app: String, object: ObjectRef },
    #[error("the current state of app `{app}` could not be read")]
    Observe { app: String, source: DeployError },
    #[error("app `{app}` failed")]
    Interpret { app: String, source: Box<InterpretError> },
    #[error("app `{app}` was applied but what it no longer renders could not be removed")]
    Prune { app: String, source: DeployError },
    #[error("app `{app}` was applied but its record could not be written")]
    Commit { app: String, source: DeployError },
}

impl EngineError {
    /// Where it went wrong, as a Score path (`webapp/config`), when known.
    pub fn location(&self) -> Option<&str> {
        match self {
            Self::Interpret { source, .. } => Some(source.path()),
            _ => None,
        }
    }

    /// Why, in one line (or a few, for a list of problems).
    pub fn why(&self) -> String {
        match self {
            Self::Render { source, .. } => source.to_string(),
            Self::Duplicate { .. } => "two Scores of the tree render an object with the same identity".into(),
            Self::Observe { source, .. } | Self::Prune { source, .. } | Self::Commit { source, .. } => source.to_string(),
            Self::Interpret { source, .. } => format!("{source}: {}", source.why()),
        }
    }

    /// What to do next.
    pub fn help(&self) -> String {
        match self {
            Self::Render { source, .. } => source.help().unwrap_or("fix the Score's data").to_owned(),
            Self::Duplicate { .. } => "give the objects distinct names or namespaces".into(),
            Self::Observe { source, .. } | Self::Prune { source, .. } | Self::Commit { source, .. } => source.help(),
            Self::Interpret { source, .. } => source.help(),
        }
    }
}
