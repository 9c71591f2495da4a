//! Differential tests: every fast path against the plain algorithm it replaces.

use proptest::prelude::*;
use streamtrack::normalize::{Tokens, UrlMode};

fn cases() -> u32 {
    std::env::var("STREAMTRACK_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

/// Text mixing ASCII words, punctuation, URLs, white space of all kinds, controls, ignorables,
/// combining marks, emoji and no-space scripts.
fn messy_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9]{1,8}",
        2 => "[ \t\n]{1,2}",
        2 => "[!-/:-@\\[-`{-~]{1,2}",
        1 => Just("http://".to_string()),
        1 => Just("HTTPS://WWW.".to_string()),
        1 => Just("www.".to_string()),
        1 => Just("x+y.z://".to_string()),
        1 => "[\u{0}-\u{1f}\u{7f}]",
        1 => "[\u{a0}\u{3000}\u{2003}\u{85}]",
        1 => "[\u{ad}\u{200b}\u{200d}\u{fe0f}\u{2060}]",
        1 => "[\u{300}-\u{36f}]",
        1 => "[àéîõüßİΣσςДж]{1,3}",
        1 => "[東京大タワー欲しいภาษา]{1,4}",
        1 => "[🍕👍🏽🇫🇷©]",
        1 => "[#@$]",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

fn same(text: &str, mode: UrlMode) {
    let mut fast = Tokens::new();
    fast.tokenize(text, mode);
    let mut slow = Tokens::new();
    slow.tokenize_reference(text, mode);
    assert_eq!(fast.text(), slow.text(), "text of {text:?}");
    assert_eq!(fast.raw_tokens(), slow.raw_tokens(), "raw tokens of {text:?}");
    assert_eq!(fast.words(), slow.words(), "words of {text:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn fast_tokenizer_equals_reference(text in messy_text()) {
        same(&text, UrlMode::Canonicalize);
        same(&text, UrlMode::Keep);
    }

    #[test]
    fn fast_tokenizer_equals_reference_on_any_string(text in any::<String>()) {
        same(&text, UrlMode::Canonicalize);
    }
}

#[test]
fn fast_tokenizer_examples() {
    for t in [
        "",
        " ",
        "http://",
        "(http://www.Example.com/x).",
        "www.",
        "WWW.x",
        "a\u{1}b",
        "coca-cola!",
        "naïve café",
        "iPhone欲しい http://東京.jp",
    ] {
        same(t, UrlMode::Canonicalize);
    }
}
