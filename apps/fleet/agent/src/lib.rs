//! The fleet's device agent: it makes a device hold what its
//! [`AgentManifest`](fleet_model::AgentManifest) says, one reconciler per
//! resource kind, each idempotent and reporting a typed status.
//!
//! - `reconcile`: the [`Reconciler`](reconcile::Reconciler) a kind implements;
//! - `files`: a file with exactly this content and mode, written atomically;
//! - `links`: a symbolic link pointing at its target, re-pointed in one step;
//! - `process`: a supervised long-running program with a restart policy;
//! - `agent`: the loop between NATS (through `fleet-kv`) and the
//!   reconcilers, which runs only what the operator signed;
//! - `trust`: the operator key the device was enrolled with, pinned.

pub mod agent;
pub mod files;
pub mod links;
pub mod process;
pub mod reconcile;
pub mod trust;
