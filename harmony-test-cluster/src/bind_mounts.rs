//! Bind mounts on this machine: how the kubelet makes a directory of the host (a volume's)
//! appear inside a container's root, how it finds and undoes them (`/proc/self/mountinfo`), and
//! the one way the test cluster removes a directory that may hold one: every mount under it is
//! undone first, and a directory that still holds a mount is kept, never descended into. A
//! volume's data outlives the roots it was mounted in.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::util;

/// Why a mount could not be made or undone, or a directory not removed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum MountError {
    #[error("`{tool}` failed ({status}): {stderr}")]
    Tool { tool: String, status: String, stderr: String },

    #[error("`{0}` is not installed; help: install util-linux")]
    Missing(&'static str),

    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "kept {}: {} still mounted under it ({}), and removing it would delete what they hold; \
         help: unmount them (`umount PATH`), then remove the directory",
        dir.display(),
        if mounts.len() == 1 { "a directory is" } else { "directories are" },
        mounts.iter().map(|m| m.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    StillMounted { dir: PathBuf, mounts: Vec<PathBuf> },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> MountError {
    let what = what.into();
    move |source| MountError::Io { what, source }
}

/// Runs `program` with an argument vector; its stderr goes into the error.
fn run(program: &Path, args: &[&Path]) -> Result<(), MountError> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("start {}", program.display())))?;
    if out.status.success() {
        return Ok(());
    }
    let words: Vec<String> = args.iter().map(|a| a.display().to_string()).collect();
    Err(MountError::Tool {
        tool: format!("{} {}", program.display(), words.join(" ")),
        status: out.status.to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// Makes `source` appear at `target` (`mount --bind`), read-only if asked (a second
/// `mount -o remount,bind,ro`: a bind mount takes its options only so). A read-only remount that
/// fails undoes the bind.
pub(crate) fn bind(mount: &Path, umount: &Path, source: &Path, target: &Path, read_only: bool) -> Result<(), MountError> {
    run(mount, &[Path::new("--bind"), source, target])?;
    if read_only && let Err(e) = run(mount, &[Path::new("-o"), Path::new("remount,bind,ro"), target]) {
        let _ = run(umount, &[target]);
        return Err(e);
    }
    Ok(())
}

/// Undoes an octal escape of mountinfo (`\040` is a space, `\011` a tab, `\012` a newline,
/// `\134` a backslash).
fn unescape(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |n, b| n.wrapping_mul(8).wrapping_add(b - b'0')));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    use std::os::unix::ffi::OsStringExt as _;
    PathBuf::from(std::ffi::OsString::from_vec(out))
}

/// The mount points a mountinfo table lists at or under `dir`, in the table's order (a mount
/// made later comes later; one on top of another, after it).
fn listed_under(mountinfo: &str, dir: &Path) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .filter(|point| point.starts_with(dir))
        .collect()
}

/// The mount points at or under `dir` (none if it does not exist).
pub(crate) fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>, MountError> {
    let dir = match std::fs::canonicalize(dir) {
        Ok(dir) => dir,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(format!("resolve {}", dir.display()))(e)),
    };
    let table = std::fs::read_to_string("/proc/self/mountinfo").map_err(io("read /proc/self/mountinfo"))?;
    Ok(listed_under(&table, &dir))
}

/// Undoes every mount at or under `dir`, the deepest (and latest) first. One a process still
/// holds is detached (`umount --lazy`): gone from the tree at once, its data untouched. Err if
/// one stays.
pub(crate) fn unmount_under(umount: &Path, dir: &Path) -> Result<(), MountError> {
    // Each pass removes one mount; a bound on the passes keeps a mount that comes back from
    // looping for ever.
    for _ in 0..256 {
        let mounts = mounts_under(dir)?;
        let Some(deepest) = mounts.iter().rev().max_by_key(|m| m.components().count()) else {
            return Ok(());
        };
        if run(umount, &[deepest]).is_err() {
            run(umount, &[Path::new("--lazy"), deepest])?;
        }
    }
    let mounts = mounts_under(dir)?;
    if mounts.is_empty() {
        return Ok(());
    }
    Err(MountError::StillMounted {
        dir: dir.to_owned(),
        mounts,
    })
}

/// Removes `dir` and everything in it, never through a mount: every mount under it is undone
/// first (with `umount` from `PATH`, looked for only if there is one), and a directory that
/// still holds a mount is kept, whole, with an error that names the mounts.
pub(crate) fn remove_dir(dir: &Path) -> Result<(), MountError> {
    remove_dir_with(dir, || util::find_program("umount"))
}

/// [`remove_dir`], with the `umount` that `umount` finds.
fn remove_dir_with(dir: &Path, umount: impl FnOnce() -> Option<PathBuf>) -> Result<(), MountError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(format!("read {}", dir.display()))(e)),
        Ok(_) => {}
    }
    if !mounts_under(dir)?.is_empty() {
        let umount = umount().ok_or(MountError::Missing("umount"))?;
        unmount_under(&umount, dir)?;
    }
    let left = mounts_under(dir)?;
    if !left.is_empty() {
        return Err(MountError::StillMounted {
            dir: dir.to_owned(),
            mounts: left,
        });
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(format!("remove {}", dir.display()))(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_mount_points_under_a_directory_in_mountinfo() {
        let table = "\
22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
45 22 254:0 /tmp/v/data /tmp/plane/kubelet/p/c/rootfs/data rw,relatime - ext4 /dev/vda rw
46 22 254:0 /tmp/v/other /tmp/plane/kubelet/p/c/rootfs/my\\040files rw,relatime - ext4 /dev/vda rw
47 22 254:0 /tmp/v/x /tmp/plane-2/kubelet rw,relatime - ext4 /dev/vda rw
";
        assert_eq!(
            listed_under(table, Path::new("/tmp/plane")),
            vec![
                PathBuf::from("/tmp/plane/kubelet/p/c/rootfs/data"),
                PathBuf::from("/tmp/plane/kubelet/p/c/rootfs/my files"),
            ],
            "a sibling whose name only begins the same is not under it"
        );
        assert_eq!(unescape("a\\134b\\011c"), PathBuf::from("a\\b\tc"));
        assert_eq!(unescape("end\\04"), PathBuf::from("end\\04"), "a cut escape stays as written");
    }

    /// The rule the kubelet's roots live by: removing a directory that holds a bind mount of a
    /// volume undoes the mount and leaves the volume's files where they are.
    #[test]
    fn removing_a_root_unmounts_its_volumes_and_keeps_their_data() {
        let (mount, umount) = (
            util::find_program("mount").expect("mount is installed"),
            util::find_program("umount").expect("umount is installed"),
        );
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let volume = scratch.path().join("volume");
        let root = scratch.path().join("root");
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(volume.join("kept"), "the volume's data\n").unwrap();
        bind(&mount, &umount, &volume, &root.join("data"), false).expect("bind (needs root, as running pods does)");
        assert_eq!(
            std::fs::read_to_string(root.join("data/kept")).unwrap(),
            "the volume's data\n",
            "the volume appears in the root"
        );
        assert_eq!(mounts_under(&root).unwrap().len(), 1);

        remove_dir(&root).expect("removed");
        assert!(!root.exists());
        assert!(mounts_under(scratch.path()).unwrap().is_empty(), "no mount left");
        assert_eq!(std::fs::read_to_string(volume.join("kept")).unwrap(), "the volume's data\n");
    }

    /// A mount that cannot be undone keeps the whole directory: nothing is removed through it.
    #[test]
    fn a_root_whose_mount_stays_is_kept_whole() {
        let (mount, umount) = (util::find_program("mount").unwrap(), util::find_program("umount").unwrap());
        let scratch = tempfile::tempdir().unwrap();
        let (volume, root) = (scratch.path().join("volume"), scratch.path().join("root"));
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(volume.join("kept"), "x").unwrap();
        std::fs::write(root.join("own"), "y").unwrap();
        bind(&mount, &umount, &volume, &root.join("data"), false).expect("bind (needs root)");

        let refused = remove_dir_with(&root, || util::find_program("false")).expect_err("an umount that fails");
        let mounted = mounts_under(&root).unwrap();
        unmount_under(&umount, &root).unwrap();
        let mount_point = root.join("data").display().to_string();
        assert!(refused.to_string().contains(&mount_point), "says which mount stayed: {refused}");
        assert_eq!(mounted.len(), 1, "the mount is still there");
        assert!(root.join("own").exists(), "nothing of the root was removed");
        assert!(volume.join("kept").exists());
        assert!(matches!(remove_dir_with(&root, || None), Ok(())));
        assert!(!root.exists(), "removed once nothing is mounted (no umount needed)");
    }

    #[test]
    fn a_read_only_bind_refuses_writes() {
        let (mount, umount) = (util::find_program("mount").unwrap(), util::find_program("umount").unwrap());
        let scratch = tempfile::tempdir().unwrap();
        let (volume, target) = (scratch.path().join("volume"), scratch.path().join("target"));
        std::fs::create_dir_all(&volume).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        bind(&mount, &umount, &volume, &target, true).expect("bind (needs root)");
        let written = std::fs::write(target.join("f"), "x");
        unmount_under(&umount, &target).unwrap();
        assert_eq!(
            written.expect_err("read-only").raw_os_error(),
            Some(30),
            "EROFS: a read-only file system"
        );
        assert!(!volume.join("f").exists());
    }
}
