//! A simulated Argo CD, opt in with [`TestCluster::play_argocd`](crate::TestCluster::play_argocd):
//! the `applications.argoproj.io` CRD as Argo CD installs it, the `argocd` namespace, and an
//! application controller that syncs Helm charts from OCI registries with the real `helm`
//! (pull, then template), applies what they render through the server's own server-side apply
//! (manager `argocd-controller`, so the simulated workload controllers act on it), and reports
//! sync, operation and health in the Application's `.status` as Argo CD does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize as _;
use serde_json::{Value, json};

use crate::controllers::{self, crd_key};
use crate::lock;
use crate::ops::{self, Target, WriteOptions};
use crate::resources::{TypeKey, split_api_version};
use crate::store::{State, Work};
use crate::util;

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
const PROGRESSING_POLL: Duration = Duration::from_millis(100);
const SETTLED_POLL: Duration = Duration::from_secs(1);
const SUCCEEDED: &str = "successfully synced (all tasks run)";

pub(crate) fn application_key() -> TypeKey {
    TypeKey::new("argoproj.io", "Application")
}

/// The application controller's own state.
#[derive(Debug)]
pub(crate) struct ArgoCdController {
    mode: ArgoCd,
    helm: PathBuf,
    /// Charts rendered by helm threads, waiting to be applied.
    done: Arc<Mutex<Vec<Render>>>,
    /// Numbers the syncs; a health watch goes on only for the latest sync of its Application.
    syncs: u64,
    watched: HashMap<(String, String), u64>,
}

/// What a helm thread made of one Application's source.
#[derive(Debug)]
struct Render {
    namespace: String,
    name: String,
    uid: String,
    generation: i64,
    started_at: String,
    result: Result<Vec<Value>, String>,
}

fn str_at<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1)
}

/// Installs Argo CD (once) and sets how its controller behaves from now on; Applications that
/// exist already are reconsidered.
pub(crate) fn install(state: &mut State, mode: ArgoCd, helm: PathBuf) {
    match &mut state.argocd {
        Some(controller) => {
            controller.mode = mode;
            controller.helm = helm;
        }
        None => {
            state.argocd = Some(ArgoCdController {
                mode,
                helm,
                done: Arc::new(Mutex::new(Vec::new())),
                syncs: 0,
                watched: HashMap::new(),
            });
        }
    }
    if !state.namespace_exists(NAMESPACE) {
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"kubernetes.io/metadata.name": NAMESPACE}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        controllers::create_internal(state, &TypeKey::new("", "Namespace"), "", NAMESPACE, namespace, "kubectl-create");
    }
    if state.get(&crd_key(), "", CRD_NAME).is_none() {
        let mut crd = application_crd();
        crd["metadata"]["generation"] = json!(1);
        controllers::create_internal(state, &crd_key(), "", CRD_NAME, crd, "kubectl-client-side-apply");
    }
    // Installed means established: Applications can be created as soon as this returns.
    controllers::establish_crd(state, CRD_NAME);
    let due = Instant::now() + state.ready_after;
    let apps: Vec<(String, String)> = state.range(&application_key(), None, None).map(|(k, _)| k.clone()).collect();
    for (namespace, name) in apps {
        state.schedule(due, Work::Application(namespace, name));
    }
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

/// An Application was written: a new generation is synced after the controller's delay, a
/// deletion is finalized at once.
pub(crate) fn on_written(state: &mut State, namespace: &str, name: &str, spec_changed: bool, new: &Value) {
    if state.argocd.is_none() {
        return;
    }
    let work = Work::Application(namespace.to_string(), name.to_string());
    if new.pointer("/metadata/deletionTimestamp").is_some() {
        state.schedule(Instant::now(), work);
    } else if spec_changed {
        let due = Instant::now() + state.ready_after;
        state.schedule(due, work);
    }
}

/// The controller's turn on one Application.
pub(crate) fn reconcile(state: &mut State, namespace: &str, name: &str) {
    let Some(controller) = &state.argocd else {
        return;
    };
    let (mode, helm, done) = (controller.mode.clone(), controller.helm.clone(), controller.done.clone());
    let Some(app) = state.get(&application_key(), namespace, name) else {
        return;
    };
    if app.pointer("/metadata/deletionTimestamp").is_some() {
        finalize(state, namespace, name, &app);
        return;
    }
    let previous = app.get("status").cloned().unwrap_or(json!({}));
    let now = util::now_rfc3339();
    match mode {
        ArgoCd::NeverSyncs => {
            let mut status = base_status(&app, &previous, "OutOfSync");
            status["health"] = json!({"status": "Missing"});
            write_status(state, namespace, name, status);
        }
        ArgoCd::FailsSync { message } => {
            let status = failed(&app, &previous, &now, &now, "SyncError", &message);
            write_status(state, namespace, name, status);
        }
        ArgoCd::Syncs | ArgoCd::Degrades { .. } => {
            let mut status = base_status(&app, &previous, "OutOfSync");
            status["operationState"] = json!({
                "operation": operation(&app),
                "phase": "Running",
                "message": "one or more tasks are running",
                "startedAt": now,
            });
            write_status(state, namespace, name, status);
            let source = match Source::read(&app) {
                Ok(source) => source,
                Err(message) => {
                    let status = failed(&app, &previous, &now, &now, "ComparisonError", &message);
                    write_status(state, namespace, name, status);
                    return;
                }
            };
            let wake = state.waker();
            let render = Render {
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid: str_at(&app, "/metadata/uid").to_string(),
                generation: generation(&app),
                started_at: now,
                result: Err(String::new()),
            };
            let spawned = std::thread::Builder::new().name(format!("argocd-{name}")).spawn(move || {
                let result = source.render(&helm);
                lock(&done).push(Render { result, ..render });
                wake.notify_one();
            });
            if let Err(e) = spawned {
                let message = format!("cannot start a thread to run helm: {e}");
                let status = failed(
                    &app,
                    &previous,
                    &util::now_rfc3339(),
                    &util::now_rfc3339(),
                    "ComparisonError",
                    &message,
                );
                write_status(state, namespace, name, status);
            }
        }
    }
}

/// Applies what the helm threads rendered since the last call.
pub(crate) fn collect_renders(state: &mut State) {
    let Some(controller) = &state.argocd else {
        return;
    };
    let renders = std::mem::take(&mut *lock(&controller.done));
    for render in renders {
        finish_sync(state, render);
    }
}

fn finish_sync(state: &mut State, render: Render) {
    let Some(mode) = state.argocd.as_ref().map(|c| c.mode.clone()) else {
        return;
    };
    let (namespace, name) = (render.namespace.as_str(), render.name.as_str());
    let Some(app) = state.get(&application_key(), namespace, name) else {
        return;
    };
    // A newer generation (or another Application of the same name) is synced on its own.
    let current = str_at(&app, "/metadata/uid") == render.uid && generation(&app) == render.generation;
    if !current || app.pointer("/metadata/deletionTimestamp").is_some() || !matches!(mode, ArgoCd::Syncs | ArgoCd::Degrades { .. }) {
        return;
    }
    let previous = app.get("status").cloned().unwrap_or(json!({}));
    let finished_at = util::now_rfc3339();
    let objects = match render.result {
        Ok(objects) => objects,
        Err(message) => {
            let status = failed(&app, &previous, &render.started_at, &finished_at, "ComparisonError", &message);
            write_status(state, namespace, name, status);
            return;
        }
    };
    let (resources, errors) = apply_all(state, &app, objects);
    if !errors.is_empty() {
        let message = format!("one or more objects failed to apply, reason: {}", errors.join(", "));
        let mut status = failed(&app, &previous, &render.started_at, &finished_at, "SyncError", &message);
        status["operationState"]["syncResult"] = json!({
            "revision": revision(&app),
            "source": app.pointer("/spec/source").cloned().unwrap_or(json!({})),
            "resources": resources,
        });
        write_status(state, namespace, name, status);
        return;
    }
    let revision = revision(&app);
    let mut status = base_status(&app, &previous, "Synced");
    status["operationState"] = json!({
        "operation": operation(&app),
        "phase": "Succeeded",
        "message": SUCCEEDED,
        "startedAt": render.started_at,
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
        "deployStartedAt": render.started_at,
        "deployedAt": finished_at,
        "source": app.pointer("/spec/source").cloned().unwrap_or(json!({})),
        "initiatedBy": {"automated": true},
    }));
    let keep = history.len().saturating_sub(10);
    status["history"] = json!(history[keep..]);
    status["resources"] = json!(resources);
    write_status(state, namespace, name, status);
    let sync = match state.argocd.as_mut() {
        Some(controller) => {
            controller.syncs += 1;
            controller
                .watched
                .insert((namespace.to_string(), name.to_string()), controller.syncs);
            controller.syncs
        }
        None => return,
    };
    assess(state, namespace, name, sync);
}

/// Assesses an Application's health from its resources (the latest sync's watch only), and
/// keeps watching: often while it is Progressing, now and then afterwards.
pub(crate) fn assess(state: &mut State, namespace: &str, name: &str, sync: u64) {
    let key = (namespace.to_string(), name.to_string());
    let Some(controller) = &state.argocd else {
        return;
    };
    if controller.watched.get(&key) != Some(&sync) {
        return;
    }
    let mode = controller.mode.clone();
    let Some(app) = state.get(&application_key(), namespace, name) else {
        if let Some(c) = state.argocd.as_mut() {
            c.watched.remove(&key);
        }
        return;
    };
    if str_at(&app, "/status/operationState/phase") != "Succeeded" {
        return;
    }
    let mut status = app.get("status").cloned().unwrap_or(json!({}));
    let mut resources: Vec<Value> = status.get("resources").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut worst = ("Healthy", String::new());
    for r in &mut resources {
        let Some((health, message)) = resource_health(state, r) else {
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
    let (health, message) = match &mode {
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
        write_status(state, namespace, name, status);
    }
    let again = if health == "Progressing" { PROGRESSING_POLL } else { SETTLED_POLL };
    state.schedule(
        Instant::now() + again,
        Work::ApplicationHealth(namespace.to_string(), name.to_string(), sync),
    );
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

/// The health Argo CD gives one resource (None: a kind without health, as a ConfigMap).
fn resource_health(state: &State, resource: &Value) -> Option<(&'static str, String)> {
    let group = str_at(resource, "/group");
    let kind = str_at(resource, "/kind");
    let namespace = str_at(resource, "/namespace");
    let name = str_at(resource, "/name");
    let Some(obj) = state.get(&TypeKey::new(group, kind), namespace, name) else {
        return Some(("Missing", String::new()));
    };
    let int = |pointer: &str| obj.pointer(pointer).and_then(Value::as_i64).unwrap_or(0);
    let observed = obj.pointer("/status/observedGeneration").and_then(Value::as_i64).unwrap_or(0) >= generation(&obj);
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

/// Applies what a chart rendered, as Argo CD syncs: the destination namespace first (with
/// `CreateNamespace=true`), then namespaces and CRDs, then the rest in the chart's order.
/// Returns the resources applied and why others could not be.
fn apply_all(state: &mut State, app: &Value, mut objects: Vec<Value>) -> (Vec<Value>, Vec<String>) {
    let app_name = str_at(app, "/metadata/name").to_string();
    let destination = str_at(app, "/spec/destination/namespace").to_string();
    let create_namespace = app
        .pointer("/spec/syncPolicy/syncOptions")
        .and_then(Value::as_array)
        .is_some_and(|o| o.iter().any(|o| o.as_str() == Some("CreateNamespace=true")));
    let (mut resources, mut errors) = (Vec::new(), Vec::new());
    if create_namespace && !destination.is_empty() && !state.namespace_exists(&destination) {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": destination}});
        if let Err(e) = apply_one(state, namespace, "", None) {
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
        match apply_one(state, object, &destination, Some(&app_name)) {
            Ok(resource) => resources.push(resource),
            Err(e) => errors.push(e),
        }
    }
    (resources, errors)
}

/// Server-side applies one object as `argocd-controller` (forcing, as Argo CD's
/// `ServerSideApply=true` does); its namespace defaults to the destination's.
fn apply_one(state: &mut State, mut object: Value, destination: &str, instance: Option<&str>) -> Result<Value, String> {
    let api_version = str_at(&object, "/apiVersion").to_string();
    let kind = str_at(&object, "/kind").to_string();
    let name = str_at(&object, "/metadata/name").to_string();
    let (group, version) = split_api_version(&api_version);
    let Some(rt) = state.registry.get(&TypeKey::new(group, &kind)).cloned() else {
        return Err(format!(
            "The Kubernetes API could not find {api_version}/{kind} for requested resource {destination}/{name}. \
             Make sure the \"{kind}\" CRD is installed on the destination cluster."
        ));
    };
    if !rt.serves(version) {
        return Err(format!("the server does not serve {kind} at {api_version} (resource {name})"));
    }
    let namespace = if rt.namespaced {
        match str_at(&object, "/metadata/namespace") {
            "" => destination.to_string(),
            ns => ns.to_string(),
        }
    } else {
        String::new()
    };
    if rt.namespaced && namespace.is_empty() {
        return Err(format!(
            "{kind} {name} has no namespace and the Application no spec.destination.namespace"
        ));
    }
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(format!("{kind} {name} has no metadata"));
    };
    if rt.namespaced {
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
    let body = serde_json::to_vec(&object).map_err(|e| format!("{kind} {name}: {e}"))?;
    let target = Target {
        rt: rt.clone(),
        version: version.to_string(),
        namespace: namespace.clone(),
        subresource: String::new(),
    };
    let options = WriteOptions {
        manager: APPLIER.to_string(),
        dry_run: false,
        force: true,
        explicit_manager: true,
    };
    ops::server_side_apply(state, &target, &name, &body, &options).map_err(|e| {
        let at = if namespace.is_empty() {
            name.clone()
        } else {
            format!("{namespace}/{name}")
        };
        format!("{kind} {at}: {}", e.message)
    })?;
    let mut resource = json!({"group": group, "version": version, "kind": kind, "name": name, "status": "Synced"});
    if !namespace.is_empty() {
        resource["namespace"] = json!(namespace);
    }
    Ok(resource)
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

/// Writes `.status` as the application controller does (an update of the whole object: the
/// Application CRD has no status subresource), skipping writes that change nothing.
fn write_status(state: &mut State, namespace: &str, name: &str, status: Value) {
    crate::controllers::write_status_as(state, &application_key(), namespace, name, status, CONTROLLER);
}

/// An Application is being deleted: the controller drops its finalizers (leaving what it
/// applied), and the object goes once no other finalizer holds it.
fn finalize(state: &mut State, namespace: &str, name: &str, app: &Value) {
    let key = application_key();
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
    if let Some(c) = state.argocd.as_mut() {
        c.watched.remove(&(namespace.to_string(), name.to_string()));
    }
    if left.is_empty() {
        let Some(rt) = state.registry.get(&key).cloned() else {
            return;
        };
        let version = rt.versions.first().cloned().unwrap_or_default();
        let target = Target {
            rt,
            version,
            namespace: namespace.to_string(),
            subresource: String::new(),
        };
        ops::remove_with_dependents(state, &target, name, false);
    } else {
        let mut new = app.clone();
        new["metadata"]["finalizers"] = json!(left);
        state.commit(&key, namespace, name, new);
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
