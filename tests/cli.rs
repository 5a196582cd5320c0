//! The generated CLI as a user runs it: the real binary, a real state
//! directory, exit codes, and what is left on disk after every failure.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Cli {
    state: PathBuf,
    _dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self {
            state: dir.path().join("state"),
            _dir: dir,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, &[])
    }

    fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harmony"));
        cmd.args(args)
            .env("HARMONY_STATE_DIR", &self.state)
            // Builds share one cache, outside the state the tests inspect.
            .env("HARMONY_BUILD_DIR", shared_build_dir())
            .env_remove("HARMONY_TOPOLOGY")
            .env_remove("WEBAPP_DB_PASSWORD")
            // As on a newcomer's machine: `local` keeps only a digest of it, so it needs none.
            .env_remove("FLEET_NATS_AUTHORITY");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

fn shared_build_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("harmony-build")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` with its content, to prove nothing changed.
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push((e.path(), fs::read(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn plan_apply_plan_round_trip_with_exit_codes() {
    let cli = Cli::new();
    let first = cli.run(&["plan", "webapp-server"]);
    assert_eq!(code(&first), 2, "changes pending: {}", text(&first.stderr));
    assert!(text(&first.stdout).contains("Plan: 5 to add, 0 to change, 0 to remove."));

    let apply = cli.run(&["apply", "webapp-server", "--yes"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply.stderr));
    assert!(
        text(&apply.stderr).contains("verified webapp-server/server"),
        "smoke tests gate each step"
    );
    assert!(cli.state.join("webapp-server/manifests/webapp/deployment-webapp.yaml").is_file());

    let again = cli.run(&["plan", "webapp-server"]);
    assert_eq!(code(&again), 0, "{}", text(&again.stdout));
    assert!(text(&again.stdout).contains("No changes"));
}

#[test]
fn a_write_nobody_could_confirm_is_refused() {
    // `output()` runs with standard input closed, as a CI job or `< /dev/null` does.
    let cli = Cli::new();
    for args in [
        &["apply", "webapp-server"][..],
        &["release", "--from-tag", "webapp-server-v0.1.0"][..],
    ] {
        let out = cli.run(args);
        assert_eq!(code(&out), 1, "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("standard input is not a terminal"), "{err}");
        assert!(err.contains("pass `--yes`"), "{err}");
        assert!(!err.contains("built image"), "no work started: {err}");
        assert!(!cli.state.join("webapp-server/inventory.json").exists(), "{args:?} wrote");
    }
    // `--help` says both halves.
    let help = text(&cli.run(&["apply", "--help"]).stdout);
    assert!(
        help.contains("Apply without asking") && help.contains("standard input is not one"),
        "{help}"
    );
    // Once applied, an apply with nothing to change has nothing to confirm.
    assert_eq!(code(&cli.run(&["apply", "webapp-server", "--yes"])), 0);
    let again = cli.run(&["apply", "webapp-server"]);
    assert_eq!(code(&again), 0, "{}", text(&again.stderr));
}

#[test]
fn a_second_apply_without_changes_writes_nothing() {
    let cli = Cli::new();
    assert_eq!(code(&cli.run(&["apply", "webapp-server", "--yes"])), 0);
    let before = tree(&cli.state);
    let mtime = fs::metadata(cli.state.join("webapp-server/inventory.json"))
        .unwrap()
        .modified()
        .unwrap();
    let second = cli.run(&["apply", "webapp-server", "--yes"]);
    assert_eq!(code(&second), 0);
    assert!(text(&second.stdout).contains("No changes"), "{}", text(&second.stdout));
    assert_eq!(tree(&cli.state), before);
    assert_eq!(
        fs::metadata(cli.state.join("webapp-server/inventory.json"))
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
}

#[test]
fn an_unknown_topology_lists_the_valid_ones_and_does_nothing() {
    let cli = Cli::new();
    for args in [
        &["plan", "webapp-server", "--topology", "locl"][..],
        &["dry-run", "webapp-server", "--topology", "locl"],
        &["apply", "webapp-server", "--topology", "locl", "--yes"],
        &["render", "webapp-server", "-t", "locl"],
    ] {
        let out = cli.run(args);
        let cmd = args[0];
        assert_eq!(code(&out), 1, "{cmd}");
        let err = text(&out.stderr);
        assert!(err.contains("error: unknown topology `locl`"), "{err}");
        assert!(err.contains("the topologies are: ci, k8s, local"), "{err}");
        assert!(err.contains("did you mean `--topology local`?"), "{err}");
    }
    assert!(!cli.state.exists(), "nothing was written");
}

#[test]
fn an_unknown_app_suggests_the_closest() {
    let cli = Cli::new();
    let out = cli.run(&["plan", "webapp-srver"]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("did you mean `webapp-server`?"), "{}", text(&out.stderr));
}

#[test]
fn a_corrupt_state_file_is_reported_and_left_as_it_was() {
    let cli = Cli::new();
    assert_eq!(code(&cli.run(&["apply", "webapp-server", "--yes"])), 0);
    let inventory = cli.state.join("webapp-server/inventory.json");
    fs::write(&inventory, b"{\"format\": 1, \"app\": \"webapp\", \"objects\": [").unwrap();
    let before = tree(&cli.state);
    for args in [
        &["plan", "webapp-server"][..],
        &["apply", "webapp-server", "--yes"],
        &["dry-run", "webapp-server"],
    ] {
        let out = cli.run(args);
        assert_eq!(code(&out), 1, "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("inventory.json` is corrupt"), "{err}");
        assert!(err.contains("help:") && err.contains("nothing was changed"), "{err}");
    }
    assert_eq!(tree(&cli.state), before, "the corrupt state was not touched");
}

#[test]
fn an_unwritable_state_directory_is_reported_and_prior_state_kept() {
    let cli = Cli::new();
    assert_eq!(code(&cli.run(&["apply", "webapp-server", "--yes"])), 0);
    // A file where the manifests directory must be: no user, root included, can write there.
    let manifests = cli.state.join("webapp-server/manifests");
    fs::rename(&manifests, cli.state.join("manifests.moved")).unwrap();
    fs::write(&manifests, b"not a directory").unwrap();
    let before = tree(&cli.state);
    let out = cli.run_with(&["apply", "webapp-server", "--yes"], &[("WEBAPP_DB_PASSWORD", "a-new-password")]);
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(err.contains("cannot be written") || err.contains("could not create"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert_eq!(tree(&cli.state), before, "prior state intact");

    // A state directory that is itself a file.
    let file = cli._dir.path().join("a-file");
    fs::write(&file, b"x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["apply", "--yes"])
        .env("HARMONY_STATE_DIR", &file)
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("HARMONY_STATE_DIR"), "{}", text(&out.stderr));
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

#[test]
fn render_writes_reviewable_manifests_with_secrets_redacted() {
    let cli = Cli::new();
    let out_dir = cli._dir.path().join("rendered");
    let out = cli.run_with(
        &["render", "webapp-server", "--out", out_dir.to_str().unwrap()],
        &[("WEBAPP_DB_PASSWORD", "render-canary-5521")],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let secret = fs::read_to_string(out_dir.join("webapp-server/webapp/secret-webapp-database.yaml")).unwrap();
    assert!(secret.contains("password: <redacted>"), "{secret}");
    let files = tree(&out_dir);
    assert_eq!(files.len(), 5);
    assert!(files.iter().all(|(_, c)| !text(c).contains("render-canary-5521")));
    assert!(!cli.state.exists(), "render does not touch the state");
}

#[test]
fn plan_json_is_machine_readable() {
    let cli = Cli::new();
    let out = cli.run(&["plan", "webapp-server", "--output", "json"]);
    assert_eq!(code(&out), 2);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["add"], 5);
    assert_eq!(v["plans"][0]["app"], "webapp-server");
    assert_eq!(v["plans"][0]["changes"][0]["action"], "add");
}

/// The secret canary: a known value goes in through the environment and must
/// come out of no command's output, error, or file the state holds.
#[test]
fn the_secret_canary_never_appears() {
    let canary = "canary-7f3a9c-do-not-print";
    let cli = Cli::new();
    let env = [("WEBAPP_DB_PASSWORD", canary)];
    let mut outputs = Vec::new();
    for args in [
        &["plan", "webapp-server"][..],
        &["plan", "webapp-server", "--output", "json"],
        &["dry-run", "webapp-server"],
        &["apply", "webapp-server", "--yes"],
        &["plan", "webapp-server"],
        &["list"],
        &["list", "--output", "json"],
        &["explain", "webapp-server"],
        &["explain", "Credentials", "--output", "json"],
        &["render", "webapp-server"],
        &["render", "webapp-server", "--output", "json"],
        &["release", "--from-tag", "webapp-server-v0.1.0", "--yes"],
    ] {
        outputs.push(cli.run_with(args, &env));
    }
    // A changed secret is planned and applied without showing either value.
    let changed = [("WEBAPP_DB_PASSWORD", "canary-second-value-8e1")];
    outputs.push(cli.run_with(&["plan", "webapp-server"], &changed));
    outputs.push(cli.run_with(&["apply", "webapp-server", "--yes"], &changed));
    // A saved plan holds digests only.
    let saved = cli._dir.path().join("saved-plan.json");
    outputs.push(cli.run_with(
        &["plan", "webapp-server", "--out", saved.to_str().unwrap(), "--output", "json"],
        &env,
    ));
    assert!(!text(&fs::read(&saved).unwrap()).contains(canary), "the saved plan holds no secret");

    // And an apply that fails (corrupt state) shows it in no error either.
    fs::write(cli.state.join("webapp-server/inventory.json"), b"[").unwrap();
    outputs.push(cli.run_with(&["apply", "webapp-server", "--yes"], &env));
    assert_eq!(code(outputs.last().unwrap()), 1);

    let plan = text(&outputs[12].stdout);
    assert!(plan.contains("stringData.password: \"<redacted>\" -> \"<redacted>\""), "{plan}");
    for o in &outputs {
        for stream in [&o.stdout, &o.stderr] {
            let s = text(stream);
            assert!(!s.contains(canary) && !s.contains("canary-second-value-8e1"), "leaked: {s}");
        }
    }
    for (path, content) in tree(&cli.state) {
        let s = text(&content);
        assert!(
            !s.contains(canary) && !s.contains("canary-second-value-8e1"),
            "leaked into {}",
            path.display()
        );
    }
}

#[test]
fn a_bad_release_tag_fails_before_any_work() {
    let cli = Cli::new();
    for (tag, says) in [
        ("webapp-srv-v0.1.0", "did you mean `webapp-server`?"),
        ("webapp-server-v0.1", "invalid version"),
        ("webapp-server-0.1.0", "no `-v<semver>` part"),
        ("", "the release tag is empty"),
    ] {
        let out = cli.run(&["release", "--from-tag", tag]);
        assert_eq!(code(&out), 1, "{tag}");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{tag}: {err}");
        assert!(!err.contains("built image"), "no work started: {err}");
    }
    assert!(!cli.state.exists());
}

#[test]
fn release_dry_run_builds_and_plans_but_writes_nothing() {
    let cli = Cli::new();
    let out = cli.run(&["release", "--from-tag", "webapp-server-v0.1.0", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("would push: webapp-server:0.1.0@sha256:"), "{stdout}");
    assert!(
        stdout.contains("stage  staging: would deliver (5 to add") && stdout.contains("stage  production"),
        "{stdout}"
    );
    assert!(!cli.state.exists(), "nothing pushed or delivered");
}

#[test]
fn a_saved_plan_is_applied_exactly_and_refused_once_anything_moved() {
    let cli = Cli::new();
    let plan = cli._dir.path().join("plan.json");
    let canary = [("WEBAPP_DB_PASSWORD", "saved-plan-canary-93e1")];
    let saved = cli.run_with(&["plan", "webapp-server", "--out", plan.to_str().unwrap()], &canary);
    assert_eq!(code(&saved), 2, "{}", text(&saved.stderr));
    assert!(text(&saved.stdout).contains("`apply --plan"), "{}", text(&saved.stdout));
    let file = fs::read_to_string(&plan).unwrap();
    assert!(file.contains("\"format\": \"harmony.plan/v1\""), "{file}");
    assert!(
        !file.contains("saved-plan-canary-93e1"),
        "a saved plan holds digests, never a secret value"
    );

    let applied = cli.run_with(&["apply", "--plan", plan.to_str().unwrap()], &canary);
    assert_eq!(code(&applied), 0, "{}", text(&applied.stderr));
    assert!(
        text(&applied.stdout).contains("Apply complete: 5 added"),
        "{}",
        text(&applied.stdout)
    );

    // The same plan again: the target moved (it holds what the plan adds).
    let before = tree(&cli.state);
    let again = cli.run_with(&["apply", "--plan", plan.to_str().unwrap()], &canary);
    assert_eq!(code(&again), 1);
    let err = text(&again.stderr);
    assert!(err.contains("is not as it was when it was planned"), "{err}");
    assert!(err.contains("v1 Secret webapp/webapp-database: new on the target"), "{err}");
    assert!(err.contains("nothing was applied"), "{err}");
    assert_eq!(tree(&cli.state), before, "nothing was written");

    // A plan of nothing, then the desired state moves: refused, naming what moved.
    let empty = cli._dir.path().join("empty.json");
    assert_eq!(
        code(&cli.run_with(&["plan", "webapp-server", "--out", empty.to_str().unwrap()], &canary)),
        0
    );
    let moved = cli.run_with(
        &["apply", "--plan", empty.to_str().unwrap()],
        &[("WEBAPP_DB_PASSWORD", "another-password-5d2")],
    );
    assert_eq!(code(&moved), 1);
    let err = text(&moved.stderr);
    assert!(err.contains("v1 Secret webapp/webapp-database: changed desired"), "{err}");
    assert!(
        !err.contains("another-password-5d2") && !err.contains("saved-plan-canary-93e1"),
        "{err}"
    );
    assert_eq!(tree(&cli.state), before, "nothing was written");
}

#[test]
fn a_saved_plan_that_cannot_be_applied_is_refused_naming_the_file() {
    let cli = Cli::new();
    let dir = cli._dir.path();
    let good = dir.join("good.json");
    assert_eq!(code(&cli.run(&["plan", "webapp-server", "--out", good.to_str().unwrap()])), 2);
    let saved: serde_json::Value = serde_json::from_slice(&fs::read(&good).unwrap()).unwrap();
    let variant = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut v = saved.clone();
        edit(&mut v);
        let path = dir.join(name);
        fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        path
    };
    let garbage = dir.join("garbage.json");
    fs::write(&garbage, b"{ not json").unwrap();
    let older = variant("older.json", &|v| v["format"] = "harmony.plan/v0".into());
    let other_binary = variant("other.json", &|v| v["binary"] = "harmony-edge".into());
    let other_app = variant("app.json", &|v| v["plans"][0]["plan"]["app"] = "billing".into());
    let damaged = variant("damaged.json", &|v| v["plans"] = "nothing".into());
    let missing = dir.join("missing.json");
    for (path, args, says) in [
        (&garbage, &[][..], "it is not JSON"),
        (
            &older,
            &[],
            "it is in format `harmony.plan/v0`, and this build reads `harmony.plan/v1`",
        ),
        (&other_binary, &[], "it was made by `harmony-edge`, and this is `harmony`"),
        (&other_app, &[], "it plans app `billing`, which this binary does not carry"),
        (&damaged, &[], "it is damaged"),
        (&good, &["--topology", "ci"], "it was made for topology `local`, not `ci`"),
        (&good, &["webapp-server"], "a saved plan says which apps it applies"),
        (&missing, &[], "could not be read"),
    ] {
        let mut all = vec!["apply", "--plan", path.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = cli.run(&all);
        assert_eq!(code(&out), 1, "{}", path.display());
        let err = text(&out.stderr);
        assert!(err.contains(says), "{}: {err}", path.display());
        assert!(err.contains(&path.display().to_string()), "the error names the file: {err}");
    }
    // `plan --out` keeps the digests of secret values stable (`.secret-key`); nothing else.
    let written: Vec<_> = tree(&cli.state).into_iter().map(|(p, _)| p).collect();
    assert_eq!(written, [cli.state.join(".secret-key")], "nothing was applied");
}

#[test]
fn applies_started_together_take_turns() {
    let cli = Cli::new();
    let runs: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_harmony"))
                .args(["apply", "webapp-server", "--yes"])
                .env("HARMONY_STATE_DIR", &cli.state)
                .env_remove("WEBAPP_DB_PASSWORD")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = runs.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    for o in &outputs {
        assert_eq!(code(o), 0, "{}", text(&o.stderr));
    }
    let added = outputs
        .iter()
        .filter(|o| text(&o.stdout).contains("Apply complete: 5 added"))
        .count();
    let unchanged = outputs
        .iter()
        .filter(|o| text(&o.stdout).contains("No changes: the target matches the desired state."))
        .count();
    assert_eq!((added, unchanged), (1, 3), "one applies, the others find nothing left to do");
}

#[test]
fn a_held_lock_is_waited_for_then_reported_with_its_holder() {
    let cli = Cli::new();
    let path = cli.state.join(".locks/webapp-server.lock");
    let holder = harmony::lock::Holder::this_process("apply (a test holding the lock)");
    let harmony::lock::Attempt::Acquired { lock, .. } = harmony::lock::FileLock::try_take(&path, &holder).unwrap() else {
        panic!("a fresh lock is free")
    };
    let out = cli.run(&["apply", "webapp-server", "--yes", "--lock-timeout", "1"]);
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(err.contains("waiting for `webapp-server`"), "{err}");
    assert!(
        err.contains(&format!("error: `webapp-server` is locked by pid {}", std::process::id())),
        "{err}"
    );
    assert!(err.contains("(apply (a test holding the lock))"), "{err}");
    assert!(err.contains("--lock-timeout"), "{err}");
    assert!(!cli.state.join("webapp-server").exists(), "nothing was written");
    drop(lock);
}

#[test]
fn a_lock_left_by_a_run_that_died_is_taken_over_and_garbage_is_left_alone() {
    let cli = Cli::new();
    let path = cli.state.join(".locks/webapp-server.lock");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    // What a run that crashed leaves: its holder in a file nobody locks.
    let dead = r#"{"id":"dead","pid":4194303,"host":"build-7","since":1795000000,"command":"apply"}"#;
    fs::write(&path, dead).unwrap();
    let out = cli.run(&["apply", "webapp-server", "--yes"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("took over the lock of `webapp-server` from pid 4194303 on host `build-7`"),
        "{err}"
    );
    assert_eq!(fs::read(&path).unwrap(), b"", "released cleanly");

    fs::write(&path, b"not a lock").unwrap();
    let out = cli.run(&["apply", "webapp-server", "--yes"]);
    assert_eq!(code(&out), 1);
    let err = text(&out.stderr);
    assert!(err.contains("holds something that is not a lock"), "{err}");
    assert!(err.contains("remove"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"not a lock", "reported, not overwritten");
}

#[test]
fn errors_in_json_follow_the_schema() {
    let cli = Cli::new();
    let out = cli.run(&["plan", "webapp-server", "--topology", "locl", "--output", "json"]);
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty(), "the result stream stays empty");
    let v: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(v["schema"], "harmony.cli/v1");
    assert_eq!(v["kind"], "error");
    assert_eq!(v["error"]["message"], "unknown topology `locl`");
    assert_eq!(v["error"]["help"], "did you mean `--topology local`?");

    let list = cli.run(&["list", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!((v["schema"].as_str(), v["kind"].as_str()), (Some("harmony.cli/v1"), Some("list")));
}

/// A directory for `PATH` holding real plugins: the edge deploy binary, and
/// executables that fail the way a broken plugin does.
struct PluginPath {
    dir: tempfile::TempDir,
}

impl PluginPath {
    fn new() -> Self {
        let edge = edge_binary();
        let dir = tempfile::tempdir().unwrap();
        fs::copy(&edge, dir.path().join("harmony-edge")).unwrap();
        Self { dir }
    }

    fn script(&self, name: &str, body: &str, executable: bool) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    fn run(&self, cli: &Cli, args: &[&str], env: &[(&str, &str)]) -> Output {
        let path = std::env::join_paths([self.dir.path().to_owned(), PathBuf::from("/usr/bin"), PathBuf::from("/bin")]).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_harmony"));
        cmd.args(args)
            .env("PATH", path)
            .env("HARMONY_STATE_DIR", &cli.state)
            .env_remove("HARMONY_TOPOLOGY")
            .env_remove("HARMONY_AS_PLUGIN");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
}

/// The `harmony-edge` deploy binary (fixtures/edge-app), built if this test
/// runs without the rest of the workspace.
fn edge_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_harmony")).with_file_name("harmony-edge");
    if !path.is_file() {
        let cargo = env!("CARGO");
        let status = Command::new(cargo)
            .args(["build", "-p", "edge-app", "--bin", "harmony-edge"])
            .status()
            .unwrap();
        assert!(status.success(), "harmony-edge builds");
    }
    path
}

#[test]
fn plugins_are_found_listed_and_run() {
    let cli = Cli::new();
    let plugins = PluginPath::new();
    plugins.script("harmony-list", "echo shadowed", true);
    plugins.script("harmony-notes", "echo not executable", false);

    let listed = plugins.run(&cli, &["plugin", "list"], &[]);
    assert_eq!(code(&listed), 0, "{}", text(&listed.stderr));
    let out = text(&listed.stdout);
    assert!(out.contains("harmony edge"), "{out}");
    assert!(out.contains("harmony-list` is shadowed by the built-in command `list`"), "{out}");
    assert!(out.contains("harmony-notes` is not executable"), "{out}");

    // `harmony list` shows what each plugin carries.
    let list = plugins.run(&cli, &["list"], &[]);
    let out = text(&list.stdout);
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("edge ") && l.contains("edge-dns")),
        "{out}"
    );

    // `harmony edge …` is the plugin's CLI, exit codes passed on.
    let site = cli._dir.path().join("site");
    let site = site.to_str().unwrap();
    let edge_env = [("EDGE_DIR", site), ("EDGE_ZONE", "edge.example.org")];
    let plan = plugins.run(&cli, &["edge", "plan", "--topology", "edge", "edge-dns"], &edge_env);
    assert_eq!(code(&plan), 2, "{}", text(&plan.stderr));

    // Naming an app only a plugin carries hands the command to that plugin.
    let apply = plugins.run(&cli, &["apply", "edge-dns", "--topology", "edge", "--yes"], &edge_env);
    assert_eq!(code(&apply), 0, "{}", text(&apply.stderr));
    assert!(text(&apply.stdout).contains("Apply complete: 1 added"), "{}", text(&apply.stdout));
    assert!(Path::new(site).join("edge-dns/inventory.json").is_file());

    let unknown = plugins.run(&cli, &["egde", "plan"], &[]);
    assert_eq!(code(&unknown), 1);
    assert!(text(&unknown.stderr).contains("did you mean `edge`?"), "{}", text(&unknown.stderr));

    let mixed = plugins.run(&cli, &["plan", "edge-dns", "webapp-server"], &[]);
    assert_eq!(code(&mixed), 1);
    assert!(text(&mixed.stderr).contains("by plugin `harmony edge`"), "{}", text(&mixed.stderr));
}

#[test]
fn a_broken_plugin_is_named_and_the_others_are_still_listed() {
    let cli = Cli::new();
    let plugins = PluginPath::new();
    plugins.script("harmony-crashes", "echo 'panicked' >&2; exit 101", true);
    plugins.script("harmony-hangs", "exec sleep 30", true);
    plugins.script("harmony-babbles", "echo '{\"schema\": \"harmony.cli/v1\", \"apps\": [1, 2'", true);
    let list = plugins.run(&cli, &["list"], &[("HARMONY_PLUGIN_TIMEOUT", "1")]);
    assert_eq!(code(&list), 0, "{}", text(&list.stderr));
    let out = text(&list.stdout);
    assert!(
        out.contains("harmony-crashes` did not list its apps: `list --output json` failed"),
        "{out}"
    );
    assert!(
        out.contains("harmony-hangs` did not list its apps: it did not answer within 1s"),
        "{out}"
    );
    assert!(
        out.contains("harmony-babbles` did not list its apps: its `list --output json` is not valid JSON"),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.trim_start().starts_with("edge ") && l.contains("edge-dns")),
        "{out}"
    );
}

#[test]
fn a_release_writes_nothing_in_the_directory_it_is_run_from() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let state = dir.path().join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["release", "--from-tag", "webapp-server-v0.1.0", "--dry-run"])
        .current_dir(&elsewhere)
        .env("HARMONY_STATE_DIR", &state)
        .env_remove("HARMONY_BUILD_DIR")
        .env_remove("HARMONY_TOPOLOGY")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing where it was run");
    assert!(state.join(".build").is_dir(), "builds are kept with the topology's state");
}

/// The JSON of every command, pinned (schema `harmony.cli/v1`,
/// docs/cli-json.md): a field that moves fails here.
#[test]
fn every_commands_json_is_pinned() {
    let cli = Cli::new();
    let pin = |name: &str, bytes: &[u8]| {
        let mut text = text(bytes);
        // Content digests move with the server's code; paths with the machine.
        while let Some(i) = text.find("sha256:") {
            let end = (i + 7 + 64).min(text.len());
            text.replace_range(i..end, "sha256-[digest]");
        }
        let text = text.replace(&cli._dir.path().display().to_string(), "[tmp]");
        // Exactly one document, read by a strict reader (anything after it is an error).
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not one JSON document: {e}"));
        assert_eq!(doc["schema"], "harmony.cli/v1", "{name}");
        insta::with_settings!({ snapshot_path => "../snapshots/tests/snapshots", prepend_module_to_snapshot => false }, {
            insta::assert_snapshot!(name, text);
        });
    };
    let json = ["--output", "json"];
    let run = |args: &[&str]| cli.run(&[args, &json[..]].concat());
    pin("cli_plan_json", &run(&["plan", "webapp-server"]).stdout);
    pin("cli_dry_run_json", &run(&["dry-run", "webapp-server"]).stdout);
    pin("cli_apply_json", &run(&["apply", "webapp-server", "--yes"]).stdout);
    pin(
        "cli_release_dry_run_json",
        &run(&["release", "--from-tag", "webapp-server-v0.1.0", "--dry-run"]).stdout,
    );
    pin("cli_error_json", &run(&["plan", "webapp-server", "--topology", "locl"]).stderr);
    // The rest are pinned elsewhere or vary: each is still exactly one document.
    for args in [&["list"][..], &["explain", "webapp-server"], &["explain", "Credentials"]] {
        let out = run(args);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not one JSON document: {e}"));
        assert_eq!(doc["schema"], "harmony.cli/v1", "{args:?}");
    }
    // `render` prints the manifests themselves, as docs/cli-json.md says: one object per line.
    let rendered = text(&run(&["render", "webapp-server"]).stdout);
    let objects: Vec<serde_json::Value> = rendered
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not one object per line: {e}: {line}")))
        .collect();
    assert_eq!(objects.len(), 5, "{rendered}");
    assert!(objects.iter().all(|o| o["apiVersion"].is_string() && o["kind"].is_string()));
    let empty = cli._dir.path().join("no-plugins");
    fs::create_dir(&empty).unwrap();
    let plugins = Command::new(env!("CARGO_BIN_EXE_harmony"))
        .args(["plugin", "list", "--output", "json"])
        .env("PATH", &empty)
        .output()
        .unwrap();
    pin("cli_plugin_list_json", &plugins.stdout);
}

/// Without app names a command acts on every app that runs on the topology;
/// the others are named on stderr, and naming one is the error that says why.
#[test]
fn every_app_means_every_app_that_runs_there_and_the_others_are_named() {
    let cli = Cli::new();
    let out = cli.run(&["plan"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("note: app `fleet-nats` is left out: it runs on ci, k8s"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).contains("webapp-server on local") && text(&out.stdout).contains("fleet-operator on local"));
    let named = cli.run(&["plan", "fleet-nats"]);
    assert_eq!(code(&named), 1);
    assert!(
        text(&named.stderr).contains("app `fleet-nats` cannot run on topology `local`"),
        "{}",
        text(&named.stderr)
    );
}

/// A release checks what its image build needs before any slow work: without buildah on `PATH`,
/// a release of the fleet operator (a Dockerfile around static binaries it compiles) stops at
/// once, naming the tool and how to get it, and compiles nothing.
#[test]
fn a_release_whose_builder_is_missing_stops_before_compiling_anything() {
    let cli = Cli::new();
    let build = cli.state.with_file_name("build");
    let out = cli.run_with(
        &["release", "--from-tag", "fleet-operator-v0.1.0", "--dry-run", "--topology", "ci"],
        &[
            ("PATH", "/nonexistent"),
            ("HARMONY_BUILD_DIR", build.to_str().unwrap()),
            ("HARMONY_REGISTRY", "127.0.0.1:9"),
            ("HARMONY_REGISTRY_NAMESPACE", "team"),
            ("HARMONY_DELIVERY", "gitops"),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("`buildah` is not installed"), "{err}");
    assert!(err.contains("apt-get install buildah"), "{err}");
    assert!(!build.exists(), "nothing was compiled: {:?}", tree(&build));
}

/// Every file of a state directory, with what is wrong with it if it is not whole: JSON that
/// does not parse, a YAML document cut short, and (unless `temporaries` are expected, as right
/// after a kill) a temporary file a write left behind.
fn broken_state_files(dir: &Path, temporaries: bool) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    tree(dir)
        .into_iter()
        .filter_map(|(path, bytes)| {
            let name = path.display().to_string();
            let is = |ext: &str| path.extension().is_some_and(|e| e == ext);
            if path.extension().is_some_and(|e| e.to_string_lossy().starts_with("tmp-")) {
                (!temporaries).then(|| format!("{name}: a temporary file left behind"))
            } else if is("json") && serde_json::from_slice::<serde_json::Value>(&bytes).is_err() {
                Some(format!("{name}: not whole JSON"))
            } else if is("yaml") && !bytes.ends_with(b"\n") {
                Some(format!("{name}: a YAML document cut short"))
            } else {
                None
            }
        })
        .collect()
}

/// SIGKILL lands anywhere in an apply on `local` (a first apply takes tens of milliseconds:
/// one kill per millisecond of it, each on a fresh state directory): the state directory holds
/// each file whole (old or new, never half), and a rerun converges.
#[test]
fn a_local_apply_killed_anywhere_leaves_whole_files_and_a_rerun_converges() {
    for delay_ms in 0..40 {
        let cli = Cli::new();
        let mut child = Command::new(env!("CARGO_BIN_EXE_harmony"))
            .args(["apply", "--topology", "local", "--yes"])
            .env("HARMONY_STATE_DIR", &cli.state)
            .env("HARMONY_BUILD_DIR", shared_build_dir())
            .env_remove("HARMONY_TOPOLOGY")
            .env_remove("WEBAPP_DB_PASSWORD")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let broken = broken_state_files(&cli.state, true);
        assert!(broken.is_empty(), "killed after {delay_ms} ms: {broken:#?}");
        let rerun = cli.run(&["apply", "--topology", "local", "--yes"]);
        assert_eq!(code(&rerun), 0, "killed after {delay_ms} ms: {}", text(&rerun.stderr));
        let plan = cli.run(&["plan", "--topology", "local"]);
        assert_eq!(code(&plan), 0, "converged after a kill at {delay_ms} ms: {}", text(&plan.stdout));
        let broken = broken_state_files(&cli.state, false);
        assert!(broken.is_empty(), "after the rerun of a kill at {delay_ms} ms: {broken:#?}");
    }
}

/// The compile error for a topology that lacks a capability names the built-in topologies that
/// provide it (`harmony/src/capability.rs`, `harmony/src/release/capability.rs`). Those notes are
/// written by hand in the trait's `on_unimplemented`, so they are checked here against what this
/// binary's `list` says each topology provides.
#[test]
fn a_missing_capabilitys_compile_error_names_the_topologies_that_provide_it() {
    let cli = Cli::new();
    let out = cli.run(&["list", "--output", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sources = ["harmony/src/capability.rs", "harmony/src/release/capability.rs"]
        .map(|f| std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(f)).unwrap())
        .join("\n");
    for capability in list["capabilities"].as_array().unwrap() {
        let name = capability["name"].as_str().unwrap();
        let mut providers: Vec<&str> = list["topologies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["capabilities"].as_array().unwrap().iter().any(|c| c == name))
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        providers.sort_unstable();
        let message = format!("does not provide capability `{name}`\",");
        let at = sources
            .find(&message)
            .unwrap_or_else(|| panic!("no compile error for a topology without `{name}`"));
        let note = sources[at..]
            .lines()
            .find(|l| l.contains("provided by the built-in topologies"))
            .unwrap();
        // The topologies are the quoted words in lower case (`ci`, `k8s`), beside their types.
        let named: Vec<&str> = (note.split(';').next().unwrap().split('`').skip(1).step_by(2))
            .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
            .collect();
        assert_eq!(named, providers, "the note for `{name}` names the wrong topologies: {note}");
    }
}
