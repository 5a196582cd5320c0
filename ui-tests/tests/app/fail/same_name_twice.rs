// Two apps of one name in a crate: one would silently shadow the other, so the
// second `name` is an error.
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
    name: "site",
    score: Site::default(),
}

mod other {
    harmony::app! {
        name: "site",
        score: super::Site { namespace: "other".into() },
    }
}

fn main() {}
