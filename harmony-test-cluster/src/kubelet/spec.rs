//! What a pod's containers need to run, read as a kubelet reads it: the environment (values,
//! Secret and ConfigMap keys, the downward API), the volumes' files (ConfigMaps, Secrets,
//! projected service-account tokens, `emptyDir`), and the directories of the host its volumes
//! are (`hostPath`, and a claim's bound PersistentVolume), fetched from the API server with the
//! node's own credentials. A missing source is kubelet's own message, which the pod status
//! shows; a claim that is not bound yet keeps the pod waiting, with kubelet's `FailedMount`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, ServiceAccount};
use kube::Api;
use serde_json::{Value, json};

use super::runtime::{ContainerSpec, HostDir, Mount};

/// Why a pod's containers cannot be made yet; the kubelet looks again on its next pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Blocked {
    /// A container's configuration names what is not there: the container, and kubelet's
    /// message (`CreateContainerConfigError`).
    Container(String, String),
    /// A volume cannot be mounted yet (a claim not bound, a `hostPath` of the wrong type):
    /// kubelet's `FailedMount` message. The containers wait in `ContainerCreating`.
    Volumes(String),
}

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

/// What the kubelet needs to run a pod's containers. Err: what it waits for: a volume, or a
/// missing Secret, ConfigMap, key or token. A pod that is only `played` is checked the same way
/// (its claims must be bound), but asks for no token and neither checks nor makes anything on
/// the host: nothing would read them.
pub async fn container_specs(client: &kube::Client, pod: &Value, node: &str, played: bool) -> Result<Vec<ContainerSpec>, Blocked> {
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
    let hosts = host_dirs(client, pod, &containers, played).await.map_err(Blocked::Volumes)?;
    let strings = |v: Option<&Value>| -> Option<Vec<String>> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
    };
    let mut specs = Vec::new();
    for c in &containers {
        let container = str_at(c, "/name").to_owned();
        let fail = |m: String| Blocked::Container(container.clone(), m);
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
            mounts: mounts(&mut sources, pod, c, node, played, &hosts).await.map_err(fail)?,
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
async fn mounts(
    sources: &mut Sources,
    pod: &Value,
    container: &Value,
    node: &str,
    played: bool,
    hosts: &BTreeMap<String, HostVolume>,
) -> Result<Vec<Mount>, String> {
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = Vec::new();
    for m in container.get("volumeMounts").and_then(Value::as_array).into_iter().flatten() {
        let name = str_at(m, "/name");
        let Some(volume) = volumes.iter().find(|v| str_at(v, "/name") == name) else {
            return Err(format!("volume \"{name}\" is mounted but the pod has no such volume"));
        };
        let failed = |why: String| format!("MountVolume.SetUp failed for volume \"{name}\" : {why}");
        if let Some(host) = hosts.get(name) {
            out.push(Mount {
                path: str_at(m, "/mountPath").to_owned(),
                files: Vec::new(),
                host: (!played)
                    .then(|| host.at(str_at(m, "/subPath"), m.get("readOnly") == Some(&json!(true))))
                    .transpose()
                    .map_err(failed)?,
            });
            continue;
        }
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
        out.push(Mount { path, files, host: None });
    }
    Ok(out)
}

/// A volume that is a directory (or file) of the host: a `hostPath`, or the path of the
/// PersistentVolume a claim is bound to.
#[derive(Debug, Clone)]
struct HostVolume {
    path: PathBuf,
    /// The claim's `readOnly`: every mount of it is read-only.
    read_only: bool,
}

impl HostVolume {
    /// What a container mounts of it: `sub_path` inside it (made as a directory if missing, as
    /// kubelet makes one), read-only if the mount or the claim says so.
    fn at(&self, sub_path: &str, read_only: bool) -> Result<HostDir, String> {
        let read_only = read_only || self.read_only;
        if sub_path.is_empty() {
            return Ok(HostDir {
                source: self.path.clone(),
                read_only,
            });
        }
        // Made step by step, never through a link: what a container left in the volume must not
        // lead the mount (or a directory made for it) out of the volume.
        let mut source = self.path.clone();
        for part in Path::new(sub_path).components() {
            let std::path::Component::Normal(part) = part else {
                return Err(format!("subpath {sub_path} must be a relative path without '..'"));
            };
            source.push(part);
            match std::fs::symlink_metadata(&source) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(format!(
                        "subpath {sub_path} goes through the symbolic link {}, which may lead outside of the volume {}",
                        source.display(),
                        self.path.display()
                    ));
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::create_dir(&source).map_err(|e| format!("cannot create subPath directory {}: {e}", source.display()))?;
                }
                Err(e) => return Err(format!("cannot read {}: {e}", source.display())),
            }
        }
        Ok(HostDir { source, read_only })
    }
}

/// The names of the volumes the pod's containers mount, sorted (kubelet's "expected volumes").
fn mounted_names(containers: &[Value]) -> Vec<String> {
    let mut names: Vec<String> = containers
        .iter()
        .flat_map(|c| c.get("volumeMounts").and_then(Value::as_array).cloned().unwrap_or_default())
        .map(|m| str_at(&m, "/name").to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The host directories of the pod's volumes that are one: each mounted `hostPath` (its type
/// checked, `DirectoryOrCreate` and `FileOrCreate` made, unless `played`), and each mounted
/// claim (`persistentVolumeClaim`, or the one an `ephemeral` volume made) through the
/// PersistentVolume it is bound to. Err: kubelet's `FailedMount` message: a claim that cannot be
/// used yet, as its volume manager words it, or else the first `hostPath` whose type is wrong.
async fn host_dirs(client: &kube::Client, pod: &Value, containers: &[Value], played: bool) -> Result<BTreeMap<String, HostVolume>, String> {
    let namespace = str_at(pod, "/metadata/namespace");
    let mounted = mounted_names(containers);
    let volumes = pod.pointer("/spec/volumes").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut out = BTreeMap::new();
    let (mut unprocessed, mut claim_errors, mut setup_error) = (Vec::new(), Vec::new(), None);
    for volume in &volumes {
        let name = str_at(volume, "/name");
        if !mounted.iter().any(|m| m == name) {
            continue;
        }
        let claim = if let Some(source) = volume.get("persistentVolumeClaim") {
            Some((
                str_at(source, "/claimName").to_owned(),
                source.get("readOnly") == Some(&json!(true)),
                false,
            ))
        } else if volume.get("ephemeral").is_some() {
            Some((format!("{}-{name}", str_at(pod, "/metadata/name")), false, true))
        } else {
            None
        };
        if let Some((claim, read_only, ephemeral)) = claim {
            match claimed_path(client, pod, &claim, ephemeral).await {
                Ok((volume, path, kind)) => {
                    // The volume's own type, checked as for a `hostPath` of the pod.
                    if !played && let Err(why) = check_host_path(&path, &kind) {
                        setup_error.get_or_insert(format!("MountVolume.SetUp failed for volume \"{volume}\" : {why}"));
                        continue;
                    }
                    out.insert(name.to_owned(), HostVolume { path, read_only });
                }
                Err(why) => {
                    unprocessed.push(name.to_owned());
                    claim_errors.push(format!("error processing PVC {namespace}/{claim}: {why}"));
                }
            }
        } else if let Some(source) = volume.get("hostPath") {
            let path = PathBuf::from(str_at(source, "/path"));
            if !played && let Err(why) = check_host_path(&path, str_at(source, "/type")) {
                setup_error.get_or_insert(format!("MountVolume.SetUp failed for volume \"{name}\" : {why}"));
                continue;
            }
            out.insert(name.to_owned(), HostVolume { path, read_only: false });
        }
    }
    if !claim_errors.is_empty() {
        return Err(format!(
            "Unable to attach or mount volumes: unmounted volumes=[{unmounted}], unattached volumes=[], \
             failed to process volumes=[{unmounted}]: {}",
            claim_errors.join("; "),
            unmounted = unprocessed.join(" "),
        ));
    }
    match setup_error {
        Some(why) => Err(why),
        None => Ok(out),
    }
}

/// The PersistentVolume `claim` is bound to: its name, host path and that path's `type`. Err:
/// kubelet's words for why the claim cannot be used yet (read as its volume manager reads it).
async fn claimed_path(client: &kube::Client, pod: &Value, claim: &str, ephemeral: bool) -> Result<(String, PathBuf, String), String> {
    let namespace = str_at(pod, "/metadata/namespace");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let found = as_node(|| claims.get_opt(claim))
        .await
        .map_err(|e| format!("failed to fetch PVC from API server: {e}"))?
        .ok_or_else(|| format!("failed to fetch PVC from API server: persistentvolumeclaims \"{claim}\" not found"))?;
    if found.metadata.deletion_timestamp.is_some()
        && !found
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == "kubernetes.io/pvc-protection")
    {
        return Err("PVC is being deleted".into());
    }
    if ephemeral {
        let uid = str_at(pod, "/metadata/uid");
        let owned = found
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.controller == Some(true));
        if !owned {
            return Err(format!(
                "PVC {namespace}/{claim} was not created for pod {namespace}/{} (pod is not owner)",
                str_at(pod, "/metadata/name")
            ));
        }
    }
    if found.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        return Err("PVC is not bound".into());
    }
    let volume = found.spec.as_ref().and_then(|s| s.volume_name.clone()).unwrap_or_default();
    if volume.is_empty() {
        return Err("PVC has empty pvc.Spec.VolumeName".into());
    }
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = as_node(|| volumes.get_opt(&volume))
        .await
        .ok()
        .flatten()
        .ok_or_else(|| format!("failed to fetch PV {volume} from API server: persistentvolumes \"{volume}\" not found"))?;
    let spec = pv.spec.unwrap_or_default();
    let claim_uid = found.metadata.uid.unwrap_or_default();
    match spec.claim_ref.as_ref().map(|r| r.uid.clone().unwrap_or_default()) {
        None => {
            return Err(format!(
                "found PV object {volume} but it has a nil pv.Spec.ClaimRef indicating it is not yet bound to the claim"
            ));
        }
        Some(uid) if uid != claim_uid => {
            return Err(format!(
                "found PV object {volume} but its pv.Spec.ClaimRef.UID {uid} does not point to claim.UID {claim_uid}"
            ));
        }
        Some(_) => {}
    }
    if let Some(host) = spec.host_path {
        return Ok((volume, PathBuf::from(host.path), host.type_.unwrap_or_default()));
    }
    if let Some(local) = spec.local {
        return Ok((volume, PathBuf::from(local.path), "Directory".to_owned()));
    }
    Err(format!(
        "PV {volume} is neither hostPath nor local: the test cluster's node mounts only directories of its host"
    ))
}

/// kubelet's check of a `hostPath` volume's `type`: `DirectoryOrCreate` and `FileOrCreate`
/// make what is missing (mode 0755 and 0644); the others only check.
fn check_host_path(path: &Path, kind: &str) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, OpenOptionsExt as _};
    let shown = path.display();
    if !path.is_absolute() || path.components().any(|c| c == std::path::Component::ParentDir) {
        return Err(format!("invalid HostPath `{shown}`: must be an absolute path without '..'"));
    }
    let meta = std::fs::metadata(path).ok();
    let file_type = meta.as_ref().map(std::fs::Metadata::file_type);
    let is = |check: fn(&std::fs::FileType) -> bool| file_type.as_ref().is_some_and(check);
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" if meta.is_none() => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(path)
            .map_err(|e| format!("mkdir {shown}: {e}")),
        "FileOrCreate" if meta.is_none() => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o644)
            .open(path)
            .map(drop)
            .map_err(|e| format!("open {shown}: {e}")),
        "DirectoryOrCreate" | "Directory" if !is(std::fs::FileType::is_dir) => {
            Err(format!("hostPath type check failed: {shown} is not a directory"))
        }
        "FileOrCreate" | "File" if !is(std::fs::FileType::is_file) => Err(format!("hostPath type check failed: {shown} is not a file")),
        "Socket" if !is(std::fs::FileType::is_socket) => Err(format!("hostPath type check failed: {shown} is not a socket file")),
        "CharDevice" if !is(std::fs::FileType::is_char_device) => {
            Err(format!("hostPath type check failed: {shown} is not a character device"))
        }
        "BlockDevice" if !is(std::fs::FileType::is_block_device) => {
            Err(format!("hostPath type check failed: {shown} is not a block device"))
        }
        "DirectoryOrCreate" | "Directory" | "FileOrCreate" | "File" | "Socket" | "CharDevice" | "BlockDevice" => Ok(()),
        other => Err(format!("{other} is an invalid volume type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_host_path_types_as_kubelet_does() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("made/by/kubelet");
        check_host_path(&dir, "DirectoryOrCreate").expect("made");
        assert!(dir.is_dir());
        check_host_path(&dir, "Directory").expect("a directory");
        assert_eq!(
            check_host_path(&dir, "File").unwrap_err(),
            format!("hostPath type check failed: {} is not a file", dir.display())
        );
        let file = dir.join("f");
        check_host_path(&file, "FileOrCreate").expect("made");
        assert!(file.is_file());
        assert_eq!(
            check_host_path(&file, "DirectoryOrCreate").unwrap_err(),
            format!("hostPath type check failed: {} is not a directory", file.display())
        );
        let missing = scratch.path().join("missing");
        assert!(check_host_path(&missing, "Directory").is_err());
        check_host_path(&missing, "").expect("no type: no check");
        assert!(!missing.exists(), "no type makes nothing");
        assert_eq!(check_host_path(&dir, "Dir").unwrap_err(), "Dir is an invalid volume type");
    }

    #[test]
    fn a_sub_path_stays_inside_its_volume() {
        let scratch = tempfile::tempdir().unwrap();
        let volume = HostVolume {
            path: scratch.path().join("volume"),
            read_only: true,
        };
        std::fs::create_dir_all(&volume.path).unwrap();
        let at = volume.at("nested/dir", false).expect("made");
        assert_eq!(at.source, volume.path.join("nested/dir"));
        assert!(at.source.is_dir());
        assert!(at.read_only, "a read-only claim makes every mount read-only");
        let outside = scratch.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, volume.path.join("out")).unwrap();
        let refused = volume.at("out/made", false).unwrap_err();
        assert!(refused.contains("goes through the symbolic link"), "{refused}");
        assert!(!outside.join("made").exists(), "nothing made outside the volume");
        assert!(volume.at("../up", false).is_err());
    }
}
