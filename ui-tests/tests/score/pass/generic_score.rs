// A generic Score: its own generics and where clause are kept beside the
// topology's bounds (and, having no single type, it is not registered).
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Labelled<L>
where
    L: AsRef<str> + Send + Sync,
{
    pub label: L,
}

impl<L: AsRef<str> + Send + Sync> Render for Labelled<L> {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

/// Compiles only if `S` runs on `T`; returns what `S` needs, from its types.
fn run_on<T: harmony::Topology, S: harmony::Score<T> + harmony::score::IsScore>(_: &S) -> Vec<&'static str> {
    let mut needs = Vec::new();
    S::needs(&mut needs);
    needs.sort_unstable();
    needs.dedup();
    needs
}

fn main() {
    assert_eq!(run_on::<harmony::Local, _>(&Labelled { label: "x" }), ["K8sDeploy"]);
}
