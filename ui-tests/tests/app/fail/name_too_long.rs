// An app name longer than 53 characters (Helm's limit for a release name).
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
    name: "a-site-whose-name-goes-on-and-on-well-past-what-helm-allows",
    score: Site::default(),
}

fn main() {}
