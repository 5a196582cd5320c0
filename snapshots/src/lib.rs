//! Snapshot tests live under `tests/`.
