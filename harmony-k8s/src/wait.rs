//! Waiting until applied objects work: each one watched (not polled) until
//! its readiness is terminal or its time is up. A watch that ends or expires
//! (410 Gone) is resumed from a fresh read.

use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use harmony::capability::DeployError;
use harmony::ready_when::Ready;
use harmony::{Object, ObjectRef, SmokeError};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kube::api::{WatchEvent, WatchParams};
use serde_json::Value;
use tokio::time::Instant;

use crate::cluster::Cluster;
use crate::error::Subject;
use crate::readiness::{Readiness, State, readiness};
use crate::report::{self, Waited};

/// How many objects are waited for at once.
const CONCURRENCY: usize = 64;
/// How often the pods of a workload that is not ready yet are looked at.
const POD_CHECK: Duration = Duration::from_secs(2);

/// Wait until every gating object of `objects` is ready; the first that
/// fails or times out is reported with its culprit.
pub async fn ready(cluster: &Cluster, objects: &[Object], timeout: Duration) -> Result<(), SmokeError> {
    let deadline = Instant::now() + timeout;
    let mut gating: Vec<(ObjectRef, Ready)> = Vec::new();
    for object in objects {
        // Checked before anything was written (`K8s::dry_run`).
        let rule = Ready::of(object.body()).unwrap_or_default();
        let needs_no_wait = rule.is_skip() || (rule == Ready::Default && settled_once_applied(object));
        if !needs_no_wait {
            gating.push((object.id().clone(), rule));
        }
    }
    let lines = Lines::new();
    let result = futures_util::stream::iter(gating)
        .map(|(id, rule)| {
            let line = lines.add(&id);
            async move {
                let id = &id;
                let waited = until_terminal(cluster, id, &rule, deadline, &|r: &Readiness| line.set_message(r.reason.clone()))
                    .await
                    .map_err(|e| SmokeError::new(format!("readiness of {id}"), e.to_string()));
                line.finish_and_clear();
                let waited = waited?;
                if waited.readiness.state == State::Current {
                    tracing::debug!(object = %id, "ready");
                    return Ok(());
                }
                Err(report::culprit(cluster, id, &waited, timeout).await)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ());
    lines.clear();
    result
}

/// One line per object still waited for, on a terminal (none otherwise).
struct Lines(Option<MultiProgress>);

impl Lines {
    fn new() -> Self {
        Self(harmony::engine::run::terminal_progress().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())))
    }

    fn add(&self, id: &ObjectRef) -> ProgressBar {
        let Some(all) = &self.0 else { return ProgressBar::hidden() };
        let style = ProgressStyle::with_template("  {spinner} waiting for {prefix} ({elapsed}): {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let line = all.add(ProgressBar::new_spinner().with_style(style).with_prefix(id.to_string()));
        line.enable_steady_tick(Duration::from_millis(120));
        line
    }

    fn clear(&self) {
        if let Some(all) = &self.0 {
            let _ = all.clear();
        }
    }
}

/// Wait until a CRD just applied is established, so its kind can be applied.
pub async fn established(cluster: &Cluster, id: &ObjectRef, timeout: Duration) -> Result<(), DeployError> {
    let waited = until_terminal(cluster, id, &Ready::Default, Instant::now() + timeout, &|_| {}).await?;
    match waited.readiness.state {
        State::Current => Ok(()),
        _ => Err(DeployError::TimedOut {
            object: Box::new(id.clone()),
            waited_secs: timeout.as_secs(),
            why: format!("it did not become established: {}", waited.readiness.reason),
        }),
    }
}

/// Until the API server's discovery serves the kind `crd` defines, in each
/// version it serves: discovery can lag a moment behind the CRD's
/// `Established` condition, and an object of the kind applied in between
/// would be refused as of a kind the cluster does not serve.
pub async fn served(cluster: &Cluster, crd: &Object, timeout: Duration) -> Result<(), DeployError> {
    let body = crd.body();
    let text = |path: &str| body.pointer(path).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (group, kind) = (text("/spec/group"), text("/spec/names/kind"));
    let versions: Vec<String> = body
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("served").and_then(Value::as_bool).unwrap_or(false))
        .filter_map(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let deadline = Instant::now() + timeout;
    for version in versions {
        let api_version = format!("{group}/{version}");
        while cluster.served(&api_version, &kind).await?.is_none() {
            if Instant::now() >= deadline {
                return Err(DeployError::TimedOut {
                    object: Box::new(crd.id().clone()),
                    waited_secs: timeout.as_secs(),
                    why: format!("the API server does not serve its kind `{kind}` in `{api_version}` yet"),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            cluster.forget_group(&group);
        }
    }
    Ok(())
}

/// Whether an object is ready as soon as the server accepted it: no
/// controller reconciles it (its kstatus is Current once it exists), so it
/// needs no read, let alone a watch.
fn settled_once_applied(object: &Object) -> bool {
    let id = object.id();
    let group = id.api_version.split_once('/').map_or("", |(g, _)| g);
    match (group, id.kind.as_str()) {
        ("", "ConfigMap" | "Secret" | "ServiceAccount" | "LimitRange" | "ResourceQuota") => true,
        ("", "Service") => object.body().pointer("/spec/type").and_then(Value::as_str) != Some("LoadBalancer"),
        ("rbac.authorization.k8s.io", _) => true,
        ("networking.k8s.io", "NetworkPolicy") => true,
        _ => false,
    }
}

/// Read the object, then watch it until its readiness is terminal or the deadline passes.
pub async fn until_terminal(
    cluster: &Cluster,
    id: &ObjectRef,
    rule: &Ready,
    deadline: Instant,
    on_change: &(dyn Fn(&Readiness) + Send + Sync),
) -> Result<Waited, DeployError> {
    let Some(served) = cluster.served(&id.api_version, &id.kind).await? else {
        return Ok(gone(id));
    };
    let api = cluster.api(&served, id.namespace.as_deref());
    let judge = |o: &kube::api::DynamicObject| -> (Readiness, Value) {
        let mut value = serde_json::to_value(o).unwrap_or(Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert("apiVersion".into(), Value::String(served.resource.api_version.clone()));
            map.insert("kind".into(), Value::String(served.resource.kind.clone()));
        }
        (readiness(&value, rule), value)
    };
    loop {
        let Some(found) = cluster.call("get", Subject::Object(id), || api.get_opt(&id.name)).await? else {
            return Ok(gone(id));
        };
        let (mut last, mut value) = judge(&found);
        on_change(&last);
        if last.is_terminal() {
            return Ok(Waited {
                readiness: last,
                object: Some(value),
                timed_out: false,
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(timed_out(last, value));
        }
        let version = found.metadata.resource_version.clone().unwrap_or_default();
        let params = WatchParams::default()
            .fields(&format!("metadata.name={}", id.name))
            .timeout(remaining.as_secs().clamp(1, 290) as u32);
        let stream = match tokio::time::timeout_at(deadline, api.watch(&params, &version)).await {
            Err(_) => return Ok(timed_out(last, value)),
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(object = %id, error = %e, "watch could not start; reading again");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut stream = std::pin::pin!(stream);
        let mut next_check = Instant::now() + POD_CHECK;
        loop {
            // Look at the pods now and then: a crash loop never shows in a
            // Deployment's own status.
            if Instant::now() >= next_check {
                if let Some(reason) = report::stuck(cluster, id, &value).await {
                    return Ok(Waited {
                        readiness: Readiness {
                            state: State::Failed,
                            reason,
                        },
                        object: Some(value),
                        timed_out: false,
                    });
                }
                next_check = Instant::now() + POD_CHECK;
            }
            match tokio::time::timeout_at(deadline.min(next_check), stream.next()).await {
                Err(_) if Instant::now() >= deadline => return Ok(timed_out(last, value)),
                Err(_) => {}
                Ok(Some(Ok(WatchEvent::Added(o) | WatchEvent::Modified(o)))) => {
                    (last, value) = judge(&o);
                    on_change(&last);
                    tracing::debug!(object = %id, state = ?last.state, reason = %last.reason, "changed");
                    if last.is_terminal() {
                        return Ok(Waited {
                            readiness: last,
                            object: Some(value),
                            timed_out: false,
                        });
                    }
                }
                Ok(Some(Ok(WatchEvent::Deleted(_)))) => return Ok(gone(id)),
                Ok(Some(Ok(WatchEvent::Bookmark(_)))) => {}
                // 410 Gone (the version expired), another error, or the end
                // of the watch: read again and watch from there.
                Ok(Some(Ok(WatchEvent::Error(status)))) => {
                    tracing::debug!(object = %id, code = status.code, "watch ended with an error; reading again");
                    break;
                }
                Ok(Some(Err(e))) => {
                    tracing::debug!(object = %id, error = %e, "watch failed; reading again");
                    break;
                }
                Ok(None) => break,
            }
        }
    }
}

fn gone(id: &ObjectRef) -> Waited {
    Waited {
        readiness: Readiness {
            state: State::Failed,
            reason: format!(
                "{} `{}` no longer exists: something deleted it after it was applied",
                id.kind, id.name
            ),
        },
        object: None,
        timed_out: false,
    }
}

fn timed_out(readiness: Readiness, object: Value) -> Waited {
    Waited {
        readiness,
        object: Some(object),
        timed_out: true,
    }
}
