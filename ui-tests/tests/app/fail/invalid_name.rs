// App names name directories and Kubernetes labels: `"Web_App"` is rejected
// on the literal, with the rule and an example.
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
    name: "Web_App",
    score: Site::default(),
}

fn main() {}
