//! A loop for profilers: compile N generated rules, or the rules of a file, several times.
//!
//! `cargo run --release --example profile_compile -- 1000000 3` (generated rules), or
//! `cargo run --release --example profile_compile -- target/peers/rules_1m.jsonl 3` (the
//! side-by-side corpus's rules, written by `../shared/bench/side_by_side.sh`). It uses the
//! command-line tool's allocator (jemalloc), as `streamtrack bench match` does,, and prints the
//! time of each phase of the compile.
use std::path::Path;
use std::time::Instant;
use streamtrack::matcher::Matcher;
use streamtrack::Rule;
use streamtrack_workload::RuleSetConfig;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "1000000".into());
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let t = Instant::now();
    let rules: Vec<Rule> = match what.parse::<usize>() {
        Ok(n) => RuleSetConfig::default().rules(n).iter().map(|g| g.parse().unwrap()).collect(),
        Err(_) => streamtrack::read::read_rules(Path::new(&what))
            .expect("a rules file")
            .into_iter()
            .map(|e| e.rule)
            .collect(),
    };
    println!("parsed {} rules in {:.3} s", rules.len(), t.elapsed().as_secs_f64());
    for _ in 0..rounds {
        let (t, cpu) = (Instant::now(), thread_cpu_secs());
        let m = Matcher::builder().hash_seed(1, 2).build(&rules);
        println!(
            "compiled {} rules in {:.3} s ({:.3} s on the CPU), {} heap bytes ({:.1} per rule)",
            m.rule_count(),
            t.elapsed().as_secs_f64(),
            thread_cpu_secs() - cpu,
            m.heap_bytes(),
            m.heap_bytes() as f64 / rules.len().max(1) as f64
        );
        for (phase, secs) in streamtrack::matcher::last_compile_phases() {
            println!("  {phase:<40} {:>7.1} ms", secs * 1e3);
        }
    }
}

/// This thread's time on the CPU so far (Linux `schedstat`; 0 elsewhere): on a shared machine
/// the wall time of a compile mostly measures the wait for a core.
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |ns| ns as f64 / 1e9)
}
