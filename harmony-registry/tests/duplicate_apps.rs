//! Two crates linked into one binary that each declare an app of one name:
//! the webapp's `webapp-server`, and one declared here. Within a crate that is
//! a compile error; across crates the CLI refuses to start, naming both places.

use harmony::{Desired, Render, RenderCx, Score, ScoreError};

// Linked, so that its registrations are in this binary.
use webapp as _;

#[derive(Score, Default, Debug)]
pub struct Impostor {
    pub namespace: String,
}

impl Render for Impostor {
    fn render(&self, _: &RenderCx) -> Result<Desired, ScoreError> {
        Ok(Desired::new())
    }
}

harmony::app! {
    name: "webapp-server",
    score: Impostor::default(),
}

#[test]
fn an_app_name_declared_by_two_crates_is_found_with_both_places() {
    let found = harmony_registry::duplicate_apps();
    assert_eq!(found.len(), 1, "{found:?}");
    let (name, places) = &found[0];
    assert_eq!(*name, "webapp-server");
    assert_eq!(places.len(), 2, "{places:?}");
    assert!(places.iter().any(|p| p.contains("apps/webapp/src/lib.rs")), "{places:?}");
    assert!(
        places
            .iter()
            .any(|p| p.contains("duplicate_apps.rs") && p.contains("module `duplicate_apps`")),
        "{places:?}"
    );
}
