//! `engine_ops`: an arbitrary sequence of subscribe, unsubscribe, push message, failing sink
//! and shut down, run through the real engine and checked against a simple model: every
//! subscriber receives, in source order, exactly the messages its live rules matched when
//! the message was pushed (each with the right rule ids), then one disconnect; a subscriber
//! whose sink fails is cut off without disturbing the others.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};
use streamtrack::engine::{channel_sink, channel_source, Delivery, Engine, Sink, SinkError};
use streamtrack::reference;
use streamtrack::registry::{Registry, RuleId};
use streamtrack::{Message, Rule};

const RULES: &[&str] =
    &["apple", "pie", "apple pie", "\"apple pie\"", "#meme", "cat -grumpy", "東京", "apple OR cat"];
const TEXTS: &[&str] = &[
    "apple pie today",
    "grumpy cat #meme",
    "a cat and an apple",
    "大東京タワー",
    "nothing here",
    "Apple! PIE? #Meme",
];
const SUBSCRIBERS: usize = 3;

/// A sink that fails on its `n`-th delivery (counting from 1).
struct FailingSink {
    n: u32,
    seen: u32,
}

impl Sink for FailingSink {
    fn send(&mut self, _: Delivery) -> Result<(), SinkError> {
        self.seen += 1;
        if self.seen >= self.n {
            return Err(SinkError::new("injected failure"));
        }
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let rules: Vec<Rule> = RULES.iter().map(|r| Rule::parse(r).unwrap()).collect();
    let registry = Registry::builder().delta_max(2).max_layers(2).background_merges(false).build();
    let (tx, source) = channel_source(256);
    let mut receivers = Vec::new();
    let mut builder = Engine::builder(registry.clone()).matcher_threads(2);
    for s in 0..SUBSCRIBERS {
        let (sink, rx) = channel_sink(4096);
        builder = builder.attach(&format!("s{s}"), sink);
        receivers.push(rx);
    }
    let fail_after = data.first().map_or(3, |b| u32::from(b % 8) + 1);
    builder = builder.attach("failing", FailingSink { n: fail_after, seen: 0 });
    let engine = builder.start(source).expect("engine starts");

    // The model: live rules per subscriber, and the expected deliveries.
    let mut live: Vec<Vec<(RuleId, usize)>> = vec![Vec::new(); SUBSCRIBERS + 1];
    let mut expected: Vec<Vec<(String, Vec<RuleId>)>> = vec![Vec::new(); SUBSCRIBERS];
    let mut pushed = 0u64;
    for op in data.iter().skip(1).take(64) {
        let (kind, arg) = (op % 4, (op / 4) as usize);
        match kind {
            0 => {
                let s = arg % (SUBSCRIBERS + 1);
                let r = (arg / 4) % rules.len();
                let name = if s == SUBSCRIBERS { "failing".to_string() } else { format!("s{s}") };
                if let Ok(id) = registry.subscribe(&name, rules[r].clone(), None) {
                    live[s].push((id, r));
                }
            }
            1 => {
                let s = arg % (SUBSCRIBERS + 1);
                if !live[s].is_empty() {
                    let k = (arg / 4) % live[s].len();
                    let (id, _) = live[s].remove(k);
                    registry.unsubscribe(id).expect("live rule");
                }
            }
            _ => {
                let text = TEXTS[arg % TEXTS.len()];
                let msg = Message::new(pushed.to_string(), text);
                for s in 0..SUBSCRIBERS {
                    let mut ids: Vec<RuleId> = live[s]
                        .iter()
                        .filter(|&&(_, r)| reference::matches(&rules[r], &msg))
                        .map(|&(id, _)| id)
                        .collect();
                    ids.sort();
                    if !ids.is_empty() {
                        expected[s].push((msg.id.clone(), ids));
                    }
                }
                tx.send(msg).expect("engine reads");
                pushed += 1;
                // Rule changes after this point must not apply to this message: wait until
                // the engine has matched it.
                let start = Instant::now();
                while engine.stats().processed < pushed {
                    assert!(start.elapsed() < Duration::from_secs(10), "engine stalled");
                    std::thread::yield_now();
                }
            }
        }
    }
    drop(tx);
    let finished = engine.shutdown();
    assert_eq!(finished.stats.received, pushed);
    for (s, rx) in receivers.iter().enumerate() {
        let mut got: Vec<(String, Vec<RuleId>)> = Vec::new();
        let mut disconnects = 0;
        for d in rx.try_iter() {
            match d {
                Delivery::Match { message, matching_rules } => {
                    assert_eq!(disconnects, 0, "nothing follows a disconnect");
                    got.push((message.id.clone(), matching_rules.iter().map(|m| m.id).collect()));
                }
                Delivery::Disconnect { .. } => disconnects += 1,
                other => panic!("subscriber s{s} got an unexpected delivery {other:?}"),
            }
        }
        assert_eq!(got, expected[s], "subscriber s{s}");
        assert_eq!(disconnects, 1, "subscriber s{s} gets one disconnect");
    }
});
