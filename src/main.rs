//! The workspace's CLI: every app of the workspace, one binary.
//! `cargo run -- list` shows them; `cargo run -- apply --yes` deploys them locally.

harmony_registry::main!(webapp);
