//! What the cluster serves: each kind's resource path and scope, and each
//! group's preferred version.
//!
//! A plan reads it all at once, in two requests made alongside the first
//! read of the ApplySet parent (the aggregated discovery of `/api` and
//! `/apis`, as kubectl does), so that listing the members waits for no
//! further round trip. Whatever that left out (a server too old for
//! aggregated discovery, a group served by an extension API server whose
//! discovery is stale, a CRD applied since) is asked for one group version
//! at a time, once, and kept.

use harmony::ObjectRef;
use harmony::capability::DeployError;
use kube::api::{Api, DynamicObject};
use kube::core::GroupVersion;
use kube::discovery::{ApiResource, Scope};
use serde::Deserialize;

use crate::cluster::{Cluster, Discovered, Served};
use crate::error::Subject;

/// The aggregated discovery documents, v2 first, then v2beta1 (Kubernetes
/// 1.26 to 1.29); a server without either answers in the old form.
const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,\
application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";

impl Cluster {
    /// The kind `kind` of `api_version`, as the cluster serves it; `None` if
    /// it does not (yet: a CRD just applied may take a moment).
    pub async fn served(&self, api_version: &str, kind: &str) -> Result<Option<Served>, DeployError> {
        if let Some(known) = self.known(api_version, kind) {
            return Ok(known);
        }
        // One discovery of a group version at a time: requests that miss
        // together ask once.
        let _asking = self.discovering.lock().await;
        if let Some(known) = self.known(api_version, kind) {
            return Ok(known);
        }
        self.discover(api_version).await?;
        Ok(self.known(api_version, kind).flatten())
    }

    /// `Some(None)`: the group version is known and does not serve `kind`;
    /// `None`: the group version was never asked about.
    fn known(&self, api_version: &str, kind: &str) -> Option<Option<Served>> {
        let discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        let kinds = discovered.kinds.get(api_version)?;
        Some(kinds.iter().find(|s| s.resource.kind == kind).cloned())
    }

    /// Forget what discovery said about `group` (a CRD of it was applied).
    pub fn forget_group(&self, group: &str) {
        let mut discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        discovered
            .kinds
            .retain(|api_version, _| api_version.rsplit_once('/').map_or("", |(g, _)| g) != group);
        discovered.preferred.remove(group);
    }

    async fn discover(&self, api_version: &str) -> Result<(), DeployError> {
        let gv: GroupVersion = api_version.parse().map_err(|e| DeployError::Rejected {
            object: Box::new(ObjectRef {
                api_version: api_version.to_owned(),
                kind: String::new(),
                namespace: None,
                name: String::new(),
            }),
            why: format!("`{api_version}` is not an apiVersion: {e}"),
            help: "write apiVersion as `group/version`, or `v1` for the core group".into(),
        })?;
        let found = self
            .call("discover", Subject::Named(api_version), || {
                kube::discovery::pinned_group(&self.client, &gv)
            })
            .await;
        let kinds = match found {
            Ok(group) => served(group.versioned_resources(&gv.version)),
            // The cluster does not serve this group version (at least not yet).
            Err(DeployError::Rejected { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        discovered.kinds.insert(api_version.to_owned(), kinds);
        Ok(())
    }

    /// The preferred version of `group` (`""` for the core group), if served.
    pub async fn preferred_version(&self, group: &str) -> Result<Option<String>, DeployError> {
        if group.is_empty() {
            return Ok(Some("v1".into()));
        }
        if let Some(version) = self.discovered.lock().unwrap_or_else(|p| p.into_inner()).preferred.get(group) {
            return Ok(Some(version.clone()));
        }
        match self
            .call("discover", Subject::Named(group), || kube::discovery::group(&self.client, group))
            .await
        {
            Ok(g) => {
                // The group's discovery read every version's resources: keep
                // them, so that serving one of its kinds needs no second request.
                let preferred = g.preferred_version_or_latest().to_owned();
                let mut discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
                for version in g.versions() {
                    discovered
                        .kinds
                        .insert(format!("{group}/{version}"), served(g.versioned_resources(version)));
                }
                discovered.preferred.insert(group.to_owned(), preferred.clone());
                Ok(Some(preferred))
            }
            Err(DeployError::Rejected { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Read everything the cluster serves in two requests made together,
    /// once per run. A server that cannot answer in the aggregated form is
    /// left to discovery one group version at a time.
    pub async fn read_discovery(&self) -> Result<(), DeployError> {
        if self.discovered.lock().unwrap_or_else(|p| p.into_inner()).read_whole {
            return Ok(());
        }
        let (core, groups) = futures_util::future::try_join(self.aggregated("/api"), self.aggregated("/apis")).await?;
        let mut discovered = self.discovered.lock().unwrap_or_else(|p| p.into_inner());
        for list in [core, groups].into_iter().flatten() {
            list.record(&mut discovered);
        }
        discovered.read_whole = true;
        Ok(())
    }

    /// One aggregated discovery document; `None` if the server does not serve that form.
    async fn aggregated(&self, path: &str) -> Result<Option<GroupList>, DeployError> {
        let answer = self
            .call("discover", Subject::Named(path), || async {
                let request = http::Request::get(path)
                    .header(http::header::ACCEPT, AGGREGATED)
                    .body(Vec::new())
                    .map_err(kube::Error::HttpError)?;
                self.client.request::<GroupList>(request).await
            })
            .await;
        match answer {
            Ok(list) if list.kind == "APIGroupDiscoveryList" => Ok(Some(list)),
            // The old form (`APIVersions`, `APIGroupList`), or an answer not understood.
            Ok(_) | Err(DeployError::Rejected { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The API of one kind, in one namespace or across all of them.
    pub fn api(&self, served: &Served, namespace: Option<&str>) -> Api<DynamicObject> {
        match (served.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &served.resource),
            _ => Api::all_with(self.client.clone(), &served.resource),
        }
    }
}

fn served(resources: Vec<(ApiResource, kube::discovery::ApiCapabilities)>) -> Vec<Served> {
    resources
        .into_iter()
        .map(|(resource, caps)| Served {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        })
        .collect()
}

/// `APIGroupDiscoveryList` (apidiscovery.k8s.io v2 and v2beta1), only what is read of it.
#[derive(Debug, Deserialize)]
struct GroupList {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    items: Vec<GroupDiscovery>,
}

#[derive(Debug, Deserialize)]
struct GroupDiscovery {
    #[serde(default)]
    metadata: Name,
    /// Most preferred first.
    #[serde(default)]
    versions: Vec<VersionDiscovery>,
}

#[derive(Debug, Default, Deserialize)]
struct Name {
    #[serde(default)]
    name: String,
}

#[derive(Debug, Deserialize)]
struct VersionDiscovery {
    version: String,
    #[serde(default)]
    resources: Vec<ResourceDiscovery>,
    /// `Stale` when an extension API server's discovery could not be read.
    #[serde(default)]
    freshness: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceDiscovery {
    resource: String,
    #[serde(default)]
    response_kind: Option<ResponseKind>,
    #[serde(default)]
    scope: String,
}

#[derive(Debug, Deserialize)]
struct ResponseKind {
    kind: String,
}

impl GroupList {
    /// Keep every fresh group version's kinds, and each group's preferred version.
    fn record(self, discovered: &mut Discovered) {
        for group in self.items {
            let name = group.metadata.name;
            if let Some(first) = group.versions.first() {
                discovered.preferred.insert(name.clone(), first.version.clone());
            }
            for version in group.versions {
                if version.freshness == "Stale" {
                    // Asked for on its own when needed.
                    continue;
                }
                let gv = GroupVersion::gv(&name, &version.version);
                let kinds = version
                    .resources
                    .into_iter()
                    .filter_map(|r| {
                        let kind = r.response_kind?.kind;
                        Some(Served {
                            resource: ApiResource {
                                group: name.clone(),
                                version: version.version.clone(),
                                api_version: gv.api_version(),
                                kind,
                                plural: r.resource,
                            },
                            namespaced: r.scope == "Namespaced",
                        })
                    })
                    .collect();
                discovered.kinds.insert(gv.api_version(), kinds);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_aggregated_document_gives_kinds_scopes_and_preferred_versions() {
        let list: GroupList = serde_json::from_value(serde_json::json!({
            "kind": "APIGroupDiscoveryList",
            "items": [
                {"metadata": {"name": ""}, "versions": [{"version": "v1", "resources": [
                    {"resource": "configmaps", "responseKind": {"group": "", "version": "v1", "kind": "ConfigMap"}, "scope": "Namespaced"},
                    {"resource": "namespaces", "responseKind": {"group": "", "version": "v1", "kind": "Namespace"}, "scope": "Cluster"}
                ]}]},
                {"metadata": {"name": "autoscaling"}, "versions": [
                    {"version": "v2", "resources": [{"resource": "horizontalpodautoscalers", "responseKind": {"kind": "HorizontalPodAutoscaler"}, "scope": "Namespaced"}]},
                    {"version": "v1", "resources": [{"resource": "horizontalpodautoscalers", "responseKind": {"kind": "HorizontalPodAutoscaler"}, "scope": "Namespaced"}]}
                ]},
                {"metadata": {"name": "metrics.k8s.io"}, "versions": [{"version": "v1beta1", "freshness": "Stale"}]}
            ]
        }))
        .unwrap();
        let mut discovered = Discovered::default();
        list.record(&mut discovered);
        let namespace = &discovered.kinds["v1"][1];
        assert_eq!((namespace.resource.plural.as_str(), namespace.namespaced), ("namespaces", false));
        assert!(discovered.kinds["v1"][0].namespaced);
        assert_eq!(discovered.kinds["autoscaling/v2"][0].resource.api_version, "autoscaling/v2");
        assert_eq!(discovered.preferred["autoscaling"], "v2");
        assert!(
            !discovered.kinds.contains_key("metrics.k8s.io/v1beta1"),
            "a stale version is asked for on its own"
        );
    }
}
