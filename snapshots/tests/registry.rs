//! The registry as the webapp's binary carries it: `list`, `explain`, and the
//! sorted contents, so a registration the linker dropped fails here. This test
//! binary defines no Scores of its own.

use harmony_registry::cli::{self, Format};

#[allow(unused_imports)]
use webapp as _;

#[test]
fn list_and_explain() {
    insta::assert_snapshot!("list_text", cli::list(Format::Text));
    insta::assert_snapshot!("list_json", cli::list(Format::Json));
    insta::assert_snapshot!("explain_app", cli::explain("webapp", Format::Text).unwrap());
    insta::assert_snapshot!("explain_score", cli::explain("Credentials", Format::Text).unwrap());
    insta::assert_snapshot!("explain_score_json", cli::explain("Server", Format::Json).unwrap());
    insta::assert_snapshot!("explain_topology", cli::explain("local", Format::Text).unwrap());
    insta::assert_snapshot!("explain_capability", cli::explain("K8sClient", Format::Text).unwrap());
    let missing = cli::explain("Credential", Format::Text).unwrap_err();
    assert_eq!(missing.help.as_deref(), Some("did you mean `Credentials`?"));
}

/// Every registration this binary should carry; one the linker dropped fails here.
#[test]
fn registry_contents() {
    insta::assert_snapshot!(harmony_registry::contents());
}
