//! The event hub between the engine and the SSE clients: a bounded ring of numbered events.
//!
//! Publishing never waits: the engine's threads append to the ring (the oldest event goes
//! when it is full) and bump a `watch` counter. Each client keeps only its cursor (the id of
//! the last event it was sent) and reads after it at its own pace, so a slow client costs
//! nothing to the others or to matching; when the ring has moved past its cursor, it is sent
//! a `gap` event saying how many events it missed, then the oldest events still held. The
//! same read serves `Last-Event-ID` after a reconnect.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;

/// One published event: its id (from 1, increasing), its SSE event name and its JSON data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Position in the stream, from 1; sent as the SSE `id:` so clients can resume.
    pub id: u64,
    /// The SSE event name (`tick`, `burst`, `rules`).
    pub kind: &'static str,
    /// The event's data, one line of JSON.
    pub data: String,
}

/// What a client reads after its cursor.
#[derive(Clone, Debug, Default)]
pub struct Read {
    /// Events the client will never see (the ring moved past them); 0 when none.
    pub missed: u64,
    /// The events after the cursor (or after the gap), oldest first.
    pub events: Vec<Arc<Event>>,
}

struct Ring {
    events: VecDeque<Arc<Event>>,
    capacity: usize,
    last: u64,
}

/// The bounded, numbered event stream shared by the engine (publisher) and the SSE clients.
pub struct Hub {
    ring: Mutex<Ring>,
    tx: watch::Sender<u64>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("last_id", &self.last_id()).finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub keeping the last `capacity` events (at least 1) for slow or reconnecting clients.
    pub fn new(capacity: usize) -> Hub {
        let (tx, _) = watch::channel(0);
        Hub {
            ring: Mutex::new(Ring {
                events: VecDeque::with_capacity(capacity.clamp(1, 1 << 16)),
                capacity: capacity.max(1),
                last: 0,
            }),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an event (dropping the oldest when full) and wakes the clients; never waits
    /// for them. Returns its id.
    pub fn publish(&self, kind: &'static str, data: String) -> u64 {
        let id = {
            let mut r = self.lock();
            r.last += 1;
            let id = r.last;
            if r.events.len() >= r.capacity {
                r.events.pop_front();
            }
            r.events.push_back(Arc::new(Event { id, kind, data }));
            id
        };
        self.tx.send_replace(id);
        id
    }

    /// The id of the last event published (0 before the first).
    pub fn last_id(&self) -> u64 {
        self.lock().last
    }

    /// At most `max` events after `cursor` (the last id a client has), with the number of
    /// events it missed when the ring no longer holds the one right after its cursor.
    pub fn read_after(&self, cursor: u64, max: usize) -> Read {
        let r = self.lock();
        let Some(oldest) = r.events.front().map(|e| e.id) else {
            return Read::default();
        };
        let missed = oldest.saturating_sub(cursor.saturating_add(1));
        let from = cursor.max(oldest - 1);
        let skip = (from + 1 - oldest) as usize;
        let events = r.events.iter().skip(skip).take(max).cloned().collect();
        Read { missed, events }
    }

    /// A receiver woken at each publication (its value is the last id).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_after_the_cursor_and_reports_a_gap_when_the_ring_moved_on() {
        let hub = Hub::new(4);
        for i in 0..10 {
            hub.publish("tick", i.to_string());
        }
        assert_eq!(hub.last_id(), 10);
        let r = hub.read_after(8, 100);
        assert_eq!(r.missed, 0);
        assert_eq!(r.events.iter().map(|e| e.id).collect::<Vec<_>>(), [9, 10]);
        // Ring holds 7..=10: a client at 2 missed 3..=6.
        let r = hub.read_after(2, 100);
        assert_eq!(r.missed, 4);
        assert_eq!(r.events.iter().map(|e| e.id).collect::<Vec<_>>(), [7, 8, 9, 10]);
        let r = hub.read_after(6, 2);
        assert_eq!((r.missed, r.events.len()), (0, 2));
        assert!(hub.read_after(10, 5).events.is_empty());
        assert!(hub.read_after(99, 5).events.is_empty());
    }
}
