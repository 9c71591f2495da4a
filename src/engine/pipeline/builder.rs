//! The engine's settings and its start ([`EngineBuilder`]): threads, subscribers and
//! their sinks, the memory budget, analytics, the drain deadline.

use super::*;

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
    recent: Option<(usize, Option<Duration>)>,
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
            .field("recent", &self.recent)
            .finish_non_exhaustive()
    }
}

pub(super) fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

impl EngineBuilder {
    pub(super) fn new(registry: Registry) -> Self {
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
            recent: None,
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
    /// [`FullPolicy::Block`](crate::engine::FullPolicy::Block) reach the source.
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
    /// waits as long as the sinks take, so that [`FullPolicy::Block`](crate::engine::FullPolicy::Block)
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
    /// queue not empty, the subscriber's [`FullPolicy`](crate::engine::FullPolicy) applies as if the
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
    /// carries its message's reaction ([`Delivery::reaction`](crate::engine::Delivery::reaction),
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

    /// Keeps a ring of the most recent messages read: at most `capacity` of them, and with
    /// `max_age` only those read within it (off by default; a `capacity` of 0 leaves it
    /// off). [`Engine::dry_run`] runs new rules over it and
    /// [`Engine::subscribe_with_backfill`] delivers a new rule's matches in it before the
    /// live ones.
    ///
    /// Cost: the reading thread adds each unit (batch) it reads to the ring and takes the
    /// unit's registry snapshot under the ring's lock, one short lock per batch; the ring
    /// holds an `Arc` per message, so a message's memory lives as long as the ring keeps
    /// it. [`Engine::recent_bytes`] counts per message its estimated size (the one the
    /// memory budget charges: the `Message` struct and its strings, the strings twice over
    /// when it keeps the JSON it was read from) plus 24 bytes, and 64 bytes per batch: about
    /// 560 bytes for a 100-character post read as plain text, 610 on average for the
    /// workload generator's messages (582 MB for a million). The ring may keep up to one
    /// batch beyond `capacity` alive (a batch is freed whole). With the ring off, nothing of
    /// this runs.
    pub fn recent_messages(mut self, capacity: usize, max_age: Option<Duration>) -> Self {
        self.recent = (capacity > 0).then_some((capacity, max_age));
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
            recent: self.recent.map(|(capacity, age)| super::recent::Recent::new(capacity, age)),
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
        let host: Arc<dyn Host> = shared.clone();
        Pool::start(&host).map_err(EngineError::Spawn)?;
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
