//! No import cycle, in any crate of the workspace: each `src/` file is a
//! module, and a module depends on the ones its `crate::` and `super::` paths
//! name (comments and `$crate` in macros left out). The core's leaves stay
//! leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_core_leaves_stay_leaves() {
    let deps = file_deps(&workspace_root(), "harmony");
    let of = |file: &str| deps.get(file).cloned().unwrap_or_default();
    assert!(of("harmony/src/errors.rs").is_empty(), "{:?}", of("harmony/src/errors.rs"));
    assert!(of("harmony/src/time.rs").is_empty(), "{:?}", of("harmony/src/time.rs"));
    assert_eq!(of("harmony/src/lock.rs"), BTreeSet::from(["harmony/src/time.rs".to_owned()]));
    // The engine drives Scores; a Score's Interpret receives the engine's `Run`, nothing else of it.
    let score = of("harmony/src/score.rs");
    assert!(
        score
            .iter()
            .all(|d| !d.starts_with("harmony/src/engine") || d == "harmony/src/engine/run.rs"),
        "{score:?}"
    );
}

/// Two modules that reach each other are an import cycle, and there is none.
#[test]
fn no_crate_has_an_import_cycle() {
    let root = workspace_root();
    let crates = workspace_members(&root);
    assert!(crates.len() > 10 && crates.iter().any(|c| c == "harmony-k8s"), "{crates:?}");
    let mut found: Vec<Vec<String>> = Vec::new();
    for krate in &crates {
        let deps = file_deps(&root, krate);
        // Files that reach each other, grouped.
        let reaches = |from: &String| {
            let mut seen = BTreeSet::new();
            let mut stack: Vec<String> = deps.get(from).into_iter().flatten().cloned().collect();
            while let Some(d) = stack.pop() {
                if seen.insert(d.clone()) {
                    stack.extend(deps.get(&d).into_iter().flatten().cloned());
                }
            }
            seen
        };
        let all: BTreeMap<String, BTreeSet<String>> = deps.keys().map(|m| (m.clone(), reaches(m))).collect();
        let mut grouped = BTreeSet::new();
        for (m, reach) in &all {
            if !reach.contains(m) || grouped.contains(m) {
                continue;
            }
            let cycle: Vec<String> = reach
                .iter()
                .filter(|other| all.get(*other).is_some_and(|r| r.contains(m)))
                .cloned()
                .collect();
            grouped.extend(cycle.iter().cloned());
            found.push(cycle);
        }
    }
    assert!(
        found.is_empty(),
        "import cycles: {found:#?}\n(a module that is reached from a module it reaches; move the shared item to a module both can depend on)"
    );
}

/// Each file of `krate`'s `src/` (as `krate/src/PATH`), and the files its `crate::` and `super::`
/// paths name (the longest path that is a file).
fn file_deps(root: &Path, krate: &str) -> BTreeMap<String, BTreeSet<String>> {
    let src = root.join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    // Module path (segments) of each file.
    let module_of = |file: &Path| -> Vec<String> {
        let rel = file.strip_prefix(&src).unwrap().with_extension("");
        let mut segments: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
        if matches!(segments.last().map(String::as_str), Some("mod" | "lib" | "main")) {
            segments.pop();
        }
        segments
    };
    let modules: BTreeMap<Vec<String>, String> = files
        .iter()
        .map(|f| (module_of(f), format!("{krate}/src/{}", f.strip_prefix(&src).unwrap().display())))
        .collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let me = module_of(file);
        let name = &modules[&me];
        let is_dir_module = file.file_stem().is_some_and(|s| s == "mod");
        let code: String = std::fs::read_to_string(file)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        for path in paths(&code) {
            let mut target: Vec<String> = match path.first().map(String::as_str) {
                Some("crate") => Vec::new(),
                Some("super") => {
                    // `super` of a file `a/b.rs` is `a`; of `a/mod.rs`, the crate root's `a`'s parent.
                    let mut base = me.clone();
                    if is_dir_module || !base.is_empty() {
                        base.pop();
                    }
                    base
                }
                _ => continue,
            };
            target.extend(path[1..].iter().cloned());
            // The longest prefix that is a file of the crate.
            while !target.is_empty() && !modules.contains_key(&target) {
                target.pop();
            }
            if let Some(dep) = modules.get(&target).filter(|d| !target.is_empty() && *d != name) {
                deps.entry(name.clone()).or_default().insert(dep.clone());
            }
        }
    }
    deps
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::…` and `super::…` paths of `code`, as segments; a `use crate::{a, b::c}` group
/// gives one path per member.
fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for start in ["crate::", "super::"] {
        for (i, _) in code.match_indices(start) {
            if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$' || c == ':') {
                continue;
            }
            let head = start.trim_end_matches("::").to_owned();
            let rest = &code[i + start.len()..];
            let mut segments = vec![head.clone()];
            // `super::super::x`
            let mut rest = rest;
            while let Some(r) = rest.strip_prefix("super::") {
                segments.push("super".into());
                rest = r;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for member in group[..end].split(',') {
                    let member: Vec<String> = member.split("::").map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect();
                    if !member.is_empty() {
                        out.push(segments.iter().cloned().chain(member).collect());
                    }
                }
                continue;
            }
            let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            segments.extend(path.split("::").filter(|s| !s.is_empty()).map(str::to_owned));
            out.push(segments);
        }
    }
    out
}

/// Every member of the workspace, as the root `Cargo.toml` lists them.
fn workspace_members(root: &Path) -> Vec<String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members = ["))
        .expect("the workspace lists its members on one line");
    line.split('"').skip(1).step_by(2).map(str::to_owned).collect()
}
