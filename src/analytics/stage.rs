//! Analytics as a stage of the engine ([`EngineBuilder::analytics`]): a thread of its own,
//! fed in source order through a bounded channel with one batch per matched unit (the shared
//! messages and their matched rules and subscribers), so that scoring and series updates stay
//! off the matcher threads.
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
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// Units (batches) queued for the stage before the emitting matcher waits for it.
const STAGE_QUEUE: usize = 256;
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

/// What the emitting matcher thread sends for one unit, in source order.
#[derive(Default)]
pub(crate) struct StageBatch {
    /// Each matched message, its reaction cell, and the end of its entries in `rules`.
    pub messages: Vec<(Arc<Message>, Option<Arc<ReactionCell>>, usize)>,
    /// Every matched rule of every message (ids only: no reference counts touched on the
    /// matcher thread; the stage finds each rule's subscriber once, in the registry).
    pub rules: Vec<RuleId>,
    /// Arrival time of the unit, ms since the epoch.
    pub now_ms: i64,
}

enum Work {
    Batch(StageBatch),
    End,
}

type Report = Arc<dyn Fn(&EngineEvent) + Send + Sync>;

/// The running stage, held by the engine.
pub(crate) struct Stage {
    tx: Sender<Work>,
    analytics: Arc<Mutex<Analytics>>,
    scoring: Option<Arc<Scoring>>,
    thread: Mutex<Option<JoinHandle<()>>>,
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
        let scoring =
            cfg.sentiment.then(|| Arc::new(Scoring { scorers, scored: AtomicU64::new(0) }));
        let analytics = Arc::new(Mutex::new(Analytics::new(cfg)));
        let (tx, rx) = crossbeam_channel::bounded(STAGE_QUEUE);
        // With reactions on, a scorer thread scores each batch first and passes it on in
        // order: scoring (about two thirds of the stage's work) and recording overlap.
        let rx = match &scoring {
            Some(_) => {
                let (tx2, rx2) = crossbeam_channel::bounded(STAGE_QUEUE);
                std::thread::Builder::new()
                    .name("streamtrack-score".into())
                    .spawn(move || score(&rx, &tx2))?;
                rx2
            }
            None => rx,
        };
        let a = analytics.clone();
        let sc = scoring.clone();
        let thread = std::thread::Builder::new()
            .name("streamtrack-analytics".into())
            .spawn(move || run(&registry, &a, sc.as_deref(), &rx, report.as_ref()))?;
        Ok(Stage { tx, analytics, scoring, thread: Mutex::new(Some(thread)) })
    }

    /// A new reaction cell (when reactions are on).
    pub(crate) fn cell(&self) -> Option<Arc<ReactionCell>> {
        self.scoring
            .as_ref()
            .map(|s| Arc::new(ReactionCell { value: OnceLock::new(), scoring: s.clone() }))
    }

    /// Hands a unit's matches to the stage (waits while its queue is full).
    pub(crate) fn send(&self, batch: StageBatch) {
        if !batch.messages.is_empty() {
            let _ = self.tx.send(Work::Batch(batch));
        }
    }

    /// The figures, shared with the stage's thread.
    pub(crate) fn analytics(&self) -> &Arc<Mutex<Analytics>> {
        &self.analytics
    }

    /// Lets the stage record everything sent so far, then stops its thread.
    pub(crate) fn finish(&self) {
        let _ = self.tx.send(Work::End);
        let handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// The scorer thread: fills the reaction cells of each batch, then passes it on.
fn score(rx: &Receiver<Work>, tx: &Sender<Work>) {
    for work in rx {
        if let Work::Batch(b) = &work {
            for (m, cell, _) in &b.messages {
                if let Some(c) = cell {
                    c.get(m);
                }
            }
        }
        let end = matches!(work, Work::End);
        if tx.send(work).is_err() || end {
            break;
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
    rx: &Receiver<Work>,
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
        let work = match rx.recv_timeout(Duration::from_millis(ADVANCE_EVERY_MS as u64)) {
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
                for (message, cell, end) in batch.messages {
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
                    let now = message.timestamp.unwrap_or(batch.now_ms);
                    clock = clock.max(now);
                    events.extend(a.record_slots(message, reaction, &slots, now));
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
