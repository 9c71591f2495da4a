//! The live view's cost and latency (README, "Live view"):
//!
//! 1. matching throughput at 100,000 rules with the view attached (analytics stage, the
//!    view's sink on every subscriber, the hub, 50 SSE clients reading over loopback TCP)
//!    against the same engine without the view (no-op sinks); runs alternate, best of each;
//! 2. event-to-page latency: a message enters the input (a channel, as `serve` reads it) at
//!    10 per second; the time until an SSE client reads the `tick` event that counts it.
//!
//! `cargo run --release -p streamtrack-web --example view_bench [-- MESSAGES [SECONDS]]`

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::{CallbackSink, ChannelSource, Engine, IterSource};
use streamtrack::registry::{NewRule, Registry};
use streamtrack::Message;
use streamtrack_web::{NewViewRule, Server, ServerConfig, View, ViewConfig, ViewRules};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

const RULES: usize = 100_000;
const SUBSCRIBERS: usize = 1_000;
const CLIENTS: usize = 50;

fn registry() -> Registry {
    let reg = Registry::new();
    let rules = RuleSetConfig::default().rules(RULES);
    let ids = reg.subscribe_all(rules.iter().enumerate().filter_map(|(i, g)| {
        Some(NewRule {
            subscriber: format!("user-{}", i % SUBSCRIBERS),
            rule: g.parse().ok()?,
            tag: None,
        })
    }));
    assert!(ids.iter().filter(|r| r.is_ok()).count() > RULES * 9 / 10);
    reg
}

/// Opens an SSE stream and reads it on a thread until `stop`; returns the events read.
fn client(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    read: Arc<AtomicU64>,
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
                Ok(_) if line.starts_with("event:") => {
                    read.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
    })
}

/// The engine with no-op sinks; with `analytics`, its analytics stage too (the view's
/// settings), which the view needs and which is the engine's, not the view's, cost.
fn plain(messages: &[Message], analytics: bool) -> f64 {
    let mut b = Engine::builder(registry());
    if analytics {
        b = b.analytics(ViewConfig::default().analytics);
    }
    for i in 0..SUBSCRIBERS {
        b = b.attach(&format!("user-{i}"), CallbackSink::new(|_| Ok(())));
    }
    let t = Instant::now();
    let f = b.start(IterSource::new(messages.to_vec())).unwrap().join();
    f.stats.processed as f64 / t.elapsed().as_secs_f64()
}

fn with_view(messages: &[Message]) -> (f64, u64, u64) {
    let view = View::new(ViewRules::Plain(registry()), ViewConfig::default());
    let server =
        Server::start("127.0.0.1:0".parse().unwrap(), view.clone(), ServerConfig::default())
            .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let read = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> =
        (0..CLIENTS).map(|_| client(server.local_addr(), stop.clone(), read.clone())).collect();
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let f = view.start_engine(IterSource::new(messages.to_vec()), None).unwrap().join();
    let rate = f.stats.processed as f64 / t.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.join();
    }
    server.stop();
    (rate, view.hub().last_id(), read.load(Ordering::Relaxed))
}

fn latency(seconds: u64) -> Vec<f64> {
    let view = View::new(ViewRules::Plain(registry()), ViewConfig::default());
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
    let messages = WorkloadConfig::default().seed(7).count(count).messages();
    println!("{RULES} rules over {SUBSCRIBERS} subscribers, {count} messages per run");
    let (mut a, mut s, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..2 {
        let p = plain(&messages, false);
        let st = plain(&messages, true);
        let (v, published, read) = with_view(&messages);
        println!(
            "round {round}: engine alone {p:>8.0} msgs/s; engine + analytics stage {st:>8.0} msgs/s; \
             + the view and {CLIENTS} SSE clients {v:>8.0} msgs/s ({published} events published, {read} read)"
        );
        a.push(p);
        s.push(st);
        b.push(v);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    println!(
        "best of 2 each: with the view / engine + analytics stage: {:.1}%; with the view / engine alone: {:.1}% (the analytics stage alone: {:.1}%)",
        100.0 * best(&b) / best(&s),
        100.0 * best(&b) / best(&a),
        100.0 * best(&s) / best(&a),
    );
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
