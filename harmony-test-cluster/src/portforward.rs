//! `pods/NAME/portforward`: the WebSocket port-forward, as kube's client and kubectl speak it
//! (subprotocol `v4.channel.k8s.io`). For the `i`-th port of `?ports=`, channel `2i` carries
//! data and `2i+1` errors; each channel's first frame from the server is the port, little
//! endian. The server connects to the pod's IP at that port, so pods the kubelet really runs
//! answer. A played pod answers through a backend a test registered for a Service that selects
//! it ([`crate::TestCluster::serve_service`]), at that Service port's `targetPort`; otherwise
//! the error channel says that nothing listens.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::controllers::kubelet_runs;
use crate::resources::TypeKey;
use crate::server::{Body, error_response};
use crate::status::ApiError;
use crate::{Shared, lock};

const PROTOCOL: &str = "v4.channel.k8s.io";

/// `["api", "v1", "namespaces", NS, "pods", NAME, "portforward"]`: the namespace and pod.
pub(crate) fn target(path: &str) -> Option<(String, String)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", name, "portforward"] => Some((ns.to_string(), name.to_string())),
        _ => None,
    }
}

/// Upgrades the request and forwards its ports to the pod; errors before the upgrade are
/// answered as the API server answers them.
pub(crate) fn serve(shared: &Arc<Shared>, req: http::Request<Incoming>, namespace: &str, pod: &str) -> Response<Body> {
    let ports = match ports(req.uri().query()) {
        Ok(p) => p,
        Err(why) => return error_response(&ApiError::bad_request(why)),
    };
    let Some(key) = websocket_key(req.headers()) else {
        return error_response(&ApiError::bad_request(
            "the port-forward needs a WebSocket upgrade with subprotocol v4.channel.k8s.io",
        ));
    };
    let backends = lock(&shared.backends).clone();
    let (ip, served) = {
        let state = lock(&shared.state);
        let Some(obj) = state.get(&TypeKey::new("", "Pod"), namespace, pod) else {
            return error_response(&ApiError::not_found("", "pods", pod));
        };
        let phase = obj.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Pending");
        if phase != "Running" {
            return error_response(&ApiError::bad_request(format!(
                "unable to forward port because pod is not running. Current status={phase}"
            )));
        }
        let ip = kubelet_runs(&state, obj.get("spec"))
            .then(|| obj.pointer("/status/podIP").and_then(Value::as_str).map(str::to_string))
            .flatten();
        let served: HashMap<u16, SocketAddr> = backends
            .iter()
            .filter(|((ns, _, _), _)| ns == namespace)
            .filter_map(|((_, service, port), addr)| {
                let service = state.get(&TypeKey::new("", "Service"), namespace, service)?;
                Some((crate::proxy::target_port(&service, &obj, *port)?, *addr))
            })
            .collect();
        (ip, served)
    };
    let uid = format!("{namespace}/{pod}");
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        forward(ws, &ports, ip.as_deref(), &served, &uid).await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, key)
        .header(header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
        .body(Full::new(Bytes::new()).boxed())
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new()).boxed()))
}

/// `?ports=4222&ports=8222` or `?ports=4222,8222`.
fn ports(query: Option<&str>) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for (k, v) in crate::server::parse_query(query) {
        if k != "ports" {
            continue;
        }
        for p in v.split(',').filter(|p| !p.is_empty()) {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => out.push(n),
                _ => return Err(format!("invalid port {p:?}: ports must be between 1 and 65535")),
            }
        }
    }
    if out.is_empty() {
        return Err("at least one port must be specified".into());
    }
    Ok(out)
}

/// The `Sec-WebSocket-Accept` for a WebSocket upgrade offering our subprotocol.
fn websocket_key(headers: &HeaderMap) -> Option<String> {
    let upgrade = headers.get(header::UPGRADE)?.to_str().ok()?;
    let offered = headers.get(header::SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    if !upgrade.eq_ignore_ascii_case("websocket") || !offered.split(',').any(|p| p.trim() == PROTOCOL) {
        return None;
    }
    Some(derive_accept_key(headers.get(header::SEC_WEBSOCKET_KEY)?.as_bytes()))
}

/// Pumps bytes between the WebSocket's channels and one TCP connection per port.
async fn forward<S>(ws: WebSocketStream<S>, ports: &[u16], ip: Option<&str>, served: &HashMap<u16, SocketAddr>, pod: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut source) = ws.split();
    let (to_ws, mut outgoing) = tokio::sync::mpsc::channel::<Message>(64);
    let writer = tokio::spawn(async move {
        while let Some(m) = outgoing.recv().await {
            if sink.send(m).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    let (mut to_pod, mut readers) = (Vec::new(), Vec::new());
    for (i, port) in ports.iter().enumerate() {
        let (data, error) = ((2 * i) as u8, (2 * i + 1) as u8);
        let [lo, hi] = port.to_le_bytes();
        for channel in [data, error] {
            let _ = to_ws.send(Message::binary(vec![channel, lo, hi])).await;
        }
        let stream = match (ip, served.get(port)) {
            (Some(ip), _) => tokio::net::TcpStream::connect((ip, *port)).await.map_err(|e| e.to_string()),
            (None, Some(backend)) => tokio::net::TcpStream::connect(backend).await.map_err(|e| e.to_string()),
            (None, None) => Err("connection refused (the test cluster plays this pod: nothing runs in it)".into()),
        };
        let stream = match stream {
            Ok(s) => s,
            Err(why) => {
                let message =
                    format!("error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside the pod: {why}");
                let mut frame = vec![error];
                frame.extend_from_slice(message.as_bytes());
                let _ = to_ws.send(Message::binary(frame)).await;
                to_pod.push(None);
                continue;
            }
        };
        let (mut read, write) = stream.into_split();
        let to_ws = to_ws.clone();
        readers.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(data);
                        frame.extend_from_slice(&buf[..n]);
                        if to_ws.send(Message::binary(frame)).await.is_err() {
                            break;
                        }
                    }
                }
            }
            // The pod closed its side: so does the tunnel.
            let _ = to_ws.send(Message::Close(None)).await;
        }));
        to_pod.push(Some(write));
    }
    while let Some(Ok(message)) = source.next().await {
        match message {
            Message::Binary(bytes) if !bytes.is_empty() => {
                let channel = usize::from(bytes[0]);
                if channel % 2 == 0
                    && let Some(Some(write)) = to_pod.get_mut(channel / 2)
                    && write.write_all(&bytes[1..]).await.is_err()
                {
                    break;
                }
            }
            Message::Close(_) => break,
            _ => {}
        }
    }
    drop(to_pod);
    for reader in readers {
        reader.abort();
    }
    drop(to_ws);
    let _ = writer.await;
}
