//! Where the engine's time goes: the same messages and registry matched by a bare loop over
//! `Snapshot::find` (no engine) and by the engine end to end, on 1 and 2 threads.
//!
//! `cargo run --release --example profile_engine -- 100000 200000` (rules, messages).
//! `MODE=engine1`, `engine2`, `bare1` or `bare2` runs one of them five times, for a profiler
//! (`perf record -g target/release/examples/profile_engine`). The example uses the
//! command-line tool's allocator (jemalloc), as the benchmark does.

use std::time::Instant;
use streamtrack::engine::{
    CallbackSink, Delivery, Engine, FullPolicy, IterSource, SubscriberConfig,
};
use streamtrack::registry::{NewRule, Registry, Scratch};
use streamtrack::Message;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const SUBSCRIBERS: usize = 1000;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let count: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let registry = Registry::builder().hash_seed(0x1234, 0x5678).build();
    let rules = RuleSetConfig::default().rules(n);
    registry.subscribe_all(rules.iter().enumerate().filter_map(|(i, g)| {
        Some(NewRule {
            subscriber: format!("s{}", i % SUBSCRIBERS),
            rule: g.parse().ok()?,
            tag: None,
        })
    }));
    registry.compact();
    let messages = WorkloadConfig::default().count(count).messages();
    let run = |mode: &str| match mode {
        "bare1" => bare(&registry, &messages, 1),
        "bare2" => bare(&registry, &messages, 2),
        "engine1" => engine(&registry, &messages, 1),
        "engine2" => engine(&registry, &messages, 2),
        other => panic!("unknown MODE {other}"),
    };
    if let Ok(mode) = std::env::var("MODE") {
        for _ in 0..5 {
            println!("{mode}: {:.3} M msgs/s", run(&mode) / 1e6);
        }
        return;
    }
    for round in 0..3 {
        let [b1, b2, e1, e2] = ["bare1", "bare2", "engine1", "engine2"].map(run);
        println!(
            "round {round}: bare {:.3} / {:.3} M msgs/s ({:.2}x), engine {:.3} / {:.3} M ({:.2}x)",
            b1 / 1e6,
            b2 / 1e6,
            b2 / b1,
            e1 / 1e6,
            e2 / 1e6,
            e2 / e1
        );
    }
}

/// Messages per second of `threads` threads each matching its share with `Snapshot::find`.
fn bare(registry: &Registry, messages: &[Message], threads: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut scratch = Scratch::new();
                let snapshot = registry.snapshot();
                let mut found = 0usize;
                for m in messages.iter().skip(t).step_by(threads) {
                    found += snapshot.find(m, &mut scratch).len();
                }
                found
            });
        }
    });
    messages.len() as f64 / start.elapsed().as_secs_f64()
}

/// Messages per second of the engine with `threads` matcher threads, from start to the last
/// delivery, every delivery taken by a sink of its subscriber.
fn engine(registry: &Registry, messages: &[Message], threads: usize) -> f64 {
    let config = SubscriberConfig::new().capacity(1 << 16).policy(FullPolicy::Block);
    let mut builder =
        Engine::builder(registry.clone()).subscriber_defaults(config).matcher_threads(threads);
    for i in 0..SUBSCRIBERS {
        let mut taken = 0u64;
        builder = builder.attach(
            &format!("s{i}"),
            CallbackSink::new(move |d: Delivery| {
                taken += u64::from(d.is_match());
                std::hint::black_box(taken);
                Ok(())
            }),
        );
    }
    let input = messages.to_vec();
    let start = Instant::now();
    builder.start(IterSource::new(input)).expect("the engine starts").join();
    messages.len() as f64 / start.elapsed().as_secs_f64()
}
