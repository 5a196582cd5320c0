//! `plan` and `dry-run`: what would change, and whether every step would be
//! accepted. Neither writes to the target.

use std::path::Path;
use std::process::ExitCode;

use harmony::capability::K8sDeploy;
use harmony::engine::plan::{Action, ExactPlan, Plan, Summary};
use harmony::engine::registry::AppEntry;
use harmony::engine::saved_plan::SavedPlan;
use serde::Serialize;

use super::session::{Session, Target, binary_name, progress};
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

/// Exit code of `plan` when nothing is to change but something is not healthy.
pub const UNHEALTHY: u8 = 3;

/// "1 object is", "2 objects are".
fn objects(n: usize) -> String {
    if n == 1 { "1 object is".into() } else { format!("{n} objects are") }
}

impl PlanView {
    /// How many objects of these plans are not healthy now.
    pub fn unhealthy(&self) -> usize {
        self.plans.iter().map(|p| p.unhealthy.len()).sum()
    }

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
        let unhealthy = self.unhealthy();
        if self.summary.is_empty() && unhealthy == 0 {
            out.push_str("\nNo changes: the target matches the desired state.\n");
        } else if self.summary.is_empty() {
            out.push_str(&format!(
                "\nNo changes, but {} not healthy (marked `!` above): an apply would write nothing and fail its verification.\n",
                objects(unhealthy)
            ));
        } else {
            out.push_str(&format!("\nPlan: {}.\n", self.summary));
            if unhealthy > 0 {
                out.push_str(&format!(
                    "{} not healthy now (marked `!` above): the apply verifies it, and fails unless these changes mend it.\n",
                    objects(unhealthy)
                ));
            }
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
                .map(|app| session.ask(app, |app, topology| app.plan(topology)))
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
    Ok(ExitCode::from(match (view.summary.is_empty(), view.unhealthy()) {
        (false, _) => 2,
        (true, 0) => 0,
        (true, _) => UNHEALTHY,
    }))
}

/// Each selected app's plan, with what it was computed from.
pub(super) fn exact_plans(session: &Session) -> Result<Vec<ExactPlan>, Failure> {
    session
        .apps
        .iter()
        .map(|app| session.ask(app, |app, topology| app.exact_plan(topology)))
        .collect()
}

pub(super) fn dry_run(target: &Target, format: Format) -> Result<ExitCode, Failure> {
    let session = Session::open(&target.apps, target.topology())?;
    let progress = progress(format);
    // Every app's plan first (its render and what the target holds), then each checked in the
    // order `apply` would go, so that a namespace one app creates is known (pretended) when
    // the next is checked in it.
    let exact = exact_plans(&session)?;
    let plans = in_namespace_order(session.apps.iter().copied().zip(exact).collect())
        .iter()
        .map(|(app, exact)| session.ask(app, |app, topology| app.dry_run(topology, exact, progress.clone())))
        .collect::<Result<_, _>>()?;
    emit(
        &DryRunView {
            plan: PlanView::new(plans),
        },
        format,
    );
    Ok(ExitCode::SUCCESS)
}

/// Apps in the order their namespaces need: an app that adds a Namespace
/// goes before the apps that add objects in it (apps are independent, yet
/// one's chart may expect the namespace another creates, as Helm charts
/// do); otherwise in name order. A cycle keeps name order.
pub(super) fn in_namespace_order(mut pending: Vec<(&AppEntry, ExactPlan)>) -> Vec<(&AppEntry, ExactPlan)> {
    let added = |plan: &ExactPlan, namespaces: bool| -> std::collections::BTreeSet<String> {
        plan.plan
            .changes
            .iter()
            .filter(|c| c.action == Action::Add)
            .filter_map(|c| {
                let is_namespace = c.object.api_version == "v1" && c.object.kind == "Namespace";
                match (namespaces, is_namespace) {
                    (true, true) => Some(c.object.name.clone()),
                    (false, false) => c.object.namespace.clone(),
                    _ => None,
                }
            })
            .collect()
    };
    let mut ordered = Vec::with_capacity(pending.len());
    while !pending.is_empty() {
        let creators: Vec<std::collections::BTreeSet<String>> = pending.iter().map(|(_, p)| added(p, true)).collect();
        let ready = (0..pending.len()).find(|&i| {
            let needs: std::collections::BTreeSet<String> = added(&pending[i].1, false).difference(&creators[i]).cloned().collect();
            !(0..pending.len()).any(|j| j != i && !creators[j].is_disjoint(&needs))
        });
        ordered.push(pending.remove(ready.unwrap_or(0)));
    }
    ordered
}
