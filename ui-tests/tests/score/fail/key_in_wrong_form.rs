// Each key has one form: `requires(..)` a list, `smoke = path` a value,
// `child` a bare word. Each misuse says how to write it.
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(requires = K8sClient, smoke = "not a path")]
pub struct Probe {
    #[score(secret = true)]
    pub token: harmony::Secret<String>,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
