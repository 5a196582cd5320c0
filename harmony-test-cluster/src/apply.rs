//! Server-side apply and field ownership: `metadata.managedFields` entries, conflicts, forced
//! transfers, removal of fields a manager stopped applying, and what updates own.

use serde_json::{Map, Value, json};

use crate::fields::{self, FieldSet, Schema};
use crate::util;

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: String,
    pub api_version: String,
    pub time: String,
    /// `""` for the main resource, `"status"` for the status subresource.
    pub subresource: String,
    pub set: FieldSet,
}

impl Entry {
    fn same_manager(&self, manager: &str, operation: &str, subresource: &str) -> bool {
        self.manager == manager && self.operation == operation && self.subresource == subresource
    }

    /// How conflict messages name this manager (as the real server prints it).
    fn describe(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out = format!("{out} with subresource {:?}", self.subresource);
        }
        if self.operation == "Update" {
            out = format!("{out} using {}", self.api_version);
        }
        out
    }
}

/// Reads the entries of an object's `metadata.managedFields`.
pub(crate) fn read_managed(object: &Value) -> Vec<Entry> {
    let Some(list) = object.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|e| Entry {
            manager: str_of(e, "manager"),
            operation: str_of(e, "operation"),
            api_version: str_of(e, "apiVersion"),
            time: str_of(e, "time"),
            subresource: str_of(e, "subresource"),
            set: FieldSet::from_fields_v1(e.get("fieldsV1").unwrap_or(&Value::Null)),
        })
        .collect()
}

fn str_of(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_string()
}

/// Writes entries into `metadata.managedFields` (removing the field when there are none).
pub(crate) fn write_managed(object: &mut Value, entries: &[Entry]) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    let Some(meta) = meta.as_object_mut() else {
        return;
    };
    let list: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("manager".into(), json!(e.manager));
            m.insert("operation".into(), json!(e.operation));
            m.insert("apiVersion".into(), json!(e.api_version));
            m.insert("time".into(), json!(e.time));
            m.insert("fieldsType".into(), json!("FieldsV1"));
            m.insert("fieldsV1".into(), e.set.to_fields_v1());
            if !e.subresource.is_empty() {
                m.insert("subresource".into(), json!(e.subresource));
            }
            Value::Object(m)
        })
        .collect();
    meta.insert("managedFields".into(), Value::Array(list));
}

/// A field another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    /// How the manager is named in messages: `"other"` or `"other" using apps/v1`.
    pub manager: String,
    /// `.spec.replicas`
    pub field: String,
}

/// Who is writing, and through which endpoint.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    /// `""` or `"status"`.
    pub subresource: &'a str,
    /// The kind has a status subresource (the main resource does not own `.status`).
    pub has_status: bool,
}

impl Writer<'_> {
    fn ownable(&self, object: &Value) -> Value {
        let status_only = self.subresource == "status";
        fields::ownable(object, self.has_status && !status_only, status_only)
    }
}

/// Applies `config` to `live` (or to nothing, for a create) as `writer.manager`. Returns the
/// merged object (without defaults) with its new managed fields written, or the conflicts.
pub(crate) fn apply(
    schema: &Schema<'_>,
    live: Option<&Value>,
    config: &Value,
    writer: Writer<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let empty = json!({});
    let live_full = live.unwrap_or(&empty);
    let mut entries = read_managed(live_full);

    // The applied configuration, reduced to what this endpoint may set.
    let mut config_part = writer.ownable(config);
    fields::strip_nulls(&mut config_part);
    let applied = fields::fields_of(schema, &config_part);

    let mut merged = fields::merge(schema, live_full, &config_part);
    let diff = fields::compare_ownable(schema, live_full, &merged);
    let changed = diff.changed();

    // Conflicts: fields another manager owns whose value this apply changes.
    let mut conflicts = Vec::new();
    let mut conflicting: Vec<(usize, FieldSet)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if e.same_manager(writer.manager, "Apply", writer.subresource) {
            continue;
        }
        let overlap = e.set.intersection(&changed);
        if overlap.is_empty() {
            continue;
        }
        for path in overlap.paths() {
            conflicts.push(Conflict {
                manager: e.describe(),
                field: fields::path_string(&path),
            });
        }
        conflicting.push((i, overlap));
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for (i, overlap) in conflicting {
        let e = &mut entries[i];
        e.set = e.set.difference(&overlap);
        e.time = util::now_rfc3339();
    }

    // Fields this manager applied before and no longer applies go, unless someone else owns them.
    let mine = entries
        .iter()
        .position(|e| e.same_manager(writer.manager, "Apply", writer.subresource));
    let last = mine.map(|i| entries[i].set.clone()).unwrap_or_default();
    let mut others = FieldSet::default();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) != mine {
            others = others.union(&e.set);
        }
    }
    let dropped = last.difference(&applied).difference(&others);
    if !dropped.is_empty() {
        fields::remove_fields(schema, &mut merged, &dropped);
    }
    let removed = fields::compare_ownable(schema, live_full, &merged).removed;

    // Record the applier's set.
    match mine {
        Some(i) => {
            let e = &mut entries[i];
            if e.set != applied || e.api_version != writer.api_version {
                e.set = applied;
                e.api_version = writer.api_version.to_string();
                e.time = util::now_rfc3339();
            }
        }
        None => entries.push(Entry {
            manager: writer.manager.to_string(),
            operation: "Apply".into(),
            api_version: writer.api_version.to_string(),
            time: util::now_rfc3339(),
            subresource: writer.subresource.to_string(),
            set: applied,
        }),
    }
    forget_removed(&mut entries, &removed);
    write_managed(&mut merged, &entries);
    Ok(merged)
}

/// Records an update (create, replace or patch) by `writer.manager`: it owns what it added or
/// changed, other managers lose those fields, and removed fields leave every manager.
/// `new` gets the resulting managed fields.
pub(crate) fn record_update(schema: &Schema<'_>, old: Option<&Value>, new: &mut Value, writer: Writer<'_>) {
    let empty = json!({});
    let old_full = old.unwrap_or(&empty);
    let mut entries = read_managed(old_full);
    let diff = fields::compare_ownable(schema, old_full, new);
    let changed = diff.changed();
    let now = util::now_rfc3339();
    if !changed.is_empty() {
        for e in entries.iter_mut() {
            if e.same_manager(writer.manager, "Update", writer.subresource) {
                continue;
            }
            let kept = e.set.difference(&changed);
            if kept != e.set {
                e.set = kept;
                e.time = now.clone();
            }
        }
        match entries
            .iter()
            .position(|e| e.same_manager(writer.manager, "Update", writer.subresource))
        {
            Some(i) => {
                let e = &mut entries[i];
                e.set = e.set.union(&changed);
                e.api_version = writer.api_version.to_string();
                e.time = now;
            }
            None => entries.push(Entry {
                manager: writer.manager.to_string(),
                operation: "Update".into(),
                api_version: writer.api_version.to_string(),
                time: now,
                subresource: writer.subresource.to_string(),
                set: changed,
            }),
        }
    }
    forget_removed(&mut entries, &diff.removed);
    write_managed(new, &entries);
}

fn forget_removed(entries: &mut Vec<Entry>, removed: &FieldSet) {
    if !removed.is_empty() {
        for e in entries.iter_mut() {
            e.set = e.set.difference(removed);
        }
    }
    entries.retain(|e| !e.set.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: Schema<'static> = Schema {
        kind: "Deployment",
        custom: false,
    };

    fn writer(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            subresource: "",
            has_status: true,
        }
    }

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "web", "image": image}]}}}
        })
    }

    fn managers(obj: &Value) -> Vec<(String, String)> {
        read_managed(obj).into_iter().map(|e| (e.manager, e.operation)).collect()
    }

    #[test]
    fn conflicts_only_when_another_manager_owns_a_differing_value() {
        let first = apply(&DEPLOY, None, &deploy(2, "nginx"), writer("alice"), false).expect("create");
        // Same values: shared ownership, no conflict.
        let shared = apply(&DEPLOY, Some(&first), &deploy(2, "nginx"), writer("bob"), false).expect("equal values never conflict");
        assert_eq!(
            managers(&shared),
            [("alice".into(), "Apply".into()), ("bob".into(), "Apply".into())]
        );
        // A differing value conflicts.
        let conflicts = apply(&DEPLOY, Some(&shared), &deploy(3, "nginx"), writer("carol"), false).expect_err("replicas differ");
        assert_eq!(conflicts.len(), 2, "{conflicts:?}");
        assert!(conflicts.iter().all(|c| c.field == ".spec.replicas"));
        assert!(conflicts.iter().any(|c| c.manager == "\"alice\""));
    }

    #[test]
    fn force_moves_ownership_to_the_applier() {
        let first = apply(&DEPLOY, None, &deploy(2, "nginx"), writer("alice"), false).expect("create");
        let forced = apply(&DEPLOY, Some(&first), &deploy(3, "nginx"), writer("bob"), true).expect("forced");
        assert_eq!(forced["spec"]["replicas"], 3);
        let entries = read_managed(&forced);
        let alice = entries.iter().find(|e| e.manager == "alice").expect("alice keeps the image");
        assert!(!alice.set.children["f:spec"].children.contains_key("f:replicas"));
        let bob = entries.iter().find(|e| e.manager == "bob").expect("bob");
        assert!(bob.set.children["f:spec"].children["f:replicas"].member);
        // Alice now conflicts if she applies her old value again.
        assert!(apply(&DEPLOY, Some(&forced), &deploy(2, "nginx"), writer("alice"), false).is_err());
    }

    #[test]
    fn dropped_fields_and_items_are_removed_unless_someone_else_owns_them() {
        let mut two = deploy(2, "nginx");
        two["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .expect("list")
            .push(json!({"name": "sidecar", "image": "busybox"}));
        two["spec"]["minReadySeconds"] = json!(5);
        let live = apply(&DEPLOY, None, &two, writer("alice"), false).expect("create");
        let mut config = deploy(2, "nginx");
        config["spec"].as_object_mut().expect("spec").remove("replicas");
        let after = apply(&DEPLOY, Some(&live), &config, writer("alice"), false).expect("apply");
        assert!(after["spec"].get("replicas").is_none());
        assert!(after["spec"].get("minReadySeconds").is_none());
        let containers = after["spec"]["template"]["spec"]["containers"].as_array().expect("list");
        assert_eq!(containers.len(), 1);
        assert_eq!(containers[0]["name"], "web");

        // With bob sharing replicas, alice dropping it keeps it.
        let live = apply(&DEPLOY, None, &deploy(2, "nginx"), writer("alice"), false).expect("create");
        let shared = apply(
            &DEPLOY,
            Some(&live),
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}),
            writer("bob"),
            false,
        )
        .expect("bob");
        let after = apply(&DEPLOY, Some(&shared), &config, writer("alice"), false).expect("apply");
        assert_eq!(after["spec"]["replicas"], 2);
    }

    #[test]
    fn a_repeated_apply_changes_nothing() {
        let live = apply(&DEPLOY, None, &deploy(2, "nginx"), writer("alice"), false).expect("create");
        let again = apply(&DEPLOY, Some(&live), &deploy(2, "nginx"), writer("alice"), false).expect("again");
        assert_eq!(again, live);
    }

    #[test]
    fn updates_take_what_they_change() {
        let live = apply(&DEPLOY, None, &deploy(2, "nginx"), writer("alice"), false).expect("create");
        let mut new = live.clone();
        new["spec"]["replicas"] = json!(5);
        record_update(&DEPLOY, Some(&live), &mut new, writer("kubectl-scale"));
        let entries = read_managed(&new);
        let scale = entries.iter().find(|e| e.manager == "kubectl-scale").expect("entry");
        assert_eq!(scale.operation, "Update");
        assert_eq!(scale.set.to_fields_v1(), json!({"f:spec": {"f:replicas": {}}}));
        let alice = entries.iter().find(|e| e.manager == "alice").expect("alice");
        assert!(!alice.set.children["f:spec"].children.contains_key("f:replicas"));
    }

    #[test]
    fn status_writes_own_only_status() {
        let live = apply(&DEPLOY, None, &deploy(2, "nginx"), writer("alice"), false).expect("create");
        let mut config = deploy(9, "other");
        config["status"] = json!({"replicas": 2});
        let status_writer = Writer {
            subresource: "status",
            ..writer("controller")
        };
        let after = apply(&DEPLOY, Some(&live), &config, status_writer, false).expect("status apply");
        assert_eq!(after["spec"]["replicas"], 2);
        assert_eq!(after["status"]["replicas"], 2);
        let entries = read_managed(&after);
        let controller = entries.iter().find(|e| e.manager == "controller").expect("entry");
        assert_eq!(controller.subresource, "status");
        assert_eq!(controller.set.to_fields_v1(), json!({"f:status": {"f:replicas": {}}}));
        // And the main resource ignores status.
        let mut main = deploy(2, "nginx");
        main["status"] = json!({"replicas": 7});
        let after = apply(&DEPLOY, Some(&after), &main, writer("alice"), false).expect("main");
        assert_eq!(after["status"]["replicas"], 2);
    }
}
