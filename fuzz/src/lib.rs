//! The properties the cargo-fuzz targets check, shared with the regression tests.
//!
//! Each fuzz target in `fuzz/fuzz_targets/` is one line calling a `check_*` function of this
//! file, and `tests/fuzz_regressions.rs` includes this file with `#[path]`, so every input a
//! fuzzer ever found (and the seed corpus) replays under plain `cargo test` on stable.
//! A `check_*` function panics when a property fails and returns normally otherwise.
//!
//! Known bugs that are already pinned by ignored tests (`tests/properties.rs`,
//! `tests/fuzz_regressions.rs`) are skipped, so that fuzzing keeps looking for new ones; set
//! `STREAMTRACK_FUZZ_STRICT=1` to check them too. See [`known_bug_trigger`].

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::message::{GeoBox, MessageFormat, UrlEntity};
use streamtrack::normalize::{
    char_class, fold, is_mark, CharClass, NormalizedMessage, Tokens, UrlMode,
};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::registry::{NewRule, Registry, RegistryError, RuleId, Scratch as RegistryScratch};
use streamtrack::rule::{Dialect, Node, Parser, RuleError, RuleErrorKind};
use streamtrack::{Message, Rule};
use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{is_nfd_quick, IsNormalized, UnicodeNormalization};

/// Whether known (ignored) bugs are checked too (`STREAMTRACK_FUZZ_STRICT=1`).
fn strict() -> bool {
    static STRICT: OnceLock<bool> = OnceLock::new();
    *STRICT.get_or_init(|| std::env::var_os("STREAMTRACK_FUZZ_STRICT").is_some_and(|v| v == "1"))
}

/// Whether the registry operations are printed (`STREAMTRACK_FUZZ_TRACE=1`), to debug a case.
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("STREAMTRACK_FUZZ_TRACE").is_some_and(|v| v == "1"))
}

// ---------------------------------------------------------------------------------------------
// parse_rule: both dialects, default and tight limits; round trip through the printer
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes (lossy UTF-8) parsed in both dialects, with the default limits and with
/// tight ones (`max_rule_chars(64)`, `max_depth(4)`): never a panic; errors point inside the
/// text; trees have the documented shape; a rule prints to a text that parses to the same rule
/// and prints the same again; what the tight parser accepts, the default one accepts as the
/// same rule.
pub fn check_parse_rule(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let default = Parser::new();
    let tight = Parser::builder().max_rule_chars(64).max_depth(4).build();
    for dialect in [Dialect::Rule, Dialect::Track] {
        let full = parse_checked(&default, &text, dialect);
        if let Ok(rule) = &full {
            assert_round_trip(&default, rule, &text);
        }
        if let Ok(rule) = &parse_checked(&tight, &text, dialect) {
            assert_eq!(
                full.as_ref(),
                Ok(rule),
                "{dialect:?} {text:?}: the tight parser's rule differs from the default parser's"
            );
            assert_round_trip(&tight, rule, &text);
        }
    }
}

/// Parses and checks the error position or the tree shape.
fn parse_checked(parser: &Parser, text: &str, dialect: Dialect) -> Result<Rule, RuleError> {
    let result = parser.parse(text, dialect);
    match &result {
        Err(e) => {
            let at = e.offset();
            assert!(
                at <= text.len() && text.is_char_boundary(at),
                "{dialect:?} {text:?}: error offset {at} is not a char boundary: {e}"
            );
            assert_eq!(e.column(), text[..at].chars().count() + 1, "{dialect:?} {text:?}: {e}");
            assert!(!e.message().is_empty() && !e.to_string().is_empty());
        }
        Ok(rule) => {
            assert_eq!(rule.dialect(), dialect);
            check_shape(rule.root(), None, dialect, text);
        }
    }
    result
}

/// The tree invariants documented on [`Node`]: AND and OR have at least two children, no AND
/// directly in an AND, no OR or NOT directly in an OR, NOT only directly inside an AND (and
/// never in the track dialect), and no NOT of a NOT.
fn check_shape(node: &Node, parent: Option<&Node>, dialect: Dialect, text: &str) {
    let bad = |what: &str| panic!("{dialect:?} {text:?}: {what} in {node:?}");
    match node {
        Node::And(children) | Node::Or(children) => {
            if children.len() < 2 {
                bad("an AND/OR with fewer than two children");
            }
            for c in children {
                match (node, c) {
                    (Node::And(_), Node::And(_)) => bad("an AND directly in an AND"),
                    (Node::Or(_), Node::Or(_)) => bad("an OR directly in an OR"),
                    (Node::Or(_), Node::Not(_)) => bad("a NOT directly in an OR"),
                    _ => {}
                }
                check_shape(c, Some(node), dialect, text);
            }
        }
        Node::Not(inner) => {
            if dialect == Dialect::Track {
                bad("a NOT in the track dialect");
            }
            if !matches!(parent, Some(Node::And(_))) {
                bad("a NOT outside an AND");
            }
            if !matches!(**inner, Node::Term(_)) {
                bad("a NOT of something other than a term");
            }
        }
        Node::Term(_) => {}
    }
}

/// Whether a reparse failed only because printing made the text longer than a limit.
pub fn grew_past_a_limit(e: &RuleError) -> bool {
    matches!(e.kind(), RuleErrorKind::TooLong { .. } | RuleErrorKind::PhraseTooLong { .. })
}

/// The characters involved in a known bug, computed once from the library's own answers so
/// that the set shrinks as bugs get fixed (`tests/properties.rs` uses it too; its ignored
/// `bug_*` tests pin these bugs):
/// - combining characters (canonical combining class ≠ 0) the tokenizer does not treat as
///   marks (U+0345, characters newer than its Unicode 15.0 tables): NFC reorders them across
///   segment boundaries (`bug_combining_characters_that_are_not_marks…`);
/// - the characters of a decomposition that tokenises differently from its composed form
///   (Hangul jamo, `↔` + U+0338, …: `bug_decomposed_hangul…`, `bug_emoji_base_plus_mark…`);
/// - characters whose case folding has a character of another class.
fn known_bug_chars() -> &'static HashSet<char> {
    static SET: OnceLock<HashSet<char>> = OnceLock::new();
    SET.get_or_init(|| {
        let mut set = HashSet::new();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let k = char_class(c);
            if canonical_combining_class(c) != 0 && !is_mark(c) {
                set.insert(c);
            }
            let mut buf = [0; 4];
            let one: &str = c.encode_utf8(&mut buf);
            if !matches!(k, CharClass::Ignorable | CharClass::Space | CharClass::Control)
                && !c.is_ascii()
                && fold(one).chars().any(|x| char_class(x) != k && !is_mark(x))
            {
                set.insert(c);
            }
            if is_nfd_quick(one.chars()) != IsNormalized::Yes {
                let d: String = one.nfd().collect();
                let (a, b) = (Tokens::of(one, UrlMode::Keep), Tokens::of(&d, UrlMode::Keep));
                if a.text() != b.text() || !a.word_texts().eq(b.word_texts()) {
                    set.extend(d.chars());
                }
            }
        }
        set
    })
}

/// Whether `text` holds the trigger of a known bug (unless `STREAMTRACK_FUZZ_STRICT=1`): a
/// character of [`known_bug_chars`], or two adjacent combining characters out of canonical
/// order, which NFC swaps.
pub fn known_bug_trigger(text: &str) -> bool {
    if strict() {
        return false;
    }
    let set = known_bug_chars();
    let mut prev = 0;
    text.chars().filter(|&c| char_class(c) != CharClass::Ignorable).any(|c| {
        let ccc = canonical_combining_class(c);
        let swapped = ccc != 0 && prev > ccc;
        prev = ccc;
        swapped || set.contains(&c)
    })
}

fn assert_round_trip(parser: &Parser, rule: &Rule, input: &str) {
    let printed = rule.to_string();
    let mut again = parser.parse(&printed, rule.dialect());
    if let Err(e) = &again {
        if grew_past_a_limit(e) {
            // Documented decision (see `Rule`): limits apply to the text as written; the
            // canonical text may be longer (case folding lengthens `İ`), is refused with the
            // limit error under the same limits, and parses to the same tree without them.
            let mut limits = parser.limits().clone();
            limits.max_rule_chars = usize::MAX;
            limits.max_phrase_bytes = usize::MAX;
            again = Parser::builder().limits(limits).build().parse(&printed, rule.dialect());
        }
    }
    if again.as_ref() != Ok(rule) && known_bug_trigger(input) {
        return;
    }
    assert_eq!(
        again.as_ref(),
        Ok(rule),
        "{:?} {input:?} parses to {:?}, which prints as {printed:?}",
        rule.dialect(),
        rule.root()
    );
    let printed_again = again.expect("checked").to_string();
    assert_eq!(printed_again, printed, "{input:?}: printing is not idempotent");
}

// ---------------------------------------------------------------------------------------------
// normalize: the fast tokenizer against the reference one, and tokenisation invariants
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes (lossy UTF-8) tokenised in both URL modes: [`Tokens::tokenize`] equals
/// [`Tokens::tokenize_reference`] (text, raw tokens, words), also into reused buffers; ranges
/// are in bounds and on char boundaries; words are non-empty, hold no white space and are
/// folded (`fold(word) == word`); the text is the raw tokens joined by single spaces; and
/// tokenising the normalised text again (`UrlMode::Keep`) gives the same text and the same
/// words (known bugs aside: U+0345 and other combining characters NFC moves across segments).
pub fn check_normalize(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut reused =
        Tokens::of("Prior TEXT, ÀÉ 東京タワー 🍕 http://www.x.y/z", UrlMode::Canonicalize);
    for mode in [UrlMode::Canonicalize, UrlMode::Keep] {
        let mut fast = Tokens::new();
        fast.tokenize(&text, mode);
        let mut slow = Tokens::new();
        slow.tokenize_reference(&text, mode);
        assert_same_tokens(&fast, &slow, &|| format!("{mode:?} fast vs reference of {text:?}"));
        reused.tokenize(&text, mode);
        assert_same_tokens(&reused, &slow, &|| format!("{mode:?} reused buffers for {text:?}"));
        check_token_invariants(&text, &fast);

        let again = Tokens::of(fast.text(), UrlMode::Keep);
        if again.text() != fast.text() && !known_bug_trigger(&text) {
            assert_eq!(again.text(), fast.text(), "{mode:?}: normalising {text:?} twice");
        }
        let once: Vec<&str> = fast.word_texts().collect();
        let twice: Vec<&str> = again.word_texts().collect();
        if once != twice && !known_bug_trigger(&text) {
            assert_eq!(twice, once, "{mode:?}: words of the normalised text of {text:?}");
        }
    }
}

fn assert_same_tokens(a: &Tokens, b: &Tokens, what: &dyn Fn() -> String) {
    assert_eq!(a.text(), b.text(), "text: {}", what());
    assert_eq!(a.raw_tokens(), b.raw_tokens(), "raw tokens: {}", what());
    assert_eq!(a.words(), b.words(), "words: {}", what());
}

fn check_token_invariants(source: &str, t: &Tokens) {
    let norm = t.text();
    let in_bounds = |s: &str, r: &std::ops::Range<usize>| {
        r.start < r.end
            && r.end <= s.len()
            && s.is_char_boundary(r.start)
            && s.is_char_boundary(r.end)
    };
    let mut joined = String::with_capacity(norm.len());
    let mut last_source_end = 0;
    for (i, raw) in t.raw_tokens().iter().enumerate() {
        assert!(in_bounds(norm, &raw.norm), "raw token {i} {raw:?} of {source:?}");
        assert!(in_bounds(source, &raw.source), "raw token {i} {raw:?} of {source:?}");
        assert!(raw.source.start >= last_source_end, "raw tokens out of order in {source:?}");
        last_source_end = raw.source.end;
        assert!(
            !source[raw.source.clone()].chars().any(|c| char_class(c) == CharClass::Space),
            "raw token {i} of {source:?} holds white space"
        );
        if i > 0 {
            joined.push(' ');
        }
        joined.push_str(t.raw_token_text(i));
    }
    assert_eq!(joined, norm, "the text is not the raw tokens joined by spaces: {source:?}");
    let mut last_end = 0;
    for (i, w) in t.words().iter().enumerate() {
        assert!(in_bounds(norm, &w.norm), "word {i} {w:?} of {source:?}");
        assert!(in_bounds(source, &w.source), "word {i} {w:?} of {source:?}");
        assert!(w.norm.start >= last_end, "words out of order or overlapping in {source:?}");
        last_end = w.norm.end;
        let raw = &t.raw_tokens()[w.raw_token];
        assert!(
            raw.norm.start <= w.norm.start && w.norm.end <= raw.norm.end,
            "word {i} {w:?} outside its raw token {raw:?} in {source:?}"
        );
        assert!(
            raw.source.start <= w.source.start && w.source.end <= raw.source.end,
            "word {i} {w:?} outside its raw token {raw:?} (source) in {source:?}"
        );
        let word = t.word_text(i);
        assert!(
            !word.chars().any(|c| c.is_whitespace() || char_class(c) == CharClass::Space),
            "word {word:?} of {source:?} holds white space"
        );
        assert_eq!(fold(word), word, "word {i} of {source:?} is not folded");
    }
}

// ---------------------------------------------------------------------------------------------
// message_json: every reader; the fast message preparation against the reference one
// ---------------------------------------------------------------------------------------------

/// Arbitrary bytes read with [`Message::from_json_bytes`] and, as lossy UTF-8, with
/// [`Message::from_json_with`] in every [`MessageFormat`]: never a panic; bytes and string
/// readers agree; and for every message read, [`NormalizedMessage::prepare`] and
/// [`NormalizedMessage::prepare_reference`] give the same fields, entities and operator
/// values, and the compiled matcher agrees with the reference matcher on a fixed rule set.
pub fn check_message_json(data: &[u8]) {
    let mut messages = Vec::new();
    let from_bytes = Message::from_json_bytes(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let from_str = Message::from_json(s);
        assert_eq!(
            from_bytes.as_ref().ok(),
            from_str.as_ref().ok(),
            "from_json_bytes and from_json disagree on {s:?}"
        );
    }
    match from_bytes {
        Ok(m) => messages.push(m),
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    let text = String::from_utf8_lossy(data);
    for format in [
        MessageFormat::Auto,
        MessageFormat::Simple,
        MessageFormat::TwitterV1,
        MessageFormat::TwitterV2,
    ] {
        match Message::from_json_with(&text, format) {
            Ok(m) => messages.push(m),
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
    let (matcher, reference) = fixed_rules();
    let mut scratch = Scratch::new();
    let mut reused = NormalizedMessage::of(&Message::new("0", "warm #up @buffers $x http://a.b/c"));
    for m in &messages {
        let fast = NormalizedMessage::of(m);
        let slow = NormalizedMessage::of_reference(m);
        assert_same_prepared(&fast, &slow, &|| format!("fast vs reference for {m:?}"));
        reused.prepare(m);
        assert_same_prepared(&reused, &slow, &|| format!("reused buffers for {m:?}"));
        assert_matchers_agree(&[(matcher, None)], reference, m, &mut [&mut scratch]);
    }
}

/// Compares two prepared messages field by field.
pub fn assert_same_prepared(
    a: &NormalizedMessage,
    b: &NormalizedMessage,
    what: &dyn Fn() -> String,
) {
    assert_eq!(a.fields().len(), b.fields().len(), "field count: {}", what());
    for (i, (x, y)) in a.fields().iter().zip(b.fields()).enumerate() {
        assert_eq!(x.kind, y.kind, "field {i} kind: {}", what());
        assert_same_tokens(&x.tokens, &y.tokens, &|| {
            format!("field {i} ({:?}): {}", x.kind, what())
        });
    }
    let list =
        |l: &streamtrack::normalize::StrList| l.iter().map(str::to_string).collect::<Vec<_>>();
    assert_eq!(list(&a.hashtags), list(&b.hashtags), "hashtags: {}", what());
    assert_eq!(list(&a.mentions), list(&b.mentions), "mentions: {}", what());
    assert_eq!(list(&a.cashtags), list(&b.cashtags), "cashtags: {}", what());
    assert_eq!(a.has_links, b.has_links, "has_links: {}", what());
    assert_eq!(a.has_media, b.has_media, "has_media: {}", what());
    assert_eq!(a.has_geo(), b.has_geo(), "has_geo: {}", what());
    assert_eq!(a.id, b.id, "id: {}", what());
    assert_eq!(a.user, b.user, "user: {}", what());
    assert_eq!(a.user_id, b.user_id, "user_id: {}", what());
    assert_eq!(a.in_reply_to_user, b.in_reply_to_user, "in_reply_to_user: {}", what());
    assert_eq!(a.in_reply_to_user_id, b.in_reply_to_user_id, "in_reply_to_user_id: {}", what());
    assert_eq!(a.lang, b.lang, "lang: {}", what());
    assert_eq!(
        format!("{:?}", a.coordinates),
        format!("{:?}", b.coordinates),
        "coords: {}",
        what()
    );
    assert_eq!(format!("{:?}", a.place), format!("{:?}", b.place), "place: {}", what());
    assert_eq!(
        (a.is_retweet, a.is_reply, a.is_quote),
        (b.is_retweet, b.is_reply, b.is_quote),
        "is_retweet/is_reply/is_quote: {}",
        what()
    );
}

/// The rules the JSON messages are matched against: the documented examples and one or two
/// rules per operator.
const FIXED_RULES: &[(&str, Dialect)] = &[
    ("twitter", Dialect::Track),
    ("Twitter’s", Dialect::Track),
    ("twitter api,twitter streaming", Dialect::Track),
    ("example.com", Dialect::Track),
    ("example.com/foobarbaz", Dialect::Track),
    ("example com", Dialect::Track),
    ("$acme,c++,#meme,@bob", Dialect::Track),
    ("touché,東京,ภาษา,🍕", Dialect::Track),
    ("gnip", Dialect::Rule),
    ("cola OR snow OR coachella", Dialect::Rule),
    ("\"call gnip\"", Dialect::Rule),
    ("contains:phone", Dialect::Rule),
    ("cat #meme -grumpy", Dialect::Rule),
    ("diacrítica OR #thanku OR $acme OR @alice", Dialect::Rule),
    ("\"love good\"~3 -\"not good\"", Dialect::Rule),
    ("from:alice OR to:bob OR from:42", Dialect::Rule),
    ("url:\"example com\" OR url:wikipedia", Dialect::Rule),
    ("the (lang:en OR lang:ja OR lang:zh-hant) (has:links OR has:media OR has:geo)", Dialect::Rule),
    ("a (has:mentions OR has:hashtags) (is:retweet OR is:reply OR is:quote)", Dialect::Rule),
    ("i sample:50", Dialect::Rule),
    ("bounding_box:[-10 40 10 50] OR point_radius:[139.69 35.68 50km]", Dialect::Rule),
    ("東京 OR 大阪 OR タワー OR ไทย OR 人 OR الإنسان OR 👍", Dialect::Rule),
    ("love -hate -\"so bad\" -#fail -@spam", Dialect::Rule),
];

fn fixed_rules() -> (&'static Matcher, &'static ReferenceMatcher) {
    static RULES: OnceLock<(Matcher, ReferenceMatcher)> = OnceLock::new();
    let (m, r) = RULES.get_or_init(|| {
        let parser = Parser::new();
        let rules: Vec<Rule> = FIXED_RULES
            .iter()
            .map(|(text, d)| parser.parse(text, *d).unwrap_or_else(|e| panic!("{text}: {e}")))
            .collect();
        (Matcher::new(&rules), ReferenceMatcher::new(rules))
    });
    (m, r)
}

/// Checks each matcher (with its optional renumbering: rule `i` of the matcher is rule
/// `map[i]` of the reference) against the reference on `msg`; scratches are reused.
fn assert_matchers_agree(
    matchers: &[(&Matcher, Option<&[usize]>)],
    reference: &ReferenceMatcher,
    msg: &Message,
    scratches: &mut [&mut Scratch],
) {
    let want: Vec<u32> = reference.matching(msg).into_iter().map(|i| i as u32).collect();
    let prepared_fast: Vec<u32> = reference
        .matching_prepared(&NormalizedMessage::of(msg))
        .into_iter()
        .map(|i| i as u32)
        .collect();
    let describe = || {
        reference
            .rules()
            .iter()
            .enumerate()
            .map(|(i, r)| format!("  {i}: {r}  [{:?}] {:?}", r.dialect(), r.root()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        prepared_fast,
        want,
        "reference on prepare vs prepare_reference differs for {msg:?}\nrules:\n{}",
        describe()
    );
    for (k, ((matcher, map), scratch)) in matchers.iter().zip(scratches.iter_mut()).enumerate() {
        let mut got: Vec<u32> = matcher.find(msg, scratch).to_vec();
        if let Some(map) = map {
            got = got.iter().map(|&i| map[i as usize] as u32).collect();
            got.sort_unstable();
        }
        assert_eq!(got, want, "matcher #{k} vs reference for {msg:?}\nrules:\n{}", describe());
    }
}

// ---------------------------------------------------------------------------------------------
// match_vs_reference: a byte-driven decoder of rule sets and messages
// ---------------------------------------------------------------------------------------------

/// Reads the fuzzer's bytes as a stream of choices; zeros once the bytes run out, so every
/// input decodes to something and shorter inputs give simpler cases.
struct Choices<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Choices<'a> {
    fn byte(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// Up to `max` raw bytes of the input as lossy UTF-8 (where dictionary tokens land).
    fn literal(&mut self, max: usize) -> String {
        let n = self.below(max + 1);
        let from = self.pos.min(self.data.len());
        let to = (self.pos + n).min(self.data.len());
        self.pos += n;
        String::from_utf8_lossy(&self.data[from..to]).into_owned()
    }

    /// A number in `lo..=hi` with two decimals, or out of range one time in eight.
    fn coordinate(&mut self, lo: f64, hi: f64) -> f64 {
        let raw = f64::from(self.u16()) / 65535.0;
        let x = lo + raw * (hi - lo);
        match self.below(16) {
            0 => x * 2.0,
            1 => lo,
            2 => hi,
            _ => (x * 100.0).round() / 100.0,
        }
    }
}

/// Words shared by rules and messages: ASCII, accents (composed and decomposed), Greek, ß,
/// no-space scripts (Han, Kana, Thai), Arabic, Korean, emoji (sequences, modifiers, flags),
/// punctuated forms, digits.
const VOCAB: &[&str] = &[
    "apple",
    "pie",
    "gnip",
    "call",
    "cola",
    "coca",
    "snow",
    "the",
    "a",
    "twitter",
    "api",
    "cat",
    "meme",
    "grumpy",
    "example",
    "com",
    "wii",
    "fit",
    "x1",
    "42",
    "iphone",
    "iPhone",
    "東京",
    "東",
    "京",
    "タワー",
    "大東京",
    "欲しい",
    "人",
    "ภาษา",
    "ไทย",
    "🍕",
    "👍",
    "🏽",
    "👍🏽",
    "🇫🇷",
    "straße",
    "STRASSE",
    "ΟΔΟΣ",
    "οδος",
    "touché",
    "touche\u{301}",
    "touche",
    "diacrítica",
    "السلام",
    "الإنسان",
    "서울",
    "İstanbul",
    "c",
    "love",
    "OR",
    "or",
    "AND",
];

/// Pieces only messages have: white space of every kind, punctuation, URL parts, entity
/// sigils, default-ignorables, a control, a combining mark.
const NOISE: &[&str] = &[
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\n",
    "\u{a0}",
    "\u{3000}",
    ", ",
    ". ",
    "!",
    "-",
    "'s",
    "’s",
    "_",
    "(",
    ")",
    "\"",
    "#",
    "@",
    "$",
    "http://",
    "https://www.",
    "HTTP://WWW.",
    "www.",
    ".com/",
    "/",
    "\u{200b}",
    "\u{ad}",
    "\u{fe0f}",
    "\u{1}",
    "\u{0}",
    "\u{301}",
    "RT ",
    "c++",
    "~",
    "：",
    "、",
    "。",
];

const USERS: &[&str] = &["alice", "Bob", "@carol", "42", "bob", "ALICE"];
const LANGS: &[&str] = &["en", "EN", "ja", "zh-Hant", "zh-hant", "zh", "", "th"];
const URLS: &[&str] = &[
    "https://www.example.com/apple-pie",
    "example.com",
    "http://twitter.com",
    "https://en.wikipedia.org/wiki/Snow",
    "www.example.com/foobarbaz",
    "pic.example.org/snow.jpg",
    "http://東京.jp/タワー",
    "https://x.y/🍕",
];
const CONTAINS: &[&str] =
    &["pp", "ple pi", "京タ", "e.co", "🍕", "phone", "a", "tter", "'s", "ภา", "ß", "ss", "/x"];
const POINTS: &[(f64, f64)] = &[
    (0.0, 45.0),
    (-10.0, 40.0),
    (10.0, 50.0),
    (2.35, 48.85),
    (2.35, 49.2),
    (139.69, 35.68),
    (180.0, 90.0),
    (-180.0, -90.0),
];
const BOXES: &[&str] = &["[-10 40 10 50]", "[0 45 3 49]", "[-180 -90 180 90]", "[139 35 140 36]"];
const RADII: &[&str] =
    &["[2.35 48.85 50km]", "[139.69 35.68 10mi]", "[0 45 1km]", "[-10 40 0.5km]"];

fn word(c: &mut Choices<'_>) -> String {
    if c.below(16) == 0 {
        let lit = c.literal(12);
        if !lit.is_empty() {
            return lit;
        }
    }
    c.pick(VOCAB).to_string()
}

fn space(c: &mut Choices<'_>) -> &'static str {
    c.pick(&[" ", " ", " ", "  ", "\u{3000}", "\t"])
}

fn rule_leaf(c: &mut Choices<'_>, out: &mut String) {
    match c.below(22) {
        0..=5 => out.push_str(&word(c)),
        6 => {
            let sep = c.pick(&["-", ".", "'", "_", ""]);
            out.push_str(&format!("{}{sep}{}", word(c), word(c)));
        }
        7 => out.push_str(&format!("\"{} {}\"", word(c), word(c))),
        8 => {
            let sep = c.pick(NOISE);
            out.push_str(&format!("\"{}{sep}{} {}\"", word(c), word(c), word(c)));
        }
        9 => out.push_str(&format!("\"{} {}\"~{}", word(c), word(c), c.below(8))),
        10 => out.push_str(&format!("\"{} {} {}\"~{}", word(c), word(c), word(c), c.below(7))),
        11 => {
            let sigil = c.pick(&['#', '@', '$']);
            out.push(sigil);
            out.push_str(&word(c));
        }
        12 => {
            let op = c.pick(&["from", "to"]);
            out.push_str(&format!("{op}:{}", c.pick(USERS)));
        }
        13 => out.push_str(&format!("url:\"{}.{}\"", word(c), word(c))),
        14 => out.push_str(&format!("url:{}", word(c))),
        15 => out.push_str(&format!("contains:\"{}\"", c.pick(CONTAINS))),
        16 => out.push_str(&format!("lang:{}", c.pick(LANGS))),
        17 => {
            let v = c.pick(&["links", "mentions", "hashtags", "media", "geo"]);
            out.push_str(&format!("has:{v}"));
        }
        18 => {
            let v = c.pick(&["retweet", "reply", "quote"]);
            out.push_str(&format!("is:{v}"));
        }
        19 => out.push_str(&format!("sample:{}", 1 + c.below(100))),
        20 => match c.below(4) {
            0 => out.push_str(&format!("bounding_box:{}", c.pick(BOXES))),
            1 => out.push_str(&format!("point_radius:{}", c.pick(RADII))),
            2 => {
                let (w, s) = (c.coordinate(-180.0, 180.0), c.coordinate(-90.0, 90.0));
                let (e, n) = (c.coordinate(w, 180.0), c.coordinate(s, 90.0));
                out.push_str(&format!("bounding_box:[{w} {s} {e} {n}]"));
            }
            _ => {
                let (lon, lat) = (c.coordinate(-180.0, 180.0), c.coordinate(-90.0, 90.0));
                let r = f64::from(c.u16()) / 10.0;
                let unit = c.pick(&["km", "mi"]);
                out.push_str(&format!("point_radius:[{lon} {lat} {r}{unit}]"));
            }
        },
        _ => out.push_str(&c.literal(24)),
    }
}

fn rule_expr(c: &mut Choices<'_>, depth: u32, out: &mut String) {
    let kind = if depth >= 3 { 0 } else { c.below(10) };
    match kind {
        0..=4 => rule_leaf(c, out),
        5 | 6 => {
            for i in 0..2 + c.below(2) {
                if i > 0 {
                    out.push_str(space(c));
                }
                if c.below(4) == 0 {
                    out.push('-');
                }
                rule_expr(c, depth + 1, out);
            }
        }
        7 | 8 => {
            for i in 0..2 + c.below(2) {
                if i > 0 {
                    out.push_str(c.pick(&[" OR ", " OR ", "  OR\u{3000}", ")OR(", " OR("]));
                }
                rule_expr(c, depth + 1, out);
            }
        }
        _ => {
            out.push('(');
            rule_expr(c, depth + 1, out);
            out.push(')');
        }
    }
}

fn track_value(c: &mut Choices<'_>) -> String {
    let mut out = String::new();
    for p in 0..1 + c.below(4) {
        if p > 0 {
            out.push_str(c.pick(&[",", ", ", " ,"]));
        }
        for t in 0..1 + c.below(3) {
            if t > 0 {
                out.push_str(space(c));
            }
            match c.below(8) {
                0 => out.push_str(c.pick(&[
                    "c++",
                    "$acme",
                    "#meme",
                    "@bob",
                    "example.com",
                    "example.com/x",
                    "!!!",
                    "hi🍕",
                    "apple's",
                    "twitter’s",
                    "www.example.com",
                    "touché.",
                    "東京!",
                ])),
                1 => out.push_str(&c.literal(12)),
                _ => out.push_str(&word(c)),
            }
        }
    }
    out
}

fn text(c: &mut Choices<'_>, max_pieces: usize) -> String {
    let mut out = String::new();
    for _ in 0..c.below(max_pieces + 1) {
        match c.below(8) {
            0..=3 => out.push_str(&word(c)),
            4..=6 => out.push_str(c.pick(NOISE)),
            _ => out.push_str(&c.literal(16)),
        }
    }
    out
}

fn opt_list(c: &mut Choices<'_>, items: &[&str]) -> Option<Vec<String>> {
    match c.below(4) {
        0 | 1 => None,
        2 => Some(Vec::new()),
        _ => Some(
            (0..1 + c.below(3))
                .map(|_| if c.below(4) == 0 { word(c) } else { c.pick(items).to_string() })
                .collect(),
        ),
    }
}

fn opt_urls(c: &mut Choices<'_>) -> Option<Vec<UrlEntity>> {
    match c.below(4) {
        0 | 1 => None,
        2 => Some(Vec::new()),
        _ => Some(
            (0..1 + c.below(2))
                .map(|_| {
                    let mut u = UrlEntity::new(c.pick(URLS));
                    match c.below(4) {
                        0 => u.display_url = None,
                        1 => u.expanded_url = None,
                        2 => u.display_url = Some(c.pick(URLS).to_string()),
                        _ => {}
                    }
                    u
                })
                .collect(),
        ),
    }
}

fn message(c: &mut Choices<'_>) -> Message {
    let id = c.u16().to_string();
    let mut m = Message::new(id, text(c, 16));
    let flags = c.byte();
    if flags & 1 != 0 {
        m = m.with_quoted_text(text(c, 6));
    }
    if flags & 2 != 0 {
        m.retweeted_text = Some(text(c, 6));
    }
    m.is_retweet = flags & 4 != 0;
    if flags & 8 != 0 {
        m.is_reply = true;
        m.in_reply_to_user = Some(c.pick(USERS).to_string());
        m.in_reply_to_user_id = Some(c.pick(&["7", "42"]).to_string());
    }
    m.is_quote |= flags & 16 != 0;
    m.user = match c.below(8) {
        0 | 1 => None,
        2 => Some(word(c)),
        _ => Some(c.pick(USERS).to_string()),
    };
    m.user_id = c.pick(&[None, Some("42"), Some("7")]).map(str::to_string);
    m.lang = if c.below(3) == 0 { None } else { Some(c.pick(LANGS).to_string()) };
    m.hashtags = opt_list(c, &["meme", "Apple", "#thanku", "東京", "twitter", "ΟΔΟΣ"]);
    m.mentions = opt_list(c, USERS);
    m.cashtags = opt_list(c, &["acme", "ACME", "5", "$acme"]);
    m.urls = opt_urls(c);
    m.media = opt_urls(c);
    m.coordinates = match c.below(5) {
        0 | 1 => None,
        2 | 3 => Some(c.pick(POINTS)),
        _ => Some((c.coordinate(-180.0, 180.0), c.coordinate(-90.0, 90.0))),
    };
    m.place = match c.below(6) {
        0..=2 => None,
        3 => Some(GeoBox { west: 0.0, south: 45.0, east: 3.0, north: 49.0 }),
        4 => Some(GeoBox { west: 139.0, south: 35.0, east: 140.5, north: 36.0 }),
        _ => {
            let (w, s) = (c.coordinate(-180.0, 180.0), c.coordinate(-90.0, 90.0));
            let (e, n) = (c.coordinate(w, 180.0), c.coordinate(s, 90.0));
            Some(GeoBox { west: w, south: s, east: e, north: n })
        }
    };
    m
}

/// Decodes a rule set, messages and registry operations from the fuzzer's bytes, in one of
/// two modes.
///
/// Text mode, for hand-written seeds: UTF-8 starting with `%%`, then lines `r RULE` (rule
/// dialect), `t TRACK` (track dialect), `m TEXT` (a message with only a text) and `j JSON` (a
/// message read by [`Message::from_json`]); other lines are ignored.
///
/// Byte mode, anything else: a hash key, 1-10 rule texts of both dialects generated from a
/// vocabulary, operators and raw input bytes, 1-4 messages with every field set or not, and
/// the remaining bytes as registry operations (text mode has none: every rule is added).
///
/// Rules that do not parse and messages that do not read are dropped.
pub fn decode_case(data: &[u8]) -> Case<'_> {
    if let Some(text) = data.strip_prefix(b"%%").and_then(|d| std::str::from_utf8(d).ok()) {
        let (mut rules, mut messages) = (Vec::new(), Vec::new());
        for line in text.lines() {
            match line.split_at_checked(2) {
                Some(("r ", r)) if rules.len() < 16 => rules.extend(Rule::parse(r).ok()),
                Some(("t ", t)) if rules.len() < 16 => rules.extend(Rule::parse_track(t).ok()),
                Some(("m ", m)) if messages.len() < 8 => {
                    messages.push(Message::new(messages.len().to_string(), m))
                }
                Some(("j ", j)) if messages.len() < 8 => {
                    messages.extend(Message::from_json(j).ok())
                }
                _ => {}
            }
        }
        return Case { rules, messages, seed: (1, 2), ops: &[] };
    }
    let mut c = Choices { data, pos: 0 };
    let seed = (u64::from(c.u16()), u64::from(c.u16()));
    let mut rules = Vec::new();
    for _ in 0..1 + c.below(10) {
        let parsed = if c.below(4) == 0 {
            Rule::parse_track(&track_value(&mut c))
        } else {
            let mut t = String::new();
            rule_expr(&mut c, 0, &mut t);
            Rule::parse(&t)
        };
        rules.extend(parsed.ok());
    }
    let messages = (0..1 + c.below(4)).map(|_| message(&mut c)).collect();
    Case { rules, messages, seed, ops: data.get(c.pos..).unwrap_or(&[]) }
}

/// A decoded differential case.
pub struct Case<'a> {
    /// The rules (all parsed).
    pub rules: Vec<Rule>,
    /// The messages.
    pub messages: Vec<Message>,
    /// A hash key for the matchers built with one.
    pub seed: (u64, u64),
    /// The bytes left, which drive the live registry's adds and removes.
    pub ops: &'a [u8],
}

/// A rule set and messages decoded from the bytes ([`decode_case`]): [`Matcher::find`] equals
/// [`ReferenceMatcher::matching`] for every message, for a matcher built with
/// [`Matcher::new`] and for one built with a fixed hash key from the input over the rules in
/// reverse order (results mapped back), each reusing its [`Scratch`] from message to message;
/// the reference gives the same on a message prepared by the fast path; and a live
/// [`Registry`] driven by adds, removes, replacements, batch loads and compactions decoded from
/// the input (tiny delta, layer and tombstone limits, merges in the writing thread) finds
/// exactly the live rules the reference finds, at random points and at the end.
pub fn check_match_vs_reference(data: &[u8]) {
    let Case { rules, messages, seed: (k0, k1), ops } = decode_case(data);
    if rules.is_empty() {
        return;
    }
    let matcher = Matcher::new(&rules);
    let reversed: Vec<usize> = (0..rules.len()).rev().collect();
    let reversed_matcher =
        Matcher::builder().hash_seed(k0, k1).build(reversed.iter().map(|&i| &rules[i]));
    let reference = ReferenceMatcher::new(rules);
    let (mut s1, mut s2) = (Scratch::new(), Scratch::new());
    for m in &messages {
        assert_matchers_agree(
            &[(&matcher, None), (&reversed_matcher, Some(&reversed))],
            &reference,
            m,
            &mut [&mut s1, &mut s2],
        );
    }
    check_registry(&reference, &messages, ops, (k0, k1));
}

/// Drives a [`Registry`] with operations decoded from `ops` and checks it against the
/// reference matcher restricted to the rules live at each check.
fn check_registry(
    reference: &ReferenceMatcher,
    messages: &[Message],
    ops: &[u8],
    (k0, k1): (u64, u64),
) {
    let rules = reference.rules();
    let expected: Vec<Vec<usize>> = messages.iter().map(|m| reference.matching(m)).collect();
    let mut c = Choices { data: ops, pos: 0 };
    let registry = Registry::builder()
        .delta_max(1 + c.below(4))
        .max_layers(2 + c.below(3))
        .tombstones_max(1 + c.below(4))
        .background_merges(false)
        .hash_seed(k0, k1)
        .build();
    // The model: live rule id -> (rule number, subscriber).
    let mut live: BTreeMap<RuleId, (usize, String)> = BTreeMap::new();
    let mut next_rule = 0;
    let mut subscribers = 0;
    let mut scratch = RegistryScratch::new();
    let mut check = |registry: &Registry, live: &BTreeMap<RuleId, (usize, String)>, when: &str| {
        let snapshot = registry.snapshot();
        assert_eq!(snapshot.len(), live.len(), "snapshot size {when}");
        assert_eq!(registry.len(), live.len(), "registry size {when}");
        for (m, want_rules) in messages.iter().zip(&expected) {
            let want: Vec<RuleId> = live
                .iter()
                .filter(|(_, (i, _))| want_rules.contains(i))
                .map(|(&id, _)| id)
                .collect();
            let got: Vec<RuleId> = snapshot.find(m, &mut scratch).iter().map(|r| r.id).collect();
            assert_eq!(
                got,
                want,
                "registry vs reference {when} for {m:?}\nlive: {live:?}\nrules:\n{}",
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| format!("  {i}: {r}  [{:?}]", r.dialect()))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    };
    let log = |s: String| {
        if trace() {
            eprintln!("{s}");
        }
    };
    let n_ops = rules.len() + c.below(12);
    for step in 0..n_ops {
        let any_live = |c: &mut Choices<'_>, live: &BTreeMap<RuleId, (usize, String)>| {
            let k = c.below(live.len().max(1));
            live.keys().nth(k).copied()
        };
        let mut new_subscriber = || {
            subscribers += 1;
            format!("s{}", subscribers % 5)
        };
        match c.below(8) {
            // Add the next rule (or, once all are in, any rule again).
            0..=2 => {
                let i = if next_rule < rules.len() { next_rule } else { c.below(rules.len()) };
                next_rule += 1;
                let sub = new_subscriber();
                let result = registry.subscribe(&sub, rules[i].clone(), None);
                log(format!("subscribe({sub}, rule {i}) -> {result:?}"));
                match result {
                    Ok(id) => {
                        assert!(live.insert(id, (i, sub)).is_none(), "rule id {id} reused");
                    }
                    Err(RegistryError::Duplicate { existing }) => {
                        let (j, s) = &live[&existing];
                        assert_eq!((rules[*j].to_string(), s), (rules[i].to_string(), &sub));
                    }
                    Err(e) => panic!("subscribe: {e}"),
                }
            }
            3 => {
                if let Some(id) = any_live(&mut c, &live) {
                    log(format!("unsubscribe({id})"));
                    registry.unsubscribe(id).expect("live rule");
                    live.remove(&id);
                    assert!(registry.unsubscribe(id).is_err(), "a removed rule removed again");
                }
            }
            4 => {
                if let Some(id) = any_live(&mut c, &live) {
                    let i = c.below(rules.len());
                    let result = registry.replace(id, rules[i].clone(), Some("tag".into()));
                    log(format!("replace({id}, rule {i}) -> {result:?}"));
                    match result {
                        Ok(()) => live.get_mut(&id).expect("live").0 = i,
                        Err(RegistryError::Duplicate { existing }) => {
                            assert!(live.contains_key(&existing))
                        }
                        Err(e) => panic!("replace: {e}"),
                    }
                }
            }
            5 => {
                let batch: Vec<(usize, String)> =
                    (0..1 + c.below(3)).map(|_| (c.below(rules.len()), new_subscriber())).collect();
                let results = registry.subscribe_all(batch.iter().map(|(i, sub)| NewRule {
                    subscriber: sub.clone(),
                    rule: rules[*i].clone(),
                    tag: None,
                }));
                log(format!("subscribe_all({batch:?}) -> {results:?}"));
                for ((i, sub), r) in batch.into_iter().zip(results) {
                    match r {
                        Ok(id) => {
                            assert!(live.insert(id, (i, sub)).is_none(), "rule id {id} reused")
                        }
                        Err(RegistryError::Duplicate { existing }) => {
                            assert!(live.contains_key(&existing))
                        }
                        Err(e) => panic!("subscribe_all: {e}"),
                    }
                }
            }
            6 => {
                if c.below(2) == 0 {
                    log("compact()".into());
                    registry.compact();
                } else {
                    let sub = format!("s{}", c.below(5));
                    let n = registry.remove_subscriber(&sub);
                    log(format!("remove_subscriber({sub}) -> {n}"));
                    let before = live.len();
                    live.retain(|_, (_, s)| *s != sub);
                    assert_eq!(n, before - live.len(), "remove_subscriber({sub})");
                }
            }
            _ => check(&registry, &live, &format!("after step {step}")),
        }
        log(format!(
            "  live {:?}; registry.len() {}; snapshot().len() {}; layer_stats {:?}",
            live.iter().map(|(id, (i, s))| format!("{id}:r{i}@{s}")).collect::<Vec<_>>(),
            registry.len(),
            registry.snapshot().len(),
            registry.layer_stats()
        ));
    }
    check(&registry, &live, "at the end");
}

// ---------------------------------------------------------------------------------------------
// engine_ops: subscribe, unsubscribe, push, a failing sink, a sink that stalls and resumes,
// and a shutdown with a drain deadline, against a model of the delivery guarantees
// ---------------------------------------------------------------------------------------------

const ENGINE_RULES: &[&str] =
    &["apple", "pie", "apple pie", "\"apple pie\"", "#meme", "cat -grumpy", "東京", "apple OR cat"];
const ENGINE_TEXTS: &[&str] = &[
    "apple pie today",
    "grumpy cat #meme",
    "a cat and an apple",
    "大東京タワー",
    "nothing here",
    "Apple! PIE? #Meme",
];
/// Healthy subscribers `s0..s2`, then the failing one, then the one that stalls.
const HEALTHY: usize = 3;
const FAILING: usize = HEALTHY;
const SLOW: usize = HEALTHY + 1;
const ENGINE_SUBS: usize = HEALTHY + 2;

/// What the sinks received (a delivery counts once its `send` returns) and what the model
/// expects, shared with the source's acknowledgements.
#[derive(Default)]
struct EngineModel {
    /// Per subscriber: (position, matching rule ids) of each message its live rules matched.
    expected: Vec<Vec<(u64, Vec<RuleId>)>>,
    /// Per subscriber: the matches it received, in order.
    got: Vec<Vec<(u64, Vec<RuleId>)>>,
    /// Per subscriber: the latest limit notice's count, and the disconnect code received.
    track: Vec<u64>,
    disconnect: Vec<Option<u32>>,
    /// Deliveries after a disconnect.
    after_disconnect: usize,
    read: u64,
    acks: Vec<u64>,
    violations: Vec<String>,
}

impl EngineModel {
    fn record(&mut self, sub: usize, d: &streamtrack::engine::Delivery) {
        use streamtrack::engine::Delivery;
        if self.disconnect[sub].is_some() {
            self.after_disconnect += 1;
        }
        match d {
            Delivery::Match { message, matching_rules } => {
                let position = message.id.parse().expect("ids are positions");
                self.got[sub].push((position, matching_rules.iter().map(|m| m.id).collect()));
            }
            Delivery::Limit { track } => self.track[sub] = *track,
            Delivery::Disconnect { code, .. } => self.disconnect[sub] = Some(code.0),
            _ => {}
        }
    }

    /// `ack(n)`: before `n`, every message a subscriber matched was delivered to it, or its
    /// loss was reported (counted by a limit notice, or the stream ended with a disconnect).
    fn check_ack(&mut self, n: u64) {
        if n > self.read || self.acks.last().is_some_and(|&a| n <= a) {
            self.violations.push(format!("ack {n} after {:?}, {} read", self.acks, self.read));
        }
        self.acks.push(n);
        for sub in 0..ENGINE_SUBS {
            if self.disconnect[sub].is_some() {
                continue;
            }
            let got: HashSet<u64> = self.got[sub].iter().map(|g| g.0).collect();
            let missing =
                self.expected[sub].iter().filter(|e| e.0 < n && !got.contains(&e.0)).count();
            if missing as u64 > self.track[sub] {
                self.violations.push(format!(
                    "ack {n}: subscriber {sub} lacks {missing} matches before it, {} reported",
                    self.track[sub]
                ));
            }
        }
    }
}

fn engine_model() -> EngineModel {
    EngineModel {
        expected: vec![Vec::new(); ENGINE_SUBS],
        got: vec![Vec::new(); ENGINE_SUBS],
        track: vec![0; ENGINE_SUBS],
        disconnect: vec![None; ENGINE_SUBS],
        ..EngineModel::default()
    }
}

type SharedModel = std::sync::Arc<std::sync::Mutex<EngineModel>>;

fn model_lock(m: &SharedModel) -> std::sync::MutexGuard<'_, EngineModel> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Paused or not; a paused sink waits inside `send`.
#[derive(Default)]
struct Gate {
    paused: std::sync::Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Gate {
    fn set(&self, paused: bool) {
        *self.paused.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = paused;
        self.changed.notify_all();
    }
    fn pass(&self) {
        let mut p = self.paused.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while *p {
            p = self.changed.wait(p).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }
}

/// Records what it is sent in the model; waits at its gate, or fails on its `fail_at`-th
/// delivery (counting from 1), if it has one.
struct ModelSink {
    sub: usize,
    model: SharedModel,
    gate: Option<std::sync::Arc<Gate>>,
    fail_at: Option<u32>,
    seen: u32,
}

impl streamtrack::engine::Sink for ModelSink {
    fn send(
        &mut self,
        d: streamtrack::engine::Delivery,
    ) -> Result<(), streamtrack::engine::SinkError> {
        if let Some(g) = &self.gate {
            g.pass();
        }
        self.seen += 1;
        if self.fail_at.is_some_and(|n| self.seen >= n) {
            return Err(streamtrack::engine::SinkError::new("injected failure"));
        }
        model_lock(&self.model).record(self.sub, &d);
        Ok(())
    }
}

/// Counts what the engine read, and checks each acknowledgement against the model.
struct ModelSource {
    inner: streamtrack::engine::ChannelSource,
    model: SharedModel,
}

impl streamtrack::engine::Source for ModelSource {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<streamtrack::engine::SourceStatus, streamtrack::engine::SourceError> {
        let status = self.inner.next_batch(out, max)?;
        model_lock(&self.model).read += out.len() as u64;
        Ok(status)
    }
    fn ack(&mut self, processed: u64) {
        model_lock(&self.model).check_ack(processed);
    }
}

/// `engine_ops`: byte 0 chooses when the failing sink fails and the stalling subscriber's
/// queue size; each further byte (at most 64) is an operation: subscribe, unsubscribe, stall
/// or resume the slow sink, push a message. The engine runs with the default policy
/// (`Block`) and a 30 ms drain deadline, and is shut down at the end, possibly with the
/// slow sink stalled. Checked: each healthy subscriber gets exactly the messages its live
/// rules matched when pushed (with the rule ids), in order, then one disconnect; the slow
/// one gets a prefix of its matches, and anything it lost is reported or never
/// acknowledged; no acknowledgement runs ahead of a delivery or a reported loss.
pub fn check_engine_ops(data: &[u8]) {
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};
    use streamtrack::engine::{channel_source, Engine, SubscriberConfig};

    let rules: Vec<Rule> = ENGINE_RULES.iter().map(|r| Rule::parse(r).unwrap()).collect();
    let registry = Registry::builder().delta_max(2).max_layers(2).background_merges(false).build();
    let (tx, inner) = channel_source(256);
    let model: SharedModel = Arc::new(Mutex::new(engine_model()));
    let first = data.first().copied().unwrap_or(2);
    let gate = Arc::new(Gate::default());
    let name = |s: usize| match s {
        FAILING => "failing".to_string(),
        SLOW => "slow".to_string(),
        s => format!("s{s}"),
    };
    let mut builder = Engine::builder(registry.clone())
        .matcher_threads(2)
        .drain_timeout(Duration::from_millis(30));
    for s in 0..ENGINE_SUBS {
        let sink = ModelSink {
            sub: s,
            model: model.clone(),
            gate: (s == SLOW).then(|| gate.clone()),
            fail_at: (s == FAILING).then(|| u32::from(first % 8) + 1),
            seen: 0,
        };
        let config = SubscriberConfig::new().capacity(if s == SLOW {
            usize::from(first / 8 % 8) + 1
        } else {
            1024
        });
        builder = builder.attach_with(&name(s), sink, config);
    }
    let engine = builder.start(ModelSource { inner, model: model.clone() }).expect("starts");

    let wait_processed = |pushed: u64| {
        let start = Instant::now();
        while engine.stats().processed < pushed {
            assert!(start.elapsed() < Duration::from_secs(10), "engine stalled");
            std::thread::yield_now();
        }
    };
    let mut live: Vec<Vec<(RuleId, usize)>> = vec![Vec::new(); ENGINE_SUBS];
    let mut pushed = 0u64;
    let mut paused = false;
    for op in data.iter().skip(1).take(64) {
        let (kind, arg) = (op % 8, usize::from(op / 8));
        match kind {
            // While the slow sink stalls the emission may lag behind; rules change only when
            // it has caught up, so that the model knows which rules applied to a message.
            0 | 1 if !paused => {
                let s = arg % ENGINE_SUBS;
                let r = (arg / ENGINE_SUBS) % rules.len();
                if let Ok(id) = registry.subscribe(&name(s), rules[r].clone(), None) {
                    live[s].push((id, r));
                }
            }
            2 if !paused => {
                let s = arg % ENGINE_SUBS;
                if !live[s].is_empty() {
                    let k = (arg / ENGINE_SUBS) % live[s].len();
                    let (id, _) = live[s].remove(k);
                    registry.unsubscribe(id).expect("live rule");
                }
            }
            3 => {
                paused = !paused;
                gate.set(paused);
                if !paused {
                    wait_processed(pushed);
                }
            }
            0..=3 => {}
            _ => {
                let msg = Message::new(pushed.to_string(), ENGINE_TEXTS[arg % ENGINE_TEXTS.len()]);
                {
                    let mut m = model_lock(&model);
                    for (s, rules_of) in live.iter().enumerate() {
                        let mut ids: Vec<RuleId> = rules_of
                            .iter()
                            .filter(|&&(_, r)| streamtrack::reference::matches(&rules[r], &msg))
                            .map(|&(id, _)| id)
                            .collect();
                        ids.sort();
                        if !ids.is_empty() {
                            m.expected[s].push((pushed, ids));
                        }
                    }
                }
                tx.send(msg).expect("engine reads");
                pushed += 1;
                if !paused {
                    wait_processed(pushed);
                }
            }
        }
    }
    drop(tx);
    let finished = engine.shutdown();
    // What the sinks had when the engine returned; then the stalled sink may go.
    let mut m = std::mem::replace(&mut *model_lock(&model), engine_model());
    gate.set(false);
    // A shutdown stops reading: messages pushed during a stall may not have been read.
    let read = finished.stats.received;
    assert!(read <= pushed && (paused || read == pushed), "{read} of {pushed} read");
    for e in &mut m.expected {
        e.retain(|x| x.0 < read);
    }
    assert!(m.violations.is_empty(), "{:?}", m.violations);
    assert_eq!(m.after_disconnect, 0, "nothing follows a disconnect");
    assert_eq!(finished.stats.acked, m.acks.last().copied().unwrap_or(0));
    for s in 0..ENGINE_SUBS {
        let st = finished.stats.subscriber(&name(s)).expect("figures");
        assert_eq!(st.matched, st.delivered + st.dropped, "{st:?}");
    }
    for s in 0..HEALTHY {
        assert_eq!(m.got[s], m.expected[s], "subscriber s{s}");
        assert!(matches!(m.disconnect[s], Some(1 | 5)), "s{s}: {:?}", m.disconnect[s]);
        assert_eq!(m.track[s], 0, "s{s} lost nothing");
    }
    let slow = &m.got[SLOW];
    assert_eq!(slow[..], m.expected[SLOW][..slow.len()], "the slow subscriber gets a prefix");
    if !paused {
        assert_eq!(slow.len(), m.expected[SLOW].len(), "resumed: the slow subscriber lost nothing");
        assert!(matches!(m.disconnect[SLOW], Some(1 | 5)), "{:?}", m.disconnect[SLOW]);
    } else if let Some(code) = m.disconnect[SLOW] {
        // Given up on and told so: its losses were counted first.
        assert_eq!(code, 13);
        assert_eq!(m.track[SLOW], (m.expected[SLOW].len() - slow.len()) as u64);
    }
    if !paused && m.got[FAILING].len() == m.expected[FAILING].len() {
        assert_eq!(finished.stats.acked, read, "nothing lost: everything acknowledged");
    }
}

// ---------------------------------------------------------------------------------------------
// explain: its verdict equals the compiled matcher's and the reference's
// ---------------------------------------------------------------------------------------------

/// A rule (rule dialect, or track dialect after a leading `T`), a NUL byte, then a message as
/// JSON (or plain text when it is not JSON): explain's verdict equals the compiled matcher's
/// and the reference's, its tree's root agrees, and printing it never panics.
pub fn check_explain(data: &[u8]) {
    let Ok(data) = std::str::from_utf8(data) else { return };
    let Some((rule, msg)) = data.split_once('\0') else { return };
    let (rule, dialect) = match rule.strip_prefix('T') {
        Some(r) => (r, Dialect::Track),
        None => (rule, Dialect::Rule),
    };
    let Ok(rule) = Parser::new().parse(rule, dialect) else { return };
    let msg = Message::from_json(msg).unwrap_or_else(|_| Message::new("1", msg));
    let e = streamtrack::explain::explain(&rule, &msg);
    let compiled = !Matcher::new([&rule]).find(&msg, &mut Scratch::new()).is_empty();
    assert_eq!(e.matched, compiled, "explain vs compiled: {rule} on {msg:?}");
    assert_eq!(e.matched, streamtrack::reference::matches(&rule, &msg), "explain vs reference");
    assert_eq!(e.tree.matched, e.matched);
    let _ = e.to_string();
}
