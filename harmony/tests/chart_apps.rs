//! An app whose chart is a directory deploys, on `apply`, that chart's
//! objects: the same ones its releases deliver (`ChartObjects`).

use std::sync::Arc;

use harmony::engine::run::Silent;
use harmony::release::ChartSource;
use harmony::release::pipeline::ChartObjects;
use harmony::{Diagnostic as _, Local, engine};

fn chart_dir(root: &std::path::Path, manifest: &str) {
    let chart = root.join("charts/site");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), "apiVersion: v2\nname: site\nversion: 0.1.0\n").unwrap();
    std::fs::write(chart.join("templates/settings.yaml"), manifest).unwrap();
}

#[test]
fn apply_deploys_a_chart_directorys_objects_and_a_templated_one_is_refused_by_name() {
    let crate_dir = tempfile::tempdir().unwrap();
    chart_dir(
        crate_dir.path(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: site-settings\n  namespace: site\ndata:\n  greeting: hello\n",
    );
    let state = tempfile::tempdir().unwrap();
    let local = Local::at(state.path());
    let app = ChartObjects::new("site-api", crate_dir.path().to_path_buf(), ChartSource::Dir("charts/site".into()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let plan = rt
        .block_on(engine::plan_and_apply("site-api", &app, &local, Arc::new(Silent)))
        .unwrap();
    let added: Vec<String> = plan.changes.iter().map(|c| c.object.to_string()).collect();
    assert_eq!(added, ["v1 ConfigMap site/site-settings"], "{plan:?}");
    let again = rt.block_on(engine::plan("site-api", &app, &local)).unwrap();
    assert!(again.is_empty(), "applied as planned: {again:?}");

    chart_dir(
        crate_dir.path(),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n",
    );
    let err = rt.block_on(engine::plan("site-api", &app, &local)).unwrap_err();
    let text = format!("{err} {} {}", err.notes().join(" "), err.help());
    assert!(text.contains("the chart of `site-api`") && text.contains("settings.yaml"), "{text}");
    assert!(text.contains("chart: builder("), "says what to do instead: {text}");
}
