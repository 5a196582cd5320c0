//! The container builders with the real tools: a Rust binary packed without a
//! daemon, a Dockerfile built by buildah (and pushed to a real registry), and
//! the faults a user meets (no Dockerfile, a broken one, an unknown package,
//! no docker daemon). Reproducibility is checked the way it matters: the same
//! sources in two clones at different paths give the same digest.

mod support;

use harmony::Diagnostic as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use harmony::build::{BuildCx, BuildError, Buildable, Buildah, DockerCli, DockerfileBuilder, ImageSource, RustBinary};
use harmony::oci::Artifact;
use harmony::oci::distribution::Remote;
use harmony::release::Version;
use harmony::release::smoke::{Confinement, HttpCheck, run_image};
use support::registry::Registry;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Copy the fixture `name` into a new directory below `parent` (no `target`).
fn clone_fixture(name: &str, parent: &Path, nested: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == "target" {
                continue;
            }
            let dest = to.join(entry.file_name());
            if entry.file_type().unwrap().is_dir() {
                copy(&entry.path(), &dest);
            } else {
                std::fs::copy(entry.path(), dest).unwrap();
            }
        }
    }
    let dest = parent.join(nested);
    copy(&fixture(name), &dest);
    dest
}

fn cx(workspace: &Path, scratch: &Path, name: &str) -> BuildCx {
    BuildCx::new(workspace, scratch, name, Version::new(0, 1, 0))
}

/// The entries of a gzipped tar layer: path, mode, content.
fn layer_entries(artifact: &Artifact, index: usize) -> Vec<(String, u32, Vec<u8>)> {
    let gz = flate2::read::GzDecoder::new(artifact.layers()[index].bytes());
    let mut archive = tar::Archive::new(gz);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            let mut bytes = Vec::new();
            e.read_to_end(&mut bytes).unwrap();
            (path, mode, bytes)
        })
        .collect()
}

fn config(artifact: &Artifact) -> serde_json::Value {
    serde_json::from_slice(artifact.config().bytes()).unwrap()
}

#[test]
fn a_rust_binary_gives_the_same_image_from_two_clones_and_runs() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let hello = RustBinary::new("hello").port(8080);
    let source = ImageSource::Buildable(std::sync::Arc::new(hello.clone()));
    assert_eq!(source.describe(), "rust binary `hello` of package `hello`");

    let ws_a = clone_fixture("hello", a.path(), "hello");
    let first = hello.build(&cx(&ws_a, &a.path().join("scratch"), "hello")).unwrap();
    // Another clone, at a longer path, with fresh file times, built later.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ws_b = clone_fixture("hello", b.path(), "somewhere/else/entirely/hello");
    let second = hello.build(&cx(&ws_b, &b.path().join("scratch"), "hello")).unwrap();
    assert_eq!(first.digest(), second.digest(), "the same sources give the same image");
    assert_eq!(first, second);

    let entries = layer_entries(&first, 0);
    let names: Vec<(&str, u32)> = entries.iter().map(|(p, m, _)| (p.as_str(), *m)).collect();
    assert_eq!(names, [("app/", 0o755), ("app/hello", 0o755)]);
    let c = config(&first);
    assert_eq!(c["config"]["Entrypoint"], serde_json::json!(["/app/hello"]));
    assert_eq!(c["config"]["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(c["created"], "1970-01-01T00:00:00Z");
    assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
    let binary = &entries[1].2;
    for clone in [&ws_a, &ws_b] {
        let clone = clone.to_string_lossy();
        assert!(
            !binary.windows(clone.len()).any(|w| w == clone.as_bytes()),
            "the binary names no path of its clone"
        );
    }

    // The packed bytes are the program, and they need nothing else: run them
    // in an empty root that holds the image's layer alone.
    assert_eq!(harmony::build::dynamic_loader(binary), None, "static");
    let root = a.path().join("root");
    for (path, mode, bytes) in &entries {
        let at = root.join(path);
        if path.ends_with('/') {
            std::fs::create_dir_all(&at).unwrap();
        } else {
            std::fs::write(&at, bytes).unwrap();
            std::fs::set_permissions(&at, std::os::unix::fs::PermissionsExt::from_mode(*mode)).unwrap();
        }
    }
    let confinement = Confinement::here();
    assert!(
        !matches!(confinement, Confinement::Host(_)),
        "this test proves the image runs alone: run it as root or with user namespaces ({confinement:?})"
    );
    let out = confinement.command(&root, "/app/hello").arg("harmony").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello, harmony\n", "{out:?}");
    // Code generated into OUT_DIR (as prost does) names its file by a remapped path:
    // without `--remap-path-prefix` it would be the clone's absolute target dir.
    let out = confinement.command(&root, "/app/hello").arg("origin").output().unwrap();
    let origin = String::from_utf8_lossy(&out.stdout);
    assert!(
        origin.starts_with("/target/") && origin.trim_end().ends_with("/out/generated.rs"),
        "{origin}"
    );
}

#[test]
fn an_unknown_package_fails_with_cargos_message() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = clone_fixture("hello", tmp.path(), "hello");
    let err = RustBinary::new("no-such-package")
        .build(&cx(&ws, &tmp.path().join("scratch"), "x"))
        .unwrap_err();
    let BuildError::ToolFailed { tool, stderr, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*tool, "cargo");
    assert!(stderr.contains("no-such-package"), "{stderr}");
    let text = err.to_string();
    assert!(
        text.contains("cargo build --release --locked -p no-such-package") && text.contains(stderr.as_str()),
        "{text}"
    );
    assert!(err.help().contains("cargo metadata"), "{}", err.help());
}

#[test]
fn buildah_builds_a_scratch_image_reproducibly_and_it_pushes_with_its_digest() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let build = |tmp: &Path, nested: &str| {
        let context = clone_fixture("scratch-image", tmp, nested);
        let scratch = tmp.join("scratch");
        let source = ImageSource::Dockerfile {
            dockerfile: context.join("Dockerfile"),
            context: context.clone(),
            binaries: Vec::new(),
        };
        source
            .build(&cx(&context, &scratch, "scratch-image"), &Buildah::in_scratch(&scratch))
            .unwrap()
    };
    let first = build(a.path(), "ctx");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build(b.path(), "another/ctx");
    assert_eq!(first.digest(), second.digest(), "buildah with --timestamp 0 is reproducible here");

    let entries = layer_entries(&first, 0);
    let file = entries.iter().find(|(p, _, _)| p == "app/hello.txt").expect("the copied file");
    assert_eq!(file.2, b"hello from a scratch image\n");
    let c = config(&first);
    assert_eq!(c["created"], "1970-01-01T00:00:00Z");
    assert_eq!(c["config"]["Labels"]["org.opencontainers.image.title"], "scratch-image");
    assert_eq!(c["config"]["Labels"]["org.opencontainers.image.version"], "0.1.0");
    assert!(c["config"]["Labels"].get("io.buildah.version").is_none());

    let registry = Registry::anonymous();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pushed = rt
        .block_on(Remote::new(&registry.address, None).push("team/scratch-image", "0.1.0", &first))
        .unwrap();
    assert_eq!(pushed.digest(), Some(&first.digest()));
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{}/team/scratch-image:0.1.0", registry.address))
        .output()
        .expect("skopeo is installed (scripts/test installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["Digest"], first.digest().to_string());
    assert_eq!(inspected["Labels"]["org.opencontainers.image.title"], "scratch-image");
}

#[test]
fn a_dockerfile_that_does_not_exist_is_named_before_any_tool_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope/Dockerfile");
    let builders: [&dyn DockerfileBuilder; 2] = [&Buildah::in_scratch(tmp.path()), &DockerCli::new()];
    for builder in builders {
        let err = builder
            .build_dockerfile(&missing, tmp.path(), &cx(tmp.path(), tmp.path(), "x"))
            .unwrap_err();
        assert!(
            matches!(&err, BuildError::DockerfileMissing { path } if *path == missing),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("nope/Dockerfile") && err.help().contains("dockerfile"),
            "{err}"
        );
    }
    assert!(!tmp.path().join("buildah").exists(), "buildah was not run");
}

#[test]
fn a_dockerfile_that_fails_shows_buildahs_stderr() {
    let tmp = tempfile::tempdir().unwrap();
    let context = tmp.path().join("ctx");
    std::fs::create_dir_all(&context).unwrap();
    std::fs::write(context.join("Dockerfile"), "FROM scratch\nCOPY not-in-the-context.txt /app/\n").unwrap();
    let err = Buildah::in_scratch(&tmp.path().join("scratch"))
        .build_dockerfile(
            &context.join("Dockerfile"),
            &context,
            &cx(&context, &tmp.path().join("scratch"), "broken"),
        )
        .unwrap_err();
    let BuildError::ToolFailed { tool, stderr, command, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*tool, "buildah");
    assert!(command.starts_with("buildah --root") && command.contains(" bud "), "{command}");
    assert!(stderr.contains("not-in-the-context.txt"), "{stderr}");
    assert!(err.to_string().contains(stderr.as_str()));
    assert!(err.help().contains("Dockerfile"), "{}", err.help());
}

#[test]
fn docker_without_a_daemon_says_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let context = clone_fixture("scratch-image", tmp.path(), "ctx");
    let docker = DockerCli::new().with_host(format!("unix://{}/no-daemon.sock", tmp.path().display()));
    let err = docker
        .build_dockerfile(
            &context.join("Dockerfile"),
            &context,
            &cx(&context, &tmp.path().join("scratch"), "x"),
        )
        .unwrap_err();
    let text = format!("{err}\nhelp: {}", err.help());
    match &err {
        BuildError::DaemonUnreachable { stderr } => {
            assert!(stderr.contains("no-daemon.sock"), "{stderr}");
            assert!(text.contains("the docker daemon is not reachable"), "{text}");
        }
        // A machine without the docker CLI (CI installs only buildah).
        BuildError::ToolMissing { tool } => assert_eq!(*tool, "docker"),
        other => panic!("{other:?}"),
    }
    assert!(text.contains("HARMONY_BUILDER=buildah"), "{text}");
    assert!(!tmp.path().join("scratch/docker").exists(), "nothing was built");
    // A dry run finds the same fault without a Dockerfile.
    assert_eq!(docker.preflight().unwrap_err().to_string(), err.to_string());
}

#[test]
fn preflight_finds_buildah() {
    let buildah = Buildah::in_scratch(Path::new("/nonexistent"));
    assert_eq!(buildah.tool(), "buildah");
    buildah.preflight().expect("buildah is installed (scripts/test installs it)");
}

/// A dynamically linked entrypoint is caught before it is started in an empty
/// root, and said to be unable to run in a container.
#[test]
fn a_dynamic_entrypoint_is_refused_by_the_smoke_test() {
    let env = std::fs::read("/usr/bin/env").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cx = cx(dir.path(), &dir.path().join("scratch"), "env");
    let image = harmony::build::pack_binary(&cx, "env", env, Some(8080), "x86_64-unknown-linux-gnu").unwrap();
    let err = run_image(&image, &[], &HttpCheck::get("/healthz")).unwrap_err();
    assert!(
        err.why.contains("links dynamically and asks for /lib") && err.why.contains("cannot run in a container"),
        "{err:?}"
    );
    assert!(harmony::Diagnostic::help(&err).contains("build it static"), "{err:?}");
}

/// A Dockerfile whose context gets a workspace binary, built static: the
/// image holds the binary alone and it runs in an empty root.
#[test]
fn a_dockerfile_gets_its_static_binaries_and_the_image_runs_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = clone_fixture("hello", tmp.path(), "hello");
    let source = ImageSource::Dockerfile {
        dockerfile: ws.join("image/Dockerfile"),
        context: ws.join("image"),
        binaries: vec!["hello".into()],
    };
    assert!(
        source.describe().ends_with("with the static binaries `hello`)"),
        "{}",
        source.describe()
    );
    let scratch = tmp.path().join("scratch");
    let image = source.build(&cx(&ws, &scratch, "hello"), &Buildah::in_scratch(&scratch)).unwrap();
    assert!(!ws.join("image/hello").exists(), "the context itself is left as it was");
    let root = tmp.path().join("root");
    for index in 0..image.layers().len() {
        for (path, mode, bytes) in layer_entries(&image, index) {
            let at = root.join(&path);
            if path.ends_with('/') {
                std::fs::create_dir_all(&at).unwrap();
            } else {
                std::fs::create_dir_all(at.parent().unwrap()).unwrap();
                std::fs::write(&at, bytes).unwrap();
                std::fs::set_permissions(&at, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
            }
        }
    }
    let confinement = Confinement::here();
    let out = confinement.command(&root, "/app/hello").arg("docker").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello, docker\n", "{out:?}");
    // What a container runtime gives every container, the smoke test gives too.
    let out = confinement.command(&root, "/app/hello").arg("random").output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("random failed"),
        "an empty root has no /dev"
    );
    confinement.furnish(&root).unwrap();
    if confinement == Confinement::Chroot {
        let out = confinement.command(&root, "/app/hello").arg("random").output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "random ok\n", "{out:?}");
    }
    assert_eq!(config(&image)["config"]["Entrypoint"], serde_json::json!(["/app/hello"]));
}
