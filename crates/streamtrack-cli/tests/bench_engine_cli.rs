//! `streamtrack bench engine` on a given corpus (`--rules-file`, `--messages-file`): the
//! engine runs over those rules and messages (the messages repeated to `--messages`), not the
//! generated workload.

mod support;
use support::tiny_corpus;

use std::process::Command;

fn bench(extra: &[&str]) -> serde_json::Value {
    let (rules, messages) = tiny_corpus();
    let out = Command::new(env!("CARGO_BIN_EXE_streamtrack"))
        .args(["bench", "engine", "--rules-file"])
        .arg(&rules)
        .arg("--messages-file")
        .arg(&messages)
        .args(["--messages", "10", "--json"])
        .args(extra)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let line = stdout.lines().rfind(|l| l.starts_with('{')).expect("a JSON line");
    serde_json::from_str(line).expect("JSON")
}

/// The tests of this binary run in parallel and each writes its corpus: the files must not be
/// shared (they were once, and a test read the other's `rules.jsonl` while it was rewritten:
/// `"rules": 0`).
#[test]
fn each_corpus_is_a_file_of_its_own() {
    let (a, b) = (tiny_corpus(), tiny_corpus());
    assert_ne!(a.0, b.0);
    assert_ne!(a.1, b.1);
    let again = support::temp_file("rules.jsonl", "changed");
    assert_ne!(again, a.0);
    assert!(std::fs::read_to_string(&a.0).expect("kept").contains("apple"));
}

#[test]
fn a_given_corpus_is_what_the_engine_runs_over() {
    let o = bench(&["--latency-seconds", "0.1", "--rate", "1000", "--fanout", "10"]);
    assert_eq!(o["rules"], 2, "{o}");
    assert_eq!(o["subscribers"], 2, "{o}");
    assert_eq!(o["messages"], 10, "{o}");
    // Ten messages: the four posts twice, then the first two: each of posts 1 and 2 matches
    // one rule, three times over.
    assert_eq!(o["deliveries_per_run"], 6, "{o}");
    // Two rules: the registry's small-set prefilter is on and answers the posts holding
    // neither `apple` nor `new` before `york` ("nothing here" and "york new", twice each).
    assert_eq!(o["prefiltered_per_run"], 4, "{o}");
    assert!(o["rules_file"].as_str().is_some_and(|p| p.ends_with("rules.jsonl")), "{o}");
}

#[test]
fn the_analytics_cost_runs_over_a_given_corpus_too() {
    let o = bench(&["--analytics"]);
    assert_eq!(o["rules"], 2, "{o}");
    assert_eq!(o["messages"], 10, "{o}");
    assert_eq!(o["runs"].as_array().map(Vec::len), Some(5), "{o}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamtrack"))
        .args(["bench", "engine", "--rules-file", "no-such-rules.jsonl", "--json"])
        .output()
        .expect("the binary runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-rules.jsonl"), "{err}");
}
