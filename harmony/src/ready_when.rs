//! The readiness rule a Score sets on a rendered object: how its readiness
//! gates its deploy on a live cluster. The rules themselves are judged where
//! the cluster is: `harmony-k8s/src/readiness.rs` (kstatus) and `wait.rs`.
//!
//! By default a topology that waits (the `k8s` topology) judges every object
//! by the kstatus rules of its kind. A Score chooses otherwise per object, in
//! its `render`, with [`Object::ready_when`]: skip an optional object, or ask
//! for a condition or a status field the kind's own rules do not know.
//!
//! The choice travels on the object as the annotation [`ANNOTATION`], so it is
//! part of what `plan` shows and what a saved plan pins, and a GitOps
//! directory's consumer can read it too.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use crate::object::Object;

/// The annotation that carries an object's [`Ready`] rule.
pub const ANNOTATION: &str = "harmony.deploy/readiness";

/// When an applied object counts as working.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Ready {
    /// The kstatus rules of its kind (`wait`).
    #[default]
    Default,
    /// Applied, never waited for: an optional object (`skip`).
    Skip,
    /// Its kind's rules, and then condition `type` must be `True`
    /// (`condition:Synced`). A custom resource whose controller reports
    /// `Ready` uses `condition:Ready`.
    Condition(String),
    /// Its kind's rules, and then the status field at this JSON pointer must
    /// read `equals` (`field:/status/phase=Running`).
    Field {
        /// The JSON pointer to the field: `/status/phase`.
        pointer: String,
        /// What the field must read: a string's text, or any other value's
        /// JSON (`true`, `3`).
        equals: String,
    },
}

impl Ready {
    /// Its kind's rules, then condition `type` must be `True`.
    pub fn condition(r#type: impl Into<String>) -> Self {
        Self::Condition(r#type.into())
    }

    /// Its kind's rules, then the field at `pointer` (a JSON pointer such as
    /// `/status/phase`) must read `equals`.
    pub fn field(pointer: impl Into<String>, equals: impl Into<String>) -> Self {
        Self::Field {
            pointer: pointer.into(),
            equals: equals.into(),
        }
    }

    /// The rule an object's body carries: [`Ready::Default`] without the
    /// annotation, an error (in words for the user) if it cannot be read.
    pub fn of(body: &Value) -> Result<Self, String> {
        match body.pointer("/metadata/annotations").and_then(|a| a.get(ANNOTATION)) {
            None => Ok(Self::Default),
            Some(Value::String(text)) => text.parse(),
            Some(other) => Err(format!("`{ANNOTATION}` must be a string, not `{other}`")),
        }
    }

    /// Whether waiting for it is skipped.
    pub fn is_skip(&self) -> bool {
        *self == Self::Skip
    }
}

impl fmt::Display for Ready {
    /// The annotation's text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("wait"),
            Self::Skip => f.write_str("skip"),
            Self::Condition(t) => write!(f, "condition:{t}"),
            Self::Field { pointer, equals } => write!(f, "field:{pointer}={equals}"),
        }
    }
}

impl FromStr for Ready {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let wrong = |why: &str| {
            format!(
                "`{ANNOTATION}: {text}` {why}; write `wait`, `skip`, `condition:<Type>` or `field:<json-pointer>=<value>` \
                 (in Rust: `Object::ready_when(Ready::..)`)"
            )
        };
        match text {
            "wait" => return Ok(Self::Default),
            "skip" => return Ok(Self::Skip),
            _ => {}
        }
        if let Some(t) = text.strip_prefix("condition:") {
            let valid = !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'));
            return if valid {
                Ok(Self::Condition(t.to_owned()))
            } else {
                Err(wrong("names no condition type"))
            };
        }
        if let Some(rest) = text.strip_prefix("field:") {
            return match rest.split_once('=') {
                Some((pointer, equals)) if pointer.starts_with('/') && pointer.len() > 1 => Ok(Self::field(pointer, equals)),
                _ => Err(wrong("needs a JSON pointer, then `=` and the value it must read")),
            };
        }
        Err(wrong("is not a readiness rule"))
    }
}

impl Object {
    /// Gate this object's deploy by `rule` instead of its kind's rules alone.
    ///
    /// ```
    /// # use harmony::{Object, ready_when::Ready};
    /// let widget = Object::from_value(serde_json::json!({
    ///     "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
    /// })).unwrap();
    /// let widget = widget.ready_when(Ready::condition("Synced"));
    /// assert_eq!(Ready::of(widget.body()), Ok(Ready::condition("Synced")));
    /// ```
    pub fn ready_when(self, rule: Ready) -> Self {
        let (id, mut body) = (self.id().clone(), self.into_body());
        if rule == Ready::Default {
            if let Some(annotations) = body.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
                annotations.remove(ANNOTATION);
            }
        } else if let Some(metadata) = body.get_mut("metadata").and_then(Value::as_object_mut) {
            let annotations = metadata.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
            if !annotations.is_object() {
                *annotations = Value::Object(Default::default());
            }
            annotations[ANNOTATION] = Value::String(rule.to_string());
        }
        Object::with_body(id, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_rule_reads_back_as_written() {
        for rule in [
            Ready::Default,
            Ready::Skip,
            Ready::condition("Ready"),
            Ready::condition("networking.example.com/Programmed"),
            Ready::field("/status/phase", "Running"),
            Ready::field("/status/health/status", ""),
        ] {
            assert_eq!(rule.to_string().parse::<Ready>(), Ok(rule.clone()), "{rule}");
        }
    }

    #[test]
    fn a_malformed_rule_says_what_to_write() {
        for text in [
            "ready",
            "condition:",
            "condition:Has space",
            "field:status.phase=Running",
            "field:/status/phase",
            "",
        ] {
            let err = text.parse::<Ready>().unwrap_err();
            assert!(err.contains("`condition:<Type>`"), "{text}: {err}");
        }
        let err = Ready::of(&json!({"metadata": {"annotations": {ANNOTATION: true}}})).unwrap_err();
        assert!(err.contains("must be a string"), "{err}");
    }

    #[test]
    fn ready_when_sets_and_clears_the_annotation() {
        let object =
            Object::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "annotations": {"a": "b"}}})).unwrap();
        let skipped = object.ready_when(Ready::Skip);
        assert_eq!(skipped.body()["metadata"]["annotations"], json!({"a": "b", ANNOTATION: "skip"}));
        let back = skipped.ready_when(Ready::Default);
        assert_eq!(back.body()["metadata"]["annotations"], json!({"a": "b"}));
        assert_eq!(Ready::of(back.body()), Ok(Ready::Default));
    }
}
