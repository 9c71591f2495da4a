//! Per-subscriber flow control: queue size, what happens when it is full, stall warnings and
//! rate caps.

use std::time::Duration;

/// What the engine does with a new match for a subscriber whose queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FullPolicy {
    /// Wait for room (in the queue and in the engine's
    /// [memory budget](super::EngineBuilder::memory_budget)): back-pressure that slows the
    /// whole engine down to this subscriber's pace (and so reaches the source). The default:
    /// nothing is ever dropped, unless the caller chose a deadline: a
    /// [stall timeout](SubscriberConfig::stall_timeout) (disconnect code 4) or a
    /// [drain timeout](super::EngineBuilder::drain_timeout) at the end (code 13); each drop
    /// is then reported to the subscriber as a limit notice before the disconnect.
    #[default]
    Block,
    /// Drop the new match; counted and reported as a limit notice.
    DropNewest,
    /// Drop the oldest queued match to make room (keeps the stream fresh, for live
    /// fire-hoses); counted and reported as a limit notice.
    DropOldest,
    /// Drop everything queued and disconnect the subscriber with code 4 (stall), as Twitter's
    /// streaming API did; the drops are counted and reported in a last limit notice.
    Disconnect,
}

/// How one subscriber's deliveries are queued.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SubscriberConfig {
    /// Matched messages the queue holds (control notices do not count). Default 1,024.
    pub capacity: usize,
    /// What happens when it is full (or the engine's memory budget is used up). Default
    /// [`FullPolicy::Block`]: nothing is lost.
    pub policy: FullPolicy,
    /// The queue fill level, in percent, at which a `FALLING_BEHIND` warning is sent (again
    /// after the queue has gone below half of it). Default 60; 0 turns warnings off.
    pub warn_percent: u8,
    /// At most this many matches per second are delivered (a token bucket holding one
    /// second's worth); the rest are dropped and reported as limit notices. Default none.
    pub rate_limit: Option<u32>,
    /// With [`FullPolicy::Block`]: disconnect (code 4) instead of waiting longer than this
    /// for room. Default none (wait as long as it takes).
    pub stall_timeout: Option<Duration>,
}

impl Default for SubscriberConfig {
    fn default() -> Self {
        SubscriberConfig {
            capacity: 1024,
            policy: FullPolicy::default(),
            warn_percent: 60,
            rate_limit: None,
            stall_timeout: None,
        }
    }
}

impl SubscriberConfig {
    /// The defaults (see the fields).
    pub fn new() -> Self {
        SubscriberConfig::default()
    }

    /// Sets the queue capacity (at least 1).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }

    /// Sets the full-queue policy.
    pub fn policy(mut self, policy: FullPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the warning threshold in percent (0 turns warnings off; above 100 means 100).
    pub fn warn_percent(mut self, percent: u8) -> Self {
        self.warn_percent = percent.min(100);
        self
    }

    /// Caps deliveries at `per_second` matches per second (`None` for no cap).
    pub fn rate_limit(mut self, per_second: Option<u32>) -> Self {
        self.rate_limit = per_second;
        self
    }

    /// Sets the stall timeout of [`FullPolicy::Block`].
    pub fn stall_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.stall_timeout = timeout;
        self
    }
}
