// `score: Site` names the type; a value is needed (rustc's error, at it).
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

harmony::app! {
    name: "site",
    score: Site,
}

fn main() {}
