//! The CLI every deploy binary gets: `list`, `explain`, `plan`, `dry-run`,
//! `apply`, `render`, over whatever the binary registered.

use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use harmony::engine::EngineError;
use harmony::plan::{Plan, Summary};
use harmony::registry::{AppEntry, Outcome, ReleaseRunError, Request, RunError, Runner, TopologyEntry};
use harmony::release::ReleaseTag;
use harmony::run::{Event, Mode, Progress};
use harmony::secret::REDACTED;
use serde_json::{Value, json};

pub use crate::output::{Failure, Format};
use crate::output::{print_json, report};

#[derive(Parser, Debug)]
#[command(name = "harmony", about = "Plan, verify and apply the apps this binary carries.", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Output for people (`text`) or machines (`json`).
    #[arg(long, global = true, value_enum, default_value = "text")]
    output: Format,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// What this binary carries: apps, Scores, topologies, capabilities.
    List,
    /// Everything known about one app, Score, topology or capability.
    Explain { name: String },
    /// What would change, per object. Exit 0: no changes, 2: changes, 1: error.
    Plan(Target),
    /// The whole pipeline with every write suppressed, so validation errors surface.
    DryRun(Target),
    /// Plan, confirm, deploy in order (each step gated by its smoke test), prune.
    Apply {
        #[command(flatten)]
        target: Target,
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Build, push and deliver the release a git tag names: `<app>-<component>-v<semver>`.
    /// A malformed or unknown tag fails before any work.
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
    },
    /// Write the rendered manifests (secret values redacted) for review or GitOps.
    Render {
        #[command(flatten)]
        target: Target,
        /// Directory to write into (`<dir>/<app>/<namespace>/<kind>-<name>.yaml`); `-` for stdout.
        #[arg(long, default_value = "-")]
        out: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct Target {
    /// Apps to act on (default: every app).
    apps: Vec<String>,
    /// Where: a topology name (see `list`).
    #[arg(long, short = 't', default_value = "local", env = "HARMONY_TOPOLOGY")]
    topology: String,
}

/// Parse the command line, run it, and turn the result into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = cli.output;
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
    match cli.command {
        Command::List => {
            print!("{}", list(format));
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { name } => {
            print!("{}", explain(&name, format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(target) => {
            let plans = plan_all(&target, |_| Request::Plan)?;
            show_plans(&plans, format);
            let changed = plans.iter().any(|p| !p.is_empty());
            Ok(ExitCode::from(if changed { 2 } else { 0 }))
        }
        Command::DryRun(target) => {
            let progress = progress(format);
            let plans = plan_all(&target, |_| Request::DryRun {
                progress: progress.clone(),
            })?;
            show_plans(&plans, format);
            if format == Format::Text {
                println!("Dry run passed: every step was accepted; nothing was written.");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { target, yes } => apply(&target, yes, format),
        Command::Release {
            from_tag,
            topology,
            dry_run,
        } => release(&from_tag, &topology, dry_run, format).map(|()| ExitCode::SUCCESS),
        Command::Render { target, out } => render(&target, &out, format).map(|()| ExitCode::SUCCESS),
    }
}

/// The apps a command acts on, with their runner on the chosen topology.
/// Every error here comes before any work.
fn select(target: &Target) -> Result<Vec<(&'static AppEntry, Runner)>, Failure> {
    let topology = crate::topology(&target.topology).ok_or_else(|| unknown_topology(&target.topology))?;
    let apps = if target.apps.is_empty() {
        crate::apps()
    } else {
        target
            .apps
            .iter()
            .map(|name| crate::app(name).ok_or_else(|| unknown_app(name)))
            .collect::<Result<_, _>>()?
    };
    if apps.is_empty() {
        return Err(Failure::new("this binary carries no apps")
            .help("register one with `harmony::app! { name: \"…\", score: … }` and name its crate in `harmony_registry::main!(…)`"));
    }
    apps.into_iter()
        .map(|app| {
            let runner = (app.runners)().into_iter().find(|r| r.topology == topology.name);
            runner.map(|r| (app, r)).ok_or_else(|| cannot_run(app, topology))
        })
        .collect()
}

fn unknown_topology(name: &str) -> Failure {
    let names: Vec<&str> = crate::topologies().iter().map(|t| t.name).collect();
    let mut f = Failure::new(format!("unknown topology `{name}`")).note(format!("the topologies are: {}", names.join(", ")));
    if let Some(c) = crate::closest(name, names.iter().copied()) {
        f = f.help(format!("did you mean `--topology {c}`?"));
    } else {
        f = f.help("pass one of them with `--topology`");
    }
    f
}

fn unknown_app(name: &str) -> Failure {
    let names: Vec<&str> = crate::apps().iter().map(|a| a.name).collect();
    let mut f = Failure::new(format!("no app named `{name}`")).note(format!("the apps are: {}", names.join(", ")));
    if let Some(c) = crate::closest(name, names.iter().copied()) {
        f = f.help(format!("did you mean `{c}`?"));
    } else {
        f = f.help("`list` shows what this binary carries");
    }
    f
}

/// Said in the words of the compile error a typed call would have given.
fn cannot_run(app: &AppEntry, topology: &TopologyEntry) -> Failure {
    let missing = crate::missing(app, topology);
    let mut f = Failure::new(format!("app `{}` cannot run on topology `{}`", app.name, topology.name)).at(app.location.to_string());
    for cap in &missing {
        f = f.note(format!("topology `{}` does not provide capability `{cap}`", topology.type_name));
    }
    let elsewhere: Vec<&str> = (app.runners)().iter().map(|r| r.topology).collect();
    if elsewhere.is_empty() {
        f.help("no built-in topology provides everything it needs; run it from a binary that names a topology that does")
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

fn plan_all(target: &Target, request: impl Fn(&AppEntry) -> Request) -> Result<Vec<Plan>, Failure> {
    let selected = select(target)?;
    let rt = runtime();
    selected
        .iter()
        .map(|(app, runner)| match rt.block_on(runner.run(request(app))) {
            Ok(Outcome::Planned(plan)) => Ok(plan),
            Ok(Outcome::Rendered(_)) => Err(Failure::new("internal: a plan request rendered instead")),
            Err(e) => Err(failure(app, &target.topology, e)),
        })
        .collect()
}

fn failure(app: &AppEntry, topology: &str, e: RunError) -> Failure {
    match e {
        RunError::Topology(e) => Failure::new(format!("topology `{topology}` could not be set up"))
            .note(e.to_string())
            .help(e.help()),
        RunError::Engine(e) => {
            let location = match e.location() {
                Some(path) => format!("{path} (app `{}` on `{topology}`, declared at {})", app.name, app.location),
                None => format!("app `{}` on `{topology}`, declared at {}", app.name, app.location),
            };
            let message = match &e {
                EngineError::Interpret { source, .. } => source.to_string(),
                other => other.to_string(),
            };
            let why = match &e {
                EngineError::Interpret { source, .. } => source.why(),
                other => other.why(),
            };
            Failure::new(message).at(location).note(why).help(e.help())
        }
    }
}

fn show_plans(plans: &[Plan], format: Format) {
    let mut total = Summary::default();
    for p in plans {
        total += p.summary();
    }
    match format {
        Format::Json => print_json(&json!({ "plans": plans, "summary": total })),
        Format::Text => {
            let mut out = std::io::stdout().lock();
            for p in plans {
                let _ = write!(out, "{}", p.to_text());
            }
            if total.is_empty() {
                let _ = writeln!(out, "\nNo changes: the target matches the desired state.");
            } else {
                let _ = writeln!(out, "\nPlan: {total}.");
            }
        }
    }
}

fn apply(target: &Target, yes: bool, format: Format) -> Result<ExitCode, Failure> {
    let plans = plan_all(target, |_| Request::Plan)?;
    show_plans(&plans, format);
    if plans.iter().all(Plan::is_empty) {
        return Ok(ExitCode::SUCCESS);
    }
    if !yes && std::io::stdin().is_terminal() && !confirm()? {
        return Err(Failure::new("apply cancelled").help("nothing was changed; pass `--yes` to apply without asking"));
    }
    let progress = progress(format);
    let selected = select(target)?;
    let rt = runtime();
    let mut applied = Vec::new();
    for ((app, runner), planned) in selected.iter().zip(&plans) {
        if planned.is_empty() {
            continue;
        }
        match rt.block_on(runner.run(Request::Apply {
            progress: progress.clone(),
        })) {
            Ok(Outcome::Planned(plan)) => applied.push(plan),
            Ok(Outcome::Rendered(_)) => return Err(Failure::new("internal: an apply request rendered instead")),
            Err(e) => return Err(failure(app, &target.topology, e)),
        }
    }
    let mut total = Summary::default();
    for p in &applied {
        total += p.summary();
    }
    match format {
        Format::Text => println!(
            "Apply complete: {} added, {} changed, {} removed; every smoke test passed.",
            total.add, total.change, total.remove
        ),
        Format::Json => print_json(&json!({ "applied": applied, "summary": total })),
    }
    Ok(ExitCode::SUCCESS)
}

fn release(tag: &str, topology: &str, dry_run: bool, format: Format) -> Result<(), Failure> {
    let releases = crate::releases();
    let names: Vec<&str> = releases.iter().map(|r| r.name).collect();
    let parsed = ReleaseTag::parse(tag, names.iter().copied()).map_err(|e| {
        let mut f = Failure::new(e.to_string()).help(e.help());
        if names.is_empty() {
            f = f.note("this binary carries no releasable app: give an `app!` an `image` and a `chart`");
        }
        f
    })?;
    let entry = releases
        .iter()
        .find(|r| r.name == parsed.app())
        .expect("the tag names a registered release");
    let topology_entry = crate::topology(topology).ok_or_else(|| unknown_topology(topology))?;
    let runner = (entry.runners)()
        .into_iter()
        .find(|r| r.topology == topology_entry.name)
        .ok_or_else(|| {
            Failure::new(format!("`{}` cannot be released on topology `{topology}`", entry.name))
                .at(entry.location.to_string())
                .help("release it on a topology that provides ContainerBuilder, OciRegistry, HelmRegistry and ContinuousDelivery")
        })?;
    let mode = if dry_run { Mode::DryRun } else { Mode::Apply };
    let result = runtime().block_on(runner.run(parsed.version().clone(), mode, progress(format)));
    let plan = result.map_err(|e| match e {
        ReleaseRunError::Topology(e) => Failure::new(format!("topology `{topology}` could not be set up"))
            .note(e.to_string())
            .help(e.help()),
        ReleaseRunError::Release(e) => Failure::new(e.to_string())
            .at(format!("release `{parsed}` on `{topology}`, declared at {}", entry.location))
            .note(e.why())
            .help(e.help()),
    })?;
    match format {
        Format::Text => {
            print!("{}", plan.to_text());
            if dry_run {
                println!("\nDry run: built and planned; nothing was pushed or delivered.");
            } else {
                println!("\nReleased {} {} through {}.", plan.app, plan.version, entry.stages.join(", "));
            }
        }
        Format::Json => print_json(&plan),
    }
    Ok(())
}

fn confirm() -> Result<bool, Failure> {
    print!("\nApply these changes? Only `yes` applies: ");
    let _ = std::io::stdout().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::new(format!("could not read the answer: {e}")))?;
    Ok(answer.trim() == "yes")
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

fn render(target: &Target, out: &Path, format: Format) -> Result<(), Failure> {
    let selected = select(target)?;
    let rt = runtime();
    let to_stdout = out.as_os_str() == "-";
    let stdout = std::io::stdout();
    let mut sink = BufWriter::with_capacity(1 << 20, stdout.lock());
    let mut written = 0usize;
    for (app, runner) in &selected {
        let objects = match rt.block_on(runner.run(Request::Render)) {
            Ok(Outcome::Rendered(objects)) => objects,
            Ok(Outcome::Planned(_)) => return Err(Failure::new("internal: a render request planned instead")),
            Err(e) => return Err(failure(app, &target.topology, e)),
        };
        for o in &objects {
            // Only a Secret's body differs from what was rendered: borrow the rest.
            let body: std::borrow::Cow<'_, Value> = if o.id().is_secret() {
                std::borrow::Cow::Owned(for_review(o))
            } else {
                std::borrow::Cow::Borrowed(o.body())
            };
            if to_stdout {
                let r = match format {
                    Format::Text => sink
                        .write_all(b"---\n")
                        .map_err(|e| e.to_string())
                        .and_then(|()| serde_yaml_ng_to_writer(&mut sink, &body)),
                    Format::Json => serde_json::to_writer(&mut sink, &*body)
                        .map_err(|e| e.to_string())
                        .and_then(|()| sink.write_all(b"\n").map_err(|e| e.to_string())),
                };
                r.map_err(|e| Failure::new(format!("could not write the render: {e}")))?;
            } else {
                let id = o.id();
                let dir = out.join(app.name).join(id.namespace.as_deref().unwrap_or("_cluster"));
                let path = dir.join(format!("{}.yaml", id.file_stem()));
                let text = serde_yaml_ng::to_string(&*body).map_err(|e| Failure::new(e.to_string()))?;
                std::fs::create_dir_all(&dir)
                    .and_then(|()| std::fs::write(&path, text))
                    .map_err(|e| {
                        Failure::new(format!("could not write `{}`: {e}", path.display())).help("pass `--out` a directory you can write")
                    })?;
            }
            written += 1;
        }
    }
    sink.flush().map_err(|e| Failure::new(format!("could not write the render: {e}")))?;
    if !to_stdout && format == Format::Text {
        println!("Rendered {written} objects into {}.", out.display());
    }
    Ok(())
}

fn serde_yaml_ng_to_writer(w: &mut impl Write, v: &Value) -> Result<(), String> {
    serde_yaml_ng::to_writer(w, v).map_err(|e| e.to_string())
}

/// An object as a render shows it, for review: secret values are `<redacted>`.
pub fn for_review(o: &harmony::Object) -> Value {
    let mut body = o.body().clone();
    if o.id().is_secret() {
        for field in ["data", "stringData"] {
            if let Some(Value::Object(map)) = body.get_mut(field) {
                for v in map.values_mut() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
    body
}

/// What `list` prints.
pub fn list(format: Format) -> String {
    let apps = crate::apps();
    let scores = crate::scores();
    let topologies = crate::topologies();
    let capabilities = crate::capabilities();
    if format == Format::Json {
        let apps: Vec<Value> = apps
            .iter()
            .map(|a| json!({"name": a.name, "doc": a.doc, "score": (a.score)(), "topologies": (a.runners)().iter().map(|r| r.topology).collect::<Vec<_>>(), "location": a.location.to_string()}))
            .collect();
        let scores: Vec<Value> = scores
            .iter()
            .map(|s| json!({"name": s.name, "module": s.module, "doc": first_line(s.doc), "requires": s.requires, "topologies": (s.topologies)(), "location": s.location.to_string()}))
            .collect();
        let topologies: Vec<Value> = topologies
            .iter()
            .map(|t| json!({"name": t.name, "about": t.about, "capabilities": t.capabilities}))
            .collect();
        let capabilities: Vec<Value> = capabilities.iter().map(|c| json!({"name": c.name, "about": c.about})).collect();
        let releases: Vec<Value> = crate::releases()
            .iter()
            .map(
                |r| json!({"name": r.name, "stages": r.stages, "topologies": (r.runners)().iter().map(|r| r.topology).collect::<Vec<_>>()}),
            )
            .collect();
        return json_text(
            &json!({"apps": apps, "releases": releases, "scores": scores, "topologies": topologies, "capabilities": capabilities}),
        );
    }
    let mut out = String::from("Apps:\n");
    for a in &apps {
        let runs: Vec<_> = (a.runners)().iter().map(|r| r.topology).collect();
        out.push_str(&format!("  {:<20} {}  [{}]\n", a.name, first_line(a.doc), runs.join(", ")));
    }
    let releases = crate::releases();
    if !releases.is_empty() {
        out.push_str("\nReleases (`release --from-tag <name>-v<semver>`):\n");
        for r in &releases {
            let on: Vec<_> = (r.runners)().iter().map(|r| r.topology).collect();
            out.push_str(&format!("  {:<20} through {}  [{}]\n", r.name, r.stages.join(", "), on.join(", ")));
        }
    }
    out.push_str("\nScores:\n");
    for s in &scores {
        out.push_str(&format!(
            "  {:<20} {}  [{}]\n",
            s.name,
            first_line(s.doc),
            (s.topologies)().join(", ")
        ));
    }
    out.push_str("\nTopologies:\n");
    for t in &topologies {
        out.push_str(&format!("  {:<20} {}  provides [{}]\n", t.name, t.about, t.capabilities.join(", ")));
    }
    out.push_str("\nCapabilities:\n");
    for c in &capabilities {
        out.push_str(&format!("  {:<20} {}\n", c.name, c.about));
    }
    out
}

fn json_text(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("plain JSON");
    s.push('\n');
    s
}

fn first_line(doc: &str) -> &str {
    doc.lines().next().unwrap_or("")
}

/// What `explain NAME` prints.
pub fn explain(name: &str, format: Format) -> Result<String, Failure> {
    use std::fmt::Write as _;
    let mut o = String::new();
    if let Some(a) = crate::app(name) {
        let score = crate::score_of(a);
        let runs: Vec<_> = (a.runners)().iter().map(|r| r.topology).collect();
        let needs = score.map(crate::needs).unwrap_or_default();
        if format == Format::Json {
            o = json_text(
                &json!({"kind": "app", "name": a.name, "doc": a.doc, "score": (a.score)(), "needs": needs, "topologies": runs, "location": a.location.to_string()}),
            );
        } else {
            let _ = writeln!(o, "app {}\n", a.name);
            print_doc(&mut o, a.doc);
            let _ = writeln!(o, "  root Score:  {}", (a.score)());
            let _ = writeln!(o, "  needs:       {}", join_or(&needs, "nothing"));
            let _ = writeln!(o, "  runs on:     {}", join_or(&runs, "no built-in topology"));
            if let Some(r) = crate::releases().into_iter().find(|r| r.name == a.name) {
                let on: Vec<&str> = (r.runners)().iter().map(|r| r.topology).collect();
                let _ = writeln!(
                    o,
                    "  releases:    `release --from-tag {}-v<semver>` through {} (on {})",
                    r.name,
                    r.stages.join(", "),
                    on.join(", ")
                );
            }
            let _ = writeln!(o, "  declared at: {}", a.location);
        }
        return Ok(o);
    }
    if let Some(s) = crate::scores().into_iter().find(|s| s.name == name) {
        let topologies = (s.topologies)();
        if format == Format::Json {
            let fields: Vec<Value> = s
                .fields
                .iter()
                .map(|f| json!({"name": f.name, "type": f.ty, "doc": f.doc, "child": f.child, "secret": f.secret}))
                .collect();
            o = json_text(
                &json!({"kind": "score", "name": s.name, "module": s.module, "doc": s.doc, "requires": s.requires, "smoke": s.smoke, "fields": fields, "topologies": topologies, "location": s.location.to_string()}),
            );
        } else {
            let _ = writeln!(o, "Score {}::{}\n", s.module, s.name);
            print_doc(&mut o, s.doc);
            let kind = if s.fields.iter().any(|f| f.child) {
                "composite: deploys its children in order"
            } else {
                "leaf: renders its own objects"
            };
            let _ = writeln!(o, "  kind:        {kind}");
            let _ = writeln!(o, "  requires:    {}", join_or(&crate::needs(s), "nothing"));
            let _ = writeln!(
                o,
                "  smoke test:  {}",
                s.smoke.unwrap_or("the topology's verification of what it rendered")
            );
            let _ = writeln!(o, "  runs on:     {}", join_or(&topologies, "no built-in topology"));
            let _ = writeln!(o, "  declared at: {}", s.location);
            let _ = writeln!(o, "  fields:");
            for f in s.fields {
                let mut tags = Vec::new();
                if f.child {
                    tags.push("child");
                }
                if f.secret {
                    tags.push("secret");
                }
                let tags = if tags.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", tags.join(", "))
                };
                let doc = if f.doc.is_empty() {
                    String::new()
                } else {
                    format!("  {}", first_line(f.doc))
                };
                let _ = writeln!(o, "    {}: {}{tags}{doc}", f.name, f.ty);
            }
        }
        return Ok(o);
    }
    if let Some(t) = crate::topology(name) {
        let runs: Vec<&str> = crate::scores_on(t.name).iter().map(|s| s.name).collect();
        if format == Format::Json {
            o = json_text(
                &json!({"kind": "topology", "name": t.name, "type": t.type_name, "about": t.about, "capabilities": t.capabilities, "scores": runs}),
            );
        } else {
            let _ = writeln!(o, "topology {} ({})\n\n  {}\n", t.name, t.type_name, t.about);
            let _ = writeln!(o, "  provides:    {}", t.capabilities.join(", "));
            let _ = writeln!(o, "  runs Scores: {}", join_or(&runs, "none registered"));
        }
        return Ok(o);
    }
    if let Some(c) = crate::capabilities().into_iter().find(|c| c.name == name) {
        let providers: Vec<&str> = crate::topologies()
            .iter()
            .filter(|t| t.capabilities.contains(&c.name))
            .map(|t| t.name)
            .collect();
        let users: Vec<&str> = crate::scores_requiring(c.name).iter().map(|s| s.name).collect();
        if format == Format::Json {
            o = json_text(&json!({"kind": "capability", "name": c.name, "about": c.about, "provided_by": providers, "required_by": users}));
        } else {
            let _ = writeln!(o, "capability {}\n\n  {}\n", c.name, c.about);
            let _ = writeln!(o, "  provided by: {}", join_or(&providers, "no built-in topology"));
            let _ = writeln!(
                o,
                "  required by: {}",
                join_or(&users, "no registered Score (beyond every leaf's `K8sDeploy`)")
            );
        }
        return Ok(o);
    }
    let all: Vec<&str> = crate::apps()
        .iter()
        .map(|a| a.name)
        .chain(crate::scores().iter().map(|s| s.name))
        .chain(crate::topologies().iter().map(|t| t.name))
        .chain(crate::capabilities().iter().map(|c| c.name))
        .collect();
    let mut f = Failure::new(format!("nothing named `{name}` is registered"));
    f = match crate::closest(name, all.iter().copied()) {
        Some(c) => f.help(format!("did you mean `{c}`?")),
        None => f.help("`list` shows every app, Score, topology and capability"),
    };
    Err(f)
}

fn print_doc(o: &mut String, doc: &str) {
    if !doc.is_empty() {
        for l in doc.lines() {
            o.push_str("  ");
            o.push_str(l);
            o.push('\n');
        }
        o.push('\n');
    }
}

fn join_or(items: &[&str], none: &str) -> String {
    if items.is_empty() { none.to_owned() } else { items.join(", ") }
}
