//! The agent against a real nats-server: a manifest reaches the device and
//! its status comes back; changes, removals and withdrawal; bad manifests;
//! NATS down at start and restarted midway; missing buckets; the agent's own
//! restart; and the binary as an operator would run it.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use fleet_agent::agent::{self, AgentError, Config};
use fleet_agent::process::{Programs, Timings};
use fleet_kv::{Buckets, Connection};
use fleet_model::{AgentManifest, AgentStatus, Device, FileSpec, LinkSpec, ManifestError, ProcessSpec, Resource, ResourceStatus, State};
use fleet_testing::NatsServer;
use tokio::sync::oneshot;

fn config(server: &NatsServer, device: &str, state: &Path) -> Config {
    Config {
        nats: server.settings(device),
        device: device.into(),
        labels: BTreeMap::from([("site".into(), "lyon".into())]),
        trust: fleet_testing::operator_key().public(),
        state: state.to_owned(),
        files: fleet_agent::files::Policy::under([std::env::temp_dir()]),
        programs: Programs::allowing(["sleep", "printf"]).unwrap(),
        heartbeat: Duration::from_millis(400),
        timings: Timings {
            settle: Duration::from_millis(150),
            grace: Duration::from_secs(2),
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(400),
            stable: Duration::from_secs(30),
        },
    }
}

/// An agent run in this process, stopped by sending on the channel.
struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), AgentError>>,
}

fn start(config: Config) -> Running {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(agent::run(config, async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}

async fn buckets(server: &NatsServer) -> Buckets {
    Connection::open(&server.settings("test"), |_| {})
        .await
        .unwrap()
        .create_buckets()
        .await
        .unwrap()
}

/// `manifest` for `device`, signed by the operator, as the operator writes it.
async fn put(buckets: &Buckets, device: &str, manifest: &AgentManifest) {
    put_value(buckets, device, &fleet_testing::signed(device, Some(manifest))).await;
}

/// A manifest's JSON as given, signed by the operator: one the device cannot run.
async fn put_json(buckets: &Buckets, device: &str, manifest: &[u8]) {
    let value = fleet_testing::operator_key().sign_bytes(device, fleet_testing::issued_now(), Some(manifest));
    put_value(buckets, device, &value).await;
}

/// The operator's signed withdrawal: everything it sent is removed.
async fn withdraw(buckets: &Buckets, device: &str) {
    put_value(buckets, device, &fleet_testing::signed(device, None)).await;
}

async fn put_value(buckets: &Buckets, device: &str, value: &[u8]) {
    buckets.manifests.put(device, value.to_vec().into()).await.unwrap();
}

/// Poll the device's status until `done` says so (at most 20 s).
async fn status_until(buckets: &Buckets, device: &str, done: impl Fn(&AgentStatus) -> bool) -> AgentStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut last = None;
    loop {
        if let Ok(Some((bytes, _))) = fleet_kv::read(&buckets.status, device).await {
            let status = AgentStatus::from_json(&bytes).unwrap();
            if done(&status) {
                return status;
            }
            last = Some(status);
        }
        assert!(tokio::time::Instant::now() < deadline, "the status never got there: {last:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn file(name: &str, path: &Path, content: &str, mode: u32) -> Resource {
    Resource::File(FileSpec {
        name: name.into(),
        path: path.to_str().unwrap().into(),
        content: content.into(),
        mode,
    })
}

fn sleeper(name: &str, env: &[(&str, &str)]) -> Resource {
    Resource::Process(ProcessSpec {
        name: name.into(),
        argv: vec!["sleep".into(), "60".into()],
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        restart: Default::default(),
    })
}

fn process(status: &AgentStatus, name: &str) -> fleet_model::ProcessStatus {
    match &status.resources[name] {
        ResourceStatus::Process(p) => p.clone(),
        other => panic!("{name} is not a process: {other:?}"),
    }
}

fn all_ready(status: &AgentStatus, generation: u64) -> bool {
    status.observed_generation == Some(generation)
        && status
            .resources
            .values()
            .all(|r| r.state().is_some_and(|(state, _)| state == State::Ready))
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test]
async fn a_manifest_reaches_the_device_and_its_status_comes_back() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let device_dir = tempfile::tempdir().unwrap();
    let config_path = device_dir.path().join("etc/sensor.toml");
    let agent = start(config(&server, "sensor-1", state.path()));

    // The device registered itself with its labels.
    let registered = loop {
        if let Ok(Some((bytes, _))) = fleet_kv::read(&buckets.devices, "sensor-1").await {
            break Device::from_json(&bytes).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(registered.labels["site"], "lyon");

    let one = AgentManifest::new(
        1,
        vec![
            file("config", &config_path, "rate = 5\n", 0o640),
            sleeper("reader", &[("RATE", "5")]),
        ],
    );
    put(&buckets, "sensor-1", &one).await;
    let status = status_until(&buckets, "sensor-1", |s| all_ready(s, 1)).await;
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), "rate = 5\n");
    assert_eq!(std::fs::metadata(&config_path).unwrap().permissions().mode() & 0o777, 0o640);
    let first = process(&status, "reader").pid.unwrap();
    assert!(running(first));

    // Heartbeats: the status is rewritten while nothing changes.
    let (_, before) = fleet_kv::read(&buckets.status, "sensor-1").await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, after) = fleet_kv::read(&buckets.status, "sensor-1").await.unwrap().unwrap();
    assert!(after > before, "heartbeats move the revision ({before} then {after})");

    // Generation 2: new content, a changed process restarted.
    let two = AgentManifest::new(
        2,
        vec![
            file("config", &config_path, "rate = 9\n", 0o640),
            sleeper("reader", &[("RATE", "9")]),
        ],
    );
    put(&buckets, "sensor-1", &two).await;
    let status = status_until(&buckets, "sensor-1", |s| all_ready(s, 2)).await;
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), "rate = 9\n");
    let second = process(&status, "reader").pid.unwrap();
    assert!(second != first && !running(first) && running(second));

    // A file changed by hand is put back at the next heartbeat.
    std::fs::write(&config_path, "rate = 1000\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(std::fs::read_to_string(&config_path).unwrap(), "rate = 9\n");

    // Generation 3 drops both: the file is removed, the process stopped.
    put(&buckets, "sensor-1", &AgentManifest::new(3, vec![])).await;
    let status = status_until(&buckets, "sensor-1", |s| s.observed_generation == Some(3)).await;
    assert!(status.resources.is_empty());
    assert!(!config_path.exists() && !running(second));

    // Withdrawn: nothing observed any more.
    put(&buckets, "sensor-1", &two).await;
    let status = status_until(&buckets, "sensor-1", |s| all_ready(s, 2)).await;
    let third = process(&status, "reader").pid.unwrap();
    withdraw(&buckets, "sensor-1").await;
    let status = status_until(&buckets, "sensor-1", |s| s.observed_generation.is_none()).await;
    assert!(status.resources.is_empty() && status.error.is_none());
    assert!(!config_path.exists() && !running(third));
    agent.stop().await;
}

fn link(name: &str, path: &Path, target: &Path) -> Resource {
    Resource::Link(LinkSpec {
        name: name.into(),
        path: path.to_str().unwrap().into(),
        target: target.to_str().unwrap().into(),
    })
}

#[tokio::test]
async fn a_link_moves_the_device_from_one_release_to_the_next_and_is_put_back_if_moved() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let device_dir = tempfile::tempdir().unwrap();
    let release = |n: u32| device_dir.path().join(format!("releases/{n}"));
    let current = device_dir.path().join("current");
    let agent = start(config(&server, "sensor-5", state.path()));
    let releases = |link_to: u32| {
        vec![
            file("one", &release(1).join("config"), "v1", 0o644),
            file("two", &release(2).join("config"), "v2", 0o644),
            link("current", &current, &release(link_to)),
        ]
    };
    let one = AgentManifest::new(1, releases(1));
    assert_eq!(one.schema_version, 2, "a manifest with a link is version 2");
    put(&buckets, "sensor-5", &one).await;
    status_until(&buckets, "sensor-5", |s| all_ready(s, 1)).await;
    assert_eq!(std::fs::read_link(&current).unwrap(), release(1));
    assert_eq!(std::fs::read_to_string(current.join("config")).unwrap(), "v1");

    put(&buckets, "sensor-5", &AgentManifest::new(2, releases(2))).await;
    status_until(&buckets, "sensor-5", |s| all_ready(s, 2)).await;
    assert_eq!(std::fs::read_to_string(current.join("config")).unwrap(), "v2");

    // Moved by hand: put back at the next heartbeat.
    std::fs::remove_file(&current).unwrap();
    std::os::unix::fs::symlink(release(1), &current).unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(std::fs::read_link(&current).unwrap(), release(2));

    // One that would point where the device allows no files fails, by name; the rest holds.
    let mut outside = releases(2);
    outside.push(link("etc", &device_dir.path().join("etc"), Path::new("/etc")));
    put(&buckets, "sensor-5", &AgentManifest::new(3, outside)).await;
    let status = status_until(&buckets, "sensor-5", |s| {
        s.observed_generation == Some(3)
            && s.resources
                .get("etc")
                .is_some_and(|r| r.state().is_some_and(|(st, _)| st == State::Failed))
    })
    .await;
    let (_, why) = status.resources["etc"].state().unwrap();
    assert!(why.unwrap().contains("lets links point only under"), "{why:?}");
    assert!(std::fs::symlink_metadata(device_dir.path().join("etc")).is_err());
    assert_eq!(status.resources["current"].state().unwrap().0, State::Ready);

    // Dropped: the agent's link is removed, what it pointed at follows its own resource.
    put(&buckets, "sensor-5", &AgentManifest::new(4, vec![])).await;
    status_until(&buckets, "sensor-5", |s| s.observed_generation == Some(4)).await;
    assert!(std::fs::symlink_metadata(&current).is_err() && !release(2).join("config").exists());
    agent.stop().await;
}

#[tokio::test]
async fn a_manifest_the_agent_cannot_run_is_reported_and_the_device_keeps_running() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let agent = start(config(&server, "sensor-2", state.path()));
    put(&buckets, "sensor-2", &AgentManifest::new(1, vec![sleeper("reader", &[])])).await;
    let status = status_until(&buckets, "sensor-2", |s| all_ready(s, 1)).await;
    let pid = process(&status, "reader").pid.unwrap();

    let unknown_kind = br#"{"schemaVersion":1,"generation":2,"resources":[{"kind":"Container","name":"x","image":"y"}]}"#;
    put_json(&buckets, "sensor-2", unknown_kind).await;
    let status = status_until(&buckets, "sensor-2", |s| s.error.is_some()).await;
    let Some(ManifestError::Malformed { why }) = &status.error else {
        panic!("{:?}", status.error)
    };
    assert!(why.contains("Container"), "{why}");
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(process(&status, "reader").pid, Some(pid), "still running what it ran");

    put_json(&buckets, "sensor-2", br#"{"schemaVersion":3,"generation":3,"resources":[]}"#).await;
    let status = status_until(&buckets, "sensor-2", |s| {
        matches!(s.error, Some(ManifestError::NewerVersion { .. }))
    })
    .await;
    assert!(status.error.unwrap().to_string().contains("update the agent"));

    let relative = br#"{"schemaVersion":1,"generation":4,"resources":[{"kind":"File","name":"x","path":"etc/x","content":""}]}"#;
    put_json(&buckets, "sensor-2", relative).await;
    let status = status_until(&buckets, "sensor-2", |s| matches!(s.error, Some(ManifestError::Invalid { .. }))).await;
    assert!(status.error.unwrap().to_string().contains("must be absolute"));
    assert!(running(pid));

    put_json(&buckets, "sensor-2", b"not json at all").await;
    status_until(&buckets, "sensor-2", |s| matches!(s.error, Some(ManifestError::Malformed { .. }))).await;

    // A good manifest again clears the error.
    put(&buckets, "sensor-2", &AgentManifest::new(5, vec![])).await;
    let status = status_until(&buckets, "sensor-2", |s| s.observed_generation == Some(5)).await;
    assert!(status.error.is_none() && !running(pid));
    agent.stop().await;
}

#[tokio::test]
async fn nats_down_at_start_and_restarted_midway_and_a_missing_bucket_are_waited_out() {
    let mut server = NatsServer::start();
    server.stop();
    let state = tempfile::tempdir().unwrap();
    let agent = start(config(&server, "sensor-3", state.path()));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!agent.task.is_finished(), "an unreachable server is waited for");

    // Up, but without the fleet's buckets: still waiting.
    server.resume();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!agent.task.is_finished());
    let buckets = buckets(&server).await;
    put(&buckets, "sensor-3", &AgentManifest::new(1, vec![sleeper("reader", &[])])).await;
    let status = status_until(&buckets, "sensor-3", |s| all_ready(s, 1)).await;
    let pid = process(&status, "reader").pid.unwrap();

    // The server goes away and comes back: the agent resumes by itself.
    server.stop();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(running(pid), "the device keeps running while NATS is away");
    server.resume();
    let buckets = self::buckets(&server).await;
    put(&buckets, "sensor-3", &AgentManifest::new(2, vec![sleeper("reader", &[("V", "2")])])).await;
    let status = status_until(&buckets, "sensor-3", |s| all_ready(s, 2)).await;
    assert_ne!(process(&status, "reader").pid, Some(pid));
    agent.stop().await;
}

#[tokio::test]
async fn a_restarted_agent_picks_up_without_redoing_finished_work() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let device_dir = tempfile::tempdir().unwrap();
    let path = device_dir.path().join("motd");
    let manifest = AgentManifest::new(1, vec![file("motd", &path, "hello\n", 0o644), sleeper("reader", &[])]);
    put(&buckets, "sensor-4", &manifest).await;
    let agent = start(config(&server, "sensor-4", state.path()));
    let status = status_until(&buckets, "sensor-4", |s| all_ready(s, 1)).await;
    let pid = process(&status, "reader").pid.unwrap();
    let written = std::fs::metadata(&path).unwrap().modified().unwrap();
    agent.stop().await;
    assert!(running(pid), "stopping the agent leaves its processes running");

    buckets.status.purge("sensor-4").await.unwrap();
    let agent = start(config(&server, "sensor-4", state.path()));
    let status = status_until(&buckets, "sensor-4", |s| all_ready(s, 1)).await;
    let reader = process(&status, "reader");
    assert_eq!((reader.pid, reader.restarts), (Some(pid), 0), "adopted, not restarted");
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), written, "not rewritten");
    withdraw(&buckets, "sensor-4").await;
    status_until(&buckets, "sensor-4", |s| s.observed_generation.is_none()).await;
    assert!(!running(pid));
    agent.stop().await;
}

#[tokio::test]
async fn the_binary_refuses_a_wrong_password_and_leaves_its_processes_on_sigterm() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let wrong = secrets.path().join("wrong");
    std::fs::write(&wrong, "guessed-password-41\n").unwrap();
    let trusted = fleet_testing::operator_key().public().to_string();
    let agent_trusting = |password: &Path, key: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_fleet-agent"));
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .args(["--nats", &server.url, "--user", fleet_testing::USER, "--device", "sensor-5"])
            .args(["--allow-program", "sleep"])
            .args(["--label", "site=lyon", "--heartbeat", "1", "--state-dir"])
            .arg(state.path())
            .arg("--password-file")
            .arg(password)
            .args(key.map(|k| ["--manifest-key", k]).into_iter().flatten())
            .stderr(std::process::Stdio::piped());
        command
    };
    let agent = |password: &Path| agent_trusting(password, Some(&trusted));

    // No key to trust: it does not start, and says which setting is missing.
    let out = agent_trusting(&wrong, None).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--manifest-key"), "{stderr}");
    // The operator's private key by mistake: refused, and never repeated.
    let private = fleet_testing::operator_key().to_text();
    let out = agent_trusting(&wrong, Some(private.trim())).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("must stay with the operator") && !stderr.contains(private.trim()),
        "{stderr}"
    );

    let out = agent(&wrong).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refused user `fleet`") && !stderr.contains("guessed-password-41"),
        "{stderr}"
    );

    let right = secrets.path().join("right");
    std::fs::write(&right, format!("{}\n", fleet_testing::PASSWORD)).unwrap();
    let mut child = agent(&right).stderr(std::process::Stdio::null()).spawn().unwrap();
    put(&buckets, "sensor-5", &AgentManifest::new(1, vec![sleeper("reader", &[])])).await;
    let status = status_until(&buckets, "sensor-5", |s| all_ready(s, 1)).await;
    let pid = process(&status, "reader").pid.unwrap();
    std::process::Command::new("kill").arg(child.id().to_string()).status().unwrap();
    assert!(child.wait().unwrap().success(), "SIGTERM is a clean stop");
    assert!(running(pid));
    std::process::Command::new("kill").arg(pid.to_string()).status().unwrap();
}

/// A process whose last output line is 1.1 MB: the device keeps reporting, with the line cut,
/// and what it writes stays far under NATS's maximum payload.
#[tokio::test]
async fn a_process_with_a_huge_output_line_does_not_silence_its_device() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let agent = start(config(&server, "sensor-1", state.path()));
    let shouter = Resource::Process(ProcessSpec {
        name: "shouter".into(),
        argv: vec!["printf".into(), "%1100000s".into(), "end-of-line".into()],
        env: BTreeMap::new(),
        restart: Default::default(),
    });
    put(&buckets, "sensor-1", &AgentManifest::new(1, vec![shouter])).await;
    let status = status_until(&buckets, "sensor-1", |s| {
        s.resources.get("shouter").is_some_and(|r| match r {
            ResourceStatus::Process(p) => p.message.as_deref().is_some_and(|m| m.contains("last output")),
            _ => false,
        })
    })
    .await;
    let message = process(&status, "shouter").message.unwrap();
    assert!(message.contains("… (cut)"), "{message}");
    assert!(message.len() < 2048, "{} bytes", message.len());
    let (bytes, _) = fleet_kv::read(&buckets.status, "sensor-1").await.unwrap().unwrap();
    assert!(bytes.len() <= AgentStatus::MAX_BYTES, "{} bytes", bytes.len());
    agent.stop().await;
}

/// Through a real manifest: files outside the device's roots, over a file that was there before,
/// or through a symbolic link are refused, each with a status that says why; withdrawing the
/// manifest removes only what the agent created.
#[tokio::test]
async fn a_manifest_cannot_make_the_agent_write_where_the_device_does_not_allow() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let (state, device, elsewhere) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    std::fs::write(device.path().join("hosts"), "127.0.0.1 localhost\n").unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), device.path().join("link")).unwrap();
    let mut config = config(&server, "sensor-1", state.path());
    config.files = fleet_agent::files::Policy::under([device.path()]);
    let agent = start(config);
    let manifest = AgentManifest::new(
        1,
        vec![
            file("ours", &device.path().join("app/config"), "rate = 5\n", 0o644),
            file("theirs", &device.path().join("hosts"), "0.0.0.0 everything\n", 0o644),
            file("outside", &elsewhere.path().join("passwd"), "root::0:0::/:/bin/sh\n", 0o644),
            file("linked", &device.path().join("link/passwd"), "root::0:0::/:/bin/sh\n", 0o644),
            file("setuid", &device.path().join("tool"), "#!/bin/true\n", 0o4755),
        ],
    );
    put(&buckets, "sensor-1", &manifest).await;
    let status = status_until(&buckets, "sensor-1", |s| s.observed_generation == Some(1)).await;
    let why = |name: &str| match &status.resources[name] {
        ResourceStatus::File(f) => (f.state, f.message.clone().unwrap_or_default()),
        other => panic!("{other:?}"),
    };
    assert_eq!(why("ours").0, State::Ready);
    for (name, says) in [
        ("theirs", "was there before"),
        ("outside", "allows files only under"),
        ("linked", "symbolic link"),
        ("setuid", "setuid or setgid"),
    ] {
        let (state, message) = why(name);
        assert_eq!(state, State::Failed, "{name}: {message}");
        assert!(message.contains(says), "{name}: {message}");
    }
    assert_eq!(
        std::fs::read_to_string(device.path().join("hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "nothing written outside the roots"
    );
    assert!(!device.path().join("tool").exists());

    withdraw(&buckets, "sensor-1").await;
    status_until(&buckets, "sensor-1", |s| s.resources.is_empty()).await;
    assert!(!device.path().join("app/config").exists(), "what the agent created is removed");
    assert_eq!(
        std::fs::read_to_string(device.path().join("hosts")).unwrap(),
        "127.0.0.1 localhost\n"
    );
    agent.stop().await;
}

/// Only the programs the device allows run, however the manifest spells them: a shell by any
/// name or argument (`sh -ec`, `env bash -c`, a link to a shell, an interpreter) is refused with a
/// status that says what it is and what the device runs; an allowed program runs.
#[tokio::test]
async fn only_the_programs_the_device_allows_run_however_they_are_spelled() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let (state, links) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::os::unix::fs::symlink("/bin/sh", links.path().join("innocent")).unwrap();
    let agent = start(config(&server, "sensor-1", state.path()));
    let argv = |name: &str, argv: &[&str]| {
        Resource::Process(ProcessSpec {
            name: name.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            env: BTreeMap::new(),
            restart: Default::default(),
        })
    };
    let linked = links.path().join("innocent");
    let manifest = AgentManifest::new(
        1,
        vec![
            argv("sh-ec", &["sh", "-ec", "touch /tmp/fleet-pwned"]),
            argv("env", &["env", "bash", "-c", "touch /tmp/fleet-pwned"]),
            argv("linked", &[linked.to_str().unwrap(), "-c", "touch /tmp/fleet-pwned"]),
            argv("python", &["python3", "-c", "open('/tmp/fleet-pwned', 'w')"]),
            argv("allowed", &["sleep", "60"]),
        ],
    );
    put(&buckets, "sensor-1", &manifest).await;
    let status = status_until(&buckets, "sensor-1", |s| {
        s.observed_generation == Some(1) && process(s, "allowed").state == State::Ready
    })
    .await;
    for name in ["sh-ec", "env", "linked", "python"] {
        let p = process(&status, name);
        let message = p.message.unwrap_or_default();
        assert_eq!((p.state, p.pid), (State::Failed, None), "{name}: {message}");
        assert!(message.contains("is not run"), "{name}: {message}");
    }
    let linked_message = process(&status, "linked").message.unwrap();
    assert!(
        linked_message.contains("this device runs only"),
        "the link is followed: {linked_message}"
    );
    assert!(!Path::new("/tmp/fleet-pwned").exists());
    agent.stop().await;
}

/// Someone who can write to NATS but does not hold the operator's key: a manifest signed by
/// another key, one not signed at all, one signed for another device, and an old one put back
/// are each refused with a status that says why, while the device keeps running what it runs
/// (across a restart of the agent, too). A deleted key is not a withdrawal: the device keeps
/// running and says NATS holds no manifest for it. Only the operator's signed withdrawal stops it.
#[tokio::test]
async fn only_what_the_operator_signed_for_this_device_runs() {
    let server = NatsServer::start();
    let buckets = buckets(&server).await;
    let state = tempfile::tempdir().unwrap();
    let agent = start(config(&server, "sensor-1", state.path()));
    let old = fleet_testing::signed("sensor-1", Some(&AgentManifest::new(1, vec![sleeper("reader", &[])])));
    put_value(&buckets, "sensor-1", &old).await;
    status_until(&buckets, "sensor-1", |s| all_ready(s, 1)).await;
    put(&buckets, "sensor-1", &AgentManifest::new(2, vec![sleeper("reader", &[("V", "2")])])).await;
    let status = status_until(&buckets, "sensor-1", |s| all_ready(s, 2)).await;
    let pid = process(&status, "reader").pid.unwrap();

    let attacker = fleet_model::signed::SigningKey::generate().unwrap();
    let evil = AgentManifest::new(9, vec![sleeper("miner", &[])]);
    type Refusal = fn(&ManifestError) -> bool;
    let refused: [(&str, Vec<u8>, Refusal); 4] = [
        (
            "signed by another key",
            attacker.sign("sensor-1", fleet_testing::issued_now(), Some(&evil)),
            |e| matches!(e, ManifestError::Forged { .. }),
        ),
        ("not signed", evil.to_json(), |e| matches!(e, ManifestError::Unsigned)),
        (
            "signed for another device",
            fleet_testing::signed("sensor-2", Some(&evil)),
            |e| matches!(e, ManifestError::OtherDevice { device } if device == "sensor-2"),
        ),
        ("an old one put back", old.clone(), |e| matches!(e, ManifestError::Replayed { .. })),
    ];
    for (what, value, expected) in refused {
        put_value(&buckets, "sensor-1", &value).await;
        let status = status_until(&buckets, "sensor-1", |s| s.error.as_ref().is_some_and(expected)).await;
        assert_eq!(status.observed_generation, Some(2), "{what}: still running generation 2");
        assert_eq!(process(&status, "reader").pid, Some(pid), "{what}: the same process");
        assert!(!status.resources.contains_key("miner"), "{what}");
        assert!(
            status.error.unwrap().to_string().contains("refused") || what == "not signed",
            "{what}"
        );
    }

    // The replay floor survives the agent's restart.
    agent.stop().await;
    let agent = start(config(&server, "sensor-1", state.path()));
    put_value(&buckets, "sensor-1", &old).await;
    let status = status_until(&buckets, "sensor-1", |s| matches!(s.error, Some(ManifestError::Replayed { .. }))).await;
    assert_eq!(process(&status, "reader").pid, Some(pid), "adopted, and the old manifest refused");

    // The key deleted (or the server's data lost): not a withdrawal.
    buckets.manifests.delete("sensor-1").await.unwrap();
    let status = status_until(&buckets, "sensor-1", |s| s.note.is_some()).await;
    assert!(status.note.as_deref().unwrap().contains("still running generation 2"), "{status:?}");
    assert_eq!(process(&status, "reader").pid, Some(pid));
    assert!(running(pid));

    withdraw(&buckets, "sensor-1").await;
    let status = status_until(&buckets, "sensor-1", |s| s.observed_generation.is_none()).await;
    assert!(status.resources.is_empty() && status.error.is_none() && status.note.is_none());
    assert!(!running(pid));
    agent.stop().await;
}

/// On a NATS that knows no password, only the fleet's authority: an agent with its device's
/// own credentials connects, registers, reads its manifest, hears of changes and reports, all
/// within what its credentials allow (anything more would be refused, and the device silent).
#[tokio::test]
async fn an_agent_with_its_own_credentials_does_its_whole_job_within_them() {
    use fleet_kv::identity::{Authority, Role, inbox_prefix};
    let authority = Authority::generate();
    let server = NatsServer::start_trusting(&authority);
    let login = |credentials: &fleet_kv::identity::Credentials, inbox: Option<String>| fleet_kv::Settings {
        url: server.url.clone(),
        login: fleet_kv::Login::Credentials {
            text: credentials.to_text(),
            inbox,
        },
        name: "test".into(),
    };
    let operator = Connection::open(&login(&authority.credentials(&Role::Operator, 0), None), |_| {})
        .await
        .unwrap();
    let buckets = operator.create_buckets().await.unwrap();
    let state = tempfile::tempdir().unwrap();
    let agent = start(Config {
        nats: login(&authority.device("sensor-9").unwrap(), Some(inbox_prefix("sensor-9"))),
        ..config(&server, "sensor-9", state.path())
    });
    for _ in 0..200 {
        if fleet_kv::read(&buckets.devices, "sensor-9").await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(fleet_kv::read(&buckets.devices, "sensor-9").await.unwrap().is_some(), "registered");
    for generation in [1, 2] {
        let manifest = AgentManifest::new(generation, vec![sleeper("reader", &[("G", &generation.to_string())])]);
        put(&buckets, "sensor-9", &manifest).await;
        operator
            .client
            .publish(fleet_model::bucket::changed("sensor-9"), "".into())
            .await
            .unwrap();
        let status = status_until(&buckets, "sensor-9", |s| all_ready(s, generation)).await;
        assert!(status.error.is_none(), "{status:?}");
    }
    agent.stop().await;
}
