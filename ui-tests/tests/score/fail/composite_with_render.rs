// A Score with children deploys its children only: its own `impl Render` would
// never run, so the two together are an error at the `child` key.
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
pub struct Shop {
    #[score(child)]
    pub db: Db,
}

impl Render for Shop {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
