//! The Argo CD delivery of `ci` (`HARMONY_DELIVERY=argocd`): each stage is an
//! Argo CD `Application` that points at the released chart in the registry
//! at its exact version. Argo CD renders and syncs it; the stage is ready
//! once Argo CD reports it Synced at that revision and Healthy (the cluster
//! topology's readiness rules know Applications, and report Argo CD's own
//! conditions and operation message when it fails).
//!
//! Secret values never sit in an Application, which anyone who may read
//! Applications can read: Harmony applies the chart's Secrets (and its
//! Namespace, which they need) to the stage itself, and the Application asks
//! the chart to leave them out (`existingSecrets: true`, see
//! [`Chart::from_objects`](crate::chart::Chart::from_objects)).
//!
//! | variable | meaning |
//! |---|---|
//! | `HARMONY_ARGOCD_NAMESPACE` | where Argo CD's Applications live (default `argocd`) |
//! | `HARMONY_ARGOCD_PROJECT` | the Argo CD project (default `default`) |
//!
//! A stage's namespace is the Application's destination namespace; its
//! context, if set, names the destination cluster as Argo CD knows it (and
//! the kubeconfig context its smoke test goes through: name them alike).
//! Argo CD itself must be able to pull from the registry (a repository
//! Secret of type `helm` with `enableOCI`).

use serde_json::json;

use crate::cluster::Place;
use crate::object::Object;
use crate::release::{Delivery, DeliveryError};
use crate::topology::TopologyError;

/// The namespace Argo CD runs in (default `argocd`).
pub const NAMESPACE_VAR: &str = "HARMONY_ARGOCD_NAMESPACE";
/// The Argo CD project each Application belongs to (default `default`).
pub const PROJECT_VAR: &str = "HARMONY_ARGOCD_PROJECT";

/// Where the Applications live, and in which Argo CD project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgoCd {
    /// The namespace Argo CD runs in, where the Applications go ([`NAMESPACE_VAR`]).
    pub namespace: String,
    /// The Argo CD project each Application belongs to ([`PROJECT_VAR`]).
    pub project: String,
}

impl ArgoCd {
    /// The settings from the environment ([`NAMESPACE_VAR`], [`PROJECT_VAR`]).
    pub fn from_env() -> Result<Self, TopologyError> {
        let read = |var: &'static str, default: &str| match std::env::var(var) {
            Ok(v) if v.trim().is_empty() => Err(TopologyError::BadSetting {
                var,
                why: "it is empty".into(),
            }),
            Ok(v) => Ok(v.trim().to_owned()),
            Err(_) => Ok(default.to_owned()),
        };
        Ok(Self {
            namespace: read(NAMESPACE_VAR, "argocd")?,
            project: read(PROJECT_VAR, "default")?,
        })
    }

    /// What Harmony applies to the stage itself: the chart's Namespace, if
    /// it has one, and its Secrets (`placed`: already in the stage's namespace).
    pub fn brought(placed: &[Object]) -> Vec<Object> {
        placed
            .iter()
            .filter(|o| o.id().is_secret() || (o.id().api_version == "v1" && o.id().kind == "Namespace"))
            .cloned()
            .collect()
    }

    /// The Application of `delivery` (its objects `placed` on `place`).
    pub fn application(&self, delivery: &Delivery, place: &Place, placed: &[Object]) -> Result<Object, DeliveryError> {
        let unplaceable = |why: String| DeliveryError::Unplaceable {
            stage: delivery.stage.clone(),
            why,
        };
        let location = delivery.chart.location();
        let registry = location
            .registry()
            .ok_or_else(|| unplaceable(format!("{} is in no registry Argo CD could pull from", delivery.chart)))?;
        let repository = location.repository();
        let folder = repository.rsplit_once('/').map_or("", |(folder, _)| folder);
        let repo_url = if folder.is_empty() {
            registry.to_owned()
        } else {
            format!("{registry}/{folder}")
        };
        let namespace = match &place.namespace {
            Some(ns) => ns.clone(),
            None => crate::cluster::the_namespace(placed)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    unplaceable(format!(
                        "Argo CD needs a destination namespace, and the chart names none; set `{}`",
                        crate::cluster::namespace_var(&delivery.stage)
                    ))
                })?
                .to_owned(),
        };
        let destination = match &place.context {
            Some(cluster) => json!({"name": cluster, "namespace": namespace}),
            None => json!({"server": "https://kubernetes.default.svc", "namespace": namespace}),
        };
        let name = format!("{}-{}", delivery.app, delivery.stage);
        let body = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": "harmony", "app.kubernetes.io/name": delivery.app},
            },
            "spec": {
                "project": self.project,
                "source": {
                    "repoURL": repo_url,
                    "chart": location.name(),
                    "targetRevision": delivery.chart.version().to_string(),
                    "helm": {"releaseName": delivery.app, "valuesObject": {"existingSecrets": true}},
                },
                "destination": destination,
                "syncPolicy": {
                    "automated": {"prune": true, "selfHeal": true},
                    "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
                },
            },
        });
        Object::from_value(body).map_err(|e| unplaceable(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::Digest;
    use crate::release::{ChartRef, Version};

    fn delivery(objects: Vec<Object>) -> Delivery {
        Delivery {
            app: "web".into(),
            stage: "staging".into(),
            chart: ChartRef::new(Some("127.0.0.1:5000"), "team/charts", "web", Version::new(0, 3, 1)).unwrap(),
            chart_digest: Digest::sha256_of(b"chart"),
            objects: objects.into(),
        }
    }

    #[test]
    fn an_application_points_at_the_released_chart_and_carries_no_secret() {
        let objects = vec![
            Object::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web-staging"}})).unwrap(),
            Object::from_value(
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db", "namespace": "web-staging"},
                                      "stringData": {"password": "hunter22"}}),
            )
            .unwrap(),
            Object::from_value(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "web-staging"}}),
            )
            .unwrap(),
        ];
        let argo = ArgoCd {
            namespace: "argocd".into(),
            project: "default".into(),
        };
        let place = Place {
            context: None,
            namespace: Some("web-staging".into()),
        };
        let app = argo.application(&delivery(objects.clone()), &place, &objects).unwrap();
        let body = app.body();
        assert_eq!(app.id().to_string(), "argoproj.io/v1alpha1 Application argocd/web-staging");
        assert_eq!(body["spec"]["source"]["repoURL"], "127.0.0.1:5000/team/charts");
        assert_eq!(body["spec"]["source"]["chart"], "web");
        assert_eq!(body["spec"]["source"]["targetRevision"], "0.3.1");
        assert_eq!(body["spec"]["destination"]["namespace"], "web-staging");
        assert!(!body.to_string().contains("hunter22"), "no secret value in the Application");
        let brought: Vec<String> = ArgoCd::brought(&objects).iter().map(|o| o.id().kind.clone()).collect();
        assert_eq!(brought, ["Namespace", "Secret"]);
    }
}
