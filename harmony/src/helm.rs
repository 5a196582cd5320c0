//! Published charts, installed at their pinned version: pulled from their
//! registry and rendered by the real `helm` binary (argument vectors, never a
//! shell), so that what they hold goes through the same plan, apply, prune and
//! readiness path as the objects a Score renders.
//!
//! `helm` is `HARMONY_HELM` if set, else `helm` on `PATH`. A private registry
//! is reached with helm's own login (`helm registry login HOST`). Values that
//! may hold secrets travel in a file only this user can read, never in the
//! arguments (which any user of the machine can list), and are scrubbed from
//! whatever helm says.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

use serde_json::Value;

use crate::object::Object;
use crate::oci::Digest;
use crate::oci::distribution::is_loopback;
use crate::release::ChartRef;

/// The `helm` binary to use instead of the one on `PATH`.
pub const HELM_VAR: &str = "HARMONY_HELM";

/// The `helm` binary.
#[derive(Clone, Debug)]
pub struct Helm {
    program: PathBuf,
}

/// What a published chart holds, rendered.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// The objects the chart renders, CRDs included, in helm's order.
    pub objects: Vec<Object>,
    /// The digest of the chart archive that was rendered.
    pub digest: Digest,
}

/// A published chart could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum HelmError {
    /// The helm binary is not there, or cannot be started, or `helm version` fails.
    #[error("`{program}` cannot run: {why}")]
    Missing {
        /// The program run as helm: `HARMONY_HELM` if set, else `helm` on `PATH`.
        program: String,
        /// Why it cannot run: the operating system's error, or what helm said.
        why: String,
    },
    /// `helm pull` failed: the registry cannot be reached, refuses access, or does not
    /// hold the chart at that version.
    #[error("helm could not pull {chart}: {said}")]
    Pull {
        /// The chart reference, with its version.
        chart: String,
        /// What helm printed on stderr, or its exit status when it printed nothing.
        said: String,
    },
    /// `helm template` failed: the chart's templates do not render with the values given.
    #[error("helm could not render {chart}: {said}")]
    Render {
        /// The chart reference, with its version.
        chart: String,
        /// What helm printed on stderr, every string of four or more characters from the
        /// values replaced by `<redacted>`; its exit status when it printed nothing.
        said: String,
    },
    /// helm rendered, but its output is not a stream of Kubernetes objects.
    #[error("{chart} renders something that is not a Kubernetes object: {why}")]
    Output {
        /// The chart reference, with its version.
        chart: String,
        /// What does not parse, or which field an object lacks.
        why: String,
    },
    /// A temporary file (the pulled archive, the values) could not be made, written or read.
    #[error("could not {action}: {source}")]
    Io {
        /// What was being done, e.g. `write the chart`.
        action: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

impl crate::Diagnostic for HelmError {
    fn help(&self) -> String {
        match self {
            Self::Missing { .. } => format!(
                "install helm (v3.8 or later: it pulls charts from OCI registries) and put it on `PATH`, or point `{HELM_VAR}` at it; nothing was done"
            ),
            Self::Pull { .. } => "check the chart's URL and that this version was published (`helm show chart oci://… --version …`); a private registry needs `helm registry login HOST` first; nothing was done".into(),
            Self::Render { .. } => "the chart's templates fail with the values given: see helm's words above; nothing was done".into(),
            Self::Output { .. } => "the chart's templates must render Kubernetes objects (`apiVersion`, `kind`, `metadata.name`)".into(),
            Self::Io { .. } => "check the temporary directory's disk and permissions, then rerun".into(),
        }
    }
}

/// The archives pulled by this process, by chart reference: a pinned
/// version never changes, so one pull serves a plan and the apply after it.
static PULLED: Mutex<Option<HashMap<String, Vec<u8>>>> = Mutex::new(None);

impl Helm {
    /// `HARMONY_HELM`, else `helm` on `PATH`, checked to run.
    pub fn find() -> Result<Self, HelmError> {
        let program = std::env::var_os(HELM_VAR)
            .filter(|v| !v.is_empty())
            .map_or_else(|| PathBuf::from("helm"), PathBuf::from);
        Self::at(program)
    }

    /// The helm at `program`, checked to run.
    pub fn at(program: impl Into<PathBuf>) -> Result<Self, HelmError> {
        let helm = Self { program: program.into() };
        let out = helm.run(&["version", "--short"]).map_err(|e| HelmError::Missing {
            program: helm.program.display().to_string(),
            why: match e.kind() {
                std::io::ErrorKind::NotFound => "no such program".into(),
                _ => e.to_string(),
            },
        })?;
        if !out.status.success() {
            return Err(HelmError::Missing {
                program: helm.program.display().to_string(),
                why: said(&out, &[]),
            });
        }
        Ok(helm)
    }

    fn run(&self, args: &[&str]) -> std::io::Result<Output> {
        Command::new(&self.program).args(args).output()
    }

    /// `chart` rendered as release `release` (into `namespace`, if given,
    /// for charts that template it), with `values`. CRDs are included.
    pub fn render(&self, chart: &ChartRef, release: &str, namespace: Option<&str>, values: &Value) -> Result<Rendered, HelmError> {
        let archive = self.pull(chart)?;
        let dir = tempfile::tempdir().map_err(|source| HelmError::Io {
            action: "make a temporary directory",
            source,
        })?;
        let tgz = dir.path().join("chart.tgz");
        std::fs::write(&tgz, &archive).map_err(|source| HelmError::Io {
            action: "write the chart",
            source,
        })?;
        let values_file = dir.path().join("values.json");
        write_private(&values_file, &serde_json::to_vec(values).expect("values are JSON"))?;
        let (tgz, values_path) = (tgz.display().to_string(), values_file.display().to_string());
        let mut args = vec!["template", release, &tgz, "--include-crds", "--values", &values_path];
        if let Some(ns) = namespace {
            args.extend(["--namespace", ns]);
        }
        let out = self.run(&args).map_err(|e| HelmError::Missing {
            program: self.program.display().to_string(),
            why: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(HelmError::Render {
                chart: chart.to_string(),
                said: said(&out, &secrets_in(values)),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(Rendered {
            objects: objects_of(&text).map_err(|why| HelmError::Output {
                chart: chart.to_string(),
                why,
            })?,
            digest: Digest::sha256_of(&archive),
        })
    }

    /// The chart's archive, pulled once per process.
    fn pull(&self, chart: &ChartRef) -> Result<Vec<u8>, HelmError> {
        let key = chart.to_string();
        if let Some(archive) = PULLED.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert_default().get(&key) {
            return Ok(archive.clone());
        }
        let dir = tempfile::tempdir().map_err(|source| HelmError::Io {
            action: "make a temporary directory",
            source,
        })?;
        let url = format!("oci://{}", chart.location());
        let version = chart.version().to_string();
        let destination = dir.path().display().to_string();
        let mut args = vec!["pull", &url, "--version", &version, "--destination", &destination];
        if chart.location().registry().is_some_and(is_loopback) {
            args.push("--plain-http");
        }
        let out = self.run(&args).map_err(|e| HelmError::Missing {
            program: self.program.display().to_string(),
            why: e.to_string(),
        })?;
        if !out.status.success() {
            return Err(HelmError::Pull {
                chart: key,
                said: said(&out, &[]),
            });
        }
        let archive = only_file(dir.path()).map_err(|source| HelmError::Io {
            action: "read the pulled chart",
            source,
        })?;
        PULLED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_default()
            .insert(key, archive.clone());
        Ok(archive)
    }
}

/// The one file helm pulled into `dir`.
fn only_file(dir: &Path) -> std::io::Result<Vec<u8>> {
    let entry = std::fs::read_dir(dir)?
        .flatten()
        .find(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "helm pulled nothing"))?;
    std::fs::read(entry.path())
}

/// A file only this user can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), HelmError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let io = |source| HelmError::Io {
        action: "write the values",
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(bytes).map_err(io)
}

/// Every string among `values`: what helm's words must not repeat.
fn secrets_in(values: &Value) -> Vec<String> {
    match values {
        Value::String(s) if s.len() >= 4 => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(secrets_in).collect(),
        Value::Object(map) => map.values().flat_map(secrets_in).collect(),
        _ => Vec::new(),
    }
}

/// What helm said on stderr, trimmed, with `secrets` replaced.
fn said(out: &Output, secrets: &[String]) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if text.is_empty() {
        text = format!("it exited with {}", out.status);
    }
    for secret in secrets {
        text = text.replace(secret.as_str(), "<redacted>");
    }
    text
}

/// The objects of a multi-document YAML stream (empty documents skipped,
/// `List`s flattened).
fn objects_of(yaml: &str) -> Result<Vec<Object>, String> {
    let mut objects = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(yaml) {
        let value: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        match value {
            Value::Null => {}
            Value::Object(ref map) if map.get("kind").and_then(Value::as_str) == Some("List") => {
                for item in map.get("items").and_then(Value::as_array).into_iter().flatten() {
                    objects.push(Object::from_value(item.clone()).map_err(|e| e.to_string())?);
                }
            }
            other => objects.push(Object::from_value(other).map_err(|e| e.to_string())?),
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendered_yaml_becomes_objects() {
        let yaml = "---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n---\n\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: web\n";
        let objects = objects_of(yaml).unwrap();
        let ids: Vec<String> = objects.iter().map(|o| o.id().to_string()).collect();
        assert_eq!(ids, ["v1 ConfigMap web", "v1 Service web"]);
        assert!(
            objects_of("apiVersion: v1\nkind: ConfigMap\n")
                .unwrap_err()
                .contains("metadata.name")
        );
    }

    #[test]
    fn values_are_scrubbed_from_what_helm_says() {
        let values = serde_json::json!({"secrets": {"db": {"password": "hunter22"}}, "replicas": 2});
        let out = Output {
            status: std::os::unix::process::ExitStatusExt::from_raw(256),
            stdout: Vec::new(),
            stderr: b"Error: template: bad value \"hunter22\"\n".to_vec(),
        };
        assert_eq!(said(&out, &secrets_in(&values)), "Error: template: bad value \"<redacted>\"");
    }

    #[test]
    fn a_missing_helm_says_how_to_get_one() {
        let err = Helm::at("/nonexistent/helm").unwrap_err();
        assert!(err.to_string().contains("`/nonexistent/helm` cannot run: no such program"), "{err}");
        assert!(crate::Diagnostic::help(&err).contains(HELM_VAR));
    }
}
