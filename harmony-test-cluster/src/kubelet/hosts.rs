//! The `/etc/hosts` of the containers that run for real. The test cluster has no DNS add-on, so
//! the kubelet lists in that file what a cluster's DNS answers for the pods of a headless
//! Service: for every pod of the namespace that has a `spec.hostname`, a `spec.subdomain` and
//! an IP (a StatefulSet's pods: their name, and the StatefulSet's `serviceName`), the names
//! `<hostname>.<subdomain>.<namespace>.svc.cluster.local`, `<hostname>.<subdomain>.<namespace>.svc`
//! and `<hostname>.<subdomain>`. A pod that is not there (not yet, or no more) is not listed, as
//! DNS would not answer for it.
//!
//! The file is rewritten in every running root of a namespace when the namespace's pods change
//! (one comes, goes, or has another IP), atomically: a reader (Go's resolver re-reads the file
//! when its modification time or size changes) sees the old file or the new one, never half.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::{lock, util};

/// The cluster's DNS domain.
const CLUSTER_DOMAIN: &str = "cluster.local";

/// A pod that has names in its namespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Peer {
    pub hostname: String,
    pub subdomain: String,
    pub ip: String,
}

/// The lines of `/etc/hosts` that name the pods of `namespace`, one line per pod.
fn peer_lines(namespace: &str, peers: &[Peer]) -> String {
    let mut peers = peers.to_vec();
    peers.sort();
    peers
        .iter()
        .map(|p| {
            let name = format!("{}.{}", p.hostname, p.subdomain);
            format!("{}\t{name}.{namespace}.svc.{CLUSTER_DOMAIN} {name}.{namespace}.svc {name}\n", p.ip)
        })
        .collect()
}

/// A container's `/etc/hosts`.
#[derive(Debug)]
struct File {
    namespace: String,
    /// The lines about the container itself (`localhost`, its hostname), written first.
    own: String,
    /// What the file holds now.
    written: String,
}

#[derive(Debug, Default)]
struct State {
    /// The lines naming each namespace's pods.
    names: HashMap<String, String>,
    /// The files kept, by root.
    files: HashMap<PathBuf, File>,
}

/// The `/etc/hosts` of every root that runs, kept listing the pods of its namespace.
#[derive(Debug, Default)]
pub(crate) struct Hosts {
    state: Mutex<State>,
}

impl Hosts {
    /// Writes the `/etc/hosts` of a container of `namespace` whose root is `root`: its `own`
    /// lines, then the names of the namespace's pods; kept current until [`Hosts::forget`].
    pub fn furnish(&self, namespace: &str, root: &Path, own: String) -> Result<(), HostsError> {
        let mut state = lock(&self.state);
        let content = format!("{own}{}", state.names.get(namespace).map_or("", String::as_str));
        write(root, &content)?;
        state.files.insert(
            root.to_path_buf(),
            File {
                namespace: namespace.to_owned(),
                own,
                written: content,
            },
        );
        Ok(())
    }

    /// Stops keeping the files of the roots under `dir` (its pod stopped): nothing is written
    /// there any more.
    pub fn forget(&self, dir: &Path) {
        lock(&self.state).files.retain(|root, _| !root.starts_with(dir));
    }

    /// The pods that have names now, by namespace (a namespace left out has none): every file
    /// whose content changes is rewritten. A file that cannot be written is tried again on the
    /// next call; why it failed goes to stderr (no pod status says it).
    pub fn update(&self, peers: &BTreeMap<String, Vec<Peer>>) {
        let mut state = lock(&self.state);
        state.names = peers
            .iter()
            .map(|(namespace, peers)| (namespace.clone(), peer_lines(namespace, peers)))
            .collect();
        let State { names, files } = &mut *state;
        for (root, file) in files.iter_mut() {
            let content = format!("{}{}", file.own, names.get(&file.namespace).map_or("", String::as_str));
            if content == file.written {
                continue;
            }
            match write(root, &content) {
                Ok(()) => file.written = content,
                Err(e) => eprintln!("harmony-test-cluster: the kubelet {e}"),
            }
        }
    }
}

/// Why a container's `/etc/hosts` could not be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostsError {
    #[error("cannot write {root}/etc/hosts: /etc is {what} in the container's root, and a write through it could leave the root")]
    NotADirectory { root: String, what: &'static str },
    #[error("cannot write {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `root`'s `/etc/hosts` by `content` at once: a file of its own in the same
/// directory, renamed over it. Never through a symbolic link at `/etc`, which would lead out
/// of the root.
fn write(root: &Path, content: &str) -> Result<(), HostsError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let etc = root.join("etc");
    let meta = fs::symlink_metadata(&etc).map_err(|source| HostsError::Io {
        path: etc.display().to_string(),
        source,
    })?;
    if !meta.is_dir() {
        let what = if meta.file_type().is_symlink() {
            "a symbolic link"
        } else {
            "a file"
        };
        return Err(HostsError::NotADirectory {
            root: root.display().to_string(),
            what,
        });
    }
    let temporary = etc.join(format!(".hosts.{}", util::random_suffix(8)));
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| HostsError::Io { path, source }
    };
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temporary)
        .and_then(|mut f| f.write_all(content.as_bytes()))
        .map_err(io(&temporary))
        .and_then(|()| fs::rename(&temporary, etc.join("hosts")).map_err(io(&etc.join("hosts"))));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(hostname: &str, subdomain: &str, ip: &str) -> Peer {
        Peer {
            hostname: hostname.into(),
            subdomain: subdomain.into(),
            ip: ip.into(),
        }
    }

    fn root(dir: &Path, name: &str) -> PathBuf {
        let root = dir.join(name).join("rootfs");
        fs::create_dir_all(root.join("etc")).unwrap();
        root
    }

    fn hosts_of(root: &Path) -> String {
        fs::read_to_string(root.join("etc/hosts")).unwrap()
    }

    #[test]
    fn names_each_pod_as_dns_answers_for_a_headless_services_pods() {
        let lines = peer_lines("shop", &[peer("db-1", "db", "10.254.0.6"), peer("db-0", "db", "10.254.0.2")]);
        assert_eq!(
            lines,
            "10.254.0.2\tdb-0.db.shop.svc.cluster.local db-0.db.shop.svc db-0.db\n\
             10.254.0.6\tdb-1.db.shop.svc.cluster.local db-1.db.shop.svc db-1.db\n"
        );
        assert_eq!(peer_lines("shop", &[]), "");
    }

    #[test]
    fn every_root_of_a_namespace_lists_its_pods_after_its_own_lines() {
        let scratch = tempfile::tempdir().unwrap();
        let (a, b, other) = (root(scratch.path(), "a"), root(scratch.path(), "b"), root(scratch.path(), "other"));
        let hosts = Hosts::default();
        hosts.furnish("shop", &a, "10.254.0.2\tdb-0\n".into()).unwrap();
        assert_eq!(hosts_of(&a), "10.254.0.2\tdb-0\n", "no pod is named yet");

        let one = BTreeMap::from([("shop".to_owned(), vec![peer("db-0", "db", "10.254.0.2")])]);
        hosts.update(&one);
        let db0 = "10.254.0.2\tdb-0.db.shop.svc.cluster.local db-0.db.shop.svc db-0.db\n";
        assert_eq!(hosts_of(&a), format!("10.254.0.2\tdb-0\n{db0}"));

        // A root furnished later starts with the names there are.
        hosts.furnish("shop", &b, "10.254.0.6\tdb-1\n".into()).unwrap();
        hosts.furnish("web", &other, "10.254.0.10\tweb-0\n".into()).unwrap();
        assert_eq!(hosts_of(&b), format!("10.254.0.6\tdb-1\n{db0}"));
        assert_eq!(hosts_of(&other), "10.254.0.10\tweb-0\n", "another namespace's pods are not named");

        // db-0 comes back at another address, db-1 is named: both roots say so.
        let two = BTreeMap::from([(
            "shop".to_owned(),
            vec![peer("db-0", "db", "10.254.0.14"), peer("db-1", "db", "10.254.0.6")],
        )]);
        hosts.update(&two);
        let names = "10.254.0.14\tdb-0.db.shop.svc.cluster.local db-0.db.shop.svc db-0.db\n\
                     10.254.0.6\tdb-1.db.shop.svc.cluster.local db-1.db.shop.svc db-1.db\n";
        assert_eq!(hosts_of(&a), format!("10.254.0.2\tdb-0\n{names}"));
        assert_eq!(hosts_of(&b), format!("10.254.0.6\tdb-1\n{names}"));

        // A pod gone is no longer named; a forgotten root is no longer written.
        hosts.forget(&scratch.path().join("a"));
        hosts.update(&BTreeMap::new());
        assert_eq!(hosts_of(&b), "10.254.0.6\tdb-1\n");
        assert_eq!(hosts_of(&a), format!("10.254.0.2\tdb-0\n{names}"), "forgotten");
        let left: Vec<_> = fs::read_dir(b.join("etc")).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["hosts"], "no temporary file is left behind");
    }

    #[test]
    fn never_writes_through_a_symbolic_link_at_etc() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = scratch.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        let root = scratch.path().join("rootfs");
        fs::create_dir_all(&root).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("etc")).unwrap();
        let refused = Hosts::default()
            .furnish("shop", &root, "127.0.0.1\tlocalhost\n".into())
            .unwrap_err()
            .to_string();
        assert!(refused.contains("/etc is a symbolic link"), "{refused}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "nothing written outside the root");
    }
}
