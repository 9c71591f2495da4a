use super::*;

fn words(text: &str) -> Vec<String> {
    Tokens::of(text, UrlMode::Canonicalize).word_texts().map(str::to_string).collect()
}

#[test]
fn splits_punctuation_and_emoji() {
    assert_eq!(words("I like 🍕"), ["i", "like", "🍕"]);
    assert_eq!(words("coca-cola"), ["coca", "cola"]);
    assert_eq!(words("👍🏽"), ["👍", "🏽"]);
    assert_eq!(words("🇫🇷"), ["🇫", "🇷"]);
}

#[test]
fn ascii_normalized_text_equals_the_tokenizer_text() {
    let mut out = String::new();
    for t in [
        "",
        "  a  B\tc\n",
        "see (HTTP://WWW.Example.com/x). and www.a.b http:// x+y://z ftp://www.www.q",
        "\u{1}ctrl\u{7f} c++ $5 #Tag @User",
    ] {
        ascii_normalized_text(t, &mut out);
        assert_eq!(out, Tokens::of(t, UrlMode::Canonicalize).text(), "{t:?}");
    }
    // Every printable ASCII string of a small alphabet, exhaustively up to length 5.
    let alphabet = [b'a', b'W', b'.', b':', b'/', b' ', b'(', b'\t'];
    let mut stack = vec![Vec::new()];
    while let Some(s) = stack.pop() {
        let t = String::from_utf8(s.clone()).unwrap();
        ascii_normalized_text(&t, &mut out);
        assert_eq!(out, Tokens::of(&t, UrlMode::Canonicalize).text(), "{t:?}");
        if s.len() < 5 {
            for &c in &alphabet {
                let mut n = s.clone();
                n.push(c);
                stack.push(n);
            }
        }
    }
}

/// A combining mark attached to punctuation belongs to it: no word starts there, so no phrase
/// does either (`"\u{5b7}"`: the reference once matched the phrase of the mark alone there,
/// while the compiled matcher, keyed by words, did not; found by the `explain` fuzz target).
#[test]
fn no_boundary_between_a_character_and_its_mark() {
    let t = "\"\u{5b7}\" x \u{5b7}";
    assert!(!is_boundary_at(t, 1), "inside the quote's character");
    assert!(is_boundary_at(t, 3), "after the mark, before the quote");
    assert!(is_boundary_at(t, 7), "a mark after a space starts its own word");
    assert!(!is_boundary_at("x\u{5b7}", 1), "a word's own mark");
    assert!(!is_boundary_at("\u{1f44d}\u{301}", 4), "an emoji's own mark");
    assert!(is_boundary_at("\u{1f44d} \u{301}", 4), "before the space");
    assert!(is_boundary_at("\u{1f44d}\u{1f44d}", 4), "between two emoji");
}

/// The marks the word scanner takes out of the NFC tables' fast path
/// ([`reorderable_mark`]: the 14 Thai and Lao marks with a non-zero class) decompose to
/// themselves and compose with no character, before or after them: NFC can only reorder
/// them; and a Thai mark after its letter is kept in place by NFC when the classes do not
/// decrease, moved when they do.
#[test]
fn reorderable_marks_only_reorder_under_nfc() {
    use unicode_normalization::char::{canonical_combining_class, compose, decompose_canonical};
    let marks: Vec<char> =
        ('\u{e00}'..='\u{eff}').filter(|&c| reorderable_mark(c).is_some()).collect();
    assert_eq!(marks.len(), 14);
    for &m in &marks {
        assert_eq!(Some(canonical_combining_class(m)), reorderable_mark(m), "{m:?}");
        let mut parts = Vec::new();
        decompose_canonical(m, |d| parts.push(d));
        assert_eq!(parts, [m], "{m:?} decomposes");
        for x in (0..=0x10_ffff).filter_map(char::from_u32) {
            assert_eq!(compose(x, m), None, "{x:?} + {m:?}");
            assert_eq!(compose(m, x), None, "{m:?} + {x:?}");
        }
        assert!(plain_char(m).is_none(), "{m:?} is not plain: the scanner asks");
    }
    let nfc = |s: &str| s.nfc().collect::<String>();
    assert_eq!(nfc("ก\u{e38}\u{e49}"), "ก\u{e38}\u{e49}");
    assert_eq!(nfc("ก\u{e49}\u{e38}"), "ก\u{e38}\u{e49}");
}

/// The folds the word scanner writes in place are the full folding, only where it has the
/// character's length and the characters the scanner can take.
#[test]
fn folds_in_place_only_where_they_fit() {
    assert_eq!(fold_in_place('É'), Some("é"));
    assert_eq!(fold_in_place('Σ'), Some("σ"));
    assert_eq!(fold_in_place('ß'), Some("ss"));
    assert_eq!(fold_in_place('\u{fb03}'), Some("ffi"));
    assert_eq!(fold_in_place('\u{fb01}'), None, "ﬁ folds to two bytes");
    assert_eq!(fold_in_place('\u{1e9e}'), None, "ẞ folds to two bytes");
    assert_eq!(fold_in_place('\u{1e96}'), None, "ẖ folds to h and a mark that is not plain");
    assert_eq!(fold_in_place('é'), None, "no folding");
    for c in ('\u{80}'..='\u{ffff}').filter(|c| fold_in_place(*c).is_some()) {
        let mut folded = String::new();
        push_case_folded(c, &mut folded);
        assert_eq!(fold_in_place(c), Some(folded.as_str()), "{c:?}");
        assert_eq!(folded.len(), c.len_utf8(), "{c:?}");
    }
}

/// `is_ascii` (the matcher's choice of scanner, the sentiment scorer's of tokenizer) agrees
/// with the standard library's at every length and with a non-ASCII byte at every position.
#[test]
fn is_ascii_agrees_with_the_standard_library() {
    for len in 0..40 {
        let text = vec![b'a'; len];
        assert!(is_ascii(&text), "{len}");
        for at in 0..len {
            for high in [0x80, 0xc3, 0xff] {
                let mut t = text.clone();
                t[at] = high;
                assert_eq!(is_ascii(&t), t.is_ascii(), "{len} {at}");
            }
        }
    }
}
