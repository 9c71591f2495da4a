//! The small-set prefilter on a rule file and a corpus: the share of posts it lets through,
//! and matching time with and without it, alternated in one process (the machine is shared:
//! compare within a run).
//!
//! ```text
//! cargo build --release --example small_set
//! target/release/examples/small_set target/peers/rules_1k.jsonl target/peers/data/messages.txt 5
//! ```
//! (`../shared/bench/side_by_side.sh` writes the rules and the corpus under `target/peers`.)
//! Prints the prefilter's own CPU time per post (best of the rounds), then, per round, CPU
//! ns per post (the thread's own CPU time, not wall time) with and
//! without the prefilter, for all posts, ASCII posts and non-ASCII posts.

use std::path::Path;
use std::time::Instant;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::Message;

#[inline(never)]
fn match_all(matcher: &Matcher, posts: &[Message], scratch: &mut Scratch) -> usize {
    posts.iter().map(|m| matcher.find(m, scratch).len()).sum()
}

/// The posts the prefilter lets through.
#[inline(never)]
fn prefilter_all(matcher: &Matcher, posts: &[Message]) -> usize {
    posts.iter().filter(|m| matcher.small_set_passes(m) == Some(true)).count()
}

/// CPU time of this thread in ns (Linux: `/proc/thread-self/schedstat`), else wall time: on
/// a shared machine the thread waits for a core much of the time.
fn cpu_ns(start: Instant) -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| start.elapsed().as_nanos() as f64)
}

fn ns_per_post(matcher: &Matcher, posts: &[Message], scratch: &mut Scratch) -> f64 {
    let t = Instant::now();
    let before = cpu_ns(t);
    std::hint::black_box(match_all(matcher, posts, scratch));
    (cpu_ns(t) - before) / posts.len().max(1) as f64
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (rules, messages, rounds) = match &args[..] {
        [r, m] => (r, m, 3),
        [r, m, n] => (r, m, n.parse().expect("a number of rounds")),
        _ => {
            eprintln!("usage: small_set RULES.jsonl MESSAGES.txt [ROUNDS]");
            std::process::exit(2);
        }
    };
    let rules: Vec<_> = streamtrack::read::read_rules(Path::new(rules))
        .expect("a rules file")
        .into_iter()
        .map(|e| e.rule)
        .collect();
    let posts = streamtrack::read::read_messages(Path::new(messages)).expect("a corpus");
    let t = Instant::now();
    let with = Matcher::builder().hash_seed(1, 2).small_set_prefilter(true).build(&rules);
    let compile_with = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let without = Matcher::builder().hash_seed(1, 2).small_set_prefilter(false).build(&rules);
    let compile_without = t.elapsed().as_secs_f64();
    let Some(keys) = with.small_set_keys() else {
        eprintln!("these rules cannot be keyed (contains:, a track token without a word)");
        std::process::exit(1);
    };
    let ascii: Vec<Message> = posts.iter().filter(|m| m.text.is_ascii()).cloned().collect();
    let non_ascii: Vec<Message> = posts.iter().filter(|m| !m.text.is_ascii()).cloned().collect();
    let mut scratch = Scratch::new();
    let pass = |list: &[Message]| {
        list.iter().filter(|m| with.small_set_passes(m) == Some(true)).count() as f64
            / list.len().max(1) as f64
    };
    let matching = posts.iter().filter(|m| !without.find(m, &mut scratch).is_empty()).count()
        as f64
        / posts.len() as f64;
    println!(
        "{} rules, {keys} keys (compile {:.1} ms with, {:.1} ms without; {} heap bytes/rule with, {} without); {} posts ({:.1}% non-ASCII): {:.2}% match, the prefilter passes {:.2}% (ASCII {:.2}%, non-ASCII {:.2}%)",
        rules.len(),
        compile_with * 1e3,
        compile_without * 1e3,
        with.heap_bytes() / rules.len().max(1),
        without.heap_bytes() / rules.len().max(1),
        posts.len(),
        100.0 * non_ascii.len() as f64 / posts.len() as f64,
        100.0 * matching,
        100.0 * pass(&posts),
        100.0 * pass(&ascii),
        100.0 * pass(&non_ascii),
    );
    if std::env::var_os("WITH_ONLY").is_some() {
        // For a profiler: the prefilter's matcher only.
        for r in 1..=rounds {
            let a = ns_per_post(&with, &posts, &mut scratch);
            println!("round {r}: {a:.0} ns/post with the prefilter");
        }
        return;
    }
    // The prefilter alone (its scan of every string of every post), min over the rounds of
    // 10 passes (the thread's CPU time may be counted in ticks of a few ms).
    let mut scan = f64::INFINITY;
    for _ in 0..rounds {
        let t = Instant::now();
        let before = cpu_ns(t);
        for _ in 0..10 {
            std::hint::black_box(prefilter_all(&with, std::hint::black_box(&posts)));
        }
        scan = scan.min((cpu_ns(t) - before) / (10 * posts.len()).max(1) as f64);
    }
    println!("the prefilter alone: {scan:.1} ns/post (best of {rounds} rounds)");
    println!("ns/post: all (with / without = ratio), ASCII, non-ASCII");
    for r in 1..=rounds {
        let mut row = format!("round {r}:");
        for list in [&posts, &ascii, &non_ascii] {
            let a = ns_per_post(&with, list, &mut scratch);
            let b = ns_per_post(&without, list, &mut scratch);
            row.push_str(&format!("  {a:.0} / {b:.0} = {:.2}x", b / a));
        }
        println!("{row}");
    }
}
