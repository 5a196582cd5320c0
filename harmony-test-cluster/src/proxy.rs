//! The service proxy: `/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH`
//! forwards to the backend a test registered with `TestCluster::serve_service`, or to a ready
//! pod the Service selects that the kubelet really runs, at its `targetPort`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, header};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

use crate::resources::TypeKey;
use crate::server::{Body, error_response};
use crate::status::ApiError;
use crate::store::State;
use crate::{Shared, lock};

/// Splits `NAME`, `NAME:PORT` or `SCHEME:NAME:PORT`.
fn parse_name(spec: &str) -> (&str, Option<&str>) {
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [name] => (name, None),
        [name, port] => (name, Some(*port).filter(|p| !p.is_empty())),
        [_, name, port, ..] => (name, Some(*port).filter(|p| !p.is_empty())),
        [] => (spec, None),
    }
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn forward(
    shared: &Arc<Shared>,
    namespace: &str,
    spec: &str,
    method: Method,
    tail: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let (name, port) = parse_name(spec);
    let service = {
        let state = lock(&shared.state);
        state.get(&TypeKey::new("", "Service"), namespace, name)
    };
    let Some(service) = service else {
        return error_response(&ApiError::not_found("", "services", name));
    };
    let ports: Vec<&Value> = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let port: Option<u16> = match port {
        Some(p) => match p.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => ports
                .iter()
                .find(|sp| sp.get("name").and_then(Value::as_str) == Some(p))
                .and_then(|sp| sp.get("port").and_then(Value::as_u64))
                .and_then(|n| u16::try_from(n).ok()),
        },
        None => None,
    };
    let backend = {
        let backends = lock(&shared.backends);
        match port {
            Some(p) => backends.get(&(namespace.to_string(), name.to_string(), p)).copied(),
            None => backends
                .iter()
                .find(|((ns, svc, _), _)| ns == namespace && svc == name)
                .map(|(_, addr)| *addr),
        }
    };
    let backend = backend.or_else(|| {
        let state = lock(&shared.state);
        pod_endpoint(&state, namespace, &service, port)
    });
    let Some(backend) = backend else {
        return error_response(&ApiError::service_unavailable(format!(
            "no endpoints available for service \"{name}\""
        )));
    };
    match send(backend, method, tail, raw_query, headers, body).await {
        Ok(resp) => resp,
        Err(message) => error_response(&ApiError::service_unavailable(format!("error trying to reach service: {message}"))),
    }
}

/// A ready pod the Service selects that the kubelet runs, at the `targetPort` of its port
/// `port` (or its first).
fn pod_endpoint(state: &State, namespace: &str, service: &Value, port: Option<u16>) -> Option<std::net::SocketAddr> {
    let port = match port {
        Some(p) => p,
        None => u16::try_from(service.pointer("/spec/ports/0/port")?.as_u64()?).ok()?,
    };
    state
        .range(&TypeKey::new("", "Pod"), Some(namespace), None)
        .map(|(_, pod)| pod)
        .filter(|pod| crate::controllers::kubelet_runs(state, pod.get("spec")))
        .filter(|pod| {
            pod.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
        })
        .find_map(|pod| {
            let ip: std::net::IpAddr = pod.pointer("/status/podIP")?.as_str()?.parse().ok()?;
            Some(std::net::SocketAddr::new(ip, target_port(service, pod, port)?))
        })
}

/// The pod's port behind the Service's port `port`, when the Service selects the pod: its
/// `targetPort`, a number or a name the pod's containers give a port (default: `port`).
pub(crate) fn target_port(service: &Value, pod: &Value, port: u16) -> Option<u16> {
    let selector = service.pointer("/spec/selector").and_then(Value::as_object)?;
    let selected = !selector.is_empty()
        && selector
            .iter()
            .all(|(k, v)| pod.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v));
    if !selected {
        return None;
    }
    let service_port = service
        .pointer("/spec/ports")
        .and_then(Value::as_array)?
        .iter()
        .find(|sp| sp.get("port").and_then(Value::as_u64) == Some(u64::from(port)))?;
    let target = match service_port.get("targetPort") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(name)) => match name.parse::<u64>() {
            Ok(n) => Some(n),
            Err(_) => pod
                .pointer("/spec/containers")
                .and_then(Value::as_array)?
                .iter()
                .flat_map(|c| c.get("ports").and_then(Value::as_array).into_iter().flatten())
                .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
                .and_then(|p| p.get("containerPort").and_then(Value::as_u64)),
        },
        _ => Some(u64::from(port)),
    };
    u16::try_from(target?).ok()
}

async fn send(
    backend: std::net::SocketAddr,
    method: Method,
    tail: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response<Body>, String> {
    let stream = tokio::net::TcpStream::connect(backend).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let uri = match raw_query {
        Some(q) if !q.is_empty() => format!("{tail}?{q}"),
        _ => tail.to_string(),
    };
    let mut builder = http::Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, backend.to_string());
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = headers.get(&name) {
            builder = builder.header(name, v.clone());
        }
    }
    let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
    let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    let mut out = Response::builder().status(status);
    if let Some(ct) = content_type {
        out = out.header(header::CONTENT_TYPE, ct);
    }
    out.body(Full::new(bytes).boxed()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_names() {
        assert_eq!(parse_name("web"), ("web", None));
        assert_eq!(parse_name("web:80"), ("web", Some("80")));
        assert_eq!(parse_name("http:web:8080"), ("web", Some("8080")));
        assert_eq!(parse_name("https:web:"), ("web", None));
    }
}
