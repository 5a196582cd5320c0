//! `release --from-tag TAG`: build, push and deliver the release the tag
//! names, stage by stage, each gated by its verification, under the lock of
//! the app on the topology.

use std::process::ExitCode;

use harmony::Topology;
use harmony::engine::run::Mode;
use harmony::release::{ReleasePlan, ReleaseTag};
use serde::Serialize;

use super::list::tag_form;
use super::session::{LockWait, Session, confirmed, progress};
use crate::view::{Failure, Format, View, emit};

/// What a release did, or (dry run) would do.
#[derive(Debug, Serialize)]
pub struct ReleaseView {
    #[serde(flatten)]
    pub plan: ReleasePlan,
    pub stages_in_order: &'static [&'static str],
}

impl View for ReleaseView {
    const KIND: &'static str = "release";

    fn text(&self) -> String {
        let mut out = self.plan.to_text();
        if self.plan.dry_run {
            out.push_str("\nDry run: built and planned; nothing was pushed or delivered.\n");
        } else {
            out.push_str(&format!(
                "\nReleased {} {} through {}.\n",
                self.plan.app,
                self.plan.version,
                self.stages_in_order.join(", ")
            ));
        }
        out
    }
}

/// `yes`: the user confirmed on the command line (a dry run needs no confirmation).
pub(super) fn release(tag: &str, topology: &str, yes: bool, dry_run: bool, wait: &LockWait, format: Format) -> Result<ExitCode, Failure> {
    let releases = crate::releases();
    let names: Vec<&str> = releases.iter().map(|r| r.name).collect();
    let parsed = ReleaseTag::parse(tag, names.iter().copied()).map_err(|e| {
        let f = Failure::of(&e);
        if names.is_empty() {
            f.note("this binary carries no releasable app: give an `app!` an `image` and a `chart`")
        } else {
            let forms: Vec<String> = names.iter().map(|n| format!("`{}`", tag_form(n))).collect();
            f.note(format!("the release tags this binary takes: {}", forms.join(", ")))
        }
    })?;
    let entry = releases
        .iter()
        .find(|r| r.name == parsed.app())
        .expect("the tag names a registered release");
    let session = Session::for_release(entry, topology)?;
    // Asked before any work: a release builds, pushes and delivers.
    confirmed(
        "release",
        yes,
        &format!(
            "Release {} {} on `{topology}`: build and push it, then deliver it to {}?",
            entry.name,
            parsed.version(),
            entry.stages.join(", then ")
        ),
    )?;
    // A dry run writes nothing, so it takes no lock.
    let locks = if dry_run {
        None
    } else {
        Some(session.lock(&format!("release {parsed}"), wait, format)?)
    };
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    let result = session.runtime.block_on((entry.run)(
        session.topology.clone(),
        parsed.version().clone(),
        mode,
        progress(format),
    ));
    let released = locks.map_or(Ok(()), |l| l.release(&session.runtime));
    let plan = result.map_err(|e| {
        Failure::of(&e).within(format!(
            "release `{parsed}` on `{}`, declared at {}",
            session.topology.name(),
            entry.location
        ))
    })?;
    released?;
    emit(
        &ReleaseView {
            plan,
            stages_in_order: entry.stages,
        },
        format,
    );
    Ok(ExitCode::SUCCESS)
}
