// A `#[score(child)]` field must itself be a Score. The derive cannot check
// that alone (a child is a Score *for some topology*), so the error comes
// where the composite is used on a topology, and names the field's type.
use harmony::Score;

#[derive(Score)]
pub struct Stack {
    #[score(child)]
    pub name: String,
}

fn run_on<T: harmony::Topology, S: harmony::Score<T>>(_: &S) {}

fn main() {
    run_on::<harmony::Local, _>(&Stack { name: "x".into() });
}
