//! A Rust binary as an image, built the way ko and Jib build theirs: no
//! daemon, no Dockerfile; the compiler's output packed into one layer.
//!
//! Reproducible across clones at different paths and times: paths in the
//! binary are remapped (`--remap-path-prefix` for the workspace, `CARGO_HOME`
//! and the target dir), debug info is off and symbols stripped,
//! `SOURCE_DATE_EPOCH` is fixed, the layer has fixed times and owners, and
//! the config has no build time. The workspace's own `RUSTFLAGS` (and
//! `build.rustflags`) are replaced, since flags such as `-C target-cpu=native`
//! would make the binary depend on the machine.
//!
//! The image has no base, so the binary is static: built for the host's musl
//! twin when that target is installed (`rustup target add
//! x86_64-unknown-linux-musl`), otherwise for the host's gnu target with the
//! C runtime linked in (`-C target-feature=+crt-static`, which needs the
//! libc's static archive: Debian's `libc6-dev`). The result is checked: a
//! binary that still asks for a dynamic loader (a `-sys` crate that insists
//! on a shared library) is refused, naming it. With glibc linked statically,
//! name lookups through NSS (`/etc/nsswitch.conf` modules) are not available
//! in the image; numeric addresses and DNS by IP work.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

use super::{BuildCx, BuildError, Buildable, LABEL_TITLE, LABEL_VERSION, io, oci_architecture, rfc3339, run};
use crate::oci::layer::LayerBuilder;
use crate::oci::{Artifact, Blob, media};

/// The label naming the Rust target the binary was built for.
pub const LABEL_TARGET: &str = "dev.harmony.build.target";
/// The label saying whether the binary runs without a libc in the image.
pub const LABEL_LINKAGE: &str = "dev.harmony.build.linkage";

/// The PATH of the image's environment.
const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A binary of a workspace package, packed at `/app/<bin>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RustBinary {
    /// The cargo package (`-p`).
    pub package: String,
    /// The binary (`--bin`); the package's name when `None`.
    pub bin: Option<String>,
    /// The TCP port the binary listens on, declared in `ExposedPorts`.
    pub port: Option<u16>,
}

impl RustBinary {
    /// The binary of workspace package `package`.
    pub fn new(package: impl Into<String>) -> Self {
        Self {
            package: package.into(),
            bin: None,
            port: None,
        }
    }

    /// Its binary target `bin`, when the package has several.
    pub fn bin(mut self, bin: impl Into<String>) -> Self {
        self.bin = Some(bin.into());
        self
    }

    /// The TCP port the binary listens on (the image exposes it).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The binary's name.
    pub fn bin_name(&self) -> &str {
        self.bin.as_deref().unwrap_or(&self.package)
    }

    /// Where this build's cargo target directory is.
    pub fn target_dir(cx: &BuildCx) -> PathBuf {
        cx.scratch.join("cargo-target")
    }

    /// The `cargo build` this build runs (in `workspace`), with its environment.
    fn cargo(&self, workspace: &Path, target_dir: &Path, triple: &str, epoch: u64) -> Command {
        let mut remaps = Vec::new();
        if triple.ends_with("-gnu") {
            // Static for the target only: build scripts and proc macros stay host binaries.
            remaps.push("-Ctarget-feature=+crt-static".to_owned());
        }
        if let Some(home) = cargo_home() {
            remaps.push(format!("--remap-path-prefix={}=/cargo", home.display()));
        }
        remaps.push(format!("--remap-path-prefix={}=.", workspace.display()));
        // The target dir last: when it is inside the workspace, its mapping must win.
        remaps.push(format!("--remap-path-prefix={}=/target", target_dir.display()));
        let mut cmd = Command::new("cargo");
        cmd.current_dir(workspace)
            .args([
                "build",
                "--release",
                "--locked",
                "-p",
                &self.package,
                "--bin",
                self.bin_name(),
                "--target",
                triple,
            ])
            .env("CARGO_TARGET_DIR", target_dir)
            .env("CARGO_ENCODED_RUSTFLAGS", remaps.join("\u{1f}"))
            .env_remove("RUSTFLAGS")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "0")
            .env("CARGO_PROFILE_RELEASE_STRIP", "true")
            .env("CARGO_INCREMENTAL", "0")
            .env("CARGO_TERM_COLOR", "never")
            .env("SOURCE_DATE_EPOCH", epoch.to_string());
        cmd
    }
}

impl RustBinary {
    /// Build the binary, static, and return its bytes and the target it was
    /// built for.
    pub fn compile(&self, cx: &BuildCx) -> Result<(Vec<u8>, String), BuildError> {
        let workspace = cx.workspace.canonicalize().map_err(io("find the workspace", &cx.workspace))?;
        let target_dir = Self::target_dir(cx);
        std::fs::create_dir_all(&target_dir).map_err(io("create", &target_dir))?;
        let target_dir = target_dir.canonicalize().map_err(io("find", &target_dir))?;
        let target = Target::choose(&workspace)?;
        run("cargo", &mut self.cargo(&workspace, &target_dir, &target.triple, cx.epoch))?;
        let bin = self.bin_name();
        let path = target_dir
            .join(&target.triple)
            .join("release")
            .join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
        let binary = std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => BuildError::OutputMissing {
                tool: "cargo",
                what: "binary",
                path: path.clone(),
            },
            _ => io("read", &path)(e),
        })?;
        if let Some(loader) = dynamic_loader(&binary) {
            return Err(BuildError::NotStatic { binary: path, loader });
        }
        Ok((binary, target.triple))
    }
}

impl Buildable for RustBinary {
    fn build(&self, cx: &BuildCx) -> Result<Artifact, BuildError> {
        let (binary, triple) = self.compile(cx)?;
        pack_binary(cx, self.bin_name(), binary, self.port, &triple)
    }

    fn describe(&self) -> String {
        format!("rust binary `{}` of package `{}`", self.bin_name(), self.package)
    }
}

/// The Rust target a binary is built for.
#[derive(Clone, Debug)]
struct Target {
    triple: String,
}

impl Target {
    /// The host's musl twin when it is installed, else the host.
    fn choose(workspace: &Path) -> Result<Self, BuildError> {
        let out = run("rustc", Command::new("rustc").current_dir(workspace).arg("-vV"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        let host = text
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .map(str::trim)
            .ok_or_else(|| BuildError::OutputMissing {
                tool: "rustc",
                what: "host target (`rustc -vV`)",
                path: workspace.into(),
            })?
            .to_owned();
        let musl = host.strip_suffix("-linux-gnu").map(|arch| format!("{arch}-linux-musl"));
        if let Some(musl) = musl {
            // Without rustup (a distribution's Rust) there is no way to ask: use the host.
            let installed = Command::new("rustup")
                .current_dir(workspace)
                .args(["target", "list", "--installed"])
                .stdin(std::process::Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .is_some_and(|o| String::from_utf8_lossy(&o.stdout).lines().any(|l| l.trim() == musl));
            if installed {
                return Ok(Self { triple: musl });
            }
        }
        Ok(Self { triple: host })
    }
}

fn cargo_home() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    Some(home.canonicalize().unwrap_or(home))
}

/// The dynamic loader an ELF binary asks for (its `PT_INTERP`), `None` for
/// a static binary (or bytes that are not a 64-bit little-endian ELF file).
pub fn dynamic_loader(binary: &[u8]) -> Option<String> {
    const PT_INTERP: u32 = 3;
    let field = |at: usize, len: usize| binary.get(at..at + len);
    if field(0, 4)? != b"\x7fELF" || field(4, 1)? != [2] || field(5, 1)? != [1] {
        return None;
    }
    let u64_at = |at| field(at, 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
    let u16_at = |at| field(at, 2).map(|b| u16::from_le_bytes(b.try_into().unwrap_or_default()));
    let (phoff, phentsize, phnum) = (
        usize::try_from(u64_at(0x20)?).ok()?,
        usize::from(u16_at(0x36)?),
        usize::from(u16_at(0x38)?),
    );
    (0..phnum).find_map(|i| {
        let header = phoff + i * phentsize;
        if u32::from_le_bytes(field(header, 4)?.try_into().ok()?) != PT_INTERP {
            return None;
        }
        let (offset, size) = (
            usize::try_from(u64_at(header + 8)?).ok()?,
            usize::try_from(u64_at(header + 32)?).ok()?,
        );
        let path = field(offset, size)?;
        Some(String::from_utf8_lossy(path.strip_suffix(b"\0").unwrap_or(path)).into_owned())
    })
}

/// Pack `binary` into an image: one layer holding `app/<bin>` (mode 0755),
/// and a config that runs it, declares `port`, and dates everything at
/// `cx.epoch`. The same inputs give the same digest.
pub fn pack_binary(cx: &BuildCx, bin: &str, binary: Vec<u8>, port: Option<u16>, triple: &str) -> Result<Artifact, BuildError> {
    let loader = dynamic_loader(&binary);
    let mut layer = LayerBuilder::new();
    layer.file(&format!("app/{bin}"), 0o755, binary);
    let layer = layer
        .build(media::LAYER_TAR_GZIP)
        .map_err(|source| BuildError::Oci { tool: "harmony", source })?;
    let linkage = match loader {
        None => "static: runs in an image without a base".to_owned(),
        Some(loader) => format!("dynamic: it needs {loader} and the libraries of {triple} in the image"),
    };
    let created = rfc3339(cx.epoch);
    let mut config = json!({
        "created": created,
        "architecture": oci_architecture(),
        "os": std::env::consts::OS,
        "config": {
            "Entrypoint": [format!("/app/{bin}")],
            "Env": [PATH],
            "Labels": {
                LABEL_TITLE: cx.name,
                LABEL_VERSION: cx.version.to_string(),
                LABEL_TARGET: triple,
                LABEL_LINKAGE: linkage,
            },
        },
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
        "history": [{"created": created, "created_by": format!("harmony RustBinary: cargo build --release --bin {bin}")}],
    });
    if let Some(port) = port {
        config["config"]["ExposedPorts"] = json!({ format!("{port}/tcp"): {} });
    }
    let config = serde_json::to_vec(&config).expect("an image config is plain JSON");
    Ok(Artifact::new(Blob::new(media::IMAGE_CONFIG, config), vec![layer.blob]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::Version;

    fn cx() -> BuildCx {
        BuildCx::new("/ws", "/scratch", "webapp-server", Version::new(0, 1, 0))
    }

    fn config(a: &Artifact) -> serde_json::Value {
        serde_json::from_slice(a.config().bytes()).unwrap()
    }

    #[test]
    fn the_config_runs_the_binary_and_carries_no_build_time() {
        let a = pack_binary(&cx(), "server", b"\x7fELF".to_vec(), Some(8080), "x86_64-unknown-linux-gnu").unwrap();
        let c = config(&a);
        assert_eq!(c["config"]["Entrypoint"], json!(["/app/server"]));
        assert_eq!(c["config"]["ExposedPorts"], json!({"8080/tcp": {}}));
        assert_eq!(c["created"], "1970-01-01T00:00:00Z");
        assert_eq!(c["history"][0]["created"], "1970-01-01T00:00:00Z");
        assert_eq!(c["config"]["Labels"][LABEL_VERSION], "0.1.0");
        assert_eq!(c["config"]["Labels"][LABEL_TITLE], "webapp-server");
        assert_eq!(c["config"]["Labels"][LABEL_TARGET], "x86_64-unknown-linux-gnu");
        assert_eq!(c["rootfs"]["diff_ids"].as_array().unwrap().len(), 1);
        assert_eq!(a.layers().len(), 1);
    }

    #[test]
    fn packing_is_deterministic_and_depends_on_every_input() {
        let pack = |cx: &BuildCx, bytes: &[u8], port| pack_binary(cx, "server", bytes.to_vec(), port, "x86_64-unknown-linux-musl").unwrap();
        let a = pack(&cx(), b"one", None);
        assert_eq!(a.digest(), pack(&cx(), b"one", None).digest());
        assert_ne!(a.digest(), pack(&cx(), b"two", None).digest());
        assert_ne!(a.digest(), pack(&cx(), b"one", Some(80)).digest());
        let dated = pack(&cx().with_epoch(1_700_000_000), b"one", None);
        assert_eq!(config(&dated)["created"], "2023-11-14T22:13:20Z");
        assert!(config(&a).get("config").unwrap().get("ExposedPorts").is_none());
        assert!(
            config(&a)["config"]["Labels"][LABEL_LINKAGE]
                .as_str()
                .unwrap()
                .starts_with("static")
        );
    }

    #[test]
    fn cargo_runs_from_an_argument_vector_with_the_reproducibility_settings() {
        let b = RustBinary::new("webapp").bin("server").port(8080);
        let cmd = b.cargo(Path::new("/my ws"), Path::new("/my ws/target/x"), "x86_64-unknown-linux-gnu", 0);
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "build",
                "--release",
                "--locked",
                "-p",
                "webapp",
                "--bin",
                "server",
                "--target",
                "x86_64-unknown-linux-gnu"
            ]
        );
        let env: std::collections::BTreeMap<_, _> = cmd
            .get_envs()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.map(|v| v.to_string_lossy().into_owned())))
            .collect();
        let flags = env["CARGO_ENCODED_RUSTFLAGS"].clone().unwrap();
        let flags: Vec<&str> = flags.split('\u{1f}').collect();
        assert!(
            flags.ends_with(&["--remap-path-prefix=/my ws=.", "--remap-path-prefix=/my ws/target/x=/target"]),
            "{flags:?}"
        );
        assert_eq!(flags[0], "-Ctarget-feature=+crt-static", "static on the gnu target");
        assert_eq!(env["RUSTFLAGS"], None, "the caller's RUSTFLAGS are removed");
        assert_eq!(env["CARGO_PROFILE_RELEASE_STRIP"].as_deref(), Some("true"));
        assert_eq!(env["CARGO_PROFILE_RELEASE_DEBUG"].as_deref(), Some("0"));
        assert_eq!(env["SOURCE_DATE_EPOCH"].as_deref(), Some("0"));
        assert_eq!(b.describe(), "rust binary `server` of package `webapp`");
    }

    #[test]
    fn the_dynamic_loader_of_an_elf_binary_is_read_from_its_program_headers() {
        // A host tool of this machine is dynamically linked; its loader is named.
        let env = std::fs::read("/usr/bin/env").unwrap();
        let loader = dynamic_loader(&env).expect("a distribution's binary is dynamic");
        assert!(loader.starts_with("/lib") && loader.contains("ld-linux"), "{loader}");
        assert_eq!(dynamic_loader(b"#!/bin/sh\n"), None);
        assert_eq!(dynamic_loader(b"\x7fELF"), None, "truncated");
        let packed = pack_binary(&cx(), "env", env, None, "x86_64-unknown-linux-gnu").unwrap();
        let label = config(&packed)["config"]["Labels"][LABEL_LINKAGE].as_str().unwrap().to_owned();
        assert!(label.starts_with("dynamic: it needs /lib"), "{label}");
    }
}
