// `score` and `chart: published(..)`: `apply` would deploy the Score and `release`
// the published chart, so the two together are an error; `apply` deploys the chart.
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
    score: Site::default(),
    image: Dockerfile("Dockerfile"),
    chart: published("oci://registry.example.com/charts/site", "1.0.0"),
}

fn main() {}
