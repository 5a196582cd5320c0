// `app!` without `topologies`: registered on every built-in topology its Score
// runs on; doc lines, any key order and a trailing comma are accepted.
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
    /// The site.
    score: Site::default(),
    name: "site",
}

fn main() {}
