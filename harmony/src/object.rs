//! Kubernetes objects as a Score renders them: typed while the Score builds them
//! (`k8s-openapi`), erased to JSON once rendered so plans can diff them.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::ScoreError;

/// The identity of an object: what `kubectl get` would name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    /// Its `apiVersion`: `apps/v1`, or `v1` for the core group.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Its `kind`: `Deployment`.
    pub kind: String,
    /// Its `metadata.namespace`; `None` for a cluster-scoped object, and for
    /// a namespaced one that names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its `metadata.name`.
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

    /// Its identity.
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
    /// Which objects each Score of a rendered tree deploys, by its place below
    /// the tree's root (none for the root; `nats`, `agents/0` below it),
    /// recorded when a run will deploy from the render (`RenderCx::part`), so
    /// that it does not render again.
    parts: Vec<(Place, Range<usize>)>,
}

/// Where a Score sits below the root of a rendered tree, innermost first (so
/// that placing a part under its parent is a push, not a new string).
type Place = Vec<Step>;

/// One step down a Score tree: a composite's field, or a `Vec`'s element.
#[derive(Debug, Clone, Copy)]
enum Step {
    Field(&'static str),
    Element(usize),
}

impl Desired {
    /// Nothing yet.
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

    /// Append everything another render holds.
    pub fn extend(&mut self, other: Desired) -> &mut Self {
        let offset = self.objects.len();
        self.parts
            .extend(other.parts.into_iter().map(|(path, r)| (path, r.start + offset..r.end + offset)));
        self.objects.extend(other.objects);
        self
    }

    /// Append what the child Score in field `field` rendered, its parts
    /// placed under it (what a composite's `render_tree` does).
    pub fn extend_child(&mut self, field: &'static str, other: Desired) -> &mut Self {
        self.extend_under(Step::Field(field), other)
    }

    /// Append what element `index` of a `Vec` of Scores rendered.
    pub(crate) fn extend_element(&mut self, index: usize, other: Desired) -> &mut Self {
        self.extend_under(Step::Element(index), other)
    }

    fn extend_under(&mut self, step: Step, other: Desired) -> &mut Self {
        let offset = self.objects.len();
        self.parts.extend(other.parts.into_iter().map(|(mut place, r)| {
            place.push(step);
            (place, r.start + offset..r.end + offset)
        }));
        self.objects.extend(other.objects);
        self
    }

    /// These objects as what one Score deploys ([`RenderCx::part`](crate::RenderCx::part)).
    pub(crate) fn of_one_score(mut self) -> Self {
        self.parts = vec![(Place::new(), 0..self.objects.len())];
        self
    }

    /// The objects, in deploy order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// The objects, given up.
    pub fn into_objects(self) -> Vec<Object> {
        self.objects
    }

    /// How many objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether it holds no object.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

/// A Score tree rendered once for a command: the plan is computed from it,
/// and every pass deploys each Score's part of it (no second render, no copy).
#[derive(Debug)]
pub struct Rendered {
    desired: Desired,
    /// Each Score's part by its path, indexed when a pass first asks (a plan
    /// or a render never does).
    parts: OnceLock<HashMap<String, Range<usize>>>,
}

impl Rendered {
    /// What `desired`, a whole tree's render, holds.
    pub fn new(desired: Desired) -> Self {
        Self {
            desired,
            parts: OnceLock::new(),
        }
    }

    /// Every object of the tree, in deploy order.
    pub fn objects(&self) -> &[Object] {
        self.desired.objects()
    }

    /// Where the objects of the Score at `path` (below the root) are.
    pub(crate) fn part_at(&self, path: &str) -> Option<Range<usize>> {
        self.parts
            .get_or_init(|| {
                let named = |place: &Place| {
                    let steps: Vec<String> = place
                        .iter()
                        .rev()
                        .map(|step| match step {
                            Step::Field(name) => (*name).to_owned(),
                            Step::Element(index) => index.to_string(),
                        })
                        .collect();
                    steps.join("/")
                };
                self.desired
                    .parts
                    .iter()
                    .map(|(place, range)| (named(place), range.clone()))
                    .collect()
            })
            .get(path)
            .cloned()
    }

    /// Every object, given up.
    pub fn into_objects(self) -> Vec<Object> {
        self.desired.into_objects()
    }
}

/// The objects one Score of a run deploys: its part of the tree rendered for
/// the command, or what it rendered itself when there was none.
#[derive(Debug)]
pub enum Part {
    /// These objects of the command's render.
    Shared(Arc<Rendered>, Range<usize>),
    /// What the Score rendered itself.
    Own(Desired),
}

impl std::ops::Deref for Part {
    type Target = [Object];

    fn deref(&self) -> &[Object] {
        match self {
            Self::Shared(rendered, range) => &rendered.objects()[range.clone()],
            Self::Own(desired) => desired.objects(),
        }
    }
}
