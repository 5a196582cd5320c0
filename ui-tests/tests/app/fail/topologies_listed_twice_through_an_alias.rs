// One topology twice, once under a name `use` gave it.
use harmony::Local as Here;
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
    topologies: [harmony::Ci, harmony::Local, Here],
}

fn main() {}
