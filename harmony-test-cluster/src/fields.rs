//! Field sets in the `FieldsV1` encoding, the schema facts server-side apply needs (which lists
//! merge by key), and the walks over objects: the set of fields an object sets, the differences
//! between two objects, merging an applied configuration and removing fields.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of field paths, as a tree. A node is `member` when its own path is in the set; its
/// children hold longer paths. Children are keyed by their encoded path element: `f:<field>`,
/// `k:<json of the key fields>`, `v:<json of a set value>`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSet {
    pub member: bool,
    pub children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }

    /// The node at `path`, created if missing.
    pub fn node_mut(&mut self, path: &[String]) -> &mut FieldSet {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node
    }

    pub fn insert(&mut self, path: &[String]) {
        self.node_mut(path).member = true;
    }

    /// Puts `sub` (a set relative to `path`) into this set at `path`.
    pub fn insert_subtree(&mut self, path: &[String], sub: FieldSet) {
        let node = self.node_mut(path);
        let merged = node.union(&sub);
        *node = merged;
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.member |= other.member;
        for (k, v) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(v),
                None => v.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            if let Some(o) = other.children.get(k) {
                let i = v.intersection(o);
                if !i.is_empty() {
                    out.children.insert(k.clone(), i);
                }
            }
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && !other.member,
            children: BTreeMap::new(),
        };
        for (k, v) in &self.children {
            let d = match other.children.get(k) {
                Some(o) => v.difference(o),
                None => v.clone(),
            };
            if !d.is_empty() {
                out.children.insert(k.clone(), d);
            }
        }
        out
    }

    /// Every member path, each as its list of encoded path elements.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect_paths(&mut prefix, &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        if self.member && !prefix.is_empty() {
            out.push(prefix.clone());
        }
        for (k, v) in &self.children {
            prefix.push(k.clone());
            v.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        if self.member && !self.children.is_empty() {
            map.insert(".".into(), Value::Object(Map::new()));
        }
        for (k, v) in &self.children {
            map.insert(k.clone(), v.to_fields_v1());
        }
        Value::Object(map)
    }

    /// Reads `FieldsV1` JSON (the root is never a member itself).
    pub fn from_fields_v1(value: &Value) -> FieldSet {
        let mut set = FieldSet::read(value);
        set.member = false;
        set
    }

    fn read(value: &Value) -> FieldSet {
        let mut set = FieldSet::default();
        match value.as_object() {
            Some(map) if !map.is_empty() => {
                for (k, v) in map {
                    if k == "." {
                        set.member = true;
                    } else {
                        set.children.insert(k.clone(), FieldSet::read(v));
                    }
                }
            }
            _ => set.member = true,
        }
        set
    }
}

/// Formats a path the way conflict messages show it: `.spec.containers[name="web"].image`.
pub(crate) fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for pe in path {
        if let Some(f) = pe.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = pe.strip_prefix("k:") {
            let parts: Vec<String> = match serde_json::from_str::<Value>(k) {
                Ok(Value::Object(m)) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                _ => vec![k.to_string()],
            };
            out.push('[');
            out.push_str(&parts.join(","));
            out.push(']');
        } else if let Some(v) = pe.strip_prefix("v:") {
            out.push_str("[=");
            out.push_str(v);
            out.push(']');
        } else {
            out.push_str(pe);
        }
    }
    out
}

/// How a list merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKind {
    /// Replaced as a whole, owned as one leaf.
    Atomic,
    /// A set of scalars (`v:` elements).
    Set,
    /// Items identified by these key fields (a default for a key that may be absent).
    Keyed(&'static [(&'static str, Option<&'static str>)]),
}

const BY_NAME: &[(&str, Option<&str>)] = &[("name", None)];
const BY_MOUNT_PATH: &[(&str, Option<&str>)] = &[("mountPath", None)];
const BY_DEVICE_PATH: &[(&str, Option<&str>)] = &[("devicePath", None)];
const BY_CONTAINER_PORT: &[(&str, Option<&str>)] = &[("containerPort", None), ("protocol", Some("TCP"))];
const BY_SERVICE_PORT: &[(&str, Option<&str>)] = &[("port", None), ("protocol", Some("TCP"))];
const BY_TYPE: &[(&str, Option<&str>)] = &[("type", None)];
const BY_UID: &[(&str, Option<&str>)] = &[("uid", None)];
const BY_IP: &[(&str, Option<&str>)] = &[("ip", None)];

/// The schema facts for one kind: which lists merge by key and which maps are granular.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a> {
    pub kind: &'a str,
    /// A custom resource: every list outside metadata is atomic.
    pub custom: bool,
}

impl Schema<'_> {
    /// How the list at this field path (field names only, list items skipped) merges.
    pub fn list_kind(&self, path: &[String]) -> ListKind {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        match names.as_slice() {
            ["metadata", "finalizers"] => return ListKind::Set,
            ["metadata", "ownerReferences"] => return ListKind::Keyed(BY_UID),
            _ => {}
        }
        if self.custom {
            return ListKind::Atomic;
        }
        let Some(last) = names.last() else {
            return ListKind::Atomic;
        };
        let parent = names.len().checked_sub(2).map(|i| names[i]);
        match *last {
            "containers" | "initContainers" | "ephemeralContainers" | "volumes" | "env" | "imagePullSecrets" => ListKind::Keyed(BY_NAME),
            "volumeMounts" => ListKind::Keyed(BY_MOUNT_PATH),
            "volumeDevices" => ListKind::Keyed(BY_DEVICE_PATH),
            "hostAliases" => ListKind::Keyed(BY_IP),
            "conditions" => ListKind::Keyed(BY_TYPE),
            "ports" if matches!(parent, Some("containers" | "initContainers" | "ephemeralContainers")) => {
                ListKind::Keyed(BY_CONTAINER_PORT)
            }
            "ports" if self.kind == "Service" && names == ["spec", "ports"] => ListKind::Keyed(BY_SERVICE_PORT),
            _ => ListKind::Atomic,
        }
    }

    /// Whether the map at this path is a map of values (its own path becomes a member when an
    /// update adds it), rather than a struct.
    fn granular_map(&self, path: &[String]) -> bool {
        let names: Vec<&str> = path.iter().map(String::as_str).collect();
        match names.as_slice() {
            [.., "metadata", "labels" | "annotations"] => true,
            _ if self.custom => false,
            ["data" | "binaryData" | "stringData"] => true,
            ["spec", "selector"] if self.kind == "Service" => true,
            [.., "matchLabels" | "nodeSelector"] => true,
            _ => false,
        }
    }
}

/// The encoded key of a keyed list item (`k:{...}`, keys sorted), or `None` when a key field
/// without a default is missing.
pub(crate) fn item_key(item: &Value, keys: &[(&str, Option<&str>)]) -> Option<String> {
    let obj = item.as_object()?;
    let mut sorted: Vec<(&str, Option<&str>)> = keys.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut parts = Vec::new();
    for (name, default) in sorted {
        let value = match obj.get(name) {
            Some(v) if !v.is_null() => v.clone(),
            _ => Value::String(default?.to_string()),
        };
        parts.push(format!("{}:{}", Value::String(name.to_string()), value));
    }
    Some(format!("k:{{{}}}", parts.join(",")))
}

/// The encoded element of a set list (`v:<json>`).
fn set_element(item: &Value) -> String {
    format!("v:{item}")
}

/// Keys of every item of a keyed list, or `None` if some item has no key (then the list is
/// treated as atomic).
fn keyed_items<'v>(list: &'v [Value], keys: &[(&str, Option<&str>)]) -> Option<Vec<(String, &'v Value)>> {
    list.iter().map(|item| item_key(item, keys).map(|k| (k, item))).collect()
}

fn effective_list_kind(schema: &Schema<'_>, path: &[String], list: &[Value]) -> ListKind {
    match schema.list_kind(path) {
        ListKind::Keyed(keys) if keyed_items(list, keys).is_none() => ListKind::Atomic,
        ListKind::Set if list.iter().any(|v| v.is_object() || v.is_array()) => ListKind::Atomic,
        other => other,
    }
}

/// Removes `null` members from maps, recursively (the server never stores them).
pub(crate) fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            for v in map.values_mut() {
                strip_nulls(v);
            }
        }
        Value::Array(items) => {
            for v in items {
                strip_nulls(v);
            }
        }
        _ => {}
    }
}

/// Metadata fields that no manager ever owns.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "selfLink",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The part of an object field ownership is about: without apiVersion, kind and the metadata
/// fields the server owns; without `.status` when `drop_status`, or only `.status` when
/// `only_status`.
pub(crate) fn ownable(object: &Value, drop_status: bool, only_status: bool) -> Value {
    let Some(map) = object.as_object() else {
        return Value::Object(Map::new());
    };
    let mut out = Map::new();
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "status" if drop_status => {}
            _ if only_status && k != "status" => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    let kept: Map<String, Value> = meta
                        .iter()
                        .filter(|(k, _)| !SYSTEM_METADATA.contains(&k.as_str()))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    if !kept.is_empty() {
                        out.insert(k.clone(), Value::Object(kept));
                    }
                }
            }
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// The set of fields a configuration sets (what an applier owns): every leaf, every keyed list
/// item, every set element. Maps themselves are not members unless empty.
pub(crate) fn fields_of(schema: &Schema<'_>, value: &Value) -> FieldSet {
    let mut set = FieldSet::default();
    let mut path = Vec::new();
    walk_fields(schema, value, &mut path, &mut set, false);
    set.member = false;
    set
}

/// Like [`fields_of`], but as an update records a newly added subtree: granular maps are
/// members too.
fn added_fields(schema: &Schema<'_>, value: &Value, path: &mut Vec<String>) -> FieldSet {
    let mut set = FieldSet::default();
    walk_fields(schema, value, path, &mut set, true);
    set
}

fn walk_fields(schema: &Schema<'_>, value: &Value, path: &mut Vec<String>, node: &mut FieldSet, mark_maps: bool) {
    match value {
        Value::Object(map) => {
            if map.is_empty() || (mark_maps && schema.granular_map(path)) {
                node.member = true;
            }
            for (k, v) in map {
                if v.is_null() {
                    continue;
                }
                path.push(k.clone());
                let child = node.children.entry(format!("f:{k}")).or_default();
                walk_fields(schema, v, path, child, mark_maps);
                path.pop();
            }
        }
        Value::Array(items) => match effective_list_kind(schema, path, items) {
            ListKind::Keyed(keys) if !items.is_empty() => {
                for (key, item) in keyed_items(items, keys).unwrap_or_default() {
                    let child = node.children.entry(key).or_default();
                    child.member = true;
                    walk_fields(schema, item, path, child, mark_maps);
                }
            }
            ListKind::Set if !items.is_empty() => {
                for item in items {
                    node.children.entry(set_element(item)).or_default().member = true;
                }
            }
            _ => node.member = true,
        },
        _ => node.member = true,
    }
}

/// Every path in a value, each node a member (what disappears when the value is removed).
fn all_paths(schema: &Schema<'_>, value: &Value, path: &mut Vec<String>) -> FieldSet {
    let mut set = FieldSet::default();
    walk_fields(schema, value, path, &mut set, false);
    mark_all(&mut set);
    set
}

fn mark_all(set: &mut FieldSet) {
    set.member = true;
    for child in set.children.values_mut() {
        mark_all(child);
    }
}

/// What changed between two versions of an object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

impl Diff {
    pub fn changed(&self) -> FieldSet {
        self.added.union(&self.modified)
    }
}

/// Compares the ownable parts of two whole objects (what [`ownable`] keeps
/// of each), without copying them.
pub(crate) fn compare_ownable(schema: &Schema<'_>, old: &Value, new: &Value) -> Diff {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let top = |k: &str| !matches!(k, "apiVersion" | "kind" | "metadata");
    let mut diff = Diff::default();
    let (mut fpath, mut pes) = (Vec::new(), Vec::new());
    compare_maps(schema, o, n, &top, &mut fpath, &mut pes, &mut diff);
    let om = o.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
    let nm = n.get("metadata").and_then(Value::as_object).unwrap_or(&empty);
    fpath.push("metadata".to_owned());
    pes.push("f:metadata".to_owned());
    compare_maps(schema, om, nm, &|k| !SYSTEM_METADATA.contains(&k), &mut fpath, &mut pes, &mut diff);
    diff.added.member = false;
    diff.modified.member = false;
    diff.removed.member = false;
    diff
}

/// The members of two maps that `keep` admits, compared key by key.
fn compare_maps(
    schema: &Schema<'_>,
    o: &Map<String, Value>,
    n: &Map<String, Value>,
    keep: &dyn Fn(&str) -> bool,
    fpath: &mut Vec<String>,
    pes: &mut Vec<String>,
    diff: &mut Diff,
) {
    for (k, nv) in n {
        // An unchanged subtree adds, changes and removes nothing: skip it whole.
        if !keep(k) || o.get(k) == Some(nv) {
            continue;
        }
        fpath.push(k.clone());
        pes.push(format!("f:{k}"));
        match o.get(k) {
            Some(ov) => compare_at(schema, ov, nv, fpath, pes, diff),
            None => {
                let sub = added_fields(schema, nv, fpath);
                diff.added.insert_subtree(pes, sub);
            }
        }
        fpath.pop();
        pes.pop();
    }
    for (k, ov) in o {
        if keep(k) && !n.contains_key(k) {
            fpath.push(k.clone());
            pes.push(format!("f:{k}"));
            let sub = all_paths(schema, ov, fpath);
            diff.removed.insert_subtree(pes, sub);
            fpath.pop();
            pes.pop();
        }
    }
}

fn compare_at(schema: &Schema<'_>, old: &Value, new: &Value, fpath: &mut Vec<String>, pes: &mut Vec<String>, diff: &mut Diff) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => compare_maps(schema, o, n, &|_| true, fpath, pes, diff),
        (Value::Array(o), Value::Array(n)) => {
            let kind_old = effective_list_kind(schema, fpath, o);
            let kind_new = effective_list_kind(schema, fpath, n);
            match (kind_old, kind_new) {
                (ListKind::Keyed(keys), ListKind::Keyed(_)) => {
                    let old_items: BTreeMap<String, &Value> = keyed_items(o, keys).unwrap_or_default().into_iter().collect();
                    let new_items = keyed_items(n, keys).unwrap_or_default();
                    for (key, nv) in &new_items {
                        pes.push(key.clone());
                        match old_items.get(key) {
                            Some(ov) => compare_at(schema, ov, nv, fpath, pes, diff),
                            None => {
                                let mut sub = added_fields(schema, nv, fpath);
                                sub.member = true;
                                diff.added.insert_subtree(pes, sub);
                            }
                        }
                        pes.pop();
                    }
                    for (key, ov) in old_items {
                        if !new_items.iter().any(|(k, _)| *k == key) {
                            pes.push(key);
                            let sub = all_paths(schema, ov, fpath);
                            diff.removed.insert_subtree(pes, sub);
                            pes.pop();
                        }
                    }
                }
                (ListKind::Set, ListKind::Set) => {
                    for v in n {
                        if !o.contains(v) {
                            pes.push(set_element(v));
                            diff.added.insert(pes);
                            pes.pop();
                        }
                    }
                    for v in o {
                        if !n.contains(v) {
                            pes.push(set_element(v));
                            diff.removed.insert(pes);
                            pes.pop();
                        }
                    }
                }
                _ => {
                    if o != n {
                        diff.modified.insert(pes);
                    }
                }
            }
        }
        _ => {
            if old != new {
                diff.modified.insert(pes);
            }
        }
    }
}

/// Merges an applied configuration into a live object: maps per key, keyed lists per item,
/// sets as a union, everything else replaced.
pub(crate) fn merge(schema: &Schema<'_>, live: &Value, config: &Value) -> Value {
    let mut path = Vec::new();
    merge_at(schema, live, config, &mut path)
}

fn merge_at(schema: &Schema<'_>, live: &Value, config: &Value, path: &mut Vec<String>) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) => {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    continue;
                }
                path.push(k.clone());
                let merged = match l.get(k) {
                    Some(lv) => merge_at(schema, lv, cv, path),
                    None => cv.clone(),
                };
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => match (effective_list_kind(schema, path, l), effective_list_kind(schema, path, c)) {
            (ListKind::Keyed(keys), ListKind::Keyed(_)) => {
                let live_keys = keyed_items(l, keys).unwrap_or_default();
                let mut out: Vec<Value> = l.clone();
                for item in c {
                    let key = item_key(item, keys);
                    match live_keys.iter().position(|(k, _)| Some(k) == key.as_ref()) {
                        Some(i) => out[i] = merge_at(schema, &l[i], item, path),
                        None => out.push(item.clone()),
                    }
                }
                Value::Array(out)
            }
            (ListKind::Set, ListKind::Set) => {
                let mut out = l.clone();
                for item in c {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            _ => config.clone(),
        },
        _ => config.clone(),
    }
}

/// Removes the member paths of `set` from `value`. Maps and lists emptied by the removal go too.
pub(crate) fn remove_fields(schema: &Schema<'_>, value: &mut Value, set: &FieldSet) {
    let mut path = Vec::new();
    remove_at(schema, value, set, &mut path);
}

fn remove_at(schema: &Schema<'_>, value: &mut Value, set: &FieldSet, path: &mut Vec<String>) {
    for (pe, child) in &set.children {
        if let Some(field) = pe.strip_prefix("f:") {
            let Some(map) = value.as_object_mut() else {
                continue;
            };
            if child.member {
                map.remove(field);
            } else if let Some(inner) = map.get_mut(field) {
                let was_empty = is_empty_container(inner);
                path.push(field.to_string());
                remove_at(schema, inner, child, path);
                path.pop();
                if !was_empty && is_empty_container(inner) {
                    map.remove(field);
                }
            }
        } else if pe.starts_with("k:") {
            let ListKind::Keyed(keys) = schema.list_kind(path) else {
                continue;
            };
            let Some(items) = value.as_array_mut() else {
                continue;
            };
            let Some(i) = items.iter().position(|item| item_key(item, keys).as_deref() == Some(pe.as_str())) else {
                continue;
            };
            if child.member {
                items.remove(i);
            } else {
                remove_at(schema, &mut items[i], child, path);
            }
        } else if let Some(v) = pe.strip_prefix("v:") {
            let Some(items) = value.as_array_mut() else {
                continue;
            };
            if let Ok(target) = serde_json::from_str::<Value>(v) {
                items.retain(|item| *item != target);
            }
        }
    }
}

fn is_empty_container(value: &Value) -> bool {
    match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DEPLOY: Schema<'static> = Schema {
        kind: "Deployment",
        custom: false,
    };

    fn deployment(image: &str) -> Value {
        json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"template": {"spec": {"containers": [
                {"name": "web", "image": image, "ports": [{"containerPort": 80}]}
            ]}}}
        })
    }

    #[test]
    fn encodes_fields_v1_like_kubernetes() {
        let set = fields_of(&DEPLOY, &deployment("nginx"));
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:template": {"f:spec": {"f:containers": {
                    "k:{\"name\":\"web\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }
                }}}}
            })
        );
        assert_eq!(FieldSet::from_fields_v1(&set.to_fields_v1()), set);
    }

    #[test]
    fn set_algebra_respects_members() {
        let a = fields_of(&DEPLOY, &json!({"spec": {"replicas": 1, "paused": false}}));
        let b = fields_of(&DEPLOY, &json!({"spec": {"replicas": 2}}));
        assert_eq!(a.intersection(&b).to_fields_v1(), json!({"f:spec": {"f:replicas": {}}}));
        assert_eq!(a.difference(&b).to_fields_v1(), json!({"f:spec": {"f:paused": {}}}));
        assert!(b.difference(&a).is_empty());
    }

    #[test]
    fn compare_ownable_skips_identity_and_server_metadata() {
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "1", "resourceVersion": "1", "labels": {"a": "1"}}, "spec": {"replicas": 1}});
        let new = json!({"apiVersion": "apps/v2", "kind": "Deployment",
            "metadata": {"name": "d", "uid": "1", "resourceVersion": "2", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 1}});
        let diff = compare_ownable(&DEPLOY, &old, &new);
        let added: Vec<String> = diff.added.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(added, [".metadata.labels.b"]);
        assert!(diff.modified.is_empty() && diff.removed.is_empty());
    }

    #[test]
    fn compare_sees_modified_added_and_removed() {
        let old = json!({"spec": {"replicas": 1, "paused": true, "template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}});
        let new =
            json!({"spec": {"replicas": 2, "minReadySeconds": 5, "template": {"spec": {"containers": [{"name": "b", "image": "x"}]}}}});
        let diff = compare_ownable(&DEPLOY, &old, &new);
        let modified: Vec<String> = diff.modified.paths().iter().map(|p| path_string(p)).collect();
        assert_eq!(modified, [".spec.replicas"]);
        let added: Vec<String> = diff.added.paths().iter().map(|p| path_string(p)).collect();
        assert!(added.contains(&".spec.minReadySeconds".to_string()));
        assert!(added.contains(&".spec.template.spec.containers[name=\"b\"]".to_string()));
        let removed: Vec<String> = diff.removed.paths().iter().map(|p| path_string(p)).collect();
        assert!(removed.contains(&".spec.paused".to_string()));
        assert!(removed.contains(&".spec.template.spec.containers[name=\"a\"].image".to_string()));
    }

    #[test]
    fn merge_joins_keyed_lists_and_replaces_atomic_ones() {
        let live = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x", "args": ["1"]},
            {"name": "b", "image": "y"}
        ]}}}});
        let config = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "b", "image": "z", "args": ["2"]}
        ]}}}});
        let merged = merge(&DEPLOY, &live, &config);
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "x", "args": ["1"]}, {"name": "b", "image": "z", "args": ["2"]}])
        );
        let custom = Schema {
            kind: "Widget",
            custom: true,
        };
        let merged = merge(&custom, &live, &config);
        assert_eq!(
            merged["spec"]["template"]["spec"]["containers"],
            json!([{"name": "b", "image": "z", "args": ["2"]}])
        );
    }

    #[test]
    fn removes_fields_items_and_set_elements() {
        let mut value = json!({
            "metadata": {"labels": {"a": "1"}, "finalizers": ["x", "y"]},
            "spec": {"template": {"spec": {"containers": [{"name": "a"}, {"name": "b"}]}}}
        });
        let set = FieldSet::from_fields_v1(&json!({
            "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"x\"": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"a\"}": {".": {}}}}}}
        }));
        remove_fields(&DEPLOY, &mut value, &set);
        assert_eq!(
            value,
            json!({
                "metadata": {"finalizers": ["y"]},
                "spec": {"template": {"spec": {"containers": [{"name": "b"}]}}}
            })
        );
    }

    #[test]
    fn finalizers_are_a_set() {
        let set = fields_of(&DEPLOY, &json!({"metadata": {"finalizers": ["a/b"]}}));
        assert_eq!(set.to_fields_v1(), json!({"f:metadata": {"f:finalizers": {"v:\"a/b\"": {}}}}));
    }

    #[test]
    fn ownable_drops_server_owned_metadata() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "uid": "u", "labels": {"x": "y"}}, "data": {"k": "v"}, "status": {"s": 1}});
        assert_eq!(
            ownable(&obj, true, false),
            json!({"metadata": {"labels": {"x": "y"}}, "data": {"k": "v"}})
        );
        assert_eq!(ownable(&obj, false, true), json!({"status": {"s": 1}}));
    }
}
