//! The lifecycle commands as the built binary: `run --state` across restarts, `explain`,
//! `dry-run` (counts equal to `match`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamtrack"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("streamtrack-lifecycle-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

const MESSAGES: &[&str] = &[
    r#"{"id":"1","text":"I love rust"}"#,
    r#"{"id":"2","text":"so happy today"}"#,
    r#"{"id":"3","text":"rust and pie"}"#,
    r#"{"id":"4","text":"nothing here"}"#,
];

#[test]
fn run_with_state_resumes_the_rules_of_the_first_start() {
    let dir = temp_dir("state");
    let rules = write(
        &dir,
        "r.jsonl",
        &[
            r#"{"id":"a","value":"rust -pie","tag":"t"}"#,
            r#"{"id":"b","value":"\"so happy\"","subscriber":"bob"}"#,
        ],
    );
    let input = write(&dir, "in.jsonl", MESSAGES);
    let state = dir.join("state");
    let first = bin()
        .args(["run", "--quiet", "--state"])
        .arg(&state)
        .arg("--rules")
        .arg(&rules)
        .arg(&input)
        .output()
        .unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let second =
        bin().args(["run", "--quiet", "--state"]).arg(&state).arg(&input).output().unwrap();
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    let lines = |o: &Output| {
        let mut v: Vec<String> = stdout(o).lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(lines(&first).len(), 2, "{}", stdout(&first));
    assert_eq!(lines(&first), lines(&second));
    // The rules file's ids and tags come back.
    assert!(
        stdout(&second).contains(r#""matching_rules":[{"id":"a","tag":"t"}]"#),
        "{}",
        stdout(&second)
    );
    // A new rules file replaces the stored rules.
    let rules2 = write(&dir, "r2.jsonl", &[r#"{"id":"c","value":"nothing"}"#]);
    let third = bin()
        .args(["run", "--quiet", "--state"])
        .arg(&state)
        .arg("--rules")
        .arg(&rules2)
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(stdout(&third).lines().count(), 1, "{}", stdout(&third));
    // No state and no rules: an error, status 2.
    let none = bin()
        .args(["run", "--quiet", "--state"])
        .arg(dir.join("empty"))
        .arg(&input)
        .output()
        .unwrap();
    assert_eq!(none.status.code(), Some(2));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explain_prints_the_verdict_and_the_tree_as_json() {
    let o = bin()
        .args([
            "explain",
            "--rule",
            "apple -pie",
            "--json",
            r#"{"id":"1","text":"I ate apple pie"}"#,
        ])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "no match: status 1");
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["matched"], false);
    assert_eq!(v["tree"]["children"][1]["kind"], "not");
    assert_eq!(v["tree"]["children"][1]["children"][0]["hits"][0]["spans"][0]["start"], 12);
    let bad = bin().args(["explain", "--rule", "(apple", "{}"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("column 1"));
}

#[test]
fn dry_run_counts_equal_what_match_finds() {
    let dir = temp_dir("dry");
    let rules = write(
        &dir,
        "r.jsonl",
        &[
            r#"{"id":"a","value":"rust"}"#,
            r#"{"id":"b","value":"\"so happy\" OR pie"}"#,
            r#"{"id":"c","value":"absent"}"#,
        ],
    );
    let input = write(&dir, "in.jsonl", MESSAGES);
    let o = bin()
        .args(["dry-run", "--json", "--rules"])
        .arg(&rules)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["messages"], 4);
    let counts: Vec<u64> =
        v["rules"].as_array().unwrap().iter().map(|r| r["would_match"].as_u64().unwrap()).collect();
    // `match` over the same file, counted per rule id.
    let m = bin().args(["match", "--rules"]).arg(&rules).arg(&input).output().unwrap();
    let mut want = [0u64; 3];
    for line in stdout(&m).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for r in v["matching_rules"].as_array().unwrap() {
            want[(r["id"].as_str().unwrap().as_bytes()[0] - b'a') as usize] += 1;
        }
    }
    assert_eq!(counts, want);
    assert_eq!(counts, [2, 2, 0]);
    assert_eq!(v["rules"][0]["sample"], serde_json::json!(["1", "3"]));
    // An invalid rule: every error with its line and column, status 2.
    let bad =
        write(&dir, "bad.jsonl", &[r#"{"id":"x","value":"(a"}"#, r#"{"id":"y","value":"a OR"}"#]);
    let o =
        bin().args(["dry-run", "--rules"]).arg(&bad).arg("--input").arg(&input).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("rule 1") && err.contains("rule 2") && err.contains("column"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
