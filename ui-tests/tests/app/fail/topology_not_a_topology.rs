// Every entry of `topologies` must be a topology: `String` is flagged where it is written.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score, Default)]
pub struct Site {
    pub namespace: String,
}

impl Render for Site {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

harmony::app! {
    name: "site",
    score: Site::default(),
    topologies: [String],
}

fn main() {}
