#![warn(missing_docs)]
//! Harmony: an application's delivery as one declarative, compiler-checked
//! block of Rust.
//!
//! * A [`Score`] says what should exist (typed Kubernetes objects, rendered
//!   without side effects).
//! * A [`Topology`] is where it runs; it provides [capabilities](mod@capability).
//!   A Score that needs a capability the topology lacks does not compile.
//! * An [`Interpret`] makes a Score so on a topology and returns only once its
//!   smoke test passed. `#[derive(Score)]` writes it.
//!
//! ```ignore
//! /// The web front end's configuration.
//! #[derive(harmony::Score)]
//! pub struct Config { pub namespace: String, pub greeting: String }
//!
//! impl harmony::Render for Config {
//!     fn render(&self, cx: &harmony::RenderCx) -> Result<harmony::Desired, harmony::ScoreError> { /* … */ }
//! }
//! ```
//!
//! # Where to start
//! * **Writing an app**: a Score is a struct with `#[derive(`[`Score`]`)]` and
//!   a [`Render`] impl that pushes typed objects into a [`Desired`]; children
//!   compose with `#[score(child)]`; secret values are [`Secret`]s; an object's
//!   readiness rule is [`ready_when`]. [`app!`] registers the app (its image,
//!   chart and stages too).
//! * **Writing a topology**: implement [`Topology`] and [`SelectableTopology`],
//!   the [capabilities](mod@capability) it provides, and declare it with
//!   [`topology!`]. A topology that keeps a GitOps directory gets
//!   [`K8sDeploy`] from [`gitops::GitOps`].
//! * **How a command runs**: the CLI reaches each app through
//!   [`engine::registry::RegisteredApp`]; [`engine`] renders the tree once, computes
//!   the plan and carries it out.

// What an app author names: Scores and what they render.
pub mod chart;
pub mod object;
pub mod ready_when;
pub mod score;
pub mod secret;

// What a topology author names: topologies, the capabilities they provide,
// and the state directories and locks the built-in ones keep.
pub mod capability;
pub mod cluster;
pub mod gitops;
pub mod local;
pub mod lock;
pub mod secret_key;
pub mod topology;

// Releases: building images, packaging charts, delivering them stage by stage.
pub mod argocd;
pub mod build;
pub mod helm;
pub mod oci;
pub mod release;

// The machinery the generated CLI drives, behind one door: the registry of
// what a binary carries, the erased topology apps run on, one run of a tree,
// where plans are computed and carried out, and saved plans.
pub mod engine;

// The words of the DSL's compile errors (public because rustc names them).
pub mod checks;

mod ci;
mod diagnostic;
mod errors;
mod files;
mod render;
mod time;
mod verify;

/// Did-you-mean hints, one way for every place that makes them.
pub use harmony_suggest as suggest;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use capability::{K8sClient, K8sDeploy, Tunnel};
pub use ci::Ci;
pub use diagnostic::Diagnostic;
pub use engine::any_topology::AnyTopology;
pub use engine::run::{InterpretError, Run};
pub use harmony_macros::{Score, app, capability};
pub use local::Local;
pub use object::{Desired, Object, ObjectRef};
pub use score::{Interpret, Render, RenderCx, Score, ScoreError, SmokeError};
pub use secret::Secret;
pub use topology::{SelectableTopology, Topology};

/// The future a capability method returns: boxed, so capability traits stay
/// dyn-compatible.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Re-exported so Scores build their objects with the same version the
/// framework was built with.
pub use k8s_openapi;
/// For objects no typed struct describes (a custom resource): `Object::from_value(serde_json::json!({…}))`.
pub use serde_json;
