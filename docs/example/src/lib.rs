//! A greeter: its settings as a ConfigMap, checked by a smoke test of its own
//! after the topology's verification. Runs on `local` as it is. The greeter
//! on a cluster is in `cluster`.

pub mod cluster;

use std::collections::BTreeMap;

use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, SmokeError, Topology};

/// What the greeter says, as a ConfigMap in its namespace.
#[derive(Score, Debug, Clone)]
#[score(smoke = Self::says_something)]
pub struct Greeting {
    /// Where it lives.
    pub namespace: String,
    /// What it says.
    pub text: String,
}

impl Render for Greeting {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
        desired.push(&ConfigMap {
            metadata: ObjectMeta {
                name: Some("greeting".into()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("text".to_owned(), self.text.clone())])),
            ..Default::default()
        })?;
        Ok(desired)
    }
}

impl Greeting {
    /// Runs after the topology verified what was rendered, on any topology.
    async fn says_something<T: Topology>(&self, _: &T) -> Result<(), SmokeError> {
        if self.text.trim().is_empty() {
            return Err(SmokeError::new("the greeting", "it is empty").with_help("set `GREETING` to what the greeter should say"));
        }
        Ok(())
    }
}

harmony::app! {
    /// The greeter.
    name: "greeter",
    score: Greeting {
        namespace: "greeter".into(),
        text: std::env::var("GREETING").unwrap_or_else(|_| "hello".into()),
    },
    topologies: [harmony::Local],
}
