//! The generators of the differential tests (rules of every shape, messages with every
//! field), shared by `matcher_vs_reference.rs` and `explain.rs` so that explain's verdict is
//! checked on exactly the cases the compiled matcher is.
#![allow(dead_code)]

use proptest::prelude::*;
use streamtrack::message::{GeoBox, UrlEntity};
use streamtrack::{Message, Rule};

/// The proptest settings of the differential properties: `cases()` cases; about 1% of
/// generated rule sets hold no valid rule and are skipped.
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        max_global_rejects: cases().max(1024),
        ..ProptestConfig::default()
    }
}

pub fn cases() -> u32 {
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

pub fn word() -> impl Strategy<Value = String> {
    prop::sample::select(VOCAB).prop_map(String::from)
}

pub fn leaf() -> BoxedStrategy<String> {
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

pub fn rule_text() -> impl Strategy<Value = String> {
    leaf().prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" ")),
            2 => prop::collection::vec(inner.clone(), 2..4).prop_map(|v| v.join(" OR ")),
            2 => (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} -{b}")),
            2 => inner.prop_map(|a| format!("({a})")),
        ]
    })
}

pub fn track_text() -> impl Strategy<Value = String> {
    let term = prop_oneof![
        6 => word(),
        1 => prop::sample::select(&["c++", "$acme", "#meme", "@bob", "example.com", "example.com/x", "!!!", "hi🍕", "apple's"][..]).prop_map(String::from),
    ];
    prop::collection::vec(prop::collection::vec(term, 1..3).prop_map(|v| v.join(" ")), 1..4)
        .prop_map(|v| v.join(","))
}

pub fn any_rule() -> impl Strategy<Value = Option<Rule>> {
    prop_oneof![
        3 => rule_text().prop_map(|t| Rule::parse(&t).ok()),
        1 => track_text().prop_map(|t| Rule::parse_track(&t).ok()),
    ]
}

pub fn message() -> impl Strategy<Value = Message> {
    let piece = prop_oneof![3 => word(), 2 => prop::sample::select(NOISE).prop_map(String::from)];
    (
        prop::collection::vec(piece.clone(), 0..16).prop_map(|v| v.concat()),
        prop::option::of(prop::collection::vec(piece, 1..6).prop_map(|v| v.concat())),
        // Screen names as given (capitals, a leading `@`) and already folded: the presearch
        // looks the folded ones up as they are.
        prop::option::of(prop::sample::select(
            &["alice", "Bob", "carol", "@alice", "@@bob", "ALICE", "bOb", "b\u{f6}b"][..],
        )),
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
                m.in_reply_to_user = Some(["bob", "@Bob", "BOB"][usize::from(id % 3)].into());
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
