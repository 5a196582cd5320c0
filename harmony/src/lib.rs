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

pub mod build;
pub mod capability;
pub mod chart;
pub mod ci;
pub mod engine;
pub mod local;
pub mod object;
pub mod oci;
pub mod plan;
pub mod registry;
pub mod release;
pub mod run;
pub mod score;
pub mod secret;
pub mod suggest;
pub mod topology;
pub mod verify;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use capability::{K8sClient, K8sDeploy};
pub use harmony_macros::{Score, app};
pub use object::{Desired, Object, ObjectRef};
pub use run::{InterpretError, Run};
pub use score::{Interpret, Render, RenderCx, Score, ScoreError, SmokeError};
pub use secret::Secret;
pub use topology::{BuiltinTopology, Ci, Local, Topology};

/// Re-exported so Scores build their objects with the same version the
/// framework was built with.
pub use k8s_openapi;

inventory::submit! {
    registry::TopologyEntry {
        name: <local::Local as BuiltinTopology>::NAME,
        type_name: "Local",
        about: <local::Local as BuiltinTopology>::ABOUT,
        capabilities: &["K8sDeploy", "ContainerBuilder", "OciRegistry", "HelmRegistry", "ContinuousDelivery", "HttpProbe"],
    }
}

inventory::submit! {
    registry::TopologyEntry {
        name: <ci::Ci as BuiltinTopology>::NAME,
        type_name: "Ci",
        about: <ci::Ci as BuiltinTopology>::ABOUT,
        capabilities: &["K8sDeploy", "ContainerBuilder", "OciRegistry", "HelmRegistry", "ContinuousDelivery", "HttpProbe"],
    }
}

inventory::submit! { registry::CapabilityEntry { name: "K8sDeploy", about: <dyn K8sDeploy as capability::IsCapability>::ABOUT } }
inventory::submit! { registry::CapabilityEntry { name: "ContainerBuilder", about: <dyn release::ContainerBuilder as capability::IsCapability>::ABOUT } }
inventory::submit! { registry::CapabilityEntry { name: "HttpProbe", about: <dyn release::HttpProbe as capability::IsCapability>::ABOUT } }
inventory::submit! { registry::CapabilityEntry { name: "OciRegistry", about: <dyn release::OciRegistry as capability::IsCapability>::ABOUT } }
inventory::submit! { registry::CapabilityEntry { name: "HelmRegistry", about: <dyn release::HelmRegistry as capability::IsCapability>::ABOUT } }
inventory::submit! { registry::CapabilityEntry { name: "ContinuousDelivery", about: <dyn release::ContinuousDelivery as capability::IsCapability>::ABOUT } }
inventory::submit! { registry::CapabilityEntry { name: "K8sClient", about: <dyn K8sClient as capability::IsCapability>::ABOUT } }
