//! `FleetOperatorScore { chart: Some(..) }` installs the operator's published
//! chart at its pinned version: pulled from a real registry and rendered by
//! real helm (on `PATH`, as `scripts/test` sets it), moved into the Score's
//! namespace, its Secret holding the Score's credentials.

// Only the anonymous registry is used here.
#[allow(dead_code)]
#[path = "../../../harmony/tests/support/registry.rs"]
mod registry;

use fleet::{Authority, FleetNatsScore, FleetOperatorScore, PublishedChart, Role};
use harmony::chart::Chart;
use harmony::oci::distribution::Remote;
use harmony::release::Version;
use harmony::{Diagnostic as _, Object, Secret};

fn ids(objects: &[Object]) -> Vec<String> {
    let mut ids: Vec<String> = objects.iter().map(|o| o.id().to_string()).collect();
    ids.sort();
    ids
}

#[test]
fn a_published_operator_chart_installs_into_another_namespace_with_the_given_credentials() {
    let registry = registry::Registry::anonymous();
    let image = "127.0.0.1:1/team/fleet-operator:0.1.0";
    let first = Authority::generate();
    let source = FleetOperatorScore::new("fleet", image, &FleetNatsScore::new("fleet", Secret::new(first.to_text())));
    let released = harmony::engine::render("fleet-operator", "release", &source).unwrap();
    let chart = Chart::from_objects("fleet-operator", "the fleet's operator", &released)
        .stamped(&Version::parse("0.1.0").unwrap())
        .artifact()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(Remote::new(&registry.address, None).push("team/charts/fleet-operator", "0.1.0", &chart))
        .unwrap();

    let second = Authority::generate();
    let nats = FleetNatsScore::new("fleet", Secret::new(second.to_text()));
    let mut published = FleetOperatorScore::new("fleet-b", "not-this-image", &nats);
    let url = format!("oci://{}/team/charts/fleet-operator", registry.address);
    published.chart = Some(PublishedChart {
        url: url.clone(),
        version: "0.1.0".into(),
    });
    let installed = harmony::engine::render("fleet-operator", "test", &published).unwrap();
    assert_eq!(
        ids(&installed),
        ids(&released)
            .iter()
            .map(|id| id.replace(" fleet/", " fleet-b/"))
            .collect::<Vec<_>>(),
        "the same objects, moved into the Score's namespace"
    );
    let find = |kind: &str| installed.iter().find(|o| o.id().kind == kind).unwrap().body().clone();
    assert_eq!(
        find("Secret")["stringData"]["creds"],
        second.credentials(&Role::Operator, 0).to_text(),
        "the operator's credentials, derived from the Score's authority"
    );
    assert_eq!(find("ClusterRoleBinding")["subjects"][0]["namespace"], "fleet-b");
    assert_eq!(
        find("Deployment")["spec"]["template"]["spec"]["containers"][0]["image"],
        image,
        "the image the chart was released with"
    );

    published.chart = Some(PublishedChart {
        url,
        version: "0.9.0".into(),
    });
    let err = harmony::engine::render("fleet-operator", "test", &published).unwrap_err();
    let said = format!("{err} {}", err.notes().join(" "));
    assert!(said.contains("fleet-operator:0.9.0") && said.contains("not found"), "{said}");
}
