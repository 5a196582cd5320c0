//! Test images: the static busybox (Debian's `busybox-static`) in a one-layer
//! OCI image built by hand, pushed to a registry with skopeo. Shared by the
//! tests that run images on the test cluster.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

fn sha256(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Writes a blob into an OCI layout; its descriptor.
fn blob(layout: &Path, media_type: &str, bytes: &[u8]) -> Value {
    let digest = sha256(bytes);
    let path = layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    std::fs::write(path, bytes).expect("blob");
    json!({"mediaType": media_type, "digest": digest, "size": bytes.len()})
}

/// Builds a one-layer busybox image (with `/www/healthz` holding `healthz`) whose entrypoint is
/// `entrypoint`, and pushes it to `registry` (`host:port`) as `repository:tag`; the image reference.
pub fn push(registry: &str, repository: &str, tag: &str, healthz: &str, entrypoint: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(staging.join("bin")).expect("bin");
    std::fs::create_dir_all(staging.join("www")).expect("www");
    std::fs::copy("/bin/busybox", staging.join("bin/busybox"))
        .expect("/bin/busybox is the static busybox (apt-get install busybox-static; scripts/test installs it)");
    std::fs::write(staging.join("www/healthz"), healthz).expect("healthz");
    let tar = dir.path().join("layer.tar");
    run(Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&staging)
        .args(["bin", "www"]));
    let gz = dir.path().join("layer.tar.gz");
    run(Command::new("gzip").args(["-n", "-k"]).arg(&tar));
    let layout = dir.path().join("oci");
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("layout");
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).expect("oci-layout");
    let diff_id = sha256(&std::fs::read(&tar).expect("tar"));
    let layer = blob(
        &layout,
        "application/vnd.oci.image.layer.v1.tar+gzip",
        &std::fs::read(&gz).expect("layer"),
    );
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": entrypoint, "Env": ["PATH=/bin", "IMAGE_ENV=from-image"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = blob(&layout, "application/vnd.oci.image.config.v1+json", config.to_string().as_bytes());
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config,
        "layers": [layer],
    });
    let mut manifest = blob(
        &layout,
        "application/vnd.oci.image.manifest.v1+json",
        manifest.to_string().as_bytes(),
    );
    manifest["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    std::fs::write(
        layout.join("index.json"),
        json!({"schemaVersion": 2, "manifests": [manifest]}).to_string(),
    )
    .expect("index");
    let reference = format!("{registry}/{repository}:{tag}");
    run(Command::new("skopeo")
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{reference}")));
    reference
}
