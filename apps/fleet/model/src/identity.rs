//! Who is who on the fleet's NATS, and what each may do: NATS's own
//! decentralized authentication (JWTs signed with nkeys, ADR 0023).
//!
//! An [`Authority`] holds three keys: the NATS operator's (it vouches for
//! accounts), the system account's (the server's own traffic, and where
//! account updates are pushed), and the fleet account's (it signs users).
//! The server is given the operator's and the accounts' JWTs, which carry no
//! secret ([`Authority::server_config`]); it never learns of a user until
//! that user connects with a JWT the fleet account signed. So a device is
//! enrolled by signing its credentials ([`Authority::device`]), without
//! touching the server, and revoked by pushing a new account JWT that lists
//! it ([`Authority::account_jwt`], [`Revocations`]), without touching the
//! other devices.
//!
//! What each party may do is in its JWT, and NATS enforces it:
//! - a device reads only its own manifest, writes only its own status and
//!   registration, and hears only of changes to its own manifest; its
//!   request replies come to an inbox of its own (`_INBOX_<device>`), which
//!   no other device may read;
//! - the fleet's operator (the [`Role::Operator`] user) may do anything in
//!   the fleet account: write manifests, read statuses, make the buckets;
//! - nobody else may create or delete a bucket.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use nkeys::KeyPair;
use serde_json::{Value, json};

use crate::bucket;

/// Why a key or a credential cannot be read or made. Never repeats a seed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct IdentityError(String);

impl IdentityError {
    pub fn new(why: impl Into<String>) -> Self {
        Self(why.into())
    }
}

/// The keys that vouch for everyone on the fleet's NATS. Keep its text as
/// secret as the fleet: whoever holds it can enrol anything.
pub struct Authority {
    operator: KeyPair,
    system: KeyPair,
    account: KeyPair,
}

/// Who a user is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// The fleet's operator: everything in the fleet account.
    Operator,
    /// One device: its own keys only.
    Device(String),
}

/// A user's credentials, in NATS's `.creds` format ([`Credentials::to_text`]):
/// its JWT and its private key.
pub struct Credentials {
    pub jwt: String,
    seed: String,
    /// The user's public key: what a revocation names.
    pub public: String,
}

/// The users revoked, by public key, each with the time (seconds since the
/// Unix epoch) before which its credentials no longer count.
pub type Revocations = BTreeMap<String, i64>;

const SEEDS: [&str; 3] = ["operator", "system", "account"];

impl Authority {
    pub fn generate() -> Self {
        Self {
            operator: KeyPair::new_operator(),
            system: KeyPair::new_account(),
            account: KeyPair::new_account(),
        }
    }

    /// Read the text [`Authority::to_text`] wrote.
    pub fn from_text(text: &str) -> Result<Self, IdentityError> {
        let mut seeds = BTreeMap::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let (name, seed) = line
                .split_once(':')
                .ok_or_else(|| IdentityError("a line of the fleet's NATS authority is `<key>: <seed>`".into()))?;
            let pair = KeyPair::from_seed(seed.trim())
                .map_err(|_| IdentityError(format!("the `{}` key of the fleet's NATS authority is not a seed", name.trim())))?;
            seeds.insert(name.trim().to_owned(), pair);
        }
        let mut take = |name: &str| {
            seeds
                .remove(name)
                .ok_or_else(|| IdentityError(format!("the fleet's NATS authority has no `{name}` key")))
        };
        Ok(Self {
            operator: take(SEEDS[0])?,
            system: take(SEEDS[1])?,
            account: take(SEEDS[2])?,
        })
    }

    pub fn to_text(&self) -> String {
        let mut text = String::from("# The fleet's NATS authority: whoever holds this can enrol anything.\n");
        for (name, pair) in SEEDS.iter().zip([&self.operator, &self.system, &self.account]) {
            text.push_str(&format!("{name}: {}\n", pair.seed().unwrap_or_default()));
        }
        text
    }

    /// The fleet account's public key.
    pub fn account(&self) -> String {
        self.account.public_key()
    }

    /// The operator's JWT: the server trusts what it signs.
    pub fn operator_jwt(&self) -> String {
        let claims = json!({
            "sub": self.operator.public_key(),
            "name": "fleet",
            "nats": {"type": "operator", "version": 2, "system_account": self.system.public_key()},
        });
        sign(&self.operator, claims, None)
    }

    /// The system account's JWT.
    pub fn system_jwt(&self) -> String {
        let claims = json!({
            "sub": self.system.public_key(),
            "name": "SYS",
            "nats": {"type": "account", "version": 2, "limits": unlimited(false)},
        });
        sign(&self.operator, claims, None)
    }

    /// The fleet account's JWT, with JetStream, listing `revoked`, issued
    /// now: what `push_revocations` sends (the server keeps the newest).
    pub fn account_jwt(&self, revoked: &Revocations) -> String {
        self.account_jwt_issued(revoked, Some(unix_now()))
    }

    fn account_jwt_issued(&self, revoked: &Revocations, issued: Option<i64>) -> String {
        let claims = json!({
            "sub": self.account.public_key(),
            "name": "fleet",
            "nats": {
                "type": "account",
                "version": 2,
                "limits": unlimited(true),
                "revocations": revoked,
                "default_permissions": {"pub": {}, "sub": {}},
            },
        });
        sign(&self.operator, claims, issued)
    }

    /// The server's configuration of trust: paste it into nats-server's
    /// configuration file. It holds public keys and JWTs only. Accounts are
    /// kept in `dir` (the full resolver: an updated account JWT pushed by
    /// the system account takes effect at once, on every node).
    ///
    /// The fleet account it starts from lists `revoked`, issued at the
    /// latest of their times: a server that kept a newer account (one a
    /// revocation pushed since) keeps that one, and a server that lost its
    /// data still refuses every party the list names. The text is the same
    /// for the same authority and list.
    pub fn server_config(&self, dir: &str, revoked: &Revocations) -> String {
        let issued = revoked.values().copied().max();
        format!(
            "operator: {operator}\nsystem_account: {system}\nresolver: {{\n  type: full\n  dir: {dir}\n  allow_delete: false\n}}\nresolver_preload: {{\n  {system}: {system_jwt}\n  {account}: {account_jwt}\n}}\n",
            operator = self.operator_jwt(),
            system = self.system.public_key(),
            system_jwt = self.system_jwt(),
            account = self.account.public_key(),
            account_jwt = self.account_jwt_issued(revoked, issued),
            dir = json!(dir),
        )
    }

    /// The credentials of `role` under enrolment number `enrolment`, signed
    /// by the fleet account: always the same for the same three (see the
    /// module's text). They carry no issue time, so a revocation of their
    /// key refuses them for good; enrol again with the next number.
    pub fn credentials(&self, role: &Role, enrolment: u32) -> Credentials {
        let (name, permissions) = match role {
            Role::Operator => ("fleet-operator".to_owned(), json!({})),
            Role::Device(device) => (device.clone(), device_permissions(device)),
        };
        let user = derived_user(&self.account, &format!("{name}\0{enrolment}"));
        let mut nats = json!({"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1});
        if let (Some(nats), Some(permissions)) = (nats.as_object_mut(), permissions.as_object()) {
            nats.extend(permissions.clone());
        }
        let claims = json!({"sub": user.public_key(), "name": name, "nats": nats});
        Credentials {
            jwt: sign(&self.account, claims, None),
            seed: user.seed().unwrap_or_default(),
            public: user.public_key(),
        }
    }

    /// The credentials of one device, first enrolment: enrolling it is giving it these.
    pub fn device(&self, device: &str) -> Result<Credentials, IdentityError> {
        crate::check_device_id(device).map_err(IdentityError)?;
        Ok(self.credentials(&Role::Device(device.to_owned()), 0))
    }

    /// Credentials in the system account: they push account updates.
    pub fn system_user(&self) -> Credentials {
        let user = derived_user(&self.system, "fleet-system");
        let claims = json!({
            "sub": user.public_key(),
            "name": "fleet-system",
            "nats": {"type": "user", "version": 2, "subs": -1, "data": -1, "payload": -1},
        });
        Credentials {
            jwt: sign(&self.system, claims, None),
            seed: user.seed().unwrap_or_default(),
            public: user.public_key(),
        }
    }
}

/// A user key derived from an account's private key and `what`: the HMAC of
/// one by the other is the new key's 32 random bytes.
fn derived_user(account: &KeyPair, what: &str) -> KeyPair {
    let secret = account.seed().unwrap_or_default();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, format!("fleet user\0{what}").as_bytes());
    let mut raw = [0u8; 32];
    raw.copy_from_slice(&tag.as_ref()[..32]);
    // Cannot fail: a user key takes any 32 bytes.
    KeyPair::new_from_raw(nkeys::KeyPairType::User, raw).unwrap_or_else(|_| KeyPair::new_user())
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("operator", &self.operator.public_key())
            .field("account", &self.account.public_key())
            .finish_non_exhaustive()
    }
}

/// The inbox prefix of a device: its request replies come there, and only it
/// may subscribe to it.
pub fn inbox_prefix(device: &str) -> String {
    format!("_INBOX_{device}")
}

/// What a device may publish and subscribe to: its own keys, nothing else.
fn device_permissions(device: &str) -> Value {
    let stream_info = bucket::ALL.map(|b| format!("$JS.API.STREAM.INFO.KV_{b}"));
    let read_own = |b: &str| format!("$JS.API.DIRECT.GET.KV_{b}.$KV.{b}.{device}");
    let mut publish: Vec<String> = stream_info.to_vec();
    publish.extend([
        read_own(bucket::MANIFESTS),
        read_own(bucket::STATUS),
        format!("$KV.{}.{device}", bucket::STATUS),
        format!("$KV.{}.{device}", bucket::DEVICES),
    ]);
    json!({
        "pub": {"allow": publish},
        "sub": {"allow": [bucket::changed(device), format!("{}.>", inbox_prefix(device))]},
    })
}

fn unlimited(jetstream: bool) -> Value {
    let mut limits = json!({
        "subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1,
        "wildcards": true, "conn": -1, "leaf": -1,
    });
    if jetstream && let Some(l) = limits.as_object_mut() {
        for field in ["mem_storage", "disk_storage", "streams", "consumer"] {
            l.insert(field.into(), json!(-1));
        }
    }
    limits
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// A JWT of `claims` by `issuer`, as NATS's own tools write one; `issued`:
/// its issue time (`iat`), or none, for a JWT that is the same at every call.
fn sign(issuer: &KeyPair, mut claims: Value, issued: Option<i64>) -> String {
    let header = B64.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    claims["iss"] = json!(issuer.public_key());
    if let Some(issued) = issued {
        claims["iat"] = json!(issued);
    }
    // Its id: a digest of the rest, as NATS's tools make it.
    let digest = ring::digest::digest(&ring::digest::SHA512_256, &serde_json::to_vec(&claims).unwrap_or_default());
    claims["jti"] = json!(data_encoding::BASE32_NOPAD.encode(digest.as_ref()));
    let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let signature = issuer.sign(format!("{header}.{payload}").as_bytes()).unwrap_or_default();
    format!("{header}.{payload}.{}", B64.encode(signature))
}

impl Credentials {
    /// The server's challenge (the `nonce` of its `INFO`), signed with our
    /// key, as a `CONNECT` carries it (`sig`).
    pub fn sign_nonce(&self, nonce: &str) -> Result<String, IdentityError> {
        let pair = KeyPair::from_seed(&self.seed).map_err(|_| IdentityError("the key in NATS credentials is not a seed".into()))?;
        let signature = pair
            .sign(nonce.as_bytes())
            .map_err(|_| IdentityError("the key in NATS credentials cannot sign".into()))?;
        Ok(B64.encode(signature))
    }

    /// The `.creds` file's text.
    pub fn to_text(&self) -> String {
        format!(
            "-----BEGIN NATS USER JWT-----\n{}\n------END NATS USER JWT------\n\n************************* IMPORTANT *************************\nNKEY Seed printed below can be used to sign and prove identity.\nNKEYs are sensitive and should be treated as secrets.\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n\n*************************************************************\n",
            self.jwt, self.seed
        )
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("public", &self.public).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authority_reads_back_from_its_text_and_never_prints_a_seed() {
        let authority = Authority::generate();
        let text = authority.to_text();
        let again = Authority::from_text(&text).unwrap();
        assert_eq!(again.account(), authority.account());
        assert_eq!(again.operator.public_key(), authority.operator.public_key());
        let seeds: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once(": ").map(|(_, s)| s))
            .collect();
        assert_eq!(seeds.len(), 3);
        let credentials = authority.device("d1").unwrap();
        for shown in [format!("{authority:?}"), format!("{credentials:?}")] {
            assert!(seeds.iter().all(|s| !shown.contains(s)), "{shown}");
            assert!(!shown.contains(&credentials.seed), "{shown}");
        }
        let missing = Authority::from_text("operator: SOAAA\n").unwrap_err().to_string();
        assert!(!missing.contains("SOAAA"), "{missing}");
        assert!(authority.device("a/b").is_err(), "a device id is checked");
    }

    #[test]
    fn credentials_are_derived_so_a_render_is_stable_and_an_enrolment_number_gives_a_new_key() {
        let authority = Authority::generate();
        let d1 = Role::Device("d1".into());
        let (a, b) = (authority.credentials(&d1, 0), authority.credentials(&d1, 0));
        assert_eq!((a.to_text(), a.public.clone()), (b.to_text(), b.public.clone()));
        let again = authority.credentials(&d1, 1);
        assert_ne!(again.public, a.public, "enrolled again: a new key");
        assert_ne!(authority.credentials(&Role::Device("d2".into()), 0).public, a.public);
        assert_ne!(authority.credentials(&Role::Operator, 0).public, a.public);
        let other = Authority::generate();
        assert_ne!(other.credentials(&d1, 0).public, a.public, "another authority, another key");
        let revoked = Revocations::from([(a.public.clone(), 1_700_000_000)]);
        assert_eq!(
            authority.server_config("/data", &revoked),
            authority.server_config("/data", &revoked)
        );
        let config = authority.server_config("/data", &revoked);
        assert!(
            !config.contains(&a.seed)
                && !authority
                    .to_text()
                    .lines()
                    .skip(1)
                    .any(|l| config.contains(l.split(": ").nth(1).unwrap()))
        );
    }

    #[test]
    fn a_devices_jwt_names_only_its_own_subjects() {
        let authority = Authority::generate();
        let jwt = authority.device("d7").unwrap().jwt;
        let claims: Value = serde_json::from_slice(&B64.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_eq!(claims["iss"], json!(authority.account()));
        let subjects: Vec<String> = ["pub", "sub"]
            .iter()
            .flat_map(|k| claims["nats"][k]["allow"].as_array().unwrap().clone())
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for subject in &subjects {
            assert!(
                subject.ends_with(".d7") || subject.ends_with("_d7.>") || subject.starts_with("$JS.API.STREAM.INFO."),
                "{subject}"
            );
        }
    }
}
