//! The kubelet API, served over TLS with the cluster's serving certificate, as the API server
//! reaches it for `pods/log` and `pods/portforward`: `/containerLogs/{ns}/{pod}/{container}`
//! (`tailLines`, `previous`, `limitBytes`, `follow`) and `/portForward/{ns}/{pod}`
//! (WebSocket, as kube's client asks; SPDY, as kubectl's does), and `/healthz`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::Kubelet;
use super::http::{Body, query, text};
use crate::pki::Pki;

/// The server side of TLS with the cluster's serving certificate.
pub(crate) fn tls_config(pki: &Pki) -> Result<Arc<rustls::ServerConfig>, String> {
    let certs = CertificateDer::pem_slice_iter(pki.serving_cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the serving certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(pki.serving_key.as_bytes()).map_err(|e| format!("the serving key: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("the serving certificate: {e}"))?;
    Ok(Arc::new(config))
}

pub(crate) async fn serve(listener: tokio::net::TcpListener, tls: Arc<rustls::ServerConfig>, kubelet: Arc<Kubelet>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (acceptor, kubelet) = (acceptor.clone(), kubelet.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else { return };
            let service = hyper::service::service_fn(move |req| {
                let kubelet = kubelet.clone();
                async move { Ok::<_, Infallible>(route(&kubelet, req)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

fn route(kubelet: &Arc<Kubelet>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] => text(StatusCode::OK, "ok"),
        ["containerLogs", ns, pod, container] => logs(kubelet, ns, pod, container, req.uri().query()),
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
            let (ns, pod) = (ns.to_string(), pod.to_string());
            if super::spdy::requested(req.headers()) {
                super::spdy::serve(kubelet, req, &ns, &pod)
            } else {
                super::portforward::serve(kubelet, req, &ns, &pod)
            }
        }
        _ => text(StatusCode::NOT_FOUND, format!("404 page not found: {path}")),
    }
}

/// What a container wrote, as `kubectl logs` shows it.
fn logs(kubelet: &Arc<Kubelet>, ns: &str, pod: &str, container: &str, query_string: Option<&str>) -> Response<Body> {
    let q = query(query_string);
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let previous = get("previous") == Some("true");
    let follow = get("follow") == Some("true");
    let Some(file) = kubelet.log_file(ns, pod, container, previous) else {
        let why = if previous {
            format!("previous terminated container \"{container}\" in pod \"{pod}\" not found")
        } else {
            format!("container \"{container}\" in pod \"{pod}\" is waiting to start: ContainerCreating")
        };
        return text(StatusCode::BAD_REQUEST, why);
    };
    let content = std::fs::read(&file).unwrap_or_default();
    let mut shown: Vec<u8> = match get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) => {
            let text = String::from_utf8_lossy(&content);
            let lines: Vec<&str> = text.lines().collect();
            let mut out = lines[lines.len().saturating_sub(n)..].join("\n").into_bytes();
            if !out.is_empty() {
                out.push(b'\n');
            }
            out
        }
        None => content.clone(),
    };
    if let Some(limit) = get("limitBytes").and_then(|n| n.parse::<usize>().ok()) {
        shown.truncate(limit);
    }
    if !follow {
        return text(StatusCode::OK, String::from_utf8_lossy(&shown).into_owned());
    }
    // Follow: what is there, then what is appended, while this run's log is the current one.
    let (kubelet, ns, pod, container) = (kubelet.clone(), ns.to_owned(), pod.to_owned(), container.to_owned());
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(16);
    tokio::spawn(async move {
        if tx.send(Ok(Frame::data(Bytes::from(shown)))).await.is_err() {
            return;
        }
        let mut offset = content.len();
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if kubelet.log_file(&ns, &pod, &container, false).as_ref() != Some(&file) {
                return;
            }
            let now = std::fs::read(&file).unwrap_or_default();
            if now.len() > offset {
                let more = Bytes::copy_from_slice(&now[offset..]);
                offset = now.len();
                if tx.send(Ok(Frame::data(more))).await.is_err() {
                    return;
                }
            }
        }
    });
    let stream = tokio_stream_from(rx);
    Response::builder()
        .status(StatusCode::OK)
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(StreamBody::new(stream).boxed())
        .unwrap_or_else(|_| text(StatusCode::INTERNAL_SERVER_ERROR, "cannot stream the log"))
}

/// A receiver as a stream of body frames.
fn tokio_stream_from<T: Send + 'static>(mut rx: tokio::sync::mpsc::Receiver<T>) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
