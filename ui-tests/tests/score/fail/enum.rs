// `#[derive(Score)]` on an enum: a Score is a struct with named fields.
use harmony::Score;

#[derive(Score)]
pub enum Probe {
    A,
    B,
}

fn main() {}
