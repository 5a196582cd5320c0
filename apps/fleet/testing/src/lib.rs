//! A real `nats-server` (v2.15.1, installed by `scripts/install-nats-server`
//! into `target/tools`, or the one `FLEET_NATS_SERVER` names) for
//! the fleet's tests: JetStream on a temporary store, user/password auth, a
//! free loopback port picked by the server itself (`-p -1`, read back from
//! its ports file). It can be stopped and resumed on the same port and store,
//! as an outage would, and is stopped when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "fleet";
pub const PASSWORD: &str = "n4ts-test-pass";

/// The operator's signing key for one test process (made on first use);
/// devices of the tests trust its public half.
pub fn operator_key() -> &'static fleet_model::signed::SigningKey {
    static KEY: std::sync::OnceLock<fleet_model::signed::SigningKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| fleet_model::signed::SigningKey::generate().expect("the system's random source works"))
}

/// A time to issue a manifest at, as the operator would: later than every
/// one this process issued before.
pub fn issued_now() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default();
    let mut last = LAST.load(Ordering::SeqCst);
    loop {
        let next = now.max(last + 1);
        match LAST.compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// `manifest` for `device`, signed by [`operator_key`] now (`None`: a withdrawal).
pub fn signed(device: &str, manifest: Option<&fleet_model::AgentManifest>) -> Vec<u8> {
    operator_key().sign(device, issued_now(), manifest)
}

#[derive(Debug)]
pub struct NatsServer {
    /// `nats://127.0.0.1:<port>`
    pub url: String,
    port: Option<u16>,
    monitor: Option<u16>,
    child: Option<Child>,
    dir: tempfile::TempDir,
    runs: u32,
    auth: bool,
    jetstream: bool,
    /// A node of a cluster ([`Nats::cluster`]): its name, its route port, and
    /// the route ports of every node.
    cluster: Option<(String, u16, Vec<u16>)>,
    /// A configuration file of its own (operator mode: [`NatsServer::start_trusting`]).
    config: Option<PathBuf>,
}

/// The fleet's NATS in a test: one server, or a cluster of several (real
/// clustering on loopback, JetStream replicated). Clients are given every
/// node's address.
#[derive(Debug)]
pub struct Nats {
    pub nodes: Vec<NatsServer>,
}

impl Nats {
    pub fn single() -> Self {
        Self::start(1, None)
    }

    /// `n` servers routed to each other as cluster `fleet`, each with
    /// JetStream; returns once each serves clients.
    pub fn cluster(n: usize) -> Self {
        Self::start(n, None)
    }

    /// `n` servers (a cluster when more than one) that trust `authority`
    /// (NATS's decentralized auth, [`NatsServer::start_trusting`]): every
    /// party logs in with credentials of its own.
    pub fn trusting(n: usize, authority: &fleet_kv::identity::Authority) -> Self {
        Self::start(n, Some(authority))
    }

    fn start(n: usize, authority: Option<&fleet_kv::identity::Authority>) -> Self {
        let routes: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let nodes = (0..n)
            .map(|i| {
                let mut node = NatsServer::unstarted(authority.is_none(), true);
                if n > 1 {
                    node.cluster = Some((format!("n{i}"), routes[i], routes.clone()));
                }
                if let Some(authority) = authority {
                    node.trust(authority, &Default::default());
                }
                node
            })
            .collect::<Vec<_>>();
        // Started side by side: a node waits for its peers to elect a JetStream leader.
        let nodes: Vec<NatsServer> = std::thread::scope(|scope| {
            let started: Vec<_> = nodes
                .into_iter()
                .map(|mut node| {
                    scope.spawn(move || {
                        node.resume();
                        node
                    })
                })
                .collect();
            started.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Serving clients is not serving JetStream: wait until the nodes have elected the
        // leader that places streams, as a client would find out by being refused.
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in nodes.iter().filter(|_| n > 1) {
            loop {
                let jsz = node.monitoring("/jsz");
                if jsz["meta_cluster"]["leader"].as_str().is_some_and(|l| !l.is_empty()) {
                    break;
                }
                assert!(Instant::now() < deadline, "the cluster elected no JetStream leader in 30 s: {jsz}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Self { nodes }
    }

    /// Settings to connect as the fleet's user, to any of the nodes.
    pub fn settings(&self, name: &str) -> fleet_kv::Settings {
        fleet_kv::Settings {
            url: self.url(),
            ..self.nodes[0].settings(name)
        }
    }

    /// Settings to connect with `credentials` to any of the nodes (`inbox`:
    /// a device's own).
    pub fn login(&self, credentials: &fleet_kv::identity::Credentials, inbox: Option<String>, name: &str) -> fleet_kv::Settings {
        fleet_kv::Settings {
            url: self.url(),
            login: fleet_kv::Login::Credentials {
                text: credentials.to_text(),
                inbox,
            },
            name: name.into(),
        }
    }

    /// Every node's address, as a client is given them.
    pub fn url(&self) -> String {
        self.nodes.iter().map(|n| n.url.as_str()).collect::<Vec<_>>().join(",")
    }

    /// What the first node's monitoring port answers at `path`.
    pub fn monitoring(&self, path: &str) -> serde_json::Value {
        self.nodes[0].monitoring(path)
    }

    /// The counters of every node, summed: `in_msgs`, `out_msgs`.
    pub fn varz(&self) -> serde_json::Value {
        let sum = |field: &str| self.nodes.iter().map(|n| n.varz()[field].as_u64().unwrap_or_default()).sum::<u64>();
        serde_json::json!({"in_msgs": sum("in_msgs"), "out_msgs": sum("out_msgs")})
    }

    /// Every node loses what it stored, as [`NatsServer::wipe`].
    pub fn wipe(&mut self) {
        for node in &mut self.nodes {
            node.stop();
        }
        std::thread::scope(|scope| {
            for node in &mut self.nodes {
                scope.spawn(move || node.wipe());
            }
        });
    }
}

/// A port nothing listens on now (the system's choice; released at once).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl NatsServer {
    pub fn start() -> Self {
        Self::start_with(true, true)
    }

    /// A server as misconfigured as asked: without auth, or without JetStream.
    pub fn start_with(auth: bool, jetstream: bool) -> Self {
        let mut server = Self::unstarted(auth, jetstream);
        server.resume();
        server
    }

    fn unstarted(auth: bool, jetstream: bool) -> Self {
        Self {
            url: String::new(),
            port: None,
            monitor: None,
            child: None,
            dir: tempfile::tempdir().unwrap(),
            runs: 0,
            auth,
            jetstream,
            cluster: None,
            config: None,
        }
    }

    /// A server that trusts `authority` (NATS's decentralized auth): it
    /// knows no user and no password, only the operator's and the accounts'
    /// JWTs, and admits whoever connects with credentials they signed.
    pub fn start_trusting(authority: &fleet_kv::identity::Authority) -> Self {
        Self::start_trusting_with(authority, true)
    }

    /// A server that trusts `authority`, with or without JetStream.
    pub fn start_trusting_with(authority: &fleet_kv::identity::Authority, jetstream: bool) -> Self {
        let mut server = Self::unstarted(false, jetstream);
        server.trust(authority, &Default::default());
        server.resume();
        server
    }

    /// A server that trusts `authority` and starts from an account listing `revoked`.
    pub fn start_trusting_revoking(authority: &fleet_kv::identity::Authority, revoked: &fleet_kv::identity::Revocations) -> Self {
        let mut server = Self::unstarted(false, true);
        server.trust(authority, revoked);
        server.resume();
        server
    }

    fn trust(&mut self, authority: &fleet_kv::identity::Authority, revoked: &fleet_kv::identity::Revocations) {
        let accounts = self.dir.path().join("accounts");
        let config = self.dir.path().join("server.conf");
        std::fs::write(&config, authority.server_config(accounts.to_str().unwrap(), revoked)).unwrap();
        self.config = Some(config);
    }

    /// Settings to connect as the fleet's user.
    pub fn settings(&self, name: &str) -> fleet_kv::Settings {
        fleet_kv::Settings {
            url: self.url.clone(),
            login: fleet_kv::Login::Password {
                user: USER.into(),
                password: PASSWORD.into(),
            },
            name: name.into(),
        }
    }

    /// Stop the server (its store stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stop it, lose everything it stored, and start it again on its port:
    /// a NATS restarted without its volume.
    pub fn wipe(&mut self) {
        self.stop();
        if self.store().exists() {
            std::fs::remove_dir_all(self.store()).unwrap();
        }
        self.resume();
    }

    /// Start it (again) on its port and store; returns once it serves
    /// clients with JetStream.
    pub fn resume(&mut self) {
        self.runs += 1;
        let log = self.dir.path().join(format!("nats-{}.log", self.runs));
        let ports = self.dir.path().join("ports");
        std::fs::create_dir_all(&ports).unwrap();
        let port = self.port.map_or("-1".to_owned(), |p| p.to_string());
        let monitor = self.monitor.map_or("-1".to_owned(), |p| p.to_string());
        // `setpriv --pdeathsig KILL` execs the server with a parent death
        // signal, so it dies with the test process even when a static that
        // is never dropped holds it (the fleet's e2e stack).
        let binary = server_binary();
        assert!(
            binary.exists(),
            "{} is missing: run scripts/install-nats-server (scripts/test does)",
            binary.display()
        );
        let mut command = Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--"]).arg(&binary);
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        command.args(["-a", "127.0.0.1", "-p", &port, "-m", &monitor]);
        if self.jetstream {
            command.args(["-js", "-sd"]).arg(self.dir.path().join("store"));
        }
        if self.auth {
            command.args(["--user", USER, "--pass", PASSWORD]);
        }
        if let Some((name, port, routes)) = &self.cluster {
            let routes: Vec<String> = routes.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect();
            command
                .args(["--server_name", name, "--cluster_name", "fleet"])
                .args(["--cluster", &format!("nats://127.0.0.1:{port}")])
                .args(["--routes", &routes.join(",")]);
        }
        command
            .arg("--ports_file_dir")
            .arg(&ports)
            .args(["-l"])
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = spawn_for_the_process(command).expect("nats-server is installed (run scripts/install-nats-server)");
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Server is ready") {
                break;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("nats-server exited ({status}) before it was ready:\n{text}");
            }
            assert!(Instant::now() < deadline, "nats-server was not ready within 20 s:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.port.is_none() {
            let file = ports.join(format!("nats-server_{pid}.ports"));
            let port = read_port(&file, "nats");
            self.port = Some(port);
            self.monitor = Some(read_port(&file, "monitoring"));
            self.url = format!("nats://127.0.0.1:{port}");
        }
    }

    /// The client port, as a socket address.
    pub fn client_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port.expect("started")))
    }

    /// The monitoring endpoint (`/healthz`, `/varz`).
    pub fn monitor_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.monitor.expect("started")))
    }

    /// The server's counters (`/varz` of its monitoring port): `in_msgs`,
    /// `out_msgs`, `connections`, …
    pub fn varz(&self) -> serde_json::Value {
        self.monitoring("/varz")
    }

    /// What the monitoring port answers at `path` (`/varz`, `/jsz?consumers=true`, …).
    pub fn monitoring(&self, path: &str) -> serde_json::Value {
        use std::io::{Read as _, Write as _};
        let port = self.monitor.expect("started");
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {response}"))
    }

    /// Where the server's store lives.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

/// Spawn `command` from a thread that lives as long as the process: a
/// parent death signal fires when the spawning *thread* ends, and a test's
/// thread ends with the test.
fn spawn_for_the_process(command: Command) -> std::io::Result<Child> {
    type Job = (Command, std::sync::mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<std::sync::Mutex<std::sync::mpsc::Sender<Job>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        std::thread::spawn(move || {
            for (mut command, reply) in queue {
                let _ = reply.send(command.spawn());
            }
            // The sender lives in a static: this loop never ends.
        });
        std::sync::Mutex::new(jobs)
    });
    let (reply, answer) = std::sync::mpsc::channel();
    spawner
        .lock()
        .unwrap()
        .send((command, reply))
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    answer.recv().map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

fn server_binary() -> PathBuf {
    std::env::var_os("FLEET_NATS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../target/tools/nats-server/nats-server"))
}

/// A port from the server's ports file, once the server has written it whole.
fn read_port(path: &Path, which: &str) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let port = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|ports| ports[which][0].as_str().and_then(|url| url.rsplit(':').next()?.parse().ok()));
        if let Some(port) = port {
            return port;
        }
        assert!(Instant::now() < deadline, "no {which} port in {}: {text:?}", path.display());
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
