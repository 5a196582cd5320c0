//! What Harmony manages of an object: the fields its server-side applies
//! set, as the server records them in `metadata.managedFields` (FieldsV1).
//!
//! A plan compares the desired object with the live object *projected onto
//! those fields*, so a value the server defaulted or another manager owns (an
//! autoscaler's `replicas`, a webhook's annotation) is never drift, and never
//! reverted.

use base64::Engine as _;
use serde_json::{Map, Value};

use harmony::capability::OwnedElsewhere;
use harmony::secret::REDACTED;

use crate::applyset::PART_OF;

/// The field manager Harmony applies as.
pub const MANAGER: &str = "harmony";

/// Harmony's applied field set of a live object, and the apiVersion it
/// applied with: `None` if Harmony never applied it.
pub fn applied_by_harmony(live: &Value) -> Option<(&Map<String, Value>, &str)> {
    live.pointer("/metadata/managedFields")?.as_array()?.iter().find_map(|entry| {
        let ours = entry.get("manager")?.as_str()? == MANAGER
            && entry.get("operation")?.as_str()? == "Apply"
            && entry.get("subresource").and_then(Value::as_str).unwrap_or("").is_empty();
        if !ours {
            return None;
        }
        let fields = entry.get("fieldsV1")?.as_object()?;
        Some((fields, entry.get("apiVersion")?.as_str()?))
    })
}

/// What other field managers own of `live` (anything but Harmony's applies
/// and a subresource's writers, such as a controller's `status`), each as the
/// part of the live object its field set names. A Secret's values are not
/// copied.
pub fn owned_elsewhere(live: &Value) -> Vec<OwnedElsewhere> {
    let Some(entries) = live.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    let is_secret = live.get("kind").and_then(Value::as_str) == Some("Secret");
    entries
        .iter()
        .filter_map(|entry| {
            let owner = entry.get("manager")?.as_str()?;
            let ours = owner == MANAGER && entry.get("operation").and_then(Value::as_str) == Some("Apply");
            let subresource = entry.get("subresource").and_then(Value::as_str).unwrap_or("");
            if ours || !subresource.is_empty() {
                return None;
            }
            let mut fields = select(live, entry.get("fieldsV1")?.as_object()?);
            if is_secret {
                for values in ["data", "stringData"] {
                    if let Some(Value::Object(values)) = fields.get_mut(values) {
                        values.values_mut().for_each(|v| *v = Value::String(REDACTED.into()));
                    }
                }
            }
            fields.as_object().is_some_and(|f| !f.is_empty()).then(|| OwnedElsewhere {
                owner: owner.to_owned(),
                fields,
            })
        })
        .collect()
}

/// The live object as Harmony last applied it: only the fields in `set`
/// (plus the identity), without the ApplySet label Harmony adds itself, and
/// with a `Secret`'s write-only `stringData` read back from `data`.
pub fn project(live: &Value, set: &Map<String, Value>, api_version: &str) -> Value {
    let mut out = match select(live, set) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    out.insert("apiVersion".into(), Value::String(api_version.to_owned()));
    if let Some(kind) = live.get("kind") {
        out.insert("kind".into(), kind.clone());
    }
    let metadata = out.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(metadata) = metadata {
        for key in ["name", "namespace"] {
            if let Some(v) = live.pointer(&format!("/metadata/{key}")) {
                metadata.insert(key.into(), v.clone());
            }
        }
        if let Some(Value::Object(labels)) = metadata.get_mut("labels") {
            labels.remove(PART_OF);
            if labels.is_empty() {
                metadata.remove("labels");
            }
        }
    }
    let is_secret = live.get("kind").and_then(Value::as_str) == Some("Secret") && api_version == "v1";
    if is_secret {
        read_back_string_data(live, set, &mut out);
    }
    Value::Object(out)
}

/// The part of `value` that `set` names.
fn select(value: &Value, set: &Map<String, Value>) -> Value {
    match value {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, sub) in set {
                let Some(name) = key.strip_prefix("f:") else { continue };
                let Some(v) = map.get(name) else { continue };
                out.insert(name.to_owned(), select_member(v, sub));
            }
            Value::Object(out)
        }
        Value::Array(items) => {
            let mut out = Vec::new();
            for item in items {
                for (key, sub) in set {
                    if let Some(k) = key.strip_prefix("k:") {
                        if matches_key(item, k) {
                            out.push(select_member(item, sub));
                        }
                    } else if let Some(v) = key.strip_prefix("v:")
                        && serde_json::from_str::<Value>(v).is_ok_and(|v| v == *item)
                    {
                        out.push(item.clone());
                    }
                }
            }
            Value::Array(out)
        }
        other => other.clone(),
    }
}

/// A member named by a set node: the whole value for a leaf (`{}` or only
/// `"."`), else the part of it the node names.
fn select_member(value: &Value, node: &Value) -> Value {
    match node.as_object() {
        Some(sub) if sub.keys().any(|k| k != ".") => match value {
            Value::Object(_) | Value::Array(_) => select(value, sub),
            scalar => scalar.clone(),
        },
        _ => value.clone(),
    }
}

/// Whether a list item has the key fields of `k:{"name":"web"}`.
fn matches_key(item: &Value, key: &str) -> bool {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(key) else {
        return false;
    };
    fields.iter().all(|(name, want)| item.get(name) == Some(want))
}

/// `stringData` is write-only: the server folds it into `data`. Harmony owns
/// `stringData` keys; show them with the value `data` holds now.
fn read_back_string_data(live: &Value, set: &Map<String, Value>, out: &mut Map<String, Value>) {
    let Some(Value::Object(keys)) = set.get("f:stringData") else {
        return;
    };
    let mut string_data = Map::new();
    for key in keys.keys() {
        let Some(name) = key.strip_prefix("f:") else { continue };
        let Some(encoded) = live
            .pointer(&format!("/data/{}", name.replace('~', "~0").replace('/', "~1")))
            .and_then(Value::as_str)
        else {
            continue;
        };
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if let Some(text) = decoded {
            string_data.insert(name.to_owned(), Value::String(text));
        }
    }
    out.insert("stringData".into(), Value::Object(string_data));
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An object the real API server wrote, captured by `scripts/capture-k8s-fixtures`.
    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap()
    }

    fn projected(live: &Value) -> Value {
        let (set, api_version) = applied_by_harmony(live).expect("harmony applied it");
        project(live, set, api_version)
    }

    #[test]
    fn only_what_harmony_applied_is_seen_among_three_managers_and_the_servers_defaults() {
        // `harmony` applied this; `autoscaler` then applied replicas, `webhook` an annotation,
        // and the server defaulted the rest.
        let live = fixture("deployment-two-managers.json");
        assert_eq!(
            projected(&live),
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "api", "namespace": "fixtures", "labels": {"app": "api"}},
                "spec": {"selector": {"matchLabels": {"app": "api"}},
                    "template": {"metadata": {"labels": {"app": "api"}}, "spec": {"containers": [
                        {"name": "api", "image": "example.com/api:1", "ports": [{"containerPort": 8080}]}]}}}
            }),
            "what harmony applied, exactly"
        );
    }

    #[test]
    fn an_object_harmony_never_applied_has_no_set() {
        let mut live = fixture("deployment-two-managers.json");
        for entry in live["metadata"]["managedFields"].as_array_mut().unwrap() {
            if entry["manager"] == MANAGER {
                entry["manager"] = "kubectl".into();
            }
        }
        assert!(applied_by_harmony(&live).is_none());
    }

    #[test]
    fn a_secrets_string_data_reads_back_from_data() {
        // Applied with `stringData: {password: hunter2}` and `data: {user: admin}`: the server
        // keeps `data` only, and records `stringData` in the field set.
        let live = fixture("secret-string-data.json");
        assert!(live.get("stringData").is_none(), "the server folded it into data");
        let projected = projected(&live);
        assert_eq!(projected["stringData"], json!({"password": "hunter2"}));
        assert_eq!(projected["data"], json!({"user": "YWRtaW4="}));
    }

    #[test]
    fn set_lists_keep_only_harmonys_values() {
        let live = fixture("configmap-finalizers.json");
        assert_eq!(live["metadata"]["finalizers"], json!(["b.example/y", "a.example/x"]));
        assert_eq!(projected(&live)["metadata"]["finalizers"], json!(["b.example/y"]));
    }
}
