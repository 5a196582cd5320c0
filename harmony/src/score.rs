//! The three ideas: a [`Score`] says what should exist, a [`Topology`] is where,
//! and an [`Interpret`] makes it so there, returning only once it is verified.
//!
//! Users write data and a [`Render`] impl, then `#[derive(Score)]` writes the
//! rest: the capability bounds, the Interpret, the smoke-test companion and
//! the registry entry.

use std::future::Future;

use crate::object::Desired;
use crate::run::{InterpretError, Run};
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
    note = "derive it: `#[derive(harmony::Score)]` on a struct with named fields"
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
    note = "derive it with `#[derive(harmony::Score)]`, or use a `Vec` of Scores"
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
        for score in self {
            all.extend(score.render_tree(cx)?);
        }
        Ok(all)
    }
}

/// The execution of a Score on a topology: deploy what it renders, in order,
/// each part gated by its smoke test. Returns only after verification passed.
pub trait Interpret<T: Topology>: Send + Sync {
    fn execute<'a>(&'a self, topology: &'a T, run: &'a mut Run) -> impl Future<Output = Result<(), InterpretError>> + Send + 'a;
}

/// How a leaf Score renders its desired state: typed `k8s-openapi` objects
/// pushed into a [`Desired`]. The derive calls it; nothing else should.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `Render` impl, so the derived Score cannot render it",
    label = "a leaf Score needs `impl harmony::Render for {Self}`",
    note = "a Score without `#[score(child)]` fields renders its own objects: implement `harmony::Render` for it"
)]
pub trait Render {
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError>;
}

/// What a Score may know while rendering: which app it belongs to and where
/// it is going. Rendering must not depend on anything else.
#[derive(Debug, Clone)]
pub struct RenderCx {
    app: String,
    topology: String,
}

impl RenderCx {
    pub fn new(app: impl Into<String>, topology: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            topology: topology.into(),
        }
    }

    /// The registered app this render is for.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The topology's name (`local`, …).
    pub fn topology(&self) -> &str {
        &self.topology
    }
}

/// A Score could not render: its data is inconsistent or incomplete.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error("{what} is invalid: {why}")]
    Invalid { what: String, why: String, help: String },
}

impl ScoreError {
    /// `what` is invalid because `why`; `help` says what to do.
    pub fn invalid(what: impl Into<String>, why: impl Into<String>, help: impl Into<String>) -> Self {
        Self::Invalid {
            what: what.into(),
            why: why.into(),
            help: help.into(),
        }
    }
}

impl crate::Diagnostic for ScoreError {
    fn help(&self) -> String {
        match self {
            Self::Invalid { help, .. } => help.clone(),
        }
    }
}

/// A smoke test failed: what was checked and why it did not pass.
#[derive(Debug, thiserror::Error)]
#[error("{check}: {why}")]
pub struct SmokeError {
    pub check: String,
    pub why: String,
    help: Option<String>,
}

impl SmokeError {
    pub fn new(check: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            why: why.into(),
            help: None,
        }
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// The help the check gave, if it gave one.
    pub fn given_help(&self) -> Option<&str> {
        self.help.as_deref()
    }
}

impl crate::Diagnostic for SmokeError {
    fn help(&self) -> String {
        self.help
            .clone()
            .unwrap_or_else(|| "what was deployed so far is kept and recorded; fix the cause and apply again".into())
    }
}

/// A composite of any number of Scores of one type, deployed in order.
impl<T: Topology, S: Score<T>> Score<T> for Vec<S> {}

impl<T: Topology, S: Score<T>> Interpret<T> for Vec<S> {
    async fn execute(&self, topology: &T, run: &mut Run) -> Result<(), InterpretError> {
        for (i, score) in self.iter().enumerate() {
            run.enter(i.to_string());
            let result = score.execute(topology, run).await;
            run.leave();
            result?;
        }
        Ok(())
    }
}
