//! Emission in sequence: matcher threads finish units in any order, and each unit's
//! deliveries must reach the subscriber queues in the order the units were read.
//!
//! One thread at a time holds the *emitter's role*. A thread whose unit is the next to emit
//! and finds the role free claims it before matching ([`Sequencer::claim`]) and emits as it
//! goes; a thread that finishes a unit out of turn leaves it in the buffer
//! ([`Sequencer::finish`]), and whoever holds or next takes the role emits it in its turn.
//! Nothing waits: a thread either emits or moves on. The protocol is model-checked with
//! `loom` (`RUSTFLAGS="--cfg loom" cargo test --release --lib engine::sequence`).

use crate::sync::{Mutex, MutexGuard};
use std::collections::BTreeMap;

/// The reorder buffer and the emitter's role; `T` is a finished unit.
#[derive(Debug)]
pub(crate) struct Sequencer<T> {
    state: Mutex<State<T>>,
}

#[derive(Debug)]
struct State<T> {
    /// The sequence number of the next unit to emit.
    next: u64,
    /// Finished units waiting for their turn.
    pending: BTreeMap<u64, T>,
    /// Some thread holds the emitter's role.
    emitting: bool,
}

impl<T> Default for Sequencer<T> {
    fn default() -> Self {
        Sequencer {
            state: Mutex::new(State { next: 0, pending: BTreeMap::new(), emitting: false }),
        }
    }
}

impl<T> Sequencer<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        crate::sync::lock(&self.state)
    }

    /// Takes the emitter's role for unit `seq` if it is the next to emit and the role is
    /// free. The caller then emits unit `seq` itself and must call [`Sequencer::release`].
    pub(crate) fn claim(&self, seq: u64) -> bool {
        let mut s = self.lock();
        if s.emitting || s.next != seq {
            return false;
        }
        s.emitting = true;
        s.next += 1;
        true
    }

    /// Hands over finished unit `seq`. If the role is free, the caller takes it and `emit`
    /// is called with every unit ready in sequence (this one, if it is next); otherwise the
    /// unit waits for the thread holding the role.
    pub(crate) fn finish(&self, seq: u64, unit: T, emit: impl FnMut(T)) {
        let mut s = self.lock();
        s.pending.insert(seq, unit);
        if s.emitting {
            return;
        }
        s.emitting = true;
        Self::emit_ready(self, s, emit);
    }

    /// As the holder of the role: emits every unit ready in sequence, then gives up the role.
    pub(crate) fn release(&self, emit: impl FnMut(T)) {
        let s = self.lock();
        Self::emit_ready(self, s, emit);
    }

    fn emit_ready<'a>(&'a self, mut s: MutexGuard<'a, State<T>>, mut emit: impl FnMut(T)) {
        let mut ready = Vec::new();
        loop {
            while let Some(unit) = {
                let next = s.next;
                s.pending.remove(&next)
            } {
                s.next += 1;
                ready.push(unit);
            }
            if ready.is_empty() {
                s.emitting = false;
                return;
            }
            // Emit outside the lock: others keep finishing units meanwhile.
            drop(s);
            for unit in ready.drain(..) {
                emit(unit);
            }
            s = self.lock();
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn units_finished_out_of_order_are_emitted_in_order() {
        let seq = Sequencer::default();
        let mut out = Vec::new();
        seq.finish(1, 1, |u| out.push(u));
        seq.finish(2, 2, |u| out.push(u));
        assert!(out.is_empty());
        seq.finish(0, 0, |u| out.push(u));
        assert_eq!(out, [0, 1, 2]);
        assert!(seq.claim(3));
        assert!(!seq.claim(4), "the role is taken");
        seq.finish(4, 4, |u| out.push(u));
        out.push(3); // unit 3 emitted directly by the claimant
        seq.release(|u| out.push(u));
        assert_eq!(out, [0, 1, 2, 3, 4]);
        assert!(!seq.claim(4), "unit 4 is done");
        assert!(seq.claim(5));
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::atomic::{AtomicBool, Ordering};
    use loom::sync::Arc;

    /// Threads each own some units (by sequence number), finish them in their own order,
    /// claiming the role first when they can; every unit must be emitted exactly once, in
    /// sequence order, and never by two threads at once.
    fn run(units: &'static [&'static [u64]]) {
        let mut model = loom::model::Builder::new();
        // Three threads with an unbounded number of preemptions take loom hours; two
        // preemptions cover the interleavings of interest (a unit finished while another
        // thread emits, a claim racing a finish).
        model.preemption_bound = Some(if units.len() > 2 { 2 } else { 3 });
        model.check(move || {
            let seq = Arc::new(Sequencer::<u64>::default());
            let log = Arc::new(crate::sync::Mutex::new(Vec::new()));
            let busy = Arc::new(AtomicBool::new(false));
            let handles: Vec<_> = units
                .iter()
                .map(|mine| {
                    let (seq, log, busy) = (seq.clone(), log.clone(), busy.clone());
                    loom::thread::spawn(move || {
                        for &u in mine.iter() {
                            let emit = |x: u64| {
                                assert!(!busy.swap(true, Ordering::SeqCst), "two emitters");
                                log.lock().unwrap().push(x);
                                busy.store(false, Ordering::SeqCst);
                            };
                            if seq.claim(u) {
                                emit(u);
                                seq.release(emit);
                            } else {
                                seq.finish(u, u, emit);
                            }
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            let total: usize = units.iter().map(|m| m.len()).sum();
            let log = log.lock().unwrap();
            assert_eq!(*log, (0..total as u64).collect::<Vec<_>>());
        });
    }

    #[test]
    fn two_threads_alternating_units() {
        run(&[&[0, 2], &[1, 3]]);
    }

    #[test]
    fn a_thread_ahead_of_the_other() {
        run(&[&[1, 2], &[0]]);
    }

    #[test]
    fn three_threads() {
        run(&[&[0], &[1], &[2]]);
    }
}
