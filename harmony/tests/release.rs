//! The release pipeline end to end on `local` and `ci`: a real build, the
//! image and chart stored and read back, every stage delivered in order and
//! verified, and what a rerun, a reused version or a broken stage does.

mod support;

use harmony::Diagnostic as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use harmony::build::ImageSource;
use harmony::engine::run::{Mode, Silent};
use harmony::object::Object;
use harmony::release::capability::{HttpSmoke, NoSmoke};
use harmony::release::pipeline::{self, ChartSource};
use harmony::release::{AppSpec, ReleaseCx, ReleaseError, Version};
use harmony::{Ci, Local};
use serde_json::json;
use support::registry::Registry;

/// A local topology with its state and its builds under `dir`.
fn local_in(dir: &Path) -> Local {
    Local::at(dir.join("state")).with_build_dir(dir.join("build"))
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A copy of the `FROM scratch` Dockerfile fixture, so a test may change it.
fn context(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scratch-image");
    let dest = dir.join("image");
    std::fs::create_dir_all(&dest).unwrap();
    for e in std::fs::read_dir(src).unwrap().flatten() {
        std::fs::copy(e.path(), dest.join(e.file_name())).unwrap();
    }
    dest
}

/// A Deployment running the released image, and its ConfigMap; `broken`
/// leaves the ConfigMap out, which verification catches.
fn objects(cx: &ReleaseCx, broken: bool) -> Vec<Object> {
    let mut out = Vec::new();
    if !broken {
        out.push(Object::from_value(json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"demo","namespace":"demo"},"data":{"v":cx.version.to_string()}})).unwrap());
    }
    out.push(
        Object::from_value(
            json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"demo","namespace":"demo"},
        "spec":{"selector":{"matchLabels":{"app":"demo"}},"template":{"metadata":{"labels":{"app":"demo"}},
        "spec":{"containers":[{"name":"demo","image":cx.image.to_string(),"envFrom":[{"configMapRef":{"name":"demo"}}]}]}}}}),
        )
        .unwrap(),
    );
    out
}

fn spec(dir: &Path, broken: bool) -> AppSpec {
    AppSpec {
        name: "demo-server".into(),
        doc: "a demo".into(),
        dir: dir.to_owned(),
        image: ImageSource::Dockerfile {
            dockerfile: "image/Dockerfile".into(),
            context: "image".into(),
            binaries: Vec::new(),
        },
        chart: ChartSource::Builder(Arc::new(move |cx: &ReleaseCx| Ok(objects(cx, broken)))),
        stages: vec!["staging".into(), "production".into()],
        smoke: None,
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn a_release_on_local_builds_pushes_and_promotes_stage_by_stage() {
    let tmp = tempfile::tempdir().unwrap();
    context(tmp.path());
    let local = local_in(tmp.path());
    let v = Version::parse("0.1.0").unwrap();
    let rt = rt();

    // A dry run builds and plans, and writes nothing to the state.
    let planned = rt
        .block_on(pipeline::release::<_, NoSmoke>(
            &spec(tmp.path(), false),
            &v,
            &local,
            Mode::DryRun,
            &Silent,
        ))
        .unwrap();
    assert!(planned.dry_run && !tmp.path().join("state").exists());
    assert_eq!(planned.stages.iter().map(|p| p.summary().add).collect::<Vec<_>>(), [2, 2]);

    let released = rt
        .block_on(pipeline::release::<_, NoSmoke>(
            &spec(tmp.path(), false),
            &v,
            &local,
            Mode::Apply,
            &Silent,
        ))
        .unwrap();
    assert_eq!(released.image, planned.image, "the dry run showed the digest the release pushed");
    assert!(released.image.starts_with("demo-server:0.1.0@sha256:"), "{}", released.image);
    let registry = local.registry();
    assert!(registry.get("demo-server:0.1.0").unwrap().is_some());
    assert!(registry.get("charts/demo-server:0.1.0").unwrap().is_some());
    for stage in ["staging", "production"] {
        let deployment = tmp
            .path()
            .join(format!("state/stages/{stage}/demo-server/manifests/demo/deployment-demo.yaml"));
        let text = std::fs::read_to_string(&deployment).unwrap();
        assert!(text.contains(&released.image), "every stage runs the pinned image: {text}");
    }

    // A rerun finds everything done and changes nothing.
    let before: Vec<_> = files_under(tmp.path().join("state").as_path())
        .into_iter()
        .map(|p| (std::fs::read(&p).unwrap(), p))
        .collect();
    let again = rt
        .block_on(pipeline::release::<_, NoSmoke>(
            &spec(tmp.path(), false),
            &v,
            &local,
            Mode::Apply,
            &Silent,
        ))
        .unwrap();
    assert!(again.image_already_released);
    assert!(again.stages.iter().all(|p| p.is_empty()));
    let after: Vec<_> = files_under(tmp.path().join("state").as_path())
        .into_iter()
        .map(|p| (std::fs::read(&p).unwrap(), p))
        .collect();
    assert_eq!(before, after);
}

#[test]
fn a_released_version_cannot_be_overwritten_with_other_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = context(tmp.path());
    let local = local_in(tmp.path());
    let v = Version::parse("1.0.0").unwrap();
    let rt = rt();
    rt.block_on(pipeline::release::<_, NoSmoke>(
        &spec(tmp.path(), false),
        &v,
        &local,
        Mode::Apply,
        &Silent,
    ))
    .unwrap();
    std::fs::write(ctx.join("hello.txt"), "different content\n").unwrap();
    let err = rt
        .block_on(pipeline::release::<_, NoSmoke>(
            &spec(tmp.path(), false),
            &v,
            &local,
            Mode::Apply,
            &Silent,
        ))
        .unwrap_err();
    assert!(matches!(err, ReleaseError::AlreadyReleased { .. }), "{err:?}");
    assert!(err.help().contains("new version"));
}

#[test]
fn a_stage_that_fails_verification_stops_the_promotion() {
    let tmp = tempfile::tempdir().unwrap();
    context(tmp.path());
    let local = local_in(tmp.path());
    let err = rt()
        .block_on(pipeline::release::<_, NoSmoke>(
            &spec(tmp.path(), true),
            &Version::parse("0.2.0").unwrap(),
            &local,
            Mode::Apply,
            &Silent,
        ))
        .unwrap_err();
    let ReleaseError::Delivery { stage, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(stage, "staging");
    assert!(
        err.notes().join("\n").contains("needs ConfigMap `demo`"),
        "{}",
        err.notes().join("\n")
    );
    assert!(!tmp.path().join("state/stages/production").exists(), "production was not touched");
}

#[test]
fn a_release_on_ci_pushes_to_a_real_registry_that_skopeo_reads() {
    let registry = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    context(tmp.path());
    let ci = Ci::new(&registry.address, "team", None, tmp.path().join("gitops"))
        .unwrap()
        .with_build_dir(tmp.path().join("build"));
    let released = rt()
        .block_on(pipeline::release::<_, NoSmoke>(
            &spec(tmp.path(), false),
            &Version::parse("0.3.0").unwrap(),
            &ci,
            Mode::Apply,
            &Silent,
        ))
        .unwrap();
    assert!(
        released
            .image
            .starts_with(&format!("{}/team/demo-server:0.3.0@sha256:", registry.address)),
        "{}",
        released.image
    );
    assert_eq!(registry.tags("team/demo-server"), ["0.3.0"]);
    assert_eq!(registry.tags("team/charts/demo-server"), ["0.3.0"]);
    let out = std::process::Command::new("skopeo")
        .args([
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/team/demo-server:0.3.0", registry.address),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        format!("{}/team/demo-server:0.3.0@{}", registry.address, v["Digest"].as_str().unwrap()),
        released.image
    );
    assert!(tmp.path().join("gitops/stages/production/demo-server/inventory.json").is_file());
}

/// An app whose image is a small HTTP service, checked with `GET <path>`
/// after each delivery: the Deployment gives it a password from a Secret.
fn smoked(dir: &Path, path: &str) -> AppSpec {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/http-ok");
    let ws = dir.join("http-ok");
    std::fs::create_dir_all(ws.join("src")).unwrap();
    for f in ["Cargo.toml", "Cargo.lock", "src/main.rs"] {
        std::fs::copy(fixture.join(f), ws.join(f)).unwrap();
    }
    let objects = |cx: &ReleaseCx| {
        Ok(vec![
            Object::from_value(json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"db","namespace":"demo"},"stringData":{"password":"smoke-canary-4471"}})).unwrap(),
            Object::from_value(json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"svc","namespace":"demo"},
                "spec":{"selector":{"matchLabels":{"app":"svc"}},"template":{"metadata":{"labels":{"app":"svc"}},
                "spec":{"containers":[{"name":"svc","image":cx.image.to_string(),
                "env":[{"name":"DB_PASSWORD","valueFrom":{"secretKeyRef":{"name":"db","key":"password"}}}]}]}}}})).unwrap(),
        ])
    };
    AppSpec {
        name: "svc".into(),
        doc: String::new(),
        dir: ws,
        image: ImageSource::Buildable(Arc::new(harmony::build::RustBinary::new("http-ok"))),
        chart: ChartSource::Builder(Arc::new(objects)),
        stages: vec!["staging".into(), "production".into()],
        smoke: Some(harmony::release::HttpCheck::get(path)),
    }
}

#[test]
fn an_http_smoke_test_gates_each_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let local = local_in(tmp.path());
    let rt = rt();
    let released = rt.block_on(pipeline::release::<_, HttpSmoke>(
        &smoked(tmp.path(), "/healthz"),
        &Version::parse("1.0.0").unwrap(),
        &local,
        Mode::Apply,
        &Silent,
    ));
    assert_eq!(released.unwrap().stages.len(), 2);

    let tmp = tempfile::tempdir().unwrap();
    let local = local_in(tmp.path());
    let mut check = smoked(tmp.path(), "/missing");
    check.smoke.as_mut().unwrap().timeout = std::time::Duration::from_secs(2);
    let err = rt
        .block_on(pipeline::release::<_, HttpSmoke>(
            &check,
            &Version::parse("1.0.0").unwrap(),
            &local,
            Mode::Apply,
            &Silent,
        ))
        .unwrap_err();
    let ReleaseError::Delivery { stage, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(stage, "staging");
    let why = err.notes().join("\n");
    assert!(
        why.contains("it answered 404") && why.contains("starting with password <redacted>"),
        "{why}"
    );
    assert!(!format!("{err:?} {why} {}", err.help()).contains("smoke-canary-4471"));
    assert!(!tmp.path().join("state/stages/production").exists(), "production was not touched");
}

/// An app whose chart is published already: the release pulls it at its
/// pinned version and renders it with real helm before building anything,
/// delivers what it holds to every stage, and never pushes the chart again.
#[test]
fn a_published_chart_is_delivered_at_its_pinned_version_and_not_pushed_again() {
    let registry = Registry::anonymous();
    let tmp = tempfile::tempdir().unwrap();
    context(tmp.path());
    let cx = ReleaseCx::development("web");
    let chart = harmony::chart::Chart::from_objects("web", "published elsewhere", &objects(&cx, false))
        .stamped(&Version::parse("2.0.0").unwrap())
        .artifact()
        .unwrap();
    rt().block_on(harmony::oci::distribution::Remote::new(&registry.address, None).push("vendor/web", "2.0.0", &chart))
        .unwrap();
    let url: &'static str = Box::leak(format!("oci://{}/vendor/web", registry.address).into_boxed_str());
    let mut published = spec(tmp.path(), false);
    published.chart = ChartSource::Published { url, version: "2.0.0" };
    let ci = Ci::new(&registry.address, "team", None, tmp.path().join("gitops"))
        .unwrap()
        .with_build_dir(tmp.path().join("build"));
    let released = rt()
        .block_on(pipeline::release::<_, NoSmoke>(
            &published,
            &Version::parse("0.4.0").unwrap(),
            &ci,
            Mode::Apply,
            &Silent,
        ))
        .unwrap_or_else(|e| panic!("{e}: {:?} (helm must be on PATH: scripts/test puts it there)", e.notes()));
    assert_eq!(released.chart, format!("{url}:2.0.0"));
    for stage in ["staging", "production"] {
        let inventory = std::fs::read_to_string(tmp.path().join(format!("gitops/stages/{stage}/demo-server/inventory.json"))).unwrap();
        assert!(
            inventory.contains("\"ConfigMap\"") && inventory.contains("\"Deployment\""),
            "{inventory}"
        );
    }
    assert!(
        registry.tags("team/charts/demo-server").is_empty(),
        "the published chart was not pushed again"
    );
    assert_eq!(registry.tags("team/demo-server"), ["0.4.0"], "the image was");
}
