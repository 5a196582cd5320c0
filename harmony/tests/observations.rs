//! How often a command looks at its target: a stage delivered (`plan_and_apply`) observes it
//! once, since the plan it just made is the current one; an `apply` of a plan the user saw
//! observes it once more, to refuse if it moved; a dry run, once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use harmony::capability::{ApplySet, BoxFuture, DeployError, Observed};
use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::run::Silent;
use harmony::secret::Redactor;
use harmony::{Desired, K8sDeploy, Object, ObjectRef, Render, RenderCx, Score, ScoreError, SmokeError, Topology, engine};

/// Remembers what it was given and counts how often it was observed.
#[derive(Debug, Default)]
struct Counting {
    observed: AtomicUsize,
    applied: AtomicUsize,
    held: std::sync::Mutex<Vec<Object>>,
}

impl Topology for Counting {
    fn name(&self) -> &str {
        "counting"
    }
}

impl K8sDeploy for Counting {
    fn observe<'a>(&'a self, _: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        self.observed.fetch_add(1, Ordering::SeqCst);
        let held = self.held.lock().unwrap().clone();
        Box::pin(async move {
            let redactor = Redactor::new([7; 32]);
            let objects = held.iter().map(|o| (o.id().clone(), redactor.redact(o))).collect();
            Ok(Observed::new(objects, redactor))
        })
    }
    fn dry_run<'a>(&'a self, _: &'a ApplySet, _: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn apply<'a>(&'a self, _: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        self.applied.fetch_add(1, Ordering::SeqCst);
        self.held.lock().unwrap().extend(objects.iter().cloned());
        Box::pin(async { Ok(()) })
    }
    fn prune<'a>(&'a self, _: &'a ApplySet, _: &'a [ObjectRef]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn commit<'a>(&'a self, _: &'a ApplySet) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn verify<'a>(&'a self, _: &'a ApplySet, _: &'a [Object]) -> BoxFuture<'a, Result<(), SmokeError>> {
        Box::pin(async { Ok(()) })
    }
}

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
    assert_eq!(target.applied.load(Ordering::SeqCst), 1, "written once");
    assert_eq!(
        target.observed.load(Ordering::SeqCst),
        1,
        "a delivered stage observes its target once"
    );

    // Unchanged, delivered again: still one observation, nothing written.
    target.observed.store(0, Ordering::SeqCst);
    let plan = engine::plan_and_apply("demo", &setting, &target, Arc::new(Silent)).await.unwrap();
    assert!(plan.is_empty(), "{plan:?}");
    assert_eq!(
        target.observed.load(Ordering::SeqCst),
        1,
        "an unchanged stage observes its target once"
    );
    assert_eq!(target.applied.load(Ordering::SeqCst), 1, "nothing written again");

    // The CLI's apply: the plan the user saw, then its apply, which observes once more to
    // refuse a target that moved in between.
    target.observed.store(0, Ordering::SeqCst);
    let saw = engine::exact_plan("demo", &setting, &target).await.unwrap();
    engine::apply("demo", &setting, &target, &saw, Arc::new(Silent)).await.unwrap();
    assert_eq!(
        target.observed.load(Ordering::SeqCst),
        2,
        "the plan shown, and the check that it still holds"
    );
}
