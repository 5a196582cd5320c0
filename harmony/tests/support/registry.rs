//! A real OCI distribution registry (Debian's `docker-registry`) on a free
//! loopback port, with its own storage, stopped when dropped.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Registry {
    pub address: String,
    pub storage: PathBuf,
    child: Option<Child>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

pub const USER: &str = "harmony";
pub const PASSWORD: &str = "s3cret-registry-pass";

/// A free loopback port no other registry of this test process was given:
/// the kernel may hand a just-released port out again, and two registries
/// racing for one port leave a test talking to its neighbour's.
fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

impl Registry {
    /// A registry that accepts anyone.
    pub fn anonymous() -> Self {
        Self::start(false)
    }

    /// A registry that needs `USER` / `PASSWORD` (bcrypt htpasswd).
    pub fn with_auth() -> Self {
        Self::start(true)
    }

    fn start(auth: bool) -> Self {
        // A port taken by another program between our check and the
        // registry's bind makes it exit at once: try another.
        for _ in 0..5 {
            let mut registry = Self::configure(auth);
            if registry.resume() {
                return registry;
            }
        }
        panic!("docker-registry could not listen on a free loopback port in 5 tries");
    }

    fn configure(auth: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
            storage.display()
        );
        if auth {
            let htpasswd = dir.path().join("htpasswd");
            let status = Command::new("htpasswd")
                .args(["-B", "-b", "-c"])
                .arg(&htpasswd)
                .args([USER, PASSWORD])
                .stderr(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "htpasswd failed");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: harmony-tests\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        Self {
            address,
            storage,
            child: None,
            config: config_path,
            _dir: dir,
        }
    }

    /// Stop the server (its storage stays), as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it (again) on its address and storage; false when the server
    /// exited instead of listening (its port was taken).
    pub fn resume(&mut self) -> bool {
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry is installed (scripts/test installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                self.child = None;
                return false;
            }
            if std::net::TcpStream::connect(&self.address).is_ok() {
                // Something listens; make sure it is our server, not a
                // neighbour that holds the port.
                std::thread::sleep(Duration::from_millis(50));
                let exited = matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(Some(_))));
                if exited {
                    self.child = None;
                }
                return !exited;
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {} within 10 s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The tags the registry holds for `repository`, read from its storage.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        let dir = self
            .storage
            .join("docker/registry/v2/repositories")
            .join(repository)
            .join("_manifests/tags");
        let mut tags: Vec<String> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// How many blobs the registry stores.
    pub fn blob_count(&self) -> usize {
        let mut n = 0;
        let mut stack = vec![self.storage.join("docker/registry/v2/blobs")];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                } else if e.file_name() == "data" {
                    n += 1;
                }
            }
        }
        n
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
