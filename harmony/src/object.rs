//! Kubernetes objects as a Score renders them: typed while the Score builds them
//! (`k8s-openapi`), erased to JSON once rendered so plans can diff them.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::ScoreError;

/// The identity of an object: what `kubectl get` would name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    /// Whether this object carries secret material (a core `Secret`).
    pub fn is_secret(&self) -> bool {
        self.api_version == "v1" && self.kind == "Secret"
    }

    /// A file name that is unique within a namespace: `deployment-webapp.yaml`.
    pub fn file_stem(&self) -> String {
        let group = self.api_version.split_once('/').map(|(g, _)| g).unwrap_or("");
        let kind = self.kind.to_ascii_lowercase();
        if group.is_empty() || group == "apps" || group == "batch" {
            format!("{kind}-{}", self.name)
        } else {
            format!("{kind}.{group}-{}", self.name)
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `apps/v1 Deployment web/webapp`, or `v1 Namespace web` for cluster-scoped objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {}/{}", self.api_version, self.kind, ns, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

/// One rendered object: its identity and its full body (`apiVersion`, `kind`, `metadata`, …).
///
/// `Debug` never prints the body of a `Secret`.
#[derive(Clone, PartialEq)]
pub struct Object {
    id: ObjectRef,
    body: Value,
}

impl fmt::Debug for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Object");
        s.field("id", &self.id);
        if self.id.is_secret() {
            s.field("body", &"<redacted>");
        } else {
            s.field("body", &self.body);
        }
        s.finish()
    }
}

impl Object {
    /// Erase a typed `k8s-openapi` object.
    pub fn new<K>(object: &K) -> Result<Self, ScoreError>
    where
        K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> + Serialize,
    {
        let meta = object.metadata();
        let Some(name) = meta.name.clone().filter(|n| !n.is_empty()) else {
            return Err(ScoreError::Invalid {
                what: format!("a {} {}", K::API_VERSION, K::KIND),
                why: "it has no `metadata.name`".into(),
                help: "set `metadata.name`: every rendered object needs a name".into(),
            });
        };
        let id = ObjectRef {
            api_version: K::API_VERSION.to_owned(),
            kind: K::KIND.to_owned(),
            namespace: meta.namespace.clone(),
            name,
        };
        let body = serde_json::to_value(object).map_err(|e| ScoreError::Invalid {
            what: id.to_string(),
            why: format!("it does not serialize: {e}"),
            help: "objects must serialize to JSON; check custom fields".into(),
        })?;
        Ok(Self { id, body })
    }

    /// Accept an untyped object (a custom resource, say). It must carry
    /// `apiVersion`, `kind` and `metadata.name`.
    pub fn from_value(body: Value) -> Result<Self, ScoreError> {
        let field = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_owned);
        let missing = |what: &str| ScoreError::Invalid {
            what: "an untyped object".into(),
            why: format!("it has no `{what}`"),
            help: "untyped objects need `apiVersion`, `kind` and `metadata.name`".into(),
        };
        let id = ObjectRef {
            api_version: field("/apiVersion").ok_or_else(|| missing("apiVersion"))?,
            kind: field("/kind").ok_or_else(|| missing("kind"))?,
            namespace: field("/metadata/namespace"),
            name: field("/metadata/name").ok_or_else(|| missing("metadata.name"))?,
        };
        Ok(Self { id, body })
    }

    /// An object whose identity is already known to match its body.
    pub(crate) fn with_body(id: ObjectRef, body: Value) -> Self {
        Self { id, body }
    }

    pub fn id(&self) -> &ObjectRef {
        &self.id
    }

    /// The body, given up.
    pub fn into_body(self) -> Value {
        self.body
    }

    /// The full body. For a `Secret` this holds the secret values: only adapters
    /// that deliver to a cluster read it; everything that displays or stores
    /// goes through [`crate::secret::Redactor`].
    pub fn body(&self) -> &Value {
        &self.body
    }
}

/// What a Score wants to exist: its rendered objects, in deploy order.
#[derive(Debug, Default, Clone)]
pub struct Desired {
    objects: Vec<Object>,
}

impl Desired {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a typed object.
    pub fn push<K>(&mut self, object: &K) -> Result<&mut Self, ScoreError>
    where
        K: k8s_openapi::Resource + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> + Serialize,
    {
        self.objects.push(Object::new(object)?);
        Ok(self)
    }

    /// Add an already erased object.
    pub fn push_object(&mut self, object: Object) -> &mut Self {
        self.objects.push(object);
        self
    }

    /// Append everything another Score rendered (composites use this).
    pub fn extend(&mut self, other: Desired) -> &mut Self {
        self.objects.extend(other.objects);
        self
    }

    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    pub fn into_objects(self) -> Vec<Object> {
        self.objects
    }

    pub fn len(&self) -> usize {
        self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}
