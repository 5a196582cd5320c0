//! How often a command looks at its target: a stage delivered (`plan_and_apply`) observes it
//! once, since the plan it just made is the current one; an `apply` of a plan the user saw
//! observes it once more, to refuse if it moved; a dry run, once.

use std::sync::Arc;

use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::run::Silent;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, engine};

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
                namespace: Some("demo".into()),
                ..Default::default()
            },
            data: Some([("k".to_owned(), "v".to_owned())].into()),
            ..Default::default()
        })?;
        Ok(desired)
    }
}

#[test]
fn a_delivered_stage_observes_its_target_once_and_a_confirmed_apply_twice() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(counted());
}

async fn counted() {
    let target = Counting::default();
    let setting = Setting { name: "one".into() };

    // A stage: plan and carry it out, nobody in between.
    let plan = engine::plan_and_apply("demo", &setting, &target, Arc::new(Silent)).await.unwrap();
    assert!(!plan.is_empty(), "the first delivery writes");
    assert_eq!(target.applied(), ["one"], "written once");
    assert_eq!(target.observed(), 1, "a delivered stage observes its target once");

    // Unchanged, delivered again: still one observation, nothing written.
    target.forget_observations();
    let plan = engine::plan_and_apply("demo", &setting, &target, Arc::new(Silent)).await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(target.observed(), 1, "an unchanged stage observes its target once");
    assert_eq!(target.applied(), ["one"], "nothing written again");

    // The CLI's apply: the plan the user saw, then its apply, which observes once more to
    // refuse a target that moved in between.
    target.forget_observations();
    let saw = engine::exact_plan("demo", &setting, &target).await.unwrap();
    engine::apply("demo", &setting, &target, &saw, Arc::new(Silent)).await.unwrap();
    assert_eq!(target.observed(), 2, "the plan shown, and the check that it still holds");
}
