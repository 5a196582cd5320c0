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

/// Compiles only if `S` runs on `T`; returns what `S` needs, from its types.
fn run_on<T: h::Topology, S: h::Score<T> + h::score::IsScore>(_: &S) -> Vec<&'static str> {
    let mut needs = Vec::new();
    S::needs(&mut needs);
    needs.sort_unstable();
    needs.dedup();
    needs
}

fn main() {
    assert_eq!(run_on::<h::Local, _>(&Probe { namespace: "default".into() }), ["K8sDeploy"]);
}
