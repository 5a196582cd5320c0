//! Connections to a Service's port through the API server (a port-forward
//! to a ready pod it selects), for smoke tests that speak a protocol other
//! than HTTP. Resolved as `kubectl port-forward svc/NAME PORT` resolves it:
//! the Service's port (number or name), its `targetPort` (a number, or a
//! port name looked up in the pod's containers), one ready pod.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use harmony::capability::DeployError;
use harmony::{ObjectRef, Tunnel};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Api, ListParams};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};

use crate::cluster::Cluster;

/// Opens a connection to `port` of `service`.
pub async fn connect(cluster: &Cluster, service: &ObjectRef, port: &str) -> Result<Box<dyn Tunnel>, DeployError> {
    let namespace = service.namespace.as_deref().unwrap_or("default");
    let what = format!("Service {namespace}/{}", service.name);
    let unreachable = |why: String| DeployError::Unreachable {
        target: cluster.target.clone(),
        why,
    };
    let api_error = |action: &str, e: kube::Error| unreachable(format!("{action}: {}", cluster.secrets.redact(&e.to_string())));
    let not_serving = |why: String, help: String| DeployError::NotServing {
        service: Box::new(service.clone()),
        why,
        help,
    };
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), namespace);
    let svc = services
        .get_opt(&service.name)
        .await
        .map_err(|e| api_error(&format!("reading {what}"), e))?
        .ok_or_else(|| {
            not_serving(
                "it does not exist".into(),
                format!("deploy it before connecting to it (`kubectl get services -n {namespace}` lists what is there)"),
            )
        })?;
    let spec = svc.spec.unwrap_or_default();
    let ports = spec.ports.unwrap_or_default();
    let service_port = ports
        .iter()
        .find(|p| p.name.as_deref() == Some(port) || p.port.to_string() == port)
        .ok_or_else(|| {
            let known: Vec<String> = ports
                .iter()
                .map(|p| p.name.clone().map_or(p.port.to_string(), |n| format!("{n} ({})", p.port)))
                .collect();
            not_serving(
                format!("it has no port `{port}` (it has: {})", known.join(", ")),
                "connect to one of its ports, by number or by name".into(),
            )
        })?;
    let selector = spec.selector.unwrap_or_default();
    if selector.is_empty() {
        return Err(not_serving(
            "it selects no pods (it has no selector)".into(),
            "give the Service a selector that matches its server's pods".into(),
        ));
    }
    let labels: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), namespace);
    let listed = pods
        .list(&ListParams::default().labels(&labels.join(",")))
        .await
        .map_err(|e| api_error(&format!("listing the pods of {what}"), e))?;
    let pod = listed.items.into_iter().find(ready).ok_or_else(|| {
        not_serving(
            format!("no pod it selects ({}) is ready", labels.join(",")),
            format!(
                "look at why: `kubectl describe pods -n {namespace} -l {}` (its events), then the pods' logs",
                labels.join(",")
            ),
        )
    })?;
    let target = match &service_port.target_port {
        None => service_port.port,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(name)) => pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .map(|p| p.container_port)
            .ok_or_else(|| {
                not_serving(
                    format!(
                        "its `targetPort` is `{name}`, and no container of pod {namespace}/{} names such a port",
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ),
                    "name the port in the container's `ports`, or give `targetPort` a number".into(),
                )
            })?,
    };
    let target = u16::try_from(target).map_err(|_| {
        not_serving(
            format!("its target port {target} is out of range"),
            "give `targetPort` a port number from 1 to 65535".into(),
        )
    })?;
    let pod_name = pod.metadata.name.unwrap_or_default();
    let span = tracing::debug_span!("request", verb = "portforward", subject = %format!("Pod {namespace}/{pod_name}"), port = target);
    let mut forwarder = tracing::Instrument::instrument(
        tokio::time::timeout(Duration::from_secs(30), pods.portforward(&pod_name, &[target])),
        span,
    )
    .await
    .map_err(|_| unreachable(format!("no port-forward to pod {namespace}/{pod_name} within 30 s")))?
    .map_err(|e| api_error(&format!("port-forward to pod {namespace}/{pod_name}:{target}"), e))?;
    let stream = forwarder.take_stream(target).ok_or_else(|| {
        unreachable(format!(
            "the port-forward to pod {namespace}/{pod_name} gave no stream for port {target}"
        ))
    })?;
    Ok(Box::new(Forwarded {
        stream,
        _forwarder: forwarder,
    }))
}

/// Running, and its Ready condition True.
fn ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The stream of one forwarded port, and the forwarder that carries it.
struct Forwarded {
    stream: DuplexStream,
    _forwarder: kube::api::Portforwarder,
}

impl AsyncRead for Forwarded {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Forwarded {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
