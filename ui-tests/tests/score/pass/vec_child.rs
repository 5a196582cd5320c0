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

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    let f = Fleet { servers: vec![Server { image: "a:1".into() }, Server { image: "b:1".into() }] };
    run_on::<harmony::Local, _>(&f);
}
