//! The `streamtrack run` command under faults, run as the built binary: signals, a full disk, a
//! reader that goes away or stalls, one file per subscriber (issues 21 and 23).
#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamtrack"))
}

/// A directory of this test's own (removed first, so reruns start clean).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamtrack-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A rules file: every subscriber tracks `x` (one rule each).
fn rules(dir: &std::path::Path, subscribers: &[&str]) -> PathBuf {
    let mut text = String::new();
    for (i, s) in subscribers.iter().enumerate() {
        let line = serde_json::json!({"id": format!("r{i}"), "value": "x", "subscriber": s});
        text.push_str(&format!("{line}\n"));
    }
    let path = dir.join("rules.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// `n` messages that all match `x`, padded so that the output fills a pipe quickly.
fn messages(n: usize) -> String {
    let pad = "p".repeat(200);
    (0..n).map(|i| format!("{{\"id\":\"{i}\",\"text\":\"x {pad}\"}}\n")).collect()
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(child.id().to_string()).status();
    assert!(ok.unwrap().success(), "kill -{name}");
}

/// Waits for the child to exit, at most `limit` (then kills it and fails).
fn wait_for(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the command did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Reads a pipe to the end on a thread of its own.
fn collect<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

/// Every line is a complete JSON object; returns how many carry `matching_rules`.
fn complete_json_lines(out: &str) -> usize {
    assert!(out.is_empty() || out.ends_with('\n'), "the output ends mid-line: {:?}", tail(out));
    let mut matches = 0;
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a complete JSON line ({e}): {line:?}"));
        matches += usize::from(v.get("matching_rules").is_some());
    }
    matches
}

fn tail(s: &str) -> &str {
    let mut i = s.len().saturating_sub(120);
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    &s[i..]
}

/// The count of messages read, from the summary line (`… 1,234 messages read …`).
fn messages_read(stderr: &str) -> usize {
    let line = stderr.lines().find(|l| l.contains(" messages read")).expect("a summary");
    let n = line.split(" messages read").next().unwrap().rsplit(' ').next().unwrap();
    n.replace(',', "").parse().unwrap_or_else(|_| panic!("{line}"))
}

/// Starts `run` with standard input and output piped.
fn spawn_run(args: &[&str]) -> Child {
    bin()
        .arg("run")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs")
}

/// Starts `run` over 3,000 messages for two subscribers with `--shutdown-timeout SECS`, its
/// standard output kept open and never read (the reader stalls), and gives it 500 ms to fill
/// the pipe: the child, its standard output (to keep open) and its standard error to come.
fn run_behind_a_stalled_reader(
    name: &str,
    shutdown_timeout: &str,
) -> (Child, ChildStdout, mpsc::Receiver<String>) {
    let dir = temp_dir(name);
    let rules = rules(&dir, &["a", "b"]);
    let input = dir.join("in.jsonl");
    std::fs::write(&input, messages(3_000)).unwrap();
    let mut child = spawn_run(&[
        "--rules",
        rules.to_str().unwrap(),
        "--shutdown-timeout",
        shutdown_timeout,
        input.to_str().unwrap(),
    ]);
    let stdout = child.stdout.take().unwrap();
    let err = collect(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_millis(500));
    (child, stdout, err)
}

/// Reads lines from the child's output until `n` have come (or panics after 20 s).
fn read_lines(out: &mut BufReader<ChildStdout>, n: usize) {
    let mut line = String::new();
    for _ in 0..n {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the output ended early");
    }
}

/// Issue 23, item 3: a signal used to kill `run` at once (no summary, output cut). Now a first
/// SIGTERM or SIGINT stops reading, even while standard input is open and silent, delivers
/// what was read, flushes and prints the summary; nothing was lost, so the status is 0.
fn first_signal_drains_and_reports(sig: &str) {
    let dir = temp_dir(&format!("signal-{sig}"));
    let rules = rules(&dir, &["a", "b"]);
    // With `--disconnects`, a finished drain ends each stream with a disconnect notice (code
    // 1); a drain stuck behind the blocked read would run into the shutdown timeout instead.
    let mut child = spawn_run(&[
        "--rules",
        rules.to_str().unwrap(),
        "--disconnects",
        "--shutdown-timeout",
        "5",
    ]);
    let mut stdin = child.stdin.take().unwrap();
    // Written while the command runs; standard input then stays open without more lines, so
    // the command is blocked reading when the signal comes.
    stdin.write_all(messages(100).as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // Both subscribers' deliveries of the first messages are out: the command is running;
    // it then reads the rest (less than a pipe's buffer) and waits for more.
    read_lines(&mut out, 20);
    std::thread::sleep(Duration::from_millis(300));
    let rest = collect(out);
    let err = collect(child.stderr.take().unwrap());
    signal(&child, sig);
    let status = wait_for(&mut child, Duration::from_secs(20));
    drop(stdin);
    let out = rest.recv().unwrap();
    let err = err.recv().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {err}");
    // 20 lines were read above; the rest arrive complete, and every message read reached
    // both subscribers.
    let read = messages_read(&err);
    assert!(read >= 10, "{err}");
    assert_eq!(complete_json_lines(&out) + 20, 2 * read, "stderr: {err}");
    let shutdown_notices =
        out.lines().filter(|l| l.contains("\"disconnect\"") && l.contains("\"code\":1")).count();
    assert_eq!(shutdown_notices, 2, "the drain did not finish: {err}");
    assert!(err.contains(&format!("stopped by SIG{sig}")), "{err}");
    assert!(err.contains("policy block") && err.contains("0 lost"), "{err}");
}

#[test]
fn sigterm_stops_reading_drains_and_prints_the_summary() {
    first_signal_drains_and_reports("TERM");
}

#[test]
fn sigint_stops_reading_drains_and_prints_the_summary() {
    first_signal_drains_and_reports("INT");
}

/// The guarantees check's scenario: SIGTERM while lines keep arriving; the output is complete
/// JSON Lines and the summary is printed.
#[test]
fn sigterm_mid_stream_leaves_complete_json_lines() {
    let dir = temp_dir("sigterm-stream");
    let rules = rules(&dir, &["a", "b", "c"]);
    let mut child = spawn_run(&["--rules", rules.to_str().unwrap()]);
    let mut stdin = child.stdin.take().unwrap();
    let out = collect(child.stdout.take().unwrap());
    let err = collect(child.stderr.take().unwrap());
    let feeder = std::thread::spawn(move || {
        for line in messages(100_000).lines() {
            if writeln!(stdin, "{line}").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    std::thread::sleep(Duration::from_millis(700));
    signal(&child, "TERM");
    let status = wait_for(&mut child, Duration::from_secs(20));
    feeder.join().unwrap();
    let (out, err) = (out.recv().unwrap(), err.recv().unwrap());
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {err}");
    let matches = complete_json_lines(&out);
    assert!(matches > 0, "stderr: {err}");
    // Every message read was delivered to all three subscribers.
    assert_eq!(matches % 3, 0, "stderr: {err}");
    assert_eq!(matches, 3 * messages_read(&err), "stderr: {err}");
}

/// Behind a reader that takes nothing, a first signal waits at most `--shutdown-timeout`;
/// what could not be written is reported as lost, with status 3.
#[test]
fn shutdown_timeout_bounds_the_drain_behind_a_stalled_reader() {
    let (mut child, stdout, err) = run_behind_a_stalled_reader("stalled-signal", "1");
    assert!(child.try_wait().unwrap().is_none(), "the command should be blocked on its output");
    let start = Instant::now();
    signal(&child, "TERM");
    let status = wait_for(&mut child, Duration::from_secs(20));
    let waited = start.elapsed();
    let err = err.recv().unwrap();
    drop(stdout);
    assert_eq!(status.code(), Some(3), "{status:?}; stderr: {err}");
    assert!(waited >= Duration::from_millis(900), "left after {waited:?}: {err}");
    assert!(err.contains("stopped by SIGTERM") && err.contains("lost"), "{err}");
}

/// A second signal stops at once, with the signal's own status (130/143 in a shell).
#[test]
fn second_signal_stops_at_once() {
    let (mut child, stdout, err) = run_behind_a_stalled_reader("second-signal", "60");
    signal(&child, "TERM");
    std::thread::sleep(Duration::from_millis(500));
    // The first signal does not end the command: it is draining into the stalled output.
    assert!(child.try_wait().unwrap().is_none(), "the first signal ended the command");
    signal(&child, "TERM");
    let status = wait_for(&mut child, Duration::from_secs(10));
    drop(stdout);
    let err = err.recv().unwrap();
    assert_eq!(status.signal(), Some(15), "{status:?}; stderr: {err}");
    assert!(err.contains("second SIGTERM"), "{err}");
}

/// Issue 23, item 4: `run … > /dev/full` printed one error per subscriber and exited 0. Now
/// the first write error stops the run, is reported once, and the status is 4.
#[test]
fn a_full_disk_is_reported_once_with_status_4() {
    let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
        eprintln!("skipped: no /dev/full on this system");
        return;
    };
    let dir = temp_dir("dev-full");
    let names: Vec<String> = (0..50).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let rules = rules(&dir, &names);
    let input = dir.join("in.jsonl");
    std::fs::write(&input, messages(2_000)).unwrap();
    let mut child = bin()
        .args(["run", "--rules", rules.to_str().unwrap(), input.to_str().unwrap()])
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = collect(child.stderr.take().unwrap());
    let status = wait_for(&mut child, Duration::from_secs(60));
    let err = err.recv().unwrap();
    assert_eq!(status.code(), Some(4), "{status:?}; stderr: {err}");
    assert_eq!(err.matches("No space left on device").count(), 1, "{err}");
}

/// `run … | head -1`: the reader goes away; the command stops quietly (no error, no summary)
/// and ends the way grep does (killed by SIGPIPE, status 141 in a shell), not with status 0.
#[test]
fn a_reader_that_goes_away_ends_the_run_quietly() {
    let dir = temp_dir("broken-pipe");
    let rules = rules(&dir, &["a", "b"]);
    let input = dir.join("in.jsonl");
    std::fs::write(&input, messages(20_000)).unwrap();
    let mut child = spawn_run(&["--rules", rules.to_str().unwrap(), input.to_str().unwrap()]);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    read_lines(&mut out, 1);
    drop(out);
    let err = collect(child.stderr.take().unwrap());
    let status = wait_for(&mut child, Duration::from_secs(60));
    let err = err.recv().unwrap();
    assert_eq!(status.signal(), Some(13), "{status:?}; stderr: {err}");
    assert_eq!(err, "", "not quiet");
}

/// Issue 23, item 1: under `block`, a reader that pauses longer than the old 10 s drain
/// timeout lost the queued deliveries (and the status was 0). Now nothing is lost.
#[test]
fn block_loses_nothing_behind_a_reader_paused_past_the_old_drain_timeout() {
    let dir = temp_dir("paused-reader");
    let rules = rules(&dir, &["a", "b", "c"]);
    let input = dir.join("in.jsonl");
    std::fs::write(&input, messages(2_000)).unwrap();
    let mut child = spawn_run(&["--rules", rules.to_str().unwrap(), input.to_str().unwrap()]);
    let stdout = child.stdout.take().unwrap();
    let err = collect(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_secs(12));
    let out = collect(stdout).recv().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let err = err.recv().unwrap();
    assert_eq!(complete_json_lines(&out), 6_000, "stderr: {err}");
    assert_eq!(status.code(), Some(0), "{status:?}; stderr: {err}");
}

/// `--drain-timeout` bounds the wait at the end of the input; what the stalled reader did not
/// take is reported as lost, with status 3 (no more silent drops).
#[test]
fn a_chosen_drain_timeout_reports_what_it_lost() {
    let dir = temp_dir("drain-timeout");
    let rules = rules(&dir, &["a", "b", "c"]);
    let input = dir.join("in.jsonl");
    std::fs::write(&input, messages(2_000)).unwrap();
    let mut child = spawn_run(&[
        "--rules",
        rules.to_str().unwrap(),
        "--drain-timeout",
        "0.5",
        input.to_str().unwrap(),
    ]);
    let stdout = child.stdout.take().unwrap();
    let err = collect(child.stderr.take().unwrap());
    std::thread::sleep(Duration::from_secs(3));
    let out = collect(stdout).recv().unwrap();
    let status = wait_for(&mut child, Duration::from_secs(20));
    let err = err.recv().unwrap();
    let got = complete_json_lines(&out);
    assert!(got < 6_000, "nothing was dropped: {err}");
    assert_eq!(status.code(), Some(3), "{status:?}; stderr: {err}");
    // Never fewer than went missing (a line a stalled write was holding may still come out
    // after the timeout: the engine counts it as lost, which errs on the safe side).
    let lost: usize = err
        .split(" lost")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .map(|n| n.replace(',', "").parse().unwrap())
        .unwrap();
    assert!(lost > 0 && lost + got >= 6_000, "{got}: {err}");
}

/// Issue 21, item 4: deliveries show up while standard input is still open.
#[test]
fn deliveries_are_visible_before_the_input_ends() {
    let dir = temp_dir("live");
    let rules = rules(&dir, &["a"]);
    let mut child = spawn_run(&["--rules", rules.to_str().unwrap()]);
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "{{\"id\":\"1\",\"text\":\"x\"}}").unwrap();
    stdin.flush().unwrap();
    let (tx, rx) = mpsc::channel();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).expect("no delivery while input is open");
    assert!(line.contains("\"matching_rules\""), "{line}");
    drop(stdin);
    assert_eq!(wait_for(&mut child, Duration::from_secs(20)).code(), Some(0));
}

/// Issue 21, item 7: `--out-dir` writes one JSON Lines file per subscriber, named safely.
#[test]
fn out_dir_writes_one_file_per_subscriber_with_safe_names() {
    let dir = temp_dir("out-dir");
    let subscribers = ["alice", "Alice", "../evil", "a/b", "caf\u{e9}", ".hidden", "%41lice"];
    let rules = rules(&dir, &subscribers);
    let input = dir.join("in.jsonl");
    std::fs::write(&input, messages(50)).unwrap();
    let out_dir = dir.join("out");
    let status = bin()
        .args(["run", "--quiet", "--rules", rules.to_str().unwrap()])
        .arg("--out-dir")
        .arg(&out_dir)
        .arg(&input)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // Nothing was written outside the directory.
    let mut outside: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    outside.sort();
    assert_eq!(outside, ["in.jsonl", "out", "rules.jsonl"]);
    let mut files: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(files.len(), subscribers.len(), "{files:?}");
    // Distinct even where case is folded (macOS, Windows), none hidden, no separators.
    let folded: std::collections::HashSet<String> =
        files.iter().map(|f| f.to_lowercase()).collect();
    assert_eq!(folded.len(), files.len(), "{files:?}");
    assert!(files.iter().all(|f| !f.starts_with('.') && !f.contains('/')), "{files:?}");
    // Each file holds exactly its subscriber's 50 deliveries.
    let mut seen = std::collections::HashSet::new();
    for f in &files {
        let text = std::fs::read_to_string(out_dir.join(f)).unwrap();
        assert_eq!(complete_json_lines(&text), 50, "{f}");
        let names: std::collections::HashSet<String> = text
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["subscriber"].to_string()
            })
            .collect();
        assert_eq!(names.len(), 1, "{f}: {names:?}");
        seen.extend(names);
    }
    assert_eq!(seen.len(), subscribers.len());
}

/// The help states the default policy, the timeouts and the exit statuses.
#[test]
fn help_states_the_policy_and_the_exit_statuses() {
    let out = bin().args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in
        ["[default: block]", "--drain-timeout", "--shutdown-timeout", "Exit status", "141"]
    {
        assert!(help.contains(needle), "{needle:?} missing from:\n{help}");
    }
}

/// More subscribers than `--out-dir` keeps files open (128), under a descriptor limit of 200
/// (`ulimit -n`), on a live input (so every subscriber's stream stays open between
/// messages): the others are reopened to append, and every file gets all its lines.
#[test]
fn out_dir_with_more_subscribers_than_open_files() {
    let dir = temp_dir("out-dir-many");
    let names: Vec<String> = (0..600).map(|i| format!("s{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let rules = rules(&dir, &names);
    let out_dir = dir.join("out");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 200 && exec \"$0\" run --quiet --rules \"$1\" --out-dir \"$2\"")
        .arg(env!("CARGO_BIN_EXE_streamtrack"))
        .args([&rules, &out_dir])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let err = collect(child.stderr.take().unwrap());
    for line in messages(10).lines() {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let status = wait_for(&mut child, Duration::from_secs(60));
    let err = err.recv().unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    for name in &names {
        let text = std::fs::read_to_string(out_dir.join(format!("{name}.jsonl"))).unwrap();
        assert_eq!(complete_json_lines(&text), 10, "{name}");
    }
}

/// The rules are subscribed in one batch (2026-12-06): a repeated rule is still warned about
/// with the id it repeats and skipped, each match names the rules-file ids, and a quick start
/// says nothing about loading.
#[test]
fn a_batch_load_keeps_the_rule_ids_and_warns_about_repeats() {
    let dir = temp_dir("batch");
    let rules = dir.join("rules.jsonl");
    std::fs::write(
        &rules,
        concat!(
            "{\"id\":\"a1\",\"value\":\"x\",\"subscriber\":\"alice\"}\n",
            "{\"id\":\"a2\",\"value\":\"x\",\"subscriber\":\"alice\"}\n",
            "{\"id\":\"b1\",\"value\":\"y\",\"subscriber\":\"bob\"}\n",
            "{\"id\":\"own\",\"value\":\"y\"}\n",
            "{\"id\":\"a3\",\"value\":\"y\",\"subscriber\":\"alice\"}\n",
        ),
    )
    .unwrap();
    let out = bin()
        .args(["run", "--rules"])
        .arg(&rules)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"{\"id\":\"m\",\"text\":\"x y\"}\n")?;
            c.wait_with_output()
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr
            .contains("rule 2 (id \"a2\") repeats rule id \"a1\" of subscriber \"alice\"; skipped"),
        "{stderr}"
    );
    assert!(!stderr.contains("loading rules"), "{stderr}");
    assert!(stderr.contains("to 3 subscribers"), "{stderr}");
    let mut got: Vec<(String, Vec<String>)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let mut ids: Vec<String> = v["matching_rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect();
            ids.sort();
            (v["subscriber"].as_str().unwrap().to_string(), ids)
        })
        .collect();
    got.sort();
    let want = |s: &str, ids: &[&str]| (s.to_string(), ids.iter().map(|i| i.to_string()).collect());
    assert_eq!(
        got,
        vec![want("alice", &["a1", "a3"]), want("bob", &["b1"]), want("own", &["own"])]
    );
}
