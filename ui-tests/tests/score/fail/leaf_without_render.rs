// A leaf Score (no `child` field) renders its own objects: without
// `impl harmony::Render` the error says to write one.
use harmony::Score;

#[derive(Score)]
pub struct Probe {
    pub namespace: String,
}

fn main() {}
