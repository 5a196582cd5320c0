// `#[score(crate = h)]` makes the generated code use `h` when `harmony` was
// renamed (here with `use harmony as h;`).
use harmony as h;

use h::{Desired, Render, RenderCx, ScoreError};

#[derive(h::Score)]
#[score(crate = h)]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn run_on<T: h::Topology, S: h::Score<T>>(_: &S) {}

fn main() {
    run_on::<h::Local, _>(&Probe { namespace: "default".into() });
}
