//! The running engine's handle ([`Engine`]): live subscriptions, statistics, stop and
//! join, and what a finished engine reports ([`Finished`], [`StopReason`]).

use super::*;
use crate::backfill::{BackfillError, Backfilled};
use crate::dry_run::DryRunReport;

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

/// The running engine: reads a [`Source`], matches every message against the
/// [`Registry`] on several threads, and delivers each match to its subscriber's [`Sink`]
/// in source order. See the [module documentation](crate::engine) for the design.
///
/// Dropping an engine shuts it down gracefully (like [`Engine::shutdown`]: without a
/// [drain timeout](EngineBuilder::drain_timeout), that waits as long as the sinks take).
pub struct Engine {
    pub(super) shared: Arc<Shared>,
    pub(super) coordinator: Option<JoinHandle<Finished>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("running", &self.is_running()).finish_non_exhaustive()
    }
}

impl Engine {
    /// A builder over `registry` (the engine keeps a clone: subscribe and unsubscribe through
    /// it, or through [`Engine::registry`], while the engine runs).
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use streamtrack::engine::{CallbackSink, IterSource, SubscriberConfig};
    /// use streamtrack::{Engine, Message, Registry, Rule};
    ///
    /// let registry = Registry::new();
    /// registry.subscribe("bob", Rule::parse("rust OR ferris")?, None)?;
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// let engine = Engine::builder(registry)
    ///     .matcher_threads(2)
    ///     .attach_with(
    ///         "bob",
    ///         CallbackSink::new(move |d: streamtrack::Delivery| {
    ///             if let Some(m) = d.message() {
    ///                 log.lock().unwrap().push(m.id.clone());
    ///             }
    ///             Ok(())
    ///         }),
    ///         SubscriberConfig::new().capacity(100),
    ///     )
    ///     .start(IterSource::new(vec![
    ///         Message::new("1", "ferris the crab"),
    ///         Message::new("2", "a gopher"),
    ///         Message::new("3", "Rust 2024"),
    ///     ]))?;
    /// let finished = engine.join();
    /// assert_eq!(finished.stats.received, 3);
    /// // Deliveries keep the source's order, whatever the number of matcher threads.
    /// assert_eq!(*seen.lock().unwrap(), ["1", "3"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
            let mut t = unpoison(self.shared.table.write());
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

    /// Runs `rules` over the ring of recent messages ([`EngineBuilder::recent_messages`])
    /// without subscribing them: for each rule, how many of the ring's messages it matches,
    /// the share, and the ids of up to `sample` of them, in order. The compiled matcher runs
    /// on the calling thread over a copy of the ring's list taken under a short lock (one
    /// `Arc` per batch), so the stream is not held up by the scan. `None` when the ring is
    /// off. (Parse the rules first: [`Rule::parse`](crate::Rule::parse) reports errors with
    /// their line and column.)
    pub fn dry_run(&self, rules: &[crate::Rule], sample: usize) -> Option<DryRunReport> {
        self.shared.recent.as_ref().map(|r| r.dry_run(rules, sample))
    }

    /// Messages in the ring of recent messages (0 when it is off).
    pub fn recent_len(&self) -> usize {
        self.shared.recent.as_ref().map_or(0, |r| r.len())
    }

    /// Approximate bytes the ring of recent messages holds (see
    /// [`EngineBuilder::recent_messages`]; 0 when it is off).
    pub fn recent_bytes(&self) -> usize {
        self.shared.recent.as_ref().map_or(0, |r| r.approx_bytes())
    }

    /// Subscribes `rule` for `subscriber` (like [`Registry::subscribe`]) and first delivers
    /// to the subscriber's sink, oldest first, the messages of the ring of recent messages
    /// ([`EngineBuilder::recent_messages`]) read within `window` that the rule matches, each
    /// flagged as backfill ([`Delivery::is_backfill`](crate::engine::Delivery::is_backfill),
    /// `"backfill":true` in JSON), then the live matches: no gap and no duplicate at the
    /// boundary, whatever arrives while this runs (every message is either in the ring when
    /// the rule takes effect, or matched live with it). The window reaches back at most
    /// as far as the ring does (`Duration::MAX`: the whole ring); with the ring off this is
    /// a plain subscribe.
    ///
    /// Backfill deliveries go through the subscriber's queue like live ones (its policy
    /// applies: under [`FullPolicy::Block`](crate::engine::FullPolicy::Block) none is
    /// lost) and carry only the new rule; they do not move [`Source::ack`] (they count as
    /// handled at the position where the rule took effect). Attach the sink first: with
    /// none attached, the backfill is counted as unrouted.
    ///
    /// Cost: the ring is scanned on the calling thread with a one-rule compiled matcher,
    /// mostly before the rule takes effect, while the stream runs on; only the messages
    /// read during that scan (at most a few rounds) are scanned after it, while later
    /// batches wait for the backfill in the reorder buffer. The call returns once the
    /// backfill is in the subscriber's queue: under `Block`, it waits for room like the
    /// engine's own emission.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streamtrack::engine::{channel_sink, channel_source, Engine};
    /// use streamtrack::{Message, Registry, Rule};
    ///
    /// let (tx, source) = channel_source(16);
    /// let (sink, deliveries) = channel_sink(usize::MAX);
    /// let engine = Engine::builder(Registry::new())
    ///     .recent_messages(10_000, Some(Duration::from_secs(600)))
    ///     .attach("alice", sink)
    ///     .start(source)?;
    /// tx.send(Message::new("1", "rust 1.0 is out"))?;
    /// tx.send(Message::new("2", "gophers"))?;
    /// while engine.recent_len() < 2 {
    ///     std::thread::sleep(Duration::from_millis(1));
    /// }
    /// // What would a rule have matched?
    /// let report = engine.dry_run(&[Rule::parse("rust")?], 5).expect("the ring is on");
    /// assert_eq!((report.messages, report.rules[0].matches), (2, 1));
    /// // Subscribe it, with the last five minutes' matches first.
    /// let done = engine.subscribe_with_backfill(
    ///     "alice",
    ///     Rule::parse("rust")?,
    ///     None,
    ///     Duration::from_secs(300),
    /// )?;
    /// assert_eq!(done.messages, 1);
    /// tx.send(Message::new("3", "rust 2.0?"))?;
    /// drop(tx);
    /// engine.join();
    /// let got: Vec<(String, bool)> = deliveries
    ///     .try_iter()
    ///     .filter_map(|d| Some((d.message()?.id.clone(), d.is_backfill())))
    ///     .collect();
    /// assert_eq!(got, [("1".to_string(), true), ("3".to_string(), false)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe_with_backfill(
        &self,
        subscriber: &str,
        rule: crate::Rule,
        tag: Option<String>,
        window: Duration,
    ) -> Result<Backfilled, BackfillError> {
        let scanned = rule.clone();
        let shown = tag.clone();
        let registry = &self.shared.registry;
        self.shared.subscribe_with_backfill(subscriber, &scanned, shown.as_deref(), window, || {
            registry.subscribe(subscriber, rule, tag)
        })
    }

    /// Like [`Engine::subscribe_with_backfill`], with the subscription made by `subscribe`:
    /// for a registry the engine's is part of, e.g. a
    /// [`DurableRegistry`](crate::durable::DurableRegistry) whose log must record the rule.
    /// `subscribe` is called once, at the cut (under the ring's lock, so keep it short: a
    /// durable registry's group commit rather than a sync per rule), and must subscribe
    /// `rule` with `tag` for `subscriber` to the engine's registry and return its id; `rule`
    /// and `tag` here are what the backfill scans for and shows. Its error comes back as
    /// [`BackfillError::Refused`], with nothing backfilled.
    pub fn subscribe_with_backfill_by<E>(
        &self,
        subscriber: &str,
        rule: &crate::Rule,
        tag: Option<&str>,
        window: Duration,
        subscribe: impl FnOnce() -> Result<crate::registry::RuleId, E>,
    ) -> Result<Backfilled, BackfillError<E>> {
        self.shared.subscribe_with_backfill(subscriber, rule, tag, window, subscribe)
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

    pub(super) fn finish(&mut self) -> Finished {
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
