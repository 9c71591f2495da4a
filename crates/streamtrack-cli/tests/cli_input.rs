//! The input side of `streamtrack match` and `run`, run as the built binary: strict rules
//! files, one bad-line policy and wording for both commands, the line cap, exit statuses and
//! live output when the input is a pipe.

mod support;
use support::{bin, run, temp_file};

use std::io::{BufRead, BufReader, Write};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

const MESSAGE: &[u8] = b"{\"id\":\"1\",\"text\":\"x\"}\n";

#[test]
fn unknown_keys_are_errors_with_line_and_column_in_both_commands() {
    let rules =
        temp_file("unknown-key.jsonl", b"{\"id\":\"a\",\"value\":\"x\",\"dialekt\":\"track\"}\n");
    let expected = format!(
        "{}:1:23: rule \"a\": unknown key \"dialekt\" (expected one of id, value, dialect, tag, subscriber)",
        p(&rules)
    );
    for cmd in ["match", "run"] {
        let out = run(&[cmd, "--rules", p(&rules)], MESSAGE);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{cmd}: nothing is matched");
        assert!(stderr(&out).contains(&expected), "{cmd}: {}", stderr(&out));
    }
}

#[test]
fn duplicate_ids_are_errors_naming_the_first_line() {
    let rules = temp_file(
        "duplicate-id.jsonl",
        b"{\"id\":\"a\",\"value\":\"x\"}\n\n{\"id\":\"a\",\"value\":\"y\"}\n",
    );
    let expected = format!("{}:3:7: rule \"a\": duplicate id (first used on line 1)", p(&rules));
    for cmd in ["match", "run"] {
        let out = run(&[cmd, "--rules", p(&rules)], MESSAGE);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{cmd}");
        assert!(stderr(&out).contains(&expected), "{cmd}: {}", stderr(&out));
    }
}

#[test]
fn the_track_option_cannot_reuse_a_rules_file_id() {
    let rules = temp_file("track-id.jsonl", b"{\"id\":\"track\",\"value\":\"x\"}\n");
    let out = run(&["match", "--rules", p(&rules), "--track", "x"], MESSAGE);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let expected = format!("--track adds the id \"track\", already used on {}:1", p(&rules));
    assert!(stderr(&out).contains(&expected), "{}", stderr(&out));
}

#[test]
fn an_empty_rules_file_is_named_as_such() {
    let rules = temp_file("empty.jsonl", b"\n  \n");
    for cmd in ["match", "run"] {
        let out = run(&[cmd, "--rules", p(&rules)], MESSAGE);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        assert!(
            stderr(&out).contains(&format!("{} holds no rules", p(&rules))),
            "{cmd}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_comma_in_a_default_rule_dialect_value_warns_and_help_states_the_default() {
    // The README's headline example without "dialect": an AND of three words, with a warning.
    let rules = temp_file("comma.jsonl", b"{\"id\":\"r\",\"value\":\"nintendo,wii fit\"}\n");
    let out = run(
        &["match", "--rules", p(&rules)],
        b"{\"id\":1,\"text\":\"nintendo\"}\n{\"id\":2,\"text\":\"nintendo wii fit\"}\n",
    );
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:1:28: rule \"r\": warning: ", p(&rules))), "{err}");
    assert!(err.contains("\"dialect\":\"track\""), "{err}");
    let printed = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(printed.lines().count(), 1, "only the message with all three words: {printed}");
    // With the dialect named, no warning.
    let rules = temp_file(
        "comma-named.jsonl",
        b"{\"id\":\"r\",\"value\":\"nintendo,wii fit\",\"dialect\":\"track\"}\n",
    );
    let out = run(&["match", "--rules", p(&rules)], b"{\"id\":1,\"text\":\"nintendo\"}\n");
    assert!(stderr(&out).is_empty(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout.clone()).unwrap().lines().count(), 1);

    let help = bin().args(["match", "--help"]).output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    assert!(help.contains("[default: rule]"), "{help}");
    assert!(help.contains("a comma is not an OR"), "{help}");
}

#[test]
fn match_flushes_each_message_when_the_input_is_a_pipe() {
    let rules = temp_file("live.jsonl", b"{\"id\":\"a\",\"value\":\"x\"}\n");
    let mut child = bin()
        .args(["match", "--rules", p(&rules)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"{\"id\":\"1\",\"text\":\"x\"}\n").unwrap();
    input.flush().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    // Standard input is still open: the line must come out now, not at the end of input.
    let line = rx.recv_timeout(Duration::from_secs(30));
    drop(input);
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("the match is written while the input is still open");
    assert!(line.starts_with("{\"id\":\"1\""), "{line}");
}

#[test]
fn bad_lines_are_capped_counted_and_fail_under_strict() {
    let mut input = Vec::new();
    for i in 0..25 {
        input.extend_from_slice(format!("{{\"id\":{i},\"text\":}}\n").as_bytes());
    }
    input.extend_from_slice(b"{\"id\":\"ok\",\"text\":\"x\"}\n");
    let rules = temp_file("cap.jsonl", b"{\"id\":\"a\",\"value\":\"x\"}\n");
    for strict in [false, true] {
        let mut args = vec!["match", "--rules", p(&rules)];
        if strict {
            args.push("--strict");
        }
        let out = run(&args, &input);
        assert_eq!(out.status.code(), Some(if strict { 1 } else { 0 }), "{}", stderr(&out));
        assert_eq!(
            String::from_utf8(out.stdout.clone()).unwrap().lines().count(),
            1,
            "good lines still go out"
        );
        let err = stderr(&out);
        let reports: Vec<&str> = err
            .lines()
            .filter(|l| l.starts_with("<stdin>:") && !l.starts_with("<stdin>: "))
            .collect();
        assert_eq!(reports.len(), 10, "{err}");
        assert!(reports[0].starts_with("<stdin>:1:"), "{err}");
        assert!(err.contains("... 15 more bad lines not shown"), "{err}");
        assert!(
            err.contains("<stdin>: 25 of 26 lines were bad and skipped (more than half"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 12, "{err}");
    }
}

#[test]
fn a_binary_file_gives_a_short_report() {
    // 200 KB of pseudo-random bytes.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let junk: Vec<u8> = (0..200_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect();
    let file = temp_file("junk.bin", &junk);
    let out = bin().args(["match", "--track", "apple", "--strict", p(&file)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.lines().count() <= 12, "{err}");
    assert!(err.contains("more bad lines not shown"), "{err}");
}

#[test]
fn match_and_run_report_a_bad_line_in_the_same_words() {
    let rules = temp_file("same.jsonl", b"{\"id\":\"a\",\"value\":\"x\"}\n");
    let input = b"{\"id\":\"1\",\"text\":\"x\"}\n{\"id\":2,\"text\":}\n";
    let expected = "<stdin>:2:16: invalid JSON: expected value";
    for cmd in ["match", "run"] {
        let out = run(&[cmd, "--rules", p(&rules)], input);
        assert!(out.status.success(), "{cmd}");
        let err = stderr(&out);
        assert!(err.lines().any(|l| l == expected), "{cmd}: {err}");
        assert!(err.contains("<stdin>: 1 of 2 lines was bad and skipped"), "{cmd}: {err}");
        let out = run(&[cmd, "--rules", p(&rules), "--strict"], input);
        assert_eq!(out.status.code(), Some(1), "{cmd} --strict");
    }
}

#[test]
fn plain_text_lines_are_messages_in_the_command_as_in_the_library() {
    let out = run(
        &["match", "--track", "wii fit"],
        b"I love the Wii Fit\n{\"id\":7,\"text\":\"wii fit\"}\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "1");
    assert_eq!(lines[0]["text"], "I love the Wii Fit");
    assert_eq!(lines[0]["matching_rules"], serde_json::json!([{"id": "track"}]));
    assert_eq!(lines[1]["id"], 7);
    // The library reader reads the same lines the same way.
    let read =
        streamtrack::read::parse_messages(b"I love the Wii Fit\n{\"id\":7,\"text\":\"wii fit\"}\n");
    assert_eq!(read.messages.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["1", "7"]);
}

#[test]
fn match_caps_line_length_like_run() {
    // One line over the 16 MiB cap (it would match), then a normal line.
    let mut input = b"{\"id\":1,\"text\":\"apple ".to_vec();
    input.resize(input.len() + (16 << 20) + 10, b'a');
    input.extend_from_slice(b"\"}\n{\"id\":2,\"text\":\"apple\"}\n");
    let out = run(&["match", "--track", "apple"], &input);
    assert!(out.status.success());
    let printed = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(printed, "{\"id\":2,\"text\":\"apple\",\"matching_rules\":[{\"id\":\"track\"}]}\n");
    assert!(
        stderr(&out).contains("<stdin>:1: line longer than 16777216 bytes; skipped"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_unreadable_input_exits_1_and_a_missing_rules_file_exits_2() {
    let missing = std::env::temp_dir().join("streamtrack-cli-input-no-such-file.jsonl");
    let out = bin().args(["match", "--track", "x", p(&missing)]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = bin().args(["match", "--rules", p(&missing)]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
