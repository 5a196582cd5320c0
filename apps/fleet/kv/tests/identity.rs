//! Each party its own identity, and only its own rights, enforced by a real nats-server that
//! trusts the fleet's authority (decentralized JWT auth): a device's credentials work for its own
//! keys; every attempt on another device's keys, on manifests, or on the buckets themselves is
//! refused by NATS, which says so; the operator's credentials may do all of it; revoking one
//! device ends its session and shuts it out, and the others carry on.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_kv::identity::{Authority, Credentials, Revocations, Role};
use fleet_kv::{Buckets, Connection, Event, Login, Settings};
use fleet_model::bucket;
use fleet_testing::NatsServer;
use futures_util::StreamExt as _;

/// A connection with `credentials`, and what the server said to it.
struct Party {
    connection: Connection,
    heard: Arc<Mutex<Vec<String>>>,
}

async fn connect(server: &NatsServer, credentials: &Credentials, inbox: Option<String>) -> Result<Party, fleet_kv::KvError> {
    let heard = Arc::new(Mutex::new(Vec::new()));
    let log = heard.clone();
    let settings = Settings {
        url: server.url.clone(),
        login: Login::Credentials {
            text: credentials.to_text(),
            inbox,
        },
        name: "identity-test".into(),
    };
    let connection = Connection::open(&settings, move |event| {
        if let Event::ServerError(e) = event {
            log.lock().unwrap().push(e.to_string());
        }
    })
    .await?;
    Ok(Party { connection, heard })
}

impl Party {
    /// Whether the server refused something naming `subject` (within a second).
    async fn refused(&self, subject: &str) -> bool {
        for _ in 0..100 {
            if self
                .heard
                .lock()
                .unwrap()
                .iter()
                .any(|e| e.contains("Permissions Violation") && e.contains(subject))
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }
}

async fn device(authority: &Authority, server: &NatsServer, id: &str) -> (Party, Buckets) {
    let party = connect(server, &authority.device(id).unwrap(), Some(fleet_kv::identity::inbox_prefix(id)))
        .await
        .unwrap();
    let buckets = party.connection.buckets().await.unwrap();
    (party, buckets)
}

/// An operation that must not go through: refused, or never answered.
async fn fails<T, E>(op: impl Future<Output = Result<T, E>>) -> bool {
    !matches!(tokio::time::timeout(Duration::from_secs(1), op).await, Ok(Ok(_)))
}

#[tokio::test]
async fn a_device_reaches_its_own_keys_and_nats_refuses_it_everything_else() {
    let authority = Authority::generate();
    let server = NatsServer::start_trusting(&authority);
    let operator = connect(&server, &authority.credentials(&Role::Operator, 0), None).await.unwrap();
    let admin = operator.connection.create_buckets().await.unwrap();
    for id in ["d1", "d2"] {
        admin.manifests.put(id, format!("manifest of {id}").into()).await.unwrap();
    }

    let (d1, own) = device(&authority, &server, "d1").await;
    // Its own: read its manifest, write its status and registration, hear of its changes.
    let (manifest, _) = fleet_kv::read(&own.manifests, "d1").await.unwrap().unwrap();
    assert_eq!(manifest, "manifest of d1");
    fleet_kv::overwrite(&own.status, "d1", b"ready", None).await.unwrap();
    fleet_kv::overwrite(&own.status, "d1", b"ready again", Some(1)).await.unwrap();
    own.devices.put("d1", "labels".into()).await.unwrap();
    let mut notices = d1.connection.client.subscribe(bucket::changed("d1")).await.unwrap();
    d1.connection.client.flush().await.unwrap();
    // Told until it hears: right after the server starts, a notice can be lost (the agent reads
    // its key at its heartbeat anyway); what is tested here is that it may hear its own.
    let mut heard = false;
    for _ in 0..50 {
        operator.connection.client.publish(bucket::changed("d1"), "".into()).await.unwrap();
        if let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(100), notices.next()).await {
            heard = true;
            break;
        }
    }
    assert!(heard, "d1 never heard of its own changes: {:?}", d1.heard.lock().unwrap());

    // Everything else, each refused by NATS, which names it.
    let d2_manifest = format!("$JS.API.DIRECT.GET.KV_{m}.$KV.{m}.d2", m = bucket::MANIFESTS);
    assert!(fails(own.manifests.get("d2")).await, "read d2's manifest");
    assert!(d1.refused(&d2_manifest).await, "{:?}", d1.heard.lock().unwrap());
    assert!(fails(own.status.put("d2", "forged".into())).await, "forge d2's status");
    assert!(
        d1.refused(&format!("$KV.{}.d2", bucket::STATUS)).await,
        "{:?}",
        d1.heard.lock().unwrap()
    );
    assert!(
        fails(own.devices.put("d2", "forged labels".into())).await,
        "forge d2's registration"
    );
    assert!(
        d1.refused(&format!("$KV.{}.d2", bucket::DEVICES)).await,
        "{:?}",
        d1.heard.lock().unwrap()
    );
    assert!(fails(own.manifests.put("d1", "run this".into())).await, "write its own manifest");
    assert!(
        d1.refused(&format!("$KV.{}.d1", bucket::MANIFESTS)).await,
        "{:?}",
        d1.heard.lock().unwrap()
    );
    // The JetStream API itself, as any client would call it: make a bucket, delete one.
    let client = &d1.connection.client;
    let create = "$JS.API.STREAM.CREATE.KV_stolen".to_owned();
    let config = br#"{"name":"KV_stolen","subjects":["$KV.stolen.>"]}"#;
    assert!(
        fails(client.request(create.clone(), config.to_vec().into())).await,
        "create a bucket"
    );
    assert!(d1.refused(&create).await, "{:?}", d1.heard.lock().unwrap());
    let delete = format!("$JS.API.STREAM.DELETE.KV_{}", bucket::MANIFESTS);
    assert!(fails(client.request(delete.clone(), "".into())).await, "delete a bucket");
    assert!(d1.refused(&delete).await, "{:?}", d1.heard.lock().unwrap());
    assert!(fails(own.manifests.watch("d2")).await, "watch d2's manifest");
    let _ = d1.connection.client.subscribe(bucket::changed("d2")).await;
    assert!(d1.refused(&bucket::changed("d2")).await, "hear of d2's changes");
    let _ = d1.connection.client.subscribe("_INBOX.>").await;
    assert!(d1.refused("_INBOX.>").await, "read others' replies");

    // Nothing of d2's moved.
    let (value, _) = fleet_kv::read(&admin.manifests, "d2").await.unwrap().unwrap();
    assert_eq!(value, "manifest of d2");
    assert!(fleet_kv::read(&admin.status, "d2").await.unwrap().is_none());
    assert!(
        fleet_kv::read(&admin.manifests, "d1")
            .await
            .unwrap()
            .is_some_and(|(v, _)| v == "manifest of d1")
    );
}

#[tokio::test]
async fn revoking_one_device_shuts_it_out_and_leaves_the_others_alone() {
    let authority = Authority::generate();
    let server = NatsServer::start_trusting(&authority);
    let operator = connect(&server, &authority.credentials(&Role::Operator, 0), None).await.unwrap();
    operator.connection.create_buckets().await.unwrap();
    let d1_credentials = authority.device("d1").unwrap();
    let d1 = connect(&server, &d1_credentials, Some(fleet_kv::identity::inbox_prefix("d1")))
        .await
        .unwrap();
    let (_d2, d2_buckets) = device(&authority, &server, "d2").await;
    let d1_buckets = d1.connection.buckets().await.unwrap();
    fleet_kv::overwrite(&d1_buckets.status, "d1", b"ready", None).await.unwrap();

    // The fleet account's JWT again, now listing d1, pushed through the system account.
    let revoked = Revocations::from([(d1_credentials.public.clone(), fleet_kv::identity::unix_now())]);
    fleet_kv::push_revocations(&authority, &server.url, &revoked).await.unwrap();

    // d1's session ends, and its credentials no longer get in.
    let mut shut_out = false;
    for _ in 0..100 {
        if d1.connection.client.connection_state() != async_nats::connection::State::Connected {
            shut_out = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(shut_out, "d1 is still connected");
    let again = connect(&server, &d1_credentials, Some(fleet_kv::identity::inbox_prefix("d1"))).await;
    assert!(matches!(again, Err(fleet_kv::KvError::Refused { .. })), "{:?}", again.err());
    // d2 carries on.
    fleet_kv::overwrite(&d2_buckets.status, "d2", b"ready", None).await.unwrap();
    // Enrolled again under the next number: a new key, which gets in.
    let d1_again = authority.credentials(&Role::Device("d1".into()), 1);
    assert_ne!(d1_again.public, d1_credentials.public);
    connect(&server, &d1_again, Some(fleet_kv::identity::inbox_prefix("d1")))
        .await
        .unwrap();

    // A server that lost its data starts from the configuration: given the list, it still
    // refuses d1's first credentials.
    let fresh = NatsServer::start_trusting_revoking(&authority, &revoked);
    let refused = connect(&fresh, &d1_credentials, Some(fleet_kv::identity::inbox_prefix("d1"))).await;
    assert!(matches!(refused, Err(fleet_kv::KvError::Refused { .. })), "{:?}", refused.err());
    connect(&fresh, &d1_again, Some(fleet_kv::identity::inbox_prefix("d1")))
        .await
        .unwrap();
}
