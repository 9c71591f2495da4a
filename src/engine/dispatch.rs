//! The dispatcher pool: a few threads that hand queued deliveries to sinks.
//!
//! A subscriber with something to send is put on the run queue once (its `scheduled` flag);
//! a dispatcher takes it, sends chunks until its queue is empty or its turn is over, and lets
//! go of it. So ten thousand subscribers need no ten thousand threads, and a message matched
//! for all of them reaches every sink after a few microseconds of work each.
//!
//! A match for an idle subscriber (nothing queued, in flight or scheduled) is not queued at
//! all: the pusher takes the subscriber's turn and the match rides in the run with it
//! ([`Pushed::Handed`](super::subscriber::Pushed)), so the dispatcher sends it and visits the
//! queue once, to report it and take what came after.
//!
//! The run queue carries *runs*: lists of up to [`RUN`] subscribers. The emitting thread
//! gathers the subscribers a unit of matches woke ([`Runs`]) and hands them over together,
//! so a busy stream costs one hand-over (and at most one thread wake-up) per unit, not one per
//! delivery; a run is still short enough that both dispatchers share a large fan-out.
//!
//! A sink may block. A watchdog notices a dispatcher that has made no progress inside a sink
//! for a while, puts the rest of that dispatcher's run back on the run queue and starts a
//! replacement, so the other subscribers keep being served; the spare thread exits when it
//! finds the pool above strength and idle. Panics in sinks are caught: they fail that
//! subscriber only.

use super::subscriber::{Queued, Subscriber, Taken};
use super::{Delivery, DisconnectCode, EngineEvent, SinkError};
use crate::sync::{lock_std as lock, panic_message};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the watchdog recomputes the acknowledgement watermark (a scan of the live
/// subscribers, kept off the matcher threads: at 10,000 subscribers it reads 10,000 cache
/// lines).
pub(crate) const ACK_EVERY: Duration = Duration::from_millis(50);

/// What the dispatchers need from the engine that runs them: their pool, and where sink
/// failures and ended streams go. The engine's shared state implements it; the dispatchers
/// know nothing else of the engine. A trait object: its methods run once per run or rarer,
/// and the dispatcher's own code stays compiled in this module, beside the subscriber's
/// (generic, it was instantiated elsewhere and lost the inlining of the hand-over's calls:
/// callgrind counted 8% more instructions on the dispatcher threads).
pub(crate) trait Host: Send + Sync + 'static {
    /// The pool the dispatchers belong to.
    fn pool(&self) -> &Pool;
    /// Reports an engine event (a sink failed).
    fn report(&self, event: EngineEvent);
    /// Ends a subscriber's stream for good: it is no longer routed to.
    fn retire(&self, sub: &Arc<Subscriber>, code: DisconnectCode, reason: String);
    /// Recomputes the acknowledgement watermark (the watchdog, every [`ACK_EVERY`]).
    fn refresh_ack_watermark(&self);
}

/// Deliveries a dispatcher takes off a queue at once.
const CHUNK: usize = 64;
/// Most subscribers handed to the run queue as one run.
const RUN: usize = 64;
/// Emptied run buffers (of [`RUN`] entries) kept for the routing threads to fill again.
const SPARE_RUNS: usize = 256;
/// Deliveries a subscriber gets per turn before others are served.
const TURN: u64 = 512;
/// How often the watchdog looks.
const WATCH_EVERY: Duration = Duration::from_millis(10);
/// Watchdog looks without progress after which a dispatcher counts as stuck.
const STUCK_AFTER: u32 = 3;
/// How long an idle dispatcher waits for work before checking whether it is surplus.
const IDLE_WAIT: Duration = Duration::from_millis(50);

/// One dispatcher's heartbeat, read by the watchdog, and the rest of the run it is serving
/// (which the watchdog hands to others when the dispatcher is stuck in a sink).
#[derive(Debug, Default)]
struct Slot {
    in_sink: AtomicBool,
    progress: AtomicU64,
    exited: AtomicBool,
    /// Set by the watchdog while the dispatcher sits in a sink without progress.
    stuck: AtomicBool,
    /// Subscribers of the current run not served yet.
    run: Mutex<VecDeque<RunEntry>>,
}

/// A list of scheduled subscribers, handed to the run queue at once, each with the match it
/// was handed while idle, if any (see [`Pushed::Handed`](super::subscriber::Pushed)).
type Run = Vec<RunEntry>;
/// One subscriber to run, with the match handed over to it without the lock (if any).
#[derive(Debug)]
pub(crate) struct RunEntry {
    pub sub: Arc<Subscriber>,
    pub handed: Option<Queued>,
}

// One cache line per entry (a run's vector is 64 of them, page-aligned): the dispatcher reads
// what the routing thread wrote line by line, not straddling two (issue 23's fan-out).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<RunEntry>() == 64);

/// The watchdog's view of a dispatcher: its slot, its progress count at the last look, and
/// for how many looks it has been inside a sink without progress.
struct Watched {
    slot: Arc<Slot>,
    progress: u64,
    looks_stuck: u32,
}

/// The pool of dispatcher threads and its run queue.
pub(crate) struct Pool {
    tx: Sender<Run>,
    rx: Receiver<Run>,
    /// Run buffers the dispatchers have emptied, back to the routing threads (at most
    /// [`SPARE_RUNS`]): a full run's buffer is 4 KiB (64 entries of one cache line), which
    /// jemalloc serves from one-page slabs of one region each, so a buffer allocated on the
    /// routing thread and freed on a dispatcher cost a slab's allocation and release in the
    /// arena every 64 deliveries (issue 23's fan-out; a buffer of 56-byte entries, before
    /// the reaction cell, came from 7-page slabs of 8).
    spare_tx: Sender<Run>,
    spare_rx: Receiver<Run>,
    target: usize,
    /// The live dispatchers' heartbeats.
    slots: Mutex<Vec<Arc<Slot>>>,
    handles: Mutex<Vec<JoinHandle<()>>>,
    pub stop: AtomicBool,
    /// Dropped to stop the watchdog.
    watch_stop: Mutex<Option<Sender<()>>>,
}

impl Pool {
    pub fn new(target: usize) -> Self {
        let (tx, rx) = crossbeam_channel::unbounded();
        let (spare_tx, spare_rx) = crossbeam_channel::bounded(SPARE_RUNS);
        Pool {
            tx,
            rx,
            spare_tx,
            spare_rx,
            target: target.max(1),
            slots: Mutex::new(Vec::new()),
            handles: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
            watch_stop: Mutex::new(None),
        }
    }

    /// Puts a subscriber on the run queue unless it is there or running already.
    pub fn schedule(&self, sub: &Arc<Subscriber>) {
        self.runs().add(sub);
    }

    /// A gatherer of subscribers to schedule together (see [`Runs`]).
    pub fn runs(&self) -> Runs<'_> {
        Runs { pool: self, run: Vec::new(), expected: 0 }
    }

    fn send(&self, run: Run) {
        // The receiver lives as long as the pool, so this cannot fail.
        let _ = self.tx.send(run);
    }

    /// A run buffer to fill: an emptied one if there is one, else a new one for `n` entries.
    fn run_buffer(&self, n: usize) -> Run {
        match self.spare_rx.try_recv() {
            Ok(run) => run,
            Err(_) => Vec::with_capacity(n),
        }
    }

    /// Keeps an emptied run buffer of full size for the routing threads (others are freed,
    /// as are full-size ones beyond [`SPARE_RUNS`]).
    fn recycle(&self, run: VecDeque<RunEntry>) {
        if run.capacity() == RUN && run.is_empty() {
            let _ = self.spare_tx.try_send(run.into());
        }
    }

    /// Starts the initial dispatchers and the watchdog.
    pub fn start(shared: &Arc<dyn Host>) -> std::io::Result<()> {
        for _ in 0..shared.pool().target {
            Pool::spawn_dispatcher(shared)?;
        }
        let weak = Arc::downgrade(shared);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(0);
        *lock(&shared.pool().watch_stop) = Some(stop_tx);
        let handle = std::thread::Builder::new()
            .name("streamtrack-watchdog".into())
            .spawn(move || watchdog(weak, stop_rx))?;
        lock(&shared.pool().handles).push(handle);
        Ok(())
    }

    fn spawn_dispatcher(shared: &Arc<dyn Host>) -> std::io::Result<()> {
        let slot = Arc::new(Slot::default());
        let s = shared.clone();
        let sl = slot.clone();
        lock(&shared.pool().slots).push(slot);
        let spawned = std::thread::Builder::new()
            .name("streamtrack-dispatch".into())
            .spawn(move || dispatcher(s, sl));
        match spawned {
            Ok(handle) => {
                let mut handles = lock(&shared.pool().handles);
                handles.retain(|h| !h.is_finished());
                handles.push(handle);
                Ok(())
            }
            Err(e) => {
                lock(&shared.pool().slots).retain(|s| !s.exited.load(Ordering::SeqCst));
                Err(e)
            }
        }
    }

    /// Stops the threads once the run queue is empty, and joins those that are not stuck in
    /// a sink (a stuck one is left to finish on its own); returns how many were left.
    pub fn stop_and_join(&self) -> usize {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the watchdog and the idle dispatchers, so that they leave now.
        drop(lock(&self.watch_stop).take());
        let handles = std::mem::take(&mut *lock(&self.handles));
        for _ in 0..handles.len() {
            self.send(Vec::new());
        }
        let slots = std::mem::take(&mut *lock(&self.slots));
        // Wait a little for threads in sinks to come back; never forever.
        let deadline = std::time::Instant::now() + Duration::from_secs(1);
        let mut left = 0;
        for h in handles {
            while !h.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if h.is_finished() {
                let _ = h.join();
            } else {
                left += 1;
            }
        }
        drop(slots);
        left
    }
}

/// Subscribers scheduled by one unit of matches, handed to the run queue [`RUN`] at a time
/// (and the rest on [`Runs::flush`] or drop). Flush before anything that waits for a
/// dispatcher: a subscriber gathered here is marked scheduled but not yet runnable.
pub(crate) struct Runs<'a> {
    pool: &'a Pool,
    run: Run,
    /// How many subscribers are about to be added (sizes the next run's allocation).
    expected: usize,
}

impl Runs<'_> {
    /// Schedules `sub` unless it is on the run queue or running already.
    pub fn add(&mut self, sub: &Arc<Subscriber>) {
        if sub.mark_work() {
            self.push(RunEntry { sub: sub.clone(), handed: None });
        }
    }

    /// Adds `sub`, whose turn the caller holds, with the match it was handed.
    pub fn add_handed(&mut self, sub: &Arc<Subscriber>, item: Queued) {
        self.push(RunEntry { sub: sub.clone(), handed: Some(item) });
    }

    /// Says that about `n` subscribers are about to be added.
    pub fn expect(&mut self, n: usize) {
        self.expected = n;
    }

    fn push(&mut self, entry: RunEntry) {
        if self.run.capacity() == 0 {
            self.run = self.pool.run_buffer(self.expected.clamp(1, RUN));
        }
        self.expected = self.expected.saturating_sub(1);
        self.run.push(entry);
        if self.run.len() >= RUN {
            self.flush();
        }
    }

    /// Hands what was gathered to the run queue.
    pub fn flush(&mut self) {
        if !self.run.is_empty() {
            self.pool.send(std::mem::take(&mut self.run));
        }
    }
}

impl Drop for Runs<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

fn dispatcher(shared: Arc<dyn Host>, slot: Arc<Slot>) {
    let pool = shared.pool();
    let mut out: Vec<Delivery> = Vec::with_capacity(CHUNK + 3);
    loop {
        // `try_recv` first: the timed wait reads the clock, which a busy pool can skip.
        let next = match pool.rx.try_recv() {
            Ok(run) => Ok(run),
            Err(_) => pool.rx.recv_timeout(IDLE_WAIT),
        };
        match next {
            Ok(subs) if subs.is_empty() => {
                // A wake-up from `stop_and_join` (one per thread): every stream is over.
                if pool.stop.load(Ordering::SeqCst) {
                    break;
                }
            }
            Ok(subs) => {
                *lock(&slot.run) = subs.into();
                // The watchdog may take the rest of the run while we are stuck in a sink.
                while let Some(RunEntry { sub, handed }) = {
                    let next = lock(&slot.run).pop_front();
                    next
                } {
                    run(&shared, &sub, handed, &slot, &mut out);
                }
                let served = std::mem::take(&mut *lock(&slot.run));
                pool.recycle(served);
            }
            Err(RecvTimeoutError::Timeout) => {
                if pool.stop.load(Ordering::SeqCst) && pool.rx.is_empty() {
                    break;
                }
                // A spare started for a stuck dispatcher leaves once the pool is whole again.
                let mut slots = lock(&pool.slots);
                let healthy = slots
                    .iter()
                    .filter(|s| !s.exited.load(Ordering::SeqCst) && !s.stuck.load(Ordering::SeqCst))
                    .count();
                if healthy > pool.target {
                    slot.exited.store(true, Ordering::SeqCst);
                    slots.retain(|s| !Arc::ptr_eq(s, &slot));
                    return;
                }
            }
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    slot.exited.store(true, Ordering::SeqCst);
}

/// Calls a sink method, catching panics; `in_sink` tells the watchdog where we are.
fn call<T>(slot: &Slot, f: impl FnOnce() -> Result<T, SinkError>) -> Result<T, String> {
    slot.in_sink.store(true, Ordering::Relaxed);
    let r = catch_unwind(AssertUnwindSafe(f));
    slot.in_sink.store(false, Ordering::Relaxed);
    // Only this dispatcher writes its heartbeat: no locked add needed.
    slot.progress.store(slot.progress.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(panic_message(&*payload)),
    }
}

/// Serves one subscriber for one turn, starting with the match it was handed, if any.
fn run(
    shared: &Arc<dyn Host>,
    sub: &Arc<Subscriber>,
    handed: Option<Queued>,
    slot: &Slot,
    out: &mut Vec<Delivery>,
) {
    let mut guard = lock(&sub.sink);
    let Some(sink) = guard.as_mut() else {
        // The stream is over; nothing will be sent again (a handed match is counted as
        // dropped).
        if handed.is_some() {
            sub.drop_handed();
        }
        return;
    };
    let mut sent_total = 0u64;
    let mut delivered = 0u64;
    let mut dirty = false;
    if let Some(item) = handed {
        // Nothing was queued before it. Flushed at once: if nothing came after it, the turn
        // is given back without visiting the queue (a fan-out's usual case).
        let position = item.position;
        if let Err(e) = call(slot, || sink.send(item.into_delivery())) {
            fail(shared, sub, &mut guard, 0, e);
            return;
        }
        // (No `note_call` here: `finish_handed` shows the progress.)
        if let Err(e) = call(slot, || sink.flush()) {
            fail(shared, sub, &mut guard, 1, e);
            return;
        }
        sent_total = 1;
        if sub.finish_handed(position, &mut delivered) {
            return;
        }
    }
    loop {
        out.clear();
        match sub.take_chunk(delivered, CHUNK, out, !dirty) {
            Taken::Gone | Taken::Unscheduled => return,
            Taken::Empty => {
                delivered = 0;
                dirty = false;
                if let Err(e) = call(slot, || sink.flush()) {
                    fail(shared, sub, &mut guard, 0, e);
                    return;
                }
            }
            Taken::Some { last, drained } => {
                delivered = 0;
                for d in out.drain(..) {
                    let is_match = d.is_match();
                    if let Err(e) = call(slot, || sink.send(d)) {
                        fail(shared, sub, &mut guard, delivered, e);
                        return;
                    }
                    sub.note_call();
                    delivered += u64::from(is_match);
                    sent_total += 1;
                }
                if last {
                    let closed = call(slot, || sink.close());
                    let (code, reason) = sub.mark_closed(delivered);
                    let sink = guard.take();
                    drop(guard);
                    let _ = catch_unwind(AssertUnwindSafe(move || drop(sink)));
                    if let Err(e) = closed {
                        shared.report(EngineEvent::SinkFailed {
                            subscriber: sub.name.clone(),
                            error: e,
                        });
                    }
                    shared.retire(sub, code, reason);
                    return;
                }
                dirty = true;
                if drained {
                    // The queue ran empty: write out what the sink buffered.
                    dirty = false;
                    if let Err(e) = call(slot, || sink.flush()) {
                        fail(shared, sub, &mut guard, delivered, e);
                        return;
                    }
                }
                if sent_total >= TURN {
                    // Let others have a go; the subscriber stays scheduled.
                    sub.settle(delivered);
                    drop(guard);
                    shared.pool().send(vec![RunEntry { sub: sub.clone(), handed: None }]);
                    return;
                }
            }
        }
    }
}

fn fail(
    shared: &Arc<dyn Host>,
    sub: &Arc<Subscriber>,
    guard: &mut std::sync::MutexGuard<'_, Option<Box<dyn super::Sink>>>,
    delivered: u64,
    error: String,
) {
    sub.fail(delivered, &error);
    let sink = guard.take();
    let _ = catch_unwind(AssertUnwindSafe(move || drop(sink)));
    shared.report(EngineEvent::SinkFailed { subscriber: sub.name.clone(), error: error.clone() });
    shared.retire(
        sub,
        super::DisconnectCode::STREAM_EXCEPTION,
        format!("the sink failed: {error}"),
    );
}

/// Marks dispatchers stuck in a sink and starts spares so that the pool keeps its strength;
/// recomputes the acknowledgement watermark, which is a scan of every subscriber, so that
/// the matcher threads do not.
fn watchdog(shared: std::sync::Weak<dyn Host>, stop: Receiver<()>) {
    // Per slot: progress seen and looks without progress.
    let mut seen: Vec<Watched> = Vec::new();
    let mut last_ack = std::time::Instant::now();
    loop {
        if let Err(RecvTimeoutError::Disconnected) = stop.recv_timeout(WATCH_EVERY) {
            return;
        }
        let Some(shared) = shared.upgrade() else { return };
        let pool = shared.pool();
        if pool.stop.load(Ordering::SeqCst) {
            return;
        }
        if last_ack.elapsed() >= ACK_EVERY {
            last_ack = std::time::Instant::now();
            shared.refresh_ack_watermark();
        }
        let healthy = {
            let mut slots = lock(&pool.slots);
            slots.retain(|s| !s.exited.load(Ordering::SeqCst));
            seen.retain(|w| slots.iter().any(|x| Arc::ptr_eq(&w.slot, x)));
            for slot in slots.iter() {
                let progress = slot.progress.load(Ordering::Relaxed);
                let in_sink = slot.in_sink.load(Ordering::Relaxed);
                match seen.iter_mut().find(|w| Arc::ptr_eq(&w.slot, slot)) {
                    None => seen.push(Watched { slot: slot.clone(), progress, looks_stuck: 0 }),
                    Some(entry) if in_sink && entry.progress == progress => {
                        entry.looks_stuck += 1;
                        if entry.looks_stuck >= STUCK_AFTER {
                            slot.stuck.store(true, Ordering::SeqCst);
                            // The rest of its run goes to the others.
                            let rest: Run = std::mem::take(&mut *lock(&slot.run)).into();
                            if !rest.is_empty() {
                                pool.send(rest);
                            }
                        }
                    }
                    Some(entry) => {
                        entry.progress = progress;
                        entry.looks_stuck = 0;
                        slot.stuck.store(false, Ordering::SeqCst);
                    }
                }
            }
            slots.iter().filter(|s| !s.stuck.load(Ordering::SeqCst)).count()
        };
        for _ in healthy..pool.target {
            let _ = Pool::spawn_dispatcher(&shared);
        }
    }
}
