//! Harmony: an application's delivery as one declarative, compiler-checked
//! block of Rust.
//!
//! * A [`Score`] says what should exist (typed Kubernetes objects, rendered
//!   without side effects).
//! * A [`Topology`] is where it runs; it provides [capabilities](capability).
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

pub mod any_topology;
pub mod argocd;
pub mod build;
pub mod capability;
pub mod chart;
pub mod checks;
mod ci;
pub mod cluster;
mod diagnostic;
pub mod engine;
mod errors;
pub mod gitops;
pub mod helm;
pub mod local;
pub mod lock;
pub mod object;
pub mod oci;
pub mod plan;
pub mod ready_when;
pub mod registry;
pub mod release;
mod render;
pub mod run;
pub mod saved_plan;
pub mod score;
pub mod secret;
pub mod secret_key;
/// Did-you-mean hints, one way for every place that makes them.
pub use harmony_suggest as suggest;
mod time;
pub mod topology;
mod verify;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use any_topology::AnyTopology;
pub use capability::{K8sClient, K8sDeploy, Tunnel};
pub use ci::Ci;
pub use diagnostic::Diagnostic;
pub use harmony_macros::{Score, app, capability};
pub use local::Local;
pub use object::{Desired, Object, ObjectRef};
pub use run::{InterpretError, Run};
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
