//! One connection to a cluster: the client, what the cluster serves (read by
//! `discovery`), and every API request Harmony makes, each retried with a
//! bounded backoff and turned into a [`DeployError`] that says what to do.

use std::future::Future;
use std::time::Duration;

use harmony::capability::DeployError;
use tokio::sync::Mutex;
use tracing::Instrument as _;

use crate::error::Subject;
use crate::redact::Secrets;

/// How many times one request is tried before its error is reported.
const ATTEMPTS: u32 = 6;

/// A connected cluster.
pub struct Cluster {
    pub client: kube::Client,
    /// Where the cluster is, for messages.
    pub target: String,
    /// The namespace of the context, for ApplySet parents.
    pub default_namespace: String,
    request_timeout: Duration,
    /// What the cluster serves, as far as discovery has read it.
    pub(crate) discovered: std::sync::Mutex<Discovered>,
    /// Held while one group version is discovered.
    pub(crate) discovering: Mutex<()>,
    pub secrets: Secrets,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("target", &self.target).finish_non_exhaustive()
    }
}

impl Cluster {
    pub fn new(client: kube::Client, target: String, default_namespace: String, request_timeout: Duration) -> Self {
        Self {
            client,
            target,
            default_namespace,
            request_timeout,
            discovered: std::sync::Mutex::default(),
            discovering: Mutex::new(()),
            secrets: Secrets::default(),
        }
    }

    /// Run one request, retrying what may pass on a second try (429, 5xx, a
    /// dropped connection, a request that took too long) with a bounded
    /// exponential backoff. `verb` and `resource` name it in errors.
    pub async fn call<T, F, Fut>(&self, verb: &str, subject: Subject<'_>, request: F) -> Result<T, DeployError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let span = tracing::debug_span!("request", verb, subject = %subject);
        async {
            let mut delay = Duration::from_millis(100);
            let mut attempt = 1;
            loop {
                let outcome = tokio::time::timeout(self.request_timeout, request()).await;
                let failure = match outcome {
                    Ok(Ok(value)) => return Ok(value),
                    Ok(Err(e)) => Failure::Api(e),
                    Err(_) => Failure::TimedOut,
                };
                if attempt >= ATTEMPTS || !failure.is_transient() {
                    tracing::debug!(attempt, "failed");
                    return Err(failure.into_error(self, verb, subject, attempt));
                }
                let wait = failure.retry_after().unwrap_or_else(|| jittered(delay)).min(Duration::from_secs(5));
                tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, "transient failure, retrying");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(Duration::from_secs(3));
                attempt += 1;
            }
        }
        .instrument(span)
        .await
    }
}

/// Between half of `delay` and all of it, at random: runs that failed together
/// (a server restarting under many clients) do not retry together.
fn jittered(delay: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    delay.mul_f64(fraction)
}

enum Failure {
    Api(kube::Error),
    TimedOut,
}

impl Failure {
    fn is_transient(&self) -> bool {
        match self {
            Self::TimedOut => true,
            Self::Api(kube::Error::Api(status)) => matches!(status.code, 429 | 500 | 502 | 503 | 504),
            Self::Api(e @ (kube::Error::HyperError(_) | kube::Error::Service(_))) => connection_problem(&source_chain(e)).is_none(),
            Self::Api(_) => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api(kube::Error::Api(status)) => status
                .details
                .as_ref()
                .map(|d| d.retry_after_seconds)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(u64::from(s))),
            _ => None,
        }
    }

    fn into_error(self, cluster: &Cluster, verb: &str, subject: Subject<'_>, attempts: u32) -> DeployError {
        let target = cluster.target.clone();
        let tries = if attempts > 1 {
            format!(" (tried {attempts} times)")
        } else {
            String::new()
        };
        match self {
            Self::TimedOut => DeployError::Unreachable {
                target,
                why: format!(
                    "no answer to {verb} {subject} within {} s{tries}",
                    cluster.request_timeout.as_secs_f64()
                ),
            },
            Self::Api(kube::Error::Api(status)) => {
                let message = cluster.secrets.redact(&status.message);
                crate::error::from_status(&status, message, verb, subject, target, &tries)
            }
            Self::Api(other) => {
                let chain = cluster.secrets.redact(&source_chain(&other));
                match connection_problem(&chain) {
                    Some(Connection::Dns) => DeployError::Unconnectable {
                        target,
                        why: format!("its host name does not resolve: {chain}"),
                        help: "check the `server` of the kubeconfig's cluster (`kubectl config view --minify` shows it) \
                               and this machine's DNS, then rerun; nothing was changed"
                            .into(),
                    },
                    Some(Connection::Untrusted) => DeployError::Unconnectable {
                        target,
                        why: format!("its TLS certificate is not trusted: {chain}"),
                        help: "the server's certificate must be signed by the CA the kubeconfig names for its cluster \
                               (`certificate-authority` or `certificate-authority-data`): fix that, or get a fresh \
                               kubeconfig for the cluster; nothing was changed"
                            .into(),
                    },
                    None => DeployError::Unreachable {
                        target,
                        why: format!("{verb} {subject} failed{tries}: {chain}"),
                    },
                }
            }
        }
    }
}

/// A failure to connect that no retry mends.
enum Connection {
    /// The server's host name does not resolve.
    Dns,
    /// The server's certificate is not one the client trusts.
    Untrusted,
}

/// What kind of lasting connection failure an error's causes describe, if any.
fn connection_problem(chain: &str) -> Option<Connection> {
    if chain.contains("dns error") {
        Some(Connection::Dns)
    } else if chain.contains("invalid peer certificate") || chain.contains("certificate verify failed") {
        Some(Connection::Untrusted)
    } else {
        None
    }
}

/// An error with its causes, `a: b: c`.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use harmony::ObjectRef;
    use kube::core::Status;

    #[test]
    fn a_retry_waits_between_half_and_all_of_its_delay_and_not_always_the_same() {
        let delay = Duration::from_millis(800);
        let waits: Vec<Duration> = (0..50).map(|_| super::jittered(delay)).collect();
        assert!(waits.iter().all(|w| *w >= delay / 2 && *w <= delay), "{waits:?}");
        assert!(waits.iter().any(|w| *w != waits[0]), "jittered: {waits:?}");
    }
    use serde_json::json;

    use super::*;

    #[test]
    fn a_server_message_that_quotes_a_secret_value_is_redacted() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
            let cluster = Cluster::new(client, "test".into(), "default".into(), Duration::from_secs(1));
            let secret = harmony::Object::from_value(json!({"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": "shop"}, "stringData": {"password": "pa55-canary"}}))
            .unwrap();
            cluster.secrets.learn(&[secret]);
            let status = Status::failure(
                "Secret \"db\" is invalid: data[password]: Invalid value: \"pa55-canary\"",
                "Invalid",
            )
            .with_code(422);
            let id = ObjectRef {
                api_version: "v1".into(),
                kind: "Secret".into(),
                namespace: Some("shop".into()),
                name: "db".into(),
            };
            let e = Failure::Api(kube::Error::Api(Box::new(status))).into_error(&cluster, "apply", Subject::Object(&id), 1);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("pa55-canary"), "{shown}");
            assert!(shown.contains("Invalid value: \"<redacted>\""), "{shown}");
        });
    }
}

/// A kind the cluster serves: where its objects live and whether they are namespaced.
#[derive(Clone, Debug)]
pub struct Served {
    pub resource: kube::discovery::ApiResource,
    pub namespaced: bool,
}

/// What discovery has said so far.
#[derive(Debug, Default)]
pub struct Discovered {
    /// The kinds of each group version (`v1`, `apps/v1`); empty when it is not served.
    pub(crate) kinds: std::collections::HashMap<String, Vec<Served>>,
    /// The preferred version of each group.
    pub(crate) preferred: std::collections::HashMap<String, String>,
    /// Whether the whole of it was read at once.
    pub(crate) read_whole: bool,
}
