//! The HTTP side: connections, faults and latency, the request log, and routing of API paths
//! to discovery, the verbs, watches, pod logs and the service proxy.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::faults::Action;
use crate::ops::{self, DeleteOptions, ListOptions, Target, WriteOptions};
use crate::resources::TypeKey;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{ApiError, ApiResult};
use crate::store::State;
use crate::{Request, Shared, controllers, discovery, lock, portforward, proxy, util, watch};

pub(crate) type Body = BoxBody<Bytes, Infallible>;

/// Why a connection is dropped on purpose.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by an injected fault")]
pub(crate) struct Reset;

/// The namespaces every cluster starts with.
pub(crate) fn seed(state: &mut State) {
    let key = TypeKey::new("", "Namespace");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let obj = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "uid": util::new_uid(),
                "creationTimestamp": util::now_rfc3339(),
                "labels": {"kubernetes.io/metadata.name": ns},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        });
        state.commit(&key, "", ns, obj);
    }
}

/// Accepts connections until `shutdown` fires; runs the controllers beside.
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: tokio::sync::oneshot::Receiver<()>) {
    tokio::spawn(run_controllers(shared.clone()));
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(shared.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        }
    }
}

async fn run_controllers(shared: Arc<Shared>) {
    loop {
        let next = {
            let mut state = lock(&shared.state);
            controllers::run_due(&mut state, Instant::now())
        };
        match next {
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = shared.wake.notified() => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

/// Decodes `%XX` escapes and `+` in a query component.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

pub(crate) fn json_response(code: u16, value: &impl serde::Serialize) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

pub(crate) fn error_response(err: &ApiError) -> Response<Body> {
    let mut resp = json_response(err.code, &err.to_status());
    if let Some(secs) = err.retry_after
        && let Ok(v) = http::HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn text_response(code: u16, text: String) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(text)).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

fn record(shared: &Shared, method: &Method, path: &str, query: &[(String, String)], code: u16) {
    lock(&shared.requests).push(Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_vec(),
        code,
    });
}

async fn handle(shared: Arc<Shared>, req: http::Request<Incoming>) -> Result<Response<Body>, Reset> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let raw_query = req.uri().query().map(str::to_string);
    let query = parse_query(raw_query.as_deref());
    let latency = shared.latency + lock(&shared.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let action = lock(&shared.faults).decide(method.as_str(), &path);
    match action {
        Action::Serve => {}
        Action::Status(code) => {
            record(&shared, &method, &path, &query, code);
            let err = ApiError::for_code(code, format!("injected fault: {code}"));
            return Ok(error_response(&err));
        }
        Action::Reset => {
            record(&shared, &method, &path, &query, 0);
            return Err(Reset);
        }
        Action::Hang => {
            record(&shared, &method, &path, &query, 0);
            std::future::pending::<()>().await;
            return Err(Reset);
        }
    }
    if let Some((namespace, pod)) = portforward::target(&path) {
        let resp = portforward::serve(&shared, req, &namespace, &pod);
        record(&shared, &method, &path, &query, resp.status().as_u16());
        return Ok(resp);
    }
    let headers = req.headers().clone();
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Reset),
    };
    let resp = match route(&shared, &method, &path, raw_query.as_deref(), &query, &headers, body).await {
        Ok(resp) => resp,
        Err(err) => error_response(&err),
    };
    record(&shared, &method, &path, &query, resp.status().as_u16());
    Ok(resp)
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn dry_run(query: &[(String, String)]) -> ApiResult<bool> {
    let mut dry = false;
    for (k, v) in query {
        if k == "dryRun" {
            if v == "All" {
                dry = true;
            } else {
                return Err(ApiError::bad_request(format!(
                    "Invalid dry run value: {v:?}; the only accepted value is \"All\""
                )));
            }
        }
    }
    Ok(dry)
}

/// The manager of an update: `fieldManager`, else the user agent's program name.
fn manager(query: &[(String, String)], headers: &HeaderMap) -> (String, bool) {
    if let Some(m) = param(query, "fieldManager").filter(|m| !m.is_empty()) {
        return (m.to_string(), true);
    }
    let agent = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let program = agent.split('/').next().unwrap_or_default().trim();
    let name = if program.is_empty() { "unknown" } else { program };
    (name.to_string(), false)
}

fn not_found_path() -> ApiError {
    ApiError::new(404, "NotFound", "the server could not find the requested resource")
}

async fn route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    raw_query: Option<&str>,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response<Body>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let address = shared.addr.to_string();
    let discovery_doc =
        |doc: Option<Value>| -> ApiResult<Response<Body>> { doc.map(|d| json_response(200, &d)).ok_or_else(not_found_path) };
    match segments.as_slice() {
        ["version"] => Ok(json_response(200, &discovery::version())),
        ["healthz" | "readyz" | "livez"] => Ok(text_response(200, "ok".into())),
        ["api"] => Ok(json_response(200, &discovery::api_versions(&address))),
        ["api", "v1"] => {
            let state = lock(&shared.state);
            discovery_doc(discovery::resource_list(&state.registry, "", "v1"))
        }
        ["apis"] => {
            let state = lock(&shared.state);
            Ok(json_response(200, &discovery::api_group_list(&state.registry)))
        }
        ["apis", group] => {
            let state = lock(&shared.state);
            discovery_doc(discovery::api_group(&state.registry, group))
        }
        ["apis", group, version] => {
            let state = lock(&shared.state);
            discovery_doc(discovery::resource_list(&state.registry, group, version))
        }
        ["api", "v1", rest @ ..] => resource(shared, method, "", "v1", rest, path, raw_query, query, headers, body).await,
        ["apis", group, version, rest @ ..] => resource(shared, method, group, version, rest, path, raw_query, query, headers, body).await,
        _ => Err(not_found_path()),
    }
}

/// A parsed resource path.
struct ResourcePath<'a> {
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
    sub: &'a [&'a str],
}

fn parse_resource_path<'a>(group: &str, rest: &'a [&'a str]) -> Option<ResourcePath<'a>> {
    match rest {
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => Some(ResourcePath {
            namespace: None,
            plural: "namespaces",
            name: Some(ns),
            sub: std::slice::from_ref(sub),
        }),
        ["namespaces", ns, plural, tail @ ..] => Some(ResourcePath {
            namespace: Some(ns),
            plural,
            name: tail.first().copied(),
            sub: tail.get(1..).unwrap_or(&[]),
        }),
        [plural, tail @ ..] => Some(ResourcePath {
            namespace: None,
            plural,
            name: tail.first().copied(),
            sub: tail.get(1..).unwrap_or(&[]),
        }),
        [] => None,
    }
}

#[allow(clippy::too_many_arguments)]
async fn resource(
    shared: &Arc<Shared>,
    method: &Method,
    group: &str,
    version: &str,
    rest: &[&str],
    path: &str,
    raw_query: Option<&str>,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: Bytes,
) -> ApiResult<Response<Body>> {
    let (legacy_watch, rest) = match rest {
        ["watch", tail @ ..] => (true, tail),
        _ => (false, rest),
    };
    let rp = parse_resource_path(group, rest).ok_or_else(not_found_path)?;
    let rt = {
        let state = lock(&shared.state);
        state
            .registry
            .by_plural(group, version, rp.plural)
            .cloned()
            .ok_or_else(not_found_path)?
    };
    if rp.namespace.is_some() && !rt.namespaced {
        return Err(not_found_path());
    }
    if rt.namespaced && rp.namespace.is_none() && rp.name.is_some() {
        return Err(not_found_path());
    }
    let subresource = rp.sub.first().copied().unwrap_or_default();
    let target = Target {
        rt: rt.clone(),
        version: version.to_string(),
        namespace: rp.namespace.unwrap_or_default().to_string(),
        subresource: if subresource == "status" { "status".into() } else { String::new() },
    };
    let (manager, explicit) = manager(query, headers);
    let write_options = || -> ApiResult<WriteOptions> {
        Ok(WriteOptions {
            manager: manager.clone(),
            explicit_manager: explicit,
            dry_run: dry_run(query)?,
            force: param(query, "force") == Some("true"),
        })
    };
    let list_options = || -> ApiResult<ListOptions> {
        Ok(ListOptions {
            labels: param(query, "labelSelector").map(LabelSelector::parse).transpose()?,
            fields: param(query, "fieldSelector").map(FieldSelector::parse).transpose()?,
            limit: param(query, "limit").and_then(|l| l.parse().ok()),
            continue_token: param(query, "continue").map(str::to_string),
        })
    };
    let Some(name) = rp.name else {
        // The collection.
        let watching = legacy_watch || matches!(param(query, "watch"), Some("true" | "1"));
        return match *method {
            Method::GET if watching => {
                let options = list_options()?;
                Ok(watch::start(
                    shared.clone(),
                    target,
                    rp.namespace.map(str::to_string),
                    options,
                    watch::WatchParams::from_query(query),
                ))
            }
            Method::GET => {
                let state = lock(&shared.state);
                let list = ops::list(&state, &target, rp.namespace, &list_options()?)?;
                drop(state);
                Ok(json_response(200, &list))
            }
            Method::POST => {
                if rt.namespaced && rp.namespace.is_none() {
                    return Err(not_found_path());
                }
                let options = write_options()?;
                let mut state = lock(&shared.state);
                let (code, obj) = ops::create(&mut state, &target, &body, &options)?;
                drop(state);
                Ok(json_response(code, &obj))
            }
            Method::DELETE => {
                let mut options = DeleteOptions {
                    dry_run: dry_run(query)?,
                    propagation: param(query, "propagationPolicy").map(str::to_string),
                    ..DeleteOptions::default()
                };
                options.read_body(&body)?;
                let list = list_options()?;
                let mut state = lock(&shared.state);
                let (code, obj) = ops::delete_collection(&mut state, &target, rp.namespace, &list, &options)?;
                drop(state);
                Ok(json_response(code, &obj))
            }
            _ => Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource: {method}"
            ))),
        };
    };
    match subresource {
        "" | "status" => {}
        "log" if rt.kind == "Pod" && rt.group.is_empty() => {
            return pod_log(shared, &target, name, query);
        }
        "proxy" if rt.kind == "Service" && rt.group.is_empty() => {
            let tail = proxy_tail(path, name);
            return Ok(proxy::forward(shared, &target.namespace, name, method.clone(), &tail, raw_query, headers, body).await);
        }
        _ => return Err(not_found_path()),
    }
    if subresource == "status" && !rt.status {
        return Err(not_found_path());
    }
    match *method {
        Method::GET => {
            let state = lock(&shared.state);
            let obj = ops::get(&state, &target, name)?;
            drop(state);
            Ok(json_response(200, &obj))
        }
        Method::PUT => {
            let options = write_options()?;
            let mut state = lock(&shared.state);
            let (code, obj) = ops::replace(&mut state, &target, name, &body, &options)?;
            drop(state);
            Ok(json_response(code, &obj))
        }
        Method::PATCH => {
            let options = write_options()?;
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            if options.force && content_type != "application/apply-patch+yaml" {
                return Err(ApiError::bad_request("force may only be set for apply patches"));
            }
            let mut state = lock(&shared.state);
            let (code, obj) = if content_type == "application/apply-patch+yaml" {
                ops::server_side_apply(&mut state, &target, name, &body, &options)?
            } else {
                ops::patch(&mut state, &target, name, &content_type, &body, &options)?
            };
            drop(state);
            Ok(json_response(code, &obj))
        }
        Method::DELETE => {
            let mut options = DeleteOptions {
                dry_run: dry_run(query)?,
                propagation: param(query, "propagationPolicy").map(str::to_string),
                ..DeleteOptions::default()
            };
            options.read_body(&body)?;
            let mut state = lock(&shared.state);
            let (code, obj) = ops::delete(&mut state, &target, name, &options)?;
            drop(state);
            Ok(json_response(code, &obj))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource: {method}"
        ))),
    }
}

/// The path after `…/services/NAME/proxy` (always starting with `/`).
fn proxy_tail(path: &str, name: &str) -> String {
    let marker = format!("/services/{name}/proxy");
    match path.find(&marker) {
        Some(i) => {
            let tail = &path[i + marker.len()..];
            if tail.is_empty() { "/".to_string() } else { tail.to_string() }
        }
        None => "/".to_string(),
    }
}

fn pod_log(shared: &Shared, target: &Target, name: &str, query: &[(String, String)]) -> ApiResult<Response<Body>> {
    let state = lock(&shared.state);
    let pod = ops::get(&state, target, name)?;
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let container = match param(query, "container") {
        Some(c) if containers.iter().any(|n| n == c) => c.to_string(),
        Some(c) => {
            return Err(ApiError::bad_request(format!("container {c} is not valid for pod {name}")));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let previous = param(query, "previous") == Some("true");
    let file = state.kubelet.log_file(&target.namespace, name, &container, previous);
    let lines = state
        .logs
        .get(&(target.namespace.clone(), name.to_string(), container))
        .cloned()
        .unwrap_or_default();
    drop(state);
    // A pod the kubelet runs: its container's real output.
    let lines = match file {
        Some(path) => std::fs::read(&path)
            .map(|b| String::from_utf8_lossy(&b).lines().map(str::to_string).collect())
            .unwrap_or_default(),
        None => lines,
    };
    let tail = param(query, "tailLines")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(usize::MAX);
    let start = lines.len().saturating_sub(tail);
    let mut text = String::new();
    for line in &lines[start..] {
        text.push_str(line);
        text.push('\n');
    }
    Ok(text_response(200, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_strings() {
        let q = parse_query(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x"));
        assert_eq!(
            q,
            [
                ("labelSelector".to_string(), "app=web,tier in (a)".to_string()),
                ("watch".to_string(), "1".to_string()),
                ("x".to_string(), String::new()),
            ]
        );
    }

    #[test]
    fn parses_resource_paths() {
        let p = parse_resource_path("", &["namespaces", "default", "pods", "web", "log"]).expect("path");
        assert_eq!(
            (p.namespace, p.plural, p.name, p.sub),
            (Some("default"), "pods", Some("web"), &["log"][..])
        );
        let p = parse_resource_path("", &["namespaces", "default", "status"]).expect("path");
        assert_eq!((p.namespace, p.plural, p.name), (None, "namespaces", Some("default")));
        let p = parse_resource_path("", &["namespaces", "default"]).expect("path");
        assert_eq!((p.namespace, p.plural, p.name), (None, "namespaces", Some("default")));
        let p = parse_resource_path("", &["configmaps"]).expect("path");
        assert_eq!((p.namespace, p.plural, p.name), (None, "configmaps", None));
    }
}
