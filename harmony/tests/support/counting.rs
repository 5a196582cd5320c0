//! A target that counts: how often it is observed, how many applies are in
//! flight at once (the most), and what was applied, in order; it holds what
//! it was given, so a second plan sees it. An object named `broken` fails.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use harmony::capability::{ApplySet, BoxFuture, DeployError, Observed};
use harmony::secret::Redactor;
use harmony::{K8sDeploy, Object, ObjectRef, SmokeError, Topology};

#[derive(Debug, Default)]
pub struct Counting {
    observed: AtomicUsize,
    /// In flight now, the most at once, and every applied object's name in order.
    applies: Mutex<(usize, usize, Vec<String>)>,
    held: Mutex<Vec<Object>>,
}

impl Counting {
    pub fn observed(&self) -> usize {
        self.observed.load(Ordering::SeqCst)
    }

    pub fn forget_observations(&self) {
        self.observed.store(0, Ordering::SeqCst);
    }

    pub fn most_at_once(&self) -> usize {
        self.applies.lock().unwrap().1
    }

    /// The names of what was applied, in order.
    pub fn applied(&self) -> Vec<String> {
        self.applies.lock().unwrap().2.clone()
    }
}

impl Topology for Counting {
    fn name(&self) -> &str {
        "counting"
    }
}

impl K8sDeploy for Counting {
    fn observe<'a>(&'a self, _: &'a ApplySet) -> BoxFuture<'a, Result<Observed, DeployError>> {
        self.observed.fetch_add(1, Ordering::SeqCst);
        let redactor = Redactor::new([7; 32]);
        let held = self
            .held
            .lock()
            .unwrap()
            .iter()
            .map(|o| (o.id().clone(), redactor.redact(o)))
            .collect();
        Box::pin(async move { Ok(Observed::new(held, redactor)) })
    }
    fn dry_run<'a>(&'a self, _: &'a ApplySet, _: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async { Ok(()) })
    }
    fn apply<'a>(&'a self, _: &'a ApplySet, objects: &'a [Object]) -> BoxFuture<'a, Result<(), DeployError>> {
        Box::pin(async move {
            {
                let mut s = self.applies.lock().unwrap();
                s.0 += 1;
                s.1 = s.1.max(s.0);
            }
            // Applies take a while, so that peers overlap.
            tokio::time::sleep(Duration::from_millis(30)).await;
            let mut s = self.applies.lock().unwrap();
            s.0 -= 1;
            s.2.extend(objects.iter().map(|o| o.id().name.clone()));
            if objects.iter().any(|o| o.id().name == "broken") {
                return Err(DeployError::Unrunnable {
                    problems: vec!["it is broken".into()],
                });
            }
            self.held.lock().unwrap().extend(objects.iter().cloned());
            Ok(())
        })
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
