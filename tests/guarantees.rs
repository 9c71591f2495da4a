//! The engine's delivery guarantees (issue 23; README, "Delivery guarantees"):
//!
//! - `FullPolicy::Block`, the default, drops nothing, however long a sink pauses, unless the
//!   caller chose a deadline;
//! - with a drain deadline, every drop is reported to its subscriber (a limit notice, then
//!   disconnect code 13), and a healthy subscriber is not held up by a stuck one;
//! - `Source::ack(n)` means every message before `n` was delivered to every sink it matched
//!   (its `send` returned) or its loss was reported to that subscriber (a property test over
//!   sink delays, policies and deadlines);
//! - queued deliveries stay within the engine's memory budget.

use crossbeam_channel::{Receiver, Sender};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamtrack::engine::{
    channel_sink, CallbackSink, Delivery, DisconnectCode, Engine, EngineEvent, FullPolicy,
    IterSource, Sink, SinkError, Source, SourceError, SourceStatus, SubscriberConfig,
    SubscriberState,
};
use streamtrack::registry::Registry;
use streamtrack::{Message, Rule};

fn subscribe(registry: &Registry, subscriber: &str, rule: &str) {
    registry.subscribe(subscriber, Rule::parse(rule).unwrap(), None).unwrap();
}

fn ticks(n: u64) -> Vec<Message> {
    (0..n).map(|i| Message::new(i.to_string(), "tick")).collect()
}

fn match_ids(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().filter_map(|d| d.message()).map(|m| m.id.parse().unwrap()).collect()
}

fn disconnect_code(deliveries: &[Delivery]) -> Option<u32> {
    match deliveries.last() {
        Some(Delivery::Disconnect { code, .. }) => Some(code.0),
        _ => None,
    }
}

/// A source that records its acknowledgements, and checks each against what the sinks had
/// when it came (see [`Record::check_ack`]).
struct Acked<S> {
    inner: S,
    record: Arc<Mutex<Record>>,
}

impl<S: Source> Source for Acked<S> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        let status = self.inner.next_batch(out, max)?;
        self.record.lock().unwrap().read += out.len() as u64;
        Ok(status)
    }
    fn ack(&mut self, processed: u64) {
        self.record.lock().unwrap().check_ack(processed);
    }
}

/// What each subscriber's sink received, and which messages it matches.
#[derive(Default)]
struct Record {
    read: u64,
    /// Per subscriber: whether message `i` matches it.
    matches: Vec<Vec<bool>>,
    delivered: Vec<HashSet<u64>>,
    /// The latest limit notice's cumulative count.
    track: Vec<u64>,
    disconnected: Vec<Option<u32>>,
    acks: Vec<u64>,
    violations: Vec<String>,
}

impl Record {
    fn new(matches: Vec<Vec<bool>>) -> Self {
        let n = matches.len();
        Record {
            matches,
            delivered: vec![HashSet::new(); n],
            track: vec![0; n],
            disconnected: vec![None; n],
            ..Record::default()
        }
    }

    fn receive(&mut self, sub: usize, d: &Delivery) {
        match d {
            Delivery::Match { message, .. } => {
                let id: u64 = message.id.parse().unwrap();
                if !self.delivered[sub].insert(id) {
                    self.violations.push(format!("subscriber {sub} got message {id} twice"));
                }
            }
            Delivery::Limit { track } => self.track[sub] = *track,
            Delivery::Disconnect { code, .. } => self.disconnected[sub] = Some(code.0),
            _ => {}
        }
    }

    /// `ack(n)`: every message before `n` matched by a subscriber was delivered to it, or
    /// its loss was reported: counted by a limit notice it received (the notices carry the
    /// cumulative number of drops), or its stream was ended with a disconnect notice.
    fn check_ack(&mut self, n: u64) {
        if n > self.read {
            self.violations.push(format!("ack {n} ahead of the {} messages read", self.read));
        }
        if self.acks.last().is_some_and(|&last| n <= last) {
            self.violations.push(format!("ack {n} after {:?}", self.acks.last()));
        }
        self.acks.push(n);
        for (sub, matches) in self.matches.iter().enumerate() {
            if self.disconnected[sub].is_some() {
                continue;
            }
            let missing = (0..n.min(matches.len() as u64))
                .filter(|&i| matches[i as usize] && !self.delivered[sub].contains(&i))
                .count() as u64;
            if missing > self.track[sub] {
                self.violations.push(format!(
                    "ack {n}: subscriber {sub} lacks {missing} messages before it, {} reported",
                    self.track[sub]
                ));
            }
        }
    }
}

fn recording_sink(
    record: &Arc<Mutex<Record>>,
    sub: usize,
    delay: Duration,
    pause: Option<(u64, Duration)>,
) -> impl Sink + 'static {
    let record = record.clone();
    let mut sent = 0u64;
    CallbackSink::new(move |d: Delivery| {
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        if pause.is_some_and(|(at, _)| at == sent) {
            std::thread::sleep(pause.map(|p| p.1).unwrap_or_default());
        }
        sent += 1;
        record.lock().unwrap().receive(sub, &d);
        Ok(())
    })
}

/// Issue 23, item 1: under `Block` (the default), a sink that pauses longer than any
/// timeout the engine ever had by default (its drain timeout was 10 s) loses nothing, and
/// the final acknowledgement covers everything.
#[test]
fn block_by_default_loses_nothing_to_a_sink_that_pauses_past_every_former_timeout() {
    let registry = Registry::new();
    subscribe(&registry, "slow", "tick");
    let n = 5_000u64;
    let record = Arc::new(Mutex::new(Record::new(vec![vec![true; n as usize]])));
    // The pause comes once the source has been read to its end (the queue, 1,024 by
    // default, holds the last 600): the engine is draining.
    let pause = Some((n - 600, Duration::from_secs(11)));
    let sink = recording_sink(&record, 0, Duration::ZERO, pause);
    let source = Acked { inner: IterSource::new(ticks(n)), record: record.clone() };
    let finished = Engine::builder(registry).attach("slow", sink).start(source).unwrap().join();
    let r = record.lock().unwrap();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    assert_eq!(r.delivered[0].len() as u64, n);
    assert_eq!(r.disconnected[0], Some(DisconnectCode::NORMAL.0));
    let s = finished.stats.subscriber("slow").unwrap();
    assert_eq!((s.delivered, s.dropped, s.limit_notices), (n, 0, 0), "{s:?}");
    assert_eq!(finished.stats.acked, n);
}

/// Issue 23, item 6: with the library's defaults a fast source and a plain in-memory sink
/// get every match (the old default, drop-oldest with 1,024 queued, delivered 23-30%).
#[test]
fn the_defaults_deliver_every_match_to_a_fast_source_and_a_channel_sink() {
    let registry = Registry::new();
    subscribe(&registry, "a", "tick");
    subscribe(&registry, "b", "tick");
    let n = 200_000u64;
    let (sink_a, out_a) = channel_sink(usize::MAX);
    let (sink_b, out_b) = channel_sink(usize::MAX);
    // A consumer slower than the source: it takes its time per message.
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        for d in out_a.iter() {
            if got.len() % 1_000 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            got.push(d);
        }
        got
    });
    let finished = Engine::builder(registry)
        .attach("a", sink_a)
        .attach("b", sink_b)
        .start(IterSource::new(ticks(n)))
        .unwrap()
        .join();
    let a = reader.join().unwrap();
    let b: Vec<Delivery> = out_b.try_iter().collect();
    assert_eq!(finished.stats.dropped, 0);
    assert_eq!(match_ids(&a), (0..n).collect::<Vec<_>>());
    assert_eq!(match_ids(&b), (0..n).collect::<Vec<_>>());
}

/// Issue 23, item 2: `Block`, a sink taking 2 ms a send and a drain deadline. What the
/// deadline drops is reported (a limit notice counting it, then disconnect code 13), and no
/// acknowledgement comes before the loss it covers is delivered or reported.
#[test]
fn acknowledgements_never_run_ahead_of_delivery_under_a_drain_deadline() {
    let registry = Registry::new();
    subscribe(&registry, "slow", "tick");
    let n = 1_500u64;
    let record = Arc::new(Mutex::new(Record::new(vec![vec![true; n as usize]])));
    let sink = recording_sink(&record, 0, Duration::from_millis(2), None);
    let source = Acked { inner: IterSource::new(ticks(n)), record: record.clone() };
    let finished = Engine::builder(registry)
        .drain_timeout(Duration::from_millis(200))
        .attach("slow", sink)
        .start(source)
        .unwrap()
        .join();
    let r = record.lock().unwrap();
    assert!(r.violations.is_empty(), "{:?}", r.violations);
    let s = finished.stats.subscriber("slow").unwrap();
    assert!(s.dropped > 0, "the deadline dropped something: {s:?}");
    assert_eq!(s.matched, s.delivered + s.dropped, "{s:?}");
    // Every drop was reported to the subscriber, then its stream closed with code 13.
    assert_eq!(r.track[0], s.dropped, "{s:?}");
    assert_eq!(r.disconnected[0], Some(DisconnectCode::DRAIN_TIMEOUT.0));
    assert_eq!(r.delivered[0].len() as u64, s.delivered);
    assert!(
        matches!(s.state, SubscriberState::Disconnected { code, .. } if code == DisconnectCode::DRAIN_TIMEOUT)
    );
}

/// A sink that blocks inside `send` until its gate's sender is dropped.
struct Stuck {
    gate: Receiver<()>,
    first: Option<Sender<()>>,
}

impl Sink for Stuck {
    fn send(&mut self, _: Delivery) -> Result<(), SinkError> {
        if let Some(first) = self.first.take() {
            let _ = first.send(());
        }
        let _ = self.gate.recv();
        Ok(())
    }
}

/// Issue 23, item 5: one sink stuck under `Block`, a shutdown with a drain deadline. The
/// healthy subscriber gets every message read and its own disconnect, is not blamed, and
/// gets its event; the stuck one is given up with code 13; nothing it lacks is
/// acknowledged; its thread, stuck in user code, is counted.
#[test]
fn a_stuck_sink_costs_a_healthy_subscriber_nothing_at_shutdown() {
    let registry = Registry::new();
    subscribe(&registry, "stuck", "tick");
    subscribe(&registry, "healthy", "tick");
    let (gate_tx, gate) = crossbeam_channel::bounded::<()>(0);
    let (first_tx, first) = crossbeam_channel::bounded(1);
    let (healthy_sink, healthy_out) = channel_sink(usize::MAX);
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let record = Arc::new(Mutex::new(Record::new(vec![vec![true; 100_000]; 2])));
    let source = Acked { inner: IterSource::new(ticks(100_000)), record: record.clone() };
    let engine = Engine::builder(registry)
        .drain_timeout(Duration::from_millis(300))
        .on_event(move |e| ev.lock().unwrap().push(e.clone()))
        .attach_with(
            "stuck",
            Stuck { gate, first: Some(first_tx) },
            SubscriberConfig::new().capacity(16),
        )
        .attach("healthy", healthy_sink)
        .start(source)
        .unwrap();
    first.recv().unwrap();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(engine.shutdown());
    });
    let finished = done_rx.recv_timeout(Duration::from_secs(30)).expect("shutdown returned");
    let read = finished.stats.received;
    let got: Vec<Delivery> = healthy_out.try_iter().collect();
    assert_eq!(match_ids(&got), (0..read).collect::<Vec<_>>());
    assert_eq!(disconnect_code(&got), Some(DisconnectCode::SHUTDOWN.0));
    let healthy = finished.stats.subscriber("healthy").unwrap();
    assert_eq!((healthy.delivered, healthy.dropped), (read, 0), "{healthy:?}");
    assert!(
        matches!(&healthy.state, SubscriberState::Disconnected { code, .. } if *code == DisconnectCode::SHUTDOWN),
        "{healthy:?}"
    );
    let stuck = finished.stats.subscriber("stuck").unwrap();
    assert!(
        matches!(&stuck.state, SubscriberState::Disconnected { code, .. } if *code == DisconnectCode::DRAIN_TIMEOUT),
        "{stuck:?}"
    );
    assert_eq!(stuck.matched, stuck.delivered + stuck.dropped, "{stuck:?}");
    let events = events.lock().unwrap();
    for name in ["healthy", "stuck"] {
        assert!(
            events.iter().any(
                |e| matches!(e, EngineEvent::Disconnected { subscriber, .. } if &**subscriber == name)
            ),
            "{name}: {events:?}"
        );
    }
    // The stuck sink never returned from its first send: nothing was delivered to it and
    // nothing could be reported, so nothing is acknowledged.
    assert_eq!(finished.stats.acked, 0);
    assert!(record.lock().unwrap().violations.is_empty());
    assert_eq!(finished.stats.stuck_threads, 1);
    drop(gate_tx);
}

/// Issue 23, item 7: queued deliveries stay within the memory budget while sinks stall;
/// under `Block` the engine waits for room and loses nothing, under `DropNewest` the drops
/// are reported.
#[test]
fn queued_deliveries_stay_within_the_memory_budget() {
    for policy in [FullPolicy::Block, FullPolicy::DropNewest] {
        let registry = Registry::new();
        const SUBS: usize = 20;
        let budget = 64 * 1024;
        let mut builder = Engine::builder(registry.clone())
            .memory_budget(budget)
            .subscriber_defaults(SubscriberConfig::new().policy(policy).capacity(100_000));
        let mut gates = Vec::new();
        let mut outs = Vec::new();
        for i in 0..SUBS {
            let name = format!("s{i}");
            subscribe(&registry, &name, "tick");
            let (gate_tx, gate) = crossbeam_channel::bounded::<()>(0);
            let (tx, rx) = crossbeam_channel::unbounded();
            let mut open = false;
            builder = builder.attach(
                &name,
                CallbackSink::new(move |d: Delivery| {
                    if !open {
                        let _ = gate.recv();
                        open = true;
                    }
                    tx.send(d).map_err(|_| SinkError::closed())
                }),
            );
            gates.push(gate_tx);
            outs.push(rx);
        }
        let n = 20_000u64;
        let engine = builder.start(IterSource::new(ticks(n))).unwrap();
        // Until the queues stop growing (Block: the engine waits; DropNewest: it drops).
        let mut last = (u64::MAX, 0);
        let mut peak = 0;
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let s = engine.stats();
            peak = peak.max(s.queued_bytes);
            let now = (s.queued_bytes, s.received);
            if now == last || s.received == n && policy == FullPolicy::DropNewest {
                break;
            }
            last = now;
        }
        // Each subscriber may queue one match past the budget (a subscriber with nothing
        // queued is never refused), and one push may overshoot it.
        let per_match = 64 + std::mem::size_of::<Message>() as u64 + 64;
        assert!(peak > 0 && peak <= budget + (SUBS as u64 + 1) * per_match, "{peak}");
        drop(gates);
        let finished = engine.join();
        assert_eq!(finished.stats.queued_bytes, 0);
        for (i, rx) in outs.iter().enumerate() {
            let got: Vec<Delivery> = rx.try_iter().collect();
            let s = finished.stats.subscriber(&format!("s{i}")).unwrap();
            match policy {
                FullPolicy::Block => {
                    assert_eq!(match_ids(&got), (0..n).collect::<Vec<_>>());
                    assert_eq!(s.dropped, 0);
                }
                _ => {
                    assert_eq!(match_ids(&got).len() as u64 + s.dropped, n, "{s:?}");
                    let tracks: Vec<u64> = got
                        .iter()
                        .filter_map(|d| match d {
                            Delivery::Limit { track } => Some(*track),
                            _ => None,
                        })
                        .collect();
                    assert_eq!(tracks.last().copied().unwrap_or(0), s.dropped, "{s:?}");
                }
            }
        }
    }
}

fn policies() -> impl Strategy<Value = FullPolicy> {
    prop_oneof![
        Just(FullPolicy::Block),
        Just(FullPolicy::DropNewest),
        Just(FullPolicy::DropOldest),
        Just(FullPolicy::Disconnect),
    ]
}

#[derive(Debug, Clone)]
struct SubPlan {
    policy: FullPolicy,
    capacity: usize,
    delay_us: u64,
    pause: Option<(u64, u64)>,
}

fn sub_plan() -> impl Strategy<Value = SubPlan> {
    (policies(), 1usize..16, 0u64..400, proptest::option::of((0u64..40, 30u64..300))).prop_map(
        |(policy, capacity, delay_us, pause)| SubPlan { policy, capacity, delay_us, pause },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Issue 23: every acknowledged message was delivered to each subscriber it matched, or
    /// its loss was reported to that subscriber, whatever the sinks' delays, the policies,
    /// the deadline and when the engine is stopped; `Block` with no deadline loses nothing.
    #[test]
    fn acknowledgements_never_run_ahead_of_delivery_or_reported_loss(
        plans in proptest::collection::vec(sub_plan(), 1..4),
        masks in proptest::collection::vec(0u8..8, 20..300),
        drain_ms in proptest::option::of(10u64..80),
        stop_after_ms in proptest::option::of(0u64..40),
        threads in 1usize..3,
    ) {
        let registry = Registry::new();
        let words = ["alpha", "beta", "gamma"];
        let matches: Vec<Vec<bool>> = (0..plans.len())
            .map(|s| masks.iter().map(|m| m & (1 << s) != 0).collect())
            .collect();
        let messages: Vec<Message> = masks
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let text: Vec<&str> =
                    (0..3).filter(|s| m & (1 << s) != 0).map(|s| words[s]).collect();
                Message::new(i.to_string(), format!("x {}", text.join(" ")))
            })
            .collect();
        let record = Arc::new(Mutex::new(Record::new(matches.clone())));
        let mut builder = Engine::builder(registry.clone()).matcher_threads(threads);
        if let Some(ms) = drain_ms {
            builder = builder.drain_timeout(Duration::from_millis(ms));
        }
        for (s, plan) in plans.iter().enumerate() {
            subscribe(&registry, &format!("s{s}"), words[s]);
            let sink = recording_sink(
                &record,
                s,
                Duration::from_micros(plan.delay_us),
                plan.pause.map(|(at, ms)| (at, Duration::from_millis(ms))),
            );
            let config = SubscriberConfig::new().policy(plan.policy).capacity(plan.capacity);
            builder = builder.attach_with(&format!("s{s}"), sink, config);
        }
        let source = Acked { inner: IterSource::new(messages), record: record.clone() };
        let engine = builder.start(source).unwrap();
        let finished = match stop_after_ms {
            Some(ms) => {
                std::thread::sleep(Duration::from_millis(ms));
                engine.shutdown()
            }
            None => engine.join(),
        };
        let r = record.lock().unwrap();
        prop_assert!(r.violations.is_empty(), "{:?}", r.violations);
        prop_assert_eq!(finished.stats.acked, r.acks.last().copied().unwrap_or(0));
        for (s, plan) in plans.iter().enumerate() {
            let st = finished.stats.subscriber(&format!("s{s}")).unwrap();
            prop_assert_eq!(st.matched, st.delivered + st.dropped, "{:?}", st);
            prop_assert_eq!(st.delivered, r.delivered[s].len() as u64, "{:?}", st);
            if plan.policy == FullPolicy::Block && drain_ms.is_none() {
                prop_assert_eq!(st.dropped, 0, "{:?}", st);
            }
        }
        if drain_ms.is_none() && plans.iter().all(|p| p.policy == FullPolicy::Block) {
            prop_assert_eq!(finished.stats.acked, finished.stats.received);
        }
    }
}
