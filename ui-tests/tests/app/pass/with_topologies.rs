// `app!` with `topologies: [Local]`: the promise holds for a Score that needs
// only `K8sDeploy`, and both a bare and a full path name the topology.
use harmony::{Desired, Local, Render, RenderCx, Score, ScoreError};

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
    name: "site",
    score: Site::default(),
    topologies: [Local],
}

harmony::app! {
    name: "site-2",
    score: Site { namespace: "two".into() },
    topologies: [harmony::local::Local],
}

fn main() {
    // Registered, and the promise is true at run time too.
    for name in ["site", "site-2"] {
        let app = harmony_registry::app(name).expect("registered");
        assert!(harmony_registry::runs_on(&(app.needs)()).contains(&"local"), "{name}");
    }
}
