//! The fleet's operator: a kube-rs controller for `FleetDeployment`
//! resources (`crd`), reading the fleet's buckets from memory (`view`) and
//! writing each selected device's manifest into NATS, signed (`controller`)
//! with the key it keeps (`keys`).
//!
//! It installs nothing but its key: its CustomResourceDefinition, RBAC and Deployment
//! come from the deploy crate (`apps/fleet`), which renders them from
//! [`crd::FleetDeployment::crd`].

pub mod controller;
pub mod crd;
pub mod keys;
pub mod view;
