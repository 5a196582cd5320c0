// A key given twice in `app!` is an error on the second one.
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
    name: "other",
    score: Site::default(),
}

fn main() {}
