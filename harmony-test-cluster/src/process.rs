//! The control plane's processes: started with argument vectors, their output in a log file
//! each, and bound to the life of the process that started them.
//!
//! Every child is started through `setpriv --pdeathsig KILL`, so the kernel kills it when its
//! parent thread ends. A test binary never drops the control plane it shares between its tests
//! (it lives in a static), so the children are started from one thread that lives as long as
//! the process: when a test binary ends, however it ends, its control plane ends with it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::error::StartError;

/// A request to the launcher thread: a command, and where to send the child.
type Launch = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The thread that starts every child, alive as long as the process.
fn launcher() -> &'static Mutex<mpsc::Sender<Launch>> {
    static LAUNCHER: OnceLock<Mutex<mpsc::Sender<Launch>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Launch>();
        std::thread::Builder::new()
            .name("harmony-test-cluster-launcher".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
                // Every sender is gone only when the process exits; park so the children's
                // parent thread never ends before it.
                loop {
                    std::thread::park();
                }
            })
            .expect("the launcher thread starts");
        Mutex::new(tx)
    })
}

/// A running component of the control plane.
#[derive(Debug)]
pub struct Process {
    pub name: &'static str,
    child: Child,
    pub log: PathBuf,
}

/// Where `setpriv` is: util-linux puts it in /usr/bin.
fn setpriv() -> Result<PathBuf, StartError> {
    crate::util::find_program("setpriv").ok_or_else(|| StartError::MissingTool {
        tool: "setpriv".into(),
        help: "install util-linux (`apt-get install util-linux`)".into(),
    })
}

impl Process {
    /// Starts `program` with `args`, its stdout and stderr appended to `log`.
    pub fn start(name: &'static str, program: &Path, args: &[String], log: &Path) -> Result<Process, StartError> {
        let out = File::create(log).map_err(|e| StartError::io(format!("create {}", log.display()), e))?;
        let err = out.try_clone().map_err(|e| StartError::io(format!("open {}", log.display()), e))?;
        let mut command = Command::new(setpriv()?);
        command
            .args(["--pdeathsig", "KILL", "--"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let (tx, rx) = mpsc::channel();
        crate::lock(launcher()).send((command, tx)).map_err(|_| StartError::Launcher)?;
        let child = rx
            .recv()
            .map_err(|_| StartError::Launcher)?
            .map_err(|e| StartError::io(format!("start {}", program.display()), e))?;
        Ok(Process {
            name,
            child,
            log: log.to_owned(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it has exited, and how.
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("cannot be waited for: {e}")),
        }
    }

    /// Why the start-up failed, if it has exited: its status and the end of its log.
    pub fn failure(&mut self) -> Option<StartError> {
        let status = self.exited()?;
        Some(StartError::Exited {
            component: self.name,
            status,
            log: self.log.clone(),
            log_tail: self.log_tail(20),
        })
    }

    /// The last `n` lines it wrote.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Asks it to stop (SIGTERM), then kills it if it is still there after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.exited().is_some() {
            return;
        }
        signal(self.pid(), rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.exited().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it at once, as a crash would (SIGKILL).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

pub fn signal(pid: u32, signal: rustix::process::Signal) {
    if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

/// Whether a process of this pid is alive.
pub fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}
