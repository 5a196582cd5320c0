//! The non-apply patch types: JSON merge patch (RFC 7396), strategic merge patch (merge patch
//! plus keyed lists and `$patch` directives) and JSON patch (RFC 6902).

use serde_json::Value;

use crate::fields::{ListKind, Schema, item_key};

/// RFC 7396: maps merge, `null` removes, everything else replaces.
pub(crate) fn merge_patch(target: &Value, patch: &Value) -> Value {
    let Value::Object(p) = patch else {
        return patch.clone();
    };
    let mut out = match target {
        Value::Object(t) => t.clone(),
        _ => serde_json::Map::new(),
    };
    for (k, v) in p {
        if v.is_null() {
            out.remove(k);
        } else {
            let merged = merge_patch(out.get(k).unwrap_or(&Value::Null), v);
            out.insert(k.clone(), merged);
        }
    }
    Value::Object(out)
}

/// Strategic merge patch, for the lists this server knows are keyed.
pub(crate) fn strategic_merge_patch(schema: &Schema<'_>, target: &Value, patch: &Value) -> Value {
    let mut path = Vec::new();
    smp_at(schema, target, patch, &mut path)
}

fn smp_at(schema: &Schema<'_>, target: &Value, patch: &Value, path: &mut Vec<String>) -> Value {
    match patch {
        Value::Object(p) => {
            if p.get("$patch").and_then(Value::as_str) == Some("replace") {
                let mut replaced = p.clone();
                replaced.remove("$patch");
                return Value::Object(replaced);
            }
            let mut out = match target {
                Value::Object(t) => t.clone(),
                _ => serde_json::Map::new(),
            };
            for (k, v) in p {
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(items)), Some(remove)) = (out.get_mut(field), v.as_array()) {
                        items.retain(|i| !remove.contains(i));
                    }
                    continue;
                }
                if k.starts_with('$') {
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                path.push(k.clone());
                let merged = smp_at(schema, out.get(k).unwrap_or(&Value::Null), v, path);
                path.pop();
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        Value::Array(items) => match (schema.list_kind(path), target) {
            (ListKind::Keyed(keys), Value::Array(live)) => {
                let mut out = live.clone();
                for item in items {
                    let Some(key) = item_key(item, keys) else {
                        continue;
                    };
                    let pos = out.iter().position(|l| item_key(l, keys).as_deref() == Some(key.as_str()));
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            out.remove(i);
                        }
                        (None, true) => {}
                        (Some(i), false) => out[i] = smp_at(schema, &out[i], item, path),
                        (None, false) => out.push(smp_at(schema, &Value::Null, item, path)),
                    }
                }
                Value::Array(out)
            }
            (ListKind::Set, Value::Array(live)) => {
                let mut out = live.clone();
                for item in items {
                    if !out.contains(item) {
                        out.push(item.clone());
                    }
                }
                Value::Array(out)
            }
            _ => Value::Array(items.iter().map(|i| smp_at(schema, &Value::Null, i, path)).collect()),
        },
        _ => patch.clone(),
    }
}

/// Why a JSON patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct JsonPatchError(pub String);

/// RFC 6902 JSON patch.
pub(crate) fn json_patch(target: &Value, ops: &Value) -> Result<Value, JsonPatchError> {
    let ops = ops
        .as_array()
        .ok_or_else(|| JsonPatchError("a JSON patch must be an array of operations".into()))?;
    let mut doc = target.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or_default();
        let path = op
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| JsonPatchError(format!("operation {op} has no path")))?;
        match kind {
            "add" => add(&mut doc, path, value_of(op)?)?,
            "remove" => {
                remove(&mut doc, path)?;
            }
            "replace" => {
                remove(&mut doc, path)?;
                add(&mut doc, path, value_of(op)?)?;
            }
            "test" => {
                // As the API server's json-patch does: a missing value tests equal to null
                // (kube's finalizer helper relies on it).
                if doc.pointer(path).unwrap_or(&Value::Null) != &value_of(op)? {
                    return Err(JsonPatchError(format!("test failed at {path}")));
                }
            }
            "move" | "copy" => {
                let from = op
                    .get("from")
                    .and_then(Value::as_str)
                    .ok_or_else(|| JsonPatchError(format!("operation {op} has no from")))?;
                let value = if kind == "move" {
                    remove(&mut doc, from)?
                } else {
                    doc.pointer(from)
                        .cloned()
                        .ok_or_else(|| JsonPatchError(format!("no value at {from}")))?
                };
                add(&mut doc, path, value)?;
            }
            other => return Err(JsonPatchError(format!("unknown JSON patch operation {other:?}"))),
        }
    }
    Ok(doc)
}

fn value_of(op: &Value) -> Result<Value, JsonPatchError> {
    op.get("value")
        .cloned()
        .ok_or_else(|| JsonPatchError(format!("operation {op} has no value")))
}

fn split_pointer(path: &str) -> Result<(String, String), JsonPatchError> {
    let i = path
        .rfind('/')
        .ok_or_else(|| JsonPatchError(format!("invalid JSON pointer {path:?}")))?;
    let last = path[i + 1..].replace("~1", "/").replace("~0", "~");
    Ok((path[..i].to_string(), last))
}

fn add(doc: &mut Value, path: &str, value: Value) -> Result<(), JsonPatchError> {
    if path.is_empty() {
        *doc = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| JsonPatchError(format!("no parent at {path}")))?;
    match target {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            let i: usize = last.parse().map_err(|_| JsonPatchError(format!("invalid index in {path}")))?;
            if i > items.len() {
                return Err(JsonPatchError(format!("index out of range in {path}")));
            }
            items.insert(i, value);
            Ok(())
        }
        _ => Err(JsonPatchError(format!("cannot add below a scalar at {path}"))),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, JsonPatchError> {
    let (parent, last) = split_pointer(path)?;
    let target = doc
        .pointer_mut(&parent)
        .ok_or_else(|| JsonPatchError(format!("no value at {path}")))?;
    match target {
        Value::Object(map) => map.remove(&last).ok_or_else(|| JsonPatchError(format!("no value at {path}"))),
        Value::Array(items) => {
            let i: usize = last.parse().map_err(|_| JsonPatchError(format!("invalid index in {path}")))?;
            if i >= items.len() {
                return Err(JsonPatchError(format!("index out of range in {path}")));
            }
            Ok(items.remove(i))
        }
        _ => Err(JsonPatchError(format!("no value at {path}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let target = json!({"a": "b", "c": {"d": "e", "f": "g"}});
        let patch = json!({"a": "z", "c": {"f": null}});
        assert_eq!(merge_patch(&target, &patch), json!({"a": "z", "c": {"d": "e"}}));
    }

    #[test]
    fn strategic_patch_merges_containers_by_name() {
        let schema = Schema {
            kind: "Deployment",
            custom: false,
        };
        let target = json!({"spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}}});
        let patch =
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "z"}, {"name": "a", "$patch": "delete"}]}}}});
        assert_eq!(
            strategic_merge_patch(&schema, &target, &patch),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "z"}]}}}})
        );
    }

    #[test]
    fn json_patch_adds_replaces_and_removes() {
        let target = json!({"metadata": {"labels": {"a": "1"}}, "list": [1, 2]});
        let ops = json!([
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "x"},
            {"op": "remove", "path": "/list/0"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "test", "path": "/list", "value": [2, 3]},
            {"op": "test", "path": "/metadata/finalizers", "value": null}
        ]);
        assert_eq!(
            json_patch(&target, &ops).expect("valid patch"),
            json!({"metadata": {"labels": {"a": "x", "b": "2"}}, "list": [2, 3]})
        );
        assert!(json_patch(&target, &json!([{"op": "remove", "path": "/nope"}])).is_err());
    }
}
