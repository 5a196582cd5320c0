//! The operator on the real control plane and a real nats-server, with real
//! agents: a FleetDeployment reaches the devices it selects, their statuses
//! come back into `.status`, changes roll out, unselected devices are
//! withdrawn, deletion withdraws everything, and bad or conflicting specs are
//! reported without touching the devices.

mod world;

use std::collections::BTreeMap;
use std::time::Duration;

use fleet_model::{FileSpec, ProcessSpec, Resource};
use fleet_operator::crd::{FleetDeployment, FleetDeploymentStatus};
use kube::api::DeleteParams;
use world::World;

/// Every stream `/jsz` lists, in every account.
fn streams_of(jsz: &serde_json::Value) -> Vec<serde_json::Value> {
    let accounts = jsz["account_details"].as_array().cloned().unwrap_or_default();
    accounts
        .iter()
        .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
        .collect()
}

fn condition<'a>(status: &'a FleetDeploymentStatus, type_: &str) -> &'a fleet_operator::crd::Condition {
    status.conditions.iter().find(|c| c.type_ == type_).expect("condition")
}

fn file(path: &std::path::Path, content: &str) -> Resource {
    Resource::File(FileSpec {
        name: "config".into(),
        path: path.to_str().unwrap().into(),
        content: content.into(),
        mode: 0o644,
    })
}

fn process(argv: &[&str]) -> Resource {
    Resource::Process(ProcessSpec {
        name: "reader".into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: BTreeMap::new(),
        restart: Default::default(),
    })
}

#[tokio::test]
async fn a_fleet_deployment_reaches_its_devices_and_their_statuses_come_back() {
    let world = World::new(&[
        ("lyon-1", &[("site", "lyon"), ("rack", "1")]),
        ("lyon-2", &[("site", "lyon"), ("rack", "2")]),
        ("lyon-3", &[("site", "lyon"), ("rack", "2")]),
        ("paris-1", &[("site", "paris")]),
    ])
    .await;
    let _operator = world.start_operator();
    let out = tempfile::tempdir().unwrap();
    let config = out.path().join("sensor.toml");

    world
        .apply(
            "sensors",
            &[("site", "lyon")],
            vec![file(&config, "rate = 5\n"), process(&["sleep", "60"])],
        )
        .await;
    let status = world.status_until("sensors", |s| s.ready == 3).await;
    assert_eq!((status.selected, status.failed, status.observed_generation), (3, 0, Some(1)));
    assert_eq!(condition(&status, "Ready").status, "True");
    for device in ["lyon-1", "lyon-2", "lyon-3"] {
        assert_eq!(std::fs::read_to_string(world.file_on(device, &config)).unwrap(), "rate = 5\n");
    }
    assert!(!world.file_on("paris-1", &config).exists(), "not selected, nothing written");
    assert_eq!(
        world.manifest_owner("lyon-1").await.as_deref(),
        Some(format!("{}/sensors", world.ns).as_str())
    );
    assert_eq!(world.manifest_owner("paris-1").await, None, "not selected, nothing sent");

    // A change rolls out: every device reports the new generation.
    world
        .apply(
            "sensors",
            &[("site", "lyon")],
            vec![file(&config, "rate = 9\n"), process(&["sleep", "61"])],
        )
        .await;
    let status = world
        .status_until("sensors", |s| s.observed_generation == Some(2) && s.ready == 3)
        .await;
    assert_eq!(condition(&status, "Progressing").status, "False");
    assert_eq!(std::fs::read_to_string(world.file_on("lyon-1", &config)).unwrap(), "rate = 9\n");

    // A narrower selector withdraws the devices it no longer selects.
    world
        .apply(
            "sensors",
            &[("site", "lyon"), ("rack", "2")],
            vec![file(&config, "rate = 9\n"), process(&["sleep", "61"])],
        )
        .await;
    world.status_until("sensors", |s| s.selected == 2 && s.ready == 2).await;
    assert_eq!(world.manifest_owner("lyon-1").await, None);
    assert_eq!(
        world.manifest_owner("lyon-2").await.as_deref(),
        Some(format!("{}/sensors", world.ns).as_str())
    );

    // Deleting the resource withdraws what it sent, then lets it go.
    world.api().delete("sensors", &DeleteParams::default()).await.unwrap();
    for _ in 0..200 {
        if world.api().get_opt("sensors").await.unwrap().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(world.api().get_opt("sensors").await.unwrap().is_none(), "the finalizer was removed");
    for device in ["lyon-2", "lyon-3"] {
        assert_eq!(world.manifest_owner(device).await, None, "{device} withdrawn");
    }
    drop(world.cluster);
}

#[tokio::test]
async fn failures_conflicts_empty_selectors_and_invalid_specs_are_reported() {
    let world = World::new(&[("edge-1", &[("site", "lyon")]), ("edge-2", &[("site", "lyon")])]).await;
    let _operator = world.start_operator();

    // A program that does not exist: Degraded, in the agent's words.
    world
        .apply("broken", &[("site", "lyon")], vec![process(&["/opt/fleet/missing"])])
        .await;
    let status = world.status_until("broken", |s| s.failed == 2).await;
    let degraded = condition(&status, "Degraded");
    assert_eq!(degraded.status, "True");
    assert!(
        degraded
            .message
            .contains("edge-1: reader: `/opt/fleet/missing` is not run: no such program on this device"),
        "{}",
        degraded.message
    );
    assert_eq!(status.failures.len(), 2);

    // A second deployment on the same devices: a conflict, nothing taken.
    world.apply("intruder", &[("site", "lyon")], vec![process(&["sleep", "60"])]).await;
    let status = world.status_until("intruder", |s| s.conflicts == 2).await;
    assert_eq!(condition(&status, "Ready").reason, "Conflict");
    assert!(
        status.failures[0]
            .message
            .contains(&format!("already runs FleetDeployment {}/broken", world.ns))
    );
    assert_eq!(
        world.manifest_owner("edge-1").await.as_deref(),
        Some(format!("{}/broken", world.ns).as_str())
    );

    // An invalid spec is refused before anything is sent.
    world
        .apply("relative", &[("site", "mars")], vec![file(std::path::Path::new("etc/x"), "")])
        .await;
    let status = world.status_until("relative", |s| !s.conditions.is_empty()).await;
    let ready = condition(&status, "Ready");
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(ready.message.contains("must be absolute"), "{}", ready.message);

    // A selector that matches nothing says so.
    world.apply("nowhere", &[("site", "mars")], vec![process(&["sleep", "60"])]).await;
    let status = world.status_until("nowhere", |s| !s.conditions.is_empty()).await;
    let ready = condition(&status, "Ready");
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "NoDevicesSelected"));
    assert!(
        ready.message.contains("`site=mars` matches none of the 2 registered devices"),
        "{}",
        ready.message
    );
}

#[tokio::test]
async fn a_restarted_operator_picks_up_without_rewriting_anything() {
    let world = World::new(&[("edge-1", &[("site", "lyon")]), ("edge-2", &[("site", "lyon")])]).await;
    let operator = world.start_operator();
    world.apply("sensors", &[("site", "lyon")], vec![process(&["sleep", "60"])]).await;
    world.status_until("sensors", |s| s.ready == 2).await;
    let revisions = |w: &World| {
        let buckets = w.buckets.clone();
        async move {
            let mut out = Vec::new();
            for device in ["edge-1", "edge-2"] {
                out.push(fleet_kv::read(&buckets.manifests, device).await.unwrap().unwrap().1);
            }
            out
        }
    };
    let before = revisions(&world).await;
    let _ = operator.send(());

    // While it is down, the spec changes; a new operator rolls it out.
    world.apply("sensors", &[("site", "lyon")], vec![process(&["sleep", "62"])]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(revisions(&world).await, before, "nothing moves without an operator");
    let _operator = world.start_operator();
    world
        .status_until("sensors", |s| s.observed_generation == Some(2) && s.ready == 2)
        .await;
    let after = revisions(&world).await;
    assert!(after.iter().zip(&before).all(|(a, b)| a > b));

    // Once more with no change: a third operator writes nothing.
    let _third = world.start_operator();
    world.apply("other", &[("site", "mars")], vec![process(&["sleep", "60"])]).await;
    world.status_until("other", |s| !s.conditions.is_empty()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(revisions(&world).await, after);
}

#[tokio::test]
async fn an_operator_starting_on_a_large_fleet_withdraws_nothing_it_has_not_read() {
    // 3000 devices registered, one of them selected and registered last: a
    // new operator reads the one manifest long before that device's record.
    let mut world = World::empty(Duration::from_secs(30)).await;
    for n in 0..3000 {
        let device = fleet_model::Device::new(format!("idle-{n}"), BTreeMap::from([("site".into(), "lyon".into())]));
        fleet_kv::overwrite(&world.buckets.devices, &device.id, &device.to_json(), None)
            .await
            .unwrap();
    }
    world.start_agent("mars-1", &[("site", "mars")]);
    world.until_registered("mars-1").await;
    let first = world.start_operator();
    world.apply("probe", &[("site", "mars")], vec![process(&["sleep", "60"])]).await;
    world.status_until("probe", |s| s.ready == 1).await;
    let (_, revision) = fleet_kv::read(&world.buckets.manifests, "mars-1").await.unwrap().unwrap();
    let _ = first.send(());

    for _ in 0..3 {
        let operator = world.start_operator();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let _ = operator.send(());
    }
    let (_, now) = fleet_kv::read(&world.buckets.manifests, "mars-1").await.unwrap().unwrap();
    assert_eq!(now, revision, "a starting operator withdrew or rewrote the manifest");
}

/// Someone who can write to NATS forges a device's manifest: one signed by another key that
/// names a made-up owner, then one not signed at all. The device refuses both (it keeps running
/// what it runs), and the operator writes its own signed manifest back over each.
#[tokio::test]
async fn a_manifest_forged_in_nats_is_written_over_with_the_signed_one() {
    let world = World::new(&[("edge-1", &[("site", "lyon")])]).await;
    let _operator = world.start_operator();
    world.apply("sensors", &[("site", "lyon")], vec![process(&["sleep", "60"])]).await;
    world.status_until("sensors", |s| s.ready == 1).await;
    let owner = format!("{}/sensors", world.ns);
    assert_eq!(world.manifest_owner("edge-1").await.as_deref(), Some(owner.as_str()));

    let attacker = fleet_model::signed::SigningKey::generate().unwrap();
    let evil = fleet_model::AgentManifest {
        owner: Some("made-up/owner".into()),
        ..fleet_model::AgentManifest::new(99, vec![process(&["sleep", "99"])])
    };
    let forgeries = [attacker.sign("edge-1", u64::MAX / 2, Some(&evil)), evil.to_json()];
    for forged in forgeries {
        let (_, before) = fleet_kv::read(&world.buckets.manifests, "edge-1").await.unwrap().unwrap();
        world.buckets.manifests.put("edge-1", forged.clone().into()).await.unwrap();
        // Written back over, signed, by the operator.
        let mut repaired = false;
        for _ in 0..200 {
            let (value, revision) = fleet_kv::read(&world.buckets.manifests, "edge-1").await.unwrap().unwrap();
            if revision > before + 1 && value != forged {
                repaired = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(repaired, "the operator never wrote over the forged manifest");
        assert_eq!(world.manifest_owner("edge-1").await.as_deref(), Some(owner.as_str()));
        let status = world.status_until("sensors", |s| s.ready == 1 && s.failed == 0).await;
        assert_eq!(status.selected, 1);
    }
}

/// A device falls silent: the operator says so once, then leaves the resource alone on every
/// later pass (it does not rewrite the status as the silence grows).
#[tokio::test]
async fn a_silent_device_does_not_make_the_operator_rewrite_the_status() {
    let mut world = World::new(&[("edge-1", &[("site", "lyon")])]).await;
    let _operator = world.start_operator_silent_after(Duration::from_secs(1));
    world.apply("sensors", &[("site", "lyon")], vec![process(&["sleep", "60"])]).await;
    world.status_until("sensors", |s| s.ready == 1).await;
    world.stop_agents();
    let status = world.status_until("sensors", |s| s.silent == 1).await;
    assert!(
        status.failures[0].message.starts_with("silent: no report since 20"),
        "{:?}",
        status.failures
    );
    let version = |fd: FleetDeployment| fd.metadata.resource_version.unwrap();
    let before = version(world.api().get("sensors").await.unwrap());
    // The operator comes back every second (its silence): three passes.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let after = version(world.api().get("sensors").await.unwrap());
    assert_eq!(before, after, "the status was rewritten with nothing new to say");
}

/// NATS restarts without its data (JetStream on a volume that was lost), and the operator
/// restarts with it: the buckets are gone. The new operator makes them again and, from the
/// FleetDeployments, writes every manifest again; the agents, which were never restarted,
/// register again after their reconnect, keep their workloads running throughout (an empty
/// bucket is not a withdrawal), and the deployment reports every device ready again.
#[tokio::test]
async fn nats_losing_its_data_stops_no_workload_and_the_fleet_converges_again() {
    let mut world = World::new(&[("edge-1", &[("site", "lyon")]), ("edge-2", &[("site", "lyon")])]).await;
    let operator = world.start_operator();
    world.apply("sensors", &[("site", "lyon")], vec![process(&["sleep", "60"])]).await;
    world.status_until("sensors", |s| s.ready == 2).await;
    let pids = |w: &World| {
        let buckets = w.buckets.clone();
        async move {
            // Each device's report, once it has one (the agents write theirs again after a wipe).
            let mut pids = Vec::new();
            for device in ["edge-1", "edge-2"] {
                let mut pid = None;
                for _ in 0..400 {
                    if let Ok(Some((bytes, _))) = fleet_kv::read(&buckets.status, device).await
                        && let Some(fleet_model::ResourceStatus::Process(p)) =
                            fleet_model::AgentStatus::from_json(&bytes).unwrap().resources.get("reader")
                    {
                        pid = p.pid;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                pids.push(pid.unwrap_or_else(|| panic!("{device} never reported its process")));
            }
            pids
        }
    };
    let before = pids(&world).await;

    drop(operator);
    world.nats.wipe();
    let _operator = world.start_operator();
    // Until the devices report again, their processes run on, untouched.
    for pid in &before {
        assert!(std::path::Path::new(&format!("/proc/{pid}")).exists(), "{pid} was stopped");
    }
    // The buckets come back with every device registered and its manifest written again.
    for device in ["edge-1", "edge-2"] {
        let mut back = false;
        for _ in 0..400 {
            let registered = fleet_kv::read(&world.buckets.devices, device).await.ok().flatten().is_some();
            let owner = match fleet_kv::read(&world.buckets.manifests, device).await {
                Ok(Some(_)) => world.manifest_owner(device).await,
                _ => None,
            };
            if registered && owner.is_some() {
                back = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(back, "{device} was not registered and given its manifest again");
    }
    let status = world.status_until("sensors", |s| s.ready == 2 && s.selected == 2).await;
    assert_eq!(status.failed + status.silent, 0, "{status:?}");
    assert_eq!(
        pids(&world).await,
        before,
        "the same processes: no workload was stopped or restarted"
    );
    world.stop_agents();
}

/// More devices than one server would give a JetStream consumer each: 1,001 devices converge,
/// and the manifests' stream holds no consumer per device (each hears of a change on a plain
/// subject and reads its own key), only the operator's one watch.
#[tokio::test]
async fn a_thousand_and_one_devices_converge_without_a_consumer_each() {
    let mut world = World::empty(Duration::from_secs(30)).await;
    let devices: Vec<String> = (0..1001).map(|n| format!("unit-{n:04}")).collect();
    world.start_registered(&devices, &[("site", "plant")]).await;
    let _operator = world.start_operator();
    let path = std::path::Path::new("/etc/plant.conf");
    world.apply("plant", &[("site", "plant")], vec![file(path, "line = 7\n")]).await;
    let status = world.status_until("plant", |s| s.ready == 1001).await;
    assert_eq!((status.selected, status.failed, status.silent), (1001, 0, 0));
    assert_eq!(std::fs::read_to_string(world.file_on("unit-1000", path)).unwrap(), "line = 7\n");

    let jsz = world.nats.monitoring("/jsz?streams=true&consumers=true");
    let streams = streams_of(&jsz);
    let manifests = streams
        .iter()
        .find(|s| s["name"] == "KV_fleet-manifests")
        .unwrap_or_else(|| panic!("no manifests stream: {jsz}"));
    let consumers = manifests["state"]["consumer_count"].as_u64().unwrap();
    assert!(consumers <= 1, "{consumers} consumers on the manifests' stream for 1001 devices");
    world.stop_agents();
}

/// The fleet on a three-node NATS cluster (real clustering on loopback, every bucket with three
/// replicas): one node is killed in the middle of a rollout. Every device still converges on the
/// new spec, nothing written is lost, and the node comes back into the cluster.
#[tokio::test]
async fn a_nats_node_killed_in_the_middle_of_a_rollout_loses_nothing() {
    let mut world = World::empty_on(Duration::from_millis(500), 3).await;
    let devices: Vec<String> = (0..30).map(|n| format!("cell-{n:02}")).collect();
    world.start_registered(&devices, &[("site", "plant")]).await;
    let _operator = world.start_operator();
    let path = std::path::Path::new("/etc/plant.conf");
    world.apply("plant", &[("site", "plant")], vec![file(path, "v = 1\n")]).await;
    world.status_until("plant", |s| s.ready == 30).await;

    let jsz = world.nats.monitoring("/jsz?streams=true&config=true");
    let streams = streams_of(&jsz);
    for bucket in fleet_model::bucket::ALL {
        let stream = streams.iter().find(|s| s["name"] == format!("KV_{bucket}"));
        let replicas = stream.map(|s| s["config"]["num_replicas"].clone());
        assert_eq!(replicas, Some(serde_json::json!(3)), "{bucket}: {jsz}");
    }

    world.apply("plant", &[("site", "plant")], vec![file(path, "v = 2\n")]).await;
    world.nats.nodes[0].stop();
    let status = world
        .status_until("plant", |s| s.observed_generation == Some(2) && s.ready == 30)
        .await;
    assert_eq!((status.selected, status.failed), (30, 0));
    for id in &devices {
        assert_eq!(std::fs::read_to_string(world.file_on(id, path)).unwrap(), "v = 2\n", "{id}");
    }
    // Every bucket kept three replicas' worth of data: each device's manifest is there to read.
    for id in &devices {
        assert_eq!(
            world.manifest_owner(id).await.as_deref(),
            Some(format!("{}/plant", world.ns).as_str())
        );
    }
    world.nats.nodes[0].resume();
    world.stop_agents();
}
