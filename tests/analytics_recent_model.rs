//! The kept messages of `Analytics` (the per-series rings, their bound, the global memory cap
//! with its oldest-first eviction, the bytes counted) against a naive model: a sorted `Vec`
//! per series and a plain FIFO of every entry ever kept. Random matches (out-of-order and
//! future event times, several series a message, the same series twice), `advance` calls,
//! and the same queries on both after every step.

use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use streamtrack::analytics::{Analytics, AnalyticsConfig, Recent, SeriesKey};
use streamtrack::Message;
#[path = "common/rng.rs"]
mod rng;

#[derive(Clone, Debug)]
enum Op {
    /// A match: id length, text length, event time offset (None: no timestamp), the keys
    /// (indices), arrival step.
    Match {
        text: usize,
        at: Option<i64>,
        keys: Vec<usize>,
        step: i64,
    },
    Advance {
        step: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (
            0usize..200,
            prop::option::weighted(0.8, -8_000i64..3_000),
            prop::collection::vec(0usize..6, 1..4),
            0i64..1_500,
        )
            .prop_map(|(text, at, keys, step)| Op::Match { text, at, keys, step }),
        1 => (0i64..20_000).prop_map(|step| Op::Advance { step }),
    ]
}

struct Entry {
    time: i64,
    seq: u64,
    id: String,
    bytes: usize,
}

/// The documented behaviour, written the simplest way.
struct Model {
    per_key: usize,
    cap: usize,
    rings: HashMap<usize, Vec<Entry>>,
    order: VecDeque<(usize, u64)>,
    bytes: usize,
    evicted: u64,
    seq: u64,
    watermark: i64,
}

impl Model {
    fn record(&mut self, id: &str, text_len: usize, ts: Option<i64>, keys: &[usize], now: i64) {
        self.watermark = self.watermark.max(now);
        let t = ts.unwrap_or(now).min(self.watermark);
        let bytes = std::mem::size_of::<Recent>()
            + text_len
            + id.len()
            + std::mem::size_of::<Message>() / keys.len().max(1);
        if self.per_key > 0 && !keys.is_empty() {
            self.seq += 1;
            for &k in keys {
                let ring = self.rings.entry(k).or_default();
                let pos = ring.partition_point(|e| e.time <= t);
                ring.insert(pos, Entry { time: t, seq: self.seq, id: id.to_string(), bytes });
                self.bytes += bytes;
                self.order.push_back((k, self.seq));
                while ring.len() > self.per_key {
                    let old = ring.remove(0);
                    self.bytes -= old.bytes;
                }
            }
        }
        while self.bytes > self.cap {
            let Some((k, seq)) = self.order.pop_front() else { break };
            let ring = self.rings.entry(k).or_default();
            if let Some(i) = ring.iter().position(|e| e.seq == seq) {
                let old = ring.remove(i);
                self.bytes -= old.bytes;
                self.evicted += 1;
            }
        }
    }
}

fn check(a: &Analytics, m: &Model, keys: &[SeriesKey], from: i64, to: i64) {
    assert_eq!(a.recent_bytes(), m.bytes, "bytes");
    assert_eq!(a.stats().recent_evicted, m.evicted, "evicted");
    for (k, key) in keys.iter().enumerate() {
        let got: Vec<(i64, String)> =
            a.recent(key, from, to).iter().map(|r| (r.time_ms, r.message.id.clone())).collect();
        let want: Vec<(i64, String)> = m
            .rings
            .get(&k)
            .map(|r| {
                r.iter()
                    .filter(|e| e.time >= from && e.time <= to)
                    .map(|e| (e.time, e.id.clone()))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(got, want, "series {k}, [{from}, {to}]");
    }
}

fn run(ops: &[Op], per_key: usize, cap: usize) {
    let cfg = AnalyticsConfig::default().with_recent(per_key, cap);
    let mut a = Analytics::new(cfg);
    let mut m = Model {
        per_key,
        cap,
        rings: HashMap::new(),
        order: VecDeque::new(),
        bytes: 0,
        evicted: 0,
        seq: 0,
        watermark: i64::MIN,
    };
    let keys: Vec<SeriesKey> = (0..6).map(|i| SeriesKey::rule(&format!("r{i}"))).collect();
    let mut now = 1_700_000_000_000i64;
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Match { text, at, keys: ks, step } => {
                now += step;
                let id = format!("m{n}");
                let mut msg = Message::new(id.clone(), "x".repeat(*text));
                if let Some(d) = at {
                    msg = msg.with_timestamp(now + d);
                }
                let ts = msg.timestamp;
                let sk: Vec<SeriesKey> = ks.iter().map(|&k| keys[k].clone()).collect();
                a.record_scored(Arc::new(msg), None, &sk, now);
                m.record(&id, *text, ts, ks, now);
            }
            Op::Advance { step } => {
                now += step;
                a.advance(now);
                m.watermark = m.watermark.max(now);
            }
        }
        check(&a, &m, &keys, i64::MIN, i64::MAX);
        check(&a, &m, &keys, now - 4_000, now - 1_000);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn kept_messages_match_the_model(
        ops in prop::collection::vec(op(), 1..300),
        per_key in 0usize..6,
        cap in 300usize..4_000,
    ) {
        run(&ops, per_key, cap);
    }
}

/// A long stream, a tight ring and a cap that evicts often (the stale entries of the
/// eviction order are compacted many times over).
#[test]
fn a_long_stream_matches_the_model() {
    let mut rnd = rng::xorshift(0x2545_f491_4f6c_dd1du64);
    let ops: Vec<Op> = (0..20_000)
        .map(|_| match rnd(40) {
            0 => Op::Advance { step: rnd(10_000) as i64 },
            _ => Op::Match {
                text: rnd(120) as usize,
                at: (rnd(5) > 0).then(|| rnd(9_000) as i64 - 7_000),
                keys: (0..=rnd(3)).map(|_| rnd(6) as usize).collect(),
                step: rnd(300) as i64,
            },
        })
        .collect();
    for (per_key, cap) in [(3, 2_000), (8, 6_000), (100, 1 << 20)] {
        run(&ops, per_key, cap);
    }
}
