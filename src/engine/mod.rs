//! The streaming engine: pulls messages from a [`Source`], matches them against the live
//! [`Registry`](crate::registry::Registry) on several threads, and delivers each match to its
//! subscriber's [`Sink`] in source order, with per-subscriber flow control
//! ([rule language](crate::rule_language#7-streams-and-deliveries)).
//!
//! ```
//! use streamtrack::engine::{channel_sink, Delivery, Engine, IterSource};
//! use streamtrack::registry::Registry;
//! use streamtrack::{Message, Rule};
//!
//! let registry = Registry::new();
//! let rule = registry.subscribe("alice", Rule::parse("rust").unwrap(), Some("lang".into()))
//!     .unwrap();
//! let (sink, deliveries) = channel_sink(usize::MAX);
//! let engine = Engine::builder(registry.clone())
//!     .attach("alice", sink)
//!     .start(IterSource::new(vec![
//!         Message::new("1", "I love Rust"),
//!         Message::new("2", "nothing to see"),
//!     ]))
//!     .unwrap();
//! // Rules can be added and removed through `registry` while the engine runs; `join` waits
//! // for the end of the stream.
//! let finished = engine.join();
//! assert_eq!(finished.stats.received, 2);
//! let got: Vec<Delivery> = deliveries.try_iter().collect();
//! match &got[0] {
//!     Delivery::Match { message, matching_rules } => {
//!         assert_eq!(message.id, "1");
//!         assert_eq!(matching_rules[0].id, rule);
//!         assert_eq!(matching_rules[0].tag.as_deref(), Some("lang"));
//!     }
//!     other => panic!("{other:?}"),
//! }
//! // The stream always ends with a disconnect notice (code 5: the source ended).
//! assert!(matches!(got[1], Delivery::Disconnect { code, .. } if code.0 == 5));
//! ```
//!
//! # Design
//!
//! - **Reading.** The matcher threads read the [`Source`] in turn (leader/followers): a
//!   thread that needs work takes a permit (the number of units read but not yet emitted is
//!   bounded, `in_flight`, which is how back-pressure reaches the source), takes the
//!   reader's lock, calls [`Source::next_batch`], numbers the messages (their *position*)
//!   and releases the lock; the next thread may then block in the source while this one
//!   matches. Each message is wrapped in an `Arc` (shared by the subscribers it goes to,
//!   not copied per subscriber; a message for hundreds of subscribers is shared in a few
//!   copies, one per 64 deliveries, so that dispatchers on different cores do not contend
//!   on one reference count). The reader also acknowledges handled messages
//!   ([`Source::ack`]), as far as the watchdog last found them handled (a scan of every
//!   subscriber every 50 ms, skipped for a source that wants no acknowledgements,
//!   [`Source::wants_acks`]). So a
//!   message is read, matched and emitted on one thread, with no hand-over: a dedicated
//!   source thread (the first design) cost a thread hop per batch and, on two cores,
//!   competed with the matchers for CPU (DESIGN.md, "The engine", has the figures). While
//!   the source trickles (a read returns less than a full batch) one thread does all the
//!   work and the others stand by, so that reads do not hand the lock from thread to thread
//!   (a wake-up each); the first full batch wakes them again.
//! - **Matching.** A thread takes a registry snapshot *after* reading (so a `subscribe`
//!   that returned before the source handed a message over applies to it), finds the
//!   matching rules, and groups them by subscriber.
//! - **Ordered emission.** Units carry sequence numbers. A thread whose unit is the next to
//!   emit (always so with one thread, usually with a trickle) pushes each message's
//!   deliveries straight into the subscriber queues as it matches; otherwise the finished
//!   unit goes into a reorder buffer, and the thread that completes the next unit in
//!   sequence emits it (and any ready after it). So each subscriber sees matches in source
//!   order with any number of matcher threads, and there is no extra thread hop.
//! - **Subscriber queues.** Bounded per subscriber (1,024 matches by default) and in bytes over
//!   all subscribers (a memory budget, 256 MiB by default); when full, the subscriber's
//!   [`FullPolicy`] applies: block (back-pressure, the default: nothing is lost), drop newest,
//!   drop oldest, or disconnect (code 4). An optional rate cap drops above a rate. Every drop
//!   is counted and reported to the subscriber in a cumulative [`Delivery::Limit`] notice; a
//!   [`Delivery::Warning`] is sent when the queue passes the warning threshold (60% by
//!   default).
//! - **Dispatchers.** A small pool of threads hands queued deliveries to sinks: a subscriber
//!   with work is scheduled once (the subscribers a unit woke are handed over together),
//!   served in chunks, then released; a match for an idle subscriber skips the queue and
//!   travels with the subscriber to its dispatcher, which gives the subscriber back without
//!   taking its lock when nothing came after it (the subscriber's *turn*, a small state
//!   machine model-checked with loom). A sink that blocks only holds up its own
//!   subscriber: a watchdog hands the rest of a stuck dispatcher's work to a replacement. A
//!   sink that fails or panics disconnects its subscriber only.
//! - **Analytics (optional).** With [`EngineBuilder::analytics`], the emitting thread also
//!   hands each unit's matched messages and rule ids, in order, to the analytics stage's own
//!   threads through a bounded queue (gathered into batches while the source is saturated,
//!   so that a sparse stream does not wake the stage per unit); each delivery carries its
//!   message's reaction cell
//!   ([`Delivery::reaction`]), computed once per message off the matcher threads; bursts
//!   come out as [`EngineEvent::Burst`].
//! - **End of stream.** At the end of the source's stream, on [`Engine::shutdown`] or a fatal
//!   source error, reading stops, everything already read is matched and emitted (a
//!   coordinator thread waits for that), every
//!   subscriber gets what is queued and then a [`Delivery::Disconnect`] (code 5, 1 or 10),
//!   and the source is acknowledged as far as everything was delivered or its loss reported.
//!   By default the engine waits as long as the sinks take; an optional
//!   [drain timeout](EngineBuilder::drain_timeout) gives up on stuck sinks only (their drops
//!   reported, code 13), so healthy subscribers still get everything.
//!
//! # Guarantees
//!
//! Under [`FullPolicy::Block`] nothing is dropped unless the caller chose a deadline (a stall
//! or drain timeout), and then every drop is reported to its subscriber. [`Source::ack`]`(n)`
//! means each of the first `n` messages was delivered to every sink it matched (its `send`
//! returned) or its loss was reported to that subscriber; a loss that cannot be reported (a
//! failed or abandoned sink) holds acknowledgements before it. README.md, "Delivery
//! guarantees", has the full statement.
//!
//! Subscribers are attached ([`Engine::attach`]) and detached while the engine runs; rules
//! are added and removed through the registry at any time. Matches for a subscriber that has
//! no sink attached are counted as `unrouted` in [`EngineStats`].

mod budget;
mod config;
mod delivery;
mod dispatch;
mod error;
mod event;
mod pipeline;
mod sequence;
mod sink;
mod source;
mod stats;
mod subscriber;

#[cfg(feature = "async")]
pub mod async_adapters;
#[cfg(feature = "json")]
pub mod jsonl;

pub use config::{FullPolicy, SubscriberConfig};
pub use delivery::{Delivery, DisconnectCode, MatchingRule, MatchingRules, FALLING_BEHIND};
pub use error::EngineError;
pub use event::EngineEvent;
pub use pipeline::{Engine, EngineBuilder, Finished, StopReason, DEFAULT_MEMORY_BUDGET};
pub use sink::{channel_sink, CallbackSink, ChannelSink, Sink, SinkError};
pub use source::{
    channel_source, ChannelSource, IterSource, Source, SourceError, SourceErrorKind, SourceStatus,
    POLL_INTERVAL,
};
pub use stats::{EngineStats, SubscriberState, SubscriberStats};

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_send<T: Send>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<Engine>();
        assert_send_sync::<Delivery>();
        assert_send_sync::<EngineStats>();
        assert_send_sync::<SourceError>();
        assert_send_sync::<SinkError>();
        assert_send::<ChannelSource>();
        assert_send::<ChannelSink>();
    }
}
