//! The fleet's NATS side, shared by the agent and the operator: a connection
//! with user and password whose failures are typed ([`KvError`]), the three
//! KV buckets ([`fleet_model::bucket`]), and writes that are compare-and-set
//! on the key's revision, so that two writers never silently overwrite each
//! other's work.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;

pub use async_nats::jetstream::kv::{Entry, Operation, Store, Watch};
pub use async_nats::{Event, Subscriber};

/// Who is who on the fleet's NATS: the model's, with [`push_revocations`] here.
pub use fleet_model::identity;

/// Where the fleet's NATS is and who we are on it. No secret of it ever
/// appears in a message.
#[derive(Clone)]
pub struct Settings {
    /// `nats://host:port`, or `host:port`; several, separated by commas,
    /// for the nodes of a cluster (the client picks one, and moves to
    /// another when it goes away).
    pub url: String,
    pub login: Login,
    /// The name the server shows for this connection.
    pub name: String,
}

/// How we prove who we are.
#[derive(Clone)]
pub enum Login {
    /// A user and password the server's configuration lists.
    Password { user: String, password: String },
    /// Credentials of our own ([`identity::Credentials`]: a JWT the fleet
    /// account signed, and our private key, which signs the server's
    /// challenge and never leaves us). `inbox` is where replies to our
    /// requests come: a device's own ([`identity::inbox_prefix`]).
    Credentials { text: String, inbox: Option<String> },
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.who())
    }
}

impl Login {
    /// What to check when the server refuses us.
    fn help(&self) -> String {
        match self {
            Self::Password { .. } => "check the user name and the password".into(),
            Self::Credentials { .. } => "check that the server trusts the authority that signed them (`fleet-operator nats-config`) and that they were not revoked; `fleet-operator credentials` makes new ones".into(),
        }
    }

    /// Who we are, as a message may say it.
    pub fn who(&self) -> String {
        match self {
            Self::Password { user, .. } => format!("user `{user}`"),
            Self::Credentials { .. } => "these credentials".into(),
        }
    }
}

impl Settings {
    /// Settings for a fleet binary: the password from `password_file` (its
    /// first line), else from `FLEET_NATS_PASSWORD`; never from the command
    /// line, where `ps` would show it. The error is a message for a person.
    pub fn for_binary(url: String, user: String, password_file: Option<&std::path::Path>, name: String) -> Result<Self, String> {
        let password = match (password_file, std::env::var("FLEET_NATS_PASSWORD")) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the password file `{}`: {e}", path.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_owned(),
            (None, Ok(p)) => p,
            (None, Err(_)) => return Err("no NATS password\nhelp: pass --password-file PATH, or set FLEET_NATS_PASSWORD".into()),
        };
        Ok(Self {
            url,
            login: Login::Password { user, password },
            name,
        })
    }

    /// Settings for a fleet binary that logs in with the credentials in
    /// `file` (NATS's `.creds` format, from `fleet-operator credentials`);
    /// `inbox`: a device's own ([`identity::inbox_prefix`]).
    pub fn with_credentials_file(url: String, file: &std::path::Path, inbox: Option<String>, name: String) -> Result<Self, String> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            format!(
                "cannot read the credentials `{}`: {e}\nhelp: `fleet-operator credentials AUTHORITY --device ID FILE` makes a device's",
                file.display()
            )
        })?;
        Ok(Self {
            url,
            login: Login::Credentials { text, inbox },
            name,
        })
    }
}

/// Completes on SIGTERM or SIGINT: how a fleet binary is asked to stop.
pub async fn stopped() {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("url", &self.url)
            .field("login", &self.login.who())
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KvError {
    #[error("NATS at {url} refused {who} ({why}): {help}")]
    Refused {
        url: String,
        who: String,
        why: String,
        help: String,
    },
    #[error("NATS at {url} cannot be reached: {why}")]
    Unreachable { url: String, why: String },
    #[error("NATS at {url} has no KV bucket `{bucket}`: the fleet's setup creates it (deploy FleetNatsScore, or start the operator)")]
    NoBucket { url: String, bucket: String },
    #[error("`{key}` in bucket `{bucket}`: {why}")]
    Request { bucket: String, key: String, why: String },
    #[error("`{key}` in bucket `{bucket}` kept changing under us: {tries} compare-and-set writes lost in a row")]
    Contended { bucket: String, key: String, tries: u32 },
}

impl KvError {
    /// Worth retrying later (the server may come back); `Refused` is not.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::Refused { .. })
    }
}

/// A connection to the fleet's NATS.
#[derive(Clone, Debug)]
pub struct Connection {
    pub client: async_nats::Client,
    js: jetstream::Context,
    url: String,
}

/// The fleet's three buckets.
#[derive(Clone, Debug)]
pub struct Buckets {
    pub manifests: Store,
    pub status: Store,
    pub devices: Store,
}

impl Connection {
    /// Connect once. A refused login is [`KvError::Refused`]; the caller
    /// decides whether to retry an unreachable server. Once connected, the
    /// client reconnects by itself, forever, and `on_event` hears of it.
    pub async fn open(settings: &Settings, on_event: impl Fn(async_nats::Event) + Send + Sync + 'static) -> Result<Self, KvError> {
        let on_event = std::sync::Arc::new(on_event);
        let options = match &settings.login {
            Login::Password { user, password } => async_nats::ConnectOptions::with_user_and_password(user.clone(), password.clone()),
            Login::Credentials { text, inbox } => {
                let options = async_nats::ConnectOptions::with_credentials(text).map_err(|e| KvError::Refused {
                    url: settings.url.clone(),
                    who: settings.login.who(),
                    why: format!("they cannot be read: {e}"),
                    help: "give the `.creds` file `fleet-operator credentials` wrote, whole".into(),
                })?;
                match inbox {
                    Some(prefix) => options.custom_inbox_prefix(prefix),
                    None => options,
                }
            }
        };
        let options = options
            .name(&settings.name)
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let on_event = on_event.clone();
                async move { on_event(event) }
            });
        let urls: Vec<&str> = settings.url.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let client = options.connect(urls.as_slice()).await.map_err(|e| {
            use async_nats::ConnectErrorKind as K;
            match e.kind() {
                K::AuthorizationViolation | K::Authentication => KvError::Refused {
                    url: settings.url.clone(),
                    who: settings.login.who(),
                    why: e.kind().to_string(),
                    help: settings.login.help(),
                },
                _ => KvError::Unreachable {
                    url: settings.url.clone(),
                    why: e.to_string(),
                },
            }
        })?;
        let js = jetstream::new(client.clone());
        Ok(Self {
            client,
            js,
            url: settings.url.clone(),
        })
    }

    /// Open the three buckets, which must exist.
    pub async fn buckets(&self) -> Result<Buckets, KvError> {
        Ok(Buckets {
            manifests: self.bucket(fleet_model::bucket::MANIFESTS).await?,
            status: self.bucket(fleet_model::bucket::STATUS).await?,
            devices: self.bucket(fleet_model::bucket::DEVICES).await?,
        })
    }

    /// Create the buckets that are missing (the fleet's setup does this,
    /// agents never do), then open them.
    pub async fn create_buckets(&self) -> Result<Buckets, KvError> {
        self.make_missing_buckets().await?;
        self.buckets().await
    }

    /// Create the buckets that are missing; returns their names. The
    /// operator calls it now and then: a NATS that lost its data has none.
    pub async fn make_missing_buckets(&self) -> Result<Vec<&'static str>, KvError> {
        let mut made = Vec::new();
        for bucket in fleet_model::bucket::ALL {
            match self.bucket(bucket).await {
                Ok(_) => continue,
                Err(KvError::NoBucket { .. }) => {}
                Err(e) => return Err(e),
            }
            self.js
                .create_key_value(kv::Config {
                    bucket: bucket.to_owned(),
                    history: 1,
                    num_replicas: self.replicas(),
                    ..Default::default()
                })
                .await
                .map_err(|e| KvError::Request {
                    bucket: bucket.to_owned(),
                    key: String::new(),
                    why: format!("cannot create the bucket: {e}"),
                })?;
            made.push(bucket);
        }
        Ok(made)
    }

    /// How many copies of each bucket the servers keep: three on a cluster
    /// (one node may fail, and the fleet goes on), one on a lone server.
    fn replicas(&self) -> usize {
        if self.client.server_info().cluster.is_some() { 3 } else { 1 }
    }

    async fn bucket(&self, bucket: &str) -> Result<Store, KvError> {
        self.js.get_key_value(bucket).await.map_err(|e| {
            use async_nats::jetstream::context::KeyValueErrorKind as K;
            match e.kind() {
                K::GetBucket if e.to_string().contains("not found") => KvError::NoBucket {
                    url: self.url.clone(),
                    bucket: bucket.to_owned(),
                },
                _ => KvError::Unreachable {
                    url: self.url.clone(),
                    why: format!("cannot open bucket `{bucket}`: {e}"),
                },
            }
        })
    }
}

/// How many lost compare-and-set races a write survives before giving up.
const CAS_TRIES: u32 = 16;

/// The value of `key` and its revision, `None` when absent or deleted.
pub async fn read(store: &Store, key: &str) -> Result<Option<(Bytes, u64)>, KvError> {
    let entry = store.entry(key).await.map_err(|e| request(store, key, e))?;
    Ok(entry.filter(|e| e.operation == Operation::Put).map(|e| (e.value, e.revision)))
}

/// Write `value` over whatever `key` holds, compare-and-set on `revision`
/// (the last one this writer saw, `None` for none): when another writer got
/// there first, re-read the revision and try again. Returns the new
/// revision, which the caller passes next time (one request per write while
/// nobody else writes the key).
pub async fn overwrite(store: &Store, key: &str, value: &[u8], revision: Option<u64>) -> Result<u64, KvError> {
    let mut revision = revision;
    for attempt in 0..CAS_TRIES {
        if let Some(written) = compare_and_set(store, key, value, revision).await? {
            return Ok(written);
        }
        lost_race(attempt).await;
        revision = store.entry(key).await.map_err(|e| request(store, key, e))?.map(|e| e.revision);
    }
    Err(contended(store, key))
}

/// Change `key` from what it holds now: `change` gets the current value
/// (`None` when absent) and returns the new one, or `None` to leave it. A
/// lost race re-reads and asks `change` again. Returns the revision written,
/// or `None` when nothing needed writing.
pub async fn update(store: &Store, key: &str, change: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>) -> Result<Option<u64>, KvError> {
    update_from(store, key, None, change).await
}

/// What a writer believes a key holds: its value (`None`: absent or
/// deleted) at a revision (`None`: never written).
pub type Known = (Option<Vec<u8>>, Option<u64>);

/// [`update`], starting from what the caller believes the key holds
/// (`known`), so that no read is made while that belief is true (one
/// request per write); `None` reads first. A lost race reads.
pub async fn update_from(
    store: &Store,
    key: &str,
    known: Option<Known>,
    mut change: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
) -> Result<Option<u64>, KvError> {
    let mut known = known;
    for attempt in 0..CAS_TRIES {
        if attempt > 0 {
            lost_race(attempt).await;
        }
        let (current, revision) = match known.take() {
            Some(k) => k,
            None => {
                let entry = store.entry(key).await.map_err(|e| request(store, key, e))?;
                let revision = entry.as_ref().map(|e| e.revision);
                (entry.filter(|e| e.operation == Operation::Put).map(|e| e.value.to_vec()), revision)
            }
        };
        let Some(new) = change(current.as_deref()) else {
            return Ok(None);
        };
        if let Some(written) = compare_and_set(store, key, &new, revision).await? {
            return Ok(Some(written));
        }
    }
    Err(contended(store, key))
}

/// Delete `key` if what it holds satisfies `condition`, compare-and-set on
/// its revision: a value changed in between is judged again. Returns whether
/// it deleted.
pub async fn remove_if(store: &Store, key: &str, condition: impl Fn(&[u8]) -> bool) -> Result<bool, KvError> {
    for attempt in 0..CAS_TRIES {
        let Some((value, revision)) = read(store, key).await? else {
            return Ok(false);
        };
        if !condition(&value) {
            return Ok(false);
        }
        match store.delete_expect_revision(key, Some(revision)).await {
            Ok(()) => return Ok(true),
            // Lost to another writer if the revision moved; failed otherwise.
            Err(e) => {
                if read(store, key).await?.is_some_and(|(_, r)| r == revision) {
                    return Err(request(store, key, e));
                }
                lost_race(attempt).await;
            }
        }
    }
    Err(contended(store, key))
}

/// One write that succeeds only if `key` is still at `revision` (`None`:
/// still absent). `Ok(None)` when another writer got there first.
async fn compare_and_set(store: &Store, key: &str, value: &[u8], revision: Option<u64>) -> Result<Option<u64>, KvError> {
    let value = Bytes::copy_from_slice(value);
    let (written, lost) = match revision {
        Some(r) => {
            let written = store.update(key, value, r).await;
            let lost = matches!(&written, Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision);
            (written.map_err(|e| request(store, key, e)), lost)
        }
        None => {
            let written = store.create(key, value).await;
            let lost = matches!(&written, Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists);
            (written.map_err(|e| request(store, key, e)), lost)
        }
    };
    if lost { Ok(None) } else { written.map(Some) }
}

/// After a lost race, wait a little, at random, longer each time: a writer
/// that keeps its revision fresh would otherwise win every race against one
/// that must re-read first.
async fn lost_race(attempt: u32) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let ceiling_ms = 1u64 << attempt.min(7);
    tokio::time::sleep(Duration::from_micros(u64::from(nanos) % (ceiling_ms * 1000))).await;
}

fn contended(store: &Store, key: &str) -> KvError {
    KvError::Contended {
        bucket: store.name.clone(),
        key: key.to_owned(),
        tries: CAS_TRIES,
    }
}

fn request(store: &Store, key: &str, e: impl std::fmt::Display) -> KvError {
    KvError::Request {
        bucket: store.name.clone(),
        key: key.to_owned(),
        why: e.to_string(),
    }
}

/// Make the fleet account list `revoked` on the server at `url`, at once and
/// on every node: push its JWT through the system account. A revoked party's
/// session ends, and its credentials are refused from then on.
pub async fn push_revocations(
    authority: &identity::Authority,
    url: &str,
    revoked: &identity::Revocations,
) -> Result<(), identity::IdentityError> {
    let refused = |why: String| identity::IdentityError::new(why);
    let settings = Settings {
        url: url.to_owned(),
        login: Login::Credentials {
            text: authority.system_user().to_text(),
            inbox: None,
        },
        name: "fleet-revocations".into(),
    };
    let connection = Connection::open(&settings, |_| {}).await.map_err(|e| refused(e.to_string()))?;
    let reply = connection
        .client
        .request("$SYS.REQ.CLAIMS.UPDATE", authority.account_jwt(revoked).into())
        .await
        .map_err(|e| refused(format!("NATS at {url} did not take the account's update: {e}")))?;
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload).unwrap_or_default();
    match answer.get("error") {
        None | Some(serde_json::Value::Null) => Ok(()),
        Some(error) => Err(refused(format!("NATS at {url} refused the account's update: {error}"))),
    }
}
