//! Helm charts as data: read from a directory or built from typed Rust,
//! stamped with the release's version, packaged reproducibly, and turned into
//! the OCI artifact a registry stores (`helm push` compatible).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use semver::Version;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::object::Object;
use crate::oci::layer::{LayerBuilder, gzip};
use crate::oci::{Artifact, Blob, OciError, media};

/// A chart: `Chart.yaml` as data, plus every other file by relative path.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    meta: Map<String, Value>,
    files: BTreeMap<String, Vec<u8>>,
}

/// A chart that cannot be read or packaged.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// A file or folder of a chart directory could not be read.
    #[error("could not read chart file `{}`: {source}", path.display())]
    Read {
        /// The file or folder.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The chart's `Chart.yaml` is not YAML, not a mapping, or has no `name`.
    #[error("`{}` is not a valid Chart.yaml: {why}", path.display())]
    BadMeta {
        /// The `Chart.yaml`.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The chart could not be packaged into its `.tgz`.
    #[error(transparent)]
    Package(#[from] OciError),
}

impl crate::Diagnostic for ChartError {
    fn help(&self) -> String {
        match self {
            Self::Read { .. } => "check the chart directory's path in `app!` (`chart: dir(\"…\")`)".into(),
            Self::BadMeta { .. } => "a Chart.yaml is a YAML mapping with at least `apiVersion: v2` and `name`".into(),
            Self::Package(e) => e.help(),
        }
    }
}

impl Chart {
    /// A new chart named `name`; add templates with [`Chart::file`].
    pub fn new(name: &str, description: &str) -> Self {
        let mut meta = Map::new();
        meta.insert("apiVersion".into(), "v2".into());
        meta.insert("name".into(), name.into());
        meta.insert("description".into(), description.into());
        meta.insert("type".into(), "application".into());
        meta.insert("version".into(), "0.0.0".into());
        Self {
            meta,
            files: BTreeMap::new(),
        }
    }

    /// A chart whose templates are `objects`, literally: one file per object,
    /// with `{{`/`}}` escaped so Helm renders them back unchanged. Secret
    /// values never enter the chart: each becomes a lookup of
    /// `.Values.secrets.<secret>.<key>`, given at install time, or left out
    /// with `existingSecrets: true` by a deployer that brings them. When the
    /// objects use one namespace, it becomes the release's
    /// (`{{ .Release.Namespace }}`: its `Namespace`, where the namespaced
    /// objects live, the role bindings' subjects), so one chart installs
    /// into any namespace (`helm install -n`, Argo CD's destination).
    pub fn from_objects(name: &str, description: &str, objects: &[Object]) -> Self {
        const NAMESPACE: &str = "__harmony_release_namespace__";
        let mut chart = Self::new(name, description);
        let mut secrets = Map::new();
        let namespace = crate::cluster::the_namespace(objects).ok().flatten();
        for (i, object) in objects.iter().enumerate() {
            let id = object.id();
            let mut body = object.body().clone();
            let mut lookups = vec![(NAMESPACE.to_owned(), "{{ .Release.Namespace | quote }}".to_owned())];
            if let Some(ns) = namespace {
                crate::cluster::rename_namespace(&mut body, id, ns, NAMESPACE);
            }
            if id.is_secret() {
                let mut keys = Map::new();
                for field in ["data", "stringData"] {
                    if let Some(Value::Object(map)) = body.get_mut(field) {
                        for (key, value) in map.iter_mut() {
                            let marker = format!("__harmony_secret_{i}_{field}_{key}__");
                            let lookup = format!("index .Values.secrets {} {}", go_string(&id.name), go_string(key));
                            let expr = if field == "data" {
                                format!("{{{{ {lookup} | b64enc | quote }}}}")
                            } else {
                                format!("{{{{ {lookup} | quote }}}}")
                            };
                            lookups.push((marker.clone(), expr));
                            *value = Value::String(marker);
                            keys.insert(key.clone(), Value::String(String::new()));
                        }
                    }
                }
                secrets.insert(id.name.clone(), Value::Object(keys));
            }
            let yaml = serde_yaml_ng::to_string(&body).expect("objects are plain data");
            let mut text = escape_template(&yaml);
            for (marker, expr) in lookups {
                text = text.replace(&format!("'{marker}'"), &expr).replace(&marker, &expr);
            }
            if id.is_secret() {
                // A deployer that brings the Secrets itself (Argo CD's, so that
                // their values never sit in an Application) turns them off.
                text = format!("{{{{- if not .Values.existingSecrets }}}}\n{text}{{{{- end }}}}\n");
            }
            let file = format!("templates/{:03}-{}.yaml", i, id.file_stem());
            chart.file(&file, text);
        }
        let values = serde_json::json!({ "secrets": Value::Object(secrets), "existingSecrets": false });
        chart.file("values.yaml", serde_yaml_ng::to_string(&values).expect("values are plain data"));
        chart
    }

    /// Read a chart directory. Files are taken in sorted order; nothing outside it is read.
    pub fn from_dir(dir: &Path) -> Result<Self, ChartError> {
        let meta_path = dir.join("Chart.yaml");
        let text = std::fs::read_to_string(&meta_path).map_err(|source| ChartError::Read {
            path: meta_path.clone(),
            source,
        })?;
        let meta: Value = serde_yaml_ng::from_str(&text).map_err(|e| ChartError::BadMeta {
            path: meta_path.clone(),
            why: e.to_string(),
        })?;
        let Value::Object(meta) = meta else {
            return Err(ChartError::BadMeta {
                path: meta_path,
                why: "it is not a mapping".into(),
            });
        };
        if meta.get("name").and_then(Value::as_str).is_none_or(str::is_empty) {
            return Err(ChartError::BadMeta {
                path: meta_path,
                why: "it has no `name`".into(),
            });
        }
        let mut files = BTreeMap::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(d) = stack.pop() {
            let entries = std::fs::read_dir(&d).map_err(|source| ChartError::Read { path: d.clone(), source })?;
            for entry in entries {
                let entry = entry.map_err(|source| ChartError::Read { path: d.clone(), source })?;
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path != meta_path {
                    let rel = path.strip_prefix(dir).expect("under dir").to_string_lossy().replace('\\', "/");
                    let bytes = std::fs::read(&path).map_err(|source| ChartError::Read {
                        path: path.clone(),
                        source,
                    })?;
                    files.insert(rel, bytes);
                }
            }
        }
        Ok(Self { meta, files })
    }

    /// The objects of a chart whose templates are plain manifests (no `{{`),
    /// in file order. A templated file is reported as `(file, why)`.
    pub fn plain_objects(&self) -> Result<Vec<Object>, (String, String)> {
        let mut out = Vec::new();
        for (path, bytes) in self
            .files
            .iter()
            .filter(|(p, _)| p.starts_with("templates/") && (p.ends_with(".yaml") || p.ends_with(".yml")))
        {
            let text = String::from_utf8_lossy(bytes);
            if text.contains("{{") {
                return Err((path.clone(), "is a Go template".into()));
            }
            for doc in serde_yaml_ng::Deserializer::from_str(&text) {
                let value = Value::deserialize(doc).map_err(|e| (path.clone(), format!("is not valid YAML: {e}")))?;
                if value.is_null() {
                    continue;
                }
                out.push(Object::from_value(value).map_err(|e| (path.clone(), e.to_string()))?);
            }
        }
        Ok(out)
    }

    /// Add or replace a file (`templates/deployment.yaml`, `values.yaml`, …).
    pub fn file(&mut self, path: &str, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.trim_start_matches('/').to_owned(), bytes.into());
        self
    }

    /// The chart's name (`Chart.yaml`'s `name`).
    pub fn name(&self) -> &str {
        self.meta.get("name").and_then(Value::as_str).unwrap_or_default()
    }

    /// The chart's `version`, if it is semver.
    pub fn version(&self) -> Option<Version> {
        self.meta
            .get("version")
            .and_then(Value::as_str)
            .and_then(|v| Version::parse(v).ok())
    }

    /// Stamp the release's version into `version` and `appVersion`.
    pub fn stamped(mut self, version: &Version) -> Self {
        self.meta.insert("version".into(), version.to_string().into());
        self.meta.insert("appVersion".into(), version.to_string().into());
        self
    }

    fn meta_yaml(&self) -> Vec<u8> {
        serde_yaml_ng::to_string(&self.meta)
            .expect("chart metadata is plain data")
            .into_bytes()
    }

    /// The `.tgz` Helm reads: entries under `<name>/`, sorted, with no owners or times.
    pub fn package(&self) -> Result<Vec<u8>, ChartError> {
        let name = self.name();
        let mut layer = LayerBuilder::new();
        layer.file(&format!("{name}/Chart.yaml"), 0o644, self.meta_yaml());
        for (path, bytes) in &self.files {
            layer.file(&format!("{name}/{path}"), 0o644, bytes.clone());
        }
        Ok(gzip(&layer.tar()?)?)
    }

    /// The chart as an OCI artifact: its metadata as the config, the package as the one layer.
    pub fn artifact(&self) -> Result<Artifact, ChartError> {
        let config = Blob::new(
            media::HELM_CONFIG,
            serde_json::to_vec(&self.meta).expect("chart metadata is plain data"),
        );
        Ok(Artifact::new(config, vec![Blob::new(media::HELM_CHART, self.package()?)]))
    }
}

/// Make template text render as itself: `{{` → `{{ "{{" }}`, `}}` → `{{ "}}" }}`.
fn escape_template(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = [rest.find("{{"), rest.find("}}")].into_iter().flatten().min();
        let Some(i) = next else { break };
        out.push_str(&rest[..i]);
        out.push_str(if rest[i..].starts_with("{{") {
            r#"{{ "{{" }}"#
        } else {
            r#"{{ "}}" }}"#
        });
        rest = &rest[i + 2..];
    }
    out.push_str(rest);
    out
}

/// A string literal of Helm's template language (Go's syntax, which JSON's is a subset of).
fn go_string(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic as _;

    fn chart_dir(root: &Path) {
        std::fs::create_dir_all(root.join("templates")).unwrap();
        std::fs::write(
            root.join("Chart.yaml"),
            "apiVersion: v2\nname: webapp\nversion: 0.0.1\ndescription: demo\n",
        )
        .unwrap();
        std::fs::write(root.join("values.yaml"), "replicas: 2\n").unwrap();
        std::fs::write(
            root.join("templates/cm.yaml"),
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
        )
        .unwrap();
    }

    #[test]
    fn the_same_chart_in_two_places_packages_to_the_same_digest() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        chart_dir(a.path());
        chart_dir(b.path());
        let v = Version::parse("1.2.3").unwrap();
        let ca = Chart::from_dir(a.path()).unwrap().stamped(&v).artifact().unwrap();
        let cb = Chart::from_dir(b.path()).unwrap().stamped(&v).artifact().unwrap();
        assert_eq!(ca.digest(), cb.digest());
        let other = Chart::from_dir(a.path())
            .unwrap()
            .stamped(&Version::parse("1.2.4").unwrap())
            .artifact()
            .unwrap();
        assert_ne!(ca.digest(), other.digest());
    }

    #[test]
    fn stamping_sets_version_and_app_version_and_keeps_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        chart_dir(dir.path());
        let chart = Chart::from_dir(dir.path()).unwrap().stamped(&Version::parse("0.3.0-rc.1").unwrap());
        let tgz = chart.package().unwrap();
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz.as_slice()));
        let mut names = Vec::new();
        let mut meta = String::new();
        for entry in archive.entries().unwrap() {
            let mut e = entry.unwrap();
            let name = e.path().unwrap().display().to_string();
            if name == "webapp/Chart.yaml" {
                std::io::Read::read_to_string(&mut e, &mut meta).unwrap();
            }
            names.push(name);
        }
        assert_eq!(
            names,
            [
                "webapp/",
                "webapp/Chart.yaml",
                "webapp/templates/",
                "webapp/templates/cm.yaml",
                "webapp/values.yaml"
            ]
        );
        assert!(
            meta.contains("version: 0.3.0-rc.1") && meta.contains("appVersion: 0.3.0-rc.1") && meta.contains("description: demo"),
            "{meta}"
        );
    }

    #[test]
    fn a_chart_from_objects_keeps_braces_literal_and_secrets_out() {
        let cm = Object::from_value(
            serde_json::json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"t":"{{ not a template }}"}}),
        )
        .unwrap();
        let secret = Object::from_value(
            serde_json::json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db-creds"},"stringData":{"password":"hunter2"}}),
        )
        .unwrap();
        let chart = Chart::from_objects("demo", "d", &[cm, secret]);
        let all: String = chart.files.values().map(|b| String::from_utf8_lossy(b).into_owned()).collect();
        assert!(!all.contains("hunter2"), "{all}");
        assert!(all.contains(r#"{{ "{{" }} not a template {{ "}}" }}"#), "{all}");
        assert!(
            all.contains(r#"password: {{ index .Values.secrets "db-creds" "password" | quote }}"#),
            "{all}"
        );
        assert!(all.contains("db-creds:\n    password: ''"), "{all}");
    }

    #[test]
    fn a_bad_chart_directory_says_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let err = Chart::from_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("Chart.yaml") && !err.help().is_empty());
        std::fs::write(dir.path().join("Chart.yaml"), "- not\n- a mapping\n").unwrap();
        assert!(matches!(Chart::from_dir(dir.path()), Err(ChartError::BadMeta { .. })));
    }
}
