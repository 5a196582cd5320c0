// `smoke = path` must name an `async fn(&self, &T) -> Result<(), SmokeError>`;
// a missing one is an error on the path.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(smoke = Self::ping)]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
