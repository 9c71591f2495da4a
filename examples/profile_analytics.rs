//! Where the analytics stage's cost goes in the engine: the engine over a rules file and a
//! messages file, with or without `EngineBuilder::analytics`, for a profiler that splits the
//! cost by thread (the stage's threads are named `streamtrack-analytics` and
//! `streamtrack-score`). Instructions per thread, the steady figure on a busy machine:
//!
//! ```text
//! cargo build --release --example profile_analytics
//! RUNS=1 MODE=with valgrind --tool=callgrind --separate-threads=yes \
//!     target/release/examples/profile_analytics \
//!     target/peers/rules_100k.jsonl target/peers/data/messages.txt 300000
//! ```
//! `MODE` is `with` (the default), `without` or `counts` (analytics without reactions);
//! `RUNS` (default 5) the number of runs, `THREADS` the matcher threads (default: the
//! engine's). `gen` for RULES or MESSAGES takes the generated
//! workload's (the first 100k rules of the standard mix; COUNT generated messages), as
//! `streamtrack bench engine` does without `--rules-file` / `--messages-file`. `STAMP=1`
//! gives message `i` the event time `T + i / 1000` ms (1M messages a second, about what the
//! engine runs at): the stage's clock then follows the messages rather than the wall clock,
//! which under callgrind runs ~60 times slower and would close buckets (burst detectors,
//! `advance`) ~60 times as often as a real run does.
//! `RECENT=per_key,cap` sets the kept messages' bounds (`RECENT=0,0` keeps none: with it the
//! stage's cost without reactions fell to about nothing, 2026-12-07).
//! Sinks read each delivery's reaction, as `streamtrack bench engine --analytics` does.
//! Each run prints its throughput and the CPU time of the whole process during it (all
//! threads; 10 ms ticks): the figure to compare on a busy machine.

use std::path::Path;
use std::time::Instant;
use streamtrack::analytics::AnalyticsConfig;
use streamtrack::engine::{
    CallbackSink, Delivery, Engine, FullPolicy, IterSource, SubscriberConfig,
};
use streamtrack::registry::{NewRule, Registry};
use streamtrack::Message;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SUBSCRIBERS: usize = 1000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [rules, messages, count] = &args[..] else {
        eprintln!("usage: profile_analytics RULES.jsonl MESSAGES COUNT");
        std::process::exit(2);
    };
    let count: usize = count.parse().expect("a count");
    let registry = Registry::builder().hash_seed(0x1234, 0x5678).build();
    let rules: Vec<streamtrack::Rule> = if rules == "gen" {
        RuleSetConfig::default().rules(100_000).iter().filter_map(|g| g.parse().ok()).collect()
    } else {
        let read = streamtrack::read::read_rules(Path::new(rules)).expect("a rules file");
        read.into_iter().map(|e| e.rule).collect()
    };
    registry.subscribe_all(rules.into_iter().enumerate().map(|(i, rule)| NewRule {
        subscriber: format!("s{}", i % SUBSCRIBERS),
        rule,
        tag: None,
    }));
    registry.compact();
    let messages: Vec<Message> = if messages == "gen" {
        WorkloadConfig::default().count(count).messages()
    } else {
        let corpus = streamtrack::read::read_messages(Path::new(messages)).expect("a corpus");
        corpus.iter().cycle().take(count).cloned().collect()
    };
    let messages: Vec<Message> = if std::env::var("STAMP").is_ok_and(|s| s == "1") {
        let t0 = 1_700_000_000_000i64;
        messages
            .into_iter()
            .enumerate()
            .map(|(i, m)| m.with_timestamp(t0 + i as i64 / 1000))
            .collect()
    } else {
        messages
    };
    let mode = std::env::var("MODE").unwrap_or_else(|_| "with".into());
    let runs: usize = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5);
    for _ in 0..runs {
        let config = SubscriberConfig::new().capacity(1 << 16).policy(FullPolicy::Block);
        let mut builder = Engine::builder(registry.clone()).subscriber_defaults(config);
        if let Some(n) = std::env::var("THREADS").ok().and_then(|t| t.parse().ok()) {
            builder = builder.matcher_threads(n);
        }
        match mode.as_str() {
            "with" => builder = builder.analytics(config_with_recent()),
            "counts" => {
                let mut c = config_with_recent();
                c.sentiment = false;
                builder = builder.analytics(c);
            }
            _ => {}
        }
        for i in 0..SUBSCRIBERS {
            let mut taken = 0u64;
            builder = builder.attach(
                &format!("s{i}"),
                CallbackSink::new(move |d: Delivery| {
                    taken += u64::from(d.is_match());
                    std::hint::black_box(taken);
                    std::hint::black_box(d.reaction());
                    Ok(())
                }),
            );
        }
        let input = messages.clone();
        let cpu0 = streamtrack_workload::process_cpu_secs();
        let start = Instant::now();
        let done = builder.start(IterSource::new(input)).expect("the engine starts").join();
        let cpu = cpu0.zip(streamtrack_workload::process_cpu_secs()).map_or(0.0, |(a, b)| b - a);
        println!(
            "{mode}: {:.3} M msgs/s, {:.2} CPU s, {} matched",
            count as f64 / start.elapsed().as_secs_f64() / 1e6,
            cpu,
            done.stats.matched
        );
    }
}

/// The default analytics settings, with the kept messages' bounds from `RECENT=per_key,cap`
/// (messages per series, bytes in all) when it is set.
fn config_with_recent() -> AnalyticsConfig {
    let config = AnalyticsConfig::default();
    let Ok(recent) = std::env::var("RECENT") else { return config };
    let bounds =
        recent.split_once(',').and_then(|(k, cap)| Some((k.parse().ok()?, cap.parse().ok()?)));
    let (per_key, cap) = bounds.expect("RECENT=per_key,cap (two integers)");
    config.with_recent(per_key, cap)
}
