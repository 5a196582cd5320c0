// A type of the user's own that happens to be called `Secret` does not keep
// the redaction promise either.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Debug)]
pub struct Secret(pub String);

#[derive(Score)]
pub struct Probe {
    #[score(secret)]
    pub token: Secret,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
