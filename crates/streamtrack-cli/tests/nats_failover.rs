//! `streamtrack nats` as the built binary against a real `nats-server -js` on a free loopback
//! port (skipped with a message when the binary is missing and `CI` is unset): instances
//! sharing a durable consumer, one killed with SIGKILL mid-stream; the server restarted
//! mid-stream. Every (message, subscriber) pair the reference matcher predicts must be in the
//! delivery stream, exactly once there (the server's de-duplication).
#![cfg(unix)]

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::rule::Rule;
use streamtrack::Message;
use streamtrack_nats::server::NatsServer;
use streamtrack_nats::Nats;

const WORDS: [&str; 15] = [
    "love", "hate", "good", "bad", "great", "awful", "happy", "sad", "lol", "thanks", "movie",
    "game", "today", "work", "sleep",
];
const MAX_ACK_PENDING: u64 = 2000;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_streamtrack"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamtrack-nats-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The rules file (15 words, 5 subscribers) and `n` messages of 6 words each from a
/// 200-word vocabulary (deterministic), with the pairs the reference matcher predicts.
struct Workload {
    rules: PathBuf,
    lines: Vec<String>,
    expected: BTreeSet<(String, String)>,
}

fn workload(dir: &Path, n: usize) -> Workload {
    let mut rules_text = String::new();
    let mut rules = Vec::new();
    for (i, w) in WORDS.iter().enumerate() {
        let line = serde_json::json!({"id": format!("r{i}"), "value": w, "subscriber": format!("s{}", i % 5)});
        rules_text.push_str(&format!("{line}\n"));
        rules.push(Rule::parse(w).unwrap());
    }
    let path = dir.join("rules.jsonl");
    std::fs::write(&path, rules_text).unwrap();
    let matcher = ReferenceMatcher::new(rules);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut lines = Vec::with_capacity(n);
    let mut expected = BTreeSet::new();
    for i in 0..n {
        let words: Vec<String> = (0..6)
            .map(|_| match (next() % 200) as usize {
                k if k < WORDS.len() => WORDS[k].to_string(),
                k => format!("w{k}"),
            })
            .collect();
        let text = words.join(" ");
        let id = format!("m{i}");
        for r in matcher.matching(&Message::new(id.clone(), text.clone())) {
            expected.insert((format!("s{}", r % 5), id.clone()));
        }
        lines.push(serde_json::json!({"id": id, "text": text}).to_string());
    }
    Workload { rules: path, lines, expected }
}

struct Instance {
    child: Child,
    log: PathBuf,
}

impl Instance {
    fn start(url: &str, dir: &Path, name: &str) -> Instance {
        let log = dir.join(format!("{name}.log"));
        let child = bin()
            .args(["nats", "run", "--server", url, "--stream", "POSTS", "--subject", "posts.in"])
            .args([
                "--consumer",
                "matchers",
                "--rules-bucket",
                "rules",
                "--deliver-prefix",
                "track.out",
            ])
            .args([
                "--ack-wait",
                "2",
                "--max-ack-pending",
                &MAX_ACK_PENDING.to_string(),
                "--log-every",
                "0.2",
            ])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Instance { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str, secs: u64, cond: impl Fn(&str) -> bool) {
        let start = Instant::now();
        while !cond(&self.log()) {
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last `received N` figure logged.
    fn received(&self) -> u64 {
        self.log()
            .rsplit("received ")
            .next()
            .and_then(|s| s.split(',').next())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn terminate(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The figure after `label` in the final `nats run: done` line.
fn final_figure(log: &str, label: &str) -> u64 {
    let done = log
        .lines()
        .find(|l| l.starts_with("nats run: done"))
        .unwrap_or_else(|| panic!("no final line:\n{log}"));
    done.split(label)
        .nth(1)
        .and_then(|s| s.trim().split([',', ';']).next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in {done}"))
}

fn add_rules(url: &str, rules: &Path) {
    let out = bin()
        .args(["nats", "rules", "add", "--server", url, "--rules-bucket", "rules"])
        .arg(rules)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

fn publish(url: &str, file: &Path) -> Child {
    bin()
        .args(["nats", "publish", "--server", url, "--subject", "posts.in"])
        .arg(file)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// How many messages the delivery stream holds (0 while unreachable).
fn stored(nats: &Nats) -> u64 {
    nats.block_on(async {
        match tokio::time::timeout(
            Duration::from_secs(2),
            nats.jetstream().get_stream("DELIVER_track_out"),
        )
        .await
        {
            Ok(Ok(s)) => s.cached_info().state.messages,
            _ => 0,
        }
    })
}

/// Every (subscriber, message id) in the delivery stream, with how many times it is stored.
fn delivered(nats: &Nats) -> HashMap<(String, String), u32> {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    nats.block_on(async {
        let s = nats.jetstream().get_stream("DELIVER_track_out").await.unwrap();
        let n = s.cached_info().state.messages;
        let c = s
            .create_consumer(pull::Config { ack_policy: AckPolicy::None, ..Default::default() })
            .await
            .unwrap();
        let mut msgs = c.stream().max_messages_per_batch(1000).messages().await.unwrap();
        let mut got = HashMap::new();
        for _ in 0..n {
            let m = msgs.next().await.unwrap().unwrap();
            let o: serde_json::Value = serde_json::from_slice(&m.payload).unwrap();
            let key = (
                o["subscriber"].as_str().unwrap().to_string(),
                o["id"].as_str().unwrap().to_string(),
            );
            *got.entry(key).or_insert(0) += 1;
        }
        got
    })
}

fn wait_stored(nats: &Nats, want: u64, secs: u64, logs: &[&Instance]) {
    let start = Instant::now();
    let mut last = (0, Instant::now());
    loop {
        let n = stored(nats);
        if n >= want {
            return;
        }
        if n != last.0 {
            last = (n, Instant::now());
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let logs: Vec<String> = logs
                .iter()
                .map(|i| i.log().lines().rev().take(3).collect::<Vec<_>>().join("\n"))
                .collect();
            panic!("{n} of {want} deliveries stored after {secs} s:\n{}", logs.join("\n---\n"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn check_exact(nats: &Nats, expected: &BTreeSet<(String, String)>) {
    let got = delivered(nats);
    let lost: Vec<_> = expected.iter().filter(|k| !got.contains_key(*k)).take(5).collect();
    let unexpected: Vec<_> = got.keys().filter(|k| !expected.contains(*k)).take(5).collect();
    let doubled: Vec<_> = got.iter().filter(|(_, &n)| n > 1).take(5).collect();
    assert!(lost.is_empty(), "lost pairs (first 5): {lost:?}");
    assert!(unexpected.is_empty(), "unexpected pairs (first 5): {unexpected:?}");
    assert!(doubled.is_empty(), "pairs stored twice despite de-duplication: {doubled:?}");
    assert_eq!(got.len(), expected.len());
}

#[test]
fn failover_three_instances_one_killed_nothing_lost() {
    let Some(server) =
        NatsServer::start_or_skip("failover_three_instances_one_killed_nothing_lost")
    else {
        return;
    };
    let dir = temp_dir("failover");
    let url = server.url();
    let w = workload(&dir, 100_000);
    let input = dir.join("posts.jsonl");
    std::fs::write(&input, w.lines.join("\n") + "\n").unwrap();
    add_rules(&url, &w.rules);
    let instances: Vec<Instance> =
        (1..=3).map(|i| Instance::start(&url, &dir, &format!("inst{i}"))).collect();
    for i in &instances {
        i.wait_log("the instance to start", 30, |l| l.contains("nats run: stream POSTS"));
    }
    let started = Instant::now();
    let mut publisher = publish(&url, &input);
    // Kill the second instance once it is busy.
    let mut instances = instances.into_iter();
    let (first, mut victim, third) =
        (instances.next().unwrap(), instances.next().unwrap(), instances.next().unwrap());
    let t = Instant::now();
    while victim.received() < 2000 {
        assert!(t.elapsed() < Duration::from_secs(60), "instance 2 got nothing:\n{}", victim.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    let killed_at = victim.received();
    let status = publisher.wait().unwrap();
    assert!(status.success());
    let nats = Nats::connect(&url).unwrap();
    wait_stored(&nats, w.expected.len() as u64, 240, &[&first, &third]);
    let elapsed = started.elapsed();
    // Past the ack wait: nothing else comes (the killed instance's messages were redelivered).
    std::thread::sleep(Duration::from_secs(3));
    let (s1, log1) = first.terminate();
    let (s3, log3) = third.terminate();
    assert!(s1.success() && s3.success(), "exit statuses {s1:?} {s3:?}:\n{log1}\n{log3}");
    check_exact(&nats, &w.expected);
    let duplicates = final_figure(&log1, "duplicates dropped by the server")
        + final_figure(&log3, "duplicates dropped by the server");
    let redelivered = final_figure(&log1, "redelivered") + final_figure(&log3, "redelivered");
    eprintln!(
        "failover: 100000 messages, {} expected pairs, all stored once; instance 2 killed after receiving {killed_at}; \
         {redelivered} messages redelivered to the others, {duplicates} duplicate publications dropped by the server; {:.1} s",
        w.expected.len(),
        elapsed.as_secs_f64()
    );
    // Duplicates come only from the killed instance's unacknowledged window.
    assert!(redelivered <= MAX_ACK_PENDING, "{redelivered} redelivered");
    assert!(
        duplicates <= redelivered * 5,
        "{duplicates} duplicates for {redelivered} redeliveries"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_server_restarted_mid_stream_nothing_lost() {
    let Some(mut server) =
        NatsServer::start_or_skip("the_server_restarted_mid_stream_nothing_lost")
    else {
        return;
    };
    let dir = temp_dir("restart");
    let url = server.url();
    let w = workload(&dir, 20_000);
    let (a, b) = w.lines.split_at(10_000);
    let (first_half, second_half) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    std::fs::write(&first_half, a.join("\n") + "\n").unwrap();
    std::fs::write(&second_half, b.join("\n") + "\n").unwrap();
    add_rules(&url, &w.rules);
    let instances: Vec<Instance> =
        (1..=2).map(|i| Instance::start(&url, &dir, &format!("inst{i}"))).collect();
    for i in &instances {
        i.wait_log("the instance to start", 30, |l| l.contains("nats run: stream POSTS"));
    }
    assert!(publish(&url, &first_half).wait().unwrap().success());
    // Restart while the instances are busy (some deliveries stored, not all).
    let nats = Nats::connect(&url).unwrap();
    let t = Instant::now();
    while stored(&nats) < 500 {
        assert!(t.elapsed() < Duration::from_secs(60), "nothing delivered");
        std::thread::sleep(Duration::from_millis(20));
    }
    server.restart().unwrap();
    let out = publish(&url, &second_half).wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let refs: Vec<&Instance> = instances.iter().collect();
    wait_stored(&nats, w.expected.len() as u64, 240, &refs);
    std::thread::sleep(Duration::from_secs(3));
    for i in instances {
        let (status, log) = i.terminate();
        assert!(status.success(), "{status:?}:\n{log}");
    }
    check_exact(&nats, &w.expected);
    let _ = std::fs::remove_dir_all(&dir);
}
