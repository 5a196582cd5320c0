//! The `FleetDeployment` custom resource: which devices (by label) run which
//! resources, and how far they got.

use std::collections::BTreeMap;

use fleet_model::Resource;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// What a set of devices must run.
#[derive(CustomResource, Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[kube(
    group = "fleet.harmony.deploy",
    version = "v1alpha1",
    kind = "FleetDeployment",
    namespaced,
    status = "FleetDeploymentStatus",
    shortname = "fd",
    printcolumn = r#"{"name":"Selected","type":"integer","jsonPath":".status.selected"}"#,
    printcolumn = r#"{"name":"Ready","type":"integer","jsonPath":".status.ready"}"#,
    printcolumn = r#"{"name":"Failed","type":"integer","jsonPath":".status.failed"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct FleetDeploymentSpec {
    /// The devices to run on: every registered device carrying all these labels.
    pub selector: BTreeMap<String, String>,
    /// What each selected device runs (checked by the operator, which
    /// reports a resource it cannot send in the status).
    #[schemars(schema_with = "resources_schema")]
    pub resources: Vec<Resource>,
}

/// How far the selected devices got, as the operator last saw it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetDeploymentStatus {
    /// The generation of the spec these figures are about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Devices the selector matches.
    pub selected: u32,
    /// Devices running this generation, every resource ready.
    pub ready: u32,
    /// Devices getting there (or not yet reporting this generation).
    pub progressing: u32,
    /// Devices that cannot get there without a change (see `failures`).
    pub failed: u32,
    /// Devices whose agent has not reported for longer than the operator waits.
    pub silent: u32,
    /// Devices the selector matches that another FleetDeployment already runs on.
    pub conflicts: u32,
    /// `Ready` (every selected device ready), `Progressing`, `Degraded`.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The first failures, device by device, in their agents' words.
    #[serde(default)]
    pub failures: Vec<DeviceFailure>,
}

/// A condition as Kubernetes tools read them.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    pub reason: String,
    pub message: String,
}

/// Why one device is not there.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceFailure {
    pub device: String,
    pub message: String,
}

impl FleetDeployment {
    /// `<namespace>/<name>`: the owner written into its manifests.
    pub fn owner(&self) -> String {
        format!(
            "{}/{}",
            self.metadata.namespace.as_deref().unwrap_or_default(),
            self.metadata.name.as_deref().unwrap_or_default()
        )
    }
}

/// `resources` as one structural object schema: Kubernetes cannot take the
/// `oneOf` of a tagged enum, so every kind's fields are listed, `kind` says
/// which apply, and the operator checks the rest (the agent's own rules,
/// `AgentManifest::validate`).
fn resources_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "items": {
            "type": "object",
            "required": ["kind", "name"],
            "properties": {
                "kind": {"type": "string", "enum": ["File", "Process", "Link"]},
                "name": {"type": "string", "description": "Unique among the resources."},
                "path": {"type": "string", "description": "File, Link: an absolute path."},
                "content": {"type": "string", "description": "File: its exact content."},
                "mode": {"type": "integer", "description": "File: its permission bits (default 0o644)."},
                "argv": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "Process: the program and its arguments, never a shell script."
                },
                "env": {
                    "type": "object",
                    "additionalProperties": {"type": "string"},
                    "description": "Process: its whole environment."
                },
                "restart": {"type": "string", "enum": ["always", "onFailure", "never"]},
                "target": {
                    "type": "string",
                    "description": "Link: the absolute path it points at, under the device's file roots."
                }
            }
        }
    })
}
