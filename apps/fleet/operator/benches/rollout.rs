//! How fast a FleetDeployment change reaches every device: from the spec
//! change to each agent's status reporting the new generation, for 10, 100
//! and 1000 agents (each its own NATS connection, key, state and watch, all
//! in this process), with the operator on the test API server and a real
//! nats-server. Prints p50/p99/max of the per-device times and the NATS
//! messages per device per rollout (the server's in + out counters).
//!
//! The baseline, measured in the same run: the bare NATS fan-out the design
//! rests on (a writer puts each device's key and publishes on the device's
//! subject; each device, on its own connection, reads its key when told and
//! answers into the status bucket), with no operator, no Kubernetes, no
//! signatures and no agent logic: the floor the fleet is compared with.
//!
//! `cargo bench -p fleet-operator --bench rollout [-- 10 100 1000] [cluster]`:
//! `cluster` runs both on a three-node NATS cluster (JetStream replicas 3,
//! messages counted on every node, routes included). Under `cargo test` it
//! runs once with 10 agents, so it cannot rot.

#[path = "../tests/world/mod.rs"]
mod world;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use fleet_model::{AgentStatus, FileSpec, Resource, ResourceStatus, State};
use fleet_testing::Nats;
use futures_util::StreamExt as _;
use world::World;

const ROLLOUTS: u64 = 5;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let mut sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = if bench { vec![10, 100, 1000] } else { vec![10] };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| devices | what | p50 | p99 | all converged | NATS messages per device per rollout |");
    println!("|---:|---|---:|---:|---:|---:|");
    let rollouts = if bench { ROLLOUTS } else { 1 };
    let nodes = if std::env::args().any(|a| a == "cluster") { 3 } else { 1 };
    let nats = move || if nodes > 1 { Nats::cluster(nodes) } else { Nats::single() };
    for n in sizes {
        let fleet = runtime.block_on(fleet(n, rollouts, nodes));
        fleet.print(n, "fleet: operator + agents");
        let floor = runtime.block_on(floor(n, rollouts, nats()));
        floor.print(n, "floor: bare KV fan-out");
        println!(
            "| {n} | ratio fleet/floor | {:.1}x | {:.1}x | {:.1}x | {:.1}x |",
            ratio(fleet.at(0.5), floor.at(0.5)),
            ratio(fleet.at(0.99), floor.at(0.99)),
            ratio(fleet.at(1.0), floor.at(1.0)),
            fleet.per_device / floor.per_device
        );
    }
}

/// Per-device convergence times of every measured rollout, and messages.
struct Figures {
    times: Vec<Duration>,
    per_device: f64,
}

impl Figures {
    fn new(mut times: Vec<Duration>, messages: u64, n: usize, rollouts: u64) -> Self {
        assert_eq!(times.len(), n * rollouts as usize, "every device reported every rollout");
        times.sort_unstable();
        Self {
            times,
            per_device: messages as f64 / (n as u64 * rollouts) as f64,
        }
    }

    fn at(&self, q: f64) -> Duration {
        self.times[((self.times.len() as f64 - 1.0) * q).round() as usize]
    }

    fn print(&self, n: usize, what: &str) {
        println!(
            "| {n} | {what} | {} | {} | {} | {:.1} |",
            ms(self.at(0.5)),
            ms(self.at(0.99)),
            ms(self.at(1.0)),
            self.per_device
        );
    }
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-6)
}

async fn fleet(n: usize, rollouts: u64, nodes: usize) -> Figures {
    // Agents report on change only: heartbeats would blur the message count.
    let mut world = World::empty_on(Duration::from_secs(600), nodes).await;
    let ids: Vec<String> = (0..n).map(|i| format!("device-{i:04}")).collect();
    world.start_registered(&ids, &[("fleet", "bench")]).await;
    let _operator = world.start_operator();
    // Each device writes it in a filesystem of its own (`World::file_on`), on tmpfs where there
    // is one: the figure is NATS and the agents, not the disk.
    let config = std::path::PathBuf::from("/etc/bench/config");

    let mut times = Vec::new();
    let mut messages = 0u64;
    for generation in 1..=rollouts + 1 {
        let mut reports = world.buckets.status.watch_all().await.unwrap();
        let counters = world.nats.varz();
        let started = Instant::now();
        let resources = vec![Resource::File(FileSpec {
            name: "config".into(),
            path: config.to_str().unwrap().into(),
            content: format!("generation = {generation}\n"),
            mode: 0o644,
        })];
        world.apply("bench", &[("fleet", "bench")], resources).await;
        let mut converged: BTreeMap<String, Duration> = BTreeMap::new();
        let deadline = started + Duration::from_secs(120);
        while converged.len() < n {
            let entry = tokio::time::timeout_at(deadline.into(), reports.next())
                .await
                .unwrap_or_else(|_| panic!("{} of {n} agents converged in 120 s", converged.len()))
                .unwrap()
                .unwrap();
            let Ok(status) = AgentStatus::from_json(&entry.value) else {
                continue;
            };
            if status.observed_generation == Some(generation) && ready(&status) {
                converged.entry(entry.key).or_insert_with(|| started.elapsed());
            }
        }
        let after = world.nats.varz();
        // The first rollout is a warm-up (connections, consumers, caches).
        if generation > 1 {
            times.extend(converged.into_values());
            messages += count(&after) - count(&counters);
        }
    }
    // Their connections closed before the floor opens as many again.
    world.stop_agents();
    tokio::time::sleep(Duration::from_secs(1)).await;
    Figures::new(times, messages, n, rollouts)
}

/// The same rollouts over bare KV: one put and one notice per device, each
/// device (own connection) reading its key when told and answering with one
/// write.
async fn floor(n: usize, rollouts: u64, nats: Nats) -> Figures {
    let connect = |name: String| {
        let settings = nats.settings(&name);
        async move { fleet_kv::Connection::open(&settings, |_| {}).await.unwrap() }
    };
    let writer = connect("writer".into()).await;
    let buckets = world::create_buckets(&writer).await;
    for i in 0..n {
        let key = format!("device-{i:04}");
        let connection = connect(key.clone()).await;
        let buckets = connection.buckets().await.unwrap();
        let mut notices = connection.client.subscribe(fleet_model::bucket::changed(&key)).await.unwrap();
        tokio::spawn(async move {
            let mut revision = None;
            while notices.next().await.is_some() {
                if let Some((value, _)) = fleet_kv::read(&buckets.manifests, &key).await.unwrap() {
                    revision = Some(fleet_kv::overwrite(&buckets.status, &key, &value, revision).await.unwrap());
                }
            }
        });
    }
    let mut times = Vec::new();
    let mut messages = 0u64;
    for generation in 1..=rollouts + 1 {
        let mut answers = buckets.status.watch_all().await.unwrap();
        let counters = nats.varz();
        let started = Instant::now();
        let value = format!("generation = {generation}");
        futures_util::stream::iter(0..n)
            .for_each_concurrent(64, |i| {
                let (store, client, value) = (&buckets.manifests, &writer.client, value.clone());
                async move {
                    let key = format!("device-{i:04}");
                    store.put(&key, value.into()).await.unwrap();
                    client
                        .publish(fleet_model::bucket::changed(&key), bytes::Bytes::new())
                        .await
                        .unwrap();
                }
            })
            .await;
        let mut answered: BTreeMap<String, Duration> = BTreeMap::new();
        // As the operator does: who has not answered a second after being told is told again.
        let mut retell = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(1), Duration::from_secs(1));
        let deadline = started + Duration::from_secs(120);
        while answered.len() < n {
            tokio::select! {
                entry = answers.next() => {
                    let entry = entry.unwrap().unwrap();
                    if entry.value == value.as_bytes() {
                        answered.entry(entry.key).or_insert_with(|| started.elapsed());
                    }
                }
                _ = retell.tick() => {
                    assert!(Instant::now() < deadline, "{} of {n} devices answered in 120 s", answered.len());
                    for i in 0..n {
                        let key = format!("device-{i:04}");
                        if !answered.contains_key(&key) {
                            writer.client.publish(fleet_model::bucket::changed(&key), bytes::Bytes::new()).await.unwrap();
                        }
                    }
                }
            }
        }
        let after = nats.varz();
        if generation > 1 {
            times.extend(answered.into_values());
            messages += count(&after) - count(&counters);
        }
    }
    Figures::new(times, messages, n, rollouts)
}

fn ready(status: &AgentStatus) -> bool {
    status
        .resources
        .values()
        .all(|r| matches!(r, ResourceStatus::File(f) if f.state == State::Ready))
}

fn count(varz: &serde_json::Value) -> u64 {
    varz["in_msgs"].as_u64().unwrap() + varz["out_msgs"].as_u64().unwrap()
}

fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
