//! `Matcher::find` with a reused `Scratch` allocates nothing once the scratch has grown
//! (the promise of `matcher::Scratch`'s docs): counted with a global allocator wrapper.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::Rule;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

/// Counts allocations made by the current thread (other test threads do not disturb it).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded unchanged to the system allocator, under the caller's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, that is from the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: as for `dealloc`; the caller guarantees `new_size` is valid for `layout`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn matching_with_a_warm_scratch_allocates_nothing() {
    let rules: Vec<Rule> =
        RuleSetConfig::default().rules(20_000).iter().map(|g| g.parse().unwrap()).collect();
    let matcher = Matcher::builder().build(&rules);
    // The standard workload: ASCII and non-ASCII text, hashtags, mentions, URLs, emoji,
    // no-space scripts, some messages with entity fields and coordinates.
    let messages = WorkloadConfig::default().count(3_000).messages();
    let mut scratch = Scratch::new();
    let mut first = 0;
    for m in &messages {
        first += matcher.find(m, &mut scratch).len();
    }
    assert!(first > 0, "the workload matches some rules");
    let before = allocations();
    let mut second = 0;
    for m in &messages {
        second += matcher.find(m, &mut scratch).len();
    }
    let made = allocations() - before;
    assert_eq!(second, first);
    assert_eq!(made, 0, "{made} allocations matching {} messages a second time", messages.len());
    // The batch call too (it prefetches the next messages; it allocates nothing either).
    let before = allocations();
    let mut batch = 0;
    matcher.find_each(&messages, &mut scratch, |_, found| batch += found.len());
    let made = allocations() - before;
    assert_eq!(batch, first);
    assert_eq!(made, 0, "{made} allocations matching {} messages by find_each", messages.len());
}

#[test]
fn a_registry_snapshot_matches_without_allocating_once_warm() {
    use streamtrack::registry::{NewRule, Registry};
    let registry = Registry::builder().delta_max(1_000).background_merges(false).build();
    // Frozen layers, a delta and tombstones, as a registry has after updates.
    let rules = RuleSetConfig::default().rules(5_500);
    for (c, chunk) in rules.chunks(1_000).enumerate() {
        registry.subscribe_all(chunk.iter().enumerate().map(|(i, g)| NewRule {
            subscriber: format!("s{}", (c * 1_000 + i) % 50),
            rule: g.parse().unwrap(),
            tag: None,
        }));
    }
    for rule in registry.rules_of("s7").iter().take(20) {
        registry.unsubscribe(rule.id).unwrap();
    }
    let (layers, tombstones) = registry.layer_stats();
    assert!(layers >= 2 && tombstones > 0, "{layers} layers, {tombstones} tombstones");
    snapshot_matches_without_allocating(&registry.snapshot(), 2_000);
}

/// Matches `count` generated messages with `snapshot` twice (the first pass warms the
/// scratch) and asserts that the second finds the same and allocates nothing.
fn snapshot_matches_without_allocating(snapshot: &streamtrack::registry::Snapshot, count: usize) {
    let messages = WorkloadConfig::default().count(count).messages();
    let mut scratch = streamtrack::registry::Scratch::new();
    let mut out = Vec::new();
    let mut first = 0;
    for m in &messages {
        snapshot.find_into(m, &mut scratch, &mut out);
        first += out.len();
    }
    assert!(first > 0, "the workload matches some rules");
    let before = allocations();
    let mut second = 0;
    for m in &messages {
        snapshot.find_into(m, &mut scratch, &mut out);
        second += out.len();
    }
    let made = allocations() - before;
    assert_eq!(second, first);
    assert_eq!(made, 0, "{made} allocations matching {} messages a second time", messages.len());
}

/// Keeping matched messages allocates nothing once the log is full: each message is copied
/// into a chunk the log reuses, and the series' rings stay at their bound.
#[test]
fn keeping_messages_in_a_full_log_allocates_nothing() {
    use streamtrack::analytics::{Analytics, AnalyticsConfig, SeriesKey};
    let mut cfg = AnalyticsConfig::default().with_recent(50, 256 << 10);
    cfg.sentiment = false;
    let mut a = Analytics::new(cfg);
    let keys: Vec<SeriesKey> = (0..8).map(|i| SeriesKey::rule(&i.to_string())).collect();
    let messages = WorkloadConfig::default().count(3_000).messages();
    let now = 1_700_000_000_000; // one second: no bucket closes, no event to allocate
    let record = |a: &mut Analytics| {
        for (i, m) in messages.iter().enumerate() {
            a.record_scored(m, None, &keys[i % 8..(i % 8 + 2).min(8)], now);
        }
    };
    for _ in 0..4 {
        record(&mut a); // the log fills and cycles; the rings reach their bound
    }
    let evicted = a.stats().recent_evicted;
    assert!(evicted > 0, "the log is full");
    let before = allocations();
    record(&mut a);
    let made = allocations() - before;
    assert!(a.stats().recent_evicted > evicted, "the log cycled during the count");
    assert_eq!(made, 0, "{made} allocations keeping {} messages", messages.len());
}

#[test]
fn scoring_reactions_once_warm_allocates_nothing() {
    use streamtrack::analytics::SentimentScorer;
    // ASCII and non-ASCII text, emoji (descriptions spliced in), entities, punctuation. Not a
    // word with a capital sigma: its final-sigma rule is `str::to_lowercase`'s, which allocates.
    let mut texts: Vec<String> = WorkloadConfig::default()
        .count(3_000)
        .messages()
        .into_iter()
        .map(|m| m.text)
        .filter(|t| !t.contains('Σ'))
        .collect();
    texts.extend(
        ["GOOOOD &lt;3 :) but not BAD!!", "Très bien, ÉCOLE ok,", "東京 😀 kind of great"]
            .map(String::from),
    );
    for s in [SentimentScorer::new(), SentimentScorer::python_compatible()] {
        let first: f64 = texts.iter().map(|t| s.score(t).compound).sum();
        let before = allocations();
        let second: f64 = texts.iter().map(|t| s.score(t).compound).sum();
        let made = allocations() - before;
        assert_eq!(second.to_bits(), first.to_bits());
        assert_eq!(made, 0, "{made} allocations scoring {} texts a second time", texts.len());
    }
}

#[test]
fn a_registry_snapshot_with_the_small_set_prefilter_matches_without_allocating() {
    use streamtrack::registry::{NewRule, Registry};
    // Frozen layers, a delta, tombstones, and the prefilter (frozen layers' and delta's) in
    // front of them.
    let registry = Registry::builder()
        .delta_max(64)
        .background_merges(false)
        .small_set_prefilter(true)
        .build();
    let rules = RuleSetConfig::default().rules(3_000);
    for (c, chunk) in rules.chunks(1_000).enumerate() {
        if c < 2 {
            registry.subscribe_all(chunk.iter().enumerate().map(|(i, g)| NewRule {
                subscriber: format!("s{}", i % 20),
                rule: g.parse().unwrap(),
                tag: None,
            }));
        } else {
            for (i, g) in chunk.iter().take(40).enumerate() {
                let _ = registry.subscribe(&format!("s{}", i % 20), g.parse().unwrap(), None);
            }
        }
    }
    for rule in registry.rules_of("s7").iter().take(5) {
        registry.unsubscribe(rule.id).unwrap();
    }
    let (layers, tombstones) = registry.layer_stats();
    assert!(layers >= 2 && tombstones > 0, "{layers} layers, {tombstones} tombstones");
    let snapshot = registry.snapshot();
    assert!(snapshot.small_set_keys().is_some(), "the prefilter is on");
    snapshot_matches_without_allocating(&snapshot, 3_000);
}
