// The basic leaf: a struct with named fields, `#[derive(Score)]`, a `Render`
// impl pushing a typed object; it runs on `Local`.
use std::collections::BTreeMap;

use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Secret};

/// Settings, as a ConfigMap.
#[derive(Score, Clone, Debug)]
pub struct Settings {
    /// Where they live.
    pub namespace: String,
    pub greeting: String,
    #[score(secret)]
    pub token: Secret<String>,
}

impl Render for Settings {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        d.push(&ConfigMap {
            metadata: ObjectMeta { name: Some("settings".into()), namespace: Some(self.namespace.clone()), ..Default::default() },
            data: Some(BTreeMap::from([("GREETING".to_owned(), self.greeting.clone())])),
            ..Default::default()
        })?;
        Ok(d)
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
    let s = Settings { namespace: "default".into(), greeting: "hi".into(), token: Secret::new("t".into()) };
    assert_eq!(run_on::<harmony::Local, _>(&s), ["K8sDeploy"]);
}
