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
