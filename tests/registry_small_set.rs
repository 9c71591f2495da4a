//! The small-set prefilter in the live registry (`src/registry/prefilter.rs`) never drops a
//! match: registries with the prefilter forced on and off, fed rules one by one (so that
//! several frozen layers, a delta, tombstones and merges occur) and losing some, agree with
//! the reference matcher on the differential generators' rules and messages and on the rules
//! and messages that hide behind normalisation (`tests/common/hostile.rs`); snapshots taken
//! while rules come and go match exactly the rules they hold; and the engine uses it.
//!
//! `STREAMTRACK_PROPTEST_CASES` raises the number of cases for a long local run.

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use streamtrack::engine::{channel_sink, Delivery, Engine, IterSource};
use streamtrack::matcher::Matcher;
use streamtrack::reference::ReferenceMatcher;
use streamtrack::registry::{NewRule, Registry, RuleId, Scratch, Snapshot};
use streamtrack::{Message, Rule};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[path = "common/differential.rs"]
mod differential;
use differential::{any_rule, config};
#[path = "common/hostile.rs"]
mod hostile;
use hostile::{hostile_message, rule_words_rule};

/// A registry that freezes every 3 rules, merges above 4 layers or 5 tombstones, in the
/// writing thread (deterministic).
fn registry(prefilter: bool) -> Registry {
    Registry::builder()
        .delta_max(3)
        .max_layers(4)
        .tombstones_max(5)
        .background_merges(false)
        .small_set_prefilter(prefilter)
        .build()
}

/// The ids of the rules of `snapshot` matching `msg`, and those the reference matcher finds
/// among the rules the snapshot holds.
fn found_and_wanted(snapshot: &Snapshot, msg: &Message, scratch: &mut Scratch) -> [Vec<RuleId>; 2] {
    let held = snapshot.rules();
    let reference = ReferenceMatcher::new(held.iter().map(|i| i.rule.clone()).collect());
    let want = reference.matching(msg).into_iter().map(|k| held[k].id).collect();
    let mut out = Vec::new();
    snapshot.find_into(msg, scratch, &mut out);
    [out.iter().map(|i| i.id).collect(), want]
}

/// Adds `base` rules of words no message holds in one layer, then `rules` one by one, to a
/// registry with the prefilter on and one with it off, removes every third rule added so
/// far (round robin) and replaces every fifth by another of `rules`, and after each write checks a message on both registries' snapshots
/// and on the snapshot taken before the write; at the end, every message. Returns how many
/// checks matched some rule. (With a base of 30, some writes freeze the delta and merge the
/// two newest layers: the layers change, their number does not.)
fn check(rules: &[Rule], messages: &[Message], base: usize) -> Result<usize, TestCaseError> {
    let (on, off) = (registry(true), registry(false));
    for r in [&on, &off] {
        r.subscribe_all((0..base).map(|k| NewRule {
            subscriber: "base".into(),
            rule: Rule::parse(&format!("zq{k}")).unwrap(),
            tag: None,
        }));
    }
    let (mut s_on, mut s_off) = (Scratch::new(), Scratch::new());
    let mut live: Vec<(RuleId, RuleId)> = Vec::new();
    let mut matched = 0;
    let mut before = on.snapshot();
    let check_one = |snap: &Snapshot, m: &Message, scratch: &mut Scratch, keyed: bool| {
        prop_assert_eq!(snap.small_set_keys().is_some(), keyed);
        let [got, want] = found_and_wanted(snap, m, scratch);
        prop_assert_eq!(
            &got,
            &want,
            "prefilter {:?}, message {:?}\nrules:\n{}",
            snap.small_set_keys(),
            m,
            snap.rules().iter().map(|r| format!("  {}", r.rule)).collect::<Vec<_>>().join("\n")
        );
        Ok(usize::from(!got.is_empty()))
    };
    for (i, rule) in rules.iter().enumerate() {
        let subscriber = format!("s{i}");
        let a = on.subscribe(&subscriber, rule.clone(), None);
        let b = off.subscribe(&subscriber, rule.clone(), None);
        prop_assert_eq!(a.is_ok(), b.is_ok());
        if let (Ok(a), Ok(b)) = (a, b) {
            live.push((a, b));
        }
        if i % 3 == 2 && !live.is_empty() {
            let (a, b) = live.remove((i * 7) % live.len());
            on.unsubscribe(a).expect("live");
            off.unsubscribe(b).expect("live");
        }
        if i % 5 == 4 && !live.is_empty() {
            // A replacement keeps the id with another rule (and new keys).
            let (a, b) = live[(i * 3) % live.len()];
            let other = &rules[(i * 11 + 1) % rules.len()];
            let (x, y) = (on.replace(a, other.clone(), None), off.replace(b, other.clone(), None));
            prop_assert_eq!(x.is_ok(), y.is_ok());
        }
        let m = &messages[i % messages.len()];
        // The snapshot taken before this write still matches what it held.
        matched += check_one(&before, m, &mut s_on, true)?;
        before = on.snapshot();
        matched += check_one(&before, m, &mut s_on, true)?;
        check_one(&off.snapshot(), m, &mut s_off, false)?;
        // The text of every rule held, as a post: it holds the rule's keys, in whichever
        // segment the rule now is (a stale prefilter of the frozen layers or of the delta, or
        // a freeze that lost a segment's keys, shows here).
        for r in before.rules().iter().filter(|r| &*r.subscriber != "base") {
            let own = Message::new("own", r.rule.to_string());
            matched += check_one(&before, &own, &mut s_on, true)?;
        }
    }
    let (layers, _) = on.layer_stats();
    prop_assert!(rules.len() < 7 || layers >= 1, "{} rules, {} layers", rules.len(), layers);
    for m in messages {
        matched += check_one(&on.snapshot(), m, &mut s_on, true)?;
        check_one(&off.snapshot(), m, &mut s_off, false)?;
    }
    Ok(matched)
}

/// Whether the matcher can key `rule` (else the prefilter is off for any set holding it).
fn keyable(rule: &Rule) -> bool {
    Matcher::builder().small_set_prefilter(true).build([rule]).small_set_keys().is_some()
}

proptest! {
    #![proptest_config(config())]

    /// Rules and messages of every shape (the differential tests' generators), the rules
    /// that disable the prefilter left out so that it runs.
    #[test]
    fn registry_prefilter_keeps_every_match_of_every_rule_shape(
        rules in prop::collection::vec(any_rule(), 1..24),
        messages in prop::collection::vec(differential::message(), 1..8),
    ) {
        let rules: Vec<Rule> = rules.into_iter().flatten().filter(keyable).collect();
        prop_assume!(!rules.is_empty());
        check(&rules, &messages, 0)?;
        check(&rules, &messages, 30)?;
    }

    /// Rule words whose raw forms a byte-level prefilter could miss (`STRAßE`,
    /// `b\u{200b}omb`, URL prefixes between phrase words), against messages full of them.
    #[test]
    fn registry_prefilter_keeps_matches_hidden_behind_normalisation(
        rules in prop::collection::vec(rule_words_rule(), 1..16),
        messages in prop::collection::vec(hostile_message(), 1..12),
    ) {
        let rules: Vec<Rule> = rules.into_iter().flatten().collect();
        prop_assume!(!rules.is_empty());
        check(&rules, &messages, 0)?;
        check(&rules, &messages, 30)?;
    }
}

/// Hostile pieces against each rule word alone, the rule added last (in the delta) and
/// first (in a frozen layer, behind other rules' keys): a post passing only because of
/// another segment's key would hide a key this one missed.
#[test]
fn each_hostile_rule_alone_in_the_delta_and_in_a_frozen_layer() {
    let messages: Vec<Message> = hostile::MESSAGE_PIECES
        .iter()
        .enumerate()
        .flat_map(|(i, p)| {
            ["{}", "x {} y", "{}{}"].map(|c| Message::new(i.to_string(), c.replace("{}", p)))
        })
        .collect();
    let mut matched = 0;
    for word in hostile::RULE_WORDS {
        let rule = Rule::parse(word).expect("valid");
        let filler: Vec<Rule> = (0..4).map(|k| Rule::parse(&format!("zq{k}")).unwrap()).collect();
        // Alone in the delta; then frozen under three filler rules and a delta of one.
        matched += check(std::slice::from_ref(&rule), &messages, 0).expect("agree");
        let mut rules = vec![rule];
        rules.extend(filler);
        matched += check(&rules, &messages, 0).expect("agree");
    }
    assert!(matched > 100, "the pieces should match some rules: {matched}");
}

/// The prefilter is on while every segment can be keyed and the keys are few: a
/// `contains:`-only rule turns it off until it is gone from every segment (from the delta
/// at once, from a frozen layer with the merge that drops its tombstone); a geo rule keeps
/// it on and lets geotagged posts through.
#[test]
fn the_prefilter_follows_the_segments() {
    let r = Registry::builder().delta_max(2).background_merges(false).build();
    let snap = |r: &Registry| r.snapshot().small_set_keys();
    assert_eq!(snap(&r), Some(0), "no rule: nothing can match");
    assert!(r.snapshot().find(&Message::new("1", "apple"), &mut Scratch::new()).is_empty());
    let apple = r.subscribe("a", Rule::parse("apple").unwrap(), None).unwrap();
    assert_eq!(snap(&r), Some(1));
    let pp = r.subscribe("a", Rule::parse("contains:pp").unwrap(), None).unwrap();
    assert_eq!(snap(&r), None, "an unkeyable rule in the frozen layer");
    r.unsubscribe(pp).unwrap();
    assert_eq!(snap(&r), None, "its tombstone still hides it in the layer");
    r.compact();
    assert_eq!(snap(&r), Some(1));
    let pp = r.subscribe("a", Rule::parse("contains:pp").unwrap(), None).unwrap();
    assert_eq!(snap(&r), None, "an unkeyable rule in the delta");
    r.unsubscribe(pp).unwrap();
    assert_eq!(snap(&r), Some(1), "gone from the delta at once");
    // A rule replaced in the delta (same id, another rule) is keyed by its new keys.
    let kiwi = r.subscribe("a", Rule::parse("kiwi").unwrap(), None).unwrap();
    r.replace(kiwi, Rule::parse("plum").unwrap(), None).unwrap();
    let found = r.snapshot().find(&Message::new("1", "a plum"), &mut Scratch::new()).to_vec();
    assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), [kiwi]);
    r.unsubscribe(kiwi).unwrap();
    r.subscribe("a", Rule::parse("bounding_box:[-10 40 10 50]").unwrap(), None).unwrap();
    let s = r.snapshot();
    assert_eq!(s.small_set_keys(), Some(1), "a geo rule needs coordinates, not a key");
    let mut scratch = Scratch::new();
    assert!(s.find(&Message::new("1", "pear"), &mut scratch).is_empty());
    let geo = Message::new("2", "pear").with_coordinates(1.0, 45.0);
    assert_eq!(s.find(&geo, &mut scratch).len(), 1);
    let found: Vec<RuleId> =
        s.find(&Message::new("3", "APPLE!"), &mut scratch).iter().map(|i| i.id).collect();
    assert_eq!(found, [apple]);
    // Forced off: never.
    let off = Registry::builder().small_set_prefilter(false).build();
    off.subscribe("a", Rule::parse("apple").unwrap(), None).unwrap();
    assert_eq!(snap(&off), None);
}

/// The default threshold counts the keys of every segment: 20,000 in all keep the
/// prefilter, one more (in the delta) turns it off; forced on, it stays.
#[test]
fn the_default_threshold_counts_every_segment() {
    let words = |from: usize, to: usize| -> Vec<NewRule> {
        (from..to)
            .map(|i| NewRule {
                subscriber: "a".into(),
                rule: Rule::parse(&format!("w{i}")).unwrap(),
                tag: None,
            })
            .collect()
    };
    for forced in [false, true] {
        let r = if forced {
            Registry::builder().small_set_prefilter(true).build()
        } else {
            Registry::new()
        };
        r.subscribe_all(words(0, 10_000));
        r.subscribe_all(words(10_000, 19_999));
        r.subscribe("a", Rule::parse("w19999").unwrap(), None).unwrap();
        assert_eq!(r.layer_stats().0, 2);
        assert_eq!(r.snapshot().small_set_keys(), Some(20_000));
        r.subscribe("a", Rule::parse("w20000").unwrap(), None).unwrap();
        let want = if forced { Some(20_001) } else { None };
        assert_eq!(r.snapshot().small_set_keys(), want, "forced: {forced}");
    }
}

/// Rules of the generated workload (every shape, unkeyable ones included) subscribed and
/// unsubscribed by one thread while another matches: every snapshot the matcher takes
/// finds exactly what the reference finds among the rules it holds.
#[test]
fn snapshots_taken_while_rules_come_and_go_match_what_they_hold() {
    let messages = WorkloadConfig::default().count(300).messages();
    // The workload's rules, and words of the messages (so that some match), interleaved.
    let generated = RuleSetConfig::default().rules(300);
    let words = messages.iter().filter_map(|m| m.text.split_whitespace().nth(1));
    let rules: Vec<Rule> = generated
        .iter()
        .map(|g| g.parse().unwrap())
        .zip(words.map(Rule::parse_track))
        .flat_map(|(g, w)| [Some(g), w.ok()])
        .flatten()
        .collect();
    let keyed: Vec<Rule> = rules.iter().filter(|r| keyable(r)).cloned().collect();
    // An unkeyable rule turns the prefilter off while it is held.
    let mut rules = rules;
    rules.insert(100, Rule::parse("contains:ing").unwrap());
    for (name, rules) in [("keyable", keyed), ("all", rules)] {
        let registry = Registry::builder()
            .delta_max(8)
            .max_layers(3)
            .tombstones_max(10)
            .small_set_prefilter(true)
            .build();
        let done = Arc::new(AtomicBool::new(false));
        let writer = {
            let (registry, done) = (registry.clone(), done.clone());
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                for (i, rule) in rules.into_iter().enumerate() {
                    if let Ok(id) = registry.subscribe(&format!("s{}", i % 9), rule, None) {
                        ids.push(id);
                    }
                    if i % 4 == 3 {
                        registry.unsubscribe(ids.swap_remove(i * 5 % ids.len())).unwrap();
                    }
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        let mut scratch = Scratch::new();
        let mut references: HashMap<u64, (Vec<RuleId>, ReferenceMatcher)> = HashMap::new();
        let (mut snapshots, mut keyed_snapshots, mut matched) = (0, 0, 0);
        let mut k = 0;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let snap = registry.snapshot();
            snapshots += 1;
            keyed_snapshots += usize::from(snap.small_set_keys().is_some());
            let (ids, reference) = references.entry(snap.version()).or_insert_with(|| {
                let held = snap.rules();
                let ids = held.iter().map(|i| i.id).collect();
                (ids, ReferenceMatcher::new(held.iter().map(|i| i.rule.clone()).collect()))
            });
            let mut out = Vec::new();
            for m in messages.iter().cycle().skip(k).take(5) {
                snap.find_into(m, &mut scratch, &mut out);
                let got: Vec<RuleId> = out.iter().map(|i| i.id).collect();
                let want: Vec<RuleId> = reference.matching(m).into_iter().map(|i| ids[i]).collect();
                assert_eq!(got, want, "{name}: snapshot {}, message {m:?}", snap.version());
                matched += usize::from(!got.is_empty());
            }
            k += 5;
            if finished {
                break;
            }
        }
        writer.join().unwrap();
        eprintln!("{name}: {snapshots} snapshots ({keyed_snapshots} with the prefilter), {matched} matched");
        assert!(matched > 0, "{name}");
        if name == "keyable" {
            assert_eq!(keyed_snapshots, snapshots, "every rule keyable: always on");
        }
    }
}

/// The engine matches through the prefilter: a handful of topics tracked, most posts
/// answered by it (`EngineStats::prefiltered`), the deliveries those of the reference.
#[test]
fn the_engine_uses_the_prefilter() {
    let topics = ["nintendo", "\"wii fit\"", "#meme", "straße"];
    let messages = WorkloadConfig::default().count(5_000).messages();
    let mut want: Vec<String> = Vec::new();
    let reference = ReferenceMatcher::new(topics.iter().map(|t| Rule::parse(t).unwrap()).collect());
    for m in &messages {
        if !reference.matching(m).is_empty() {
            want.push(m.id.clone());
        }
    }
    for prefilter in [true, false] {
        let registry = Registry::builder().small_set_prefilter(prefilter).build();
        for t in topics {
            registry.subscribe("fan", Rule::parse(t).unwrap(), None).unwrap();
        }
        assert_eq!(registry.snapshot().small_set_keys().is_some(), prefilter);
        let (sink, rx) = channel_sink(usize::MAX);
        let engine = Engine::builder(registry).matcher_threads(2).attach("fan", sink);
        let finished = engine.start(IterSource::new(messages.clone())).unwrap().join();
        let got: Vec<String> = rx
            .try_iter()
            .filter_map(|d| match d {
                Delivery::Match { .. } => d.message().map(|m| m.id.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(got, want, "prefilter {prefilter}");
        let s = &finished.stats;
        assert_eq!(s.matched, want.len() as u64);
        if prefilter {
            // Every post the prefilter answered is one that matches nothing.
            assert!(s.prefiltered > 0 && s.prefiltered <= s.processed - s.matched, "{s:?}");
        } else {
            assert_eq!(s.prefiltered, 0);
        }
        eprintln!("prefilter {prefilter}: {} of {} posts prefiltered", s.prefiltered, s.processed);
    }
}
