//! `streamtrack bench churn`: the live registry under updates, measured in one run, against
//! the alternative a user would try (an `aho-corasick` automaton rebuilt on each update).

use crate::measure::rss_bytes;
use clap::Args;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::registry::{NewRule, Registry, Scratch};
use streamtrack::rule::{Rule, Term};
use streamtrack::Message;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[derive(Args)]
pub struct ChurnBench {
    /// Rules registered before the updates start.
    #[arg(long, default_value_t = 100_000)]
    rules: usize,
    /// Add+remove cycles for the memory measurement.
    #[arg(long, default_value_t = 1_000_000)]
    cycles: usize,
    /// Seconds for each throughput measurement (the static and churn figures are each the
    /// best of 4 alternating rounds sharing this time).
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

/// Matches `messages` round-robin for `secs` seconds, a snapshot per message; msgs/s.
fn match_for(registry: &Registry, messages: &[Message], secs: f64) -> f64 {
    let mut scratch = Scratch::new();
    let start = Instant::now();
    let mut n = 0usize;
    while start.elapsed().as_secs_f64() < secs {
        for m in messages.iter().take(10_000) {
            std::hint::black_box(registry.snapshot().find(m, &mut scratch).len());
        }
        n += messages.len().min(10_000);
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn run(args: ChurnBench) -> ExitCode {
    let messages = WorkloadConfig::default().count(50_000).messages();
    let generated = RuleSetConfig::default().rules(args.rules);
    let rules: Vec<Rule> =
        generated.iter().map(|g| g.parse().expect("generated rules parse")).collect();
    let registry = Registry::builder().hash_seed(0x1234, 0x5678).build();
    registry.subscribe_all(rules.iter().enumerate().map(|(i, r)| NewRule {
        subscriber: format!("s{}", i % 10_000),
        rule: r.clone(),
        tag: None,
    }));
    registry.compact();
    let churn_rules: Vec<Rule> =
        RuleSetConfig::default().seed(99).rules(1_000).iter().map(|g| g.parse().unwrap()).collect();

    // 2. Updates per second from one writer: add then remove.
    let start = Instant::now();
    let mut ops = 0usize;
    while start.elapsed().as_secs_f64() < args.seconds {
        for r in churn_rules.iter().take(1_000) {
            let id = registry.subscribe("churn", r.clone(), None).expect("subscribe");
            registry.unsubscribe(id).expect("unsubscribe");
            ops += 2;
        }
    }
    let updates_per_sec = ops as f64 / start.elapsed().as_secs_f64();

    // 1 and 3. Matching with no updates and under 10,000 updates/s from another thread, in
    // alternating rounds (the writer pauses for the static ones), best round of each: a noisy
    // machine then disturbs both figures alike.
    let stop = Arc::new(AtomicBool::new(false));
    let paused = Arc::new(AtomicBool::new(true));
    let done_ops = Arc::new(AtomicU64::new(0));
    let writer = {
        let (registry, stop, paused, done_ops, churn_rules) =
            (registry.clone(), stop.clone(), paused.clone(), done_ops.clone(), churn_rules.clone());
        std::thread::spawn(move || {
            let mut k = 0usize;
            while !stop.load(Ordering::Relaxed) {
                if paused.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                }
                // Pace: 10,000 updates/s = one add+remove pair every 200 µs.
                let start = Instant::now();
                let mut paced = 0u64;
                while !paused.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    let due = Duration::from_micros(200 * paced);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let rule = churn_rules[k % churn_rules.len()].clone();
                    if let Ok(id) = registry.subscribe("churn", rule, None) {
                        let _ = registry.unsubscribe(id);
                    }
                    done_ops.fetch_add(2, Ordering::Relaxed);
                    k += 1;
                    paced += 1;
                }
            }
        })
    };
    const ROUNDS: u32 = 4;
    let per_round = args.seconds / f64::from(ROUNDS);
    let (mut static_mps, mut churn_mps, mut churn_secs) = (0f64, 0f64, 0f64);
    let mut churn_ops = 0u64;
    for _ in 0..ROUNDS {
        paused.store(true, Ordering::Relaxed);
        static_mps = static_mps.max(match_for(&registry, &messages, per_round));
        let before = done_ops.load(Ordering::Relaxed);
        let t = Instant::now();
        paused.store(false, Ordering::Relaxed);
        churn_mps = churn_mps.max(match_for(&registry, &messages, per_round));
        churn_secs += t.elapsed().as_secs_f64();
        churn_ops += done_ops.load(Ordering::Relaxed) - before;
    }
    let achieved_updates = churn_ops as f64 / churn_secs;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer thread");

    // 4. Visibility delay: subscribe returns -> first message matched with the rule, measured
    // by a matcher thread that matches continuously.
    let marker_msg = Message::new("v", "visibility probe zqxvisible");
    let seen_at = Arc::new(AtomicU64::new(0));
    let wanted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = Instant::now();
    let matcher = {
        let (registry, seen_at, wanted, stop, marker_msg) =
            (registry.clone(), seen_at.clone(), wanted.clone(), stop.clone(), marker_msg.clone());
        std::thread::spawn(move || {
            let mut scratch = Scratch::new();
            while !stop.load(Ordering::Acquire) {
                let w = wanted.load(Ordering::Acquire);
                if w != 0 && seen_at.load(Ordering::Acquire) == 0 {
                    let snap = registry.snapshot();
                    if snap.find(&marker_msg, &mut scratch).iter().any(|r| r.id.as_u64() == w) {
                        seen_at.store(epoch.elapsed().as_nanos() as u64 + 1, Ordering::Release);
                    }
                } else {
                    std::hint::spin_loop();
                }
            }
        })
    };
    let mut delays = Vec::new();
    for i in 0..500 {
        seen_at.store(0, Ordering::Release);
        let r = Rule::parse(&format!("zqxvisible -nothere{i}")).expect("probe rule");
        let id = registry.subscribe("probe", r, None).expect("probe subscribe");
        let returned = epoch.elapsed().as_nanos() as u64;
        wanted.store(id.as_u64(), Ordering::Release);
        let wait = Instant::now();
        while seen_at.load(Ordering::Acquire) == 0 && wait.elapsed() < Duration::from_secs(1) {
            std::hint::spin_loop();
        }
        let seen = seen_at.load(Ordering::Acquire);
        if seen != 0 {
            delays.push((seen - 1).saturating_sub(returned) as f64 / 1000.0);
        }
        wanted.store(0, Ordering::Release);
        registry.unsubscribe(id).expect("probe unsubscribe");
    }
    stop.store(true, Ordering::Release);
    matcher.join().expect("matcher thread");
    delays.sort_by(f64::total_cmp);

    // 5. Memory before and after add+remove cycles.
    registry.compact();
    let heap_before = registry.heap_bytes();
    let rss_before = rss_bytes();
    let t = Instant::now();
    for i in 0..args.cycles {
        let id = registry
            .subscribe("churn", churn_rules[i % churn_rules.len()].clone(), None)
            .expect("subscribe");
        registry.unsubscribe(id).expect("unsubscribe");
    }
    let cycles_secs = t.elapsed().as_secs_f64();
    let heap_after = registry.heap_bytes();
    let rss_after = rss_bytes();

    // 6. The alternative: rebuild an aho-corasick automaton of every term on each update.
    let mut terms: Vec<String> = Vec::new();
    for r in &rules {
        r.root().visit_terms(&mut |t, _| {
            if let Term::Keyword(w) = t {
                terms.push(w.join(" "));
            } else if let Term::Phrase(p) = t {
                terms.push(p.clone());
            }
        });
    }
    terms.sort();
    terms.dedup();
    let t = Instant::now();
    let ac = aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(&terms)
        .expect("aho-corasick builds");
    let aho_corasick_rebuild_secs = t.elapsed().as_secs_f64();
    drop(ac);

    let p50 = percentile(&delays, 0.5);
    let p99 = percentile(&delays, 0.99);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "rules": args.rules,
                "updates_per_sec": updates_per_sec.round(),
                "visible_after_us_p50": p50,
                "visible_after_us_p99": p99,
                "static_msgs_per_sec": static_mps.round(),
                "churn_msgs_per_sec": churn_mps.round(),
                "churn_updates_per_sec": achieved_updates.round(),
                "churn_ratio": churn_mps / static_mps,
                "heap_bytes_before": heap_before,
                "heap_bytes_after": heap_after,
                "rss_bytes_before": rss_before,
                "rss_bytes_after": rss_after,
                "cycles": args.cycles,
                "cycles_secs": cycles_secs,
                "aho_corasick_rebuild_secs": aho_corasick_rebuild_secs,
                "aho_corasick_terms": terms.len(),
            })
        );
    } else {
        println!(
            "streamtrack bench churn: {} rules registered, {} messages",
            args.rules,
            messages.len()
        );
        println!();
        println!("| measure | value |");
        println!("|---|---:|");
        println!("| add+remove operations per second, one writer | {updates_per_sec:.0} |");
        println!("| subscribe returned -> first match, p50 / p99 | {p50:.1} / {p99:.1} µs |");
        println!("| matching, no updates (msgs/s, one thread) | {static_mps:.0} |");
        println!(
            "| matching under {achieved_updates:.0} updates/s (msgs/s) | {churn_mps:.0} ({:.0}% of static) |",
            100.0 * churn_mps / static_mps
        );
        println!(
            "| heap before / after {} add+remove cycles ({cycles_secs:.1} s) | {heap_before} / {heap_after} bytes ({:+.2}%) |",
            args.cycles,
            100.0 * (heap_after as f64 - heap_before as f64) / heap_before as f64
        );
        println!("| RSS before / after | {rss_before} / {rss_after} bytes |");
        println!(
            "| aho-corasick rebuild of {} terms (the cost of one update without streamtrack) | {aho_corasick_rebuild_secs:.2} s |",
            terms.len()
        );
    }
    ExitCode::SUCCESS
}
