// A composite inherits its children's capabilities: a child that needs
// `K8sClient` keeps the composite off `Local`, and the error says so.
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

#[derive(Score)]
pub struct Stack {
    #[score(child)]
    pub probe: Probe,
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    let stack = Stack { probe: Probe { namespace: "default".into() } };
    run_on::<harmony::Local, _>(&stack);
}
