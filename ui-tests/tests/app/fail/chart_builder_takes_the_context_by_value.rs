// A chart builder that takes the release's context by value.
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
fn chart(_: ReleaseCx) -> Site {
    Site::default()
}

harmony::app! {
    name: "site",
    image: Dockerfile("Dockerfile"),
    chart: builder(chart),
}

fn main() {}
