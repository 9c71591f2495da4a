//! The engine's ring of recent messages, dry runs over it, and subscriptions with backfill:
//! a real engine reading a source that keeps producing while the subscription is made.

use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::backfill::BackfillError;
use streamtrack::dry_run::dry_run;
use streamtrack::engine::{
    channel_sink, channel_source, Delivery, Engine, FullPolicy, IterSource, SubscriberConfig,
};
use streamtrack::{Message, Registry, Rule};

/// Message `i`: id `i`; every third one mentions rust.
fn message(i: u64) -> Message {
    let text = if i.is_multiple_of(3) { format!("rust {i}") } else { format!("gopher {i}") };
    Message::new(i.to_string(), text)
}

fn matching(range: std::ops::Range<u64>) -> Vec<u64> {
    range.filter(|i| i.is_multiple_of(3)).collect()
}

/// Waits (bounded) until the engine has read `n` messages.
fn wait_received(engine: &Engine, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while engine.stats().received < n {
        assert!(Instant::now() < deadline, "the engine read {} of {n}", engine.stats().received);
        std::thread::sleep(Duration::from_micros(200));
    }
}

struct Round {
    backfill: Vec<u64>,
    live: Vec<u64>,
    cut: u64,
    flagged_after_live: bool,
    /// Messages were read while `subscribe_with_backfill` ran.
    overlapped: bool,
}

/// Streams `n` messages through an engine (ring of `capacity`) from a producer thread, and
/// subscribes `rust` with backfill for alice once `at` messages were read, while the
/// producer goes on. Returns alice's backfill and live ids, in the order received.
fn round(n: u64, at: u64, capacity: usize, alice: SubscriberConfig, batch: usize) -> Round {
    let registry = Registry::new();
    // Another subscriber keeps the engine matching and emitting around the cut.
    registry.subscribe("bob", Rule::parse("gopher").unwrap(), None).unwrap();
    let (tx, source) = channel_source(256);
    let (alice_sink, alice_rx) = channel_sink(usize::MAX);
    let (bob_sink, _bob_rx) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry)
        .matcher_threads(2)
        .batch_size(batch)
        .recent_messages(capacity, None)
        .attach_with("alice", alice_sink, alice)
        .attach("bob", bob_sink)
        .start(source)
        .unwrap();
    // Paced, so that messages keep arriving while the subscription is made; the source
    // stays open until the subscription is done.
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            tx.send(message(i)).unwrap();
            if i % 200 == 0 {
                std::thread::sleep(Duration::from_micros(300));
            }
        }
        tx
    });
    wait_received(&engine, at);
    let before = engine.stats().received;
    let done = engine
        .subscribe_with_backfill("alice", Rule::parse("rust").unwrap(), None, Duration::MAX)
        .unwrap();
    let overlapped = engine.stats().received > before;
    drop(producer.join().unwrap());
    let finished = engine.join();
    assert_eq!(finished.stats.received, n);
    let (mut backfill, mut live, mut flagged_after_live) = (Vec::new(), Vec::new(), false);
    for d in alice_rx.try_iter() {
        let Some(m) = d.message() else { continue };
        let id: u64 = m.id.parse().unwrap();
        if d.is_backfill() {
            flagged_after_live |= !live.is_empty();
            backfill.push(id);
        } else {
            live.push(id);
        }
        if let Delivery::Match { matching_rules, .. } = &d {
            assert_eq!(matching_rules.len(), 1);
            assert_eq!(matching_rules[0].id, done.rule);
        }
    }
    assert_eq!(done.messages, backfill.len(), "the count returned is the count delivered");
    Round { backfill, live, cut: done.cut, flagged_after_live, overlapped }
}

#[test]
fn backfill_then_live_has_no_gap_and_no_duplicate_while_messages_arrive() {
    let n = 20_000;
    let mut overlapped = 0;
    for r in 0..24u64 {
        // Subscribing early (a ring smaller than the pre-scan's tail: scanned after the
        // cut) and late (pre-scanned first, then the tail); small and large batches.
        let at = 500 + r * 800;
        let batch = if r % 2 == 0 { 8 } else { 64 };
        let got = round(n, at, n as usize, SubscriberConfig::new(), batch);
        assert!(!got.flagged_after_live, "round {r}: a backfill delivery after a live one");
        assert!(got.cut >= at && got.cut <= n, "round {r}: cut {}", got.cut);
        // Backfill: every matching message before the cut, oldest first; live: every one
        // from the cut on. Together: each matching message exactly once, in order.
        assert_eq!(got.backfill, matching(0..got.cut), "round {r}");
        assert_eq!(got.live, matching(got.cut..n), "round {r}");
        overlapped += usize::from(got.overlapped);
    }
    // The point of the test: the source was producing during the subscription.
    assert!(overlapped > 0, "no round had messages arriving during the subscription");
    eprintln!("{overlapped} of 24 rounds read messages during the subscription");
}

#[test]
fn a_small_blocking_queue_still_gets_everything_in_order() {
    // Alice's queue holds 4: the backfill waits for room (Block), nothing is lost.
    let n = 12_000;
    for r in 0..4u64 {
        let cfg = SubscriberConfig::new().capacity(4).policy(FullPolicy::Block);
        let got = round(n, 3_000 + r * 2_000, n as usize, cfg, 16);
        assert!(!got.flagged_after_live);
        assert_eq!(got.backfill, matching(0..got.cut), "round {r}");
        assert_eq!(got.live, matching(got.cut..n), "round {r}");
    }
}

#[test]
fn a_bounded_ring_backfills_its_last_messages_only() {
    let (n, cap) = (20_000, 1_000u64);
    for r in 0..6u64 {
        let got = round(n, 2_000 + r * 3_000, cap as usize, SubscriberConfig::new(), 32);
        assert!(!got.flagged_after_live);
        // The ring held the `cap` messages before the cut, exactly.
        assert_eq!(got.backfill, matching(got.cut - cap..got.cut), "round {r}");
        assert_eq!(got.live, matching(got.cut..n), "round {r}");
    }
}

/// Sends `ids` and waits until the engine has read up to `upto`.
fn send(tx: &crossbeam_channel::Sender<Message>, ids: std::ops::Range<u64>, engine: &Engine) {
    let upto = ids.end;
    for i in ids {
        tx.send(message(i)).unwrap();
    }
    wait_received(engine, upto);
}

#[test]
fn the_window_and_the_age_bound_select_what_is_backfilled() {
    let registry = Registry::new();
    let (tx, source) = channel_source(256);
    let (sink, rx) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry)
        .recent_messages(100_000, Some(Duration::from_secs(4)))
        .attach("alice", sink)
        .start(source)
        .unwrap();
    // Three bursts 2.5 s then 2 s apart: at the subscription the first is past the ring's
    // age bound (4 s), the second inside the ring but outside the window (1.5 s), the third
    // inside (margins of 0.5 s and more for a busy machine).
    send(&tx, 0..300, &engine);
    std::thread::sleep(Duration::from_millis(2_500));
    send(&tx, 300..600, &engine);
    std::thread::sleep(Duration::from_millis(2_000));
    send(&tx, 600..900, &engine);
    let all = engine.dry_run(&[Rule::parse("rust").unwrap()], 0).unwrap();
    assert_eq!(all.messages, 600, "the first burst aged out of the ring");
    let done = engine
        .subscribe_with_backfill(
            "alice",
            Rule::parse("rust").unwrap(),
            None,
            Duration::from_millis(1_500),
        )
        .unwrap();
    assert_eq!(done.cut, 900);
    assert_eq!(done.messages, 100);
    // Only the window's burst is matched against: the older one in the ring is skipped.
    assert_eq!(done.scanned, 300, "the scan reads the window, not the whole ring");
    send(&tx, 900..930, &engine);
    drop(tx);
    engine.join();
    let got: Vec<(u64, bool)> = rx
        .try_iter()
        .filter_map(|d| d.message().map(|m| (m.id.parse().unwrap(), d.is_backfill())))
        .collect();
    let want: Vec<(u64, bool)> = matching(600..900)
        .into_iter()
        .map(|i| (i, true))
        .chain(matching(900..930).into_iter().map(|i| (i, false)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn dry_run_over_the_engines_ring_equals_the_library_dry_run() {
    let messages = streamtrack_workload::WorkloadConfig::default().count(6_000).messages();
    let rules: Vec<Rule> = ["rust", "the OR a", "#ai", "\"of the\"", "the lang:en", "nothing_here"]
        .iter()
        .map(|r| Rule::parse(r).unwrap())
        .collect();
    let (tx, source) = channel_source(256);
    let engine = Engine::builder(Registry::new())
        .batch_size(50)
        .recent_messages(5_000, None)
        .start(source)
        .unwrap();
    for m in &messages {
        tx.send(m.clone()).unwrap();
    }
    wait_received(&engine, messages.len() as u64);
    assert_eq!(engine.recent_len(), 5_000, "capacity bounds the ring");
    assert!(engine.recent_bytes() > 5_000 * 100, "{}", engine.recent_bytes());
    let got = engine.dry_run(&rules, 7).unwrap();
    let want = dry_run(&rules, messages[1_000..].iter(), 7);
    assert_eq!(got, want);
    assert!(want.rules.iter().any(|r| r.matches > 0), "the rules match something");
    drop(tx);
    engine.join();
}

#[test]
fn with_the_ring_off_it_is_a_plain_subscribe() {
    let registry = Registry::new();
    let (sink, rx) = channel_sink(usize::MAX);
    let (tx, source) = channel_source(16);
    let engine = Engine::builder(registry.clone()).attach("alice", sink).start(source).unwrap();
    send(&tx, 0..30, &engine);
    assert_eq!(engine.recent_len(), 0);
    assert_eq!(engine.recent_bytes(), 0);
    assert!(engine.dry_run(&[Rule::parse("rust").unwrap()], 1).is_none());
    let done = engine
        .subscribe_with_backfill("alice", Rule::parse("rust").unwrap(), None, Duration::MAX)
        .unwrap();
    assert_eq!((done.messages, done.scanned), (0, 0));
    assert_eq!(registry.len(), 1);
    send(&tx, 30..60, &engine);
    drop(tx);
    engine.join();
    let ids: Vec<String> =
        rx.try_iter().filter_map(|d| d.message().map(|m| m.id.clone())).collect();
    let want: Vec<String> = matching(30..60).iter().map(u64::to_string).collect();
    assert_eq!(ids, want);
}

#[test]
fn after_the_stream_ended_nothing_is_subscribed() {
    let registry = Registry::new();
    let source = IterSource::new((0..10).map(message).collect::<Vec<_>>());
    let engine =
        Engine::builder(registry.clone()).recent_messages(100, None).start(source).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.is_running() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let err = engine
        .subscribe_with_backfill("alice", Rule::parse("rust").unwrap(), None, Duration::MAX)
        .unwrap_err();
    assert!(matches!(err, BackfillError::Stopped), "{err}");
    assert_eq!(registry.len(), 0);
}

#[test]
fn concurrent_backfills_each_meet_their_live_stream() {
    // Sixteen subscribers subscribe with backfill from four threads while an unpaced source
    // runs: every subscriber gets each matching message exactly once, backfill first.
    for batch in [16, 4, 64] {
        concurrent_round(batch);
    }
}

fn concurrent_round(batch: usize) {
    let n = 60_000u64;
    let subs = 16;
    let (tx, source) = channel_source(256);
    let mut builder = Engine::builder(Registry::new())
        .matcher_threads(2)
        .batch_size(batch)
        .recent_messages(n as usize, None);
    let mut receivers = Vec::new();
    for s in 0..subs {
        let (sink, rx) = channel_sink(usize::MAX);
        builder = builder.attach(&format!("s{s}"), sink);
        receivers.push(rx);
    }
    let engine = Arc::new(builder.start(source).unwrap());
    let producer = std::thread::spawn(move || {
        for i in 0..n {
            tx.send(message(i)).unwrap();
        }
        tx
    });
    let cuts: Vec<(usize, u64)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let engine = engine.clone();
                scope.spawn(move || {
                    let mut cuts = Vec::new();
                    for k in 0..subs / 4 {
                        let s = t + 4 * k;
                        wait_received(&engine, (s as u64 + 1) * n / (subs as u64 + 2));
                        let rule = Rule::parse("rust").unwrap();
                        let name = format!("s{s}");
                        let done = engine
                            .subscribe_with_backfill(&name, rule, None, Duration::MAX)
                            .unwrap();
                        cuts.push((s, done.cut));
                    }
                    cuts
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    drop(producer.join().unwrap());
    let engine = Arc::into_inner(engine).unwrap();
    engine.join();
    for (s, cut) in cuts {
        let got: Vec<(u64, bool)> = receivers[s]
            .try_iter()
            .filter_map(|d| d.message().map(|m| (m.id.parse().unwrap(), d.is_backfill())))
            .collect();
        let want: Vec<(u64, bool)> = matching(0..cut)
            .into_iter()
            .map(|i| (i, true))
            .chain(matching(cut..n).into_iter().map(|i| (i, false)))
            .collect();
        assert!(
            got == want,
            "batch {batch}, subscriber {s}, cut {cut}: {} deliveries, {} expected",
            got.len(),
            want.len()
        );
    }
}

/// A channel source that wants acknowledgements and records the last one.
struct AckedSource {
    inner: streamtrack::engine::ChannelSource,
    acked: Arc<std::sync::atomic::AtomicU64>,
}

impl streamtrack::engine::Source for AckedSource {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<streamtrack::engine::SourceStatus, streamtrack::engine::SourceError> {
        self.inner.next_batch(out, max)
    }
    fn ack(&mut self, processed: u64) {
        self.acked.store(processed, std::sync::atomic::Ordering::SeqCst);
    }
    fn wants_acks(&self) -> bool {
        true
    }
}

#[test]
fn an_undelivered_backfill_holds_acknowledgements_at_the_cut() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let registry = Registry::new();
    registry.subscribe("bob", Rule::parse("gopher OR rust").unwrap(), None).unwrap();
    let acked = Arc::new(AtomicU64::new(0));
    let (tx, inner) = channel_source(256);
    let source = AckedSource { inner, acked: acked.clone() };
    // Alice's sink holds her backfill deliveries until the gate opens.
    let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(1);
    let (alice_tx, alice_rx) = crossbeam_channel::unbounded();
    let alice = streamtrack::engine::CallbackSink::new(move |d: Delivery| {
        if d.is_backfill() {
            let _ = gate_rx.recv();
        }
        let _ = alice_tx.send(d);
        Ok(())
    });
    let (bob, bob_rx) = channel_sink(usize::MAX);
    let engine = Engine::builder(registry)
        .recent_messages(1_000, None)
        .attach("alice", alice)
        .attach("bob", bob)
        .start(source)
        .unwrap();
    send(&tx, 0..300, &engine);
    let done = engine
        .subscribe_with_backfill("alice", Rule::parse("rust").unwrap(), None, Duration::MAX)
        .unwrap();
    assert_eq!((done.cut, done.messages), (300, 100));
    send(&tx, 300..600, &engine);
    // Bob takes everything (600 messages, each matched by his rule): acknowledgements may
    // go as far as 600 for him, but alice's backfill, not delivered yet, holds them at 300.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut bob_got = 0;
    while bob_got < 600 {
        assert!(Instant::now() < deadline, "bob got {bob_got}");
        bob_got +=
            bob_rx.recv_timeout(Duration::from_secs(1)).iter().filter(|d| d.is_match()).count();
    }
    // The watchdog acknowledges every 50 ms: give it several turns.
    std::thread::sleep(Duration::from_millis(300));
    let held = acked.load(Ordering::SeqCst);
    // Opening the gate for good (`recv` fails at once once the sender is gone), before any
    // assertion: a failing test must not leave the engine's drop waiting on the sink.
    drop(gate_tx);
    drop(tx);
    assert!(held <= 300, "acknowledged {held} before the backfill was delivered");
    let finished = engine.join();
    assert_eq!(finished.stats.acked, 600);
    assert_eq!(acked.load(Ordering::SeqCst), 600);
    let got: Vec<(u64, bool)> = alice_rx
        .try_iter()
        .filter_map(|d| d.message().map(|m| (m.id.parse().unwrap(), d.is_backfill())))
        .collect();
    let want: Vec<(u64, bool)> = matching(0..300)
        .into_iter()
        .map(|i| (i, true))
        .chain(matching(300..600).into_iter().map(|i| (i, false)))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_durable_registry_subscribes_with_backfill_and_logs_the_rule() {
    use streamtrack::durable::{DurableRegistry, OpenOptions};
    let dir =
        std::env::temp_dir().join(format!("streamtrack-engine-backfill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (durable, _) = DurableRegistry::open(&dir, OpenOptions::default()).unwrap();
    let (tx, source) = channel_source(64);
    let (sink, rx) = channel_sink(usize::MAX);
    let engine = Engine::builder(durable.registry().clone())
        .recent_messages(1_000, None)
        .attach("alice", sink)
        .start(source)
        .unwrap();
    send(&tx, 0..60, &engine);
    let rule = Rule::parse("rust").unwrap();
    let done = engine
        .subscribe_with_backfill_by("alice", &rule, Some("t"), Duration::MAX, || {
            durable.subscribe("alice", rule.clone(), Some("t".into())).map(|w| w.value)
        })
        .unwrap();
    assert_eq!(done.messages, 20);
    // A refusal from the caller's subscription comes back as such, nothing backfilled.
    let refused = engine.subscribe_with_backfill_by("alice", &rule, None, Duration::MAX, || {
        Err::<streamtrack::registry::RuleId, _>("no")
    });
    assert!(matches!(refused, Err(BackfillError::Refused("no"))));
    send(&tx, 60..90, &engine);
    drop(tx);
    engine.join();
    let got: Vec<(u64, bool, Option<String>)> = rx
        .try_iter()
        .filter_map(|d| {
            let Delivery::Match { message, matching_rules } = &d else { return None };
            let tag = matching_rules[0].tag.as_deref().map(str::to_string);
            Some((message.id.parse().unwrap(), d.is_backfill(), tag))
        })
        .collect();
    let t = Some("t".to_string());
    let want: Vec<(u64, bool, Option<String>)> = matching(0..60)
        .into_iter()
        .map(|i| (i, true, t.clone()))
        .chain(matching(60..90).into_iter().map(|i| (i, false, t.clone())))
        .collect();
    assert_eq!(got, want);
    // The rule is in the log: reopening finds it.
    drop(durable);
    let (reopened, _) = DurableRegistry::open(&dir, OpenOptions::default()).unwrap();
    assert_eq!(reopened.registry().len(), 1);
    drop(reopened);
    let _ = std::fs::remove_dir_all(&dir);
}
