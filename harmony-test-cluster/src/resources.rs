//! The resource types the server knows: built-in kinds and those registered by CRDs.

use std::collections::HashMap;

/// One kind of object and how the API serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourceType {
    pub group: String,
    /// Served versions, the preferred one first.
    pub versions: Vec<String>,
    pub kind: String,
    pub plural: String,
    pub singular: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (then writes to the main resource ignore `.status`).
    pub status: bool,
    /// Other subresources listed in discovery (`log`, `proxy`).
    pub subresources: Vec<String>,
    /// Defined by a CustomResourceDefinition: every list is atomic.
    pub custom: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
}

impl ResourceType {
    pub fn api_version(&self, version: &str) -> String {
        if self.group.is_empty() {
            version.to_string()
        } else {
            format!("{}/{version}", self.group)
        }
    }

    pub fn serves(&self, version: &str) -> bool {
        self.versions.iter().any(|v| v == version)
    }

    pub fn key(&self) -> TypeKey {
        TypeKey {
            group: self.group.clone(),
            kind: self.kind.clone(),
        }
    }
}

/// Identifies a kind independently of its version.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TypeKey {
    pub group: String,
    pub kind: String,
}

impl TypeKey {
    pub fn new(group: &str, kind: &str) -> TypeKey {
        TypeKey {
            group: group.to_string(),
            kind: kind.to_string(),
        }
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

/// All resource types currently served.
#[derive(Debug, Clone, Default)]
pub(crate) struct Registry {
    types: HashMap<TypeKey, ResourceType>,
    by_plural: HashMap<(String, String), TypeKey>,
}

struct Builtin {
    group: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    extra: &'static [&'static str],
    generation: bool,
    all: bool,
}

const fn b(group: &'static str, kind: &'static str, plural: &'static str, namespaced: bool, short: &'static [&'static str]) -> Builtin {
    Builtin {
        group,
        kind,
        plural,
        namespaced,
        short,
        status: false,
        extra: &[],
        generation: false,
        all: false,
    }
}

impl Builtin {
    const fn status(mut self) -> Builtin {
        self.status = true;
        self
    }
    const fn generation(mut self) -> Builtin {
        self.generation = true;
        self
    }
    const fn all(mut self) -> Builtin {
        self.all = true;
        self
    }
    const fn extra(mut self, extra: &'static [&'static str]) -> Builtin {
        self.extra = extra;
        self
    }
}

const BUILTINS: &[Builtin] = &[
    b("", "Namespace", "namespaces", false, &["ns"]).status().extra(&["finalize"]),
    b("", "ConfigMap", "configmaps", true, &["cm"]),
    b("", "Secret", "secrets", true, &[]),
    b("", "Service", "services", true, &["svc"]).status().all().extra(&["proxy"]),
    b("", "ServiceAccount", "serviceaccounts", true, &["sa"]),
    b("", "Pod", "pods", true, &["po"]).status().all().extra(&["log"]),
    b("", "PersistentVolumeClaim", "persistentvolumeclaims", true, &["pvc"]).status(),
    b("", "Event", "events", true, &["ev"]),
    b("", "Endpoints", "endpoints", true, &["ep"]),
    b("", "Node", "nodes", false, &["no"]).status(),
    b("apps", "Deployment", "deployments", true, &["deploy"])
        .status()
        .generation()
        .all(),
    b("apps", "StatefulSet", "statefulsets", true, &["sts"]).status().generation().all(),
    b("apps", "DaemonSet", "daemonsets", true, &["ds"]).status().generation().all(),
    b("apps", "ReplicaSet", "replicasets", true, &["rs"]).status().generation().all(),
    b("batch", "Job", "jobs", true, &[]).status().generation().all(),
    b("batch", "CronJob", "cronjobs", true, &["cj"]).status().generation().all(),
    b("rbac.authorization.k8s.io", "Role", "roles", true, &[]),
    b("rbac.authorization.k8s.io", "RoleBinding", "rolebindings", true, &[]),
    b("rbac.authorization.k8s.io", "ClusterRole", "clusterroles", false, &[]),
    b("rbac.authorization.k8s.io", "ClusterRoleBinding", "clusterrolebindings", false, &[]),
    b("networking.k8s.io", "Ingress", "ingresses", true, &["ing"]).status().generation(),
    b("networking.k8s.io", "NetworkPolicy", "networkpolicies", true, &["netpol"]).generation(),
    b("policy", "PodDisruptionBudget", "poddisruptionbudgets", true, &["pdb"])
        .status()
        .generation(),
    b(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        false,
        &["crd", "crds"],
    )
    .status()
    .generation(),
];

/// The group/version pairs in the order `/api` and `/apis` list them.
pub(crate) const BUILTIN_GROUP_ORDER: &[&str] = &[
    "apps",
    "events.k8s.io",
    "batch",
    "rbac.authorization.k8s.io",
    "networking.k8s.io",
    "policy",
    "apiextensions.k8s.io",
];

impl Registry {
    pub fn builtin() -> Registry {
        let mut registry = Registry::default();
        for t in BUILTINS {
            registry.insert(ResourceType {
                group: t.group.to_string(),
                versions: vec!["v1".to_string()],
                kind: t.kind.to_string(),
                plural: t.plural.to_string(),
                singular: t.kind.to_lowercase(),
                namespaced: t.namespaced,
                short_names: t.short.iter().map(|s| s.to_string()).collect(),
                categories: if t.all { vec!["all".to_string()] } else { Vec::new() },
                status: t.status,
                subresources: t.extra.iter().map(|s| s.to_string()).collect(),
                custom: false,
                generation: t.generation,
            });
        }
        registry
    }

    pub fn insert(&mut self, t: ResourceType) {
        let key = t.key();
        self.by_plural.insert((t.group.clone(), t.plural.clone()), key.clone());
        self.types.insert(key, t);
    }

    pub fn remove(&mut self, key: &TypeKey) -> Option<ResourceType> {
        let t = self.types.remove(key)?;
        self.by_plural.remove(&(t.group.clone(), t.plural.clone()));
        Some(t)
    }

    pub fn get(&self, key: &TypeKey) -> Option<&ResourceType> {
        self.types.get(key)
    }

    /// The type served at `/apis/{group}/{version}/{plural}`.
    pub fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        let key = self.by_plural.get(&(group.to_string(), plural.to_string()))?;
        self.types.get(key).filter(|t| t.serves(version))
    }

    pub fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// The groups served besides the core group, built-ins in a fixed order, then CRD groups sorted.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut groups: Vec<(String, Vec<String>)> = Vec::new();
        let mut names: Vec<&str> = self.types.values().map(|t| t.group.as_str()).filter(|g| !g.is_empty()).collect();
        names.sort_by_key(|g| (BUILTIN_GROUP_ORDER.iter().position(|b| b == g).unwrap_or(usize::MAX), g.to_string()));
        names.dedup();
        for name in names {
            let mut versions: Vec<String> = Vec::new();
            for t in self.types.values().filter(|t| t.group == name) {
                for v in &t.versions {
                    if !versions.contains(v) {
                        versions.push(v.clone());
                    }
                }
            }
            versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
            groups.push((name.to_string(), versions));
        }
        groups
    }
}

/// Kubernetes' version ordering: GA > beta > alpha, higher numbers first.
pub(crate) fn version_priority(v: &str) -> (u8, u32, u32) {
    let rest = v.strip_prefix('v').unwrap_or(v);
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let major = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, major, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, major, n.parse().unwrap_or(0))
    } else {
        (0, major, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_builtins_by_plural_and_kind() {
        let r = Registry::builtin();
        let d = r.by_plural("apps", "v1", "deployments").expect("deployments");
        assert_eq!(d.kind, "Deployment");
        assert!(d.namespaced && d.status && d.generation);
        assert!(r.by_plural("apps", "v2", "deployments").is_none());
        assert_eq!(r.get(&TypeKey::new("", "Namespace")).map(|t| t.namespaced), Some(false));
    }

    #[test]
    fn orders_versions_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v2", "v1beta1", "v1"];
        v.sort_by_key(|x| std::cmp::Reverse(version_priority(x)));
        assert_eq!(v, ["v2", "v1", "v1beta1", "v1alpha1"]);
    }
}
