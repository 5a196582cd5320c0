// `name` is checked when the app compiles: a constant is refused, saying to write the string.
use harmony::release::ReleaseCx;
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

#[allow(dead_code)]
fn site(_: &ReleaseCx) -> Site {
    Site::default()
}

const APP_NAME: &str = "site";

harmony::app! {
    name: APP_NAME,
    score: Site::default(),
}

fn main() {}
