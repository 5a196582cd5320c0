// `Vec<S>` is a Score when `S` is: a list of Scores is a child like any other.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Server {
    pub image: String,
}

impl Render for Server {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

#[derive(Score)]
pub struct Fleet {
    #[score(child)]
    pub servers: Vec<Server>,
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
    let f = Fleet { servers: vec![Server { image: "a:1".into() }, Server { image: "b:1".into() }] };
    assert_eq!(run_on::<harmony::Local, _>(&f), ["K8sDeploy"]);
}
