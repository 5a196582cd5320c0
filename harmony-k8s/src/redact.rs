//! Secret values a run has seen, so that no server message, event or log
//! line that quotes one is shown as it is (a 422 can quote a field's value).

use std::collections::BTreeSet;
use std::sync::Mutex;

use base64::Engine as _;
use harmony::Object;
use serde_json::Value;

/// What stands in for a secret value in text.
const REDACTED: &str = "<redacted>";

/// The secret values of the `Secret`s this run applied, and their base64 forms.
#[derive(Default)]
pub struct Secrets {
    values: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets { <redacted> }")
    }
}

impl Secrets {
    /// Remember the values of every `Secret` among `objects`. A value that
    /// is also an object's name or namespace (a user name such as `webapp`)
    /// is public already: plans show it.
    pub fn learn(&self, objects: &[Object]) {
        let engine = base64::engine::general_purpose::STANDARD;
        let public: BTreeSet<&str> = objects
            .iter()
            .flat_map(|o| [Some(o.id().name.as_str()), o.id().namespace.as_deref()])
            .flatten()
            .collect();
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        for object in objects.iter().filter(|o| o.id().is_secret()) {
            for (field, encoded) in [("stringData", false), ("data", true)] {
                let Some(Value::Object(map)) = object.body().get(field) else {
                    continue;
                };
                for value in map
                    .values()
                    .filter_map(Value::as_str)
                    .filter(|v| !v.is_empty() && !public.contains(v))
                {
                    values.insert(value.to_owned());
                    if encoded {
                        if let Some(plain) = engine.decode(value).ok().and_then(|b| String::from_utf8(b).ok()) {
                            values.insert(plain);
                        }
                    } else {
                        values.insert(engine.encode(value));
                    }
                }
            }
        }
    }

    /// `text` with every known secret value replaced, longest first, where
    /// it stands as a whole token (a user name `fleet` is a secret value, the
    /// namespace `fleet-staging` is not).
    pub fn redact(&self, text: &str) -> String {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let mut sorted: Vec<&String> = values.iter().filter(|v| !v.is_empty()).collect();
        sorted.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let mut out = text.to_owned();
        for value in sorted {
            if out.contains(value.as_str()) {
                out = replace_tokens(&out, value);
            }
        }
        out
    }
}

/// Characters that continue a name: a value next to one is part of a longer token.
fn continues(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn replace_tokens(text: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(value) {
        let before = if at > 0 {
            rest[..at].chars().next_back()
        } else {
            out.chars().next_back()
        };
        let after = rest[at + value.len()..].chars().next();
        out.push_str(&rest[..at]);
        if continues(before) || continues(after) {
            out.push_str(value);
        } else {
            out.push_str(REDACTED);
        }
        rest = &rest[at + value.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn values_and_their_encodings_are_redacted() {
        let secrets = Secrets::default();
        let secret = Object::from_value(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "shop"},
            "stringData": {"user": "shop", "password": "hunter2"}, "data": {"token": "c2VjcmV0LXRva2Vu"}}),
        )
        .unwrap();
        secrets.learn(&[secret]);
        let said = secrets.redact("user shop, password hunter2 (aHVudGVyMg==) and secret-token");
        assert_eq!(
            said, "user shop, password <redacted> (<redacted>) and <redacted>",
            "a name is public already"
        );
    }

    #[test]
    fn only_whole_tokens_are_redacted() {
        let secrets = Secrets::default();
        let secret = Object::from_value(
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "nats", "namespace": "fleet-staging"},
            "stringData": {"user": "fleet", "password": "s3cret"}}),
        )
        .unwrap();
        secrets.learn(&[secret]);
        assert_eq!(
            secrets.redact(r#"namespaces "fleet-staging" not found; user "fleet" with s3cret, url nats://fleet:s3cret@host"#),
            r#"namespaces "fleet-staging" not found; user "<redacted>" with <redacted>, url nats://<redacted>:<redacted>@host"#
        );
    }
}
