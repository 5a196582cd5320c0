//! The operator key a device trusts, and how it is pinned.
//!
//! A device is enrolled with the operator's public key: given on the command
//! line, or (an agent in a pod) read from a file the operator publishes into
//! its pod, which may not exist yet when the pod starts — the agent then
//! waits for it. Either way, the first key the device runs with is pinned in
//! its state directory (`manifest-key`), and a different one later is
//! refused: whoever can change the published key cannot make running devices
//! trust another operator. Enrolling the device again means removing that
//! file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fleet_model::signed::ManifestKey;

/// Where the device's key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    Given(ManifestKey),
    /// A file holding the key; waited for while it does not exist.
    File(PathBuf),
}

/// The key to run with, pinned in `state`. Waits, checking every `poll`,
/// while the key's file does not exist.
pub async fn resolve(source: &KeySource, state: &Path, poll: Duration) -> Result<ManifestKey, String> {
    let key = match source {
        KeySource::Given(key) => *key,
        KeySource::File(path) => {
            let mut said = false;
            loop {
                match std::fs::read_to_string(path) {
                    Ok(text) if !text.trim().is_empty() => {
                        break text
                            .parse::<ManifestKey>()
                            .map_err(|e| format!("`{}` does not hold the operator's public key: {e}", path.display()))?;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(format!("cannot read the operator's public key `{}`: {e}", path.display())),
                }
                if !std::mem::replace(&mut said, true) {
                    eprintln!(
                        "fleet-agent: waiting for the operator's public key in `{}` (the operator publishes it when it first starts)",
                        path.display()
                    );
                }
                tokio::time::sleep(poll).await;
            }
        }
    };
    pin(state, key)?;
    Ok(key)
}

/// Record `key` as the one this device trusts, or check it is the one
/// recorded.
pub fn pin(state: &Path, key: ManifestKey) -> Result<(), String> {
    let pinned = state.join("manifest-key");
    match std::fs::read_to_string(&pinned) {
        Ok(text) => {
            let before: ManifestKey = text
                .parse()
                .map_err(|e| format!("`{}` does not hold a manifest key: {e}", pinned.display()))?;
            if before != key {
                return Err(format!(
                    "this device was enrolled with the operator key {before}, and is now given {key}: refused\nhelp: to enrol it with the new key, remove `{}` and start the agent again",
                    pinned.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir_all(state)
            .and_then(|()| crate::files::write_atomically(&pinned, format!("{key}\n").as_bytes(), 0o600))
            .map_err(|e| format!("cannot record the operator key in `{}`: {e}", pinned.display())),
        Err(e) => Err(format!("cannot read `{}`: {e}", pinned.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_model::signed::SigningKey;

    #[tokio::test]
    async fn the_first_key_is_pinned_and_another_is_refused() {
        let state = tempfile::tempdir().unwrap();
        let (one, two) = (SigningKey::generate().unwrap().public(), SigningKey::generate().unwrap().public());
        let poll = Duration::from_millis(10);
        assert_eq!(resolve(&KeySource::Given(one), state.path(), poll).await, Ok(one));
        assert_eq!(
            resolve(&KeySource::Given(one), state.path(), poll).await,
            Ok(one),
            "the same key again"
        );
        let refused = resolve(&KeySource::Given(two), state.path(), poll).await.unwrap_err();
        assert!(
            refused.contains("enrolled with the operator key") && refused.contains("remove"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_key_file_that_appears_later_is_waited_for() {
        let (state, published) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let file = published.path().join("manifestKey");
        let key = SigningKey::generate().unwrap().public();
        let writer = {
            let file = file.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                std::fs::write(&file, key.to_string()).unwrap();
            })
        };
        let resolved = resolve(&KeySource::File(file.clone()), state.path(), Duration::from_millis(10)).await;
        writer.await.unwrap();
        assert_eq!(resolved, Ok(key));
        std::fs::write(&file, "ed25519-seed:secret").unwrap();
        let refused = resolve(&KeySource::File(file), state.path(), Duration::from_millis(10))
            .await
            .unwrap_err();
        assert!(
            refused.contains("does not hold the operator's public key") && !refused.contains("secret"),
            "{refused}"
        );
    }
}
