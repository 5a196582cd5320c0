// `smoke` names a check that does not exist.
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
    image: Dockerfile("Dockerfile"),
    chart: builder(site),
    smoke: tcp_connect(8080),
}

fn main() {}
