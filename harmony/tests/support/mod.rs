//! Real servers for the integration tests, started by the tests themselves.

#![allow(dead_code)]

pub mod registry;
