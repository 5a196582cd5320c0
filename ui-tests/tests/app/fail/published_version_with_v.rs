// A published chart's version written with a leading `v`.
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
    score: Site::default(),
    image: Dockerfile("Dockerfile"),
    chart: published("oci://registry.example/charts/site", "v1.2.3"),
}

fn main() {}
