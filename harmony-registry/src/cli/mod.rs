//! The CLI every deploy binary gets, one module per command: `list`,
//! `explain`, `plan`, `dry-run`, `apply`, `release`, `render`. Each command
//! makes a typed view (`crate::view`) that both outputs are printed from.

mod apply;
mod explain;
mod list;
mod logs;
mod plan;
pub mod plugin;
mod release;
mod render;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use harmony::lock::{self, Held, Holder};
use harmony::registry::{AppEntry, Outcome, Request, TopologyEntry};
use harmony::run::{Event, Mode, Progress};
use harmony::{AnyTopology, Topology};

pub use self::explain::ExplainView;
pub use self::list::ListView;
pub use self::render::for_review;
use crate::view::report;
pub use crate::view::{Failure, Format};

#[derive(Parser, Debug)]
#[command(name = "harmony", about = "Plan, verify and apply the apps this binary carries.", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Output for people (`text`) or machines (`json`, see docs/cli-json.md).
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Format,
    /// Log what the run does on stderr, span by span (`-vv`: every API request too; `RUST_LOG` chooses instead).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// What this binary carries: apps, Scores, topologies, capabilities.
    List,
    /// Everything known about one app, Score, topology or capability.
    Explain { name: String },
    /// What would change, per object, and what of the app is not healthy now. Exit 0: no
    /// changes, 2: changes, 3: no changes but something is not healthy, 1: error.
    Plan {
        #[command(flatten)]
        target: Target,
        /// Save the plan to FILE, for `apply --plan FILE` to carry out exactly.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// The whole pipeline with every write suppressed, so validation errors surface.
    DryRun(Target),
    /// Plan, confirm, then carry out exactly that plan: check everything, deploy in
    /// order (each step verified and smoke-tested), prune.
    Apply {
        #[command(flatten)]
        target: Target,
        /// Apply without asking. Without it, `apply` asks at a terminal, and changes nothing
        /// when standard input is not one (a CI job must say `--yes`).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Carry out the plan `plan --out FILE` saved, exactly, or nothing (the saved plan is
        /// what was confirmed: no question asked).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// Take ownership of fields another field manager owns, instead of stopping at the conflict.
        #[arg(long)]
        force_conflicts: bool,
        #[command(flatten)]
        lock: LockWait,
    },
    /// Build, push and deliver the release a git tag names: `<app>-v<semver>`
    /// (e.g. `webapp-server-v0.1.0`). A malformed or unknown tag fails before any work.
    Release {
        /// The tag, e.g. `webapp-server-v0.1.0` (a leading `refs/tags/` is accepted).
        #[arg(long)]
        from_tag: String,
        /// Where: a topology name (see `list`).
        #[arg(long, short = 't', default_value = "local", env = "HARMONY_TOPOLOGY")]
        topology: String,
        /// Build and plan every step, push and deliver nothing.
        #[arg(long)]
        dry_run: bool,
        /// Release without asking. Without it, `release` asks at a terminal, and does
        /// nothing when standard input is not one (a CI job must say `--yes`).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Deliver again to a stage where this version failed before (by default such a
        /// stage stops the release before any work).
        #[arg(long)]
        retry_failed: bool,
        #[command(flatten)]
        lock: LockWait,
    },
    /// The plugins on PATH: `harmony-*` executables, run as `harmony <name> …`.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Write the rendered manifests (secret values redacted) for review or GitOps.
    Render {
        #[command(flatten)]
        target: Target,
        /// Directory to write into (`<dir>/<app>/<namespace>/<kind>-<name>.yaml`); `-` for stdout.
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
    /// A plugin: `harmony NAME …` runs `harmony-NAME …` from PATH.
    #[command(external_subcommand)]
    External(Vec<OsString>),
}

#[derive(Subcommand, Debug)]
enum PluginCommand {
    /// Every plugin on PATH, and warnings about files that are not, or never run.
    List,
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Apps to act on (default: every app).
    apps: Vec<String>,
    /// Where: a topology name (see `list`) [default: local].
    #[arg(long, short = 't', env = "HARMONY_TOPOLOGY")]
    topology: Option<String>,
}

impl Target {
    fn topology(&self) -> &str {
        self.topology.as_deref().unwrap_or("local")
    }
}

#[derive(clap::Args, Debug)]
struct LockWait {
    /// How long to wait for another run of the same app on the same target to finish.
    #[arg(long, value_name = "SECONDS", default_value_t = lock::DEFAULT_TIMEOUT.as_secs(), env = lock::TIMEOUT_VAR)]
    lock_timeout: u64,
}

/// Parse the command line, run it, and turn the result into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logs::init(cli.verbose);
    let format = cli.output;
    if format == Format::Json {
        harmony::run::silence_terminal_progress();
    }
    match run(cli) {
        Ok(code) => code,
        Err(failure) => {
            report(format, &failure);
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    let format = cli.output;
    if let Some((name, places)) = crate::duplicate_apps().into_iter().next() {
        let mut failure = Failure::new(format!("app `{name}` is declared {} times in this binary", places.len()));
        failure.notes = places.into_iter().map(|p| format!("declared at {p}")).collect();
        return Err(failure.help("give each `app!` its own `name`, or leave one of the crates out of `harmony_registry::main!(..)`"));
    }
    if let Some(code) = hand_to_plugin(&cli.command)? {
        return Ok(code);
    }
    match cli.command {
        Command::List => {
            let mut view = list::view();
            if !plugin::running_as_plugin() {
                let (apps, warnings) = plugin::apps_of(&plugin::scan().plugins);
                view.plugins = apps;
                view.warnings = warnings;
            }
            crate::view::emit(&view, format);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plugin {
            command: PluginCommand::List,
        } => {
            crate::view::emit(&plugin::scan(), format);
            Ok(ExitCode::SUCCESS)
        }
        Command::External(args) => {
            let plugins = plugin::scan().plugins;
            match plugin::find(&plugins, &args) {
                Some((found, rest)) => plugin::run(found, &rest),
                None => Err(unknown_command(&args, &plugins)),
            }
        }
        Command::Explain { name } => {
            crate::view::emit(&explain::view(&name)?, format);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { target, out } => plan::plan(&target, out.as_deref(), format),
        Command::DryRun(target) => plan::dry_run(&target, format),
        Command::Apply {
            target,
            yes,
            plan,
            force_conflicts,
            lock,
        } => {
            if force_conflicts {
                harmony::capability::force_conflicts();
            }
            apply::apply(&target, yes, plan.as_deref(), &lock, format)
        }
        Command::Release {
            from_tag,
            topology,
            dry_run,
            yes,
            retry_failed,
            lock,
        } => {
            if retry_failed {
                harmony::release::pipeline::retry_failed();
            }
            release::release(&from_tag, &topology, dry_run || yes, dry_run, &lock, format)
        }
        Command::Render { target, out } => render::render(&target, &out, format),
    }
}

/// When the apps a command names are all carried by one plugin and none by
/// this binary, the command is the plugin's: run it there, as it was written.
fn hand_to_plugin(command: &Command) -> Result<Option<ExitCode>, Failure> {
    let (named, release): (Vec<String>, Option<&str>) = match command {
        Command::Plan { target, .. } | Command::DryRun(target) | Command::Render { target, .. } => (target.apps.clone(), None),
        Command::Apply { target, .. } => (target.apps.clone(), None),
        Command::Release { from_tag, .. } => (Vec::new(), Some(from_tag.as_str())),
        _ => return Ok(None),
    };
    let ours = |name: &str| crate::app(name).is_some();
    let tag_ours = release.is_some_and(|tag| {
        crate::releases()
            .iter()
            .any(|r| tag.trim_start_matches("refs/tags/").starts_with(&format!("{}-v", r.name)))
    });
    let theirs: Vec<&String> = named.iter().filter(|n| !ours(n)).collect();
    if plugin::running_as_plugin() || (theirs.is_empty() && (release.is_none() || tag_ours)) {
        return Ok(None);
    }
    let (carried, _) = plugin::apps_of(&plugin::scan().plugins);
    let carrier = carried.iter().find(|p| match release {
        Some(tag) => p
            .releases
            .iter()
            .any(|r| tag.trim_start_matches("refs/tags/").starts_with(&format!("{r}-v"))),
        None => theirs.iter().all(|n| p.apps.contains(n)),
    });
    let Some(carrier) = carrier else { return Ok(None) };
    if theirs.len() != named.len() {
        let here: Vec<&str> = named.iter().filter(|n| ours(n)).map(String::as_str).collect();
        return Err(Failure::new(format!(
            "`{}` is carried by this binary and `{}` by plugin `harmony {}`",
            here.join("`, `"),
            theirs.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("`, `"),
            carrier.plugin
        ))
        .help("run the command once for each: a run acts on the apps of one binary"));
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let plugin = plugin::Plugin {
        command: carrier.plugin.clone(),
        path: carrier.path.clone(),
    };
    plugin::run(&plugin, &args).map(Some)
}

fn unknown_command(args: &[OsString], plugins: &[plugin::Plugin]) -> Failure {
    let name = args.first().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
    let known: Vec<String> = plugin::BUILT_IN
        .iter()
        .map(|s| (*s).to_owned())
        .chain(plugins.iter().map(|p| p.command.clone()))
        .collect();
    let f = Failure::new(format!("unknown command `{name}`"));
    match crate::closest(&name, known.iter().map(String::as_str)) {
        Some(c) => f.help(format!("did you mean `{c}`?")),
        None => f.help("`--help` lists the commands; `plugin list` shows the plugins on PATH (`harmony-<name>` executables)"),
    }
}

/// What `list` prints.
pub fn list(format: Format) -> String {
    crate::view::render(&list::view(), format)
}

/// What `explain NAME` prints.
pub fn explain(name: &str, format: Format) -> Result<String, Failure> {
    Ok(crate::view::render(&explain::view(name)?, format))
}

/// The apps a command acts on and the topology they run on, set up. Every
/// error here comes before any work: an app the topology cannot run is
/// refused in the words of the compile error a typed call would have given.
struct Session {
    apps: Vec<&'static AppEntry>,
    topology: Arc<AnyTopology>,
    runtime: tokio::runtime::Runtime,
}

impl Session {
    fn open(apps: &[String], topology: &str) -> Result<Self, Failure> {
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
        Ok(Self {
            apps,
            topology: connect(entry)?,
            runtime: runtime(),
        })
    }

    /// Ask `app` for `request` on this session's topology.
    fn ask(&self, app: &AppEntry, request: Request) -> Result<Outcome, Failure> {
        self.runtime
            .block_on((app.run)(self.topology.clone(), request))
            .map_err(|e| Failure::of(&e).within(self.context_of(app)))
    }

    /// Where a failure of `app` happened, for its first line.
    fn context_of(&self, app: &AppEntry) -> String {
        format!("app `{}` on `{}`, declared at {}", app.name, self.topology.name(), app.location)
    }

    /// [`ask`](Self::ask), stopped by Ctrl-C at the next await (a safe point:
    /// a request in flight either landed or did not, and the target's record
    /// already lists everything it may have created). Only for the writes
    /// themselves: once Ctrl-C is caught it is caught for the rest of the
    /// process, so a question at the terminal must come before.
    fn ask_interruptible(&self, app: &AppEntry, request: Request) -> Result<Outcome, Failure> {
        let work = (app.run)(self.topology.clone(), request);
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
    fn lock(&self, command: &str, wait: &LockWait, format: Format) -> Result<Locks, Failure> {
        let names: Vec<&str> = self.apps.iter().map(|a| a.name).collect();
        lock_apps(&self.runtime, &self.topology, &names, command, wait, format)
    }
}

/// The first of Ctrl-C (SIGINT) and SIGTERM (what a CI runner or a process
/// supervisor sends to stop a job), named.
async fn stop_signal() -> &'static str {
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
struct Locks {
    held: Vec<Box<dyn Held>>,
}

impl Locks {
    fn release(self, runtime: &tokio::runtime::Runtime) -> Result<(), Failure> {
        for lock in self.held {
            runtime
                .block_on(lock.release())
                .map_err(|e| Failure::of(&e).note("the run itself finished; the next one will take the lock over"))?;
        }
        Ok(())
    }
}

fn lock_apps(
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

fn connect(topology: &TopologyEntry) -> Result<Arc<AnyTopology>, Failure> {
    (topology.connect)()
        .map(Arc::new)
        .map_err(|e| Failure::caused(format!("topology `{}` could not be set up", topology.name), &e))
}

fn unknown_topology(name: &str) -> Failure {
    let names: Vec<&str> = crate::topologies().iter().map(|t| t.name).collect();
    let f = Failure::new(format!("unknown topology `{name}`")).note(format!("the topologies are: {}", names.join(", ")));
    match crate::closest(name, names.iter().copied()) {
        Some(c) => f.help(format!("did you mean `--topology {c}`?")),
        None => f.help("pass one of them with `--topology`"),
    }
}

fn unknown_app(name: &str) -> Failure {
    let names: Vec<&str> = crate::apps().iter().map(|a| a.name).collect();
    let f = Failure::new(format!("no app named `{name}`")).note(format!("the apps are: {}", names.join(", ")));
    match crate::closest(name, names.iter().copied()) {
        Some(c) => f.help(format!("did you mean `{c}`?")),
        None => f.help("`list` shows what this binary carries"),
    }
}

fn join_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "no topology of this binary".into()
    } else {
        names.join(", ")
    }
}

/// Said in the words of the compile error a typed call would have given.
fn cannot_run(app: &AppEntry, topology: &TopologyEntry, lacks: &[&str]) -> Failure {
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
}

/// Go on only if the user said `--yes`, or answers `yes` at a terminal. A
/// command that cannot ask (standard input is not a terminal: a CI job, a
/// script, `< /dev/null`) and was not told `--yes` writes nothing.
fn confirmed(command: &str, yes: bool, question: &str) -> Result<(), Failure> {
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
fn confirm(question: &str) -> Result<bool, Failure> {
    use std::io::Write as _;
    print!("\n{question} Only `yes` goes on: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::new(format!("could not read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
}

fn at_a_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Progress goes to stderr, so stdout stays the result.
struct Printer;

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

fn progress(format: Format) -> Arc<dyn Progress> {
    match format {
        Format::Text => Arc::new(Printer),
        Format::Json => Arc::new(harmony::run::Silent),
    }
}

/// This binary's name, as saved plans record it.
fn binary_name() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "harmony".into())
}
