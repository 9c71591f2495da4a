//! Figures for the engine's ring of recent messages (README, "Dry run and backfill";
//! DESIGN.md, "Backfill in the engine"), measured in one run:
//!
//! 1. engine throughput with the ring off and on, alternated (5 rounds each), with the
//!    process's CPU time per run;
//! 2. `Engine::dry_run` of 1,000 rules over a ring of M messages, against
//!    `dry_run::dry_run` (the compiled matcher alone) over the same messages;
//! 3. `Engine::subscribe_with_backfill` on that ring while the source keeps producing: the
//!    call's time, what it scanned and delivered, and the longest gap in another
//!    subscriber's deliveries during the call against the longest before it.
//!
//! `cargo run --release --example backfill_bench -- [RING] [MESSAGES] [RULES] [CAPACITY]` (defaults
//! 1,000,000 ring messages, 200,000 messages per throughput run, 100,000 rules, a ring of a
//! quarter of the run in part 1; a RING of 0 runs part 1 only).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamtrack::dry_run::DryRun;
use streamtrack::engine::{channel_source, CallbackSink, Delivery, Engine, IterSource};
use streamtrack::registry::{NewRule, Registry};
use streamtrack::{Message, Rule};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

/// The process's CPU time so far (user + system), from `/proc/self/stat` (Linux; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the line (utime, stime), in clock ticks (100 per second).
    (tick(11) + tick(12)) / 100.0
}

fn load_registry(n: usize, subscribers: usize) -> Registry {
    let registry = Registry::builder().hash_seed(0x1234, 0x5678).build();
    let rules = RuleSetConfig::default().rules(n);
    registry.subscribe_all(rules.iter().enumerate().filter_map(|(i, g)| {
        Some(NewRule {
            subscriber: format!("s{}", i % subscribers),
            rule: g.parse().ok()?,
            tag: None,
        })
    }));
    registry.compact();
    registry
}

/// One throughput run: messages per second and CPU seconds.
fn throughput(registry: &Registry, messages: &[Message], ring: Option<usize>) -> (f64, f64) {
    let delivered = Arc::new(AtomicU64::new(0));
    let mut b = Engine::builder(registry.clone()).matcher_threads(2);
    if let Some(capacity) = ring {
        b = b.recent_messages(capacity, None);
    }
    for s in 0..1_000 {
        let d = delivered.clone();
        b = b.attach(
            &format!("s{s}"),
            CallbackSink::new(move |_: Delivery| {
                d.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }),
        );
    }
    let source = IterSource::new(messages.to_vec());
    let (cpu, t) = (cpu_seconds(), Instant::now());
    let finished = b.start(source).unwrap().join();
    let (s, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    assert_eq!(finished.stats.received, messages.len() as u64);
    (messages.len() as f64 / s, cpu)
}

fn main() {
    let arg =
        |i: usize, d: usize| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (ring_n, msgs_n, rules_n) = (arg(1, 1_000_000), arg(2, 200_000), arg(3, 100_000));
    // The ring's capacity in part 1: by default a quarter of the run, so that it fills, then
    // evicts as it goes (the steady state).
    let capacity = arg(4, msgs_n / 4);

    // 1. Throughput, ring off and on, alternated.
    let registry = load_registry(rules_n, 1_000);
    let messages = WorkloadConfig::default().seed(7).count(msgs_n).messages();
    let _ = throughput(&registry, &messages[..msgs_n / 10], None); // warm-up
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        off.push(throughput(&registry, &messages, None));
        on.push(throughput(&registry, &messages, Some(capacity)));
    }
    let best = |v: &[(f64, f64)]| v.iter().map(|x| x.0).fold(0.0, f64::max);
    let cpu = |v: &[(f64, f64)]| v.iter().map(|x| x.1).sum::<f64>() / v.len() as f64;
    for (name, v) in [("off", &off), ("on ", &on)] {
        let rates: Vec<String> = v.iter().map(|x| format!("{:.0}", x.0)).collect();
        println!(
            "ring {name}: {} msgs/s (best {:.0}), CPU {:.2} s per run; {} rules, {} messages, ring of {capacity}, 2 matcher threads",
            rates.join(" / "),
            best(v),
            cpu(v),
            rules_n,
            msgs_n
        );
    }
    println!(
        "ring on / off: throughput {:.3} (best), CPU {:.3} (mean)",
        best(&on) / best(&off),
        cpu(&on) / cpu(&off)
    );
    drop(registry);
    drop(messages);
    if ring_n == 0 {
        return;
    }

    // 2. A ring of `ring_n` messages in a running engine; 1,000 rules dry-run over it.
    let registry = Registry::new();
    registry.subscribe("bob", Rule::parse("the").unwrap(), None).unwrap();
    let gaps = Arc::new(Mutex::new((Instant::now(), Vec::<(Instant, Duration)>::new())));
    let g = gaps.clone();
    let (tx, source) = channel_source(4096);
    let engine = Engine::builder(registry)
        .matcher_threads(2)
        .recent_messages(ring_n, None)
        .attach(
            "bob",
            CallbackSink::new(move |_: Delivery| {
                let now = Instant::now();
                let mut g = g.lock().unwrap();
                let gap = now - g.0;
                g.0 = now;
                g.1.push((now, gap));
                Ok(())
            }),
        )
        .attach("alice", CallbackSink::new(|_: Delivery| Ok(())))
        .start(source)
        .unwrap();
    let config = WorkloadConfig::default().count(ring_n);
    for m in config.message_stream() {
        tx.send(m).unwrap();
    }
    while engine.stats().received < ring_n as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let rules: Vec<Rule> =
        RuleSetConfig::default().seed(99).rules(1_000).iter().map(|g| g.parse().unwrap()).collect();
    let (cpu0, t) = (cpu_seconds(), Instant::now());
    let report = engine.dry_run(&rules, 3).unwrap();
    let (s, c) = (t.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    let hits: u64 = report.rules.iter().map(|r| r.matches).sum();
    println!(
        "Engine::dry_run: 1,000 rules over a ring of {} messages (~{} MB by recent_bytes): {s:.2} s = {:.0} msgs/s (CPU {c:.2} s), {hits} matches",
        report.messages,
        engine.recent_bytes() >> 20,
        report.messages as f64 / s
    );
    let t = Instant::now();
    let mut run = DryRun::new(&rules, 3);
    let mut fed = Vec::with_capacity(ring_n);
    fed.extend(config.message_stream());
    let t_gen = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for m in &fed {
        run.feed(m);
    }
    let s2 = t.elapsed().as_secs_f64();
    drop(fed);
    assert_eq!(run.report(), report, "the engine's dry run equals the library's");
    println!(
        "dry_run::DryRun (compiled matcher alone) over the same messages: {s2:.2} s = {:.0} msgs/s (generation {t_gen:.2} s not counted); engine/library time = {:.3}",
        ring_n as f64 / s2,
        s / s2
    );

    // 3. Backfill on the full ring while the source keeps producing.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut i = 0u64;
            for m in WorkloadConfig::default().seed(5).count(usize::MAX).message_stream() {
                if stop.load(Ordering::Relaxed) || tx.send(m).is_err() {
                    break;
                }
                i += 1;
            }
            i
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, t0) = (cpu_seconds(), Instant::now());
    let done = engine
        .subscribe_with_backfill("alice", Rule::parse("rust OR #ai").unwrap(), None, Duration::MAX)
        .unwrap();
    let (t1, c) = (Instant::now(), cpu_seconds() - cpu0);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let produced = producer.join().unwrap();
    let took = t1 - t0;
    let g = gaps.lock().unwrap();
    let during = g.1.iter().filter(|(at, _)| *at > t0 && *at <= t1 + Duration::from_millis(50));
    let during = during.map(|x| x.1).max().unwrap_or_default();
    // The producer has run for 500 ms: the 400 ms before the call are the steady state.
    let before = g.1.iter().filter(|(at, _)| *at > t0 - Duration::from_millis(400) && *at <= t0);
    let before = before.map(|x| x.1).max().unwrap_or_default();
    println!(
        "subscribe_with_backfill on a {}-message ring, source producing ({produced} more messages meanwhile): {:.0} ms (CPU {c:.2} s), {} scanned, {} backfilled, cut at {}; longest gap in bob's deliveries during the call {:.1} ms, before it {:.1} ms",
        engine.recent_len(),
        took.as_secs_f64() * 1e3,
        done.scanned,
        done.messages,
        done.cut,
        during.as_secs_f64() * 1e3,
        before.as_secs_f64() * 1e3
    );
    drop(g);
    let finished = engine.shutdown();
    println!("engine: {} messages read in all", finished.stats.received);
}
