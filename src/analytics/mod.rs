//! Analytics of a tracked conversation: reactions (sentiment), intensity and bursts, so that
//! every view (a web page, a terminal, a bot, a user's own dashboard) reads the same figures.
//!
//! - [`sentiment`]: the VADER scorer and lexicons;
//! - [`bursts`]: the online burst detector;
//! - [`intensity`]: time-bucket series at several resolutions.
//!
//! [`Analytics`] ties them together. The engine runs it as an optional stage of its own
//! ([`EngineBuilder::analytics`](crate::engine::EngineBuilder::analytics)); it can also be
//! driven by hand from any matching loop:
//!
//! ```
//! use streamtrack::analytics::{Analytics, AnalyticsConfig, SeriesKey};
//! use streamtrack::Message;
//!
//! let mut a = Analytics::new(AnalyticsConfig::default());
//! let rule = SeriesKey::rule("launch");
//! let m = Message::new("1", "The launch was great!").with_timestamp(1_700_000_000_000);
//! let out = a.record(&m, &[rule.clone()], 1_700_000_000_500);
//! assert!(out.reaction.unwrap().compound > 0.5);
//! let points = a.series(&rule, 0, 1_700_000_000_000, 1_700_000_000_000).unwrap();
//! assert_eq!((points[0].count, points[0].pos), (1, 1));
//! assert_eq!(a.recent(&rule, i64::MIN, i64::MAX).len(), 1);
//! ```

pub mod bursts;
pub mod intensity;
mod kept;
pub mod sentiment;
pub(crate) mod stage;

pub use bursts::{BurstConfig, BurstDetector, BurstEvent, BurstStep, Sensitivity};
use intensity::Cell;
pub use intensity::{Point, Resolution, SeriesEvent};
pub use kept::Recent;
pub use sentiment::{
    Fixes, Label, LanguageScorers, Lexicon, LexiconError, Reaction, SentimentScorer,
};

use crate::Message;
use intensity::Series;
use kept::KeptLog;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// What a series counts: the matches of a rule, the deliveries to a subscriber, or the
/// matches of the rules sharing a tag.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesKey {
    /// A rule, by id.
    Rule(Arc<str>),
    /// A subscriber, by id.
    Subscriber(Arc<str>),
    /// A rule tag.
    Tag(Arc<str>),
}

impl SeriesKey {
    /// The series of a rule.
    pub fn rule(id: &str) -> Self {
        SeriesKey::Rule(id.into())
    }
    /// The series of a subscriber.
    pub fn subscriber(id: &str) -> Self {
        SeriesKey::Subscriber(id.into())
    }
    /// The series of a tag.
    pub fn tag(tag: &str) -> Self {
        SeriesKey::Tag(tag.into())
    }
    /// The id or tag.
    pub fn name(&self) -> &str {
        match self {
            SeriesKey::Rule(s) | SeriesKey::Subscriber(s) | SeriesKey::Tag(s) => s,
        }
    }
    /// `"rule"`, `"subscriber"` or `"tag"`.
    pub fn kind(&self) -> &'static str {
        match self {
            SeriesKey::Rule(_) => "rule",
            SeriesKey::Subscriber(_) => "subscriber",
            SeriesKey::Tag(_) => "tag",
        }
    }
}

/// Settings of [`Analytics`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct AnalyticsConfig {
    /// The resolutions of every series (default [`Resolution::defaults`]).
    pub resolutions: Vec<Resolution>,
    /// How long after a bucket's end a message for it is still counted in it (default 5 s);
    /// later messages are counted as late.
    pub lateness_ms: i64,
    /// The burst detector of every series.
    pub burst: BurstConfig,
    /// Whether messages are scored for reactions (default on).
    pub sentiment: bool,
    /// The last matched messages kept per series (default 100), the last recorded.
    pub recent_per_key: usize,
    /// Memory cap of all kept messages together, in bytes (default 64 MiB); the oldest go
    /// first, a chunk (1/16 of the cap, from 256 bytes to 1 MiB) at a time.
    pub recent_memory_cap: usize,
    /// Closed buckets the rate of [`Analytics::top_by_rate`] is taken over (default 10).
    pub rate_window: i64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            resolutions: Resolution::defaults(),
            lateness_ms: 5_000,
            burst: BurstConfig::default(),
            sentiment: true,
            recent_per_key: 100,
            recent_memory_cap: 64 << 20,
            rate_window: 10,
        }
    }
}

impl AnalyticsConfig {
    /// The same settings with other resolutions.
    pub fn with_resolutions(mut self, r: Vec<Resolution>) -> Self {
        self.resolutions = r;
        self
    }
    /// The same settings with another lateness.
    pub fn with_lateness_ms(mut self, ms: i64) -> Self {
        self.lateness_ms = ms.max(0);
        self
    }
    /// The same settings with other ring bounds.
    pub fn with_recent(mut self, per_key: usize, memory_cap: usize) -> Self {
        self.recent_per_key = per_key;
        self.recent_memory_cap = memory_cap;
        self
    }
    /// The same settings with another burst detector configuration.
    pub fn with_burst(mut self, b: BurstConfig) -> Self {
        self.burst = b;
        self
    }
}

/// A burst start or end of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct AnalyticsEvent {
    /// The series.
    pub key: SeriesKey,
    /// What happened, at which resolution and bucket.
    pub event: SeriesEvent,
}

/// What [`Analytics::record`] returns.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// The message's reaction (computed once, however many series it reaches).
    pub reaction: Option<Reaction>,
    /// Burst starts and ends of the series this message touched.
    pub events: Vec<AnalyticsEvent>,
}

/// Counters of an [`Analytics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnalyticsStats {
    /// Messages recorded.
    pub messages: u64,
    /// Messages scored for reactions.
    pub scored: u64,
    /// Message counts that arrived after their bucket closed, summed over series and
    /// resolutions.
    pub late: u64,
    /// Messages whose event time was after their arrival time (counted at arrival time).
    pub future_clamped: u64,
    /// Kept messages dropped to respect the memory cap (counted once a message, however
    /// many series kept it; a message larger than the cap is counted when it comes).
    pub recent_evicted: u64,
}

/// What only the burst detectors and the views need, per series (touched when a bucket
/// closes, not per match).
struct KeyState {
    key: SeriesKey,
    series: Box<[Series]>,
}

/// What recording a match touches, per series, in one contiguous `Vec` (one or two cache
/// lines a series, rather than a walk through its resolutions' states): the counts of the
/// pending bucket of the finest resolution, the watermark at which the series next has
/// buckets to close, and the addresses of its kept messages.
struct Hot {
    /// The finest resolution's bucket the pending counts belong to (`i64::MIN`: none).
    bucket: i64,
    /// Counts of matches for `bucket` not yet added to the series' resolutions: added when
    /// a match for another bucket comes, when a bucket of the series is due to close, or at
    /// [`Analytics::advance`]; views add them in ([`Analytics::series`]).
    pending: Cell,
    /// While the watermark is under this, no bucket of the series is due to close.
    due: i64,
    /// Its kept messages' addresses in `Analytics::kept`, in the order recorded (those gone
    /// from the log are skipped when read, and leave with the per-series bound).
    recent: VecDeque<u64>,
}

/// A series' place in [`Analytics`]: what the engine stage keeps per rule and subscriber, so
/// that recording a match touches no hash map and clones no key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Slot(u32);

/// Intensity, reactions, bursts and recent messages of many series, driven by hand:
/// [`Analytics::record`] for each matched message, [`Analytics::advance`] now and then (e.g.
/// every second) to close the buckets of quiet series and get their burst ends.
pub struct Analytics {
    cfg: AnalyticsConfig,
    scorers: LanguageScorers,
    /// Where each series' state is in `states`.
    index: HashMap<SeriesKey, Slot>,
    /// Every series that has matched, in order of first match (never removed).
    states: Vec<KeyState>,
    /// Per series (same index as `states`): what each match touches.
    hot: Vec<Hot>,
    /// Whether every resolution's width is a multiple of the first's, so that a match on
    /// time for its bucket of the first resolution is on time for all (and can wait in
    /// `Hot::pending`); otherwise each match goes to every resolution at once.
    nested: bool,
    /// Reused by `record_scored` for the slots of its keys.
    slots: Vec<Slot>,
    /// Reused by `record_slots`: per resolution, the first open bucket and the message's.
    at: Vec<(i64, i64)>,
    /// The (watermark, event time) `at` was computed for.
    at_for: (i64, i64),
    /// The series of a key that has not matched yet, one per resolution (cloned for each
    /// new key).
    fresh: Box<[Series]>,
    /// The kept messages of every series, one copy a message.
    kept: KeptLog,
    watermark: i64,
    stats: AnalyticsStats,
}

impl Analytics {
    /// Analytics with the built-in VADER scorer.
    pub fn new(cfg: AnalyticsConfig) -> Self {
        Analytics::with_scorers(cfg, LanguageScorers::default())
    }

    /// Analytics with the given scorers (per language).
    pub fn with_scorers(mut cfg: AnalyticsConfig, scorers: LanguageScorers) -> Self {
        if cfg.resolutions.is_empty() {
            cfg.resolutions = Resolution::defaults();
        }
        let w0 = cfg.resolutions[0].bucket_ms;
        let nested = cfg.resolutions.iter().all(|r| r.bucket_ms % w0 == 0);
        let fresh = cfg.resolutions.iter().map(|_| Series::new(cfg.burst)).collect();
        Analytics {
            kept: KeptLog::new(cfg.recent_memory_cap),
            cfg,
            scorers,
            index: HashMap::new(),
            states: Vec::new(),
            hot: Vec::new(),
            nested,
            slots: Vec::new(),
            at: Vec::new(),
            at_for: (i64::MIN, i64::MIN),
            fresh,
            watermark: i64::MIN,
            stats: AnalyticsStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> AnalyticsStats {
        AnalyticsStats { recent_evicted: self.kept.evicted(), ..self.stats }
    }

    /// Scores a message's reaction with the scorer of its language.
    pub fn score(&self, m: &Message) -> Reaction {
        self.scorers.score_message(m)
    }

    /// Records one matched message for `keys` (its rules, subscribers, tags), arrived at
    /// `now_ms`; its event time is its timestamp, or `now_ms` without one. The reaction is
    /// computed once here.
    pub fn record(&mut self, m: &Message, keys: &[SeriesKey], now_ms: i64) -> Recorded {
        let reaction = self.cfg.sentiment.then(|| {
            self.stats.scored += 1;
            self.scorers.score_message(m)
        });
        let events = self.record_scored(m, reaction, keys, now_ms);
        Recorded { reaction, events }
    }

    /// Records a message whose reaction the caller already has (or `None`).
    pub fn record_scored(
        &mut self,
        m: &Message,
        reaction: Option<Reaction>,
        keys: &[SeriesKey],
        now_ms: i64,
    ) -> Vec<AnalyticsEvent> {
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        slots.extend(keys.iter().map(|k| self.slot(k)));
        let events = self.record_slots(m, reaction, &slots, now_ms);
        self.slots = slots;
        events
    }

    /// The slot of a series, created (empty) on first use.
    pub(crate) fn slot(&mut self, key: &SeriesKey) -> Slot {
        match self.index.get(key) {
            Some(&s) => s,
            None => self.slot_owned(key.clone()),
        }
    }

    /// [`Analytics::slot`] for a key the caller owns (as the engine stage does, for a series
    /// it has not met): the key is hashed once, not once to look and once to insert.
    pub(crate) fn slot_owned(&mut self, key: SeriesKey) -> Slot {
        use std::collections::hash_map::Entry;
        let slot = Slot(u32::try_from(self.states.len()).unwrap_or(u32::MAX));
        let key = match self.index.entry(key) {
            Entry::Occupied(e) => return *e.get(),
            Entry::Vacant(v) => {
                let key = v.key().clone();
                v.insert(slot);
                key
            }
        };
        // A copy of the fresh series (its detectors' constants computed once, not per series).
        let series = self.fresh.clone();
        self.states.push(KeyState { key, series });
        self.hot.push(Hot {
            bucket: i64::MIN,
            pending: Cell::default(),
            due: i64::MIN,
            recent: VecDeque::new(),
        });
        slot
    }

    /// [`Analytics::record_scored`] for series given by slot (as the engine stage does).
    pub(crate) fn record_slots(
        &mut self,
        m: &Message,
        reaction: Option<Reaction>,
        slots: &[Slot],
        now_ms: i64,
    ) -> Vec<AnalyticsEvent> {
        self.stats.messages += 1;
        self.watermark = self.watermark.max(now_ms);
        let mut t = m.timestamp.unwrap_or(now_ms);
        if t > self.watermark {
            self.stats.future_clamped += 1;
            t = self.watermark;
        }
        let compound = reaction.map(|r| r.compound);
        let mut events = Vec::new();
        // Per resolution: the first open bucket and the message's bucket; computed again only
        // when the watermark or the event time moved since the last message (the messages of
        // a unit share their arrival time: two divisions per resolution saved for most).
        let mut at = std::mem::take(&mut self.at);
        if self.at_for != (self.watermark, t) || at.len() != self.cfg.resolutions.len() {
            self.at_for = (self.watermark, t);
            at.clear();
            at.extend(self.cfg.resolutions.iter().map(|r| {
                (
                    intensity::first_open(r, self.watermark, self.cfg.lateness_ms),
                    t.div_euclid(r.bucket_ms),
                )
            }));
        }
        let b0 = at[0].1;
        // One copy a message in the log, its address in each series' ring.
        let kept = (self.cfg.recent_per_key > 0 && !slots.is_empty())
            .then(|| self.kept.push(t, reaction, m))
            .flatten();
        for &slot in slots {
            let i = slot.0 as usize;
            let Some(hot) = self.hot.get_mut(i) else { continue };
            if self.watermark < hot.due && hot.bucket == b0 {
                // The common case: nothing of the series to close, the same bucket as its
                // last match: one counter update.
                hot.pending.add(1, compound);
            } else {
                self.slow_record(i, compound, &at, &mut events);
            }
            if let Some(addr) = kept {
                let hot = &mut self.hot[i];
                hot.recent.push_back(addr);
                if hot.recent.len() > self.cfg.recent_per_key {
                    hot.recent.pop_front();
                }
            }
        }
        self.at = at;
        events
    }

    /// Adds series `i`'s pending counts to every resolution (they are on time: see `Hot`).
    fn flush(&mut self, i: usize) {
        let hot = &mut self.hot[i];
        if hot.pending.count == 0 {
            hot.bucket = i64::MIN;
            return;
        }
        let pending = std::mem::take(&mut hot.pending);
        let t0 = hot.bucket.saturating_mul(self.cfg.resolutions[0].bucket_ms);
        // The bucket may close before the next match: a match for it then is late, not
        // pending (the fast path asks for `bucket` to be the match's).
        hot.bucket = i64::MIN;
        for (s, r) in self.states[i].series.iter_mut().zip(&self.cfg.resolutions) {
            s.add_cell(r, t0.div_euclid(r.bucket_ms), &pending);
        }
    }

    /// A match of series `i` when something is due (a bucket to close, another bucket than
    /// the pending one, a late match): the pending counts go to every resolution first, then
    /// the buckets due close (burst events to `events`), then the match is counted.
    fn slow_record(
        &mut self,
        i: usize,
        compound: Option<f64>,
        at: &[(i64, i64)],
        events: &mut Vec<AnalyticsEvent>,
    ) {
        self.flush(i);
        let mut scratch = Vec::new();
        let st = &mut self.states[i];
        for (k, ((s, r), &(open, _))) in
            st.series.iter_mut().zip(&self.cfg.resolutions).zip(at).enumerate()
        {
            s.close_to(r, k, open, &mut scratch);
        }
        let hot = &mut self.hot[i];
        let b0 = at[0].1;
        if self.nested && st.series[0].next_close().is_some_and(|nc| b0 >= nc) {
            // On time for the finest resolution, so for all: it waits in `pending`.
            hot.bucket = b0;
            hot.pending.add(1, compound);
        } else {
            for (s, (r, &(_, b))) in st.series.iter_mut().zip(self.cfg.resolutions.iter().zip(at)) {
                if !s.add_to(r, b, compound) {
                    self.stats.late += 1;
                }
            }
        }
        self.hot[i].due = self.due(i);
        if !scratch.is_empty() {
            let key = &self.states[i].key;
            events
                .extend(scratch.drain(..).map(|event| AnalyticsEvent { key: key.clone(), event }));
        }
    }

    /// The watermark from which series `i` has a bucket of the finest resolution to close
    /// (with nested resolutions, the coarser ones close no earlier); `i64::MIN` (always due)
    /// without nesting.
    fn due(&self, i: usize) -> i64 {
        let r = &self.cfg.resolutions[0];
        match self.states[i].series[0].next_close() {
            Some(nc) if self.nested => nc
                .saturating_add(1)
                .saturating_mul(r.bucket_ms)
                .saturating_add(self.cfg.lateness_ms),
            _ => i64::MIN,
        }
    }

    /// Moves the watermark to `now_ms` and closes the buckets it passed in every series;
    /// returns the burst starts and ends.
    pub fn advance(&mut self, now_ms: i64) -> Vec<AnalyticsEvent> {
        self.watermark = self.watermark.max(now_ms);
        let mut events = Vec::new();
        let mut scratch = Vec::new();
        for k in 0..self.states.len() {
            if self.watermark < self.hot[k].due {
                continue; // nothing of this series to close yet (its pending counts wait)
            }
            self.flush(k);
            let st = &mut self.states[k];
            for (i, (s, r)) in st.series.iter_mut().zip(&self.cfg.resolutions).enumerate() {
                s.close(r, i, self.watermark, self.cfg.lateness_ms, &mut scratch);
            }
            let key = &st.key;
            events
                .extend(scratch.drain(..).map(|event| AnalyticsEvent { key: key.clone(), event }));
            self.hot[k].due = self.due(k);
        }
        events.sort_by(|a, b| {
            (a.event.bucket_start_ms, a.event.resolution, &a.key).cmp(&(
                b.event.bucket_start_ms,
                b.event.resolution,
                &b.key,
            ))
        });
        events
    }

    /// The buckets of a series at resolution `res` whose starts lie in `[from_ms, to_ms]`,
    /// zeros included; `None` when the series never matched or `res` is out of range.
    pub fn series(
        &self,
        key: &SeriesKey,
        res: usize,
        from_ms: i64,
        to_ms: i64,
    ) -> Option<Vec<Point>> {
        let r = self.cfg.resolutions.get(res)?;
        let slot = *self.index.get(key)?;
        let st = self.states.get(slot.0 as usize)?;
        let hot = &self.hot[slot.0 as usize];
        let from = from_ms.max(to_ms - r.span_ms);
        let pending = (hot.pending.count > 0).then(|| {
            let t0 = hot.bucket.saturating_mul(self.cfg.resolutions[0].bucket_ms);
            (t0.div_euclid(r.bucket_ms), hot.pending)
        });
        Some(st.series[res].points(r, from, to_ms, pending))
    }

    /// The kept messages of a series with event time in `[from_ms, to_ms]`, oldest first
    /// (by event time; in the order recorded for equal times). Only those in the range are
    /// read back from their compact copies (one allocation a message).
    pub fn recent(&self, key: &SeriesKey, from_ms: i64, to_ms: i64) -> Vec<Recent> {
        let Some(hot) = self.index.get(key).and_then(|s| self.hot.get(s.0 as usize)) else {
            return Vec::new();
        };
        let mut at: Vec<(i64, u64)> = hot
            .recent
            .iter()
            .filter_map(|&a| Some((self.kept.time_at(a)?, a)))
            .filter(|&(t, _)| t >= from_ms && t <= to_ms)
            .collect();
        at.sort_by_key(|&(t, _)| t);
        at.into_iter().filter_map(|(_, a)| self.kept.get(a)).collect()
    }

    /// The last kept message recorded for a series (what a view shows as its latest),
    /// without reading back the others.
    pub fn latest(&self, key: &SeriesKey) -> Option<Recent> {
        let hot = self.index.get(key).and_then(|s| self.hot.get(s.0 as usize))?;
        hot.recent.back().and_then(|&a| self.kept.get(a))
    }

    /// Late messages of a series at resolution `res`.
    pub fn late(&self, key: &SeriesKey, res: usize) -> u64 {
        self.state(key).and_then(|st| st.series.get(res)).map_or(0, Series::late)
    }

    /// Whether a series is in a burst at resolution `res`.
    pub fn in_burst(&self, key: &SeriesKey, res: usize) -> bool {
        self.state(key).and_then(|st| st.series.get(res)).is_some_and(Series::in_burst)
    }

    /// The `k` series (of `kind`: `"rule"`, `"subscriber"`, `"tag"`, or any with `None`) with
    /// the highest rate (messages per second over the last closed buckets) at `res`.
    pub fn top_by_rate(&self, res: usize, k: usize, kind: Option<&str>) -> Vec<(SeriesKey, f64)> {
        let Some(r) = self.cfg.resolutions.get(res) else { return Vec::new() };
        let w = self.cfg.rate_window.max(1);
        self.top(k, kind, |st| st.series[res].rate(r, w))
    }

    /// The `k` series (of `kind`, or any) with the highest burst score at `res`.
    pub fn top_by_burst(&self, res: usize, k: usize, kind: Option<&str>) -> Vec<(SeriesKey, f64)> {
        if res >= self.cfg.resolutions.len() {
            return Vec::new();
        }
        self.top(k, kind, |st| st.series[res].last_score())
    }

    fn top(
        &self,
        k: usize,
        kind: Option<&str>,
        f: impl Fn(&KeyState) -> f64,
    ) -> Vec<(SeriesKey, f64)> {
        let mut v: Vec<(SeriesKey, f64)> = self
            .states
            .iter()
            .filter(|st| kind.is_none_or(|kd| st.key.kind() == kd))
            .map(|st| (st, f(st)))
            .filter(|(_, x)| *x > 0.0)
            .map(|(st, x)| (st.key.clone(), x))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v.truncate(k);
        v
    }

    fn state(&self, key: &SeriesKey) -> Option<&KeyState> {
        self.index.get(key).and_then(|s| self.states.get(s.0 as usize))
    }

    /// Series (rules, subscribers, tags) that have matched at least once.
    pub fn active_keys(&self) -> usize {
        self.states.len()
    }

    /// Bytes held by the series of one key (buckets, detectors; not the kept messages).
    pub fn series_bytes(&self, key: &SeriesKey) -> usize {
        let Some(&slot) = self.index.get(key) else { return 0 };
        let (st, hot) = (&self.states[slot.0 as usize], &self.hot[slot.0 as usize]);
        std::mem::size_of::<(SeriesKey, KeyState, Hot)>()
            + key.name().len()
            + st.series.iter().map(Series::bytes).sum::<usize>()
            + hot.recent.capacity() * std::mem::size_of::<u64>()
    }

    /// Bytes of all kept messages, as counted against the memory cap (the log's chunks,
    /// taken as needed).
    pub fn recent_bytes(&self) -> usize {
        self.kept.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `record_slots` reuses the last message's buckets when its (watermark, event time)
    /// pair is the same: a message with the same event time after the watermark moved is
    /// late, and one with another event time under the same watermark lands in its own
    /// bucket (either would be wrong with the buckets kept on one of the two alone).
    #[test]
    fn buckets_are_recomputed_when_the_watermark_or_the_time_moves() {
        let mut a = Analytics::new(AnalyticsConfig::default());
        let key = SeriesKey::rule("r");
        let t = 1_700_000_000_000i64;
        let rec = |a: &mut Analytics, id: &str, at: i64, now: i64| {
            let m = Message::new(id, "m").with_timestamp(at);
            a.record_scored(&m, None, std::slice::from_ref(&key), now);
        };
        rec(&mut a, "a", t, t);
        rec(&mut a, "b", t, t); // same pair: the cached buckets
        rec(&mut a, "c", t, t + 10_000); // same time, watermark past its second's lateness
        assert_eq!((a.late(&key, 0), a.late(&key, 1)), (1, 0));
        rec(&mut a, "d", t + 9_000, t + 10_000); // same watermark, another second
        rec(&mut a, "e", t + 9_500, t + 10_000); // same second, another time
        let p = a.series(&key, 0, t, t + 10_000).unwrap();
        let counts: Vec<(i64, u32)> =
            p.iter().filter(|p| p.count > 0).map(|p| (p.start_ms - t, p.count)).collect();
        assert_eq!(counts, [(0, 2), (9_000, 2)]);
        let m = a.series(&key, 1, t, t + 10_000).unwrap();
        assert_eq!(m.iter().map(|p| p.count).sum::<u32>(), 5);
    }

    /// A message recorded for several series is copied into the log once; each series reads
    /// it back, and a message kept by no series (the bound is 0) is not copied at all.
    #[test]
    fn a_message_is_kept_once_however_many_series_keep_it() {
        let keys: Vec<SeriesKey> = (0..4).map(|i| SeriesKey::rule(&i.to_string())).collect();
        let mut a = Analytics::new(AnalyticsConfig::default());
        for i in 0..3 {
            a.record(&Message::new(i.to_string(), "a launch"), &keys, 1_000 + i);
        }
        assert_eq!(a.kept.entries(), 3);
        for k in &keys {
            let ids: Vec<String> =
                a.recent(k, i64::MIN, i64::MAX).iter().map(|r| r.message.id.clone()).collect();
            assert_eq!(ids, ["0", "1", "2"], "{k:?}");
        }
        let mut none = Analytics::new(AnalyticsConfig::default().with_recent(0, 1 << 20));
        none.record(&Message::new("0", "a launch"), &keys, 1_000);
        assert_eq!((none.kept.entries(), none.recent_bytes()), (0, 0));
        assert!(none.recent(&keys[0], i64::MIN, i64::MAX).is_empty());
    }

    /// The same stream recorded with matches waiting in the pending bucket (nested
    /// resolutions, the default) and with every match going to every resolution at once:
    /// the same points, late counts, burst events (same order), kept messages and stats.
    /// The stream has out-of-order matches within the lateness, late ones, future ones,
    /// bursts, silences of minutes and hours, and `advance` now and then.
    #[test]
    fn pending_bucket_changes_nothing_but_rounding() {
        let cfg = AnalyticsConfig::default().with_recent(5, 1 << 20);
        let mut fast = Analytics::new(cfg.clone());
        let mut direct = Analytics::new(cfg);
        assert!(fast.nested);
        direct.nested = false;
        let keys: Vec<SeriesKey> = (0..6).map(|i| SeriesKey::rule(&i.to_string())).collect();
        // A pending second closed by `advance`, then a match for it: late for the second,
        // on time for its minute.
        let t = 1_700_000_000_000i64;
        for (a, m_t, now) in [(0, t, t), (1, t + 10, t + 6_000)] {
            let m = Message::new(a.to_string(), "m").with_timestamp(m_t);
            for x in [&mut fast, &mut direct] {
                if a == 1 {
                    x.advance(now);
                }
                x.record_scored(&m, None, &keys[..1], now);
            }
        }
        assert_eq!((fast.late(&keys[0], 0), fast.late(&keys[0], 1)), (1, 0));
        assert_eq!(direct.late(&keys[0], 0), 1);
        let mut rnd = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut now = 1_700_000_000_000i64;
        let (mut from, mut closes) = (now, 0);
        for step in 0..30_000u64 {
            now += match rnd(1000) {
                0..=1 => 600_000 + rnd(7_200_000) as i64, // a silence of minutes to hours
                2..=300 => 0,                             // a burst
                _ => rnd(400) as i64,
            };
            let t = match rnd(100) {
                0..=59 => now,
                60..=89 => now - rnd(4_000) as i64, // out of order, within lateness
                90..=93 => now - 5_000 - rnd(2_000) as i64, // just late for its second
                94..=96 => now - 5_000 - rnd(400_000) as i64, // late for some resolutions
                _ => now + 1 + rnd(3_000) as i64,   // in the future: counted at arrival
            };
            let m = Message::new(step.to_string(), "m").with_timestamp(t);
            let first = rnd(6) as usize;
            let ks: Vec<SeriesKey> =
                (0..=rnd(3) as usize).map(|k| keys[(first + 2 * k) % 6].clone()).collect();
            let reaction = match rnd(4) {
                0 => None,
                n => Some(Reaction {
                    compound: [-0.6, 0.02, 0.7][n as usize - 1],
                    ..Reaction::default()
                }),
            };
            let a = fast.record_scored(&m, reaction, &ks, now);
            let b = direct.record_scored(&m, reaction, &ks, now);
            assert_eq!(a, b, "events of match {step}");
            if rnd(50) == 0 {
                let (a, b) = (fast.advance(now), direct.advance(now));
                closes += a.len();
                assert_eq!(a, b, "events of advance at {step}");
            }
            if rnd(500) == 0 || step == 29_999 {
                for k in &keys {
                    for res in 0..3 {
                        let (a, b) =
                            (fast.series(k, res, from, now), direct.series(k, res, from, now));
                        let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
                        assert_eq!(a.len(), b.len());
                        for (p, q) in a.iter().zip(&b) {
                            let same = (p.start_ms, p.count, p.pos, p.neu, p.neg, p.closed)
                                == (q.start_ms, q.count, q.pos, q.neu, q.neg, q.closed);
                            assert!(same && p.score == q.score, "{k:?} {res} {p:?} {q:?}");
                            assert!((p.mean_compound - q.mean_compound).abs() < 1e-5);
                        }
                        assert_eq!(fast.late(k, res), direct.late(k, res));
                        assert_eq!(fast.in_burst(k, res), direct.in_burst(k, res));
                    }
                    let ids = |a: &Analytics| -> Vec<(i64, String)> {
                        a.recent(k, i64::MIN, i64::MAX)
                            .iter()
                            .map(|r| (r.time_ms, r.message.id.clone()))
                            .collect()
                    };
                    assert_eq!(ids(&fast), ids(&direct));
                }
                assert_eq!(fast.stats(), direct.stats());
                assert_eq!(fast.top_by_rate(0, 3, None), direct.top_by_rate(0, 3, None));
                from = now - 3_600_000;
            }
        }
        // The stream did reach what the test is about.
        let s = fast.stats();
        assert!(s.late > 100 && s.future_clamped > 100, "{s:?}");
        assert!(closes > 0, "burst events at advance");
    }
}
