//! `Workloads::Run`: the kubelet pulls real images from a real registry and runs them; the
//! service proxy reaches the real server; crash loops carry the real exit code and log lines.
//! The image is the static busybox (Debian's `busybox-static`), pushed with skopeo.

mod common;
mod image;
#[allow(dead_code)]
#[path = "../../harmony/tests/support/registry.rs"]
mod registry;

use std::path::Path;
use std::time::{Duration, Instant};

use harmony_test_cluster::{Options, TestCluster, Workloads};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

fn httpd_image(registry: &registry::Registry, tag: &str, healthz: &str) -> String {
    image::push(
        &registry.address,
        "team/web",
        tag,
        healthz,
        &["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
    )
}

fn running_cluster() -> TestCluster {
    let cluster = TestCluster::start_with(Options {
        ready_after: Duration::from_millis(300),
        ..Options::default()
    })
    .expect("start");
    cluster.set_workloads(Workloads::Run);
    cluster
}

fn create(cluster: &TestCluster, path: &str, object: &Value) {
    let answer = common::http(cluster, "POST", path, Some("application/json"), &object.to_string());
    assert_eq!(answer.code, 201, "POST {path}: {}", answer.body);
}

fn namespace(cluster: &TestCluster, name: &str) {
    create(
        cluster,
        "/api/v1/namespaces",
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
    );
}

fn deployment(cluster: &TestCluster, namespace: &str, replicas: i64, container: Value) {
    create(
        cluster,
        &format!("/apis/apps/v1/namespaces/{namespace}/deployments"),
        &json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}},
            },
        }),
    );
}

fn service(cluster: &TestCluster, namespace: &str) {
    create(
        cluster,
        &format!("/api/v1/namespaces/{namespace}/services"),
        &json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }),
    );
}

fn web(image: &str) -> Value {
    json!({"name": "web", "image": image, "ports": [{"name": "http", "containerPort": 8080}]})
}

/// Polls until `check` gives a value, or fails with `what` and the last objects seen.
fn wait_until<T>(what: &str, mut check: impl FnMut() -> Option<T>, seen: impl Fn() -> String) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; seen: {}", seen());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pods(cluster: &TestCluster, namespace: &str) -> Vec<Value> {
    cluster
        .objects("v1", "Pod")
        .into_iter()
        .filter(|p| p["metadata"]["namespace"] == namespace)
        .collect()
}

fn seen_pods(cluster: &TestCluster, namespace: &str) -> impl Fn() -> String {
    move || {
        pods(cluster, namespace)
            .iter()
            .map(|p| p["status"].to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits until the Deployment `web` is ready by the kstatus rules.
fn wait_ready(cluster: &TestCluster, namespace: &str, replicas: i64) -> Value {
    wait_until(
        &format!("deployment {namespace}/web to be ready"),
        || {
            let d = cluster.object("apps/v1", "Deployment", Some(namespace), "web")?;
            let status = &d["status"];
            (status["observedGeneration"] == d["metadata"]["generation"]
                && status["readyReplicas"] == replicas
                && status["availableReplicas"] == replicas
                && status["updatedReplicas"] == replicas)
                .then_some(d)
        },
        seen_pods(cluster, namespace),
    )
}

fn proxy_get(cluster: &TestCluster, namespace: &str, path: &str) -> common::Answer {
    common::http(
        cluster,
        "GET",
        &format!("/api/v1/namespaces/{namespace}/services/web:80/proxy{path}"),
        None,
        "",
    )
}

#[test]
fn a_deployment_runs_its_image_and_the_service_proxy_reaches_the_real_server() {
    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "healthy from busybox\n");
    let cluster = running_cluster();
    service(&cluster, "default");
    // No pod yet: the proxy answers 503 as the real one does.
    let early = proxy_get(&cluster, "default", "/healthz");
    assert_eq!(early.code, 503, "{}", early.body);
    assert!(early.body.contains("no endpoints available for service"), "{}", early.body);

    deployment(&cluster, "default", 2, web(&image));
    let ready = wait_ready(&cluster, "default", 2);
    let conditions = ready["status"]["conditions"].as_array().expect("conditions").clone();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Available" && c["status"] == "True" && c["reason"] == "MinimumReplicasAvailable"),
        "{conditions:?}"
    );
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Progressing" && c["reason"] == "NewReplicaSetAvailable"),
        "{conditions:?}"
    );

    let pods = pods(&cluster, "default");
    assert_eq!(pods.len(), 2);
    let ips: Vec<&str> = pods.iter().map(|p| p["status"]["podIP"].as_str().expect("podIP")).collect();
    assert_ne!(ips[0], ips[1], "each pod has its own network namespace");
    for pod in &pods {
        assert_eq!(pod["status"]["phase"], "Running");
        let container = &pod["status"]["containerStatuses"][0];
        assert_eq!(container["ready"], true);
        assert_eq!(container["restartCount"], 0);
        assert!(container["state"]["running"]["startedAt"].is_string(), "{container}");
        assert!(
            container["imageID"]
                .as_str()
                .is_some_and(|id| id.starts_with(&format!("{}/team/web@sha256:", registry.address))),
            "{container}"
        );
    }

    let answer = proxy_get(&cluster, "default", "/healthz");
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body, "healthy from busybox\n");
    let missing = proxy_get(&cluster, "default", "/nothing-here");
    assert_eq!(missing.code, 404, "the real httpd answers: {}", missing.body);
}

#[test]
fn pods_in_two_namespaces_both_listen_on_8080() {
    let registry = registry::Registry::anonymous();
    let blue = httpd_image(&registry, "blue", "blue\n");
    let green = httpd_image(&registry, "green", "green\n");
    let cluster = running_cluster();
    for (ns, image) in [("blue", &blue), ("green", &green)] {
        namespace(&cluster, ns);
        service(&cluster, ns);
        deployment(&cluster, ns, 1, web(image));
    }
    for ns in ["blue", "green"] {
        wait_ready(&cluster, ns, 1);
        let answer = proxy_get(&cluster, ns, "/healthz");
        assert_eq!((answer.code, answer.body.as_str()), (200, format!("{ns}\n").as_str()));
    }
}

#[test]
fn an_image_that_exits_crash_loops_with_its_exit_code_and_log() {
    let registry = registry::Registry::anonymous();
    let image = image::push(
        &registry.address,
        "team/crash",
        "1",
        "",
        &[
            "/bin/busybox",
            "sh",
            "-c",
            "echo \"starting with $IMAGE_ENV and $GREETING\"; echo 'config missing' >&2; exit 3",
        ],
    );
    let cluster = running_cluster();
    deployment(
        &cluster,
        "default",
        1,
        json!({"name": "app", "image": image, "env": [{"name": "GREETING", "value": "hello"}]}),
    );
    let pod = wait_until(
        "the pod to crash loop",
        || {
            let pod = pods(&cluster, "default").into_iter().next()?;
            let c = &pod["status"]["containerStatuses"][0];
            (c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && c["restartCount"].as_i64() >= Some(1)
                && c["lastState"]["terminated"]["exitCode"] == 3)
                .then_some(pod)
        },
        seen_pods(&cluster, "default"),
    );
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(container["ready"], false);
    assert_eq!(container["lastState"]["terminated"]["reason"], "Error");
    let message = container["state"]["waiting"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("back-off ") && message.contains(&format!("restarting failed container=app pod={name}_default(")),
        "{message}"
    );
    assert_eq!(pod["status"]["phase"], "Running");

    let log = wait_until(
        "the log to hold the printed lines",
        || {
            let answer = common::http(&cluster, "GET", &format!("/api/v1/namespaces/default/pods/{name}/log"), None, "");
            (answer.code == 200 && answer.body.contains("config missing")).then_some(answer.body)
        },
        String::new,
    );
    assert_eq!(log, "starting with from-image and hello\nconfig missing\n");
    let tail = common::http(
        &cluster,
        "GET",
        &format!("/api/v1/namespaces/default/pods/{name}/log?tailLines=1"),
        None,
        "",
    );
    assert!(tail.body == "config missing\n" || tail.body.is_empty(), "{}", tail.body);

    let events = cluster.objects("v1", "Event");
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "BackOff" && e["type"] == "Warning" && e["involvedObject"]["name"] == name.as_str()),
        "{events:?}"
    );
    let d = cluster.object("apps/v1", "Deployment", Some("default"), "web").expect("deployment");
    assert!(d["status"]["readyReplicas"].is_null(), "{}", d["status"]);
}

#[test]
fn a_missing_secret_is_a_config_error_until_it_exists() {
    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "ok\n");
    let cluster = running_cluster();
    let mut container = web(&image);
    container["env"] = json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]);
    deployment(&cluster, "default", 1, container);
    let waiting = wait_until(
        "CreateContainerConfigError",
        || {
            let pod = pods(&cluster, "default").into_iter().next()?;
            let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            (waiting["reason"] == "CreateContainerConfigError").then_some(waiting)
        },
        seen_pods(&cluster, "default"),
    );
    assert_eq!(waiting["message"], "secret \"api\" not found");
    let pod = pods(&cluster, "default").remove(0);
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(
        cluster
            .objects("v1", "Event")
            .iter()
            .any(|e| e["reason"] == "Failed" && e["message"] == "Error: secret \"api\" not found")
    );

    // The kubelet looks again: once the Secret exists, the pod runs.
    create(
        &cluster,
        "/api/v1/namespaces/default/secrets",
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"}, "stringData": {"token": "t0k3n"}}),
    );
    wait_ready(&cluster, "default", 1);
}

#[test]
fn an_image_the_registry_lacks_fails_to_pull_with_the_registrys_reason() {
    let registry = registry::Registry::anonymous();
    httpd_image(&registry, "0.1.0", "ok\n");
    let cluster = running_cluster();
    let image = format!("{}/team/web:9.9.9", registry.address);
    deployment(&cluster, "default", 1, web(&image));
    let waiting = wait_until(
        "a failed pull",
        || {
            let pod = pods(&cluster, "default").into_iter().next()?;
            let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            matches!(waiting["reason"].as_str(), Some("ErrImagePull" | "ImagePullBackOff")).then_some(waiting)
        },
        seen_pods(&cluster, "default"),
    );
    let message = waiting["message"].as_str().expect("message");
    assert!(message.contains(&format!("\"{image}\"")), "{message}");
    assert!(message.contains("not found") && message.contains("MANIFEST_UNKNOWN"), "{message}");
    assert!(cluster.objects("v1", "Event").iter().any(|e| {
        e["reason"] == "Failed"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("Failed to pull image \"{image}\"")))
    }),);
    // Later it backs off, still saying why.
    wait_until(
        "ImagePullBackOff",
        || {
            let pod = pods(&cluster, "default").into_iter().next()?;
            let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
            (waiting["reason"] == "ImagePullBackOff" && waiting["message"].as_str().is_some_and(|m| m.contains("MANIFEST_UNKNOWN")))
                .then_some(())
        },
        seen_pods(&cluster, "default"),
    );
}

/// The pids of processes whose environment holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .expect("/proc")
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
        })
        .collect()
}

#[test]
fn processes_go_with_their_pods_and_the_cluster() {
    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "ok\n");
    let cluster = running_cluster();
    let marker = format!("HARMONY_TEST_MARKER={}", std::process::id());
    let mut container = web(&image);
    container["env"] = json!([{"name": "HARMONY_TEST_MARKER", "value": std::process::id().to_string()}]);
    deployment(&cluster, "default", 2, container.clone());
    wait_ready(&cluster, "default", 2);
    let first = processes_with(&marker);
    assert_eq!(first.len(), 2, "one httpd per pod: {first:?}");
    for pid in &first {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert!(exe.ends_with("rootfs/bin/busybox"), "runs the image's own busybox: {exe:?}");
    }

    // A new generation replaces the pods and their processes.
    container["env"][0]["value"] = json!(format!("{}-2", std::process::id()));
    let answer = common::http(
        &cluster,
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        Some("application/merge-patch+json"),
        &json!({"spec": {"template": {"spec": {"containers": [container]}}}}).to_string(),
    );
    assert_eq!(answer.code, 200, "{}", answer.body);
    wait_until(
        "the old processes to go",
        || first.iter().all(|pid| !Path::new(&format!("/proc/{pid}")).exists()).then_some(()),
        || format!("{first:?}"),
    );
    wait_ready(&cluster, "default", 2);
    let second = processes_with(&format!("{marker}-2"));
    assert_eq!(second.len(), 2, "{second:?}");

    drop(cluster);
    let left: Vec<u32> = second
        .iter()
        .copied()
        .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
        .collect();
    assert!(left.is_empty(), "processes outlived the cluster: {left:?}");
    assert!(processes_with(&format!("{marker}-2")).is_empty());
}
