//! The registry's entries, collected at link time with `inventory`:
//! every derived Score, every app, every built-in topology and capability.
//! Discovery over them lives in `harmony-registry`.

use std::sync::Arc;

use crate::capability::BoxFuture;
use crate::engine::EngineError;
use crate::object::Object;
use crate::plan::Plan;
use crate::run::Progress;

/// Where something was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub file: &'static str,
    pub line: u32,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// One field of a derived Score, for `explain`.
#[derive(Debug, Clone, Copy)]
pub struct FieldInfo {
    pub name: &'static str,
    pub ty: &'static str,
    pub doc: &'static str,
    pub child: bool,
    pub secret: bool,
}

/// A Score type, as `#[derive(Score)]` registers it.
#[derive(Debug)]
pub struct ScoreEntry {
    pub name: &'static str,
    pub module: &'static str,
    pub doc: &'static str,
    pub location: Location,
    /// The capabilities named in `requires(..)` (leaf Scores only).
    pub requires: &'static [&'static str],
    pub fields: &'static [FieldInfo],
    /// The smoke test given with `smoke = ..`; `None` means the default
    /// verification of what was rendered.
    pub smoke: Option<&'static str>,
    /// The built-in topologies this Score runs on.
    pub topologies: fn() -> Vec<&'static str>,
}
inventory::collect!(ScoreEntry);

/// A deployable app, as `app! { .. }` registers it.
#[derive(Debug)]
pub struct AppEntry {
    pub name: &'static str,
    pub doc: &'static str,
    pub module: &'static str,
    pub location: Location,
    /// The type of the app's root Score.
    pub score: fn() -> &'static str,
    /// A runner per topology the app runs on.
    pub runners: fn() -> Vec<Runner>,
}
inventory::collect!(AppEntry);

/// An app that can be released (`app!` with `image` and `chart`).
#[derive(Debug)]
pub struct ReleaseEntry {
    pub name: &'static str,
    pub location: Location,
    /// The stages, in promotion order.
    pub stages: &'static [&'static str],
    /// A runner per topology the release runs on.
    pub runners: fn() -> Vec<ReleaseRunner>,
}
inventory::collect!(ReleaseEntry);

/// Why a release could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseRunError {
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    #[error(transparent)]
    Release(#[from] crate::release::ReleaseError),
}

type ReleaseFn = dyn Fn(
        crate::release::Version,
        crate::run::Mode,
        Arc<dyn Progress>,
    ) -> BoxFuture<'static, Result<crate::release::ReleasePlan, ReleaseRunError>>
    + Send
    + Sync;

/// Releases one app on one topology, erasing the topology's type.
pub struct ReleaseRunner {
    pub topology: &'static str,
    run: Box<ReleaseFn>,
}

impl std::fmt::Debug for ReleaseRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReleaseRunner")
            .field("topology", &self.topology)
            .finish_non_exhaustive()
    }
}

impl ReleaseRunner {
    pub(crate) fn new(topology: &'static str, run: Box<ReleaseFn>) -> Self {
        Self { topology, run }
    }

    pub fn run(
        &self,
        version: crate::release::Version,
        mode: crate::run::Mode,
        progress: Arc<dyn Progress>,
    ) -> BoxFuture<'static, Result<crate::release::ReleasePlan, ReleaseRunError>> {
        (self.run)(version, mode, progress)
    }
}

/// A built-in topology and the capabilities it provides.
#[derive(Debug)]
pub struct TopologyEntry {
    pub name: &'static str,
    pub type_name: &'static str,
    pub about: &'static str,
    pub capabilities: &'static [&'static str],
}
inventory::collect!(TopologyEntry);

/// A capability trait.
#[derive(Debug)]
pub struct CapabilityEntry {
    pub name: &'static str,
    pub about: &'static str,
}
inventory::collect!(CapabilityEntry);

/// What the CLI asks of an app on a topology.
#[derive(Clone)]
pub enum Request {
    Render,
    Plan,
    DryRun { progress: Arc<dyn Progress> },
    Apply { progress: Arc<dyn Progress> },
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Render => "Render",
            Self::Plan => "Plan",
            Self::DryRun { .. } => "DryRun",
            Self::Apply { .. } => "Apply",
        })
    }
}

/// What came of it.
#[derive(Debug)]
pub enum Outcome {
    Rendered(Vec<Object>),
    Planned(Plan),
}

/// Why a runner could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

type RunFn = dyn Fn(Request) -> BoxFuture<'static, Result<Outcome, RunError>> + Send + Sync;

/// Runs one app on one topology, erasing both types.
pub struct Runner {
    pub topology: &'static str,
    run: Box<RunFn>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner").field("topology", &self.topology).finish_non_exhaustive()
    }
}

impl Runner {
    pub(crate) fn new(topology: &'static str, run: Box<RunFn>) -> Self {
        Self { topology, run }
    }

    pub fn run(&self, request: Request) -> BoxFuture<'static, Result<Outcome, RunError>> {
        (self.run)(request)
    }
}
