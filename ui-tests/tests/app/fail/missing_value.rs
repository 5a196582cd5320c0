// A key with nothing after its `:` is an error on the key, with an example value.
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
    name: ,
    score: Site::default(),
}

fn main() {}
