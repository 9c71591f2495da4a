//! What the small-set prefilter costs a write in the live registry (DESIGN.md, "The small-set
//! prefilter"): loads N workload rules in one layer, then subscribes 1,024 other workload
//! rules one by one (each write rebuilds the delta and its prefilter; every 64th freezes the
//! delta, which rebuilds the frozen layers' prefilter), with the prefilter off and on
//! (the default), alternated over ROUNDS rounds in this process.
//!
//! `cargo run --release --example profile_subscribe -- [RULES] [ROUNDS]` (defaults 1,000 and
//! 3). Prints per round and mode the load's milliseconds (one `subscribe_all`), the mean, p50, p99 and max microseconds of a subscribe, and
//! the thread's CPU seconds for the 1,024 subscribes.

use std::time::Instant;
use streamtrack::registry::{NewRule, Registry};
use streamtrack::Rule;
use streamtrack_workload::RuleSetConfig;

/// CPU seconds of this thread (Linux), or 0.
fn thread_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime and stime are the
    // 12th and 13th of them, in clock ticks (100 per second on Linux).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    let base = RuleSetConfig::default().rules(n);
    let extra: Vec<Rule> =
        RuleSetConfig::default().seed(99).rules(1_024).iter().map(|g| g.parse().unwrap()).collect();
    println!("{n} rules loaded, then 1,024 subscribed one by one");
    println!(
        "| round | prefilter | load ms | keys at the end | mean µs | p50 | p99 | max | CPU s |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
    for round in 0..rounds {
        for on in [false, true] {
            let mut b = Registry::builder().hash_seed(1, 2);
            if !on {
                b = b.small_set_prefilter(false);
            }
            let registry = b.build();
            let rules: Vec<NewRule> = base
                .iter()
                .enumerate()
                .map(|(i, g)| NewRule {
                    subscriber: format!("s{}", i % 1_000),
                    rule: g.parse().unwrap(),
                    tag: None,
                })
                .collect();
            let t = Instant::now();
            registry.subscribe_all(rules);
            let load = t.elapsed().as_secs_f64() * 1e3;
            let mut micros = Vec::with_capacity(extra.len());
            let cpu = thread_cpu_secs();
            for (i, r) in extra.iter().enumerate() {
                let t = Instant::now();
                let _ = registry.subscribe(&format!("w{}", i % 100), r.clone(), None);
                micros.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let cpu = thread_cpu_secs() - cpu;
            let keys = registry.snapshot().small_set_keys();
            let mean = micros.iter().sum::<f64>() / micros.len() as f64;
            micros.sort_by(f64::total_cmp);
            let at = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize];
            println!(
                "| {round} | {} | {load:.0} | {} | {mean:.1} | {:.1} | {:.1} | {:.0} | {cpu:.2} |",
                if on { "on" } else { "off" },
                keys.map_or("-".into(), |k| k.to_string()),
                at(0.5),
                at(0.99),
                at(1.0),
            );
        }
    }
}
