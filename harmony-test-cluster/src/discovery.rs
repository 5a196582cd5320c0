//! Legacy discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{group}` and
//! `/apis/{group}/{version}`.

use serde_json::{Value, json};

use crate::resources::{Registry, ResourceType};

const VERBS: &[&str] = &["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "emulationMajor": "1",
        "emulationMinor": "33",
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": "32",
        "gitVersion": "v1.33.9-harmony-test",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24.0",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

pub(crate) fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_document(name: &str, versions: &[String]) -> Value {
    let gv: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": gv,
        "preferredVersion": gv.first().cloned().unwrap_or(Value::Null),
    })
}

pub(crate) fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .map(|(name, versions)| group_document(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

pub(crate) fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let (name, versions) = registry.groups().into_iter().find(|(n, _)| n == group)?;
    let mut doc = group_document(&name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

fn entries(t: &ResourceType) -> Vec<Value> {
    let mut main = json!({
        "name": t.plural,
        "singularName": t.singular,
        "namespaced": t.namespaced,
        "kind": t.kind,
        "verbs": VERBS,
    });
    if !t.short_names.is_empty() {
        main["shortNames"] = json!(t.short_names);
    }
    if !t.categories.is_empty() {
        main["categories"] = json!(t.categories);
    }
    let mut out = vec![main];
    if t.status {
        out.push(json!({
            "name": format!("{}/status", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": ["get", "patch", "update"],
        }));
    }
    for sub in &t.subresources {
        let (kind, verbs): (&str, Vec<&str>) = match sub.as_str() {
            "log" => ("Pod", vec!["get"]),
            "proxy" => ("ServiceProxyOptions", vec!["create", "delete", "get", "patch", "update"]),
            "finalize" => (t.kind.as_str(), vec!["update"]),
            _ => (t.kind.as_str(), vec!["get"]),
        };
        out.push(json!({
            "name": format!("{}/{sub}", t.plural),
            "singularName": "",
            "namespaced": t.namespaced,
            "kind": kind,
            "verbs": verbs,
        }));
    }
    out
}

/// The APIResourceList for one group/version, or `None` if nothing is served there.
pub(crate) fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut types: Vec<&ResourceType> = registry.all().filter(|t| t.group == group && t.serves(version)).collect();
    if types.is_empty() {
        return None;
    }
    types.sort_by(|a, b| a.plural.cmp(&b.plural));
    let resources: Vec<Value> = types.into_iter().flat_map(entries).collect();
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_resources_with_their_subresources() {
        let r = Registry::builtin();
        let apps = resource_list(&r, "apps", "v1").expect("apps/v1");
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"deployments"));
        assert!(names.contains(&"deployments/status"));
        let core = resource_list(&r, "", "v1").expect("v1");
        let names: Vec<&str> = core["resources"]
            .as_array()
            .expect("resources")
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        assert!(names.contains(&"pods/log"));
        assert!(names.contains(&"services/proxy"));
        assert!(resource_list(&r, "apps", "v2").is_none());
    }
}
