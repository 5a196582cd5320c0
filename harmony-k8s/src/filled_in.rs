//! What the API server fills in, remembered between runs. A plan asks the server (a dry run)
//! about an object whose live fields hold values its desired one leaves out (ADR 0014); when
//! the answer is "nothing to change", the pair of desired object and live fields is remembered
//! here, so the next plan of the same desired object against the same live fields knows it
//! without asking. The file (`filled-in-<app>` in the state directory) holds one digest a line
//! and is replaced whole; a missing or unreadable one only costs the dry runs again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use harmony::ObjectRef;
use serde_json::Value;
use sha2::{Digest, Sha256};

const FILE: &str = "filled-in";

/// The pairs known to need no change.
#[derive(Debug, Default)]
pub struct Remembered {
    known: BTreeSet<String>,
}

/// The digest of an object's desired body and its live fields.
pub fn key(id: &ObjectRef, desired: &Value, live: &Value) -> String {
    let mut hash = Sha256::new();
    for part in [id.to_string(), desired.to_string(), live.to_string()] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn path(dir: &Path, app: &str) -> PathBuf {
    dir.join(format!("{FILE}-{app}"))
}

impl Remembered {
    pub fn load(dir: &Path, app: &str) -> Remembered {
        let text = std::fs::read_to_string(path(dir, app)).unwrap_or_default();
        Remembered {
            known: text.lines().filter(|l| l.len() == 64).map(str::to_owned).collect(),
        }
    }

    pub fn contains(&self, key: &str) -> bool {
        self.known.contains(key)
    }

    /// Replaces what is remembered by `keys`, if they differ; a failure to write is logged only.
    pub fn save(&self, dir: &Path, app: &str, keys: BTreeSet<String>) {
        if keys == self.known {
            return;
        }
        let text: String = keys.iter().map(|k| format!("{k}\n")).collect();
        let temporary = dir.join(format!(".{FILE}-{app}.{}", std::process::id()));
        let written = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::write(&temporary, text))
            .and_then(|()| std::fs::rename(&temporary, path(dir, app)));
        if let Err(e) = written {
            tracing::debug!(dir = %dir.display(), "cannot remember what the server fills in: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn what_is_saved_is_known_and_a_changed_pair_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let id = ObjectRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: Some("shop".into()),
            name: "web".into(),
        };
        let (desired, live) = (json!({"a": 1}), json!({"a": 1, "b": 2}));
        let known = key(&id, &desired, &live);
        Remembered::default().save(dir.path(), "shop", BTreeSet::from([known.clone()]));
        let remembered = Remembered::load(dir.path(), "shop");
        assert!(!Remembered::load(dir.path(), "other").contains(&known), "per app");
        assert!(remembered.contains(&known));
        assert!(!remembered.contains(&key(&id, &desired, &json!({"a": 1, "b": 3}))));
        assert!(!remembered.contains(&key(&id, &json!({"a": 2}), &live)));
    }
}
