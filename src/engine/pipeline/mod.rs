//! The engine's running parts, one room each: the shared state lives here; [`builder`]
//! starts an engine, [`handle`] is what the application holds, [`read`] feeds the matcher
//! threads from the source, [`route`] turns matches into deliveries, [`emit`] pushes them
//! into the subscriber queues in sequence, and [`drain`] ends the stream. The dispatchers
//! that run the sinks are in [`super::dispatch`]: they see this state only through
//! [`Host`].

use super::budget::Budget;
use super::dispatch::{Host, Pool, Runs};
use super::sequence::Sequencer;
use super::subscriber::{Pushed, Queued, Subscriber};
use super::{
    DisconnectCode, EngineError, EngineEvent, EngineStats, MatchingRule, MatchingRules, Sink,
    Source, SourceError, SourceErrorKind, SourceStatus, SubscriberConfig, SubscriberStats,
};
use crate::analytics::stage::{self, Stage, StageBatch, Staged};
use crate::analytics::{Analytics, AnalyticsConfig, LanguageScorers};
use crate::registry::{Registry, Routed, Scratch, Snapshot};
use crate::sync::{lock_std as lock, unpoison};
use crate::Message;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

mod builder;
mod drain;
mod emit;
mod handle;
mod read;
mod recent;
mod route;

pub use builder::EngineBuilder;
use drain::coordinate;
use emit::{deliver, emit, unit_emitted};
pub use handle::{Engine, Finished, StopReason};
use read::{Matched, Reader, Standby, Unit, PERMIT_WAIT};
use route::matcher;

/// A message delivered to at least this many subscribers is shared in copies (see
/// [`COPY_EVERY`]).
const COPY_ABOVE: usize = 256;
/// Deliveries that share one copy of a widely delivered message.
const COPY_EVERY: usize = 64;
/// How many disconnected subscribers' final figures [`EngineStats`] keeps.
const FINISHED_KEPT: usize = 10_000;
/// The default memory budget for queued deliveries ([`EngineBuilder::memory_budget`]).
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;
/// After the drain deadline, a subscriber with work whose sink made no progress for this
/// long counts as stuck.
const STUCK_WINDOW: Duration = Duration::from_millis(100);

type EventFn = Box<dyn Fn(&EngineEvent) + Send + Sync>;
type SharedEventFn = Arc<dyn Fn(&EngineEvent) + Send + Sync>;

#[derive(Default)]
struct Table {
    /// Where matches are routed (a fast hash: a million names go in at start).
    by_name: HashMap<Arc<str>, Arc<Subscriber>, foldhash::fast::RandomState>,
    /// Every subscriber whose stream is not finished (attached, or closing).
    live: BTreeMap<u64, Arc<Subscriber>>,
    /// Finished subscribers, oldest first (their figures can still change while a push
    /// that was waiting for room gives up).
    finished: VecDeque<Arc<Subscriber>>,
    /// Figures of finished subscribers no longer kept one by one.
    forgotten: Totals,
    /// Finished subscribers with losses never reported to them (a failed or abandoned
    /// sink): acknowledgements stay behind their first such loss.
    holding: Vec<Arc<Subscriber>>,
}

#[derive(Default, Clone, Copy)]
struct Totals {
    routed: u64,
    delivered: u64,
    dropped: u64,
}

impl Totals {
    fn add(&mut self, s: &SubscriberStats) {
        self.routed += s.matched;
        self.delivered += s.delivered;
        self.dropped += s.dropped;
    }
}

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    processed: AtomicU64,
    malformed: AtomicU64,
    source_errors: AtomicU64,
    matched: AtomicU64,
    unrouted: AtomicU64,
    prefiltered: AtomicU64,
    acked: AtomicU64,
}

pub(crate) struct Shared {
    registry: Registry,
    table: RwLock<Table>,
    /// Bumped whenever routing changes, so matcher threads drop their caches.
    version: AtomicU64,
    next_id: AtomicU64,
    pub(crate) pool: Pool,
    /// The memory budget for queued deliveries, shared by the subscribers.
    budget: Arc<Budget>,
    /// Dispatcher threads still inside a sink when the engine stopped.
    stuck_threads: AtomicU64,
    counters: Counters,
    /// The acknowledgement watermark the watchdog last computed (see `maybe_ack`).
    ack_ready: AtomicU64,
    /// Whether the source wants acknowledgements before the end ([`Source::wants_acks`]).
    acks_wanted: bool,
    on_event: Option<SharedEventFn>,
    /// The analytics stage, when on.
    stage: Option<Stage>,
    /// The ring of recent messages, when on (dry runs, backfill).
    recent: Option<recent::Recent>,
    /// Stop reading the source.
    stop: AtomicBool,
    /// No more attachments.
    closed: AtomicBool,
    started: Instant,
    /// Emission in source order (the reorder buffer and the emitter's role).
    sequencer: Sequencer<Matched>,
    /// The source and the numbering of what was read; whichever matcher thread needs work
    /// reads under this lock.
    reader: Mutex<Reader>,
    /// Messages asked of the source at once.
    batch_size: usize,
    /// The last read filled a whole batch: the source is saturated and every matcher thread
    /// is needed (see [`Shared::stand_by`]).
    saturated: AtomicBool,
    /// Reading is over (set under the reader's lock, read with or without it).
    reading_over: AtomicBool,
    /// Matcher threads not standing by, and all of them.
    standby: Mutex<Standby>,
    standby_changed: Condvar,
    /// A permit per unit read and not yet emitted bounds the work between the source and the
    /// subscriber queues (sent to take one, received to give one back).
    permit_tx: Sender<()>,
    permit_rx: Receiver<()>,
    defaults: SubscriberConfig,
    /// Counts finished subscribers; `live_changed` is signalled with it.
    retired: Mutex<u64>,
    live_changed: Condvar,
}

impl Host for Shared {
    fn pool(&self) -> &Pool {
        &self.pool
    }
    fn report(&self, event: EngineEvent) {
        Shared::report(self, event);
    }
    fn retire(&self, sub: &Arc<Subscriber>, code: DisconnectCode, reason: String) {
        Shared::retire(self, sub, code, reason);
    }
    fn refresh_ack_watermark(&self) {
        Shared::refresh_ack_watermark(self);
    }
}

impl Shared {
    pub(crate) fn report(&self, event: EngineEvent) {
        if let Some(f) = &self.on_event {
            let _ = catch_unwind(AssertUnwindSafe(|| f(&event)));
        }
    }

    fn attach(
        &self,
        name: &str,
        sink: Box<dyn Sink>,
        config: SubscriberConfig,
    ) -> Result<(), EngineError> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let name: Arc<str> = name.into();
        let sub = Arc::new(Subscriber::new(id, name.clone(), sink, config, self.budget.clone()));
        let old = {
            let mut t = unpoison(self.table.write());
            if self.closed.load(Ordering::SeqCst) {
                return Err(EngineError::Stopped);
            }
            t.live.insert(id, sub.clone());
            t.by_name.insert(name, sub)
        };
        self.version.fetch_add(1, Ordering::SeqCst);
        if let Some(old) = old {
            if old.close(
                DisconnectCode::ADMIN_LOGOUT,
                "another sink was attached for this subscriber",
            ) {
                self.pool.schedule(&old);
            }
        }
        Ok(())
    }

    /// A subscriber's stream is over: it leaves the live set, its figures are kept.
    pub(crate) fn retire(&self, sub: &Arc<Subscriber>, code: DisconnectCode, reason: String) {
        if sub.finished.swap(true, Ordering::SeqCst) {
            return;
        }
        let none_left = {
            let mut t = unpoison(self.table.write());
            t.live.remove(&sub.id);
            if t.by_name.get(&sub.name).is_some_and(|s| Arc::ptr_eq(s, sub)) {
                t.by_name.remove(&sub.name);
            }
            t.finished.push_back(sub.clone());
            if sub.holds_acks() {
                t.holding.push(sub.clone());
            }
            while t.finished.len() > FINISHED_KEPT {
                if let Some(s) = t.finished.pop_front() {
                    t.forgotten.add(&s.stats());
                }
            }
            t.live.is_empty()
        };
        self.version.fetch_add(1, Ordering::SeqCst);
        if none_left {
            *lock(&self.retired) += 1;
            self.live_changed.notify_all();
        }
        self.report(EngineEvent::Disconnected { subscriber: sub.name.clone(), code, reason });
    }

    fn live_is_empty(&self) -> bool {
        unpoison(self.table.read()).live.is_empty()
    }

    fn live(&self) -> Vec<Arc<Subscriber>> {
        let t = unpoison(self.table.read());
        t.live.values().cloned().collect()
    }

    /// The count of leading messages fully handled: matched, and each delivery taken by its
    /// sink (its `send` returned) or its loss reported to the subscriber (a limit or
    /// disconnect notice after it went through).
    fn ack_watermark(&self) -> u64 {
        let processed = self.counters.processed.load(Ordering::SeqCst);
        let t = unpoison(self.table.read());
        let live = t.live.values().map(|s| s.pending_from()).fold(processed, u64::min);
        t.holding.iter().map(|s| s.pending_from()).fold(live, u64::min)
    }

    /// Recomputes the acknowledgement watermark for the reading thread to pass on (called
    /// by the watchdog every [`ACK_EVERY`](super::dispatch::ACK_EVERY)).
    pub(crate) fn refresh_ack_watermark(&self) {
        let c = &self.counters;
        if self.acks_wanted
            && c.processed.load(Ordering::Relaxed) > self.ack_ready.load(Ordering::Relaxed)
        {
            self.ack_ready.fetch_max(self.ack_watermark(), Ordering::AcqRel);
        }
    }

    fn stats(&self) -> EngineStats {
        let c = &self.counters;
        let (mut subscribers, mut totals) = {
            let t = unpoison(self.table.read());
            let mut subs: Vec<Arc<Subscriber>> = t.finished.iter().cloned().collect();
            subs.extend(t.live.values().cloned());
            let totals = t.forgotten;
            drop(t);
            let v: Vec<SubscriberStats> = subs.iter().map(|s| s.stats()).collect();
            (v, totals)
        };
        for s in &subscribers {
            totals.add(s);
        }
        subscribers.shrink_to_fit();
        EngineStats {
            elapsed: self.started.elapsed(),
            received: c.received.load(Ordering::SeqCst),
            processed: c.processed.load(Ordering::SeqCst),
            malformed: c.malformed.load(Ordering::SeqCst),
            source_errors: c.source_errors.load(Ordering::SeqCst),
            matched: c.matched.load(Ordering::SeqCst),
            unrouted: c.unrouted.load(Ordering::SeqCst),
            prefiltered: c.prefiltered.load(Ordering::SeqCst),
            routed: totals.routed,
            delivered: totals.delivered,
            dropped: totals.dropped,
            acked: c.acked.load(Ordering::SeqCst),
            queued_bytes: self.budget.used(),
            stuck_threads: self.stuck_threads.load(Ordering::SeqCst),
            subscribers,
        }
    }
}
