// A chart builder that returns a `Result`: it makes the Score itself, and a
// chart that cannot be made is a `ScoreError` from the Score's `Render`.
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

#[allow(dead_code)]
fn chart(_: &ReleaseCx) -> Result<Site, String> {
    Ok(Site::default())
}

harmony::app! {
    name: "site",
    image: Dockerfile("Dockerfile"),
    chart: builder(chart),
}

fn main() {}
