//! Property tests (proptest) for the rule dialects, tokenisation and the reference matcher.
//!
//! Case count: 256 per property by default. Set the environment variable
//! `STREAMTRACK_PROPTEST_CASES` to run more (or fewer), e.g.
//! `STREAMTRACK_PROPTEST_CASES=20000 cargo test --release --test properties`. It is read once,
//! the first time a property runs. (proptest's own `PROPTEST_CASES` is not consulted here.)
//!
//! Failing cases are not persisted to a `*.proptest-regressions` file; proptest prints the
//! shrunk input, which should then become a plain `#[test]` below.
//!
//! Known bugs are pinned by `#[ignore = "BUG: …"]` tests at the end of this file (there are
//! none now). The generators avoid their triggers, and the "any string" properties skip inputs
//! that contain one ([`known_bug_trigger`], computed from the library's answers, so it shrinks
//! as bugs are fixed; it still skips adjacent combining characters out of canonical order,
//! whose words' source ranges cover the whole NFC piece), so that the properties test
//! everything else. Bugs these properties found that are
//! fixed have plain regression tests just before them. When a rule-dialect round trip fails
//! only because the printed text grew past a length limit, the "any string" properties skip
//! it too (`bug_canonical_text_can_exceed_the_limits`).
//!
//! Properties:
//! 1. rule dialect: `parse(print(r)) == r` and printing is idempotent, for generated rule texts
//!    and for arbitrary strings (which must parse or fail, never panic);
//! 2. the same for the track dialect;
//! 3. tokenisation invariants on arbitrary strings;
//! 4. reference matcher invariants: case changes, AND order, track AND/OR decomposition.

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config as ProptestConfig;
use std::ops::Range;
use std::sync::OnceLock;
use streamtrack::normalize::{
    char_class, fold, is_mark, CharClass, NormalizedMessage, Tokens, UrlMode,
};
use streamtrack::reference::rule_matches;
use streamtrack::rule::RuleErrorKind;
use streamtrack::{Message, Rule};
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::is_nfc;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// The number of cases per property: `STREAMTRACK_PROPTEST_CASES`, or 256.
fn cases() -> u32 {
    static CASES: OnceLock<u32> = OnceLock::new();
    *CASES.get_or_init(|| {
        std::env::var("STREAMTRACK_PROPTEST_CASES")
            .ok()
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|&n| n > 0)
            .unwrap_or(256)
    })
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        // Generated rules are built to parse; a few (e.g. an AND whose only anchor is a
        // sub-tree that got negated) are rejected by `prop_assume!`.
        max_global_rejects: cases().saturating_mul(4).max(1024),
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn hits(rule: &Rule, msg: &Message) -> bool {
    rule_matches(rule, &NormalizedMessage::of(msg))
}

// The known-bug filter and the limit check are the fuzz targets' (one definition for fuzzing
// and for these properties): `known_bug_trigger` is true for a text holding a character of a
// known bug (computed from the library's answers, so the set shrinks as bugs are fixed) or
// two adjacent combining characters out of canonical order; `STREAMTRACK_FUZZ_STRICT=1` turns
// it off.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod checks;
use checks::{grew_past_a_limit, known_bug_trigger};

/// A tiny deterministic case changer: each character is upper- or lower-cased (full Unicode
/// mappings) depending on a bit of `seed`.
fn recase(s: &str, seed: u64) -> String {
    s.chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let up = (seed.rotate_left(i as u32 % 64) & 1) == 1;
            let v: Vec<char> =
                if up { c.to_uppercase().collect() } else { c.to_lowercase().collect() };
            v
        })
        .collect()
}

/// Upper-cases only the characters whose upper case has the same caseless form (so the text
/// is caseless-equal to the input): `ß` becomes `SS` (both fold to `ss`), `ı` stays (`I`
/// folds to `i`, not `ı`). This is the case change under which matching must not change.
fn caseless_upper(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        let up: String = c.to_uppercase().collect();
        if fold(&up) == fold(c.encode_utf8(&mut [0; 4])) {
            out.push_str(&up);
        } else {
            out.push(c);
        }
    }
    out
}

/// Which raw tokens of `text` hold a URL.
fn url_flags(text: &str) -> Vec<bool> {
    Tokens::of(text, UrlMode::Canonicalize).raw_tokens().iter().map(|r| r.is_url).collect()
}

fn assert_rule_round_trip(rule: &Rule) -> Result<(), TestCaseError> {
    let printed = rule.to_string();
    let reparsed = match rule.dialect() {
        streamtrack::Dialect::Rule => Rule::parse(&printed),
        streamtrack::Dialect::Track => Rule::parse_track(&printed),
    };
    prop_assert_eq!(reparsed.as_ref(), Ok(rule), "printed as {:?}", printed);
    let again = reparsed.expect("checked").to_string();
    prop_assert_eq!(&again, &printed, "printing is not idempotent");
    Ok(())
}

/// For inputs not built to parse: parse or fail (never panic), and when it parses the round
/// trip holds (known bugs aside).
fn check_any_rule_text(text: &str, track: bool) -> Result<(), TestCaseError> {
    let parsed = if track { Rule::parse_track(text) } else { Rule::parse(text) };
    let Ok(rule) = parsed else { return Ok(()) };
    if known_bug_trigger(text) {
        return Ok(());
    }
    let printed = rule.to_string();
    let reparsed = if track { Rule::parse_track(&printed) } else { Rule::parse(&printed) };
    if let Err(e) = &reparsed {
        if grew_past_a_limit(e) {
            return Ok(());
        }
    }
    prop_assert_eq!(reparsed.as_ref(), Ok(&rule), "{:?} printed as {:?}", text, printed);
    prop_assert_eq!(reparsed.expect("checked").to_string(), printed);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Rule dialect generator: rule trees, rendered as text
// ---------------------------------------------------------------------------------------------

/// Keywords: Latin with accents, Greek, Cyrillic, no-space scripts, emoji, hyphenated words,
/// case-folding specials (`ß`, `İ`, `ﬁ`), and `AND`/`or`, which are keywords.
const KEYWORDS: &[&str] = &[
    "apple",
    "Pie",
    "café",
    "naïve",
    "Straße",
    "ΟΔΟΣ",
    "οδός",
    "Москва",
    "привет",
    "東京",
    "タワー",
    "ภาษา",
    "🍕",
    "👍🏽",
    "🇫🇷",
    "coca-cola",
    "e-mail",
    "x1",
    "AND",
    "or",
    "diacrítica",
    "İstanbul",
    "ﬁsh",
    "hi🍕",
    "iPhone欲しい",
    "don't",
    "snow",
    "gnip",
];

/// Pieces of exact phrases: words, plus punctuation that must be present.
const PHRASE_PIECES: &[&str] = &[
    "call",
    "gnip,",
    "(b)",
    "$5",
    "#tag",
    "c++",
    "a.b",
    "Twitter’s",
    "東京タワー",
    "🍕",
    "Straße",
    "snow",
    "apple",
    "café",
];

const ENTITIES: &[(char, &str)] = &[
    ('#', "Rust"),
    ('#', "café"),
    ('#', "東京"),
    ('#', "under_score"),
    ('#', "meme"),
    ('@', "Alice"),
    ('@', "bob_2"),
    ('$', "ACME"),
    ('$', "5"),
];

/// Operators whose value is case-insensitive (re-cased by the generators).
const CASED_OPERATORS: &[(&str, &str)] = &[
    ("from:", "alice"),
    ("from:", "Bob_1"),
    ("from:", "42"),
    ("from:", "@carol"),
    ("from:", "\"Dave Smith\""),
    ("to:", "alice"),
    ("to:", "\"@erin\""),
    ("url:", "\"example.com/x\""),
    ("url:", "\"https://www.Example.com/A b\""),
    ("url:", "snow"),
    ("contains:", "phone"),
    ("contains:", "\"c++\""),
    ("contains:", "\"a  B\""),
    ("contains:", "\"東京タ\""),
    ("contains:", "\"ample.com/x\""),
];

/// `has:`, `is:` and `lang:`: they narrow, they do not anchor.
const FILTERS: &[&str] = &[
    "lang:en",
    "lang:EN",
    "lang:zh-Hant",
    "has:links",
    "has:mentions",
    "has:hashtags",
    "has:media",
    "has:geo",
    "is:retweet",
    "is:reply",
    "is:quote",
];

/// White space between tokens (the Unicode `White_Space` property: tab, newline, NBSP,
/// ideographic space, em space).
const SPACES: &[&str] = &[" ", " ", " ", "  ", "\t", "\n", "\u{A0}", "\u{3000}", " \u{2003} "];

#[derive(Clone, Debug)]
enum Leaf {
    Keyword(&'static str),
    Phrase(Vec<&'static str>),
    Proximity(Vec<&'static str>, u8),
    Entity(char, &'static str),
    Cased(&'static str, &'static str),
    /// Printed as is: geo operators (anchoring).
    Geo(String),
    /// Printed as is: `has:`, `is:`, `lang:`, `sample:` (not anchoring).
    Filter(String),
}

#[derive(Clone, Debug)]
enum Ast {
    Leaf(Leaf),
    /// Children with a negation flag (applied to leaves only); whether to add parentheses.
    And(Vec<(bool, Ast)>, bool),
    Or(Vec<Ast>, bool),
}

/// How a tree is rendered: white space to cycle through, and a case change for the
/// case-insensitive parts (keywords, phrases, entities, operator values).
struct Style<'a> {
    spaces: &'a [&'static str],
    next: usize,
    case: &'a dyn Fn(&str) -> String,
}

impl Style<'_> {
    fn space(&mut self) -> &'static str {
        let s = self.spaces[self.next % self.spaces.len()];
        self.next += 1;
        s
    }
}

fn render_leaf(leaf: &Leaf, st: &mut Style<'_>, out: &mut String) {
    match leaf {
        Leaf::Keyword(k) => {
            let cased = (st.case)(k);
            // Upper-casing `or` would make it the OR operator.
            out.push_str(if cased == "OR" { k } else { &cased });
        }
        Leaf::Phrase(words) | Leaf::Proximity(words, _) => {
            out.push('"');
            for (i, w) in words.iter().enumerate() {
                if i > 0 {
                    let s = st.space();
                    out.push_str(s);
                }
                out.push_str(&(st.case)(w));
            }
            out.push('"');
            if let Leaf::Proximity(_, n) = leaf {
                out.push_str(&format!("~{n}"));
            }
        }
        Leaf::Entity(sigil, v) => {
            out.push(*sigil);
            out.push_str(&(st.case)(v));
        }
        Leaf::Cased(op, v) => {
            out.push_str(op);
            out.push_str(&(st.case)(v));
        }
        Leaf::Geo(s) | Leaf::Filter(s) => out.push_str(s),
    }
}

fn render(ast: &Ast, st: &mut Style<'_>, out: &mut String) {
    let open = |st: &mut Style<'_>, out: &mut String, wrap: bool| {
        if wrap {
            out.push('(');
            if st.next.is_multiple_of(3) {
                let s = st.space();
                out.push_str(s);
            }
        }
    };
    let close = |st: &mut Style<'_>, out: &mut String, wrap: bool| {
        if wrap {
            if st.next % 3 == 1 {
                let s = st.space();
                out.push_str(s);
            }
            out.push(')');
        }
    };
    match ast {
        Ast::Leaf(l) => render_leaf(l, st, out),
        Ast::And(children, wrap) => {
            open(st, out, *wrap);
            for (i, (neg, child)) in children.iter().enumerate() {
                if i > 0 {
                    let s = st.space();
                    out.push_str(s);
                }
                match child {
                    Ast::Leaf(l) => {
                        if *neg {
                            out.push('-');
                        }
                        render_leaf(l, st, out);
                    }
                    // An OR inside an AND needs its parentheses.
                    Ast::Or(c, _) => render(&Ast::Or(c.clone(), true), st, out),
                    other => render(other, st, out),
                }
            }
            close(st, out, *wrap);
        }
        Ast::Or(children, wrap) => {
            open(st, out, *wrap);
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    let a = st.space();
                    out.push_str(a);
                    out.push_str("OR");
                    let b = st.space();
                    out.push_str(b);
                }
                render(child, st, out);
            }
            close(st, out, *wrap);
        }
    }
}

fn render_with(ast: &Ast, spaces: &[&'static str], case: &dyn Fn(&str) -> String) -> String {
    let mut st = Style { spaces, next: 0, case };
    let mut out = String::new();
    render(ast, &mut st, &mut out);
    out
}

fn coordinate(range: Range<f64>) -> impl Strategy<Value = f64> {
    // Round to 1, 3 or 6 decimals so the text looks like what people write.
    (range, select(vec![1.0, 1e3, 1e6])).prop_map(|(x, scale)| (x * scale).round() / scale)
}

fn geo_leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        (
            coordinate(-180.0..180.0),
            coordinate(-180.0..180.0),
            coordinate(-90.0..90.0),
            coordinate(-90.0..90.0)
        )
            .prop_map(|(a, b, c, d)| {
                let (w, e) = if a <= b { (a, b) } else { (b, a) };
                let (s, n) = if c <= d { (c, d) } else { (d, c) };
                Leaf::Geo(format!("bounding_box:[{w} {s} {e} {n}]"))
            }),
        (
            coordinate(-180.0..180.0),
            coordinate(-90.0..90.0),
            coordinate(0.001..5000.0),
            select(vec!["km", "mi"])
        )
            .prop_map(|(lon, lat, r, unit)| {
                let r = if r > 0.0 { r } else { 1.0 };
                Leaf::Geo(format!("point_radius:[{lon} {lat} {r}{unit}]"))
            }),
    ]
}

/// A leaf that anchors a rule.
fn anchor_leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        4 => select(KEYWORDS).prop_map(Leaf::Keyword),
        2 => prop::collection::vec(select(PHRASE_PIECES), 1..4).prop_map(Leaf::Phrase),
        1 => (prop::collection::vec(select(KEYWORDS), 2..4), 0u8..=6)
            .prop_map(|(w, n)| Leaf::Proximity(w, n)),
        2 => select(ENTITIES).prop_map(|(s, v)| Leaf::Entity(s, v)),
        2 => select(CASED_OPERATORS).prop_map(|(o, v)| Leaf::Cased(o, v)),
        1 => geo_leaf(),
    ]
}

/// A leaf that does not anchor (`has:`, `is:`, `lang:`, `sample:`).
fn filter_leaf() -> impl Strategy<Value = Leaf> {
    prop_oneof![
        3 => select(FILTERS).prop_map(|f| Leaf::Filter(f.to_string())),
        1 => (1u8..=100).prop_map(|p| Leaf::Filter(format!("sample:{p}"))),
    ]
}

/// An anchored rule tree: every AND has a non-negated anchored child, every OR branch is
/// anchored, negations only on leaves directly inside an AND.
fn rule_ast() -> impl Strategy<Value = Ast> {
    anchor_leaf().prop_map(Ast::Leaf).prop_recursive(3, 24, 4, |inner| {
        let child = prop_oneof![
            3 => (any::<bool>(), anchor_leaf()).prop_map(|(n, l)| (n, Ast::Leaf(l))),
            2 => (any::<bool>(), filter_leaf()).prop_map(|(n, l)| (n, Ast::Leaf(l))),
            2 => inner.clone().prop_map(|a| (false, a)),
        ];
        prop_oneof![
            (
                inner.clone(),
                prop::collection::vec(child, 1..4),
                any::<prop::sample::Index>(),
                any::<bool>()
            )
                .prop_map(|(first, mut rest, at, wrap)| {
                    let i = at.index(rest.len() + 1);
                    rest.insert(i, (false, first));
                    Ast::And(rest, wrap)
                }),
            (prop::collection::vec(inner, 2..4), any::<bool>())
                .prop_map(|(c, wrap)| Ast::Or(c, wrap)),
        ]
    })
}

fn spaces() -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(select(SPACES), 1..8)
}

/// A rule text: a tree, white space, random case, optional outer parentheses and padding.
fn rule_text() -> impl Strategy<Value = String> {
    (rule_ast(), spaces(), any::<u64>(), any::<bool>(), any::<bool>()).prop_map(
        |(ast, sp, seed, pad, parens)| {
            let case = move |s: &str| recase(s, seed);
            let body = render_with(&ast, &sp, &case);
            let body = if parens { format!("({body})") } else { body };
            if pad {
                format!("{}{body}{}", sp[0], sp[sp.len() - 1])
            } else {
                body
            }
        },
    )
}

/// Rule-syntax soup: fragments that stress the tokenizer of the rule dialect.
fn rule_soup() -> impl Strategy<Value = String> {
    let frag = prop_oneof![
        select(vec![
            "(",
            ")",
            "\"",
            "-",
            "OR",
            "or",
            "AND",
            "#",
            "@",
            "$",
            ":",
            "~",
            "~3",
            "~9",
            "[",
            "]",
            "from:",
            "to:",
            "url:",
            "contains:",
            "lang:",
            "has:",
            "is:",
            "sample:",
            "has:links",
            "is:reply",
            "lang:en",
            "sample:50",
            "bounding_box:[0 0 1 1]",
            "point_radius:[0 0 1km]",
            "nope:",
            "https://x.com",
            ",",
            "!!!",
            "\u{200B}",
            "\u{AD}",
            "\u{301}",
            "ß",
            "İ",
            "ǰ",
            "ﬁ",
            "ŉ",
            "Σ",
            "ς",
            "東京",
            "ภาษา",
            "🍕",
            "👍🏽",
            "≠",
            "=\u{338}",
            "a-b",
            "e\u{301}",
        ])
        .prop_map(String::from),
        select(KEYWORDS).prop_map(String::from),
        select(SPACES).prop_map(String::from),
        "[a-zA-Z0-9]{1,4}",
    ];
    prop::collection::vec(frag, 0..16).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------------------------------------
// Track dialect generator
// ---------------------------------------------------------------------------------------------

/// Track terms: words, punctuated terms, URLs, emoji, no-space script words.
const TRACK_TERMS: &[&str] = &[
    "twitter",
    "Twitter’s",
    "c++",
    "$acme",
    "#tag",
    "@x",
    "example.com/x",
    "example.com",
    "🍕",
    "hi🍕",
    "東京",
    "ภาษา",
    "-job",
    "\"quoted\"",
    "touché",
    "STRASSE",
    "naïve",
    "API",
    "e-mail",
    "iPhone欲しい",
    "x1",
    "ΟΔΟΣ",
    "привет",
    "or",
    "hello.",
];

fn track_phrase() -> impl Strategy<Value = (Vec<&'static str>, Vec<&'static str>)> {
    (prop::collection::vec(select(TRACK_TERMS), 1..4), spaces())
}

fn render_track(phrases: &[(Vec<&'static str>, Vec<&'static str>)], seed: u64) -> String {
    let mut out = String::new();
    for (i, (terms, sp)) in phrases.iter().enumerate() {
        if i > 0 {
            out.push(',');
            if seed.rotate_left(i as u32) & 1 == 1 {
                out.push_str(sp[0]);
            }
        }
        for (j, t) in terms.iter().enumerate() {
            if j > 0 {
                out.push_str(sp[j % sp.len()]);
            }
            out.push_str(&recase(t, seed.wrapping_add(j as u64)));
        }
    }
    out
}

fn track_text() -> impl Strategy<Value = String> {
    (prop::collection::vec(track_phrase(), 1..6), any::<u64>())
        .prop_map(|(phrases, seed)| render_track(&phrases, seed))
}

// ---------------------------------------------------------------------------------------------
// Text generator for tokenisation and messages
// ---------------------------------------------------------------------------------------------

fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z]{1,8}",
        1 => "[à-ÿ]{1,4}",
        1 => "[α-ωΑ-Ω]{1,5}",
        1 => "[а-яА-ЯёЁ]{1,5}",
        1 => "[\u{4e00}-\u{4e20}\u{3041}-\u{3090}\u{30a1}-\u{30f0}]{1,4}",
        1 => "[\u{0e01}-\u{0e2e}]{1,4}",
        // Combining marks (U+0345 left out: `bug_combining_characters_that_are_not_marks…`).
        1 => "[\u{0300}-\u{0344}\u{0346}-\u{036f}]{1,2}",
        1 => "[0-9]{1,3}",
        2 => "[!-/:-@\\[-`{-~]{1,3}",
        2 => select(vec![
            "🍕", "👍🏽", "🇫🇷", "❤\u{FE0F}", "👨\u{200D}👩\u{200D}👧", "©", "™", "#\u{FE0F}\u{20E3}",
        ])
        .prop_map(String::from),
        3 => select(vec![
            " ", " ", "  ", "\t", "\n", "\r\n", "\u{A0}", "\u{3000}", "\u{2028}", "\u{85}",
            "\u{200B}", "\u{AD}", "\u{FEFF}", "\u{202E}", "\u{2066}", "\u{E0041}",
            "\0", "\u{1}", "\u{1b}", "\u{7f}", "\u{9f}",
        ])
        .prop_map(String::from),
        2 => select(vec![
            "https://www.X.com/y", "HTTP://WWW.EXAMPLE.COM/A", "www.www.x.org", "(https://x.y/z).",
            "ftp://a", "http://", "www.", "mailto:x", "#Tag", "@User", "$5", "c++", "coca-cola",
            "ß", "İ", "ŉ", "ǰ", "ﬁ", "ΐ", "Σ", "ς", "ẞ", "ᾳ", "Ω", "K", "e\u{301}", "東京タワー",
        ])
        .prop_map(String::from),
    ]
}

fn mixed_text() -> impl Strategy<Value = String> {
    prop::collection::vec(text_piece(), 0..24).prop_map(|v| v.concat())
}

/// Checks the invariants of one tokenisation of `s`.
fn check_tokenisation(s: &str, mode: UrlMode) -> Result<(), TestCaseError> {
    let t = Tokens::of(s, mode);
    let text = t.text();
    let on_boundaries = |r: &Range<usize>, of: &str| {
        r.end <= of.len() && of.is_char_boundary(r.start) && of.is_char_boundary(r.end)
    };

    // The normalised text is the raw tokens joined by single spaces.
    let raw: Vec<&str> = (0..t.raw_tokens().len()).map(|i| t.raw_token_text(i)).collect();
    prop_assert_eq!(text, raw.join(" "));
    for (i, rt) in t.raw_tokens().iter().enumerate() {
        prop_assert!(rt.source.start < rt.source.end, "empty raw token source {:?}", rt);
        prop_assert!(on_boundaries(&rt.source, s), "raw token source {:?} in {:?}", rt, s);
        prop_assert!(rt.norm.start < rt.norm.end && on_boundaries(&rt.norm, text));
        prop_assert!(!raw[i]
            .chars()
            .any(|c| char_class(c) == CharClass::Space || c.is_whitespace()));
        if i > 0 {
            prop_assert!(t.raw_tokens()[i - 1].source.end <= rt.source.start);
        }
    }
    // Where NFC reorders combining marks, a word's source range is the whole NFC piece (the
    // known limitation of `known_bug_trigger`): its exact caseless form is not checked there.
    let exact_sources = !known_bug_trigger(s);
    let mut prev: Option<(Range<usize>, Range<usize>)> = None;
    for (i, w) in t.words().iter().enumerate() {
        let word = t.word_text(i);
        prop_assert!(!word.is_empty());
        prop_assert!(w.source.start < w.source.end, "empty word source {:?}", w);
        prop_assert!(on_boundaries(&w.source, s), "word source {:?} in {:?}", w, s);
        prop_assert!(on_boundaries(&w.norm, text), "word norm {:?} in {:?}", w, text);
        // No white space in a word; words are in caseless normal form.
        prop_assert!(!word.chars().any(|c| char_class(c) == CharClass::Space || c.is_whitespace()));
        prop_assert_eq!(fold(word), word, "word {:?} is not folded", word);
        if word.is_ascii() {
            prop_assert!(!word.bytes().any(|b| b.is_ascii_uppercase()), "{:?}", word);
        }
        // The word is the caseless form of its source (ignorables dropped).
        if exact_sources {
            prop_assert_eq!(fold(&s[w.source.clone()]), word, "source {:?}", &s[w.source.clone()]);
        }
        // It lies inside its raw token.
        let rt = &t.raw_tokens()[w.raw_token];
        prop_assert!(rt.norm.start <= w.norm.start && w.norm.end <= rt.norm.end);
        prop_assert!(rt.source.start <= w.source.start && w.source.end <= rt.source.end);
        // Words come in increasing order, without overlap, in both texts.
        if let Some((ps, pn)) = &prev {
            prop_assert!(ps.end <= w.source.start, "words out of order: {:?} then {:?}", ps, w);
            prop_assert!(pn.end <= w.norm.start);
        }
        prev = Some((w.source.clone(), w.norm.clone()));
    }
    Ok(())
}

/// Normalising twice changes nothing: see `tokenisation_invariants` for the exact statement.
fn check_idempotent(s: &str, first: UrlMode) -> Result<(), TestCaseError> {
    let once = Tokens::of(s, first);
    // The normalised text is in NFC (spec: both sides are NFC-normalised first).
    prop_assert!(is_nfc(once.text()), "{:?} is not NFC", once.text());
    let twice = Tokens::of(once.text(), UrlMode::Keep);
    prop_assert_eq!(twice.text(), once.text());
    let w1: Vec<&str> = once.word_texts().collect();
    let w2: Vec<&str> = twice.word_texts().collect();
    prop_assert_eq!(w2, w1);
    let nw1: Vec<bool> = once.words().iter().map(|w| w.no_space).collect();
    let nw2: Vec<bool> = twice.words().iter().map(|w| w.no_space).collect();
    prop_assert_eq!(nw2, nw1);
    Ok(())
}

/// Message vocabulary: the rule and track terms plus noise.
fn message_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KEYWORDS).prop_map(String::from),
        2 => select(PHRASE_PIECES).prop_map(String::from),
        2 => select(TRACK_TERMS).prop_map(String::from),
        1 => select(ENTITIES).prop_map(|(s, v)| format!("{s}{v}")),
        2 => select(vec![
            "the", "cat", "coca", "cola", "cocacola", "touche", "東京タワー", "大東京", "ภาษาไทย",
            "🍕🍕", "https://www.Example.com/A", "http://example.com/x", "phone", "telephone",
            "STRASSE", "strasse", "ΟΔΟΣ", "οδος", "ﬁsh", "fish", "istanbul", "i\u{307}stanbul",
            "alice", "Dave Smith",
        ])
        .prop_map(String::from),
    ]
}

fn message_text() -> impl Strategy<Value = String> {
    let sep =
        select(vec![" ", " ", " ", ", ", "-", ".", "\u{200B}", "\t", "! ", " (", ") ", "'s "]);
    (prop::collection::vec((message_piece(), sep), 0..10), any::<u64>()).prop_map(|(v, seed)| {
        let mut out = String::new();
        for (i, (p, s)) in v.iter().enumerate() {
            out.push_str(&recase(p, seed.wrapping_add(i as u64)));
            out.push_str(s);
        }
        out
    })
}

fn message() -> impl Strategy<Value = Message> {
    (
        message_text(),
        prop::option::of(message_text()),
        select(vec!["Alice", "bob_2", "carol", "Dave Smith"]),
        prop::option::of(select(vec!["en", "EN", "fr", "zh-Hant"])),
        any::<u32>(),
    )
        .prop_map(|(text, quoted, user, lang, id)| {
            let mut m = Message::new(id.to_string(), text).with_user(user);
            if let Some(q) = quoted {
                m = m.with_quoted_text(q);
            }
            if let Some(l) = lang {
                m = m.with_lang(l);
            }
            m
        })
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    // ---- 1. rule dialect ----

    #[test]
    fn rule_dialect_round_trip(text in rule_text()) {
        let parsed = Rule::parse(&text);
        prop_assume!(parsed.is_ok(), "{}", format!("{text:?}: {parsed:?}"));
        assert_rule_round_trip(&parsed.expect("checked"))?;
    }

    #[test]
    fn rule_dialect_any_regex_string_parses_or_errors(text in ".*") {
        check_any_rule_text(&text, false)?;
    }

    #[test]
    fn rule_dialect_any_string_parses_or_errors(text in any::<String>()) {
        check_any_rule_text(&text, false)?;
    }

    #[test]
    fn rule_dialect_soup_parses_or_errors(text in rule_soup()) {
        check_any_rule_text(&text, false)?;
    }

    // ---- 2. track dialect ----

    #[test]
    fn track_dialect_round_trip(text in track_text()) {
        let parsed = Rule::parse_track(&text);
        prop_assume!(parsed.is_ok(), "{}", format!("{text:?}: {parsed:?}"));
        assert_rule_round_trip(&parsed.expect("checked"))?;
    }

    #[test]
    fn track_dialect_any_string_parses_or_errors(text in any::<String>(), regex in ".*") {
        check_any_rule_text(&text, true)?;
        check_any_rule_text(&regex, true)?;
    }

    #[test]
    fn track_dialect_soup_parses_or_errors(text in rule_soup()) {
        check_any_rule_text(&text, true)?;
    }

    // ---- 3. tokenisation ----

    /// Invariants, for both URL modes:
    /// - the normalised text is the raw tokens joined by single spaces;
    /// - every raw token's and word's `source` range is non-empty, within the original text
    ///   and on char boundaries; every `norm` range is within `text()` on char boundaries;
    /// - no word or raw token holds white space; every word is in caseless normal form
    ///   (`fold(w) == w`; an ASCII word has no upper-case letter) and equals the `fold` of
    ///   its source; words lie in their raw token, in increasing order, without overlap;
    /// - normalising twice changes nothing, in this exact sense: for `m` either mode,
    ///   `Tokens::of(Tokens::of(s, m).text(), UrlMode::Keep)` has the same text, the same
    ///   words and the same no-space flags as `Tokens::of(s, m)`. The second pass must use
    ///   `Keep`: URL canonicalisation removes one scheme and one `www.` per pass, so it is not
    ///   idempotent (`https://www.www.x.org` → `www.x.org` → `x.org`, see
    ///   `url_canonicalisation_is_not_idempotent`);
    /// - the normalised text is in NFC;
    /// - tokenising into a reused `Tokens` (after another text) gives the same result as a
    ///   fresh one.
    ///
    /// The last three are skipped for inputs that trigger a known bug ([`known_bug_trigger`]).
    #[test]
    fn tokenisation_invariants(text in mixed_text(), before in mixed_text()) {
        prop_assume!(!known_bug_trigger(&text));
        for mode in [UrlMode::Canonicalize, UrlMode::Keep] {
            check_tokenisation(&text, mode)?;
            check_idempotent(&text, mode)?;
            let fresh = Tokens::of(&text, mode);
            let mut reused = Tokens::of(&before, mode);
            reused.tokenize(&text, mode);
            prop_assert_eq!(reused.text(), fresh.text());
            prop_assert_eq!(reused.raw_tokens(), fresh.raw_tokens());
            prop_assert_eq!(reused.words(), fresh.words());
        }
    }

    #[test]
    fn tokenisation_invariants_any_string(text in any::<String>()) {
        for mode in [UrlMode::Canonicalize, UrlMode::Keep] {
            check_tokenisation(&text, mode)?;
            if !known_bug_trigger(&text) {
                check_idempotent(&text, mode)?;
            }
        }
    }

    // ---- 4. reference matcher ----

    /// (a) Matching is insensitive to a caseless case change ([`caseless_upper`]: upper-case
    /// each character whose upper case folds like the character) of the message text, the
    /// author name and the case-insensitive parts of the rule (keywords, phrases, entity
    /// values, `from:`/`to:`/`url:`/`contains:` values; operator names, `OR`, `has:`, `is:`,
    /// `lang:` untouched). The two rule texts even parse to the same tree.
    #[test]
    fn matching_ignores_case(ast in rule_ast(), sp in spaces(), msg in message()) {
        let plain = render_with(&ast, &sp, &|s: &str| s.to_string());
        let upper = render_with(&ast, &sp, &|s: &str| caseless_upper(s));
        let (Ok(r1), Ok(r2)) = (Rule::parse(&plain), Rule::parse(&upper)) else {
            prop_assume!(false, "does not parse");
            unreachable!()
        };
        prop_assert_eq!(&r1, &r2, "{:?} vs {:?}", plain, upper);
        let mut up = msg.clone();
        up.text = caseless_upper(&msg.text);
        up.quoted_text = msg.quoted_text.as_deref().map(caseless_upper);
        up.user = msg.user.as_deref().map(caseless_upper);
        // URL detection is ASCII and happens before case folding, so a case change that
        // turns a non-ASCII letter into ASCII ones can make a URL appear (`ﬁsh-http://x` has
        // none, `FISH-HTTP://x` has one): see `url_detection_precedes_case_folding`.
        prop_assume!(url_flags(&msg.text) == url_flags(&up.text));
        prop_assume!(
            url_flags(msg.quoted_text.as_deref().unwrap_or(""))
                == url_flags(up.quoted_text.as_deref().unwrap_or(""))
        );
        let expected = hits(&r1, &msg);
        prop_assert_eq!(hits(&r1, &up), expected, "{:?} on {:?} vs {:?}", plain, msg.text, up.text);
        prop_assert_eq!(hits(&r2, &msg), expected);
        prop_assert_eq!(hits(&r2, &up), expected);
    }

    /// (b) An AND matches iff the same AND with its terms in another order matches.
    #[test]
    fn and_is_insensitive_to_term_order(
        (terms, shuffled) in prop::collection::vec(
            prop_oneof![
                3 => select(KEYWORDS).prop_map(|k| (false, Leaf::Keyword(k))),
                1 => select(KEYWORDS).prop_map(|k| (true, Leaf::Keyword(k))),
                1 => anchor_leaf().prop_map(|l| (false, l)),
                1 => filter_leaf().prop_map(|l| (false, l)),
            ],
            2..7,
        )
        .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        msg in message(),
    ) {
        let text = |v: &[(bool, Leaf)]| {
            let ast = Ast::And(v.iter().map(|(n, l)| (*n, Ast::Leaf(l.clone()))).collect(), false);
            render_with(&ast, &[" "], &|s: &str| s.to_string())
        };
        let (a, b) = (text(&terms), text(&shuffled));
        let (Ok(ra), Ok(rb)) = (Rule::parse(&a), Rule::parse(&b)) else {
            prop_assume!(false, "not anchored");
            unreachable!()
        };
        prop_assert_eq!(hits(&ra, &msg), hits(&rb, &msg), "{:?} vs {:?} on {:?}", a, b, msg.text);
    }

    /// (c) A track phrase `a b` matches iff `a` and `b` both match; a track value `a,b`
    /// matches iff either does (and the same for longer lists).
    #[test]
    fn track_and_or_decompose(
        terms in prop::collection::vec(select(TRACK_TERMS), 2..4),
        msg in message(),
    ) {
        let each: Vec<bool> = terms
            .iter()
            .map(|t| hits(&Rule::parse_track(t).expect("a track term parses"), &msg))
            .collect();
        let and = Rule::parse_track(&terms.join(" ")).expect("a track phrase parses");
        let or = Rule::parse_track(&terms.join(",")).expect("a track list parses");
        prop_assert_eq!(hits(&and, &msg), each.iter().all(|&x| x), "{:?} on {:?}", terms, msg.text);
        prop_assert_eq!(hits(&or, &msg), each.iter().any(|&x| x), "{:?} on {:?}", terms, msg.text);
        // Both at once: `a b,c` is (a AND b) OR c.
        let (a, b, c) = (terms[0], terms[1], terms[terms.len() - 1]);
        let mixed = Rule::parse_track(&format!("{a} {b},{c}")).expect("parses");
        let expected = (each[0] && each[1]) || each[terms.len() - 1];
        prop_assert_eq!(hits(&mixed, &msg), expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Plain tests that pin statements made above
// ---------------------------------------------------------------------------------------------

#[test]
fn url_canonicalisation_is_not_idempotent() {
    let once = Tokens::of("https://www.www.x.org", UrlMode::Canonicalize);
    assert_eq!(once.text(), "www.x.org");
    assert_eq!(Tokens::of(once.text(), UrlMode::Canonicalize).text(), "x.org");
    assert_eq!(Tokens::of(once.text(), UrlMode::Keep).text(), "www.x.org");
}

#[test]
fn caseless_upper_is_a_caseless_equivalence() {
    assert_eq!(caseless_upper("straße"), "STRASSE");
    assert_eq!(caseless_upper("ı"), "ı", "dotless i does not fold like I");
    assert_eq!(caseless_upper("οδός"), "ΟΔΌΣ");
    assert_eq!(fold(&caseless_upper("ǰ")), fold("ǰ"));
}

#[test]
fn generators_produce_parsable_rules() {
    // A sanity check that the tree generator is not mostly rejected by prop_assume!.
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = rule_text();
    let mut ok = 0;
    for _ in 0..200 {
        let text = strategy.new_tree(&mut runner).expect("tree").current();
        match Rule::parse(&text) {
            Ok(_) => ok += 1,
            Err(e) => panic!("generated rule {text:?} does not parse: {e}"),
        }
    }
    assert_eq!(ok, 200);
}

#[test]
fn url_detection_precedes_case_folding() {
    // URLs are found on the raw text (an ASCII scheme, or `www.`), before case folding. So
    // two caseless-equal texts can differ in whether they hold a URL: `ﬁ` folds to `fi`, yet
    // `ﬁsh-http://…` holds no URL while `FISH-HTTP://…` does (`fish-http` is a valid scheme).
    assert_eq!(fold("ﬁsh-http://x.org/a"), fold("FISH-HTTP://x.org/a"));
    assert_eq!(url_flags("ﬁsh-http://x.org/a"), [false]);
    assert_eq!(url_flags("FISH-HTTP://x.org/a"), [true]);
    let r = Rule::parse("url:\"x.org/a\"").unwrap();
    assert!(hits(&r, &Message::new("1", "FISH-HTTP://x.org/a")));
    assert!(!hits(&r, &Message::new("1", "ﬁsh-http://x.org/a")));
}

// ---------------------------------------------------------------------------------------------
// Regression tests for bugs found by these properties and since fixed
// ---------------------------------------------------------------------------------------------

fn round_trip_error(text: &str, track: bool) -> Option<String> {
    let parse = |t: &str| if track { Rule::parse_track(t) } else { Rule::parse(t) };
    let rule = parse(text).ok()?;
    let printed = rule.to_string();
    match parse(&printed) {
        Ok(r) if r == rule => None,
        other => Some(format!("{text:?} -> {:?} printed {printed:?} -> {other:?}", rule.root())),
    }
}

fn word_list(text: &str, mode: UrlMode) -> Vec<String> {
    Tokens::of(text, mode).word_texts().map(String::from).collect()
}

/// `Ⓜ` (U+24C2) has the Emoji property but folds to `ⓜ` (U+24DC), a symbol. It used to be a
/// word that printed as a non-word (rule `Ⓜ` printed `ⓜ`, which was NoWord) and made `Ⓜ` and
/// `ⓜ` match differently. Now both are symbols.
#[test]
fn emoji_that_folds_to_a_symbol_is_consistent() {
    assert_eq!(round_trip_error("Ⓜ", false), None);
    assert_eq!(round_trip_error("Ⓜ", true), None);
    assert_eq!(
        Rule::parse("Ⓜ").map_err(|e| e.kind().clone()),
        Rule::parse("ⓜ").map_err(|e| e.kind().clone())
    );
    assert_eq!(Rule::parse_track("Ⓜ"), Rule::parse_track("ⓜ"));
    let once = Tokens::of("Ⓜ", UrlMode::Canonicalize);
    assert_eq!(word_list(once.text(), UrlMode::Keep), word_list("Ⓜ", UrlMode::Canonicalize));
    let r = Rule::parse_track("Ⓜ").unwrap();
    assert_eq!(hits(&r, &Message::new("1", "ⓜ")), hits(&r, &Message::new("1", "Ⓜ")));
}

/// A symbol plus a combining mark and its precomposed form are canonically equivalent
/// (`=` + U+0338 and `≠`); they used to tokenise differently (the mark was a word).
#[test]
fn symbol_plus_combining_mark_tokenises_like_its_composed_form() {
    assert_eq!(Tokens::of("=\u{338}", UrlMode::Keep).text(), "≠");
    assert_eq!(word_list("=\u{338}", UrlMode::Keep), word_list("≠", UrlMode::Keep));
    let contains = Rule::parse("x contains:\"≠\"").unwrap();
    assert!(hits(&contains, &Message::new("1", "x =\u{338}")));
    assert!(hits(&contains, &Message::new("1", "x ≠")));
    // Composition exclusions whose NFC is a symbol plus a mark: normalising twice is stable.
    for s in ["⫝̸", "\u{1D15E}", "\u{0385}", "\u{219A}"] {
        let once = Tokens::of(s, UrlMode::Keep);
        assert_eq!(word_list(once.text(), UrlMode::Keep), word_list(s, UrlMode::Keep), "{s:?}");
    }
}

/// A piece that NFC composes after its first character (`:` then U+16D67 twice, which compose
/// to U+16D68, Kirat Rai, Unicode 16) used to give the word `𖵨` the source range of the whole
/// piece, the `:` included (found by `tokenisation_invariants_any_string`, 1 case in ~2.5
/// million). The first character now keeps its own range when its form and the rest's add up
/// to the piece's.
#[test]
fn a_word_composed_after_punctuation_does_not_take_the_punctuation_into_its_source() {
    for (text, word, source) in [
        (":\u{16d67}\u{16d67}", "\u{16d68}", 1..9),
        ("x:\u{16d67}\u{16d67}y", "\u{16d68}y", 2..11),
        (":e\u{301}", "\u{e9}", 1..4),
    ] {
        for mode in [UrlMode::Keep, UrlMode::Canonicalize] {
            let t = Tokens::of(text, mode);
            let i = t.word_texts().position(|w| w == word).expect("the word");
            assert_eq!(t.words()[i].source, source, "{text:?}");
        }
    }
}

/// `from:"@ a"` used to give From(" a"), printed `from:" a"`, parsed back as From("a").
#[test]
fn from_value_with_at_then_space_round_trips() {
    assert_eq!(round_trip_error("from:\"@ a\"", false), None);
    assert_eq!(round_trip_error("x to:\"@\u{3000}bob\"", false), None);
    assert_eq!(Rule::parse("from:\"@ a\"").unwrap(), Rule::parse("from:a").unwrap());
}

/// Numbers used to print in full (`5e-324` with 324 decimals), so a rule near the length
/// limit printed past it.
#[test]
fn tiny_numbers_print_short() {
    let padded = format!("a point_radius:[0 0 5e-324km] {}", "b ".repeat(1000));
    assert_eq!(round_trip_error(&padded, false), None);
    let r = Rule::parse("a bounding_box:[-1e-300 -0.000001 1e-7 90]").unwrap();
    assert_eq!(round_trip_error(&r.to_string(), false), None);
    assert!(r.to_string().len() < 60, "{r}");
}

// ---------------------------------------------------------------------------------------------
// Bugs found by these properties (all fixed: none is ignored any more)
// ---------------------------------------------------------------------------------------------

/// Decomposed Hangul (conjoining jamo, as produced by NFD, e.g. macOS file names) is not
/// composed: `Tokens::of("\u{1100}\u{1161}")` keeps the two jamo instead of `가` (U+AC00), so
/// the rule `가` does not match the decomposed text and vice versa. The fast path of
/// `push_caseless` skips NFC for strings whose characters are flagged NFC-stable, and the
/// generated flags do not mark the jamo (Hangul composition is algorithmic, not in the
/// decomposition mappings). The same happens for compositions of scripts newer than the
/// Unicode 15.0 tables (Tulu-Tigalari U+11383, Gurung Khema U+16121, Kirat Rai U+16D68).
#[test]
fn bug_decomposed_hangul_is_not_composed() {
    assert_eq!(Tokens::of("\u{1100}\u{1161}", UrlMode::Canonicalize).text(), "가");
    assert_eq!(Tokens::of("\u{1100}\u{1161}\u{11A8}", UrlMode::Canonicalize).text(), "각");
    let r = Rule::parse("가").unwrap();
    assert!(hits(&r, &Message::new("1", "\u{1100}\u{1161}")));
    let r = Rule::parse("\u{1100}\u{1161}").unwrap();
    assert!(hits(&r, &Message::new("1", "가")));
    for s in ["\u{11382}\u{113C9}", "\u{1611E}\u{1611E}", "\u{16D67}\u{16D67}"] {
        let t = Tokens::of(s, UrlMode::Keep);
        assert!(is_nfc(t.text()), "{s:?} -> {:?}", t.text());
    }
}

/// `↔` (U+2194) has the Emoji property; `↔` + U+0338 composes to `↮` (U+21AE), which does not.
/// The decomposed form is an emoji segment, so it becomes the word `↮`, while `↮` itself is
/// a symbol and no word. Canonically equivalent texts match differently, the normalised text
/// of `↔\u{338}` tokenised again loses its word, and the rule `↔\u{338}` (Keyword ["↮"])
/// prints as `↮`, which is NoWord.
#[test]
fn bug_emoji_base_plus_mark_composing_to_a_symbol() {
    assert_eq!(word_list("↔\u{338}", UrlMode::Keep), word_list("↮", UrlMode::Keep));
    let once = Tokens::of("↔\u{338}", UrlMode::Keep);
    assert_eq!(word_list(once.text(), UrlMode::Keep), word_list("↔\u{338}", UrlMode::Keep));
    assert_eq!(round_trip_error("↔\u{338}", false), None);
}

/// NFC reorders combining characters by canonical combining class. The tokenizer attaches a
/// mark to the character before it, but some combining characters are not marks to it:
/// U+0345 (ccc 240; it folds to `ι`) and ~80 characters newer than its Unicode 15.0 tables
/// (e.g. U+113CE, ccc 9, which the `unicode-normalization` crate knows). NFC then moves a
/// real mark in front of them, across the segment boundary, so the normalised text tokenises
/// differently the second time:
/// - `[\u{345}\u{300}`: words `["\u{300}ι"]`, its normalised text `[\u{300}ι` gives `["ι"]`;
/// - the rule `¹[\u{113CE}\u{16AF0}` is Keyword(["¹", "\u{16AF0}\u{113CE}"]), printed
///   `¹-\u{16AF0}\u{113CE}`, parsed back as Keyword(["¹", "\u{113CE}"]).
///
/// The same happens with real marks at the start of a token (no base to attach to): the
/// first mark's own class decides the segment, and NFC can put another mark first:
/// - `\u{11100}\u{16FF0}` (Chakma mark, ccc 230; a Han-script mark, ccc 6) is a word with
///   `no_space == false`; its normalised text `\u{16FF0}\u{11100}` is a no-space word;
/// - the rule `"A"\u{7EB}\u{EC8}a` (NKo mark ccc 230, Lao mark ccc 122) has the keyword
///   Keyword(["\u{EC8}\u{7EB}a"]), printed `\u{EC8}\u{7EB}a`, which parses as two words
///   (`\u{EC8}\u{7EB}`, a Lao no-space segment, and `a`).
///
/// Fixed: the tables take their combining classes and marks from the `unicode-normalization`
/// crate's own Unicode version (every combining character is a mark, U+0345 included), and a
/// raw token is normalised as a whole before it is split into words.
#[test]
fn bug_combining_characters_that_are_not_marks_are_reordered_across_segments() {
    let once = Tokens::of("[\u{345}\u{300}", UrlMode::Keep);
    assert_eq!(word_list(once.text(), UrlMode::Keep), word_list("[\u{345}\u{300}", UrlMode::Keep));
    assert_eq!(round_trip_error("¹[\u{113CE}\u{16AF0}", false), None);
    let once = Tokens::of("\u{11100}\u{16FF0}", UrlMode::Keep);
    let twice = Tokens::of(once.text(), UrlMode::Keep);
    assert_eq!(twice.words()[0].no_space, once.words()[0].no_space);
    assert_eq!(round_trip_error("\"A\"\u{7EB}\u{EC8}a", false), None);
    let once = Tokens::of("!\u{1E5EE}\u{10A39}", UrlMode::Keep);
    assert_eq!(
        word_list(once.text(), UrlMode::Keep),
        word_list("!\u{1E5EE}\u{10A39}", UrlMode::Keep)
    );
    let not_marks: Vec<String> = (0..=0x10FFFFu32)
        .filter_map(char::from_u32)
        .filter(|&c| canonical_combining_class(c) != 0 && !is_mark(c))
        .map(|c| format!("U+{:04X}", c as u32))
        .collect();
    assert!(not_marks.is_empty(), "combining characters that are not marks: {not_marks:?}");
}

/// The canonical text can be longer than the original and exceed a limit the original met:
/// case folding lengthens some characters (`İ`, 2 bytes, folds to `i̇`, 3 bytes and 2 code
/// points). The documented promise "parsing that text gives the same tree" then fails.
/// Decision (documented in `Rule`'s docs): limits apply to the text as written, and the
/// canonical text can be longer (case folding lengthens `İ`), so it re-parses to the same
/// tree under limits that admit it; under the original limits it is refused with the limit
/// error, never accepted as a different tree.
#[test]
fn canonical_text_longer_than_the_limits_reparses_under_relaxed_limits() {
    use streamtrack::rule::{Dialect, Parser};
    let relaxed = Parser::builder().max_rule_chars(1 << 20).max_phrase_bytes(1 << 20).build();
    for (text, dialect) in [("İ".repeat(30), Dialect::Track), ("İ".repeat(2048), Dialect::Rule)] {
        let rule = Parser::new().parse(&text, dialect).unwrap();
        let printed = rule.to_string();
        assert_eq!(relaxed.parse(&printed, dialect).unwrap(), rule);
        let err = Parser::new().parse(&printed, dialect).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                RuleErrorKind::PhraseTooLong { .. } | RuleErrorKind::TooLong { .. }
            ),
            "{err}"
        );
    }
}

/// Found by `tokenisation_invariants_any_string` (4,000 cases) once raw tokens were normalised
/// in NFC pieces: a Hangul vowel (NFC quick check Maybe) after `[` shares a piece with it, and
/// the word `ᅡ` took the whole piece, `[ᅡ`, as its source. When NFC changes nothing in a
/// piece, each character keeps its own source range.
#[test]
fn word_source_is_exact_when_nfc_changes_nothing() {
    let t = Tokens::of("[\u{1161}", UrlMode::Keep);
    assert_eq!(t.word_texts().collect::<Vec<_>>(), ["\u{1161}"]);
    assert_eq!(t.words()[0].source, 1..4);
    // A composition keeps the whole piece: `e` + U+0301 is the word `é` from both characters.
    let t = Tokens::of("[e\u{301}", UrlMode::Keep);
    assert_eq!(t.word_texts().collect::<Vec<_>>(), ["é"]);
    assert_eq!(t.words()[0].source, 1..4);
}
