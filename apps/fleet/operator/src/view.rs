//! What the fleet's buckets hold, kept current by one watch per bucket (the
//! current values first, then every change), so that a reconcile reads
//! memory, not NATS, and every change wakes the controller.
//!
//! A bucket that is deleted and made again (NATS lost its data, and the
//! buckets were recreated) is noticed by its creation time, checked every
//! few seconds: its part of the view is dropped and read anew, so the
//! controller sees the devices' keys empty and writes them again.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use fleet_kv::{Buckets, Operation, Store};
use fleet_model::signed::{ManifestKey, Signed};
use fleet_model::{AgentManifest, AgentStatus, Device};
use futures_util::StreamExt as _;
use tokio::sync::watch;

/// The fleet as the buckets say it is.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub devices: BTreeMap<String, Device>,
    pub statuses: BTreeMap<String, AgentStatus>,
    /// The values of `fleet-manifests` that verify with the operator's key
    /// (withdrawals included). One that does not is nobody's: the operator
    /// writes over it when it selects the device.
    pub manifests: BTreeMap<String, Held>,
    /// The revision of each device's key in `fleet-manifests`, deleted ones
    /// included: what a compare-and-set write expects.
    pub manifest_revisions: BTreeMap<String, u64>,
}

/// A verified value of `fleet-manifests`, and its bytes as stored.
#[derive(Clone, Debug)]
pub struct Held {
    pub signed: Signed,
    pub value: Bytes,
}

impl Held {
    /// The manifest it carries; `None` for a withdrawal.
    pub fn manifest(&self) -> Option<&AgentManifest> {
        self.signed.manifest.as_ref()
    }
}

impl View {
    /// What `fleet-manifests` holds for `key` at `revision` (`None`: deleted,
    /// unreadable or not signed by the operator). An older revision than the
    /// one known is ignored: the operator writes through before its watch
    /// delivers the same entry.
    pub fn record_manifest(&mut self, key: &str, revision: u64, held: Option<Held>) {
        if self.manifest_revisions.get(key).is_some_and(|known| *known > revision) {
            return;
        }
        self.manifest_revisions.insert(key.to_owned(), revision);
        match held {
            Some(held) => drop(self.manifests.insert(key.to_owned(), held)),
            None => drop(self.manifests.remove(key)),
        }
    }

    /// The manifest `key` holds, if a verified one that is not a withdrawal.
    pub fn manifest(&self, key: &str) -> Option<&AgentManifest> {
        self.manifests.get(key).and_then(Held::manifest)
    }
}

/// The shared view and a counter that grows with every change to it.
#[derive(Clone, Debug)]
pub struct Shared {
    pub view: Arc<RwLock<View>>,
    pub changes: watch::Receiver<u64>,
    /// How many of the three buckets have delivered every value they held
    /// when the watch began.
    read: watch::Receiver<usize>,
}

/// The buckets the view watches.
const BUCKETS: usize = 3;

impl Shared {
    /// Wait until every bucket's values at the start are in the view. Until
    /// then the view is partial: a reconcile that saw manifests but not yet
    /// the devices would take every device for unselected and withdraw it.
    pub async fn read_in_full(&self) {
        let mut read = self.read.clone();
        // The sender lives as long as the watches; if they are gone, so is the runtime.
        let _ = read.wait_for(|n| *n >= BUCKETS).await;
    }
}

/// Start watching the three buckets, verifying manifests with `trust` (the
/// operator's own key); the tasks live as long as the runtime.
pub fn watch_buckets(buckets: &Buckets, trust: ManifestKey) -> Shared {
    let view = Arc::new(RwLock::new(View::default()));
    let (tx, changes) = watch::channel(0u64);
    let tx = Arc::new(tx);
    let (read_tx, read) = watch::channel(0usize);
    let read_tx = Arc::new(read_tx);
    spawn_watch(
        buckets.devices.clone(),
        view.clone(),
        tx.clone(),
        read_tx.clone(),
        |view| view.devices.clear(),
        |view, key, _, value| match value {
            Some(bytes) => match Device::from_json(bytes) {
                Ok(device) => drop(view.devices.insert(key.to_owned(), device)),
                Err(e) => eprintln!("fleet-operator: device `{key}` registered an unreadable record ({e}); ignored"),
            },
            None => drop(view.devices.remove(key)),
        },
    );
    spawn_watch(
        buckets.status.clone(),
        view.clone(),
        tx.clone(),
        read_tx.clone(),
        |view| view.statuses.clear(),
        |view, key, _, value| match value {
            Some(bytes) => match AgentStatus::from_json(bytes) {
                Ok(status) => drop(view.statuses.insert(key.to_owned(), status)),
                Err(e) => eprintln!("fleet-operator: device `{key}` reported an unreadable status ({e}); ignored"),
            },
            None => drop(view.statuses.remove(key)),
        },
    );
    spawn_watch(
        buckets.manifests.clone(),
        view.clone(),
        tx,
        read_tx,
        |view| {
            view.manifests.clear();
            view.manifest_revisions.clear();
        },
        move |view, key, revision, value| {
            // The operator signed these; one that does not verify is nobody's.
            let held = value.and_then(|bytes| {
                trust.open(key, bytes).ok().map(|signed| Held {
                    signed,
                    value: Bytes::copy_from_slice(bytes),
                })
            });
            view.record_manifest(key, revision, held);
        },
    );
    Shared { view, changes, read }
}

/// How often a watch checks that its bucket is still the one it watches.
const RECREATED_CHECK: Duration = Duration::from_secs(2);

fn spawn_watch(
    store: Store,
    view: Arc<RwLock<View>>,
    changed: Arc<watch::Sender<u64>>,
    read: Arc<watch::Sender<usize>>,
    clear: impl Fn(&mut View) + Send + 'static,
    apply: impl Fn(&mut View, &str, u64, Option<&[u8]>) + Send + 'static,
) {
    tokio::spawn(async move {
        let mut read_in_full = false;
        let mut done = || {
            if !std::mem::replace(&mut read_in_full, true) {
                read.send_modify(|n| *n += 1);
            }
        };
        // When the bucket's stream was made: another time is another bucket.
        let mut created = None;
        loop {
            // An empty bucket delivers nothing to say it is read: ask first
            // (the stream's state now, not as it was when the bucket opened).
            let info = match store.stream.get_info().await {
                Ok(info) => info,
                Err(e) => {
                    eprintln!("fleet-operator: cannot read bucket `{}` ({e}); trying again", store.name);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if created.is_some_and(|c| c != info.created) {
                eprintln!(
                    "fleet-operator: bucket `{}` was made again (NATS lost its data?): reading it anew",
                    store.name
                );
                clear(&mut view.write().unwrap());
                changed.send_modify(|n| *n += 1);
            }
            created = Some(info.created);
            if info.state.messages == 0 {
                done();
            }
            match store.watch_with_history(">").await {
                Ok(mut entries) => {
                    let mut check = tokio::time::interval(RECREATED_CHECK);
                    check.tick().await;
                    loop {
                        tokio::select! {
                            entry = entries.next() => match entry {
                                Some(Ok(entry)) => {
                                    let value = (entry.operation == Operation::Put).then_some(&entry.value[..]);
                                    apply(&mut view.write().unwrap(), &entry.key, entry.revision, value);
                                    changed.send_modify(|n| *n += 1);
                                    if entry.seen_current {
                                        done();
                                    }
                                }
                                Some(Err(e)) => {
                                    eprintln!("fleet-operator: the watch of bucket `{}` failed ({e}); watching again", store.name);
                                    break;
                                }
                                None => break,
                            },
                            _ = check.tick() => {
                                // A watch of a deleted stream may stay silent, or follow
                                // the new one from the old sequence: start over.
                                if store.stream.get_info().await.is_ok_and(|now| Some(now.created) != created) {
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => eprintln!("fleet-operator: cannot watch bucket `{}` ({e}); trying again", store.name),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
}
