//! A proxy in front of the real API server, for what the server cannot be made to do on demand:
//! latency (a remote cluster), error answers (429, 500, 503), cut connections, requests that
//! hang, and watches ended with `410 Gone` (as after an etcd compaction). It terminates TLS with
//! the cluster's serving certificate and speaks TLS to the API server, passing each request on
//! as it came, credentials included, so the server still decides everything it answers. It
//! records what it passed on, which is how a test sees what a client sent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Request as HttpRequest, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Body as _, Frame, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;

use crate::faults::{Action, Fault, Faults};
use crate::lock;
use crate::pki::Pki;

type Body = BoxBody<Bytes, hyper::Error>;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Decoded query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The status code answered (0 when the connection was dropped or the request hung).
    pub code: u16,
}

/// What the proxy's connections share.
#[derive(Debug)]
struct Shared {
    upstream: SocketAddr,
    client_tls: Arc<rustls::ClientConfig>,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<Request>>,
    /// Ends every open watch when sent to.
    expire: tokio::sync::broadcast::Sender<()>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and passes requests on to `upstream`.
    pub async fn start(upstream: SocketAddr, pki: &Pki, latency: std::time::Duration) -> Result<FaultProxy, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen for the proxy: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pki.ca_cert.as_bytes()) {
            roots.add(cert.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
        }
        let client_tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut faults = Faults::default();
        if !latency.is_zero() {
            faults.inject(Fault::Latency(latency));
        }
        let shared = Arc::new(Shared {
            upstream,
            client_tls: Arc::new(client_tls),
            faults: Mutex::new(faults),
            requests: Mutex::new(Vec::new()),
            expire: tokio::sync::broadcast::channel(4).0,
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(crate::kubelet::server_tls(pki)?);
        let serving = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (acceptor, shared) = (acceptor.clone(), serving.clone());
                tokio::spawn(async move {
                    let Ok(stream) = acceptor.accept(stream).await else { return };
                    let upstream: Arc<tokio::sync::Mutex<Option<SendRequest<Incoming>>>> = Arc::default();
                    let service = hyper::service::service_fn(move |req| handle(shared.clone(), upstream.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(FaultProxy { addr, shared, task })
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    pub fn inject(&self, fault: Fault) {
        if fault == Fault::ExpireWatches {
            let _ = self.shared.expire.send(());
            return;
        }
        lock(&self.shared.faults).inject(fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }

    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never: Infallible| match never {}).boxed()
}

/// The body of an error answer, as the API server writes one.
fn status_answer(code: u16) -> Response<Body> {
    let reason = match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        422 => "Invalid",
        429 => "TooManyRequests",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "InternalError",
    };
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": format!("injected fault: {code}"), "reason": reason, "code": code,
    });
    let mut answer = Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(http::header::CONTENT_TYPE, "application/json");
    if code == 429 {
        status["details"] = json!({"retryAfterSeconds": 1});
        answer = answer.header(http::header::RETRY_AFTER, "1");
    }
    answer.body(full(status.to_string())).unwrap_or_else(|_| Response::new(full("")))
}

/// Why the proxy dropped a connection (hyper closes it).
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the fault proxy")
    }
}

impl std::error::Error for Dropped {}

fn record(shared: &Shared, req: &HttpRequest<Incoming>, code: u16) {
    lock(&shared.requests).push(Request {
        method: req.method().to_string(),
        path: req.uri().path().to_owned(),
        query: crate::kubelet::query(req.uri().query()),
        code,
    });
}

async fn connect(shared: &Shared) -> Result<SendRequest<Incoming>, String> {
    let tcp = tokio::net::TcpStream::connect(shared.upstream).await.map_err(|e| e.to_string())?;
    let name = ServerName::IpAddress(shared.upstream.ip().into());
    let stream = tokio_rustls::TlsConnector::from(shared.client_tls.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection.with_upgrades());
    Ok(send)
}

async fn handle(
    shared: Arc<Shared>,
    upstream: Arc<tokio::sync::Mutex<Option<SendRequest<Incoming>>>>,
    mut req: HttpRequest<Incoming>,
) -> Result<Response<Body>, Dropped> {
    let latency = lock(&shared.faults).latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let action = lock(&shared.faults).decide(req.method().as_str(), req.uri().path());
    match action {
        Action::Serve => {}
        Action::Status(code) => {
            record(&shared, &req, code);
            return Ok(status_answer(code));
        }
        Action::Reset => {
            record(&shared, &req, 0);
            return Err(Dropped);
        }
        Action::Hang => {
            record(&shared, &req, 0);
            std::future::pending::<()>().await;
            return Err(Dropped);
        }
    }
    let watch = crate::kubelet::query(req.uri().query())
        .iter()
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let upgrade = req.headers().contains_key(http::header::UPGRADE);
    let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
    let answer = if upgrade {
        // An upgraded connection is the request's own.
        let mut send = connect(&shared).await.map_err(|_| Dropped)?;
        let (parts, body) = req.into_parts();
        record_parts(&shared, &parts, 0);
        send.send_request(HttpRequest::from_parts(parts, body)).await
    } else {
        let mut slot = upstream.lock().await;
        let reusable = match slot.as_mut() {
            Some(send) => send.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            *slot = Some(connect(&shared).await.map_err(|_| Dropped)?);
        }
        let send = slot.as_mut().ok_or(Dropped)?;
        let (parts, body) = req.into_parts();
        let answer = send.send_request(HttpRequest::from_parts(parts.clone(), body)).await;
        if let Ok(a) = &answer {
            record_parts(&shared, &parts, a.status().as_u16());
        }
        answer
    };
    let mut answer = answer.map_err(|_| Dropped)?;
    if let Some(downstream) = downstream_upgrade
        && answer.status() == StatusCode::SWITCHING_PROTOCOLS
    {
        let upstream_upgrade = hyper::upgrade::on(&mut answer);
        tokio::spawn(async move {
            if let (Ok(down), Ok(up)) = (downstream.await, upstream_upgrade.await) {
                let _ = tokio::io::copy_bidirectional(&mut TokioIo::new(down), &mut TokioIo::new(up)).await;
            }
        });
    }
    let (parts, body) = answer.into_parts();
    let body = if watch {
        expiring(body, shared.expire.subscribe())
    } else {
        body.boxed()
    };
    Ok(Response::from_parts(parts, body))
}

fn record_parts(shared: &Shared, parts: &http::request::Parts, code: u16) {
    lock(&shared.requests).push(Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: crate::kubelet::query(parts.uri.query()),
        code,
    });
}

/// A watch's body that ends, when told to, with the event the API server sends for a
/// resourceVersion too old to resume from.
fn expiring(body: Incoming, mut expire: tokio::sync::broadcast::Receiver<()>) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(16);
    tokio::spawn(async move {
        let mut body = body;
        loop {
            tokio::select! {
                frame = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)) => {
                    match frame {
                        Some(frame) => if tx.send(frame).await.is_err() { return },
                        None => return,
                    }
                }
                _ = expire.recv() => {
                    let gone = json!({"type": "ERROR", "object": {
                        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                        "message": "too old resource version: 1 (2)", "reason": "Expired", "code": 410,
                    }});
                    let _ = tx.send(Ok(Frame::data(Bytes::from(format!("{gone}\n"))))).await;
                    return;
                }
            }
        }
    });
    let mut rx = rx;
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    StreamBody::new(stream).boxed()
}
