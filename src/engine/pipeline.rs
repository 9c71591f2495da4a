//! The engine: matcher threads that read the source in turn, ordered emission into subscriber
//! queues, and the end of the stream.

use super::budget::{message_bytes, Budget, DELIVERY_BYTES};
use super::dispatch::{Pool, Runs};
use super::sequence::Sequencer;
use super::subscriber::{Pushed, Queued, Subscriber};
use super::{
    DisconnectCode, EngineError, EngineEvent, EngineStats, MatchingRule, MatchingRules, Sink,
    Source, SourceError, SourceErrorKind, SourceStatus, SubscriberConfig, SubscriberStats,
};
use crate::analytics::stage::{self, Stage, StageBatch};
use crate::analytics::{Analytics, AnalyticsConfig, LanguageScorers};
use crate::registry::{Registry, Routed, Scratch};
use crate::Message;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A message delivered to at least this many subscribers is shared in copies (see
/// [`COPY_EVERY`]).
const COPY_ABOVE: usize = 256;
/// Deliveries that share one copy of a widely delivered message.
const COPY_EVERY: usize = 64;
/// How many disconnected subscribers' final figures [`EngineStats`] keeps.
const FINISHED_KEPT: usize = 10_000;
/// How often the watchdog recomputes the acknowledgement watermark (a scan of the live
/// subscribers, kept off the matcher threads: at 10,000 subscribers it reads 10,000 cache
/// lines).
pub(crate) const ACK_EVERY: Duration = Duration::from_millis(50);
/// The default memory budget for queued deliveries ([`EngineBuilder::memory_budget`]).
pub const DEFAULT_MEMORY_BUDGET: u64 = 256 << 20;
/// After the drain deadline, a subscriber with work whose sink made no progress for this
/// long counts as stuck.
const STUCK_WINDOW: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why the engine stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// The source reached the end of its stream (subscribers got disconnect code 5).
    EndOfStream,
    /// [`Engine::shutdown`] was called (code 1).
    Shutdown,
    /// The source failed (code 10).
    SourceFailed(SourceError),
}

/// What [`Engine::join`] and [`Engine::shutdown`] return.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Finished {
    /// Why the engine stopped.
    pub reason: StopReason,
    /// The final figures.
    pub stats: EngineStats,
}

type EventFn = Box<dyn Fn(&EngineEvent) + Send + Sync>;
type SharedEventFn = Arc<dyn Fn(&EngineEvent) + Send + Sync>;

/// Settings of an [`Engine`]; start one with [`EngineBuilder::start`].
pub struct EngineBuilder {
    registry: Registry,
    matcher_threads: usize,
    dispatcher_threads: usize,
    batch_size: usize,
    in_flight: Option<usize>,
    defaults: SubscriberConfig,
    drain_timeout: Option<Duration>,
    memory_budget: u64,
    on_event: Option<EventFn>,
    sinks: Vec<(String, Box<dyn Sink>, SubscriberConfig)>,
    analytics: Option<(AnalyticsConfig, LanguageScorers)>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder")
            .field("matcher_threads", &self.matcher_threads)
            .field("dispatcher_threads", &self.dispatcher_threads)
            .field("batch_size", &self.batch_size)
            .field("defaults", &self.defaults)
            .field("drain_timeout", &self.drain_timeout)
            .field("memory_budget", &self.memory_budget)
            .finish_non_exhaustive()
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl EngineBuilder {
    fn new(registry: Registry) -> Self {
        EngineBuilder {
            registry,
            matcher_threads: cores(),
            dispatcher_threads: cores(),
            batch_size: 64,
            in_flight: None,
            defaults: SubscriberConfig::default(),
            drain_timeout: None,
            memory_budget: DEFAULT_MEMORY_BUDGET,
            on_event: None,
            sinks: Vec::new(),
            analytics: None,
        }
    }

    /// Threads matching messages in parallel (default: the number of cores).
    pub fn matcher_threads(mut self, n: usize) -> Self {
        self.matcher_threads = n.max(1);
        self
    }

    /// Threads handing deliveries to sinks (default: the number of cores).
    pub fn dispatcher_threads(mut self, n: usize) -> Self {
        self.dispatcher_threads = n.max(1);
        self
    }

    /// Most messages asked of the source at once, matched by one thread as one unit
    /// (default 64).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }

    /// Most units (batches) read and not yet emitted into the subscriber queues (default
    /// four per matcher thread); bounds memory and makes
    /// [`FullPolicy::Block`](super::FullPolicy::Block) reach the source.
    pub fn in_flight(mut self, n: usize) -> Self {
        self.in_flight = Some(n.max(1));
        self
    }

    /// The settings of subscribers attached with [`Engine::attach`].
    pub fn subscriber_defaults(mut self, config: SubscriberConfig) -> Self {
        self.defaults = config;
        self
    }

    /// Sets a deadline for the end of the stream (a shutdown, the end of the source): how
    /// long the engine waits for sinks to take what is queued. Default: none, the engine
    /// waits as long as the sinks take, so that [`FullPolicy::Block`](super::FullPolicy::Block)
    /// loses nothing. With a deadline, when it runs out, a subscriber whose sink makes no
    /// progress for 100 ms is given up on: what is queued for it is dropped, and it gets a
    /// limit notice counting the drops, then disconnect code 13
    /// ([`DisconnectCode::DRAIN_TIMEOUT`]), when its sink takes them. A subscriber whose sink
    /// still takes deliveries gets one more `timeout` to finish, then the same. Healthy
    /// subscribers are not held up by a stuck one: they get everything and their normal
    /// disconnect. A sink stuck inside a call even then is abandoned: its thread is counted
    /// in [`EngineStats::stuck_threads`] and its losses hold acknowledgements back. So a
    /// stop takes at most twice `timeout` plus two seconds (one to abandon what is left, one
    /// for the dispatcher threads to leave).
    pub fn drain_timeout(mut self, timeout: Duration) -> Self {
        self.drain_timeout = Some(timeout);
        self
    }

    /// Caps the bytes that queued deliveries may hold, over all subscribers (default
    /// 256 MiB, [`DEFAULT_MEMORY_BUDGET`]): each is charged 64 bytes plus its message's
    /// estimated size (a message shared by several queues is charged in each, so this
    /// bounds memory from above). When a push finds the budget used up and its subscriber's
    /// queue not empty, the subscriber's [`FullPolicy`](super::FullPolicy) applies as if the
    /// queue were full (under `Block`: wait). Matches handed straight to an idle subscriber
    /// are not charged (at most one per subscriber).
    pub fn memory_budget(mut self, bytes: u64) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Turns the analytics stage on (it is off by default): every matched message is
    /// recorded in an [`Analytics`] (series of its rules and of their subscribers, keyed by
    /// [`SeriesKey::Rule`](crate::analytics::SeriesKey::Rule) with the rule id in decimal and
    /// [`SeriesKey::Subscriber`](crate::analytics::SeriesKey::Subscriber)) on a thread of its
    /// own, fed in source order through a bounded queue, so that scoring stays off the
    /// matcher threads. With [`AnalyticsConfig::sentiment`] on (the default), each delivery
    /// carries its message's reaction ([`Delivery::reaction`](super::Delivery::reaction),
    /// `"reaction"` in JSON), computed once per message however many subscribers it reaches.
    /// Burst starts and ends reach the subscribers they concern as [`EngineEvent::Burst`]
    /// (see [`EngineBuilder::on_event`]). Read the figures with [`Engine::analytics`]; they
    /// are complete for everything read when [`Engine::join`] returns.
    pub fn analytics(self, config: AnalyticsConfig) -> Self {
        self.analytics_with_scorers(config, LanguageScorers::default())
    }

    /// Like [`EngineBuilder::analytics`], with other scorers (e.g. lexicons per language).
    pub fn analytics_with_scorers(
        mut self,
        config: AnalyticsConfig,
        scorers: LanguageScorers,
    ) -> Self {
        self.analytics = Some((config, scorers));
        self
    }

    /// A callback for errors and disconnections (see [`EngineEvent`]).
    pub fn on_event(mut self, f: impl Fn(&EngineEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Box::new(f));
        self
    }

    /// Attaches a sink before the first message is read, with the default settings.
    pub fn attach(self, subscriber: &str, sink: impl Sink + 'static) -> Self {
        let config = self.defaults.clone();
        self.attach_with(subscriber, sink, config)
    }

    /// Attaches a sink before the first message is read.
    pub fn attach_with(
        mut self,
        subscriber: &str,
        sink: impl Sink + 'static,
        config: SubscriberConfig,
    ) -> Self {
        self.sinks.push((subscriber.to_string(), Box::new(sink), config));
        self
    }

    /// Starts the engine's threads reading `source`.
    pub fn start(self, source: impl Source + 'static) -> Result<Engine, EngineError> {
        let in_flight = self.in_flight.unwrap_or(4 * self.matcher_threads).max(1);
        let (permit_tx, permit_rx) = crossbeam_channel::bounded(in_flight);
        let (ended_tx, ended_rx) = crossbeam_channel::unbounded();
        let source: Box<dyn Source> = Box::new(source);
        let on_event: Option<SharedEventFn> = self.on_event.map(Arc::from);
        let stage = match self.analytics {
            Some((cfg, scorers)) => {
                let registry = self.registry.clone();
                Some(
                    Stage::start(registry, cfg, scorers, on_event.clone())
                        .map_err(EngineError::Spawn)?,
                )
            }
            None => None,
        };
        let shared = Arc::new(Shared {
            registry: self.registry,
            table: RwLock::new(Table::default()),
            version: AtomicU64::new(0),
            next_id: AtomicU64::new(0),
            pool: Pool::new(self.dispatcher_threads),
            budget: Arc::new(Budget::new(self.memory_budget)),
            stuck_threads: AtomicU64::new(0),
            counters: Counters::default(),
            ack_ready: AtomicU64::new(0),
            acks_wanted: source.wants_acks(),
            on_event,
            stage,
            stop: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            started: Instant::now(),
            sequencer: Sequencer::default(),
            reader: Mutex::new(Reader {
                source: Some(source),
                position: 0,
                seq: 0,
                acked: 0,
                ended_tx,
            }),
            batch_size: self.batch_size,
            saturated: AtomicBool::new(false),
            reading_over: AtomicBool::new(false),
            standby: Mutex::new(Standby {
                active: self.matcher_threads,
                total: self.matcher_threads,
            }),
            standby_changed: Condvar::new(),
            permit_tx,
            permit_rx,
            defaults: self.defaults,
            retired: Mutex::new(0),
            live_changed: Condvar::new(),
        });
        for (name, sink, config) in self.sinks {
            shared.attach(&name, sink, config)?;
        }
        Pool::start(&shared).map_err(EngineError::Spawn)?;
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let mut matchers = Vec::new();
        for _ in 0..self.matcher_threads {
            let s = shared.clone();
            let done = done_tx.clone();
            let spawned =
                std::thread::Builder::new().name("streamtrack-match".into()).spawn(move || {
                    matcher(&s);
                    drop(done);
                });
            match spawned {
                Ok(h) => matchers.push(h),
                Err(e) => {
                    shared.end_reading(StopReason::Shutdown);
                    shared.pool.stop_and_join();
                    return Err(EngineError::Spawn(e));
                }
            }
        }
        drop(done_tx);
        let s = shared.clone();
        let drain_timeout = self.drain_timeout;
        let coordinator = std::thread::Builder::new()
            .name("streamtrack-end".into())
            .spawn(move || coordinate(&s, drain_timeout, ended_rx, done_rx, matchers));
        let coordinator = match coordinator {
            Ok(h) => h,
            Err(e) => {
                shared.end_reading(StopReason::Shutdown);
                shared.pool.stop_and_join();
                return Err(EngineError::Spawn(e));
            }
        };
        Ok(Engine { shared, coordinator: Some(coordinator) })
    }
}

/// The running engine: reads a [`Source`], matches every message against the
/// [`Registry`] on several threads, and delivers each match to its subscriber's [`Sink`]
/// in source order. See the [module documentation](super) for the design.
///
/// Dropping an engine shuts it down gracefully (like [`Engine::shutdown`]: without a
/// [drain timeout](EngineBuilder::drain_timeout), that waits as long as the sinks take).
pub struct Engine {
    shared: Arc<Shared>,
    coordinator: Option<JoinHandle<Finished>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("running", &self.is_running()).finish_non_exhaustive()
    }
}

impl Engine {
    /// A builder over `registry` (the engine keeps a clone: subscribe and unsubscribe through
    /// it, or through [`Engine::registry`], while the engine runs).
    pub fn builder(registry: Registry) -> EngineBuilder {
        EngineBuilder::new(registry)
    }

    /// The registry the engine matches against.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// Attaches `sink` as the subscriber's stream, with the default settings. Matches are
    /// routed to it from the next message matched after this returns (attach before
    /// subscribing the subscriber's rules to miss nothing). A sink already attached under
    /// that name is replaced: it gets what was queued for it, then disconnect code 7.
    pub fn attach(&self, subscriber: &str, sink: impl Sink + 'static) -> Result<(), EngineError> {
        self.shared.attach(subscriber, Box::new(sink), self.shared.defaults.clone())
    }

    /// Like [`Engine::attach`], with the subscriber's own settings.
    pub fn attach_with(
        &self,
        subscriber: &str,
        sink: impl Sink + 'static,
        config: SubscriberConfig,
    ) -> Result<(), EngineError> {
        self.shared.attach(subscriber, Box::new(sink), config)
    }

    /// Closes the subscriber's stream: what is queued is delivered, then disconnect code 3.
    /// Its rules stay in the registry (their matches are counted as unrouted). Returns
    /// whether a sink was attached.
    pub fn detach(&self, subscriber: &str) -> bool {
        let sub = {
            let mut t = self.shared.table.write().unwrap_or_else(PoisonError::into_inner);
            t.by_name.remove(subscriber)
        };
        self.shared.version.fetch_add(1, Ordering::SeqCst);
        match sub {
            Some(sub) => {
                if sub.close(DisconnectCode::CONTROL_REQUEST, "the subscriber was detached") {
                    self.shared.pool.schedule(&sub);
                }
                true
            }
            None => false,
        }
    }

    /// The analytics figures, when the stage is on ([`EngineBuilder::analytics`]): shared
    /// with the stage's thread (lock briefly), and kept valid after [`Engine::join`].
    pub fn analytics(&self) -> Option<Arc<Mutex<Analytics>>> {
        self.shared.stage.as_ref().map(|s| s.analytics().clone())
    }

    /// The figures now: received, matched, delivered and dropped, in total and per
    /// subscriber.
    pub fn stats(&self) -> EngineStats {
        self.shared.stats()
    }

    /// Whether the engine is still running (not yet stopped after the end of the stream or a
    /// shutdown).
    pub fn is_running(&self) -> bool {
        self.coordinator.as_ref().is_some_and(|h| !h.is_finished())
    }

    /// Asks the engine to stop reading, without waiting; [`Engine::join`] then returns once
    /// everything already read is delivered. Callable from any thread.
    pub fn request_shutdown(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// Stops reading the source, delivers everything already read, sends every subscriber
    /// disconnect code 1, acknowledges to the source what was delivered or reported lost,
    /// and returns the final figures. Without a
    /// [drain timeout](EngineBuilder::drain_timeout) this waits as long as the sinks take.
    pub fn shutdown(mut self) -> Finished {
        self.request_shutdown();
        self.finish()
    }

    /// Waits until the source's stream ends and everything is delivered (subscribers get
    /// disconnect code 5), then returns the final figures.
    pub fn join(mut self) -> Finished {
        self.finish()
    }

    fn finish(&mut self) -> Finished {
        let handle = self.coordinator.take();
        match handle.map(JoinHandle::join) {
            Some(Ok(finished)) => finished,
            // The coordinator catches the source's panics and runs no other user code, so
            // this is out of the ordinary; still report what is known.
            _ => {
                self.shared.pool.stop_and_join();
                Finished {
                    reason: StopReason::SourceFailed(SourceError {
                        kind: SourceErrorKind::Panicked,
                        line: None,
                        message: "the engine's coordinator thread panicked".into(),
                        fatal: true,
                    }),
                    stats: self.shared.stats(),
                }
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if self.coordinator.is_some() {
            self.request_shutdown();
            let _ = self.finish();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state.

#[derive(Default)]
struct Table {
    /// Where matches are routed.
    by_name: HashMap<Arc<str>, Arc<Subscriber>>,
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
            let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
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
            let mut t = self.table.write().unwrap_or_else(PoisonError::into_inner);
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
        self.table.read().unwrap_or_else(PoisonError::into_inner).live.is_empty()
    }

    fn live(&self) -> Vec<Arc<Subscriber>> {
        let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
        t.live.values().cloned().collect()
    }

    /// The count of leading messages fully handled: matched, and each delivery taken by its
    /// sink (its `send` returned) or its loss reported to the subscriber (a limit or
    /// disconnect notice after it went through).
    fn ack_watermark(&self) -> u64 {
        let processed = self.counters.processed.load(Ordering::SeqCst);
        let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let live = t.live.values().map(|s| s.pending_from()).fold(processed, u64::min);
        t.holding.iter().map(|s| s.pending_from()).fold(live, u64::min)
    }

    /// Recomputes the acknowledgement watermark for the reading thread to pass on (called
    /// by the watchdog every [`ACK_EVERY`]).
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
            let t = self.table.read().unwrap_or_else(PoisonError::into_inner);
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

// ---------------------------------------------------------------------------------------------
// Reading (by the matcher threads in turn) and the coordinator of the end of the stream.

/// A matched unit, ready to be emitted in sequence.
struct Matched {
    end_position: u64,
    routed: Vec<(Arc<Subscriber>, Queued)>,
    /// What the analytics stage gets, sent in source order with the emission.
    stage: Option<StageBatch>,
}

/// The source and the state of reading it, behind [`Shared::reader`].
struct Reader {
    /// Taken by the coordinator at the very end (last acknowledgement, then dropped).
    source: Option<Box<dyn Source>>,
    /// Messages read so far (the next message's position).
    position: u64,
    /// Units read so far (the next unit's sequence number).
    seq: u64,
    acked: u64,
    /// Tells the coordinator why reading ended (once: see [`Shared::end_locked`]).
    ended_tx: Sender<StopReason>,
}

/// How many matcher threads are active (reading and matching) and how many there are.
struct Standby {
    active: usize,
    total: usize,
}

/// A unit of work a matcher thread read.
struct Unit {
    seq: u64,
    first_position: u64,
    messages: Vec<Arc<Message>>,
}

fn source_panicked(payload: &(dyn std::any::Any + Send)) -> SourceError {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    SourceError { kind: SourceErrorKind::Panicked, line: None, message: text, fatal: true }
}

/// How often a thread waiting for a permit looks at the stop flag.
const PERMIT_WAIT: Duration = Duration::from_millis(20);

impl Shared {
    /// Stops reading (if not stopped yet) for `reason`.
    fn end_reading(&self, reason: StopReason) {
        self.end_locked(&mut lock(&self.reader), reason);
    }

    /// Stops reading, the reader's lock held: tells the coordinator why (the first time) and
    /// wakes the threads standing by.
    fn end_locked(&self, r: &mut Reader, reason: StopReason) {
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
    fn stand_by(&self) {
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
            st = self
                .standby_changed
                .wait_timeout(st, PERMIT_WAIT)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        st.active += 1;
    }

    /// Records whether a read filled a whole batch; the first full one after a trickle
    /// wakes a thread standing by.
    fn note_read(&self, full: bool) {
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
    fn read_unit(&self, batch: &mut Vec<Message>, unit: &mut Unit) -> bool {
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
            if n > 0 {
                c.received.fetch_add(n as u64, Ordering::SeqCst);
                r.seq += 1;
                r.position += n as u64;
            }
            self.maybe_ack(r);
            if let Some(reason) = end {
                self.end_locked(r, reason);
            }
            drop(guard);
            self.note_read(n >= self.batch_size);
            if n > 0 {
                unit.messages.clear();
                unit.messages.extend(batch.drain(..).map(Arc::new));
                return true;
            }
            let _ = self.permit_rx.try_recv();
            if self.reading_over.load(Ordering::SeqCst) {
                return false;
            }
        }
    }

    /// Acknowledges to the source what the watchdog last found fully handled.
    fn maybe_ack(&self, r: &mut Reader) {
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

/// The drain deadline's bookkeeping: which subscribers made progress between two looks,
/// and which were given up on already.
struct Drain {
    /// When the deadline runs out (`None`: no deadline, wait as long as it takes).
    deadline: Option<Instant>,
    /// Subscribers still taking deliveries at the deadline are given up on here.
    hard: Instant,
    /// Whatever is left is abandoned here.
    cutoff: Instant,
    seen: HashMap<u64, u64>,
    expired: HashSet<u64>,
    /// The last look after the deadline: looks are at least [`STUCK_WINDOW`] apart.
    looked: Option<Instant>,
}

const DRAIN_REASON: &str = "the drain timeout ran out before the subscriber took its messages";

impl Drain {
    fn new(timeout: Option<Duration>) -> Self {
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

    fn passed(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// How long to wait before the next look.
    fn wait(&self) -> Duration {
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
    fn look(&mut self, shared: &Arc<Shared>) {
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
fn coordinate(
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
        let _t = shared.table.write().unwrap_or_else(PoisonError::into_inner);
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

// ---------------------------------------------------------------------------------------------
// Matcher threads.

/// A matcher thread's view of where each subscriber name goes, keyed by the address of the
/// registry's shared name (`Arc<str>`), which the cache keeps alive so it cannot be reused.
#[derive(Default)]
struct Routes {
    version: u64,
    /// The registry's slot epoch the hints are for (see `Snapshot::slot_epoch`).
    epoch: u64,
    /// By the registry's subscriber slot: its index in `slots` plus one (0: not seen). An
    /// array index instead of a hash probe per matching rule, valid while the slot epoch
    /// stays (a large fan-out's rules come in slot order, so these reads stream).
    hint: Vec<usize>,
    by_ptr: HashMap<usize, usize, BuildPtrHasher>,
    slots: Vec<Slot>,
    by_sub: HashMap<u64, usize>,
    keep: Vec<Arc<str>>,
}

struct Slot {
    sub: Option<Arc<Subscriber>>,
    /// The message this slot last got a delivery for, and its index in the unit's output.
    stamp: u64,
    group: usize,
}

/// Pointer keys are already well spread after a multiply.
#[derive(Default, Clone, Copy)]
struct BuildPtrHasher;

#[derive(Default)]
struct PtrHasher(u64);

impl std::hash::Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
}

impl std::hash::BuildHasher for BuildPtrHasher {
    type Hasher = PtrHasher;
    fn build_hasher(&self) -> PtrHasher {
        PtrHasher(0)
    }
}

impl Routes {
    fn refresh(&mut self, shared: &Shared, epoch: u64) {
        if epoch != self.epoch {
            // A slot passed to another subscriber: the hints are stale, the routes by name
            // are not.
            self.epoch = epoch;
            self.hint.clear();
        }
        let v = shared.version.load(Ordering::SeqCst);
        if v != self.version || self.keep.len() > 1 << 20 {
            self.version = v;
            self.hint.clear();
            self.by_ptr.clear();
            self.slots.clear();
            self.by_sub.clear();
            self.keep.clear();
        }
    }

    fn slot(&mut self, shared: &Shared, rule: &Routed<'_>) -> usize {
        let hint = rule.key.slot as usize;
        match self.hint.get(hint) {
            Some(&i) if i > 0 => return i - 1,
            _ => {}
        }
        let name = &rule.info.subscriber;
        let key = Arc::as_ptr(name) as *const u8 as usize;
        if let Some(&i) = self.by_ptr.get(&key) {
            self.set_hint(hint, i);
            return i;
        }
        let sub = {
            let t = shared.table.read().unwrap_or_else(PoisonError::into_inner);
            t.by_name.get(name).cloned()
        };
        let i = match &sub {
            Some(s) => *self.by_sub.entry(s.id).or_insert_with(|| {
                self.slots.push(Slot { sub: sub.clone(), stamp: 0, group: 0 });
                self.slots.len() - 1
            }),
            None => {
                self.slots.push(Slot { sub: None, stamp: 0, group: 0 });
                self.slots.len() - 1
            }
        };
        self.by_ptr.insert(key, i);
        self.keep.push(name.clone());
        self.set_hint(hint, i);
        i
    }

    fn set_hint(&mut self, hint: usize, i: usize) {
        if hint >= self.hint.len() {
            self.hint.resize(hint + 1, 0);
        }
        self.hint[hint] = i + 1;
    }
}

/// One subscriber's delivery of a message, as routing collects it: small (16 bytes), so that
/// collecting and then emitting ten thousand of them moves little memory. Its matching
/// rules are the found rule `first` and the list of [`MoreRule`]s from `more`.
struct Outgoing {
    /// Index in `Routes::slots`.
    route: u32,
    first: u32,
    more: u32,
    last: u32,
}

/// A further matching rule of a subscriber's delivery (index in the found rules) and the
/// next one ([`NONE`]: none).
struct MoreRule {
    found: u32,
    next: u32,
}

const NONE: u32 = u32::MAX;

impl Outgoing {
    /// The matching rules, ascending by id as found. A rule's record is read only for a
    /// tag.
    fn rules(&self, found: &[Routed<'_>], more: &[MoreRule]) -> MatchingRules {
        let rule = |f: u32| {
            let r = &found[f as usize];
            MatchingRule::new(r.key.id, if r.key.tagged { r.info.tag.clone() } else { None })
        };
        let mut rules: MatchingRules = rule(self.first).into();
        let mut next = self.more;
        while next != NONE {
            let m = &more[next as usize];
            rules.push(rule(m.found));
            next = m.next;
        }
        rules
    }
}

fn matcher(shared: &Arc<Shared>) {
    let mut scratch = Scratch::new();
    let mut routes = Routes::default();
    let mut stamp = 0u64;
    let mut found_capacity = 0;
    // One message's deliveries, one per subscriber, and the further rules of subscribers
    // with more than one (see `Outgoing`).
    let mut local: Vec<Outgoing> = Vec::new();
    let mut more_rules: Vec<MoreRule> = Vec::new();
    let mut batch = Vec::new();
    let mut work = Unit { seq: 0, first_position: 0, messages: Vec::new() };
    loop {
        shared.stand_by();
        if !shared.read_unit(&mut batch, &mut work) {
            break;
        }
        // The snapshot is taken after the source handed the messages over, so a rule whose
        // subscribe returned before that applies to them.
        let snapshot = shared.registry.snapshot();
        routes.refresh(shared, snapshot.slot_epoch());
        // When every earlier unit is emitted already (a trickle, or one thread), this thread
        // takes the emitter's role now and pushes each message's deliveries straight into
        // the subscriber queues; otherwise they wait in the reorder buffer for their turn.
        let direct = shared.sequencer.claim(work.seq);
        // A unit smaller than a full batch means the source is not saturated: latency
        // matters more than hand-overs, so each message's subscribers go to the
        // dispatchers at once rather than with the unit's.
        let trickle = direct && work.messages.len() < shared.batch_size;
        let mut runs = shared.pool.runs();
        let mut routed: Vec<(Arc<Subscriber>, Queued)> = Vec::new();
        let mut matched = 0u64;
        let mut unrouted = 0u64;
        // Borrowed from the snapshot: no reference counting per matching rule.
        // Sized as the last unit's, so that a large fan-out does not grow it step by step.
        let mut found: Vec<Routed<'_>> = Vec::with_capacity(found_capacity);
        let mut stage_batch = shared
            .stage
            .as_ref()
            .map(|_| StageBatch { now_ms: stage::now_ms(), ..StageBatch::default() });
        for (i, message) in work.messages.iter().enumerate() {
            snapshot.find_routed_into(message, &mut scratch, &mut found);
            if found.is_empty() {
                continue;
            }
            matched += 1;
            stamp += 1;
            let position = work.first_position + i as u64;
            local.clear();
            more_rules.clear();
            // The message's reaction cell, shared by its deliveries and the analytics stage.
            let mut cell = None;
            if let (Some(stage), Some(b)) = (&shared.stage, &mut stage_batch) {
                cell = stage.cell();
                b.rules.extend(found.iter().map(|r| r.key.id));
                b.messages.push((message.clone(), cell.clone(), b.rules.len()));
            }
            for (f, found_rule) in found.iter().enumerate() {
                let s = routes.slot(shared, found_rule);
                let slot = &mut routes.slots[s];
                if slot.stamp == stamp {
                    // Another rule of a subscriber already in this message's deliveries.
                    if slot.sub.is_some() {
                        let d = &mut local[slot.group];
                        let at = more_rules.len() as u32;
                        more_rules.push(MoreRule { found: f as u32, next: NONE });
                        match d.last {
                            NONE => d.more = at,
                            last => more_rules[last as usize].next = at,
                        }
                        d.last = at;
                    }
                    continue;
                }
                slot.stamp = stamp;
                if slot.sub.is_none() {
                    unrouted += 1;
                    continue;
                }
                slot.group = local.len();
                local.push(Outgoing { route: s as u32, first: f as u32, more: NONE, last: NONE });
            }
            // A message for many subscribers is copied once per `COPY_EVERY` deliveries:
            // dispatchers on different cores then count references on different copies.
            let copies = local.len() >= COPY_ABOVE;
            let bytes = (DELIVERY_BYTES + message_bytes(message)).min(u64::from(u32::MAX)) as u32;
            runs.expect(local.len());
            let mut shared_message = message.clone();
            for (k, d) in local.iter().enumerate() {
                let Some(sub) = &routes.slots[d.route as usize].sub else { continue };
                let mut rules = d.rules(&found, &more_rules);
                if cell.is_some() {
                    rules = rules.with_reaction(cell.clone());
                }
                if copies && k > 0 && k % COPY_EVERY == 0 {
                    shared_message = Arc::new(Message::clone(message));
                }
                let q = Queued { message: shared_message.clone(), rules, position, bytes };
                if direct {
                    emit(sub, q, &mut runs);
                } else {
                    routed.push((sub.clone(), q));
                }
            }
            if trickle {
                runs.flush();
            }
        }
        found_capacity = found.capacity();
        drop(found);
        drop(runs);
        let c = &shared.counters;
        if matched > 0 {
            c.matched.fetch_add(matched, Ordering::Relaxed);
        }
        if unrouted > 0 {
            c.unrouted.fetch_add(unrouted, Ordering::Relaxed);
        }
        let end_position = work.first_position + work.messages.len() as u64;
        let seq = work.seq;
        work.messages.clear();
        if direct {
            if let (Some(stage), Some(b)) = (&shared.stage, stage_batch) {
                stage.send(b);
            }
            unit_emitted(shared, end_position);
            shared.sequencer.release(|b| deliver(shared, b));
        } else {
            let unit = Matched { end_position, routed, stage: stage_batch };
            shared.sequencer.finish(seq, unit, |b| deliver(shared, b));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Emission (in sequence: see `sequence`).

/// As the emitter: pushes a unit's deliveries into the subscriber queues.
fn deliver(shared: &Shared, batch: Matched) {
    let mut runs = shared.pool.runs();
    for (sub, item) in batch.routed {
        emit(&sub, item, &mut runs);
    }
    drop(runs);
    if let (Some(stage), Some(b)) = (&shared.stage, batch.stage) {
        stage.send(b);
    }
    unit_emitted(shared, batch.end_position);
}

/// Pushes one match to its subscriber and schedules the subscriber as the push says.
fn emit(sub: &Arc<Subscriber>, item: Queued, runs: &mut Runs<'_>) {
    match sub.push(item, &mut || runs.flush()) {
        Pushed::Nothing => {}
        Pushed::Queued => runs.add(sub),
        Pushed::Handed(item) => runs.add_handed(sub, item),
    }
}

/// A unit's deliveries are all in the subscriber queues.
fn unit_emitted(shared: &Shared, end_position: u64) {
    shared.counters.processed.store(end_position, Ordering::SeqCst);
    // Frees room for the source to send another unit.
    let _ = shared.permit_rx.try_recv();
}
