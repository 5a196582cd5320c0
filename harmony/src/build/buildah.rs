//! Dockerfiles built by buildah: no daemon, a private image store (root and
//! runroot under the scratch dir, `vfs` driver, `chroot` isolation), every
//! timestamp clamped to the build's epoch, no buildah version label. The
//! image is written to an OCI layout directory and read back from there.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BuildCx, BuildError, DockerfileBuilder, LABEL_TITLE, LABEL_VERSION, check_dockerfile, fresh_dir, io, run};
use crate::oci::Artifact;
use crate::oci::layout::Layout;

/// The name buildah's output is stored under in its OCI layout directory.
const OUTPUT_REF: &str = "image";

/// buildah with its own store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buildah {
    /// Where buildah keeps images and layers (`--root`).
    pub root: PathBuf,
    /// Where buildah keeps its run state and locks (`--runroot`).
    pub runroot: PathBuf,
}

impl Buildah {
    /// buildah storing images under `root`, its run state under `runroot`.
    pub fn new(root: impl Into<PathBuf>, runroot: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            runroot: runroot.into(),
        }
    }

    /// A store under `scratch/buildah`.
    pub fn in_scratch(scratch: &Path) -> Self {
        let dir = scratch.join("buildah");
        Self::new(dir.join("root"), dir.join("runroot"))
    }

    /// `buildah` with the global options that select this store.
    fn buildah(&self) -> Command {
        let mut cmd = Command::new("buildah");
        cmd.arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.runroot)
            .args(["--storage-driver", "vfs"]);
        cmd
    }

    fn bud(&self, dockerfile: &Path, context: &Path, iidfile: &Path, cx: &BuildCx) -> Command {
        let mut cmd = self.buildah();
        cmd.args([
            "bud",
            "--isolation",
            "chroot",
            "--format",
            "oci",
            "--quiet",
            "--identity-label=false",
        ])
        .arg("--timestamp")
        .arg(cx.epoch.to_string())
        .arg("--label")
        .arg(format!("{LABEL_TITLE}={}", cx.name))
        .arg("--label")
        .arg(format!("{LABEL_VERSION}={}", cx.version))
        .arg("--iidfile")
        .arg(iidfile)
        .arg("-f")
        .arg(dockerfile)
        .arg("-t")
        .arg(local_tag(cx))
        .arg(context)
        // buildah reads these and they would change what it builds.
        .env_remove("BUILDAH_FORMAT")
        .env_remove("BUILDAH_LAYERS")
        .env_remove("BUILDAH_ISOLATION");
        cmd
    }

    fn push(&self, image_id: &str, out: &Path) -> Command {
        let mut cmd = self.buildah();
        cmd.args(["push", "--quiet", image_id])
            .arg(format!("oci:{}:{OUTPUT_REF}", out.display()));
        cmd
    }
}

/// The name the image gets in buildah's store: `localhost/<name>:<version>`,
/// with characters a reference cannot hold replaced.
fn local_tag(cx: &BuildCx) -> String {
    let name: String = cx
        .name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-/".contains(c) { c } else { '-' })
        .collect();
    let version: String = cx
        .version
        .to_string()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' })
        .collect();
    format!("localhost/{}:{version}", name.trim_matches(['-', '.', '_', '/']))
}

impl DockerfileBuilder for Buildah {
    fn tool(&self) -> &'static str {
        "buildah"
    }

    fn preflight(&self) -> Result<(), BuildError> {
        run("buildah", Command::new("buildah").arg("--version")).map(drop)
    }

    fn build_dockerfile(&self, dockerfile: &Path, context: &Path, cx: &BuildCx) -> Result<Artifact, BuildError> {
        check_dockerfile(dockerfile, context)?;
        let work = cx.scratch.join("buildah");
        let out = work.join("out");
        if out.to_string_lossy().contains(':') {
            return Err(BuildError::UnusablePath {
                tool: "buildah",
                path: out,
                why: "an `oci:` destination cannot contain `:`",
            });
        }
        for dir in [&self.root, &self.runroot, &work] {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        let iidfile = work.join("iid");
        run("buildah", &mut self.bud(dockerfile, context, &iidfile, cx))?;
        let image_id = std::fs::read_to_string(&iidfile).map_err(io("read", &iidfile))?;
        let image_id = image_id.trim();
        let image_id = image_id.strip_prefix("sha256:").unwrap_or(image_id);
        fresh_dir(&out)?;
        run("buildah", &mut self.push(image_id, &out))?;
        Layout::at(&out)
            .get(OUTPUT_REF)
            .map_err(|source| BuildError::Oci { tool: "buildah", source })?
            .ok_or(BuildError::OutputMissing {
                tool: "buildah",
                what: "image",
                path: out,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::Version;

    #[test]
    fn buildah_runs_hermetically_from_an_argument_vector() {
        let b = Buildah::in_scratch(Path::new("/s"));
        let cx = BuildCx::new("/ws", "/s", "Web App", Version::new(1, 2, 3)).with_epoch(7);
        let cmd = b.bud(Path::new("/ws/Dockerfile"), Path::new("/ws"), Path::new("/s/iid"), &cx);
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            [
                "--root",
                "/s/buildah/root",
                "--runroot",
                "/s/buildah/runroot",
                "--storage-driver",
                "vfs",
                "bud",
                "--isolation",
                "chroot",
                "--format",
                "oci",
                "--quiet",
                "--identity-label=false",
                "--timestamp",
                "7",
                "--label",
                "org.opencontainers.image.title=Web App",
                "--label",
                "org.opencontainers.image.version=1.2.3",
                "--iidfile",
                "/s/iid",
                "-f",
                "/ws/Dockerfile",
                "-t",
                "localhost/web-app:1.2.3",
                "/ws"
            ]
        );
    }

    #[test]
    fn a_scratch_dir_with_a_colon_is_refused_before_buildah_runs() {
        let cx = BuildCx::new(".", "/tmp/a:b", "x", Version::new(0, 1, 0));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        let err = Buildah::in_scratch(Path::new("/tmp/a:b"))
            .build_dockerfile(&dir.path().join("Dockerfile"), dir.path(), &cx)
            .unwrap_err();
        assert!(matches!(err, BuildError::UnusablePath { .. }), "{err:?}");
    }
}
