//! How a leaf Score renders: [`Render`] into a [`Desired`], knowing only its
//! [`RenderCx`]. Rendering is pure: plans and dry runs depend on it.

use crate::errors::ScoreError;
use crate::object::Desired;

/// How a leaf Score renders its desired state: typed `k8s-openapi` objects
/// pushed into a [`Desired`]. The derive calls it; nothing else should.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no `Render` impl, so the derived Score cannot render it",
    label = "a leaf Score needs `impl harmony::Render for {Self}`",
    note = "a Score without `#[score(child)]` fields renders its own objects: implement `harmony::Render` for it"
)]
pub trait Render {
    /// This Score's objects. Pure: the same Score and context give the same objects.
    fn render(&self, cx: &RenderCx) -> Result<Desired, ScoreError>;
}

/// What a Score may know while rendering: which app it belongs to and where
/// it is going. Rendering must not depend on anything else.
#[derive(Debug, Clone)]
pub struct RenderCx {
    app: String,
    topology: String,
    /// Whether the render is for a run, which deploys each Score's part of it
    /// (a plan or a `render` is not, and records nothing it does not use).
    for_a_run: bool,
}

impl RenderCx {
    /// The context of a render of app `app` for topology `topology`.
    pub fn new(app: impl Into<String>, topology: impl Into<String>) -> Self {
        Self {
            app: app.into(),
            topology: topology.into(),
            for_a_run: false,
        }
    }

    /// The same, for a render that a run deploys from.
    pub(crate) fn for_a_run(mut self) -> Self {
        self.for_a_run = true;
        self
    }

    /// What one Score rendered, marked as its part of the tree when the
    /// render is for a run (what a leaf's `render_tree` returns).
    pub fn part(&self, rendered: Result<Desired, ScoreError>) -> Result<Desired, ScoreError> {
        match rendered {
            Ok(desired) if self.for_a_run => Ok(desired.of_one_score()),
            other => other,
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
