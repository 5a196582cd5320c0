//! WATCH: newline-delimited JSON events over a chunked response, from a resourceVersion or
//! starting with synthetic ADDED events, with bookmarks, timeouts, selectors and 410 expiry.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::BodyExt;
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::ops::{ListOptions, Target};
use crate::server::Body;
use crate::status::ApiError;
use crate::{Shared, lock};

/// How often bookmarks are sent when asked for.
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

/// A response body fed from a channel, one chunk per message.
#[derive(Debug)]
struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|chunk| chunk.map(|b| Ok(Frame::data(b))))
    }
}

/// The watch query parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct WatchParams {
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
}

impl WatchParams {
    pub fn from_query(query: &[(String, String)]) -> WatchParams {
        let get = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        WatchParams {
            resource_version: get("resourceVersion"),
            bookmarks: get("allowWatchBookmarks").is_some_and(|v| v == "true" || v == "1"),
            timeout: get("timeoutSeconds")
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|s| *s > 0)
                .map(Duration::from_secs),
        }
    }
}

/// Starts streaming a watch; the events flow from a task of their own.
pub(crate) fn start(
    shared: Arc<Shared>,
    target: Target,
    namespace: Option<String>,
    selectors: ListOptions,
    params: WatchParams,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel(256);
    tokio::spawn(run(shared, target, namespace, selectors, params, tx));
    Response::builder()
        .status(200)
        .header(header::CONTENT_TYPE, "application/json")
        .body(ChannelBody { rx }.boxed())
        .unwrap_or_else(|_| Response::new(ChannelBody { rx: mpsc::channel(1).1 }.boxed()))
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn expired(rv: u64, oldest: u64) -> Bytes {
    let err = ApiError::gone(format!("too old resource version: {rv} ({oldest})"));
    line("ERROR", &err.to_status())
}

async fn run(
    shared: Arc<Shared>,
    target: Target,
    namespace: Option<String>,
    selectors: ListOptions,
    params: WatchParams,
    tx: mpsc::Sender<Bytes>,
) {
    let key = target.rt.key();
    let api_version = target.rt.api_version(&target.version);
    let matches =
        |obj: &Value| selectors.labels.as_ref().is_none_or(|s| s.matches(obj)) && selectors.fields.as_ref().is_none_or(|s| s.matches(obj));
    let serve = |obj: &Value| -> Value {
        let mut out = obj.clone();
        if let Some(map) = out.as_object_mut() {
            map.insert("apiVersion".into(), json!(api_version));
        }
        out
    };
    let requested = params.resource_version.as_deref().filter(|rv| !rv.is_empty() && *rv != "0");
    let opened: Result<_, Bytes> = {
        let state = lock(&shared.state);
        let changes = state.subscribe();
        match requested {
            None => {
                let initial: Vec<Value> = state
                    .range(&key, namespace.as_deref(), None)
                    .filter(|(_, obj)| matches(obj))
                    .map(|(_, obj)| serve(obj))
                    .collect();
                Ok((changes, state.rv, state.expire_epoch, initial))
            }
            Some(rv) => match rv.parse::<u64>() {
                Err(_) => {
                    let err = ApiError::bad_request(format!("invalid resource version: {rv}"));
                    Err(line("ERROR", &err.to_status()))
                }
                Ok(rv) if rv < state.compacted_rv => Err(expired(rv, state.compacted_rv + 1)),
                Ok(rv) => Ok((changes, rv, state.expire_epoch, Vec::new())),
            },
        }
    };
    let (mut changes, mut from, epoch, initial) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            let _ = tx.send(error).await;
            return;
        }
    };
    for obj in &initial {
        if tx.send(line("ADDED", obj)).await.is_err() {
            return;
        }
    }
    let bookmark = |rv: u64| {
        line(
            "BOOKMARK",
            &json!({"kind": target.rt.kind, "apiVersion": api_version, "metadata": {"resourceVersion": rv.to_string()}}),
        )
    };
    let deadline = params.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut ticker = tokio::time::interval(BOOKMARK_EVERY);
    ticker.tick().await;
    let mut first_bookmark = params.bookmarks;
    loop {
        let batch = {
            let state = lock(&shared.state);
            if state.expire_epoch != epoch {
                Err(state.compacted_rv)
            } else {
                match state.events_after(from, &key, namespace.as_deref()) {
                    Some(events) => Ok((events, state.rv)),
                    None => Err(state.compacted_rv),
                }
            }
        };
        match batch {
            Err(oldest) => {
                let _ = tx.send(expired(from, oldest + 1)).await;
                return;
            }
            Ok((events, now)) => {
                for e in events {
                    if !matches(&e.object) {
                        continue;
                    }
                    if tx.send(line(e.kind.as_str(), &serve(&e.object))).await.is_err() {
                        return;
                    }
                }
                from = from.max(now);
            }
        }
        if first_bookmark {
            first_bookmark = false;
            if tx.send(bookmark(from)).await.is_err() {
                return;
            }
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = ticker.tick(), if params.bookmarks => {
                if tx.send(bookmark(from)).await.is_err() {
                    return;
                }
            }
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => return,
            _ = tx.closed() => return,
        }
    }
}
