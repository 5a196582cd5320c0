//! Pushing and pulling images and charts against a real registry: anonymous
//! and with basic auth, digests checked both ways, and the faults a user
//! meets (registry down, wrong password, a push cut short, a missing image).

mod support;

use harmony::Diagnostic as _;
use harmony::chart::Chart;
use harmony::oci::distribution::{Credentials, RegistryError, Remote};
use harmony::oci::layer::LayerBuilder;
use harmony::oci::{Artifact, Blob, media};
use harmony::release::Version;
use harmony::secret::Secret;
use support::registry::{self, Registry};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn image(content: &str) -> Artifact {
    let mut layer = LayerBuilder::new();
    layer.file("app/hello.txt", 0o644, content.as_bytes().to_vec());
    let layer = layer.build(media::LAYER_TAR_GZIP).unwrap();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/app/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
    });
    Artifact::new(
        Blob::new(media::IMAGE_CONFIG, serde_json::to_vec(&config).unwrap()),
        vec![layer.blob],
    )
}

fn chart() -> Artifact {
    let mut c = Chart::new("webapp", "demo chart");
    c.file("templates/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\n");
    c.stamped(&Version::parse("0.1.0").unwrap()).artifact().unwrap()
}

#[test]
fn push_and_pull_an_image_and_a_chart_anonymously() {
    let registry = Registry::anonymous();
    let remote = Remote::new(&registry.address, None);
    let rt = rt();
    let img = image("hello");
    let pushed = rt.block_on(remote.push("team/webapp", "0.1.0", &img)).unwrap();
    assert_eq!(
        pushed.to_string(),
        format!("{}/team/webapp:0.1.0@{}", registry.address, img.digest())
    );
    let (pulled, digest) = rt.block_on(remote.pull(&pushed)).unwrap();
    assert_eq!(digest, img.digest(), "the registry stores our manifest byte for byte");
    assert_eq!(pulled, img);

    let chart = chart();
    let pushed = rt.block_on(remote.push("charts/webapp", "0.1.0", &chart)).unwrap();
    let (pulled, _) = rt.block_on(remote.pull(&pushed)).unwrap();
    assert_eq!(pulled.layers()[0].media_type(), media::HELM_CHART);
    assert_eq!(pulled, chart);
    assert_eq!(rt.block_on(remote.resolve(&pushed)).unwrap(), Some(chart.digest()));
}

#[test]
fn basic_auth_works_and_a_wrong_password_is_refused_clearly() {
    let registry = Registry::with_auth();
    let rt = rt();
    let good = Credentials {
        username: registry::USER.into(),
        password: Secret::new(registry::PASSWORD.into()),
    };
    let remote = Remote::new(&registry.address, Some(&good));
    let pushed = rt.block_on(remote.push("team/webapp", "1.0.0", &image("auth"))).unwrap();
    assert!(rt.block_on(remote.pull(&pushed)).is_ok());

    let bad = Credentials {
        username: registry::USER.into(),
        password: Secret::new("wrong-password-771".into()),
    };
    let err = rt
        .block_on(Remote::new(&registry.address, Some(&bad)).push("team/webapp", "1.0.1", &image("x")))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { anonymous: false, .. }), "{err:?}");
    let text = format!("{err} {}", err.help());
    assert!(
        text.contains("refused the credentials") && text.contains("HARMONY_REGISTRY_PASSWORD"),
        "{text}"
    );
    assert!(!text.contains("wrong-password-771") && !format!("{err:?}").contains("wrong-password-771"));

    let err = rt
        .block_on(Remote::new(&registry.address, None).push("team/webapp", "1.0.2", &image("y")))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { anonymous: true, .. }), "{err:?}");
    assert!(err.help().contains("needs credentials"));
}

#[test]
fn a_registry_that_is_down_is_named_and_a_rerun_completes() {
    let mut registry = Registry::anonymous();
    registry.stop();
    let remote = Remote::new(&registry.address, None);
    let rt = rt();
    let img = image("down");
    let err = rt.block_on(remote.push("team/webapp", "0.1.0", &img)).unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&registry.address) && err.help().contains("listens"),
        "{err}"
    );
    assert!(registry.resume(), "the registry came back on its port");
    rt.block_on(remote.push("team/webapp", "0.1.0", &img)).unwrap();
    assert_eq!(registry.tags("team/webapp"), ["0.1.0"]);
}

/// A push that stopped after its blobs (before the manifest) is finished by
/// running it again: no blob is sent twice, one tag, the same digest.
#[test]
fn an_interrupted_push_is_finished_by_a_rerun_without_duplicates() {
    let registry = Registry::anonymous();
    let remote = Remote::new(&registry.address, None);
    let rt = rt();
    let img = image("interrupted");
    // The first attempt: only the config is pushed (as if cut off right after).
    let partial = Artifact::new(img.config().clone(), Vec::new());
    rt.block_on(remote.push("team/webapp", "scratch", &partial)).unwrap();
    let blobs_before = registry.blob_count();
    let pushed = rt.block_on(remote.push("team/webapp", "0.2.0", &img)).unwrap();
    let again = rt.block_on(remote.push("team/webapp", "0.2.0", &img)).unwrap();
    assert_eq!(pushed, again);
    // The layer and the new manifest were added; the config was not sent again.
    assert_eq!(registry.blob_count(), blobs_before + 2);
    assert_eq!(registry.tags("team/webapp"), ["0.2.0", "scratch"]);
    assert_eq!(rt.block_on(remote.pull(&pushed)).unwrap().1, img.digest());
}

#[test]
fn a_missing_image_is_not_found_and_a_wrong_digest_is_caught() {
    let registry = Registry::anonymous();
    let remote = Remote::new(&registry.address, None);
    let rt = rt();
    let missing: harmony::oci::ImageRef = format!("{}/team/nothing:1.0.0", registry.address).parse().unwrap();
    assert_eq!(rt.block_on(remote.resolve(&missing)).unwrap(), None);
    let err = rt.block_on(remote.pull(&missing)).unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err:?}");

    let pushed = rt.block_on(remote.push("team/webapp", "0.3.0", &image("pinned"))).unwrap();
    let other = image("something else").digest();
    let wrong = pushed.clone().with_digest(other);
    let tagged: harmony::oci::ImageRef = format!("{}/team/webapp:0.3.0", registry.address).parse().unwrap();
    assert!(rt.block_on(remote.pull(&tagged)).is_ok());
    assert!(rt.block_on(remote.pull(&wrong)).is_err());
}

/// Tools we did not write read what we pushed: skopeo inspects the image from
/// the registry, and the chart's raw manifest (Helm media types).
#[test]
fn skopeo_reads_what_we_push() {
    let registry = Registry::anonymous();
    let remote = Remote::new(&registry.address, None);
    let rt = rt();
    let img = image("interop");
    rt.block_on(remote.push("team/webapp", "0.1.0", &img)).unwrap();
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/team/webapp:0.1.0", registry.address),
        ])
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], img.digest().to_string());
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Layers"][0], img.layers()[0].digest().to_string());

    let chart = chart();
    rt.block_on(remote.push("charts/webapp", "0.1.0", &chart)).unwrap();
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/charts/webapp:0.1.0", registry.address),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["config"]["mediaType"], media::HELM_CONFIG);
    assert_eq!(v["layers"][0]["mediaType"], media::HELM_CHART);
}

/// skopeo reads the local topology's image-layout directory too.
#[test]
fn skopeo_reads_the_local_layout() {
    let dir = tempfile::tempdir().unwrap();
    let layout = harmony::oci::layout::Layout::at(dir.path());
    let img = image("layout");
    layout.put("webapp:0.1.0", &img).unwrap();
    let out = std::process::Command::new("skopeo")
        .args(["inspect", &format!("oci:{}:webapp:0.1.0", dir.path().display())])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], img.digest().to_string());
}

/// A registry that accepts connections but never answers: the push gives up
/// after the timeout with an error that says how to wait longer.
#[test]
fn a_registry_that_never_answers_times_out() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = silent.local_addr().unwrap().to_string();
    let remote = Remote::new(&address, None).with_timeout(std::time::Duration::from_millis(500));
    let err = rt().block_on(remote.push("team/webapp", "0.1.0", &image("silent"))).unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err:?}");
    assert!(
        err.to_string().contains("no answer within") && err.to_string().contains("HARMONY_REGISTRY_TIMEOUT"),
        "{err}"
    );
    drop(silent);
}

/// Registries that delegate authorization (Docker Hub, GHCR, Harbor) answer
/// `401` with a `Bearer` challenge naming a token server. The client asks that
/// server for a token of the challenge's scope, with the basic credentials,
/// and repeats the request with it. No such registry runs here, so this one
/// speaks the protocol's two exchanges by hand.
#[test]
fn a_bearer_challenge_is_answered_with_a_token_from_its_realm() {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (realm, stored, log) = (format!("http://{address}/token"), digest.clone(), seen.clone());
    std::thread::spawn(move || {
        'connections: for stream in listener.incoming() {
            let mut stream = stream.unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut head = Vec::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        continue 'connections;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push(line.trim_end().to_owned());
                }
                let auth = head.iter().find_map(|h| {
                    h.to_ascii_lowercase()
                        .starts_with("authorization:")
                        .then(|| h[14..].trim().to_owned())
                });
                log.lock()
                    .unwrap()
                    .push(format!("{} {}", head[0], auth.clone().unwrap_or_default()));
                let answer = if head[0].starts_with("GET /token?") {
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{\"token\":\"t0k3n\"}".to_owned()
                } else if auth.as_deref() == Some("Bearer t0k3n") {
                    format!("HTTP/1.1 200 OK\r\ndocker-content-digest: {stored}\r\ncontent-length: 0\r\n\r\n")
                } else {
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nwww-authenticate: Bearer realm=\"{realm}\",service=\"test\",scope=\"repository:team/app:pull\"\r\ncontent-length: 0\r\n\r\n"
                    )
                };
                stream.write_all(answer.as_bytes()).unwrap();
            }
        }
    });
    let credentials = Credentials {
        username: "ci".into(),
        password: Secret::new("s3cret".into()),
    };
    let remote = Remote::new(&address, Some(&credentials));
    let image = harmony::oci::ImageRef::new(Some(&address), "team/app")
        .unwrap()
        .with_tag("1.0")
        .unwrap();
    let resolved = rt().block_on(remote.resolve(&image)).unwrap();
    assert_eq!(resolved.map(|d| d.to_string()), Some(digest));
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert!(seen[0].starts_with("HEAD /v2/team/app/manifests/1.0 "), "{seen:#?}");
    assert_eq!(
        seen[1],
        // ci:s3cret, as basic credentials travel to the token server
        "GET /token?scope=repository%3Ateam%2Fapp%3Apull&service=test HTTP/1.1 Basic Y2k6czNjcmV0"
    );
    assert_eq!(seen[2], "HEAD /v2/team/app/manifests/1.0 HTTP/1.1 Bearer t0k3n");
}
