// A Score that `requires(K8sClient)` does not run on `Local`: the error names
// the missing capability and says which topologies provide it.
use harmony::{Desired, K8sClient, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
#[score(requires(K8sClient))]
pub struct Probe {
    pub namespace: String,
}

impl Render for Probe {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    let score = Probe { namespace: "default".into() };
    run_on::<harmony::Local, _>(&score);
}
