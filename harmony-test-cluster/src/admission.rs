//! What the real API server does to an object before storing it: validation, the defaults that
//! readiness depends on, and folding a Secret's `stringData` into `data`.

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::status::{ApiError, ApiResult, Cause};

fn cause(reason: &str, message: impl Into<String>, field: &str) -> Cause {
    Cause {
        reason: reason.to_string(),
        message: message.into(),
        field: field.to_string(),
    }
}

/// A DNS-1123 subdomain: lowercase alphanumerics, `-` and `.`, alphanumeric at both ends.
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// A DNS-1123 label: a subdomain without dots, at most 63 characters.
pub(crate) fn is_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && is_dns_subdomain(name)
}

/// Validates an object about to be stored.
pub(crate) fn validate(group: &str, kind: &str, object: &Value) -> ApiResult<()> {
    let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default();
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(cause(
            "FieldValueRequired",
            "Required value: name or generateName is required",
            "metadata.name",
        ));
    } else if group == "rbac.authorization.k8s.io" {
        if name.contains('/') || name == "." || name == ".." {
            causes.push(cause(
                "FieldValueInvalid",
                format!("Invalid value: {name:?}: may not contain '/'"),
                "metadata.name",
            ));
        }
    } else if kind == "Namespace" {
        if !is_dns_label(name) {
            causes.push(cause(
                "FieldValueInvalid",
                format!("Invalid value: {name:?}: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
                "metadata.name",
            ));
        }
    } else if !is_dns_subdomain(name) {
        causes.push(cause(
            "FieldValueInvalid",
            format!("Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"),
            "metadata.name",
        ));
    }
    if group == "apps" && matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet") {
        validate_selector(object, &mut causes);
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(group, kind, name, causes))
    }
}

fn validate_selector(object: &Value, causes: &mut Vec<Cause>) {
    let Some(selector) = object.pointer("/spec/selector").filter(|s| !s.is_null()) else {
        causes.push(cause("FieldValueRequired", "Required value", "spec.selector"));
        return;
    };
    let labels = object
        .pointer("/spec/template/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let match_labels = selector.get("matchLabels").and_then(Value::as_object).cloned().unwrap_or_default();
    let expressions = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if match_labels.is_empty() && expressions.is_empty() {
        causes.push(cause(
            "FieldValueInvalid",
            "Invalid value: \"{}\": empty selector is invalid for deployment",
            "spec.selector",
        ));
        return;
    }
    let mut matches = match_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
    for e in &expressions {
        let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
        let values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|v| v.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let actual = labels.get(key).and_then(Value::as_str);
        let ok = match e.get("operator").and_then(Value::as_str).unwrap_or_default() {
            "In" => actual.is_some_and(|a| values.contains(&a)),
            "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
            "Exists" => actual.is_some(),
            "DoesNotExist" => actual.is_none(),
            _ => false,
        };
        matches &= ok;
    }
    if !matches {
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        causes.push(cause(
            "FieldValueInvalid",
            format!(
                "Invalid value: map[string]string{{{}}}: `selector` does not match template `labels`",
                shown.join(", ")
            ),
            "spec.template.metadata.labels",
        ));
    }
}

/// Folds `stringData` into base64 `data` (the real server never stores `stringData`).
pub(crate) fn fold_string_data(object: &mut Value) {
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(Value::Object(strings)) = map.remove("stringData") else {
        return;
    };
    let data = map.entry("data").or_insert_with(|| Value::Object(Map::new()));
    if !data.is_object() {
        *data = Value::Object(Map::new());
    }
    if let Some(data) = data.as_object_mut() {
        for (k, v) in strings {
            let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            data.insert(k, Value::String(base64::engine::general_purpose::STANDARD.encode(text)));
        }
    }
}

fn set_default(map: &mut Map<String, Value>, key: &str, value: Value) {
    if !map.contains_key(key) {
        map.insert(key.to_string(), value);
    }
}

fn obj<'a>(value: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let map = value.as_object_mut()?;
    let entry = map.entry(key).or_insert_with(|| Value::Object(Map::new()));
    entry.as_object_mut()
}

/// Applies the server defaults for built-in kinds. `cluster_ip` is called when a Service needs
/// an address.
pub(crate) fn apply_defaults(group: &str, kind: &str, object: &mut Value, cluster_ip: &mut dyn FnMut() -> String) {
    match (group, kind) {
        ("", "Namespace") => {
            let name = object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if let Some(meta) = obj(object, "metadata") {
                let labels = meta.entry("labels").or_insert_with(|| Value::Object(Map::new()));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), json!(name));
                }
            }
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "finalizers", json!(["kubernetes"]));
            }
            if let Some(status) = obj(object, "status") {
                set_default(status, "phase", json!("Active"));
            }
        }
        ("", "Secret") => {
            fold_string_data(object);
            if let Some(map) = object.as_object_mut() {
                set_default(map, "type", json!("Opaque"));
            }
        }
        ("", "Service") => default_service(object, cluster_ip),
        ("", "Pod") => {
            if let Some(spec) = object.get_mut("spec") {
                default_pod_spec(spec);
            }
            if let Some(status) = obj(object, "status") {
                set_default(status, "phase", json!("Pending"));
                set_default(status, "qosClass", json!("BestEffort"));
            }
        }
        ("", "PersistentVolumeClaim") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "volumeMode", json!("Filesystem"));
            }
            if let Some(status) = obj(object, "status") {
                set_default(status, "phase", json!("Pending"));
            }
        }
        ("apps", "Deployment") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "progressDeadlineSeconds", json!(600));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(
                    spec,
                    "strategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
                );
            }
            default_template(object);
        }
        ("apps", "StatefulSet") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "replicas", json!(1));
                set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                );
                set_default(
                    spec,
                    "persistentVolumeClaimRetentionPolicy",
                    json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                );
            }
            default_template(object);
        }
        ("apps", "DaemonSet") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "revisionHistoryLimit", json!(10));
                set_default(
                    spec,
                    "updateStrategy",
                    json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}),
                );
            }
            default_template(object);
        }
        ("apps", "ReplicaSet") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "replicas", json!(1));
            }
            default_template(object);
        }
        ("batch", "Job") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "completions", json!(1));
                set_default(spec, "parallelism", json!(1));
                set_default(spec, "backoffLimit", json!(6));
                set_default(spec, "completionMode", json!("NonIndexed"));
                set_default(spec, "suspend", json!(false));
            }
            if let Some(template) = object.pointer_mut("/spec/template/spec") {
                default_pod_spec(template);
            }
        }
        ("batch", "CronJob") => {
            if let Some(spec) = obj(object, "spec") {
                set_default(spec, "concurrencyPolicy", json!("Allow"));
                set_default(spec, "suspend", json!(false));
                set_default(spec, "successfulJobsHistoryLimit", json!(3));
                set_default(spec, "failedJobsHistoryLimit", json!(1));
            }
        }
        _ => {}
    }
}

fn default_template(object: &mut Value) {
    if let Some(spec) = object.pointer_mut("/spec/template/spec") {
        default_pod_spec(spec);
    }
}

fn default_pod_spec(spec: &mut Value) {
    let Some(map) = spec.as_object_mut() else {
        return;
    };
    set_default(map, "restartPolicy", json!("Always"));
    set_default(map, "dnsPolicy", json!("ClusterFirst"));
    set_default(map, "terminationGracePeriodSeconds", json!(30));
    set_default(map, "schedulerName", json!("default-scheduler"));
    set_default(map, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = map.get_mut(list) {
            for c in containers.iter_mut() {
                default_container(c);
            }
        }
    }
}

fn default_container(container: &mut Value) {
    let Some(c) = container.as_object_mut() else {
        return;
    };
    set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
    set_default(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
    let policy = if pulls_always(image) { "Always" } else { "IfNotPresent" };
    set_default(c, "imagePullPolicy", json!(policy));
    set_default(c, "resources", json!({}));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
        }
    }
}

/// `:latest` or no tag (and no digest) means the kubelet always pulls.
fn pulls_always(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn default_service(object: &mut Value, cluster_ip: &mut dyn FnMut() -> String) {
    let Some(spec) = obj(object, "spec") else {
        return;
    };
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    let external = spec.get("type").and_then(Value::as_str) == Some("ExternalName");
    if !external {
        if !spec.contains_key("clusterIP") {
            spec.insert("clusterIP".into(), json!(cluster_ip()));
        }
        let ip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
        set_default(spec, "clusterIPs", json!([ip]));
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(Value::Array(ports)) = spec.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_default(p, "protocol", json!("TCP"));
            if let Some(port) = p.get("port").cloned() {
                set_default(p, "targetPort", port);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_dns_subdomains() {
        assert!(is_dns_subdomain("web-1.example"));
        assert!(!is_dns_subdomain("Web"));
        assert!(!is_dns_subdomain("-web"));
        assert!(!is_dns_label("a.b"));
        let err = validate("", "ConfigMap", &json!({"metadata": {"name": "Bad_Name"}})).expect_err("invalid name");
        assert_eq!(err.code, 422);
        assert_eq!(err.causes[0].field, "metadata.name");
        assert_eq!(err.causes[0].reason, "FieldValueInvalid");
    }

    #[test]
    fn deployments_need_a_matching_selector() {
        let missing = json!({"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}}}}});
        let err = validate("apps", "Deployment", &missing).expect_err("no selector");
        assert_eq!(err.causes[0].field, "spec.selector");
        assert_eq!(err.causes[0].reason, "FieldValueRequired");
        let mismatch = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "web"}}}}});
        let err = validate("apps", "Deployment", &mismatch).expect_err("mismatch");
        assert_eq!(err.causes[0].field, "spec.template.metadata.labels");
        let good = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}}}});
        assert!(validate("apps", "Deployment", &good).is_ok());
    }

    #[test]
    fn deployment_defaults_match_the_real_server() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "nginx", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "nginx:1.27"}
        ]}}}});
        apply_defaults("apps", "Deployment", &mut d, &mut || "10.96.0.1".into());
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["containers"][1]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(pod["containers"][0]["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn secrets_fold_string_data() {
        let mut s = json!({"stringData": {"password": "hunter2"}, "data": {"a": "Yg=="}});
        apply_defaults("", "Secret", &mut s, &mut || String::new());
        assert!(s.get("stringData").is_none());
        assert_eq!(s["data"]["password"], "aHVudGVyMg==");
        assert_eq!(s["data"]["a"], "Yg==");
        assert_eq!(s["type"], "Opaque");
    }

    #[test]
    fn services_get_an_address_and_target_ports() {
        let mut s = json!({"spec": {"ports": [{"port": 80}]}});
        apply_defaults("", "Service", &mut s, &mut || "10.96.0.7".into());
        assert_eq!(s["spec"]["clusterIP"], "10.96.0.7");
        assert_eq!(s["spec"]["clusterIPs"], json!(["10.96.0.7"]));
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert_eq!(s["spec"]["type"], "ClusterIP");
    }
}
