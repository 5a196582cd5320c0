//! The HTTP smoke test of a release (`smoke: http_get("/healthz")`), as the
//! `local` and `ci` topologies run it: the released image's layers are
//! unpacked into an empty directory and its entrypoint started there as the
//! root (`chroot` as root, `unshare --map-root-user --root` otherwise), so it
//! sees the image's files and none of the host's, as in a container; with the
//! environment its Deployment gives it and `PORT` set to a free port, it is
//! asked `GET <path>` until it answers 2xx or the time runs out. Where neither
//! way is open, it runs with the host's files and a warning says so. Whatever
//! it prints is kept for the error, with every secret value of the release
//! replaced by `<redacted>`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::object::Object;
use crate::oci::Artifact;
use crate::score::SmokeError;
use crate::secret::REDACTED;

/// What to ask a delivered service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    /// The path to `GET`, e.g. `/healthz`.
    pub path: String,
    /// How long the service may take to answer 2xx.
    pub timeout: Duration,
}

impl HttpCheck {
    /// A GET of `path` that passes on a 2xx answer.
    pub fn get(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            timeout: Duration::from_secs(15),
        }
    }
}

/// Run `image`'s entrypoint with the environment `objects` give its container, and check it.
pub fn run_image(image: &Artifact, objects: &[Object], check: &HttpCheck) -> Result<(), SmokeError> {
    let name = format!("GET {}", check.path);
    let fail = |why: String| SmokeError::new(name.clone(), why);
    let config: Value =
        serde_json::from_slice(image.config().bytes()).map_err(|e| fail(format!("the image config does not parse: {e}")))?;
    let (os, arch) = (
        config["os"].as_str().unwrap_or_default(),
        config["architecture"].as_str().unwrap_or_default(),
    );
    if os != std::env::consts::OS || arch != crate::build::oci_architecture() {
        return Err(fail(format!(
            "a {os}/{arch} image cannot run on this {}/{} machine",
            std::env::consts::OS,
            crate::build::oci_architecture()
        ))
        .with_help("run the release on a machine of the image's platform, or drop `smoke`"));
    }
    let entrypoint: Vec<String> = config["config"]["Entrypoint"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(config["config"]["Cmd"].as_array().into_iter().flatten())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let Some(program) = entrypoint.first() else {
        return Err(fail("the image has no entrypoint to start".into()));
    };
    let root = tempfile::tempdir().map_err(|e| fail(format!("no temporary directory: {e}")))?;
    for layer in image.layers() {
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.bytes()));
        archive
            .unpack(root.path())
            .map_err(|e| fail(format!("the image's layers do not unpack: {e}")))?;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| fail(format!("no free port: {e}")))?
        .port();
    let (env, secrets) = environment(objects, &config);
    let confinement = Confinement::here();
    if let Confinement::Host(why) = &confinement {
        tracing::warn!("the smoke test runs `{program}` with this machine's files, not in an empty root: {why}");
    } else if let Ok(binary) = std::fs::read(root.path().join(program.trim_start_matches('/')))
        && let Some(loader) = crate::build::dynamic_loader(&binary)
        && !root.path().join(loader.trim_start_matches('/')).exists()
    {
        return Err(fail(format!(
            "the entrypoint `{program}` links dynamically and asks for {loader}, which the image does not hold: it cannot run in a container"
        ))
        .with_help("build it static (a `RustBinary` is, unless a dependency forces a shared library), or start the image from a base that has its libraries"));
    }
    confinement
        .furnish(root.path())
        .map_err(|e| fail(format!("cannot prepare the image's root as a container runtime would: {e}")))?;
    let log_path = root.path().join(".harmony-smoke.log");
    let log = std::fs::File::create(&log_path).map_err(|e| fail(format!("cannot write the service's log: {e}")))?;
    let mut child = confinement
        .command(root.path(), program)
        .args(&entrypoint[1..])
        .env_clear()
        .envs(&env)
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| fail(e.to_string()))?)
        .stderr(log)
        .spawn()
        .map_err(|e| fail(format!("the entrypoint `{program}` does not start: {e}")))?;
    let deadline = Instant::now() + check.timeout;
    let mut last;
    let outcome = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("the service exited ({status}) before answering"));
        }
        match get(port, &check.path) {
            Ok(code) if (200..300).contains(&code) => break Ok(()),
            Ok(code) => last = format!("it answered {code}"),
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            break Err(format!("no 2xx answer within {} s ({last})", check.timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = child.kill();
    let _ = child.wait();
    outcome.map_err(|why| {
        let output = output_tail(&log_path, &secrets);
        fail(if output.is_empty() {
            why
        } else {
            format!("{why}; it printed:\n{output}")
        })
        .with_help("the release's later stages were not touched; fix the service and release a new version")
    })
}

/// How this machine starts a program with an image's files as its root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confinement {
    /// `chroot ROOT PROGRAM`: as root.
    Chroot,
    /// `unshare --map-root-user --root=ROOT PROGRAM`: in a user namespace.
    Unshare,
    /// Neither is open: the program runs from the unpacked files with the
    /// host's around it, for this reason.
    Host(String),
}

impl Confinement {
    /// The way open on this machine, tried in that order.
    pub fn here() -> Self {
        use std::os::unix::fs::MetadataExt as _;
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let works = |program: &str, args: &[&str]| {
            Command::new(program)
                .args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if root && works("chroot", &["/", "true"]) {
            Self::Chroot
        } else if works("unshare", &["--map-root-user", "--root=/", "true"]) {
            Self::Unshare
        } else {
            Self::Host("starting a process in an empty root needs root (chroot) or user namespaces (unshare)".into())
        }
    }

    /// Give `root` what a container runtime gives every container: `/dev`
    /// with `null`, `zero`, `full`, `random`, `urandom`, and a `/tmp` (as root;
    /// in a user namespace devices cannot be made, and the program runs
    /// without them).
    pub fn furnish(&self, root: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = root.join("tmp");
        std::fs::create_dir_all(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777))?;
        if *self != Self::Chroot {
            return Ok(());
        }
        let dev = root.join("dev");
        std::fs::create_dir_all(&dev)?;
        for (name, minor) in [("null", "3"), ("zero", "5"), ("full", "7"), ("random", "8"), ("urandom", "9")] {
            let node = dev.join(name);
            if node.exists() {
                continue;
            }
            let made = Command::new("mknod")
                .args(["-m", "0666"])
                .arg(&node)
                .args(["c", "1", minor])
                .stderr(Stdio::piped())
                .output()?;
            if !made.status.success() {
                return Err(std::io::Error::other(format!(
                    "mknod {}: {}",
                    node.display(),
                    String::from_utf8_lossy(&made.stderr).trim()
                )));
            }
        }
        Ok(())
    }

    /// The command that runs `program` (a path inside `root`) with `root` as `/`.
    pub fn command(&self, root: &Path, program: &str) -> Command {
        let mut command = match self {
            Self::Chroot => {
                let mut c = Command::new("chroot");
                c.arg(root).arg(program);
                c
            }
            Self::Unshare => {
                let mut c = Command::new("unshare");
                c.arg("--map-root-user").arg(format!("--root={}", root.display())).arg(program);
                c
            }
            Self::Host(_) => Command::new(root.join(program.trim_start_matches('/'))),
        };
        command.current_dir(root);
        command
    }
}

/// One HTTP/1.1 `GET`: the status code, or why there is none.
fn get(port: u16, path: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("not listening yet: {e}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
    // One write: a server may answer as soon as its first read returns.
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("the request was not taken: {e}"))?;
    // The status line may arrive in pieces: read until it is whole.
    let mut head = Vec::new();
    let mut chunk = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no answer: {e}")),
        }
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {line:?}"))
}

/// The environment the container of the pod template running this image
/// would have: literal values, ConfigMap keys and Secret keys the release
/// delivers. Also returns the secret values, to scrub from output.
fn environment(objects: &[Object], config: &Value) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    for kv in config["config"]["Env"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        if let Some((k, v)) = kv.split_once('=') {
            env.insert(k.into(), v.into());
        }
    }
    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .find(|o| o.id().kind == kind && o.id().name == name)
            .map(Object::body)
    };
    let secrets: Vec<String> = objects
        .iter()
        .filter(|o| o.id().is_secret())
        .flat_map(|o| {
            o.body()
                .get("stringData")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(|(_, v)| v.as_str().map(str::to_owned))
        })
        .collect();
    let container = objects
        .iter()
        .filter(|o| o.id().kind == "Deployment")
        .find_map(|o| o.body().pointer("/spec/template/spec/containers/0").cloned());
    let Some(container) = container else { return (env, secrets) };
    for from in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = from.pointer("/configMapRef/name").and_then(Value::as_str) {
            for (k, v) in find("ConfigMap", name).and_then(|b| b["data"].as_object()).into_iter().flatten() {
                env.insert(k.clone(), v.as_str().unwrap_or_default().to_owned());
            }
        }
    }
    for var in container["env"].as_array().into_iter().flatten() {
        let Some(name) = var["name"].as_str() else { continue };
        let value = if let Some(v) = var["value"].as_str() {
            Some(v.to_owned())
        } else if let Some(r) = var.pointer("/valueFrom/configMapKeyRef") {
            find("ConfigMap", r["name"].as_str().unwrap_or_default())
                .and_then(|b| b["data"][r["key"].as_str().unwrap_or_default()].as_str().map(str::to_owned))
        } else if let Some(r) = var.pointer("/valueFrom/secretKeyRef") {
            find("Secret", r["name"].as_str().unwrap_or_default())
                .and_then(|b| b["stringData"][r["key"].as_str().unwrap_or_default()].as_str().map(str::to_owned))
        } else {
            None
        };
        if let Some(v) = value {
            env.insert(name.to_owned(), v);
        }
    }
    (env, secrets)
}

/// The last lines the service printed, with every secret value redacted.
fn output_tail(path: &Path, secrets: &[String]) -> String {
    let mut text = std::fs::read_to_string(path).unwrap_or_default();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(s.as_str(), REDACTED);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
