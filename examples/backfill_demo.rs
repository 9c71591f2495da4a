//! What a subscriber sees when a rule is added with backfill (README, "Dry run and
//! backfill"): a paced stream of workload messages runs through an engine with a ring of
//! recent messages; after a while new rules are dry-run over the ring, one of them is
//! subscribed with a window of the last second, and alice's deliveries are written as JSON
//! Lines to standard output (backfill first, flagged, then live), the figures to standard
//! error.
//!
//! `cargo run --release --example backfill_demo -- [RULE] [RATE]` (defaults `rust OR #ai`,
//! 5,000 messages per second).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::jsonl::JsonLinesSink;
use streamtrack::engine::{channel_source, CallbackSink, Delivery, Engine};
use streamtrack::{Registry, Rule};
use streamtrack_workload::firehose;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let text = std::env::args().nth(1).unwrap_or_else(|| "rust OR #ai".into());
    let rate: u64 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(5_000);
    let rule = match Rule::parse(&text) {
        Ok(rule) => rule,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let (tx, source) = channel_source(1024);
    let (backfilled, live) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (b, l) = (backfilled.clone(), live.clone());
    let mut out = JsonLinesSink::new(std::io::stdout()).with_subscriber_field("alice");
    let alice = CallbackSink::new(move |d: Delivery| {
        let n = if d.is_backfill() { &b } else { &l };
        // The first three of each kind are shown.
        if d.is_match() && n.fetch_add(1, Ordering::Relaxed) < 3 {
            streamtrack::Sink::send(&mut out, d)?;
        }
        Ok(())
    });
    let engine = Engine::builder(Registry::new())
        .recent_messages(100_000, Some(Duration::from_secs(60)))
        .attach("alice", alice)
        .start(source)?;
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            for (i, m) in firehose(11).enumerate() {
                if stop.load(Ordering::Relaxed) || tx.send(m).is_err() {
                    break;
                }
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    let rules = [rule.clone(), Rule::parse("the")?, Rule::parse("\"machine learning\"")?];
    let t = Instant::now();
    let report = engine.dry_run(&rules, 3).expect("the ring is on");
    eprintln!(
        "dry run over the ring ({} messages, {} KB) in {:.1} ms:",
        report.messages,
        engine.recent_bytes() >> 10,
        t.elapsed().as_secs_f64() * 1e3
    );
    for (r, rep) in rules.iter().zip(&report.rules) {
        eprintln!(
            "  {:<24} {:>6} matches ({:.2}%), e.g. {:?}",
            r.to_string(),
            rep.matches,
            rep.share * 100.0,
            rep.sample
        );
    }
    let t = Instant::now();
    let done =
        engine.subscribe_with_backfill("alice", rule.clone(), None, Duration::from_secs(1))?;
    eprintln!(
        "subscribed {text:?} with the last second's matches: {} backfilled of {} scanned, cut at message {}, in {:.1} ms",
        done.messages,
        done.scanned,
        done.cut,
        t.elapsed().as_secs_f64() * 1e3
    );
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    producer.join().expect("the producer ends");
    let finished = engine.join();
    std::io::stdout().flush()?;
    // The same stream again, matched on its own from the cut on: what live should be.
    let matcher = streamtrack::Matcher::new([&rule]);
    let mut scratch = streamtrack::matcher::Scratch::new();
    let expected = firehose(11)
        .take(finished.stats.received as usize)
        .skip(done.cut as usize)
        .filter(|m| !matcher.find(m, &mut scratch).is_empty())
        .count();
    eprintln!(
        "alice got {} backfill and {} live deliveries ({expected} messages from the cut on match, by the compiled matcher alone); {} messages read",
        backfilled.load(Ordering::Relaxed),
        live.load(Ordering::Relaxed),
        finished.stats.received
    );
    Ok(())
}
