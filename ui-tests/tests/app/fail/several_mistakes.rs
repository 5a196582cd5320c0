// All of an `app!`'s mistakes are reported at once, each on its own token.
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
    name: "Site",
    scroe: Site::default(),
    topologies: [],
}

fn main() {}
