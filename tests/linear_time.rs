//! Matching time grows linearly with the message length, for every rule shape (issue 21,
//! item 1: a message repeating a word made verification quadratic).
//!
//! Each case times matching a message of `16 * n` bytes and one of `n` bytes, in one run, and
//! asserts the ratio of their times per byte: about 1 for a linear matcher, about 16 for a
//! quadratic one. Each time is the best of several interleaved runs, so a busy machine cannot
//! fail the test (only make it take a few more runs), and the sizes keep the whole file at a
//! few seconds in a debug build. Both the compiled matcher and the registry's
//! snapshot (the engine's path) are checked, and each must agree with the reference matcher.

use std::time::{Duration, Instant};
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::registry::{self, Registry};
use streamtrack::{Message, Rule};

/// The large message may take at most this many times as long per byte as the small one.
/// Linear is 1 to 2 (the larger message misses the caches more); n log n would be ~1.4;
/// quadratic is ~16. Unoptimised builds (the CI's `cargo test`) measured 5.0-6.6x for the
/// phrase case at this factor on a loaded machine (1.1x optimised; 1.7x at a factor of 4 and
/// 2.9x at 64 unoptimised: no growth with size), so they get more room, still below quadratic.
const MAX_RATIO: f64 = if cfg!(debug_assertions) { 10.0 } else { 6.0 };
/// The large message is this many times the small one.
const FACTOR: usize = 16;
/// Rounds always timed (the minimum of each message's runs is kept).
const MIN_ROUNDS: usize = 5;
/// Rounds timed at most before a case is declared non-linear.
const MAX_ROUNDS: usize = 40;
/// Bytes of the small message (the large one is `FACTOR` times as long).
const SMALL_BYTES: usize = 3_000;

/// A rule shape and the text unit its message repeats (rules in the rule dialect, or in the
/// track dialect after `track:`).
struct Case {
    name: &'static str,
    rules: &'static [&'static str],
    unit: &'static str,
}

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
    tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
    exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ";

const CASES: &[Case] = &[
    Case { name: "single word", rules: &["spam"], unit: "spam " },
    Case { name: "AND (matching)", rules: &["spam eggs"], unit: "spam eggs " },
    Case { name: "AND (a word absent)", rules: &["spam eggs bacon"], unit: "spam eggs " },
    Case { name: "negation", rules: &["spam -ham"], unit: "spam " },
    Case { name: "negation (excluded)", rules: &["spam -ham"], unit: "spam ham " },
    Case { name: "phrase (absent)", rules: &["\"spam eggs\""], unit: "spam ham eggs " },
    Case { name: "phrase (present)", rules: &["\"spam eggs\" -ham"], unit: "spam spam eggs " },
    Case {
        name: "proximity (never near)",
        rules: &["\"spam eggs\"~3"],
        unit: "spam a b c d e f eggs a b c d e f ",
    },
    Case { name: "proximity (near)", rules: &["\"spam eggs\"~3 -ham"], unit: "spam a eggs " },
    Case { name: "OR (exact)", rules: &["spam OR eggs"], unit: "spam " },
    Case { name: "OR (verified)", rules: &["(spam -ham) OR (eggs -bacon)"], unit: "spam eggs " },
    Case { name: "hashtag", rules: &["#spam -ham", "#spam eggs"], unit: "#spam eggs " },
    Case { name: "mention", rules: &["@spam -ham", "@spam eggs"], unit: "@spam eggs " },
    Case { name: "track keywords", rules: &["track:spam eggs,ham"], unit: "spam eggs " },
    Case { name: "contains:", rules: &["contains:pam -ham", "contains:pam eggs"], unit: "spam " },
    Case {
        name: "no-space run",
        rules: &["中文 -ham", "中文 测试", "\"文测\" -ham", "\"中文 试\"~2"],
        unit: "中文测试",
    },
    Case {
        name: "no-space words", rules: &["中文 -ham", "\"中文 测试\""], unit: "中文 测试 "
    },
    Case {
        name: "url:",
        rules: &["url:example spam", "url:\"example.com/spam\" -ham"],
        unit: "spam https://example.com/spam ",
    },
    Case {
        name: "lorem ipsum, every shape",
        rules: &[
            "lorem",
            "lorem -spam",
            "ipsum dolor",
            "ipsum spam",
            "\"dolor sit\"",
            "\"sit dolor\"",
            "\"lorem elit\"~3",
            "\"lorem aliqua\"~2",
            "ipsum OR spam",
            "(ipsum -spam) OR (spam -ipsum)",
            "contains:olor -spam",
            "#lorem OR dolor",
            "url:example OR magna",
        ],
        unit: LOREM,
    },
];

/// `unit` repeated to at least `bytes` bytes.
fn text_of(unit: &str, bytes: usize) -> String {
    unit.repeat(bytes.div_ceil(unit.len()))
}

fn rules_of(case: &Case) -> Vec<Rule> {
    case.rules
        .iter()
        .map(|r| match r.strip_prefix("track:") {
            Some(track) => Rule::parse_track(track),
            None => Rule::parse(r),
        })
        .map(|r| r.unwrap_or_else(|e| panic!("{}: {e}", case.name)))
        .collect()
}

/// The time of `run(large)` over `FACTOR` times that of `run(small)`, each the best of at
/// least `MIN_ROUNDS` interleaved runs (more, up to `MAX_ROUNDS`, while the ratio is not below
/// `MAX_RATIO`). Other processes only ever add time, and a single run is short enough that
/// some runs of each message go undisturbed: the minimums are the matcher's own times.
fn ratio(small: &Message, large: &Message, mut run: impl FnMut(&Message) -> usize) -> f64 {
    // Grows the scratch buffers once, so that no timing includes that.
    run(large);
    run(small);
    let mut best = [Duration::MAX; 2];
    let mut ratio = f64::INFINITY;
    for round in 1..=MAX_ROUNDS {
        for (i, msg) in [small, large].into_iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(run(msg));
            best[i] = best[i].min(t.elapsed());
        }
        ratio = best[1].as_secs_f64() / (FACTOR as f64 * best[0].as_secs_f64()).max(1e-9);
        if round >= MIN_ROUNDS && ratio < MAX_RATIO {
            break;
        }
    }
    ratio
}

/// Runs every case through `matcher_for` (which returns a function matching one message and
/// returning the sorted rule numbers found) and asserts each is linear and agrees with the
/// reference matcher.
fn check_all(path: &str, matcher_for: impl Fn(&[Rule]) -> Box<dyn FnMut(&Message) -> Vec<u32>>) {
    let mut slow = Vec::new();
    for case in CASES {
        let rules = rules_of(case);
        let mut find = matcher_for(&rules);
        let small = Message::new("s", text_of(case.unit, SMALL_BYTES));
        let large = Message::new("l", text_of(case.unit, SMALL_BYTES * FACTOR));
        let reference = ReferenceMatcher::new(rules.clone());
        for msg in [&small, &large] {
            let want: Vec<u32> = reference.matching(msg).into_iter().map(|i| i as u32).collect();
            assert_eq!(find(msg), want, "{path}, {}: results differ from the reference", case.name);
        }
        let r = ratio(&small, &large, |m| find(m).len());
        eprintln!("{path}, {}: {FACTOR}x length took {r:.2}x the time per byte", case.name);
        if r >= MAX_RATIO {
            slow.push(format!("{} ({r:.1}x)", case.name));
        }
    }
    assert!(
        slow.is_empty(),
        "{path}: time per byte grows with the message length (limit {MAX_RATIO}x at {FACTOR}x \
         length) for: {}",
        slow.join(", ")
    );
}

#[test]
fn compiled_matcher_time_is_linear_in_message_length() {
    check_all("Matcher::find", |rules| {
        let matcher = Matcher::new(rules);
        let mut scratch = Scratch::new();
        Box::new(move |msg| matcher.find(msg, &mut scratch).to_vec())
    });
}

#[test]
fn registry_snapshot_time_is_linear_in_message_length() {
    check_all("Snapshot::find", |rules| {
        let registry = Registry::new();
        let ids: Vec<_> = rules
            .iter()
            .map(|r| registry.subscribe("s", r.clone(), None).expect("subscribes"))
            .collect();
        let snapshot = registry.snapshot();
        let mut scratch = registry::Scratch::new();
        Box::new(move |msg| {
            let mut found: Vec<u32> = snapshot
                .find(msg, &mut scratch)
                .iter()
                .map(|r| ids.iter().position(|&id| id == r.id).expect("a subscribed rule") as u32)
                .collect();
            found.sort_unstable();
            found
        })
    });
}

/// `rule(I)` for `I` in `0..n`: rules each woken by a distinct pair of words `wI`, `xI`.
fn pair_rules(n: usize, rule: fn(usize) -> String) -> Vec<Rule> {
    (0..n).map(|i| Rule::parse(&rule(i)).expect("a rule")).collect()
}

/// A message holding every pair's words, but only every other pair side by side (`wI y y xI`
/// for odd `I`; in URLs `http://wI.com/xI` and `http://wI.com/y/y/xI`): each rule is a
/// candidate and half of them match.
fn pair_message(n: usize) -> Message {
    let text: Vec<String> = (0..n)
        .map(|i| {
            let y = if i % 2 == 0 { "" } else { "y y " };
            let url =
                if i % 2 == 0 { format!("w{i}.com/x{i}") } else { format!("w{i}.com/y/y/x{i}") };
            // `z z z`: the URL's words sit too far from the text's for `~2`.
            format!("w{i} {y}x{i} z z z http://{url}")
        })
        .collect();
    Message::new(format!("pairs-{n}"), text.join(" "))
}

/// A message that wakes a number of phrase or proximity rules in proportion to its length:
/// checking each such term searched the whole message, so time grew with rules woken ×
/// length, quadratic in the length here (issue 21). `n` rules and an `n`-pair message against
/// `16 n` of each.
#[test]
fn many_phrase_rules_woken_by_one_long_message_cost_linear_time() {
    many_rules_woken_by_one_long_message("phrase", |i| format!("\"w{i} x{i}\""));
}

/// As above, with proximity rules.
#[test]
fn many_proximity_rules_woken_by_one_long_message_cost_linear_time() {
    many_rules_woken_by_one_long_message("proximity", |i| format!("\"w{i} x{i}\"~2"));
}

/// As above, with multi-word keywords (`wI-xI`: the words in sequence).
#[test]
fn many_keyword_sequence_rules_woken_by_one_long_message_cost_linear_time() {
    many_rules_woken_by_one_long_message("keyword sequence", |i| format!("w{i}-x{i}"));
}

/// As above, with `url:` rules (each URL is a field of its own).
#[test]
fn many_url_rules_woken_by_one_long_message_cost_linear_time() {
    many_rules_woken_by_one_long_message("url:", |i| format!("url:\"w{i}.com/x{i}\""));
}

fn many_rules_woken_by_one_long_message(kind: &str, rule: fn(usize) -> String) {
    let n = 200;
    let (small_rules, large_rules) = (pair_rules(n, rule), pair_rules(n * FACTOR, rule));
    let (small, large) = (pair_message(n), pair_message(n * FACTOR));
    let mut found = Vec::new();
    for (rules, msg) in [(&small_rules, &small), (&large_rules, &large)] {
        let matcher = Matcher::new(rules.iter());
        let got = matcher.find(msg, &mut Scratch::new()).to_vec();
        // The rules of the even pairs match: checked against the reference on the small
        // message (the reference costs rules × length, minutes on the large one in debug).
        let even: Vec<u32> = (0..rules.len() as u32).step_by(2).collect();
        if rules.len() == n {
            let want: Vec<u32> = ReferenceMatcher::new(rules.clone())
                .matching(msg)
                .into_iter()
                .map(|i| i as u32)
                .collect();
            assert_eq!(want, even, "{kind}: the reference matches the even pairs");
        }
        assert_eq!(got, even, "{} {kind} rules: the even pairs' rules match", rules.len());
        found.push((matcher, Scratch::new()));
    }
    let [(small_matcher, mut s1), (large_matcher, mut s2)] =
        <[_; 2]>::try_from(found).ok().unwrap();
    let mut both = |m: &Message| {
        if m.id == small.id {
            small_matcher.find(m, &mut s1).len()
        } else {
            large_matcher.find(m, &mut s2).len()
        }
    };
    let r = ratio(&small, &large, &mut both);
    eprintln!("{FACTOR}x {kind} rules woken by a {FACTOR}x message: {r:.2}x the time per byte");
    assert!(r < MAX_RATIO, "{kind}: {r:.1}x the time per byte (limit {MAX_RATIO}x)");
}

/// Once a message has evaluated a few phrases, the rest come from one pass of the segment's
/// phrase automaton, and once it has evaluated a few proximity terms, the rest from its
/// words' positions: both must decide exactly as the reference does (word boundaries,
/// punctuation, emoji, no-space scripts, repeated words, several fields).
#[test]
fn phrases_and_proximity_found_in_one_pass_agree_with_the_reference() {
    let words = [
        "spam",
        "eggs",
        "pam",
        "egg",
        "c++",
        "中文",
        "文测",
        "a.b",
        "😀",
        "café",
        "naïve",
        "#spam",
        "spam-eggs",
        "eggs,",
        "au",
    ];
    let mut rules = Vec::new();
    for a in words {
        for b in words {
            for text in [
                format!("\"{a} {b}\""),
                format!("\"{a} {b}\" -zzz"),
                format!("\"{a} {b}\"~1"),
                format!("\"{a} {b} spam\"~3 -zzz"),
                format!("{a}-{b} -zzz"),
                format!("url:\"{a}/{b}\""),
            ] {
                if let Ok(rule) = Rule::parse(&text) {
                    rules.push(rule);
                }
            }
        }
    }
    let matcher = Matcher::new(&rules);
    let reference = ReferenceMatcher::new(rules.clone());
    let mut scratch = Scratch::new();
    let texts = [
        "spam eggs spam pam egg",
        "spamegg eggs spam-eggs, spam",
        "Spam, EGGS! spam-eggs eggs, au café au naïve spam",
        "中文测试 spam 中文 eggs 文测 spam",
        "c++ spam a.b eggs 😀 spam 😀 eggs #spam eggs",
        "spam\u{301} eggs spam eggs\u{301} café\u{301} au",
        "spam spam eggs x x spam x eggs eggs 中文测试x文测中文 spam",
        "see https://spam.com/eggs/pam and http://x.org/spam-eggs?egg=au#spam eggs-spam",
    ];
    let mut checked = 0;
    for text in texts {
        let plain = Message::new("1", text);
        let mut quoted = Message::new("2", "nothing here");
        quoted.quoted_text = Some(text.to_string());
        for msg in [&plain, &quoted] {
            let want: Vec<u32> = reference.matching(msg).into_iter().map(|i| i as u32).collect();
            assert_eq!(matcher.find(msg, &mut scratch), &want[..], "{msg:?}");
            checked += want.len();
        }
    }
    assert!(checked > 20, "the messages match enough phrases to go past the one-by-one checks");
}

/// The small-set prefilter on one long token where a rule's pair (`中文`) fails at every
/// repetition: asking whether the pair's token holds a URL prefix cost the token's length each
/// time, quadratic in the length (found by the `long_messages` fuzz target: 15.2x).
#[test]
fn prefilter_pairs_failing_in_one_long_token_cost_linear_time() {
    let rule = Rule::parse("中文 -ham").unwrap();
    let matcher = Matcher::new([&rule]);
    let unit = "中\u{fffd}🍕\u{fffd}测试";
    let reps = SMALL_BYTES.div_ceil(unit.len());
    let small = Message::new("s", unit.repeat(reps));
    let large = Message::new("l", unit.repeat(reps * FACTOR));
    let mut scratch = Scratch::new();
    assert!(matcher.find(&large, &mut scratch).is_empty(), "no 中文 in the text");
    let r = ratio(&small, &large, |m| matcher.find(m, &mut scratch).len());
    eprintln!("prefilter, one long token: {r:.2}x the time per byte");
    assert!(r < MAX_RATIO, "prefilter: {r:.1}x the time per byte (limit {MAX_RATIO}x)");
}
