//! A loop for callgrind over the shared side-by-side corpus (`../shared/bench`): the
//! non-matching ASCII posts (what a sparse real rule set mostly sees), matched `REPS` times;
//! `POSTS=all`, `POSTS=non-ascii` or `POSTS=hit-ascii` (ASCII posts that match) for the others.
//!
//! ```text
//! cargo build --release --example profile_corpus
//! valgrind --tool=callgrind --toggle-collect='*profile_corpus*match_all*' \
//!     target/release/examples/profile_corpus target/peers/rules_100k.jsonl \
//!     target/peers/data/messages.txt 20000
//! ```
//! (`side_by_side.sh` writes the rules and the corpus under `target/peers`.) Instructions
//! per post = the collected total / the posts matched (printed). `REPS=n` matches the posts
//! `n` times and prints the best pass; the CPU time per post (this thread's, from
//! `/proc/thread-self/schedstat`) is the figure to compare on a busy machine. The posts go
//! through `Matcher::find_each`, as in `streamtrack bench match`; `ONE_BY_ONE=1` calls
//! `Matcher::find` for each instead (no prefetching of the next posts).

use std::path::Path;
use std::time::Instant;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::Message;

/// The command-line tool's allocator, as `streamtrack bench match` uses: with the system
/// allocator the posts' texts end up scattered among the freed memory of a million parsed
/// rules, and at 1M rules a post cost ~880 ns instead of the bench's ~560, a third of it
/// spent on a cache miss at the first read of each text (bench/journal.md, "Batches and
/// prefetching one post ahead").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The posts by one batch call (`Matcher::find_each`, which requests the next posts from
/// memory while one is matched), or with `ONE_BY_ONE=1` by one `find` call each.
#[inline(never)]
fn match_all(
    matcher: &Matcher,
    posts: &[Message],
    scratch: &mut Scratch,
    one_by_one: bool,
) -> usize {
    if one_by_one {
        return posts.iter().map(|m| matcher.find(m, scratch).len()).sum();
    }
    let mut matched = 0;
    matcher.find_each(posts, scratch, |_, found| matched += found.len());
    matched
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rules, messages, count] = &args[..] else {
        eprintln!("usage: profile_corpus RULES.jsonl MESSAGES.txt COUNT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("a count");
    let rules: Vec<_> = streamtrack::read::read_rules(Path::new(rules))
        .expect("a rules file")
        .into_iter()
        .map(|e| e.rule)
        .collect();
    let messages = streamtrack::read::read_messages(Path::new(messages)).expect("a corpus");
    let t = Instant::now();
    let matcher = Matcher::builder().hash_seed(1, 2).build(&rules);
    let compile = t.elapsed().as_secs_f64();
    let mut scratch = Scratch::new();
    let kind = std::env::var("POSTS").unwrap_or_else(|_| "miss-ascii".into());
    let posts: Vec<Message> = messages
        .iter()
        .filter(|m| match kind.as_str() {
            "all" => true,
            "non-ascii" => !m.text.is_ascii(),
            "hit-ascii" => m.text.is_ascii() && !matcher.find(m, &mut scratch).is_empty(),
            _ => m.text.is_ascii() && matcher.find(m, &mut scratch).is_empty(),
        })
        .take(count)
        .cloned()
        .collect();
    let bytes: usize = posts.iter().map(|m| m.text.len()).sum();
    let one_by_one = std::env::var("ONE_BY_ONE").as_deref() == Ok("1");
    let reps: usize = std::env::var("REPS").ok().and_then(|r| r.parse().ok()).unwrap_or(1);
    let n = posts.len().max(1) as f64;
    let (mut wall, mut cpu, mut matched) = (f64::MAX, f64::MAX, 0);
    for _ in 0..reps.max(1) {
        let (t, c) = (Instant::now(), thread_cpu_ns());
        matched = match_all(&matcher, &posts, &mut scratch, one_by_one);
        wall = wall.min(t.elapsed().as_secs_f64() * 1e9 / n);
        cpu = cpu.min(thread_cpu_ns().zip(c).map_or(f64::NAN, |(b, a)| (b - a) as f64 / n));
    }
    println!(
        "{} rules (compiled in {compile:.2} s, {} heap bytes/rule); {} {kind} posts of {:.0} bytes mean: {matched} matches, {wall:.0} ns/post, {cpu:.0} CPU ns/post (best of {reps})",
        rules.len(),
        matcher.heap_bytes() / rules.len().max(1),
        posts.len(),
        bytes as f64 / n,
    );
}

/// This thread's time on a CPU so far, in ns (Linux: `/proc/thread-self/schedstat`), so that
/// a figure taken on a machine shared with other work counts only this thread's time.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
