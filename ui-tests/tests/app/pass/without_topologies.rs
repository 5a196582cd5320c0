// `app!` without `topologies`: it runs on every linked topology that provides
// what its Score needs; doc lines, any key order and a trailing comma are accepted.
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score, Default)]
pub struct Site {
    pub namespace: String,
}

impl Render for Site {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

harmony::app! {
    /// The site.
    score: Site::default(),
    name: "site",
}

fn main() {
    let app = harmony_registry::app("site").expect("registered");
    assert_eq!((app.needs)(), ["K8sDeploy"]);
    assert_eq!(harmony_registry::runs_on(&(app.needs)()), ["ci", "local"]);
}
