//! Pair keys in a filter of many cache lines (tens of thousands of keys: a small set's filter
//! is one line), with first words that begin one pair key and first words that begin hundreds,
//! against the reference matcher. (Written for a layout that put a pair's filter bits in its
//! first word's cache line, tried and not kept: bench/journal.md, "Per-word loop and prefetch
//! (issue 20; 2026-12-06)"; the rule sets stay a test of pair keys at scale.)

use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};

/// A small deterministic generator (splitmix64), so that a failure names its case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Single-word rules `sN`, phrases `aJ bK` (first words beginning one to a few pairs), and
/// phrases `the bK` and `hub bK` (first words beginning `heavy` pairs each), and the rule
/// number of the first phrase.
fn rules(rng: &mut Rng, heavy: usize) -> (Vec<Rule>, usize, Vec<[String; 2]>) {
    let mut rules: Vec<Rule> =
        (0..30_000).map(|i| Rule::parse(&format!("s{i}")).expect("valid")).collect();
    let first_phrase = rules.len();
    let mut phrases = Vec::new();
    for _ in 0..12_000 {
        phrases.push([format!("a{}", rng.below(4_000)), format!("b{}", rng.below(6_000))]);
    }
    for k in 0..heavy {
        phrases.push(["the".into(), format!("b{}", k * 7)]);
        phrases.push(["hub".into(), format!("b{}", k * 3)]);
    }
    for (i, [a, b]) in phrases.iter().enumerate() {
        let not = if i % 5 == 0 { " -s1" } else { "" };
        rules.push(Rule::parse(&format!("\"{a} {b}\"{not}")).expect("valid"));
    }
    (rules, first_phrase, phrases)
}

/// A message of 6-30 tokens: phrase words (so that adjacent pairs are common), single-word
/// keys now and then, words no rule has, and separators that do or do not break a phrase.
fn message(rng: &mut Rng, phrases: &[[String; 2]]) -> String {
    let n = 6 + rng.below(25);
    let mut text = String::new();
    for i in 0..n {
        if i > 0 {
            text.push_str([" ", " ", " ", ", ", " - ", "  ", "\n"][rng.below(7)]);
        }
        let word = match rng.below(14) {
            // A rule's phrase, its words joined by what comes next.
            12 | 13 => {
                let [a, b] = &phrases[rng.below(phrases.len())];
                format!("{a}{}{b}", [" ", " ", ", ", "-", "  "][rng.below(5)])
            }
            0..=3 => format!("a{}", rng.below(4_000)),
            4..=7 => format!("b{}", rng.below(6_000)),
            8 => ["the", "The", "hub", "HUB"][rng.below(4)].to_string(),
            9 => format!("s{}", rng.below(40_000)),
            _ => format!("x{}", rng.below(1_000)),
        };
        text.push_str(&word);
    }
    text
}

#[test]
fn pair_keys_of_first_words_beginning_few_pairs_agree_with_the_reference() {
    agree_with_the_reference(30, 20);
}

#[test]
fn pair_keys_of_first_words_beginning_hundreds_agree_with_the_reference() {
    agree_with_the_reference(600, 21);
}

fn agree_with_the_reference(heavy: usize, seed: u64) {
    let mut rng = Rng(seed);
    let (rules, first_phrase, phrases) = rules(&mut rng, heavy);
    let reference = ReferenceMatcher::new(rules.clone());
    let mut scratch = Scratch::new();
    // Fixed keys (two layouts of the same rules) and a random one.
    let matchers = [
        Matcher::builder().small_set_prefilter(false).hash_seed(1, 2).build(&rules),
        Matcher::builder().small_set_prefilter(false).hash_seed(77, 5).build(&rules),
        Matcher::builder().small_set_prefilter(false).build(&rules),
    ];
    let messages = if cfg!(debug_assertions) { 100 } else { 600 };
    let (mut phrase_matches, mut phrase_misses) = (0, 0);
    for case in 0..messages {
        let text = message(&mut rng, &phrases);
        let msg = Message::new("1", text.as_str());
        let want: Vec<u32> = reference.matching(&msg).into_iter().map(|r| r as u32).collect();
        for (m, matcher) in matchers.iter().enumerate() {
            assert_eq!(
                matcher.find(&msg, &mut scratch),
                want.as_slice(),
                "case {case}, matcher {m}: {text:?}"
            );
        }
        phrase_matches += want.iter().filter(|&&r| r as usize >= first_phrase).count();
        phrase_misses += usize::from(want.iter().all(|&r| (r as usize) < first_phrase));
    }
    eprintln!(
        "{phrase_matches} phrase matches, {phrase_misses} messages without one, of {messages}"
    );
    // The cases exercise both answers.
    assert!(
        phrase_matches * 4 > messages,
        "{phrase_matches} phrase matches in {messages} messages"
    );
    assert!(phrase_misses * 10 > messages, "{phrase_misses} messages without a phrase match");
}
