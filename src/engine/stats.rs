//! Statistics snapshots: what the engine has received, matched, delivered and dropped, in
//! total and per subscriber. Taken at any time with [`Engine::stats`](super::Engine::stats);
//! every figure is read from counters the pipeline keeps anyway, so taking one is cheap.

use super::DisconnectCode;
use std::sync::Arc;
use std::time::Duration;

/// Where a subscriber's stream is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubscriberState {
    /// Receiving deliveries.
    Active,
    /// Closed for new matches; what is queued is being delivered, then the disconnect notice.
    Closing {
        /// The disconnect code it will get.
        code: DisconnectCode,
    },
    /// Done: no more deliveries.
    Disconnected {
        /// Why.
        code: DisconnectCode,
        /// A sentence for humans (for a failed sink, its error).
        reason: String,
    },
}

/// One subscriber's figures. For every subscriber,
/// `matched == delivered + dropped + queued` (counting deliveries a sink is being handed).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SubscriberStats {
    /// The subscriber's name.
    pub name: Arc<str>,
    /// Where its stream is.
    pub state: SubscriberState,
    /// Matched messages routed to it.
    pub matched: u64,
    /// Matched messages its sink took.
    pub delivered: u64,
    /// Matched messages it will never get: `dropped_full + dropped_rate + dropped_closed`.
    pub dropped: u64,
    /// Dropped because its queue was full ([`FullPolicy`](super::FullPolicy)).
    pub dropped_full: u64,
    /// Dropped by its rate cap.
    pub dropped_rate: u64,
    /// Dropped because its stream was closed with them still queued (stall disconnect,
    /// failed sink, drain timeout at shutdown).
    pub dropped_closed: u64,
    /// The `track` value of its latest limit notice (cumulative drops reported to it).
    pub limit_track: u64,
    /// Limit notices sent.
    pub limit_notices: u64,
    /// `FALLING_BEHIND` warnings sent.
    pub warnings: u64,
    /// Matched messages waiting in its queue or being handed to its sink.
    pub queued: u64,
    /// How full its queue is, in percent.
    pub percent_full: u8,
    /// The error of its sink, if it failed or panicked.
    pub error: Option<String>,
}

/// A snapshot of the whole engine's figures.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EngineStats {
    /// Time since the engine started.
    pub elapsed: Duration,
    /// Messages read from the source.
    pub received: u64,
    /// Messages matched against the rules and routed (a prefix of the received ones).
    pub processed: u64,
    /// Records the source skipped as malformed.
    pub malformed: u64,
    /// Other errors the source reported.
    pub source_errors: u64,
    /// Messages that matched at least one rule, counted once, when read (a backfill's
    /// deliveries of messages read earlier are counted in `routed` and per subscriber, not
    /// here again).
    pub matched: u64,
    /// Matches for subscribers without an attached sink (never attached, or detached).
    pub unrouted: u64,
    /// Messages the registry's small-set prefilter answered without matching them (no
    /// rule's key in them; DESIGN.md, "The small-set prefilter"): shows it is at work.
    pub prefiltered: u64,
    /// Match deliveries routed to subscribers, over all subscribers ever attached.
    pub routed: u64,
    /// Match deliveries sinks took, over all subscribers.
    pub delivered: u64,
    /// Match deliveries dropped, over all subscribers (each also counted per subscriber).
    pub dropped: u64,
    /// The count of leading messages acknowledged to the source (for a source that wants no
    /// acknowledgements, [`Source::wants_acks`](super::Source::wants_acks), 0 until the
    /// end of the stream).
    pub acked: u64,
    /// Bytes the queued deliveries are charged against the engine's memory budget
    /// ([`EngineBuilder::memory_budget`](super::EngineBuilder::memory_budget)).
    pub queued_bytes: u64,
    /// Dispatcher threads still inside a sink call when the engine stopped (after a drain
    /// timeout gave up on a stuck sink): a thread inside user code cannot be reclaimed; it
    /// exits when the call returns. 0 while running.
    pub stuck_threads: u64,
    /// Subscribers currently attached, and those disconnected recently (the last 10,000).
    pub subscribers: Vec<SubscriberStats>,
}

impl EngineStats {
    /// The figures of the subscriber with this name: the attached one, else the one
    /// disconnected last.
    pub fn subscriber(&self, name: &str) -> Option<&SubscriberStats> {
        let mut found = None;
        for s in self.subscribers.iter().filter(|s| &*s.name == name) {
            if !matches!(s.state, SubscriberState::Disconnected { .. }) {
                return Some(s);
            }
            found = Some(s);
        }
        found
    }
}
