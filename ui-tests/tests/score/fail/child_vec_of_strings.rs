// A `Vec` child whose elements are not Scores: the error is at the field's type.
use harmony::Score;

#[derive(Score)]
pub struct Probe {
    #[score(child)]
    pub names: Vec<String>,
}

fn main() {}
