//! A loop for profilers: tokenise the standard workload's ASCII messages repeatedly.
use std::time::Instant;
use streamtrack::normalize::Tokens;
use streamtrack_workload::WorkloadConfig;

fn main() {
    let messages: Vec<String> = WorkloadConfig::default()
        .count(100_000)
        .messages()
        .into_iter()
        .filter(|m| m.text.is_ascii())
        .map(|m| m.text)
        .collect();
    let mut tokens = Tokens::new();
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed().as_secs_f64() < 3.0 {
        for m in &messages {
            tokens.tokenize(m, Default::default());
            n += tokens.words().len();
        }
    }
    let rounds = n as f64 / 1.0;
    let _ = rounds;
    println!("{:.0} ns per word", t.elapsed().as_nanos() as f64 / n as f64);
}
