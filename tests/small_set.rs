//! The small-set prefilter (`src/matcher/small.rs`) never drops a match: the matcher with the
//! prefilter forced on, the matcher without it and the reference matcher agree on random rules
//! and messages, including characters chosen to break a raw-byte prefilter (characters that
//! fold or normalise to ASCII, default-ignorables inside words, combining accents, upper-case
//! non-ASCII letters, runs across the scanner's 64-byte blocks).
//!
//! `STREAMTRACK_PROPTEST_CASES` raises the number of cases for a long local run.

use proptest::prelude::*;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[path = "common/differential.rs"]
mod differential;
use differential::{any_rule, config};

/// Rule words: ASCII words whose raw forms can hide behind non-ASCII characters, non-ASCII
/// words with upper-case forms, long words (keys are a run's first 8 bytes).
const RULE_WORDS: &[&str] = &[
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
const MESSAGE_PIECES: &[&str] = &[
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
fn script_pair() -> impl Strategy<Value = (String, String)> {
    let (other, ascii): (Vec<&'static str>, Vec<&'static str>) =
        RULE_WORDS.iter().partition(|w| !w.is_ascii());
    let pick = |v: Vec<&'static str>| prop::sample::select(v).prop_map(String::from);
    (pick(other), pick(ascii))
}

fn rule_words_rule() -> impl Strategy<Value = Option<Rule>> {
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

fn hostile_message() -> impl Strategy<Value = Message> {
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

/// The three matchers agree on every message; returns how many messages matched.
fn check(rules: &[Rule], messages: &[Message]) -> Result<usize, TestCaseError> {
    let with = Matcher::builder().small_set_prefilter(true).build(rules);
    let without = Matcher::builder().small_set_prefilter(false).build(rules);
    prop_assert!(without.small_set_keys().is_none());
    let reference = ReferenceMatcher::new(rules.to_vec());
    let (mut s1, mut s2) = (Scratch::new(), Scratch::new());
    let mut matched = 0;
    for m in messages {
        let want: Vec<u32> = reference.matching(m).into_iter().map(|i| i as u32).collect();
        let got = with.find(m, &mut s1).to_vec();
        prop_assert_eq!(without.find(m, &mut s2), &want[..], "without the prefilter: {:?}", m);
        prop_assert_eq!(
            &got,
            &want,
            "message {:?}\nrules:\n{}",
            m,
            rules.iter().map(|r| format!("  {r}")).collect::<Vec<_>>().join("\n")
        );
        matched += usize::from(!got.is_empty());
    }
    Ok(matched)
}

proptest! {
    #![proptest_config(config())]

    /// Rules and messages of every shape (the differential tests' generators), the rules
    /// that disable the prefilter (`contains:`, a track token without a word) left out so
    /// that it runs.
    #[test]
    fn prefilter_keeps_every_match_of_every_rule_shape(
        rules in prop::collection::vec(any_rule(), 1..24),
        messages in prop::collection::vec(differential::message(), 1..8),
    ) {
        let rules: Vec<Rule> = rules
            .into_iter()
            .flatten()
            .filter(|r| {
                let alone = Matcher::builder().small_set_prefilter(true).build([r]);
                alone.small_set_keys().is_some()
            })
            .collect();
        prop_assume!(!rules.is_empty());
        prop_assert!(Matcher::builder().small_set_prefilter(true).build(&rules).small_set_keys().is_some());
        check(&rules, &messages)?;
    }

    /// Rule words whose raw forms a byte-level prefilter could miss, against messages full
    /// of those forms.
    #[test]
    fn prefilter_keeps_matches_hidden_behind_normalisation(
        rules in prop::collection::vec(rule_words_rule(), 1..12),
        messages in prop::collection::vec(hostile_message(), 1..12),
    ) {
        let rules: Vec<Rule> = rules.into_iter().flatten().collect();
        prop_assume!(!rules.is_empty());
        check(&rules, &messages)?;
        // Each rule alone too: in a set, another rule's key in the same post lets the post
        // through the prefilter, which hides a key this rule missed.
        for rule in &rules {
            check(std::slice::from_ref(rule), &messages)?;
        }
    }
}

/// Each rule word against each hostile piece on its own and in context: the cases the
/// property samples, all of them.
#[test]
fn every_rule_word_against_every_hostile_piece() {
    let rules: Vec<Rule> = RULE_WORDS.iter().map(|w| Rule::parse(w).expect("valid")).collect();
    let mut messages = Vec::new();
    for (i, p) in MESSAGE_PIECES.iter().enumerate() {
        for ctx in [
            "{}",
            "x {} y",
            "({}).",
            "{}{}",
            "-----------------------------------------------------------{}",
        ] {
            messages.push(Message::new(i.to_string(), ctx.replace("{}", p)));
        }
    }
    let matched = check(&rules, &messages).expect("agree");
    assert!(matched > 40, "the pieces should match some rules: {matched}");
}

/// The generated workload at 1,000 rules: the prefilter is on by default and changes no
/// result on 20,000 messages.
#[test]
fn prefilter_changes_nothing_on_the_generated_workload() {
    let rules: Vec<Rule> = RuleSetConfig::default()
        .rules(1_000)
        .into_iter()
        .map(|g| g.parse().expect("generated rules parse"))
        .collect();
    let messages = WorkloadConfig::default().count(20_000).messages();
    let with = Matcher::new(&rules);
    let without = Matcher::builder().small_set_prefilter(false).build(&rules);
    let (mut s1, mut s2) = (Scratch::new(), Scratch::new());
    let mut matched = 0;
    for m in &messages {
        let got = with.find(m, &mut s1).to_vec();
        assert_eq!(got, without.find(m, &mut s2), "{m:?}");
        matched += usize::from(!got.is_empty());
    }
    eprintln!(
        "generated workload, 1,000 rules: prefilter keys {:?}, {matched} of {} messages match",
        with.small_set_keys(),
        messages.len()
    );
    assert!(matched > 0);
}

/// Every pair of a non-ASCII rule word and an ASCII one, glued in the post (`🍕wii`), as a
/// rule of its own: alone, no other rule's key can let the post through the prefilter, so
/// a pair key that skips the letters after a non-ASCII unit shows (`🍕-e` missed in `🍕e`,
/// found by the `explain` fuzz target; this test fails without the fix in `small.rs`).
#[test]
fn every_pair_across_scripts_glued_in_the_post() {
    let (other, ascii): (Vec<&str>, Vec<&str>) = RULE_WORDS.iter().partition(|w| !w.is_ascii());
    let mut pairs = 0;
    for a in &other {
        for b in &ascii {
            for (first, second) in [(a, b), (b, a)] {
                let Ok(rule) = Rule::parse(&format!("{first}-{second}")) else { continue };
                let messages: Vec<Message> = ["{}", " {} ", "x {} y", "({}).", "{} {}"]
                    .iter()
                    .map(|ctx| Message::new("1", ctx.replace("{}", &format!("{first}{second}"))))
                    .collect();
                check(&[rule], &messages).unwrap_or_else(|e| panic!("{first}-{second}: {e}"));
                pairs += 1;
            }
        }
    }
    assert!(pairs > 150, "{pairs} pairs checked");
}
