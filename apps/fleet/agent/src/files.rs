//! `File` resources: a file with exactly this content and mode.
//!
//! Idempotent: a file that already has the content and the mode is not
//! touched (its modification time stays). Atomic: new content is written to
//! a temporary file in the same directory, synced, given its mode, then
//! renamed over the old one, so a reader sees the old file or the new one,
//! never half of it, and a crash leaves no partial file behind.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use fleet_model::{FileSpec, FileStatus, State};

/// What reconciling did, besides the status it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The file was already as specified.
    None,
    /// Only its mode was changed.
    Mode,
    /// Its content was (re)written.
    Content,
}

/// Make `spec.path` hold `spec.content` with `spec.mode`.
pub fn reconcile(spec: &FileSpec) -> (FileStatus, Change) {
    match apply(spec) {
        Ok(change) => (
            FileStatus {
                state: State::Ready,
                message: None,
            },
            change,
        ),
        Err(why) => (
            FileStatus {
                state: State::Failed,
                message: Some(why),
            },
            Change::None,
        ),
    }
}

fn apply(spec: &FileSpec) -> Result<Change, String> {
    let path = Path::new(&spec.path);
    let mode = spec.mode & 0o7777;
    if fs::read(path).is_ok_and(|existing| existing == spec.content.as_bytes()) {
        let current = fs::metadata(path)
            .map_err(|e| format!("cannot read the mode of `{}`: {e}", spec.path))?
            .permissions()
            .mode()
            & 0o7777;
        if current == mode {
            return Ok(Change::None);
        }
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("cannot set the mode of `{}` to {mode:o}: {e}", spec.path))?;
        return Ok(Change::Mode);
    }
    let dir = path.parent().ok_or_else(|| format!("`{}` has no parent directory", spec.path))?;
    fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    write_atomically(path, spec.content.as_bytes(), mode).map_err(|e| format!("cannot write `{}`: {e}", spec.path))?;
    Ok(Change::Content)
}

/// Replace `path` (whose directory exists) with `content`: a temporary file
/// beside it, synced and given `mode`, renamed over it.
pub fn write_atomically(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per write: two writers of one path never share a temporary.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.fleet-{}-{n}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(content)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Remove a file a manifest no longer holds; one already gone is fine.
pub fn remove(spec: &FileSpec) -> Result<(), String> {
    match fs::remove_file(&spec.path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!("cannot remove `{}`: {e}", spec.path)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(path: &Path, content: &str, mode: u32) -> FileSpec {
        FileSpec {
            name: "config".into(),
            path: path.to_str().unwrap().into(),
            content: content.into(),
            mode,
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_file_is_written_with_its_mode_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/sensor/config.toml");
        let (status, change) = reconcile(&spec(&path, "rate = 5\n", 0o600));
        assert_eq!((status.state, change), (State::Ready, Change::Content), "{status:?}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "rate = 5\n");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn a_second_reconcile_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("motd");
        reconcile(&spec(&path, "hello\n", 0o644));
        let before = fs::metadata(&path).unwrap().modified().unwrap();
        let (status, change) = reconcile(&spec(&path, "hello\n", 0o644));
        assert_eq!((status.state, change), (State::Ready, Change::None));
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before, "not rewritten");
    }

    #[test]
    fn a_changed_mode_alone_is_set_in_place_and_new_content_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("motd");
        reconcile(&spec(&path, "hello\n", 0o644));
        let (_, change) = reconcile(&spec(&path, "hello\n", 0o640));
        assert_eq!((change, mode_of(&path)), (Change::Mode, 0o640));
        let (_, change) = reconcile(&spec(&path, "goodbye\n", 0o640));
        assert_eq!(change, Change::Content);
        assert_eq!(fs::read_to_string(&path).unwrap(), "goodbye\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["motd"], "no temporary file is left behind");
    }

    #[test]
    fn a_file_that_cannot_be_written_is_a_failed_status_that_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "").unwrap();
        let (status, change) = reconcile(&spec(&blocker.join("config"), "x", 0o644));
        assert_eq!((status.state, change), (State::Failed, Change::None));
        let message = status.message.unwrap();
        assert!(message.starts_with("cannot create `") && message.contains("not-a-dir"), "{message}");
    }
}
