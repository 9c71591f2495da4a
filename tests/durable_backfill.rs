//! Backfill at the boundary: messages arriving while the subscription is made are delivered
//! once, either as backfill or live, never both and never neither.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use streamtrack::backfill::Recorder;
use streamtrack::dry_run::RecentMessages;
use streamtrack::registry::{Registry, Scratch};
use streamtrack::{Message, Rule};

/// Ingests `n` messages (all matching `rust`) on one thread while the main thread subscribes
/// with backfill once `at` have been admitted; returns the backfilled and the live indices.
fn run(n: usize, at: usize, capacity: usize) -> (Vec<usize>, Vec<usize>) {
    let rec = Arc::new(Recorder::new(Registry::new(), RecentMessages::new(capacity, None)));
    let admitted = Arc::new(AtomicUsize::new(0));
    let ingest = {
        let (rec, admitted) = (rec.clone(), admitted.clone());
        std::thread::spawn(move || {
            let mut scratch = Scratch::new();
            let mut live = Vec::new();
            for i in 0..n {
                let msg = Arc::new(Message::new(i.to_string(), format!("rust {i}")));
                let snapshot = rec.admit(msg.clone());
                admitted.fetch_add(1, Ordering::Release);
                if !snapshot.find(&msg, &mut scratch).is_empty() {
                    live.push(i);
                }
            }
            live
        })
    };
    while admitted.load(Ordering::Acquire) < at {
        std::hint::spin_loop();
    }
    let (_, backfill) = rec
        .subscribe_with_backfill("alice", Rule::parse("rust").unwrap(), None, Duration::MAX)
        .unwrap();
    let live = ingest.join().unwrap();
    (backfill.iter().map(|m| m.id.parse().unwrap()).collect(), live)
}

#[test]
fn backfill_then_live_has_no_gap_and_no_duplicate() {
    for round in 0..20 {
        let n = 20_000;
        let (backfill, live) = run(n, 2_000 + round * 500, n);
        // Backfill: every message before the boundary, oldest first; live: every one after.
        let k = backfill.len();
        assert!(k >= 2_000 + round * 500, "round {round}: {k}");
        assert_eq!(backfill, (0..k).collect::<Vec<_>>(), "round {round}");
        assert_eq!(live, (k..n).collect::<Vec<_>>(), "round {round}");
    }
}

#[test]
fn backfill_from_a_bounded_ring_ends_where_live_begins() {
    let (n, cap) = (20_000, 1_000);
    let (backfill, live) = run(n, 5_000, cap);
    // On a busy machine the ingesting thread may finish before the subscription: then
    // nothing is live and the backfill is the ring's last `cap`.
    let first_live = live.first().copied().unwrap_or(n);
    assert_eq!(backfill.len(), cap);
    assert_eq!(backfill, (first_live - cap..first_live).collect::<Vec<_>>());
    assert_eq!(live, (first_live..n).collect::<Vec<_>>());
}

#[test]
fn backfill_window_and_rule_select_what_is_sent() {
    let rec = Recorder::new(Registry::new(), RecentMessages::new(100, None));
    for (i, t) in ["rust a", "go b", "rust c"].iter().enumerate() {
        rec.admit(Arc::new(Message::new(i.to_string(), *t)));
    }
    let (_, b) = rec
        .subscribe_with_backfill("bob", Rule::parse("rust").unwrap(), None, Duration::MAX)
        .unwrap();
    let ids: Vec<&str> = b.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["0", "2"]);
    std::thread::sleep(Duration::from_millis(20));
    let (_, b) = rec
        .subscribe_with_backfill(
            "carol",
            Rule::parse("rust").unwrap(),
            None,
            Duration::from_millis(1),
        )
        .unwrap();
    assert!(b.is_empty(), "older than the window");
}
