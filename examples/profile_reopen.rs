//! Where a durable registry's reopen spends its time (issue 19: 1M rules in 2 s or less; 1.5-1.7
//! s now, DESIGN.md, "The durable registry"): builds a log of N workload rules in DIR once,
//! then reopens it.
//!
//! `cargo run --release --example profile_reopen -- [RULES] [DIR] [snapshot]` (defaults 200,000
//! rules, a directory under the system temp dir; with `snapshot`, the log is compacted into a
//! snapshot first, so the reopen reads that). Prints the wall time per phase
//! (`OpenReport::phases`). Under callgrind, count only the reopen:
//! `valgrind --tool=callgrind --toggle-collect='*DurableRegistry*open*' target/release/examples/profile_reopen 50000 DIR`.

use std::time::Instant;
use streamtrack::durable::{DurableRegistry, OpenOptions};
use streamtrack::registry::NewRule;
use streamtrack_workload::RuleSetConfig;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n_rules: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let dir = args.get(2).map(std::path::PathBuf::from).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("streamtrack-profile-reopen-{n_rules}"))
    });
    let opts = || OpenOptions::new().snapshot_min_records(usize::MAX);
    if !dir.exists() {
        let parsed: Vec<NewRule> = RuleSetConfig::default()
            .rules(n_rules)
            .iter()
            .enumerate()
            .map(|(i, g)| NewRule {
                subscriber: format!("s{}", i % 10_000),
                rule: g.parse().expect("workload rules parse"),
                tag: g.tag.clone(),
            })
            .collect();
        let (reg, _) = DurableRegistry::open(&dir, opts()).expect("open a new directory");
        reg.subscribe_all(parsed).expect("store the rules");
        drop(reg);
        println!("built {} with {n_rules} rules", dir.display());
    }
    if args.get(3).is_some_and(|a| a == "snapshot") {
        let has_snapshot = std::fs::read_dir(&dir)
            .expect("the directory")
            .any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("snapshot-")));
        if !has_snapshot {
            let (reg, _) = DurableRegistry::open(&dir, opts()).expect("open");
            reg.compact().expect("write the snapshot");
            println!("compacted {} into a snapshot", dir.display());
        }
    }
    let t = Instant::now();
    let (_reg, report) = DurableRegistry::open(&dir, opts()).expect("reopen");
    let wall = t.elapsed().as_secs_f64();
    let p = report.phases;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    println!(
        "reopen: {} rules in {wall:.2} s (read {:.0} ms, check {:.0} ms, decode {:.0} ms, parse {:.0} ms, registry {:.0} ms, compile {:.0} ms; rest {:.0} ms)",
        report.rules,
        ms(p.read),
        ms(p.check),
        ms(p.decode),
        ms(p.parse),
        ms(p.registry),
        ms(p.compile),
        wall * 1e3 - ms(p.total()),
    );
}
