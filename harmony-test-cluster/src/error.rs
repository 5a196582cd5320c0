//! Why a control plane did not start, in words that say what to do.

use std::path::PathBuf;
use std::time::Duration;

/// Why [`ControlPlane::start`](crate::ControlPlane::start) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(
        "the control plane is not built: {} is missing\n  help: run `scripts/install-control-plane` \
         (it builds Kubernetes {version} and etcd from Go modules, once), or point \
         `HARMONY_CONTROL_PLANE_BIN` at a directory that holds etcd, kube-apiserver, \
         kube-controller-manager and kube-scheduler",
        path.display()
    )]
    NotBuilt { path: PathBuf, version: String },

    #[error("the test cluster needs `{tool}`, which is not installed\n  help: {help}")]
    MissingTool { tool: String, help: String },

    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot make the cluster's certificates: {0}")]
    Pki(String),

    #[error("{component} exited during start-up ({status}); the end of its log ({}):\n{log_tail}", log.display())]
    Exited {
        component: &'static str,
        status: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error(
        "{component} was not ready after {}s: {why}; the end of its log ({}):\n{log_tail}",
        waited.as_secs(),
        log.display()
    )]
    NotReady {
        component: &'static str,
        waited: Duration,
        why: String,
        log: PathBuf,
        log_tail: String,
    },

    #[error("the thread that starts the control plane's processes is gone")]
    Launcher,

    #[error("the node did not join the cluster: {0}")]
    Node(String),
}

impl StartError {
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> StartError {
        StartError::Io { what: what.into(), source }
    }
}
