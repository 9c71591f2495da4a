//! Phases of a fan-out: `Snapshot::find` of a message matching one rule of each of N
//! subscribers, then the engine from hand-over to the last sink.
//!
//! `cargo run --release --features cli --example profile_fanout -- 10000 50` (subscribers,
//! rounds).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::{channel_source, CallbackSink, Delivery, Engine};
use streamtrack::registry::{NewRule, Registry, Scratch};
use streamtrack::{Message, Rule};

#[cfg(feature = "cli")]
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
    for i in 0..subs {
        let (d, fin) = (done.clone(), fin_tx.clone());
        b = b.attach(
            &format!("f{i}"),
            CallbackSink::new(move |x: Delivery| {
                if x.is_match() && d.fetch_add(1, Ordering::AcqRel) + 1 == subs {
                    let _ = fin.send(Instant::now());
                }
                Ok(())
            }),
        );
    }
    let engine = b.start(source).unwrap();
    let mut times = Vec::new();
    for r in 0..rounds {
        done.store(0, Ordering::SeqCst);
        let t = Instant::now();
        tx.send(Message::new(r.to_string(), "a fanout message")).unwrap();
        let end = fin_rx.recv().unwrap();
        times.push(end.duration_since(t).as_secs_f64() * 1e6);
        std::thread::sleep(Duration::from_millis(
            std::env::var("GAP_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5),
        ));
    }
    drop(tx);
    engine.join();
    times.sort_by(f64::total_cmp);
    println!("engine: median {:.0} µs, best {:.0} µs", times[times.len() / 2], times[0]);
}
