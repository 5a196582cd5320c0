// A composite: `#[score(child)]` fields, no `Render` impl, plain fields beside
// the children, its own `smoke =`; it runs wherever all its children run.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Namespace {
    pub name: String,
}

impl Render for Namespace {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

#[derive(Score)]
pub struct Server {
    pub image: String,
}

impl Render for Server {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

/// The whole app, with a smoke test of its own after its children's.
#[derive(Score)]
#[score(smoke = Self::check)]
pub struct Stack {
    /// Not a child: just data.
    pub label: String,
    #[score(child)]
    pub namespace: Namespace,
    #[score(child)]
    pub server: Server,
}

impl Stack {
    async fn check<T: harmony::Topology>(&self, _topology: &T) -> Result<(), harmony::SmokeError> {
        Ok(())
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
    let s = Stack {
        label: "demo".into(),
        namespace: Namespace { name: "demo".into() },
        server: Server { image: "demo:1".into() },
    };
    assert_eq!(run_on::<harmony::Local, _>(&s), ["K8sDeploy"]);
}
