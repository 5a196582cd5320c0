// `#[score(Child)]`: the key is unknown, and `child` is suggested.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Leaf {
    pub name: String,
}

impl Render for Leaf {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

#[derive(Score)]
pub struct Probe {
    #[score(Child)]
    pub leaf: Leaf,
}

fn main() {}
