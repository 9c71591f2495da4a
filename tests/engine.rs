//! The streaming engine's guarantees (issue 5, "Done when"): order per subscriber under
//! several matcher threads, each full-queue policy with limit notices that count the drops,
//! stall warning then disconnect, a panicking sink isolated, graceful shutdown losing
//! nothing, and a subscriber added mid-stream getting exactly what follows its `subscribe`.
//!
//! Synchronisation is by channels: a gated sink blocks until the test opens its gate, and an
//! observer subscriber whose rule matches a final sentinel message tells the test that every
//! earlier message has been emitted into every queue (emission is in source order).

use crossbeam_channel::{Receiver, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use streamtrack::engine::{
    channel_sink, channel_source, CallbackSink, Delivery, DisconnectCode, Engine, EngineEvent,
    FullPolicy, IterSource, Sink, SinkError, Source, SourceError, SourceStatus, SubscriberConfig,
    SubscriberState,
};
use streamtrack::registry::Registry;
use streamtrack::{Message, Rule};

fn subscribe(registry: &Registry, subscriber: &str, rule: &str) {
    registry.subscribe(subscriber, Rule::parse(rule).unwrap(), None).unwrap();
}

/// Messages `0..n` with the given text, then a sentinel only the observer's rule matches.
fn with_sentinel(n: usize, text: &str) -> Vec<Message> {
    let mut v: Vec<Message> = (0..n).map(|i| Message::new(i.to_string(), text)).collect();
    v.push(Message::new("sentinel", "sentinel"));
    v
}

/// Reads `rx` until the sentinel arrives.
fn wait_for_sentinel(rx: &Receiver<Delivery>) {
    for d in rx.iter() {
        if d.message().is_some_and(|m| m.id == "sentinel") {
            return;
        }
    }
    panic!("the observer's stream ended before the sentinel");
}

/// The ids of the matched messages, in delivery order.
fn match_ids(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries.iter().filter_map(|d| d.message()).map(|m| m.id.parse().unwrap()).collect()
}

fn limit_tracks(deliveries: &[Delivery]) -> Vec<u64> {
    deliveries
        .iter()
        .filter_map(|d| match d {
            Delivery::Limit { track } => Some(*track),
            _ => None,
        })
        .collect()
}

fn disconnect_code(deliveries: &[Delivery]) -> Option<u32> {
    match deliveries.last() {
        Some(Delivery::Disconnect { code, .. }) => Some(code.0),
        _ => None,
    }
}

/// A sink that blocks before its first delivery until the gate opens (its sender is dropped),
/// and passes everything on to a channel.
struct Gated {
    gate: Receiver<()>,
    open: bool,
    first: Option<Sender<()>>,
    out: Sender<Delivery>,
}

fn gated() -> (Gated, Sender<()>, Receiver<()>, Receiver<Delivery>) {
    let (gate_tx, gate_rx) = crossbeam_channel::bounded(0);
    let (first_tx, first_rx) = crossbeam_channel::bounded(1);
    let (out_tx, out_rx) = crossbeam_channel::unbounded();
    (
        Gated { gate: gate_rx, open: false, first: Some(first_tx), out: out_tx },
        gate_tx,
        first_rx,
        out_rx,
    )
}

impl Sink for Gated {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        if let Some(first) = self.first.take() {
            let _ = first.send(());
        }
        if !self.open {
            let _ = self.gate.recv();
            self.open = true;
        }
        self.out.send(delivery).map_err(|_| SinkError::closed())
    }
}

#[test]
fn each_subscriber_sees_source_order_with_several_matcher_threads() {
    let registry = Registry::new();
    subscribe(&registry, "even", "even");
    subscribe(&registry, "odd", "odd");
    subscribe(&registry, "all", "tick");
    subscribe(&registry, "all", "even");
    let n = 20_000usize;
    let messages: Vec<Message> = (0..n)
        .map(|i| Message::new(i.to_string(), if i % 2 == 0 { "tick even" } else { "tick odd" }))
        .collect();
    let config = SubscriberConfig::new().policy(FullPolicy::Block).capacity(16);
    let mut receivers = Vec::new();
    let mut builder = Engine::builder(registry).matcher_threads(4).batch_size(7);
    for name in ["even", "odd", "all"] {
        let (sink, rx) = channel_sink(usize::MAX);
        builder = builder.attach_with(name, sink, config.clone());
        receivers.push(rx);
    }
    let finished = builder.start(IterSource::new(messages)).unwrap().join();
    assert_eq!(finished.stats.received, n as u64);
    assert_eq!(finished.stats.dropped, 0);
    let got: Vec<Vec<Delivery>> = receivers.iter().map(|rx| rx.try_iter().collect()).collect();
    let even: Vec<u64> = (0..n as u64).step_by(2).collect();
    let odd: Vec<u64> = (1..n as u64).step_by(2).collect();
    assert_eq!(match_ids(&got[0]), even);
    assert_eq!(match_ids(&got[1]), odd);
    assert_eq!(match_ids(&got[2]), (0..n as u64).collect::<Vec<_>>());
    // A message matching two of a subscriber's rules is delivered once, with both.
    let rules_of_first = got[2]
        .iter()
        .find_map(|d| match d {
            Delivery::Match { matching_rules, .. } => Some(matching_rules.len()),
            _ => None,
        })
        .unwrap();
    assert_eq!(rules_of_first, 2);
    for g in &got {
        assert_eq!(disconnect_code(g), Some(5));
    }
}

/// Runs `n` matching messages into a subscriber whose sink is blocked until every message has
/// been emitted; returns what it received and its final figures.
fn run_against_stalled_sink(
    n: usize,
    config: SubscriberConfig,
) -> (Vec<Delivery>, streamtrack::engine::SubscriberStats) {
    let registry = Registry::new();
    subscribe(&registry, "slow", "tick");
    subscribe(&registry, "observer", "sentinel");
    let (sink, gate, _first, out) = gated();
    let (obs_sink, obs) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry)
        .matcher_threads(2)
        .attach_with("slow", sink, config)
        .attach("observer", obs_sink)
        .start(IterSource::new(with_sentinel(n, "tick")))
        .unwrap();
    wait_for_sentinel(&obs);
    drop(gate);
    let finished = engine.join();
    let stats = finished.stats.subscriber("slow").unwrap().clone();
    (out.try_iter().collect(), stats)
}

#[test]
fn drop_newest_keeps_the_head_and_reports_every_drop() {
    let n = 500;
    let (got, stats) = run_against_stalled_sink(
        n,
        SubscriberConfig::new().capacity(8).policy(FullPolicy::DropNewest),
    );
    let ids = match_ids(&got);
    // What was delivered is in order, starting with the first message (the queue is never
    // full then); what did not fit was dropped.
    assert_eq!(ids.first(), Some(&0));
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(stats.dropped_full > 0);
    assert_eq!(ids.len() as u64 + stats.dropped_full, n as u64);
    assert_eq!(stats.delivered, ids.len() as u64);
    let tracks = limit_tracks(&got);
    assert!(tracks.windows(2).all(|w| w[0] < w[1]), "{tracks:?}");
    assert_eq!(tracks.last().copied(), Some(stats.dropped_full));
    assert_eq!(stats.limit_track, stats.dropped_full);
    assert_eq!(disconnect_code(&got), Some(5));
}

#[test]
fn drop_oldest_keeps_the_tail_and_reports_every_drop() {
    let n = 500;
    let capacity = 8;
    let (got, stats) = run_against_stalled_sink(
        n,
        SubscriberConfig::new().capacity(capacity).policy(FullPolicy::DropOldest),
    );
    let ids = match_ids(&got);
    // The chunk the sink was handed before it stalled, then the newest `capacity`.
    let tail: Vec<u64> = (n as u64 - capacity as u64..n as u64).collect();
    assert!(ids.ends_with(&tail), "{ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(ids.len() as u64 + stats.dropped_full, n as u64);
    assert_eq!(limit_tracks(&got).last().copied(), Some(stats.dropped_full));
    assert!(stats.dropped_full > 0);
}

#[test]
fn block_applies_back_pressure_and_drops_nothing() {
    let n = 5_000u64;
    let registry = Registry::new();
    subscribe(&registry, "slow", "tick");
    let (sink, gate, first, out) = gated();
    // The source tells us if it was ever allowed to read everything.
    let pulled = Arc::new(AtomicU64::new(0));
    let (all_read_tx, all_read) = crossbeam_channel::bounded(1);
    let p = pulled.clone();
    let messages = (0..n).map(move |i| {
        if p.fetch_add(1, Ordering::SeqCst) + 1 == n {
            let _ = all_read_tx.send(());
        }
        Message::new(i.to_string(), "tick")
    });
    let engine = Engine::builder(registry)
        .matcher_threads(2)
        .batch_size(16)
        .attach_with("slow", sink, SubscriberConfig::new().capacity(8).policy(FullPolicy::Block))
        .start(IterSource::new(messages))
        .unwrap();
    first.recv().unwrap();
    // While the sink is stalled the source cannot run ahead by more than the bounded
    // pipeline; this wait only limits how long we look for a runaway source.
    assert!(all_read.recv_timeout(Duration::from_millis(300)).is_err());
    assert!(pulled.load(Ordering::SeqCst) < 1_000, "{}", pulled.load(Ordering::SeqCst));
    drop(gate);
    let finished = engine.join();
    let got: Vec<Delivery> = out.try_iter().collect();
    assert_eq!(match_ids(&got), (0..n).collect::<Vec<_>>());
    assert!(limit_tracks(&got).is_empty());
    assert_eq!(finished.stats.dropped, 0);
    assert_eq!(disconnect_code(&got), Some(5));
}

#[test]
fn disconnect_policy_drops_the_queue_reports_it_and_disconnects_with_code_4() {
    let n = 500;
    let (got, stats) = run_against_stalled_sink(
        n,
        SubscriberConfig::new().capacity(8).policy(FullPolicy::Disconnect),
    );
    assert_eq!(disconnect_code(&got), Some(4));
    assert!(matches!(
        stats.state,
        SubscriberState::Disconnected { code: DisconnectCode::STALL, .. }
    ));
    let ids = match_ids(&got);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // The queue's content at the stall is reported in the last limit notice; matches after
    // the disconnect are counted too (the subscriber was gone).
    assert_eq!(limit_tracks(&got).last().copied(), Some(stats.dropped_full));
    assert_eq!(ids.len() as u64 + stats.dropped_full + stats.dropped_closed, n as u64);
    assert_eq!(stats.dropped, stats.dropped_full + stats.dropped_closed);
}

#[test]
fn block_with_stall_timeout_disconnects_with_code_4() {
    let config = SubscriberConfig::new()
        .capacity(4)
        .policy(FullPolicy::Block)
        .stall_timeout(Some(Duration::from_millis(20)));
    let (got, stats) = run_against_stalled_sink(200, config);
    assert_eq!(disconnect_code(&got), Some(4));
    let ids = match_ids(&got);
    assert_eq!(ids.len() as u64 + stats.dropped, 200);
    assert_eq!(limit_tracks(&got).last().copied(), Some(stats.dropped_full));
}

#[test]
fn rate_cap_drops_are_reported_as_limit_notices() {
    let (got, stats) =
        run_against_stalled_sink(300, SubscriberConfig::new().capacity(1_000).rate_limit(Some(20)));
    let ids = match_ids(&got);
    assert!(ids.len() >= 20 && ids.len() < 300, "{}", ids.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ids.len() as u64 + stats.dropped_rate, 300);
    assert_eq!(limit_tracks(&got).last().copied(), Some(stats.dropped_rate));
}

#[test]
fn a_sink_that_stops_reading_gets_a_warning_then_a_stall_disconnect() {
    let registry = Registry::new();
    subscribe(&registry, "reader", "tick");
    subscribe(&registry, "observer", "sentinel");
    subscribe(&registry, "observer", "tick");
    // The subscriber's connection holds one delivery; then it stops reading.
    let (sink, rx) = channel_sink(1);
    let (obs_sink, obs) = channel_sink(usize::MAX);
    let config = SubscriberConfig::new().capacity(10).policy(FullPolicy::Disconnect);
    let engine = Engine::builder(registry)
        .attach_with("reader", sink, config)
        .attach("observer", obs_sink)
        .start(IterSource::new(with_sentinel(200, "tick")))
        .unwrap();
    wait_for_sentinel(&obs);
    // The subscriber reads again: what was sent to it before the stall, then the end.
    let got: Vec<Delivery> = rx.iter().collect();
    let finished = engine.join();
    let warning = got.iter().position(|d| matches!(d, Delivery::Warning { .. }));
    let disconnect = got.iter().position(|d| matches!(d, Delivery::Disconnect { .. }));
    let (Some(w), Some(d)) = (warning, disconnect) else { panic!("{got:?}") };
    assert!(w < d);
    match &got[w] {
        Delivery::Warning { code, percent_full, .. } => {
            assert_eq!(code, "FALLING_BEHIND");
            assert!(*percent_full >= 60, "{percent_full}");
        }
        _ => unreachable!(),
    }
    assert_eq!(d, got.len() - 1);
    assert_eq!(disconnect_code(&got), Some(4));
    // The other subscriber was not held up: it got every message.
    let obs_stats = finished.stats.subscriber("observer").unwrap();
    assert_eq!(obs_stats.delivered, 201);
    assert_eq!(obs_stats.dropped, 0);
    let reader = finished.stats.subscriber("reader").unwrap();
    assert_eq!(reader.matched, reader.delivered + reader.dropped);
    assert_eq!(reader.warnings, 1);
}

struct Panicky {
    count: usize,
}

impl Sink for Panicky {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        self.count += usize::from(delivery.is_match());
        if self.count == 3 {
            panic!("boom in a sink");
        }
        Ok(())
    }
}

#[test]
fn a_panicking_or_failing_sink_is_isolated() {
    let registry = Registry::new();
    for name in ["good1", "bad", "failing", "good2"] {
        subscribe(&registry, name, "tick");
    }
    let n = 3_000u64;
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    let (s1, r1) = channel_sink(usize::MAX);
    let (s2, r2) = channel_sink(usize::MAX);
    let mut matches = 0;
    let failing = CallbackSink::new(move |d: Delivery| {
        matches += usize::from(d.is_match());
        if matches == 5 {
            return Err(SinkError::new("connection reset"));
        }
        Ok(())
    });
    let config = SubscriberConfig::new().policy(FullPolicy::Block).capacity(64);
    let finished = Engine::builder(registry)
        .subscriber_defaults(config)
        .on_event(move |ev| e.lock().unwrap().push(ev.clone()))
        .attach("good1", s1)
        .attach("bad", Panicky { count: 0 })
        .attach("failing", failing)
        .attach("good2", s2)
        .start(IterSource::new((0..n).map(|i| Message::new(i.to_string(), "tick"))))
        .unwrap()
        .join();
    for rx in [r1, r2] {
        let got: Vec<Delivery> = rx.try_iter().collect();
        assert_eq!(match_ids(&got), (0..n).collect::<Vec<_>>());
        assert_eq!(disconnect_code(&got), Some(5));
    }
    let bad = finished.stats.subscriber("bad").unwrap();
    assert!(bad.error.as_deref().unwrap().contains("boom in a sink"), "{bad:?}");
    assert!(matches!(
        bad.state,
        SubscriberState::Disconnected { code: DisconnectCode::STREAM_EXCEPTION, .. }
    ));
    assert_eq!(bad.delivered, 2);
    assert_eq!(bad.matched, bad.delivered + bad.dropped);
    let failing = finished.stats.subscriber("failing").unwrap();
    assert_eq!(failing.error.as_deref(), Some("connection reset"));
    assert_eq!(failing.delivered, 4);
    let events = events.lock().unwrap();
    let failed: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            EngineEvent::SinkFailed { subscriber, .. } => Some(&**subscriber),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed.contains(&"bad") && failed.contains(&"failing"));
}

/// A source over another that records what the engine acknowledged, and says whether it
/// wants acknowledgements.
struct Acking<S> {
    inner: S,
    wants: bool,
    acks: Arc<Mutex<Vec<u64>>>,
}

impl<S: Source> Source for Acking<S> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        self.inner.next_batch(out, max)
    }
    fn ack(&mut self, processed: u64) {
        self.acks.lock().unwrap().push(processed);
    }
    fn wants_acks(&self) -> bool {
        self.wants
    }
}

#[test]
fn graceful_shutdown_delivers_everything_read_and_acknowledges_it() {
    let registry = Registry::new();
    subscribe(&registry, "slow", "tick");
    subscribe(&registry, "fast", "tick");
    let (gated_sink, gate, first, slow_out) = gated();
    let (fast_sink, fast_out) = channel_sink(usize::MAX);
    let acks = Arc::new(Mutex::new(Vec::new()));
    let source = Acking {
        inner: IterSource::new((0..1_000_000u64).map(|i| Message::new(i.to_string(), "tick"))),
        wants: true,
        acks: acks.clone(),
    };
    let config = SubscriberConfig::new().policy(FullPolicy::Block).capacity(256);
    let engine = Engine::builder(registry)
        .subscriber_defaults(config)
        .attach("slow", gated_sink)
        .attach("fast", fast_sink)
        .start(source)
        .unwrap();
    // The slow sink holds its first delivery: a backlog builds up while we stop the engine.
    first.recv().unwrap();
    engine.request_shutdown();
    drop(gate);
    let finished = engine.join();
    let read = finished.stats.received;
    assert!(read > 0 && read < 1_000_000);
    assert_eq!(finished.stats.processed, read);
    for out in [slow_out, fast_out] {
        let got: Vec<Delivery> = out.try_iter().collect();
        assert_eq!(match_ids(&got), (0..read).collect::<Vec<_>>());
        assert_eq!(disconnect_code(&got), Some(1));
    }
    assert_eq!(finished.stats.dropped, 0);
    assert_eq!(finished.stats.delivered, 2 * read);
    let acks = acks.lock().unwrap();
    assert!(acks.windows(2).all(|w| w[0] < w[1]), "{acks:?}");
    assert_eq!(acks.last().copied(), Some(read));
    assert_eq!(finished.stats.acked, read);
}

/// Sends `count` messages "tick alpha" numbered from `next` on, then waits until the observer
/// (subscribed to "tick") has the last one: then every message sent so far has been matched
/// and emitted.
fn send_and_wait(tx: &Sender<Message>, obs: &Receiver<Delivery>, next: &mut u64, count: u64) {
    for _ in 0..count {
        tx.send(Message::new(next.to_string(), "tick alpha")).unwrap();
        *next += 1;
    }
    let want = (*next - 1).to_string();
    for d in obs.iter() {
        if d.message().is_some_and(|m| m.id == want) {
            return;
        }
    }
    panic!("the observer's stream ended early");
}

#[test]
fn a_subscriber_added_mid_stream_gets_exactly_the_messages_after_subscribe() {
    let registry = Registry::new();
    subscribe(&registry, "observer", "tick");
    let (tx, source) = channel_source(16);
    let (obs_sink, obs) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry.clone())
        .matcher_threads(3)
        .attach("observer", obs_sink)
        .start(source)
        .unwrap();
    let mut next = 0u64;
    let mut phase = |count: u64| send_and_wait(&tx, &obs, &mut next, count);
    phase(100);
    let (late_sink, late) = channel_sink(usize::MAX);
    engine.attach("late", late_sink).unwrap();
    let id = registry.subscribe("late", Rule::parse("alpha").unwrap(), Some("a".into())).unwrap();
    phase(100);
    registry.unsubscribe(id).unwrap();
    phase(100);
    let finished = engine.shutdown();
    let got: Vec<Delivery> = late.try_iter().collect();
    assert_eq!(match_ids(&got), (100..200).collect::<Vec<_>>());
    match &got[0] {
        Delivery::Match { matching_rules, .. } => {
            assert_eq!(matching_rules.len(), 1);
            assert_eq!(matching_rules[0].id, id);
            assert_eq!(matching_rules[0].tag.as_deref(), Some("a"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(disconnect_code(&got), Some(1));
    assert_eq!(finished.stats.received, 300);
}

/// A message matching several rules of a subscriber, registered between other subscribers'
/// rules, is delivered to it once, with all of them, ascending by id.
#[test]
fn a_subscriber_gets_one_delivery_with_all_its_matching_rules_in_order() {
    let registry = Registry::new();
    let mut ids = Vec::new();
    for (who, rule) in [("a", "x"), ("b", "x"), ("a", "y"), ("b", "y"), ("a", "z"), ("c", "q")] {
        ids.push(registry.subscribe(who, Rule::parse(rule).unwrap(), None).unwrap());
    }
    let mut builder = Engine::builder(registry).matcher_threads(2);
    let mut receivers = Vec::new();
    for name in ["a", "b", "c"] {
        let (sink, rx) = channel_sink(usize::MAX);
        builder = builder.attach(name, sink);
        receivers.push(rx);
    }
    let messages =
        vec![Message::new("1", "x y z"), Message::new("2", "z y"), Message::new("3", "q")];
    let finished = builder.start(IterSource::new(messages)).unwrap().join();
    let rules = |rx: &Receiver<Delivery>| -> Vec<(String, Vec<u64>)> {
        rx.try_iter()
            .filter_map(|d| match d {
                Delivery::Match { message, matching_rules } => Some((
                    message.id.clone(),
                    matching_rules.iter().map(|r| r.id.as_u64()).collect(),
                )),
                _ => None,
            })
            .collect()
    };
    let id = |i: usize| ids[i].as_u64();
    assert_eq!(
        rules(&receivers[0]),
        [("1".to_string(), vec![id(0), id(2), id(4)]), ("2".to_string(), vec![id(2), id(4)])]
    );
    assert_eq!(
        rules(&receivers[1]),
        [("1".to_string(), vec![id(1), id(3)]), ("2".to_string(), vec![id(3)])]
    );
    assert_eq!(rules(&receivers[2]), [("3".to_string(), vec![id(5)])]);
    assert_eq!(finished.stats.delivered, 5);
}

/// The engine finds a match's subscriber by the registry's subscriber slot, which passes to
/// another subscriber once its owner has no rules left: matches must follow the name.
#[test]
fn matches_follow_the_subscriber_when_its_registry_slot_is_reused() {
    let registry = Registry::new();
    subscribe(&registry, "observer", "tick");
    let (tx, source) = channel_source(16);
    let (obs_sink, obs) = channel_sink(usize::MAX);
    let (a_sink, a) = channel_sink(usize::MAX);
    let (b_sink, b) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry.clone())
        .matcher_threads(2)
        .attach("observer", obs_sink)
        .attach("a", a_sink)
        .attach("b", b_sink)
        .start(source)
        .unwrap();
    let mut next = 0u64;
    let mut phase = |count: u64| send_and_wait(&tx, &obs, &mut next, count);
    let rule = || Rule::parse("alpha").unwrap();
    let a1 = registry.subscribe("a", rule(), None).unwrap();
    phase(50);
    registry.unsubscribe(a1).unwrap();
    // `b` takes the slot `a` had.
    let b1 = registry.subscribe("b", rule(), None).unwrap();
    phase(50);
    registry.unsubscribe(b1).unwrap();
    // And `a` gets it back, under a new copy of its name.
    registry.subscribe("a", rule(), None).unwrap();
    phase(50);
    let finished = engine.shutdown();
    let (a, b): (Vec<Delivery>, Vec<Delivery>) = (a.try_iter().collect(), b.try_iter().collect());
    let mut want_a: Vec<u64> = (0..50).collect();
    want_a.extend(100..150);
    assert_eq!(match_ids(&a), want_a);
    assert_eq!(match_ids(&b), (50..100).collect::<Vec<_>>());
    assert_eq!(finished.stats.unrouted, 0);
}

#[test]
fn a_sink_blocked_in_send_holds_up_no_subscriber_scheduled_with_it() {
    // One dispatcher, and every message wakes all fifty subscribers at once: they are handed
    // to the dispatcher as one run. The gated sink blocks inside `send`; the watchdog must
    // hand the rest of that run to a spare dispatcher.
    let registry = Registry::new();
    let names: Vec<String> = (0..50).map(|i| format!("s{i:02}")).collect();
    for name in &names {
        subscribe(&registry, name, "tick");
    }
    let (gated_sink, gate, first, gated_out) = gated();
    let mut builder = Engine::builder(registry).dispatcher_threads(1).matcher_threads(1);
    let mut outs = Vec::new();
    for name in &names[1..] {
        let (sink, rx) = channel_sink(usize::MAX);
        builder = builder.attach(name, sink);
        outs.push(rx);
    }
    // The gated subscriber is attached first, so it comes first in the runs.
    let (tx, source) = channel_source(16);
    let engine = builder.attach(&names[0], gated_sink).start(source).unwrap();
    for i in 0..20u64 {
        tx.send(Message::new(i.to_string(), "tick")).unwrap();
    }
    first.recv_timeout(Duration::from_secs(10)).expect("the gated sink got its first delivery");
    for rx in &outs {
        let got: Vec<u64> = (0..20)
            .map(|_| {
                let d = rx.recv_timeout(Duration::from_secs(10)).expect("not held up");
                d.message().unwrap().id.parse().unwrap()
            })
            .collect();
        assert_eq!(got, (0..20).collect::<Vec<_>>());
    }
    drop(gate);
    drop(tx);
    let finished = engine.join();
    assert_eq!(finished.stats.dropped, 0);
    assert_eq!(match_ids(&gated_out.try_iter().collect::<Vec<_>>()), (0..20).collect::<Vec<_>>());
}

#[test]
fn shutdown_ends_a_stream_held_up_by_a_blocking_subscriber() {
    // A subscriber with FullPolicy::Block, no stall timeout and a sink that never reads: the
    // emission waits for it forever. A shutdown with a drain timeout must still end the
    // stream, giving up on the stuck subscriber only (code 13), counting what it did not take
    // as dropped.
    let registry = Registry::new();
    subscribe(&registry, "stuck", "tick");
    subscribe(&registry, "other", "tick");
    let (gated_sink, _gate, first, _out) = gated();
    let (other_sink, other_out) = channel_sink(usize::MAX);
    let config = SubscriberConfig::new().policy(FullPolicy::Block).capacity(4);
    let engine = Engine::builder(registry)
        .drain_timeout(Duration::from_millis(200))
        .attach_with("stuck", gated_sink, config)
        .attach("other", other_sink)
        .start(IterSource::new((0..100_000u64).map(|i| Message::new(i.to_string(), "tick"))))
        .unwrap();
    first.recv().unwrap();
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(engine.shutdown());
    });
    let finished = done_rx.recv_timeout(Duration::from_secs(20)).expect("shutdown returned");
    assert_eq!(finished.reason, streamtrack::engine::StopReason::Shutdown);
    let read = finished.stats.received;
    assert!(read < 100_000, "{read}");
    let stuck = finished.stats.subscriber("stuck").unwrap();
    assert_eq!(stuck.matched, stuck.delivered + stuck.dropped, "{stuck:?}");
    assert!(stuck.dropped > 0);
    assert!(matches!(&stuck.state, SubscriberState::Disconnected { code, .. } if code.0 == 13));
    // Once the stuck subscriber was given up on, the emission went on: the other subscriber
    // got everything read, in order, and its own disconnect (issue 23).
    let other = finished.stats.subscriber("other").unwrap();
    let got = other_out.try_iter().collect::<Vec<_>>();
    assert_eq!(match_ids(&got), (0..read).collect::<Vec<_>>());
    assert_eq!(disconnect_code(&got), Some(1));
    assert_eq!((other.delivered, other.dropped), (read, 0), "{other:?}");
}

#[test]
fn trickles_and_bursts_alternate_without_loss_or_reordering() {
    // While the source trickles one matcher thread does the work and the others stand by;
    // a burst (full batches) brings them back. Every message must arrive, in order.
    let registry = Registry::new();
    subscribe(&registry, "all", "tick");
    let (tx, source) = channel_source(100_000);
    let (sink, out) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry)
        .matcher_threads(3)
        .batch_size(8)
        .attach_with("all", sink, SubscriberConfig::new().policy(FullPolicy::Block))
        .start(source)
        .unwrap();
    let mut next = 0u64;
    for round in 0..6 {
        let (count, pause) = if round % 2 == 0 { (20, true) } else { (5_000, false) };
        for _ in 0..count {
            tx.send(Message::new(next.to_string(), "tick")).unwrap();
            next += 1;
            if pause {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    drop(tx);
    let finished = engine.join();
    assert_eq!(finished.stats.received, next);
    let got: Vec<Delivery> = out.try_iter().collect();
    assert_eq!(match_ids(&got), (0..next).collect::<Vec<_>>());
    assert_eq!(disconnect_code(&got), Some(5));
}

#[test]
fn a_message_for_many_subscribers_reaches_each_once_in_order_and_shared() {
    // 1,000 subscribers of one word: each message is a fan-out, delivered mostly by handing
    // it to idle subscribers; bursts make some queue behind a turn in progress.
    const SUBS: usize = 1_000;
    let registry = Registry::new();
    for i in 0..SUBS {
        subscribe(&registry, &format!("s{i}"), "wide");
    }
    let (tx, source) = channel_source(10_000);
    let mut builder = Engine::builder(registry)
        .subscriber_defaults(SubscriberConfig::new().policy(FullPolicy::Block).capacity(1 << 12));
    let mut outs = Vec::new();
    for i in 0..SUBS {
        let (sink, out) = channel_sink(usize::MAX);
        builder = builder.attach(&format!("s{i}"), sink);
        outs.push(out);
    }
    let engine = builder.start(source).unwrap();
    let mut sent = 0u64;
    for round in 0..4 {
        let count = if round % 2 == 0 { 3 } else { 200 };
        for _ in 0..count {
            tx.send(Message::new(sent.to_string(), format!("a wide message {sent}"))).unwrap();
            sent += 1;
            if round % 2 == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    drop(tx);
    let finished = engine.join();
    assert_eq!(finished.stats.dropped, 0);
    assert_eq!(finished.stats.delivered, sent * SUBS as u64);
    for s in &finished.stats.subscribers {
        assert_eq!((s.matched, s.delivered, s.queued), (sent, sent, 0), "{s:?}");
    }
    // Per message: the copies the subscribers got (each delivery holds the message shared
    // with others, not a copy of its own).
    let mut copies: Vec<std::collections::HashSet<usize>> = vec![Default::default(); sent as usize];
    for out in &outs {
        let got: Vec<Delivery> = out.try_iter().collect();
        assert_eq!(match_ids(&got), (0..sent).collect::<Vec<_>>());
        assert_eq!(disconnect_code(&got), Some(5));
        for d in &got {
            if let Delivery::Match { message, .. } = d {
                assert_eq!(message.text, format!("a wide message {}", message.id));
                let i: usize = message.id.parse().unwrap();
                copies[i].insert(Arc::as_ptr(message) as usize);
            }
        }
    }
    for (i, c) in copies.iter().enumerate() {
        assert!(c.len() <= SUBS.div_ceil(64), "message {i} in {} copies", c.len());
    }
}

#[test]
fn acknowledgements_flow_while_running_unless_the_source_wants_none() {
    for wants in [true, false] {
        let registry = Registry::new();
        subscribe(&registry, "a", "tick");
        let (tx, inner) = channel_source(1_000);
        let acks = Arc::new(Mutex::new(Vec::new()));
        let source = Acking { inner, wants, acks: acks.clone() };
        let (sink, _out) = channel_sink(usize::MAX);
        let engine = Engine::builder(registry).attach("a", sink).start(source).unwrap();
        // Long enough for the watchdog to work out acknowledgements several times.
        for i in 0..40u64 {
            tx.send(Message::new(i.to_string(), "tick")).unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
        drop(tx);
        let finished = engine.join();
        let acks = acks.lock().unwrap();
        assert_eq!(finished.stats.acked, 40);
        assert_eq!(acks.last().copied(), Some(40), "{acks:?}");
        assert!(acks.windows(2).all(|w| w[0] < w[1]), "{acks:?}");
        if wants {
            assert!(acks.len() > 1, "acknowledged only at the end: {acks:?}");
        } else {
            assert_eq!(*acks, [40], "a source that wants none is acknowledged once, at the end");
        }
    }
}
