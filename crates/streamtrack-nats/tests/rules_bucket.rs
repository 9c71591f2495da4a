//! Rules shared through a KV bucket, against a real `nats-server -js` (skipped with a message
//! when the binary is missing outside CI).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use streamtrack::Registry;
use streamtrack_nats::server::NatsServer;
use streamtrack_nats::{Nats, RuleNames, RulesEvent, RulesFollower, RulesWatcher};

fn instance(
    url: &str,
    bucket: &str,
    errors: &str,
) -> (Nats, Registry, RulesFollower, Arc<Mutex<Vec<RulesEvent>>>) {
    let nats = Nats::connect(url).unwrap();
    let store = nats.ensure_bucket(bucket).unwrap();
    let registry = Registry::new();
    let w = RulesWatcher::catch_up(
        &nats,
        store,
        registry.clone(),
        RuleNames::default(),
        errors,
        Duration::from_secs(10),
    )
    .unwrap();
    let events = Arc::new(Mutex::new(w.events().to_vec()));
    let ev = events.clone();
    let f = w.follow(|_| true, move |e| ev.lock().unwrap().push(e.clone()));
    (nats, registry, f, events)
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
}

fn rule_text(registry: &Registry, subscriber: &str) -> Vec<String> {
    let mut v: Vec<String> =
        registry.rules_of(subscriber).iter().map(|r| r.rule.to_string()).collect();
    v.sort();
    v
}

#[test]
fn rules_added_through_the_bucket_reach_every_instance() {
    let Some(server) =
        NatsServer::start_or_skip("rules_added_through_the_bucket_reach_every_instance")
    else {
        return;
    };
    let admin = Nats::connect(&server.url()).unwrap();
    let store = admin.ensure_bucket("rules").unwrap();
    // A rule written before the instances start is applied while they catch up.
    admin.block_on(store.put("r0", r#"{"value":"love","subscriber":"s0"}"#.into())).unwrap();
    let instances: Vec<_> = (0..3).map(|_| instance(&server.url(), "rules", "errs")).collect();
    for (_, reg, f, _) in &instances {
        assert_eq!(f.revision(), 1);
        assert_eq!(rule_text(reg, "s0"), ["love"]);
    }
    // Propagation: put returned -> applied on all three instances.
    let n = 300;
    let mut samples = Vec::with_capacity(n);
    for i in 1..=n {
        let value = format!(r#"{{"value":"word{i}","subscriber":"s{}"}}"#, i % 7);
        let rev = admin.block_on(store.put(format!("r{i}"), value.into())).unwrap();
        let t0 = Instant::now();
        wait_for("propagation", || instances.iter().all(|(_, _, f, _)| f.revision() >= rev));
        samples.push(t0.elapsed());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    eprintln!(
        "rule propagation over {n} puts (put returned -> applied on 3 instances): p50 {:?}, p99 {:?}, max {:?}",
        p(0.5),
        p(0.99),
        samples[samples.len() - 1]
    );
    for (_, reg, f, _) in &instances {
        assert_eq!(reg.len(), n + 1);
        assert_eq!(f.rules(), (n + 1) as u64);
        assert_eq!(rule_text(reg, "s3"), {
            let mut v: Vec<String> =
                (1..=n).filter(|i| i % 7 == 3).map(|i| format!("word{i}")).collect();
            v.sort();
            v
        });
    }
    // Deletes and updates apply in revision order too.
    for i in 1..=n / 2 {
        admin.block_on(store.delete(format!("r{i}"))).unwrap();
    }
    let rev = admin
        .block_on(store.put("r0", r#"{"value":"hate","subscriber":"s0","tag":"t"}"#.into()))
        .unwrap();
    wait_for("deletes", || instances.iter().all(|(_, _, f, _)| f.revision() >= rev));
    for (_, reg, _, _) in &instances {
        assert_eq!(reg.len(), n - n / 2 + 1);
        assert_eq!(rule_text(reg, "s0"), {
            let mut v: Vec<String> =
                (n / 2 + 1..=n).filter(|i| i % 7 == 0).map(|i| format!("word{i}")).collect();
            v.push("hate".into());
            v.sort();
            v
        });
        let r0 = reg.rules_of("s0").into_iter().find(|r| r.rule.to_string() == "hate").unwrap();
        assert_eq!(r0.tag.as_deref(), Some("t"));
    }
    // A subscriber change moves the rule.
    let rev =
        admin.block_on(store.put("r0", r#"{"value":"hate","subscriber":"zed"}"#.into())).unwrap();
    wait_for("move", || instances.iter().all(|(_, _, f, _)| f.revision() >= rev));
    for (_, reg, _, _) in &instances {
        assert_eq!(rule_text(reg, "zed"), ["hate"]);
        assert!(!rule_text(reg, "s0").contains(&"hate".to_string()));
    }
}

#[test]
fn an_invalid_rule_is_reported_and_skipped_and_the_previous_version_stays() {
    let Some(server) = NatsServer::start_or_skip("an_invalid_rule_is_reported_and_skipped") else {
        return;
    };
    let admin = Nats::connect(&server.url()).unwrap();
    let store = admin.ensure_bucket("rules").unwrap();
    let errors = admin.block_on(admin.client().subscribe("rule.errors")).unwrap();
    admin.block_on(admin.client().flush()).unwrap();
    // Invalid before the instance starts: reported while catching up.
    admin.block_on(store.put("early", "not json".into())).unwrap();
    let (_n, reg, f, events) = instance(&server.url(), "rules", "rule.errors");
    assert_eq!(f.revision(), 1);
    assert_eq!(f.rejected(), 1);
    let r1 =
        admin.block_on(store.put("r1", r#"{"value":"hate","subscriber":"s1"}"#.into())).unwrap();
    let bad = [
        (r#"{"value":"hate (","subscriber":"s1"}"#, "column 16"),
        (r#"{"value":"hate","dialect":"klingon","subscriber":"s1"}"#, "unknown dialect"),
        (r#"{"id":"other","value":"x"}"#, "does not match the key"),
        (r#"{"value":"x","extra":1}"#, "unknown key"),
    ];
    let mut last = r1;
    for (value, _) in bad {
        last = admin.block_on(store.put("r1", value.into())).unwrap();
    }
    wait_for("the bad versions", || f.revision() >= last);
    assert_eq!(f.rejected(), 1 + bad.len() as u64);
    // The valid version stays in force.
    assert_eq!(rule_text(&reg, "s1"), ["hate"]);
    assert_eq!(reg.len(), 1);
    // A revision is counted once its event has been reported (the follower's contract): the
    // events are all there already, with no further wait.
    let rejected: Vec<_> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            RulesEvent::Rejected { key, reason, .. } => Some((key.clone(), reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(rejected.len(), 1 + bad.len(), "{rejected:?}");
    for ((_, want), (key, reason)) in bad.iter().zip(&rejected[1..]) {
        assert_eq!(key, "r1");
        assert!(reason.contains(want), "{reason:?} lacks {want:?}");
    }
    // Each reason was published to the error subject, with key and revision.
    let got: Vec<serde_json::Value> = admin.block_on(async move {
        use futures::StreamExt;
        let mut errors = errors;
        let mut v = Vec::new();
        while v.len() < 1 + bad.len() {
            match tokio::time::timeout(Duration::from_secs(5), errors.next()).await {
                Ok(Some(m)) => v.push(serde_json::from_slice(&m.payload).unwrap()),
                _ => break,
            }
        }
        v
    });
    assert_eq!(got.len(), 1 + bad.len(), "{got:?}");
    assert_eq!(got[0]["key"], "early");
    assert_eq!(got[1]["key"], "r1");
    assert_eq!(got[1]["bucket"], "rules");
    assert!(got[1]["error"].as_str().unwrap().contains("column 16"), "{got:?}");
    // A valid update after the bad ones applies.
    let rev =
        admin.block_on(store.put("r1", r#"{"value":"love","subscriber":"s1"}"#.into())).unwrap();
    wait_for("the fix", || f.revision() >= rev);
    assert_eq!(rule_text(&reg, "s1"), ["love"]);
}

#[test]
fn a_new_subscriber_is_announced_before_its_first_rule_and_a_refusal_keeps_the_rule_out() {
    let Some(server) =
        NatsServer::start_or_skip("a_new_subscriber_is_announced_before_its_first_rule")
    else {
        return;
    };
    let nats = Nats::connect(&server.url()).unwrap();
    let store = nats.ensure_bucket("rules").unwrap();
    let registry = Registry::new();
    let w = RulesWatcher::catch_up(
        &nats,
        store.clone(),
        registry.clone(),
        RuleNames::default(),
        "errs",
        Duration::from_secs(5),
    )
    .unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let accept = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = {
        let (seen, accept, registry) = (seen.clone(), accept.clone(), registry.clone());
        w.follow(
            move |sub| {
                // Called before the subscriber's first rule is live.
                seen.lock().unwrap().push((sub.to_string(), registry.rules_of(sub).len()));
                accept.load(std::sync::atomic::Ordering::SeqCst)
            },
            |_| {},
        )
    };
    let rev = nats.block_on(store.put("a", r#"{"value":"x","subscriber":"new"}"#.into())).unwrap();
    wait_for("the refused rule", || f.revision() >= rev);
    assert_eq!(f.rejected(), 1);
    assert!(registry.rules_of("new").is_empty());
    accept.store(true, std::sync::atomic::Ordering::SeqCst);
    let rev = nats.block_on(store.put("a", r#"{"value":"x","subscriber":"new"}"#.into())).unwrap();
    wait_for("the accepted rule", || f.revision() >= rev);
    assert_eq!(rule_text(&registry, "new"), ["x"]);
    let rev = nats.block_on(store.put("b", r#"{"value":"y","subscriber":"new"}"#.into())).unwrap();
    wait_for("the second rule", || f.revision() >= rev);
    assert_eq!(*seen.lock().unwrap(), [("new".to_string(), 0), ("new".to_string(), 0)]);
}
