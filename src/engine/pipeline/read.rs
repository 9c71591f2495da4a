//! Reading: the matcher threads take turns at the source, one unit of messages at a time,
//! with a permit system that lets idle threads stand by.

use super::*;

/// A matched unit, ready to be emitted in sequence.
pub(super) struct Matched {
    pub(super) end_position: u64,
    pub(super) routed: Vec<(Arc<Subscriber>, Queued)>,
    /// What the analytics stage gets, sent in source order with the emission.
    pub(super) stage: Option<StageBatch>,
}

/// The source and the state of reading it, behind [`Shared::reader`].
pub(super) struct Reader {
    /// Taken by the coordinator at the very end (last acknowledgement, then dropped).
    pub(super) source: Option<Box<dyn Source>>,
    /// Messages read so far (the next message's position).
    pub(super) position: u64,
    /// Units read so far (the next unit's sequence number).
    pub(super) seq: u64,
    pub(super) acked: u64,
    /// Tells the coordinator why reading ended (once: see [`Shared::end_locked`]).
    pub(super) ended_tx: Sender<StopReason>,
}

/// How many matcher threads are active (reading and matching) and how many there are.
pub(super) struct Standby {
    pub(super) active: usize,
    pub(super) total: usize,
}

/// A unit of work a matcher thread read.
pub(super) struct Unit {
    pub(super) seq: u64,
    pub(super) first_position: u64,
    pub(super) messages: Vec<Arc<Message>>,
    /// The snapshot to match it with, when the ring of recent messages is on (taken with the
    /// unit's admission into the ring: see `recent`); otherwise the matcher takes one.
    pub(super) snapshot: Option<Snapshot>,
}

pub(super) fn source_panicked(payload: &(dyn std::any::Any + Send)) -> SourceError {
    let message = crate::sync::panic_message(payload);
    SourceError { kind: SourceErrorKind::Panicked, line: None, message, fatal: true }
}

/// How often a thread waiting for a permit looks at the stop flag.
pub(super) const PERMIT_WAIT: Duration = Duration::from_millis(20);

impl Shared {
    /// Stops reading (if not stopped yet) for `reason`.
    pub(super) fn end_reading(&self, reason: StopReason) {
        self.end_locked(&mut lock(&self.reader), reason);
    }

    /// Stops reading, the reader's lock held: tells the coordinator why (the first time) and
    /// wakes the threads standing by.
    pub(super) fn end_locked(&self, r: &mut Reader, reason: StopReason) {
        if !self.reading_over.swap(true, Ordering::SeqCst) {
            let _ = r.ended_tx.send(reason);
            let _guard = lock(&self.standby);
            self.standby_changed.notify_all();
        }
    }

    /// While the stream trickles (the last read did not fill a batch), one matcher thread
    /// reads and matches everything and the others stand by here: handing the reader's lock
    /// from thread to thread would cost each read a thread wake-up, which at a steady rate
    /// is most of a message's latency. A full batch wakes one of them (see
    /// [`Shared::note_read`]); at least one thread is always active.
    pub(super) fn stand_by(&self) {
        if self.saturated.load(Ordering::Relaxed) || self.reading_over.load(Ordering::Relaxed) {
            return;
        }
        let mut st = lock(&self.standby);
        if st.active <= 1 {
            return;
        }
        st.active -= 1;
        while !self.saturated.load(Ordering::SeqCst)
            && !self.reading_over.load(Ordering::SeqCst)
            && !self.stop.load(Ordering::SeqCst)
        {
            st = unpoison(self.standby_changed.wait_timeout(st, PERMIT_WAIT)).0;
        }
        st.active += 1;
    }

    /// Records whether a read filled a whole batch; the first full one after a trickle
    /// wakes a thread standing by.
    pub(super) fn note_read(&self, full: bool) {
        if self.saturated.swap(full, Ordering::SeqCst) != full && full {
            let st = lock(&self.standby);
            if st.active < st.total {
                self.standby_changed.notify_one();
            }
        }
    }

    /// Reads the next unit into `unit` (a permit taken for it); `false` once reading is over.
    ///
    /// Matcher threads read in turn (leader/followers): the one holding the reader's lock
    /// may block in the source while the others match what they read. So a message is
    /// read, matched and emitted on one thread, with no hand-over between threads.
    pub(super) fn read_unit(&self, batch: &mut Vec<Message>, unit: &mut Unit) -> bool {
        let c = &self.counters;
        loop {
            // A permit per unit bounds the work between here and the subscriber queues.
            while self.permit_tx.send_timeout((), PERMIT_WAIT).is_err() {
                if self.reading_over.load(Ordering::SeqCst) {
                    return false;
                }
                if self.stop.load(Ordering::SeqCst) {
                    self.end_reading(StopReason::Shutdown);
                    return false;
                }
            }
            let mut guard = lock(&self.reader);
            let r = &mut *guard;
            if self.stop.load(Ordering::SeqCst) {
                self.end_locked(r, StopReason::Shutdown);
            }
            // The coordinator takes the source only after every matcher thread has left.
            let source = match r.source.as_mut() {
                Some(source) if !self.reading_over.load(Ordering::SeqCst) => source,
                _ => {
                    drop(guard);
                    let _ = self.permit_rx.try_recv();
                    return false;
                }
            };
            batch.clear();
            let result =
                catch_unwind(AssertUnwindSafe(|| source.next_batch(batch, self.batch_size)))
                    .unwrap_or_else(|p| Err(source_panicked(&*p)));
            let mut end = None;
            match result {
                Ok(SourceStatus::Open) => {}
                Ok(SourceStatus::Ended) => end = Some(StopReason::EndOfStream),
                Err(e) => {
                    if e.kind == SourceErrorKind::Malformed {
                        c.malformed.fetch_add(1, Ordering::SeqCst);
                    } else {
                        c.source_errors.fetch_add(1, Ordering::SeqCst);
                    }
                    if e.fatal {
                        end = Some(StopReason::SourceFailed(e.clone()));
                    }
                    self.report(EngineEvent::Source(e));
                }
            }
            let n = batch.len();
            unit.seq = r.seq;
            unit.first_position = r.position;
            unit.snapshot = None;
            let mut evicted = None;
            if n > 0 {
                if let Some(recent) = &self.recent {
                    // Admitted into the ring in source order (under the reader's lock),
                    // numbered and given its snapshot there (the backfill's cut).
                    unit.messages.clear();
                    unit.messages.extend(batch.drain(..).map(Arc::new));
                    let (seq, snapshot, gone) =
                        recent.admit(&self.registry, unit.first_position, &unit.messages);
                    unit.seq = seq;
                    unit.snapshot = Some(snapshot);
                    evicted = Some(gone);
                }
                // Counted once in the ring: a caller that saw it read finds it there.
                c.received.fetch_add(n as u64, Ordering::SeqCst);
                r.seq += 1;
                r.position += n as u64;
            }
            self.maybe_ack(r);
            if let Some(reason) = end {
                self.end_locked(r, reason);
            }
            drop(guard);
            drop(evicted);
            self.note_read(n >= self.batch_size);
            if n > 0 {
                if unit.snapshot.is_none() {
                    unit.messages.clear();
                    unit.messages.extend(batch.drain(..).map(Arc::new));
                }
                return true;
            }
            let _ = self.permit_rx.try_recv();
            if self.reading_over.load(Ordering::SeqCst) {
                return false;
            }
        }
    }

    /// Acknowledges to the source what the watchdog last found fully handled.
    pub(super) fn maybe_ack(&self, r: &mut Reader) {
        let w = self.ack_ready.load(Ordering::Acquire);
        if w > r.acked {
            r.acked = w;
            if let Some(source) = r.source.as_mut() {
                let _ = catch_unwind(AssertUnwindSafe(|| source.ack(w)));
            }
            self.counters.acked.store(w, Ordering::SeqCst);
        }
    }
}
