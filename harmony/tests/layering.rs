//! The core's modules depend on each other one way only: no import cycle.
//! A module's dependencies are the `crate::<module>` paths in its code
//! (comments and `$crate` in macros left out).

use std::collections::{BTreeMap, BTreeSet};

const CORE: &[&str] = &[
    "any_topology",
    "capability",
    "diagnostic",
    "engine",
    "errors",
    "gitops",
    "lock",
    "object",
    "plan",
    "registry",
    "render",
    "run",
    "saved_plan",
    "score",
    "secret",
    "topology",
    "verify",
];

fn deps() -> BTreeMap<&'static str, BTreeSet<&'static str>> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    CORE.iter()
        .map(|&m| {
            let text = std::fs::read_to_string(src.join(format!("{m}.rs"))).unwrap();
            let code: String = text
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .map(|l| format!("{l}\n"))
                .collect();
            let used = CORE
                .iter()
                .copied()
                .filter(|&other| {
                    other != m
                        && code.match_indices(&format!("crate::{other}")).any(|(i, s)| {
                            !code[..i].ends_with('$') && !code[i + s.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                        })
                })
                .collect();
            (m, used)
        })
        .collect()
}

#[test]
fn the_core_has_no_import_cycle() {
    let deps = deps();
    for &m in deps.keys() {
        let mut stack: Vec<&str> = deps[m].iter().copied().collect();
        let mut seen = BTreeSet::new();
        while let Some(d) = stack.pop() {
            assert_ne!(d, m, "`{m}` reaches itself: {deps:#?}");
            if seen.insert(d) {
                stack.extend(deps[d].iter().copied());
            }
        }
    }
    assert!(deps["errors"].is_empty() && deps["lock"].is_empty(), "the leaves stay leaves");
}
