//! The fleet's wire model: what one device must run ([`AgentManifest`], written
//! by the operator into the device's key of a NATS KV bucket) and what the
//! device reports ([`AgentStatus`], written back by its agent).
//!
//! A manifest is a short list of typed resources with real effects and a
//! status of their own — a [`File`](Resource::File), a supervised
//! [`Process`](Resource::Process) and a symbolic [`Link`](Resource::Link) —
//! reconciled idempotently. A process is an
//! argument vector, run directly; which programs may run at all is the
//! device's to say (the agent's allow-list), whatever a manifest's arguments
//! spell.
//!
//! # Versions and unknown fields
//! Every document carries `schemaVersion` ([`SCHEMA_VERSION`] is the one this
//! crate writes). The two sides read differently, on purpose:
//! - **A manifest is read strictly.** A manifest carries the lowest version
//!   that can express it ([`AgentManifest::new`]), so an older agent runs
//!   every manifest it can read and refuses, by version, one that uses what
//!   it does not know. A newer version is refused as
//!   [`ManifestError::NewerVersion`] (the agent says so in its status and keeps
//!   running what it runs); within a known version, an unknown field is an
//!   error ([`ManifestError::Malformed`]) naming it, so that a typo never
//!   silently drops a setting on a device.
//! - **A status is read leniently.** Unknown fields are ignored: a newer agent
//!   may report more, and an older operator still counts its states.
//!
//! # Signed
//! A manifest reaches a device inside a value the operator signs
//! ([`signed`]): the device verifies it against the key it was enrolled with,
//! and refuses one signed by anyone else, for another device, or older than
//! the one it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

pub mod identity;
pub mod signed;

/// The newest schema version this crate reads (and writes, when a manifest
/// needs it): 1 has `File` and `Process`, 2 adds `Link`.
pub const SCHEMA_VERSION: u32 = 2;

/// What one device must run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentManifest {
    pub schema_version: u32,
    /// Grows with every change the operator writes; the agent reports the
    /// one it has reconciled as [`AgentStatus::observed_generation`].
    pub generation: u64,
    /// Who wrote it (the operator: `<namespace>/<FleetDeployment name>`): one
    /// owner per device, so that two deployments never fight over one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Each with a name unique in the manifest.
    pub resources: Vec<Resource>,
}

/// One thing a device runs or holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum Resource {
    File(FileSpec),
    Process(ProcessSpec),
    /// Since schema version 2.
    Link(LinkSpec),
}

/// A file with exactly this content and mode, written atomically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FileSpec {
    pub name: String,
    /// Absolute. (Missing reads as empty, which `validate` refuses by name.)
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub content: String,
    /// Unix permission bits, `0o644` unless given.
    #[serde(default = "default_mode")]
    pub mode: u32,
}

/// A symbolic link at `path` that points at `target`: what a device switches
/// to move between versions of what it holds (`/srv/app/current` pointing at
/// `/srv/app/releases/2`), replaced in one step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinkSpec {
    pub name: String,
    /// Absolute: where the link is. (Missing reads as empty, which `validate`
    /// refuses by name.)
    #[serde(default)]
    pub path: String,
    /// Absolute: what it points at, written into the link as it is.
    #[serde(default)]
    pub target: String,
}

/// A long-running program the agent starts and supervises; restarted when
/// its spec changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProcessSpec {
    pub name: String,
    /// The program and its arguments, run directly. (Missing reads
    /// as empty, which `validate` refuses by name.)
    #[serde(default)]
    pub argv: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub restart: RestartPolicy,
}

/// When a process that exited is started again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RestartPolicy {
    #[default]
    Always,
    OnFailure,
    Never,
}

fn default_mode() -> u32 {
    0o644
}

impl Resource {
    pub fn name(&self) -> &str {
        match self {
            Self::File(f) => &f.name,
            Self::Process(p) => &p.name,
            Self::Link(l) => &l.name,
        }
    }

    /// The kind, as the manifest spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::File(_) => "File",
            Self::Process(_) => "Process",
            Self::Link(_) => "Link",
        }
    }

    /// The lowest schema version that has this kind.
    pub fn since(&self) -> u32 {
        match self {
            Self::File(_) | Self::Process(_) => 1,
            Self::Link(_) => 2,
        }
    }
}

/// Why a manifest cannot be run. Reported in the device's status as is.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "camelCase", rename_all_fields = "camelCase")]
#[non_exhaustive]
pub enum ManifestError {
    #[error("the manifest is schema version {found}, and this agent reads version {supported} and older: update the agent")]
    NewerVersion { found: u32, supported: u32 },
    #[error("the manifest cannot be read: {why}")]
    Malformed { why: String },
    #[error("resource `{name}` is invalid: {why}")]
    Invalid { name: String, why: String },
    #[error("the manifest is not signed: this device runs only what its operator signs")]
    Unsigned,
    #[error("the manifest's signature does not verify with the operator key this device trusts (`{key}`): refused")]
    Forged { key: String },
    #[error("the manifest is signed for device `{device}`, not this one: refused")]
    OtherDevice { device: String },
    #[error(
        "the manifest was issued at {issued} ms, before the one this device runs (issued at {running} ms): an old manifest put back, refused"
    )]
    Replayed { issued: u64, running: u64 },
}

impl AgentManifest {
    /// A manifest of `resources`, in the lowest schema version that has
    /// every kind among them: an agent that reads that version runs it.
    pub fn new(generation: u64, resources: Vec<Resource>) -> Self {
        Self {
            schema_version: resources.iter().map(Resource::since).max().unwrap_or(1),
            generation,
            owner: None,
            resources,
        }
    }

    /// Read a manifest as an agent does: its version first, then strictly,
    /// then its rules (see the crate's documentation).
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            schema_version: u32,
        }
        let malformed = |e: serde_json::Error| ManifestError::Malformed { why: e.to_string() };
        let version: Version = serde_json::from_slice(bytes).map_err(malformed)?;
        if version.schema_version > SCHEMA_VERSION {
            return Err(ManifestError::NewerVersion {
                found: version.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        if version.schema_version == 0 {
            return Err(ManifestError::Malformed {
                why: "`schemaVersion` 0 does not exist; versions start at 1".into(),
            });
        }
        let manifest: Self = serde_json::from_slice(bytes).map_err(malformed)?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The rules the types cannot say: unique names, absolute paths, a
    /// program to run, no kind newer than the manifest's version. Which
    /// programs may run and where files and links may be is the device's to
    /// say (the agent's allow-list and file roots), not the manifest's.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut names = BTreeSet::new();
        let mut paths = BTreeSet::new();
        for resource in &self.resources {
            let name = resource.name();
            let invalid = |why: String| ManifestError::Invalid {
                name: name.to_owned(),
                why,
            };
            if name.is_empty() || name.chars().any(|c| c.is_control() || c == '/') {
                return Err(invalid("a name is non-empty, without `/` or control characters".into()));
            }
            if !names.insert(name) {
                return Err(invalid("another resource has this name".into()));
            }
            if resource.since() > self.schema_version {
                return Err(invalid(format!(
                    "kind `{}` needs schemaVersion {} or later, and the manifest is version {}",
                    resource.kind(),
                    resource.since(),
                    self.schema_version
                )));
            }
            let absolute = |what: &str, path: &str| {
                if !path.starts_with('/') || path.contains('\0') || path.split('/').any(|part| part == "..") {
                    return Err(invalid(format!("{what} `{path}` must be absolute, without `..`")));
                }
                Ok(())
            };
            match resource {
                Resource::File(f) => {
                    absolute("path", &f.path)?;
                    if f.mode > 0o7777 {
                        return Err(invalid(format!("mode {:o} is not a permission mode", f.mode)));
                    }
                    if !paths.insert(f.path.as_str()) {
                        return Err(invalid(format!("another file or link resource is at `{}`", f.path)));
                    }
                }
                Resource::Link(l) => {
                    absolute("path", &l.path)?;
                    absolute("target", &l.target)?;
                    if !paths.insert(l.path.as_str()) {
                        return Err(invalid(format!("another file or link resource is at `{}`", l.path)));
                    }
                }
                Resource::Process(p) => {
                    if p.argv.first().filter(|a| !a.is_empty()).is_none() {
                        return Err(invalid("`argv` names no program".into()));
                    }
                    if p.argv.iter().chain(p.env.keys()).chain(p.env.values()).any(|s| s.contains('\0')) {
                        return Err(invalid("`argv` and `env` cannot hold NUL characters".into()));
                    }
                }
            }
        }
        Ok(())
    }
}

/// What one device reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatus {
    pub schema_version: u32,
    pub device: String,
    /// The manifest generation last reconciled, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<u64>,
    /// When the agent last wrote this, in seconds since the Unix epoch.
    pub heartbeat: u64,
    /// By resource name.
    #[serde(default)]
    pub resources: BTreeMap<String, ResourceStatus>,
    /// Why the current manifest is not run, if it is not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ManifestError>,
    /// What else the device has to say: that NATS holds no manifest for it
    /// while it runs one, say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How many resources this report leaves out because it would be too
    /// large to send ([`AgentStatus::to_bounded_json`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub left_out: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// Where one resource stands on the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum ResourceStatus {
    File(FileStatus),
    Process(ProcessStatus),
    Link(LinkStatus),
    /// A kind a newer agent reports and this reader does not know: kept out
    /// of the counts, never an error.
    #[serde(other)]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileStatus {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Where a link stands: ready once it points at its target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkStatus {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessStatus {
    pub state: State,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(default)]
    pub restarts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<Exit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// How a process last ended: its exit code, or the signal that ended it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl ResourceStatus {
    /// Where it stands, and why when it says; `None` for a kind this reader
    /// does not know.
    pub fn state(&self) -> Option<(State, Option<&str>)> {
        match self {
            Self::File(f) => Some((f.state, f.message.as_deref())),
            Self::Process(p) => Some((p.state, p.message.as_deref())),
            Self::Link(l) => Some((l.state, l.message.as_deref())),
            Self::Unknown => None,
        }
    }

    fn message_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::File(f) => f.message.as_mut(),
            Self::Process(p) => p.message.as_mut(),
            Self::Link(l) => l.message.as_mut(),
            Self::Unknown => None,
        }
    }
}

/// `text` cut to at most `max` bytes, on a character boundary, marked as cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let marker = "… (cut)";
    let mut end = max.saturating_sub(marker.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{marker}", &text[..end])
}

/// The states the operator counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// As the manifest says.
    Ready,
    /// Being brought there (written, starting, restarting).
    Progressing,
    /// It cannot get there without a change (see the message).
    Failed,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ready => "ready",
            Self::Progressing => "progressing",
            Self::Failed => "failed",
        })
    }
}

impl AgentStatus {
    /// The most a status takes on the wire: far under NATS's smallest usual
    /// maximum payload (1 MiB by default), so no device's report is refused
    /// for its size ([`AgentStatus::to_bounded_json`]).
    pub const MAX_BYTES: usize = 64 * 1024;

    /// The longest message a resource's status keeps, in bytes.
    pub const MAX_MESSAGE: usize = 1024;

    /// Read a status as the operator does: unknown fields ignored.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// This status as JSON of at most `max` bytes: as it is if it fits; else
    /// with each message cut to [`AgentStatus::MAX_MESSAGE`] bytes; else with
    /// no messages; else with as many resources as fit, and how many are left
    /// out. Never nothing: a device that cannot say everything says what it can.
    pub fn to_bounded_json(&self, max: usize) -> Vec<u8> {
        let full = self.to_json();
        if full.len() <= max {
            return full;
        }
        let mut smaller = self.clone();
        for status in smaller.resources.values_mut() {
            if let Some(message) = status.message_mut() {
                *message = cut(message, Self::MAX_MESSAGE);
            }
        }
        let cut_messages = smaller.to_json();
        if cut_messages.len() <= max {
            return cut_messages;
        }
        for status in smaller.resources.values_mut() {
            if let Some(message) = status.message_mut() {
                *message = "(message left out: the status was too large)".into();
            }
        }
        let no_messages = smaller.to_json();
        if no_messages.len() <= max {
            return no_messages;
        }
        // Resources without messages, as many as fit (the most found by
        // halving); the rest counted.
        let all: Vec<(String, ResourceStatus)> = std::mem::take(&mut smaller.resources).into_iter().collect();
        let with_first = |k: usize| AgentStatus {
            resources: all[..k].iter().cloned().collect(),
            left_out: all.len() - k,
            ..smaller.clone()
        };
        let (mut fits, mut too_many) = (0, all.len());
        while fits + 1 < too_many {
            let k = usize::midpoint(fits, too_many);
            if with_first(k).to_json().len() <= max {
                fits = k;
            } else {
                too_many = k;
            }
        }
        smaller = with_first(fits);
        smaller.to_json()
    }

    /// How many of its resources are in each state.
    pub fn counts(&self) -> BTreeMap<State, usize> {
        let mut counts = BTreeMap::new();
        for (state, _) in self.resources.values().filter_map(ResourceStatus::state) {
            *counts.entry(state).or_default() += 1;
        }
        counts
    }
}

/// The JetStream KV buckets the fleet shares, and what each key holds.
pub mod bucket {
    /// `<device>` → the device's [`AgentManifest`](super::AgentManifest), written by the operator.
    pub const MANIFESTS: &str = "fleet-manifests";
    /// `<device>` → the device's [`AgentStatus`](super::AgentStatus), written by its agent.
    pub const STATUS: &str = "fleet-status";
    /// `<device>` → the device's [`Device`](super::Device) record, written by its agent at start.
    pub const DEVICES: &str = "fleet-devices";
    /// All three, in the order the fleet's setup creates them.
    pub const ALL: [&str; 3] = [MANIFESTS, STATUS, DEVICES];

    /// The plain NATS subject the operator publishes to (no payload) after
    /// it writes `device`'s manifest: the device reads its key then. A
    /// subscription costs the server nothing per device, where a watch is a
    /// JetStream consumer each, and one server takes only so many.
    pub fn changed(device: &str) -> String {
        format!("fleet.manifest-changed.{device}")
    }
}

/// A device as it registers itself: its id and the labels a
/// `FleetDeployment` selects it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub schema_version: u32,
    pub id: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Device {
    pub fn new(id: impl Into<String>, labels: BTreeMap<String, String>) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            id: id.into(),
            labels,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Read leniently, like a status.
    pub fn from_json(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// A device id is one KV key in each bucket: letters, digits, `-`, `_` and
/// `=`, at most 128 of them (no `.`, which would nest keys).
pub fn check_device_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err(format!("device id `{id}` must have 1 to 128 characters"));
    }
    match id.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '='))) {
        Some(c) => Err(format!("device id `{id}` cannot hold `{c}`: use letters, digits, `-`, `_` and `=`")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn manifest(resources: serde_json::Value) -> Vec<u8> {
        serde_json::to_vec(&json!({"schemaVersion": 1, "generation": 3, "resources": resources})).unwrap()
    }

    #[test]
    fn a_manifest_reads_back_as_written() {
        let written = AgentManifest::new(
            7,
            vec![
                Resource::File(FileSpec {
                    name: "config".into(),
                    path: "/etc/sensor/config.toml".into(),
                    content: "rate = 5\n".into(),
                    mode: 0o600,
                }),
                Resource::Process(ProcessSpec {
                    name: "sensor".into(),
                    argv: vec!["/usr/bin/sensor".into(), "--config".into(), "/etc/sensor/config.toml".into()],
                    env: [("RUST_LOG".to_owned(), "info".to_owned())].into(),
                    restart: RestartPolicy::OnFailure,
                }),
            ],
        );
        let bytes = written.to_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""kind":"File""#) && text.contains(r#""restart":"onFailure""#),
            "{text}"
        );
        assert_eq!(AgentManifest::from_json(&bytes), Ok(written));
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let read = AgentManifest::from_json(&manifest(json!([
            {"kind": "File", "name": "motd", "path": "/etc/motd", "content": "hi"},
            {"kind": "Process", "name": "web", "argv": ["/usr/bin/web"]}
        ])))
        .unwrap();
        let Resource::File(file) = &read.resources[0] else {
            panic!("{read:?}")
        };
        assert_eq!(file.mode, 0o644);
        let Resource::Process(web) = &read.resources[1] else {
            panic!("{read:?}")
        };
        assert_eq!((web.restart, web.env.len()), (RestartPolicy::Always, 0));
    }

    #[test]
    fn a_newer_manifest_is_refused_by_version_before_anything_else() {
        let newer = serde_json::to_vec(&json!({"schemaVersion": 3, "generation": 1, "resources": [{"kind": "Socket"}]})).unwrap();
        assert_eq!(
            AgentManifest::from_json(&newer),
            Err(ManifestError::NewerVersion { found: 3, supported: 2 })
        );
    }

    fn link(path: &str, target: &str) -> Resource {
        Resource::Link(LinkSpec {
            name: "current".into(),
            path: path.into(),
            target: target.into(),
        })
    }

    #[test]
    fn a_manifest_is_written_in_the_lowest_version_that_has_its_kinds() {
        let file = Resource::File(FileSpec {
            name: "motd".into(),
            path: "/etc/motd".into(),
            content: "hi".into(),
            mode: 0o644,
        });
        assert_eq!(
            AgentManifest::new(1, vec![file.clone()]).schema_version,
            1,
            "an agent of version 1 runs it"
        );
        assert_eq!(AgentManifest::new(1, vec![]).schema_version, 1);
        let with_link = AgentManifest::new(1, vec![file, link("/srv/app/current", "/srv/app/releases/2")]);
        assert_eq!(with_link.schema_version, 2);
        assert_eq!(AgentManifest::from_json(&with_link.to_json()), Ok(with_link));
        // A version-1 manifest that uses a kind of version 2 is refused by name.
        let err = AgentManifest::from_json(&manifest(json!([
            {"kind": "Link", "name": "current", "path": "/srv/app/current", "target": "/srv/app/releases/2"}
        ])))
        .unwrap_err();
        assert!(
            matches!(&err, ManifestError::Invalid { name, why } if name == "current" && why.contains("schemaVersion 2")),
            "{err}"
        );
    }

    #[test]
    fn a_link_is_absolute_at_both_ends_and_shares_no_path_with_a_file() {
        let check = |resources: Vec<Resource>| AgentManifest::new(1, resources).validate();
        assert_eq!(check(vec![link("/srv/app/current", "/srv/app/releases/2")]), Ok(()));
        for (path, target) in [
            ("srv/app/current", "/srv/app/releases/2"),
            ("/srv/app/current", "releases/2"),
            ("/srv/app/current", "/srv/app/../../etc"),
            ("/srv/app/current", ""),
            ("", "/srv/app/releases/2"),
        ] {
            let err = check(vec![link(path, target)]).unwrap_err();
            assert!(
                matches!(&err, ManifestError::Invalid { why, .. } if why.contains("must be absolute")),
                "{path} -> {target}: {err}"
            );
        }
        let file = Resource::File(FileSpec {
            name: "config".into(),
            path: "/srv/app/current".into(),
            content: String::new(),
            mode: 0o644,
        });
        let err = check(vec![file, link("/srv/app/current", "/srv/app/releases/2")]).unwrap_err();
        assert!(
            matches!(&err, ManifestError::Invalid { why, .. } if why.contains("another file or link")),
            "{err}"
        );
    }

    #[test]
    fn an_unknown_field_is_named() {
        let typo = manifest(json!([{"kind": "File", "name": "motd", "path": "/etc/motd", "content": "hi", "mdoe": 420}]));
        let err = AgentManifest::from_json(&typo).unwrap_err();
        assert!(matches!(&err, ManifestError::Malformed { why } if why.contains("mdoe")), "{err}");
        let unknown_kind = manifest(json!([{"kind": "Socket", "name": "s"}]));
        let err = AgentManifest::from_json(&unknown_kind).unwrap_err();
        assert!(matches!(&err, ManifestError::Malformed { why } if why.contains("Socket")), "{err}");
        assert!(matches!(
            AgentManifest::from_json(b"not json"),
            Err(ManifestError::Malformed { .. })
        ));
    }

    #[test]
    fn the_rules_the_types_cannot_say_are_checked() {
        let cases = [
            (
                json!([{"kind": "File", "name": "a", "path": "etc/a", "content": ""}]),
                "must be absolute",
            ),
            (
                json!([{"kind": "File", "name": "a", "path": "/etc/../root/a", "content": ""}]),
                "without `..`",
            ),
            (
                json!([{"kind": "File", "name": "a", "path": "/a", "content": "", "mode": 0o17777}]),
                "permission mode",
            ),
            (json!([{"kind": "Process", "name": "p", "argv": []}]), "names no program"),
            (
                json!([{"kind": "File", "name": "a", "path": "/a", "content": ""}, {"kind": "Process", "name": "a", "argv": ["/a"]}]),
                "another resource has this name",
            ),
            (json!([{"kind": "Process", "name": "x/y", "argv": ["/a"]}]), "without `/`"),
            (
                json!([{"kind": "File", "name": "a", "path": "/a", "content": ""}, {"kind": "File", "name": "b", "path": "/a", "content": "x"}]),
                "another file or link resource is at `/a`",
            ),
        ];
        for (resources, expected) in cases {
            let err = AgentManifest::from_json(&manifest(resources.clone())).unwrap_err();
            assert!(matches!(err, ManifestError::Invalid { .. }), "{resources}: {err}");
            assert!(err.to_string().contains(expected), "{resources}: {err}");
        }
        let shell = manifest(json!([{"kind": "Process", "name": "p", "argv": ["/bin/sh", "-c", "true"]}]));
        assert!(
            AgentManifest::from_json(&shell).is_ok(),
            "a manifest may name any program: the device decides what runs (the agent's allow-list)"
        );
    }

    #[test]
    fn a_status_carries_the_manifest_error_as_typed_data() {
        let status = AgentStatus {
            schema_version: SCHEMA_VERSION,
            device: "sensor-17".into(),
            observed_generation: Some(3),
            heartbeat: 1_800_000_000,
            resources: [
                (
                    "config".to_owned(),
                    ResourceStatus::File(FileStatus {
                        state: State::Ready,
                        message: None,
                    }),
                ),
                (
                    "sensor".to_owned(),
                    ResourceStatus::Process(ProcessStatus {
                        state: State::Progressing,
                        pid: Some(4242),
                        restarts: 2,
                        last_exit: Some(Exit::Code(1)),
                        message: None,
                    }),
                ),
            ]
            .into(),
            error: Some(ManifestError::NewerVersion { found: 3, supported: 2 }),
            note: None,
            left_out: 0,
        };
        let bytes = status.to_json();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.contains(r#""error":{"reason":"newerVersion","found":3,"supported":2}"#),
            "{text}"
        );
        assert_eq!(AgentStatus::from_json(&bytes).unwrap(), status);
        assert_eq!(status.counts(), [(State::Ready, 1), (State::Progressing, 1)].into());
    }

    fn process_saying(message: String) -> ResourceStatus {
        ResourceStatus::Process(ProcessStatus {
            state: State::Failed,
            pid: None,
            restarts: 3,
            last_exit: Some(Exit::Code(1)),
            message: Some(message),
        })
    }

    fn status_of(resources: BTreeMap<String, ResourceStatus>) -> AgentStatus {
        AgentStatus {
            schema_version: SCHEMA_VERSION,
            device: "sensor-17".into(),
            observed_generation: Some(3),
            heartbeat: 1_800_000_000,
            resources,
            error: None,
            note: None,
            left_out: 0,
        }
    }

    #[test]
    fn a_status_too_large_to_send_is_sent_smaller_never_dropped() {
        // One process whose last output line is 1.1 MB: the message is cut, the rest kept.
        let huge = "x".repeat(1_100_000) + "é";
        let status = status_of([("web".to_owned(), process_saying(format!("exited; last output: {huge}")))].into());
        let bytes = status.to_bounded_json(AgentStatus::MAX_BYTES);
        assert!(bytes.len() <= AgentStatus::MAX_BYTES, "{}", bytes.len());
        let sent = AgentStatus::from_json(&bytes).unwrap();
        let ResourceStatus::Process(p) = &sent.resources["web"] else {
            panic!("{sent:?}")
        };
        let message = p.message.as_deref().unwrap();
        assert!(
            message.starts_with("exited; last output: xxx") && message.ends_with("… (cut)"),
            "{}",
            &message[..40]
        );
        assert!(message.len() <= AgentStatus::MAX_MESSAGE);
        assert_eq!((p.state, p.restarts, sent.left_out), (State::Failed, 3, 0));

        // Many long messages: each left out, every state kept.
        let many: BTreeMap<String, ResourceStatus> = (0..200).map(|i| (format!("p{i:03}"), process_saying("y".repeat(2000)))).collect();
        let sent = AgentStatus::from_json(&status_of(many).to_bounded_json(AgentStatus::MAX_BYTES)).unwrap();
        assert_eq!((sent.resources.len(), sent.left_out), (200, 0));
        assert_eq!(sent.counts(), [(State::Failed, 200)].into());

        // More resources than fit at all: as many as fit, and how many are left out.
        let lots: BTreeMap<String, ResourceStatus> = (0..5000)
            .map(|i| (format!("process-{i:05}"), process_saying(String::new())))
            .collect();
        let bytes = status_of(lots).to_bounded_json(AgentStatus::MAX_BYTES);
        assert!(bytes.len() <= AgentStatus::MAX_BYTES);
        let sent = AgentStatus::from_json(&bytes).unwrap();
        assert!(
            sent.left_out > 0 && sent.resources.len() + sent.left_out == 5000,
            "{} + {}",
            sent.resources.len(),
            sent.left_out
        );

        // A status that fits is sent as it is.
        let small = status_of([("web".to_owned(), process_saying("exited".into()))].into());
        assert_eq!(small.to_bounded_json(AgentStatus::MAX_BYTES), small.to_json());
    }

    #[test]
    fn a_status_from_a_newer_agent_is_read_with_its_unknown_fields_ignored() {
        let newer = json!({"schemaVersion": 2, "device": "d", "heartbeat": 1, "uptime": 99,
            "resources": {"f": {"kind": "File", "state": "ready", "digest": "sha256:00"},
                          "s": {"kind": "Socket", "state": "ready", "port": 80}}});
        let read = AgentStatus::from_json(&serde_json::to_vec(&newer).unwrap()).unwrap();
        assert_eq!(read.resources["s"], ResourceStatus::Unknown);
        assert_eq!(read.counts(), [(State::Ready, 1)].into(), "a kind it does not know is not counted");
    }

    #[test]
    fn device_ids_are_single_kv_keys() {
        assert!(check_device_id("sensor-07_a=b").is_ok());
        for bad in ["", "a.b", "a/b", "a b", "ü"] {
            assert!(check_device_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_device_id(&"x".repeat(129)).is_err());
        let device = Device::new("sensor-07", BTreeMap::from([("site".into(), "lyon".into())]));
        assert_eq!(Device::from_json(&device.to_json()).unwrap(), device);
    }
}
