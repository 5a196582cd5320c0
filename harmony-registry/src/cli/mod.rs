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
mod session;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use self::session::{LockWait, Target};

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

/// Parse the command line, run it, and turn the result into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logs::init(cli.verbose);
    let format = cli.output;
    if format == Format::Json {
        harmony::engine::run::silence_terminal_progress();
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
