#![no_main]
//! Long repetitive messages (issue 21, item 1: a message repeating a word once made matching
//! quadratic in its length).
//!
//! The input is rules, one per line (the track dialect after `track:`, else the rule
//! dialect; lines that do not parse are skipped), then a last line: a text unit of up to 256
//! bytes. The unit is repeated into a message of about 2 KB and one 16 times as long. The
//! target asserts that the compiled matcher agrees with the reference matcher on both, and
//! that the long message takes less than `MAX_RATIO` times as long per byte as the short one
//! (each time the best of several interleaved runs, so that a busy machine only adds runs).
//! A quadratic path shows as about 16 times.
//!
//! Seeds: `fuzz/corpus/long_messages/seed-*`; dictionary: `fuzz/rule.dict`.

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};
use streamtrack_fuzz::known_bug_trigger;

/// Bytes of the short message.
const SMALL_BYTES: usize = 2_000;
/// The long message is this many times the short one.
const FACTOR: usize = 16;
/// Time per byte of the long message over that of the short one: linear is 1 to 2.
const MAX_RATIO: f64 = 8.0;
/// Timed rounds: at least the first, at most the second (while the ratio is too high).
const ROUNDS: (usize, usize) = (3, 30);
/// Bytes of the unit at most, and rules at most.
const MAX_UNIT: usize = 256;
const MAX_RULES: usize = 8;

fuzz_target!(|data: &[u8]| check_long_messages(data));

fn check_long_messages(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut lines: Vec<&str> = text.split('\n').collect();
    let Some(unit) = lines.pop() else { return };
    let mut end = unit.len().min(MAX_UNIT);
    while !unit.is_char_boundary(end) {
        end -= 1;
    }
    let unit = &unit[..end];
    if unit.is_empty() || known_bug_trigger(unit) {
        return;
    }
    let rules: Vec<Rule> = lines
        .iter()
        .filter(|l| !known_bug_trigger(l))
        .filter_map(|l| match l.strip_prefix("track:") {
            Some(track) => Rule::parse_track(track).ok(),
            None => Rule::parse(l).ok(),
        })
        .take(MAX_RULES)
        .collect();
    if rules.is_empty() {
        return;
    }
    let repeat = |bytes: usize| unit.repeat(bytes.div_ceil(unit.len()));
    let small = Message::new("s", repeat(SMALL_BYTES));
    let large = Message::new("l", repeat(SMALL_BYTES * FACTOR));
    let matcher = Matcher::new(&rules);
    let reference = ReferenceMatcher::new(rules);
    let mut scratch = Scratch::new();
    for msg in [&small, &large] {
        let want: Vec<u32> = reference.matching(msg).into_iter().map(|i| i as u32).collect();
        assert_eq!(
            matcher.find(msg, &mut scratch),
            &want[..],
            "matcher vs reference on {} repetitions of {unit:?}\nrules: {:?}",
            msg.text.len() / unit.len(),
            reference.rules()
        );
    }
    let mut best = [Duration::MAX; 2];
    let mut ratio = f64::INFINITY;
    for round in 1..=ROUNDS.1 {
        for (i, msg) in [&small, &large].into_iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(matcher.find(msg, &mut scratch).len());
            best[i] = best[i].min(t.elapsed());
        }
        let per_byte = |i: usize, m: &Message| best[i].as_secs_f64() / m.text.len() as f64;
        ratio = per_byte(1, &large) / per_byte(0, &small).max(1e-15);
        if round >= ROUNDS.0 && ratio < MAX_RATIO {
            return;
        }
    }
    panic!(
        "a {FACTOR}x longer message took {ratio:.1}x the time per byte: repeated unit {unit:?}\n\
         rules: {:?}",
        reference.rules()
    );
}
