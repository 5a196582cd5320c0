//! Discovery over what the linked crates registered (apps, Scores, topologies,
//! capabilities), and the CLI generated from it.
//!
//! An app crate's `main.rs` is one line, `harmony_registry::main!(my_app);`,
//! naming every crate whose registrations the binary must carry.

use harmony::engine::registry::{AppEntry, CapabilityEntry, ReleaseEntry, ScoreEntry, TopologyEntry};

pub mod cli;
pub mod view;

/// Every registered app, by name.
pub fn apps() -> Vec<&'static AppEntry> {
    let mut v: Vec<_> = inventory::iter::<AppEntry>().collect();
    v.sort_by_key(|a| a.name);
    v
}

/// Every app that can be released, by name.
pub fn releases() -> Vec<&'static ReleaseEntry> {
    let mut v: Vec<_> = inventory::iter::<ReleaseEntry>().collect();
    v.sort_by_key(|r| r.name);
    v
}

/// Every registered Score type, by name.
pub fn scores() -> Vec<&'static ScoreEntry> {
    let mut v: Vec<_> = inventory::iter::<ScoreEntry>().collect();
    v.sort_by_key(|s| (s.name, s.module));
    v
}

/// Every topology the binary carries (declared with `harmony::topology!`), by name.
pub fn topologies() -> Vec<&'static TopologyEntry> {
    let mut v: Vec<_> = inventory::iter::<TopologyEntry>().collect();
    v.sort_by_key(|t| t.name);
    v
}

/// Every capability, by name.
pub fn capabilities() -> Vec<&'static CapabilityEntry> {
    let mut v: Vec<_> = inventory::iter::<CapabilityEntry>().collect();
    v.sort_by_key(|c| c.name);
    v
}

/// Apps registered twice under one name, by crates linked into one binary
/// (within a crate, `app!` makes it a compile error): each name with the
/// places it is declared. Empty when every name is unique.
pub fn duplicate_apps() -> Vec<(&'static str, Vec<String>)> {
    duplicates(
        apps()
            .into_iter()
            .map(|a| (a.name, format!("{} (module `{}`)", a.location, a.module))),
    )
}

/// The names given more than once, with every place each is given at.
fn duplicates<'a>(named: impl IntoIterator<Item = (&'a str, String)>) -> Vec<(&'a str, Vec<String>)> {
    let mut by_name: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for (name, place) in named {
        by_name.entry(name).or_default().push(place);
    }
    by_name.into_iter().filter(|(_, places)| places.len() > 1).collect()
}

pub fn app(name: &str) -> Option<&'static AppEntry> {
    apps().into_iter().find(|a| a.name == name)
}

pub fn topology(name: &str) -> Option<&'static TopologyEntry> {
    topologies().into_iter().find(|t| t.name == name)
}

/// The Score type an app deploys, if it was derived (and so registered).
pub fn score_of(app: &AppEntry) -> Option<&'static ScoreEntry> {
    let full = (app.score)();
    scores().into_iter().find(|s| full == format!("{}::{}", s.module, s.name))
}

/// The Score types that need `capability`.
pub fn scores_requiring(capability: &str) -> Vec<&'static ScoreEntry> {
    scores().into_iter().filter(|s| (s.requires)().contains(&capability)).collect()
}

/// The names of the topologies that provide every one of `needs`.
pub fn runs_on(needs: &[&'static str]) -> Vec<&'static str> {
    topologies()
        .into_iter()
        .filter(|t| t.lacks(needs).is_empty())
        .map(|t| t.name)
        .collect()
}

/// The Score types that run on topology `name`.
pub fn scores_on(topology: &TopologyEntry) -> Vec<&'static ScoreEntry> {
    scores().into_iter().filter(|s| topology.lacks(&(s.needs)()).is_empty()).collect()
}

/// The registry's contents as sorted text: what a binary carries. Snapshot it
/// per binary so a registration the linker dropped fails a test.
pub fn contents() -> String {
    let mut out = String::new();
    for a in apps() {
        let runs = runs_on(&(a.needs)());
        out.push_str(&format!("app {} ({}) on [{}]\n", a.name, (a.score)(), runs.join(", ")));
    }
    for s in scores() {
        out.push_str(&format!(
            "score {}::{} on [{}]\n",
            s.module,
            s.name,
            runs_on(&(s.needs)()).join(", ")
        ));
    }
    for r in releases() {
        let runs = runs_on(&(r.needs)());
        out.push_str(&format!(
            "release {} through [{}] on [{}]\n",
            r.name,
            r.stages.join(", "),
            runs.join(", ")
        ));
    }
    for t in topologies() {
        out.push_str(&format!("topology {} provides [{}]\n", t.name, t.capabilities().join(", ")));
    }
    for c in capabilities() {
        out.push_str(&format!("capability {}\n", c.name));
    }
    out
}

pub use harmony::suggest::closest;

/// The `main` of a deploy binary: `harmony_registry::main!(crate_a, crate_b);`
/// names every crate whose apps and Scores the binary carries, so the linker
/// keeps their registrations.
#[macro_export]
macro_rules! main {
    ($($krate:ident),* $(,)?) => {
        $( #[allow(unused_imports)] use $krate as _; )*
        fn main() -> ::std::process::ExitCode {
            $crate::cli::main()
        }
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_given_twice_are_found_with_every_place() {
        let found = super::duplicates([
            ("shop", "a.rs:1".to_owned()),
            ("web", "b.rs:2".to_owned()),
            ("shop", "c.rs:3".to_owned()),
            ("shop", "d.rs:4".to_owned()),
        ]);
        assert_eq!(
            found,
            vec![("shop", vec!["a.rs:1".to_owned(), "c.rs:3".to_owned(), "d.rs:4".to_owned()])]
        );
        assert!(super::duplicates([("web", String::new())]).is_empty());
    }
}
