// `#[score(secret)]` promises redaction, which only `harmony::Secret<_>` keeps:
// on a plain `String` it is an error on the type.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Probe {
    #[score(secret)]
    pub password: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
