//! The CustomResourceDefinition the deploy crate installs is checked in
//! (`apps/fleet/operator/crd.json`), so deploying the fleet does not link the
//! operator. This test keeps it equal to what the types generate; rewrite it
//! with `FLEET_UPDATE_CRD=1 cargo test -p fleet-operator --test crd`.

use kube::CustomResourceExt as _;

#[test]
fn the_checked_in_crd_is_what_the_types_generate() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crd.json");
    let generated = serde_json::to_string_pretty(&fleet_operator::crd::FleetDeployment::crd()).unwrap() + "\n";
    if std::env::var_os("FLEET_UPDATE_CRD").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{} is out of date: rerun with FLEET_UPDATE_CRD=1 and commit it",
        path.display()
    );
    let crd: serde_json::Value = serde_json::from_str(&checked_in).unwrap();
    assert_eq!(crd["spec"]["versions"][0]["subresources"]["status"], serde_json::json!({}));
}
