//! The registry's entries, collected at link time with `inventory`:
//! every derived Score, every app, every declared topology and capability.
//! Discovery over them lives in `harmony-registry`.

use std::sync::Arc;

use crate::capability::BoxFuture;
use crate::engine::EngineError;
use crate::engine::any_topology::{AnyTopology, Provided};
use crate::engine::plan::{ExactPlan, Plan};
use crate::engine::run::Progress;
use crate::object::Object;
use crate::topology::TopologyError;

/// Where something was declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The source file, as `file!()` names it.
    pub file: &'static str,
    /// The line, counted from 1.
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
    /// The field's name.
    pub name: &'static str,
    /// Its type, as written in the struct.
    pub ty: &'static str,
    /// Its doc comment (empty when it has none).
    pub doc: &'static str,
    /// Marked `#[score(child)]`: a Score deployed as part of this one.
    pub child: bool,
    /// Marked `#[score(secret)]`: its value never shows.
    pub secret: bool,
}

/// A Score type, as `#[derive(Score)]` registers it.
#[derive(Debug)]
pub struct ScoreEntry {
    /// The Score's type name.
    pub name: &'static str,
    /// The module it is declared in, as `module_path!()` names it.
    pub module: &'static str,
    /// Its doc comment (empty when it has none).
    pub doc: &'static str,
    /// Where it is declared.
    pub location: Location,
    /// The capabilities named in `requires(..)`.
    pub requires: fn() -> Vec<&'static str>,
    /// Its fields, in declaration order.
    pub fields: &'static [FieldInfo],
    /// The smoke test given with `smoke = ..`, run after the topology's
    /// verification; `None` when verification is all.
    pub smoke: Option<&'static str>,
    /// Every capability the Score tree needs, from its types: it runs on the
    /// topologies that provide them all.
    pub needs: fn() -> Vec<&'static str>,
}
inventory::collect!(ScoreEntry);

/// A deployable app, as `app! { .. }` registers it.
#[derive(Debug)]
pub struct AppEntry {
    /// The app's name (`name:`), unique in a binary.
    pub name: &'static str,
    /// The doc comment above `app!` (empty when it has none).
    pub doc: &'static str,
    /// The module `app!` is invoked in.
    pub module: &'static str,
    /// Where `app!` is invoked.
    pub location: Location,
    /// The type of the app's root Score.
    pub score: fn() -> &'static str,
    /// Every capability the app needs of a topology, from its Score's types.
    pub needs: fn() -> Vec<&'static str>,
    /// The app itself: what each command asks of it, on a topology that
    /// provides every need.
    pub app: &'static dyn RegisteredApp,
}
inventory::collect!(AppEntry);

/// An app that can be released (`app!` with `image` and `chart`).
#[derive(Debug)]
pub struct ReleaseEntry {
    /// The app's name, as its [`AppEntry`] has it.
    pub name: &'static str,
    /// Where `app!` is invoked.
    pub location: Location,
    /// The stages, in promotion order.
    pub stages: &'static [&'static str],
    /// Every capability releasing needs of a topology.
    pub needs: fn() -> Vec<&'static str>,
    /// Release a version on a topology that provides every need.
    pub run: ReleaseFn,
}
inventory::collect!(ReleaseEntry);

/// How a registered release runs.
pub type ReleaseFn = fn(
    Arc<AnyTopology>,
    crate::release::Version,
    crate::engine::run::Mode,
    Arc<dyn Progress>,
) -> BoxFuture<'static, Result<crate::release::ReleasePlan, crate::release::ReleaseError>>;

/// A topology registered with [`topology!`](crate::topology!), and the
/// capabilities it implements.
#[derive(Debug)]
pub struct TopologyEntry {
    /// The name `--topology` takes ([`SelectableTopology::NAME`](crate::SelectableTopology::NAME)).
    pub name: &'static str,
    /// The type, as written in `topology!(..)`.
    pub type_name: &'static str,
    /// One line on what it is, for `list`.
    pub about: &'static str,
    /// The capabilities it implements, found from its trait impls.
    pub provides: fn() -> Vec<Provided>,
    /// Set it up from the environment.
    pub connect: fn() -> Result<AnyTopology, TopologyError>,
}
inventory::collect!(TopologyEntry);

/// `topology`, with the capabilities its registration (`topology!`) found;
/// `None` if this binary does not register `T`.
pub fn registered<T: crate::topology::SelectableTopology>(topology: T) -> Option<AnyTopology> {
    let type_name = std::any::type_name::<T>();
    let entry = inventory::iter::<TopologyEntry>
        .into_iter()
        .find(|e| e.name == T::NAME && type_name.ends_with(e.type_name.rsplit("::").next().unwrap_or(e.type_name)))?;
    Some(AnyTopology::new(topology, (entry.provides)()))
}

impl TopologyEntry {
    /// The names of the capabilities it provides, sorted.
    pub fn capabilities(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = (self.provides)().iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Of `needs`, what this topology does not provide.
    pub fn lacks(&self, needs: &[&'static str]) -> Vec<&'static str> {
        let provided = self.capabilities();
        needs.iter().copied().filter(|n| !provided.contains(n)).collect()
    }
}

/// A capability trait.
#[derive(Debug)]
pub struct CapabilityEntry {
    /// The trait's name.
    pub name: &'static str,
    /// The first line of the trait's doc comment, for `list`.
    pub about: &'static str,
}
inventory::collect!(CapabilityEntry);

/// A registered app, as the CLI reaches it: one method per command, each
/// with its own result. `app!` implements it for the app's root Score
/// (docs/adr/0025-typed-app-interface.md). The topology is the one
/// `--topology` selected; the CLI has checked it provides every need first.
pub trait RegisteredApp: Sync {
    /// The objects the app renders for `topology`; nothing is asked of it.
    fn render(&self, topology: &AnyTopology) -> Result<Vec<Object>, EngineError>;

    /// What applying would change. Writes nothing.
    fn plan<'a>(&'a self, topology: &'a AnyTopology) -> BoxFuture<'a, Result<Plan, EngineError>>;

    /// The plan with what it was computed from: what `apply` carries out and
    /// `plan --out` saves. Writes nothing.
    fn exact_plan<'a>(&'a self, topology: &'a AnyTopology) -> BoxFuture<'a, Result<ExactPlan, EngineError>>;

    /// Every step of `plan` (made by [`exact_plan`](Self::exact_plan)) checked
    /// by the target, nothing written; returns the plan.
    fn dry_run<'a>(
        &'a self,
        topology: &'a AnyTopology,
        plan: &'a ExactPlan,
        progress: Arc<dyn Progress>,
    ) -> BoxFuture<'a, Result<Plan, EngineError>>;

    /// Carry out exactly `plan`; refused, naming what moved, if the desired
    /// state or the target is no longer what it was computed from.
    fn apply<'a>(
        &'a self,
        topology: &'a AnyTopology,
        plan: &'a ExactPlan,
        progress: Arc<dyn Progress>,
    ) -> BoxFuture<'a, Result<Plan, EngineError>>;
}

impl std::fmt::Debug for dyn RegisteredApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RegisteredApp")
    }
}
