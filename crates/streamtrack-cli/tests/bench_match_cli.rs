//! `streamtrack bench match` on a given corpus (`--rules`, `--messages`), as
//! `../shared/bench/side_by_side.sh` runs it: the corpus is a workload of its own, and the
//! last line of `--json` output is its row (the long-message table, which uses generated
//! shapes, is left out unless `--long-bytes` asks for it).

mod support;
use support::tiny_corpus;

use std::process::Command;

fn bench(extra: &[&str]) -> Vec<serde_json::Value> {
    let (rules, messages) = tiny_corpus();
    let out = Command::new(env!("CARGO_BIN_EXE_streamtrack"))
        .args(["bench", "match", "--rules"])
        .arg(&rules)
        .arg("--messages")
        .arg(&messages)
        .args(["--sizes", "2", "--rounds", "1", "--json"])
        .args(extra)
        .output()
        .expect("the binary runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect()
}

#[test]
fn a_given_corpus_is_its_own_workload_and_its_row_is_the_last_line() {
    let rows = bench(&[]);
    let last = rows.last().expect("a row");
    assert_eq!(last["rules"], 2, "{last}");
    assert!(last["msgs_per_sec"].as_f64().is_some_and(|v| v > 0.0), "{last}");
    // Two of the four posts match one rule each.
    assert_eq!(last["matches_per_msg"], 0.5, "{last}");
    assert!(rows.iter().all(|r| r.get("long_message").is_none()), "{rows:?}");
}

#[test]
fn the_long_message_table_is_there_when_asked_for() {
    let rows = bench(&["--long-bytes", "4k"]);
    assert!(rows.iter().any(|r| r.get("long_message").is_some()), "{rows:?}");
}
