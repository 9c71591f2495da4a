//! The crate's own rule-language reference, `docs/rule-language.md` (the `rule_language`
//! module on docs.rs): every row of its example tables runs through the library, the tables
//! hold every documented example of the contract (`common::documented_examples`), and no
//! document points outside the crate for the contract.

mod common;

use std::path::Path;
use streamtrack::{Message, Rule};

/// The reference, as the crate ships it.
const REFERENCE: &str = include_str!("../docs/rule-language.md");

/// One example cell of the reference: the rule, its dialect, a message (JSON) and whether the
/// rule must match it.
#[derive(Debug, PartialEq)]
struct DocExample {
    dialect: &'static str,
    rule: String,
    message: serde_json::Value,
    matches: bool,
}

/// The messages of a table cell: each backquoted item is a message text, or, after
/// `url entity` / `hashtag entity`, the entity of a message with a fixed text.
fn cell_messages(cell: &str) -> Vec<serde_json::Value> {
    let parts: Vec<&str> = cell.split('`').collect();
    assert!(parts.len() % 2 == 1, "unbalanced backquotes in cell {cell:?}");
    let mut out = Vec::new();
    for (i, item) in parts.iter().enumerate().skip(1).step_by(2) {
        let before = parts[i - 1];
        out.push(if before.trim_end().ends_with("url entity") {
            serde_json::json!({"id": "m", "text": "look at this", "urls": [{"expanded_url": item}]})
        } else if before.trim_end().ends_with("hashtag entity") {
            serde_json::json!({"id": "m", "text": "so grateful", "hashtags": [item]})
        } else {
            serde_json::json!({"id": "m", "text": item})
        });
    }
    out
}

/// Every example of the tables in the `## Examples` section. A table's dialect is `track`
/// when its first header cell is `track value`.
fn doc_examples() -> Vec<DocExample> {
    let section = REFERENCE.split("\n## Examples").nth(1).expect("an Examples section");
    let mut out = Vec::new();
    let mut dialect = "rule";
    for line in section.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells[0] == "track value" || cells[0] == "rule" {
            dialect = if cells[0] == "rule" { "rule" } else { "track" };
            continue;
        }
        if cells[0].starts_with("---") {
            continue;
        }
        assert_eq!(cells.len(), 3, "three cells in {line:?}");
        let rule = cells[0].trim_matches('`').to_string();
        for (cell, matches) in [(cells[1], true), (cells[2], false)] {
            for message in cell_messages(cell) {
                out.push(DocExample { dialect, rule: rule.clone(), message, matches });
            }
        }
    }
    out
}

#[test]
fn every_example_of_the_reference_holds_in_the_reference_matcher() {
    let examples = doc_examples();
    assert!(examples.len() >= 80, "all rows are read: {}", examples.len());
    let mut failures = Vec::new();
    for ex in &examples {
        let rule = match ex.dialect {
            "track" => Rule::parse_track(&ex.rule),
            _ => Rule::parse(&ex.rule),
        }
        .unwrap_or_else(|e| panic!("{} {:?}: {e}", ex.dialect, ex.rule));
        let msg = Message::from_json(&ex.message.to_string()).expect("example message parses");
        let got = streamtrack::reference::matches(&rule, &msg);
        if got != ex.matches {
            failures.push(format!(
                "{} {:?} on {} -> {got}, want {}",
                ex.dialect, ex.rule, ex.message, ex.matches
            ));
        }
    }
    assert!(failures.is_empty(), "failing examples:\n{}", failures.join("\n"));
}

#[test]
fn every_documented_example_holds_in_the_reference_matcher() {
    let examples = common::documented_examples();
    assert!(examples.len() >= 50, "all rows are present");
    let mut failures = Vec::new();
    for ex in &examples {
        let rule = match ex.dialect {
            "track" => Rule::parse_track(ex.rule),
            _ => Rule::parse(ex.rule),
        }
        .unwrap_or_else(|e| panic!("{} {:?}: {e}", ex.dialect, ex.rule));
        let msg = Message::from_json(&ex.message).expect("example message parses");
        let got = streamtrack::reference::matches(&rule, &msg);
        if got != ex.matches {
            failures.push(format!(
                "{} {:?} on {} -> {got}, want {}",
                ex.dialect, ex.rule, ex.message, ex.matches
            ));
        }
    }
    assert!(failures.is_empty(), "failing examples:\n{}", failures.join("\n"));
}

/// The reference's tables hold every documented example the tests' own copy has: the crate's
/// documentation cannot drop a row of the contract.
#[test]
fn the_reference_holds_every_documented_example() {
    let doc = doc_examples();
    let missing: Vec<String> = common::documented_examples()
        .into_iter()
        .filter(|ex| {
            let message: serde_json::Value = serde_json::from_str(&ex.message).expect("JSON");
            !doc.iter().any(|d| {
                d.dialect == ex.dialect
                    && d.rule == ex.rule
                    && d.matches == ex.matches
                    && d.message == message
            })
        })
        .map(|ex| format!("{} {:?} {} {}", ex.dialect, ex.rule, ex.matches, ex.message))
        .collect();
    assert!(missing.is_empty(), "rows missing from docs/rule-language.md:\n{}", missing.join("\n"));
}

/// Issue 21, defect 3: the documentation sent users to a `semantics.md` and "spec section N"
/// outside the crate. Every pointer must now stay inside (the `rule_language` module).
#[test]
fn no_document_points_outside_the_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md"), root.join("DESIGN.md")];
    let mut dirs = vec![root.join("src"), root.join("docs"), root.join("bench")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "md") {
                files.push(path);
            }
        }
    }
    let pointers = ["semantics.md", "spec section", "shared/spec", "spec's section"];
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable");
        for (n, line) in text.lines().enumerate() {
            let lower = line.to_lowercase();
            if pointers.iter().any(|p| lower.contains(p)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "documents pointing outside the crate:\n{}", found.join("\n"));
    assert!(files.len() > 20, "the walk found the sources");
}
