//! Writes a rules file and a messages file from the deterministic workload generator, for
//! measuring the commands on the same input (README, "Terminal view": `watch` against `run`).
//!
//! `cargo run --release -p streamtrack-web --example workload_files -- DIR [RULES [MESSAGES]]`
//! (default 100,000 rules, 200,000 messages): `DIR/rules.jsonl` (`{"id", "value"}` per line,
//! one subscriber per rule) and `DIR/messages.jsonl`.

use std::io::{BufWriter, Write};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: workload_files DIR [RULES [MESSAGES]]");
        std::process::exit(2);
    };
    let n_rules: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let n_messages: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir)?;
    let mut r = BufWriter::new(std::fs::File::create(dir.join("rules.jsonl"))?);
    for g in RuleSetConfig::default().rules(n_rules) {
        writeln!(r, "{}", serde_json::json!({ "id": g.id, "value": g.value }))?;
    }
    r.flush()?;
    let mut m = BufWriter::new(std::fs::File::create(dir.join("messages.jsonl"))?);
    for msg in WorkloadConfig::default().seed(7).count(n_messages).messages() {
        writeln!(m, "{}", msg.to_json_value())?;
    }
    m.flush()?;
    println!("{n_rules} rules, {n_messages} messages in {}", dir.display());
    Ok(())
}
