//! `streamtrack serve` and `streamtrack demo` as a user runs them: the real-browser test of
//! the page (Debian's chromium driven by playwright-core, see
//! `crates/streamtrack-web/browser/`), `serve --state`, and the demo ending by itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_streamtrack");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Skips (returns `false`) when a tool is missing, unless `CI` is set: then it fails.
fn need(what: &str, present: bool) -> bool {
    if present {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing under CI (.ci/run installs it)");
    }
    eprintln!("skipped: {what} is missing (set CI=true to make this a failure)");
    false
}

#[test]
fn the_page_works_in_a_real_browser() {
    let browser_dir = repo().join("crates/streamtrack-web/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node_ok = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !need("node", node_ok)
        || !need(&chromium, Path::new(&chromium).exists())
        || !need(
            "playwright-core (npm ci in crates/streamtrack-web/browser)",
            browser_dir.join("node_modules/playwright-core").exists(),
        )
    {
        return;
    }
    let out = repo().join("target/live-view");
    let mut child = Command::new("node")
        .arg(browser_dir.join("live-view.test.js"))
        .arg(BIN)
        .arg(&out)
        .spawn()
        .expect("node");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the browser test took over 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the browser test failed (see its output above)");
    assert!(out.join("live-view.png").exists());
}

/// A `serve` child (with its stdout kept open), killed by PID when dropped.
struct Serve(Child, SocketAddr, #[allow(dead_code)] BufReader<std::process::ChildStdout>);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(args: &[&str]) -> Serve {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(args).args(["--bind", "127.0.0.1:0", "--input", "-"]);
    start(cmd.stdin(Stdio::piped()))
}

/// Starts a `serve` command and reads its address from the URL on its first line.
fn start(cmd: &mut Command) -> Serve {
    let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no URL in {line:?}"));
    Serve(child, addr, stdout)
}

fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    (status, out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default())
}

/// An empty directory of this test process, `st-serve-<name>-<pid>` under the temp dir.
fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("st-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rule_ids(addr: SocketAddr) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&http(addr, "GET", "/api/rules", "").1).unwrap();
    v["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn serve_with_state_resumes_with_the_rules_added_and_removed_in_the_page() {
    let dir = fresh_dir("state");
    let rules = dir.join("rules.jsonl");
    std::fs::write(
        &rules,
        "{\"id\":\"love\",\"value\":\"love\"}\n{\"id\":\"hate\",\"value\":\"hate\"}\n",
    )
    .unwrap();
    let state = dir.join("state");
    let (r, s) = (rules.to_str().unwrap(), state.to_str().unwrap());
    {
        let sv = serve(&["--rules", r, "--state", s]);
        assert_eq!(rule_ids(sv.1), ["hate", "love"]);
        assert_eq!(http(sv.1, "POST", "/api/rules", r#"{"id":"tea","value":"tea"}"#).0, 201);
        assert_eq!(http(sv.1, "DELETE", "/api/rules/hate", "").0, 204);
    }
    let sv = serve(&["--state", s]);
    assert_eq!(rule_ids(sv.1), ["love", "tea"]);
    drop(sv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn demo_prints_its_url_and_ends_by_itself() {
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(["demo", "--seconds", "6", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("open http://127.0.0.1:"), "{text}");
    assert!(text.contains("done: "), "{text}");
    assert!(text.contains("+ rule \"battery\""), "{text}");
    assert!(t.elapsed() < Duration::from_secs(30));
}

/// `demo | head -1`: the reader goes away after the first line; the demo must still end by
/// itself with status 0, not panic on the closed pipe (it did while it printed with `println!`).
#[test]
fn demo_survives_a_closed_stdout() {
    let mut child = Command::new(BIN)
        .args(["demo", "--seconds", "3", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    // The reader (and with it the pipe's read end) is dropped here.
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(out.status.success(), "{:?}: {err}", out.status);
}

#[test]
fn serve_replays_a_file_into_the_buckets_of_its_own_timestamps() {
    let dir = fresh_dir("replay");
    let rules = dir.join("rules.jsonl");
    std::fs::write(&rules, "{\"id\":\"love\",\"value\":\"love\"}\n").unwrap();
    let input = dir.join("posts.jsonl");
    // 2024-03-01T12:00:00Z = 1709294400000 ms.
    std::fs::write(
        &input,
        "{\"id\":\"a\",\"text\":\"love it\",\"created_at\":\"2024-03-01T12:00:00.100Z\"}\n\
         {\"id\":\"b\",\"text\":\"no\",\"created_at\":\"2024-03-01T12:00:00.200Z\"}\n\
         {\"id\":\"c\",\"text\":\"I love <i>this</i>\",\"created_at\":\"2024-03-01T12:00:00.900Z\"}\n\
         {\"id\":\"d\",\"text\":\"love again\",\"created_at\":\"2024-03-01T12:00:02.500Z\"}\n",
    )
    .unwrap();
    let sv = start(
        Command::new(BIN)
            .args(["serve", "--rules", rules.to_str().unwrap(), "--input", input.to_str().unwrap()])
            .args(["--bind", "127.0.0.1:0"]),
    );
    let t0 = 1_709_294_400_000i64;
    let path = format!("/api/series?rule=love&from={t0}&to={}", t0 + 2_000);
    let deadline = Instant::now() + Duration::from_secs(10);
    let counts = loop {
        let v: serde_json::Value = serde_json::from_str(&http(sv.1, "GET", &path, "").1).unwrap();
        let c: Vec<u64> =
            v["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).collect();
        if c.iter().sum::<u64>() == 3 || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(counts, [2, 0, 1], "the 1 s buckets of 12:00:00, :01 and :02");
    let v: serde_json::Value =
        serde_json::from_str(&http(sv.1, "GET", "/api/messages?rule=love", "").1).unwrap();
    let ids: Vec<&str> =
        v["messages"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["d", "c", "a"]);
    drop(sv);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_keeps_serving_when_its_standard_output_is_closed() {
    // A free port, then `serve` with its stdout a pipe nobody reads (closed at once): printing
    // the URL must not stop the server (it did: println! panics on a broken pipe).
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("st-serve-pipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.jsonl");
    std::fs::write(&rules, "{\"id\":\"love\",\"value\":\"love\"}\n").unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--rules", rules.to_str().unwrap(), "--input", "-"])
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answered = loop {
        if TcpStream::connect(addr).is_ok() && http(addr, "GET", "/api/rules", "").0 == 200 {
            break true;
        }
        if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // Give a panicking server the time to die after its first answer too.
    std::thread::sleep(Duration::from_millis(300));
    let alive = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(answered && alive, "serve stopped when its stdout closed");
}
