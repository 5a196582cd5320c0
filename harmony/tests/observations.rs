//! How often a command looks at its target and renders its Score tree: a stage delivered
//! (`plan_and_apply`) observes it once, since the plan it just made is the current one; an
//! `apply` of a plan the user saw observes it once more, to refuse if it moved; a dry run, once.
//! Each renders the tree once: the plan is computed from that render and every pass (the
//! checks, the writes) deploys from it. Only a saved plan is rendered again, to be compared.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harmony::engine::run::Silent;
use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, engine};

// Each test uses part of it.
#[allow(dead_code)]
#[path = "support/counting.rs"]
mod counting;

use counting::Counting;

/// One ConfigMap; counts its renders.
#[derive(Score, Debug)]
pub struct Setting {
    pub name: String,
    pub renders: Arc<AtomicUsize>,
}

impl Setting {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            renders: Arc::default(),
        }
    }

    /// How many times it rendered since last asked.
    fn renders(&self) -> usize {
        self.renders.swap(0, Ordering::SeqCst)
    }
}

impl Render for Setting {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        self.renders.fetch_add(1, Ordering::SeqCst);
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
fn a_delivered_stage_observes_its_target_once_and_a_confirmed_apply_twice_each_rendering_once() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(counted());
}

async fn counted() {
    let target = Counting::default();
    let setting = Setting::new("one");

    // A stage: plan and carry it out, nobody in between.
    let plan = engine::plan_and_apply("demo", &setting, &target, Arc::new(Silent)).await.unwrap();
    assert!(!plan.is_empty(), "the first delivery writes");
    assert_eq!(target.applied(), ["one"], "written once");
    assert_eq!(target.observed(), 1, "a delivered stage observes its target once");
    assert_eq!(setting.renders(), 1, "planned, checked and written from one render");

    // Unchanged, delivered again: still one observation, nothing written.
    target.forget_observations();
    let plan = engine::plan_and_apply("demo", &setting, &target, Arc::new(Silent)).await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(target.observed(), 1, "an unchanged stage observes its target once");
    assert_eq!(target.applied(), ["one"], "nothing written again");
    assert_eq!(setting.renders(), 1, "an unchanged stage renders once");

    // The CLI's apply: the plan the user saw, then its apply, which observes once more to
    // refuse a target that moved in between. A changed Score, so that it writes.
    let setting = Setting::new("two");
    target.forget_observations();
    let saw = engine::exact_plan("demo", &setting, &target).await.unwrap();
    let applied = engine::apply("demo", &setting, &target, &saw, Arc::new(Silent)).await.unwrap();
    assert!(!applied.is_empty(), "the changed Score writes");
    assert_eq!(target.applied(), ["one", "two"]);
    assert_eq!(target.observed(), 2, "the plan shown, and the check that it still holds");
    assert_eq!(setting.renders(), 1, "the apply deploys the render the plan shown was made from");

    // A dry run: one render, one observation.
    target.forget_observations();
    engine::dry_run("demo", &setting, &target, Arc::new(Silent)).await.unwrap();
    assert_eq!(
        (target.observed(), setting.renders()),
        (1, 1),
        "(observations, renders) of a dry run"
    );

    // A saved plan comes from another process: its apply renders the tree again, to refuse a
    // desired state that moved since it was saved.
    let setting = Setting::new("three");
    let saved = engine::exact_plan("demo", &setting, &target).await.unwrap();
    let read: harmony::engine::plan::ExactPlan = serde_json::from_str(&serde_json::to_string(&saved).unwrap()).unwrap();
    assert_eq!(read, saved, "what was saved is what is read");
    assert_eq!(setting.renders(), 1);
    engine::apply("demo", &setting, &target, &read, Arc::new(Silent)).await.unwrap();
    assert_eq!(setting.renders(), 1, "the saved plan's apply renders once");
    assert_eq!(target.applied(), ["one", "two", "three"]);
}
