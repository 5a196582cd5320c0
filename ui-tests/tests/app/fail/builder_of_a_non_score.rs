// `chart: builder(f)` where `f` does not return a Score.
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

fn not_a_score(_: &ReleaseCx) -> String {
    String::new()
}

harmony::app! {
    name: "site",
    image: Dockerfile("Dockerfile"),
    chart: builder(not_a_score),
}

fn main() {}
