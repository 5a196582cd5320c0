// An unknown key in `app!` is an error on the key, suggesting the closest (`nmae` → `name`).
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
    nmae: "site",
    score: Site::default(),
}

fn main() {}
