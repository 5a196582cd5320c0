// `#[derive(Score)]` on a tuple struct: a Score's fields need names.
use harmony::Score;

#[derive(Score)]
pub struct Probe(String);

fn main() {}
