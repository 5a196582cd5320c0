// A Score's Interpret runs on any thread: a field that is not `Send` + `Sync`
// (here `Rc`) is an error that names the field's type.
use std::rc::Rc;

use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Probe {
    pub namespace: Rc<String>,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn main() {}
