//! Plans: what would change on a target, object by object and field by field.
//! Computed from a render and an observation only, so it never writes.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Write as _};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::capability::{Observed, OwnedElsewhere, Unhealthy};
use crate::object::{Object, ObjectRef, Rendered};
use crate::oci::Digest;
use crate::secret::{REDACTED, is_secret_path};

/// What a plan does to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Not on the target: it is created.
    Add,
    /// On the target, different: it is updated.
    Change,
    /// On the target, no longer rendered: it is pruned.
    Remove,
}

impl Action {
    fn sigil(self) -> char {
        match self {
            Self::Add => '+',
            Self::Change => '~',
            Self::Remove => '-',
        }
    }
}

/// One field that differs. Secret values show as `<redacted>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Where in the object, dotted: `spec.replicas`.
    pub path: String,
    /// The value on the target; `None` when the field is new.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    /// The value rendered; `None` when the field goes away.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// Who owns the field now, when it is not Harmony: `before` is then its
    /// live value, which applying would take back (or refuse to: a conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// One object that would be added, changed or removed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Added, changed or removed.
    pub action: Action,
    /// Which object.
    pub object: ObjectRef,
    /// The fields that differ, for a change (empty for an addition or a removal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<FieldChange>,
}

/// Everything that would change for one app on one topology, and what of
/// it is not healthy now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The app planned.
    pub app: String,
    /// The topology it was planned on (its `--topology` name).
    pub topology: String,
    /// What would change, object by object; empty when nothing would.
    pub changes: Vec<Change>,
    /// Objects the app keeps that are not ready now (an `apply` would verify
    /// them, and fail unless its changes mend them).
    #[serde(default)]
    pub unhealthy: Vec<Unhealthy>,
}

/// How many objects a plan adds, changes and removes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects created.
    pub add: usize,
    /// Objects updated.
    pub change: usize,
    /// Objects pruned.
    pub remove: usize,
}

impl Summary {
    /// Whether it counts nothing.
    pub fn is_empty(&self) -> bool {
        self.add + self.change + self.remove == 0
    }
}

impl std::ops::AddAssign for Summary {
    fn add_assign(&mut self, o: Self) {
        self.add += o.add;
        self.change += o.change;
        self.remove += o.remove;
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to add, {} to change, {} to remove", self.add, self.change, self.remove)
    }
}

impl Plan {
    /// Compare what is desired with what the target holds.
    pub fn compute(app: &str, topology: &str, desired: &[Object], observed: &Observed) -> Plan {
        let mut changes = Vec::new();
        let mut seen = HashSet::with_capacity(desired.len());
        for object in desired {
            let id = object.id();
            seen.insert(id);
            // Borrowed unless the object holds secret values: cloning every
            // body only to compare it was most of the cost of an unchanged plan.
            let body = observed.redactor.redact_cow(object);
            match observed.objects.get(id) {
                None => changes.push(Change {
                    action: Action::Add,
                    object: id.clone(),
                    fields: Vec::new(),
                }),
                Some(current) if !same(current, &body) => {
                    let mut fields = Vec::new();
                    let elsewhere = observed.elsewhere.get(id).map_or(&[][..], Vec::as_slice);
                    diff(id, elsewhere, &mut Vec::new(), Some(current), Some(&*body), &mut fields);
                    changes.push(Change {
                        action: Action::Change,
                        object: id.clone(),
                        fields,
                    });
                }
                Some(_) => {}
            }
        }
        for id in observed.objects.keys() {
            if !seen.contains(id) {
                changes.push(Change {
                    action: Action::Remove,
                    object: id.clone(),
                    fields: Vec::new(),
                });
            }
        }
        // What is about to be removed does not need to be healthy.
        let unhealthy = observed.unhealthy.iter().filter(|u| seen.contains(&u.object)).cloned().collect();
        Plan {
            app: app.to_owned(),
            topology: topology.to_owned(),
            changes,
            unhealthy,
        }
    }

    /// Nothing to change, yet something is not healthy: applying would
    /// write nothing and fail its verification.
    pub fn is_unhealthy(&self) -> bool {
        !self.unhealthy.is_empty()
    }

    /// How many objects it adds, changes and removes.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Add => s.add += 1,
                Action::Change => s.change += 1,
                Action::Remove => s.remove += 1,
            }
        }
        s
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The objects this plan removes.
    pub fn removals(&self) -> Vec<ObjectRef> {
        self.changes
            .iter()
            .filter(|c| c.action == Action::Remove)
            .map(|c| c.object.clone())
            .collect()
    }

    /// Human text: one line per object, indented field diffs under changes.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let summary = self.summary();
        if summary.is_empty() {
            let _ = writeln!(out, "{} on {}: no changes", self.app, self.topology);
        } else {
            let _ = writeln!(out, "{} on {}: {summary}", self.app, self.topology);
        }
        for c in &self.changes {
            let _ = writeln!(out, "  {} {}", c.action.sigil(), c.object);
            for f in &c.fields {
                let show = |v: &Option<Value>| v.as_ref().map_or_else(|| "(none)".to_owned(), Value::to_string);
                let owner = f.owner.as_ref().map_or_else(String::new, |o| format!(" (owned by {o})"));
                let _ = writeln!(out, "      {}: {}{owner} -> {}", f.path, show(&f.before), show(&f.after));
            }
        }
        for u in &self.unhealthy {
            let _ = writeln!(out, "  ! {} is not healthy now:", u.object);
            for line in u.why.lines() {
                let _ = writeln!(out, "      {}", line.trim_start());
            }
            if let Some(help) = &u.help {
                let _ = writeln!(out, "      help: {help}");
            }
        }
        out
    }
}

/// What a plan was computed from, as digests of the redacted bodies (a secret
/// value is itself a keyed digest there, so no value can be read back):
/// applying the plan checks that neither side moved since.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    /// Each rendered object, by identity (`apps/v1 Deployment web/api`).
    pub desired: BTreeMap<String, String>,
    /// Each object the target held for the app.
    pub observed: BTreeMap<String, String>,
}

impl Basis {
    /// The basis of a plan computed from `desired` and `observed`.
    pub fn of(desired: &[Object], observed: &Observed) -> Self {
        let digest = |v: &Value| Digest::sha256_of_json(v).to_string();
        let observed_digests: BTreeMap<&ObjectRef, String> = observed.objects.iter().map(|(id, body)| (id, digest(body))).collect();
        Self {
            desired: desired
                .iter()
                .map(|o| {
                    let body = observed.redactor.redact_cow(o);
                    // An object the target holds as desired has the digest already.
                    let known = observed_digests
                        .get(o.id())
                        .filter(|_| observed.objects.get(o.id()) == Some(&*body));
                    (o.id().to_string(), known.cloned().unwrap_or_else(|| digest(&body)))
                })
                .collect(),
            observed: observed_digests.into_iter().map(|(id, d)| (id.to_string(), d)).collect(),
        }
    }

    /// What moved between `self` (the plan's) and `now`: one line per object.
    pub fn moved(&self, now: &Basis) -> Vec<String> {
        let mut out = Vec::new();
        compare("desired", &self.desired, &now.desired, &mut out);
        compare("on the target", &self.observed, &now.observed, &mut out);
        out
    }
}

fn compare(side: &str, then: &BTreeMap<String, String>, now: &BTreeMap<String, String>, out: &mut Vec<String>) {
    for (id, digest) in then {
        match now.get(id) {
            None => out.push(format!("{id}: {side} then, gone now")),
            Some(d) if d != digest => out.push(format!("{id}: changed {side}")),
            Some(_) => {}
        }
    }
    for id in now.keys().filter(|id| !then.contains_key(*id)) {
        out.push(format!("{id}: new {side}"));
    }
}

/// A plan and what it was computed from: what `apply` carries out, exactly.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExactPlan {
    /// What would change: what the user reviews.
    pub plan: Plan,
    /// What it was computed from, checked again before anything is written.
    pub basis: Basis,
    /// The render the plan was computed from, while in the process that made
    /// it: applying the plan deploys it instead of rendering again (a render
    /// is pure). Never saved: a saved plan is rendered again, and compared.
    #[serde(skip)]
    pub(crate) rendered: Option<Arc<Rendered>>,
}

impl PartialEq for ExactPlan {
    /// The same plan from the same basis, rendered in this process or not.
    fn eq(&self, other: &Self) -> bool {
        self.plan == other.plan && self.basis == other.basis
    }
}

/// Equal as JSON: `0` and `0.0` are one number. A server may write back either (the API
/// server stores a CRD schema's `minimum: 0.0` and answers `0`), and neither is drift.
pub fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || ((x.is_f64() || y.is_f64()) && x.as_f64() == y.as_f64()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w))),
        _ => a == b,
    }
}

/// Whether `observed` holds a value somewhere `desired` sets none: what a server's defaults look
/// like inside a value a field manager owns whole (and what a removal looks like).
pub fn holds_values_left_out(desired: &Value, observed: &Value) -> bool {
    match (desired, observed) {
        (Value::Object(d), Value::Object(o)) => o.iter().any(|(k, w)| d.get(k).is_none_or(|v| holds_values_left_out(v, w))),
        (Value::Array(d), Value::Array(o)) if d.len() == o.len() => d.iter().zip(o).any(|(v, w)| holds_values_left_out(v, w)),
        _ => false,
    }
}

/// `observed` without the values the target filled in itself: those `desired` leaves out and
/// `stored` (what the target would store for `desired`) holds alike. What is left differs from
/// `desired` only where applying it would change something.
pub fn without_filled_in(observed: &Value, desired: &Value, stored: &Value) -> Value {
    match (observed, desired, stored) {
        (Value::Object(o), Value::Object(d), Value::Object(s)) => Value::Object(
            o.iter()
                .filter(|(k, w)| d.contains_key(*k) || !s.get(*k).is_some_and(|x| same(w, x)))
                .map(|(k, w)| {
                    let kept = match (d.get(k), s.get(k)) {
                        (Some(v), Some(x)) => without_filled_in(w, v, x),
                        _ => w.clone(),
                    };
                    (k.clone(), kept)
                })
                .collect(),
        ),
        (Value::Array(o), Value::Array(d), Value::Array(s)) if o.len() == d.len() && d.len() == s.len() => {
            Value::Array(o.iter().zip(d).zip(s).map(|((w, v), x)| without_filled_in(w, v, x)).collect())
        }
        _ => observed.clone(),
    }
}

fn diff(
    id: &ObjectRef,
    elsewhere: &[OwnedElsewhere],
    path: &mut Vec<String>,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<FieldChange>,
) {
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let keys: BTreeMap<&String, ()> = a.keys().chain(b.keys()).map(|k| (k, ())).collect();
            for k in keys.keys() {
                path.push((*k).clone());
                diff(id, elsewhere, path, a.get(*k), b.get(*k), out);
                path.pop();
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                path.push(format!("[{i}]"));
                diff(id, elsewhere, path, a.get(i), b.get(i), out);
                path.pop();
            }
        }
        (Some(a), Some(b)) if same(a, b) => {}
        (None, None) => {}
        (a, b) => {
            // Not Harmony's: someone else's value may be there.
            let (a, owner) = match a {
                Some(a) => (Some(a), None),
                None => owned_elsewhere(elsewhere, path).map_or((None, None), |(owner, v)| (Some(v), Some(owner.to_owned()))),
            };
            let secret = is_secret_path(id, path);
            let shown = |v: Option<&Value>| v.map(|v| if secret { Value::String(REDACTED.into()) } else { v.clone() });
            out.push(FieldChange {
                path: field_path(path),
                before: shown(a),
                after: shown(b),
                owner,
            });
        }
    }
}

/// The owner and live value of the field at `path`, if someone else owns it.
/// Only along object keys: list items are matched by their keys on the
/// server, which a position here does not say.
fn owned_elsewhere<'a>(elsewhere: &'a [OwnedElsewhere], path: &[String]) -> Option<(&'a str, &'a Value)> {
    if path.iter().any(|s| s.starts_with('[')) {
        return None;
    }
    elsewhere.iter().find_map(|o| {
        let value = path.iter().try_fold(&o.fields, |v, key| v.get(key))?;
        Some((o.owner.as_str(), value))
    })
}

/// `spec.template.spec.containers[0].image`; keys that are not identifiers are
/// quoted: `metadata.labels["app.kubernetes.io/name"]`.
fn field_path(segments: &[String]) -> String {
    let mut out = String::new();
    for s in segments {
        if s.starts_with('[') {
            out.push_str(s);
        } else if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        } else {
            let _ = write!(out, "[{}]", Value::String(s.clone()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Redactor;
    use serde_json::json;

    fn obj(v: Value) -> Object {
        Object::from_value(v).unwrap()
    }

    fn observed(objects: &[Object], redactor: &Redactor) -> Observed {
        Observed::new(
            objects.iter().map(|o| (o.id().clone(), redactor.redact(o))).collect(),
            redactor.clone(),
        )
    }

    #[test]
    fn a_field_another_owner_holds_shows_its_live_value_and_owner() {
        let key = Redactor::new([1; 32]);
        let desired = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
            "data": {"GREETING": "Hello from harmony", "OTHER": "x"}}),
        );
        // Harmony owns OTHER only: `ops` took GREETING.
        let ours = obj(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"},
            "data": {"OTHER": "x"}}),
        );
        let mut seen = observed(&[ours], &key);
        seen.elsewhere.insert(
            desired.id().clone(),
            vec![OwnedElsewhere {
                owner: "ops".into(),
                fields: json!({"data": {"GREETING": "hijacked"}}),
            }],
        );
        let plan = Plan::compute("app", "k8s", &[desired], &seen);
        let field = &plan.changes[0].fields[0];
        assert_eq!(field.path, "data.GREETING");
        assert_eq!(field.before, Some(json!("hijacked")));
        assert_eq!(field.owner.as_deref(), Some("ops"));
        assert!(
            plan.to_text()
                .contains(r#"data.GREETING: "hijacked" (owned by ops) -> "Hello from harmony""#),
            "{}",
            plan.to_text()
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["changes"][0]["fields"][0]["owner"], json!("ops"));
        assert_eq!(json["changes"][0]["fields"][0]["before"], json!("hijacked"));
    }

    #[test]
    fn a_secret_value_another_owner_holds_stays_redacted() {
        let key = Redactor::new([1; 32]);
        let desired = obj(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
            "stringData": {"password": "ours", "user": "u"}}),
        );
        let ours = obj(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"},
            "stringData": {"user": "u"}}),
        );
        let mut seen = observed(&[ours], &key);
        seen.elsewhere.insert(
            desired.id().clone(),
            vec![OwnedElsewhere {
                owner: "ops".into(),
                fields: json!({"stringData": {"password": "theirs-canary"}}),
            }],
        );
        let plan = Plan::compute("app", "k8s", &[desired], &seen);
        let text = format!("{} {}", plan.to_text(), serde_json::to_string(&plan).unwrap());
        assert!(!text.contains("theirs-canary") && !text.contains("ours"), "{text}");
        assert!(text.contains("(owned by ops)"), "{text}");
    }

    #[test]
    fn add_change_remove_and_field_paths() {
        let r = Redactor::new([7; 32]);
        let before = [
            obj(
                json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"n","labels":{"app.kubernetes.io/name":"x"}},"data":{"k":"1"}}),
            ),
            obj(json!({"apiVersion":"v1","kind":"Service","metadata":{"name":"gone","namespace":"n"}})),
        ];
        let after = [
            obj(
                json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"n","labels":{"app.kubernetes.io/name":"y"}},"data":{"k":"1","j":"2"}}),
            ),
            obj(json!({"apiVersion":"v1","kind":"ServiceAccount","metadata":{"name":"new","namespace":"n"}})),
        ];
        let plan = Plan::compute("app", "local", &after, &observed(&before, &r));
        assert_eq!(
            plan.summary(),
            Summary {
                add: 1,
                change: 1,
                remove: 1
            }
        );
        let change = &plan.changes[0];
        assert_eq!(change.action, Action::Change);
        let paths: Vec<_> = change.fields.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["data.j", "metadata.labels[\"app.kubernetes.io/name\"]"]);
        assert_eq!(plan.changes[1].action, Action::Add);
        assert_eq!(plan.changes[2].action, Action::Remove);
        assert_eq!(plan.removals()[0].name, "gone");
    }

    #[test]
    fn secret_changes_show_redacted_and_equal_secrets_show_nothing() {
        let r = Redactor::new([1; 32]);
        let s =
            |v: &str| obj(json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"n"},"stringData":{"password":v}}));
        let same = Plan::compute("app", "local", &[s("hunter2")], &observed(&[s("hunter2")], &r));
        assert!(same.is_empty());
        let changed = Plan::compute("app", "local", &[s("hunter3")], &observed(&[s("hunter2")], &r));
        let text = format!("{}{}", changed.to_text(), serde_json::to_string(&changed).unwrap());
        assert!(text.contains("stringData.password: \"<redacted>\" -> \"<redacted>\""), "{text}");
        assert!(!text.contains("hunter"), "{text}");
    }

    #[test]
    fn a_number_written_back_another_way_is_no_change() {
        let r = Redactor::new([3; 32]);
        let crd = |minimum: Value| {
            obj(json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                "metadata": {"name": "widgets.example.com"}, "spec": {"minimum": minimum}}))
        };
        let plan = Plan::compute("app", "k8s", &[crd(json!(0.0))], &observed(&[crd(json!(0))], &r));
        assert!(plan.is_empty(), "{plan:?}");
        let plan = Plan::compute("app", "k8s", &[crd(json!(0.5))], &observed(&[crd(json!(0))], &r));
        assert_eq!(plan.changes[0].fields[0].path, "spec.minimum");
    }

    #[test]
    fn what_the_server_filled_in_is_set_aside_and_nothing_else() {
        let desired = json!({"env": [{"name": "POD", "fieldRef": {"fieldPath": "metadata.name"}}], "image": "web:2"});
        let stored = json!({"env": [{"name": "POD", "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}], "image": "web:2"});
        let observed =
            json!({"env": [{"name": "POD", "fieldRef": {"fieldPath": "metadata.name", "apiVersion": "v1"}}], "image": "web:1", "gone": 1});
        assert!(holds_values_left_out(&desired, &observed));
        assert!(!holds_values_left_out(&desired, &desired));
        assert_eq!(
            without_filled_in(&observed, &desired, &stored),
            json!({"env": [{"name": "POD", "fieldRef": {"fieldPath": "metadata.name"}}], "image": "web:1", "gone": 1}),
            "the default goes; the old image and a field to remove stay"
        );
    }
}
