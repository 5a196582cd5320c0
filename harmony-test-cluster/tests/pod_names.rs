//! A StatefulSet's pods find each other by name, as a cluster's DNS lets them for a headless
//! Service's pods: the kubelet keeps the `/etc/hosts` of each container it runs naming the pods
//! of its namespace (`<pod>.<service>.<namespace>.svc.cluster.local`, `….svc`,
//! `<pod>.<service>`), and only the pods that are there. The containers are held static
//! programs run for real: busybox (Debian's `busybox-static`), which dials its peers by name,
//! and nats-server (`scripts/install-nats-server`), whose servers route to each other by name.
//! Needs root.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::{apply, get, request, seen_pods, wait_until};
use harmony_test_cluster::{Options, TestCluster};
use serde_json::{Value, json};

fn cluster() -> TestCluster {
    TestCluster::start_with(Options {
        ready_after: Duration::from_millis(100),
        ..Options::default()
    })
    .expect("start")
}

/// A headless Service `name` over the pods labelled `app: name`.
fn headless_service(cluster: &TestCluster, ns: &str, name: &str, port: u16) {
    apply(
        cluster,
        &format!("/api/v1/namespaces/{ns}/services/{name}"),
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"clusterIP": "None", "selector": {"app": name}, "ports": [{"name": "peer", "port": port}]},
        }),
    );
}

/// A StatefulSet `name` of `replicas` pods of `container`, its `serviceName` the headless
/// Service of the same name, its pods started all at once.
fn statefulset(cluster: &TestCluster, ns: &str, name: &str, replicas: u32, spec: Value) {
    apply(
        cluster,
        &format!("/apis/apps/v1/namespaces/{ns}/statefulsets/{name}"),
        &json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "replicas": replicas,
                "serviceName": name,
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}}, "spec": spec},
            },
        }),
    );
}

fn pod(cluster: &TestCluster, ns: &str, name: &str) -> Option<Value> {
    cluster.object("v1", "Pod", Some(ns), name)
}

/// Every container of the pod is ready.
fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .is_some_and(|c| c.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

fn uid(pod: &Value) -> String {
    pod["metadata"]["uid"].as_str().expect("uid").to_owned()
}

/// The pod `name` once it runs and is ready (and is not the pod whose uid is `not`).
fn running(cluster: &TestCluster, ns: &str, name: &str, not: Option<&str>) -> Value {
    wait_until(
        &format!("{ns}/{name} to run"),
        || pod(cluster, ns, name).filter(|p| ready(p) && not.is_none_or(|n| uid(p) != n)),
        seen_pods(cluster, ns),
    )
}

/// The log of the pod's `container` (empty until it has one).
fn log(cluster: &TestCluster, ns: &str, pod: &str, container: &str) -> String {
    let answer = get(cluster, &format!("/api/v1/namespaces/{ns}/pods/{pod}/log?container={container}"));
    if answer.code == 200 { answer.body } else { String::new() }
}

/// The held busybox. Each pod answers on 7000 with its name and uid (container `answer`), and
/// dials every pod of the StatefulSet `peer` by its two names, over and over, logging
/// `<name>: <answer>`, or nc's error: `bad address` for a name that does not resolve
/// (container `dial`). Each container's main process is the one the kubelet kills; what
/// `dial` starts ends within a second on its own.
const BUSYBOX: &str = "harmony.test/busybox:pod-names";
const DIAL: &str = "while true; do
  for p in peer-0 peer-1 peer-2; do
    for name in $p.peer.$NAMESPACE.svc.cluster.local $p.peer; do
      echo \"$name: $(/busybox nc -w 1 $name 7000 </dev/null 2>&1)\"
    done
  done
  /busybox sleep 0.2
done";

fn busybox_peers() -> Value {
    let field = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    json!({"containers": [
        {
            "name": "answer",
            "image": BUSYBOX,
            "command": ["/busybox", "nc", "-ll", "-p", "7000", "-e", "/busybox", "echo", "$(POD_NAME) $(POD_UID)"],
            "env": [field("POD_NAME", "metadata.name"), field("POD_UID", "metadata.uid")],
        },
        {
            "name": "dial",
            "image": BUSYBOX,
            "command": ["/busybox", "sh", "-c", DIAL],
            "env": [field("NAMESPACE", "metadata.namespace")],
        },
    ]})
}

/// Waits until `from`'s log says it reached `to` (the pod whose uid is `to_uid`) by both its
/// names: the full one and `<pod>.<service>`.
fn reaches(cluster: &TestCluster, ns: &str, from: &str, to: &str, to_uid: &str) {
    let answer = format!("{to} {to_uid}");
    let lines = [
        format!("{to}.peer.{ns}.svc.cluster.local: {answer}"),
        format!("{to}.peer: {answer}"),
    ];
    wait_until(
        &format!("{from} to reach {to} ({to_uid}) by name"),
        || {
            let log = log(cluster, ns, from, "dial");
            lines.iter().all(|l| log.lines().any(|line| line == l)).then_some(())
        },
        || log(cluster, ns, from, "dial"),
    );
}

/// The last thing `from`'s log says about `to`'s full name.
fn last_said_about(log: &str, ns: &str, to: &str) -> Option<String> {
    let prefix = format!("{to}.peer.{ns}.svc.cluster.local: ");
    log.lines().filter_map(|l| l.strip_prefix(&prefix)).next_back().map(str::to_owned)
}

#[test]
fn a_statefulsets_pods_reach_each_other_by_name_and_only_the_pods_that_are_there() {
    let cluster = cluster();
    cluster.hold_image(BUSYBOX, "/bin/busybox");
    let ns = cluster.namespace().to_owned();
    headless_service(&cluster, &ns, "peer", 7000);
    statefulset(&cluster, &ns, "peer", 3, busybox_peers());
    let names = ["peer-0", "peer-1", "peer-2"];
    let pods: Vec<Value> = names.iter().map(|n| running(&cluster, &ns, n, None)).collect();
    let ips: BTreeSet<&str> = pods.iter().map(|p| p["status"]["podIP"].as_str().expect("podIP")).collect();
    assert_eq!(ips.len(), 3, "each pod has its own address: {ips:?}");
    for from in names {
        for (to, pod) in names.iter().zip(&pods) {
            reaches(&cluster, &ns, from, to, &uid(pod));
        }
    }

    // peer-1 is replaced: the pod the StatefulSet makes in its place has another address, and
    // every pod finds it under the same names (and it finds them).
    let answer = request(&cluster, "DELETE", &format!("/api/v1/namespaces/{ns}/pods/peer-1"), None, "");
    assert_eq!(answer.code, 200, "{}", answer.body);
    let old = &pods[1];
    let new = running(&cluster, &ns, "peer-1", Some(&uid(old)));
    assert_ne!(
        new["status"]["podIP"], old["status"]["podIP"],
        "the replacement's address is another one"
    );
    for from in names {
        reaches(&cluster, &ns, from, "peer-1", &uid(&new));
    }
    reaches(&cluster, &ns, "peer-1", "peer-0", &uid(&pods[0]));
    reaches(&cluster, &ns, "peer-1", "peer-2", &uid(&pods[2]));

    // Down to two pods: peer-2 is gone, and its name no longer resolves (as DNS would no
    // longer answer for it), rather than leading to the address it had.
    let answer = request(
        &cluster,
        "PATCH",
        &format!("/apis/apps/v1/namespaces/{ns}/statefulsets/peer"),
        Some("application/merge-patch+json"),
        &json!({"spec": {"replicas": 2}}).to_string(),
    );
    assert_eq!(answer.code, 200, "{}", answer.body);
    wait_until(
        "peer-2 to be gone",
        || pod(&cluster, &ns, "peer-2").is_none().then_some(()),
        seen_pods(&cluster, &ns),
    );
    for from in ["peer-0", "peer-1"] {
        let bad_address = format!("nc: bad address 'peer-2.peer.{ns}.svc.cluster.local'");
        wait_until(
            &format!("{from} to no longer resolve peer-2"),
            || (last_said_about(&log(&cluster, &ns, from, "dial"), &ns, "peer-2")? == bad_address).then_some(()),
            || log(&cluster, &ns, from, "dial"),
        );
    }
    let still = log(&cluster, &ns, "peer-0", "dial");
    assert_eq!(
        last_said_about(&still, &ns, "peer-1"),
        Some(format!("peer-1 {}", uid(&new))),
        "the pods that are there are still named"
    );
}

/// The held nats-server, from `scripts/install-nats-server`.
const NATS: &str = "harmony.test/nats-server:pod-names";

fn nats_server() -> std::path::PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/nats-server/nats-server");
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-nats-server (scripts/test does)",
        path.display()
    );
    path
}

/// What a server of the StatefulSet `fleet-nats` says of itself and of its routes, from its
/// monitoring port through the API server's pod proxy: its id, and the ids of the servers it
/// has a route to, with their names.
fn routez(cluster: &TestCluster, ns: &str, pod: &str) -> Option<(String, BTreeSet<(String, String)>)> {
    let answer = get(cluster, &format!("/api/v1/namespaces/{ns}/pods/{pod}:8222/proxy/routez"));
    if answer.code != 200 {
        return None;
    }
    let routez = answer.json();
    let routes = routez["routes"]
        .as_array()?
        .iter()
        .filter_map(|r| Some((r["remote_id"].as_str()?.to_owned(), r["remote_name"].as_str()?.to_owned())))
        .collect();
    Some((routez["server_id"].as_str()?.to_owned(), routes))
}

/// Waits until each server routes to exactly the others that run; their ids.
fn meshed(cluster: &TestCluster, ns: &str, names: &[&str]) -> Vec<String> {
    let ids: Vec<String> = names
        .iter()
        .map(|pod| {
            wait_until(
                &format!("{pod}'s monitoring port"),
                || routez(cluster, ns, pod).map(|(id, _)| id),
                String::new,
            )
        })
        .collect();
    for (pod, id) in names.iter().zip(&ids) {
        let others: BTreeSet<(String, String)> = ids
            .iter()
            .zip(names)
            .filter(|(other, _)| *other != id)
            .map(|(other, name)| (other.clone(), name.to_string()))
            .collect();
        wait_until(
            &format!("{pod} to route to {others:?}"),
            || routez(cluster, ns, pod).filter(|(_, routes)| *routes == others),
            || format!("{:?}\n{}", routez(cluster, ns, pod), log(cluster, ns, pod, "nats")),
        );
    }
    ids
}

/// Three real nats-servers, each naming its peers in its `routes` by
/// `fleet-nats-N.fleet-nats.<namespace>.svc.cluster.local` (Go's own resolver, which reads
/// `/etc/hosts`), form a cluster; a server replaced at another address is in it again.
#[test]
fn nats_servers_route_to_each_other_by_their_pods_names() {
    let cluster = cluster();
    cluster.hold_image(NATS, nats_server());
    let ns = cluster.namespace().to_owned();
    let names = ["fleet-nats-0", "fleet-nats-1", "fleet-nats-2"];
    let routes: Vec<String> = names
        .iter()
        .map(|n| format!("nats://{n}.fleet-nats.{ns}.svc.cluster.local:6222"))
        .collect();
    let config = format!(
        "port: 4222\nhttp_port: 8222\nserver_name: $POD_NAME\ncluster {{\n  name: fleet\n  listen: 0.0.0.0:6222\n  routes: [\n    {}\n  ]\n}}\n",
        routes.join("\n    ")
    );
    apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/configmaps/fleet-nats"),
        &json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "fleet-nats", "namespace": ns},
            "data": {"nats.conf": config},
        }),
    );
    headless_service(&cluster, &ns, "fleet-nats", 6222);
    statefulset(
        &cluster,
        &ns,
        "fleet-nats",
        3,
        json!({
            "containers": [{
                "name": "nats",
                "image": NATS,
                "args": ["-c", "/etc/nats/nats.conf"],
                "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                "volumeMounts": [{"name": "config", "mountPath": "/etc/nats"}],
            }],
            "volumes": [{"name": "config", "configMap": {"name": "fleet-nats"}}],
        }),
    );
    let pods: Vec<Value> = names.iter().map(|n| running(&cluster, &ns, n, None)).collect();
    let ids = meshed(&cluster, &ns, &names);

    let answer = request(&cluster, "DELETE", &format!("/api/v1/namespaces/{ns}/pods/fleet-nats-1"), None, "");
    assert_eq!(answer.code, 200, "{}", answer.body);
    let new = running(&cluster, &ns, "fleet-nats-1", Some(&uid(&pods[1])));
    assert_ne!(new["status"]["podIP"], pods[1]["status"]["podIP"]);
    let again = meshed(&cluster, &ns, &names);
    assert_ne!(again[1], ids[1], "fleet-nats-1 is a new server");
    assert_eq!((&again[0], &again[2]), (&ids[0], &ids[2]), "the others kept running");
}
