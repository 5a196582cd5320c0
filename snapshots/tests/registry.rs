//! The registry as the webapp's binary carries it: `list`, `explain`, and the
//! sorted contents, so a registration the linker dropped fails here. This test
//! binary defines no Scores of its own.

use harmony_registry::cli::{self, Format};

#[allow(unused_imports)]
use webapp as _;

#[test]
fn list_and_explain() {
    insta::assert_snapshot!("list_text", lines_hidden(&cli::list(Format::Text)));
    insta::assert_snapshot!("list_json", lines_hidden(&cli::list(Format::Json)));
    insta::assert_snapshot!("explain_app", lines_hidden(&cli::explain("webapp-server", Format::Text).unwrap()));
    insta::assert_snapshot!("explain_score", lines_hidden(&cli::explain("Credentials", Format::Text).unwrap()));
    insta::assert_snapshot!("explain_score_json", lines_hidden(&cli::explain("Server", Format::Json).unwrap()));
    insta::assert_snapshot!("explain_topology", lines_hidden(&cli::explain("local", Format::Text).unwrap()));
    insta::assert_snapshot!(
        "explain_capability",
        lines_hidden(&cli::explain("K8sClient", Format::Text).unwrap())
    );
    let missing = cli::explain("Credential", Format::Text).unwrap_err();
    assert_eq!(missing.help.as_deref(), Some("did you mean `Credentials`?"));
}

/// Every registration this binary should carry; one the linker dropped fails here.
#[test]
fn registry_contents() {
    insta::assert_snapshot!(harmony_registry::contents());
}

/// Declaration lines move with every edit of the app; the file stays.
fn lines_hidden(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(".rs:") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits > 0 {
            out.push_str("[line]");
        }
        rest = &rest[digits..];
    }
    out.push_str(rest);
    out
}
