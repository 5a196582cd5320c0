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
            .env_remove("HARMONY_TOPOLOGY")
            .env_remove("WEBAPP_DB_PASSWORD");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }
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
    let first = cli.run(&["plan"]);
    assert_eq!(code(&first), 2, "changes pending: {}", text(&first.stderr));
    assert!(text(&first.stdout).contains("Plan: 5 to add, 0 to change, 0 to remove."));

    let apply = cli.run(&["apply", "--yes"]);
    assert_eq!(code(&apply), 0, "{}", text(&apply.stderr));
    assert!(
        text(&apply.stderr).contains("verified webapp-server/server"),
        "smoke tests gate each step"
    );
    assert!(cli.state.join("webapp-server/manifests/webapp/deployment-webapp.yaml").is_file());

    let again = cli.run(&["plan"]);
    assert_eq!(code(&again), 0, "{}", text(&again.stdout));
    assert!(text(&again.stdout).contains("No changes"));
}

#[test]
fn a_second_apply_without_changes_writes_nothing() {
    let cli = Cli::new();
    assert_eq!(code(&cli.run(&["apply", "--yes"])), 0);
    let before = tree(&cli.state);
    let mtime = fs::metadata(cli.state.join("webapp-server/inventory.json"))
        .unwrap()
        .modified()
        .unwrap();
    let second = cli.run(&["apply", "--yes"]);
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
        &["plan", "--topology", "locl"][..],
        &["dry-run", "--topology", "locl"],
        &["apply", "--topology", "locl", "--yes"],
        &["render", "-t", "locl"],
    ] {
        let out = cli.run(args);
        let cmd = args[0];
        assert_eq!(code(&out), 1, "{cmd}");
        let err = text(&out.stderr);
        assert!(err.contains("error: unknown topology `locl`"), "{err}");
        assert!(err.contains("the topologies are: ci, local"), "{err}");
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
    assert_eq!(code(&cli.run(&["apply", "--yes"])), 0);
    let inventory = cli.state.join("webapp-server/inventory.json");
    fs::write(&inventory, b"{\"format\": 1, \"app\": \"webapp\", \"objects\": [").unwrap();
    let before = tree(&cli.state);
    for args in [&["plan"][..], &["apply", "--yes"], &["dry-run"]] {
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
    assert_eq!(code(&cli.run(&["apply", "--yes"])), 0);
    // A file where the manifests directory must be: no user, root included, can write there.
    let manifests = cli.state.join("webapp-server/manifests");
    fs::rename(&manifests, cli.state.join("manifests.moved")).unwrap();
    fs::write(&manifests, b"not a directory").unwrap();
    let before = tree(&cli.state);
    let out = cli.run_with(&["apply", "--yes"], &[("WEBAPP_DB_PASSWORD", "a-new-password")]);
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
        &["render", "--out", out_dir.to_str().unwrap()],
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
    let out = cli.run(&["plan", "--output", "json"]);
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
        &["plan"][..],
        &["plan", "--output", "json"],
        &["dry-run"],
        &["apply", "--yes"],
        &["plan"],
        &["list"],
        &["list", "--output", "json"],
        &["explain", "webapp-server"],
        &["explain", "Credentials", "--output", "json"],
        &["render"],
        &["render", "--output", "json"],
        &["release", "--from-tag", "webapp-server-v0.1.0"],
    ] {
        outputs.push(cli.run_with(args, &env));
    }
    // A changed secret is planned and applied without showing either value.
    let changed = [("WEBAPP_DB_PASSWORD", "canary-second-value-8e1")];
    outputs.push(cli.run_with(&["plan"], &changed));
    outputs.push(cli.run_with(&["apply", "--yes"], &changed));
    // And an apply that fails (corrupt state) shows it in no error either.
    fs::write(cli.state.join("webapp-server/inventory.json"), b"[").unwrap();
    outputs.push(cli.run_with(&["apply", "--yes"], &env));
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
        ("webapp-server-0.1.0", "no `-v<version>` part"),
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
    let build = cli._dir.path().join("build");
    let out = cli.run_with(
        &["release", "--from-tag", "webapp-server-v0.1.0", "--dry-run"],
        &[("HARMONY_BUILD_DIR", build.to_str().unwrap())],
    );
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("would push: webapp-server:0.1.0@sha256:"), "{stdout}");
    assert!(
        stdout.contains("stage  staging: would deliver (5 to add") && stdout.contains("stage  production"),
        "{stdout}"
    );
    assert!(!cli.state.exists(), "nothing pushed or delivered");
}
