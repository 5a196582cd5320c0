// A list of children and an `impl Render` of the Score's own.
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
    pub dbs: Vec<Db>,
}

impl Render for Shop {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
