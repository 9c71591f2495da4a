//! The hostile generators of the small-set prefilter's tests (`small_set.rs` for the
//! matcher, `registry_small_set.rs` for the live registry): rule words whose raw forms a
//! byte-level prefilter could miss, and messages full of those forms.
#![allow(dead_code)]

use proptest::prelude::*;
use streamtrack::{Message, Rule};

/// Rule words: ASCII words whose raw forms can hide behind non-ASCII characters, non-ASCII
/// words with upper-case forms, long words (keys are a run's first 8 bytes).
pub const RULE_WORDS: &[&str] = &[
    "strasse",
    "kilo",
    "fish",
    "file",
    "bomb",
    "istanbul",
    "cafe",
    "café",
    "οδος",
    "σοφία",
    "привет",
    "東京",
    "🍕",
    "❤",
    "interconnection",
    "interconnected",
    "abcdefgh",
    "abcdefghi",
    "wii",
    "x1",
    "42",
    "a",
];

/// Message pieces: the rule words in other forms, and characters that normalise to ASCII,
/// vanish, compose or fold.
pub const MESSAGE_PIECES: &[&str] = &[
    "STRAßE",
    "straße",
    "ſtraſſe",
    "\u{212a}ilo",
    "KILO",
    "\u{fb01}le",
    "ﬁsh",
    "b\u{200b}omb",
    "bo\u{ad}mb",
    "BOMB",
    "İstanbul",
    "ISTANBUL",
    "cafe\u{301}",
    "CAFÉ",
    "Café",
    "ΟΔΟΣ",
    "ΣΟΦΊΑ",
    "σοφια",
    "ПРИВЕТ",
    "Привет",
    "ПРИ\u{200b}ВЕТ",
    "при\u{ad}вет",
    "σο\u{ad}φία",
    "東\u{200d}京",
    " \u{2014} ",
    "\u{201c}",
    "大東京タワー",
    "\u{f900}",
    "\u{1100}\u{1161}",
    "🍕",
    "❤\u{fe0f}",
    "👨\u{200d}👩",
    "1\u{fe0f}\u{20e3}",
    "INTERCONNECTION",
    "interconnected",
    "abcdefgh",
    "ABCDEFGHI",
    "Wii",
    "wiiwii",
    "X1",
    "42",
    "ａｂｃ",
    "#Wii",
    "@fish",
    "$42",
    "http://www.kilo.com/x",
    "http://",
    "WWW.",
    "x+y.z://",
    "https://t.co/ABCDEFGHI",
    " ",
    " ",
    " ",
    ", ",
    "-",
    "_",
    "'s",
    "\u{a0}",
    "\u{3000}",
    "\u{1}",
    "\u{200b}",
    "\u{301}",
];

/// A non-ASCII rule word and an ASCII one.
pub fn script_pair() -> impl Strategy<Value = (String, String)> {
    let (other, ascii): (Vec<&'static str>, Vec<&'static str>) =
        RULE_WORDS.iter().partition(|w| !w.is_ascii());
    let pick = |v: Vec<&'static str>| prop::sample::select(v).prop_map(String::from);
    (pick(other), pick(ascii))
}

pub fn rule_words_rule() -> impl Strategy<Value = Option<Rule>> {
    let w = || prop::sample::select(RULE_WORDS).prop_map(String::from);
    let leaf = prop_oneof![
        6 => w(),
        2 => (w(), w()).prop_map(|(a, b)| format!("\"{a} {b}\"")),
        1 => (w(), w()).prop_map(|(a, b)| format!("{a}-{b}")),
        1 => w().prop_map(|a| format!("#{a}")),
        1 => w().prop_map(|a| format!("@{a}")),
        1 => (w(), w()).prop_map(|(a, b)| format!("{a} -{b}")),
        1 => (w(), w()).prop_map(|(a, b)| format!("{a} OR {b}")),
        1 => w().prop_map(|a| format!("{a} lang:en")),
        1 => w().prop_map(|a| format!("url:\"{a}\"")),
        // A pair across scripts (an emoji or CJK word next to a Latin one): the prefilter keys
        // a pair by one of its units, and the unit after a non-ASCII one is where it once
        // went wrong (`🍕-e` missed in `🍕e`).
        2 => (script_pair(), any::<bool>())
            .prop_map(|((a, b), swap)| if swap { format!("{b}-{a}") } else { format!("{a}-{b}") }),
        1 => script_pair().prop_map(|(a, b)| format!("\"{a} {b}\"")),
    ];
    prop_oneof![
        5 => leaf.prop_map(|t| Rule::parse(&t).ok()),
        1 => prop::collection::vec(w(), 1..3).prop_map(|v| Rule::parse_track(&v.join(",")).ok()),
    ]
}

pub fn hostile_message() -> impl Strategy<Value = Message> {
    let piece = prop_oneof![
        3 => prop::sample::select(MESSAGE_PIECES).prop_map(String::from),
        1 => prop::sample::select(RULE_WORDS).prop_map(String::from),
        // Two words with a URL prefix between them, which tokenising removes.
        1 => (
            prop::sample::select(RULE_WORDS),
            prop::sample::select(&["http://", "WWW.", "https://www.", "x+y.z://", " "][..]),
            prop::sample::select(RULE_WORDS),
        )
            .prop_map(|(a, p, b)| format!(" {a} {p}{b} ")),
        // Two rule words glued together (`🍕abcdefgh`, `wii東京`): where one script ends
        // and the next begins is for the tokeniser to decide, not for the bytes.
        2 => (script_pair(), any::<bool>())
            .prop_map(|((a, b), swap)| if swap { format!(" {b}{a} ") } else { format!(" {a}{b} ") }),
        // Padding that moves what follows across the 64-byte blocks.
        1 => (1usize..70).prop_map(|n| "-".repeat(n)),
        1 => (1usize..70).prop_map(|n| "y".repeat(n)),
    ];
    (prop::collection::vec(piece, 0..20), any::<u16>())
        .prop_map(|(pieces, id)| Message::new(id.to_string(), pieces.concat()))
}
