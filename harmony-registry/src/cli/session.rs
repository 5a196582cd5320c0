//! What every command that acts on apps shares: the apps it names and the
//! topology they run on, checked and connected ([`Session`]), the locks it
//! takes, the questions it asks at the terminal, and the progress it prints.
//! The commands (`apply`, `plan`, `render`, `release`) use it; the dispatch
//! (`cli/mod.rs`) only parses and hands over.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use harmony::engine::EngineError;
use harmony::engine::registry::{AppEntry, RegisteredApp, ReleaseEntry, TopologyEntry};
use harmony::engine::run::{Event, Mode, Progress};
use harmony::lock::{self, Held, Holder};
use harmony::{AnyTopology, BoxFuture, Topology};

use crate::view::{Failure, Format};

#[derive(clap::Args, Debug)]
pub(super) struct Target {
    /// Apps to act on (default: every app).
    pub(super) apps: Vec<String>,
    /// Where: a topology name (see `list`) [default: local].
    #[arg(long, short = 't', env = "HARMONY_TOPOLOGY")]
    pub(super) topology: Option<String>,
}

impl Target {
    pub(super) fn topology(&self) -> &str {
        self.topology.as_deref().unwrap_or("local")
    }
}

#[derive(clap::Args, Debug)]
pub(super) struct LockWait {
    /// How long to wait for another run of the same app on the same target to finish.
    #[arg(long, value_name = "SECONDS", default_value_t = lock::DEFAULT_TIMEOUT.as_secs(), env = lock::TIMEOUT_VAR)]
    pub(super) lock_timeout: u64,
}

/// The apps a command acts on and the topology they run on, set up. Every
/// error here comes before any work: an app the topology cannot run is
/// refused in the words of the compile error a typed call would have given.
pub(super) struct Session {
    /// The apps it acts on (none for a release, which names its own).
    pub(super) apps: Vec<&'static AppEntry>,
    /// What its writes lock on the topology: the apps', or the released app's.
    locked: Vec<&'static str>,
    pub(super) topology: Arc<AnyTopology>,
    pub(super) runtime: tokio::runtime::Runtime,
}

impl Session {
    pub(super) fn open(apps: &[String], topology: &str) -> Result<Self, Failure> {
        let entry = crate::topology(topology).ok_or_else(|| unknown_topology(topology))?;
        let named = !apps.is_empty();
        let mut apps: Vec<&'static AppEntry> = if named {
            apps.iter()
                .map(|name| crate::app(name).ok_or_else(|| unknown_app(name)))
                .collect::<Result<_, _>>()?
        } else {
            crate::apps()
        };
        if apps.is_empty() {
            return Err(Failure::new("this binary carries no apps")
                .help("register one with `harmony::app! { name: \"…\", score: … }` and name its crate in `harmony_registry::main!(…)`"));
        }
        if !named {
            // Every app means every app that runs here; the others are named, not failed.
            let (here, elsewhere): (Vec<_>, Vec<_>) = apps.into_iter().partition(|app| entry.lacks(&(app.needs)()).is_empty());
            for app in &elsewhere {
                eprintln!(
                    "note: app `{}` is left out: it runs on {} (name it to see why not on `{}`)",
                    app.name,
                    join_or_none(&crate::runs_on(&(app.needs)())),
                    entry.name
                );
            }
            if here.is_empty() {
                return Err(Failure::new(format!("no app of this binary runs on topology `{}`", entry.name))
                    .help("pick another topology with `--topology` (`list` shows where each app runs)"));
            }
            apps = here;
        }
        for app in &apps {
            let lacks = entry.lacks(&(app.needs)());
            if !lacks.is_empty() {
                return Err(cannot_run(app, entry, &lacks));
            }
        }
        let locked = apps.iter().map(|a| a.name).collect();
        Ok(Self {
            apps,
            locked,
            topology: connect(entry)?,
            runtime: runtime(),
        })
    }

    /// The session of a release of `release` on `topology`: refused, before
    /// any work, when the topology lacks what releasing needs.
    pub(super) fn for_release(release: &ReleaseEntry, topology: &str) -> Result<Self, Failure> {
        let entry = crate::topology(topology).ok_or_else(|| unknown_topology(topology))?;
        let needs = (release.needs)();
        let lacks = entry.lacks(&needs);
        if !lacks.is_empty() {
            let mut f =
                Failure::new(format!("`{}` cannot be released on topology `{topology}`", release.name)).at(release.location.to_string());
            for cap in &lacks {
                f = f.note(format!("topology `{}` does not provide capability `{cap}`", entry.type_name));
            }
            let elsewhere = crate::runs_on(&needs);
            return Err(if elsewhere.is_empty() {
                f.help(format!("release it on a topology that provides {}", needs.join(", ")))
            } else {
                f.help(format!("it can be released on: {}", elsewhere.join(", ")))
            });
        }
        Ok(Self {
            apps: Vec::new(),
            locked: vec![release.name],
            topology: connect(entry)?,
            runtime: runtime(),
        })
    }

    /// Ask `app` for what `command` computes on this session's topology
    /// (`|app, topology| app.plan(topology)`).
    pub(super) fn ask<'s, T>(
        &'s self,
        app: &AppEntry,
        command: impl FnOnce(&'static dyn RegisteredApp, &'s AnyTopology) -> BoxFuture<'s, Result<T, EngineError>>,
    ) -> Result<T, Failure> {
        self.runtime
            .block_on(command(app.app, &self.topology))
            .map_err(|e| Failure::of(&e).within(self.context_of(app)))
    }

    /// Where a failure of `app` happened, for its first line.
    pub(super) fn context_of(&self, app: &AppEntry) -> String {
        format!("app `{}` on `{}`, declared at {}", app.name, self.topology.name(), app.location)
    }

    /// [`ask`](Self::ask), stopped by Ctrl-C at the next await (a safe point:
    /// a request in flight either landed or did not, and the target's record
    /// already lists everything it may have created). Only for the writes
    /// themselves: once Ctrl-C is caught it is caught for the rest of the
    /// process, so a question at the terminal must come before.
    pub(super) fn ask_interruptible<'s, T>(
        &'s self,
        app: &AppEntry,
        command: impl FnOnce(&'static dyn RegisteredApp, &'s AnyTopology) -> BoxFuture<'s, Result<T, EngineError>>,
    ) -> Result<T, Failure> {
        let work = command(app.app, &self.topology);
        let finished = self.runtime.block_on(async {
            tokio::select! {
                outcome = work => Ok(outcome),
                signal = stop_signal() => Err(signal),
            }
        });
        let outcome = match finished {
            Ok(outcome) => outcome,
            Err(signal) => {
                return Err(Failure::new(format!(
                    "interrupted ({signal}): app `{}` on `{}` stopped at a safe point",
                    app.name,
                    self.topology.name()
                ))
                .note("what was applied stays applied, and the target's record lists everything that may exist")
                .help("apply again to finish: it starts from what is there, and nothing is applied twice"));
            }
        };
        outcome.map_err(|e| Failure::of(&e).within(self.context_of(app)))
    }

    /// Take the lock of every app of the session on its topology, in name
    /// order (so two runs never wait on each other), waiting up to `wait`.
    pub(super) fn lock(&self, command: &str, wait: &LockWait, format: Format) -> Result<Locks, Failure> {
        lock_apps(&self.runtime, &self.topology, &self.locked, command, wait, format)
    }
}

/// The first of Ctrl-C (SIGINT) and SIGTERM (what a CI runner or a process
/// supervisor sends to stop a job), named.
pub(super) async fn stop_signal() -> &'static str {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            // Not catchable here: only Ctrl-C stops at a safe point.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = terminate => "SIGTERM",
    }
}

/// The locks a run holds; given back when it ends, however it ends.
pub(super) struct Locks {
    held: Vec<Box<dyn Held>>,
}

impl Locks {
    pub(super) fn release(self, runtime: &tokio::runtime::Runtime) -> Result<(), Failure> {
        for lock in self.held {
            runtime
                .block_on(lock.release())
                .map_err(|e| Failure::of(&e).note("the run itself finished; the next one will take the lock over"))?;
        }
        Ok(())
    }
}

pub(super) fn lock_apps(
    runtime: &tokio::runtime::Runtime,
    topology: &AnyTopology,
    apps: &[&str],
    command: &str,
    wait: &LockWait,
    format: Format,
) -> Result<Locks, Failure> {
    let me = Holder::this_process(command);
    let mut names = apps.to_vec();
    names.sort_unstable();
    names.dedup();
    let mut locks = Locks { held: Vec::new() };
    for app in names {
        let waiting = move |holder: Option<&Holder>| {
            if format == Format::Text {
                let who = holder.map_or_else(|| "another run".to_owned(), Holder::describe);
                eprintln!(
                    "  waiting for `{app}`: it is locked by {who} (up to {}s, `--lock-timeout`)",
                    wait.lock_timeout
                );
            }
        };
        let attempt = || topology.try_lock(app, &me);
        let taken = runtime.block_on(lock::acquire(attempt, app, Duration::from_secs(wait.lock_timeout), &waiting));
        match taken {
            Ok((held, took_over)) => {
                if let (Some(ended), Format::Text) = (took_over, format) {
                    eprintln!(
                        "  note: took over the lock of `{app}` from {}, which ended without releasing it",
                        ended.describe()
                    );
                }
                locks.held.push(held);
            }
            Err(e) => {
                let _ = locks.release(runtime);
                return Err(Failure::of(&e));
            }
        }
    }
    Ok(locks)
}

pub(super) fn connect(topology: &TopologyEntry) -> Result<Arc<AnyTopology>, Failure> {
    (topology.connect)()
        .map(Arc::new)
        .map_err(|e| Failure::caused(format!("topology `{}` could not be set up", topology.name), &e))
}

pub(super) fn unknown_topology(name: &str) -> Failure {
    let names: Vec<&str> = crate::topologies().iter().map(|t| t.name).collect();
    let f = Failure::new(format!("unknown topology `{name}`")).note(format!("the topologies are: {}", names.join(", ")));
    match crate::closest(name, names.iter().copied()) {
        Some(c) => f.help(format!("did you mean `--topology {c}`?")),
        None => f.help("pass one of them with `--topology`"),
    }
}

pub(super) fn unknown_app(name: &str) -> Failure {
    let names: Vec<&str> = crate::apps().iter().map(|a| a.name).collect();
    let f = Failure::new(format!("no app named `{name}`")).note(format!("the apps are: {}", names.join(", ")));
    match crate::closest(name, names.iter().copied()) {
        Some(c) => f.help(format!("did you mean `{c}`?")),
        None => f.help("`list` shows what this binary carries"),
    }
}

pub(super) fn join_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "no topology of this binary".into()
    } else {
        names.join(", ")
    }
}

/// Said in the words of the compile error a typed call would have given.
pub(super) fn cannot_run(app: &AppEntry, topology: &TopologyEntry, lacks: &[&str]) -> Failure {
    let mut f = Failure::new(format!("app `{}` cannot run on topology `{}`", app.name, topology.name)).at(app.location.to_string());
    for cap in lacks {
        f = f.note(format!("topology `{}` does not provide capability `{cap}`", topology.type_name));
    }
    let elsewhere = crate::runs_on(&(app.needs)());
    if elsewhere.is_empty() {
        f.help("no topology this binary carries provides everything it needs; declare one that does with `harmony::topology!` and link its crate")
    } else {
        f.help(format!("it runs on: {}", elsewhere.join(", ")))
    }
}

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
}

/// Go on only if the user said `--yes`, or answers `yes` at a terminal. A
/// command that cannot ask (standard input is not a terminal: a CI job, a
/// script, `< /dev/null`) and was not told `--yes` writes nothing.
pub(super) fn confirmed(command: &str, yes: bool, question: &str) -> Result<(), Failure> {
    if yes {
        return Ok(());
    }
    if !at_a_terminal() {
        return Err(Failure::new(format!(
            "`{command}` writes only when confirmed, and standard input is not a terminal to ask at"
        ))
        .help("nothing was changed; pass `--yes` to confirm on the command line (in CI or a script), or run it at a terminal"));
    }
    if confirm(question)? {
        Ok(())
    } else {
        Err(Failure::new(format!("{command} cancelled")).help("nothing was changed; pass `--yes` to confirm without being asked"))
    }
}

/// Whether a person confirms, at a terminal.
pub(super) fn confirm(question: &str) -> Result<bool, Failure> {
    use std::io::Write as _;
    print!("\n{question} Only `yes` goes on: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::new(format!("could not read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}

pub(super) fn at_a_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Progress goes to stderr, so stdout stays the result.
pub(super) struct Printer;

impl Progress for Printer {
    fn event(&self, event: &Event) {
        match event {
            Event::Deployed { path, objects, mode } => {
                let verb = if *mode == Mode::DryRun { "checked" } else { "applied" };
                eprintln!("  {verb} {path} ({objects} object{})", if *objects == 1 { "" } else { "s" });
            }
            Event::Verified { path, check } => eprintln!("  verified {path} ({check} passed)"),
            Event::Pruned { objects } => {
                for o in objects {
                    eprintln!("  removed {o}");
                }
            }
            Event::Release { line } => eprintln!("  {line}"),
        }
    }
}

pub(super) fn progress(format: Format) -> Arc<dyn Progress> {
    match format {
        Format::Text => Arc::new(Printer),
        Format::Json => Arc::new(harmony::engine::run::Silent),
    }
}

/// This binary's name, as saved plans record it.
pub(super) fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "harmony".into())
}
