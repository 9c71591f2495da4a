//! The kept messages of `Analytics` (the per-series rings, their bound, the global memory cap
//! with its oldest-first eviction, the bytes counted) against a naive model: per series a
//! `VecDeque` of the last messages recorded, and the log's cut given by the evicted count.
//! Random matches (out-of-order and future event times, several series a message, the same
//! series twice), `advance` calls, and the same queries on both after every step.

use proptest::prelude::*;
use std::collections::{HashMap, VecDeque};
use streamtrack::analytics::{Analytics, AnalyticsConfig, SeriesKey};
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
    /// Which kept message it is (0, 1, ... in the order recorded).
    kept: u64,
    id: String,
}

/// The documented behaviour, written the simplest way: each series keeps the last
/// `per_key` recorded; the log drops the oldest messages first, so the messages still held
/// are those recorded after the first `recent_evicted` (none of these is larger than the cap).
struct Model {
    per_key: usize,
    rings: HashMap<usize, VecDeque<Entry>>,
    kept: u64,
    watermark: i64,
}

impl Model {
    fn record(&mut self, id: &str, ts: Option<i64>, keys: &[usize], now: i64) {
        self.watermark = self.watermark.max(now);
        let t = ts.unwrap_or(now).min(self.watermark);
        if self.per_key > 0 && !keys.is_empty() {
            for &k in keys {
                let ring = self.rings.entry(k).or_default();
                ring.push_back(Entry { time: t, kept: self.kept, id: id.to_string() });
                if ring.len() > self.per_key {
                    ring.pop_front();
                }
            }
            self.kept += 1;
        }
    }
}

/// The chunk the log takes memory by, as documented (1/16 of the cap, 256 B to 1 MiB).
fn chunk(cap: usize) -> usize {
    (cap / 16).clamp(256, 1 << 20).min(cap)
}

fn check(a: &Analytics, m: &Model, keys: &[SeriesKey], cap: usize, from: i64, to: i64) {
    let evicted = a.stats().recent_evicted;
    assert!(evicted <= m.kept, "{evicted} evicted of {}", m.kept);
    assert!(a.recent_bytes() <= cap, "{} bytes over the cap {cap}", a.recent_bytes());
    if evicted > 0 {
        // Dropped only when needed: the log holds more than the cap less one chunk (the
        // largest entry here, ~270 bytes, is no larger than a chunk).
        assert!(a.recent_bytes() + chunk(cap).max(300) > cap, "{} of {cap}", a.recent_bytes());
    }
    for (k, key) in keys.iter().enumerate() {
        let got: Vec<(i64, String)> =
            a.recent(key, from, to).iter().map(|r| (r.time_ms, r.message.id.clone())).collect();
        let mut want: Vec<&Entry> = m
            .rings
            .get(&k)
            .map(|r| r.iter().filter(|e| e.kept >= evicted).collect())
            .unwrap_or_default();
        want.sort_by_key(|e| e.time); // stable: the order recorded for equal times
        let want: Vec<(i64, String)> = want
            .into_iter()
            .filter(|e| e.time >= from && e.time <= to)
            .map(|e| (e.time, e.id.clone()))
            .collect();
        assert_eq!(got, want, "series {k}, [{from}, {to}], {evicted} evicted");
        let latest = m.rings.get(&k).and_then(|r| r.back()).filter(|e| e.kept >= evicted);
        assert_eq!(
            a.latest(key).map(|r| r.message.id.clone()),
            latest.map(|e| e.id.clone()),
            "latest of series {k}"
        );
    }
}

/// Replays `ops` on both, comparing them after every `every`-th step and the last.
fn run(ops: &[Op], per_key: usize, cap: usize, every: usize) {
    let cfg = AnalyticsConfig::default().with_recent(per_key, cap);
    let mut a = Analytics::new(cfg);
    let mut m = Model { per_key, rings: HashMap::new(), kept: 0, watermark: i64::MIN };
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
                a.record_scored(&msg, None, &sk, now);
                m.record(&id, ts, ks, now);
            }
            Op::Advance { step } => {
                now += step;
                a.advance(now);
                m.watermark = m.watermark.max(now);
            }
        }
        if n % every == 0 || n + 1 == ops.len() {
            check(&a, &m, &keys, cap, i64::MIN, i64::MAX);
            check(&a, &m, &keys, cap, now - 4_000, now - 1_000);
        }
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
        run(&ops, per_key, cap, 1);
    }
}

/// A long stream, a tight ring and a cap that evicts often (the log cycles through its
/// chunks many times over).
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
        run(&ops, per_key, cap, 37);
    }
}
