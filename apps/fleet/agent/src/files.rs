//! `File` resources: a file with exactly this content and mode, where the
//! device allows it.
//!
//! Idempotent: a file that already has the content and the mode is not
//! touched (its modification time stays). Atomic: new content is written to
//! a temporary file in the same directory, synced, given its mode, then
//! renamed over the old one, so a reader sees the old file or the new one,
//! never half of it, and a crash leaves no partial file behind.
//!
//! Safe, whatever the manifest says ([`Policy`]): a file is written only under
//! the directories the device allows (`--file-root`), never through a
//! symbolic link, never with the setuid or setgid bit unless the device
//! allows it, and never over a file the agent did not create. The agent
//! records what it created (`<state>/files-created.json`, [`Created`]) and
//! removes only that: a file that was there before is never deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Component, Path, PathBuf};

use fleet_model::{FileSpec, FileStatus, Resource, ResourceStatus, State};

use crate::reconcile::{Log, Reconciler, Reconciling};

/// The files of one device, as a [`Reconciler`]: a file a manifest no
/// longer names is removed (if the agent created it), one changed on the
/// device is put back at the next heartbeat.
pub type Files = AtPaths<FileSpec>;

/// A kind of resource the agent makes at a path under the device's file
/// roots (a file, a link): made by its own rules, and removed only if the
/// agent made it ([`Created`]).
pub trait AtPath: Clone + PartialEq + Send + Sync + 'static {
    /// Its name in the agent's log: `file`, `link`.
    const KIND: &'static str;
    /// Where the paths the agent made of this kind are recorded, in the state directory.
    const RECORD: &'static str;
    /// Its status.
    type Status: Clone + Send + Sync + std::fmt::Debug;
    /// The resources of this kind among a manifest's.
    fn of(resource: &Resource) -> Option<&Self>;
    fn name(&self) -> &str;
    fn path(&self) -> &str;
    /// Make the device hold it, if `policy` allows; whether anything was written.
    fn make(&self, policy: &Policy, created: &mut Created) -> (Self::Status, bool);
    /// Remove it, if the agent made it.
    fn remove(&self, policy: &Policy, created: &mut Created) -> Result<(), String>;
    fn report(status: &Self::Status) -> ResourceStatus;
}

/// What the agent makes of one kind at paths, as a [`Reconciler`]: what a
/// manifest no longer names is removed (if the agent made it), what changed
/// on the device is put back at the next heartbeat.
#[derive(Debug)]
pub struct AtPaths<K: AtPath> {
    policy: Policy,
    /// Where [`Created`] is kept.
    record: PathBuf,
    created: Created,
    /// Those of the manifest last reconciled.
    held: Vec<K>,
    statuses: BTreeMap<String, K::Status>,
    log: Log,
}

impl<K: AtPath> AtPaths<K> {
    /// What `policy` allows of this kind, with what an earlier run made, kept in `state`.
    pub fn new(state: &Path, policy: Policy, log: Log) -> Self {
        let record = state.join(K::RECORD);
        Self {
            policy,
            created: Created::load(&record),
            record,
            held: Vec::new(),
            statuses: BTreeMap::new(),
            log,
        }
    }

    /// What [`Reconciler::reconcile`] does, at once.
    pub(crate) fn hold(&mut self, desired: &[Resource]) {
        let wanted: Vec<&K> = desired.iter().filter_map(K::of).collect();
        let before = self.created.clone();
        for old in &self.held {
            if !wanted.iter().any(|new| new.path() == old.path())
                && let Err(why) = old.remove(&self.policy, &mut self.created)
            {
                self.log.say(why);
            }
        }
        let mut statuses = BTreeMap::new();
        for one in &wanted {
            let (status, written) = one.make(&self.policy, &mut self.created);
            if written && self.held.contains(one) {
                self.log
                    .say(format_args!("{} `{}` had changed on the device: put back", K::KIND, one.path()));
            }
            statuses.insert(one.name().to_owned(), status);
        }
        self.statuses = statuses;
        self.held = wanted.into_iter().cloned().collect();
        if self.created != before
            && let Err(e) = self.created.save(&self.record)
        {
            self.log.say(format_args!("cannot record the {}s it made: {e}", K::KIND));
        }
    }
}

impl<K: AtPath> Reconciler for AtPaths<K> {
    fn reconcile<'a>(&'a mut self, desired: &'a [Resource]) -> Reconciling<'a> {
        Box::pin(async move { self.hold(desired) })
    }

    fn statuses(&self) -> Vec<(String, ResourceStatus)> {
        self.statuses.iter().map(|(name, s)| (name.clone(), K::report(s))).collect()
    }
}

impl AtPath for FileSpec {
    const KIND: &'static str = "file";
    const RECORD: &'static str = "files-created.json";
    type Status = FileStatus;

    fn of(resource: &Resource) -> Option<&Self> {
        match resource {
            Resource::File(f) => Some(f),
            _ => None,
        }
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn path(&self) -> &str {
        &self.path
    }

    fn make(&self, policy: &Policy, created: &mut Created) -> (FileStatus, bool) {
        let (status, change) = reconcile(self, policy, created);
        (status, change != Change::None)
    }

    fn remove(&self, policy: &Policy, created: &mut Created) -> Result<(), String> {
        remove(self, policy, created)
    }

    fn report(status: &FileStatus) -> ResourceStatus {
        ResourceStatus::File(status.clone())
    }
}

/// Where and how the fleet may write files on this device.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// The directories files may be written under, as a manifest names them;
    /// none: no files at all.
    pub roots: Vec<PathBuf>,
    /// Whether a file may carry the setuid or setgid bit.
    pub allow_setid: bool,
    /// Where the device's filesystem is seen from the agent: a manifest's
    /// `/etc/x` is `<host>/etc/x` (an agent in a container with the host's
    /// filesystem mounted; each simulated device of a test). `None`: `/`.
    pub host: Option<PathBuf>,
}

impl Policy {
    /// Files anywhere under `roots`, without setuid or setgid bits.
    pub fn under(roots: impl IntoIterator<Item = impl Into<PathBuf>>) -> Self {
        Self {
            roots: roots.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// The same, with the device's filesystem seen under `host`.
    pub fn on_host(mut self, host: impl Into<PathBuf>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// Where the agent finds manifest path `path` (absolute).
    pub(crate) fn seen(&self, path: &Path) -> PathBuf {
        match &self.host {
            Some(host) => host.join(path.strip_prefix("/").unwrap_or(path)),
            None => path.to_path_buf(),
        }
    }

    /// Where the agent finds `path`, something it made, to remove it: `None`
    /// if the path is no longer one it may write (nothing of it to remove);
    /// an error if a directory on the way has become a symbolic link since,
    /// which the agent does not go through.
    pub(crate) fn to_remove(&self, path: &str) -> Result<Option<PathBuf>, String> {
        let Ok((root, below)) = self.place(Path::new(path)) else {
            return Ok(None);
        };
        let mut at = self.seen(root);
        for part in &below[..below.len() - 1] {
            at.push(part);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(format!(
                    "`{path}` is not removed: `{}` has become a symbolic link, which the agent does not go through",
                    at.display()
                ));
            }
        }
        Ok(Some(at.join(below[below.len() - 1])))
    }

    /// The root `path` lies under, and the components below it; an error that
    /// says why the file may not be written there.
    pub(crate) fn place<'p>(&self, path: &'p Path) -> Result<(&Path, Vec<Component<'p>>), String> {
        if self.roots.is_empty() {
            return Err(format!(
                "`{}` is not written: this device allows no files (its agent is started without `--file-root`)",
                path.display()
            ));
        }
        if path.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
            return Err(format!("`{}` is not written: its path has `.` or `..` in it", path.display()));
        }
        self.roots
            .iter()
            .find_map(|root| {
                path.strip_prefix(root)
                    .ok()
                    .map(|rest| (root.as_path(), rest.components().collect::<Vec<_>>()))
            })
            .filter(|(_, below)| !below.is_empty())
            .ok_or_else(|| {
                let roots: Vec<String> = self.roots.iter().map(|r| format!("`{}`", r.display())).collect();
                format!(
                    "`{}` is not written: this device allows files only under {}",
                    path.display(),
                    roots.join(", ")
                )
            })
    }
}

/// The files (or links) the agent created, by path: the only ones it ever
/// replaces or removes. Kept in the state directory (`files-created.json`,
/// `links-created.json`), so a restarted agent knows them.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Created(BTreeSet<String>);

impl Created {
    /// What `record` holds; nothing if it holds nothing readable.
    pub fn load(record: &Path) -> Self {
        fs::read(record)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Write this set to `record`.
    pub fn save(&self, record: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        write_atomically(record, &bytes, 0o600)
    }

    pub fn contains(&self, path: &str) -> bool {
        self.0.contains(path)
    }

    /// Recorded before the path is made: a crash between the two leaves a
    /// record of nothing, which is harmless; the other order could leave
    /// something the agent made and would never remove. True if it is new.
    pub(crate) fn insert(&mut self, path: &str) -> bool {
        self.0.insert(path.to_owned())
    }

    pub(crate) fn remove(&mut self, path: &str) {
        self.0.remove(path);
    }
}

/// What reconciling did, besides the status it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The file was already as specified.
    None,
    /// Only its mode was changed.
    Mode,
    /// Its content was (re)written.
    Content,
}

/// Make `spec.path` hold `spec.content` with `spec.mode`, if `policy` allows
/// it and the file is the agent's to write (a new one is recorded in `created`).
pub fn reconcile(spec: &FileSpec, policy: &Policy, created: &mut Created) -> (FileStatus, Change) {
    match apply(spec, policy, created) {
        Ok(change) => (
            FileStatus {
                state: State::Ready,
                message: None,
            },
            change,
        ),
        Err(why) => (
            FileStatus {
                state: State::Failed,
                message: Some(why),
            },
            Change::None,
        ),
    }
}

fn apply(spec: &FileSpec, policy: &Policy, created: &mut Created) -> Result<Change, String> {
    let path = Path::new(&spec.path);
    let mode = spec.mode & 0o7777;
    if mode & 0o6000 != 0 && !policy.allow_setid {
        return Err(format!(
            "`{}` is not written: mode {mode:o} sets the setuid or setgid bit, which this device does not allow",
            spec.path
        ));
    }
    let (root, below) = policy.place(path)?;
    let dir = directories(&policy.seen(root), &below[..below.len() - 1])?;
    let path = dir.join(below[below.len() - 1]);
    match fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(format!("`{}` is not written: it is a symbolic link", spec.path));
        }
        Ok(meta) if !meta.is_file() => return Err(format!("`{}` is not written: it is not a regular file", spec.path)),
        Ok(_) if !created.contains(&spec.path) => {
            return Err(format!(
                "`{}` is not written: it was there before the fleet's agent wrote it, and the agent leaves such files alone (remove it, or choose another path)",
                spec.path
            ));
        }
        Ok(meta) => {
            if fs::read(&path).is_ok_and(|existing| existing == spec.content.as_bytes()) {
                if meta.permissions().mode() & 0o7777 == mode {
                    return Ok(Change::None);
                }
                fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                    .map_err(|e| format!("cannot set the mode of `{}` to {mode:o}: {e}", spec.path))?;
                return Ok(Change::Mode);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read `{}`: {e}", spec.path)),
    }
    let new = created.insert(&spec.path);
    write_atomically(&path, spec.content.as_bytes(), mode).map_err(|e| {
        if new {
            created.remove(&spec.path);
        }
        format!("cannot write `{}`: {e}", spec.path)
    })?;
    Ok(Change::Content)
}

/// `root` joined with `below`, each directory created if missing and none a
/// symbolic link (which would send the write elsewhere).
pub(crate) fn directories(root: &Path, below: &[Component<'_>]) -> Result<PathBuf, String> {
    // The root is the device's own setting, trusted as it is, and made if missing.
    fs::create_dir_all(root).map_err(|e| format!("cannot create `{}`: {e}", root.display()))?;
    let mut dir = root.to_path_buf();
    for part in below {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!("`{}` is not written through: it is a symbolic link", dir.display()));
            }
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => return Err(format!("cannot create `{}`: a file is in the way", dir.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
            }
            Err(e) => return Err(format!("cannot create `{}`: {e}", dir.display())),
        }
    }
    Ok(dir)
}

/// Replace `path` (whose directory exists) with `content`: a temporary file
/// beside it, synced and given `mode`, renamed over it.
pub fn write_atomically(path: &Path, content: &[u8], mode: u32) -> std::io::Result<()> {
    replace(path, |temp| {
        let mut file = fs::File::create(temp)?;
        file.write_all(content)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.sync_all()
    })
}

/// Replace `path` (whose directory exists) with what `make` makes at a
/// temporary path beside it, renamed over it: a reader finds the old one or
/// the new one, never half of one. The temporary is removed if anything fails.
pub(crate) fn replace(path: &Path, make: impl FnOnce(&Path) -> std::io::Result<()>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    // Unique per write: two writers of one path never share a temporary.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = dir.join(format!(".{name}.fleet-{}-{n}", std::process::id()));
    let replaced = make(&temp).and_then(|()| fs::rename(&temp, path));
    if replaced.is_err() {
        let _ = fs::remove_file(&temp);
    }
    replaced
}

/// Remove a file a manifest no longer holds, if the agent created it (a file
/// that was there before is left as it is); one already gone is fine.
pub fn remove(spec: &FileSpec, policy: &Policy, created: &mut Created) -> Result<(), String> {
    if !created.contains(&spec.path) {
        return Ok(());
    }
    let Some(path) = &policy.to_remove(&spec.path)? else {
        created.remove(&spec.path);
        return Ok(());
    };
    match fs::symlink_metadata(path) {
        // Something else put a link there since: it is not the agent's file.
        Ok(meta) if meta.file_type().is_symlink() => {}
        _ => match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("cannot remove `{}`: {e}", spec.path)),
            _ => {}
        },
    }
    created.remove(&spec.path);
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn spec(path: &Path, content: &str, mode: u32) -> FileSpec {
        FileSpec {
            name: "config".into(),
            path: path.to_str().unwrap().into(),
            content: content.into(),
            mode,
        }
    }

    fn mode_of(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// A device that allows files and links under `dir`, and has made none yet.
    pub(crate) struct Device {
        pub(crate) policy: Policy,
        pub(crate) created: Created,
    }

    impl Device {
        pub(crate) fn under(dir: &Path) -> Self {
            Self {
                policy: Policy::under([dir]),
                created: Created::default(),
            }
        }

        fn reconcile(&mut self, spec: &FileSpec) -> (FileStatus, Change) {
            reconcile(spec, &self.policy, &mut self.created)
        }

        /// Make `spec`: its status, and whether anything was written.
        pub(crate) fn make<K: AtPath>(&mut self, spec: &K) -> (K::Status, bool) {
            spec.make(&self.policy, &mut self.created)
        }

        /// Make `spec`, which the device refuses, writing nothing: why.
        pub(crate) fn refused<K: AtPath>(&mut self, spec: &K) -> String {
            let (status, written) = self.make(spec);
            let report = K::report(&status);
            let (state, why) = report.state().unwrap();
            assert_eq!((state, written), (State::Failed, false), "{report:?}");
            why.unwrap().to_owned()
        }
    }

    #[test]
    fn a_file_is_written_with_its_mode_and_parents() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("etc/sensor/config.toml");
        let (status, change) = Device::under(dir.path()).reconcile(&spec(&path, "rate = 5\n", 0o600));
        assert_eq!((status.state, change), (State::Ready, Change::Content), "{status:?}");
        assert_eq!(fs::read_to_string(&path).unwrap(), "rate = 5\n");
        assert_eq!(mode_of(&path), 0o600);
    }

    #[test]
    fn a_second_reconcile_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = Device::under(dir.path());
        let path = dir.path().join("motd");
        device.reconcile(&spec(&path, "hello\n", 0o644));
        let before = fs::metadata(&path).unwrap().modified().unwrap();
        let (status, change) = device.reconcile(&spec(&path, "hello\n", 0o644));
        assert_eq!((status.state, change), (State::Ready, Change::None));
        assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before, "not rewritten");
    }

    #[test]
    fn a_changed_mode_alone_is_set_in_place_and_new_content_replaces_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = Device::under(dir.path());
        let path = dir.path().join("motd");
        device.reconcile(&spec(&path, "hello\n", 0o644));
        let (_, change) = device.reconcile(&spec(&path, "hello\n", 0o640));
        assert_eq!((change, mode_of(&path)), (Change::Mode, 0o640));
        let (_, change) = device.reconcile(&spec(&path, "goodbye\n", 0o640));
        assert_eq!(change, Change::Content);
        assert_eq!(fs::read_to_string(&path).unwrap(), "goodbye\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers, ["motd"], "no temporary file is left behind");
    }

    #[test]
    fn a_file_that_cannot_be_written_is_a_failed_status_that_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, "").unwrap();
        let message = Device::under(dir.path()).refused(&spec(&blocker.join("config"), "x", 0o644));
        assert!(message.starts_with("cannot create `") && message.contains("not-a-dir"), "{message}");
    }

    #[test]
    fn files_go_only_under_the_roots_the_device_allows() {
        let dir = tempfile::tempdir().unwrap();
        let allowed = dir.path().join("allowed");
        fs::create_dir(&allowed).unwrap();
        let mut device = Device::under(&allowed);
        for outside in [
            dir.path().join("elsewhere"),
            PathBuf::from("/etc/fleet-test-passwd"),
            allowed.clone(),
        ] {
            let message = device.refused(&spec(&outside, "x", 0o644));
            assert!(message.contains("allows files only under"), "{message}");
            assert!(!outside.exists() || outside == allowed, "{outside:?} was written");
        }
        // A sibling whose name starts like the root is not under it.
        let sibling = dir.path().join("allowed-not");
        assert!(device.refused(&spec(&sibling.join("f"), "x", 0o644)).contains("only under"));
        let message = device.refused(&spec(&allowed.join("a/../../escape"), "x", 0o644));
        assert!(message.contains("`..`"), "{message}");
        let mut none = Device {
            policy: Policy::default(),
            created: Created::default(),
        };
        let message = none.refused(&spec(&allowed.join("f"), "x", 0o644));
        assert!(message.contains("allows no files") && message.contains("--file-root"), "{message}");
    }

    #[test]
    fn nothing_is_written_through_a_symbolic_link() {
        let dir = tempfile::tempdir().unwrap();
        let (root, target) = (dir.path().join("root"), dir.path().join("target"));
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&target).unwrap();
        std::os::unix::fs::symlink(&target, root.join("linked-dir")).unwrap();
        fs::write(target.join("victim"), "theirs").unwrap();
        std::os::unix::fs::symlink(target.join("victim"), root.join("linked-file")).unwrap();
        let mut device = Device::under(&root);
        let message = device.refused(&spec(&root.join("linked-dir/config"), "x", 0o644));
        assert!(message.contains("symbolic link"), "{message}");
        let message = device.refused(&spec(&root.join("linked-file"), "x", 0o644));
        assert!(message.contains("symbolic link"), "{message}");
        assert_eq!(fs::read_to_string(target.join("victim")).unwrap(), "theirs");
        assert!(!target.join("config").exists());
    }

    #[test]
    fn setuid_and_setgid_bits_only_where_the_device_allows_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut device = Device::under(dir.path());
        for mode in [0o4755, 0o2755, 0o6755] {
            let message = device.refused(&spec(&dir.path().join("tool"), "x", mode));
            assert!(message.contains("setuid or setgid"), "{mode:o}: {message}");
        }
        assert!(!dir.path().join("tool").exists());
        device.policy.allow_setid = true;
        let (status, _) = device.reconcile(&spec(&dir.path().join("tool"), "x", 0o4755));
        assert_eq!(status.state, State::Ready);
        assert_eq!(mode_of(&dir.path().join("tool")), 0o4755);
    }

    #[test]
    fn a_file_that_was_there_before_is_neither_overwritten_nor_removed() {
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("hosts");
        fs::write(&theirs, "127.0.0.1 localhost\n").unwrap();
        let mut device = Device::under(dir.path());
        let message = device.refused(&spec(&theirs, "0.0.0.0 everything\n", 0o644));
        assert!(message.contains("was there before"), "{message}");
        remove(&spec(&theirs, "0.0.0.0 everything\n", 0o644), &device.policy, &mut device.created).unwrap();
        assert_eq!(fs::read_to_string(&theirs).unwrap(), "127.0.0.1 localhost\n");

        // What the agent created it rewrites, removes, and forgets; the record survives a restart.
        let ours = dir.path().join("app/config");
        device.reconcile(&spec(&ours, "v1", 0o644));
        let record = dir.path().join("files-created.json");
        device.created.save(&record).unwrap();
        let mut restarted = Device {
            policy: device.policy.clone(),
            created: Created::load(&record),
        };
        assert_eq!(restarted.reconcile(&spec(&ours, "v2", 0o644)).1, Change::Content);
        remove(&spec(&ours, "v2", 0o644), &restarted.policy, &mut restarted.created).unwrap();
        assert!(!ours.exists());
        assert!(!restarted.created.contains(ours.to_str().unwrap()));
    }

    #[test]
    fn a_file_is_never_removed_through_a_directory_that_became_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let mut device = Device::under(dir.path());
        let ours = dir.path().join("app/config");
        let file = spec(&ours, "v1", 0o644);
        device.reconcile(&file);
        // Someone swaps the directory for a link to where a file of the same name is not ours.
        fs::write(elsewhere.path().join("config"), "not the agent's").unwrap();
        fs::remove_file(&ours).unwrap();
        fs::remove_dir(dir.path().join("app")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("app")).unwrap();
        let err = remove(&file, &device.policy, &mut device.created).unwrap_err();
        assert!(err.contains("has become a symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(elsewhere.path().join("config")).unwrap(), "not the agent's");
    }
}
