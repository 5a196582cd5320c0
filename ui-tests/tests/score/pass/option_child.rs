// `Option<S>` is a Score when `S` is: a child that may be left out (`None`
// deploys nothing).
use harmony::{Desired, Render, RenderCx, Score, ScoreError};

#[derive(Score)]
pub struct Cache {
    pub size: u32,
}

impl Render for Cache {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        let map = harmony::k8s_openapi::api::core::v1::ConfigMap {
            metadata: harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some(format!("cache-{}", self.size)),
                ..Default::default()
            },
            ..Default::default()
        };
        d.push(&map)?;
        Ok(d)
    }
}

#[derive(Score)]
pub struct Shop {
    #[score(child)]
    pub cache: Option<Cache>,
}

fn run_on<T: harmony::Topology, S: harmony::Score<T> + harmony::score::IsScore>(_: &S) -> Vec<&'static str> {
    let mut needs = Vec::new();
    S::needs(&mut needs);
    needs
}

fn main() {
    use harmony::score::IsScore as _;
    let cx = harmony::RenderCx::new("shop", "local");
    let with = Shop { cache: Some(Cache { size: 1 }) };
    let without = Shop { cache: None };
    assert_eq!(run_on::<harmony::Local, _>(&with), ["K8sDeploy"]);
    assert_eq!(with.render_tree(&cx).unwrap().len(), 1);
    assert!(without.render_tree(&cx).unwrap().is_empty());
}
