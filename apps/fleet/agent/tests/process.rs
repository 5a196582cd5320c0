//! The process supervisor with real programs: restarts and back-off, a crash
//! loop reported with its output, a spec change restarting, a program that
//! does not exist, exactly the spec's environment, and a new supervisor
//! adopting what an earlier one started.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use fleet_agent::process::{Programs, Supervisor, Timings};
use fleet_model::{Exit, ProcessSpec, ProcessStatus, RestartPolicy, State};

fn timings() -> Timings {
    Timings {
        settle: Duration::from_millis(150),
        grace: Duration::from_secs(2),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(400),
        stable: Duration::from_secs(30),
    }
}

fn spec(name: &str, argv: &[&str], restart: RestartPolicy) -> ProcessSpec {
    ProcessSpec {
        name: name.into(),
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: BTreeMap::new(),
        restart,
    }
}

/// Poll the status of `name` until `done` says so (at most 10 s).
async fn until(supervisor: &Supervisor, name: &str, done: impl Fn(&ProcessStatus) -> bool) -> ProcessStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = supervisor.statuses().remove(name).expect("supervised");
        if done(&status) {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "{name} never got there: {status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn running(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

/// The programs these tests run.
fn programs() -> Programs {
    Programs::allowing(["sleep", "ls", "true", "false", "env"]).unwrap()
}

#[tokio::test]
async fn a_long_running_process_becomes_ready_and_a_changed_spec_restarts_it() {
    let state = tempfile::tempdir().unwrap();
    let mut supervisor = Supervisor::new(state.path(), timings(), programs()).unwrap();
    let sleeper = spec("sleeper", &["sleep", "30"], RestartPolicy::Always);
    supervisor.reconcile(std::slice::from_ref(&sleeper)).await;
    let ready = until(&supervisor, "sleeper", |s| s.state == State::Ready).await;
    let first = ready.pid.unwrap();
    assert!(running(first));
    assert_eq!((ready.restarts, ready.last_exit), (0, None));

    // The same spec again: nothing happens.
    supervisor.reconcile(std::slice::from_ref(&sleeper)).await;
    assert_eq!(supervisor.statuses()["sleeper"].pid, Some(first));

    // A changed spec: the old one is stopped, the new one started.
    let changed = spec("sleeper", &["sleep", "31"], RestartPolicy::Always);
    supervisor.reconcile(std::slice::from_ref(&changed)).await;
    assert!(!running(first), "the old process was stopped");
    let second = until(&supervisor, "sleeper", |s| s.state == State::Ready).await.pid.unwrap();
    assert_ne!(first, second);

    // Removed: stopped, and its record gone.
    supervisor.reconcile(&[]).await;
    assert!(!running(second));
    assert!(supervisor.statuses().is_empty());
    assert_eq!(std::fs::read_dir(state.path().join("processes")).unwrap().count(), 0);
}

#[tokio::test]
async fn a_crash_loop_backs_off_and_reports_the_exit_and_the_output() {
    let state = tempfile::tempdir().unwrap();
    let mut supervisor = Supervisor::new(state.path(), timings(), programs()).unwrap();
    let crasher = spec("crasher", &["ls", "/no/such/dir-for-fleet"], RestartPolicy::Always);
    supervisor.reconcile(&[crasher]).await;
    let status = until(&supervisor, "crasher", |s| s.state == State::Failed).await;
    assert!(status.restarts >= 3, "{status:?}");
    assert_eq!(status.last_exit, Some(Exit::Code(2)));
    let message = status.message.unwrap();
    assert!(
        message.contains("exited with code 2") && message.contains("times in a row"),
        "{message}"
    );
    assert!(message.contains("/no/such/dir-for-fleet"), "the program's own words: {message}");
    // The back-off grows: restarts slow down to the ceiling.
    let before = supervisor.statuses()["crasher"].restarts;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after = supervisor.statuses()["crasher"].restarts;
    assert!(after - before <= 3, "at most one restart per 400 ms: {before} then {after}");
    supervisor.stop_all().await;
}

#[tokio::test]
async fn restart_policies_decide_what_an_exit_means() {
    let state = tempfile::tempdir().unwrap();
    let mut supervisor = Supervisor::new(state.path(), timings(), programs()).unwrap();
    supervisor
        .reconcile(&[
            spec("once", &["true"], RestartPolicy::Never),
            spec("fails-once", &["false"], RestartPolicy::Never),
            spec("until-ok", &["true"], RestartPolicy::OnFailure),
        ])
        .await;
    let once = until(&supervisor, "once", |s| s.last_exit.is_some()).await;
    assert_eq!((once.state, once.restarts, once.last_exit), (State::Ready, 0, Some(Exit::Code(0))));
    let failed = until(&supervisor, "fails-once", |s| s.last_exit.is_some()).await;
    assert_eq!((failed.state, failed.restarts), (State::Failed, 0));
    let done = until(&supervisor, "until-ok", |s| s.last_exit.is_some()).await;
    assert_eq!((done.state, done.restarts), (State::Ready, 0), "exit 0 is not a failure");
    supervisor.stop_all().await;
}

#[tokio::test]
async fn a_program_the_device_does_not_have_is_failed_and_not_started() {
    let state = tempfile::tempdir().unwrap();
    let mut supervisor = Supervisor::new(state.path(), timings(), programs()).unwrap();
    supervisor
        .reconcile(&[spec("ghost", &["/opt/fleet/no-such-program"], RestartPolicy::Always)])
        .await;
    let status = until(&supervisor, "ghost", |s| s.state == State::Failed).await;
    let message = status.message.unwrap();
    assert!(
        message.starts_with("`/opt/fleet/no-such-program` is not run: no such program on this device"),
        "{message}"
    );
    assert_eq!(status.pid, None);
    supervisor.stop_all().await;
}

#[tokio::test]
async fn a_process_sees_exactly_its_environment_and_its_output_goes_to_its_log() {
    let state = tempfile::tempdir().unwrap();
    let mut supervisor = Supervisor::new(state.path(), timings(), programs()).unwrap();
    let mut env = spec("env", &["/usr/bin/env"], RestartPolicy::Never);
    env.env = BTreeMap::from([("SITE".into(), "lyon".into()), ("RATE".into(), "5".into())]);
    supervisor.reconcile(&[env]).await;
    until(&supervisor, "env", |s| s.last_exit == Some(Exit::Code(0))).await;
    let log = std::fs::read_to_string(state.path().join("logs/env.log")).unwrap();
    let mut lines: Vec<&str> = log.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["RATE=5", "SITE=lyon"], "nothing of the agent's own environment");
    supervisor.stop_all().await;
}

#[tokio::test]
async fn a_new_supervisor_adopts_what_the_last_one_started() {
    let state = tempfile::tempdir().unwrap();
    let sleeper = spec("sleeper", &["sleep", "30"], RestartPolicy::Always);
    let pid = {
        let mut first = Supervisor::new(state.path(), timings(), programs()).unwrap();
        first.reconcile(std::slice::from_ref(&sleeper)).await;
        until(&first, "sleeper", |s| s.state == State::Ready).await.pid.unwrap()
        // Dropped: the agent stops, its process does not.
    };
    assert!(running(pid));
    let mut second = Supervisor::new(state.path(), timings(), programs()).unwrap();
    second.reconcile(std::slice::from_ref(&sleeper)).await;
    let adopted = until(&second, "sleeper", |s| s.state == State::Ready).await;
    assert_eq!((adopted.pid, adopted.restarts), (Some(pid), 0), "adopted, not restarted");

    // Killed behind its back: restarted, its exit code unknown to us.
    std::process::Command::new("kill").arg(pid.to_string()).status().unwrap();
    let restarted = until(&second, "sleeper", |s| s.restarts == 1 && s.state == State::Ready).await;
    assert_ne!(restarted.pid, Some(pid));
    assert!(restarted.message.is_none());

    // A record whose spec is no longer wanted: its process is stopped.
    let now = restarted.pid.unwrap();
    drop(second);
    let mut third = Supervisor::new(state.path(), timings(), programs()).unwrap();
    third.reconcile(&[spec("other", &["sleep", "30"], RestartPolicy::Always)]).await;
    assert!(!running(now), "the unwanted process was stopped");
    third.stop_all().await;
    assert!(Path::new(&state.path().join("processes")).read_dir().unwrap().next().is_none());
}
