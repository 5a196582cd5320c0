// A generic Score with children and an `impl Render` of its own: rustc's
// "conflicting implementations" (docs/compile-errors.md says why).
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Db {
    pub name: String,
}

impl Render for Db {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

#[derive(Score)]
pub struct Shop<D> {
    #[score(child)]
    pub db: D,
}

impl<D> Render for Shop<D> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
