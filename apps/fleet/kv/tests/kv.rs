//! The fleet's NATS side against a real nats-server: buckets, compare-and-set
//! writes raced by concurrent writers, and the faults a device meets.

use fleet_kv::{Connection, KvError};
use fleet_testing::NatsServer;

async fn connect(server: &NatsServer, name: &str) -> Connection {
    Connection::open(&server.settings(name), |_| {}).await.unwrap()
}

#[tokio::test]
async fn buckets_are_created_once_and_missing_ones_are_named() {
    let server = NatsServer::start();
    let connection = connect(&server, "setup").await;
    let err = connection.buckets().await.unwrap_err();
    assert!(
        matches!(&err, KvError::NoBucket { bucket, .. } if bucket == "fleet-manifests"),
        "{err:?}"
    );
    assert!(err.to_string().contains("FleetNatsScore"), "{err}");
    assert!(err.is_transient(), "an agent waits for the setup");

    let buckets = connection.create_buckets().await.unwrap();
    buckets.devices.put("sensor-1", "{}".into()).await.unwrap();
    // Creating again keeps what the buckets hold.
    let again = connection.create_buckets().await.unwrap();
    assert_eq!(fleet_kv::read(&again.devices, "sensor-1").await.unwrap().unwrap().0, "{}");
}

#[tokio::test]
async fn racing_overwrites_all_land_once_each() {
    let server = NatsServer::start();
    let buckets = connect(&server, "setup").await.create_buckets().await.unwrap();
    let writer = |who: &'static str| {
        let store = buckets.status.clone();
        tokio::spawn(async move {
            let mut revision = None;
            let mut written = Vec::new();
            for i in 0..40 {
                let value = format!("{who}-{i}");
                let r = fleet_kv::overwrite(&store, "sensor-1", value.as_bytes(), revision).await.unwrap();
                written.push(r);
                revision = Some(r);
            }
            written
        })
    };
    let (a, b) = (writer("a"), writer("b"));
    let mut revisions = a.await.unwrap();
    revisions.extend(b.await.unwrap());
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(revisions.len(), 80, "every write landed as its own revision");
    let (value, last) = fleet_kv::read(&buckets.status, "sensor-1").await.unwrap().unwrap();
    assert_eq!(last, *revisions.last().unwrap());
    assert!(value == "a-39" || value == "b-39", "{value:?}");
}

#[tokio::test]
async fn racing_updates_lose_nothing() {
    let server = NatsServer::start();
    let buckets = connect(&server, "setup").await.create_buckets().await.unwrap();
    let counter = |_: u8| {
        let store = buckets.manifests.clone();
        tokio::spawn(async move {
            for _ in 0..25 {
                fleet_kv::update(&store, "counter", |current| {
                    let n: u64 = current.map_or(0, |v| std::str::from_utf8(v).unwrap().parse().unwrap());
                    Some((n + 1).to_string().into_bytes())
                })
                .await
                .unwrap();
            }
        })
    };
    let (a, b, c) = (counter(0), counter(1), counter(2));
    for task in [a, b, c] {
        task.await.unwrap();
    }
    let (value, _) = fleet_kv::read(&buckets.manifests, "counter").await.unwrap().unwrap();
    assert_eq!(value, "75", "three writers, 25 increments each, none lost");
    // An update that wants no change writes nothing.
    let unchanged = fleet_kv::update(&buckets.manifests, "counter", |_| None).await.unwrap();
    assert_eq!(unchanged, None);
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_a_dead_server_is_unreachable() {
    let mut server = NatsServer::start();
    let mut settings = server.settings("intruder");
    settings.login = fleet_kv::Login::Password {
        user: fleet_testing::USER.into(),
        password: "not-the-password".into(),
    };
    let err = Connection::open(&settings, |_| {}).await.unwrap_err();
    assert!(matches!(err, KvError::Refused { .. }), "{err:?}");
    assert!(!err.is_transient());
    let message = err.to_string();
    assert!(
        message.contains("refused user `fleet`") && !message.contains("not-the-password"),
        "{message}"
    );

    server.stop();
    let err = Connection::open(&server.settings("late"), |_| {}).await.unwrap_err();
    assert!(matches!(err, KvError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains(&server.url), "{err}");
}

#[tokio::test]
async fn an_update_from_a_stale_belief_reads_and_decides_again() {
    let server = NatsServer::start();
    let buckets = connect(&server, "setup").await.create_buckets().await.unwrap();
    let first = buckets.manifests.put("device", "a".into()).await.unwrap();
    buckets.manifests.put("device", "b".into()).await.unwrap();
    let mut seen = Vec::new();
    let written = fleet_kv::update_from(&buckets.manifests, "device", Some((Some(b"a".to_vec()), Some(first))), |current| {
        let current = String::from_utf8(current.unwrap().to_vec()).unwrap();
        seen.push(current.clone());
        Some(format!("{current}+").into_bytes())
    })
    .await
    .unwrap();
    assert_eq!(seen, ["a", "b"], "the stale belief lost its race, then the key was read");
    let (value, revision) = fleet_kv::read(&buckets.manifests, "device").await.unwrap().unwrap();
    assert_eq!((value.as_ref(), Some(revision)), (&b"b+"[..], written));
}
