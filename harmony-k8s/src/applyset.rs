//! ApplySets as kubectl 1.33 writes them (KEP-3659): the group of objects one
//! app owns on a cluster, so that what it no longer renders can be pruned,
//! and nothing else ever is.
//!
//! The parent is a `Secret` labelled with the set's id; its annotations say
//! which tool manages the set and which kinds (and namespaces) its members
//! may have. Each member carries the label `applyset.kubernetes.io/part-of`.

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The label every member carries, valued with the set's id.
pub const PART_OF: &str = "applyset.kubernetes.io/part-of";
/// The label of the parent, valued with the set's id.
pub const ID: &str = "applyset.kubernetes.io/id";
/// The annotation naming the tool that manages the set: `harmony/<version>`.
pub const TOOLING: &str = "applyset.kubernetes.io/tooling";
/// The annotation listing the kinds of the members: `Kind.group`, sorted.
pub const CONTAINS_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// The annotation listing the members' namespaces other than the parent's.
pub const ADDITIONAL_NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";

/// What Harmony writes into the tooling annotation.
pub fn tooling() -> String {
    format!("harmony/v{}", env!("CARGO_PKG_VERSION"))
}

/// The parent of one app's set: a `Secret` named `harmony-<app>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parent {
    pub name: String,
    pub namespace: String,
}

impl Parent {
    pub fn of(app: &str, namespace: &str) -> Self {
        Self {
            name: format!("harmony-{app}"),
            namespace: namespace.to_owned(),
        }
    }

    /// The set's id, computed as kubectl computes it:
    /// `applyset-` + base64url(sha256(`<name>.<namespace>.<Kind>.<group>`)) + `-v1`.
    pub fn id(&self) -> String {
        let digest = Sha256::digest(format!("{}.{}.Secret.", self.name, self.namespace));
        format!("applyset-{}-v1", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest))
    }

    /// The parent's body for a server-side apply, listing `kinds` and `namespaces`.
    pub fn body(&self, kinds: &BTreeSet<GroupKind>, namespaces: &BTreeSet<String>) -> Value {
        let kinds: Vec<String> = kinds.iter().map(GroupKind::to_string).collect();
        let others: Vec<&str> = namespaces.iter().map(String::as_str).filter(|ns| *ns != self.namespace).collect();
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": { ID: self.id() },
                "annotations": {
                    TOOLING: tooling(),
                    CONTAINS_GROUP_KINDS: kinds.join(","),
                    ADDITIONAL_NAMESPACES: others.join(","),
                },
            },
        })
    }
}

/// What the parent found on the cluster says about its set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Listed {
    pub kinds: BTreeSet<GroupKind>,
    pub namespaces: BTreeSet<String>,
}

impl Listed {
    /// Read a parent `Secret`, checking that it is Harmony's set.
    pub fn read(parent: &Parent, body: &Value) -> Result<Self, String> {
        let label = body.pointer(&format!("/metadata/labels/{}", escape(ID))).and_then(Value::as_str);
        if label != Some(parent.id().as_str()) {
            return Err(format!("it has no label `{ID}: {}`, so it is not an ApplySet parent", parent.id()));
        }
        let annotation = |key: &str| {
            body.pointer(&format!("/metadata/annotations/{}", escape(key)))
                .and_then(Value::as_str)
        };
        match annotation(TOOLING) {
            Some(tool) if tool.split('/').next() == Some("harmony") => {}
            Some(tool) => return Err(format!("it is managed by `{tool}`, not by harmony")),
            None => return Err(format!("it has no `{TOOLING}` annotation")),
        }
        let split = |text: Option<&str>| -> Vec<String> {
            text.unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let mut namespaces: BTreeSet<String> = split(annotation(ADDITIONAL_NAMESPACES)).into_iter().collect();
        namespaces.insert(parent.namespace.clone());
        Ok(Self {
            kinds: split(annotation(CONTAINS_GROUP_KINDS))
                .iter()
                .map(|s| GroupKind::parse(s))
                .collect(),
            namespaces,
        })
    }
}

/// A kind and its API group, written as kubectl writes it: `Deployment.apps`,
/// or `ConfigMap` for the core group. Ordered as kubectl sorts them: by that text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GroupKind {
    pub group: String,
    pub kind: String,
}

impl GroupKind {
    pub fn of(api_version: &str, kind: &str) -> Self {
        let group = api_version.split_once('/').map_or("", |(g, _)| g);
        Self {
            group: group.to_owned(),
            kind: kind.to_owned(),
        }
    }

    pub fn parse(text: &str) -> Self {
        match text.split_once('.') {
            Some((kind, group)) => Self {
                group: group.to_owned(),
                kind: kind.to_owned(),
            },
            None => Self {
                group: String::new(),
                kind: text.to_owned(),
            },
        }
    }
}

impl Ord for GroupKind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

impl PartialOrd for GroupKind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for GroupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.kind)
        } else {
            write!(f, "{}.{}", self.kind, self.group)
        }
    }
}

/// A key as one segment of a JSON pointer.
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_the_one_kubectl_computes() {
        // kubectl 1.33.9 wrote this id for `--applyset=myset -n default`.
        let parent = Parent {
            name: "myset".into(),
            namespace: "default".into(),
        };
        assert_eq!(parent.id(), "applyset-51uXdjs_k8zt9KVdAtPaWnW_O9B-EVzd2Bkztfa9DSA-v1");
    }

    #[test]
    fn group_kinds_are_written_kind_dot_group_and_sorted() {
        let kinds: BTreeSet<GroupKind> = [
            GroupKind::of("apps/v1", "Deployment"),
            GroupKind::of("v1", "ConfigMap"),
            GroupKind::of("networking.k8s.io/v1", "Ingress"),
            GroupKind::of("v1", "Namespace"),
        ]
        .into();
        let parent = Parent::of("web", "default");
        let body = parent.body(&kinds, &["default".to_owned(), "web".to_owned()].into());
        let annotations = &body["metadata"]["annotations"];
        assert_eq!(
            annotations[CONTAINS_GROUP_KINDS],
            "ConfigMap,Deployment.apps,Ingress.networking.k8s.io,Namespace"
        );
        assert_eq!(annotations[ADDITIONAL_NAMESPACES], "web");
        assert_eq!(annotations[TOOLING], tooling());
        assert_eq!(body["metadata"]["labels"][ID], parent.id());
        assert_eq!(
            GroupKind::parse("Ingress.networking.k8s.io"),
            GroupKind::of("networking.k8s.io/v1", "Ingress")
        );
    }

    #[test]
    fn a_parent_reads_back_what_it_wrote_and_refuses_other_tools() {
        let parent = Parent::of("web", "default");
        let kinds: BTreeSet<GroupKind> = [GroupKind::of("v1", "ConfigMap")].into();
        let body = parent.body(&kinds, &["web".to_owned()].into());
        let listed = Listed::read(&parent, &body).unwrap();
        assert_eq!(listed.kinds, kinds);
        assert_eq!(listed.namespaces, ["default".to_owned(), "web".to_owned()].into());

        let mut kubectl = body.clone();
        kubectl["metadata"]["annotations"][TOOLING] = "kubectl/v1.33.9".into();
        assert!(Listed::read(&parent, &kubectl).unwrap_err().contains("kubectl/v1.33.9"));
        let mut other = body;
        other["metadata"]["labels"][ID] = "applyset-x-v1".into();
        assert!(Listed::read(&parent, &other).unwrap_err().contains("not an ApplySet parent"));
    }
}
