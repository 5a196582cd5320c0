//! Offline verification: the checks that catch, without a cluster, what a
//! cluster would only reveal at run time — a selector that matches nothing, a
//! pod that mounts a ConfigMap nobody deploys, a Service whose named port no
//! container declares.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::object::ObjectRef;

/// Everything the target would hold once a step is applied, as layers, the
/// topmost first (the step's own objects, then what the run deployed before
/// it, then what every other app stored): a lookup takes the topmost, and
/// nothing is merged or copied, so a step costs what it looks up, not the
/// size of the target.
#[derive(Default)]
pub struct View<'a> {
    layers: Vec<Layer<'a>>,
}

impl std::fmt::Debug for View<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("View").field("layers", &self.layers.len()).finish()
    }
}

enum Layer<'a> {
    Held(&'a BTreeMap<ObjectRef, Value>),
    Step(BTreeMap<&'a ObjectRef, &'a Value>),
}

/// The kinds whose objects carry a pod template, in `pod_template`'s words.
const WORKLOADS: [(&str, &str); 7] = [
    ("apps/v1", "DaemonSet"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "ReplicaSet"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "CronJob"),
    ("batch/v1", "Job"),
    ("v1", "Pod"),
];

impl<'a> View<'a> {
    /// Add a layer below the others: objects a store holds.
    pub fn below(mut self, held: &'a BTreeMap<ObjectRef, Value>) -> Self {
        self.layers.push(Layer::Held(held));
        self
    }

    /// Add a layer below the others: the objects of a step.
    pub fn below_step(mut self, objects: impl IntoIterator<Item = (&'a ObjectRef, &'a Value)>) -> Self {
        self.layers.push(Layer::Step(objects.into_iter().collect()));
        self
    }

    pub fn get(&self, id: &ObjectRef) -> Option<&'a Value> {
        self.layers.iter().find_map(|layer| layer.get(id))
    }

    pub fn contains(&self, id: &ObjectRef) -> bool {
        self.get(id).is_some()
    }

    /// Every workload of namespace `namespace`, each as the topmost layer holds it.
    fn workloads_in(&self, namespace: Option<&String>) -> Vec<(&'a ObjectRef, &'a Value)> {
        let mut found = Vec::new();
        for (api_version, kind) in WORKLOADS {
            let from = ObjectRef {
                api_version: api_version.to_owned(),
                kind: kind.to_owned(),
                namespace: namespace.cloned(),
                name: String::new(),
            };
            for (depth, layer) in self.layers.iter().enumerate() {
                let shadowed = |id: &ObjectRef| self.layers[..depth].iter().any(|above| above.get(id).is_some());
                found.extend(
                    layer
                        .from(&from)
                        .take_while(|(id, _)| id.api_version == from.api_version && id.kind == from.kind && id.namespace == from.namespace)
                        .filter(|(id, _)| !shadowed(id)),
                );
            }
        }
        found
    }
}

/// One layer of these objects.
impl<'a> FromIterator<(&'a ObjectRef, &'a Value)> for View<'a> {
    fn from_iter<I: IntoIterator<Item = (&'a ObjectRef, &'a Value)>>(objects: I) -> Self {
        View::default().below_step(objects)
    }
}

impl<'a> Layer<'a> {
    fn get(&self, id: &ObjectRef) -> Option<&'a Value> {
        match self {
            Self::Held(map) => map.get(id),
            Self::Step(map) => map.get(id).copied(),
        }
    }

    /// Its objects from `from` on, in order.
    fn from<'s>(&'s self, from: &'s ObjectRef) -> Box<dyn Iterator<Item = (&'a ObjectRef, &'a Value)> + 's> {
        match self {
            Self::Held(map) => {
                let map: &'a BTreeMap<ObjectRef, Value> = map;
                Box::new(map.range::<ObjectRef, _>(from..))
            }
            Self::Step(map) => Box::new(map.range::<ObjectRef, _>(from..).map(|(id, body)| (*id, *body))),
        }
    }
}

/// Check `objects` (just rendered) against `view` (they and everything else the
/// target holds). Returns one line per problem.
pub fn check<'a>(objects: impl IntoIterator<Item = (&'a ObjectRef, &'a Value)>, view: &View<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let objects: Vec<_> = objects.into_iter().collect();
    // With several Services to check, index the pods once; one visits them.
    let services = objects.iter().filter(|(id, _)| is_service(id)).count();
    let mut pods = (services > 1).then(PodsByLabel::default);
    for (id, body) in objects {
        if let Err(why) = crate::ready_when::Ready::of(body) {
            problems.push(format!("{id}: {why}"));
        }
        if let Some((template, selector)) = pod_template(id, body) {
            check_workload(id, template, selector, view, &mut problems);
        }
        if is_service(id) {
            check_service(id, body, view, pods.as_mut(), &mut problems);
        }
    }
    problems
}

/// The pod template of a workload, and its selector's `matchLabels` if it has one.
fn pod_template<'v>(id: &ObjectRef, body: &'v Value) -> Option<(&'v Value, Option<&'v Map<String, Value>>)> {
    let selector = || at(body, &["spec", "selector", "matchLabels"]).and_then(Value::as_object);
    match (id.api_version.as_str(), id.kind.as_str()) {
        ("apps/v1", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") => Some((at(body, &["spec", "template"])?, selector())),
        ("batch/v1", "Job") => Some((at(body, &["spec", "template"])?, None)),
        ("batch/v1", "CronJob") => Some((at(body, &["spec", "jobTemplate", "spec", "template"])?, None)),
        ("v1", "Pod") => Some((body, None)),
        _ => None,
    }
}

/// The value at `path` (object keys), found without building a JSON pointer:
/// this runs for every workload a Service might select.
fn at<'v>(value: &'v Value, path: &[&str]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn labels(template: &Value) -> Option<&Map<String, Value>> {
    at(template, &["metadata", "labels"]).and_then(Value::as_object)
}

fn check_workload(id: &ObjectRef, template: &Value, selector: Option<&Map<String, Value>>, view: &View<'_>, out: &mut Vec<String>) {
    if let Some(selector) = selector {
        let template_labels = labels(template);
        for (k, v) in selector {
            if template_labels.and_then(|l| l.get(k)) != Some(v) {
                out.push(format!(
                    "{id}: its selector `{k}={}` does not match the pod template's labels, so the API server would reject it",
                    v.as_str().unwrap_or_default()
                ));
            }
        }
    }
    let Some(spec) = template.get("spec") else {
        out.push(format!("{id}: its pod template has no `spec`"));
        return;
    };
    let ns = id.namespace.clone();
    let containers = spec
        .get("containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    if containers.is_empty() {
        out.push(format!("{id}: its pod template has no containers"));
    }
    let all = containers
        .iter()
        .chain(spec.get("initContainers").and_then(Value::as_array).into_iter().flatten());
    for c in all {
        let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
        if c.get("image").and_then(Value::as_str).is_none_or(str::is_empty) {
            out.push(format!("{id}: container `{name}` has no image"));
        }
        for env in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            for (field, kind) in [("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")] {
                if let Some(r) = env.pointer(&format!("/valueFrom/{field}")) {
                    let key = r.get("key").and_then(Value::as_str);
                    need(id, name, kind, ns.as_deref(), r.get("name"), key, r, view, out);
                }
            }
        }
        for from in c.get("envFrom").and_then(Value::as_array).into_iter().flatten() {
            for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                if let Some(r) = from.get(field) {
                    need(id, name, kind, ns.as_deref(), r.get("name"), None, r, view, out);
                }
            }
        }
    }
    for vol in spec.get("volumes").and_then(Value::as_array).into_iter().flatten() {
        let vname = vol.get("name").and_then(Value::as_str).unwrap_or("?");
        if let Some(r) = vol.get("configMap") {
            need(id, vname, "ConfigMap", ns.as_deref(), r.get("name"), None, r, view, out);
        }
        if let Some(r) = vol.get("secret") {
            need(id, vname, "Secret", ns.as_deref(), r.get("secretName"), None, r, view, out);
        }
    }
    if let Some(sa) = spec.get("serviceAccountName").and_then(Value::as_str).filter(|s| *s != "default") {
        let want = ObjectRef {
            api_version: "v1".into(),
            kind: "ServiceAccount".into(),
            namespace: ns,
            name: sa.into(),
        };
        if !view.contains(&want) {
            out.push(format!(
                "{id}: its pods run as ServiceAccount `{sa}`, which nothing deploys, so they would not be created"
            ));
        }
    }
}

/// A reference from a pod to a ConfigMap or Secret (and optionally one key of it) must resolve.
#[allow(clippy::too_many_arguments)]
fn need(
    id: &ObjectRef,
    user: &str,
    kind: &str,
    ns: Option<&str>,
    name: Option<&Value>,
    key: Option<&str>,
    r: &Value,
    view: &View<'_>,
    out: &mut Vec<String>,
) {
    if r.get("optional").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let Some(name) = name.and_then(Value::as_str) else {
        out.push(format!("{id}: `{user}` refers to a {kind} without naming it"));
        return;
    };
    let want = ObjectRef {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: ns.map(str::to_owned),
        name: name.into(),
    };
    match view.get(&want) {
        None => out.push(format!(
            "{id}: `{user}` needs {kind} `{name}`, which nothing deploys, so its pods would not start"
        )),
        Some(body) => {
            if let Some(key) = key {
                let has = ["data", "binaryData", "stringData"]
                    .iter()
                    .any(|f| body.get(*f).and_then(|d| d.get(key)).is_some());
                if !has {
                    out.push(format!(
                        "{id}: `{user}` needs key `{key}` of {kind} `{name}`, which has no such key"
                    ));
                }
            }
        }
    }
}

/// The pod templates of the workloads of each namespace a check asked
/// about, by each of their labels: a Service finds what it selects by one of
/// its selector's labels instead of visiting every workload.
#[derive(Default)]
struct PodsByLabel<'v> {
    namespaces: HashMap<Option<String>, ByLabel<'v>>,
}

/// Pod templates by label key, then label value.
type ByLabel<'v> = HashMap<&'v str, HashMap<&'v str, Vec<&'v Value>>>;

impl<'v> PodsByLabel<'v> {
    /// The templates of namespace `ns` carrying label `key: value`.
    fn labelled(&mut self, view: &View<'v>, ns: Option<&String>, key: &str, value: &str) -> &[&'v Value] {
        let by_label = self.namespaces.entry(ns.cloned()).or_insert_with(|| {
            let mut by_label = ByLabel::new();
            for (id, body) in view.workloads_in(ns) {
                if let Some((template, _)) = pod_template(id, body) {
                    for (k, v) in labels(template).into_iter().flatten() {
                        if let Some(v) = v.as_str() {
                            by_label.entry(k.as_str()).or_default().entry(v).or_default().push(template);
                        }
                    }
                }
            }
            by_label
        });
        by_label.get(key).and_then(|values| values.get(value)).map_or(&[], Vec::as_slice)
    }
}

fn is_service(id: &ObjectRef) -> bool {
    id.api_version == "v1" && id.kind == "Service"
}

fn check_service<'v>(id: &ObjectRef, body: &Value, view: &View<'v>, pods: Option<&mut PodsByLabel<'v>>, out: &mut Vec<String>) {
    let Some(selector) = at(body, &["spec", "selector"]).and_then(Value::as_object).filter(|s| !s.is_empty()) else {
        return;
    };
    let candidates: Vec<&Value> = match pods {
        Some(pods) => {
            let (key, value) = selector.iter().next().expect("not empty");
            pods.labelled(view, id.namespace.as_ref(), key, value.as_str().unwrap_or_default())
                .to_vec()
        }
        None => view
            .workloads_in(id.namespace.as_ref())
            .into_iter()
            .filter_map(|(other, b)| pod_template(other, b))
            .map(|(t, _)| t)
            .collect(),
    };
    let matching: Vec<&Value> = candidates
        .into_iter()
        .filter(|t| labels(t).is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v))))
        .collect();
    if matching.is_empty() {
        let sel: Vec<String> = selector
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        out.push(format!(
            "{id}: its selector `{}` matches no pods deployed to its namespace",
            sel.join(",")
        ));
        return;
    }
    for port in at(body, &["spec", "ports"]).and_then(Value::as_array).into_iter().flatten() {
        let Some(target) = port.get("targetPort").and_then(Value::as_str) else {
            continue;
        };
        let declared = matching.iter().any(|t| {
            at(t, &["spec", "containers"])
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| {
                    c.get("ports")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .any(|p| p.get("name").and_then(Value::as_str) == Some(target))
                })
        });
        if !declared {
            out.push(format!(
                "{id}: its targetPort `{target}` is not a port name any selected container declares"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(kind: &str, name: &str) -> ObjectRef {
        let api = if kind == "Deployment" { "apps/v1" } else { "v1" };
        ObjectRef {
            api_version: api.into(),
            kind: kind.into(),
            namespace: Some("n".into()),
            name: name.into(),
        }
    }

    fn deployment(labels: Value, cm: &str) -> Value {
        json!({"spec":{"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":labels},
          "spec":{"containers":[{"name":"c","image":"i","ports":[{"name":"http","containerPort":80}],
          "envFrom":[{"configMapRef":{"name":cm}}]}]}}}})
    }

    #[test]
    fn a_consistent_set_passes() {
        let (d, c, s) = (id("Deployment", "web"), id("ConfigMap", "cfg"), id("Service", "web"));
        let (db, cb) = (deployment(json!({"app":"web"}), "cfg"), json!({"data":{}}));
        let sb = json!({"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"http"}]}});
        let view: View = [(&d, &db), (&c, &cb), (&s, &sb)].into_iter().collect();
        assert_eq!(check([(&d, &db), (&s, &sb)], &view), Vec::<String>::new());
    }

    #[test]
    fn a_malformed_readiness_rule_is_a_problem() {
        let c = id("ConfigMap", "cfg");
        let body = json!({"metadata": {"annotations": {"harmony.deploy/readiness": "eventually"}}});
        let view: View = [(&c, &body)].into_iter().collect();
        let problems = check([(&c, &body)], &view);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("v1 ConfigMap n/cfg: `harmony.deploy/readiness: eventually` is not a readiness rule"),
            "{problems:?}"
        );
    }

    #[test]
    fn mismatched_selector_missing_config_and_lonely_service_are_reported() {
        let (d, s) = (id("Deployment", "web"), id("Service", "web"));
        let db = deployment(json!({"app":"other"}), "missing");
        let sb = json!({"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"http"}]}});
        let view: View = [(&d, &db), (&s, &sb)].into_iter().collect();
        let problems = check([(&d, &db), (&s, &sb)], &view);
        assert_eq!(problems.len(), 3, "{problems:#?}");
        assert!(problems[0].contains("selector `app=web` does not match"));
        assert!(problems[1].contains("needs ConfigMap `missing`"));
        assert!(problems[2].contains("matches no pods"));
    }

    #[test]
    fn a_step_sees_the_topmost_layer_of_each_object() {
        let (d, c, s) = (id("Deployment", "web"), id("ConfigMap", "cfg"), id("Service", "web"));
        let held_web = deployment(json!({"app":"web"}), "cfg");
        let cb = json!({"data":{}});
        let held: BTreeMap<ObjectRef, Value> = [(d.clone(), held_web), (c.clone(), cb)].into();
        let sb = json!({"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"http"}]}});

        // Held below, the Service selects the Deployment the store holds.
        let view = View::default().below_step([(&s, &sb)]).below(&held);
        assert_eq!(check([(&s, &sb)], &view), Vec::<String>::new());

        // The step relabels that Deployment: the held one no longer counts.
        let relabelled = deployment(json!({"app":"other"}), "cfg");
        let view = View::default().below_step([(&d, &relabelled), (&s, &sb)]).below(&held);
        let problems = check([(&s, &sb)], &view);
        assert_eq!(problems.len(), 1, "{problems:#?}");
        assert!(problems[0].contains("matches no pods"), "{problems:?}");
        assert!(view.contains(&c), "a lower layer is still seen where nothing shadows it");
    }

    #[test]
    fn services_checked_together_find_what_each_finds_alone() {
        let (d, c) = (id("Deployment", "web"), id("ConfigMap", "cfg"));
        let (s1, s2, s3) = (id("Service", "web"), id("Service", "api"), id("Service", "named"));
        let (db, cb) = (deployment(json!({"app":"web", "tier":"front"}), "cfg"), json!({"data":{}}));
        let web = json!({"spec":{"selector":{"app":"web","tier":"front"},"ports":[{"port":80,"targetPort":"http"}]}});
        let api = json!({"spec":{"selector":{"app":"api"},"ports":[{"port":80}]}});
        let named = json!({"spec":{"selector":{"app":"web"},"ports":[{"port":80,"targetPort":"grpc"}]}});
        let all = [(&d, &db), (&c, &cb), (&s1, &web), (&s2, &api), (&s3, &named)];
        let view: View = all.into_iter().collect();
        let together = check(all, &view);
        let alone: Vec<String> = all.into_iter().flat_map(|o| check([o], &view)).collect();
        assert_eq!(together, alone);
        assert_eq!(together.len(), 2, "{together:#?}");
        assert!(
            together[0].contains("Service n/api: its selector `app=api` matches no pods"),
            "{together:?}"
        );
        assert!(together[1].contains("Service n/named: its targetPort `grpc`"), "{together:?}");
    }
}
