//! The engine-wide memory budget for queued deliveries: bytes, not only counts, so that many
//! subscribers with large queues cannot together hold more than the application allows.
//!
//! A queued delivery is charged [`DELIVERY_BYTES`] for its record plus the message's size
//! ([`message_bytes`]). A message shared by several queues is charged in each, so the charge
//! is an upper bound of what the queues hold. Matches handed straight to an idle subscriber
//! (never queued) are not charged: there is at most one per subscriber.

use crate::Message;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// What a queued delivery's record costs besides its message (the queue slot, the matching
/// rule, the shared pointer's count).
pub(crate) const DELIVERY_BYTES: u64 = 64;

/// How long a push waiting for budget sleeps before it looks again (a missed wake-up costs
/// at most this).
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// What a queued delivery of `m` is charged: its record and its message. Derived from the
/// message alone, so the release gives back exactly the charge without the record storing it.
pub(crate) fn charge_of(m: &Message) -> u64 {
    DELIVERY_BYTES + message_bytes(m)
}

/// The estimated heap size of a message: its strings and lists, plus the struct, plus (when
/// it keeps the JSON object it was read from) twice its strings again for that object.
pub(crate) fn message_bytes(m: &Message) -> u64 {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    let list =
        |v: &Option<Vec<String>>| v.as_ref().map_or(0, |v| v.iter().map(|s| s.len() + 24).sum());
    let strings = m.id.len()
        + m.text.len()
        + opt(&m.user)
        + opt(&m.user_id)
        + opt(&m.lang)
        + opt(&m.quoted_text)
        + opt(&m.retweeted_text)
        + opt(&m.in_reply_to_user)
        + opt(&m.in_reply_to_user_id)
        + list(&m.hashtags)
        + list(&m.mentions)
        + list(&m.cashtags)
        + m.urls.as_ref().map_or(0, |v| v.len() * 96)
        + m.media.as_ref().map_or(0, |v| v.len() * 96);
    #[cfg(feature = "json")]
    let strings = strings + if m.source.is_some() { 2 * strings + 256 } else { 0 };
    (std::mem::size_of::<Message>() + strings) as u64
}

/// Bytes charged by queued deliveries, against a limit.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
    /// Pushes waiting for room (a release wakes them only when there are some).
    waiters: AtomicUsize,
    lock: Mutex<()>,
    freed: Condvar,
}

impl Budget {
    pub fn new(limit: u64) -> Self {
        Budget {
            limit,
            used: AtomicU64::new(0),
            waiters: AtomicUsize::new(0),
            lock: Mutex::new(()),
            freed: Condvar::new(),
        }
    }

    /// Whether `cost` more bytes fit.
    pub fn has_room(&self, cost: u64) -> bool {
        self.used.load(Ordering::Relaxed).saturating_add(cost) <= self.limit
    }

    /// Bytes charged now.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn charge(&self, cost: u64) {
        self.used.fetch_add(cost, Ordering::Relaxed);
    }

    /// Gives `cost` bytes back and wakes the pushes waiting for room.
    pub fn release(&self, cost: u64) {
        if cost == 0 {
            return;
        }
        self.used.fetch_sub(cost, Ordering::AcqRel);
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = crate::sync::lock_std(&self.lock);
            self.freed.notify_all();
        }
    }

    /// Waits (at most `max`, and at most a short slice) for a release; the caller looks
    /// again.
    pub fn wait(&self, cost: u64, max: Duration) {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        let guard = crate::sync::lock_std(&self.lock);
        if !self.has_room(cost) {
            let _ = self.freed.wait_timeout(guard, max.min(WAIT_SLICE));
        }
        self.waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Wakes every waiting push (a subscriber closed: its pushes give up).
    pub fn wake(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            let _guard = crate::sync::lock_std(&self.lock);
            self.freed.notify_all();
        }
    }
}
