//! The JetStream source and sink in one process, against a real `nats-server -js` (skipped
//! with a message when the binary is missing outside CI).

use futures::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::{CallbackSink, Engine, IterSource, Sink};
use streamtrack::{Message, Registry};
use streamtrack_nats::server::NatsServer;
use streamtrack_nats::{
    ConsumerSettings, JetStreamSink, JetStreamSource, Nats, RuleNames, RulesWatcher, SinkCounters,
};

fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(secs), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Every message of a stream, as JSON, through an ephemeral pull consumer.
fn stream_contents(nats: &Nats, stream: &str) -> Vec<serde_json::Value> {
    nats.block_on(async {
        let s = nats.jetstream().get_stream(stream).await.unwrap();
        let n = s.cached_info().state.messages as usize;
        let c = s
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap();
        let mut out = Vec::new();
        let mut msgs = c.messages().await.unwrap();
        while out.len() < n {
            let m = tokio::time::timeout(Duration::from_secs(5), msgs.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            out.push(serde_json::from_slice(&m.payload).unwrap());
        }
        out
    })
}

fn setup(nats: &Nats, rules: &[(&str, &str)]) -> (Registry, RuleNames, Vec<String>) {
    let store = nats.ensure_bucket("rules").unwrap();
    for (k, v) in rules {
        nats.block_on(store.put(*k, v.to_string().into())).unwrap();
    }
    let registry = Registry::new();
    let names = RuleNames::default();
    let w = RulesWatcher::catch_up(
        nats,
        store,
        registry.clone(),
        names.clone(),
        "errs",
        Duration::from_secs(5),
    )
    .unwrap();
    let subs = w.subscribers();
    drop(w);
    (registry, names, subs)
}

#[test]
fn malformed_messages_go_to_the_dead_letter_subject_once_and_the_rest_is_delivered() {
    let Some(server) =
        NatsServer::start_or_skip("malformed_messages_go_to_the_dead_letter_subject_once")
    else {
        return;
    };
    let nats = Nats::connect(&server.url()).unwrap();
    nats.ensure_stream("POSTS", "posts.in").unwrap();
    nats.ensure_delivery_stream("out", Duration::from_secs(120)).unwrap();
    let settings = ConsumerSettings::default().ack_wait(Duration::from_secs(1));
    let consumer = nats.ensure_consumer("POSTS", "workers", &settings).unwrap();
    let (registry, names, subs) = setup(&nats, &[("r0", r#"{"value":"love","subscriber":"s0"}"#)]);
    assert_eq!(subs, ["s0"]);
    let dead = nats.block_on(nats.client().subscribe("dead")).unwrap();
    nats.block_on(nats.client().flush()).unwrap();
    for line in [
        r#"{"id":"1","text":"i love it"}"#,
        "this is not json",
        r#"{"id":"2","text":"love again"}"#,
        r#"{"id":"3","text":"nothing"}"#,
    ] {
        nats.block_on(async {
            nats.jetstream().publish("posts.in", line.into()).await.unwrap().await.unwrap()
        });
    }
    let source = JetStreamSource::start(&nats, consumer, "dead", 16);
    let counters = source.counters();
    let sc = Arc::new(SinkCounters::default());
    let sink =
        JetStreamSink::new(&nats, "out", "s0", names, sc.clone(), Arc::new(AtomicBool::new(false)));
    let engine = Engine::builder(registry).attach("s0", sink).start(source).unwrap();
    wait_for("the acknowledgements", 10, || counters.acked.load(Ordering::Relaxed) == 4);
    // Past the ack wait: nothing is redelivered, the malformed message included.
    std::thread::sleep(Duration::from_millis(1500));
    let finished = engine.shutdown();
    assert_eq!(finished.stats.malformed, 1);
    assert_eq!(counters.malformed.load(Ordering::Relaxed), 1);
    assert_eq!(counters.received.load(Ordering::Relaxed), 4);
    assert_eq!(counters.redelivered.load(Ordering::Relaxed), 0);
    let dead_letters: Vec<serde_json::Value> = nats.block_on(async move {
        let mut dead = dead;
        let mut v = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(500), dead.next()).await
        {
            v.push(serde_json::from_slice(&m.payload).unwrap());
        }
        v
    });
    assert_eq!(dead_letters.len(), 1, "{dead_letters:?}");
    assert_eq!(dead_letters[0]["payload"], "this is not json");
    assert_eq!(dead_letters[0]["stream_sequence"], 2);
    assert!(!dead_letters[0]["reason"].as_str().unwrap().is_empty());
    let got = stream_contents(&nats, "DELIVER_out");
    let ids: Vec<&str> = got.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(got[0]["subscriber"], "s0");
    assert_eq!(got[0]["text"], "i love it");
    assert_eq!(got[0]["matching_rules"], serde_json::json!([{"id": "r0"}]));
    assert_eq!(sc.published.load(Ordering::Relaxed), 2);
}

#[test]
fn a_redelivered_match_is_dropped_by_the_server_inside_its_window() {
    let Some(server) = NatsServer::start_or_skip("a_redelivered_match_is_dropped_by_the_server")
    else {
        return;
    };
    let nats = Nats::connect(&server.url()).unwrap();
    nats.ensure_delivery_stream("out", Duration::from_secs(120)).unwrap();
    let (registry, names, _) = setup(&nats, &[("r0", r#"{"value":"love","subscriber":"a.b c"}"#)]);
    let sc = Arc::new(SinkCounters::default());
    let messages = || vec![Message::new("1", "love"), Message::new("2", "more love")];
    // The same messages twice (a redelivery after a failover): the second run's publications
    // are duplicates.
    for _ in 0..2 {
        let sink = JetStreamSink::new(
            &nats,
            "out",
            "a.b c",
            names.clone(),
            sc.clone(),
            Arc::new(AtomicBool::new(false)),
        );
        assert_eq!(sink.subject(), "out.a%2Eb%20c");
        Engine::builder(registry.clone())
            .attach("a.b c", sink)
            .start(IterSource::new(messages()))
            .unwrap()
            .join();
    }
    assert_eq!(sc.published.load(Ordering::Relaxed), 2);
    assert_eq!(sc.duplicates.load(Ordering::Relaxed), 2);
    let got = stream_contents(&nats, "DELIVER_out");
    assert_eq!(got.len(), 2);
    assert_eq!(got[1]["subscriber"], "a.b c");
}

#[test]
fn a_message_is_acknowledged_only_after_its_delivery() {
    let Some(server) =
        NatsServer::start_or_skip("a_message_is_acknowledged_only_after_its_delivery")
    else {
        return;
    };
    let nats = Nats::connect(&server.url()).unwrap();
    nats.ensure_stream("POSTS", "posts.in").unwrap();
    let consumer = nats.ensure_consumer("POSTS", "workers", &ConsumerSettings::default()).unwrap();
    let (registry, _names, _) = setup(&nats, &[("r0", r#"{"value":"love","subscriber":"s0"}"#)]);
    let open = Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    let sink = CallbackSink::new(move |_d| {
        while !gate.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    });
    fn boxed(s: impl Sink + 'static) -> Box<dyn Sink> {
        Box::new(s)
    }
    let source = JetStreamSource::start(&nats, consumer, "dead", 16);
    let counters = source.counters();
    let engine = Engine::builder(registry).attach("s0", boxed(sink)).start(source).unwrap();
    for line in [
        r#"{"id":"1","text":"no match"}"#,
        r#"{"id":"2","text":"love"}"#,
        r#"{"id":"3","text":"no"}"#,
    ] {
        nats.block_on(async {
            nats.jetstream().publish("posts.in", line.into()).await.unwrap().await.unwrap()
        });
    }
    wait_for("the messages", 10, || counters.handed.load(Ordering::Relaxed) == 3);
    std::thread::sleep(Duration::from_millis(500));
    // Message 2 waits in its sink: neither it nor message 3 behind it is acknowledged (message
    // 1 may be, depending on how the engine batched them).
    let acked = counters.acked.load(Ordering::Relaxed);
    if acked >= 2 {
        open.store(true, Ordering::Relaxed);
        panic!("{acked} messages acknowledged while message 2 is not delivered");
    }
    open.store(true, Ordering::Relaxed);
    wait_for("the other acknowledgements", 10, || counters.acked.load(Ordering::Relaxed) == 3);
    engine.shutdown();
}
