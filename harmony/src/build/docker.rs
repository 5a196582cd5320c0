//! Dockerfiles built by the docker CLI: `docker build`, then `docker save`
//! to a tarball read back into an [`Artifact`]. This needs a running docker
//! daemon; it is asked first (`docker version`), so that its absence is one
//! clear error rather than a failed build.
//!
//! `docker save` writes an OCI image layout (docker 25 and later) or the older
//! docker archive (`manifest.json`); both are read. Layers saved by docker are
//! uncompressed tars and keep that media type. `SOURCE_DATE_EPOCH` is passed
//! to the build (BuildKit uses it for the image's dates).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::{BuildCx, BuildError, DockerfileBuilder, LABEL_TITLE, LABEL_VERSION, check_dockerfile, failed, fresh_dir, io, run, spawn};
use crate::oci::layout::Layout;
use crate::oci::{Artifact, Descriptor, Digest, Manifest, OciError, media};

/// The media type of the uncompressed layers a docker archive holds.
const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// The docker CLI (`docker` on PATH, or another program that speaks like it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerCli {
    /// The program run as the docker CLI: `docker`, looked up on `PATH`, unless set to a path.
    pub program: PathBuf,
    /// The daemon to use (`DOCKER_HOST`, e.g. `unix:///run/user/1000/docker.sock`);
    /// the CLI's own choice when `None`.
    pub host: Option<String>,
}

impl Default for DockerCli {
    fn default() -> Self {
        Self::new()
    }
}

impl DockerCli {
    /// The `docker` on `PATH`, with its own choice of daemon.
    pub fn new() -> Self {
        Self {
            program: "docker".into(),
            host: None,
        }
    }

    /// Use the daemon at `host` (`DOCKER_HOST`).
    pub fn with_host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    fn docker(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        if let Some(host) = &self.host {
            cmd.env("DOCKER_HOST", host);
        }
        cmd
    }

    /// Ask the daemon for its version: the cheapest call that needs it.
    fn check_daemon(&self) -> Result<(), BuildError> {
        let mut cmd = self.docker();
        cmd.args(["version", "--format", "{{.Server.Version}}"]);
        let output = spawn("docker", &mut cmd)?;
        if output.status.success() {
            return Ok(());
        }
        let err = failed("docker", &cmd, &output);
        match err {
            BuildError::ToolFailed { stderr, .. } if daemon_unreachable(&stderr) => Err(BuildError::DaemonUnreachable { stderr }),
            other => Err(other),
        }
    }

    fn build_cmd(&self, dockerfile: &Path, context: &Path, tag: &str, cx: &BuildCx) -> Command {
        let mut cmd = self.docker();
        cmd.args(["build", "--quiet"])
            .arg("--file")
            .arg(dockerfile)
            .arg("--tag")
            .arg(tag)
            .arg("--label")
            .arg(format!("{LABEL_TITLE}={}", cx.name))
            .arg("--label")
            .arg(format!("{LABEL_VERSION}={}", cx.version))
            .arg(context)
            .env("SOURCE_DATE_EPOCH", cx.epoch.to_string());
        cmd
    }
}

fn daemon_unreachable(stderr: &str) -> bool {
    [
        "Cannot connect to the Docker daemon",
        "Is the docker daemon running",
        "error during connect",
    ]
    .iter()
    .any(|s| stderr.contains(s))
}

/// The tag the image gets in the daemon: `harmony-build/<name>:<version>`.
fn local_tag(cx: &BuildCx) -> String {
    let clean = |s: &str, keep: &str| -> String {
        s.to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || keep.contains(c) { c } else { '-' })
            .collect()
    };
    format!(
        "harmony-build/{}:{}",
        clean(&cx.name, "._-").trim_matches(['-', '.', '_']),
        clean(&cx.version.to_string(), "._-")
    )
}

impl DockerfileBuilder for DockerCli {
    fn tool(&self) -> &'static str {
        "docker"
    }

    fn preflight(&self) -> Result<(), BuildError> {
        self.check_daemon()
    }

    fn build_dockerfile(&self, dockerfile: &Path, context: &Path, cx: &BuildCx) -> Result<Artifact, BuildError> {
        check_dockerfile(dockerfile, context)?;
        self.check_daemon()?;
        let work = cx.scratch.join("docker");
        std::fs::create_dir_all(&work).map_err(io("create", &work))?;
        let tag = local_tag(cx);
        run("docker", &mut self.build_cmd(dockerfile, context, &tag, cx))?;
        let tarball = work.join("image.tar");
        let mut save = self.docker();
        save.arg("save").arg("--output").arg(&tarball).arg(&tag);
        run("docker", &mut save)?;
        read_archive(&tarball, &work.join("image"))
    }
}

/// Unpack the tarball `docker save` wrote into `dir` and read its image.
pub(crate) fn read_archive(tarball: &Path, dir: &Path) -> Result<Artifact, BuildError> {
    fresh_dir(dir)?;
    let file = File::open(tarball).map_err(io("open", tarball))?;
    tar::Archive::new(file).unpack(dir).map_err(io("unpack", tarball))?;
    let oci = |source| BuildError::Oci { tool: "docker", source };
    if dir.join("index.json").is_file() {
        read_oci_layout(dir).map_err(oci)
    } else if dir.join("manifest.json").is_file() {
        read_docker_archive(dir).map_err(oci)
    } else {
        Err(BuildError::OutputMissing {
            tool: "docker",
            what: "index.json or manifest.json",
            path: dir.into(),
        })
    }
}

fn corrupt(path: &Path, why: impl ToString) -> OciError {
    OciError::Corrupt {
        path: path.into(),
        why: why.to_string(),
    }
}

fn parse_digest(path: &Path, s: &str) -> Result<Digest, OciError> {
    s.parse().map_err(|e: crate::oci::ImageRefError| corrupt(path, e.why))
}

#[derive(Deserialize)]
struct Index {
    manifests: Vec<IndexEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexEntry {
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Deserialize)]
struct Platform {
    architecture: String,
    os: String,
}

/// The one image of an OCI layout: through nested indexes, the manifest for this platform.
fn read_oci_layout(dir: &Path) -> Result<Artifact, OciError> {
    let layout = Layout::at(dir);
    let path = dir.join("index.json");
    let bytes = std::fs::read(&path).map_err(|source| OciError::Io {
        action: "read",
        path: path.clone(),
        source,
    })?;
    let mut index: Index = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
    for _ in 0..4 {
        let here = (super::oci_architecture(), std::env::consts::OS);
        let entry = index
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| (p.architecture.as_str(), p.os.as_str()) == here)
            })
            .or(index.manifests.first())
            .ok_or_else(|| corrupt(&path, "it lists no image"))?;
        let digest = parse_digest(&path, &entry.digest)?;
        let blob = layout.blob(&digest, &entry.media_type)?;
        if entry.media_type == media::INDEX || entry.media_type.ends_with("manifest.list.v2+json") {
            index = serde_json::from_slice(blob.bytes()).map_err(|e| corrupt(&path, e))?;
            continue;
        }
        let manifest: Manifest = serde_json::from_slice(blob.bytes()).map_err(|e| corrupt(&path, e))?;
        let read = |d: &Descriptor| -> Result<_, OciError> { layout.blob(&parse_digest(&path, &d.digest)?, &d.media_type) };
        let config = read(&manifest.config)?;
        let layers = manifest.layers.iter().map(read).collect::<Result<_, _>>()?;
        return Ok(Artifact::new(config, layers));
    }
    Err(corrupt(&path, "its indexes nest too deep"))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ArchiveEntry {
    config: String,
    layers: Vec<String>,
}

/// The first image of a docker archive (`manifest.json` naming files).
fn read_docker_archive(dir: &Path) -> Result<Artifact, OciError> {
    let path = dir.join("manifest.json");
    let read = |name: &str| -> Result<Vec<u8>, OciError> {
        let file = dir.join(name);
        if !file.starts_with(dir) || name.contains("..") {
            return Err(corrupt(&path, format!("`{name}` is outside the archive")));
        }
        std::fs::read(&file).map_err(|source| OciError::Io {
            action: "read",
            path: file,
            source,
        })
    };
    let entries: Vec<ArchiveEntry> = serde_json::from_slice(&read("manifest.json")?).map_err(|e| corrupt(&path, e))?;
    let entry = entries.first().ok_or_else(|| corrupt(&path, "it lists no image"))?;
    let config = crate::oci::Blob::new(media::IMAGE_CONFIG, read(&entry.config)?);
    let layers = entry
        .layers
        .iter()
        .map(|l| Ok(crate::oci::Blob::new(LAYER_TAR, read(l)?)))
        .collect::<Result<_, OciError>>()?;
    Ok(Artifact::new(config, layers))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Blob;
    use crate::release::Version;

    fn tar_of(dir: &Path, tarball: &Path) {
        let mut t = tar::Builder::new(File::create(tarball).unwrap());
        t.append_dir_all(".", dir).unwrap();
        t.finish().unwrap();
    }

    fn artifact() -> Artifact {
        Artifact::new(
            Blob::new(media::IMAGE_CONFIG, br#"{"architecture":"amd64","os":"linux"}"#.to_vec()),
            vec![Blob::new(LAYER_TAR, b"layer bytes".to_vec())],
        )
    }

    #[test]
    fn an_oci_layout_saved_by_docker_is_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let saved = tmp.path().join("saved");
        Layout::at(&saved).put("1.0", &artifact()).unwrap();
        tar_of(&saved, &tmp.path().join("image.tar"));
        let read = read_archive(&tmp.path().join("image.tar"), &tmp.path().join("out")).unwrap();
        assert_eq!(read, artifact());
    }

    #[test]
    fn a_docker_archive_is_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        let saved = tmp.path().join("saved");
        std::fs::create_dir_all(saved.join("abc")).unwrap();
        std::fs::write(saved.join("cfg.json"), artifact().config().bytes()).unwrap();
        std::fs::write(saved.join("abc/layer.tar"), b"layer bytes").unwrap();
        std::fs::write(
            saved.join("manifest.json"),
            br#"[{"Config":"cfg.json","RepoTags":["x:1"],"Layers":["abc/layer.tar"]}]"#,
        )
        .unwrap();
        tar_of(&saved, &tmp.path().join("image.tar"));
        let read = read_archive(&tmp.path().join("image.tar"), &tmp.path().join("out")).unwrap();
        assert_eq!(read, artifact());
    }

    #[test]
    fn an_archive_without_an_image_says_so() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("saved")).unwrap();
        std::fs::write(tmp.path().join("saved/README"), b"nothing").unwrap();
        tar_of(&tmp.path().join("saved"), &tmp.path().join("image.tar"));
        let err = read_archive(&tmp.path().join("image.tar"), &tmp.path().join("out")).unwrap_err();
        assert!(matches!(err, BuildError::OutputMissing { tool: "docker", .. }), "{err:?}");
    }

    #[test]
    fn docker_builds_from_an_argument_vector() {
        let cx = BuildCx::new("/ws", "/s", "Web App", Version::new(1, 2, 3)).with_epoch(9);
        let cmd = DockerCli::new().build_cmd(Path::new("/ws/Dockerfile"), Path::new("/ws"), &local_tag(&cx), &cx);
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "build",
                "--quiet",
                "--file",
                "/ws/Dockerfile",
                "--tag",
                "harmony-build/web-app:1.2.3",
                "--label",
                "org.opencontainers.image.title=Web App",
                "--label",
                "org.opencontainers.image.version=1.2.3",
                "/ws"
            ]
        );
        assert!(cmd.get_envs().any(|(k, v)| k == "SOURCE_DATE_EPOCH" && v == Some("9".as_ref())));
    }

    #[test]
    fn daemon_messages_are_recognised() {
        assert!(daemon_unreachable(
            "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
        ));
        assert!(daemon_unreachable(
            "error during connect: Get \"http://%2F%2F.%2Fpipe%2Fdocker_engine/v1.24/version\""
        ));
        assert!(!daemon_unreachable("unknown flag: --format"));
    }
}
