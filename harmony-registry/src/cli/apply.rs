//! `apply`: carry out exactly the plan the user saw (or saved with
//! `plan --out`), under the target's lock, and nothing else.

use std::path::Path;
use std::process::ExitCode;

use harmony::engine::plan::{ExactPlan, Plan, Summary};
use harmony::engine::saved_plan::SavedPlan;
use serde::Serialize;

use super::plan::{PlanView, exact_plans, in_namespace_order};
use super::session::{LockWait, Session, Target, binary_name, confirmed, progress};
use crate::view::{Failure, Format, View, emit};

/// What an apply did, with the plan it carried out: one document.
#[derive(Debug, Serialize)]
pub struct ApplyView {
    pub plan: PlanView,
    pub applied: Vec<Plan>,
    pub summary: Summary,
}

impl View for ApplyView {
    const KIND: &'static str = "apply";

    /// The apply's own lines; the plan was printed before it started.
    fn text(&self) -> String {
        let s = self.summary;
        if s.is_empty() {
            return String::new();
        }
        format!(
            "Apply complete: {} added, {} changed, {} removed; every step verified.\n",
            s.add, s.change, s.remove
        )
    }
}

pub(super) fn apply(target: &Target, yes: bool, saved: Option<&Path>, wait: &LockWait, format: Format) -> Result<ExitCode, Failure> {
    // A saved plan is read and checked before anything else happens.
    let saved = saved.map(|path| read_saved(path, target)).transpose()?;
    let (apps, topology): (Vec<String>, &str) = match &saved {
        Some((_, s)) => (s.plans.iter().map(|p| p.plan.app.clone()).collect(), &s.topology),
        None => (target.apps.clone(), target.topology()),
    };
    let session = Session::open(&apps, topology)?;
    let locks = session.lock("apply", wait, format)?;
    let result = apply_locked(&session, yes, saved, format);
    let released = locks.release(&session.runtime);
    let code = result?;
    released?;
    Ok(code)
}

fn apply_locked(session: &Session, yes: bool, saved: Option<(String, SavedPlan)>, format: Format) -> Result<ExitCode, Failure> {
    // A saved plan is checked against the target even when it changes
    // nothing: what was reviewed must still be what is there.
    let from_file = saved.is_some();
    let exact: Vec<ExactPlan> = match saved {
        Some((path, s)) => {
            if format == Format::Text {
                println!("Applying the plan saved in {path}:\n");
            }
            s.plans
        }
        None => exact_plans(session)?,
    };
    let plan = PlanView::new(exact.iter().map(|e| e.plan.clone()).collect());
    let nothing = exact.iter().all(|e| e.plan.is_empty());
    // In JSON the plan travels inside the apply's one document, at the end.
    if format == Format::Text {
        emit(&plan, format);
        let unhealthy = plan.unhealthy();
        if unhealthy > 0 && !nothing {
            println!("The apply verifies every object, these {unhealthy} included.");
        }
    }
    if !nothing && !from_file {
        confirmed("apply", yes, "Apply these changes?")?;
    }
    let progress = progress(format);
    let mut applied = Vec::new();
    // An app with nothing to change is applied too: that writes nothing and
    // verifies what is there, so "applied" still means "working".
    for (app, plan) in in_namespace_order(session.apps.iter().copied().zip(exact).collect()) {
        applied.push(session.ask_interruptible(app, |app, topology| app.apply(topology, &plan, progress.clone()))?);
    }
    let mut summary = Summary::default();
    for p in &applied {
        summary += p.summary();
    }
    emit(&ApplyView { plan, applied, summary }, format);
    Ok(ExitCode::SUCCESS)
}

/// The saved plan at `path`, checked against what the command line asks.
fn read_saved(path: &Path, target: &Target) -> Result<(String, SavedPlan), Failure> {
    let shown = path.display().to_string();
    let saved = SavedPlan::read(path, &binary_name()).map_err(|e| Failure::of(&e))?;
    let refuse = |why: String| {
        Failure::new(format!("`{shown}` cannot be applied: {why}"))
            .help("nothing was applied; make a new plan with `plan --out FILE` for what you want, and apply that")
    };
    if let Some(asked) = &target.topology
        && *asked != saved.topology
    {
        return Err(refuse(format!("it was made for topology `{}`, not `{asked}`", saved.topology)));
    }
    if !target.apps.is_empty() {
        return Err(refuse("a saved plan says which apps it applies; name none".into()));
    }
    if saved.plans.is_empty() {
        return Err(refuse("it holds no app".into()));
    }
    for plan in &saved.plans {
        if crate::app(&plan.plan.app).is_none() {
            return Err(refuse(format!(
                "it plans app `{}`, which this binary does not carry",
                plan.plan.app
            )));
        }
        if plan.plan.topology != saved.topology {
            return Err(refuse(format!("its plan of `{}` is for another topology", plan.plan.app)));
        }
    }
    Ok((shown, saved))
}
