//! Backfill: a new rule first gets the recent messages it would have matched, then the live
//! ones, with no gap and no duplicate at the boundary.
//!
//! [`Recorder`] sits on the ingest path: [`Recorder::admit`] records each message in a
//! [`RecentMessages`] ring and hands back the registry snapshot to match it with, both under
//! one short lock. [`Recorder::subscribe_with_backfill`] subscribes under that same lock and
//! copies the ring's list: every message in the copy took its snapshot before the rule
//! existed (so the live path never delivers it: no duplicate), and every message admitted
//! after took one that holds the rule (no gap). The copy is scanned outside the lock with the
//! compiled matcher, oldest first.
//!
//! The engine does the same on its own ingest path: with a ring on
//! ([`EngineBuilder::recent_messages`](crate::engine::EngineBuilder::recent_messages)),
//! [`Engine::subscribe_with_backfill`](crate::engine::Engine::subscribe_with_backfill)
//! delivers the backfill to the subscriber's sink itself, flagged
//! ([`Delivery::is_backfill`](crate::engine::Delivery::is_backfill)), before the live
//! matches; it answers with [`Backfilled`] or a [`BackfillError`]. [`Recorder`] is for an
//! application that runs its own ingest loop.
//!
//! ```
//! use std::time::Duration;
//! use streamtrack::backfill::Recorder;
//! use streamtrack::dry_run::RecentMessages;
//! use streamtrack::registry::{Registry, Scratch};
//! use streamtrack::{Message, Rule};
//! let rec = Recorder::new(Registry::new(), RecentMessages::new(1000, None));
//! rec.admit(Message::new("1", "rust is fun").into());
//! let (id, backfill) = rec
//!     .subscribe_with_backfill("alice", Rule::parse("rust").unwrap(), None, Duration::MAX)
//!     .unwrap();
//! assert_eq!(backfill.len(), 1);
//! let snapshot = rec.admit(Message::new("2", "more rust").into());
//! let msg = rec.ring_len();
//! assert_eq!(msg, 2);
//! let live = snapshot.find(&Message::new("2", "more rust"), &mut Scratch::new()).len();
//! assert_eq!(live, 1);
//! # let _ = id;
//! ```

use crate::dry_run::RecentMessages;
use crate::matcher::{Matcher, Scratch};
use crate::registry::{Registry, RegistryError, RuleId, Snapshot};
use crate::rule::Rule;
use crate::Message;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What [`Engine::subscribe_with_backfill`](crate::engine::Engine::subscribe_with_backfill)
/// did: the new rule's id and how many of the ring's messages it backfilled.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backfilled {
    /// The new rule's id in the registry.
    pub rule: RuleId,
    /// Messages of the ring within the window that the rule matched, each delivered (or, if
    /// the subscriber had no sink attached, counted as unrouted) flagged as backfill.
    pub messages: usize,
    /// Messages the backfill scan matched against (the ring's inside the window, once each).
    pub scanned: u64,
    /// Messages read before the rule took effect: the backfill comes from before this
    /// position in the stream (0-based, counted from the engine's start), live matches from
    /// it on. (With the engine's ring off: the messages read when the rule was subscribed,
    /// a hint only.)
    pub cut: u64,
}

/// Why a subscription with backfill was refused (nothing was subscribed). `E` is the
/// subscription's own error: the registry's, or, with
/// [`Engine::subscribe_with_backfill_by`](crate::engine::Engine::subscribe_with_backfill_by),
/// the caller's (e.g. a durable registry's).
#[derive(Debug)]
#[non_exhaustive]
pub enum BackfillError<E = RegistryError> {
    /// The subscription was refused.
    Refused(E),
    /// The engine has stopped reading: there is no live stream to join.
    Stopped,
}

impl<E: fmt::Display> fmt::Display for BackfillError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BackfillError::Refused(e) => write!(f, "cannot subscribe the rule: {e}"),
            BackfillError::Stopped => f.write_str("the engine has stopped reading"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for BackfillError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BackfillError::Refused(e) => Some(e),
            BackfillError::Stopped => None,
        }
    }
}

impl From<RegistryError> for BackfillError {
    fn from(e: RegistryError) -> Self {
        BackfillError::Refused(e)
    }
}

/// The ingest side of backfill: a ring of recent messages kept in step with a registry.
#[derive(Debug)]
pub struct Recorder {
    registry: Registry,
    ring: Mutex<RecentMessages>,
}

impl Recorder {
    /// Records messages into `ring` for subscriptions to `registry`.
    pub fn new(registry: Registry, ring: RecentMessages) -> Recorder {
        Recorder { registry, ring: Mutex::new(ring) }
    }

    fn ring(&self) -> MutexGuard<'_, RecentMessages> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Messages held.
    pub fn ring_len(&self) -> usize {
        self.ring().len()
    }

    /// Records `msg` and returns the snapshot to match it with (take no other for it).
    pub fn admit(&self, msg: Arc<Message>) -> Snapshot {
        let mut ring = self.ring();
        ring.push_at(Instant::now(), msg);
        self.registry.snapshot()
    }

    /// Subscribes `rule` and returns, oldest first, the messages of the ring received within
    /// `window` that it matches (deliver them flagged as backfill, before any live match).
    pub fn subscribe_with_backfill(
        &self,
        subscriber: &str,
        rule: Rule,
        tag: Option<String>,
        window: Duration,
    ) -> Result<(RuleId, Vec<Arc<Message>>), RegistryError> {
        let matcher = Matcher::new([&rule]);
        let (id, recent) = {
            let ring = self.ring();
            let id = self.registry.subscribe(subscriber, rule, tag)?;
            let now = Instant::now();
            let recent: Vec<Arc<Message>> = ring
                .iter_timed()
                .filter(|(at, _)| now.saturating_duration_since(*at) <= window)
                .map(|(_, m)| m.clone())
                .collect();
            (id, recent)
        };
        let mut scratch = Scratch::new();
        let matched =
            recent.into_iter().filter(|m| !matcher.find(m, &mut scratch).is_empty()).collect();
        Ok((id, matched))
    }
}
