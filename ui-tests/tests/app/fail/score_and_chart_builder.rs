// `score` and `chart: builder(..)` both say what the app deploys: `apply` would
// deploy one and `release` the other, so the two together are an error.
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

fn site(_: &ReleaseCx) -> Site {
    Site::default()
}

harmony::app! {
    name: "site",
    score: Site::default(),
    image: Dockerfile("Dockerfile"),
    chart: builder(site),
}

fn main() {}
