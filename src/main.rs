//! The workspace's CLI: every app of the workspace, one binary, with the
//! `k8s` topology linked in. `cargo run -- list` shows them;
//! `cargo run -- apply --yes` deploys them locally.

harmony_registry::main!(webapp, fleet, harmony_k8s);
