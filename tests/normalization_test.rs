//! The tokenizer on the Unicode normalisation conformance file (`NormalizationTest.txt` of
//! the UCD, read from `../shared/data/unicode`; the test skips with a message when that folder
//! is absent). Canonically equivalent texts (the columns source, NFC and NFD of each line) must
//! tokenise alike, and the normalised text must be in NFC and a fixed point (issue 21, defect
//! 8: NFC moved marks across the tokenizer's segments, so equivalent texts split differently
//! and normalising twice changed the text).

use std::path::Path;
use streamtrack::normalize::{Tokens, UrlMode};

fn words(t: &Tokens) -> Vec<&str> {
    t.word_texts().collect()
}

#[test]
fn canonically_equivalent_texts_tokenise_alike() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/unicode/NormalizationTest.txt");
    let Ok(data) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is absent", path.display());
        return;
    };
    let hex = |field: &str| -> String {
        field
            .split_whitespace()
            .map(|h| char::from_u32(u32::from_str_radix(h, 16).expect("hex")).expect("a char"))
            .collect()
    };
    let (mut lines, mut failures) = (0, Vec::new());
    for line in data.lines() {
        let line = line.split('#').next().unwrap_or("");
        if line.starts_with('@') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<String> = line.split(';').take(3).map(hex).collect();
        lines += 1;
        // In a token of its own, after a punctuation mark, after a letter, and after combining
        // characters the old tables did not count as marks (U+0345, which folds to `ι`, and
        // U+113CE, ccc 9, newer than the UCD 15.0 tables).
        for context in ["", "[", "a", "[\u{345}", "!\u{113CE}"] {
            let forms: Vec<Tokens> =
                cols.iter().map(|c| Tokens::of(&format!("{context}{c}"), UrlMode::Keep)).collect();
            let first = &forms[0];
            let again = Tokens::of(first.text(), UrlMode::Keep);
            let ok = forms.iter().all(|f| f.text() == first.text() && words(f) == words(first))
                && unicode_normalization::is_nfc(first.text())
                && again.text() == first.text()
                && words(&again) == words(first);
            if !ok && failures.len() < 20 {
                failures.push(format!("{context:?} + {line}"));
            }
        }
    }
    assert!(lines > 10_000, "read {lines} lines");
    assert!(failures.is_empty(), "lines tokenising differently:\n{}", failures.join("\n"));
}
