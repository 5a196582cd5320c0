// `Name:` for `name:`: the key is unknown, and the right one is suggested.
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
    Name: "site",
    score: Site::default(),
}

fn main() {}
