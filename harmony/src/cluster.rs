//! Clusters a topology of this crate delivers to, and where on them each
//! stage of a release lives.
//!
//! `harmony` speaks no cluster protocol itself (kube stays out of it, ADR
//! 0014): the crate that does registers a [`Connector`] with
//! [`connector!`](crate::connector!), which sets up its cluster topology at a
//! [`Place`], and the `ci` topology finds it at run time, as the CLI finds
//! topologies. So a stage is delivered *by* that topology (`k8s`), with
//! everything it does for `apply`. A binary that links none can still
//! deliver to a GitOps directory.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::engine::any_topology::AnyTopology;
use crate::object::{Object, ObjectRef};
use crate::topology::TopologyError;

/// Where on a cluster objects go: a kubeconfig context (else the
/// environment's), a namespace (else the objects' own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    /// The kubeconfig context; `None` for the environment's current one.
    pub context: Option<String>,
    /// The namespace the objects go to; `None` leaves each in its own.
    pub namespace: Option<String>,
}

/// The setting that names the context of `stage`: `HARMONY_STAGE_STAGING_CONTEXT`.
pub fn context_var(stage: &str) -> String {
    format!("HARMONY_STAGE_{}_CONTEXT", stage_key(stage))
}

/// The setting that names the namespace of `stage`: `HARMONY_STAGE_STAGING_NAMESPACE`.
pub fn namespace_var(stage: &str) -> String {
    format!("HARMONY_STAGE_{}_NAMESPACE", stage_key(stage))
}

fn stage_key(stage: &str) -> String {
    stage
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect()
}

impl Place {
    /// Where `stage` lives, from its settings; `None` when it names nothing.
    pub fn of_stage(stage: &str) -> Option<Self> {
        let read = |var: String| std::env::var(var).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let place = Self {
            context: read(context_var(stage)),
            namespace: read(namespace_var(stage)),
        };
        (place.context.is_some() || place.namespace.is_some()).then_some(place)
    }

    /// The objects as they are placed here: with a namespace, the one
    /// namespace the chart uses becomes it (its `Namespace` object renamed,
    /// its namespaced objects moved, the service accounts its role bindings
    /// name followed), so one chart serves every stage of one cluster. Other
    /// names inside bodies (a Service's DNS name in a setting) are the
    /// chart's to keep neutral.
    pub fn place(&self, objects: &[Object]) -> Result<Vec<Object>, String> {
        let Some(to) = &self.namespace else {
            return Ok(objects.to_vec());
        };
        let from = match the_namespace(objects) {
            Ok(None) => return Ok(objects.to_vec()),
            Ok(Some(from)) => from,
            Err(used) => {
                return Err(format!(
                    "the chart puts objects in {} namespaces ({}), and a stage's namespace can stand in for one",
                    used.len(),
                    used.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
                ));
            }
        };
        // Cluster-wide roles and bindings are per placement too: two stages on one
        // cluster would otherwise take turns owning one binding, and its subject.
        let renamed: BTreeSet<&str> = objects
            .iter()
            .filter(|o| from != to && is_cluster_rbac(o.id()))
            .map(|o| o.id().name.as_str())
            .collect();
        let placed_name = |name: &str| match name.strip_suffix(&format!("-{from}")) {
            Some(stem) => format!("{stem}-{to}"),
            None => format!("{name}-{to}"),
        };
        objects
            .iter()
            .map(|o| {
                let mut body = o.body().clone();
                rename_namespace(&mut body, o.id(), from, to);
                if renamed.contains(o.id().name.as_str()) && is_cluster_rbac(o.id()) {
                    body["metadata"]["name"] = placed_name(&o.id().name).into();
                }
                let role = body.pointer("/roleRef/name").and_then(Value::as_str).map(str::to_owned);
                if let Some(role) = role
                    && body.pointer("/roleRef/kind").and_then(Value::as_str) == Some("ClusterRole")
                    && renamed.contains(role.as_str())
                {
                    body["roleRef"]["name"] = placed_name(&role).into();
                }
                if body == *o.body() {
                    return Ok(o.clone());
                }
                Object::from_value(body).map_err(|e| e.to_string())
            })
            .collect()
    }

    /// [`Place::place`], for a stage: a chart that expects its namespace to
    /// exist (as Helm charts do) gets the stage's, created with it, since the
    /// stage names it.
    pub fn place_stage(&self, objects: &[Object]) -> Result<Vec<Object>, String> {
        let mut placed = self.place(objects)?;
        let has_namespace = placed.iter().any(|o| o.id().api_version == "v1" && o.id().kind == "Namespace");
        if let (Some(to), false) = (&self.namespace, has_namespace) {
            let namespace = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": to}});
            placed.insert(0, Object::from_value(namespace).map_err(|e| e.to_string())?);
        }
        Ok(placed)
    }
}

/// The one namespace `objects` use (their `Namespace`, and where the
/// namespaced ones live), if any; every one of them when there are several.
pub fn the_namespace(objects: &[Object]) -> Result<Option<&str>, Vec<&str>> {
    let used: BTreeSet<&str> = objects
        .iter()
        .filter_map(|o| {
            let id = o.id();
            if id.api_version == "v1" && id.kind == "Namespace" {
                Some(id.name.as_str())
            } else {
                id.namespace.as_deref()
            }
        })
        .collect();
    match used.len() {
        0 => Ok(None),
        1 => Ok(used.first().copied()),
        _ => Err(used.into_iter().collect()),
    }
}

/// A `ClusterRole` or `ClusterRoleBinding`: cluster-wide, yet made for the
/// namespace the chart lives in.
fn is_cluster_rbac(id: &ObjectRef) -> bool {
    id.api_version == "rbac.authorization.k8s.io/v1" && matches!(id.kind.as_str(), "ClusterRole" | "ClusterRoleBinding")
}

/// Namespace `from` replaced by `to` in `body` wherever it names the
/// namespace the object lives in or is: its own, a `Namespace`'s name, the
/// subjects of a role binding.
pub(crate) fn rename_namespace(body: &mut Value, id: &ObjectRef, from: &str, to: &str) {
    if id.api_version == "v1" && id.kind == "Namespace" && id.name == from {
        body["metadata"]["name"] = to.into();
    } else if id.namespace.as_deref() == Some(from) {
        body["metadata"]["namespace"] = to.into();
    }
    if id.api_version == "rbac.authorization.k8s.io/v1" && id.kind.ends_with("RoleBinding") {
        for subject in body.get_mut("subjects").and_then(Value::as_array_mut).into_iter().flatten() {
            if subject.get("namespace").and_then(Value::as_str) == Some(from) {
                subject["namespace"] = to.into();
            }
        }
    }
}

/// Sets up the cluster topology at a [`Place`]: reads the kubeconfig and
/// checks the settings, contacts nothing yet. What it returns provides
/// `K8sDeploy`, `K8sClient` and `HttpProbe`.
pub type Connect = fn(&Place) -> Result<AnyTopology, TopologyError>;

/// A way to reach clusters, registered by the crate that speaks to them.
#[derive(Debug)]
pub struct Connector {
    /// The topology it sets up, as `--topology` names it: `k8s`.
    pub topology: &'static str,
    /// Sets that topology up at a [`Place`].
    pub connect: Connect,
}

inventory::collect!(Connector);

/// The connector this binary links, if any.
pub fn connector() -> Option<&'static Connector> {
    inventory::iter::<Connector>.into_iter().next()
}

/// Register the way this crate reaches clusters.
///
/// ```ignore
/// harmony::connector!(MyCluster::NAME, |place| /* MyCluster at `place`, as an AnyTopology */);
/// ```
#[macro_export]
macro_rules! connector {
    ($topology:expr, $connect:expr) => {
        $crate::__private::inventory::submit! {
            $crate::cluster::Connector { topology: $topology, connect: $connect }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn object(kind: &str, namespace: Option<&str>, name: &str) -> Object {
        let mut body = json!({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}});
        if let Some(ns) = namespace {
            body["metadata"]["namespace"] = ns.into();
        }
        Object::from_value(body).unwrap()
    }

    #[test]
    fn a_stage_namespace_stands_in_for_the_charts_one() {
        let binding = Object::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "web-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "server", "namespace": "web"}],
        }))
        .unwrap();
        let role = Object::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "reader"}, "rules": [],
        }))
        .unwrap();
        let chart = [
            object("Namespace", None, "web"),
            object("Service", Some("web"), "server"),
            object("ConfigMap", Some("web"), "settings"),
            binding,
            role,
        ];
        let place = Place {
            context: None,
            namespace: Some("web-staging".into()),
        };
        let placed = place.place(&chart).unwrap();
        let ids: Vec<String> = placed.iter().map(|o| o.id().to_string()).collect();
        assert_eq!(
            ids,
            [
                "v1 Namespace web-staging",
                "v1 Service web-staging/server",
                "v1 ConfigMap web-staging/settings",
                "rbac.authorization.k8s.io/v1 ClusterRoleBinding web-reader-web-staging",
                "rbac.authorization.k8s.io/v1 ClusterRole reader-web-staging",
            ],
            "cluster-wide roles and bindings are per stage: two stages on one cluster never share one"
        );
        assert_eq!(
            placed[3].body()["roleRef"]["name"],
            "reader-web-staging",
            "the binding follows its role"
        );
        assert_eq!(placed[1].body()["metadata"]["namespace"], "web-staging");
        assert_eq!(
            placed[3].body()["subjects"][0]["namespace"],
            "web-staging",
            "the bound account moved with it"
        );
        assert_eq!(Place::default().place(&chart).unwrap(), chart.to_vec(), "no namespace: as rendered");
    }

    #[test]
    fn a_cluster_role_named_after_the_charts_namespace_is_named_after_the_stages() {
        let role = Object::from_value(json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "operator-fleet"}, "rules": [],
        }))
        .unwrap();
        let chart = [object("ServiceAccount", Some("fleet"), "operator"), role];
        let place = Place {
            context: None,
            namespace: Some("fleet-staging".into()),
        };
        let placed = place.place(&chart).unwrap();
        assert_eq!(placed[1].id().name, "operator-fleet-staging");
        let same = Place {
            context: None,
            namespace: Some("fleet".into()),
        };
        assert_eq!(same.place(&chart).unwrap(), chart.to_vec(), "not moved: not renamed");
    }

    #[test]
    fn a_chart_without_its_namespace_gets_the_stages() {
        let place = Place {
            context: None,
            namespace: Some("ops-staging".into()),
        };
        let objects = [object("ConfigMap", Some("ops"), "settings")];
        assert_eq!(place.place(&objects).unwrap().len(), 1, "a Score's objects are only moved");
        let placed = place.place_stage(&objects).unwrap();
        let ids: Vec<String> = placed.iter().map(|o| o.id().to_string()).collect();
        assert_eq!(ids, ["v1 Namespace ops-staging", "v1 ConfigMap ops-staging/settings"]);
    }

    #[test]
    fn a_chart_over_two_namespaces_cannot_be_moved() {
        let chart = [object("Service", Some("a"), "x"), object("Service", Some("b"), "y")];
        let place = Place {
            context: None,
            namespace: Some("staging".into()),
        };
        let err = place.place(&chart).unwrap_err();
        assert!(err.contains("2 namespaces (`a`, `b`)"), "{err}");
    }

    #[test]
    fn stage_settings_are_named_after_the_stage() {
        assert_eq!(context_var("staging"), "HARMONY_STAGE_STAGING_CONTEXT");
        assert_eq!(namespace_var("pre-prod"), "HARMONY_STAGE_PRE_PROD_NAMESPACE");
    }
}
