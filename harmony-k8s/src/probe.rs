//! Asking a deployed service over HTTP through the API server's service
//! proxy (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH`): no
//! port-forward, no route from this machine to the pods needed.

use std::time::Duration;

use harmony::capability::{DeployError, HttpAnswer};
use harmony::release::{Delivery, HttpCheck};
use harmony::{ObjectRef, SmokeError};
use serde_json::Value;
use tokio::time::Instant;

use crate::cluster::Cluster;

/// How long to wait between two questions to a service that is not answering yet.
const RETRY: Duration = Duration::from_millis(500);

/// How long the API server's proxy may still not know a Service that was
/// just created (its cache lags behind the write).
const PROXY_CATCHES_UP: Duration = Duration::from_secs(10);

/// `GET path` from `port` of `service`. Any answer of the service is an
/// answer (a 503 with no endpoints too); only not reaching the API server is
/// an error. The API server's own "this Service does not exist" is asked again
/// for a few seconds: its proxy answers it for a Service created a moment ago.
pub async fn http_get(cluster: &Cluster, service: &ObjectRef, port: &str, path: &str) -> Result<HttpAnswer, DeployError> {
    let deadline = Instant::now() + PROXY_CATCHES_UP;
    loop {
        let (answer, unknown_service) = ask(cluster, service, port, path).await?;
        if !unknown_service || Instant::now() + RETRY >= deadline {
            return Ok(answer);
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One `GET`, and whether its answer is the API server saying it does not
/// know the Service (rather than the service's own answer).
async fn ask(cluster: &Cluster, service: &ObjectRef, port: &str, path: &str) -> Result<(HttpAnswer, bool), DeployError> {
    let namespace = service.namespace.as_deref().unwrap_or("default");
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let uri = format!("/api/v1/namespaces/{namespace}/services/{}:{port}/proxy{path}", service.name);
    let request = http::Request::get(uri).body(Vec::new()).map_err(|e| DeployError::Rejected {
        object: Box::new(service.clone()),
        why: format!("`{path}` cannot be requested: {e}"),
        help: "give the smoke test a path such as `/healthz`".into(),
    })?;
    let span = tracing::debug_span!("request", verb = "proxy get", subject = %service, path = %path);
    let answer = tracing::Instrument::instrument(
        tokio::time::timeout(Duration::from_secs(30), cluster.client.request_text(request)),
        span,
    )
    .await;
    match answer {
        Ok(Ok(body)) => Ok((HttpAnswer { status: 200, body }, false)),
        Ok(Err(kube::Error::Api(status))) => {
            let unknown_service = status.code == 404
                && status
                    .details
                    .as_ref()
                    .is_some_and(|d| d.kind == "services" && d.name == service.name);
            Ok((
                HttpAnswer {
                    status: status.code,
                    body: cluster.secrets.redact(&status.message),
                },
                unknown_service,
            ))
        }
        Ok(Err(e)) => Err(DeployError::Unreachable {
            target: cluster.target.clone(),
            why: format!("GET {path} through Service {namespace}/{}: {e}", service.name),
        }),
        Err(_) => Err(DeployError::Unreachable {
            target: cluster.target.clone(),
            why: format!("no answer to GET {path} through Service {namespace}/{} within 30 s", service.name),
        }),
    }
}

/// The release smoke test `http_get(path)`: ask the Service the delivery
/// brought until it answers 2xx, or the check's time is up.
pub async fn probe(cluster: &Cluster, delivery: &Delivery, check: &HttpCheck) -> Result<(), SmokeError> {
    let what = format!("GET {}", check.path);
    let Some(service) = delivery
        .objects
        .iter()
        .find(|o| o.id().api_version == "v1" && o.id().kind == "Service")
    else {
        return Err(SmokeError::new(what, format!("app `{}` delivers no Service to ask", delivery.app))
            .with_help("render a Service in front of the server, or drop `smoke` to use the default verification"));
    };
    let port = service
        .body()
        .pointer("/spec/ports/0/port")
        .and_then(Value::as_i64)
        .map(|p| p.to_string())
        .unwrap_or_else(|| "80".into());
    let what = format!("GET {} from {}", check.path, service.id());
    let deadline = Instant::now() + check.timeout;
    loop {
        let answer = http_get(cluster, service.id(), &port, &check.path)
            .await
            .map_err(|e| SmokeError::new(what.clone(), e.to_string()))?;
        if answer.is_success() {
            return Ok(());
        }
        if Instant::now() + RETRY >= deadline {
            let body: String = answer.body.chars().take(200).collect();
            return Err(SmokeError::new(
                what,
                format!(
                    "no 2xx answer within {} s; the last was {}: {body}",
                    check.timeout.as_secs(),
                    answer.status
                ),
            )
            .with_help("the pods are ready but the service does not answer as it should: look at the server's log for that request"));
        }
        tokio::time::sleep(RETRY).await;
    }
}
