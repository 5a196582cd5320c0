//! `plan` and `dry-run`: what would change, and whether every step would be
//! accepted. Neither writes to the target.

use std::path::Path;
use std::process::ExitCode;

use harmony::capability::K8sDeploy;
use harmony::plan::{ExactPlan, Plan, Summary};
use harmony::registry::{Outcome, Request};
use harmony::saved_plan::SavedPlan;
use serde::Serialize;

use super::{Session, Target, binary_name, progress};
use crate::view::{Failure, Format, View, emit};

/// The plans of the selected apps.
#[derive(Debug, Serialize)]
pub struct PlanView {
    pub plans: Vec<Plan>,
    pub summary: Summary,
    /// Where the plan was saved (`plan --out`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<String>,
}

impl PlanView {
    pub fn new(plans: Vec<Plan>) -> Self {
        let mut summary = Summary::default();
        for p in &plans {
            summary += p.summary();
        }
        Self {
            plans,
            summary,
            saved: None,
        }
    }
}

impl View for PlanView {
    const KIND: &'static str = "plan";

    fn text(&self) -> String {
        let mut out: String = self.plans.iter().map(Plan::to_text).collect();
        if self.summary.is_empty() {
            out.push_str("\nNo changes: the target matches the desired state.\n");
        } else {
            out.push_str(&format!("\nPlan: {}.\n", self.summary));
        }
        if let Some(path) = &self.saved {
            out.push_str(&format!("Saved to {path}: `apply --plan {path}` carries out exactly this plan.\n"));
        }
        out
    }
}

/// A dry run that passed.
#[derive(Debug, Serialize)]
pub struct DryRunView {
    #[serde(flatten)]
    pub plan: PlanView,
}

impl View for DryRunView {
    const KIND: &'static str = "dry-run";

    fn text(&self) -> String {
        let mut out = self.plan.text();
        out.push_str("Dry run passed: every step was accepted; nothing was written.\n");
        out
    }
}

pub(super) fn plan(target: &Target, out: Option<&Path>, format: Format) -> Result<ExitCode, Failure> {
    let session = Session::open(&target.apps, target.topology())?;
    let mut view = match out {
        None => PlanView::new(
            session
                .apps
                .iter()
                .map(|app| match session.ask(app, Request::Plan)? {
                    Outcome::Planned(plan) => Ok(plan),
                    other => Err(unexpected(&other)),
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(path) => {
            // The digests that stand in for secret values must outlive this
            // process, or a later apply could not check them.
            session
                .runtime
                .block_on(session.topology.pin_secret_digests())
                .map_err(|e| Failure::of(&e))?;
            let exact = exact_plans(&session)?;
            let plans = exact.iter().map(|e| e.plan.clone()).collect();
            SavedPlan::new(binary_name(), target.topology(), exact)
                .write(path)
                .map_err(|e| Failure::of(&e))?;
            let mut view = PlanView::new(plans);
            view.saved = Some(path.display().to_string());
            view
        }
    };
    emit(&view, format);
    view.saved = None;
    Ok(ExitCode::from(if view.summary.is_empty() { 0 } else { 2 }))
}

/// Each selected app's plan, with what it was computed from.
pub(super) fn exact_plans(session: &Session) -> Result<Vec<ExactPlan>, Failure> {
    session
        .apps
        .iter()
        .map(|app| match session.ask(app, Request::ExactPlan)? {
            Outcome::Exact(exact) => Ok(*exact),
            other => Err(unexpected(&other)),
        })
        .collect()
}

pub(super) fn dry_run(target: &Target, format: Format) -> Result<ExitCode, Failure> {
    let session = Session::open(&target.apps, target.topology())?;
    let progress = progress(format);
    let plans = session
        .apps
        .iter()
        .map(|app| {
            match session.ask(
                app,
                Request::DryRun {
                    progress: progress.clone(),
                },
            )? {
                Outcome::Planned(plan) => Ok(plan),
                other => Err(unexpected(&other)),
            }
        })
        .collect::<Result<_, _>>()?;
    emit(
        &DryRunView {
            plan: PlanView::new(plans),
        },
        format,
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn unexpected(outcome: &Outcome) -> Failure {
    Failure::new(format!("internal: the engine answered with the wrong kind of result ({outcome:?})"))
        .help("this is a bug in harmony; please report it with the command you ran")
}
