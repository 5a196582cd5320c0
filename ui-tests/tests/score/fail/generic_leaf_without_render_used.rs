// A generic leaf Score that renders for no type: an error where it is used,
// saying it has no `impl Render`.
use harmony::Score;

#[derive(Score)]
pub struct Labelled<L> {
    pub label: L,
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    run_on::<harmony::Local, _>(&Labelled { label: "x" });
}
