//! Real Helm reads the charts we build and push: `helm pull` from the
//! registry, `helm lint`, and `helm template` renders back exactly the objects
//! the chart was built from, with the secret value given at install time.

mod support;

use std::path::PathBuf;
use std::process::Command;

use harmony::chart::Chart;
use harmony::object::Object;
use harmony::oci::distribution::Remote;
use harmony::release::Version;
use serde_json::{Value, json};
use support::registry::Registry;

/// Installed by `scripts/install-k8s-tools` (which `scripts/test` runs).
fn helm() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/tools/helm/helm");
    assert!(path.is_file(), "helm is missing: run scripts/install-k8s-tools");
    path
}

fn run(args: &[&str]) -> String {
    let out = Command::new(helm()).args(args).output().unwrap();
    assert!(out.status.success(), "helm {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn helm_pulls_lints_and_renders_our_chart() {
    let objects = vec![
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"demo"},
               "data":{"page":"<p>{{ literal braces }}</p>","port":"8080"}}),
        json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"web-db","namespace":"demo"},
               "stringData":{"password":"never-in-the-chart"}}),
        json!({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"demo"},
               "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},
               "spec":{"containers":[{"name":"web","image":"127.0.0.1:5000/team/web:0.1.0@sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"}]}}}}),
    ];
    let typed: Vec<Object> = objects.iter().cloned().map(|v| Object::from_value(v).unwrap()).collect();
    let chart = Chart::from_objects("web", "a demo", &typed).stamped(&Version::parse("0.1.0").unwrap());
    let artifact = chart.artifact().unwrap();
    // Unpacked, no file of the chart holds the secret value (the bytes of a
    // gzip stream would hide it whether it were there or not).
    let tgz = chart.package().unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
    let mut files = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let mut text = String::new();
        std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
        let path = entry.path().unwrap().display().to_string();
        assert!(!text.contains("never-in-the-chart"), "{path} holds the secret value");
        files.push(path);
    }
    assert!(files.iter().any(|f| f.ends_with("Chart.yaml")) && files.len() >= 3, "{files:?}");

    let registry = Registry::anonymous();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(Remote::new(&registry.address, None).push("charts/web", "0.1.0", &artifact))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().to_str().unwrap();
    run(&[
        "pull",
        &format!("oci://{}/charts/web", registry.address),
        "--version",
        "0.1.0",
        "--plain-http",
        "-d",
        dest,
    ]);
    let tgz = dir.path().join("web-0.1.0.tgz");
    assert!(tgz.is_file());
    run(&["lint", tgz.to_str().unwrap(), "--set-string", "secrets.web-db.password=x"]);
    // The chart is namespace-neutral: its one namespace is the release's.
    let rendered = run(&[
        "template",
        "web",
        tgz.to_str().unwrap(),
        "--namespace",
        "demo",
        "--set-string",
        "secrets.web-db.password=given-at-install",
    ]);

    let mut docs: Vec<Value> = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(&rendered) {
        let v: Value = serde::Deserialize::deserialize(doc).unwrap();
        if !v.is_null() {
            docs.push(v);
        }
    }
    let mut expected = objects.clone();
    expected[1]["stringData"]["password"] = json!("given-at-install");
    let key = |v: &Value| {
        (
            v["kind"].as_str().unwrap().to_owned(),
            v["metadata"]["name"].as_str().unwrap().to_owned(),
        )
    };
    docs.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(docs, expected, "helm renders back exactly what the chart was built from");
}

/// A published chart (here: one of ours, pushed to the real registry) is
/// pulled and rendered by real helm into objects, with values that may hold
/// a secret; a version that was never published fails with helm's own words,
/// and a helm that is not there says how to get one.
#[test]
fn a_published_chart_is_rendered_by_real_helm_at_its_pinned_version() {
    use harmony::helm::{Helm, HelmError};
    use harmony::release::ChartRef;

    let objects = vec![
        json!({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"web","namespace":"demo"},"data":{"port":"8080"}}),
        json!({"apiVersion":"v1","kind":"Secret","metadata":{"name":"web-db","namespace":"demo"},"stringData":{"password":"x"}}),
    ];
    let typed: Vec<Object> = objects.iter().cloned().map(|v| Object::from_value(v).unwrap()).collect();
    let artifact = Chart::from_objects("web", "a demo", &typed)
        .stamped(&Version::parse("1.2.3").unwrap())
        .artifact()
        .unwrap();
    let registry = Registry::anonymous();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(Remote::new(&registry.address, None).push("charts/web", "1.2.3", &artifact))
        .unwrap();

    let helm = Helm::at(helm()).unwrap();
    let url = format!("oci://{}/charts/web", registry.address);
    let values = json!({"secrets": {"web-db": {"password": "given-at-install"}}});
    let rendered = helm
        .render(&ChartRef::parse(&url, "1.2.3").unwrap(), "web", Some("demo"), &values)
        .unwrap();
    let mut got: Vec<Value> = rendered.objects.into_iter().map(Object::into_body).collect();
    got.sort_by_key(|v| v["kind"].as_str().unwrap().to_owned());
    let mut expected = objects;
    expected[1]["stringData"]["password"] = json!("given-at-install");
    assert_eq!(got, expected);
    // One artifact installs into any namespace.
    let elsewhere = helm
        .render(&ChartRef::parse(&url, "1.2.3").unwrap(), "web", Some("demo-2"), &values)
        .unwrap();
    assert!(elsewhere.objects.iter().all(|o| o.id().namespace.as_deref() == Some("demo-2")));

    let err = helm
        .render(&ChartRef::parse(&url, "9.9.9").unwrap(), "web", None, &values)
        .unwrap_err();
    assert!(matches!(err, HelmError::Pull { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("{url}:9.9.9")) && err.to_string().contains("not found"),
        "{err}"
    );
}

/// A published chart whose templates fail to render: the error carries
/// helm's own words, and never a value it was given.
#[test]
fn a_chart_that_fails_to_render_is_reported_in_helms_words() {
    use harmony::helm::{Helm, HelmError};
    use harmony::release::ChartRef;

    let mut chart = Chart::new("broken", "a chart whose template fails");
    chart.file(
        "templates/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: broken\ndata:\n  v: {{ required \"set .Values.region\" .Values.region }}\n",
    );
    let artifact = chart.stamped(&Version::parse("0.1.0").unwrap()).artifact().unwrap();
    let registry = Registry::anonymous();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(Remote::new(&registry.address, None).push("charts/broken", "0.1.0", &artifact))
        .unwrap();
    let url = format!("oci://{}/charts/broken", registry.address);
    let values = json!({"token": "tok-never-shown-7c1", "region": null});
    let err = Helm::at(helm())
        .unwrap()
        .render(&ChartRef::parse(&url, "0.1.0").unwrap(), "broken", None, &values)
        .unwrap_err();
    assert!(matches!(err, HelmError::Render { .. }), "{err:?}");
    let said = err.to_string();
    assert!(said.contains("set .Values.region"), "helm's words: {said}");
    assert!(!said.contains("tok-never-shown-7c1"), "{said}");
}
