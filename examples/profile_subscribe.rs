//! What the small-set prefilter costs a write in the live registry (DESIGN.md, "The small-set
//! prefilter"): loads N workload rules in one layer, then subscribes 1,024 other workload
//! rules one by one (each write rebuilds the delta and its prefilter; every 64th freezes the
//! delta, which rebuilds the frozen layers' prefilter), with the prefilter off and on
//! (the default), alternated over ROUNDS rounds in this process.
//!
//! `cargo run --release --example profile_subscribe -- [RULES] [ROUNDS] [on|off]` (defaults
//! 1,000, 3 and both modes). Prints per round and mode the load's milliseconds (one
//! `subscribe_all`) and the mean, p50, p99 and max microseconds of a subscribe.

use std::time::Instant;
use streamtrack::registry::{NewRule, Registry};
use streamtrack::Rule;
use streamtrack_workload::RuleSetConfig;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000);
    let rounds: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(3);
    // `on` or `off`: that mode only (for a profiler).
    let only = args.get(3).map(|m| m == "on");
    let base = RuleSetConfig::default().rules(n);
    let extra: Vec<Rule> =
        RuleSetConfig::default().seed(99).rules(1_024).iter().map(|g| g.parse().unwrap()).collect();
    println!("{n} rules loaded, then 1,024 subscribed one by one");
    println!("| round | prefilter | load ms | keys at the end | mean µs | p50 | p99 | max |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for round in 0..rounds {
        for on in [false, true].into_iter().filter(|&on| only.is_none_or(|o| o == on)) {
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
            for (i, r) in extra.iter().enumerate() {
                let t = Instant::now();
                let _ = registry.subscribe(&format!("w{}", i % 100), r.clone(), None);
                micros.push(t.elapsed().as_secs_f64() * 1e6);
            }
            let keys = registry.snapshot().small_set_keys();
            let mean = micros.iter().sum::<f64>() / micros.len() as f64;
            micros.sort_by(f64::total_cmp);
            let at = |p: f64| micros[((micros.len() - 1) as f64 * p).round() as usize];
            println!(
                "| {round} | {} | {load:.0} | {} | {mean:.1} | {:.1} | {:.1} | {:.0} |",
                if on { "on" } else { "off" },
                keys.map_or("-".into(), |k| k.to_string()),
                at(0.5),
                at(0.99),
                at(1.0),
            );
        }
    }
}
