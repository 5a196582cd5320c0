//! Signed desired state: what a device's key in `fleet-manifests` holds.
//!
//! The operator signs every value it writes with its [`SigningKey`] (ed25519);
//! an agent runs a value only if it verifies with the [`ManifestKey`] the
//! device was enrolled with. Someone who can write to NATS, but does not hold
//! the operator's key, cannot make a device run anything, nor stop it:
//!
//! - The signature covers the device's id: a value signed for one device is
//!   refused by every other ([`ManifestError::OtherDevice`]).
//! - It covers when the value was issued (milliseconds since the Unix epoch,
//!   from the operator's clock): a device refuses a value issued before the
//!   one it runs ([`ManifestError::Replayed`]), so an old manifest cannot be
//!   put back.
//! - Withdrawing is a signed value too (no manifest): a key that is deleted,
//!   or a bucket that is new and empty, is *not* a withdrawal, and a device
//!   keeps running what it runs.
//!
//! # The wire format
//! ```json
//! {"schemaVersion": 1, "device": "sensor-1", "issued": 1764842400000,
//!  "manifest": "<base64 of the manifest's JSON>" or null, "signature": "<base64>"}
//! ```
//! The signature is over `fleet-manifest/1`, the device, `issued`, and the
//! manifest's bytes exactly as carried, separated by NUL bytes: nothing is
//! canonicalised, so what is verified is what is parsed.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SecureRandom as _;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};

use crate::{AgentManifest, ManifestError};

/// The envelope's own format. It stays when a manifest gains a kind: the
/// manifest inside carries its version, so an older agent still opens the
/// envelope and refuses, by version, only a manifest it cannot run.
const ENVELOPE_VERSION: u32 = 1;

/// In a cluster, the operator publishes its public key in this ConfigMap of
/// its namespace, under [`MANIFEST_KEY_ENTRY`]: where a device's enrolment
/// (or an agent's pod) reads it.
pub const MANIFEST_KEY_CONFIGMAP: &str = "fleet-manifest-key";
pub const MANIFEST_KEY_ENTRY: &str = "manifestKey";

const CONTEXT: &[u8] = b"fleet-manifest/1";
const PUBLIC_PREFIX: &str = "ed25519:";
const SEED_PREFIX: &str = "ed25519-seed:";

/// The operator's private key: it signs what devices run. Its text form (a
/// key file's content) is `ed25519-seed:<base64>`; it is never printed.
pub struct SigningKey {
    pair: Ed25519KeyPair,
    seed: [u8; 32],
}

/// The operator's public key, pinned on each device at enrolment. Its text
/// form is `ed25519:<base64>` (43 characters after the prefix).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ManifestKey([u8; 32]);

/// Why a key's text is not a key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// What a verified value says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signed {
    pub device: String,
    /// When the operator issued it, in milliseconds since the Unix epoch.
    pub issued: u64,
    /// `None`: everything the device holds for the fleet is withdrawn.
    pub manifest: Option<AgentManifest>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    schema_version: u32,
    device: String,
    issued: u64,
    manifest: Option<String>,
    signature: String,
}

fn message(device: &str, issued: u64, manifest: Option<&[u8]>) -> Vec<u8> {
    let mut m = Vec::with_capacity(64 + manifest.map_or(0, <[u8]>::len));
    m.extend_from_slice(CONTEXT);
    m.push(0);
    m.extend_from_slice(device.as_bytes());
    m.push(0);
    m.extend_from_slice(issued.to_string().as_bytes());
    m.push(0);
    match manifest {
        Some(bytes) => {
            m.extend_from_slice(b"manifest\0");
            m.extend_from_slice(bytes);
        }
        None => m.extend_from_slice(b"withdrawn\0"),
    }
    m
}

impl SigningKey {
    /// A new key from the system's random source.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| KeyError("the system's random source failed".into()))?;
        Self::from_seed(seed)
    }

    fn from_seed(seed: [u8; 32]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|e| KeyError(format!("not an ed25519 seed: {e}")))?;
        Ok(Self { pair, seed })
    }

    /// Read a key file's content (`ed25519-seed:<base64>`, surrounding
    /// whitespace ignored). The error never repeats the text.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .trim()
            .strip_prefix(SEED_PREFIX)
            .ok_or_else(|| KeyError(format!("a signing key starts with `{SEED_PREFIX}`")))?;
        let seed: [u8; 32] = B64
            .decode(encoded)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or_else(|| KeyError(format!("a signing key is `{SEED_PREFIX}` and 32 bytes in unpadded URL-safe base64")))?;
        Self::from_seed(seed)
    }

    /// The text of a key file: keep it as secret as the fleet.
    pub fn to_text(&self) -> String {
        format!("{SEED_PREFIX}{}\n", B64.encode(self.seed))
    }

    /// The key devices pin.
    pub fn public(&self) -> ManifestKey {
        let mut key = [0u8; 32];
        key.copy_from_slice(self.pair.public_key().as_ref());
        ManifestKey(key)
    }

    /// The value for `device`'s key: `manifest`, or a withdrawal (`None`),
    /// issued at `issued` (milliseconds since the Unix epoch).
    pub fn sign(&self, device: &str, issued: u64, manifest: Option<&AgentManifest>) -> Vec<u8> {
        self.sign_bytes(device, issued, manifest.map(AgentManifest::to_json).as_deref())
    }

    /// [`SigningKey::sign`] for a manifest's JSON as given, byte for byte:
    /// what a device makes of a signed manifest it cannot run (a newer
    /// version, a kind it does not know) is tested with it.
    pub fn sign_bytes(&self, device: &str, issued: u64, manifest: Option<&[u8]>) -> Vec<u8> {
        let signature = self.pair.sign(&message(device, issued, manifest));
        let envelope = Envelope {
            schema_version: ENVELOPE_VERSION,
            device: device.to_owned(),
            issued,
            manifest: manifest.map(|b| B64.encode(b)),
            signature: B64.encode(signature.as_ref()),
        };
        serde_json::to_vec(&envelope).unwrap_or_default()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, seed: <redacted>)", self.public())
    }
}

impl ManifestKey {
    /// Verify `value`, read from `device`'s key, and read what it carries:
    /// the manifest strictly, as [`AgentManifest::from_json`] does.
    pub fn open(&self, device: &str, value: &[u8]) -> Result<Signed, ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Probe {
            schema_version: Option<u32>,
            signature: Option<serde_json::Value>,
        }
        let probe: Probe = serde_json::from_slice(value).map_err(|e| ManifestError::Malformed { why: e.to_string() })?;
        if probe.signature.is_none() {
            return Err(ManifestError::Unsigned);
        }
        if let Some(found) = probe.schema_version.filter(|v| *v > ENVELOPE_VERSION) {
            return Err(ManifestError::NewerVersion {
                found,
                supported: ENVELOPE_VERSION,
            });
        }
        let envelope: Envelope = serde_json::from_slice(value).map_err(|e| ManifestError::Malformed { why: e.to_string() })?;
        let forged = || ManifestError::Forged { key: self.to_string() };
        let signature = B64.decode(&envelope.signature).map_err(|_| forged())?;
        let manifest = match &envelope.manifest {
            Some(encoded) => Some(B64.decode(encoded).map_err(|_| forged())?),
            None => None,
        };
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(&message(&envelope.device, envelope.issued, manifest.as_deref()), &signature)
            .map_err(|_| forged())?;
        if envelope.device != device {
            return Err(ManifestError::OtherDevice { device: envelope.device });
        }
        Ok(Signed {
            device: envelope.device,
            issued: envelope.issued,
            manifest: manifest.map(|bytes| AgentManifest::from_json(&bytes)).transpose()?,
        })
    }
}

impl fmt::Display for ManifestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_PREFIX}{}", B64.encode(self.0))
    }
}

impl fmt::Debug for ManifestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for ManifestKey {
    type Err = KeyError;

    /// The error never repeats the text: it may be a secret given by mistake.
    fn from_str(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.starts_with(SEED_PREFIX) {
            return Err(KeyError(
                "this is a signing key (`ed25519-seed:`), which must stay with the operator; a device takes its public key (`fleet-operator public-key FILE`)".into(),
            ));
        }
        let encoded = text
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| KeyError(format!("not a manifest key: one starts with `{PUBLIC_PREFIX}`")))?;
        B64.decode(encoded)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .map(Self)
            .ok_or_else(|| {
                KeyError(format!(
                    "`{text}` is not a manifest key: `{PUBLIC_PREFIX}` and 32 bytes in unpadded URL-safe base64"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileSpec, Resource};

    fn manifest(generation: u64) -> AgentManifest {
        AgentManifest::new(
            generation,
            vec![Resource::File(FileSpec {
                name: "conf".into(),
                path: "/etc/app.conf".into(),
                content: "a = 1".into(),
                mode: 0o644,
            })],
        )
    }

    #[test]
    fn a_signed_manifest_opens_with_the_public_key_for_its_device_only() {
        let key = SigningKey::generate().unwrap();
        let public = key.public();
        let value = key.sign("d1", 42, Some(&manifest(3)));
        let signed = public.open("d1", &value).unwrap();
        assert_eq!(signed.issued, 42);
        assert_eq!(signed.manifest, Some(manifest(3)));
        assert_eq!(
            public.open("d2", &value),
            Err(ManifestError::OtherDevice { device: "d1".into() }),
            "a value signed for d1 is refused by d2"
        );
        let withdrawn = key.sign("d1", 43, None);
        assert_eq!(public.open("d1", &withdrawn).unwrap().manifest, None);
    }

    #[test]
    fn forged_unsigned_and_tampered_values_are_refused() {
        let key = SigningKey::generate().unwrap();
        let public = key.public();
        let other = SigningKey::generate().unwrap();
        let forged = other.sign("d1", 42, Some(&manifest(3)));
        assert!(matches!(public.open("d1", &forged), Err(ManifestError::Forged { .. })));
        assert_eq!(public.open("d1", &manifest(3).to_json()), Err(ManifestError::Unsigned));
        // Every field the signature covers: the device, the time, the manifest.
        let value: serde_json::Value = serde_json::from_slice(&key.sign("d1", 42, Some(&manifest(3)))).unwrap();
        let tampered = [
            ("device", serde_json::json!("d2")),
            ("issued", serde_json::json!(99)),
            ("manifest", serde_json::json!(B64.encode(manifest(4).to_json()))),
            ("manifest", serde_json::Value::Null),
        ];
        for (field, new) in tampered {
            let mut v = value.clone();
            v[field] = new;
            let result = public.open("d1", &serde_json::to_vec(&v).unwrap());
            assert!(matches!(result, Err(ManifestError::Forged { .. })), "{field}: {result:?}");
        }
        let newer = serde_json::json!({"schemaVersion": 9, "signature": ""});
        assert!(matches!(
            public.open("d1", &serde_json::to_vec(&newer).unwrap()),
            Err(ManifestError::NewerVersion { found: 9, .. })
        ));
    }

    #[test]
    fn keys_read_back_from_their_text_and_a_device_is_never_given_the_private_one() {
        let key = SigningKey::generate().unwrap();
        let again = SigningKey::from_text(&key.to_text()).unwrap();
        assert_eq!(again.public(), key.public());
        let public: ManifestKey = key.public().to_string().parse().unwrap();
        assert_eq!(public, key.public());
        let refused = key.to_text().parse::<ManifestKey>().unwrap_err().to_string();
        assert!(refused.contains("must stay with the operator"), "{refused}");
        assert!(!refused.contains(key.to_text().trim()), "the error never repeats the private key");
        assert!(!format!("{key:?}").contains(key.to_text().trim()));
        for bad in ["", "ed25519:", "ed25519:AAAA", "rsa:abc"] {
            assert!(bad.parse::<ManifestKey>().is_err(), "{bad:?}");
        }
        assert!(SigningKey::from_text("ed25519-seed:short").is_err());
    }
}
