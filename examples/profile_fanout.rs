//! Phases of a fan-out: `Snapshot::find` of a message matching one rule of each of N
//! subscribers, then the engine from hand-over to the last sink.
//!
//! `cargo run --release --example profile_fanout -- 10000 50` (subscribers,
//! rounds).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::{channel_source, CallbackSink, Delivery, Engine};
use streamtrack::registry::{NewRule, Registry, Scratch};
use streamtrack::{Message, Rule};

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let subs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(50);
    let registry = Registry::new();
    let rule = Rule::parse("fanout").unwrap();
    registry.subscribe_all((0..subs).map(|i| NewRule {
        subscriber: format!("f{i}"),
        rule: rule.clone(),
        tag: None,
    }));
    registry.compact();
    let msg = Message::new("0", "a fanout message");
    let mut scratch = Scratch::new();
    let snap = registry.snapshot();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let t = Instant::now();
        let n = snap.find(&msg, &mut scratch).len();
        assert_eq!(n, subs);
        best = best.min(t.elapsed().as_secs_f64() * 1e6);
    }
    println!("find: best {best:.0} µs");
    let done = Arc::new(AtomicUsize::new(0));
    let (fin_tx, fin_rx) = crossbeam_channel::unbounded::<Instant>();
    let (tx, source) = channel_source(16);
    let mut b = Engine::builder(registry.clone());
    if let Some(n) = std::env::var("DISPATCHERS").ok().and_then(|v| v.parse().ok()) {
        b = b.dispatcher_threads(n);
    }
    // Receipts are counted in shards of consecutive subscribers (a dispatcher's run), one
    // cache line each, so that the sinks on two dispatchers do not share a counter.
    const SHARDS: usize = 64;
    let shard_of = |i: usize| (i / 64) % SHARDS;
    let mut shard_size = [0usize; SHARDS];
    (0..subs).for_each(|i| shard_size[shard_of(i)] += 1);
    let shards = shard_size.iter().filter(|&&n| n > 0).count();
    let counts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..SHARDS * 16).map(|_| AtomicUsize::new(0)).collect());
    for i in 0..subs {
        let (counts, d, fin) = (counts.clone(), done.clone(), fin_tx.clone());
        let (shard, size) = (shard_of(i), shard_size[shard_of(i)]);
        b = b.attach(
            &format!("f{i}"),
            CallbackSink::new(move |x: Delivery| {
                if x.is_match()
                    && counts[shard * 16].fetch_add(1, Ordering::AcqRel) + 1 == size
                    && d.fetch_add(1, Ordering::AcqRel) + 1 == shards
                {
                    let _ = fin.send(Instant::now());
                }
                Ok(())
            }),
        );
    }
    let engine = b.start(source).unwrap();
    let cpu_start = thread_cpu();
    let mut times = Vec::new();
    for r in 0..rounds {
        done.store(0, Ordering::SeqCst);
        counts.iter().for_each(|c| c.store(0, Ordering::SeqCst));
        let t = Instant::now();
        tx.send(Message::new(r.to_string(), "a fanout message")).unwrap();
        let end = fin_rx.recv().unwrap();
        times.push(end.duration_since(t).as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(
            std::env::var("GAP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5),
        ));
    }
    let cpu = thread_cpu();
    drop(tx);
    engine.join();
    if std::env::var_os("CPU").is_some() {
        for (name, ns) in cpu {
            let before = cpu_start.iter().find(|(n, _)| *n == name).map_or(0, |x| x.1);
            let ns = ns - before.min(ns);
            println!("cpu {name}: {:.0} µs per round", ns as f64 / 1e3 / rounds as f64);
        }
    }
    times.sort_by(f64::total_cmp);
    println!("engine: median {:.0} µs, best {:.0} µs", times[times.len() / 2], times[0]);
}

/// Time on CPU so far by thread name (Linux `schedstat`), summed over threads of one name.
fn thread_cpu() -> Vec<(String, u64)> {
    let mut by_name: std::collections::BTreeMap<String, u64> = Default::default();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for task in dir.flatten() {
            let p = task.path();
            let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
            let ns = std::fs::read_to_string(p.join("schedstat"))
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
                .unwrap_or(0);
            *by_name.entry(name.trim().to_string()).or_default() += ns;
        }
    }
    by_name.into_iter().collect()
}
