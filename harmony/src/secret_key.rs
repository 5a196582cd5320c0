//! The key of the digests that stand in for secret values in plans and
//! stored state, kept in a state directory's `.secret-key` so that a plan
//! saved now is checked by a later apply with equal digests. The `local`
//! topology's directory and the `k8s` topology's state directory both keep
//! one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::capability::DeployError;
use crate::files::{Whole, write_whole};
use crate::secret::{Redactor, key_hex, parse_key, random_key};

/// `.secret-key` of one state directory.
#[derive(Debug)]
pub struct SecretKeyFile {
    path: PathBuf,
    /// The key, once known: read from the file, or made here while the file
    /// does not exist yet (one per instance, so that a plan and the apply of
    /// that plan in one process see the same digests).
    key: Mutex<Option<Known>>,
}

#[derive(Debug, Clone, Copy)]
enum Known {
    Read([u8; 32]),
    Unwritten([u8; 32]),
}

impl SecretKeyFile {
    /// The `.secret-key` of state directory `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join(".secret-key"),
            key: Mutex::new(None),
        }
    }

    /// The redactor of this state directory; with `write`, its key is written
    /// first if the file does not exist yet (readable by its owner only).
    pub fn redactor(&self, write: bool) -> Result<Redactor, DeployError> {
        let mut known = self.key.lock().unwrap_or_else(|p| p.into_inner());
        let key = match *known {
            Some(Known::Read(key)) => key,
            // Another process may have written the file since.
            unwritten => match std::fs::read_to_string(&self.path) {
                Ok(hex) => {
                    let key = parse_key(hex.trim()).ok_or_else(|| DeployError::StateCorrupt {
                        path: self.path.clone(),
                        why: "it does not hold a 64-digit hexadecimal key".into(),
                    })?;
                    *known = Some(Known::Read(key));
                    key
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = match unwritten {
                        Some(Known::Unwritten(key)) => key,
                        _ => random_key().map_err(|source| DeployError::Io {
                            action: "read random bytes for",
                            path: self.path.clone(),
                            source,
                        })?,
                    };
                    if write {
                        self.write(&key)?;
                        *known = Some(Known::Read(key));
                    } else {
                        *known = Some(Known::Unwritten(key));
                    }
                    key
                }
                Err(source) => {
                    return Err(DeployError::Io {
                        action: "read",
                        path: self.path.clone(),
                        source,
                    });
                }
            },
        };
        Ok(Redactor::new(key))
    }

    /// Write `key` whole or not at all, private to its owner.
    fn write(&self, key: &[u8; 32]) -> Result<(), DeployError> {
        let how = Whole {
            durable: true,
            private: true,
        };
        write_whole(&self.path, key_hex(key).as_bytes(), how).map_err(DeployError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Object;

    fn secret() -> Object {
        Object::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "dmFsdWU="}
        }))
        .unwrap()
    }

    #[test]
    fn one_key_per_directory_written_once_private_and_read_back_by_another_instance() {
        let dir = tempfile::tempdir().unwrap();
        let first = SecretKeyFile::in_dir(dir.path());
        let planned = first.redactor(false).unwrap().redact(&secret());
        assert!(!dir.path().join(".secret-key").exists(), "a plan writes no key");
        let applied = first.redactor(true).unwrap().redact(&secret());
        assert_eq!(planned, applied, "a plan and its apply in one process see one key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(".secret-key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the key is its owner's only");
        }
        let later = SecretKeyFile::in_dir(dir.path()).redactor(false).unwrap().redact(&secret());
        assert_eq!(later, applied, "a later process reads the key written");
    }

    #[test]
    fn a_garbled_key_is_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".secret-key"), "not hex").unwrap();
        let err = SecretKeyFile::in_dir(dir.path()).redactor(false).unwrap_err();
        assert!(matches!(err, DeployError::StateCorrupt { .. }), "{err:?}");
    }
}
