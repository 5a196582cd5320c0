// A published chart is pinned to an exact semver version.
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
    chart: published("oci://registry.example.com/charts/site", "1.0"),
}

fn main() {}
