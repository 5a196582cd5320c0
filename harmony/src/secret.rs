//! Secret values: they reach the objects a cluster receives, and nothing else.
//!
//! [`Secret<T>`] has no `Display`; its `Debug` and `Serialize` print `<redacted>`.
//! A Score's `render` reads it with [`Secret::value`] (or [`Secret::expose`])
//! to fill a Kubernetes `Secret`. A secret read from the environment
//! ([`Secret::required_env`]) that is not set there is an error where its
//! value would leave this machine, never a silent default. From there the [`Redactor`] replaces every
//! secret value with a keyed digest before anything is displayed or stored, so
//! plans still see *that* a secret changed without ever seeing it.

use std::borrow::Cow;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::object::Object;

/// The text that stands in for a secret value wherever one would be shown.
pub const REDACTED: &str = "<redacted>";

/// A value that must never be printed, logged, planned or snapshotted.
#[derive(Clone, Default)]
pub struct Secret<T> {
    value: T,
    /// The environment variable it should have come from, when that was not set.
    unset: Option<String>,
}

impl<T> Secret<T> {
    /// A secret holding `value`.
    pub fn new(value: T) -> Self {
        Self { value, unset: None }
    }

    /// The value itself. Call it only to build the object that carries it.
    /// (Empty for a [`Secret::required_env`] that was not set: a Score's
    /// `render` calls [`Secret::value`], which says so.)
    pub fn expose(&self) -> &T {
        &self.value
    }

    /// The value, for the object that carries it; for a secret whose
    /// variable was not set, an error that names it, on every topology
    /// where the value would leave this machine. On `local` the value never
    /// does (the GitOps directory keeps a keyed digest of it), so the render
    /// goes on, and a cluster would refuse. `what` names the secret for the
    /// message (`the fleet's NATS password`).
    pub fn value(&self, what: &str, cx: &crate::RenderCx) -> Result<&T, crate::ScoreError> {
        match &self.unset {
            Some(var) if cx.topology() != <crate::Local as crate::SelectableTopology>::NAME => Err(crate::ScoreError::invalid(
                what,
                format!("it comes from `{var}`, which is not set, and `{}` would receive it", cx.topology()),
                format!("set `{var}` from your secret store (there is no default value), then run again"),
            )),
            _ => Ok(&self.value),
        }
    }

    /// The variable this secret should have come from, if it was not set.
    pub fn unset(&self) -> Option<&str> {
        self.unset.as_deref()
    }
}

impl Secret<String> {
    /// Read a secret from an environment variable.
    pub fn from_env(var: &str) -> Result<Self, std::env::VarError> {
        std::env::var(var).map(Self::new)
    }

    /// Read a secret from an environment variable that must be set: when it
    /// is not (or is empty), the secret remembers which, and [`Secret::value`] says so
    /// where it matters. There is no default value.
    pub fn required_env(var: &str) -> Self {
        match std::env::var(var) {
            Ok(value) if !value.is_empty() => Self::new(value),
            _ => Self {
                value: String::new(),
                unset: Some(var.to_owned()),
            },
        }
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self::new(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Self::new)
    }
}

/// Replaces secret values in objects by digests keyed with a per-state key, so
/// that equal values compare equal, changed values differ, and a digest says
/// nothing about the value to someone without the key.
#[derive(Clone)]
pub struct Redactor {
    key: [u8; 32],
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Redactor { key: <redacted> }")
    }
}

impl Redactor {
    /// Digests keyed by `key`.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    /// The object's body with every secret value replaced by `sha256:<digest>`.
    pub fn redact(&self, object: &Object) -> Value {
        self.redact_cow(object).into_owned()
    }

    /// The same as [`redact`](Self::redact), without copying the body of an
    /// object that holds no secret values (everything but a `Secret`).
    pub fn redact_cow<'o>(&self, object: &'o Object) -> Cow<'o, Value> {
        if !object.id().is_secret() {
            return Cow::Borrowed(object.body());
        }
        let mut body = object.body().clone();
        for field in ["data", "stringData"] {
            if let Some(Value::Object(map)) = body.get_mut(field) {
                for (key, value) in map.iter_mut() {
                    *value = Value::String(self.digest(field, key, value));
                }
            }
        }
        Cow::Owned(body)
    }

    fn digest(&self, field: &str, key: &str, value: &Value) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(field.as_bytes());
        h.update([0]);
        h.update(key.as_bytes());
        h.update([0]);
        match value {
            Value::String(s) => h.update(s.as_bytes()),
            other => h.update(other.to_string().as_bytes()),
        }
        let out = h.finalize();
        let hex: String = out[..12].iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

/// 32 bytes from the operating system's random source: a new digest key.
pub fn random_key() -> std::io::Result<[u8; 32]> {
    use std::io::Read;
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    Ok(key)
}

/// A digest key as it is kept in a file: 64 hexadecimal digits.
pub fn key_hex(key: &[u8; 32]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest key read back from [`key_hex`]'s form; `None` if it is not one.
pub fn parse_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut key = [0u8; 32];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// Whether the value at `path` (JSON pointer segments) of an object of this
/// identity is secret material, and must display as [`REDACTED`].
pub fn is_secret_path(id: &crate::object::ObjectRef, path: &[String]) -> bool {
    id.is_secret() && matches!(path.first().map(String::as_str), Some("data" | "stringData"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RenderCx;

    #[test]
    fn a_required_secret_that_is_not_set_is_an_error_wherever_it_would_leave_this_machine() {
        let unset = Secret::required_env("HARMONY_TEST_SECRET_NEVER_SET_4F1");
        assert_eq!(unset.unset(), Some("HARMONY_TEST_SECRET_NEVER_SET_4F1"));
        for topology in ["k8s", "ci", "edge"] {
            let err = unset.value("the test's password", &RenderCx::new("app", topology)).unwrap_err();
            let text = format!("{err} {}", crate::Diagnostic::help(&err));
            assert!(
                text.contains("`HARMONY_TEST_SECRET_NEVER_SET_4F1`") && text.contains("no default"),
                "{text}"
            );
        }
        // `local` keeps only a digest: the render goes on.
        assert_eq!(unset.value("the test's password", &RenderCx::new("app", "local")).unwrap(), "");
        let set = Secret::new("s3cret".to_owned());
        assert_eq!(set.value("x", &RenderCx::new("app", "k8s")).unwrap(), "s3cret");
        assert_eq!(format!("{set:?}"), REDACTED);
    }
}
