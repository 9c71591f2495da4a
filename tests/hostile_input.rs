//! Hostile input: every reader, parser, tokenizer and the reference matcher must answer with a
//! result or a clear error, never a panic, a stack overflow or an endless computation.
//!
//! Each scenario is its own test.

use streamtrack::message::JsonError;
use streamtrack::normalize::{char_class, is_mark, CharClass, NormalizedMessage, Tokens, UrlMode};
use streamtrack::reference::rule_matches;
use streamtrack::rule::{Node, Parser, RuleErrorKind, Term};
use streamtrack::{Dialect, Message, Rule, RuleError};

fn rule(r: &str) -> Rule {
    Rule::parse(r).unwrap_or_else(|e| panic!("{r:?}: {e}"))
}

fn track(r: &str) -> Rule {
    Rule::parse_track(r).unwrap_or_else(|e| panic!("{r:?}: {e}"))
}

fn hits(r: &Rule, msg: &Message) -> bool {
    rule_matches(r, &NormalizedMessage::of(msg))
}

fn text(t: &str) -> Message {
    Message::new("1", t)
}

fn rule_err(r: &str) -> RuleError {
    Rule::parse(r).expect_err(r)
}

fn words(t: &str) -> Vec<String> {
    Tokens::of(t, UrlMode::Canonicalize).word_texts().map(String::from).collect()
}

/// A small deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A parser without a length limit (other limits as given).
fn unlimited() -> streamtrack::rule::ParserBuilder {
    Parser::builder().max_rule_chars(usize::MAX)
}

// ---------------------------------------------------------------------------------------------
// Invalid UTF-8 and random bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_utf8_into_from_json_bytes_is_an_error() {
    let cases: &[(&[u8], usize)] = &[
        (b"\xff", 0),
        (b"\x80{}", 0),
        (b"{\"id\":\"1\",\"text\":\"caf\xe9\"}", 21),
        (b"{\"id\":\"1\",\"text\":\"\xe6\x9d\"}", 18),
        (b"{\"id\":\"1\",\"text\":\"\xc0\xaf\"}", 18),
        (b"{\"id\":\"1\",\"text\":\"\xed\xa0\x80\"}", 18),
        (b"{\"id\":\"1\",\"text\":\"\xf4\x90\x80\x80\"}", 18),
        (b"{\"id\":\"1\",\"text\":\"ok\"}\xfe", 22),
        (b"\xEF\xBB\xBF\xff{}", 0),
        (b"\xEF\xBB{}", 0),
    ];
    for &(bytes, valid_up_to) in cases {
        match Message::from_json_bytes(bytes) {
            Err(JsonError::InvalidUtf8(e)) => {
                assert_eq!(e.valid_up_to(), valid_up_to, "{bytes:?}");
                let shown = JsonError::InvalidUtf8(e).to_string();
                assert!(shown.contains("UTF-8"), "{shown}");
            }
            other => panic!("{bytes:?}: expected InvalidUtf8, got {other:?}"),
        }
    }
    // The same bytes made valid are read.
    let m =
        Message::from_json_bytes(b"\xEF\xBB\xBF{\"id\":\"1\",\"text\":\"caf\xc3\xa9\"}").unwrap();
    assert_eq!(m.text, "café");
}

#[test]
fn lone_surrogate_escapes_in_json_are_an_error() {
    for json in [
        r#"{"id":"1","text":"a\ud800b"}"#,
        r#"{"id":"1","text":"a\ud800"}"#,
        r#"{"id":"1","text":"\udc00"}"#,
        r#"{"id":"1","text":"\ud800\u0041"}"#,
        r#"{"id":"1","text":"x","user":"\udfff"}"#,
    ] {
        match Message::from_json(json) {
            Err(e @ JsonError::Syntax(_)) => assert!(e.to_string().starts_with("invalid JSON")),
            other => panic!("{json}: expected a syntax error, got {other:?}"),
        }
    }
    // A proper pair is fine.
    let m = Message::from_json(r#"{"id":"1","text":"pizza \ud83c\udf55"}"#).unwrap();
    assert_eq!(m.text, "pizza 🍕");
    assert!(hits(&rule("🍕"), &m));
}

/// Random bytes (raw, and biased towards UTF-8 fragments) through `from_json_bytes`, and their
/// lossy decoding through tokenisation, both rule parsers and the reference matcher.
#[test]
fn random_bytes_never_panic() {
    const FRAGMENTS: &[&[u8]] = &[
        b" ",
        b"  ",
        b"\t",
        b"\n",
        b"\0",
        b"\x1b",
        b"\"",
        b"\\",
        b"#",
        b"@",
        b"$",
        b"-",
        b"(",
        b")",
        b"OR",
        b":",
        b"~3",
        b"http://www.",
        b"www.",
        b"apple",
        b"gnip",
        b"call",
        b"c++",
        "é".as_bytes(),
        "e\u{301}".as_bytes(),
        "\u{301}".as_bytes(),
        "東京".as_bytes(),
        "ภาษา".as_bytes(),
        "🍕".as_bytes(),
        "\u{200B}".as_bytes(),
        "\u{202E}".as_bytes(),
        "\u{A0}".as_bytes(),
        "\u{3000}".as_bytes(),
        "İ".as_bytes(),
        "ß".as_bytes(),
        b"\xe6\x9d",
        b"\xf0\x9f",
        b"\xff",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\x80",
    ];
    let rules: Vec<Rule> = [
        "apple",
        "\"call gnip\"",
        "\"apple gnip\"~3",
        "#apple OR @gnip OR $5",
        "contains:\"pp\"",
        "url:\"www\" OR from:apple",
        "東京 -gnip",
        "🍕",
        "e\u{301}",
    ]
    .iter()
    .map(|r| rule(r))
    .chain(["apple,c++,東京 🍕", "gnip call"].iter().map(|r| track(r)))
    .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..1500 {
        let mut bytes = Vec::new();
        for _ in 0..rng.below(40) {
            if rng.below(3) == 0 {
                bytes.push(rng.next() as u8);
            } else {
                bytes.extend_from_slice(FRAGMENTS[rng.below(FRAGMENTS.len())]);
            }
        }
        // Raw bytes inside a JSON text value: an error unless the bytes are valid UTF-8.
        let mut json = br#"{"id":"r","text":""#.to_vec();
        json.extend_from_slice(&bytes);
        json.extend_from_slice(br#""}"#);
        let read = Message::from_json_bytes(&json);
        if std::str::from_utf8(&bytes).is_err() {
            assert!(matches!(read, Err(JsonError::InvalidUtf8(_))), "round {round}: {read:?}");
        }
        // The lossy text everywhere.
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for mode in [UrlMode::Canonicalize, UrlMode::Keep] {
            let t = Tokens::of(&lossy, mode);
            assert!(t.word_texts().all(|w| !w.is_empty()));
        }
        let mut msg = Message::new(format!("r{round}"), lossy.clone());
        msg.quoted_text = Some(lossy.chars().rev().collect());
        let prepared = NormalizedMessage::of(&msg);
        for r in &rules {
            let _ = rule_matches(r, &prepared);
        }
        for parsed in [Rule::parse(&lossy), Rule::parse_track(&lossy)] {
            match parsed {
                Ok(r) => {
                    let _ = rule_matches(&r, &prepared);
                    let _ = r.to_string();
                }
                Err(e) => assert!(!e.message().is_empty()),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Control characters
// ---------------------------------------------------------------------------------------------

#[test]
fn nul_and_control_characters_in_messages_never_join_a_match() {
    for ctl in ['\0', '\u{1}', '\u{7}', '\u{1b}', '\u{7f}', '\u{80}', '\u{9f}'] {
        assert_eq!(char_class(ctl), CharClass::Control, "{ctl:?}");
        let m = text(&format!("foo{ctl}bar {ctl}baz{ctl} {ctl}"));
        assert_eq!(words(&m.text), ["foo", "bar", "baz"], "{ctl:?}");
        // Words on either side still match on their own...
        assert!(hits(&rule("bar"), &m), "{ctl:?}");
        assert!(hits(&rule("baz"), &m), "{ctl:?}");
        assert!(hits(&track("foo"), &m), "{ctl:?}");
        assert!(hits(&rule("\"baz\""), &m), "{ctl:?}: a control character is a boundary");
        // ...but the control character never becomes part of a match.
        assert!(!hits(&rule("foobar"), &m), "{ctl:?}");
        assert!(!hits(&track("foobar"), &m), "{ctl:?}");
        assert!(!hits(&rule("\"foo bar\""), &m), "{ctl:?}");
        assert!(!hits(&rule("\"foobar\""), &m), "{ctl:?}");
        assert!(!hits(&rule("contains:foobar"), &m), "{ctl:?}");
        assert!(!hits(&rule("contains:\"foo bar\""), &m), "{ctl:?}");
        assert!(hits(&rule("contains:foo"), &m), "{ctl:?}");
        // Entities end at a control character.
        let tagged = text(&format!("#foo{ctl}bar @al{ctl}ice"));
        assert!(hits(&rule("#foo"), &tagged), "{ctl:?}");
        assert!(!hits(&rule("#foobar"), &tagged), "{ctl:?}");
        assert!(hits(&rule("@al"), &tagged), "{ctl:?}");
        assert!(!hits(&rule("@alice"), &tagged), "{ctl:?}");
    }
    // NUL read from a JSON escape behaves the same.
    let m = Message::from_json(r#"{"id":"1","text":"foo\u0000bar \u0007red\u001b[0m"}"#).unwrap();
    assert_eq!(m.text, "foo\0bar \u{7}red\u{1b}[0m");
    assert_eq!(words(&m.text), ["foo", "bar", "red", "0m"]);
    assert!(hits(&rule("bar"), &m));
    assert!(hits(&rule("red"), &m));
    assert!(!hits(&rule("foobar"), &m));
    assert!(!hits(&rule("\"foo bar\""), &m));
    // A message made only of control characters has no word and matches nothing.
    let only = text("\0\u{1}\u{2}\u{7f}");
    assert!(words(&only.text).is_empty());
    assert!(!hits(&rule("\"x\"~6 OR contains:x OR x"), &only));
}

#[test]
fn control_characters_in_rules_are_a_clear_error_naming_the_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("a\0b", 2, "U+0000"),
        ("apple \u{1b}[31m", 7, "U+001B"),
        ("éé\u{7f}", 3, "U+007F"),
        ("\u{9f}", 1, "U+009F"),
        ("\"call \u{0} gnip\"", 7, "U+0000"),
        ("from:\"a\u{1}\"", 8, "U+0001"),
        ("東京 OR \u{8}", 7, "U+0008"),
    ];
    for &(r, column, code) in cases {
        for dialect in [Dialect::Rule, Dialect::Track] {
            let e = Parser::new().parse(r, dialect).expect_err(r);
            assert_eq!(e.kind(), &RuleErrorKind::ControlCharacter, "{r:?} {dialect:?}: {e}");
            assert_eq!(e.column(), column, "{r:?} {dialect:?}: {e}");
            assert!(e.message().contains(code), "{r:?} {dialect:?}: {e}");
            assert!(e.to_string().starts_with(&format!("column {column}: ")), "{e}");
        }
    }
    // The control characters that are white space separate terms instead.
    assert_eq!(rule("apple\npie\r\nx\u{85}y\u{b}z").to_string(), "apple pie x y z");
    assert_eq!(track("apple\tpie,x\u{c}y").to_string(), "apple pie,x y");
}

// ---------------------------------------------------------------------------------------------
// Bidi controls and lone combining marks
// ---------------------------------------------------------------------------------------------

#[test]
fn bidi_controls_are_ignored_in_messages_and_rules() {
    for c in ['\u{202A}', '\u{202E}', '\u{2066}', '\u{2067}', '\u{2069}', '\u{200E}', '\u{200F}'] {
        assert_eq!(char_class(c), CharClass::Ignorable, "{c:?}");
    }
    // In messages they are removed before anything else: they cannot hide a word.
    assert_eq!(words("b\u{202E}omb"), ["bomb"]);
    assert!(hits(&rule("bomb"), &text("b\u{202E}omb")));
    assert!(hits(&rule("\"apple pie\""), &text("\u{2066}apple\u{2069} pie")));
    assert!(hits(&track("apple"), &text("\u{202E}elppa apple\u{202C}")));
    // In rules too.
    assert_eq!(rule("\u{202E}apple").to_string(), "apple");
    assert_eq!(rule("app\u{2066}le -\u{2067}pie").to_string(), "apple -pie");
    assert_eq!(rule("\"safe\u{202E} \u{2066}evil\u{2069}\"").to_string(), "\"safe evil\"");
    assert_eq!(track("\u{202E}c++\u{202C}").to_string(), "c++");
    // A rule of nothing but bidi controls is empty.
    for r in ["\u{202E}", "\u{202E}\u{2066}\u{2069}", " \u{2067} "] {
        assert_eq!(rule_err(r).kind(), &RuleErrorKind::Empty, "{r:?}");
        assert_eq!(Rule::parse_track(r).unwrap_err().kind(), &RuleErrorKind::Empty, "{r:?}");
    }
    let e = Rule::parse_track("apple,\u{202E}").unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::Empty);
    assert!(e.message().contains("phrase 2"), "{e}");
}

/// A combining mark belongs to the character before it in its raw token (`is_mark`; "marks
/// belong to their base"): after punctuation it is punctuation, after an emoji or a no-space
/// character it is part of that word. With nothing before it (a raw token that starts with a
/// mark) it is a word character (`CharClass::Word`: "a letter, mark or number"), so a lone
/// mark is neither dropped nor an error: it starts a word.
#[test]
fn lone_combining_marks() {
    assert_eq!(char_class('\u{301}'), CharClass::Word);
    assert!(is_mark('\u{301}'));
    // A message that starts with a mark: the mark starts the first word.
    assert_eq!(words("\u{301}apple pie"), ["\u{301}apple", "pie"]);
    assert!(!hits(&rule("apple"), &text("\u{301}apple")), "the word is \\u{{301}}apple");
    assert!(!hits(&rule("\"apple\""), &text("\u{301}apple")), "no boundary before 'a'");
    assert!(hits(&rule("pie"), &text("\u{301}apple pie")));
    assert!(hits(&rule("apple"), &text("\u{301} apple")));
    // A rule that is just the mark is a keyword of one word, the mark.
    let r = rule("\u{301}");
    assert_eq!(r.root(), &Node::Term(Term::Keyword(vec!["\u{301}".into()])));
    assert_eq!(r.to_string(), "\u{301}");
    assert!(hits(&r, &text("a \u{301} b")));
    assert!(!hits(&r, &text("\u{301}apple")));
    assert!(!hits(&r, &text("é")), "é is one precomposed letter");
    assert!(!hits(&r, &text("(\u{301})")), "after punctuation the mark is punctuation");
    assert_eq!(track("\u{301}").root(), &Node::Term(Term::Keyword(vec!["\u{301}".into()])));
    assert_eq!(rule("\"\u{301}\"").to_string(), "\"\u{301}\"");
    assert!(Rule::parse("#\u{301}").is_ok());
    // After punctuation, an emoji or a no-space character, the mark belongs to it.
    assert_eq!(words("(\u{301}) 🍕\u{301} 東\u{301}"), ["🍕\u{301}", "東\u{301}"]);
    // With a letter it composes (NFC): `e` + U+0301 is `é`.
    assert!(hits(&rule("e\u{301}"), &text("é")));
    assert!(hits(&rule("é"), &text("e\u{301}")));
    // Very long runs of marks (also needing canonical reordering) are fine.
    let marks = format!("a{} b", "\u{301}\u{316}".repeat(5000));
    let t = Tokens::of(&marks, UrlMode::Canonicalize);
    assert_eq!(t.words().len(), 2);
    assert!(hits(&rule("b"), &text(&marks)));
    assert!(!hits(&rule("a"), &text(&marks)));
    let only_marks = "\u{301}".repeat(10_000);
    assert_eq!(Tokens::of(&only_marks, UrlMode::Canonicalize).words().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Size
// ---------------------------------------------------------------------------------------------

#[test]
fn ten_megabyte_message_tokenises_and_matches() {
    const TEN_MB: usize = 10 * 1024 * 1024;
    let chunk = "lorem ipsum dolor sit amet, consectetur #adipiscing café naïve 東京タワー 🍕 ";
    let mut big = String::with_capacity(TEN_MB + chunk.len() + 16);
    while big.len() < TEN_MB {
        big.push_str(chunk);
    }
    big.push_str("haystack-end needle");
    assert!(big.len() > TEN_MB);
    let msg = Message::new("big", big);
    // One pass: tokenise every field and extract entities.
    let prepared = NormalizedMessage::of(&msg);
    let field = &prepared.fields()[0].tokens;
    let n = field.words().len();
    assert_eq!(field.word_text(n - 1), "needle");
    assert_eq!(&msg.text[field.words()[n - 1].source.clone()], "needle");
    assert_eq!(field.words()[n - 1].source.end, msg.text.len());
    // The keyword at the very end is found, in both dialects; a missing one is not.
    assert!(rule_matches(&rule("needle"), &prepared));
    assert!(rule_matches(&track("NEEDLE"), &prepared));
    assert!(rule_matches(&rule("\"haystack-end needle\""), &prepared));
    assert!(!rule_matches(&rule("needles"), &prepared));
    assert!(!rule_matches(&rule("missing"), &prepared));
}

#[test]
fn ten_megabyte_single_token_tokenises_and_matches() {
    // No white space at all: one raw token, one no-space word of 10 MB.
    let mut big = "東京".repeat(10 * 1024 * 1024 / 6 + 1);
    big.push('終');
    let msg = Message::new("big", big);
    let prepared = NormalizedMessage::of(&msg);
    let field = &prepared.fields()[0].tokens;
    assert_eq!(field.raw_tokens().len(), 1);
    assert_eq!(field.words().len(), 1);
    assert!(rule_matches(&rule("京終"), &prepared));
    assert!(!rule_matches(&rule("終東"), &prepared));
}

fn hundred_k_terms() -> Vec<String> {
    (0..100_000).map(|i| format!("w{}", i % 100)).collect()
}

#[test]
fn rule_of_100k_terms_is_too_long_with_default_limits() {
    let terms = hundred_k_terms();
    let and = terms.join(" ");
    let length = and.chars().count();
    let e = rule_err(&and);
    assert_eq!(e.kind(), &RuleErrorKind::TooLong { length, limit: 2048 });
    assert_eq!(e.column(), 2049, "the first character past the limit");
    assert!(e.message().contains(&length.to_string()) && e.message().contains("2048"), "{e}");
    // Track: one phrase of 100k terms is too long; 100k phrases are too many.
    let e = Rule::parse_track(&and).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::PhraseTooLong { bytes: and.len(), limit: 60 });
    assert!(e.message().contains("phrase 1"), "{e}");
    let list = terms.join(",");
    let e = Rule::parse_track(&list).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::TooManyPhrases { count: 100_000, limit: 400 });
    let offset_of_401st: usize = terms[..400].iter().map(|t| t.len() + 1).sum();
    assert_eq!(e.offset(), offset_of_401st);
    assert!(e.message().contains("100000") && e.message().contains("400"), "{e}");
}

#[test]
fn rule_of_100k_terms_parses_and_matches_with_raised_limits() {
    let terms = hundred_k_terms();
    let parser = unlimited().build();
    let r = parser.parse(&terms.join(" "), Dialect::Rule).unwrap();
    match r.root() {
        Node::And(children) => assert_eq!(children.len(), 100_000),
        other => panic!("expected an AND, got {other:?}"),
    }
    assert_eq!(parser.parse(&r.to_string(), Dialect::Rule).as_ref(), Ok(&r));
    let all: Vec<String> = (0..100).rev().map(|i| format!("w{i}")).collect();
    assert!(hits(&r, &text(&all.join(" "))));
    let missing: Vec<&String> = all.iter().filter(|w| *w != "w57").collect();
    let missing = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    assert!(!hits(&r, &text(&missing)));
    // Track, with the phrase limits raised: 100k phrases (OR) and a 100k-term phrase (AND).
    let parser = Parser::builder().max_phrases(usize::MAX).max_phrase_bytes(usize::MAX).build();
    let or = parser.parse(&terms.join(","), Dialect::Track).unwrap();
    assert!(matches!(or.root(), Node::Or(c) if c.len() == 100_000));
    assert!(hits(&or, &text("w99")));
    assert!(!hits(&or, &text("w100")));
    let and = parser.parse(&terms.join(" "), Dialect::Track).unwrap();
    assert!(hits(&and, &text(&all.join(" "))));
    assert!(!hits(&and, &text(&missing)));
}

// ---------------------------------------------------------------------------------------------
// Nesting
// ---------------------------------------------------------------------------------------------

fn nested(depth: usize, inner: &str) -> String {
    format!("{}{inner}{}", "(".repeat(depth), ")".repeat(depth))
}

#[test]
fn ten_thousand_nested_parentheses() {
    let deep = nested(10_000, "a");
    let e = rule_err(&deep);
    assert_eq!(e.kind(), &RuleErrorKind::TooLong { length: 20_001, limit: 2048 });
    // Without the length limit the depth limit answers (default 32), at the first '(' too many.
    let e = unlimited().build().parse(&deep, Dialect::Rule).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::TooDeep { limit: 32 });
    assert_eq!(e.column(), 33);
    // Raising the depth limit does not lift the internal cap of 256: no stack overflow.
    for max_depth in [usize::MAX, 1_000_000, 257] {
        let parser = unlimited().max_depth(max_depth).build();
        let e = parser.parse(&deep, Dialect::Rule).unwrap_err();
        assert_eq!(e.kind(), &RuleErrorKind::TooDeep { limit: 256 }, "max_depth {max_depth}");
        assert_eq!(e.column(), 257);
        assert!(e.message().contains("256"), "{e}");
        // Opening parentheses only answer the same way.
        let e = parser.parse(&"(".repeat(10_000), Dialect::Rule).unwrap_err();
        assert_eq!(e.kind(), &RuleErrorKind::TooDeep { limit: 256 });
    }
    let parser = unlimited().max_depth(usize::MAX).build();
    assert!(parser.parse(&nested(256, "a"), Dialect::Rule).is_ok());
    assert_eq!(
        parser.parse(&nested(257, "a"), Dialect::Rule).unwrap_err().kind(),
        &RuleErrorKind::TooDeep { limit: 256 }
    );
    let small = unlimited().max_depth(10).build();
    assert!(small.parse(&nested(10, "a"), Dialect::Rule).is_ok());
    assert_eq!(
        small.parse(&nested(11, "a"), Dialect::Rule).unwrap_err().kind(),
        &RuleErrorKind::TooDeep { limit: 10 }
    );
    // Closing parentheses only.
    let e = parser.parse(&")".repeat(10_000), Dialect::Rule).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::UnbalancedParen);
    assert_eq!(e.column(), 1);
    // In the track dialect parentheses are ordinary characters.
    let t = Parser::builder().max_phrase_bytes(usize::MAX).build();
    assert!(hits(&t.parse(&deep, Dialect::Track).unwrap(), &text(&deep)));
}

/// At the cap, a tree that cannot be flattened (OR and AND alternating) parses, prints,
/// parses back and matches without exhausting the stack.
#[test]
fn deep_alternating_tree_at_the_cap_parses_prints_and_matches() {
    let mut r = "x0".to_string();
    for i in 1..256 {
        r = if i % 2 == 1 { format!("x{i} OR ({r})") } else { format!("x{i} ({r})") };
    }
    let r = format!("({r})");
    let parser = unlimited().max_depth(usize::MAX).build();
    let parsed = parser.parse(&r, Dialect::Rule).unwrap();
    let printed = parsed.to_string();
    assert_eq!(parser.parse(&printed, Dialect::Rule).as_ref(), Ok(&parsed));
    let all: Vec<String> = (0..256).map(|i| format!("x{i}")).collect();
    assert!(hits(&parsed, &text(&all.join(" "))));
    assert!(hits(&parsed, &text("x255")), "the top OR");
    assert!(!hits(&parsed, &text("x254 x0")));
    assert!(!hits(&parsed, &text("")));
    // One level more is refused.
    let e = parser.parse(&format!("(y {r})"), Dialect::Rule).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::TooDeep { limit: 256 });
}

#[test]
fn long_runs_of_operators_and_quotes_are_errors() {
    let parser = unlimited().build();
    let cases: Vec<(String, RuleErrorKind)> = vec![
        ("-".repeat(10_000) + "a", RuleErrorKind::NegatedGroup),
        (vec!["OR"; 10_000].join(" "), RuleErrorKind::MissingOperand),
        (format!("a {}", vec!["OR"; 10_000].join(" ")), RuleErrorKind::MissingOperand),
        (format!("a \"{}", "b ".repeat(5_000)), RuleErrorKind::UnbalancedQuote),
        ("\"\"".repeat(5_000), RuleErrorKind::NoWord),
        ("a ".to_string() + &"[".repeat(10_000), RuleErrorKind::NoWord),
        // Only geo operators take `[…]` values; an unclosed one is an error.
        ("a bounding_box:".to_string() + &"[".repeat(10_000), RuleErrorKind::InvalidValue),
        ("a ".to_string() + &"#".repeat(10_000), RuleErrorKind::NoWord),
        ("()".repeat(5_000), RuleErrorKind::EmptyGroup),
    ];
    for (r, kind) in cases {
        let e = parser.parse(&r, Dialect::Rule).unwrap_err();
        assert_eq!(e.kind(), &kind, "{}…: {e}", &r[..20.min(r.len())]);
    }
    // Elsewhere `[` is an ordinary character of a value: a (strange) user name.
    let r = parser.parse(&("a from:".to_string() + &"[".repeat(10_000)), Dialect::Rule).unwrap();
    assert_eq!(parser.parse(&r.to_string(), Dialect::Rule).unwrap(), r);
}

// ---------------------------------------------------------------------------------------------
// Anchoring
// ---------------------------------------------------------------------------------------------

#[test]
fn rules_made_only_of_negations_or_operators_are_not_anchored() {
    for r in [
        "-a -b",
        "-a",
        "-\"a b\" -#tag -@bob -$5",
        "-from:alice -url:x -contains:y",
        "has:links is:reply",
        "lang:en",
        "sample:10",
        "has:geo -apple",
        "(has:links OR is:reply)",
        "lang:en OR apple",
        "apple OR lang:en",
        "is:retweet (lang:fr OR lang:en)",
        "(has:media has:links) OR (is:quote -a)",
        "-a has:links lang:en sample:5 is:quote",
    ] {
        let e = rule_err(r);
        assert_eq!(e.kind(), &RuleErrorKind::NotAnchored, "{r}: {e}");
        assert!(!e.message().is_empty());
    }
    let e = rule_err("-a -b");
    assert!(e.message().contains("only of negations"), "{e}");
    let e = rule_err("has:links is:reply");
    assert!(e.message().contains("cannot stand alone"), "{e}");
    assert_eq!(rule_err("-(a b)").kind(), &RuleErrorKind::NegatedGroup);
    assert_eq!(rule_err("a OR -b").kind(), &RuleErrorKind::NegatedOr);
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

#[test]
fn huge_and_non_finite_numbers_are_invalid_values() {
    let invalid_value = [
        "a sample:99999999999999999999999",
        "a sample:18446744073709551617",
        "a sample:-1",
        "a sample:1.5",
        "a sample:1e2",
        "a sample:NaN",
        "a sample:inf",
        "a bounding_box:[1e400 0 1 1]",
        "a bounding_box:[-1e400 0 1 1]",
        "a bounding_box:[0 0 1 1e400]",
        "a bounding_box:[NaN 0 1 1]",
        "a bounding_box:[0 nan 1 1]",
        "a bounding_box:[0 0 inf 1]",
        "a bounding_box:[-inf -90 0 0]",
        "a bounding_box:[-infinity -90 0 0]",
        "a bounding_box:[0 0 1 +Infinity]",
        "a bounding_box:[0 0 1 1e308]",
        "a bounding_box:[0 0 1 99999999999999999999999999999]",
        "a point_radius:[0 0 1e309km]",
        "a point_radius:[0 0 NaNkm]",
        "a point_radius:[0 0 infmi]",
        "a point_radius:[0 0 -infkm]",
        "a point_radius:[NaN 0 1km]",
        "a point_radius:[0 inf 1km]",
        "a point_radius:[1e400 0 1km]",
        "a point_radius:[0 0 1e-400km]",
        "a point_radius:[0 0 -0km]",
        "a point_radius:[0 0 -5mi]",
    ];
    for r in invalid_value {
        let e = rule_err(r);
        assert_eq!(e.kind(), &RuleErrorKind::InvalidValue, "{r}: {e}");
        assert_eq!(e.column(), 3, "{r}: {e}");
    }
    let invalid_proximity = [
        "\"a b\"~99999999999999999999".to_string(),
        "\"a b\"~18446744073709551616".to_string(),
        "\"a b\"~256".to_string(),
        "\"a b\"~7".to_string(),
        "\"a b\"~-1".to_string(),
        "\"a b\"~NaN".to_string(),
        format!("\"a b\"~{}", "9".repeat(2000)),
    ];
    for r in &invalid_proximity {
        let e = rule_err(r);
        assert_eq!(e.kind(), &RuleErrorKind::InvalidProximity, "{r}: {e}");
        assert_eq!(e.column(), 6, "{r}: {e}");
    }
    // Even a configured limit of 255 refuses what does not fit.
    let p = Parser::builder().max_proximity(u8::MAX).build();
    assert!(p.parse("\"a b\"~255", Dialect::Rule).is_ok());
    let e = p.parse("\"a b\"~256", Dialect::Rule).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::InvalidProximity);
    // Extreme but finite values that are in range are accepted.
    assert!(Rule::parse("a point_radius:[-180 -90 5e-324km]").is_ok());
    assert!(Rule::parse("a point_radius:[180 90 1e308mi]").is_ok());
    assert!(Rule::parse("a bounding_box:[-180 -90 180 90]").is_ok());
}

#[test]
fn messages_with_huge_or_non_finite_coordinates_are_errors() {
    // Not JSON (non-finite literals, numbers beyond f64): a syntax error.
    for json in [
        r#"{"id":"1","text":"x","coordinates":[1e400,0]}"#,
        r#"{"id":"1","text":"x","coordinates":[0,-1e400]}"#,
        r#"{"id":"1","text":"x","coordinates":[NaN,0]}"#,
        r#"{"id":"1","text":"x","coordinates":[Infinity,0]}"#,
        r#"{"id":"1","text":"x","coordinates":[-Infinity,0]}"#,
        r#"{"id":"1","text":"x","place":[0,0,1,1e999]}"#,
    ] {
        match Message::from_json(json) {
            Err(JsonError::Syntax(_)) => {}
            other => panic!("{json}: expected a syntax error, got {other:?}"),
        }
    }
    // JSON, but out of range or not numbers: an error naming the field.
    for (json, field) in [
        (r#"{"id":"1","text":"x","coordinates":["NaN",0]}"#, "coordinates"),
        (r#"{"id":"1","text":"x","coordinates":[1e308,0]}"#, "coordinates"),
        (r#"{"id":"1","text":"x","coordinates":[0,99999999999999999999999]}"#, "coordinates"),
        (r#"{"id":"1","text":"x","coordinates":[0,0,0]}"#, "coordinates"),
        (
            r#"{"id":"1","text":"x","coordinates":{"type":"Point","coordinates":[0,1e300]}}"#,
            "coordinates",
        ),
        (r#"{"id":"1","text":"x","coordinates":{"lon":1e308,"lat":0}}"#, "coordinates"),
        (r#"{"id":"1","text":"x","place":[0,0,1,1e308]}"#, "place"),
        (r#"{"id":"1","text":"x","place":{"west":-1e308,"south":0,"east":0,"north":0}}"#, "place"),
        (
            r#"{"id":"1","text":"x","place":{"bounding_box":{"type":"Polygon","coordinates":[[[0,0],[0,1e300],[1,1],[1,0]]]}}}"#,
            "place",
        ),
        (
            r#"{"id_str":"1","text":"x","coordinates":{"type":"Point","coordinates":[-1e308,0]}}"#,
            "coordinates",
        ),
        (
            r#"{"data":{"id":"1","text":"x","geo":{"coordinates":{"type":"Point","coordinates":[0,-1e300]}}}}"#,
            "coordinates",
        ),
    ] {
        match Message::from_json(json) {
            Err(e @ JsonError::InvalidField { .. }) => {
                assert!(e.to_string().contains(field), "{json}: {e}");
            }
            other => panic!("{json}: expected an invalid field, got {other:?}"),
        }
    }
    // Extreme values in range are read.
    let m = Message::from_json(r#"{"id":"1","text":"x","coordinates":[-0.0,5e-324]}"#).unwrap();
    assert_eq!(m.coordinates, Some((0.0, 5e-324)));
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let arrays =
        format!(r#"{{"id":"1","text":"x","urls":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    assert!(matches!(Message::from_json(&arrays), Err(JsonError::Syntax(_))));
    let mut objects = String::from(r#"{"id":"1","text":"x","place":"#);
    for _ in 0..depth {
        objects.push_str(r#"{"a":"#);
    }
    objects.push('1');
    objects.push_str(&"}".repeat(depth + 1));
    assert!(matches!(Message::from_json_bytes(objects.as_bytes()), Err(JsonError::Syntax(_))));
}

// ---------------------------------------------------------------------------------------------
// Proximity (regression: was O(n² · 7!))
// ---------------------------------------------------------------------------------------------

/// `"a a a a a a a a"~6` can never match (8 distinct positions do not fit in a window of 7).
/// The first reference implementation backtracked over every assignment of positions in every
/// window, O(n² · 7!): a 200-word message took ~4 s in a debug build and 2,000 words never
/// finished, and the fast matcher evaluates proximity with the same function. Now it must
/// answer well within the watchdog below (generous, so it is no timing assertion).
#[test]
fn proximity_on_repeated_words_finishes() {
    let msg = text(&vec!["a"; 2000].join(" "));
    let cases = [
        ("\"a a a a a a a a\"~6", false),
        ("\"a a a a a a b\"~6", false),
        ("\"a a a a a a a\"~6", true),
        ("\"a a a a a a a a a a a a\"~6", false),
    ];
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let answers: Vec<bool> = cases.iter().map(|(r, _)| hits(&rule(r), &msg)).collect();
        let _ = tx.send(answers);
    });
    let answers = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("no answer within 60 s for a 2,000-word message");
    let expected: Vec<bool> = cases.iter().map(|&(_, e)| e).collect();
    assert_eq!(answers, expected);
    // With the other word at the very end.
    let mut words = vec!["a"; 2000];
    words.push("b");
    assert!(hits(&rule("\"a a a a a a b\"~6"), &text(&words.join(" "))));
}

// ---------------------------------------------------------------------------------------------
// A million subscribers
// ---------------------------------------------------------------------------------------------

/// One million subscribers with one rule each: the registry takes them within its limits,
/// one message reaches all of them, and the next subscriber past a configured total limit is
/// refused with a typed error instead of growing without bound.
#[test]
fn a_million_subscribers() {
    use streamtrack::registry::{NewRule, Registry, RegistryError, Scratch};
    const N: usize = 1_000_000;
    let registry = Registry::builder().max_rules(N).background_merges(false).build();
    let rule = rule("breaking");
    let results = registry.subscribe_all((0..N).map(|i| NewRule {
        subscriber: format!("s{i}"),
        rule: rule.clone(),
        tag: None,
    }));
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(registry.len(), N);
    let mut scratch = Scratch::new();
    let snap = registry.snapshot();
    assert_eq!(snap.find(&text("breaking news"), &mut scratch).len(), N);
    assert!(snap.find(&text("nothing"), &mut scratch).is_empty());
    assert_eq!(
        registry.subscribe("one more", rule.clone(), None),
        Err(RegistryError::TooManyRules { limit: N })
    );
}
