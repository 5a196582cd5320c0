//! `release --from-tag TAG`: build, push and deliver the release the tag
//! names, stage by stage, each gated by its verification, under the lock of
//! the app on the topology.

use std::process::ExitCode;

use harmony::Topology;
use harmony::release::{ReleasePlan, ReleaseTag};
use harmony::run::Mode;
use serde::Serialize;

use super::list::tag_form;
use super::{LockWait, confirmed, connect, lock_apps, progress, runtime, unknown_topology};
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
    let topology_entry = crate::topology(topology).ok_or_else(|| unknown_topology(topology))?;
    let needs = (entry.needs)();
    let lacks = topology_entry.lacks(&needs);
    if !lacks.is_empty() {
        let mut f = Failure::new(format!("`{}` cannot be released on topology `{topology}`", entry.name)).at(entry.location.to_string());
        for cap in &lacks {
            f = f.note(format!(
                "topology `{}` does not provide capability `{cap}`",
                topology_entry.type_name
            ));
        }
        let elsewhere = crate::runs_on(&needs);
        return Err(if elsewhere.is_empty() {
            f.help(format!("release it on a topology that provides {}", needs.join(", ")))
        } else {
            f.help(format!("it can be released on: {}", elsewhere.join(", ")))
        });
    }
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
    let connected = connect(topology_entry)?;
    let rt = runtime();
    // A dry run writes nothing, so it takes no lock.
    let locks = if dry_run {
        None
    } else {
        Some(lock_apps(
            &rt,
            &connected,
            &[entry.name],
            &format!("release {parsed}"),
            wait,
            format,
        )?)
    };
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    let result = rt.block_on((entry.run)(connected.clone(), parsed.version().clone(), mode, progress(format)));
    let released = locks.map_or(Ok(()), |l| l.release(&rt));
    let plan = result.map_err(|e| {
        Failure::of(&e).within(format!(
            "release `{parsed}` on `{}`, declared at {}",
            connected.name(),
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
