// One field cannot be both `child` (a Score) and `secret` (a value).
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Secret};

#[derive(Score)]
pub struct Leaf {
    pub namespace: String,
}

impl Render for Leaf {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

#[derive(Score)]
pub struct Stack {
    #[score(child, secret)]
    pub leaf: Leaf,
    #[score(secret)]
    pub token: Secret<String>,
}

fn main() {}
