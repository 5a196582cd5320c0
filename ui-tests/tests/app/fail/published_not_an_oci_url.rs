// A published chart must be an `oci://` URL with a host.
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
    chart: published("https://charts.example.com/site", "1.0.0"),
}

fn main() {}
