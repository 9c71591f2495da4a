//! The live view's cost and latency (README, "Live view"):
//!
//! 1. matching throughput at 100,000 rules with the view attached (analytics stage, the
//!    view's sink on every subscriber, the hub, 50 SSE clients reading over loopback TCP)
//!    against the same engine without the view (no-op sinks); runs alternate, best of each;
//! 2. event-to-page latency: a message enters the input (a channel, as `serve` reads it) at
//!    10 per second; the time until an SSE client reads the `tick` event that counts it.
//!
//! `cargo run --release -p streamtrack-web --example view_bench [-- MESSAGES [SECONDS]]`
//!
//! By default the rules and messages are the workload generator's (38.7% of messages match,
//! several rules each). `RULES_FILE=rules.jsonl MESSAGES_FILE=posts.txt` runs part 1 over a
//! given corpus instead, its messages repeated to `MESSAGES`, e.g. the shared side-by-side
//! corpus (`target/peers/rules_100k.jsonl`, `target/peers/data/messages.txt`: 3.4% of posts
//! match, as real rule sets do); part 2 keeps the generated rules.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::{CallbackSink, ChannelSource, Engine, IterSource};
use streamtrack::registry::{NewRule, Registry};
use streamtrack::{Message, Rule};
use streamtrack_web::{NewViewRule, Server, ServerConfig, View, ViewConfig, ViewRules};
use streamtrack_workload::{process_cpu_secs, RuleSetConfig, WorkloadConfig};

/// The command-line tool's allocator (see its `main.rs`): the figures are `serve`'s.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

const RULES: usize = 100_000;
const SUBSCRIBERS: usize = 1_000;
const CLIENTS: usize = 50;

/// The rules of a run: `RULES_FILE`'s, or the generator's.
fn rules() -> Vec<Rule> {
    match std::env::var_os("RULES_FILE") {
        Some(path) => streamtrack::read::read_rules(Path::new(&path))
            .expect("a readable RULES_FILE")
            .into_iter()
            .map(|e| e.rule)
            .collect(),
        None => {
            RuleSetConfig::default().rules(RULES).iter().filter_map(|g| g.parse().ok()).collect()
        }
    }
}

/// The messages of a run: `MESSAGES_FILE`'s, repeated to `count`, or the generator's.
fn messages(count: usize) -> Vec<Message> {
    match std::env::var_os("MESSAGES_FILE") {
        Some(path) => {
            let corpus = streamtrack::read::read_messages(Path::new(&path))
                .expect("a readable MESSAGES_FILE");
            assert!(!corpus.is_empty(), "MESSAGES_FILE holds no message");
            corpus.iter().cycle().take(count).cloned().collect()
        }
        None => WorkloadConfig::default().seed(7).count(count).messages(),
    }
}

fn registry(rules: &[Rule]) -> Registry {
    let reg = Registry::new();
    let ids = reg.subscribe_all(rules.iter().enumerate().map(|(i, rule)| NewRule {
        subscriber: format!("user-{}", i % SUBSCRIBERS),
        rule: rule.clone(),
        tag: None,
    }));
    assert!(ids.iter().filter(|r| r.is_ok()).count() > rules.len() * 9 / 10);
    reg
}

/// Opens an SSE stream and reads it on a thread until `stop`, counting the events and the
/// bytes read.
fn client(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => break,
                Ok(n) => {
                    bytes.fetch_add(n as u64, Ordering::Relaxed);
                    if line.starts_with("event:") {
                        read.fetch_add(1, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        }
    })
}

/// The engine with no-op sinks; with `analytics`, its analytics stage too (the view's
/// settings), which the view needs and which is the engine's, not the view's, cost.
fn plain(rules: &[Rule], messages: &[Message], analytics: bool) -> Rates {
    let mut b = Engine::builder(registry(rules));
    if analytics {
        b = b.analytics(ViewConfig::default().analytics);
    }
    for i in 0..SUBSCRIBERS {
        b = b.attach(&format!("user-{i}"), CallbackSink::new(|_| Ok(())));
    }
    // The input is copied before the clock starts: the copy is not the engine's work.
    let input = IterSource::new(messages.to_vec());
    let (t, cpu) = (Instant::now(), process_cpu_secs());
    let f = b.start(input).unwrap().join();
    rates(f.stats.processed, t, cpu)
}

/// Messages per second of wall time and per CPU-second of the whole process (all its
/// threads: on a shared machine wall time measures the neighbours too).
fn rates(processed: u64, t: Instant, cpu: Option<f64>) -> Rates {
    let wall = processed as f64 / t.elapsed().as_secs_f64();
    let cpu = cpu.zip(process_cpu_secs()).map_or(f64::NAN, |(a, b)| processed as f64 / (b - a));
    Rates { wall, cpu }
}

/// A run's throughput: messages per second of wall time and per CPU-second.
#[derive(Clone, Copy)]
struct Rates {
    wall: f64,
    cpu: f64,
}

fn with_view(rules: &[Rule], messages: &[Message]) -> (Rates, u64, u64, u64) {
    let view = View::new(ViewRules::Plain(registry(rules)), ViewConfig::default());
    let server =
        Server::start("127.0.0.1:0".parse().unwrap(), view.clone(), ServerConfig::default())
            .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (read, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| client(server.local_addr(), stop.clone(), read.clone(), bytes.clone()))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let input = IterSource::new(messages.to_vec());
    let (t, cpu) = (Instant::now(), process_cpu_secs());
    let f = view.start_engine(input, None).unwrap().join();
    let rate = rates(f.stats.processed, t, cpu);
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    server.stop();
    (rate, view.hub().last_id(), read.load(Ordering::Relaxed), bytes.load(Ordering::Relaxed))
}

fn latency(seconds: u64) -> Vec<f64> {
    let generated: Vec<Rule> =
        RuleSetConfig::default().rules(RULES).iter().filter_map(|g| g.parse().ok()).collect();
    let view = View::new(ViewRules::Plain(registry(&generated)), ViewConfig::default());
    assert_eq!(view.add_rule(NewViewRule::new("zqxprobe").id("probe"), false).status, 201);
    let server =
        Server::start("127.0.0.1:0".parse().unwrap(), view.clone(), ServerConfig::default())
            .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1024);
    let engine = view.start_engine(ChannelSource::new(rx), None).unwrap();
    let n = seconds * 10;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    let s2 = sent.clone();
    let addr = server.local_addr();
    let reader = std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        let mut seen = 0u64; // messages 0..seen have been counted by a tick
        let mut out = Vec::new();
        while seen < n {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let Some(data) = line.strip_prefix("data: ") else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else { continue };
            let Some(last) = v["last"]["probe"].as_str() else { continue };
            let k: u64 = last.trim_start_matches("p").parse().unwrap();
            let now = epoch.elapsed().as_micros() as u64;
            while seen <= k {
                let at = s2[seen as usize].load(Ordering::Relaxed);
                out.push((now - at) as f64 / 1000.0);
                seen += 1;
            }
        }
        out
    });
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    for i in 0..n {
        std::thread::sleep(
            (start + Duration::from_millis(100 * i)).saturating_duration_since(Instant::now()),
        );
        let m = Message::new(format!("p{i}"), format!("zqxprobe number {i}"));
        let arc = Arc::new(m.clone());
        sent[i as usize].store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
        view.note_input(&arc);
        tx.send(m).unwrap();
    }
    let mut out = reader.join().unwrap();
    drop(tx);
    engine.join();
    server.stop();
    out.sort_by(f64::total_cmp);
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let seconds: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(30);
    let rules = rules();
    let messages = messages(count);
    println!("{} rules over {SUBSCRIBERS} subscribers, {count} messages per run", rules.len());
    let (mut a, mut s, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..2 {
        let p = plain(&rules, &messages, false);
        let st = plain(&rules, &messages, true);
        let (v, published, read, bytes) = with_view(&rules, &messages);
        println!(
            "round {round}: engine alone {:>8.0} msgs/s ({:.0} per CPU-s); engine + analytics stage \
             {:>8.0} msgs/s ({:.0}); + the view and {CLIENTS} SSE clients {:>8.0} msgs/s ({:.0}) \
             ({published} events published, {read} read, {:.1} MB read by all clients)",
            p.wall, p.cpu, st.wall, st.cpu, v.wall, v.cpu, bytes as f64 / 1e6
        );
        a.push(p);
        s.push(st);
        b.push(v);
    }
    // Best of 2 each, by wall time and by CPU time.
    let best = |v: &[Rates], by: fn(&Rates) -> f64| v.iter().map(by).fold(0.0, f64::max);
    for (name, by) in [("wall", (|r: &Rates| r.wall) as fn(&Rates) -> f64), ("CPU", |r| r.cpu)] {
        println!(
            "best of 2 each, by {name} time: with the view / engine + analytics stage: {:.1}%; with the view / engine alone: {:.1}% (the analytics stage alone: {:.1}%)",
            100.0 * best(&b, by) / best(&s, by),
            100.0 * best(&b, by) / best(&a, by),
            100.0 * best(&s, by) / best(&a, by),
        );
    }
    let lat = latency(seconds);
    let q = |p: f64| lat[((lat.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "event-to-page latency at 10 messages/s over {seconds} s ({} samples): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        lat[lat.len() - 1]
    );
}
