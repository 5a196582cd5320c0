//! The greeter on a cluster: a custom resource kind of its own (its CRD), one
//! resource of that kind, and a Deployment that serves the greeting. Runs on
//! the `k8s` topology.

use harmony::k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use harmony::k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use harmony::serde_json::json;
use harmony::{Desired, Object, Render, RenderCx, Score, ScoreError};

/// A `Greeting` resource, and its kind (the CRD).
///
/// The CRD may come after the resource in `render`: a step applies
/// Namespaces and CRDs first, and waits until each CRD is established.
#[derive(Score, Debug, Clone)]
pub struct GreetingResource {
    pub namespace: String,
    pub text: String,
}

impl Render for GreetingResource {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut desired = Desired::new();
        // No typed struct describes a custom resource: it is written as JSON.
        desired.push_object(Object::from_value(json!({
            "apiVersion": "greeter.example.com/v1",
            "kind": "Greeting",
            "metadata": {"name": "hello", "namespace": self.namespace},
            "spec": {"text": self.text},
        }))?);
        desired.push_object(Object::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "greetings.greeter.example.com"},
            "spec": {
                "group": "greeter.example.com",
                "names": {"kind": "Greeting", "plural": "greetings", "singular": "greeting"},
                "scope": "Namespaced",
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"text": {"type": "string"}}},
                    }}},
                }],
            },
        }))?);
        Ok(desired)
    }
}

/// The greeter's server.
#[derive(Score, Debug, Clone)]
pub struct Server {
    pub namespace: String,
    pub image: String,
}

impl Render for Server {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let labels = std::collections::BTreeMap::from([("app".to_owned(), "greeter".to_owned())]);
        let mut desired = Desired::new();
        desired.push(&Deployment {
            metadata: ObjectMeta {
                name: Some("greeter".into()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            spec: Some(DeploymentSpec {
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..Default::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "server".into(),
                            image: Some(self.image.clone()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                },
                ..Default::default()
            }),
            ..Default::default()
        })?;
        Ok(desired)
    }
}

/// The whole greeter on a cluster: the resource first, then the server.
#[derive(Score, Debug, Clone)]
pub struct OnCluster {
    #[score(child)]
    pub resource: GreetingResource,
    #[score(child)]
    pub server: Server,
}

harmony::app! {
    /// The greeter on a cluster.
    name: "greeter-cluster",
    score: OnCluster {
        resource: GreetingResource { namespace: "default".into(), text: "hello".into() },
        server: Server { namespace: "default".into(), image: "registry.example.com/greeter:1.0".into() },
    },
    topologies: [harmony_k8s::K8s],
}
