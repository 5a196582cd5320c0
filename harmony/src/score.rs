//! The three ideas: a [`Score`] says what should exist, a [`Topology`] is where,
//! and an [`Interpret`] makes it so there, returning only once it is verified.
//!
//! Users write data and a [`Render`] impl, then `#[derive(Score)]` writes the
//! rest: the capability bounds, the Interpret, the smoke-test companion and
//! the registry entry.

use std::future::Future;

use crate::engine::run::{InterpretError, Run};
pub use crate::errors::{ScoreError, SmokeError};
use crate::object::Desired;
pub use crate::render::{Render, RenderCx};
use crate::topology::Topology;

/// Something that should exist, declared as data, runnable on every topology
/// `T` that provides the capabilities it needs.
///
/// Implemented by `#[derive(Score)]`; its bounds on `T` are the capabilities
/// named in `#[score(requires(..))]` (leaf Scores) or the children's own
/// `Score<T>` bounds (composites).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Score that runs on topology `{T}`",
    label = "not a Score for `{T}`",
    note = "a Score is a struct of your own with `#[derive(harmony::Score)]` and, unless it has `child` fields, an `impl Render` for it; it runs on the topologies that provide what it `requires(..)`"
)]
pub trait Score<T: Topology>: Interpret<T> {}

/// What every Score is, whatever the topology: what its tree renders, and
/// what it needs of a topology, from its types (a leaf's `K8sDeploy` and
/// `requires(..)`, a composite's children's). Implemented by
/// `#[derive(Score)]`; a child or an `app!` score that is not one is an error
/// where it is written.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Score",
    label = "not a Score",
    note = "give a Score here: a value of a struct of your own with `#[derive(harmony::Score)]` (a `{Self}` it needs goes in one of its fields); a child can also be a `Vec` or an `Option` of Scores"
)]
pub trait IsScore {
    /// Add the names of the capabilities this Score tree needs.
    fn needs(out: &mut Vec<&'static str>);

    /// Everything the tree wants to exist, in deploy order. Pure.
    fn render_tree(&self, cx: &RenderCx) -> Result<Desired, ScoreError>;
}

impl<S: IsScore> IsScore for Vec<S> {
    fn needs(out: &mut Vec<&'static str>) {
        S::needs(out);
    }

    fn render_tree(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        let mut all = Desired::new();
        for (i, score) in self.iter().enumerate() {
            all.extend_element(i, score.render_tree(cx)?);
        }
        Ok(all)
    }
}

impl<S: IsScore> IsScore for Option<S> {
    fn needs(out: &mut Vec<&'static str>) {
        S::needs(out);
    }

    fn render_tree(&self, cx: &RenderCx) -> Result<Desired, ScoreError> {
        match self {
            Some(score) => score.render_tree(cx),
            None => Ok(Desired::new()),
        }
    }
}

/// The execution of a Score on a topology: deploy what it renders, in order,
/// each part gated by its smoke test. Returns only after verification passed.
pub trait Interpret<T: Topology>: Send + Sync {
    /// Deploy this Score (and its children) on `topology`, verified, as a step of `run`.
    fn execute<'a>(&'a self, topology: &'a T, run: &'a mut Run) -> impl Future<Output = Result<(), InterpretError>> + Send + 'a;
}

/// A Score that may be left out: `None` deploys nothing (and, on a later
/// apply, prunes what `Some` deployed).
impl<T: Topology, S: Score<T>> Score<T> for Option<S> {}

impl<T: Topology, S: Score<T>> Interpret<T> for Option<S> {
    async fn execute(&self, topology: &T, run: &mut Run) -> Result<(), InterpretError> {
        match self {
            Some(score) => score.execute(topology, run).await,
            None => Ok(()),
        }
    }
}

/// How many elements of a `Vec` child are deployed at once.
const PEERS: usize = 16;

/// Any number of Scores of one type: peers, deployed side by side, each
/// gated by its own verification and smoke test (ADR 0015). Named children
/// are what deploys in order.
impl<T: Topology, S: Score<T>> Score<T> for Vec<S> {}

impl<T: Topology, S: Score<T>> Interpret<T> for Vec<S> {
    async fn execute(&self, topology: &T, run: &mut Run) -> Result<(), InterpretError> {
        use futures_util::{StreamExt as _, TryStreamExt as _};
        let parent: &Run = run;
        futures_util::stream::iter(0..self.len())
            .map(|i| {
                let mut run = parent.fork(i.to_string());
                async move { self[i].execute(topology, &mut run).await }
            })
            .buffer_unordered(PEERS)
            .try_for_each(|()| async { Ok(()) })
            .await
    }
}
