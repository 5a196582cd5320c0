//! A lock per target and app, so that two `apply`s or `release`s of one app
//! on one target never interleave: the second waits a bounded time, naming
//! who holds the lock, then fails clearly, or goes on once the first is done.
//!
//! The shape is a lease's: a holder with an identity, a process, a host and a
//! start time; try to take it, release it when done. A topology keeps the lock
//! where it keeps its state: `local` in a file under its state directory
//! (an OS lock, so a holder that dies releases it), a cluster in a
//! `coordination.k8s.io` Lease.

use std::fs;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::BoxFuture;

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Unique per run.
    pub id: String,
    /// Its process id, on `host`.
    pub pid: u32,
    /// The machine it runs on; `unknown` when it has no name.
    pub host: String,
    /// When it took the lock, in seconds since the Unix epoch.
    pub since: u64,
    /// What it is doing: `apply`, `release webapp-server-v0.1.0`.
    pub command: String,
}

impl Holder {
    /// This process, about to run `command`.
    pub fn this_process(command: impl Into<String>) -> Self {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let pid = std::process::id();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        Self {
            id: format!("{pid:x}-{since:x}-{nanos:x}"),
            pid,
            host: host_name(),
            since,
            command: command.into(),
        }
    }

    /// `pid 4242 on host `build-7` since 2026-11-27T13:05:09Z (apply)`.
    pub fn describe(&self) -> String {
        format!(
            "pid {} on host `{}` since {} ({})",
            self.pid,
            self.host,
            crate::time::rfc3339(self.since),
            self.command
        )
    }
}

/// What came of trying to take a lock.
#[derive(Debug)]
pub enum Attempt {
    /// Taken; `took_over` is a holder that had ended without releasing it.
    Acquired {
        /// The lock, held until released.
        lock: Box<dyn Held>,
        /// The ended holder it was taken from; `None` if it was free.
        took_over: Option<Holder>,
    },
    /// Someone else holds it (who, when the topology can tell).
    Busy {
        /// Who holds it; `None` when the topology cannot tell.
        holder: Option<Holder>,
    },
}

impl Attempt {
    /// Taken, from a topology with nothing two runs could both write.
    pub fn free() -> Self {
        Self::Acquired {
            lock: Box::new(Unguarded),
            took_over: None,
        }
    }
}

/// The lock of a topology that needs none.
#[derive(Debug)]
struct Unguarded;

impl Held for Unguarded {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), LockError>> {
        Box::pin(async { Ok(()) })
    }
}

/// Several locks held as one (a GitOps directory's and a cluster's, say),
/// given back in the reverse of the order they were taken.
#[derive(Debug)]
pub struct Several(pub Vec<Box<dyn Held>>);

impl Held for Several {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), LockError>> {
        Box::pin(async move {
            let mut first_error = None;
            for lock in self.0.into_iter().rev() {
                if let Err(e) = lock.release().await {
                    first_error.get_or_insert(e);
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    }
}

/// A lock this run holds.
pub trait Held: Send + Sync + std::fmt::Debug {
    /// Give it back. Dropping it without releasing is what a crash does: the
    /// topology then sees an ended holder and the next run takes over.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), LockError>>;
}

/// A lock could not be taken or given back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A lock file, or its directory, could not be created, opened, locked,
    /// written or given back.
    #[error("the lock file `{}` could not be used: {source}", path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why it could not be used.
        source: std::io::Error,
    },
    /// A lock file that no run holds has content that is not a holder: it was
    /// not written by Harmony.
    #[error("the lock file `{}` holds something that is not a lock: {why}", path.display())]
    Corrupt {
        /// The lock file.
        path: PathBuf,
        /// Why its content is not a holder.
        why: String,
    },
    /// Another run held the lock for as long as this one would wait.
    #[error("`{app}` is locked by {}", holder.as_ref().map_or_else(|| "another run".to_owned(), |h| h.describe()))]
    TimedOut {
        /// The app whose lock was wanted.
        app: String,
        /// The run that holds it; `None` when the topology cannot tell.
        holder: Option<Box<Holder>>,
        /// How long this run waited.
        waited: Duration,
    },
    /// The target keeps its locks itself (a cluster's Lease) and could not be asked.
    #[error("the lock of `{app}` on {target} could not be taken: {why}")]
    Unavailable {
        /// The app whose lock was wanted.
        app: String,
        /// The target that keeps it, as a user would recognise it.
        target: String,
        /// What went wrong.
        why: String,
        /// What to do about it.
        help: String,
    },
    /// While this run held it, another took it over: it had expired (this
    /// run could not renew it in time).
    #[error("the lock of `{app}` was taken over by {} while this run held it", by.as_ref().map_or_else(|| "another run".to_owned(), |h| h.describe()))]
    Lost {
        /// The app whose lock was lost.
        app: String,
        /// The run that took it over; `None` when the target cannot tell.
        by: Option<Box<Holder>>,
    },
}

impl crate::Diagnostic for LockError {
    fn help(&self) -> String {
        match self {
            Self::Io { .. } => "make the state directory writable, or point `HARMONY_STATE_DIR` at one that is; nothing was changed".into(),
            Self::Corrupt { path, .. } => format!(
                "no run holds it now (the operating system's lock on it is free), but it was not written by harmony: \
                 look at it, then remove `{}` to go on; nothing was changed",
                path.display()
            ),
            Self::TimedOut { waited, .. } => format!(
                "waited {}s; let that run finish and try again, or wait longer with `--lock-timeout SECONDS`; nothing was changed",
                waited.as_secs()
            ),
            Self::Unavailable { help, .. } => help.clone(),
            Self::Lost { .. } => "this run could not renew its lock in time (the target did not answer), so another run may have \
                                  changed the app meanwhile: run `plan` to see where it stands"
                .into(),
        }
    }
}

/// Take a lock for `app` by trying `attempt` (a topology's `try_lock`) until
/// it succeeds, waiting up to `timeout` while another run holds it; `waiting`
/// hears who that is, once. Returns the lock, and the holder it took over
/// from if one had ended without releasing it.
pub async fn acquire<'a>(
    mut attempt: impl FnMut() -> BoxFuture<'a, Result<Attempt, LockError>>,
    app: &str,
    timeout: Duration,
    waiting: &(dyn Fn(Option<&Holder>) + Send + Sync),
) -> Result<(Box<dyn Held>, Option<Holder>), LockError> {
    let start = Instant::now();
    let mut told = false;
    loop {
        match attempt().await? {
            Attempt::Acquired { lock, took_over } => return Ok((lock, took_over)),
            Attempt::Busy { holder } => {
                if start.elapsed() >= timeout {
                    return Err(LockError::TimedOut {
                        app: app.to_owned(),
                        holder: holder.map(Box::new),
                        waited: timeout,
                    });
                }
                if !told {
                    waiting(holder.as_ref());
                    told = true;
                }
                tokio::time::sleep(POLL.min(timeout.saturating_sub(start.elapsed()))).await;
            }
        }
    }
}

/// How long a run waits for a lock another holds, in seconds (the CLI's
/// `--lock-timeout`).
pub const TIMEOUT_VAR: &str = "HARMONY_LOCK_TIMEOUT";
/// How long a run waits for a lock unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The wait `HARMONY_LOCK_TIMEOUT` sets (the default if it is unset or not a
/// whole number of seconds), for locks taken below the CLI (a release's stages).
pub fn timeout_from_env() -> Duration {
    std::env::var(TIMEOUT_VAR)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

/// How often a waiting run tries again.
const POLL: Duration = Duration::from_millis(100);

/// A lock kept as a file: the OS lock on the file says whether it is held (and
/// is released when the holder's process ends, however it ends); the file's
/// content says by whom. An empty file is a lock released cleanly; a holder
/// in a file nobody locks is a run that ended without releasing.
#[derive(Debug)]
pub struct FileLock {
    path: PathBuf,
    file: fs::File,
}

impl FileLock {
    /// Try to take the lock at `path` for `me`.
    pub fn try_take(path: &Path, me: &Holder) -> Result<Attempt, LockError> {
        let io = |source| LockError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io)?;
        }
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Ok(Attempt::Busy {
                    holder: read_holder(&mut file).ok().flatten(),
                });
            }
            Err(fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let took_over = read_holder(&mut file).map_err(|why| LockError::Corrupt {
            path: path.to_owned(),
            why,
        })?;
        let body = serde_json::to_vec(me).expect("a holder is plain JSON");
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(&body).and_then(|()| file.sync_data()).map_err(io)?;
        Ok(Attempt::Acquired {
            lock: Box::new(Self {
                path: path.to_owned(),
                file,
            }),
            took_over,
        })
    }
}

impl Held for FileLock {
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<(), LockError>> {
        Box::pin(async move {
            // Emptied first, so the next run knows this one ended cleanly.
            self.file.set_len(0).map_err(|source| LockError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.file.unlock().map_err(|source| LockError::Io { path: self.path, source })
        })
    }
}

/// The holder a lock file names; `None` if it is empty.
fn read_holder(file: &mut fs::File) -> Result<Option<Holder>, String> {
    let mut text = String::new();
    file.rewind()
        .and_then(|_| file.read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text).map(Some).map_err(|e| e.to_string())
}

fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Diagnostic as _;

    #[test]
    fn a_second_taker_is_told_who_holds_it_and_takes_it_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.lock");
        let first = Holder::this_process("apply");
        let Attempt::Acquired { lock, took_over: None } = FileLock::try_take(&path, &first).unwrap() else {
            panic!("a free lock is taken")
        };
        let second = Holder::this_process("release");
        match FileLock::try_take(&path, &second).unwrap() {
            Attempt::Busy { holder } => assert_eq!(holder.as_ref(), Some(&first)),
            other => panic!("taken twice: {other:?}"),
        }
        futures_lite_block_on(lock.release()).unwrap();
        let Attempt::Acquired { took_over, .. } = FileLock::try_take(&path, &second).unwrap() else {
            panic!("a released lock is free")
        };
        assert_eq!(took_over, None, "a clean release leaves nothing to take over");
    }

    #[test]
    fn a_holder_that_ended_without_releasing_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.lock");
        let ended = Holder::this_process("apply");
        let Attempt::Acquired { lock, .. } = FileLock::try_take(&path, &ended).unwrap() else {
            panic!("a free lock is taken")
        };
        drop(lock); // as a crash would: the OS lock goes, the content stays
        let Attempt::Acquired { took_over, .. } = FileLock::try_take(&path, &Holder::this_process("apply")).unwrap() else {
            panic!("an ended holder's lock is free")
        };
        assert_eq!(took_over, Some(ended));
    }

    #[test]
    fn garbage_is_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.lock");
        fs::write(&path, "not a lock").unwrap();
        let err = FileLock::try_take(&path, &Holder::this_process("apply")).unwrap_err();
        assert!(matches!(err, LockError::Corrupt { .. }), "{err}");
        assert!(err.help().contains("remove"), "{}", err.help());
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a lock");
    }

    fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }
}
