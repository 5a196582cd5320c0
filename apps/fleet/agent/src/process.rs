//! `Process` resources: long-running programs the agent starts and watches
//! over, the way a small init system would.
//!
//! - A process is its argument vector, run directly (never through a
//!   shell), in its own process group, with exactly the environment its spec
//!   gives, `/` as working directory, and its output in
//!   `<state>/logs/<name>.log` (the current run's; the one before is kept as
//!   `<name>.log.1`).
//! - It is `Progressing` until it has stayed up for the settle time, then
//!   `Ready`. When it exits it is started again as its restart policy says,
//!   after a back-off that doubles with each quick exit in a row (1 s, 2 s,
//!   4 s … at most 5 min) and resets once a run lasts; from the third quick
//!   exit in a row it is `Failed` (a crash loop) with its exit and its last
//!   output in the message.
//! - A changed spec stops the old process (SIGTERM to its group, SIGKILL
//!   after the grace period) and starts the new one; a removed spec stops it.
//! - Only the programs the device allows run ([`Programs`], `--allow-program`):
//!   the program a spec names is found as the kernel would run it (on `PATH`
//!   if it has no `/`), its symbolic links followed, and the file it is must be
//!   one of those allowed, whatever the arguments say. A device that allows a
//!   shell or an interpreter allows any script; that is its choice to make.
//! - Each running process is recorded in `<state>/processes/<name>.json`
//!   (pid, start time, spec). A new agent run adopts a process whose record
//!   still matches a living process and the same spec, so restarting the
//!   agent does not restart what it supervises.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleet_model::{Exit, ProcessSpec, ProcessStatus, Resource, ResourceStatus, RestartPolicy, State};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, oneshot};
use tokio::time::{Instant, sleep, sleep_until};

use crate::reconcile::{Reconciler, Reconciling};

/// Timings of the supervisor.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    /// How long a process must stay up to be `Ready`.
    pub settle: Duration,
    /// How long a stopped process gets between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// The first restart delay; it doubles with each quick exit in a row.
    pub backoff: Duration,
    /// The longest restart delay.
    pub max_backoff: Duration,
    /// A run at least this long resets the back-off.
    pub stable: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            settle: Duration::from_secs(2),
            grace: Duration::from_secs(10),
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
            stable: Duration::from_secs(60),
        }
    }
}

/// Quick exits in a row from which a process is reported `Failed`.
const CRASH_LOOP: u32 = 3;

/// The programs the fleet may run on a device: files, by their real path.
/// None: the device runs no processes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Programs {
    allowed: Vec<PathBuf>,
}

impl Programs {
    /// The programs `names` find (each a path, or a name looked up on `PATH`
    /// as a spec's would be); an error names one that is not there.
    pub fn allowing(names: impl IntoIterator<Item = impl AsRef<str>>) -> Result<Self, String> {
        let allowed = names
            .into_iter()
            .map(|name| {
                let name = name.as_ref();
                let found = find(name).ok_or_else(|| format!("program `{name}` is not found"))?;
                fs::canonicalize(&found).map_err(|e| format!("program `{name}` ({}): {e}", found.display()))
            })
            .collect::<Result<_, String>>()?;
        Ok(Self { allowed })
    }

    /// The file `program` runs, if the device allows it; else why not.
    fn check(&self, program: &str) -> Result<PathBuf, String> {
        let refused = |why: String| format!("`{program}` is not run: {why}");
        if self.allowed.is_empty() {
            return Err(refused(
                "this device runs no programs (its agent is started without `--allow-program`)".into(),
            ));
        }
        let found = find(program).ok_or_else(|| refused("no such program on this device".into()))?;
        let real = fs::canonicalize(&found).map_err(|e| refused(format!("{}: {e}", found.display())))?;
        if self.allowed.contains(&real) {
            Ok(found)
        } else {
            let allowed: Vec<String> = self.allowed.iter().map(|p| format!("`{}`", p.display())).collect();
            Err(refused(format!(
                "it is `{}`, and this device runs only {} (its owner allows more with `--allow-program`)",
                real.display(),
                allowed.join(", ")
            )))
        }
    }
}

/// Where `program` is, as `execvp` would find it: itself if it has a `/`,
/// else the first executable file of that name on this process's `PATH`.
fn find(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let path = PathBuf::from(program);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_absolute() && executable(p))
}

/// The processes of one device.
#[derive(Debug)]
pub struct Supervisor {
    state: PathBuf,
    timings: Timings,
    programs: Programs,
    changed: Arc<Notify>,
    running: BTreeMap<String, Supervised>,
}

#[derive(Debug)]
struct Supervised {
    spec: ProcessSpec,
    status: Arc<Mutex<ProcessStatus>>,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// What `<state>/processes/<name>.json` holds.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    pid: u32,
    /// Field 22 of `/proc/<pid>/stat`: tells the process from a later one
    /// that got the same pid.
    start_time: u64,
    spec: ProcessSpec,
}

impl Supervisor {
    /// A supervisor keeping its records and logs under `state`, running only
    /// `programs`.
    pub fn new(state: &Path, timings: Timings, programs: Programs) -> std::io::Result<Self> {
        fs::create_dir_all(state.join("processes"))?;
        fs::create_dir_all(state.join("logs"))?;
        Ok(Self {
            state: state.to_owned(),
            timings,
            programs,
            changed: Arc::new(Notify::new()),
            running: BTreeMap::new(),
        })
    }

    /// Woken whenever a process's status changes.
    pub fn changed(&self) -> Arc<Notify> {
        self.changed.clone()
    }

    /// Run exactly `specs`: stop what is gone or changed, start (or adopt)
    /// what is new.
    pub async fn reconcile(&mut self, specs: &[ProcessSpec]) {
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, s)| !specs.iter().any(|spec| &spec.name == *name && *spec == s.spec))
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            self.stop(&name).await;
        }
        for spec in specs {
            if !self.running.contains_key(&spec.name) {
                self.start(spec.clone());
            }
        }
        // Records of processes this run does not supervise (left by an
        // earlier run whose manifest has changed since): stop them too.
        for entry in fs::read_dir(self.state.join("processes")).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = path.file_stem().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
            if self.running.contains_key(&name) {
                continue;
            }
            if let Some(record) = read_record(&path)
                && let Some(pid) = alive(&record)
            {
                terminate_adopted(pid, record.start_time, self.timings.grace).await;
            }
            let _ = fs::remove_file(&path);
        }
    }

    /// Stop every process.
    pub async fn stop_all(&mut self) {
        self.reconcile(&[]).await;
    }

    /// The status of every supervised process, by name.
    pub fn statuses(&self) -> BTreeMap<String, ProcessStatus> {
        self.running
            .iter()
            .map(|(name, s)| (name.clone(), s.status.lock().unwrap().clone()))
            .collect()
    }

    fn start(&mut self, spec: ProcessSpec) {
        let record_path = self.state.join("processes").join(format!("{}.json", spec.name));
        let adopt = read_record(&record_path)
            .filter(|r| r.spec == spec)
            .and_then(|r| alive(&r).map(|pid| (pid, r.start_time)));
        let status = Arc::new(Mutex::new(ProcessStatus {
            state: State::Progressing,
            pid: adopt.map(|(pid, _)| pid),
            restarts: 0,
            last_exit: None,
            message: None,
        }));
        let (stop, stopped) = oneshot::channel();
        let run = Run {
            program: self.programs.check(&spec.argv[0]),
            spec: spec.clone(),
            status: status.clone(),
            changed: self.changed.clone(),
            timings: self.timings,
            record: record_path,
            log: self.state.join("logs").join(format!("{}.log", spec.name)),
        };
        let task = tokio::spawn(run.supervise(adopt, stopped));
        self.running.insert(spec.name.clone(), Supervised { spec, status, stop, task });
    }

    async fn stop(&mut self, name: &str) {
        if let Some(s) = self.running.remove(name) {
            let _ = s.stop.send(());
            let _ = s.task.await;
        }
    }
}

/// Dropping the supervisor (the agent itself is stopping) leaves every
/// process running: a later run adopts them from their records.
impl Drop for Supervisor {
    fn drop(&mut self) {
        for s in self.running.values() {
            s.task.abort();
        }
    }
}

/// One supervised process, over its restarts.
struct Run {
    /// The file it runs, or why the device does not run it.
    program: Result<PathBuf, String>,
    spec: ProcessSpec,
    status: Arc<Mutex<ProcessStatus>>,
    changed: Arc<Notify>,
    timings: Timings,
    record: PathBuf,
    log: PathBuf,
}

/// A started process: our child, or one an earlier agent run started.
enum Running {
    Child(tokio::process::Child),
    Adopted { pid: u32, start_time: u64 },
}

impl Run {
    async fn supervise(self, mut adopt: Option<(u32, u64)>, mut stop: oneshot::Receiver<()>) {
        if let Err(why) = &self.program {
            // Not the device's to run: said once, never retried; one an
            // earlier run started (before the program was refused) is stopped.
            if let Some((pid, start_time)) = adopt {
                terminate_adopted(pid, start_time, self.timings.grace).await;
                let _ = fs::remove_file(&self.record);
            }
            self.set(|s| {
                s.state = State::Failed;
                s.pid = None;
                s.message = Some(why.clone());
            });
            let _ = stop.await;
            return;
        }
        let mut quick_exits = 0u32;
        loop {
            let running = match adopt.take() {
                Some((pid, start_time)) => Running::Adopted { pid, start_time },
                None => match self.spawn() {
                    Ok(running) => running,
                    Err(why) => {
                        quick_exits += 1;
                        let delay = self.backoff(quick_exits);
                        self.set(|s| {
                            s.state = State::Failed;
                            s.pid = None;
                            s.message = Some(format!("{why}; trying again in {}", seconds(delay)));
                        });
                        tokio::select! {
                            Ok(()) = &mut stop => return,
                            () = sleep(delay) => continue,
                        }
                    }
                },
            };
            let started = Instant::now();
            let pid = running.pid();
            self.set(|s| {
                s.state = State::Progressing;
                s.pid = Some(pid);
            });
            let mut settled = false;
            let exit = {
                let exited = running.wait();
                tokio::pin!(exited);
                loop {
                    tokio::select! {
                        Ok(()) = &mut stop => {
                            terminate(pid, self.timings.grace, exited).await;
                            let _ = fs::remove_file(&self.record);
                            return;
                        }
                        exit = &mut exited => break exit,
                        () = sleep_until(started + self.timings.settle), if !settled => {
                            settled = true;
                            self.set(|s| {
                                s.state = State::Ready;
                                s.message = None;
                            });
                        }
                    }
                }
            };
            let _ = fs::remove_file(&self.record);
            let failed = exit != Some(Exit::Code(0));
            let restart = match self.spec.restart {
                RestartPolicy::Always => true,
                RestartPolicy::OnFailure => failed,
                RestartPolicy::Never => false,
            };
            let how = describe(exit);
            let output = last_output(&self.log);
            if !restart {
                self.set(|s| {
                    s.state = if failed { State::Failed } else { State::Ready };
                    s.pid = None;
                    s.last_exit = exit;
                    s.message = Some(format!("{how}; restart policy {:?}{output}", self.spec.restart));
                });
                let _ = stop.await;
                return;
            }
            quick_exits = if started.elapsed() >= self.timings.stable {
                1
            } else {
                quick_exits + 1
            };
            let delay = self.backoff(quick_exits);
            self.set(|s| {
                s.state = if quick_exits >= CRASH_LOOP {
                    State::Failed
                } else {
                    State::Progressing
                };
                s.pid = None;
                s.restarts += 1;
                s.last_exit = exit;
                let times = if quick_exits > 1 {
                    format!(" ({quick_exits} times in a row)")
                } else {
                    String::new()
                };
                s.message = Some(format!("{how}{times}; restarting in {}{output}", seconds(delay)));
            });
            tokio::select! {
                Ok(()) = &mut stop => return,
                () = sleep(delay) => {}
            }
        }
    }

    fn spawn(&self) -> Result<Running, String> {
        use std::os::unix::process::CommandExt as _;
        let program = &self.spec.argv[0];
        let file = self.program.as_ref().map_err(Clone::clone)?;
        let previous = self.log.with_extension("log.1");
        let _ = fs::rename(&self.log, &previous);
        let log = fs::File::create(&self.log).map_err(|e| format!("cannot create `{}`: {e}", self.log.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("cannot create `{}`: {e}", self.log.display()))?;
        // The file that was checked, under the name the spec gives it.
        let mut command = std::process::Command::new(file);
        command.arg0(program);
        let child = tokio::process::Command::from(command)
            .args(&self.spec.argv[1..])
            .env_clear()
            .envs(&self.spec.env)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        let pid = child.id().unwrap_or_default();
        let record = Record {
            pid,
            start_time: start_time(pid).unwrap_or_default(),
            spec: self.spec.clone(),
        };
        let _ = fs::write(&self.record, serde_json::to_vec(&record).unwrap_or_default());
        Ok(Running::Child(child))
    }

    fn backoff(&self, quick_exits: u32) -> Duration {
        let factor = 2u32.saturating_pow(quick_exits.saturating_sub(1).min(16));
        self.timings.backoff.saturating_mul(factor).min(self.timings.max_backoff)
    }

    fn set(&self, change: impl FnOnce(&mut ProcessStatus)) {
        let mut status = self.status.lock().unwrap();
        let before = status.clone();
        change(&mut status);
        if *status != before {
            self.changed.notify_one();
        }
    }
}

impl Running {
    fn pid(&self) -> u32 {
        match self {
            Self::Child(c) => c.id().unwrap_or_default(),
            Self::Adopted { pid, .. } => *pid,
        }
    }

    /// Wait for the exit; `None` when its code cannot be known (an adopted
    /// process is not our child).
    async fn wait(self) -> Option<Exit> {
        match self {
            Self::Child(mut child) => {
                use std::os::unix::process::ExitStatusExt as _;
                let status = child.wait().await.ok()?;
                status.code().map(Exit::Code).or(status.signal().map(Exit::Signal))
            }
            Self::Adopted { pid, start_time } => {
                while is_alive(pid, start_time) {
                    sleep(Duration::from_millis(200)).await;
                }
                None
            }
        }
    }
}

/// SIGTERM to the process group, then SIGKILL once the grace period is over.
async fn terminate(pid: u32, grace: Duration, exited: std::pin::Pin<&mut impl Future<Output = Option<Exit>>>) {
    signal_group(pid, rustix::process::Signal::TERM);
    if tokio::time::timeout(grace, exited).await.is_err() {
        signal_group(pid, rustix::process::Signal::KILL);
    }
}

async fn terminate_adopted(pid: u32, start_time: u64, grace: Duration) {
    let mut gone = Box::pin(Running::Adopted { pid, start_time }.wait());
    terminate(pid, grace, gone.as_mut()).await;
}

fn signal_group(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process_group(pid, signal);
    }
}

fn describe(exit: Option<Exit>) -> String {
    match exit {
        Some(Exit::Code(0)) => "exited with code 0".into(),
        Some(Exit::Code(code)) => format!("exited with code {code}"),
        Some(Exit::Signal(signal)) => format!("was killed by signal {signal}"),
        None => "exited (its code is unknown: an earlier run of the agent started it)".into(),
    }
}

/// The last lines the process wrote, for a status message: read from the
/// log's last 4 KiB only (a log can be any size), each line cut to 200 bytes.
fn last_output(log: &Path) -> String {
    use std::io::{Read as _, Seek as _, SeekFrom};
    const TAIL: u64 = 4096;
    let mut bytes = Vec::new();
    if let Ok(mut file) = fs::File::open(log) {
        let len = file.metadata().map(|m| m.len()).unwrap_or_default();
        if file.seek(SeekFrom::Start(len.saturating_sub(TAIL))).is_ok() {
            let _ = file.take(TAIL).read_to_end(&mut bytes);
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| fleet_model::cut(l, 200))
        .collect();
    let tail = &lines[lines.len().saturating_sub(3)..];
    if tail.is_empty() {
        String::new()
    } else {
        format!("; last output: {}", tail.join(" | "))
    }
}

fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

fn read_record(path: &Path) -> Option<Record> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// The pid of the recorded process when it still runs.
fn alive(record: &Record) -> Option<u32> {
    is_alive(record.pid, record.start_time).then_some(record.pid)
}

fn is_alive(pid: u32, start: u64) -> bool {
    // A zombie has exited; only its parent has not read its code yet.
    stat(pid).is_some_and(|(state, started)| state != "Z" && started == start)
}

fn start_time(pid: u32) -> Option<u64> {
    stat(pid).map(|(_, started)| started)
}

/// A process's state and start time, from `/proc/<pid>/stat` (fields 3 and
/// 22; the command name before them may hold spaces and parentheses).
fn stat(pid: u32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.first()?.to_string(), fields.get(19)?.parse().ok()?))
}

/// The processes of a manifest, supervised: a changed or removed spec stops
/// its process, a new one starts (or adopts) one.
impl Reconciler for Supervisor {
    fn reconcile<'a>(&'a mut self, desired: &'a [Resource]) -> Reconciling<'a> {
        let specs: Vec<ProcessSpec> = desired
            .iter()
            .filter_map(|r| match r {
                Resource::Process(p) => Some(p.clone()),
                _ => None,
            })
            .collect();
        Box::pin(async move { Supervisor::reconcile(self, &specs).await })
    }

    fn statuses(&self) -> Vec<(String, ResourceStatus)> {
        Supervisor::statuses(self)
            .into_iter()
            .map(|(name, s)| (name, ResourceStatus::Process(s)))
            .collect()
    }
}
