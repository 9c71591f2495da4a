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
pub mod sentiment;
pub(crate) mod stage;

pub use bursts::{BurstConfig, BurstDetector, BurstEvent, BurstStep, Sensitivity};
pub use intensity::{Point, Resolution, SeriesEvent};
pub use sentiment::{
    Fixes, Label, LanguageScorers, Lexicon, LexiconError, Reaction, SentimentScorer,
};

use crate::Message;
use intensity::Series;
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
    /// The last matched messages kept per series (default 100).
    pub recent_per_key: usize,
    /// Memory cap of all kept messages together, in bytes (default 64 MiB); the oldest go first.
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

/// A matched message kept for the conversation view.
#[derive(Clone, Debug)]
pub struct Recent {
    /// Event time (or arrival time when the message had none), ms since the epoch.
    pub time_ms: i64,
    /// The message, shared by every series that keeps it.
    pub message: Arc<Message>,
    /// Its reaction, when scored.
    pub reaction: Option<Reaction>,
    seq: u64,
    bytes: usize,
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
    /// Kept messages dropped to respect the memory cap.
    pub recent_evicted: u64,
}

struct KeyState {
    key: SeriesKey,
    series: Box<[Series]>,
    recent: VecDeque<Recent>,
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
    /// Reused by `record_scored` for the slots of its keys.
    slots: Vec<Slot>,
    /// Reused by `record_slots`: per resolution, the first open bucket and the message's.
    at: Vec<(i64, i64)>,
    watermark: i64,
    recent_bytes: usize,
    recent_live: usize,
    order: VecDeque<(Slot, u64)>,
    seq: u64,
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
        Analytics {
            cfg,
            scorers,
            index: HashMap::new(),
            states: Vec::new(),
            slots: Vec::new(),
            at: Vec::new(),
            watermark: i64::MIN,
            recent_bytes: 0,
            recent_live: 0,
            order: VecDeque::new(),
            seq: 0,
            stats: AnalyticsStats::default(),
        }
    }

    /// The settings.
    pub fn config(&self) -> &AnalyticsConfig {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> AnalyticsStats {
        self.stats
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
        let events = self.record_scored(Arc::new(m.clone()), reaction, keys, now_ms);
        Recorded { reaction, events }
    }

    /// [`Analytics::record`] for a message the caller already shares (as the engine does):
    /// the kept copy is this `Arc`, not a clone of the message.
    pub fn record_shared(&mut self, m: &Arc<Message>, keys: &[SeriesKey], now_ms: i64) -> Recorded {
        let reaction = self.cfg.sentiment.then(|| {
            self.stats.scored += 1;
            self.scorers.score_message(m)
        });
        let events = self.record_scored(m.clone(), reaction, keys, now_ms);
        Recorded { reaction, events }
    }

    /// Records a message whose reaction the caller already has (or `None`).
    pub fn record_scored(
        &mut self,
        m: Arc<Message>,
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
        if let Some(&s) = self.index.get(key) {
            return s;
        }
        let slot = Slot(u32::try_from(self.states.len()).unwrap_or(u32::MAX));
        let n = self.cfg.resolutions.len();
        let burst = self.cfg.burst;
        self.states.push(KeyState {
            key: key.clone(),
            series: (0..n).map(|_| Series::new(burst)).collect(),
            recent: VecDeque::new(),
        });
        self.index.insert(key.clone(), slot);
        slot
    }

    /// [`Analytics::record_scored`] for series given by slot (as the engine stage does).
    pub(crate) fn record_slots(
        &mut self,
        m: Arc<Message>,
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
        let bytes = std::mem::size_of::<Recent>()
            + m.text.len()
            + m.id.len()
            + std::mem::size_of::<Message>() / slots.len().max(1);
        let mut events = Vec::new();
        let mut scratch = Vec::new();
        // Per resolution, once per message: the first open bucket and the message's bucket.
        let mut at = std::mem::take(&mut self.at);
        at.clear();
        at.extend(self.cfg.resolutions.iter().map(|r| {
            (
                intensity::first_open(r, self.watermark, self.cfg.lateness_ms),
                t.div_euclid(r.bucket_ms),
            )
        }));
        for &slot in slots {
            let Some(st) = self.states.get_mut(slot.0 as usize) else { continue };
            for (i, ((s, r), &(open, b))) in
                st.series.iter_mut().zip(&self.cfg.resolutions).zip(&at).enumerate()
            {
                s.close_to(r, i, open, &mut scratch);
                if !s.add_to(r, b, compound) {
                    self.stats.late += 1;
                }
            }
            if !scratch.is_empty() {
                let key = &st.key;
                events.extend(
                    scratch.drain(..).map(|event| AnalyticsEvent { key: key.clone(), event }),
                );
            }
            if self.cfg.recent_per_key > 0 {
                self.seq += 1;
                let r = Recent { time_ms: t, message: m.clone(), reaction, seq: self.seq, bytes };
                if st.recent.back().is_none_or(|x| x.time_ms <= t) {
                    st.recent.push_back(r);
                } else {
                    let pos = st.recent.partition_point(|x| x.time_ms <= t);
                    st.recent.insert(pos, r);
                }
                self.recent_bytes += bytes;
                self.recent_live += 1;
                self.order.push_back((slot, self.seq));
                while st.recent.len() > self.cfg.recent_per_key {
                    if let Some(old) = st.recent.pop_front() {
                        self.recent_bytes -= old.bytes;
                        self.recent_live -= 1;
                    }
                }
            }
        }
        self.at = at;
        self.enforce_recent_cap();
        events
    }

    /// Drops the oldest kept messages (over all series) until under the memory cap.
    fn enforce_recent_cap(&mut self) {
        while self.recent_bytes > self.cfg.recent_memory_cap {
            let Some((slot, seq)) = self.order.pop_front() else { break };
            if let Some(st) = self.states.get_mut(slot.0 as usize) {
                if let Some(i) = st.recent.iter().position(|r| r.seq == seq) {
                    if let Some(old) = st.recent.remove(i) {
                        self.recent_bytes -= old.bytes;
                        self.recent_live -= 1;
                        self.stats.recent_evicted += 1;
                    }
                }
            }
        }
        // Entries already dropped by the per-series bound are stale here: compact.
        if self.order.len() > 2 * self.recent_live + 1024 {
            let live: std::collections::HashSet<u64> =
                self.states.iter().flat_map(|st| st.recent.iter().map(|r| r.seq)).collect();
            self.order.retain(|e| live.contains(&e.1));
        }
    }

    /// Moves the watermark to `now_ms` and closes the buckets it passed in every series;
    /// returns the burst starts and ends.
    pub fn advance(&mut self, now_ms: i64) -> Vec<AnalyticsEvent> {
        self.watermark = self.watermark.max(now_ms);
        let mut events = Vec::new();
        let mut scratch = Vec::new();
        for st in &mut self.states {
            for (i, (s, r)) in st.series.iter_mut().zip(&self.cfg.resolutions).enumerate() {
                s.close(r, i, self.watermark, self.cfg.lateness_ms, &mut scratch);
            }
            let key = &st.key;
            events
                .extend(scratch.drain(..).map(|event| AnalyticsEvent { key: key.clone(), event }));
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
        let st = self.state(key)?;
        let from = from_ms.max(to_ms - r.span_ms);
        Some(st.series[res].points(r, from, to_ms))
    }

    /// The kept messages of a series with event time in `[from_ms, to_ms]`, oldest first.
    pub fn recent(&self, key: &SeriesKey, from_ms: i64, to_ms: i64) -> Vec<&Recent> {
        self.state(key).map_or_else(Vec::new, |st| {
            st.recent.iter().filter(|r| r.time_ms >= from_ms && r.time_ms <= to_ms).collect()
        })
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
        self.state(key).map_or(0, |st| {
            std::mem::size_of::<(SeriesKey, KeyState)>()
                + key.name().len()
                + st.series.iter().map(Series::bytes).sum::<usize>()
                + st.recent.capacity() * std::mem::size_of::<Recent>()
        })
    }

    /// Bytes of all kept messages, as counted against the memory cap.
    pub fn recent_bytes(&self) -> usize {
        self.recent_bytes
    }
}
