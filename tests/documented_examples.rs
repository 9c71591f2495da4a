//! semantics.md section 6: every documented example, through the library.

mod common;

use streamtrack::{Message, Rule};

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
