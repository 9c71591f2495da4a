//! The `streamtrack match` command, run as a built binary (a stable contract).

mod support;
use support::{bin, json_lines, run, temp_file};

// The documented examples are shared with the core crate's `tests/documented_examples.rs`.
#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::Stdio;

#[test]
fn every_documented_example_through_the_match_command() {
    let examples = common::documented_examples();
    // One rules file with every distinct rule; one input line per example message.
    let mut rules = String::new();
    let mut ids = Vec::new();
    for ex in &examples {
        let key = (ex.dialect, ex.rule);
        if !ids.contains(&key) {
            ids.push(key);
            let line = serde_json::json!({
                "id": format!("r{}", ids.len() - 1), "value": ex.rule, "dialect": ex.dialect,
            });
            rules.push_str(&format!("{line}\n"));
        }
    }
    let rules_path = temp_file("examples.jsonl", &rules);
    let input: String = examples.iter().map(|e| format!("{}\n", e.message)).collect();
    for engine in ["compiled", "reference"] {
        let out = run(
            &["match", "--rules", rules_path.to_str().unwrap(), "--all", "--engine", engine],
            &input,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines = json_lines(&out);
        assert_eq!(lines.len(), examples.len(), "--all prints every message");
        for (ex, line) in examples.iter().zip(&lines) {
            let rid = format!("r{}", ids.iter().position(|k| *k == (ex.dialect, ex.rule)).unwrap());
            let matched = line["matching_rules"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == serde_json::Value::String(rid.clone()));
            assert_eq!(
                matched, ex.matches,
                "{engine}: {} {:?} on {}",
                ex.dialect, ex.rule, ex.message
            );
        }
    }
}

#[test]
fn output_echoes_the_input_unchanged_and_lists_rules_in_file_order() {
    let rules = temp_file(
        "order.jsonl",
        "{\"id\":\"b\",\"value\":\"apple\",\"tag\":\"fruit\"}\n\n{\"id\":\"a\",\"value\":\"pie\"}\n{\"id\":\"c\",\"value\":\"apple pie,tart\",\"dialect\":\"track\"}\n",
    );
    let input = "{\"text\":\"Apple PIE!\",\"id\":7,\"extra\":{\"z\":1.50,\"a\":[]}}\n{\"id\":8,\"text\":\"nothing\"}\n";
    let out = run(&["match", "--rules", rules.to_str().unwrap()], input);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        "{\"text\":\"Apple PIE!\",\"id\":7,\"extra\":{\"z\":1.50,\"a\":[]},\"matching_rules\":[{\"id\":\"b\",\"tag\":\"fruit\"},{\"id\":\"a\"},{\"id\":\"c\"}]}\n"
    );
}

#[test]
fn track_shortcut_and_input_file_and_dash() {
    let input = temp_file(
        "in.jsonl",
        "{\"id\":1,\"text\":\"I love the Wii Fit\"}\n{\"id\":2,\"text\":\"fit\"}\n",
    );
    for args in [
        vec!["match", "--track", "nintendo,wii fit", input.to_str().unwrap()],
        vec!["match", "--track", "nintendo,wii fit", "-"],
    ] {
        let stdin = std::fs::read_to_string(&input).unwrap();
        let out = run(&args, &stdin);
        assert!(out.status.success());
        let lines = json_lines(&out);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["id"], 1);
        assert_eq!(lines[0]["matching_rules"], serde_json::json!([{"id": "track"}]));
    }
}

#[test]
fn dialect_flag_sets_the_default_dialect() {
    let rules = temp_file("dialect.jsonl", "{\"id\":\"t\",\"value\":\"c++\"}\n");
    let out = run(
        &["match", "--rules", rules.to_str().unwrap(), "--dialect", "track"],
        "{\"id\":1,\"text\":\"I like C++\"}\n{\"id\":2,\"text\":\"c\"}\n",
    );
    assert!(out.status.success());
    assert_eq!(json_lines(&out).len(), 1);
    // In the rule dialect `c++` is the keyword `c`.
    let out = run(&["match", "--rules", rules.to_str().unwrap()], "{\"id\":2,\"text\":\"c\"}\n");
    assert_eq!(json_lines(&out).len(), 1);
}

#[test]
fn invalid_rule_exits_2_naming_line_id_and_column_and_matches_nothing() {
    let rules = temp_file(
        "bad.jsonl",
        "{\"id\":\"ok\",\"value\":\"apple\"}\n{\"id\":\"broken\",\"value\":\"apple (pie\"}\n",
    );
    let out =
        run(&["match", "--rules", rules.to_str().unwrap()], "{\"id\":1,\"text\":\"apple\"}\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty(), "nothing is matched");
    let err = String::from_utf8(out.stderr).unwrap();
    // Line 2, column 31 of the line: the `(` inside the value.
    let expected = format!("{}:2:31: rule \"broken\": unbalanced '(' opened here", rules.display());
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("1 bad rule line; no input was read"), "{err}");
}

#[test]
fn malformed_input_lines_are_reported_and_skipped() {
    let input = "{\"id\":1,\"text\":\"apple\"}\n{not json\n{\"id\":3}\n\n {\"id\":4,\"text\":\"apple\"\n{\"id\":5,\"text\":\"apple\"}\n";
    let out = run(&["match", "--track", "apple"], input);
    assert!(out.status.success());
    let ids: Vec<i64> = json_lines(&out).iter().map(|l| l["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 5]);
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("<stdin>:2:2: invalid JSON: key must be a string"), "{err}");
    assert!(err.contains("<stdin>:3: message has no text"), "{err}");
    assert!(err.contains("<stdin>:5:"), "{err}");
    assert!(err.contains("<stdin>: 3 of 5 lines were bad and skipped"), "{err}");
}

#[test]
fn invalid_utf8_input_is_skipped_not_fatal() {
    let mut child = bin()
        .args(["match", "--track", "apple"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\":1,\"text\":\"\xff apple\"}\n{\"id\":2,\"text\":\"apple\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(json_lines(&out).len(), 1);
    // The bad byte is the 17th of the line.
    assert!(String::from_utf8_lossy(&out.stderr).contains("<stdin>:1:17: invalid UTF-8"));
}
