//! Measuring helpers shared by the `bench` subcommands (each bench module uses these, none
//! uses another bench module).

use std::time::{Duration, Instant};

/// Resident set size of this process, in bytes (Linux; 0 elsewhere).
pub fn rss_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Best of `rounds` timed runs of `f` (at least one).
pub fn best_of(rounds: usize, mut f: impl FnMut()) -> Duration {
    (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn best_of_runs_at_least_once_and_each_round_once() {
        let mut calls = 0;
        super::best_of(0, || calls += 1);
        assert_eq!(calls, 1);
        super::best_of(3, || calls += 1);
        assert_eq!(calls, 4);
    }
}
