//! `docs/fleet-faults.md` names a test for every row: each must exist, so the table cannot
//! claim a test that was renamed or removed.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.ends_with("target") {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_test_the_fleets_fault_table_names_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let table = std::fs::read_to_string(root.join("docs/fleet-faults.md")).unwrap();
    let mut files = Vec::new();
    sources(&root.join("apps/fleet"), &mut files);
    sources(&root.join("tests"), &mut files);
    let code: String = files.iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let named: Vec<&str> = table
        .lines()
        .filter_map(|row| row.split('|').nth(2))
        .filter_map(|cell| cell.split('`').nth(3))
        .filter_map(|path| path.rsplit("::").next())
        .collect();
    assert!(named.len() >= 15, "the table names {} tests", named.len());
    for test in named {
        assert!(
            code.contains(&format!("fn {test}(")),
            "docs/fleet-faults.md names `{test}`, which no test is"
        );
    }
}
