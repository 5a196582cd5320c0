//! Injected faults and the service proxy.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use harmony_test_cluster::{Fault, TestCluster};
use serde_json::json;

#[test]
fn status_faults_answer_a_counted_number_of_matching_requests() {
    let cluster = TestCluster::start().expect("start");
    cluster.inject(Fault::Status {
        code: 429,
        times: 1,
        path_contains: Some("/configmaps".into()),
        method: Some("GET".into()),
    });
    let answer = common::http(&cluster, "GET", "/api/v1/namespaces/default/configmaps", None, "");
    assert_eq!(answer.code, 429);
    assert_eq!(answer.header("Retry-After"), Some("1"));
    assert_eq!(answer.json()["reason"], "TooManyRequests");
    let answer = common::http(&cluster, "GET", "/api/v1/namespaces/default/configmaps", None, "");
    assert_eq!(answer.code, 200);
    cluster.inject(Fault::Status {
        code: 500,
        times: 5,
        path_contains: None,
        method: None,
    });
    assert_eq!(common::http(&cluster, "GET", "/version", None, "").code, 500);
    cluster.clear_faults();
    assert_eq!(common::http(&cluster, "GET", "/version", None, "").code, 200);
    let codes: Vec<u16> = cluster.requests().iter().map(|r| r.code).collect();
    assert_eq!(codes, [429, 200, 500, 200]);
}

#[test]
fn reset_and_hang_faults_never_answer() {
    let cluster = TestCluster::start().expect("start");
    let addr = cluster.url().trim_start_matches("http://").to_string();
    cluster.inject(Fault::ResetConnection {
        times: 1,
        path_contains: None,
    });
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    assert!(buf.is_empty(), "no answer on a reset connection");

    cluster.inject(Fault::Hang {
        times: 1,
        path_contains: Some("/version".into()),
    });
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(300))).expect("timeout");
    stream.write_all(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut byte = [0u8; 1];
    let read = stream.read(&mut byte);
    assert!(read.is_err(), "a hung request gets no answer");
    // The server still serves others.
    assert_eq!(common::http(&cluster, "GET", "/version", None, "").code, 200);
    let logged: Vec<(String, u16)> = cluster.requests().iter().map(|r| (r.path.clone(), r.code)).collect();
    assert_eq!(logged[0], ("/version".to_string(), 0));
    assert_eq!(logged[1], ("/version".to_string(), 0));
}

/// A one-shot backend that answers with the request line it received.
fn backend() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]).into_owned();
            let line = request.lines().next().unwrap_or_default().to_string();
            let body = format!("backend saw {line}");
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, handle)
}

#[test]
fn the_service_proxy_forwards_to_the_registered_backend() {
    let cluster = TestCluster::start().expect("start");
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"}, "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]}});
    let answer = common::http(
        &cluster,
        "POST",
        "/api/v1/namespaces/default/services",
        Some("application/json"),
        &svc.to_string(),
    );
    assert_eq!(answer.code, 201, "{}", answer.body);
    let created = answer.json();
    assert!(created["spec"]["clusterIP"].as_str().unwrap_or_default().starts_with("10.96."));
    assert_eq!(created["spec"]["ports"][0]["targetPort"], 80);

    let answer = common::http(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/services/web:80/proxy/healthz",
        None,
        "",
    );
    assert_eq!(answer.code, 503);
    assert_eq!(answer.json()["message"], "no endpoints available for service \"web\"");

    let (addr, handle) = backend();
    cluster.serve_service("default", "web", 80, addr);
    let answer = common::http(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/services/http:web:80/proxy/status/ready?verbose=1",
        None,
        "",
    );
    handle.join().expect("backend");
    assert_eq!(answer.code, 200);
    assert_eq!(answer.header("Content-Type"), Some("text/plain"));
    assert_eq!(answer.body, "backend saw GET /status/ready?verbose=1 HTTP/1.1");

    let (addr, handle) = backend();
    cluster.serve_service("default", "web", 80, addr);
    let answer = common::http(&cluster, "GET", "/api/v1/namespaces/default/services/web/proxy/", None, "");
    handle.join().expect("backend");
    assert_eq!(answer.body, "backend saw GET / HTTP/1.1");

    let answer = common::http(&cluster, "GET", "/api/v1/namespaces/default/services/missing:80/proxy/", None, "");
    assert_eq!(answer.code, 404);
}

#[test]
fn discovery_answers_plain_json_whatever_the_accept_header() {
    let cluster = TestCluster::start().expect("start");
    let answer = common::http(&cluster, "GET", "/apis", None, "");
    assert_eq!(answer.code, 200);
    assert_eq!(answer.header("Content-Type"), Some("application/json"));
    let groups = answer.json();
    assert_eq!(groups["kind"], "APIGroupList");
    assert!(groups["groups"].as_array().expect("groups").iter().any(|g| g["name"] == "apps"));
    let api = common::http(&cluster, "GET", "/api", None, "").json();
    assert_eq!(api["versions"], json!(["v1"]));
    let version = common::http(&cluster, "GET", "/version", None, "").json();
    assert_eq!(version["gitVersion"], "v1.33.9-harmony-test");
    assert_eq!(common::http(&cluster, "GET", "/openapi/v2", None, "").code, 404);
    let unknown = common::http(&cluster, "GET", "/apis/nope.example.com/v1/things", None, "");
    assert_eq!(unknown.code, 404);
    assert_eq!(unknown.json()["kind"], "Status");
}

#[test]
fn secrets_fold_string_data_and_namespaces_get_their_label() {
    let cluster = TestCluster::start().expect("start");
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"password": "hunter2"}});
    let answer = common::http(
        &cluster,
        "PATCH",
        "/api/v1/namespaces/default/secrets/s?fieldManager=harmony",
        Some("application/apply-patch+yaml"),
        &secret.to_string(),
    );
    assert_eq!(answer.code, 201, "{}", answer.body);
    let stored = cluster.object("v1", "Secret", Some("default"), "s").expect("secret");
    assert_eq!(stored["data"]["password"], "aHVudGVyMg==");
    assert!(stored.get("stringData").is_none());
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}});
    assert_eq!(
        common::http(&cluster, "POST", "/api/v1/namespaces", Some("application/json"), &ns.to_string()).code,
        201
    );
    let stored = cluster.object("v1", "Namespace", None, "team").expect("namespace");
    assert_eq!(stored["metadata"]["labels"]["kubernetes.io/metadata.name"], "team");
    assert_eq!(stored["status"]["phase"], "Active");
}
