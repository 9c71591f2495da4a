//! Analytics as a stage of the engine ([`EngineBuilder::analytics`]): a thread of its own,
//! fed in source order through a bounded channel with the matched units (the shared messages
//! and their matched rules and subscribers), so that scoring and series updates stay off the
//! matcher threads.
//!
//! Units are gathered before they are sent ([`Pending`]): on a sparse stream a unit of 64
//! messages holds one or two matches, and a hand-over per unit woke the stage's threads tens
//! of thousands of times a second (with one matcher thread on the shared corpus, about a
//! fifth of the engine's CPU time). A gathered batch goes when it holds [`GATHER_MESSAGES`]
//! matches, when a unit was not full (the source is not saturated: latency first), when its
//! first match is [`GATHER_MS`] old, and otherwise the stage takes it itself after
//! [`GATHER_MS`] without work (a burst of full units, then silence): an idle stage looks
//! every [`GATHER_MS`].
//!
//! The reaction of a message is held in a [`ReactionCell`] shared by all its deliveries and
//! the stage: whichever asks first (the stage thread, or a dispatcher thread serialising a
//! delivery with [`Delivery::reaction`]) computes it, exactly once; the others read it.
//!
//! [`EngineBuilder::analytics`]: crate::engine::EngineBuilder::analytics
//! [`Delivery::reaction`]: crate::engine::Delivery::reaction

use super::sentiment::FxMap;
use super::{
    Analytics, AnalyticsConfig, AnalyticsEvent, LanguageScorers, Reaction, SeriesKey, Slot,
};
use crate::engine::EngineEvent;
use crate::registry::{Registry, RuleId};
use crate::Message;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, TryLockError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Batches queued for the stage before the emitting matcher waits for it (each holds up to
/// [`GATHER_MESSAGES`] matches and one unit's more).
const STAGE_QUEUE: usize = 64;
/// Matched messages gathered before a batch is sent.
const GATHER_MESSAGES: usize = 256;
/// How long matches wait at most in a gathered batch, ms (sent at the next unit after this,
/// or taken by the stage after this long without work).
const GATHER_MS: i64 = 20;
/// How often the stage closes the buckets of quiet series (burst ends).
const ADVANCE_EVERY_MS: i64 = 1_000;

/// The scorers shared by the stage and the reaction cells, with a count of scorings.
pub(crate) struct Scoring {
    scorers: LanguageScorers,
    scored: AtomicU64,
}

/// One message's reaction, computed once by whichever thread asks first.
pub(crate) struct ReactionCell {
    value: OnceLock<Reaction>,
    scoring: Arc<Scoring>,
}

impl ReactionCell {
    /// The reaction of `m` (the message this cell belongs to), computed on first use.
    pub(crate) fn get(&self, m: &Message) -> Reaction {
        *self.value.get_or_init(|| {
            self.scoring.scored.fetch_add(1, Ordering::Relaxed);
            self.scoring.scorers.score_message(m)
        })
    }
}

impl std::fmt::Debug for ReactionCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ReactionCell").field(&self.value.get()).finish()
    }
}

/// What the emitting matcher thread sends for one unit, in source order; units are gathered
/// into one (see [`Pending`]).
#[derive(Default)]
pub(crate) struct StageBatch {
    /// Each matched message.
    pub messages: Vec<Staged>,
    /// Every matched rule of every message (ids only: no reference counts touched on the
    /// matcher thread; the stage finds each rule's subscriber once, in the registry).
    pub rules: Vec<RuleId>,
    /// The unit was smaller than a full one: the source is not saturated, and the batch is
    /// sent at once rather than gathered.
    pub partial: bool,
    /// Arrival time of the unit, ms since the epoch.
    pub now_ms: i64,
}

/// One matched message of a [`StageBatch`].
pub(crate) struct Staged {
    pub message: Arc<Message>,
    /// Its reaction cell (when reactions are on).
    pub cell: Option<Arc<ReactionCell>>,
    /// The end of its matched rules in [`StageBatch::rules`].
    pub rules_end: usize,
    /// Its arrival time, ms since the epoch.
    pub arrived_ms: i64,
}

/// The units gathered since the last batch was sent (one `StageBatch`; its first match's
/// arrival time is the batch's age). Sent by the emitter (one thread at a time) while it
/// holds the lock, and taken by the stage only with `try_lock`: everything in the channel is
/// then older than what is here, and nothing is sent while the stage holds it, so the stage
/// keeps source order (see [`Inbox`]).
type Pending = Mutex<StageBatch>;

enum Work {
    Batch(StageBatch),
    End,
}

type Report = Arc<dyn Fn(&EngineEvent) + Send + Sync>;

/// The running stage, held by the engine.
pub(crate) struct Stage {
    tx: Sender<Work>,
    pending: Arc<Pending>,
    analytics: Arc<Mutex<Analytics>>,
    scoring: Option<Arc<Scoring>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Batches sent (for the tests of gathering).
    sent: AtomicU64,
    /// How long matches are gathered at most, ms ([`GATHER_MS`]).
    gather_ms: i64,
}

/// The stage's side of the channel: the batches sent, and after [`GATHER_MS`] without one,
/// the batch the emitter is gathering. Read by the stage's first thread (the scorer, or the
/// recorder without reactions).
struct Inbox {
    rx: Receiver<Work>,
    pending: Arc<Pending>,
    /// Work taken from the channel and the gathered batch, in order, not handed out yet.
    ready: std::collections::VecDeque<Work>,
    /// How long without work before the gathered batch is taken.
    gather: Duration,
}

impl Inbox {
    /// The next work in order, waiting up to `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Work, RecvTimeoutError> {
        let gather = self.gather;
        let mut waited = Duration::ZERO;
        loop {
            if let Some(w) = self.ready.pop_front() {
                return Ok(w);
            }
            let wait = gather.min(timeout.saturating_sub(waited));
            match self.rx.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => waited += wait,
                other => return other,
            }
            // Quiet for a while: take what the emitter gathered, after what it sent.
            let pending = match self.pending.try_lock() {
                Ok(p) => Some(p),
                Err(TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut p) = pending {
                if !p.messages.is_empty() {
                    self.ready.extend(self.rx.try_iter());
                    self.ready.push_back(Work::Batch(std::mem::take(&mut *p)));
                    continue;
                }
            }
            if waited >= timeout {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Stage {
    /// Starts the stage's thread; burst starts and ends go to `report`.
    pub(crate) fn start(
        registry: Registry,
        cfg: AnalyticsConfig,
        scorers: LanguageScorers,
        report: Option<Report>,
    ) -> std::io::Result<Stage> {
        Stage::start_gathering(registry, cfg, scorers, report, GATHER_MS)
    }

    /// [`Stage::start`], matches gathered for up to `gather_ms` (tests take a long one, so
    /// that a slow test thread does not look like a quiet stream).
    fn start_gathering(
        registry: Registry,
        cfg: AnalyticsConfig,
        scorers: LanguageScorers,
        report: Option<Report>,
        gather_ms: i64,
    ) -> std::io::Result<Stage> {
        let scoring =
            cfg.sentiment.then(|| Arc::new(Scoring { scorers, scored: AtomicU64::new(0) }));
        let analytics = Arc::new(Mutex::new(Analytics::new(cfg)));
        let (tx, rx) = crossbeam_channel::bounded(STAGE_QUEUE);
        let pending = Arc::new(Pending::default());
        let inbox = Inbox {
            rx,
            pending: pending.clone(),
            ready: std::collections::VecDeque::new(),
            gather: Duration::from_millis(gather_ms.unsigned_abs()),
        };
        // With reactions on, a scorer thread scores each batch first and passes it on in
        // order: scoring (about two thirds of the stage's work) and recording overlap.
        let input = match &scoring {
            Some(_) => {
                let (tx2, rx2) = crossbeam_channel::bounded(STAGE_QUEUE);
                std::thread::Builder::new()
                    .name("streamtrack-score".into())
                    .spawn(move || score(inbox, &tx2))?;
                Input::Scored(rx2)
            }
            None => Input::Inbox(inbox),
        };
        let a = analytics.clone();
        let sc = scoring.clone();
        let thread = std::thread::Builder::new()
            .name("streamtrack-analytics".into())
            .spawn(move || run(&registry, &a, sc.as_deref(), input, report.as_ref()))?;
        Ok(Stage {
            tx,
            pending,
            analytics,
            scoring,
            thread: Mutex::new(Some(thread)),
            sent: AtomicU64::new(0),
            gather_ms,
        })
    }

    /// A new reaction cell (when reactions are on).
    pub(crate) fn cell(&self) -> Option<Arc<ReactionCell>> {
        self.scoring
            .as_ref()
            .map(|s| Arc::new(ReactionCell { value: OnceLock::new(), scoring: s.clone() }))
    }

    /// Hands a unit's matches to the stage: gathered, and sent (waiting while the stage's
    /// queue is full) when the gathered batch is large or old enough or the unit was not full.
    /// Called by the emitter only (one thread at a time, in source order).
    pub(crate) fn send(&self, batch: StageBatch) {
        let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        let (now, partial) = (batch.now_ms, batch.partial);
        if p.messages.is_empty() {
            // Nothing gathered: the unit's batch is taken whole (no copy).
            *p = batch;
        } else {
            let at = p.rules.len();
            p.rules.extend_from_slice(&batch.rules);
            p.messages.extend(
                batch.messages.into_iter().map(|m| Staged { rules_end: at + m.rules_end, ..m }),
            );
        }
        let first = p.messages.first().map_or(now, |m| m.arrived_ms);
        if partial
            || p.messages.len() >= GATHER_MESSAGES
            || now.saturating_sub(first) >= self.gather_ms
        {
            self.send_gathered(&mut p);
        }
    }

    /// Sends what is gathered in `p` (the pending batch, locked: the stage takes it only
    /// with `try_lock`), if anything.
    fn send_gathered(&self, p: &mut StageBatch) {
        if !p.messages.is_empty() {
            self.sent.fetch_add(1, Ordering::Relaxed);
            let _ = self.tx.send(Work::Batch(std::mem::take(p)));
        }
    }

    /// The figures, shared with the stage's thread.
    pub(crate) fn analytics(&self) -> &Arc<Mutex<Analytics>> {
        &self.analytics
    }

    /// Lets the stage record everything sent so far, then stops its thread.
    pub(crate) fn finish(&self) {
        self.send_gathered(&mut self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        let _ = self.tx.send(Work::End);
        let handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// The scorer thread: fills the reaction cells of each batch, then passes it on.
fn score(mut inbox: Inbox, tx: &Sender<Work>) {
    loop {
        let work = match inbox.recv_timeout(Duration::from_secs(3600)) {
            Ok(w) => w,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        if let Work::Batch(b) = &work {
            for m in &b.messages {
                if let Some(c) = &m.cell {
                    c.get(&m.message);
                }
            }
        }
        let end = matches!(work, Work::End);
        if tx.send(work).is_err() || end {
            break;
        }
    }
}

/// Where the recorder reads its work: the inbox itself, or the scorer's output.
enum Input {
    Inbox(Inbox),
    Scored(Receiver<Work>),
}

impl Input {
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Work, RecvTimeoutError> {
        match self {
            Input::Inbox(inbox) => inbox.recv_timeout(timeout),
            Input::Scored(rx) => rx.recv_timeout(timeout),
        }
    }
}

/// What the stage keeps per matched rule.
struct RuleSeries {
    rule: Slot,
    sub: Option<Slot>,
    owner: Option<Arc<str>>,
}

fn run(
    registry: &Registry,
    analytics: &Mutex<Analytics>,
    scoring: Option<&Scoring>,
    mut input: Input,
    report: Option<&Report>,
) {
    // Series are found here, not on the matcher threads: per rule, once, its series' slot,
    // its owner's series' slot, and the owner (so that a rule's burst reaches its subscriber).
    let mut rule_keys: FxMap<RuleId, RuleSeries> = FxMap::default();
    let mut sub_keys: HashMap<Arc<str>, Slot> = HashMap::new();
    let mut slots: Vec<Slot> = Vec::new();
    let mut subs: Vec<Slot> = Vec::new();
    // The stage's clock: the latest event time (a message's timestamp, else its arrival
    // time), so that a replayed archive is bucketed by its own times; while no message comes,
    // it moves on with the wall clock, so that quiet series close their buckets.
    let mut clock = i64::MIN;
    let mut last_message = now_ms();
    let mut advanced = i64::MIN;
    let route = |events: Vec<AnalyticsEvent>, rule_keys: &FxMap<RuleId, RuleSeries>| {
        let Some(report) = report else { return };
        for event in events {
            let subscriber = match &event.key {
                SeriesKey::Subscriber(s) => Some(s.clone()),
                SeriesKey::Rule(id) => id
                    .parse::<u64>()
                    .ok()
                    .and_then(|n| rule_keys.get(&RuleId::from_u64(n)))
                    .and_then(|r| r.owner.clone()),
                SeriesKey::Tag(_) => None,
            };
            if let Some(subscriber) = subscriber {
                let e = EngineEvent::Burst { subscriber, event };
                let _ = catch_unwind(AssertUnwindSafe(|| report(&e)));
            }
        }
    };
    loop {
        let work = match input.recv_timeout(Duration::from_millis(ADVANCE_EVERY_MS as u64)) {
            Ok(w) => Some(w),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let has_work = work.is_some();
        let mut events = Vec::new();
        let mut a = analytics.lock().unwrap_or_else(PoisonError::into_inner);
        match work {
            Some(Work::End) => {
                // The input ended: no message can still land in its last seconds, so their
                // finest buckets close now and a burst there is declared, not left open
                // forever; coarser buckets that are not over yet stay open.
                if clock != i64::MIN {
                    let finest = a.cfg.resolutions.iter().map(|r| r.bucket_ms).min().unwrap_or(0);
                    let last = clock.saturating_add(a.cfg.lateness_ms).saturating_add(finest);
                    events.extend(a.advance(last));
                }
                drop(a);
                route(events, &rule_keys);
                break;
            }
            Some(Work::Batch(batch)) => {
                let mut start = 0;
                for Staged { message, cell, rules_end: end, arrived_ms: arrived } in batch.messages
                {
                    slots.clear();
                    subs.clear();
                    let rules = batch.rules.get(start..end).unwrap_or(&[]);
                    // The rule series first, then each owner's once (in order of first rule).
                    for id in rules {
                        let r = rule_keys.entry(*id).or_insert_with(|| {
                            let owner = registry.get(*id).map(|info| info.subscriber.clone());
                            let rule =
                                a.slot_owned(SeriesKey::Rule(id.as_u64().to_string().into()));
                            let sub = owner.as_ref().map(|o| {
                                *sub_keys.entry(o.clone()).or_insert_with(|| {
                                    a.slot_owned(SeriesKey::Subscriber(o.clone()))
                                })
                            });
                            RuleSeries { rule, sub, owner }
                        });
                        slots.push(r.rule);
                        if let Some(sub) = r.sub {
                            if !subs.contains(&sub) {
                                subs.push(sub);
                            }
                        }
                    }
                    slots.extend_from_slice(&subs);
                    start = end;
                    let reaction = cell.map(|c| c.get(&message));
                    let now = message.timestamp.unwrap_or(arrived);
                    clock = clock.max(now);
                    events.extend(a.record_slots(&message, reaction, &slots, now));
                }
            }
            None => {}
        }
        let wall = now_ms();
        if has_work {
            last_message = wall;
            // Busy: quiet series still close their buckets, once a second of event time.
            if clock != i64::MIN && clock.saturating_sub(advanced) >= ADVANCE_EVERY_MS {
                advanced = clock;
                events.extend(a.advance(clock));
            }
        } else if clock != i64::MIN {
            events.extend(a.advance(clock.saturating_add(wall - last_message)));
        }
        if let Some(s) = scoring {
            a.stats.scored = s.scored.load(Ordering::Relaxed);
        }
        drop(a);
        route(events, &rule_keys);
    }
    if let Some(s) = scoring {
        analytics.lock().unwrap_or_else(PoisonError::into_inner).stats.scored =
            s.scored.load(Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rule;

    /// A stage over one rule with reactions (`sentiment`) or counts only, gathering for up
    /// to `gather_ms`, and the rule's id.
    fn stage(sentiment: bool, gather_ms: i64) -> (Stage, RuleId) {
        let registry = Registry::new();
        let id = registry
            .subscribe("alice", Rule::parse("launch").expect("a rule"), None)
            .expect("subscribed");
        let mut cfg = AnalyticsConfig::default().with_recent(1_000, 1 << 30);
        cfg.sentiment = sentiment;
        let scorers = LanguageScorers::new(crate::analytics::SentimentScorer::new());
        let stage = Stage::start_gathering(registry, cfg, scorers, None, gather_ms);
        (stage.expect("the stage starts"), id)
    }

    /// One unit's batch: message `i` matching rule `id`.
    fn unit(stage: &Stage, id: RuleId, i: usize, partial: bool) -> StageBatch {
        let m = Arc::new(Message::new(i.to_string(), format!("launch {i}")));
        let cell = stage.cell();
        let staged = Staged { message: m, cell, rules_end: 1, arrived_ms: 1_000 };
        StageBatch { messages: vec![staged], rules: vec![id], partial, now_ms: 1_000 }
    }

    fn recorded(stage: &Stage) -> u64 {
        stage.analytics().lock().unwrap_or_else(PoisonError::into_inner).stats().messages
    }

    /// Full units are gathered (one hand-over for `GATHER_MESSAGES` matches, not one per
    /// unit); a unit that is not full sends what is gathered at once; the stage records
    /// every match, in source order (the kept messages of the rule, oldest first).
    #[test]
    fn full_units_are_gathered_and_a_partial_one_sends_them() {
        for sentiment in [true, false] {
            // Gathering for a minute: only the count and a partial unit send.
            let (stage, id) = stage(sentiment, 60_000);
            let n = GATHER_MESSAGES + 100;
            for i in 0..n {
                stage.send(unit(&stage, id, i, false));
            }
            assert_eq!(stage.sent.load(Ordering::Relaxed), 1, "one batch of {GATHER_MESSAGES}");
            stage.send(unit(&stage, id, n, true));
            assert_eq!(stage.sent.load(Ordering::Relaxed), 2, "the partial unit sends the rest");
            stage.finish();
            assert_eq!(recorded(&stage), n as u64 + 1);
            let a = stage.analytics().lock().unwrap_or_else(PoisonError::into_inner);
            let key = SeriesKey::rule(&id.as_u64().to_string());
            let ids: Vec<usize> = a
                .recent(&key, i64::MIN, i64::MAX)
                .iter()
                .map(|r| r.message.id.parse().expect("a number"))
                .collect();
            assert_eq!(ids, (0..=n).collect::<Vec<_>>(), "source order");
        }
    }

    /// Matches gathered from full units, then silence (the source open, nothing sent): the
    /// stage takes them itself, in order after what was sent, within a few `GATHER_MS`.
    #[test]
    fn gathered_matches_reach_the_stage_when_the_stream_goes_quiet() {
        for sentiment in [true, false] {
            let (stage, id) = stage(sentiment, GATHER_MS);
            let n = GATHER_MESSAGES + 10;
            for i in 0..n {
                stage.send(unit(&stage, id, i, false));
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while recorded(&stage) < n as u64 && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(recorded(&stage), n as u64, "taken by the stage without a send");
            let ids: Vec<usize> = {
                let a = stage.analytics().lock().unwrap_or_else(PoisonError::into_inner);
                let key = SeriesKey::rule(&id.as_u64().to_string());
                a.recent(&key, i64::MIN, i64::MAX)
                    .iter()
                    .map(|r| r.message.id.parse().expect("a number"))
                    .collect()
            };
            assert_eq!(ids, (0..n).collect::<Vec<_>>(), "source order");
            // More after the pull is recorded too, and the end sends the rest.
            stage.send(unit(&stage, id, n, false));
            stage.finish();
            assert_eq!(recorded(&stage), n as u64 + 1);
        }
    }
}
