//! The live registry: visibility guarantee, concurrent stress against what each snapshot
//! holds, incremental building against compiling from scratch, bounded memory under churn.

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use streamtrack::matcher::{self, Matcher};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::registry::{NewRule, Registry, RegistryError, RuleId, Scratch};
use streamtrack::{Message, Rule};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

fn rule(t: &str) -> Rule {
    Rule::parse(t).unwrap()
}

fn found(registry: &Registry, msg: &Message) -> Vec<RuleId> {
    registry.snapshot().find(msg, &mut Scratch::new()).iter().map(|r| r.id).collect()
}

#[test]
fn subscribe_and_unsubscribe_apply_to_the_next_message() {
    let registry = Registry::builder().background_merges(false).build();
    let msg = Message::new("1", "the product launch of acme");
    assert!(found(&registry, &msg).is_empty());
    let a = registry.subscribe("alice", rule("acme"), Some("brand".into())).unwrap();
    assert_eq!(found(&registry, &msg), [a]);
    let b = registry.subscribe("bob", rule("\"product launch\" -job"), None).unwrap();
    assert_eq!(found(&registry, &msg), [a, b]);
    registry.unsubscribe(a).unwrap();
    assert_eq!(found(&registry, &msg), [b]);
    // A snapshot taken before a change keeps the rules it holds.
    let before = registry.snapshot();
    registry.replace(b, rule("zebra"), None).unwrap();
    assert_eq!(
        before.find(&msg, &mut Scratch::new()).iter().map(|r| r.id).collect::<Vec<_>>(),
        [b]
    );
    assert!(found(&registry, &msg).is_empty());
    assert_eq!(registry.get(b).unwrap().rule, rule("zebra"));
    assert!(registry.snapshot().version() > before.version());
}

#[test]
fn registry_api_errors_duplicates_and_limits() {
    let registry = Registry::builder().max_rules_per_subscriber(2).max_rules(3).build();
    let a = registry.subscribe("alice", rule("Apple"), None).unwrap();
    assert_eq!(
        registry.subscribe("alice", rule("apple"), None),
        Err(RegistryError::Duplicate { existing: a }),
        "the same rule for one subscriber is reported, not doubled"
    );
    assert!(
        registry.subscribe("bob", rule("apple"), None).is_ok(),
        "another subscriber may have it"
    );
    registry.subscribe("alice", rule("pear"), None).unwrap();
    assert!(matches!(
        registry.subscribe("alice", rule("plum"), None),
        Err(RegistryError::TooManyRulesForSubscriber { limit: 2, .. })
    ));
    assert!(matches!(
        registry.subscribe("carol", rule("fig"), None),
        Err(RegistryError::TooManyRules { limit: 3 })
    ));
    assert_eq!(
        registry.unsubscribe(RuleId::from_u64(999)),
        Err(RegistryError::UnknownRule(RuleId::from_u64(999)))
    );
    assert_eq!(registry.rules_of("alice").len(), 2);
    assert_eq!(registry.remove_subscriber("alice"), 2);
    assert!(registry.rules_of("alice").is_empty());
    assert_eq!(registry.len(), 1);
    let results = registry.subscribe_all(vec![
        NewRule { subscriber: "dan".into(), rule: rule("kiwi"), tag: None },
        NewRule { subscriber: "dan".into(), rule: rule("kiwi"), tag: None },
    ]);
    assert!(results[0].is_ok());
    assert!(matches!(results[1], Err(RegistryError::Duplicate { .. })));
    let e = RegistryError::TooManyRules { limit: 3 };
    assert!(e.to_string().contains("3"));
}

#[test]
fn a_rule_subscribed_in_another_thread_applies_once_subscribe_returned() {
    let registry = Registry::new();
    let msg = Message::new("1", "breaking news about zanzibar");
    for round in 0..200 {
        let (tx, rx) = crossbeam_channel::bounded::<RuleId>(0);
        let r = registry.clone();
        let writer = std::thread::spawn(move || {
            let id = r
                .subscribe("w", rule(&format!("zanzibar \"about zanzibar\" -r{round}")), None)
                .unwrap();
            tx.send(id).unwrap();
            let _ = tx.send(id);
            r.unsubscribe(id).unwrap();
        });
        let id = rx.recv().unwrap();
        // subscribe returned: this message must see the rule.
        assert!(found(&registry, &msg).contains(&id), "round {round}");
        rx.recv().unwrap();
        writer.join().unwrap();
        assert!(!found(&registry, &msg).contains(&id), "unsubscribe returned: round {round}");
    }
}

/// Several writers subscribe and unsubscribe while several matchers match a recorded stream.
/// Every result is checked against the snapshot's own rules (no missed, no extra delivery),
/// and every snapshot against the operations that had returned before it was taken.
#[test]
fn concurrent_writers_and_matchers_agree_with_what_the_registry_held() {
    let registry = Registry::builder().delta_max(8).max_layers(3).tombstones_max(16).build();
    let messages = WorkloadConfig::default().count(300).messages();
    let pool: Vec<Rule> =
        RuleSetConfig::default().rules(400).iter().map(|g| g.parse().unwrap()).collect();
    // Event log: a global counter ticks after each operation returns.
    let clock = Arc::new(AtomicU64::new(0));
    #[derive(Clone, Copy, Default)]
    struct Life {
        added: u64,
        removing_from: u64,
        removed: u64,
    }
    let lives: Arc<Mutex<HashMap<RuleId, Life>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (registry, clock, lives, pool) =
            (registry.clone(), clock.clone(), lives.clone(), pool.clone());
        writers.push(std::thread::spawn(move || {
            let mut mine = Vec::new();
            for i in 0..300 {
                let r = pool[(w * 131 + i * 7) % pool.len()].clone();
                if let Ok(id) = registry.subscribe(&format!("writer{w}"), r, None) {
                    let t = clock.fetch_add(1, Ordering::SeqCst) + 1;
                    lives
                        .lock()
                        .unwrap()
                        .insert(id, Life { added: t, removing_from: u64::MAX, removed: u64::MAX });
                    mine.push(id);
                }
                if i % 3 == 2 && !mine.is_empty() {
                    let id = mine.remove((i * 5) % mine.len());
                    let start = clock.fetch_add(1, Ordering::SeqCst) + 1;
                    lives.lock().unwrap().get_mut(&id).unwrap().removing_from = start;
                    registry.unsubscribe(id).unwrap();
                    let t = clock.fetch_add(1, Ordering::SeqCst) + 1;
                    lives.lock().unwrap().get_mut(&id).unwrap().removed = t;
                }
            }
        }));
    }
    let mut matchers = Vec::new();
    for m in 0..2 {
        let (registry, clock, lives, stop, messages) =
            (registry.clone(), clock.clone(), lives.clone(), stop.clone(), messages.clone());
        matchers.push(std::thread::spawn(move || {
            let mut scratch = Scratch::new();
            let mut checked = 0usize;
            let mut i = m;
            while !stop.load(Ordering::SeqCst) || checked < 50 {
                let before = clock.load(Ordering::SeqCst);
                let snap = registry.snapshot();
                let after = clock.load(Ordering::SeqCst);
                let held = snap.rules();
                let held_ids: std::collections::HashSet<RuleId> =
                    held.iter().map(|r| r.id).collect();
                {
                    let lives = lives.lock().unwrap();
                    for (id, life) in lives.iter() {
                        if life.added <= before && life.removing_from > after {
                            assert!(
                                held_ids.contains(id),
                                "rule {id} subscribed before the snapshot is missing"
                            );
                        }
                        if life.removed <= before {
                            assert!(
                                !held_ids.contains(id),
                                "rule {id} unsubscribed before the snapshot is present"
                            );
                        }
                    }
                }
                let msg = &messages[i % messages.len()];
                let got: Vec<RuleId> = snap.find(msg, &mut scratch).iter().map(|r| r.id).collect();
                let reference =
                    ReferenceMatcher::new(held.iter().map(|r| r.rule.clone()).collect());
                let want: Vec<RuleId> =
                    reference.matching(msg).into_iter().map(|k| held[k].id).collect();
                assert_eq!(got, want, "message {i}");
                checked += 1;
                i += 2;
            }
            checked
        }));
    }
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    let checked: usize = matchers.into_iter().map(|m| m.join().unwrap()).sum();
    assert!(checked >= 100);
    // At rest, the registry holds exactly the rules added and not removed.
    let lives = lives.lock().unwrap();
    let live: std::collections::HashSet<RuleId> =
        lives.iter().filter(|(_, l)| l.removed == u64::MAX).map(|(id, _)| *id).collect();
    let held: std::collections::HashSet<RuleId> =
        registry.snapshot().rules().iter().map(|r| r.id).collect();
    assert_eq!(held, live);
}

fn cases() -> u32 {
    std::env::var("STREAMTRACK_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// A registry built by random adds and removes (through deltas, layers, tombstones and
    /// merges) matches exactly like a matcher compiled from scratch with the surviving rules.
    #[test]
    fn incremental_registry_equals_matcher_from_scratch(
        ops in prop::collection::vec((0usize..60, any::<bool>()), 1..150),
        delta in 1usize..6,
        layers in 2usize..4,
        background in any::<bool>(),
    ) {
        let pool: Vec<Rule> = RuleSetConfig::default().rules(60).iter().map(|g| g.parse().unwrap()).collect();
        let messages = WorkloadConfig::default().count(60).messages();
        let registry = Registry::builder()
            .delta_max(delta)
            .max_layers(layers)
            .tombstones_max(4)
            .background_merges(background)
            .build();
        let mut live: Vec<(RuleId, usize)> = Vec::new();
        for (k, add) in ops {
            if add || live.is_empty() {
                if let Ok(id) = registry.subscribe("s", pool[k].clone(), None) {
                    live.push((id, k));
                }
            } else {
                let (id, _) = live.remove(k % live.len());
                registry.unsubscribe(id).unwrap();
            }
        }
        let compiled = Matcher::new(live.iter().map(|&(_, k)| &pool[k]));
        let snap = registry.snapshot();
        let mut a = Scratch::new();
        let mut b = matcher::Scratch::new();
        let mut borrowed = Vec::new();
        for m in &messages {
            let got: Vec<RuleId> = snap.find(m, &mut a).iter().map(|r| r.id).collect();
            let mut want: Vec<RuleId> = compiled.find(m, &mut b).iter().map(|&i| live[i as usize].0).collect();
            want.sort();
            prop_assert_eq!(&got, &want);
            // The borrowing variant the engine uses: same rules, same order.
            snap.find_into(m, &mut a, &mut borrowed);
            prop_assert_eq!(borrowed.iter().map(|r| r.id).collect::<Vec<_>>(), want);
        }
    }
}

#[test]
fn memory_stays_bounded_under_add_remove_churn() {
    let registry = Registry::builder().background_merges(false).build();
    let base: Vec<NewRule> = RuleSetConfig::default()
        .rules(2_000)
        .iter()
        .map(|g| NewRule { subscriber: "base".into(), rule: g.parse().unwrap(), tag: None })
        .collect();
    let added = registry.subscribe_all(base).iter().filter(|r| r.is_ok()).count();
    registry.compact();
    let before = registry.heap_bytes();
    let churn: Vec<Rule> =
        RuleSetConfig::default().seed(7).rules(100).iter().map(|g| g.parse().unwrap()).collect();
    for i in 0..20_000 {
        let id = registry.subscribe("churn", churn[i % churn.len()].clone(), None).unwrap();
        registry.unsubscribe(id).unwrap();
    }
    let after = registry.heap_bytes();
    assert!(
        (after as f64) <= before as f64 * 1.10,
        "heap grew from {before} to {after} bytes over 20,000 add+remove cycles"
    );
    assert_eq!(registry.len(), added);
}
