//! The engine's ring of recent messages (optional: [`EngineBuilder::recent_messages`]), what
//! dry runs and backfills run over, and the cut that joins a backfill to the live stream.
//!
//! The reading thread admits each unit it read into the ring *and* takes the registry
//! snapshot that unit is matched with, under the ring's lock (inside the reader's lock, so
//! the ring is in source order). A backfill subscribes under the same lock and takes the
//! next unit sequence number for itself: every unit admitted before holds a snapshot
//! without the rule and is in the ring (the backfill scans it), every unit admitted after
//! holds the rule (live matching delivers it). The backfill's deliveries then travel as
//! that unit through the [`Sequencer`](super::super::sequence::Sequencer), so they reach
//! the subscriber's queue after every earlier unit and before any later one: no gap, no
//! duplicate, backfill first.

use super::*;
use crate::backfill::{BackfillError, Backfilled};
use crate::dry_run::{DryRun, DryRunReport};
use crate::matcher::{Matcher, Scratch as MatcherScratch};
use crate::registry::{RuleId, Snapshot};
use crate::rule::Rule;

/// A pre-scan stops when fewer than this many messages are left to scan: those are scanned
/// after the cut, while the emission of later units waits for the backfill.
const TAIL: u64 = 4096;
/// At most this many pre-scan rounds (a source faster than the scan never leaves a small
/// tail).
const PRESCAN_ROUNDS: usize = 4;
/// Bytes counted per message kept besides its own estimated size: its `Arc` counts and its
/// slot in a unit's slice.
const PER_MESSAGE: usize = 24;
/// Bytes counted per unit kept: its ring entry and its slice's header.
const PER_CHUNK: usize = 64;

/// One unit's messages, as read together: one admission time, contiguous positions.
#[derive(Clone)]
struct Chunk {
    at: Instant,
    first: u64,
    messages: Arc<[Arc<Message>]>,
    bytes: usize,
}

/// Units that left the ring, to be freed outside the locks.
pub(super) struct Evicted(#[allow(dead_code)] Vec<Chunk>);

/// The ring itself, behind [`Recent::ring`].
struct Ring {
    chunks: VecDeque<Chunk>,
    /// Messages at the front of the first chunk already out of the ring.
    skip: usize,
    /// Messages held (not counting `skip`).
    len: usize,
    bytes: usize,
    capacity: usize,
    max_age: Option<Duration>,
    /// The position of the next message read: the ring holds `[end - len, end)`.
    end: u64,
    /// The sequence number of the next unit, read or backfill (with the ring on, units are
    /// numbered here rather than in [`Reader`]).
    next_seq: u64,
    /// Backfill units numbered and not yet emitted: the matcher threads wait for them
    /// before they leave (see [`Recent::await_backfills`]).
    backfills: usize,
}

/// The engine's ring of recent messages.
pub(super) struct Recent {
    ring: Mutex<Ring>,
    /// Signalled when `backfills` goes down.
    emitted: Condvar,
}

/// What a scan reads: units copied out of the ring (their `Arc`s only) and the positions
/// to read, `[from, end)`.
struct Copied {
    chunks: Vec<Chunk>,
    from: u64,
    end: u64,
}

impl Copied {
    fn messages(&self) -> impl Iterator<Item = (u64, Instant, &Arc<Message>)> + '_ {
        let from = self.from;
        self.chunks.iter().flat_map(move |c| {
            let skip = from.saturating_sub(c.first) as usize;
            c.messages
                .iter()
                .enumerate()
                .skip(skip)
                .map(move |(i, m)| (c.first + i as u64, c.at, m))
        })
    }
}

impl Ring {
    fn start(&self) -> u64 {
        self.end - self.len as u64
    }

    /// Drops units (or the front of one) beyond the bounds, measured at `now`; what is
    /// dropped goes to `out`, to be freed after the lock.
    fn evict(&mut self, now: Instant, out: &mut Vec<Chunk>) {
        while self.len > self.capacity {
            let Some(front) = self.chunks.front() else { break };
            let left = front.messages.len() - self.skip;
            let excess = self.len - self.capacity;
            if excess >= left {
                self.pop_front(out);
            } else {
                self.skip += excess;
                self.len -= excess;
            }
        }
        if let Some(age) = self.max_age {
            while self.chunks.front().is_some_and(|c| now.saturating_duration_since(c.at) > age) {
                self.pop_front(out);
            }
        }
    }

    fn pop_front(&mut self, out: &mut Vec<Chunk>) {
        if let Some(c) = self.chunks.pop_front() {
            self.len -= c.messages.len() - self.skip;
            self.bytes -= c.bytes;
            self.skip = 0;
            out.push(c);
        }
    }

    /// The units holding positions `from..end` (from no earlier than the ring's start).
    fn copy_from(&self, from: u64) -> Copied {
        let from = from.max(self.start());
        let first = self.chunks.partition_point(|c| c.first + c.messages.len() as u64 <= from);
        Copied { chunks: self.chunks.range(first..).cloned().collect(), from, end: self.end }
    }
}

impl Recent {
    /// A ring of at most `capacity` messages, each kept at most `max_age` if given.
    pub(super) fn new(capacity: usize, max_age: Option<Duration>) -> Recent {
        Recent {
            ring: Mutex::new(Ring {
                chunks: VecDeque::new(),
                skip: 0,
                len: 0,
                bytes: 0,
                capacity,
                max_age,
                end: 0,
                next_seq: 0,
                backfills: 0,
            }),
            emitted: Condvar::new(),
        }
    }

    /// Admits a unit read at `first` (the reader's lock held): numbers it and returns the
    /// registry snapshot to match it with, both under the ring's lock (the cut), and what
    /// left the ring (drop it after the reader's lock: freeing cold messages is the ring's
    /// main cost).
    pub(super) fn admit(
        &self,
        registry: &Registry,
        first: u64,
        messages: &[Arc<Message>],
    ) -> (u64, Snapshot, Evicted) {
        let bytes = PER_CHUNK
            + messages
                .iter()
                .map(|m| super::super::budget::message_bytes(m) as usize + PER_MESSAGE)
                .sum::<usize>();
        let chunk = Chunk { at: Instant::now(), first, messages: messages.into(), bytes };
        let mut gone = Vec::new();
        let (seq, snapshot) = {
            let mut ring = lock(&self.ring);
            let seq = ring.next_seq;
            ring.next_seq += 1;
            let at = chunk.at;
            let n = chunk.messages.len();
            ring.end = first + n as u64;
            ring.len += n;
            ring.bytes += chunk.bytes;
            ring.chunks.push_back(chunk);
            ring.evict(at, &mut gone);
            (seq, registry.snapshot())
        };
        (seq, snapshot, Evicted(gone))
    }

    /// Messages held.
    pub(super) fn len(&self) -> usize {
        lock(&self.ring).len
    }

    /// Approximate bytes held (see [`EngineBuilder::recent_messages`]).
    pub(super) fn approx_bytes(&self) -> usize {
        lock(&self.ring).bytes
    }

    /// Copies what is held from position `from` on, first dropping what is older than the
    /// age bound now (a short lock: one `Arc` per unit is copied).
    fn copy(&self, from: u64) -> Copied {
        let mut gone = Vec::new();
        let copied = {
            let mut ring = lock(&self.ring);
            ring.evict(Instant::now(), &mut gone);
            ring.copy_from(from)
        };
        drop(gone);
        copied
    }

    /// Runs `rules` over the messages held (copied under a short lock, scanned outside it).
    pub(super) fn dry_run(&self, rules: &[Rule], sample: usize) -> DryRunReport {
        let copied = self.copy(0);
        let mut run = DryRun::new(rules, sample);
        for (_, _, m) in copied.messages() {
            run.feed(m);
        }
        run.report()
    }

    /// A matcher thread is leaving (reading is over): waits until every backfill unit
    /// numbered is emitted, so that the units after it are emitted before the end of the
    /// stream closes the subscribers.
    pub(super) fn await_backfills(&self) {
        let mut ring = lock(&self.ring);
        while ring.backfills > 0 {
            ring = unpoison(self.emitted.wait_timeout(ring, PERMIT_WAIT)).0;
        }
    }

    fn backfill_done(&self) {
        lock(&self.ring).backfills -= 1;
        self.emitted.notify_all();
    }
}

/// Scans `copied` with `matcher` and keeps what matches, skipping messages admitted before
/// `since` (outside the backfill's window already, so also at the cut); returns how many it
/// matched against.
fn scan(
    copied: &Copied,
    since: Option<Instant>,
    matcher: &Matcher,
    scratch: &mut MatcherScratch,
    found: &mut Vec<(u64, Instant, Arc<Message>)>,
) -> u64 {
    let mut scanned = 0;
    for (position, at, m) in copied.messages() {
        if since.is_some_and(|since| at < since) {
            continue;
        }
        scanned += 1;
        if !matcher.find(m, scratch).is_empty() {
            found.push((position, at, m.clone()));
        }
    }
    scanned
}

impl Shared {
    /// Takes a permit for a backfill unit, as a read does for its unit.
    fn take_permit<E>(&self) -> Result<(), BackfillError<E>> {
        while self.permit_tx.send_timeout((), PERMIT_WAIT).is_err() {
            if self.reading_over.load(Ordering::SeqCst) || self.stop.load(Ordering::SeqCst) {
                return Err(BackfillError::Stopped);
            }
        }
        Ok(())
    }

    /// See [`Engine::subscribe_with_backfill_by`]: `rule` is what the backfill scans for,
    /// `subscribe` makes the subscription (called once, under the ring's lock).
    pub(super) fn subscribe_with_backfill<E>(
        &self,
        subscriber: &str,
        rule: &Rule,
        tag: Option<&str>,
        window: Duration,
        subscribe: impl FnOnce() -> Result<RuleId, E>,
    ) -> Result<Backfilled, BackfillError<E>> {
        let Some(recent) = &self.recent else {
            if self.reading_over.load(Ordering::SeqCst) {
                return Err(BackfillError::Stopped);
            }
            let rule = subscribe().map_err(BackfillError::Refused)?;
            let cut = self.counters.received.load(Ordering::SeqCst);
            return Ok(Backfilled { rule, messages: 0, scanned: 0, cut });
        };
        let matcher = Matcher::new([rule]);
        let tag_shown: Option<Arc<str>> = tag.map(Arc::from);
        let mut scratch = MatcherScratch::new();
        let mut found = Vec::new();
        let mut scanned = 0u64;
        // What is older than the window now is older at the cut too: never matched.
        let since = Instant::now().checked_sub(window);
        // Pre-scan, outside any lock, while the engine runs on: only the tail that arrives
        // meanwhile is left for after the cut, when later units wait for this one.
        let mut to = 0u64;
        for _ in 0..PRESCAN_ROUNDS {
            let copied = recent.copy(to);
            if copied.end - copied.from <= TAIL {
                break;
            }
            scanned += scan(&copied, since, &matcher, &mut scratch, &mut found);
            to = copied.end;
        }
        self.take_permit()?;
        // The cut: subscribed and numbered under the ring's lock (see the module's
        // documentation).
        let cut = {
            let mut gone = Vec::new();
            let mut ring = lock(&recent.ring);
            let cut = if self.reading_over.load(Ordering::SeqCst) {
                Err(BackfillError::Stopped)
            } else {
                subscribe().map_err(BackfillError::Refused)
            };
            let cut = cut.map(|id| {
                let seq = ring.next_seq;
                ring.next_seq += 1;
                ring.backfills += 1;
                let now = Instant::now();
                ring.evict(now, &mut gone);
                (id, seq, now, ring.start(), ring.copy_from(to))
            });
            drop(ring);
            drop(gone);
            cut
        };
        let (id, seq, now, start, tail): (RuleId, u64, Instant, u64, Copied) = match cut {
            Ok(c) => c,
            Err(e) => {
                let _ = self.permit_rx.try_recv();
                return Err(e);
            }
        };
        scanned += scan(&tail, since, &matcher, &mut scratch, &mut found);
        let end_position = tail.end;
        let sub = unpoison(self.table.read()).by_name.get(subscriber).cloned();
        let mut routed = Vec::new();
        let mut messages = 0;
        for (position, at, message) in found {
            if position < start || now.saturating_duration_since(at) > window {
                continue;
            }
            messages += 1;
            if let Some(sub) = &sub {
                let mut rules =
                    MatchingRules::from(MatchingRule::new(id, tag_shown.clone())).backfill();
                if let Some(stage) = &self.stage {
                    // Scored on demand, if asked (the analytics stage counted this message
                    // when it was read, if anything matched it then; not again).
                    rules = rules.with_reaction(stage.cell());
                }
                routed.push((sub.clone(), Queued { message, rules, position: end_position }));
            }
        }
        if sub.is_none() {
            self.counters.unrouted.fetch_add(messages as u64, Ordering::Relaxed);
        }
        // Emitted in its turn: after every unit admitted before the cut, before any after.
        let unit = Matched { end_position, routed, stage: None };
        self.sequencer.finish(seq, unit, |b| deliver(self, b));
        recent.backfill_done();
        Ok(Backfilled { rule: id, messages, scanned, cut: end_position })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(first: u64, n: u64) -> Vec<Arc<Message>> {
        (first..first + n).map(|i| Arc::new(Message::new(i.to_string(), "x".repeat(100)))).collect()
    }

    fn positions(c: &Copied) -> Vec<u64> {
        c.messages()
            .map(|(p, _, m)| {
                assert_eq!(m.id, p.to_string(), "a message at its own position");
                p
            })
            .collect()
    }

    #[test]
    fn the_ring_keeps_exactly_its_capacity_and_numbers_units_in_order() {
        let registry = Registry::new();
        let recent = Recent::new(10, None);
        let mut first = 0;
        for (seq, n) in [4u64, 4, 4, 7, 1].into_iter().enumerate() {
            let (s, _, _) = recent.admit(&registry, first, &unit(first, n));
            assert_eq!(s, seq as u64);
            first += n;
            assert_eq!(recent.len() as u64, first.min(10));
        }
        // 20 read, the last 10 kept, the front batch trimmed by an offset.
        assert_eq!(positions(&recent.copy(0)), (10..20).collect::<Vec<_>>());
        assert_eq!(positions(&recent.copy(15)), (15..20).collect::<Vec<_>>());
        assert!(positions(&recent.copy(20)).is_empty());
        // A plain 100-character post: its estimate plus 24 bytes, and 64 per batch.
        let per = crate::engine::budget::message_bytes(&Message::new("12", "x".repeat(100)));
        assert!((500..700).contains(&(per as usize + PER_MESSAGE)), "{per}");
        let r = lock(&recent.ring);
        let want: usize = r.chunks.iter().map(|c| c.bytes).sum();
        assert_eq!(r.bytes, want);
    }

    #[test]
    fn the_age_bound_drops_whole_batches() {
        let registry = Registry::new();
        let recent = Recent::new(100, Some(Duration::ZERO));
        recent.admit(&registry, 0, &unit(0, 3));
        std::thread::sleep(Duration::from_millis(2));
        recent.admit(&registry, 3, &unit(3, 2));
        // The older batch is past the bound at the second admission.
        assert_eq!(recent.len(), 2);
        std::thread::sleep(Duration::from_millis(2));
        assert!(positions(&recent.copy(0)).is_empty(), "a copy drops what aged out");
        assert_eq!((recent.len(), recent.approx_bytes()), (0, 0));
    }
}
