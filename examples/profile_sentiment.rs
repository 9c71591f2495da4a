//! A loop for profilers: score the matched messages of `bench analytics` (20,000 generated
//! messages against 20,000 generated rules) repeatedly. `cargo run --release --example
//! profile_sentiment -- [seconds] [compat|fixes] [ascii|other]`; prints ns per message and per word.
//! Instructions per scored text, one pass (`0` seconds), the setup left out:
//!
//! ```text
//! FILE=target/peers/data/messages.txt valgrind --tool=callgrind \
//!     --toggle-collect='streamtrack::analytics::sentiment::SentimentScorer::score' \
//!     target/release/examples/profile_sentiment 0 fixes ascii
//! ```
use std::time::Instant;
use streamtrack::analytics::SentimentScorer;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3.0);
    let compat = args.next().is_some_and(|a| a == "compat");
    // `ascii` or `other`: only the ASCII messages, or only the others.
    let only = args.next();
    let messages = WorkloadConfig::default().count(20_000).messages();
    let rules: Vec<_> = RuleSetConfig::default()
        .rules(20_000)
        .into_iter()
        .map(|g| g.parse().expect("generated rules parse"))
        .collect();
    let matcher = Matcher::new(&rules);
    let mut scratch = Scratch::new();
    // `FILE=path`: the first 20,000 lines of a file of plain-text posts instead (e.g. the
    // shared side-by-side corpus, `target/peers/data/messages.txt`).
    let from_file: Option<Vec<String>> = std::env::var("FILE").ok().map(|f| {
        let text = std::fs::read_to_string(f).expect("a readable FILE");
        text.lines()
            .filter(|t| match only.as_deref() {
                Some("ascii") => t.is_ascii(),
                Some("other") => !t.is_ascii(),
                _ => true,
            })
            .take(20_000)
            .map(str::to_owned)
            .collect()
    });
    let matched: Vec<String> = messages
        .iter()
        .filter(|m| !matcher.find(m, &mut scratch).is_empty())
        .filter(|m| match only.as_deref() {
            Some("ascii") => m.text.is_ascii(),
            Some("other") => !m.text.is_ascii(),
            _ => true,
        })
        .map(|m| m.text.clone())
        .collect();
    let matched = from_file.unwrap_or(matched);
    let words: usize = matched.iter().map(|t| t.split_whitespace().count()).sum();
    let s = if compat { SentimentScorer::python_compatible() } else { SentimentScorer::new() };
    let t = Instant::now();
    let c0 = cpu_ns();
    let (mut n, mut sum) = (0usize, 0.0);
    while n == 0 || t.elapsed().as_secs_f64() < secs {
        for m in &matched {
            sum += s.score(m).compound;
        }
        n += 1;
    }
    let wall = t.elapsed().as_nanos() as f64;
    // This thread's CPU time when the system reports it (the machine may be shared).
    let ns = match (c0, cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64,
        _ => wall,
    };
    println!(
        "{} matched messages, {:.1} words each: {:.0} ns per message, {:.1} ns per word, CPU time ({:.0}% of wall; sum {sum:.3})",
        matched.len(),
        words as f64 / matched.len() as f64,
        ns / (n * matched.len()) as f64,
        ns / (n * words) as f64,
        ns / wall * 100.0,
    );
}

/// Nanoseconds this thread has run, from `/proc/thread-self/schedstat` (Linux).
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
