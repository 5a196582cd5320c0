//! The fleet's device agent: it makes a device hold what its
//! [`AgentManifest`](fleet_model::AgentManifest) says, one reconciler per
//! resource kind, each idempotent and reporting a typed status.
//!
//! Done so far: files (`files`). To come (issue "apps/fleet"): supervised
//! processes, and the NATS side (watching the device's key, writing its
//! status with compare-and-set, heartbeats, reconnects).

pub mod files;
