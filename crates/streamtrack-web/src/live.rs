//! The two figures every live picture (the page, `streamtrack watch`) takes from the stream:
//! its clock (where the window's right edge is) and the current rate of a series.
//!
//! - [`EventClock`]: the latest event time seen. While no new message arrives it moves on
//!   with the wall clock only for a live stream (the latest event time was the present when
//!   it was seen, within [`LIVE_SKEW_MS`]) whose input is still open; a replayed archive, or
//!   any input that ended, keeps its window on the latest event time, so what was replayed
//!   stays in view.
//! - [`live_rate`]: matches per second over the current 1 s bucket (counted for the part of
//!   it that has elapsed) and the [`RATE_WHOLE_SECONDS`] whole seconds before it; open
//!   buckets count, so a burst shows in the rate as it happens, not once its buckets close.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// How far (ms) an event time may be from the wall clock, when it is seen, for the stream
/// to count as live (its window then moves on with the wall clock while it is quiet).
pub const LIVE_SKEW_MS: i64 = 30_000;

/// Whole 1 s buckets before the current one that [`live_rate`] counts: the rate is taken
/// over 2 to 3 seconds, long enough not to jump with every message, short enough to follow
/// a burst within its first second.
pub const RATE_WHOLE_SECONDS: i64 = 2;

/// Milliseconds since the epoch.
pub fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The clock of a live picture: the stream's latest event time (see the module's text for
/// when it moves on with the wall clock). Shared between the input reader and the readers of
/// the picture; lock-free.
#[derive(Debug)]
pub struct EventClock {
    /// Latest event time seen (`i64::MIN`: none yet).
    latest: AtomicI64,
    /// The wall time when `latest` was seen.
    seen_at: AtomicI64,
    /// Whether `latest` was within [`LIVE_SKEW_MS`] of the wall clock when seen.
    live: AtomicBool,
    /// Whether the input ended.
    ended: AtomicBool,
}

impl Default for EventClock {
    fn default() -> Self {
        EventClock {
            latest: AtomicI64::new(i64::MIN),
            seen_at: AtomicI64::new(0),
            live: AtomicBool::new(true),
            ended: AtomicBool::new(false),
        }
    }
}

impl EventClock {
    /// A clock that has seen nothing (it shows the wall clock).
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes a message with event time `t` (its timestamp; `None`: it arrives now).
    pub fn saw(&self, t: Option<i64>) {
        self.saw_at(t, wall_ms());
    }

    /// [`EventClock::saw`] at wall time `wall` (for tests).
    pub fn saw_at(&self, t: Option<i64>, wall: i64) {
        let t = t.unwrap_or(wall);
        if self.latest.fetch_max(t, Ordering::AcqRel) < t {
            self.live.store(t.abs_diff(wall) <= LIVE_SKEW_MS.unsigned_abs(), Ordering::Relaxed);
            self.seen_at.store(wall, Ordering::Release);
        }
    }

    /// Notes that the input ended: the clock stays on the latest event time from now on.
    pub fn end(&self) {
        self.ended.store(true, Ordering::Release);
    }

    /// Whether the input ended.
    pub fn ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Whether the clock moves on with the wall clock while nothing arrives (a live stream
    /// whose input is open, or nothing seen yet).
    pub fn follows_wall(&self) -> bool {
        self.latest.load(Ordering::Acquire) == i64::MIN
            || (!self.ended() && self.live.load(Ordering::Relaxed))
    }

    /// The latest event time seen, if any.
    pub fn latest(&self) -> Option<i64> {
        let t = self.latest.load(Ordering::Acquire);
        (t != i64::MIN).then_some(t)
    }

    /// The clock now (ms since the epoch).
    pub fn now(&self) -> i64 {
        self.now_at(wall_ms())
    }

    /// The clock at wall time `wall` (for tests).
    pub fn now_at(&self, wall: i64) -> i64 {
        let t = self.latest.load(Ordering::Acquire);
        if t == i64::MIN {
            return wall;
        }
        if !self.follows_wall() {
            return t;
        }
        t.saturating_add((wall - self.seen_at.load(Ordering::Acquire)).max(0))
    }
}

/// The bucket starts (ms) a [`live_rate`] at `now_ms` reads: from the start of the first
/// whole second it counts to `now_ms`.
pub fn rate_range(now_ms: i64) -> (i64, i64) {
    (now_ms.div_euclid(1000) * 1000 - RATE_WHOLE_SECONDS * 1000, now_ms)
}

/// Matches per second at `now_ms` from the 1 s buckets `(start_ms, count)` of a series (any
/// others are ignored): the matches of the bucket holding `now_ms` and of the
/// [`RATE_WHOLE_SECONDS`] before it, over the time from the first one's start to `now_ms`
/// (2 to 3 s). Exact counts, no estimate: the current bucket counts what it holds so far,
/// for the part of it that has elapsed.
pub fn live_rate(buckets: impl IntoIterator<Item = (i64, u32)>, now_ms: i64) -> f64 {
    let (from, to) = rate_range(now_ms);
    let sum: u64 =
        buckets.into_iter().filter(|&(t, _)| t >= from && t <= to).map(|(_, c)| u64::from(c)).sum();
    // At least the whole seconds: the current bucket's start gives RATE_WHOLE_SECONDS.
    let secs = ((to - from) as f64 / 1000.0).max(RATE_WHOLE_SECONDS as f64);
    sum as f64 / secs
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_700_000_000_000;

    #[test]
    fn a_replayed_archive_keeps_its_window_on_its_latest_event_time() {
        let c = EventClock::new();
        assert_eq!(c.now_at(T0), T0, "nothing seen: the wall clock");
        // An archive from a day before the wall clock.
        let wall = T0 + 86_400_000;
        c.saw_at(Some(T0 + 5_000), wall);
        assert_eq!(c.now_at(wall + 60_000), T0 + 5_000, "quiet: the window stays");
        c.saw_at(Some(T0 + 7_000), wall + 61_000);
        c.saw_at(Some(T0 + 6_000), wall + 62_000); // out of order: the clock does not go back
        assert_eq!(c.now_at(wall + 120_000), T0 + 7_000);
        assert!(!c.follows_wall());
    }

    #[test]
    fn a_live_stream_moves_on_with_the_wall_clock_until_its_input_ends() {
        let c = EventClock::new();
        c.saw_at(None, T0);
        assert!(c.follows_wall());
        assert_eq!(c.now_at(T0 + 4_000), T0 + 4_000, "quiet live stream: it scrolls");
        // Timestamps a little off the wall clock still count as live.
        c.saw_at(Some(T0 + 10_000), T0 + 12_000);
        assert_eq!(c.now_at(T0 + 15_000), T0 + 13_000);
        c.end();
        assert!(c.ended() && !c.follows_wall());
        assert_eq!(c.now_at(T0 + 60_000), T0 + 10_000, "ended: the window stays");
    }

    #[test]
    fn the_rate_counts_the_open_second_for_the_part_elapsed() {
        // 30 matches in the current second, 300 ms into it, nothing before: 30 / 2.3 s.
        let now = T0 + 300;
        let r = live_rate([(T0, 30)], now);
        assert!((r - 30.0 / 2.3).abs() < 1e-9, "{r}");
        // Steady 1 per second: between 1 and 1.5 whatever the moment.
        for ms in [0, 1, 500, 999] {
            let b = [(T0 - 3000, 1), (T0 - 2000, 1), (T0 - 1000, 1), (T0, 1)];
            let r = live_rate(b, T0 + ms);
            assert!((1.0..=1.5).contains(&r), "{ms}: {r}");
        }
        // Buckets outside the window do not count.
        assert_eq!(live_rate([(T0 - 3000, 50), (T0 + 1000, 50)], T0 + 999), 0.0);
        assert_eq!(rate_range(T0 + 250), (T0 - 2000, T0 + 250));
    }
}
