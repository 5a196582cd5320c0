//! Where the operator's signing key lives, and where devices find its
//! public half.
//!
//! - In a cluster, in a Secret of the operator's namespace
//!   ([`from_secret`]): the first operator to start creates it, every later
//!   one reads it, so the key outlives pods. Its public half goes to the
//!   ConfigMap [`MANIFEST_KEY_CONFIGMAP`] beside it, readable by anyone who enrols
//!   a device (and by the agents' pods, whose environment takes it).
//! - Elsewhere, in a file ([`read_file`]) made by `fleet-operator keygen`.
//!
//! The key never reaches a log, an error or the command line.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use fleet_model::signed::{MANIFEST_KEY_CONFIGMAP, MANIFEST_KEY_ENTRY, SigningKey};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{ObjectMeta, Patch, PatchParams, PostParams};

/// The Secret's entry that holds the signing key.
const SECRET_ENTRY: &str = "signingKey";

/// Read the signing key from `path`. The error is a message for a person.
pub fn read_file(path: &Path) -> Result<SigningKey, String> {
    let text = std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "the signing key `{}` does not exist\nhelp: create it with `fleet-operator keygen {}`, then enrol devices with the public key it prints",
            path.display(),
            path.display()
        ),
        _ => format!("cannot read the signing key `{}`: {e}", path.display()),
    })?;
    SigningKey::from_text(&text).map_err(|e| format!("`{}` is not a signing key: {e}", path.display()))
}

/// Make a new signing key in `path`, readable by its owner only. Never
/// overwrites: replacing a key would orphan every device enrolled with it.
pub fn create_file(path: &Path) -> Result<SigningKey, String> {
    let key = SigningKey::generate().map_err(|e| e.to_string())?;
    create_secret_file(path, &key.to_text()).map(|()| key)
}

/// Read the fleet's NATS authority from `path`.
pub fn read_authority(path: &Path) -> Result<fleet_kv::identity::Authority, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the NATS authority `{}`: {e}\nhelp: `fleet-operator nats-authority {}` makes one (once: the server and every device trust it)",
            path.display(),
            path.display()
        )
    })?;
    fleet_kv::identity::Authority::from_text(&text).map_err(|e| format!("`{}`: {e}", path.display()))
}

/// Write `text` to a new file at `path`, readable by its owner only; never
/// over an existing file, which would orphan what it held.
pub fn create_secret_file(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => format!(
                "`{}` already exists: a new one would orphan what it holds (every device enrolled with it)\nhelp: remove it first if that is what you mean",
                path.display()
            ),
            _ => format!("cannot create `{}`: {e}", path.display()),
        })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// The signing key in Secret `name` of `namespace`, created if there is none
/// yet; its public half is then published in [`MANIFEST_KEY_CONFIGMAP`].
pub async fn from_secret(client: &kube::Client, namespace: &str, name: &str) -> Result<SigningKey, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let where_ = format!("Secret `{name}` in namespace `{namespace}`");
    let key = match read_secret(&secrets, name, &where_).await? {
        Some(key) => key,
        None => {
            let key = SigningKey::generate().map_err(|e| e.to_string())?;
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    labels: Some(BTreeMap::from([(
                        "app.kubernetes.io/managed-by".to_owned(),
                        "fleet-operator".to_owned(),
                    )])),
                    ..Default::default()
                },
                data: Some(BTreeMap::from([(SECRET_ENTRY.to_owned(), ByteString(key.to_text().into_bytes()))])),
                ..Default::default()
            };
            match secrets.create(&PostParams::default(), &secret).await {
                Ok(_) => {
                    eprintln!("fleet-operator: created a signing key in {where_}");
                    key
                }
                // Another operator made one first: theirs is the fleet's.
                Err(kube::Error::Api(e)) if e.code == 409 => read_secret(&secrets, name, &where_)
                    .await?
                    .ok_or_else(|| format!("{where_} was created and is gone again"))?,
                Err(e) => return Err(format!("cannot create {where_}: {e}")),
            }
        }
    };
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let published = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": MANIFEST_KEY_CONFIGMAP, "labels": {"app.kubernetes.io/managed-by": "fleet-operator"}},
        "data": {MANIFEST_KEY_ENTRY: key.public().to_string()},
    });
    configmaps
        .patch(
            MANIFEST_KEY_CONFIGMAP,
            &PatchParams::apply("fleet-operator").force(),
            &Patch::Apply(&published),
        )
        .await
        .map_err(|e| format!("cannot publish the public key in ConfigMap `{MANIFEST_KEY_CONFIGMAP}` of namespace `{namespace}`: {e}"))?;
    Ok(key)
}

async fn read_secret(secrets: &Api<Secret>, name: &str, where_: &str) -> Result<Option<SigningKey>, String> {
    let Some(secret) = secrets.get_opt(name).await.map_err(|e| format!("cannot read {where_}: {e}"))? else {
        return Ok(None);
    };
    let text = secret
        .data
        .as_ref()
        .and_then(|d| d.get(SECRET_ENTRY))
        .and_then(|b| std::str::from_utf8(&b.0).ok())
        .ok_or_else(|| format!("{where_} has no `{SECRET_ENTRY}` entry\nhelp: delete it and restart the operator to make a new key (devices must then be enrolled again)"))?;
    SigningKey::from_text(text)
        .map(Some)
        .map_err(|e| format!("{where_} does not hold a signing key: {e}"))
}
