//! `/portForward/{ns}/{pod}`: the kubelet's side of a port-forward, over a WebSocket (subprotocol
//! `v4.channel.k8s.io`), as the API server hands kube's client and kubectl's connections on.
//! For the `i`-th port of `?ports=`, channel `2i` carries data and `2i+1` errors; each channel's
//! first frame is the port, little endian. The kubelet connects to the pod's IP at that port, so
//! pods that run for real answer; for a played one, the error channel says nothing runs there.

use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{HeaderMap, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::Kubelet;
use super::http::{Body, text};

const PROTOCOL: &str = "v4.channel.k8s.io";

/// Upgrades the request and forwards its ports to the pod.
pub(crate) fn serve(kubelet: &Arc<Kubelet>, req: http::Request<Incoming>, namespace: &str, pod: &str) -> Response<Body> {
    let ports = match ports(req.uri().query()) {
        Ok(p) => p,
        Err(why) => return text(StatusCode::BAD_REQUEST, why),
    };
    let Some(key) = websocket_key(req.headers()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "the port-forward needs a WebSocket upgrade with subprotocol v4.channel.k8s.io",
        );
    };
    let targets: Vec<Result<std::net::SocketAddr, String>> = ports.iter().map(|port| kubelet.port_target(namespace, pod, *port)).collect();
    let uid = format!("{namespace}/{pod}");
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else { return };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        forward(ws, &ports, targets, &uid).await;
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
    for (k, v) in super::http::query(query) {
        // The API server passes `?ports=` on as `?port=`, one a port.
        if k != "ports" && k != "port" {
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
async fn forward<S>(ws: WebSocketStream<S>, ports: &[u16], targets: Vec<Result<std::net::SocketAddr, String>>, pod: &str)
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
        let stream = match &targets[i] {
            Ok(addr) => tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
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
