//! End-to-end throughput through NATS JetStream with 1, 2 and 3 instances (in this process,
//! each with its own connection, engine and runtime, sharing one durable consumer), against
//! the engine alone on the same messages; starts its own `nats-server -js`.
//!
//! ```text
//! cargo run --release -p streamtrack-nats --example nats_throughput -- [MESSAGES] [THREADS]
//! ```
//!
//! Each run starts a fresh server, preloads MESSAGES (default 100,000) into the stream, then
//! starts the instances and times until every message is acknowledged. The rules: 15 words
//! over 5 subscribers (each message matches about 0.4 of them); a delivery is one JetStream
//! publication with a de-duplication id, acknowledged by the server before the next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::{CallbackSink, Engine, IterSource};
use streamtrack::{Message, Registry};
use streamtrack_nats::server::NatsServer;
use streamtrack_nats::{
    delivery_json, ConsumerSettings, JetStreamSink, JetStreamSource, Nats, RuleNames, RulesWatcher,
    SinkCounters,
};

const WORDS: [&str; 15] = [
    "love", "hate", "good", "bad", "great", "awful", "happy", "sad", "lol", "thanks", "movie",
    "game", "today", "work", "sleep",
];

fn lines(n: usize) -> Vec<String> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let words: Vec<String> = (0..6)
                .map(|_| match (next() % 200) as usize {
                    k if k < WORDS.len() => WORDS[k].to_string(),
                    k => format!("w{k}"),
                })
                .collect();
            serde_json::json!({"id": format!("m{i}"), "text": words.join(" ")}).to_string()
        })
        .collect()
}

fn rule_values() -> Vec<(String, String)> {
    WORDS
        .iter()
        .enumerate()
        .map(|(i, w)| {
            (
                format!("r{i}"),
                serde_json::json!({"value": w, "subscriber": format!("s{}", i % 5)}).to_string(),
            )
        })
        .collect()
}

/// CPU seconds (user + system) of a process, from /proc (0 where unavailable).
fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|u| u.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

struct Instance {
    engine: Engine,
    acked: Arc<streamtrack_nats::SourceCounters>,
    sinks: Arc<SinkCounters>,
    _nats: Nats,
}

fn instance(url: &str, threads: usize) -> Instance {
    let nats = Nats::connect(url).unwrap();
    let store = nats.ensure_bucket("rules").unwrap();
    let registry = Registry::new();
    let names = RuleNames::default();
    let w = RulesWatcher::catch_up(
        &nats,
        store,
        registry.clone(),
        names.clone(),
        "errs",
        Duration::from_secs(10),
    )
    .unwrap();
    let consumer = nats
        .ensure_consumer(
            "POSTS",
            "bench",
            &ConsumerSettings::default().ack_wait(Duration::from_secs(30)),
        )
        .unwrap();
    let sinks = Arc::new(SinkCounters::default());
    let mut b = Engine::builder(registry).matcher_threads(threads);
    for s in w.subscribers() {
        let sink = JetStreamSink::new(
            &nats,
            "out",
            &s,
            names.clone(),
            sinks.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        b = b.attach(&s, sink);
    }
    drop(w);
    let source = JetStreamSource::start(&nats, consumer, "dead", 256);
    let acked = source.counters();
    Instance { engine: b.start(source).unwrap(), acked, sinks, _nats: nats }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    if !NatsServer::available() {
        eprintln!("nats-server is not installed (apt-get install nats-server)");
        std::process::exit(2);
    }
    let lines = lines(n);
    // The engine alone: parse, match, encode each delivery as the sink does (no network).
    let engine_alone = {
        let registry = Registry::new();
        let names = RuleNames::default();
        for (i, w) in WORDS.iter().enumerate() {
            registry
                .subscribe(&format!("s{}", i % 5), streamtrack::Rule::parse(w).unwrap(), None)
                .unwrap();
        }
        let started = Instant::now();
        let msgs: Vec<Message> = lines.iter().map(|l| Message::from_json(l).unwrap()).collect();
        let mut b = Engine::builder(registry).matcher_threads(threads);
        for s in 0..5 {
            let (sub, names) = (format!("s{s}"), names.clone());
            b = b.attach(
                &format!("s{s}"),
                CallbackSink::new(move |d| {
                    let o = delivery_json(&sub, &names, &d);
                    std::hint::black_box(serde_json::to_vec(&o).unwrap());
                    Ok(())
                }),
            );
        }
        let f = b.start(IterSource::new(msgs)).unwrap().join();
        let secs = started.elapsed().as_secs_f64();
        println!(
            "engine alone (parse + match + JSON encoding, {threads} matcher thread(s)): {n} messages, {} deliveries in {secs:.2} s: {:.0} messages/s, {:.2} µs/message",
            f.stats.delivered,
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
        secs / n as f64
    };
    for k in 1..=3 {
        let server = NatsServer::start().unwrap();
        let url = server.url();
        let admin = Nats::connect(&url).unwrap();
        admin.ensure_stream("POSTS", "posts.in").unwrap();
        admin.ensure_delivery_stream("out", Duration::from_secs(120)).unwrap();
        let store = admin.ensure_bucket("rules").unwrap();
        for (key, v) in rule_values() {
            admin.block_on(store.put(key, v.into())).unwrap();
        }
        let t = Instant::now();
        admin.block_on(async {
            let mut pending = std::collections::VecDeque::new();
            for l in &lines {
                pending.push_back(
                    admin.jetstream().publish("posts.in", l.clone().into()).await.unwrap(),
                );
                if pending.len() > 512 {
                    pending.pop_front().unwrap().await.unwrap();
                }
            }
            for p in pending {
                p.await.unwrap();
            }
        });
        let publish_secs = t.elapsed().as_secs_f64();
        let server_pid = server.pid().unwrap().to_string();
        let (cpu_server0, cpu_self0) = (cpu_secs(&server_pid), cpu_secs("self"));
        let started = Instant::now();
        let instances: Vec<Instance> = (0..k).map(|_| instance(&url, threads)).collect();
        while instances.iter().map(|i| i.acked.acked.load(Ordering::Relaxed)).sum::<u64>()
            < n as u64
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        let secs = started.elapsed().as_secs_f64();
        let (cpu_server, cpu_self) =
            (cpu_secs(&server_pid) - cpu_server0, cpu_secs("self") - cpu_self0);
        let published: u64 =
            instances.iter().map(|i| i.sinks.published.load(Ordering::Relaxed)).sum();
        let publish_ns: u64 =
            instances.iter().map(|i| i.sinks.publish_nanos.load(Ordering::Relaxed)).sum();
        let per_instance: Vec<String> =
            instances.iter().map(|i| i.acked.acked.load(Ordering::Relaxed).to_string()).collect();
        for i in instances {
            i.engine.shutdown();
        }
        println!(
            "{k} instance(s): {n} messages ({published} deliveries) in {secs:.2} s: {:.0} messages/s ({} per instance); \
             CPU: server {cpu_server:.2} s, instances {cpu_self:.2} s; sinks waited {:.2} s in total on publications ({:.0} µs each); \
             transport cost {:.2} µs/message over the engine alone; preload {:.0} messages/s",
            n as f64 / secs,
            per_instance.join("/"),
            publish_ns as f64 / 1e9,
            publish_ns as f64 / 1e3 / published.max(1) as f64,
            (secs / n as f64 - engine_alone) * 1e6,
            n as f64 / publish_secs,
        );
        drop(admin);
        drop(server);
    }
}
