// `#[score(child, child)]`: the second is flagged.
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
    #[score(child, child)]
    pub leaf: Leaf,
}

fn main() {}
