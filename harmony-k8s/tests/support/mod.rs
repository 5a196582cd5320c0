//! A test cluster of its own for each test, and a `k8s` topology pointed at it.

use std::time::Duration;

use harmony_k8s::K8s;
use harmony_k8s::settings::Settings;
use harmony_test_cluster::{Options, TestCluster};

pub struct Fixture {
    pub cluster: TestCluster,
    _dir: tempfile::TempDir,
    pub topology: K8s,
}

/// A cluster started with `options`; readiness waited for up to 20 s, each
/// request up to `request_timeout`.
pub fn fixture_with(options: Options, request_timeout: Duration) -> Fixture {
    let cluster = TestCluster::start_with(options).expect("the test cluster starts");
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let mut settings = Settings::for_kubeconfig(&kubeconfig, &dir.path().join("state")).unwrap();
    settings.timeout = Duration::from_secs(20);
    settings.request_timeout = request_timeout;
    Fixture {
        cluster,
        _dir: dir,
        topology: K8s::new(settings),
    }
}

/// One runtime for a topology's whole life: its client lives on it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}
