//! The analytics stage of the engine (issue 15, items 5 and 6): off by default, on with one
//! builder call; the reaction attached to deliveries is computed once per message however
//! many rules and subscribers it reaches; bursts reach the subscribers they concern.

use std::sync::{Arc, Mutex};
use streamtrack::analytics::{
    AnalyticsConfig, AnalyticsEvent, BurstEvent, LanguageScorers, SeriesKey,
};
use streamtrack::engine::{channel_sink, Delivery, Engine, EngineEvent, IterSource};
use streamtrack::registry::Registry;
use streamtrack::{Message, Rule};

fn registry() -> Registry {
    let r = Registry::new();
    r.subscribe("alice", Rule::parse("launch").unwrap(), Some("space".into())).unwrap();
    r.subscribe("alice", Rule::parse("great").unwrap(), None).unwrap();
    r.subscribe("bob", Rule::parse("launch").unwrap(), None).unwrap();
    r.subscribe("carol", Rule::parse("launch OR rocket").unwrap(), None).unwrap();
    r
}

fn messages() -> Vec<Message> {
    vec![
        Message::new("1", "The launch was great!"),
        Message::new("2", "nothing to see here"),
        Message::new("3", "The launch failed, awful and sad."),
        Message::new("4", "launch at noon"),
    ]
}

/// Each subscriber's deliveries, and (messages recorded, messages scored, alice's kept
/// messages) when analytics are on.
type Run = (Vec<(&'static str, Vec<Delivery>)>, Option<(u64, u64, u64)>);

fn run(analytics: bool) -> Run {
    let mut b = Engine::builder(registry()).matcher_threads(2);
    if analytics {
        b = b.analytics(AnalyticsConfig::default());
    }
    let mut receivers = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (sink, rx) = channel_sink(usize::MAX);
        b = b.attach(name, sink);
        receivers.push((name, rx));
    }
    let engine = b.start(IterSource::new(messages())).unwrap();
    let figures = engine.analytics();
    let finished = engine.join();
    assert_eq!(finished.stats.received, 4);
    let got = receivers.into_iter().map(|(n, rx)| (n, rx.try_iter().collect())).collect();
    let figures = figures.map(|a| {
        let a = a.lock().unwrap();
        let s = a.stats();
        let alice = a.recent(&SeriesKey::subscriber("alice"), i64::MIN, i64::MAX).len();
        (s.messages, s.scored, alice as u64)
    });
    (got, figures)
}

#[test]
fn analytics_are_off_by_default() {
    let (got, figures) = run(false);
    assert!(figures.is_none());
    for (_, ds) in &got {
        assert!(ds.iter().filter(|d| d.is_match()).all(|d| d.reaction().is_none()));
    }
}

#[test]
fn each_delivery_carries_its_message_reaction_scored_once_per_message() {
    let (got, figures) = run(true);
    let scorers = LanguageScorers::default();
    let mut deliveries = 0;
    for (name, ds) in &got {
        for d in ds.iter().filter(|d| d.is_match()) {
            deliveries += 1;
            let m = d.message().unwrap();
            assert_eq!(d.reaction(), Some(scorers.score_message(m)), "{name} {}", m.id);
        }
    }
    // Messages 1, 3, 4 reach three subscribers each (alice through two rules for 1).
    assert_eq!(deliveries, 9);
    let (messages, scored, alice) = figures.unwrap();
    assert_eq!(messages, 3, "every matched message is recorded once");
    assert_eq!(scored, 3, "one scoring per message, not per rule or delivery");
    assert_eq!(alice, 3, "alice's series counts her messages, not her rules");
}

#[cfg(feature = "json")]
#[test]
fn json_deliveries_carry_the_reaction() {
    let (got, _) = run(true);
    let alice = &got.iter().find(|(n, _)| *n == "alice").unwrap().1;
    let v = alice[0].to_json_value();
    assert_eq!(v["id"], "1");
    let r = &v["reaction"];
    assert_eq!(r["label"], "positive", "{v}");
    for k in ["compound", "pos", "neu", "neg"] {
        assert!(r[k].is_number(), "{k} in {v}");
    }
    let v = alice[1].to_json_value();
    assert_eq!(v["reaction"]["label"], "negative", "{v}");
    let (plain, _) = run(false);
    let v = plain.iter().find(|(n, _)| *n == "alice").unwrap().1[0].to_json_value();
    assert!(v.get("reaction").is_none(), "{v}");
}

#[test]
fn bursts_reach_the_subscribers_they_concern() {
    // One "launch" a second for a minute, forty in one second, then quiet again; "rocket"
    // (carol only) at the same steady pace throughout. Event times drive the stage's clock.
    let t0 = 1_700_000_000_000i64;
    let mut ms = Vec::new();
    let mut n = 0;
    let mut push = |t: i64, text: &str| {
        n += 1;
        ms.push(Message::new(n.to_string(), text).with_timestamp(t));
    };
    for s in 0..120 {
        let t = t0 + s * 1000;
        push(t, "rocket");
        if !(60..=61).contains(&s) {
            push(t + 1, "launch");
        }
        if s == 60 {
            for k in 0..40 {
                push(t + 2 + k, "launch");
            }
        }
    }
    let events = burst_events(&[("alice", "launch"), ("carol", "rocket")], ms);
    let spike = t0 + 60_000;
    let starts: Vec<_> = events.iter().filter(|(_, e)| e.event.kind == BurstEvent::Start).collect();
    assert!(!starts.is_empty(), "{events:?}");
    assert!(starts.iter().all(|(s, _)| s == "alice"), "{events:?}");
    // The rule's series and alice's own, at the 1 s resolution, at the spike.
    for kind in ["rule", "subscriber"] {
        assert!(
            starts.iter().any(|(_, e)| e.key.kind() == kind
                && e.event.resolution == 0
                && e.event.bucket_start_ms == spike),
            "{kind}: {events:?}"
        );
    }
    assert!(
        events.iter().any(|(s, e)| s == "alice" && e.event.kind == BurstEvent::End),
        "{events:?}"
    );
}

/// A burst in the last second of the input is declared when the input ends (before, the
/// stage stopped with its last seconds' buckets open, so such a burst was never reported).
#[test]
fn a_burst_in_the_last_second_of_the_input_is_declared_at_its_end() {
    let t0 = 1_700_000_000_000i64;
    let mut ms = Vec::new();
    for s in 0..60 {
        ms.push(Message::new(format!("s{s}"), "launch").with_timestamp(t0 + s * 1000));
    }
    for k in 0..40 {
        ms.push(Message::new(format!("b{k}"), "launch").with_timestamp(t0 + 60_000 + k));
    }
    let events = burst_events(&[("alice", "launch")], ms);
    assert!(
        events.iter().any(|(s, e)| s == "alice"
            && e.event.kind == BurstEvent::Start
            && e.event.resolution == 0
            && e.event.bucket_start_ms == t0 + 60_000),
        "{events:?}"
    );
    // The hour bucket is not over: it stays open (no event at resolution 2).
    assert!(events.iter().all(|(_, e)| e.event.resolution == 0), "{events:?}");
}

/// The burst events of a run of `messages` with analytics on, one rule per subscriber, as
/// (subscriber, event) in the order reported.
fn burst_events(rules: &[(&str, &str)], messages: Vec<Message>) -> Vec<(String, AnalyticsEvent)> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let ev = events.clone();
    let registry = Registry::new();
    for (subscriber, rule) in rules {
        registry.subscribe(subscriber, Rule::parse(rule).unwrap(), None).unwrap();
    }
    let mut builder =
        Engine::builder(registry).analytics(AnalyticsConfig::default()).on_event(move |e| {
            if let EngineEvent::Burst { subscriber, event } = e {
                ev.lock().unwrap().push((subscriber.to_string(), event.clone()));
            }
        });
    let mut receivers = Vec::new();
    for (subscriber, _) in rules {
        let (sink, rx) = channel_sink(usize::MAX);
        builder = builder.attach(subscriber, sink);
        receivers.push(rx);
    }
    builder.start(IterSource::new(messages)).unwrap().join();
    let events = events.lock().unwrap().clone();
    events
}

/// A source that hands over `full` units of 64 matching messages at once, then waits (open,
/// nothing to read) until `release` fires: a burst, then silence.
struct BurstThenSilence {
    left: usize,
    next: usize,
    release: std::sync::mpsc::Receiver<()>,
}

impl streamtrack::engine::Source for BurstThenSilence {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<streamtrack::engine::SourceStatus, streamtrack::engine::SourceError> {
        if self.left == 0 {
            // Silence: blocked in the source as a live input with nothing to read is.
            let _ = self.release.recv();
            return Ok(streamtrack::engine::SourceStatus::Ended);
        }
        for _ in 0..max.min(self.left) {
            out.push(Message::new(self.next.to_string(), "launch day"));
            self.next += 1;
            self.left -= 1;
        }
        Ok(streamtrack::engine::SourceStatus::Open)
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

/// Matches of full units are gathered before they reach the stage; when the source then
/// goes quiet (blocked, the stream open), the stage still records them within a moment, not
/// at the next message or the end.
#[test]
fn a_burst_of_full_units_is_recorded_while_the_stream_is_quiet() {
    let (release, rx) = std::sync::mpsc::channel();
    let n = 64 * 3;
    let engine = Engine::builder(registry())
        .matcher_threads(2)
        .analytics(AnalyticsConfig::default())
        .attach("alice", channel_sink(usize::MAX).0)
        .start(BurstThenSilence { left: n, next: 0, release: rx })
        .unwrap();
    let figures = engine.analytics().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let recorded = || figures.lock().unwrap().stats().messages;
    while recorded() < n as u64 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let while_quiet = recorded();
    // Released before any assertion, so that a failure does not leave the source waiting.
    release.send(()).unwrap();
    engine.join();
    assert_eq!(while_quiet, n as u64, "recorded while the source waits");
    assert_eq!(recorded(), n as u64);
}
