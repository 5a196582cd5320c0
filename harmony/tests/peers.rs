//! The elements of a `Vec` child are peers, deployed side by side; named
//! children deploy in order (ADR 0015). Observed through a topology that
//! counts how many applies are in flight at once.

use std::sync::Arc;

use harmony::engine::run::Silent;
use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::{Desired, Diagnostic as _, Render, RenderCx, Score, ScoreError, engine};

// Each test uses part of it.
#[allow(dead_code)]
#[path = "support/counting.rs"]
mod counting;

use counting::Counting;

/// One ConfigMap.
#[derive(Score, Debug)]
pub struct Setting {
    pub name: String,
}

impl Render for Setting {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
        desired.push(&ConfigMap {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some("default".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        })?;
        Ok(desired)
    }
}

/// Peers in a list, and two named children.
#[derive(Score, Debug)]
pub struct Fleet {
    #[score(child)]
    pub first: Setting,
    #[score(child)]
    pub peers: Vec<Setting>,
    #[score(child)]
    pub last: Setting,
}

fn fleet(names: &[&str]) -> Fleet {
    Fleet {
        first: Setting { name: "first".into() },
        peers: names.iter().map(|n| Setting { name: (*n).into() }).collect(),
        last: Setting { name: "last".into() },
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn peers_deploy_side_by_side_and_named_children_in_order() {
    let topology = Counting::default();
    let names: Vec<String> = (0..8).map(|i| format!("peer-{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    runtime()
        .block_on(engine::plan_and_apply("fleet", &fleet(&names), &topology, Arc::new(Silent)))
        .unwrap();
    assert_eq!(topology.most_at_once(), 8, "the eight peers were in flight together");
    let order = topology.applied();
    assert_eq!(order.first().map(String::as_str), Some("first"));
    assert_eq!(order.last().map(String::as_str), Some("last"), "after every peer");
    assert_eq!(order.len(), 10);
}

#[test]
fn a_failing_peer_is_reported_at_its_place_in_the_tree() {
    let topology = Counting::default();
    let err = runtime()
        .block_on(engine::plan_and_apply(
            "fleet",
            &fleet(&["a", "broken", "c"]),
            &topology,
            Arc::new(Silent),
        ))
        .unwrap_err();
    // The Score's declaration, its type, and its place in the tree.
    let at = err.location().unwrap();
    assert!(at.starts_with("harmony/tests/peers.rs:"), "{at}");
    assert!(at.ends_with(": Score `Setting` at `fleet/peers/1`"), "{at}");
    assert!(!topology.applied().contains(&"last".to_owned()), "nothing after a failed step");
}
