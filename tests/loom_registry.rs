//! Model checks of the registry's publication protocol with `loom`:
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom_registry`.
//!
//! Loom runs each model under every interleaving of the registry's synchronisation (the
//! writer mutex and the publication cell) and checks the visibility guarantee in each.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use streamtrack::registry::{Registry, Scratch};
use streamtrack::{Message, Rule};

fn registry() -> Registry {
    Registry::builder().background_merges(false).delta_max(2).max_layers(2).build()
}

fn sees(registry: &Registry, word: &str) -> bool {
    let msg = Message::new("1", word);
    !registry.snapshot().find(&msg, &mut Scratch::new()).is_empty()
}

#[test]
fn a_returned_subscribe_is_visible_to_a_later_snapshot() {
    loom::model(|| {
        let r = registry();
        let done = Arc::new(AtomicBool::new(false));
        let (r2, done2) = (r.clone(), done.clone());
        let writer = thread::spawn(move || {
            r2.subscribe("a", Rule::parse("alpha").unwrap(), None).unwrap();
            done2.store(true, Ordering::Release);
        });
        if done.load(Ordering::Acquire) {
            assert!(sees(&r, "alpha"), "subscribe returned but the snapshot lacks the rule");
        }
        writer.join().unwrap();
        assert!(sees(&r, "alpha"));
    });
}

#[test]
fn a_returned_unsubscribe_is_visible_to_a_later_snapshot() {
    loom::model(|| {
        let r = registry();
        let id = r.subscribe("a", Rule::parse("alpha").unwrap(), None).unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let (r2, done2) = (r.clone(), done.clone());
        let writer = thread::spawn(move || {
            r2.unsubscribe(id).unwrap();
            done2.store(true, Ordering::Release);
        });
        if done.load(Ordering::Acquire) {
            assert!(!sees(&r, "alpha"), "unsubscribe returned but the snapshot has the rule");
        }
        writer.join().unwrap();
        assert!(!sees(&r, "alpha"));
    });
}

#[test]
fn concurrent_writers_lose_no_update_and_versions_grow() {
    loom::model(|| {
        let r = registry();
        let first = r.subscribe("a", Rule::parse("alpha").unwrap(), None).unwrap();
        let before = r.snapshot().version();
        let r2 = r.clone();
        let w1 = thread::spawn(move || {
            r2.subscribe("b", Rule::parse("beta").unwrap(), None).unwrap();
        });
        let r3 = r.clone();
        let w2 = thread::spawn(move || {
            r3.unsubscribe(first).unwrap();
            r3.subscribe("c", Rule::parse("gamma").unwrap(), None).unwrap();
        });
        let mid = r.snapshot().version();
        assert!(mid >= before);
        w1.join().unwrap();
        w2.join().unwrap();
        assert!(!sees(&r, "alpha"));
        assert!(sees(&r, "beta"));
        assert!(sees(&r, "gamma"));
        assert_eq!(r.snapshot().version(), before + 3);
    });
}
