//! Container builders: three ways to turn a source into an OCI image
//! ([`Artifact`]: a config blob and layer blobs).
//!
//! * [`RustBinary`]: a daemonless, in-process build, the way ko and Jib do it:
//!   `cargo build` with reproducibility settings, then the binary packed into
//!   one layer by [`LayerBuilder`](crate::oci::layer::LayerBuilder). The same
//!   sources give the same digest on every clone, at any path and time.
//! * [`Buildah`]: a Dockerfile built by buildah in a private, rootless-style
//!   store (`--storage-driver vfs --isolation chroot`), timestamps clamped.
//! * [`DockerCli`]: a Dockerfile built by the docker CLI; needs a daemon.
//!
//! A Dockerfile build is reproducible only as far as the Dockerfile is (a
//! `RUN apt-get install` is not); [`RustBinary`] is reproducible by
//! construction. Every external tool runs from an argument vector, never a
//! shell string, and a failing tool's stderr is carried in the error.

mod buildah;
mod docker;
mod rust_binary;

use std::fmt::{self, Debug};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use buildah::Buildah;
pub use docker::DockerCli;
pub use rust_binary::{RustBinary, dynamic_loader, pack_binary};

use crate::oci::{Artifact, OciError};
use crate::release::Version;
pub(crate) use crate::time::rfc3339;

/// The environment variable that picks the Dockerfile builder: `buildah`
/// (the default: daemonless) or `docker`. Read once, by [`DockerfileTool::from_env`].
pub const BUILDER_ENV: &str = "HARMONY_BUILDER";

/// The OCI label that names the image.
pub const LABEL_TITLE: &str = "org.opencontainers.image.title";
/// The OCI label that carries the image's version.
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";

/// Where an image comes from.
#[derive(Clone, Debug)]
pub enum ImageSource {
    /// A Dockerfile and its build context, built by a [`DockerfileBuilder`].
    /// `binaries` names workspace packages whose binaries are built static
    /// ([`RustBinary`]) and put at the root of a copy of the context, by
    /// their names, so that `FROM scratch` + `COPY <name> …` makes an image
    /// of a program built here.
    Dockerfile {
        /// The Dockerfile to build. In an app's declaration, relative to the declaring crate.
        dockerfile: PathBuf,
        /// The build context directory. In an app's declaration, relative to the declaring crate.
        context: PathBuf,
        /// The workspace packages whose static binaries are added to the context; empty
        /// when the context is used as it is.
        binaries: Vec<String>,
    },
    /// A daemonless, in-process build (e.g. [`RustBinary`]).
    Buildable(Arc<dyn Buildable>),
}

impl ImageSource {
    /// Build this source: a Dockerfile with `dockerfiles`, a [`Buildable`] by itself.
    pub fn build(&self, cx: &BuildCx, dockerfiles: &dyn DockerfileBuilder) -> Result<Artifact, BuildError> {
        match self {
            Self::Dockerfile {
                dockerfile,
                context,
                binaries,
            } if binaries.is_empty() => dockerfiles.build_dockerfile(dockerfile, context, cx),
            Self::Dockerfile {
                dockerfile,
                context,
                binaries,
            } => {
                let staged = cx.scratch.join("context");
                if staged.exists() {
                    std::fs::remove_dir_all(&staged).map_err(io("clear", &staged))?;
                }
                copy_tree(context, &staged)?;
                for package in binaries {
                    let (binary, _) = RustBinary::new(package).compile(cx)?;
                    let path = staged.join(package);
                    std::fs::write(&path, binary).map_err(io("write", &path))?;
                    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                        .map_err(io("set the mode of", &path))?;
                }
                dockerfiles.build_dockerfile(dockerfile, &staged, cx)
            }
            Self::Buildable(b) => b.build(cx),
        }
    }

    /// Check, without building, what a build of this source needs and can
    /// know at once: a Dockerfile and its context are there, and the tool
    /// that builds it can run here. A release checks it before any compiling.
    pub fn check(&self, dockerfiles: &dyn DockerfileBuilder) -> Result<(), BuildError> {
        match self {
            Self::Dockerfile { dockerfile, context, .. } => {
                check_dockerfile(dockerfile, context)?;
                dockerfiles.preflight()
            }
            Self::Buildable(_) => Ok(()),
        }
    }

    /// One line for plans and logs.
    pub fn describe(&self) -> String {
        match self {
            Self::Dockerfile {
                dockerfile,
                context,
                binaries,
            } if binaries.is_empty() => format!("Dockerfile `{}` (context `{}`)", dockerfile.display(), context.display()),
            Self::Dockerfile {
                dockerfile,
                context,
                binaries,
            } => format!(
                "Dockerfile `{}` (context `{}`, with the static binaries {})",
                dockerfile.display(),
                context.display(),
                binaries.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
            ),
            Self::Buildable(b) => b.describe(),
        }
    }
}

/// A daemonless build that runs in this process (and the tools it calls).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a build recipe: `Buildable(..)` takes one",
    label = "not a build recipe",
    note = "a build recipe implements `harmony::build::Buildable`; `harmony::build::RustBinary::new(\"my-crate\")` builds a crate of the workspace into an image",
    note = "an image built from a Dockerfile is `image: Dockerfile(\"path\")`"
)]
pub trait Buildable: Send + Sync + Debug {
    /// Build the image.
    fn build(&self, cx: &BuildCx) -> Result<Artifact, BuildError>;
    /// What is built, in one line (`rust binary `server` of package `webapp``).
    fn describe(&self) -> String;
}

/// A tool that builds Dockerfiles into images.
pub trait DockerfileBuilder: Send + Sync + Debug {
    /// The tool's name (`buildah`, `docker`).
    fn tool(&self) -> &'static str;
    /// Check, without building, that the tool can build here (installed,
    /// its daemon reachable): what a dry run reports before any build starts.
    fn preflight(&self) -> Result<(), BuildError>;
    /// Build `dockerfile` with `context` as its build context.
    fn build_dockerfile(&self, dockerfile: &Path, context: &Path, cx: &BuildCx) -> Result<Artifact, BuildError>;
}

/// What builds Dockerfiles (`HARMONY_BUILDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DockerfileTool {
    /// Daemonless (the default).
    #[default]
    Buildah,
    /// The docker CLI and its daemon.
    Docker,
}

impl DockerfileTool {
    /// The tool `HARMONY_BUILDER` names; buildah when it is unset. Topologies
    /// read it when they are set up, so a bad value stops a run before any work.
    pub fn from_env() -> Result<Self, crate::errors::TopologyError> {
        let bad = |why: String| crate::errors::TopologyError::BadSetting { var: BUILDER_ENV, why };
        match std::env::var(BUILDER_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(Self::Buildah),
            Err(std::env::VarError::NotUnicode(_)) => Err(bad("it is not valid UTF-8".into())),
            Ok(v) => match v.trim() {
                "" | "buildah" => Ok(Self::Buildah),
                "docker" => Ok(Self::Docker),
                other => Err(bad(format!("`{other}` is not `buildah` or `docker`"))),
            },
        }
    }

    /// The builder, its state kept under `scratch`.
    pub fn builder(self, scratch: &Path) -> Box<dyn DockerfileBuilder> {
        match self {
            Self::Buildah => Box::new(Buildah::in_scratch(scratch)),
            Self::Docker => Box::new(DockerCli::new()),
        }
    }
}

/// What a build knows about where it runs and what it makes.
#[derive(Clone, Debug)]
pub struct BuildCx {
    /// The root of the workspace the sources live in (`cargo` runs there).
    pub workspace: PathBuf,
    /// A directory the builders own: target dirs, private stores, outputs.
    pub scratch: PathBuf,
    /// The image's name (`webapp-server`), for labels.
    pub name: String,
    /// The image's version, for labels.
    pub version: Version,
    /// Seconds since the Unix epoch stamped on everything a build dates
    /// (`SOURCE_DATE_EPOCH`); `0` unless set, so builds do not depend on when they run.
    pub epoch: u64,
}

impl BuildCx {
    /// A build of release `name` at `version` in `workspace`, with `scratch` for its intermediate files.
    pub fn new(workspace: impl Into<PathBuf>, scratch: impl Into<PathBuf>, name: impl Into<String>, version: Version) -> Self {
        Self {
            workspace: workspace.into(),
            scratch: scratch.into(),
            name: name.into(),
            version,
            epoch: 0,
        }
    }

    /// Date the build at `epoch` (e.g. the last commit's time) instead of 1970.
    pub fn with_epoch(mut self, epoch: u64) -> Self {
        self.epoch = epoch;
        self
    }
}

/// Copy the files of `from` (a build context: small, no symlinks followed
/// out of it) into `to`.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BuildError> {
    if !from.is_dir() {
        return Err(BuildError::ContextMissing { path: from.to_owned() });
    }
    std::fs::create_dir_all(to).map_err(io("create", to))?;
    for entry in std::fs::read_dir(from).map_err(io("read", from))? {
        let entry = entry.map_err(io("read", from))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io("read", &source))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            std::fs::copy(&source, &target).map_err(io("copy", &source))?;
        }
    }
    Ok(())
}

/// Why a build failed. Tools' stderr is kept (its tail); nothing else from
/// the environment is, so no secret reaches an error.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A tool the build runs (buildah, docker, cargo) is not on `PATH`.
    #[error("`{tool}` is not installed (not found on PATH)")]
    ToolMissing {
        /// The tool that was not found.
        tool: &'static str,
    },
    /// A tool is on `PATH` but could not be started, or waiting for it failed.
    #[error("could not run `{tool}`: {source}")]
    Spawn {
        /// The tool.
        tool: &'static str,
        /// Why it could not run.
        source: std::io::Error,
    },
    /// The Dockerfile an image source names is not a file. Checked before any build.
    #[error("the Dockerfile `{}` does not exist", path.display())]
    DockerfileMissing {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// The build context an image source names is not a directory. Checked before any build.
    #[error("the build context `{}` is not a directory", path.display())]
    ContextMissing {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// The docker CLI runs, but its daemon does not answer. Asked before a docker build.
    #[error("the docker daemon is not reachable:\n{stderr}")]
    DaemonUnreachable {
        /// The last lines of what `docker version` printed on stderr.
        stderr: String,
    },
    /// A tool ran and exited with a failure: a Dockerfile step, a compile error, an export.
    #[error("`{command}` failed ({status}):\n{stderr}")]
    ToolFailed {
        /// The tool that failed.
        tool: &'static str,
        /// The command that was run, quoted for reading (it never goes through a shell).
        command: String,
        /// How it exited, e.g. `exit status: 1`.
        status: String,
        /// The last lines (at most 60) of what it printed on stderr.
        stderr: String,
    },
    /// A tool exited successfully, but what it should have written is not there.
    #[error("`{tool}` succeeded but wrote no {what} at `{}`", path.display())]
    OutputMissing {
        /// The tool that ran.
        tool: &'static str,
        /// What was expected: an image, a binary, an index file, a line of output.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The image a tool wrote cannot be read back (a malformed layout or archive, a
    /// blob that does not match its digest), or a binary could not be packed into a layer.
    #[error("the image `{tool}` wrote could not be read: {source}")]
    Oci {
        /// The tool that wrote the image; `harmony` when it packed the layer itself.
        tool: &'static str,
        /// What is wrong with the image.
        source: OciError,
    },
    /// A file or directory of the build could not be read, written, copied or removed.
    #[error("could not {action} `{}`: {source}", path.display())]
    Io {
        /// What was being done, as a verb: `read`, `copy`, `create`.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A path under the scratch directory cannot be passed to a tool (buildah's `oci:`
    /// destination cannot hold `:`).
    #[error("`{}` cannot be used by `{tool}`: {why}", path.display())]
    UnusablePath {
        /// The tool that cannot take it.
        tool: &'static str,
        /// The path.
        path: PathBuf,
        /// What the tool cannot take in it.
        why: &'static str,
    },
    /// A tool ran longer than `HARMONY_BUILD_TIMEOUT` allows (30 minutes unless set)
    /// and was killed.
    #[error("`{command}` did not finish within {seconds} s and was stopped")]
    TimedOut {
        /// The tool that was stopped.
        tool: &'static str,
        /// The command that was run, quoted for reading.
        command: String,
        /// The time it was allowed, in seconds.
        seconds: u64,
    },
    /// A binary built to run in an image without a base links dynamically (it names an
    /// ELF interpreter), so it would not start there.
    #[error("`{}` links dynamically (it asks for the loader {loader}), so it cannot run in an image without a base", binary.display())]
    NotStatic {
        /// The built binary.
        binary: PathBuf,
        /// The dynamic loader it asks for, e.g. `/lib64/ld-linux-x86-64.so.2`.
        loader: String,
    },
}

impl crate::Diagnostic for BuildError {
    fn help(&self) -> String {
        match self {
            Self::ToolMissing { tool: "buildah" } => {
                "buildah is not installed: apt-get install buildah (or dnf install buildah), or use docker (HARMONY_BUILDER=docker)".into()
            }
            Self::ToolMissing { tool: "docker" } => {
                "the docker CLI is not installed: install docker and start its daemon, or use buildah (HARMONY_BUILDER=buildah)".into()
            }
            Self::ToolMissing { tool: tool @ ("cargo" | "rustc") } => format!("{tool} is not installed: install Rust with rustup (https://rustup.rs)"),
            Self::ToolMissing { tool } => format!("install `{tool}` and make sure it is on PATH"),
            Self::Spawn { tool, .. } => format!("check that `{tool}` on PATH is executable"),
            Self::DockerfileMissing { .. } => "check the `dockerfile` path of the image source".into(),
            Self::ContextMissing { .. } => "check the `context` path of the image source: it must be a directory".into(),
            Self::DaemonUnreachable { .. } => {
                "the docker daemon is not reachable: start it (`systemctl start docker`) or set DOCKER_HOST, or use buildah (HARMONY_BUILDER=buildah)".into()
            }
            Self::ToolFailed { tool: "cargo", stderr, .. } => cargo_help(stderr),
            Self::ToolFailed { tool: "rustc", .. } => {
                "the Rust toolchain does not answer `rustc -vV`: run it by hand, and repair or reinstall the toolchain".into()
            }
            Self::ToolFailed { tool, .. } => format!("fix what `{tool}` reports above (the Dockerfile or its context), then rerun"),
            Self::OutputMissing { tool, .. } => format!("rerun; if it persists, run the command by hand and check what `{tool}` writes"),
            Self::Oci { .. } => "remove the builder's scratch directory and rerun".into(),
            Self::Io { .. } => "check the path's permissions and free space, then rerun".into(),
            Self::UnusablePath { .. } => "move the scratch directory to a path without `:`".into(),
            Self::NotStatic { .. } => {
                "a dependency forces a shared C library (a `-sys` crate built without its static feature): enable its static or \
                 vendored feature, or install the musl target (`rustup target add x86_64-unknown-linux-musl`)"
                    .into()
            }
            Self::TimedOut { tool, .. } => {
                format!("find what `{tool}` waits for (rerun with `{LOG_ENV}=1` to see its output), or allow more time with `{TIMEOUT_ENV}=<seconds>`")
            }
        }
    }
}

fn cargo_help(stderr: &str) -> String {
    if stderr.contains("did not match any packages") || stderr.contains("no bin target named") {
        "the package or binary is not in the workspace: check `package` and `bin` against `cargo metadata --no-deps`".into()
    } else if stderr.contains("--locked") {
        "Cargo.lock is missing or out of date: run `cargo update --workspace`, commit Cargo.lock, then rerun".into()
    } else if stderr.contains("cannot find -lc") || stderr.contains("cannot find -lm") {
        "the static C library is missing for `crt-static`: install it (Debian: `apt-get install libc6-dev`), then rerun".into()
    } else if stderr.contains("target may not be installed") {
        "install the target (`rustup target add …`) or remove it".into()
    } else {
        "fix the compile error cargo reports above, then rerun".into()
    }
}

/// How much of a tool's stderr an error keeps: its end, where the cause is.
const STDERR_TAIL_LINES: usize = 60;

fn stderr_tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let skip = lines.len().saturating_sub(STDERR_TAIL_LINES);
    let mut tail = lines[skip..].join("\n");
    if skip > 0 {
        tail.insert_str(0, &format!("[… {skip} earlier lines]\n"));
    }
    tail
}

/// An argument vector as a person would type it, for messages only (it is
/// never run through a shell).
fn shown(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| {
            let a = a.to_string_lossy();
            if a.is_empty() || a.contains(char::is_whitespace) {
                format!("'{a}'")
            } else {
                a.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run `cmd` to completion, capturing its output; a non-zero exit becomes
/// [`BuildError::ToolFailed`] with its stderr.
fn run(tool: &'static str, cmd: &mut Command) -> Result<Output, BuildError> {
    let output = spawn(tool, cmd)?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(failed(tool, cmd, &output))
    }
}

/// How long one build tool may run (`HARMONY_BUILD_TIMEOUT`, in seconds).
pub const TIMEOUT_ENV: &str = "HARMONY_BUILD_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// `1` shows what build tools print as they run, even when no one watches.
pub const LOG_ENV: &str = "HARMONY_BUILD_LOG";

/// Run `cmd` to completion, capturing its output, whatever its exit status.
/// What it prints on stderr is shown as it comes when a person is watching
/// (or `HARMONY_BUILD_LOG=1`); it is killed after `HARMONY_BUILD_TIMEOUT`.
fn spawn(tool: &'static str, cmd: &mut Command) -> Result<Output, BuildError> {
    use std::io::IsTerminal;
    let timeout = std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let echo = std::io::stderr().is_terminal() || std::env::var_os(LOG_ENV).is_some_and(|v| v == "1");
    spawn_within(tool, cmd, timeout, echo)
}

fn spawn_within(tool: &'static str, cmd: &mut Command, timeout: Duration, echo: bool) -> Result<Output, BuildError> {
    use std::io::{BufRead, Read};
    use std::process::Stdio;

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            ErrorKind::NotFound => BuildError::ToolMissing { tool },
            _ => BuildError::Spawn { tool, source },
        })?;
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let mut lines = std::io::BufReader::new(stderr);
        let mut line = Vec::new();
        while lines.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
            if echo {
                eprint!("    {tool} | {}", String::from_utf8_lossy(&line));
            }
            buf.extend_from_slice(&line);
            line.clear();
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(BuildError::TimedOut {
                    tool,
                    command: shown(cmd),
                    seconds: timeout.as_secs(),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(source) => return Err(BuildError::Spawn { tool, source }),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Ok(Output { status, stdout, stderr })
}

fn failed(tool: &'static str, cmd: &Command, output: &Output) -> BuildError {
    BuildError::ToolFailed {
        tool,
        command: shown(cmd),
        status: output.status.to_string(),
        stderr: stderr_tail(&output.stderr),
    }
}

fn check_dockerfile(dockerfile: &Path, context: &Path) -> Result<(), BuildError> {
    if !dockerfile.is_file() {
        return Err(BuildError::DockerfileMissing { path: dockerfile.into() });
    }
    if !context.is_dir() {
        return Err(BuildError::ContextMissing { path: context.into() });
    }
    Ok(())
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BuildError {
    let path = path.to_owned();
    move |source| BuildError::Io { action, path, source }
}

/// A fresh, empty directory at `path`.
fn fresh_dir(path: &Path) -> Result<(), BuildError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io("remove", path)(e)),
    }
    std::fs::create_dir_all(path).map_err(io("create", path))
}

/// The OCI name of this machine's CPU architecture.
pub fn oci_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

impl fmt::Display for ImageSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic as _;

    #[test]
    fn stderr_keeps_its_tail() {
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.starts_with("[… 40 earlier lines]\nline 40\n"), "{tail}");
        assert!(tail.ends_with("line 99"));
        assert_eq!(stderr_tail(b"one\ntwo\n"), "one\ntwo");
    }

    #[test]
    fn commands_are_shown_quoted_but_never_run_through_a_shell() {
        let mut cmd = Command::new("buildah");
        cmd.args(["bud", "-f", "/my dir/Dockerfile", ""]);
        assert_eq!(shown(&cmd), "buildah bud -f '/my dir/Dockerfile' ''");
    }

    #[test]
    fn a_missing_tool_is_named_with_how_to_install_it() {
        let err = run("buildah", &mut Command::new("/nonexistent/harmony-no-such-tool")).unwrap_err();
        assert!(matches!(err, BuildError::ToolMissing { tool: "buildah" }), "{err:?}");
        assert!(err.help().contains("apt-get install buildah"), "{}", err.help());
    }

    #[test]
    fn a_tool_that_hangs_is_stopped_at_the_timeout() {
        let started = std::time::Instant::now();
        let err = super::spawn_within("sleep", Command::new("sleep").arg("30"), Duration::from_millis(300), false).unwrap_err();
        assert!(matches!(err, BuildError::TimedOut { seconds: 0, .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(
            err.help().contains("HARMONY_BUILD_TIMEOUT") && err.help().contains("HARMONY_BUILD_LOG=1"),
            "{}",
            err.help()
        );
        let out = super::spawn_within("echo", Command::new("echo").arg("out"), Duration::from_secs(10), false).unwrap();
        assert_eq!(out.stdout, b"out\n");
        let out = super::spawn_within(
            "ls",
            Command::new("ls").arg("/no/such/path/for/harmony"),
            Duration::from_secs(10),
            false,
        )
        .unwrap();
        assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("/no/such/path/for/harmony"));
    }
}
