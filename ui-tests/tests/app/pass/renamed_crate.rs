// `app!` with `crate: h` finds harmony under another name, as the derive's
// `#[score(crate = h)]` does.
extern crate harmony as h;

use h::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score, Default)]
#[score(crate = h)]
pub struct Site {
    pub namespace: String,
}

impl Render for Site {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

h::app! {
    name: "site",
    score: Site::default(),
    topologies: [h::Local],
    crate: h,
}

fn main() {
    let app = harmony_registry::app("site").expect("registered");
    assert_eq!((app.needs)(), ["K8sDeploy"]);
}
