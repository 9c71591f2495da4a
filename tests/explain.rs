//! Explain: the verdict equals the compiled matcher's and the reference's on the cases of the
//! differential tests (same generators as `matcher_vs_reference.rs`, copied), and the reasons
//! of the spec's documented examples (section 6) read right.

use proptest::prelude::*;
use streamtrack::explain::{explain, NodeKind};
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::message::{GeoBox, UrlEntity};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};

fn cases() -> u32 {
    std::env::var("STREAMTRACK_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// Words rules and messages share: ASCII, accented, Greek, German ß, no-space scripts, emoji,
/// punctuated forms, a stop word.
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
    "东京",
    "東京",
    "タワー",
    "大東京",
    "ภาษา",
    "ไทย",
    "🍕",
    "👍",
    "🏽",
    "straße",
    "STRASSE",
    "ΟΔΟΣ",
    "οδος",
    "touché",
    "touche",
    "example",
    "com",
    "iphone",
    "欲しい",
    "wii",
    "fit",
    "nintendo",
    "x1",
    "42",
];

/// Pieces that appear only in messages: punctuation, URLs, entities, white space kinds.
const NOISE: &[&str] = &[
    " ",
    " ",
    " ",
    "  ",
    "\t",
    "\u{a0}",
    "\u{3000}",
    ", ",
    ". ",
    "!",
    "-",
    "'s",
    "_",
    "(",
    ")",
    "\"",
    "#",
    "@",
    "$",
    "http://",
    "https://www.",
    "www.",
    ".com/",
    "/",
    "\u{200b}",
    "\u{ad}",
    "\u{1}",
    "\u{301}",
    "RT ",
    "c++",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(VOCAB).prop_map(String::from)
}

fn leaf() -> BoxedStrategy<String> {
    let w = word;
    prop_oneof![
        8 => w(),
        2 => (w(), w()).prop_map(|(a, b)| format!("{a}-{b}")),
        2 => (w(), w()).prop_map(|(a, b)| format!("\"{a} {b}\"")),
        1 => (w(), w(), w()).prop_map(|(a, b, c)| format!("\"{a}, {b} {c}\"")),
        1 => (w(), w(), 0u8..=6).prop_map(|(a, b, n)| format!("\"{a} {b}\"~{n}")),
        2 => w().prop_map(|a| format!("#{a}")),
        1 => w().prop_map(|a| format!("@{a}")),
        1 => w().prop_map(|a| format!("${a}")),
        1 => prop::sample::select(&["alice", "bob", "42"][..]).prop_map(|u| format!("from:{u}")),
        1 => prop::sample::select(&["alice", "bob", "7"][..]).prop_map(|u| format!("to:{u}")),
        1 => (w(), w()).prop_map(|(a, b)| format!("url:\"{a}.{b}\"")),
        1 => prop::sample::select(&["pp", "ple pi", "京タ", "e.co", "🍕"][..]).prop_map(|s| format!("contains:\"{s}\"")),
        1 => prop::sample::select(&["en", "ja", "zh-hant"][..]).prop_map(|l| format!("lang:{l}")),
        1 => prop::sample::select(&["links", "mentions", "hashtags", "media", "geo"][..]).prop_map(|h| format!("has:{h}")),
        1 => prop::sample::select(&["retweet", "reply", "quote"][..]).prop_map(|h| format!("is:{h}")),
        1 => (1u8..=100).prop_map(|p| format!("sample:{p}")),
        1 => Just("bounding_box:[-10 40 10 50]".to_string()),
        1 => Just("point_radius:[2.35 48.85 50km]".to_string()),
    ]
    .boxed()
}

fn rule_text() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" ")),
            2 => prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" OR ")),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} -{b}")),
            2 => inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn track_text() -> impl Strategy<Value = String> {
    let term = prop_oneof![
        6 => word(),
        1 => prop::sample::select(&["c++", "$acme", "#meme", "@bob", "example.com", "example.com/x", "!!!", "hi🍕", "apple's"][..]).prop_map(String::from),
    ];
    prop::collection::vec(prop::collection::vec(term, 1..3).prop_map(|v| v.join(" ")), 1..4)
        .prop_map(|v| v.join(","))
}

fn any_rule() -> impl Strategy<Value = Option<Rule>> {
    prop_oneof![
        3 => rule_text().prop_map(|t| Rule::parse(&t).ok()),
        1 => track_text().prop_map(|t| Rule::parse_track(&t).ok()),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    let piece = prop_oneof![3 => word(), 2 => prop::sample::select(NOISE).prop_map(String::from)];
    (
        prop::collection::vec(piece.clone(), 0..16).prop_map(|v| v.concat()),
        prop::option::of(prop::collection::vec(piece, 1..6).prop_map(|v| v.concat())),
        prop::option::of(prop::sample::select(&["alice", "Bob", "carol"][..])),
        prop::option::of(prop::sample::select(&["en", "ja", "zh-Hant", "EN"][..])),
        prop::option::of((-20.0f64..20.0, 35.0f64..55.0)),
        0u8..8,
        any::<u16>(),
    )
        .prop_map(|(text, quoted, user, lang, coords, flags, id)| {
            let mut m = Message::new(id.to_string(), text);
            m.user = user.map(String::from);
            if flags & 1 == 1 {
                m.user_id = Some("42".into());
            }
            m.lang = lang.map(String::from);
            m.coordinates = coords;
            if flags & 2 == 2 {
                m.quoted_text = quoted;
            }
            if flags & 4 == 4 {
                m.is_reply = true;
                m.in_reply_to_user = Some("bob".into());
                m.in_reply_to_user_id = Some("7".into());
            }
            match id % 7 {
                0 => m.hashtags = Some(vec!["meme".into(), "Apple".into()]),
                1 => m.urls = Some(vec![UrlEntity::new("https://www.example.com/apple-pie")]),
                2 => m.media = Some(vec![UrlEntity::new("https://pic.example.org/snow.jpg")]),
                3 => {
                    m.place = Some(GeoBox { west: 0.0, south: 45.0, east: 3.0, north: 49.0 });
                    m.coordinates = None;
                }
                _ => {}
            }
            m.is_retweet = id % 11 == 0;
            m
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_global_rejects: cases().max(1024),
        ..ProptestConfig::default()
    })]

    #[test]
    fn explain_verdict_equals_both_matchers(
        rules in prop::collection::vec(any_rule(), 1..24),
        messages in prop::collection::vec(message(), 1..8),
    ) {
        let rules: Vec<Rule> = rules.into_iter().flatten().collect();
        prop_assume!(!rules.is_empty());
        let compiled = Matcher::new(&rules);
        let reference = ReferenceMatcher::new(rules.clone());
        let mut scratch = Scratch::new();
        for m in &messages {
            let by_compiled = compiled.find(m, &mut scratch).to_vec();
            let by_reference = reference.matching(m);
            for (i, r) in rules.iter().enumerate() {
                let e = explain(r, m);
                prop_assert_eq!(e.matched, by_compiled.contains(&(i as u32)), "{} on {:?}", r, m);
                prop_assert_eq!(e.matched, by_reference.contains(&i), "{} on {:?}", r, m);
                prop_assert_eq!(e.tree.matched, e.matched);
                let prefix = if e.matched { "match: " } else { "no match: " };
                prop_assert!(e.reason.starts_with(prefix), "{}", e.reason);
            }
        }
    }
}

#[test]
fn explain_verdict_equals_the_matcher_on_the_generated_workload() {
    use streamtrack_workload::{RuleSetConfig, WorkloadConfig};
    let rules: Vec<Rule> =
        RuleSetConfig::default().rules(300).iter().map(|r| r.parse().unwrap()).collect();
    let messages = WorkloadConfig::default().count(100).messages();
    let compiled = Matcher::new(&rules);
    let mut scratch = Scratch::new();
    for m in &messages {
        let found = compiled.find(m, &mut scratch).to_vec();
        for (i, r) in rules.iter().enumerate() {
            let e = explain(r, m);
            assert_eq!(e.matched, found.contains(&(i as u32)), "{r} on {m:?}");
        }
    }
}

fn reason(rule: &Rule, text: &str) -> (bool, String) {
    let e = explain(rule, &Message::new("1", text));
    (e.matched, e.reason)
}

fn rule(t: &str) -> Rule {
    Rule::parse(t).unwrap()
}

fn track(t: &str) -> Rule {
    Rule::parse_track(t).unwrap()
}

/// A rule, texts it matches, and texts it does not match with the reason given.
type Row = (Rule, &'static [&'static str], &'static [(&'static str, &'static str)]);

/// Section 6 of the spec: every documented row, with the reason a non-match gives.
#[test]
fn documented_examples_explain_right() {
    let rows: &[Row] = &[
        (
            track("Twitter"),
            &["TWITTER", "twitter", "“Twitter”", "twitter.", "#twitter", "@twitter", "http://twitter.com"],
            &[("TwitterTracker", "twitter is absent"), ("#newtwitter", "twitter is absent")],
        ),
        (
            track("Twitter’s"),
            &["I like Twitter’s new design"],
            &[(
                "Someday I’d like to visit @Twitter’s office",
                "twitter’s is absent: no raw token is exactly \"twitter’s\"",
            )],
        ),
        (
            track("twitter api,twitter streaming"),
            &["The Twitter API is awesome", "The twitter streaming service is fast", "Twitter has a streaming API"],
            &[("I’m new to Twitter", "no alternative of (twitter api OR twitter streaming) matched: api is absent; streaming is absent")],
        ),
        (
            track("example.com"),
            &["Someday I will visit example.com"],
            &[("There is no example.com/foobarbaz", "example.com is absent: no raw token is exactly \"example.com\"")],
        ),
        (
            track("example.com/foobarbaz"),
            &["example.com/foobarbaz", "www.example.com/foobarbaz"],
            &[("example.com", "example.com/foobarbaz is absent")],
        ),
        (
            track("www.example.com/foobarbaz"),
            &[],
            &[("www.example.com/foobarbaz", "www.example.com/foobarbaz is absent")],
        ),
        (track("touché"), &[], &[("touche", "touché is absent")]),
        (rule("gnip"), &["I need to call gnip", "Check out gnip's documentation.", "I love the @gnip blog.", "Check out Gnip."], &[("#gniprocks", "gnip is absent")]),
        (rule("cola"), &["Ice cold cola on a hot day", "I like coca-cola!"], &[("I like cocacola!", "cola is absent")]),
        (rule("snow"), &["please let it snow!"], &[("it is finally snowing!", "snow is absent")]),
        (rule("Coachella"), &["Hanging out at #coachella"], &[("NEW.PICS.FROM.COACHELLA2015!", "coachella is absent")]),
        (
            rule("\"call gnip\""),
            &["I need to call gnip, again", "call gnip"],
            &[
                ("I called gnip", "\"call gnip\" is absent: the word \"call\" is absent"),
                ("call-gnip", "\"call gnip\" is absent: the words call gnip are there in sequence, but not as written"),
                ("call_gnip", "\"call gnip\" is absent: the words call gnip are there in sequence, but not as written"),
            ],
        ),
        (
            rule("contains:phone"),
            &["Where is my phone?", "That's a telephone"],
            &[("Pongo la telephono.", "contains:\"phone\" is absent"), ("What is the ph0ne number?", "contains:\"phone\" is absent")],
        ),
        (
            rule("cat #meme -grumpy"),
            &["cat #meme"],
            &[("grumpy cat #meme", "the negation -grumpy fired (grumpy in text at 0..6)")],
        ),
        (rule("diacrítica"), &["diacrítica"], &[("Diacritica", "diacrítica is absent")]),
    ];
    for (r, yes, no) in rows {
        for text in *yes {
            let (m, why) = reason(r, text);
            assert!(m, "{r} should match {text:?}: {why}");
        }
        for (text, want) in *no {
            let (m, why) = reason(r, text);
            assert!(!m, "{r} should not match {text:?}");
            assert!(why.starts_with(&format!("no match: {want}")), "{r} on {text:?}: {why}");
        }
    }
    // Entity rows: the hashtag list is named.
    let m = Message::new("1", "x").with_hashtags(["thankunext"]);
    let e = explain(&rule("#thanku"), &m);
    assert!(!e.matched);
    assert_eq!(e.reason, r#"no match: #thanku is absent: hashtags: ["thankunext"]"#);
    let m = Message::new("1", "x").with_hashtags(["thanku"]);
    assert_eq!(explain(&rule("#thanku"), &m).reason, "match: #thanku in hashtags");
}

#[test]
fn the_tree_mirrors_the_rule_and_names_the_first_failed_clause() {
    let r = rule("apple (pie OR tart) -crumble lang:en");
    let m = Message::new("1", "apple crumble and a tart").with_lang("en");
    let e = explain(&r, &m);
    assert!(!e.matched);
    assert_eq!(e.tree.kind, NodeKind::And);
    let kinds: Vec<NodeKind> = e.tree.children.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [NodeKind::Term, NodeKind::Or, NodeKind::Not, NodeKind::Term]);
    assert_eq!(e.tree.note.as_deref(), Some("clause 3 of 4 failed: -crumble"));
    assert_eq!(e.reason, "no match: the negation -crumble fired (crumble in text at 6..13)");
    // Spans point into the message text.
    let apple = &e.tree.children[0].hits[0];
    assert_eq!((apple.field, &m.text[apple.spans[0].clone()]), ("text", "apple"));
    // A filter that is false says what it read.
    let e = explain(&rule("apple lang:fr"), &Message::new("1", "apple").with_lang("en"));
    assert_eq!(e.reason, "no match: lang:fr is absent: lang en");
    // A match names the terms that made it, with their spans.
    let e = explain(&rule("apple OR pear"), &Message::new("1", "a pear"));
    assert_eq!(e.reason, "match: pear in text at 2..6");
    // A phrase whose words are there but not adjacent.
    let e = explain(&rule("\"apple pie\""), &Message::new("1", "pie and apple"));
    assert_eq!(
        e.reason,
        "no match: \"apple pie\" is absent: the words apple pie are all there, but not adjacent in one field"
    );
    // Proximity: the words are there but too far apart.
    let e = explain(&rule("\"apple pie\"~1"), &Message::new("1", "apple and a pie"));
    assert_eq!(
        e.reason,
        "no match: \"apple pie\"~1 is absent: the words apple pie are all there, but not within 1 in one field"
    );
}
