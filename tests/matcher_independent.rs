//! The compiled matcher is checked against the reference matcher (differential tests, fuzzing);
//! those checks mean something only if no part of the compiled matcher *is* the reference.
//! This test reads the matcher's sources and fails on any use of the `reference` module
//! (issue 22, item 2). `.ci/run` runs the same check with grep.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a readable source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `source` that name the reference module.
fn uses_of_reference(source: &str) -> Vec<(usize, String)> {
    source
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("reference::") || l.contains("reference::{"))
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect()
}

#[test]
fn no_module_of_the_compiled_matcher_uses_the_reference() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/matcher");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    assert!(files.len() >= 5, "the matcher's sources are under src/matcher ({files:?})");
    let mut found = Vec::new();
    for f in &files {
        let source = std::fs::read_to_string(f).expect("a readable source file");
        for (line, text) in uses_of_reference(&source) {
            found.push(format!("{}:{line}: {text}", f.display()));
        }
    }
    assert!(found.is_empty(), "the compiled matcher uses the reference:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_a_use_of_the_reference() {
    assert_eq!(uses_of_reference("use crate::reference::term_matches;").len(), 1);
    assert_eq!(uses_of_reference("let v = crate::reference::phrase_in(t, p);\nok").len(), 1);
    assert!(uses_of_reference("use super::terms::term_holds;").is_empty());
}
