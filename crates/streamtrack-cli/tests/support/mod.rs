//! Helpers shared by the tests that drive the built `streamtrack` binary: one way to start it,
//! feed it, keep its files and read its JSON Lines output.
#![allow(dead_code)] // each test binary uses its own subset

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamtrack"))
}

/// Writes `content` to `name` in a temp folder of its own: named after the test binary, the
/// process and the call, so neither parallel suites nor the parallel tests of one binary share
/// a file (two tests writing the same `rules.jsonl` at once once left one of them an empty
/// file to read: `bench_engine_cli`, 2026-12-06).
pub fn temp_file(name: &str, content: impl AsRef<[u8]>) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "streamtrack-{}-{}/{call}",
        env!("CARGO_CRATE_NAME"),
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("a temp folder");
    let path = dir.join(name);
    std::fs::write(&path, content).expect("a temp file");
    path
}

/// Runs the binary with `args`, writing `stdin` from a thread: the command may exit before
/// reading it (a bad rules file: the broken pipe is ignored) or answer while it reads.
pub fn run(args: &[&str], stdin: impl AsRef<[u8]>) -> Output {
    let mut child = bin()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut input = child.stdin.take().unwrap();
    let data = stdin.as_ref().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Standard output as JSON values, one per line (a line that is not JSON fails the test).
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("output line is JSON"))
        .collect()
}

/// A tiny corpus for the `bench` commands' `--rules`/`--messages` options: two rules
/// (`apple`, `"new york"`) and four posts, the first two matching one rule each.
pub fn tiny_corpus() -> (PathBuf, PathBuf) {
    let rules = temp_file(
        "rules.jsonl",
        "{\"id\":\"r0\",\"value\":\"apple\"}\n{\"id\":\"r1\",\"value\":\"\\\"new york\\\"\"}\n",
    );
    let messages =
        temp_file("messages.txt", "an apple a day\nI love New York\nnothing here\nyork new\n");
    (rules, messages)
}
