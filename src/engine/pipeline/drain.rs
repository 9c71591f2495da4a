//! The end of the stream: the coordinator waits until reading is over and everything is
//! emitted, drains the subscribers (giving up on stuck ones after a drain deadline),
//! acknowledges to the source and drops it.

use super::*;

/// The drain deadline's bookkeeping: which subscribers made progress between two looks,
/// and which were given up on already.
pub(super) struct Drain {
    /// When the deadline runs out (`None`: no deadline, wait as long as it takes).
    pub(super) deadline: Option<Instant>,
    /// Subscribers still taking deliveries at the deadline are given up on here.
    pub(super) hard: Instant,
    /// Whatever is left is abandoned here.
    pub(super) cutoff: Instant,
    pub(super) seen: HashMap<u64, u64>,
    pub(super) expired: HashSet<u64>,
    /// The last look after the deadline: looks are at least [`STUCK_WINDOW`] apart.
    pub(super) looked: Option<Instant>,
}

pub(super) const DRAIN_REASON: &str =
    "the drain timeout ran out before the subscriber took its messages";

impl Drain {
    pub(super) fn new(timeout: Option<Duration>) -> Self {
        let now = Instant::now();
        let deadline = timeout.map(|t| now + t);
        let hard = deadline.map_or(now, |d| d + timeout.unwrap_or_default());
        Drain {
            deadline,
            hard,
            cutoff: hard + Duration::from_secs(1),
            seen: HashMap::new(),
            expired: HashSet::new(),
            looked: None,
        }
    }

    pub(super) fn passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// How long to wait before the next look.
    pub(super) fn wait(&self) -> Duration {
        match self.deadline {
            None => Duration::from_secs(3600),
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(STUCK_WINDOW),
                _ => STUCK_WINDOW,
            },
        }
    }

    /// After the deadline: gives up on subscribers with work whose sinks made no progress
    /// since the last look (or on all, past `hard`), and abandons those given up on that
    /// still made none (or all, past `cutoff`). Called every [`STUCK_WINDOW`] or so.
    pub(super) fn look(&mut self, shared: &Arc<Shared>) {
        if !self.passed() {
            return;
        }
        let now = Instant::now();
        if self.looked.is_some_and(|t| now.duration_since(t) < STUCK_WINDOW) {
            return;
        }
        self.looked = Some(now);
        for sub in shared.live() {
            let (moved, work) = sub.progress();
            let same = self.seen.insert(sub.id, moved) == Some(moved);
            if !work {
                continue;
            }
            let expired = self.expired.contains(&sub.id);
            // No progress while a dispatcher serves it: stuck inside its sink. (One that
            // waits for a dispatcher is not: the pool replaces stuck dispatchers.)
            let stuck = same && sub.sink_busy();
            if now >= self.cutoff || (expired && stuck) {
                // Stuck inside the sink (or out of time): nothing more can be sent to it.
                if sub.abort(DRAIN_REASON) {
                    let (code, reason) = sub.closing();
                    shared.retire(&sub, code, reason);
                }
            } else if !expired && (stuck || now >= self.hard) {
                self.expired.insert(sub.id);
                if sub.expire(DRAIN_REASON) {
                    shared.pool.schedule(&sub);
                }
            }
        }
    }
}

/// The coordinator of the end of the stream: waits until reading is over, everything read
/// is emitted and every subscriber's stream is finished (with a drain deadline, gives up on
/// stuck subscribers: see [`EngineBuilder::drain_timeout`]), acknowledges to the source what
/// was delivered or reported lost, and drops it.
pub(super) fn coordinate(
    shared: &Arc<Shared>,
    drain_timeout: Option<Duration>,
    ended_rx: Receiver<StopReason>,
    done_rx: Receiver<()>,
    matchers: Vec<JoinHandle<()>>,
) -> Finished {
    let c = &shared.counters;
    // Reading ends at the end of the stream, on a fatal source error, or on a shutdown
    // request, which the reading threads notice; so does this thread, should they all be
    // held up (e.g. by a subscriber that blocks the emission).
    let reason = loop {
        match ended_rx.recv_timeout(PERMIT_WAIT) {
            Ok(reason) => break reason,
            Err(RecvTimeoutError::Timeout) => {
                if shared.stop.load(Ordering::SeqCst) {
                    if let Ok(mut r) = shared.reader.try_lock() {
                        shared.end_locked(&mut r, StopReason::Shutdown);
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => break StopReason::Shutdown,
        }
    };
    let mut drain = Drain::new(drain_timeout);
    // Everything read is matched and emitted once every matcher thread has exited. Without
    // a deadline this takes as long as the subscribers that block the emission take.
    loop {
        match done_rx.recv_timeout(drain.wait()) {
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => drain.look(shared),
            Ok(()) => {}
        }
    }
    let (code, text) = match &reason {
        StopReason::EndOfStream => (DisconnectCode::NORMAL, "the stream ended".to_string()),
        StopReason::Shutdown => (DisconnectCode::SHUTDOWN, "the engine was shut down".to_string()),
        StopReason::SourceFailed(e) => {
            (DisconnectCode::STREAM_EXCEPTION, format!("the source failed: {e}"))
        }
    };
    {
        let _t = unpoison(shared.table.write());
        shared.closed.store(true, Ordering::SeqCst);
    }
    for h in matchers {
        let _ = h.join();
    }
    // Everything read was emitted and so handed to the analytics stage: let it finish.
    if let Some(stage) = &shared.stage {
        stage.finish();
    }
    for sub in shared.live() {
        if sub.close(code, &text) {
            shared.pool.schedule(&sub);
        }
    }
    // Wait until every stream is finished (with a deadline: see `Drain::look`).
    loop {
        if shared.live_is_empty() {
            break;
        }
        let guard = lock(&shared.retired);
        if shared.live_is_empty() {
            break;
        }
        let wait = drain.wait();
        let _ = shared.live_changed.wait_timeout(guard, wait);
        drain.look(shared);
    }
    let (source, acked) = {
        let mut r = lock(&shared.reader);
        (r.source.take(), r.acked)
    };
    // Everything delivered, or its loss reported, is acknowledged; a loss that could not be
    // reported (a failed or abandoned sink) holds the acknowledgement before it.
    let watermark = shared.ack_watermark();
    if let Some(mut source) = source {
        if watermark > acked {
            let _ = catch_unwind(AssertUnwindSafe(|| source.ack(watermark)));
            c.acked.store(watermark, Ordering::SeqCst);
        }
        let _ = catch_unwind(AssertUnwindSafe(move || drop(source)));
    }
    let left = shared.pool.stop_and_join();
    shared.stuck_threads.store(left as u64, Ordering::SeqCst);
    Finished { reason, stats: shared.stats() }
}
