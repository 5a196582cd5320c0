//! The control plane itself: the real Kubernetes of the pinned version, with its own CA, RBAC
//! and users; the node registered and leasing; and what happens when it cannot start.

mod common;

use std::time::Duration;

use harmony_test_cluster::{Options, StartError, TestCluster, kubernetes_version};

#[test]
fn it_is_the_real_kubernetes_of_the_pinned_version_with_rbac_and_a_leasing_node() {
    let cluster = TestCluster::start().expect("start");
    let version = common::get(&cluster, "/version").json();
    assert_eq!(version["gitVersion"], kubernetes_version());
    assert_eq!(version["minor"], "33");

    let readyz = common::get(&cluster, "/readyz?verbose");
    assert_eq!(readyz.code, 200);
    assert!(readyz.body.contains("[+]etcd ok"), "{}", readyz.body);

    let node = cluster.object("v1", "Node", None, "harmony-node").expect("the kubelet's node");
    let ready = node["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .cloned()
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("KubeletReady"))
    );
    assert_eq!(node["status"]["nodeInfo"]["kubeletVersion"], kubernetes_version());
    let lease = cluster
        .object("coordination.k8s.io/v1", "Lease", Some("kube-node-lease"), "harmony-node")
        .expect("the node's lease");
    assert_eq!(lease["spec"]["holderIdentity"], "harmony-node");

    // The controller manager runs: every namespace gets its service account and root CA.
    let ns = cluster.namespace().to_owned();
    common::wait_until(
        "the service account controller",
        || cluster.object("v1", "ServiceAccount", Some(&ns), "default"),
        String::new,
    );
    let ca = common::wait_until(
        "the root CA publisher",
        || cluster.object("v1", "ConfigMap", Some(&ns), "kube-root-ca.crt"),
        String::new,
    );
    assert_eq!(ca["data"]["ca.crt"].as_str(), Some(cluster.plane().ca_pem()));

    // RBAC is on: a user nobody granted anything may not even list pods.
    let client = restricted_client(&cluster);
    let refused = cluster.block_on(async move {
        let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "default");
        pods.list(&Default::default()).await.unwrap_err().to_string()
    });
    assert!(refused.contains("forbidden"), "{refused}");
    assert!(refused.contains("harmony-restricted"), "{refused}");
}

fn restricted_client(cluster: &TestCluster) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::from_yaml(&cluster.restricted_kubeconfig()).unwrap();
    cluster.block_on(async move {
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await.unwrap();
        kube::Client::try_from(config).unwrap()
    })
}

#[test]
fn clients_verify_the_servers_certificate() {
    let cluster = TestCluster::start().expect("start");
    // A kubeconfig with another CA: the client refuses the server.
    let other = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let other_ca = other.cert.pem();
    let kubeconfig = harmony_test_cluster::kubeconfig(&cluster.plane().url(), &other_ca, &admin(&cluster), "default");
    let refused = cluster.block_on(async move {
        let Ok(kubeconfig) = kube::config::Kubeconfig::from_yaml(&kubeconfig) else {
            return "the kubeconfig was refused".to_owned();
        };
        let config = match kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        let client = match kube::Client::try_from(config) {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        match client.apiserver_version().await {
            Ok(v) => format!("answered: {v:?}"),
            // The whole chain: TLS says why under the connection's failure.
            Err(e) => std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(": "),
        }
    });
    assert!(!refused.starts_with("answered"), "{refused}");
    assert!(
        refused.to_lowercase().contains("certificate") || refused.contains("UnknownIssuer"),
        "{refused}"
    );
}

/// The administrator as the kubeconfig names it.
fn admin(cluster: &TestCluster) -> harmony_test_cluster::User {
    let kubeconfig = cluster.direct_kubeconfig();
    let token = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("token: "))
        .unwrap()
        .to_owned();
    harmony_test_cluster::User {
        name: "harmony-admin".into(),
        token,
        groups: vec!["system:masters".into()],
    }
}

#[test]
fn a_control_plane_that_is_not_built_says_how_to_build_it() {
    let empty = tempfile::tempdir().unwrap();
    let err = TestCluster::dedicated(Options {
        programs: Some(empty.path().to_owned()),
        ..Options::default()
    })
    .unwrap_err();
    assert!(matches!(err, StartError::NotBuilt { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("scripts/install-control-plane"), "{text}");
    assert!(text.contains(&empty.path().join("etcd").display().to_string()), "{text}");
}

#[test]
fn a_component_that_dies_at_start_up_is_named_with_its_log() {
    // An "etcd" that is not one: it exits at once.
    let dir = tempfile::tempdir().unwrap();
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools");
    for (tool, from) in [
        (
            "kube-apiserver",
            real.join("kubernetes").join(kubernetes_version()).join("kube-apiserver"),
        ),
        (
            "kube-controller-manager",
            real.join("kubernetes").join(kubernetes_version()).join("kube-controller-manager"),
        ),
        (
            "kube-scheduler",
            real.join("kubernetes").join(kubernetes_version()).join("kube-scheduler"),
        ),
    ] {
        std::os::unix::fs::symlink(from, dir.path().join(tool)).unwrap();
    }
    std::os::unix::fs::symlink("/bin/false", dir.path().join("etcd")).unwrap();
    let started = std::time::Instant::now();
    let err = TestCluster::dedicated(Options {
        programs: Some(dir.path().to_owned()),
        ..Options::default()
    })
    .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(30), "it failed fast");
    assert!(matches!(err, StartError::Exited { component: "etcd", .. }), "{err}");
    assert!(err.to_string().contains("etcd exited during start-up"), "{err}");
}
