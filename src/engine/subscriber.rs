//! One subscriber's bounded queue and its flow control: full-queue policies, rate cap, stall
//! warnings, limit notices, and the end of its stream.
//!
//! The emitting thread pushes matches in source order ([`Subscriber::push`]); one dispatcher
//! at a time takes chunks off the front ([`Subscriber::take_chunk`]) and hands them to the
//! sink. Control notices (warning, limit) are not queued behind matches: they go out with the
//! next chunk, coalesced (one limit notice carries the latest cumulative count).

use super::budget::{charge_of, Budget};
use super::{
    Delivery, DisconnectCode, FullPolicy, MatchingRules, Sink, SubscriberConfig, SubscriberState,
    SubscriberStats,
};
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use crate::sync::{lock, unpoison, Condvar, Mutex};
use crate::Message;
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A matched message on its way to one subscriber.
#[derive(Debug)]
pub(crate) struct Queued {
    pub message: Arc<Message>,
    /// The subscriber's matching rules (one, the usual case, is held without allocating).
    pub rules: MatchingRules,
    /// The message's position in the source's stream (0-based).
    pub position: u64,
}

// What it is charged against the memory budget while queued is derived from its message
// (`charge_of`), not stored: 56 bytes, so that a dispatcher's run entry (`RunEntry`: the
// subscriber and the handed match) fills one cache line instead of straddling two (issue 23's
// fan-out: a stored `bytes: u32` made it 72).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Option<Queued>>() <= 56);

impl Queued {
    #[cfg(test)]
    pub(crate) fn for_test(position: u64) -> Queued {
        Queued {
            message: Arc::new(Message::new(position.to_string(), "test")),
            rules: super::MatchingRule::new(crate::registry::RuleId::from_u64(position), None)
                .into(),
            position,
        }
    }

    /// What it is charged against the memory budget while queued: its record and its
    /// message (the same at the charge and the release: derived from the message alone).
    pub(crate) fn charge_of(&self) -> u64 {
        charge_of(&self.message)
    }

    pub(crate) fn into_delivery(self) -> Delivery {
        Delivery::Match { message: self.message, matching_rules: self.rules }
    }
}

#[derive(Clone, Debug)]
enum Life {
    Open,
    Closing { code: DisconnectCode, reason: String },
    Closed { code: DisconnectCode, reason: String },
}

/// A subscriber's queue and figures. `repr(C)`, in this order: what a delivery to an idle
/// subscriber reads and writes (the hand-over counted, the turn settled, nothing left to
/// send) shares the lock's cache line and the next one; the rest (drops, notices, rate cap)
/// follows.
#[derive(Debug)]
#[repr(C)]
struct State {
    /// Matches a dispatcher has taken and not yet reported back.
    inflight: u64,
    inflight_first: u64,
    matched: u64,
    delivered: u64,
    /// Matches of a chunk still in a sink call when the stream was aborted: counted as
    /// dropped then, moved to delivered if the sink takes them after all.
    abandoned: u64,
    limit_pending: bool,
    warning_pending: Option<u8>,
    warned: bool,
    disconnect_taken: bool,
    /// Whether a push waits for room (so a take must wake it).
    waiting: bool,
    items: VecDeque<Queued>,
    life: Life,
    /// Cumulative matches not delivered (what the next limit notice reports).
    undelivered: u64,
    tokens: f64,
    refilled: Option<Instant>,
    error: Option<String>,
    dropped_full: u64,
    dropped_rate: u64,
    dropped_closed: u64,
    limit_notices: u64,
    limit_track: u64,
    warnings: u64,
    /// The position of the oldest match dropped and not yet covered by a limit or disconnect
    /// notice taken for the sink (`u64::MAX`: none).
    unreported_from: u64,
    /// The oldest loss covered by a notice in the chunk the sink is being handed: reported
    /// once that chunk is through (`u64::MAX`: none).
    notice_from: u64,
    /// Bytes its queued matches are charged against the memory budget.
    bytes: u64,
    /// Set when the drain deadline gave up on it while matches were still being emitted:
    /// they are dropped and reported, and its stream closes with code 13.
    expired: Option<String>,
}

/// What [`Subscriber::push`] did with a match.
#[derive(Debug)]
pub(crate) enum Pushed {
    /// Nothing new to send (the stream is closed).
    Nothing,
    /// Queued (or dropped with a limit notice to send): a dispatcher should run the
    /// subscriber, if none is scheduled.
    Queued,
    /// The subscriber was idle (nothing queued, in flight or scheduled): the match was not
    /// queued but counted in flight, and the caller holds the subscriber's turn. It hands
    /// both to a dispatcher, which sends the match before anything queued after it.
    Handed(Queued),
}

/// What a dispatcher took off a queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// Deliveries were appended; `last` when the final disconnect notice is among them,
    /// `drained` when the queue is empty after them.
    Some { last: bool, drained: bool },
    /// Nothing to do right now (and the caller may not let go of the subscriber).
    Empty,
    /// Nothing to do: the turn was given back, the caller lets go.
    Unscheduled,
    /// The stream is closed; nothing will come.
    Gone,
}

/// The subscriber's turn (`Subscriber::turn`): nobody has it, and nothing is queued, in
/// flight or to notify.
pub(crate) const IDLE: u8 = 0;
/// Somebody holds the turn: the subscriber is on the run queue, or a dispatcher runs it.
pub(crate) const BUSY: u8 = 1;
/// Held, and something was queued or noticed since it was taken: the holder must look at the
/// queue before giving the turn back.
pub(crate) const DIRTY: u8 = 2;
/// The stream is over: nobody takes the turn again.
pub(crate) const ENDED: u8 = 3;

/// A subscriber: its sink, queue and counters. What a delivery to an idle subscriber touches
/// comes first (`repr(C)`), in the cache line of the `Arc`'s counts: the turn, the hand-over,
/// the handed count and the sink (see `HAND_OVER_LINE`); the acknowledgement scan's
/// `oldest_pending` and the drain's `sink_calls` open the next line, beside the state lock.
#[repr(C)]
pub(crate) struct Subscriber {
    /// [`IDLE`], [`BUSY`], [`DIRTY`] or [`ENDED`]. Taken from `IDLE` with a compare-exchange
    /// (a hand-over, or [`Subscriber::mark_work`]); given back by its holder with a
    /// compare-exchange from `BUSY` (nothing happened meanwhile) or under the state lock
    /// after finding nothing to send. So a match queued during a turn is seen by the holder
    /// or schedules the subscriber again, never neither.
    pub turn: AtomicU8,
    /// A match for an idle subscriber may be handed over without the lock: no rate cap,
    /// and not given up on by the drain deadline (cleared with `State::expired`). One flag
    /// for both, so that the hand-over tests one byte beside the turn.
    quick: AtomicBool,
    /// The position of a match handed over without the lock and not yet counted (`u64::MAX`:
    /// none): the next operation under the lock counts it in flight (`absorb_handed`).
    handed_at: AtomicU64,
    /// Handed matches delivered and given back without the lock: counted as matched and
    /// delivered on top of the state's figures. Written only by the turn's holder.
    handed_delivered: AtomicU64,
    /// Only the dispatcher running the subscriber locks it (never contended: not modelled
    /// under loom).
    pub sink: std::sync::Mutex<Option<Box<dyn Sink>>>,
    /// The position of the oldest match still queued or in flight under the lock, or lost
    /// and not yet reported to the sink (`u64::MAX`: none); with `handed_at`, read without
    /// the lock for acknowledgements ([`Subscriber::pending_from`]).
    oldest_pending: AtomicU64,
    /// Sink calls returned (written by the turn's holder, beside what it writes anyway):
    /// the drain deadline tells a slow sink from a stuck one by it.
    sink_calls: AtomicU64,
    state: Mutex<State>,
    /// Unique among the engine's subscribers (attach order).
    pub id: u64,
    pub name: Arc<str>,
    pub config: SubscriberConfig,
    not_full: Condvar,
    /// Set once, by whoever ends the stream for good (see `Shared::retire`).
    pub finished: AtomicBool,
    budget: Arc<Budget>,
}

/// The bytes of a subscriber in the first cache line of its `Arc` allocation (the two
/// reference counts come first), when the allocator puts the allocation on a line boundary,
/// as jemalloc does for this size class (448 bytes).
#[cfg(all(target_pointer_width = "64", not(loom)))]
const HAND_OVER_LINE: usize = 64 - 2 * std::mem::size_of::<usize>();

// Everything a delivery to an idle subscriber reads or writes, on the routing thread (`quick`,
// the turn, `handed_at`, the count) and on the dispatcher (the sink's lock,
// `handed_at`, `handed_delivered`, the turn), lies in that one line: the line moves between
// the two cores once each way per delivery and nothing else of the subscriber does. Issue 23's
// fan-out regression: `handed_delivered` sat at byte 48, the first of the second line, so every
// delivery cost the dispatcher a second line of each subscriber (dispatcher CPU per fan-out
// of 10,000: 803 µs against 658 µs with it in the first line, 626 µs before issue 23).
#[cfg(all(target_pointer_width = "64", not(loom)))]
const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(offset_of!(Subscriber, turn) < HAND_OVER_LINE);
    assert!(offset_of!(Subscriber, quick) < HAND_OVER_LINE);
    assert!(offset_of!(Subscriber, handed_at) + size_of::<AtomicU64>() <= HAND_OVER_LINE);
    assert!(offset_of!(Subscriber, handed_delivered) + size_of::<AtomicU64>() <= HAND_OVER_LINE);
    assert!(
        offset_of!(Subscriber, sink) + size_of::<std::sync::Mutex<Option<Box<dyn Sink>>>>()
            <= HAND_OVER_LINE
    );
};

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber").field("id", &self.id).field("name", &self.name).finish()
    }
}

impl Subscriber {
    pub fn new(
        id: u64,
        name: Arc<str>,
        sink: Box<dyn Sink>,
        config: SubscriberConfig,
        budget: Arc<Budget>,
    ) -> Self {
        let tokens = config.rate_limit.map_or(0.0, f64::from);
        Subscriber {
            id,
            name,
            state: Mutex::new(State {
                items: VecDeque::new(),
                inflight: 0,
                inflight_first: 0,
                abandoned: 0,
                undelivered: 0,
                limit_pending: false,
                warning_pending: None,
                warned: false,
                life: Life::Open,
                disconnect_taken: false,
                waiting: false,
                tokens,
                refilled: None,
                error: None,
                matched: 0,
                delivered: 0,
                dropped_full: 0,
                dropped_rate: 0,
                dropped_closed: 0,
                limit_notices: 0,
                limit_track: 0,
                warnings: 0,
                unreported_from: u64::MAX,
                notice_from: u64::MAX,
                bytes: 0,
                expired: None,
            }),
            config: SubscriberConfig { capacity: config.capacity.max(1), ..config },
            not_full: Condvar::new(),
            turn: AtomicU8::new(IDLE),
            quick: AtomicBool::new(config.rate_limit.is_none()),
            handed_at: AtomicU64::new(u64::MAX),
            handed_delivered: AtomicU64::new(0),
            finished: AtomicBool::new(false),
            oldest_pending: AtomicU64::new(u64::MAX),
            sink_calls: AtomicU64::new(0),
            budget,
            sink: std::sync::Mutex::new(Some(sink)),
        }
    }

    /// Counts matches a sink took from the chunk it was given.
    fn settle_delivered(st: &mut State, delivered: u64) {
        if st.abandoned > 0 {
            let late = delivered.min(st.abandoned);
            st.abandoned -= late;
            st.dropped_closed -= late;
        }
        st.delivered += delivered;
        st.inflight = 0;
    }

    /// Publishes the oldest position not fully handled: queued, in flight, or lost and not
    /// yet reported (one atomic, so that the acknowledgement scan reads no more than before
    /// losses were tracked).
    fn refresh_oldest(&self, st: &State) {
        let queued = if st.inflight > 0 {
            st.inflight_first
        } else {
            st.items.front().map_or(u64::MAX, |q| q.position)
        };
        let oldest = queued.min(st.unreported_from).min(st.notice_from);
        // Only the holder of the state lock writes it, so comparing first is exact, and
        // skips a locked write per delivery (a fan-out pushes one match to each of many
        // idle subscribers). Release suffices: the emitter publishes `processed` after its
        // pushes with a stronger store, and a stale read only makes an acknowledgement late.
        if self.oldest_pending.load(Ordering::Relaxed) != oldest {
            self.oldest_pending.store(oldest, Ordering::Release);
        }
    }

    /// Drops the queue: its matches are lost (to be reported) and their bytes given back.
    fn drop_all_queued(&self, st: &mut State) -> u64 {
        let n = st.items.len() as u64;
        if let Some(front) = st.items.front() {
            let at = front.position;
            self.lose(st, at);
        }
        st.items.clear();
        let bytes = std::mem::take(&mut st.bytes);
        self.budget.release(bytes);
        n
    }

    fn charge(&self, st: &mut State, bytes: u64) {
        st.bytes += bytes;
        self.budget.charge(bytes);
    }

    fn uncharge(&self, st: &mut State, bytes: u64) {
        st.bytes -= bytes;
        self.budget.release(bytes);
    }

    /// A match at `position` will not be delivered: acknowledgements stay behind it until a
    /// notice reporting it has gone through (see `pending_from`).
    fn lose(&self, st: &mut State, position: u64) {
        if position < st.unreported_from {
            st.unreported_from = position;
            self.refresh_oldest(st);
        }
    }

    /// A match for a closed stream: dropped; it needs reporting unless the disconnect notice
    /// went out already (it tells the subscriber that nothing more comes).
    fn drop_closed(&self, st: &mut State, position: u64) {
        st.dropped_closed += 1;
        if !st.disconnect_taken {
            self.lose(st, position);
        }
    }

    /// A match for a subscriber the drain deadline gave up on: dropped and reported.
    fn drop_expired(&self, st: &mut State, position: u64) -> Pushed {
        st.dropped_closed += 1;
        st.undelivered += 1;
        st.limit_pending = true;
        self.lose(st, position);
        Pushed::Queued
    }

    /// Whether a dispatcher is serving it (inside a sink call, or between two).
    pub fn sink_busy(&self) -> bool {
        matches!(self.sink.try_lock(), Err(std::sync::TryLockError::WouldBlock))
    }

    /// The chunk handed to the sink went through: the losses its notices reported are
    /// reported.
    fn chunk_sent(&self, st: &mut State) {
        if st.notice_from != u64::MAX {
            st.notice_from = u64::MAX;
            self.refresh_oldest(st);
        }
    }

    /// A sink call returned (see `sink_calls`).
    pub fn note_call(&self) {
        let n = self.sink_calls.load(Ordering::Relaxed);
        self.sink_calls.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// For the drain deadline: a figure that moves while the sink takes deliveries, and
    /// whether the subscriber has anything to take or a push waiting for it.
    pub fn progress(&self) -> (u64, bool) {
        let st = lock(&self.state);
        let moved = self
            .sink_calls
            .load(Ordering::Relaxed)
            .wrapping_add(self.handed_delivered.load(Ordering::Acquire))
            .wrapping_add(st.delivered);
        let work = !matches!(st.life, Life::Closed { .. })
            && (!st.items.is_empty()
                || st.limit_pending
                || st.inflight > 0
                || st.waiting
                || self.handed_at.load(Ordering::Acquire) != u64::MAX
                || matches!(st.life, Life::Closing { .. }));
        (moved, work)
    }

    /// Closes the stream for a stall: what is queued is dropped and reported in a last limit
    /// notice, then the disconnect notice follows.
    fn stall(&self, st: &mut State, reason: String) {
        let n = self.drop_all_queued(st);
        st.dropped_full += n;
        st.undelivered += n;
        if st.undelivered > 0 {
            st.limit_pending = true;
        }
        st.life = Life::Closing { code: DisconnectCode::STALL, reason };
        if st.waiting {
            self.not_full.notify_all();
        }
        self.budget.wake();
    }

    /// Queues one match under the subscriber's policy, or hands it over if the subscriber is
    /// idle (see [`Pushed`]). May block under [`FullPolicy::Block`]:
    /// `before_wait` is called first (to hand over subscribers scheduled but not yet
    /// runnable, this one perhaps among them).
    pub fn push(&self, item: Queued, before_wait: &mut dyn FnMut()) -> Pushed {
        // A free turn means idle (see `turn`): with no rate cap to charge, the match is
        // handed over without the lock, touching one cache line of the subscriber.
        if self.quick.load(Ordering::Relaxed) && self.take_idle_turn() {
            return self.hand_over(item);
        }
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        st.matched += 1;
        if !matches!(st.life, Life::Open) {
            self.drop_closed(&mut st, item.position);
            return Pushed::Nothing;
        }
        if st.expired.is_some() {
            return self.drop_expired(&mut st, item.position);
        }
        if let Some(rate) = self.config.rate_limit {
            let now = Instant::now();
            let rate = f64::from(rate);
            if let Some(then) = st.refilled {
                let add = now.duration_since(then).as_secs_f64() * rate;
                st.tokens = (st.tokens + add).min(rate);
            }
            st.refilled = Some(now);
            if st.tokens < 1.0 {
                st.dropped_rate += 1;
                st.undelivered += 1;
                st.limit_pending = true;
                self.lose(&mut st, item.position);
                return Pushed::Queued;
            }
            st.tokens -= 1.0;
        }
        let capacity = self.config.capacity;
        let cost = item.charge_of();
        // Full: the queue holds `capacity` matches, or it holds some and the engine's memory
        // budget has no room for this one (a subscriber with nothing queued may always queue
        // one, so the budget never starves it).
        let full = |st: &State| {
            st.items.len() >= capacity || (!st.items.is_empty() && !self.budget.has_room(cost))
        };
        if full(&st) {
            let deadline = self.config.stall_timeout.map(|t| Instant::now() + t);
            let mut flushed = false;
            while full(&st) {
                match self.config.policy {
                    FullPolicy::DropNewest => {
                        st.dropped_full += 1;
                        st.undelivered += 1;
                        st.limit_pending = true;
                        self.lose(&mut st, item.position);
                        return Pushed::Queued;
                    }
                    FullPolicy::DropOldest => {
                        if let Some(old) = st.items.pop_front() {
                            self.lose(&mut st, old.position);
                            self.uncharge(&mut st, old.charge_of());
                        }
                        st.dropped_full += 1;
                        st.undelivered += 1;
                        st.limit_pending = true;
                        if st.items.len() < capacity {
                            // Room for this one (the budget may stay a little over: one
                            // drop per push keeps a push's cost bounded).
                            break;
                        }
                    }
                    FullPolicy::Disconnect => {
                        st.dropped_full += 1;
                        st.undelivered += 1;
                        self.lose(&mut st, item.position);
                        let reason = if st.items.len() >= capacity {
                            format!(
                                "the subscriber's queue of {capacity} messages was full: it reads too slowly"
                            )
                        } else {
                            "the engine's memory budget for queued messages was used up: the subscriber reads too slowly".to_string()
                        };
                        self.stall(&mut st, reason);
                        self.refresh_oldest(&st);
                        return Pushed::Queued;
                    }
                    FullPolicy::Block => {
                        if !flushed {
                            flushed = true;
                            before_wait();
                        }
                        let now = Instant::now();
                        if deadline.is_some_and(|d| now >= d) {
                            st.waiting = false;
                            st.dropped_full += 1;
                            st.undelivered += 1;
                            self.lose(&mut st, item.position);
                            let reason = format!(
                                "the subscriber's queue stayed full for longer than {:?}",
                                self.config.stall_timeout.unwrap_or_default()
                            );
                            self.stall(&mut st, reason);
                            self.refresh_oldest(&st);
                            return Pushed::Queued;
                        }
                        st.waiting = true;
                        if st.items.len() >= capacity {
                            st = match deadline {
                                None => unpoison(self.not_full.wait(st)),
                                Some(deadline) => {
                                    unpoison(self.not_full.wait_timeout(st, deadline - now)).0
                                }
                            };
                        } else {
                            // Waiting for the budget: other subscribers' dispatchers free it,
                            // and this one's dispatcher needs the lock to take from the queue.
                            drop(st);
                            let max = deadline.map_or(Duration::MAX, |d| d - now);
                            self.budget.wait(cost, max);
                            st = lock(&self.state);
                            self.absorb_handed(&mut st);
                        }
                        st.waiting = false;
                        if !matches!(st.life, Life::Open) {
                            self.drop_closed(&mut st, item.position);
                            return Pushed::Nothing;
                        }
                        if st.expired.is_some() {
                            return self.drop_expired(&mut st, item.position);
                        }
                    }
                }
            }
        }
        if st.items.is_empty()
            && st.inflight == 0
            && !st.limit_pending
            && st.warning_pending.is_none()
            && self.take_idle_turn()
        {
            // Idle: no queue round trip. (Taking the turn with a compare-exchange makes
            // this thread the only one to schedule it.) The match is counted like one
            // handed over without the lock (`absorb_handed`, `finish_handed`).
            st.matched -= 1;
            return self.hand_over(item);
        }
        self.charge(&mut st, cost);
        st.items.push_back(item);
        let percent = self.config.warn_percent as usize;
        if percent > 0 && !st.warned && st.items.len() * 100 >= percent * capacity {
            st.warned = true;
            st.warning_pending = Some((st.items.len() * 100 / capacity).min(100) as u8);
        }
        if st.items.len() == 1 && st.inflight == 0 {
            self.refresh_oldest(&st);
        }
        Pushed::Queued
    }

    /// Takes the turn if nobody has it.
    fn take_idle_turn(&self) -> bool {
        self.turn.load(Ordering::Relaxed) == IDLE
            && self.turn.compare_exchange(IDLE, BUSY, Ordering::SeqCst, Ordering::Relaxed).is_ok()
    }

    /// Something was queued or noticed under the lock: returns whether the caller took the
    /// turn and must hand the subscriber to a dispatcher; otherwise its holder will see it
    /// (the turn is marked [`DIRTY`]) or the stream is over.
    pub fn mark_work(&self) -> bool {
        let mut turn = self.turn.load(Ordering::Relaxed);
        loop {
            let next = match turn {
                IDLE => BUSY,
                BUSY => DIRTY,
                _ => return false,
            };
            match self.turn.compare_exchange_weak(turn, next, Ordering::SeqCst, Ordering::Relaxed) {
                Ok(_) => return turn == IDLE,
                Err(now) => turn = now,
            }
        }
    }

    /// The dispatcher delivered the match handed over at `position` with the turn: gives the
    /// turn back without the lock if nothing happened meanwhile (true). Otherwise (false) the
    /// caller serves the queue with [`Subscriber::take_chunk`], reporting `delivered`.
    pub fn finish_handed(&self, position: u64, delivered: &mut u64) -> bool {
        if self
            .handed_at
            .compare_exchange(position, u64::MAX, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // Counted in flight under the lock meanwhile: report it there.
            *delivered = 1;
            return false;
        }
        *delivered = 0;
        let n = self.handed_delivered.load(Ordering::Relaxed);
        self.handed_delivered.store(n + 1, Ordering::Release);
        self.turn.compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Relaxed).is_ok()
    }

    /// Ends the stream for good: nobody takes the turn again (under the state lock, by the
    /// turn's holder or by [`Subscriber::abort`]).
    fn end_turns(&self) {
        // A swap, not a store: see `take_chunk` on loom and read-modify-writes.
        self.turn.swap(ENDED, Ordering::SeqCst);
    }

    /// The caller holds the turn of an idle subscriber: `item` goes to a dispatcher with it,
    /// and acknowledgements wait for it from now on.
    fn hand_over(&self, item: Queued) -> Pushed {
        self.handed_at.store(item.position, Ordering::Release);
        Pushed::Handed(item)
    }

    /// Counts a match handed over without the lock as matched and in flight, as the push
    /// would have under the lock. Every operation under the lock calls this first, so the
    /// counts never miss it.
    fn absorb_handed(&self, st: &mut State) {
        let at = self.handed_at.load(Ordering::Acquire);
        if at == u64::MAX {
            return;
        }
        // Acknowledgements stay behind it while it moves (see `pending_from`).
        if self.oldest_pending.load(Ordering::Relaxed) > at {
            self.oldest_pending.store(at, Ordering::Release);
        }
        // A swap: the dispatcher may be giving it back at the same time (`finish_handed`),
        // and exactly one of the two must count it.
        if self.handed_at.swap(u64::MAX, Ordering::AcqRel) == u64::MAX {
            self.refresh_oldest(st);
            return;
        }
        st.matched += 1;
        st.inflight = 1;
        st.inflight_first = at;
    }

    /// The position of the oldest match not yet fully handled (`u64::MAX`: none), for
    /// acknowledgements: what is queued or in flight, or handed over, or lost and not yet
    /// reported to the sink (`oldest_pending` covers the last too). The hand-over is read
    /// first: a match leaving it for the state (`absorb_handed`) is in `oldest_pending`
    /// before it leaves `handed_at`.
    pub fn pending_from(&self) -> u64 {
        let handed = self.handed_at.load(Ordering::Acquire);
        handed.min(self.oldest_pending.load(Ordering::Acquire))
    }

    /// The stream ended before the handed match could be sent: it is counted as dropped.
    pub fn drop_handed(&self) {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        st.dropped_closed += st.inflight;
        st.inflight = 0;
        self.end_turns();
        self.refresh_oldest(&st);
    }

    fn warning_text(&self) -> &'static str {
        match self.config.policy {
            FullPolicy::Block => "When it is full, the whole stream waits for you.",
            FullPolicy::DropNewest => "When it is full, new messages will be dropped.",
            FullPolicy::DropOldest => "When it is full, the oldest messages will be dropped.",
            FullPolicy::Disconnect => "You will be disconnected when it is full.",
        }
    }

    /// Reports the previous chunk's `delivered` matches, then appends the next deliveries
    /// (pending notices first, then up to `max` matches, then the disconnect notice when the
    /// stream is closing and nothing is left) to `out`. With nothing to send and
    /// `may_unschedule`, clears the scheduled flag (under the lock, so a concurrent push
    /// either is seen here or sees the flag cleared and schedules again).
    pub fn take_chunk(
        &self,
        delivered: u64,
        max: usize,
        out: &mut Vec<Delivery>,
        may_unschedule: bool,
    ) -> Taken {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        Self::settle_delivered(&mut st, delivered);
        self.chunk_sent(&mut st);
        if matches!(st.life, Life::Closed { .. }) {
            self.end_turns();
            self.refresh_oldest(&st);
            return Taken::Gone;
        }
        let start = out.len();
        if let Some(percent) = st.warning_pending.take() {
            out.push(Delivery::falling_behind(percent, self.warning_text()));
            st.warnings += 1;
        }
        if st.limit_pending {
            st.limit_pending = false;
            st.limit_notices += 1;
            st.limit_track = st.undelivered;
            out.push(Delivery::Limit { track: st.undelivered });
            // The losses so far are reported once this chunk is through.
            st.notice_from =
                st.notice_from.min(std::mem::replace(&mut st.unreported_from, u64::MAX));
        }
        let n = max.min(st.items.len());
        if let Some(front) = st.items.front() {
            st.inflight_first = front.position;
        }
        let mut bytes = 0;
        for q in st.items.drain(..n) {
            bytes += q.charge_of();
            out.push(q.into_delivery());
        }
        if bytes > 0 {
            self.uncharge(&mut st, bytes);
        }
        st.inflight = n as u64;
        if n > 0 && st.waiting {
            self.not_full.notify_all();
        }
        if st.warned
            && st.items.len() * 200 < self.config.warn_percent as usize * self.config.capacity
        {
            st.warned = false;
        }
        self.refresh_oldest(&st);
        let mut last = false;
        if st.items.is_empty() && !st.disconnect_taken {
            if let Life::Closing { code, reason } = &st.life {
                out.push(Delivery::Disconnect {
                    code: *code,
                    stream_name: self.name.to_string(),
                    reason: reason.clone(),
                });
                st.disconnect_taken = true;
                // It reports every loss not reported yet, and those after it.
                st.notice_from =
                    st.notice_from.min(std::mem::replace(&mut st.unreported_from, u64::MAX));
                last = true;
            }
        }
        if out.len() > start {
            Taken::Some { last, drained: st.items.is_empty() }
        } else if may_unschedule {
            // Under the state lock, which orders it against a push: anything queued or
            // noticed before is in what was taken, anything after finds the turn free. A
            // swap, not a store: a compare-exchange must read it (read-modify-writes read
            // the latest value), and loom models that only between read-modify-writes.
            self.turn.swap(IDLE, Ordering::AcqRel);
            Taken::Unscheduled
        } else {
            Taken::Empty
        }
    }

    /// Reports the previous chunk's `delivered` matches.
    pub fn settle(&self, delivered: u64) {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        Self::settle_delivered(&mut st, delivered);
        self.chunk_sent(&mut st);
        self.refresh_oldest(&st);
    }

    /// Marks the stream done after the disconnect notice went out; returns the code and
    /// reason.
    pub fn mark_closed(&self, delivered: u64) -> (DisconnectCode, String) {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        Self::settle_delivered(&mut st, delivered);
        self.chunk_sent(&mut st);
        let (code, reason) = match &st.life {
            Life::Closing { code, reason } | Life::Closed { code, reason } => {
                (*code, reason.clone())
            }
            Life::Open => (DisconnectCode::NORMAL, String::new()),
        };
        st.life = Life::Closed { code, reason: reason.clone() };
        self.end_turns();
        self.refresh_oldest(&st);
        (code, reason)
    }

    /// The sink failed after taking `delivered` of the chunk's matches: everything else is
    /// dropped and the stream closed with code 10.
    pub fn fail(&self, delivered: u64, error: &str) {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        if st.inflight > delivered {
            let at = st.inflight_first;
            self.lose(&mut st, at);
        }
        let lost = st.inflight.saturating_sub(delivered) + self.drop_all_queued(&mut st);
        Self::settle_delivered(&mut st, delivered);
        st.dropped_closed += lost;
        st.error = Some(error.to_string());
        st.life = Life::Closed {
            code: DisconnectCode::STREAM_EXCEPTION,
            reason: format!("the sink failed: {error}"),
        };
        self.end_turns();
        self.not_full.notify_all();
        self.budget.wake();
        self.refresh_oldest(&st);
    }

    /// Starts closing the stream (no new matches; the queue is delivered, then the
    /// disconnect notice). Returns whether it was open.
    pub fn close(&self, code: DisconnectCode, reason: &str) -> bool {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        if !matches!(st.life, Life::Open) {
            return false;
        }
        st.life = match st.expired.take() {
            Some(why) => Life::Closing { code: DisconnectCode::DRAIN_TIMEOUT, reason: why },
            None => Life::Closing { code, reason: reason.to_string() },
        };
        if st.waiting {
            self.not_full.notify_all();
            self.budget.wake();
        }
        true
    }

    /// The drain deadline ran out before the sink took what is queued: that is dropped and
    /// reported (a limit notice, then disconnect code 13, which go out when the sink takes
    /// them); a chunk the sink holds still counts if it returns. Returns whether anything
    /// changed (the caller schedules the subscriber).
    pub fn expire(&self, reason: &str) -> bool {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        if matches!(st.life, Life::Closed { .. }) || st.disconnect_taken {
            return false;
        }
        let n = self.drop_all_queued(&mut st);
        st.dropped_closed += n;
        st.undelivered += n;
        if n > 0 {
            st.limit_pending = true;
        }
        if matches!(st.life, Life::Open) {
            // Matches still being emitted are dropped and reported until the stream is
            // closed, then with code 13 (see `close`).
            st.expired = Some(reason.to_string());
            self.quick.store(false, Ordering::Relaxed);
        } else {
            st.life =
                Life::Closing { code: DisconnectCode::DRAIN_TIMEOUT, reason: reason.to_string() };
        }
        if st.waiting {
            self.not_full.notify_all();
        }
        self.budget.wake();
        self.refresh_oldest(&st);
        true
    }

    /// Whether its stream ended with losses never reported to it (or none reported as its
    /// end): then acknowledgements stay behind them (see `Shared::ack_watermark`).
    pub fn holds_acks(&self) -> bool {
        let st = lock(&self.state);
        !st.disconnect_taken || st.unreported_from != u64::MAX || st.notice_from != u64::MAX
    }

    /// The code and reason its stream was (or is being) closed with.
    pub fn closing(&self) -> (DisconnectCode, String) {
        let st = lock(&self.state);
        match &st.life {
            Life::Closing { code, reason } | Life::Closed { code, reason } => {
                (*code, reason.clone())
            }
            Life::Open => (DisconnectCode::SHUTDOWN, String::new()),
        }
    }

    /// Gives up on delivering (drain timeout): the queue is dropped and the stream closed.
    /// Returns whether it was not closed yet.
    pub fn abort(&self, reason: &str) -> bool {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        if matches!(st.life, Life::Closed { .. }) {
            return false;
        }
        if st.inflight > 0 {
            let at = st.inflight_first;
            self.lose(&mut st, at);
        }
        let n = self.drop_all_queued(&mut st);
        st.dropped_closed += n;
        // A chunk a sink still holds is given up too (see `settle_delivered`).
        st.dropped_closed += st.inflight;
        st.abandoned += st.inflight;
        st.inflight = 0;
        st.life = Life::Closed { code: DisconnectCode::DRAIN_TIMEOUT, reason: reason.to_string() };
        self.end_turns();
        self.not_full.notify_all();
        self.budget.wake();
        self.refresh_oldest(&st);
        true
    }

    /// The subscriber's figures now.
    pub fn stats(&self) -> SubscriberStats {
        let mut st = lock(&self.state);
        self.absorb_handed(&mut st);
        let state = match &st.life {
            Life::Open => SubscriberState::Active,
            Life::Closing { code, .. } => SubscriberState::Closing { code: *code },
            Life::Closed { code, reason } => {
                SubscriberState::Disconnected { code: *code, reason: reason.clone() }
            }
        };
        // Handed matches given back without the lock: matched and delivered at once.
        let handed = self.handed_delivered.load(Ordering::Acquire);
        SubscriberStats {
            name: self.name.clone(),
            state,
            matched: st.matched + handed,
            delivered: st.delivered + handed,
            dropped: st.dropped_full + st.dropped_rate + st.dropped_closed,
            dropped_full: st.dropped_full,
            dropped_rate: st.dropped_rate,
            dropped_closed: st.dropped_closed,
            limit_track: st.limit_track,
            limit_notices: st.limit_notices,
            warnings: st.warnings,
            queued: st.items.len() as u64 + st.inflight,
            percent_full: (st.items.len() * 100 / self.config.capacity).min(100) as u8,
            error: st.error.clone(),
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::engine::budget::DELIVERY_BYTES;
    use crate::engine::CallbackSink;

    fn subscriber(config: SubscriberConfig) -> Subscriber {
        let sink = CallbackSink::new(|_: Delivery| Ok(()));
        Subscriber::new(1, "s".into(), Box::new(sink), config, Arc::new(Budget::new(u64::MAX)))
    }

    fn positions(out: &[Delivery]) -> Vec<String> {
        out.iter().filter_map(|d| d.message().map(|m| m.id.clone())).collect()
    }

    /// Issue 23's fan-out: a match handed to an idle subscriber never touches the engine-wide
    /// budget (no shared atomic per delivery); a queued one is charged its record and message,
    /// derived from the message, and exactly that is given back when it leaves the queue,
    /// taken or dropped.
    #[test]
    fn hand_overs_are_not_charged_and_queued_matches_give_back_their_charge() {
        let budget = Arc::new(Budget::new(u64::MAX));
        let sink = CallbackSink::new(|_: Delivery| Ok(()));
        let config = SubscriberConfig::new().capacity(2).policy(FullPolicy::DropOldest);
        let sub = Subscriber::new(1, "s".into(), Box::new(sink), config, budget.clone());
        assert!(matches!(sub.push(Queued::for_test(0), &mut || {}), Pushed::Handed(_)));
        assert_eq!(budget.used(), 0, "a hand-over is not charged");
        let items: Vec<Queued> = (1..4).map(Queued::for_test).collect();
        let charges: Vec<u64> = items.iter().map(Queued::charge_of).collect();
        assert!(charges.iter().all(|&c| c > DELIVERY_BYTES));
        for item in items {
            assert!(matches!(sub.push(item, &mut || {}), Pushed::Queued));
        }
        // The first queued one was dropped for the third (capacity 2).
        assert_eq!(budget.used(), charges[1] + charges[2]);
        let mut out = Vec::new();
        sub.take_chunk(1, 64, &mut out, false);
        assert_eq!(budget.used(), 0, "taken matches give their charge back");
    }

    #[test]
    fn an_idle_subscriber_is_handed_the_match_and_later_ones_queue_behind_it() {
        let sub = subscriber(SubscriberConfig::new());
        let Pushed::Handed(first) = sub.push(Queued::for_test(0), &mut || {}) else {
            panic!("an idle subscriber takes the match at once");
        };
        assert_eq!(first.position, 0);
        // The pusher now holds the subscriber's turn: the next match queues.
        assert_eq!(sub.turn.load(Ordering::SeqCst), BUSY);
        assert!(matches!(sub.push(Queued::for_test(1), &mut || {}), Pushed::Queued));
        let st = sub.stats();
        assert_eq!((st.matched, st.queued, st.delivered), (2, 2, 0));
        // Acknowledgements wait for the handed match, the oldest pending.
        assert_eq!(sub.pending_from(), 0);
        // The dispatcher reports the handed match with its first take and gets the rest.
        let mut out = Vec::new();
        assert_eq!(
            sub.take_chunk(1, 64, &mut out, true),
            Taken::Some { last: false, drained: true }
        );
        assert_eq!(positions(&out), ["1"]);
        assert_eq!(sub.pending_from(), 1);
        out.clear();
        assert_eq!(sub.take_chunk(1, 64, &mut out, true), Taken::Unscheduled);
        assert_eq!(sub.turn.load(Ordering::SeqCst), IDLE);
        let st = sub.stats();
        assert_eq!((st.matched, st.queued, st.delivered), (2, 0, 2));
        assert_eq!(sub.pending_from(), u64::MAX);
        // Idle again: the next match is handed over again.
        assert!(matches!(sub.push(Queued::for_test(2), &mut || {}), Pushed::Handed(_)));
    }

    #[test]
    fn a_subscriber_scheduled_elsewhere_or_with_a_notice_to_send_is_not_handed_a_match() {
        let sub = subscriber(SubscriberConfig::new());
        sub.turn.store(BUSY, Ordering::SeqCst);
        assert!(matches!(sub.push(Queued::for_test(0), &mut || {}), Pushed::Queued));

        // A limit notice waiting to go out goes before the next match: no hand-over.
        let sub = subscriber(SubscriberConfig::new().rate_limit(Some(1)));
        assert!(matches!(sub.push(Queued::for_test(0), &mut || {}), Pushed::Handed(_)));
        let mut out = Vec::new();
        assert_eq!(sub.take_chunk(1, 64, &mut out, true), Taken::Unscheduled);
        // Over the rate: dropped, with a notice pending.
        assert!(matches!(sub.push(Queued::for_test(1), &mut || {}), Pushed::Queued));
        assert_eq!(sub.stats().dropped_rate, 1);
        std::thread::sleep(std::time::Duration::from_millis(1_100));
        assert!(matches!(sub.push(Queued::for_test(2), &mut || {}), Pushed::Queued));
        sub.turn.store(BUSY, Ordering::SeqCst);
        assert_eq!(
            sub.take_chunk(0, 64, &mut out, true),
            Taken::Some { last: false, drained: true }
        );
        assert!(matches!(out[0], Delivery::Limit { track: 1 }));
        assert_eq!(positions(&out), ["2"]);
    }

    /// The hand-over without the lock tests one flag (`quick`), which giving up on the
    /// subscriber clears: a match for an idle subscriber given up on is dropped and reported,
    /// never handed to its sink.
    #[test]
    fn an_idle_subscriber_given_up_on_is_not_handed_a_match() {
        let sub = subscriber(SubscriberConfig::new());
        assert!(sub.expire("drain timeout"));
        assert_eq!(sub.turn.load(Ordering::SeqCst), IDLE);
        assert!(matches!(sub.push(Queued::for_test(0), &mut || {}), Pushed::Queued));
        let st = sub.stats();
        assert_eq!((st.matched, st.dropped_closed, st.queued), (1, 1, 0));
        assert_eq!(sub.pending_from(), 0, "the loss holds acknowledgements until reported");
        assert!(sub.mark_work());
        let mut out = Vec::new();
        sub.take_chunk(0, 64, &mut out, true);
        assert!(matches!(out[0], Delivery::Limit { track: 1 }), "{out:?}");
        assert!(positions(&out).is_empty());
    }

    #[test]
    fn a_handed_match_in_flight_when_the_stream_is_aborted_counts_as_dropped_until_delivered() {
        let sub = subscriber(SubscriberConfig::new());
        assert!(matches!(sub.push(Queued::for_test(0), &mut || {}), Pushed::Handed(_)));
        assert!(sub.abort("drain timeout"));
        let st = sub.stats();
        assert_eq!((st.matched, st.delivered, st.dropped_closed), (1, 0, 1));
        // The sink took it after all.
        let mut out = Vec::new();
        assert_eq!(sub.take_chunk(1, 64, &mut out, true), Taken::Gone);
        let st = sub.stats();
        assert_eq!((st.matched, st.delivered, st.dropped_closed), (1, 1, 0));
    }
}

/// The scheduling protocol of a subscriber, model-checked: whoever takes the subscriber's turn
/// (the `scheduled` flag) does so under the queue's lock or with a swap, and the dispatcher lets
/// go only under the lock, so a match pushed while the dispatcher lets go is either seen by its
/// last take or makes the pusher schedule it again (here: hand it over), never both, never
/// neither. Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib engine::subscriber`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use crate::engine::CallbackSink;

    /// What a dispatcher's turn does (see `dispatch::run`): sends a handed match, then takes
    /// chunks until it may let go. Returns the positions sent (`u64::MAX` for a limit notice).
    fn serve(sub: &Subscriber, handed: Option<Queued>) -> Vec<u64> {
        serve_noting(sub, handed, None)
    }

    /// `serve`, setting `reported` once a limit notice has been sent.
    fn serve_noting(
        sub: &Subscriber,
        handed: Option<Queued>,
        reported: Option<&AtomicBool>,
    ) -> Vec<u64> {
        let mut sent = Vec::new();
        let mut delivered = 0;
        if let Some(q) = handed {
            sent.push(q.position);
            if sub.finish_handed(q.position, &mut delivered) {
                return sent;
            }
        }
        let mut out = Vec::new();
        loop {
            out.clear();
            match sub.take_chunk(delivered, 64, &mut out, true) {
                Taken::Some { .. } => {
                    delivered = 0;
                    for d in &out {
                        if let Some(m) = d.message() {
                            sent.push(m.id.parse().expect("a position"));
                            delivered += 1;
                        } else if matches!(d, Delivery::Limit { .. }) {
                            sent.push(u64::MAX);
                            if let Some(r) = reported {
                                r.store(true, Ordering::SeqCst);
                            }
                        }
                    }
                }
                Taken::Unscheduled | Taken::Gone => return sent,
                Taken::Empty => unreachable!("may let go"),
            }
        }
    }

    /// What the emitter does with a push's answer (see `pipeline::emit` and `Runs`): the run
    /// entry it hands to a dispatcher, if any.
    fn emit(sub: &Subscriber, position: u64) -> Option<Option<Queued>> {
        match sub.push(Queued::for_test(position), &mut || {}) {
            Pushed::Nothing => None,
            Pushed::Queued => sub.mark_work().then_some(None),
            Pushed::Handed(q) => Some(Some(q)),
        }
    }

    fn subscriber(config: SubscriberConfig) -> Arc<Subscriber> {
        let sink = CallbackSink::new(|_: Delivery| Ok(()));
        Arc::new(Subscriber::new(
            1,
            "s".into(),
            Box::new(sink),
            config,
            Arc::new(Budget::new(u64::MAX)),
        ))
    }

    #[test]
    fn a_push_racing_the_dispatcher_letting_go_is_sent_once_and_in_order() {
        loom::model(|| {
            let sub = subscriber(SubscriberConfig::new());
            // A dispatcher's turn is under way: match 0 was handed over.
            let first = emit(&sub, 0).expect("idle: handed over");
            let pusher = {
                let sub = sub.clone();
                loom::thread::spawn(move || [emit(&sub, 1), emit(&sub, 2)])
            };
            assert!(first.is_some(), "a handed match");
            let mut sent = serve(&sub, first);
            // Whatever the pushes handed to a dispatcher is served after (in run order).
            let entries = pusher.join().expect("no panic");
            let shape: Vec<_> = entries
                .iter()
                .map(|e| e.as_ref().map(|h| h.as_ref().map(|q| q.position)))
                .collect();
            for entry in entries.into_iter().flatten() {
                sent.extend(serve(&sub, entry));
            }
            assert_eq!(sent, [0, 1, 2], "{shape:?}");
            assert_eq!(sub.turn.load(Ordering::SeqCst), IDLE, "{shape:?} {sent:?}");
            let st = sub.stats();
            assert_eq!((st.matched, st.delivered, st.queued), (3, 3, 0));
            assert_eq!(sub.pending_from(), u64::MAX);
        });
    }

    /// A handed match given back without the lock while another thread reads the figures
    /// (which counts it in flight under the lock): counted once, and acknowledgements never
    /// pass it before the sink has it.
    #[test]
    fn a_handed_match_given_back_while_the_figures_are_read_is_counted_once() {
        loom::model(|| {
            let sub = subscriber(SubscriberConfig::new());
            let handed = emit(&sub, 0).expect("idle").expect("handed over");
            let sent = Arc::new(AtomicBool::new(false));
            let observer = {
                let (sub, sent) = (sub.clone(), sent.clone());
                loom::thread::spawn(move || {
                    for _ in 0..2 {
                        if sub.pending_from() == u64::MAX {
                            assert!(sent.load(Ordering::SeqCst), "acknowledged before sent");
                        }
                        let st = sub.stats();
                        assert_eq!(st.matched, st.delivered + st.queued, "{st:?}");
                    }
                })
            };
            sent.store(true, Ordering::SeqCst);
            assert_eq!(serve(&sub, Some(handed)), [0], "nothing else to send");
            observer.join().expect("no panic");
            let st = sub.stats();
            assert_eq!((st.matched, st.delivered, st.queued), (1, 1, 0));
            assert_eq!(sub.turn.load(Ordering::SeqCst), IDLE);
            assert_eq!(sub.pending_from(), u64::MAX);
        });
    }

    /// The stream given up (drain timeout) while a handed match is given back: the turn ends
    /// for good, and the match counts as delivered, once.
    #[test]
    fn a_handed_match_given_back_while_the_stream_is_aborted_ends_the_turns() {
        loom::model(|| {
            let sub = subscriber(SubscriberConfig::new());
            let handed = emit(&sub, 0).expect("idle").expect("handed over");
            let aborter = {
                let sub = sub.clone();
                loom::thread::spawn(move || sub.abort("drain timeout"))
            };
            assert_eq!(serve(&sub, Some(handed)), [0], "nothing else to send");
            assert!(aborter.join().expect("no panic"));
            let st = sub.stats();
            assert_eq!((st.matched, st.delivered, st.dropped, st.queued), (1, 1, 0, 0));
            assert_eq!(sub.turn.load(Ordering::SeqCst), ENDED);
            // Nothing is handed to an ended stream.
            assert!(matches!(sub.push(Queued::for_test(1), &mut || {}), Pushed::Nothing));
        });
    }

    /// Over its rate cap a push drops the match and leaves a limit notice to send, with
    /// nothing queued: the pusher then schedules the subscriber with a swap outside the lock,
    /// racing the dispatcher letting go.
    #[test]
    fn a_drop_racing_the_dispatcher_letting_go_still_gets_its_notice_sent() {
        loom::model(|| {
            // One match a second: the first passes, the rest of the burst is dropped.
            let sub = subscriber(SubscriberConfig::new().rate_limit(Some(1)));
            let first = emit(&sub, 0).expect("idle: handed over");
            let pusher = {
                let sub = sub.clone();
                loom::thread::spawn(move || [emit(&sub, 1), emit(&sub, 2), emit(&sub, 3)])
            };
            let mut sent = serve(&sub, first);
            for entry in pusher.join().expect("no panic").into_iter().flatten() {
                sent.extend(serve(&sub, entry));
            }
            let st = sub.stats();
            let matches: Vec<u64> = sent.iter().copied().filter(|&p| p != u64::MAX).collect();
            assert!(matches.windows(2).all(|w| w[0] < w[1]), "in order: {sent:?}");
            assert_eq!(matches.len() as u64, st.delivered);
            assert_eq!(st.delivered + st.dropped_rate, 4, "{sent:?} {st:?}");
            // Every drop was reported: the last notice sent carries the count.
            assert_eq!(st.limit_track, st.dropped_rate, "{sent:?} {st:?}");
            assert_eq!(sent.contains(&u64::MAX), st.dropped_rate > 0);
            assert_eq!(sub.turn.load(Ordering::SeqCst), IDLE, "{sent:?}");
            assert_eq!(st.queued, 0);
        });
    }

    /// A match dropped (drop-oldest) while another thread computes the acknowledgement
    /// watermark: the watermark never passes the dropped match before the limit notice that
    /// reports it has gone through (the published oldest position covers the loss until
    /// the chunk carrying the notice is through).
    #[test]
    fn a_drop_is_not_acknowledged_before_its_notice_went_through() {
        loom::model(|| {
            let config = SubscriberConfig::new().capacity(1).policy(FullPolicy::DropOldest);
            let sub = subscriber(config);
            let first = emit(&sub, 0).expect("idle: handed over");
            let reported = Arc::new(AtomicBool::new(false));
            let observer = {
                let (sub, reported) = (sub.clone(), reported.clone());
                loom::thread::spawn(move || {
                    for _ in 0..2 {
                        // Read first as well: a scheduling point for loom, which otherwise
                        // misses the interleaving in which the check matters.
                        let before = reported.load(Ordering::SeqCst);
                        let p = sub.pending_from();
                        if p > 1 {
                            let now = before || reported.load(Ordering::SeqCst);
                            assert!(now, "past an unreported loss: {p}");
                        }
                    }
                })
            };
            let pusher = {
                let sub = sub.clone();
                // Match 1 queues behind the handed one; match 2 finds the queue full and
                // drops match 1.
                loom::thread::spawn(move || [emit(&sub, 1), emit(&sub, 2)])
            };
            let entries = pusher.join().expect("no panic");
            let mut sent = serve_noting(&sub, first, Some(&reported));
            for entry in entries.into_iter().flatten() {
                sent.extend(serve_noting(&sub, entry, Some(&reported)));
            }
            observer.join().expect("no panic");
            assert_eq!(sent, [0, u64::MAX, 2]);
            assert_eq!(sub.pending_from(), u64::MAX);
        });
    }
}
