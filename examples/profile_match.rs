//! A loop for profilers: match the standard workload against N rules, repeatedly.
//!
//! `cargo run --release --example profile_match -- 100000 20` (rules, seconds), then e.g.
//! `perf record -g target/release/examples/profile_match 100000 20`. It uses the
//! command-line tool's allocator (jemalloc), as `streamtrack bench match` does, and matches
//! through `Matcher::find_each` as it does (`ONE_BY_ONE=1`: one `Matcher::find` call a
//! message). `ASCII_ONLY=1` / `NON_ASCII_ONLY=1` keep only those messages; `MESSAGES=N`
//! sets their number; `STAGES=1` also times tokenising and preparing them.

use std::collections::HashSet;
use std::time::Instant;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::normalize::{NormalizedMessage, Tokens};
use streamtrack::rule::Term;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let rules: Vec<_> =
        RuleSetConfig::default().rules(n).iter().map(|g| g.parse().unwrap()).collect();
    // `MESSAGES=2000` keeps them in cache, as in the engine (default: 100,000, streamed).
    let count = std::env::var("MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let messages = WorkloadConfig::default().count(count).messages();
    // How many message words are rule words at all (the Bloom filter cannot reject those)?
    let mut rule_words = HashSet::new();
    for r in &rules {
        r.root().visit_terms(&mut |t, _| match t {
            Term::Keyword(w) | Term::Proximity { words: w, .. } | Term::Url(w) => {
                rule_words.extend(w.iter().cloned())
            }
            Term::Phrase(p) => {
                rule_words.extend(Tokens::of(p, Default::default()).word_texts().map(String::from))
            }
            _ => {}
        });
    }
    let (mut words, mut known) = (0usize, 0usize);
    let sample = messages.len().min(10_000);
    for m in messages.iter().take(sample) {
        let norm = NormalizedMessage::of(m);
        for f in norm.fields() {
            for w in f.tokens.word_texts() {
                words += 1;
                known += usize::from(rule_words.contains(w));
            }
        }
    }
    println!(
        "{} rules, {} distinct rule words; {:.1} words per message, {:.1}% of them rule words",
        n,
        rule_words.len(),
        words as f64 / sample as f64,
        100.0 * known as f64 / words as f64
    );
    let ascii: Vec<_> = messages.iter().filter(|m| m.text.is_ascii()).cloned().collect();
    let other: Vec<_> = messages.iter().filter(|m| !m.text.is_ascii()).cloned().collect();
    if std::env::var_os("STAGES").is_some() {
        println!("ASCII messages:");
        stages(&ascii);
        println!("non-ASCII messages:");
        stages(&other);
    }
    let matcher = Matcher::builder().hash_seed(1, 2).build(&rules);
    let mut scratch = Scratch::new();
    let start = Instant::now();
    let mut done = 0usize;
    let mut matched = 0usize;
    let ascii_only = std::env::var_os("ASCII_ONLY").is_some();
    let messages: Vec<_> = if ascii_only {
        ascii
    } else if std::env::var_os("NON_ASCII_ONLY").is_some() {
        other
    } else {
        messages
    };
    let one_by_one = std::env::var("ONE_BY_ONE").as_deref() == Ok("1");
    while start.elapsed().as_secs_f64() < secs {
        matched += match_all(&matcher, &messages, &mut scratch, one_by_one);
        done += messages.len();
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "{:.3} M msgs/s, {:.2} matches/msg ({done} matched)",
        done as f64 / el / 1e6,
        matched as f64 / done as f64
    );
}

/// Matches every message once: through `Matcher::find_each` (the next messages prefetched,
/// as in `streamtrack bench match`), or with `ONE_BY_ONE=1` by one `find` call each.
#[inline(never)]
fn match_all(
    matcher: &Matcher,
    messages: &[streamtrack::Message],
    scratch: &mut Scratch,
    one_by_one: bool,
) -> usize {
    if one_by_one {
        return messages.iter().map(|m| matcher.find(m, scratch).len()).sum();
    }
    let mut matched = 0;
    matcher.find_each(messages, scratch, |_, found| matched += found.len());
    matched
}

/// Times the stages separately: tokenising the text, preparing the whole message.
#[allow(dead_code)]
fn stages(messages: &[streamtrack::Message]) {
    let mut tokens = Tokens::new();
    let t = Instant::now();
    for _ in 0..5 {
        for m in messages {
            tokens.tokenize(&m.text, Default::default());
            std::hint::black_box(tokens.words().len());
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (5 * messages.len()) as f64;
    println!("tokenize text: {per:.0} ns/msg");
    let mut norm = NormalizedMessage::new();
    let t = Instant::now();
    for _ in 0..5 {
        for m in messages {
            norm.prepare(m);
            std::hint::black_box(norm.fields().len());
        }
    }
    let per = t.elapsed().as_nanos() as f64 / (5 * messages.len()) as f64;
    println!("prepare message: {per:.0} ns/msg");
}
