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
#[path = "common/hostile.rs"]
mod hostile;
use hostile::{hostile_message, rule_words_rule, MESSAGE_PIECES, RULE_WORDS};

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

/// Two-word phrases with URL prefixes (which tokenising removes) between, before and after
/// their words, and URLs elsewhere in the post: each phrase alone (so that no other rule's
/// key lets the post through), the prefilter against the reference.
#[test]
fn url_prefixes_around_phrase_words() {
    let phrases = [("all", "yearn"), ("tasseled", "fly"), ("wii", "fit"), ("caf\u{e9}", "ab")];
    let between = [
        " ",
        " http://",
        " WWW.",
        " https://www.",
        " x+y.z://",
        " http:// ",
        " (http://",
        ", www.",
        " 1x://",
        " x://www.",
        " http:// www. ",
        " ://",
        " www",
        " wwww.",
        " http:/",
        " http:x//",
        " -http://",
        " http://www.www.",
    ];
    let elsewhere = ["", " https://t.co/abc", " www.example.com", " HTTP://WWW.X"];
    let mut checked = 0;
    for (a, b) in phrases {
        let rule = Rule::parse(&format!("\"{a} {b}\"")).expect("valid");
        let mut messages = Vec::new();
        for sep in between {
            for tail in elsewhere {
                for text in [format!("{a}{sep}{b}{tail}"), format!("{tail} {a}{sep}{b}")] {
                    messages.push(Message::new("1", text.to_uppercase()));
                    messages.push(Message::new("1", text));
                }
            }
        }
        checked += messages.len();
        check(&[rule], &messages).unwrap_or_else(|e| panic!("{a} {b}: {e}"));
    }
    assert!(checked > 500, "{checked}");
}

/// A pair of units that fails is no longer let through because a URL prefix is somewhere
/// else in the post (2/3 of the posts the prefilter passed on the shared corpus at 1k rules
/// matched nothing, most of them for that): only a unit next to the pair's own unit that
/// may be part of a URL prefix counts.
#[test]
fn a_url_elsewhere_does_not_let_a_failed_pair_through() {
    let rules: Vec<Rule> = ["\"tasseled fly\"", "\"all yearn\""]
        .iter()
        .map(|r| Rule::parse(r).expect("valid"))
        .collect();
    let with = Matcher::builder().small_set_prefilter(true).build(&rules);
    for text in [
        "tasseled bird https://t.co/x",
        "we yearn, see www.example.com",
        "https://t.co/x yearn all",
        "WWW.x tasseled flyer",
    ] {
        assert_eq!(with.small_set_passes(&Message::new("1", text)), Some(false), "{text:?}");
    }
    // (`x.http://` is a scheme: `tasseled fly` is there.)
    for text in ["tasseled http://fly", "all www.yearn", "tasseled x.http://fly"] {
        assert_eq!(with.small_set_passes(&Message::new("1", text)), Some(true), "{text:?}");
    }
}
