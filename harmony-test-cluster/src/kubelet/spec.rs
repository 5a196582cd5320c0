//! What a pod's containers need to run, read as a kubelet reads it: the environment (values,
//! Secret and ConfigMap keys, the downward API) and the volumes' files (ConfigMaps, Secrets,
//! projected service-account tokens, `emptyDir`), fetched from the API server with the node's
//! own credentials. A missing source is kubelet's own message, which the pod status shows.

use std::collections::BTreeMap;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::Api;
use serde_json::{Value, json};

use super::runtime::{ContainerSpec, Mount};

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or_default()
}

/// Reads Secrets and ConfigMaps of one namespace, each once.
struct Sources {
    client: kube::Client,
    namespace: String,
    secrets: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
    config_maps: BTreeMap<String, Option<BTreeMap<String, Vec<u8>>>>,
}

/// A read the node authorizer may refuse for a moment: it learns that a pod is bound to this node
/// a little after the kubelet does, and until then refuses the pod's ConfigMaps and Secrets ("no
/// relationship found between node … and this object"). Asked again for up to two seconds, as a
/// real kubelet's next sync would, so that no event reports a refusal that passes by itself.
async fn as_node<T, F, Fut>(read: F) -> Result<T, kube::Error>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    for _ in 0..20 {
        match read().await {
            Err(kube::Error::Api(status)) if status.code == 403 && status.message.contains("no relationship found") => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => return other,
        }
    }
    read().await
}

impl Sources {
    /// Every key of a Secret or ConfigMap; Err is kubelet's words for a missing one.
    async fn all(&mut self, kind: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>, String> {
        let cache = if kind == "Secret" {
            &mut self.secrets
        } else {
            &mut self.config_maps
        };
        if !cache.contains_key(name) {
            let data = if kind == "Secret" {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
                as_node(|| api.get_opt(name)).await.map_err(|e| e.to_string())?.map(|s| {
                    s.data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect::<BTreeMap<_, _>>()
                })
            } else {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
                as_node(|| api.get_opt(name)).await.map_err(|e| e.to_string())?.map(|c| {
                    let mut data: BTreeMap<String, Vec<u8>> =
                        c.data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
                    data.extend(c.binary_data.unwrap_or_default().into_iter().map(|(k, v)| (k, v.0)));
                    data
                })
            };
            cache.insert(name.to_owned(), data);
        }
        cache
            .get(name)
            .cloned()
            .flatten()
            .ok_or_else(|| format!("{} \"{name}\" not found", kind.to_lowercase()))
    }

    async fn key(&mut self, kind: &str, name: &str, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self.all(kind, name).await?.get(key).cloned())
    }
}

/// The downward API's value for a field path of the pod.
fn field(pod: &Value, node: &str, path: &str) -> Option<String> {
    Some(match path {
        "metadata.name" => str_at(pod, "/metadata/name").to_owned(),
        "metadata.namespace" => str_at(pod, "/metadata/namespace").to_owned(),
        "metadata.uid" => str_at(pod, "/metadata/uid").to_owned(),
        "spec.nodeName" => node.to_owned(),
        "spec.serviceAccountName" => str_at(pod, "/spec/serviceAccountName").to_owned(),
        "status.hostIP" => "127.0.0.1".to_owned(),
        _ => return None,
    })
}

/// What the kubelet needs to run a pod's containers. Err: the container and kubelet's message
/// for a missing Secret, ConfigMap, key or token. A pod that is only `played` is checked the same
/// way, but asks for no token: nothing would read it.
pub async fn container_specs(client: &kube::Client, pod: &Value, node: &str, played: bool) -> Result<Vec<ContainerSpec>, (String, String)> {
    let namespace = str_at(pod, "/metadata/namespace");
    let mut sources = Sources {
        client: client.clone(),
        namespace: namespace.to_owned(),
        secrets: BTreeMap::new(),
        config_maps: BTreeMap::new(),
    };
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
    };
    let mut specs = Vec::new();
    for c in &containers {
        let container = str_at(c, "/name").to_owned();
        let fail = |m: String| (container.clone(), m);
        let mut env: Vec<(String, String)> = Vec::new();
        for from in c.get("envFrom").and_then(Value::as_array).into_iter().flatten() {
            let prefix = str_at(from, "/prefix");
            for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                let Some(r) = from.get(field) else { continue };
                match sources.all(kind, str_at(r, "/name")).await {
                    Ok(pairs) => env.extend(
                        pairs
                            .into_iter()
                            .map(|(k, v)| (format!("{prefix}{k}"), String::from_utf8_lossy(&v).into_owned())),
                    ),
                    Err(_) if r.get("optional") == Some(&json!(true)) => {}
                    Err(m) => return Err(fail(m)),
                }
            }
        }
        for e in c.get("env").and_then(Value::as_array).into_iter().flatten() {
            let name = str_at(e, "/name").to_owned();
            let value = if let Some(v) = e.get("value").and_then(Value::as_str) {
                Some(v.to_owned())
            } else if let Some(from) = e.get("valueFrom") {
                let keyed = [("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")]
                    .into_iter()
                    .find_map(|(field, kind)| from.get(field).map(|r| (r, kind)));
                if let Some((r, kind)) = keyed {
                    let optional = r.get("optional") == Some(&json!(true));
                    let (obj, key) = (str_at(r, "/name"), str_at(r, "/key"));
                    match sources.key(kind, obj, key).await {
                        Ok(Some(v)) => Some(String::from_utf8_lossy(&v).into_owned()),
                        Ok(None) if !optional => {
                            return Err(fail(format!("couldn't find key {key} in {kind} {namespace}/{obj}")));
                        }
                        Err(m) if !optional => return Err(fail(m)),
                        _ => None,
                    }
                } else {
                    field(pod, node, str_at(from, "/fieldRef/fieldPath"))
                }
            } else {
                Some(String::new())
            };
            if let Some(v) = value {
                env.retain(|(k, _)| *k != name);
                env.push((name, v));
            }
        }
        specs.push(ContainerSpec {
            name: container.clone(),
            image: str_at(c, "/image").to_owned(),
            command: strings(c.get("command")),
            args: strings(c.get("args")),
            working_dir: c.get("workingDir").and_then(Value::as_str).map(str::to_owned),
            env,
            mounts: mounts(&mut sources, pod, c, node, played).await.map_err(fail)?,
        });
    }
    Ok(specs)
}

/// The files of a ConfigMap or Secret volume source: every key, or the `items` chosen.
async fn keyed_files(sources: &mut Sources, kind: &str, source: &Value, name: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let pairs = match sources.all(kind, name).await {
        Ok(pairs) => pairs,
        Err(_) if source.get("optional") == Some(&json!(true)) => return Ok(Vec::new()),
        Err(why) => return Err(why),
    };
    Ok(match source.get("items").and_then(Value::as_array) {
        None => pairs.into_iter().collect(),
        Some(items) => items
            .iter()
            .filter_map(|i| {
                let (key, path) = (str_at(i, "/key"), str_at(i, "/path"));
                pairs.get(key).map(|v| (path.to_owned(), v.clone()))
            })
            .collect(),
    })
}

/// A token for the pod's service account, bound to the pod, as the kubelet requests one.
async fn token(sources: &Sources, pod: &Value, source: &Value) -> Result<Vec<u8>, String> {
    let account = match str_at(pod, "/spec/serviceAccountName") {
        "" => "default",
        name => name,
    };
    let api: Api<ServiceAccount> = Api::namespaced(sources.client.clone(), &sources.namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: match str_at(source, "/audience") {
                "" => Vec::new(),
                audience => vec![audience.to_owned()],
            },
            expiration_seconds: source.get("expirationSeconds").and_then(Value::as_i64).or(Some(3607)),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(str_at(pod, "/metadata/name").to_owned()),
                uid: Some(str_at(pod, "/metadata/uid").to_owned()),
            }),
        },
        ..TokenRequest::default()
    };
    let answer = api
        .create_token_request(account, &Default::default(), &request)
        .await
        .map_err(|e| format!("failed to fetch token: {e}"))?;
    Ok(answer.status.map(|s| s.token).unwrap_or_default().into_bytes())
}

/// The volumes a container mounts, with their content. Err: kubelet's words for a missing
/// source.
async fn mounts(sources: &mut Sources, pod: &Value, container: &Value, node: &str, played: bool) -> Result<Vec<Mount>, String> {
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for m in container.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
        let name = str_at(m, "/name");
        let Some(volume) = volumes.iter().find(|v| str_at(v, "/name") == name) else {
            return Err(format!("volume \"{name}\" is mounted but the pod has no such volume"));
        };
        let failed = |why: String| format!("MountVolume.SetUp failed for volume \"{name}\" : {why}");
        let mut files: Vec<(String, Vec<u8>)> = if let Some(s) = volume.get("configMap") {
            keyed_files(sources, "ConfigMap", s, str_at(s, "/name")).await.map_err(failed)?
        } else if let Some(s) = volume.get("secret") {
            keyed_files(sources, "Secret", s, str_at(s, "/secretName")).await.map_err(failed)?
        } else if let Some(projected) = volume.get("projected") {
            let mut files = Vec::new();
            for s in projected.get("sources").and_then(Value::as_array).into_iter().flatten() {
                if let Some(t) = s.get("serviceAccountToken") {
                    if played {
                        continue;
                    }
                    files.push((str_at(t, "/path").to_owned(), token(sources, pod, t).await.map_err(failed)?));
                } else if let Some(c) = s.get("configMap") {
                    files.extend(keyed_files(sources, "ConfigMap", c, str_at(c, "/name")).await.map_err(failed)?);
                } else if let Some(c) = s.get("secret") {
                    files.extend(keyed_files(sources, "Secret", c, str_at(c, "/name")).await.map_err(failed)?);
                } else if let Some(d) = s.get("downwardAPI") {
                    for item in d.get("items").and_then(Value::as_array).into_iter().flatten() {
                        if let Some(value) = field(pod, node, str_at(item, "/fieldRef/fieldPath")) {
                            files.push((str_at(item, "/path").to_owned(), value.into_bytes()));
                        }
                    }
                }
            }
            files
        } else {
            Vec::new()
        };
        let mut path = str_at(m, "/mountPath").to_owned();
        let sub_path = str_at(m, "/subPath");
        if !sub_path.is_empty() {
            // One key mounted as the file `mountPath`.
            let (dir, file) = path.rsplit_once('/').unwrap_or(("", path.as_str()));
            files = files
                .into_iter()
                .filter(|(k, _)| k == sub_path)
                .map(|(_, v)| (file.to_owned(), v))
                .collect();
            path = dir.to_owned();
        }
        out.push(Mount { path, files });
    }
    Ok(out)
}
