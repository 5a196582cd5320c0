//! A simulated Argo CD, opt in with [`TestCluster::play_argocd`](crate::TestCluster::play_argocd):
//! the `applications.argoproj.io` CRD as Argo CD installs it, the `argocd` namespace, and an
//! application controller that is a client of the API server like any other. It watches
//! Applications, syncs Helm charts from OCI registries with the real `helm` (pull, then
//! template), server-side applies what they render (manager `argocd-controller`, so the real
//! controllers act on it), and reports sync, operation and health in the Application's
//! `.status` as Argo CD does, health read from the live objects the real controllers update.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::watcher;
use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::{lock, util};

/// How the simulated Argo CD treats Applications (see
/// [`TestCluster::play_argocd`](crate::TestCluster::play_argocd)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgoCd {
    /// Syncs for real: pulls the Helm chart of `spec.source` (`repoURL` `HOST:PORT/PATH` without
    /// a scheme, `chart`, `targetRevision`) from its OCI registry with the real `helm`, renders
    /// it with `helm.releaseName` and `helm.valuesObject`/`helm.values`, applies every object
    /// into the cluster, and reports `Synced` at the revision, operation `Succeeded`, and health
    /// `Progressing` until the rendered workloads are ready, then `Healthy`. A chart that cannot
    /// be pulled or rendered fails the sync with helm's own words.
    Syncs,
    /// Every sync fails with `message` (operation `Failed`, `OutOfSync`, a `SyncError`
    /// condition); nothing is applied.
    FailsSync { message: String },
    /// Syncs as [`ArgoCd::Syncs`], then reports health `Degraded` with `message`.
    Degrades { message: String },
    /// The controller never gets to the Applications: they stay `OutOfSync`, health `Missing`.
    NeverSyncs,
}

/// The namespace Argo CD is installed in.
pub(crate) const NAMESPACE: &str = "argocd";
const CRD_NAME: &str = "applications.argoproj.io";
/// The field manager of what a sync applies.
const APPLIER: &str = "argocd-controller";
/// The field manager of the status the controller writes.
const CONTROLLER: &str = "argocd-application-controller";
/// Finalizers the application controller honours (and removes when an Application goes).
const FINALIZERS: [&str; 2] = ["resources-finalizer.argocd.argoproj.io", "post-delete-finalizer.argocd.argoproj.io"];
const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
/// How often health is assessed again while it is Progressing, and afterwards.
const PROGRESSING_POLL: Duration = Duration::from_millis(200);
const SETTLED_POLL: Duration = Duration::from_secs(1);
const SUCCEEDED: &str = "successfully synced (all tasks run)";

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Application"), "applications")
}

/// The running controller: its mode, and its work on the control plane's runtime.
#[derive(Debug)]
pub(crate) struct Controller {
    mode: Arc<Mutex<ArgoCd>>,
    wake: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Controller {
    /// Sets the mode; every Application is looked at again.
    pub fn set_mode(&self, mode: ArgoCd) {
        *lock(&self.mode) = mode;
        self.wake.notify_one();
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Installs Argo CD as `kubectl apply` of its manifests would (the namespace, the CRD,
/// Established when this returns) and starts its application controller.
pub(crate) async fn install(client: kube::Client, mode: ArgoCd, delay: Duration, helm: PathBuf) -> Result<Controller, String> {
    let params = PatchParams::apply("argocd-install").force();
    let namespaces: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client.clone());
    namespaces
        .patch(
            NAMESPACE,
            &params,
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})),
        )
        .await
        .map_err(|e| format!("cannot create namespace {NAMESPACE}: {e}"))?;
    let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(client.clone());
    crds.patch(CRD_NAME, &params, &Patch::Apply(application_crd()))
        .await
        .map_err(|e| format!("cannot install the Application CRD: {e}"))?;
    let established = kube::runtime::wait::await_condition(crds, CRD_NAME, kube::runtime::wait::conditions::is_crd_established());
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .map_err(|_| "the Application CRD was not Established after 30 s".to_owned())?
        .map_err(|e| e.to_string())?;
    let mode = Arc::new(Mutex::new(mode));
    let wake = Arc::new(tokio::sync::Notify::new());
    let run = Run {
        client,
        mode: mode.clone(),
        helm,
        delay,
        synced: Mutex::new(HashMap::new()),
    };
    let task = tokio::spawn(run.controller(wake.clone()));
    Ok(Controller { mode, wake, task })
}

/// What the controller works with.
struct Run {
    client: kube::Client,
    mode: Arc<Mutex<ArgoCd>>,
    helm: PathBuf,
    /// How long after a change it gets to an Application.
    delay: Duration,
    /// The spec last synced (or failed) per Application uid, and when its health is next due.
    synced: Mutex<HashMap<String, Value>>,
}

impl Run {
    fn apps(&self, namespace: &str) -> kube::Api<DynamicObject> {
        kube::Api::namespaced_with(self.client.clone(), namespace, &application_resource())
    }

    /// Watches Applications, and goes over all of them on every change, every mode change, and
    /// on a poll (health follows the workloads).
    async fn controller(self, wake: Arc<tokio::sync::Notify>) {
        let all: kube::Api<DynamicObject> = kube::Api::all_with(self.client.clone(), &application_resource());
        let apps: Arc<Mutex<HashMap<String, Value>>> = Arc::default();
        let seen = apps.clone();
        let notify = wake.clone();
        let watch = tokio::spawn(async move {
            let mut stream = watcher(all, watcher::Config::default()).boxed();
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        if let Ok(v) = serde_json::to_value(&o) {
                            lock(&seen).insert(uid(&v), v);
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if let Ok(v) = serde_json::to_value(&o) {
                            lock(&seen).remove(&uid(&v));
                        }
                    }
                    Ok(watcher::Event::Init) => lock(&seen).clear(),
                    _ => {}
                }
                notify.notify_one();
            }
        });
        let _watch = AbortOnDrop(watch);
        loop {
            let current: Vec<Value> = lock(&apps).values().cloned().collect();
            let mut progressing = false;
            for app in current {
                progressing |= self.reconcile(&app).await;
            }
            let poll = if progressing { PROGRESSING_POLL } else { SETTLED_POLL };
            let _ = tokio::time::timeout(poll, wake.notified()).await;
        }
    }

    /// One turn on one Application; true while its health is Progressing.
    async fn reconcile(&self, app: &Value) -> bool {
        let (namespace, name) = (str_at(app, "/metadata/namespace"), str_at(app, "/metadata/name"));
        if app.pointer("/metadata/deletionTimestamp").is_some() {
            self.finalize(app).await;
            return false;
        }
        let mode = lock(&self.mode).clone();
        let spec = app.get("spec").cloned().unwrap_or_default();
        let previous = app.get("status").cloned().unwrap_or(json!({}));
        let key = uid(app);
        let fresh = lock(&self.synced).get(&key) != Some(&json!({"spec": spec, "mode": format!("{mode:?}")}));
        if fresh {
            // The controller gets to a change after a while, as the real one does.
            tokio::time::sleep(self.delay).await;
            lock(&self.synced).insert(key, json!({"spec": spec, "mode": format!("{mode:?}")}));
            let now = util::now_rfc3339();
            match &mode {
                ArgoCd::NeverSyncs => {
                    let mut status = base_status(app, &previous, "OutOfSync");
                    status["health"] = json!({"status": "Missing"});
                    self.write_status(app, status).await;
                    return false;
                }
                ArgoCd::FailsSync { message } => {
                    let status = failed(app, &previous, &now, &now, "SyncError", message);
                    self.write_status(app, status).await;
                    return false;
                }
                ArgoCd::Syncs | ArgoCd::Degrades { .. } => {
                    if !self.sync(app, &previous).await {
                        return false;
                    }
                }
            }
        }
        if !matches!(mode, ArgoCd::Syncs | ArgoCd::Degrades { .. }) {
            return false;
        }
        // Health follows the live objects.
        let Ok(live) = self.apps(namespace).get(name).await else {
            return false;
        };
        let live = serde_json::to_value(live).unwrap_or_default();
        self.assess(&live, &mode).await
    }

    /// Syncs an Application: Running, then helm, then the objects applied; false if it failed.
    async fn sync(&self, app: &Value, previous: &Value) -> bool {
        let started_at = util::now_rfc3339();
        let mut status = base_status(app, previous, "OutOfSync");
        status["operationState"] = json!({
            "operation": operation(app),
            "phase": "Running",
            "message": "one or more tasks are running",
            "startedAt": started_at,
        });
        self.write_status(app, status).await;
        let rendered = match Source::read(app) {
            Err(message) => Err(message),
            Ok(source) => {
                let helm = self.helm.clone();
                tokio::task::spawn_blocking(move || source.render(&helm))
                    .await
                    .unwrap_or_else(|e| Err(format!("helm's thread failed: {e}")))
            }
        };
        let finished_at = util::now_rfc3339();
        let objects = match rendered {
            Ok(objects) => objects,
            Err(message) => {
                let status = failed(app, previous, &started_at, &finished_at, "ComparisonError", &message);
                self.write_status(app, status).await;
                return false;
            }
        };
        let (resources, errors) = self.apply_all(app, objects).await;
        if !errors.is_empty() {
            let message = format!("one or more objects failed to apply, reason: {}", errors.join(", "));
            let mut status = failed(app, previous, &started_at, &finished_at, "SyncError", &message);
            status["operationState"]["syncResult"] = json!({
                "revision": revision(app),
                "source": app.pointer("/spec/source").cloned().unwrap_or(json!({})),
                "resources": resources,
            });
            self.write_status(app, status).await;
            return false;
        }
        let revision = revision(app);
        let mut status = base_status(app, previous, "Synced");
        status["operationState"] = json!({
            "operation": operation(app),
            "phase": "Succeeded",
            "message": SUCCEEDED,
            "startedAt": started_at,
            "finishedAt": finished_at,
            "syncResult": {
                "revision": revision,
                "source": app.pointer("/spec/source").cloned().unwrap_or(json!({})),
                "resources": resources.iter().map(|r| {
                    let mut r = r.clone();
                    r["status"] = json!("Synced");
                    r["message"] = json!(format!("{} serverside-applied", str_at(&r, "/kind").to_lowercase()));
                    r["hookPhase"] = json!("Running");
                    r["syncPhase"] = json!("Sync");
                    r
                }).collect::<Vec<_>>(),
            },
        });
        let mut history: Vec<Value> = previous.get("history").and_then(Value::as_array).cloned().unwrap_or_default();
        let id = history
            .last()
            .and_then(|h| h.get("id"))
            .and_then(Value::as_i64)
            .map_or(0, |i| i + 1);
        history.push(json!({
            "id": id,
            "revision": revision,
            "deployStartedAt": started_at,
            "deployedAt": finished_at,
            "source": app.pointer("/spec/source").cloned().unwrap_or(json!({})),
            "initiatedBy": {"automated": true},
        }));
        let keep = history.len().saturating_sub(10);
        status["history"] = json!(history[keep..]);
        status["resources"] = json!(resources);
        status["health"] = json!({"status": "Progressing", "lastTransitionTime": finished_at});
        self.write_status(app, status).await;
        true
    }

    /// Assesses an Application's health from its resources; true while Progressing.
    async fn assess(&self, app: &Value, mode: &ArgoCd) -> bool {
        if str_at(app, "/status/operationState/phase") != "Succeeded" {
            return false;
        }
        let mut status = app.get("status").cloned().unwrap_or(json!({}));
        let mut resources: Vec<Value> = status.get("resources").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut worst = ("Healthy", String::new());
        for r in &mut resources {
            let Some((health, message)) = self.resource_health(r).await else {
                continue;
            };
            let mut h = json!({"status": health});
            if !message.is_empty() {
                h["message"] = json!(message);
            }
            r["health"] = h;
            if rank(health) > rank(worst.0) {
                worst = (health, message);
            }
        }
        let (health, message) = match mode {
            ArgoCd::Degrades { message } => ("Degraded", message.clone()),
            _ => worst,
        };
        let mut h = json!({"status": health});
        if !message.is_empty() {
            h["message"] = json!(message);
        }
        let before = status.get("health").cloned().unwrap_or(json!({}));
        let transition = match before.get("lastTransitionTime") {
            Some(t) if before.get("status") == h.get("status") => t.clone(),
            _ => json!(util::now_rfc3339()),
        };
        h["lastTransitionTime"] = transition;
        if status.get("health") != Some(&h) || status.get("resources") != Some(&json!(resources)) {
            status["health"] = h;
            status["resources"] = json!(resources);
            status["reconciledAt"] = json!(util::now_rfc3339());
            self.write_status(app, status).await;
        }
        health == "Progressing"
    }

    /// The live object a resource of the sync names.
    async fn live(&self, group: &str, version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk).await.ok()?;
        let api: kube::Api<DynamicObject> = match caps.scope {
            kube::discovery::Scope::Namespaced => kube::Api::namespaced_with(self.client.clone(), namespace, &resource),
            kube::discovery::Scope::Cluster => kube::Api::all_with(self.client.clone(), &resource),
        };
        api.get_opt(name).await.ok().flatten().and_then(|o| serde_json::to_value(o).ok())
    }

    /// The health Argo CD gives one resource (None: a kind without health, as a ConfigMap).
    async fn resource_health(&self, resource: &Value) -> Option<(&'static str, String)> {
        let (group, version, kind) = (str_at(resource, "/group"), str_at(resource, "/version"), str_at(resource, "/kind"));
        let (namespace, name) = (str_at(resource, "/namespace"), str_at(resource, "/name"));
        let Some(obj) = self.live(group, version, kind, namespace, name).await else {
            return Some(("Missing", String::new()));
        };
        workload_health(&obj, group, kind, name)
    }

    /// Applies what a chart rendered, as Argo CD syncs: the destination namespace first (with
    /// `CreateNamespace=true`), then namespaces and CRDs, then the rest in the chart's order.
    /// Returns the resources applied and why others could not be.
    async fn apply_all(&self, app: &Value, mut objects: Vec<Value>) -> (Vec<Value>, Vec<String>) {
        let app_name = str_at(app, "/metadata/name").to_owned();
        let destination = str_at(app, "/spec/destination/namespace").to_owned();
        let create_namespace = app
            .pointer("/spec/syncPolicy/syncOptions")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|o| o.as_str() == Some("CreateNamespace=true")));
        let (mut resources, mut errors) = (Vec::new(), Vec::new());
        if create_namespace && !destination.is_empty() {
            let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": destination}});
            if let Err(e) = self.apply_one(namespace, "", None).await {
                errors.push(e);
            }
        }
        let order = |o: &Value| match (str_at(o, "/apiVersion"), str_at(o, "/kind")) {
            ("v1", "Namespace") => 0,
            ("apiextensions.k8s.io/v1", "CustomResourceDefinition") => 1,
            _ => 2,
        };
        objects.sort_by_key(|o| order(o));
        for object in objects {
            match self.apply_one(object, &destination, Some(&app_name)).await {
                Ok(resource) => resources.push(resource),
                Err(e) => errors.push(e),
            }
        }
        (resources, errors)
    }

    /// Server-side applies one object as `argocd-controller` (forcing, as Argo CD's
    /// `ServerSideApply=true` does); its namespace defaults to the destination's.
    async fn apply_one(&self, mut object: Value, destination: &str, instance: Option<&str>) -> Result<Value, String> {
        let api_version = str_at(&object, "/apiVersion").to_owned();
        let kind = str_at(&object, "/kind").to_owned();
        let name = str_at(&object, "/metadata/name").to_owned();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
        let gvk = GroupVersionKind::gvk(group, version, &kind);
        let Ok((resource, caps)) = kube::discovery::pinned_kind(&self.client, &gvk).await else {
            return Err(format!(
                "The Kubernetes API could not find {api_version}/{kind} for requested resource {destination}/{name}. \
                 Make sure the \"{kind}\" CRD is installed on the destination cluster."
            ));
        };
        let namespaced = matches!(caps.scope, kube::discovery::Scope::Namespaced);
        let namespace = match (namespaced, str_at(&object, "/metadata/namespace")) {
            (false, _) => String::new(),
            (true, "") => destination.to_owned(),
            (true, ns) => ns.to_owned(),
        };
        if namespaced && namespace.is_empty() {
            return Err(format!(
                "{kind} {name} has no namespace and the Application no spec.destination.namespace"
            ));
        }
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return Err(format!("{kind} {name} has no metadata"));
        };
        if namespaced {
            meta.insert("namespace".into(), json!(namespace));
        } else {
            meta.remove("namespace");
        }
        if let Some(instance) = instance {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if !labels.is_object() {
                *labels = json!({});
            }
            labels[INSTANCE_LABEL] = json!(instance);
        }
        let api: kube::Api<DynamicObject> = if namespaced {
            kube::Api::namespaced_with(self.client.clone(), &namespace, &resource)
        } else {
            kube::Api::all_with(self.client.clone(), &resource)
        };
        api.patch(&name, &PatchParams::apply(APPLIER).force(), &Patch::Apply(&object))
            .await
            .map_err(|e| {
                let at = if namespace.is_empty() {
                    name.clone()
                } else {
                    format!("{namespace}/{name}")
                };
                let why = match e {
                    kube::Error::Api(s) => s.message,
                    other => other.to_string(),
                };
                format!("{kind} {at}: {why}")
            })?;
        let mut resource = json!({"group": group, "version": version, "kind": kind, "name": name, "status": "Synced"});
        if !namespace.is_empty() {
            resource["namespace"] = json!(namespace);
        }
        Ok(resource)
    }

    /// Writes `.status` as the application controller does: the Application CRD has no status
    /// subresource, so the object itself, every field of the old status not in the new removed.
    async fn write_status(&self, app: &Value, status: Value) {
        let old = app.get("status").cloned().unwrap_or(Value::Null);
        let patch = json!({"status": util::merge_patch(&old, &status)});
        let _ = self
            .apps(str_at(app, "/metadata/namespace"))
            .patch(
                str_at(app, "/metadata/name"),
                &PatchParams::apply(CONTROLLER),
                &Patch::Merge(&patch),
            )
            .await;
    }

    /// An Application is being deleted: the controller drops its finalizers (leaving what it
    /// applied), and the API server removes it once no other finalizer holds it.
    async fn finalize(&self, app: &Value) {
        let finalizers: Vec<Value> = app
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let left: Vec<Value> = finalizers
            .iter()
            .filter(|f| {
                !f.as_str()
                    .is_some_and(|f| FINALIZERS.iter().any(|ours| f == *ours || f.starts_with(&format!("{ours}/"))))
            })
            .cloned()
            .collect();
        if left.len() == finalizers.len() {
            return;
        }
        lock(&self.synced).remove(&uid(app));
        let patch = json!({"metadata": {"finalizers": left}});
        let _ = self
            .apps(str_at(app, "/metadata/namespace"))
            .patch(str_at(app, "/metadata/name"), &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn uid(app: &Value) -> String {
    str_at(app, "/metadata/uid").to_owned()
}

/// The health Argo CD's built-in rules give a workload (None: a kind without health).
fn workload_health(obj: &Value, group: &str, kind: &str, name: &str) -> Option<(&'static str, String)> {
    let int = |pointer: &str| obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let generation = obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
    let observed = obj.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0) >= generation;
    let replicas = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
    match (group, kind) {
        ("apps", "Deployment") => {
            if !observed {
                return Some((
                    "Progressing",
                    "Waiting for rollout to finish: observed deployment generation less than desired generation".into(),
                ));
            }
            let deadline = obj.pointer("/status/conditions").and_then(Value::as_array).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
            });
            let (updated, available) = (int("/status/updatedReplicas"), int("/status/availableReplicas"));
            if deadline {
                Some(("Degraded", format!("Deployment \"{name}\" exceeded its progress deadline")))
            } else if updated < replicas {
                Some((
                    "Progressing",
                    format!("Waiting for rollout to finish: {updated} out of {replicas} new replicas have been updated..."),
                ))
            } else if available < updated {
                Some((
                    "Progressing",
                    format!("Waiting for rollout to finish: {available} of {updated} updated replicas are available..."),
                ))
            } else {
                Some(("Healthy", String::new()))
            }
        }
        ("apps", "StatefulSet") => {
            let ready = int("/status/readyReplicas");
            if observed && ready >= replicas {
                Some((
                    "Healthy",
                    format!("partitioned roll out complete: {ready} new pods have been updated..."),
                ))
            } else {
                Some(("Progressing", format!("Waiting for {replicas} pods to be ready...")))
            }
        }
        ("apps", "DaemonSet") => {
            let (desired, ready) = (int("/status/desiredNumberScheduled"), int("/status/numberReady"));
            if observed && desired > 0 && ready >= desired {
                Some(("Healthy", String::new()))
            } else {
                Some(("Progressing", "Waiting for daemon set spec update to be observed...".into()))
            }
        }
        _ => None,
    }
}

/// The revision an Application asks for (a chart version).
fn revision(app: &Value) -> String {
    str_at(app, "/spec/source/targetRevision").to_string()
}

/// The operation the controller runs for an Application: an automated sync to its revision.
fn operation(app: &Value) -> Value {
    json!({
        "sync": {"revision": revision(app), "syncOptions": app.pointer("/spec/syncPolicy/syncOptions").cloned().unwrap_or(json!([]))},
        "initiatedBy": {"automated": true},
        "retry": {},
    })
}

/// What every status says: the comparison, what it was compared to, when.
fn base_status(app: &Value, previous: &Value, sync: &str) -> Value {
    let mut status = json!({
        "sync": {
            "status": sync,
            "revision": revision(app),
            "comparedTo": {
                "source": app.pointer("/spec/source").cloned().unwrap_or(json!({})),
                "destination": app.pointer("/spec/destination").cloned().unwrap_or(json!({})),
            },
        },
        "health": previous.get("health").cloned().unwrap_or(json!({"status": "Missing"})),
        "reconciledAt": util::now_rfc3339(),
        "sourceType": "Helm",
        "summary": {},
        "controllerNamespace": NAMESPACE,
    });
    for field in ["history", "resources"] {
        if let Some(v) = previous.get(field) {
            status[field] = v.clone();
        }
    }
    status
}

/// A failed sync: `OutOfSync`, operation `Failed` with `message`, and a condition of `kind`.
fn failed(app: &Value, previous: &Value, started_at: &str, finished_at: &str, kind: &str, message: &str) -> Value {
    let mut status = base_status(app, previous, "OutOfSync");
    status["operationState"] = json!({
        "operation": operation(app),
        "phase": "Failed",
        "message": message,
        "startedAt": started_at,
        "finishedAt": finished_at,
    });
    status["conditions"] = json!([{"type": kind, "message": message, "lastTransitionTime": finished_at}]);
    status
}

/// The Application CRD as Argo CD's manifests install it (`manifests/crds/application-crd.yaml`:
/// names, scope, printer columns, and no subresources), its long schema reduced to the
/// top-level fields.
fn application_crd() -> Value {
    let open = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": CRD_NAME, "app.kubernetes.io/part-of": "argocd"},
        },
        "spec": {
            "group": "argoproj.io",
            "names": {
                "kind": "Application",
                "listKind": "ApplicationList",
                "plural": "applications",
                "shortNames": ["app", "apps"],
                "singular": "application",
            },
            "scope": "Namespaced",
            "versions": [{
                "additionalPrinterColumns": [
                    {"jsonPath": ".status.sync.status", "name": "Sync Status", "type": "string"},
                    {"jsonPath": ".status.health.status", "name": "Health Status", "type": "string"},
                    {"jsonPath": ".status.sync.revision", "name": "Revision", "priority": 10, "type": "string"},
                    {"jsonPath": ".spec.project", "name": "Project", "priority": 10, "type": "string"},
                ],
                "name": "v1alpha1",
                "schema": {"openAPIV3Schema": {
                    "description": "Application is a definition of Application resource.",
                    "type": "object",
                    "required": ["metadata", "spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "operation": open,
                        "spec": open,
                        "status": open,
                    },
                }},
                "served": true,
                "storage": true,
                "subresources": {},
            }],
        },
    })
}

/// How bad a health is, as Argo CD orders them.
fn rank(health: &str) -> u8 {
    match health {
        "Healthy" => 0,
        "Suspended" => 1,
        "Progressing" => 2,
        "Missing" => 3,
        "Degraded" => 4,
        _ => 5,
    }
}

/// A Helm chart in an OCI registry, as an Application's `spec.source` names it.
#[derive(Debug, Clone)]
struct Source {
    /// `HOST:PORT/PATH`, without a scheme.
    repo: String,
    chart: String,
    version: String,
    release: String,
    namespace: String,
    /// `helm.values` (a YAML string), then `helm.valuesObject`: each a values file.
    values: Vec<String>,
}

impl Source {
    fn read(app: &Value) -> Result<Source, String> {
        let source = match app.pointer("/spec/source") {
            Some(s) => s,
            None => {
                return Err(
                    "Failed to load target state: the test cluster's Argo CD syncs one Helm chart from an OCI registry: \
                     spec.source is missing; help: set spec.source with repoURL, chart and targetRevision"
                        .into(),
                );
            }
        };
        let chart = str_at(source, "/chart");
        if chart.is_empty() {
            return Err(format!(
                "Failed to load target state: spec.source.chart is not set (repoURL {}): the test cluster's Argo CD \
                 syncs Helm charts from OCI registries only; help: name the chart in spec.source.chart",
                str_at(source, "/repoURL")
            ));
        }
        let repo = str_at(source, "/repoURL");
        let repo = repo.strip_prefix("oci://").unwrap_or(repo).trim_end_matches('/').to_string();
        let helm = source.get("helm").cloned().unwrap_or(json!({}));
        let mut values = Vec::new();
        if let Some(v) = helm.get("values").and_then(Value::as_str).filter(|v| !v.trim().is_empty()) {
            values.push(v.to_string());
        }
        if let Some(v) = helm.get("valuesObject").filter(|v| v.is_object()) {
            values.push(v.to_string());
        }
        let release = match str_at(&helm, "/releaseName") {
            "" => str_at(app, "/metadata/name"),
            r => r,
        };
        let namespace = match str_at(&helm, "/namespace") {
            "" => str_at(app, "/spec/destination/namespace"),
            n => n,
        };
        Ok(Source {
            repo,
            chart: chart.to_string(),
            version: str_at(source, "/targetRevision").to_string(),
            release: release.to_string(),
            namespace: namespace.to_string(),
            values,
        })
    }

    /// Whether the registry is on loopback (then helm talks plain HTTP to it).
    fn loopback(&self) -> bool {
        let host = self.repo.split('/').next().unwrap_or_default();
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
            _ => host,
        };
        matches!(host, "localhost" | "[::1]" | "::1") || host.starts_with("127.")
    }

    /// Pulls the chart and renders it with the real helm, in a directory of its own.
    fn render(&self, helm: &Path) -> Result<Vec<Value>, String> {
        let dir = tempfile::Builder::new()
            .prefix("harmony-test-argocd-")
            .tempdir()
            .map_err(|e| format!("cannot create a directory for helm: {e}"))?;
        let charts = dir.path().join("charts");
        std::fs::create_dir_all(&charts).map_err(|e| format!("cannot create {}: {e}", charts.display()))?;
        let reference = format!("oci://{}/{}", self.repo, self.chart);
        let mut pull = vec!["pull".to_string(), reference.clone()];
        if !self.version.is_empty() {
            pull.extend(["--version".to_string(), self.version.clone()]);
        }
        pull.extend(["--destination".to_string(), charts.display().to_string()]);
        if self.loopback() {
            pull.push("--plain-http".to_string());
        }
        let shown = match self.version.as_str() {
            "" => format!("helm pull {reference}"),
            v => format!("helm pull {reference} --version {v}"),
        };
        run_helm(helm, dir.path(), &pull, &shown)?;
        let tgz = std::fs::read_dir(&charts)
            .map_err(|e| format!("cannot read {}: {e}", charts.display()))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "tgz"))
            .ok_or_else(|| format!("`{shown}` left no chart archive in {}", charts.display()))?;
        let mut template = vec![
            "template".to_string(),
            self.release.clone(),
            tgz.display().to_string(),
            "--include-crds".to_string(),
        ];
        if !self.namespace.is_empty() {
            template.extend(["--namespace".to_string(), self.namespace.clone()]);
        }
        for (i, values) in self.values.iter().enumerate() {
            let file = dir.path().join(format!("values-{i}.yaml"));
            std::fs::write(&file, values).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            template.extend(["--values".to_string(), file.display().to_string()]);
        }
        let shown = format!("helm template {} {}", self.release, reference);
        let out = run_helm(helm, dir.path(), &template, &shown)?;
        let mut objects = Vec::new();
        for document in serde_yaml_ng::Deserializer::from_str(&out) {
            let value = Value::deserialize(document).map_err(|e| format!("`{shown}` rendered invalid YAML: {e}"))?;
            if value.get("kind").is_some() {
                objects.push(value);
            }
        }
        Ok(objects)
    }
}

/// Runs helm with an argument vector, its caches and configuration in `home`; Err carries
/// helm's stderr the way Argo CD reports a failed manifest generation.
fn run_helm(helm: &Path, home: &Path, args: &[String], shown: &str) -> Result<String, String> {
    let out = Command::new(helm)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "Failed to load target state: cannot run helm ({}): {e}; help: install helm on PATH, set HARMONY_HELM, \
                 or pass Options::helm",
                helm.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: code = Unknown \
             desc = `{shown}` failed {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(source: Value) -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"source": source, "destination": {"namespace": "shop"}},
        })
    }

    #[test]
    fn reads_a_helm_source_over_oci() {
        let s = Source::read(&app(json!({
            "repoURL": "127.0.0.1:5000/team/charts",
            "chart": "webapp-server",
            "targetRevision": "0.1.0",
            "helm": {"releaseName": "shop-web", "valuesObject": {"greeting": "hi"}},
        })))
        .expect("source");
        assert_eq!(
            (
                s.repo.as_str(),
                s.chart.as_str(),
                s.version.as_str(),
                s.release.as_str(),
                s.namespace.as_str()
            ),
            ("127.0.0.1:5000/team/charts", "webapp-server", "0.1.0", "shop-web", "shop")
        );
        assert_eq!(s.values, [r#"{"greeting":"hi"}"#]);
        assert!(s.loopback());
        let s = Source::read(&app(json!({"repoURL": "oci://ghcr.io/acme/charts", "chart": "x"}))).expect("source");
        assert_eq!((s.repo.as_str(), s.release.as_str()), ("ghcr.io/acme/charts", "web"));
        assert!(!s.loopback());
        let err = Source::read(&app(json!({"repoURL": "https://github.com/acme/gitops", "path": "apps"}))).expect_err("no chart");
        assert!(err.contains("spec.source.chart"), "{err}");
    }

    #[test]
    fn orders_health_as_argo_cd() {
        assert!(rank("Degraded") > rank("Missing"));
        assert!(rank("Missing") > rank("Progressing"));
        assert!(rank("Progressing") > rank("Healthy"));
    }
}
