//! A loop for profilers: compile N generated rules, several times.
//!
//! `cargo run --release --example profile_compile -- 1000000 3`; it uses the command-line
//! tool's allocator (jemalloc), as `streamtrack bench match` does.
use std::time::Instant;
use streamtrack::matcher::Matcher;
use streamtrack_workload::RuleSetConfig;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let rules: Vec<_> =
        RuleSetConfig::default().rules(n).iter().map(|g| g.parse().unwrap()).collect();
    for _ in 0..rounds {
        let t = Instant::now();
        let m = Matcher::builder().hash_seed(1, 2).build(&rules);
        println!(
            "compiled {} rules in {:.3} s, {} heap bytes",
            m.rule_count(),
            t.elapsed().as_secs_f64(),
            m.heap_bytes()
        );
    }
}
