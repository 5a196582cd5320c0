// `requires(..)` takes capability traits only: a std trait such as `Debug` is
// rejected with the `IsCapability` message, which says how to declare one.
use std::fmt::Debug;

use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(requires(Debug))]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
