//! `Workloads::Run`: the kubelet, the real control plane's node, pulls real images from a real
//! registry and runs them; the API server's service proxy and port-forwards reach the real
//! server through the kubelet; crash loops carry the real exit code and log lines, which
//! `pods/log` serves. The image is the static busybox (Debian's `busybox-static`), pushed with
//! skopeo. Needs root.

mod common;
mod image;
#[allow(dead_code)]
#[path = "../../harmony/tests/support/registry.rs"]
mod registry;

use std::path::Path;
use std::time::Duration;

use common::{deployment, namespace, pods, seen_pods, wait_ready, wait_until};
use harmony_test_cluster::{Options, TestCluster, Workloads};
use serde_json::{Value, json};

fn httpd_image(registry: &registry::Registry, tag: &str, healthz: &str) -> String {
    image::push(
        &registry.address,
        "team/web",
        tag,
        healthz,
        &["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"],
    )
}

/// A handle on the shared control plane whose namespaces' pods run for real.
fn running_cluster() -> TestCluster {
    let cluster = TestCluster::start_with(Options {
        ready_after: Duration::from_millis(300),
        ..Options::default()
    })
    .expect("start");
    cluster.set_workloads(Workloads::Run);
    cluster
}

fn service(cluster: &TestCluster, namespace: &str) {
    common::apply(
        cluster,
        &format!("/api/v1/namespaces/{namespace}/services/web"),
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

/// GET through the API server's service proxy to the Service `web`.
fn proxy_get(cluster: &TestCluster, namespace: &str, path: &str) -> common::Answer {
    common::get(cluster, &format!("/api/v1/namespaces/{namespace}/services/web:80/proxy{path}"))
}

#[test]
fn a_deployment_runs_its_image_and_the_service_proxy_reaches_the_real_server() {
    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "healthy from busybox\n");
    let cluster = running_cluster();
    let ns = cluster.namespace().to_owned();
    service(&cluster, &ns);
    // No pod yet: once the endpoints controller has seen the Service (404 before), the proxy
    // answers 503.
    let early = wait_until(
        "the Service's endpoints",
        || Some(proxy_get(&cluster, &ns, "/healthz")).filter(|a| a.code != 404),
        String::new,
    );
    assert_eq!(early.code, 503, "{}", early.body);
    assert!(early.body.contains("no endpoints available for service"), "{}", early.body);

    deployment(&cluster, &ns, "web", 2, web(&image));
    let ready = wait_ready(&cluster, &ns, "web", 2);
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

    let pods = pods(&cluster, &ns);
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

    let answer = proxy_get(&cluster, &ns, "/healthz");
    assert_eq!(answer.code, 200, "{}", answer.body);
    assert_eq!(answer.body, "healthy from busybox\n");
    let missing = proxy_get(&cluster, &ns, "/nothing-here");
    assert_eq!(missing.code, 404, "the real httpd answers: {}", missing.body);
}

#[test]
fn pods_in_two_namespaces_both_listen_on_8080() {
    let registry = registry::Registry::anonymous();
    let blue = httpd_image(&registry, "blue", "blue\n");
    let green = httpd_image(&registry, "green", "green\n");
    let cluster = running_cluster();
    let (blue_ns, green_ns) = (cluster.ns("blue"), cluster.ns("green"));
    for (ns, image) in [(&blue_ns, &blue), (&green_ns, &green)] {
        namespace(&cluster, ns);
        service(&cluster, ns);
        deployment(&cluster, ns, "web", 1, web(image));
    }
    for (ns, color) in [(&blue_ns, "blue"), (&green_ns, "green")] {
        wait_ready(&cluster, ns, "web", 1);
        let answer = proxy_get(&cluster, ns, "/healthz");
        assert_eq!((answer.code, answer.body.as_str()), (200, format!("{color}\n").as_str()));
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
    let ns = cluster.namespace().to_owned();
    deployment(
        &cluster,
        &ns,
        "web",
        1,
        json!({"name": "app", "image": image, "env": [{"name": "GREETING", "value": "hello"}]}),
    );
    let pod = wait_until(
        "the pod to crash loop",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let c = &pod["status"]["containerStatuses"][0];
            (c["state"]["waiting"]["reason"] == "CrashLoopBackOff"
                && c["restartCount"].as_i64() >= Some(1)
                && c["lastState"]["terminated"]["exitCode"] == 3)
                .then_some(pod)
        },
        seen_pods(&cluster, &ns),
    );
    let name = pod["metadata"]["name"].as_str().expect("name").to_string();
    let container = &pod["status"]["containerStatuses"][0];
    assert_eq!(container["ready"], false);
    assert_eq!(container["lastState"]["terminated"]["reason"], "Error");
    let message = container["state"]["waiting"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("back-off ") && message.contains(&format!("restarting failed container=app pod={name}_{ns}(")),
        "{message}"
    );
    assert_eq!(pod["status"]["phase"], "Running");

    // The log, through the API server and the kubelet: the current run's, or the last one's.
    let log = wait_until(
        "the log to hold the printed lines",
        || {
            let current = common::get(&cluster, &format!("/api/v1/namespaces/{ns}/pods/{name}/log"));
            let previous = common::get(&cluster, &format!("/api/v1/namespaces/{ns}/pods/{name}/log?previous=true"));
            [current, previous]
                .into_iter()
                .find(|a| a.code == 200 && a.body.contains("config missing"))
                .map(|a| a.body)
        },
        String::new,
    );
    assert_eq!(log, "starting with from-image and hello\nconfig missing\n");
    let tail = common::get(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/pods/{name}/log?tailLines=1&previous=true"),
    );
    assert!(tail.body == "config missing\n" || tail.code != 200, "{}", tail.body);

    let events = common::events(&cluster, &ns);
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "BackOff" && e["type"] == "Warning" && e["involvedObject"]["name"] == name.as_str()),
        "{events:?}"
    );
    let d = cluster.object("apps/v1", "Deployment", Some(&ns), "web").expect("deployment");
    assert!(d["status"]["readyReplicas"].is_null(), "{}", d["status"]);
}

#[test]
fn a_missing_secret_is_a_config_error_until_it_exists() {
    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "ok\n");
    let cluster = running_cluster();
    let ns = cluster.namespace().to_owned();
    let mut container = web(&image);
    container["env"] = json!([{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "api", "key": "token"}}}]);
    deployment(&cluster, &ns, "web", 1, container);
    let waiting = wait_until(
        "CreateContainerConfigError",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            (waiting["reason"] == "CreateContainerConfigError").then_some(waiting)
        },
        seen_pods(&cluster, &ns),
    );
    assert_eq!(waiting["message"], "secret \"api\" not found");
    let pod = pods(&cluster, &ns).remove(0);
    assert_eq!(pod["status"]["phase"], "Pending");
    assert!(
        common::events(&cluster, &ns)
            .iter()
            .any(|e| e["reason"] == "Failed" && e["message"] == "Error: secret \"api\" not found")
    );

    // The kubelet looks again: once the Secret exists, the pod runs.
    common::apply(
        &cluster,
        &format!("/api/v1/namespaces/{ns}/secrets/api"),
        &json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "api"}, "stringData": {"token": "t0k3n"}}),
    );
    wait_ready(&cluster, &ns, "web", 1);
}

#[test]
fn an_image_the_registry_lacks_fails_to_pull_with_the_registrys_reason() {
    let registry = registry::Registry::anonymous();
    httpd_image(&registry, "0.1.0", "ok\n");
    let cluster = running_cluster();
    let ns = cluster.namespace().to_owned();
    let image = format!("{}/team/web:9.9.9", registry.address);
    deployment(&cluster, &ns, "web", 1, web(&image));
    let waiting = wait_until(
        "a failed pull",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"].clone();
            matches!(waiting["reason"].as_str(), Some("ErrImagePull" | "ImagePullBackOff")).then_some(waiting)
        },
        seen_pods(&cluster, &ns),
    );
    let message = waiting["message"].as_str().expect("message");
    assert!(message.contains(&format!("\"{image}\"")), "{message}");
    assert!(message.contains("not found") && message.contains("MANIFEST_UNKNOWN"), "{message}");
    assert!(common::events(&cluster, &ns).iter().any(|e| {
        e["reason"] == "Failed"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(&format!("Failed to pull image \"{image}\"")))
    }),);
    // Later it backs off, still saying why.
    wait_until(
        "ImagePullBackOff",
        || {
            let pod = pods(&cluster, &ns).into_iter().next()?;
            let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
            (waiting["reason"] == "ImagePullBackOff" && waiting["message"].as_str().is_some_and(|m| m.contains("MANIFEST_UNKNOWN")))
                .then_some(())
        },
        seen_pods(&cluster, &ns),
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
    // A control plane of its own: dropping it stops everything it runs.
    let cluster = TestCluster::dedicated(Options {
        workloads: Workloads::Run,
        ready_after: Duration::from_millis(300),
        ..Options::default()
    })
    .expect("start");
    let marker = format!("HARMONY_TEST_MARKER={}", std::process::id());
    let mut container = web(&image);
    container["env"] = json!([{"name": "HARMONY_TEST_MARKER", "value": std::process::id().to_string()}]);
    deployment(&cluster, "default", "web", 2, container.clone());
    wait_ready(&cluster, "default", "web", 2);
    let first = processes_with(&marker);
    assert_eq!(first.len(), 2, "one httpd per pod: {first:?}");
    for pid in &first {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert!(exe.ends_with("rootfs/bin/busybox"), "runs the image's own busybox: {exe:?}");
    }

    // A new generation replaces the pods and their processes.
    container["env"][0]["value"] = json!(format!("{}-2", std::process::id()));
    let answer = common::request(
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
    wait_ready(&cluster, "default", "web", 2);
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

/// kube's port-forward goes through the API server to the kubelet, which connects to the pod:
/// the real server answers; a pod the kubelet only plays refuses, saying why.
#[test]
fn a_port_forward_reaches_the_real_server_and_a_played_pod_says_why() {
    use k8s_openapi::api::core::v1::Pod;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "forwarded\n");
    let cluster = running_cluster();
    let ns = cluster.namespace().to_owned();
    deployment(&cluster, &ns, "web", 1, web(&image));
    wait_ready(&cluster, &ns, "web", 1);
    let pod = pods(&cluster, &ns).remove(0)["metadata"]["name"].as_str().unwrap().to_owned();

    // Another test's namespace on the same node, whose pods are played.
    let other = TestCluster::start().expect("start");
    let played = other.namespace().to_owned();
    deployment(&other, &played, "web", 1, web("example.com/web:1"));
    wait_ready(&other, &played, "web", 1);
    let played_pod = pods(&other, &played).remove(0)["metadata"]["name"].as_str().unwrap().to_owned();

    let client = cluster.client();
    let (answer, refused) = cluster.block_on(async move {
        let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &ns);
        let mut forward = api.portforward(&pod, &[8080]).await.expect("a port-forward");
        let mut stream = forward.take_stream(8080).expect("the port's stream");
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: web\r\n\r\n").await.unwrap();
        let mut answer = String::new();
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_string(&mut answer)).await;
        assert!(
            matches!(read, Ok(Ok(_))),
            "the server's answer, then the end of the stream: {read:?} {answer:?}"
        );

        let api: kube::Api<Pod> = kube::Api::namespaced(client, &played);
        let mut forward = api.portforward(&played_pod, &[8080]).await.expect("a port-forward");
        let error = forward.take_error(8080).expect("the port's errors");
        let mut stream = forward.take_stream(8080).expect("the port's stream");
        let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await;
        let refused = tokio::time::timeout(Duration::from_secs(10), error).await;
        (answer, format!("{refused:?}"))
    });
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(answer.ends_with("forwarded\n"), "{answer}");
    assert!(refused.contains("plays this pod"), "{refused}");
}

/// `kubectl port-forward` through the real API server to a pod the kubelet runs: kubectl's
/// WebSocket tunnel (its default) and its SPDY upgrade both reach the real server.
#[test]
fn kubectl_port_forward_reaches_the_real_server() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};

    let registry = registry::Registry::anonymous();
    let image = httpd_image(&registry, "0.1.0", "through kubectl\n");
    let cluster = running_cluster();
    let ns = cluster.namespace().to_owned();
    deployment(&cluster, &ns, "web", 1, web(&image));
    wait_ready(&cluster, &ns, "web", 1);
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig, cluster.direct_kubeconfig()).unwrap();
    let kubectl = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools/kubectl/kubectl");
    for websockets in ["true", "false"] {
        let mut forward = std::process::Command::new(&kubectl)
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .args(["port-forward", "-n", &ns, "deployment/web", ":8080"])
            .env("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
            .env("HOME", dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("kubectl.log")).unwrap())
            .spawn()
            .unwrap();
        // "Forwarding from 127.0.0.1:PORT -> 8080"
        let mut line = String::new();
        BufReader::new(forward.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        let port: u16 = line
            .split("127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("kubectl said: {line}"));
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: web\r\n\r\n").unwrap();
        let mut answer = String::new();
        let read = stream.read_to_string(&mut answer);
        let _ = forward.kill();
        let _ = forward.wait();
        let said = std::fs::read_to_string(dir.path().join("kubectl.log")).unwrap_or_default();
        assert!(
            read.is_ok() && answer.ends_with("through kubectl\n"),
            "websockets {websockets}: {answer:?} {read:?}; kubectl: {said}"
        );
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    }
}
