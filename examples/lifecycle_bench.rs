//! Figures for the life of a rule (README, "Durable rules"; DESIGN.md, "The durable
//! registry"): durable subscribes per second per durability setting, log and snapshot bytes
//! per rule, reopen time for N rules, and a dry run of 1,000 rules over a ring of M messages
//! (compiled matcher) against the reference matcher on a slice of it.
//!
//! `cargo run --release --example lifecycle_bench -- [RULES] [MESSAGES] [DIR]`
//! (defaults 1,000,000 rules, 1,000,000 messages, a directory under the system temp dir).

use std::time::{Duration, Instant};
use streamtrack::dry_run::RecentMessages;
use streamtrack::durable::{Durability, DurableRegistry, OpenOptions};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::registry::NewRule;
use streamtrack::Rule;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

fn dir_bytes(dir: &std::path::Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// The phases of an open, for the figures (DESIGN.md, "The durable registry").
fn phases(p: &streamtrack::durable::OpenPhases) -> String {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "read {:.0} ms, check {:.0} ms, decode {:.0} ms, parse {:.0} ms, registry {:.0} ms, compile {:.0} ms",
        ms(p.read),
        ms(p.check),
        ms(p.decode),
        ms(p.parse),
        ms(p.registry),
        ms(p.compile)
    )
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_rules: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let n_msgs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let base = args.get(3).map(Into::into).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("streamtrack-lifecycle-bench-{}", std::process::id()))
    });
    let fresh = |name: &str| {
        let d = std::path::PathBuf::from(&base).join(name);
        let _ = std::fs::remove_dir_all(&d);
        d
    };

    // 1. Durable subscribes per second, one at a time.
    let words = RuleSetConfig::default().seed(7).rules(20_000);
    for (label, durability, n) in [
        ("every-op (fdatasync per subscribe)", Durability::EveryOp, 2_000usize),
        ("group commit, 5 ms", Durability::Group { max_delay: Duration::from_millis(5) }, 20_000),
    ] {
        let d = fresh("subs");
        let (reg, _) =
            DurableRegistry::open(&d, OpenOptions::new().durability(durability)).unwrap();
        let rules: Vec<Rule> = words[..n].iter().map(|r| r.parse().unwrap()).collect();
        let t = Instant::now();
        let mut last = None;
        for (i, r) in rules.into_iter().enumerate() {
            last = Some(reg.subscribe(&format!("s{i}"), r, None).unwrap().receipt);
        }
        reg.wait(last.unwrap()).unwrap();
        let s = t.elapsed().as_secs_f64();
        println!("subscribe, {label}: {n} in {s:.2} s = {:.0}/s", n as f64 / s);
    }

    // 2. N rules: bulk load, log bytes, snapshot bytes, reopen times.
    let d = fresh("big");
    let generated = RuleSetConfig::default().rules(n_rules);
    let t = Instant::now();
    let parsed: Vec<NewRule> = generated
        .iter()
        .enumerate()
        .map(|(i, g)| NewRule {
            subscriber: format!("s{}", i % 10_000),
            rule: g.parse().unwrap(),
            tag: g.tag.clone(),
        })
        .collect();
    println!("parse {n_rules} rules: {:.2} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    let plain = streamtrack::registry::Registry::new();
    let ok = plain.subscribe_all(parsed.clone()).iter().filter(|r| r.is_ok()).count();
    println!(
        "in-memory Registry::subscribe_all of the same {ok} parsed rules (the compile floor of a reopen): {:.2} s",
        t.elapsed().as_secs_f64()
    );
    drop(plain);
    let opts = || OpenOptions::new().snapshot_min_records(usize::MAX);
    let (reg, _) = DurableRegistry::open(&d, opts()).unwrap();
    let t = Instant::now();
    let mut batch = Vec::new();
    let mut stored = 0;
    for r in parsed {
        batch.push(r);
        if batch.len() == 100_000 {
            let w = reg.subscribe_all(std::mem::take(&mut batch)).unwrap();
            stored += w.value.iter().filter(|r| r.is_ok()).count();
        }
    }
    let w = reg.subscribe_all(batch).unwrap();
    stored += w.value.iter().filter(|r| r.is_ok()).count();
    let load = t.elapsed().as_secs_f64();
    let log = dir_bytes(&d, "log-");
    println!(
        "bulk subscribe_all (100k per batch, one sync each): {stored} rules in {load:.2} s = {:.0}/s; log {log} bytes = {:.1} bytes/rule",
        stored as f64 / load,
        log as f64 / stored as f64
    );
    drop(reg);
    let t = Instant::now();
    let (reg, report) = DurableRegistry::open(&d, opts()).unwrap();
    println!(
        "reopen from the log: {} rules in {:.2} s ({})",
        report.rules,
        t.elapsed().as_secs_f64(),
        phases(&report.phases)
    );
    let t = Instant::now();
    reg.compact().unwrap();
    let snap = dir_bytes(&d, "snapshot-");
    println!(
        "snapshot: {:.2} s, {snap} bytes = {:.1} bytes/rule",
        t.elapsed().as_secs_f64(),
        snap as f64 / stored as f64
    );
    drop(reg);
    let t = Instant::now();
    let (reg, report) = DurableRegistry::open(&d, opts()).unwrap();
    println!(
        "reopen from the snapshot: {} rules in {:.2} s ({})",
        report.rules,
        t.elapsed().as_secs_f64(),
        phases(&report.phases)
    );
    drop(reg);
    let _ = std::fs::remove_dir_all(&base);

    // 3. Dry run: 1,000 new rules over a ring of M messages.
    let msgs = WorkloadConfig::default().count(n_msgs).messages();
    let mut ring = RecentMessages::new(n_msgs, None);
    for m in msgs {
        ring.push(m);
    }
    let rules: Vec<Rule> =
        RuleSetConfig::default().seed(99).rules(1_000).iter().map(|g| g.parse().unwrap()).collect();
    let t = Instant::now();
    let report = ring.dry_run(&rules, 3);
    let s = t.elapsed().as_secs_f64();
    let hits: u64 = report.rules.iter().map(|r| r.matches).sum();
    println!(
        "dry run: 1,000 rules over {} messages (ring ~{} MB): {s:.2} s = {:.0} msgs/s, {hits} matches",
        ring.len(),
        ring.approx_bytes() >> 20,
        ring.len() as f64 / s
    );
    let slice: Vec<_> = ring.iter().take(20_000).map(|m| (**m).clone()).collect();
    let reference = ReferenceMatcher::new(rules);
    let t = Instant::now();
    let mut ref_hits = 0;
    for m in &slice {
        ref_hits += reference.matching(m).len();
    }
    let rs = t.elapsed().as_secs_f64();
    println!(
        "reference matcher, same rules, first {} messages: {rs:.2} s = {:.0} msgs/s ({ref_hits} matches); compiled/reference throughput = {:.0}x",
        slice.len(),
        slice.len() as f64 / rs,
        (ring.len() as f64 / s) / (slice.len() as f64 / rs)
    );
}
