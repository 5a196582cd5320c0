// `#[score(secret)]` on `Option<harmony::Secret<_>>`: an optional secret is
// accepted, and its Debug still never prints the value.
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Secret};

#[derive(Score, Debug)]
pub struct Probe {
    #[score(secret)]
    pub token: Option<Secret<String>>,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {
    let probe = Probe { token: Some(Secret::new("hunter2".to_owned())) };
    assert!(!format!("{probe:?}").contains("hunter2"));
}
