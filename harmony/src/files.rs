//! Writing a file whole or not at all: through a temporary file named after
//! the writing process and a rename, so readers see the old file or the new
//! one, never half of one. A writer killed in between leaves the temporary
//! (`NAME.tmp-PID`), which `sweep_temporaries` removes once that process is
//! gone. The state directories, the key of secret digests and the image
//! layouts all write this way.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How a file is written.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Whole {
    /// Flushed to the disk before the rename.
    pub durable: bool,
    /// Readable and writable by its owner only.
    pub private: bool,
}

/// A write that failed: what was being done to which file.
#[derive(Debug)]
pub(crate) struct Failed {
    pub action: &'static str,
    pub path: PathBuf,
    /// Whether it was creating the file's directory.
    pub directory: bool,
    pub source: std::io::Error,
}

/// Write `bytes` to `path` whole, as `how` says.
pub(crate) fn write_whole(path: &Path, bytes: &[u8], how: Whole) -> Result<(), Failed> {
    let failed = |action, directory, source| Failed {
        action,
        path: path.to_owned(),
        directory,
        source,
    };
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| failed("create the directory of", true, e))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if how.private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options.open(&tmp).map_err(|e| failed("create", false, e))?;
    file.write_all(bytes).map_err(|e| failed("write", false, e))?;
    if how.durable {
        file.sync_all().map_err(|e| failed("flush", false, e))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        failed("replace", false, e)
    })
}

/// Remove the temporaries of [`write_whole`] in `dir` (and below it, if
/// `deep`) whose writer is no longer running.
pub(crate) fn sweep_temporaries(dir: &Path, deep: bool) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() && deep => sweep_temporaries(&path, true),
            Ok(t) if t.is_file() => {
                let writer = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .and_then(|e| e.strip_prefix("tmp-"))
                    .and_then(|pid| pid.parse::<u32>().ok());
                if let Some(pid) = writer
                    && !Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = fs::remove_file(&path);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_written_whole_and_a_dead_writers_temporary_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state").join(".secret-key");
        write_whole(
            &path,
            b"one",
            Whole {
                durable: true,
                private: true,
            },
        )
        .unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // What a killed writer leaves, and what a running one holds.
        let dead = path.with_extension("tmp-4294967295");
        let alive = path.with_extension(format!("tmp-{}", std::process::id()));
        fs::write(&dead, b"half").unwrap();
        fs::write(&alive, b"being written").unwrap();
        sweep_temporaries(dir.path(), true);
        assert!(!dead.exists(), "a dead writer's temporary is removed");
        assert!(alive.exists() && path.exists(), "a running writer's temporary and the file stay");
    }
}
