//! `docs/rule-language.md`, the details of sections 2 to 5: one test (or more) per bullet,
//! through the reference matcher.

use streamtrack::message::{GeoBox, UrlEntity};
use streamtrack::normalize::{NormalizedMessage, Tokens, UrlMode};
use streamtrack::reference::fnv1a64;
use streamtrack::rule::{Parser, RuleErrorKind};
use streamtrack::{Message, Rule};

fn rule(r: &str) -> Rule {
    Rule::parse(r).unwrap_or_else(|e| panic!("{r:?}: {e}"))
}

fn track(r: &str) -> Rule {
    Rule::parse_track(r).unwrap_or_else(|e| panic!("{r:?}: {e}"))
}

fn hits(r: &Rule, msg: &Message) -> bool {
    streamtrack::reference::matches(r, msg)
}

fn text(t: &str) -> Message {
    Message::new("1", t)
}

fn err(r: &str) -> RuleErrorKind {
    Rule::parse(r).expect_err(r).kind().clone()
}

fn words(t: &str) -> Vec<String> {
    Tokens::of(t, UrlMode::Canonicalize).word_texts().map(String::from).collect()
}

// ---- Text ----

#[test]
fn case_is_full_case_folding_in_text_rules_and_operator_values() {
    assert!(hits(&rule("STRASSE"), &text("die straße")));
    assert!(hits(&rule("straße"), &text("DIE STRASSE")));
    assert!(hits(&rule("ΟΔΟΣ"), &text("μια οδος")));
    assert!(!hits(&track("ΟΔΟΣ"), &text("μια οδός")), "accents stay significant");
    assert!(hits(&rule("from:ALICE"), &text("hi").with_user("alice")));
    assert!(hits(&rule("#RUST"), &text("#rust")));
    assert!(hits(&rule("apple lang:EN"), &text("apple").with_lang("en")));
}

#[test]
fn nfc_makes_decomposed_and_composed_equal_but_accents_matter() {
    assert!(hits(&rule("touché"), &text("touche\u{301}")));
    assert!(hits(&rule("touche\u{301}"), &text("touché")));
    assert!(!hits(&rule("touché"), &text("touche")));
    assert!(!hits(&rule("touche"), &text("touché")));
}

#[test]
fn white_space_is_the_unicode_property() {
    assert_eq!(words("a\tb\u{A0}c\u{3000}d\u{2003}e"), ["a", "b", "c", "d", "e"]);
    // In the track dialect white space separates terms (AND), so both words are needed.
    let r = track("apple\u{3000}pie");
    assert!(hits(&r, &text("pie made of apple")));
    assert!(!hits(&r, &text("apple tart")));
    // NBSP splits raw tokens: `c++` is a whole raw token after it.
    assert!(hits(&track("c++"), &text("I\u{A0}c++")));
}

#[test]
fn default_ignorables_are_removed_in_text_and_rules() {
    assert!(hits(&rule("bomb"), &text("b\u{200B}omb")));
    assert!(hits(&rule("bomb"), &text("bo\u{AD}mb")));
    assert!(hits(&rule("bomb"), &text("b\u{2060}o\u{FEFF}m\u{200D}b\u{FE0F}")));
    assert!(hits(&rule("bo\u{200C}mb"), &text("bomb")));
    assert!(hits(&track("b\u{200B}omb"), &text("BOMB")));
    assert!(hits(&rule("bomb"), &text("b\u{E0041}omb")), "tag characters are ignorable");
}

#[test]
fn control_characters_split_words_and_never_join_a_match() {
    assert_eq!(words("foo\u{1}bar\u{0}baz"), ["foo", "bar", "baz"]);
    assert!(hits(&rule("bar"), &text("foo\u{1}bar")));
    assert!(!hits(&rule("\"foo bar\""), &text("foo\u{1}bar")));
    assert!(!hits(&rule("foobar"), &text("foo\u{0}bar")));
}

#[test]
fn every_emoji_is_a_word_of_its_own() {
    assert_eq!(words("I like🍕"), ["i", "like", "🍕"]);
    assert_eq!(words("👍🏽"), ["👍", "🏽"]);
    assert!(hits(&rule("👍"), &text("great 👍🏽")));
    assert!(hits(&rule("🍕"), &text("pizza🍕time")));
    // Flags split into regional indicators; the rule matches them in sequence.
    assert_eq!(words("🇫🇷"), ["🇫", "🇷"]);
    assert!(hits(&rule("🇫🇷"), &text("vive la 🇫🇷!")));
    assert!(!hits(&rule("🇫🇷"), &text("🇷🇫")));
    // ASCII #, * and digits are not emoji.
    assert_eq!(words("#1*"), ["1"]);
}

#[test]
fn no_space_scripts_match_inside_runs_and_at_script_changes() {
    assert!(hits(&rule("iphone"), &text("iPhone欲しい")));
    assert!(hits(&rule("東京"), &text("大東京タワー")));
    assert!(hits(&track("東京"), &text("東京タワーに行った")));
    assert!(hits(&rule("タワー"), &text("東京タワーに行った")));
    assert!(hits(&rule("ภาษา"), &text("ภาษาไทยง่าย")));
    assert!(!hits(&rule("京都"), &text("東京タワー")));
    assert!(hits(&rule("\"東京タワー\""), &text("大東京タワーに")));
    // Script change is a boundary but a Latin word still needs its own boundaries.
    assert!(!hits(&rule("phone"), &text("iPhone欲しい")));
}

/// The same bullet's last sentences: a combining mark belongs to the character before it, so
/// no match starts at one inside a no-space run or after an emoji, and none ends between an
/// emoji and its mark.
/// The compiled matcher is asked as well (the cases come from fuzzing, where they disagreed).
#[test]
fn a_match_never_starts_at_a_mark_inside_a_run_or_after_an_emoji() {
    let compiled = |r: &Rule, t: &str| {
        let matcher = streamtrack::matcher::Matcher::new(std::slice::from_ref(r));
        !matcher.find(&text(t), &mut streamtrack::matcher::Scratch::new()).is_empty()
    };
    for (r, t, expected) in [
        (rule("\u{5b6}"), "\u{3080}\u{5b6}", false),
        (rule("\u{5b6}"), "\u{5b6}\u{3080}", true),
        (rule("\"\u{5b7}\""), "\u{1f355}\u{5b7}", false),
        (rule("\"\u{1f44d}\""), "\u{1f44d}\u{301}", false),
        (rule("\"\u{1f44d}\""), "\u{1f44d} \u{301}", true),
        (rule("\u{1f44d}"), "\u{1f44d}\u{301}", false),
    ] {
        assert_eq!(hits(&r, &text(t)), expected, "reference: {r:?} in {t:?}");
        assert_eq!(compiled(&r, t), expected, "compiled: {r:?} in {t:?}");
    }
}

#[test]
fn a_keyword_of_several_words_matches_them_consecutively_in_one_field() {
    let r = rule("coca-cola");
    assert!(hits(&r, &text("I like Coca-Cola!")));
    assert!(hits(&r, &text("coca cola")));
    assert!(!hits(&r, &text("cola coca")));
    assert!(!hits(&r, &text("coca zero cola")));
    let mut m = text("coca");
    m.quoted_text = Some("cola".into());
    assert!(!hits(&r, &m), "words must be in one field");
    assert!(hits(&track("hi🍕"), &text("hi 🍕")));
    assert!(!hits(&track("hi🍕"), &text("🍕 hi")));
    assert_eq!(err("!!!"), RuleErrorKind::NoWord);
    // In the track dialect `!!!` is a punctuated term: a whole raw token.
    assert!(hits(&track("!!!"), &text("wow !!!")));
    assert!(!hits(&track("!!!"), &text("wow!!!")));
}

#[test]
fn track_punctuated_terms_equal_a_whole_raw_token() {
    assert!(hits(&track("$acme"), &text("buy $ACME now")));
    assert!(!hits(&track("$acme"), &text("buy acme now")));
    assert!(hits(&track("c++"), &text("I love C++")));
    assert!(!hits(&track("c++"), &text("I love c++11")));
    assert!(hits(&track("#tag"), &text("a #TAG")));
    assert!(!hits(&track("#tag"), &text("a tag")));
    assert!(hits(&track("@x"), &text("hi @x")));
    assert!(!hits(&track("@x"), &text("hi @x.")));
}

// ---- Messages and fields ----

#[test]
fn urls_lose_scheme_and_one_www_and_keep_trailing_punctuation() {
    let t = Tokens::of("see (https://www.Example.com/A). and www.www.x.org", UrlMode::Canonicalize);
    assert_eq!(t.text(), "see (example.com/a). and www.x.org");
    assert!(t.raw_tokens()[1].is_url);
    assert_eq!(
        &"see (https://www.Example.com/A). and www.www.x.org"[t.raw_tokens()[1].source.clone()],
        "(https://www.Example.com/A)."
    );
    // Rule terms are never canonicalised: a scheme or www. in a term never matches a URL.
    assert!(!hits(&track("http://example.com"), &text("http://example.com")));
    assert!(!hits(&track("www.example.com"), &text("www.example.com")));
    assert!(hits(&track("example.com"), &text("https://www.example.com")));
    assert!(matches!(err("https://x.com"), RuleErrorKind::UnknownOperator(_)));
    let e = Rule::parse("https://x.com").unwrap_err();
    assert!(e.message().contains("url:"), "{e}");
}

#[test]
fn fields_are_matched_one_by_one() {
    let mut m = text("I need to call");
    m.quoted_text = Some("gnip again".into());
    assert!(!hits(&rule("\"call gnip\""), &m), "a phrase never spans two fields");
    assert!(hits(&rule("call gnip"), &m), "AND-ed terms may come from different fields");
    let mut rt = text("RT");
    rt.retweeted_text = Some("big snow storm".into());
    assert!(hits(&rule("snow"), &rt));
    assert!(hits(&rule("is:retweet snow"), &rt));
    let mut media = text("look");
    media.media = Some(vec![UrlEntity::new("https://pic.example.org/sunset.jpg")]);
    assert!(hits(&rule("sunset"), &media));
    assert!(!hits(&rule("sunset has:links"), &media), "media are not links");
    assert!(hits(&rule("sunset has:media"), &media));
    let tagged = text("hello").with_hashtags(["SnowDay"]).with_mentions(["WeatherBot"]);
    assert!(hits(&rule("snowday"), &tagged));
    assert!(hits(&rule("weatherbot"), &tagged));
}

#[test]
fn entity_operators_read_the_top_level_message() {
    let mut m = text("hello");
    m.quoted_text = Some("#rust @bob".into());
    assert!(!hits(&rule("#rust"), &m));
    assert!(!hits(&rule("@bob"), &m));
    assert!(hits(&rule("rust"), &m), "the quoted text is still searched by words");
}

#[test]
fn entities_absent_vs_empty_and_extraction() {
    let absent = text("love #Rust and @Alice123, $5 (#paren) a#b http://x.com/#frag");
    let n = NormalizedMessage::of_reference(&absent);
    assert_eq!(n.hashtags.iter().collect::<Vec<_>>(), ["rust", "paren"]);
    assert_eq!(n.mentions.iter().collect::<Vec<_>>(), ["alice123"]);
    assert_eq!(n.cashtags.iter().collect::<Vec<_>>(), ["5"]);
    assert!(n.has_links);
    let empty = text("love #Rust").with_hashtags(Vec::<String>::new());
    assert!(!hits(&rule("#rust"), &empty), "[] means no hashtags");
    assert!(hits(&rule("#rust"), &text("love #Rust")));
    assert!(hits(&rule("#under_score"), &text("#under_score!")));
    // URLs found in the text are the url list when `urls` is absent.
    assert!(hits(&rule("url:\"example.com/a\""), &text("see https://example.com/a")));
    let given =
        text("see https://example.com/a").with_urls(vec![UrlEntity::new("https://other.org")]);
    assert!(!hits(&rule("url:\"example.com\""), &given));
    assert!(hits(&rule("url:other"), &given));
}

#[test]
fn has_and_is_operators() {
    let r = |s: &str| rule(&format!("x {s}"));
    assert!(hits(&r("has:links"), &text("x https://a.b")));
    assert!(!hits(&r("has:links"), &text("x a.b")));
    assert!(hits(&r("has:mentions"), &text("x @a")));
    assert!(hits(&r("has:hashtags"), &text("x #a")));
    assert!(!hits(&r("has:media"), &text("x #a")));
    assert!(hits(&r("has:geo"), &text("x").with_coordinates(1.0, 2.0)));
    let mut placed = text("x");
    placed.place = Some(GeoBox { west: 0.0, south: 0.0, east: 1.0, north: 1.0 });
    assert!(hits(&r("has:geo"), &placed));
    assert!(!hits(&r("has:geo"), &text("x")));
    let mut m = text("x");
    m.is_reply = true;
    assert!(hits(&r("is:reply"), &m));
    assert!(!hits(&r("is:quote"), &m));
    let mut q = text("x");
    q.is_quote = true;
    assert!(hits(&r("is:quote"), &q));
    assert!(hits(&r("is:quote"), &text("x").with_quoted_text("y")));
    let mut rt = text("x");
    rt.is_retweet = true;
    assert!(hits(&r("is:retweet"), &rt));
}

#[test]
fn from_to_and_lang() {
    let mut m = text("hello").with_user("Alice").with_lang("zh-Hant");
    m.user_id = Some("42".into());
    m.in_reply_to_user = Some("Bob".into());
    m.in_reply_to_user_id = Some("7".into());
    assert!(hits(&rule("from:alice"), &m));
    assert!(hits(&rule("from:@Alice"), &m));
    assert!(hits(&rule("from:42"), &m));
    assert!(!hits(&rule("from:bob"), &m));
    assert!(hits(&rule("to:bob"), &m));
    assert!(hits(&rule("to:7"), &m));
    assert!(hits(&rule("hello lang:zh-hant"), &m));
    assert!(!hits(&rule("hello lang:zh"), &m), "the whole tag is needed");
    assert!(!hits(&rule("hello lang:en"), &text("hello")), "no lang matches no lang:");
}

// ---- Rule syntax ----

#[test]
fn structure_quotes_negation_and_or_keyword() {
    assert_eq!(rule("apple OR iphone ipad").to_string(), "apple OR iphone ipad");
    let r = rule("apple OR iphone ipad");
    assert!(hits(&r, &text("apple")));
    assert!(hits(&r, &text("ipad iphone")));
    assert!(!hits(&r, &text("ipad")));
    // lower-case or and AND are keywords.
    assert!(hits(&rule("this or that"), &text("this or that")));
    assert!(!hits(&rule("this or that"), &text("this that")));
    assert!(hits(&rule("salt AND pepper"), &text("salt and pepper")));
    // '-' negates only when directly followed by an operand.
    assert!(hits(&rule("ice-cream"), &text("ice cream")));
    assert!(!hits(&rule("cream -ice"), &text("ice cream")));
    assert_eq!(err("cream - ice"), RuleErrorKind::NoWord);
    // '"' always opens a phrase, even inside a bare token.
    assert_eq!(rule("say\"hello world\"").to_string(), "say \"hello world\"");
    // Parentheses are structural; inside quotes they are text.
    assert!(hits(&rule("\"a (b)\""), &text("x a (b) y")));
}

#[test]
fn operators_and_unknown_operators() {
    let e = Rule::parse("apple foo:bar").unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::UnknownOperator("foo".into()));
    assert!(e.message().contains("from:") && e.message().contains("contains:"), "{e}");
    assert_eq!(e.offset(), 6);
    // Quoting makes it literal.
    assert!(hits(&rule("\"foo:bar\""), &text("foo:bar")));
    // A capitalised name is not an operator name.
    assert!(hits(&rule("Note:"), &text("note")));
}

#[test]
fn anchoring() {
    assert_eq!(err("lang:fr OR apple"), RuleErrorKind::NotAnchored);
    assert_eq!(err("has:links -apple"), RuleErrorKind::NotAnchored);
    assert_eq!(err("-a -b"), RuleErrorKind::NotAnchored);
    assert_eq!(err("has:links"), RuleErrorKind::NotAnchored);
    assert_eq!(err("sample:10"), RuleErrorKind::NotAnchored);
    assert!(Rule::parse("apple (has:media OR has:links)").is_ok());
    assert!(Rule::parse("from:alice -apple").is_ok());
    assert_eq!(err("apple OR -ipad"), RuleErrorKind::NegatedOr);
    assert_eq!(err("(a OR -b) c"), RuleErrorKind::NegatedOr);
    assert_eq!(err("apple -(ipad iphone)"), RuleErrorKind::NegatedGroup);
}

#[test]
fn other_syntax_errors_name_position_and_reason() {
    let cases: &[(&str, RuleErrorKind, usize)] = &[
        ("", RuleErrorKind::Empty, 0),
        ("   ", RuleErrorKind::Empty, 0),
        ("a ()", RuleErrorKind::EmptyGroup, 2),
        ("a OR", RuleErrorKind::MissingOperand, 2),
        ("OR a", RuleErrorKind::MissingOperand, 0),
        ("a OR OR b", RuleErrorKind::MissingOperand, 2),
        ("a from:", RuleErrorKind::MissingValue, 2),
        ("a has:pictures", RuleErrorKind::InvalidValue, 2),
        ("a is:pinned", RuleErrorKind::InvalidValue, 2),
        ("a sample:0", RuleErrorKind::InvalidValue, 2),
        ("a sample:101", RuleErrorKind::InvalidValue, 2),
        ("a bounding_box:[1 2 3]", RuleErrorKind::InvalidValue, 2),
        ("a bounding_box:[10 0 5 1]", RuleErrorKind::InvalidValue, 2),
        ("a point_radius:[0 0 0km]", RuleErrorKind::InvalidValue, 2),
        ("a point_radius:[0 0 5parsecs]", RuleErrorKind::InvalidValue, 2),
        ("a point_radius:[200 0 5km]", RuleErrorKind::InvalidValue, 2),
        ("a \"\"", RuleErrorKind::NoWord, 2),
        ("\"a b\"~", RuleErrorKind::InvalidProximity, 5),
        ("\"a b\"~7", RuleErrorKind::InvalidProximity, 5),
        ("\"a b\"~99999999999999999999999", RuleErrorKind::InvalidProximity, 5),
        ("a\u{1}b", RuleErrorKind::ControlCharacter, 1),
        ("(a", RuleErrorKind::UnbalancedParen, 0),
        ("a)", RuleErrorKind::UnbalancedParen, 1),
        ("a \"b", RuleErrorKind::UnbalancedQuote, 2),
    ];
    for (text, kind, offset) in cases {
        let e = Rule::parse(text).expect_err(text);
        assert_eq!(e.kind(), kind, "{text:?}: {e}");
        assert_eq!(e.offset(), *offset, "{text:?}: {e}");
        assert!(!e.message().is_empty());
    }
    let e = Rule::parse("apple (banana").unwrap_err();
    assert_eq!(e.to_string(), "column 7: unbalanced '(' opened here");
    assert_eq!(e.with_rule_number(17).to_string(), "rule 17, column 7: unbalanced '(' opened here");
}

#[test]
fn rule_length_is_counted_in_code_points() {
    let parser = Parser::builder().max_rule_chars(10).build();
    assert!(
        parser.parse("éééééééééé", streamtrack::Dialect::Rule).is_ok(),
        "10 code points, 20 bytes"
    );
    let e = parser.parse("ééééééééééé", streamtrack::Dialect::Rule).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::TooLong { length: 11, limit: 10 });
}

#[test]
fn exact_phrases() {
    let r = rule("\"call   gnip\"");
    assert_eq!(r.to_string(), "\"call gnip\"");
    assert!(hits(&r, &text("I  need to call\tgnip, again")));
    assert!(!hits(&r, &text("I called gnip")));
    assert!(!hits(&r, &text("recall gnip")));
    assert!(!hits(&r, &text("call gnips")));
    assert!(!hits(&r, &text("call-gnip")));
    assert!(hits(&rule("\"coca-cola\""), &text("Coca-Cola!")));
    assert!(!hits(&rule("\"coca-cola\""), &text("coca cola")));
    assert!(hits(&rule("\"call gnip\""), &text("(call gnip)")));
}

#[test]
fn proximity() {
    let r = rule("\"apple pie\"~2");
    assert!(hits(&r, &text("apple pie")));
    assert!(hits(&r, &text("pie apple")), "any order");
    assert!(hits(&r, &text("apple and pie")));
    assert!(!hits(&r, &text("apple and a pie")));
    assert!(!hits(&rule("\"apple apple\"~3"), &text("apple pie")), "distinct positions");
    assert!(hits(&rule("\"apple apple\"~3"), &text("apple pie apple")));
    assert!(!hits(&rule("\"a b\"~0"), &text("a b")), "two words cannot share one position");
    assert!(Rule::parse("\"a b\"~6").is_ok());
}

#[test]
fn contains_is_a_plain_substring_of_normalised_text() {
    assert!(hits(&rule("contains:phone"), &text("TELEPHONE")));
    assert!(hits(&rule("contains:\"ample.com/x\""), &text("https://www.example.com/x")));
    assert!(!hits(&rule("contains:\"www.example\""), &text("https://www.example.com")));
    assert!(hits(&rule("contains:\"a  b\""), &text("xa \t bx")));
    assert!(hits(&rule("contains:bomb"), &text("b\u{200B}omb")));
}

#[test]
fn sample_is_fnv1a_of_the_id() {
    assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
    assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    let r = rule("x sample:50");
    let mut inside = 0;
    for i in 0..1000 {
        let m = Message::new(i.to_string(), "x");
        let expect = fnv1a64(i.to_string().as_bytes()) % 100 < 50;
        assert_eq!(hits(&r, &m), expect);
        inside += usize::from(expect);
    }
    assert!((400..600).contains(&inside), "about half: {inside}");
    assert!(hits(&rule("x sample:100"), &Message::new("anything", "x")));
}

#[test]
fn geo_operators() {
    let bb = rule("bounding_box:[-10 40 10 50]");
    assert!(hits(&bb, &text("x").with_coordinates(2.35, 48.85)));
    assert!(hits(&bb, &text("x").with_coordinates(10.0, 50.0)), "edges included");
    assert!(!hits(&bb, &text("x").with_coordinates(11.0, 48.0)));
    let mut placed = text("x");
    placed.place = Some(GeoBox { west: 0.0, south: 45.0, east: 5.0, north: 49.0 });
    assert!(hits(&bb, &placed), "a place box entirely inside");
    placed.place = Some(GeoBox { west: 0.0, south: 45.0, east: 15.0, north: 49.0 });
    assert!(!hits(&bb, &placed), "a place box that only overlaps");
    // Track locations accept an overlapping place.
    let loc = Rule::track_filter(
        None,
        &[],
        &[GeoBox { west: -10.0, south: 40.0, east: 10.0, north: 50.0 }],
        &Parser::new(),
    )
    .unwrap();
    assert!(hits(&loc, &placed));
    let pr = rule("point_radius:[2.3522 48.8566 10km]");
    assert!(hits(&pr, &text("x").with_coordinates(2.35, 48.85)));
    assert!(
        !hits(&pr, &text("x").with_coordinates(2.2945 + 0.2, 48.8584)),
        "about 20 km west-east"
    );
    let mi = rule("point_radius:[2.3522 48.8566 10mi]");
    assert!(hits(&mi, &text("x").with_coordinates(2.3522 + 0.2, 48.8566)), "14.7 km < 16.1 km");
    assert!(!hits(&pr, &text("x").with_coordinates(2.3522 + 0.2, 48.8566)), "14.7 km > 10 km");
}

#[test]
fn track_phrases_are_trimmed_measured_in_bytes_and_never_empty() {
    let r = track("  apple pie ,  banana ");
    assert_eq!(r.to_string(), "apple pie,banana");
    let e = Rule::parse_track("a,,b").unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::Empty);
    assert_eq!(e.offset(), 2);
    assert_eq!(Rule::parse_track("a,b,").unwrap_err().kind(), &RuleErrorKind::Empty);
    let sixty = "é".repeat(30);
    assert!(Rule::parse_track(&sixty).is_ok(), "60 bytes");
    let e = Rule::parse_track(&format!("ok,{sixty}é")).unwrap_err();
    assert_eq!(e.kind(), &RuleErrorKind::PhraseTooLong { bytes: 62, limit: 60 });
    assert!(e.message().contains("phrase 2"), "{e}");
    let many = vec!["x"; 401].join(",");
    assert_eq!(
        Rule::parse_track(&many).unwrap_err().kind(),
        &RuleErrorKind::TooManyPhrases { count: 401, limit: 400 }
    );
    assert!(Rule::parse_track(&vec!["x"; 400].join(",")).is_ok());
    // `"` and `-` are ordinary characters in the track dialect.
    assert!(hits(&track("-job"), &text("no -job here")));
    assert!(!hits(&track("-job"), &text("no job here")));
}
