//! What users see, pinned: the webapp's manifests, plans that add, change and
//! remove, a problem caught before any write, and a failed smoke test. Review changes with `cargo insta review`.

use harmony::Diagnostic as _;
use std::collections::BTreeMap;
use std::sync::Arc;

use harmony::engine::run::Silent;
use harmony::engine::{self, EngineError};
use harmony::k8s_openapi::api::core::v1::ConfigMap;
use harmony::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use harmony::local::Local;
use harmony::{Desired, Render, RenderCx, Score, ScoreError, Secret};
use harmony_registry::cli;
use webapp::{AppNamespace, Credentials, Exposure, Server, Settings, WebApp};

const PASSWORD: &str = "snapshot-password-31337";
const NEW_PASSWORD: &str = "snapshot-password-rotated-4242";

fn webapp() -> WebApp {
    WebApp::new("webapp", Secret::new(PASSWORD.to_owned()))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// The webapp after a release: new greeting, three replicas, a rotated
/// password, a feature-flag ConfigMap, and no Service any more.
#[derive(Score)]
struct NextRelease {
    #[score(child)]
    namespace: AppNamespace,
    #[score(child)]
    settings: Settings,
    #[score(child)]
    credentials: Credentials,
    #[score(child)]
    server: Server,
    #[score(child)]
    flags: FeatureFlags,
}

/// Feature flags, as a ConfigMap.
#[derive(Score)]
struct FeatureFlags {
    namespace: String,
}

impl Render for FeatureFlags {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        d.push(&ConfigMap {
            metadata: ObjectMeta {
                name: Some("webapp-flags".into()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            data: Some(BTreeMap::from([("new-checkout".to_owned(), "on".to_owned())])),
            ..Default::default()
        })?;
        Ok(d)
    }
}

fn next_release() -> NextRelease {
    let mut w = webapp();
    w.settings.greeting = "Hello again".into();
    w.server.replicas = 3;
    w.credentials.database_password = Secret::new(NEW_PASSWORD.to_owned());
    NextRelease {
        namespace: w.namespace,
        settings: w.settings,
        credentials: w.credentials,
        server: w.server,
        flags: FeatureFlags {
            namespace: "webapp".into(),
        },
    }
}

fn yaml(objects: &[harmony::Object]) -> String {
    objects
        .iter()
        .map(|o| format!("---\n{}", serde_yaml_ng::to_string(&cli::for_review(o)).unwrap()))
        .collect()
}

#[test]
fn webapp_manifests() {
    let objects = engine::render("webapp", "local", &webapp()).unwrap();
    let text = yaml(&objects);
    assert!(!text.contains(PASSWORD));
    insta::assert_snapshot!(text);
}

#[test]
fn plans_that_add_change_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    let local = Local::at(dir.path());
    let rt = rt();
    let first = rt.block_on(engine::plan("webapp", &webapp(), &local)).unwrap();
    insta::assert_snapshot!("plan_first_deploy", first.to_text());
    rt.block_on(engine::plan_and_apply("webapp", &webapp(), &local, Arc::new(Silent)))
        .unwrap();

    let next = rt.block_on(engine::plan("webapp", &next_release(), &local)).unwrap();
    let summary = next.summary();
    assert_eq!((summary.add, summary.change, summary.remove), (1, 3, 1));
    let text = next.to_text();
    let json = serde_json::to_string_pretty(&next).unwrap();
    for out in [&text, &json] {
        assert!(!out.contains(PASSWORD) && !out.contains(NEW_PASSWORD), "{out}");
    }
    insta::assert_snapshot!("plan_next_release_text", text);
    insta::assert_snapshot!("plan_next_release_json", json);

    rt.block_on(engine::plan_and_apply("webapp", &next_release(), &local, Arc::new(Silent)))
        .unwrap();
    assert!(!dir.path().join("webapp/manifests/webapp/service-webapp.yaml").exists(), "pruned");
    let after = rt.block_on(engine::plan("webapp", &next_release(), &local)).unwrap();
    assert!(after.is_empty(), "{}", after.to_text());
}

/// A Server without the settings and credentials it reads: written, then
/// caught by the local topology's verification, reported with what to do.
/// The server and its Service, without the settings and credentials it reads.
#[derive(Score)]
struct Broken {
    #[score(child)]
    server: Server,
    #[score(child)]
    service: Exposure,
}

#[test]
fn a_problem_a_dry_run_would_find_stops_apply_before_any_write() {
    let w = webapp();
    let broken = Broken {
        server: w.server,
        service: w.service,
    };
    let dir = tempfile::tempdir().unwrap();
    let local = Local::at(dir.path());
    let err = rt()
        .block_on(engine::plan_and_apply("webapp", &broken, &local, Arc::new(Silent)))
        .unwrap_err();
    let EngineError::Interpret { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(source.path(), "webapp/server");
    insta::assert_snapshot!(format!(
        "message: {err}\nat: {}\nwhy: {}\nhelp: {}",
        err.location().unwrap(),
        err.notes().join("\n"),
        err.help()
    ));
    assert!(!dir.path().join("webapp").exists(), "nothing was written");
    let plan = rt().block_on(engine::plan("webapp", &broken, &local)).unwrap();
    assert_eq!(plan.summary().add, 2, "{}", plan.to_text());
}

/// A ConfigMap whose own smoke test fails, as a service that never answers
/// would make it fail.
#[derive(Score)]
#[score(smoke = Self::answers)]
struct Unanswered {
    namespace: String,
}

impl Render for Unanswered {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        let mut d = Desired::new();
        d.push(&ConfigMap {
            metadata: ObjectMeta {
                name: Some("probe".into()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        })?;
        Ok(d)
    }
}

impl Unanswered {
    async fn answers<T: harmony::Topology>(&self, _: &T) -> Result<(), harmony::SmokeError> {
        Err(harmony::SmokeError::new("GET http://probe/healthz", "connection refused")
            .with_help("the probe was deployed and verified, but nothing answers it; look at its logs, fix it, and apply again"))
    }
}

/// The namespace, the failing probe, then credentials the failure never reaches.
#[derive(Score)]
struct Probed {
    #[score(child)]
    namespace: AppNamespace,
    #[score(child)]
    probe: Unanswered,
    #[score(child)]
    credentials: Credentials,
}

#[test]
fn a_failed_smoke_test_reads_like_a_compiler_error() {
    let w = webapp();
    let probed = Probed {
        namespace: w.namespace,
        probe: Unanswered {
            namespace: "webapp".into(),
        },
        credentials: w.credentials,
    };
    let dir = tempfile::tempdir().unwrap();
    let local = Local::at(dir.path());
    let err = rt()
        .block_on(engine::plan_and_apply("webapp", &probed, &local, Arc::new(Silent)))
        .unwrap_err();
    let EngineError::Interpret { source, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(source.path(), "webapp/probe");
    insta::assert_snapshot!(format!(
        "message: {err}\nat: {}\nwhy: {}\nhelp: {}",
        err.location().unwrap(),
        err.notes().join("\n"),
        err.help()
    ));
    // What was written stays recorded, so the next plan starts from the truth.
    let plan = rt().block_on(engine::plan("webapp", &probed, &local)).unwrap();
    assert_eq!(
        plan.summary().add,
        1,
        "only the credentials, never reached, are still to add: {}",
        plan.to_text()
    );
}

#[test]
fn debug_never_prints_a_secret() {
    let text = format!("{:?}", webapp());
    assert!(text.contains("<redacted>") && !text.contains(PASSWORD), "{text}");
}

/// The canary over the snapshots themselves: no reviewed output holds a secret.
#[test]
fn no_snapshot_holds_a_secret() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        for secret in [PASSWORD, NEW_PASSWORD, "development-only-password"] {
            assert!(!text.contains(secret), "{} holds a secret", entry.path().display());
        }
    }
}
