//! The API verbs over the store: get, list, create, replace, patch, apply, delete. Every
//! function runs under the state lock and returns the status code and body to answer with.

use std::sync::Arc;

use base64::Engine;
use serde_json::{Value, json};

use crate::admission;
use crate::apply::{self, Writer};
use crate::controllers;
use crate::fields::{self, Schema};
use crate::patch;
use crate::resources::{ResourceType, TypeKey};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult, Cause};
use crate::store::{ObjectKey, State};
use crate::util;

/// Where a request points: a kind at a version, a namespace (empty when cluster-scoped), and a
/// subresource (`""` or `"status"`).
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub rt: ResourceType,
    pub version: String,
    pub namespace: String,
    pub subresource: String,
}

impl Target {
    fn key(&self) -> TypeKey {
        self.rt.key()
    }

    fn api_version(&self) -> String {
        self.rt.api_version(&self.version)
    }

    fn schema(&self) -> Schema<'_> {
        Schema {
            kind: &self.rt.kind,
            custom: self.rt.custom,
        }
    }

    fn writer<'a>(&'a self, manager: &'a str, api_version: &'a str) -> Writer<'a> {
        Writer {
            manager,
            api_version,
            subresource: &self.subresource,
            has_status: self.rt.status,
        }
    }

    fn not_found(&self, name: &str) -> ApiError {
        ApiError::not_found(&self.rt.group, &self.rt.plural, name)
    }
}

/// Options common to writes.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    pub manager: String,
    pub dry_run: bool,
    pub force: bool,
    /// The fieldManager query parameter was given (required for apply).
    pub explicit_manager: bool,
}

fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn meta_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().expect("an object");
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().expect("an object")
}

/// Parses a request body as JSON or YAML.
pub(crate) fn parse_body(body: &[u8]) -> ApiResult<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(json_err) => serde_yaml_ng::from_slice(body)
            .map_err(|_| ApiError::bad_request(format!("the request body is not valid JSON or YAML: {json_err}"))),
    }
}

fn check_type(target: &Target, body: &Value, require: bool) -> ApiResult<()> {
    let api_version = body.get("apiVersion").and_then(Value::as_str);
    let kind = body.get("kind").and_then(Value::as_str);
    if require && (api_version.is_none() || kind.is_none()) {
        return Err(ApiError::bad_request("apiVersion and kind must be set in an applied configuration"));
    }
    let expected = target.api_version();
    if api_version.is_some_and(|v| v != expected) || kind.is_some_and(|k| k != target.rt.kind) {
        return Err(ApiError::bad_request(format!(
            "the object's apiVersion and kind ({}, {}) do not match the request ({expected}, {})",
            api_version.unwrap_or_default(),
            kind.unwrap_or_default(),
            target.rt.kind
        )));
    }
    Ok(())
}

fn check_namespace(target: &Target, body: &Value) -> ApiResult<()> {
    if let Some(ns) = meta_str(body, "namespace")
        && target.rt.namespaced
        && ns != target.namespace
    {
        return Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}

fn check_name(body: &Value, name: &str) -> ApiResult<()> {
    if let Some(n) = meta_str(body, "name")
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    Ok(())
}

fn namespace_must_exist(state: &State, target: &Target) -> ApiResult<()> {
    if target.rt.namespaced && !state.namespace_exists(&target.namespace) {
        return Err(ApiError::not_found("", "namespaces", &target.namespace));
    }
    Ok(())
}

fn modified_conflict(target: &Target, name: &str) -> ApiError {
    ApiError::conflict(
        &target.rt.group,
        &target.rt.plural,
        name,
        "the object has been modified; please apply your changes to the latest version and try again",
    )
}

/// Reads one object.
pub(crate) fn get(state: &State, target: &Target, name: &str) -> ApiResult<Value> {
    let obj = state
        .get(&target.key(), &target.namespace, name)
        .ok_or_else(|| target.not_found(name))?;
    Ok(versioned(&obj, target))
}

/// The object as served at the request's version.
fn versioned(obj: &Value, target: &Target) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        map.insert("apiVersion".into(), json!(target.api_version()));
    }
    out
}

/// LIST parameters.
#[derive(Debug, Default)]
pub(crate) struct ListOptions {
    pub labels: Option<LabelSelector>,
    pub fields: Option<FieldSelector>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
}

fn encode_continue(key: &ObjectKey) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json!([key.0, key.1]).to_string().as_bytes())
}

fn decode_continue(token: &str) -> ApiResult<ObjectKey> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| ApiError::bad_request("invalid continue token"))?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| ApiError::bad_request("invalid continue token"))?;
    match (v.get(0).and_then(Value::as_str), v.get(1).and_then(Value::as_str)) {
        (Some(ns), Some(name)) => Ok((ns.to_string(), name.to_string())),
        _ => Err(ApiError::bad_request("invalid continue token")),
    }
}

/// A LIST's answer: the matching objects, shared with the store, written
/// out at the request's version without being copied first.
pub(crate) struct List {
    kind: String,
    api_version: String,
    metadata: serde_json::Map<String, Value>,
    items: Vec<Arc<Value>>,
}

impl serde::Serialize for List {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let items: Vec<Versioned<'_>> = self.items.iter().map(|o| Versioned(o, &self.api_version)).collect();
        let mut list = serializer.serialize_struct("List", 4)?;
        list.serialize_field("kind", &self.kind)?;
        list.serialize_field("apiVersion", &self.api_version)?;
        list.serialize_field("metadata", &self.metadata)?;
        list.serialize_field("items", &items)?;
        list.end()
    }
}

/// An object with its `apiVersion` replaced, as it is written.
struct Versioned<'a>(&'a Value, &'a str);

impl serde::Serialize for Versioned<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let Value::Object(fields) = self.0 else {
            return self.0.serialize(serializer);
        };
        let mut map = serializer.serialize_map(Some(fields.len() + usize::from(!fields.contains_key("apiVersion"))))?;
        let mut versioned = false;
        for (key, value) in fields {
            if key == "apiVersion" {
                map.serialize_entry(key, self.1)?;
                versioned = true;
            } else {
                if !versioned && key.as_str() > "apiVersion" {
                    map.serialize_entry("apiVersion", self.1)?;
                    versioned = true;
                }
                map.serialize_entry(key, value)?;
            }
        }
        if !versioned {
            map.serialize_entry("apiVersion", self.1)?;
        }
        map.end()
    }
}

/// Lists objects (in one namespace when `namespace` is set).
pub(crate) fn list(state: &State, target: &Target, namespace: Option<&str>, options: &ListOptions) -> ApiResult<List> {
    let after = options
        .continue_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(decode_continue)
        .transpose()?;
    let matches =
        |obj: &Value| options.labels.as_ref().is_none_or(|s| s.matches(obj)) && options.fields.as_ref().is_none_or(|s| s.matches(obj));
    let limit = options.limit.filter(|l| *l > 0).unwrap_or(usize::MAX);
    let mut items: Vec<Arc<Value>> = Vec::new();
    let mut next = None;
    let pinned = options.fields.as_ref().and_then(FieldSelector::name);
    match (pinned, namespace.or((!target.rt.namespaced).then_some(""))) {
        (Some(name), Some(ns)) if after.is_none() => {
            if let Some(obj) = state.get(&target.key(), ns, name)
                && matches(&obj)
            {
                items.push(obj);
            }
        }
        _ => {
            let mut last_key = None;
            for (key, obj) in state.range(&target.key(), namespace, after.as_ref()) {
                if !matches(obj) {
                    continue;
                }
                if items.len() == limit {
                    next = last_key.map(encode_continue);
                    break;
                }
                items.push(obj.clone());
                last_key = Some(key);
            }
        }
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("resourceVersion".into(), json!(state.rv.to_string()));
    if let Some(token) = next {
        metadata.insert("continue".into(), json!(token));
    }
    Ok(List {
        kind: format!("{}List", target.rt.kind),
        api_version: target.api_version(),
        metadata,
        items,
    })
}

/// POST: creates an object.
pub(crate) fn create(state: &mut State, target: &Target, body: &[u8], options: &WriteOptions) -> ApiResult<(u16, Value)> {
    let mut object = parse_body(body)?;
    if !object.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    check_type(target, &object, false)?;
    check_namespace(target, &object)?;
    let name = match meta_str(&object, "name") {
        Some(n) => n.to_string(),
        None => match meta_str(&object, "generateName") {
            Some(prefix) => format!("{prefix}{}", util::random_suffix(5)),
            None => String::new(),
        },
    };
    if name.is_empty() {
        return Err(ApiError::invalid(
            &target.rt.group,
            &target.rt.kind,
            "",
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: name or generateName is required".into(),
                field: "metadata.name".into(),
            }],
        ));
    }
    namespace_must_exist(state, target)?;
    if state.get(&target.key(), &target.namespace, &name).is_some() {
        return Err(ApiError::already_exists(&target.rt.group, &target.rt.plural, &name));
    }
    fields::strip_nulls(&mut object);
    let meta = meta_mut(&mut object);
    meta.insert("name".into(), json!(name));
    meta.remove("managedFields");
    if target.rt.status
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    let api_version = target.api_version();
    apply::record_update(&target.schema(), None, &mut object, target.writer(&options.manager, &api_version));
    finish(state, target, &name, None, object, options.dry_run)
}

/// PUT: replaces an object (or its status).
pub(crate) fn replace(state: &mut State, target: &Target, name: &str, body: &[u8], options: &WriteOptions) -> ApiResult<(u16, Value)> {
    let object = parse_body(body)?;
    check_type(target, &object, false)?;
    check_namespace(target, &object)?;
    check_name(&object, name)?;
    let old = state
        .get(&target.key(), &target.namespace, name)
        .ok_or_else(|| target.not_found(name))?;
    if let Some(rv) = meta_str(&object, "resourceVersion")
        && Some(rv) != meta_str(&old, "resourceVersion")
    {
        return Err(modified_conflict(target, name));
    }
    update(state, target, name, old, object, options)
}

/// PATCH with a merge, strategic merge or JSON patch.
pub(crate) fn patch(
    state: &mut State,
    target: &Target,
    name: &str,
    content_type: &str,
    body: &[u8],
    options: &WriteOptions,
) -> ApiResult<(u16, Value)> {
    let old = state
        .get(&target.key(), &target.namespace, name)
        .ok_or_else(|| target.not_found(name))?;
    let patch_body: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("the patch is not valid JSON: {e}")))?;
    let patched = match content_type {
        "application/merge-patch+json" => patch::merge_patch(&old, &patch_body),
        "application/strategic-merge-patch+json" => {
            if target.rt.custom {
                return Err(ApiError::unsupported_media(content_type));
            }
            patch::strategic_merge_patch(&target.schema(), &old, &patch_body)
        }
        "application/json-patch+json" => patch::json_patch(&old, &patch_body).map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?,
        other => return Err(ApiError::unsupported_media(other)),
    };
    if patch_body.pointer("/metadata/resourceVersion").is_some()
        && meta_str(&patched, "resourceVersion") != meta_str(&old, "resourceVersion")
    {
        return Err(modified_conflict(target, name));
    }
    check_type(target, &patched, false)?;
    update(state, target, name, old, patched, options)
}

/// The shared tail of PUT and PATCH: keep what the endpoint may not change, record ownership,
/// store.
fn update(
    state: &mut State,
    target: &Target,
    name: &str,
    old: Arc<Value>,
    candidate: Value,
    options: &WriteOptions,
) -> ApiResult<(u16, Value)> {
    let mut new = if target.subresource == "status" {
        let mut n = (*old).clone();
        if let Some(map) = n.as_object_mut() {
            match candidate.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
        n
    } else {
        let mut n = candidate;
        if target.rt.status
            && let Some(map) = n.as_object_mut()
        {
            match old.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
        n
    };
    fields::strip_nulls(&mut new);
    let meta = meta_mut(&mut new);
    match old.pointer("/metadata/managedFields") {
        Some(m) => meta.insert("managedFields".into(), m.clone()),
        None => meta.remove("managedFields"),
    };
    let api_version = target.api_version();
    apply::record_update(
        &target.schema(),
        Some(&old),
        &mut new,
        target.writer(&options.manager, &api_version),
    );
    finish(state, target, name, Some(old), new, options.dry_run)
}

/// PATCH with `application/apply-patch+yaml`: server-side apply.
pub(crate) fn server_side_apply(
    state: &mut State,
    target: &Target,
    name: &str,
    body: &[u8],
    options: &WriteOptions,
) -> ApiResult<(u16, Value)> {
    if !options.explicit_manager || options.manager.is_empty() {
        return Err(ApiError::bad_request(
            "PATCH requests of type application/apply-patch+yaml must include a fieldManager query parameter",
        ));
    }
    let config = parse_body(body)?;
    if !config.is_object() {
        return Err(ApiError::bad_request("an applied configuration must be an object"));
    }
    if config.pointer("/metadata/managedFields").is_some_and(|m| !m.is_null()) {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    check_type(target, &config, true)?;
    check_namespace(target, &config)?;
    check_name(&config, name)?;
    let old = state.get(&target.key(), &target.namespace, name);
    if let Some(rv) = meta_str(&config, "resourceVersion")
        && old.as_ref().is_none_or(|o| meta_str(o, "resourceVersion") != Some(rv))
    {
        return Err(modified_conflict(target, name));
    }
    if old.is_none() {
        if target.subresource == "status" {
            return Err(target.not_found(name));
        }
        namespace_must_exist(state, target)?;
    }
    let api_version = target.api_version();
    let merged = apply::apply(
        &target.schema(),
        old.as_deref(),
        &config,
        target.writer(&options.manager, &api_version),
        options.force,
    )
    .map_err(|conflicts| {
        let messages: Vec<String> = conflicts
            .iter()
            .map(|c| format!("conflict with {}: {}", c.manager, c.field))
            .collect();
        let mut err = ApiError::new(
            409,
            "Conflict",
            format!(
                "Apply failed with {} conflict{}: {}",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                messages.join("\n")
            ),
        );
        err.causes = conflicts
            .iter()
            .map(|c| Cause {
                reason: "FieldManagerConflict".into(),
                message: format!("conflict with {}", c.manager),
                field: c.field.clone(),
            })
            .collect();
        err
    })?;
    finish(state, target, name, old, merged, options.dry_run)
}

/// Validation, defaults, server-owned metadata, no-op detection, finalizers and the write.
fn finish(
    state: &mut State,
    target: &Target,
    name: &str,
    old: Option<Arc<Value>>,
    mut new: Value,
    dry_run: bool,
) -> ApiResult<(u16, Value)> {
    fields::strip_nulls(&mut new);
    if let Some(map) = new.as_object_mut() {
        map.insert("apiVersion".into(), json!(target.api_version()));
        map.insert("kind".into(), json!(target.rt.kind));
    }
    let meta = meta_mut(&mut new);
    meta.insert("name".into(), json!(name));
    if target.rt.namespaced {
        meta.insert("namespace".into(), json!(target.namespace));
    } else {
        meta.remove("namespace");
    }
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
        "selfLink",
    ] {
        meta.remove(field);
    }
    match &old {
        Some(old) => {
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "resourceVersion",
            ] {
                if let Some(v) = old.pointer(&format!("/metadata/{field}")) {
                    meta.insert(field.into(), v.clone());
                }
            }
        }
        None => {
            meta.insert("uid".into(), json!(util::new_uid()));
            meta.insert("creationTimestamp".into(), json!(util::now_rfc3339()));
        }
    }
    let group = target.rt.group.clone();
    let kind = target.rt.kind.clone();
    admission::apply_defaults(&group, &kind, &mut new, &mut || state.allocate_cluster_ip());
    admission::validate(&group, &kind, &new)?;
    if target.rt.generation || target.rt.custom {
        let generation = match &old {
            None => 1,
            Some(old) => {
                let before = old.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(1);
                if spec_part(old) != spec_part(&new) { before + 1 } else { before }
            }
        };
        meta_mut(&mut new).insert("generation".into(), json!(generation));
    }
    if let Some(old) = &old {
        if new == **old {
            return Ok((200, (**old).clone()));
        }
        let finalizers_left = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        if old.pointer("/metadata/deletionTimestamp").is_some() && !finalizers_left {
            if !dry_run {
                remove_with_dependents(state, target, name, false);
            }
            return Ok((200, new));
        }
    }
    if dry_run {
        if old.is_none() {
            meta_mut(&mut new).remove("resourceVersion");
        }
        return Ok((if old.is_none() { 201 } else { 200 }, new));
    }
    let stored = state.commit(&target.key(), &target.namespace, name, new);
    controllers::on_written(state, &target.key(), &target.namespace, name, old.as_deref(), &stored);
    Ok((if old.is_none() { 201 } else { 200 }, (*stored).clone()))
}

/// Everything outside metadata and status: what `metadata.generation` tracks.
fn spec_part(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(map) = out.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    out
}

/// DELETE options (from the body or the query).
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub dry_run: bool,
    pub propagation: Option<String>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

impl DeleteOptions {
    /// Reads a `DeleteOptions` body on top of the query's options.
    pub fn read_body(&mut self, body: &[u8]) -> ApiResult<()> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?;
        if let Some(dry) = v.get("dryRun").and_then(Value::as_array) {
            for d in dry {
                match d.as_str() {
                    Some("All") => self.dry_run = true,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "Invalid dry run value: {other:?}; the only accepted value is \"All\""
                        )));
                    }
                }
            }
        }
        if let Some(p) = v.get("propagationPolicy").and_then(Value::as_str) {
            self.propagation = Some(p.to_string());
        }
        if let Some(uid) = v.pointer("/preconditions/uid").and_then(Value::as_str) {
            self.uid = Some(uid.to_string());
        }
        if let Some(rv) = v.pointer("/preconditions/resourceVersion").and_then(Value::as_str) {
            self.resource_version = Some(rv.to_string());
        }
        Ok(())
    }
}

/// DELETE of one object.
pub(crate) fn delete(state: &mut State, target: &Target, name: &str, options: &DeleteOptions) -> ApiResult<(u16, Value)> {
    let old = state
        .get(&target.key(), &target.namespace, name)
        .ok_or_else(|| target.not_found(name))?;
    let actual_uid = meta_str(&old, "uid").unwrap_or_default();
    if let Some(uid) = &options.uid
        && uid != actual_uid
    {
        return Err(ApiError::conflict(
            &target.rt.group,
            &target.rt.plural,
            name,
            &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual_uid}"),
        ));
    }
    let actual_rv = meta_str(&old, "resourceVersion").unwrap_or_default();
    if let Some(rv) = &options.resource_version
        && rv != actual_rv
    {
        return Err(ApiError::conflict(
            &target.rt.group,
            &target.rt.plural,
            name,
            &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual_rv}"),
        ));
    }
    let has_finalizers = old
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if has_finalizers {
        if old.pointer("/metadata/deletionTimestamp").is_some() {
            return Ok((200, (*old).clone()));
        }
        let mut marked = (*old).clone();
        let meta = meta_mut(&mut marked);
        meta.insert("deletionTimestamp".into(), json!(util::now_rfc3339()));
        meta.insert("deletionGracePeriodSeconds".into(), json!(0));
        if options.dry_run {
            return Ok((200, marked));
        }
        let stored = state.commit(&target.key(), &target.namespace, name, marked);
        // Controllers that hold finalizers learn of the deletion (spec unchanged: no reconcile).
        controllers::on_written(state, &target.key(), &target.namespace, name, Some(&old), &stored);
        return Ok((200, (*stored).clone()));
    }
    if options.dry_run {
        return Ok((200, (*old).clone()));
    }
    let orphan = options.propagation.as_deref() == Some("Orphan");
    let last = remove_with_dependents(state, target, name, orphan);
    let mut answer = last.map(|v| (*v).clone()).unwrap_or_else(|| (*old).clone());
    if target.rt.kind == "Namespace" && target.rt.group.is_empty() {
        let meta = meta_mut(&mut answer);
        meta.insert("deletionTimestamp".into(), json!(util::now_rfc3339()));
        answer["status"] = json!({"phase": "Terminating"});
    }
    Ok((200, answer))
}

/// Removes an object and what depends on it: a namespace's contents, the pods a workload made
/// (unless orphaned), a CRD's kind and objects.
pub(crate) fn remove_with_dependents(state: &mut State, target: &Target, name: &str, orphan: bool) -> Option<Arc<Value>> {
    let key = target.key();
    let removed = state.remove(&key, &target.namespace, name)?;
    if key == TypeKey::new("", "Namespace") {
        let kinds: Vec<TypeKey> = state.registry.all().filter(|t| t.namespaced).map(|t| t.key()).collect();
        for kind in kinds {
            let names: Vec<String> = state.range(&kind, Some(name), None).map(|((_, n), _)| n.clone()).collect();
            for n in names {
                state.remove(&kind, name, &n);
            }
        }
    } else if !orphan {
        controllers::collect_garbage(state, &key, &target.namespace, &removed);
    }
    controllers::on_deleted(state, &key, &removed);
    Some(removed)
}

/// DELETE on a collection: removes every matching object.
pub(crate) fn delete_collection(
    state: &mut State,
    target: &Target,
    namespace: Option<&str>,
    list_options: &ListOptions,
    options: &DeleteOptions,
) -> ApiResult<(u16, Value)> {
    let list = list(state, target, namespace, list_options)?;
    let names: Vec<(String, String)> = list
        .items
        .iter()
        .map(|i| {
            (
                meta_str(i, "namespace").unwrap_or_default().to_string(),
                meta_str(i, "name").unwrap_or_default().to_string(),
            )
        })
        .collect();
    for (ns, name) in names {
        let t = Target {
            namespace: ns,
            ..target.clone()
        };
        delete(state, &t, &name, options)?;
    }
    Ok((
        200,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
    ))
}
