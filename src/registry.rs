//! The live subscription registry: rules added and removed while the stream runs, matching
//! threads that never take a lock and never wait for a writer.
//!
//! # Design (details and figures in DESIGN.md)
//!
//! The registry publishes immutable [`Snapshot`]s through an atomic pointer swap (`arc-swap`).
//! A snapshot is a stack of compiled segments, in the spirit of an LSM tree:
//!
//! - *frozen layers*: large immutable segments (the base, plus a few smaller ones);
//! - the *delta*: a small segment holding the rules added since the last freeze, rebuilt on
//!   every write (its size is bounded, so a write costs the same at 1k or 1M rules);
//! - *tombstones*: the ids of removed rules that still sit in a frozen layer, hidden from
//!   results at once.
//!
//! When the delta is full it is frozen into a layer; when there are too many layers or
//! tombstones, a background thread merges layers into one, dropping removed rules and so
//! reclaiming their memory. Merges build outside the writer lock and publish like any write,
//! so matching never stalls.
//!
//! # Visibility guarantee
//!
//! A rule whose [`Registry::subscribe`] returned before a message starts matching (before
//! the matching thread calls [`Registry::snapshot`]) is applied to that message; a rule whose
//! [`Registry::unsubscribe`] returned is never applied to a message that starts matching
//! after it. A snapshot already taken keeps matching with the rules it holds.
//!
//! ```
//! use streamtrack::registry::{Registry, Scratch};
//! use streamtrack::{Message, Rule};
//!
//! let registry = Registry::new();
//! let id = registry.subscribe("alice", Rule::parse("rust -rusty").unwrap(), None).unwrap();
//! let mut scratch = Scratch::new();
//! let msg = Message::new("1", "I love Rust");
//! let found: Vec<_> = registry.snapshot().find(&msg, &mut scratch).iter().map(|r| r.id).collect();
//! assert_eq!(found, [id]);
//! registry.unsubscribe(id).unwrap();
//! assert!(registry.snapshot().find(&msg, &mut scratch).is_empty());
//! ```

use crate::matcher::hash::WordHasher;
use crate::matcher::segment::{Prepared, Segment, SegmentScratch};
use crate::matcher::small::Keys;
use crate::rule::{Dialect, Rule};
use crate::sync::{Mutex, MutexGuard, PublishCell};
use crate::Message;
use prefilter::{Kept, Mode, Prefilter};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

mod prefilter;

/// The writer side's hasher: seeded per process (subscriber names and rule texts come from
/// users), and several times faster than SipHash, which was a quarter of a 1M-rule reopen.
type FastHash = foldhash::fast::RandomState;
type FastMap<K, V> = HashMap<K, V, FastHash>;

/// Identifies a registered rule; never reused.
///
/// The registry assigns it; its number is what [`Display`](fmt::Display) prints and what
/// deliveries carry (`"id": "42"`), and [`RuleId::from_u64`] reads it back.
///
/// ```
/// use streamtrack::registry::{Registry, RuleId};
/// use streamtrack::Rule;
///
/// let registry = Registry::new();
/// let id = registry.subscribe("alice", Rule::parse("snow")?, None)?;
/// assert_eq!(RuleId::from_u64(id.as_u64()), id);
/// assert_eq!(id.to_string(), id.as_u64().to_string());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RuleId(u64);

impl RuleId {
    /// The id with this number, as printed by `Display` or read back from a delivery; a
    /// number no registry assigned names no rule (`unsubscribe` then says so).
    pub const fn from_u64(n: u64) -> Self {
        RuleId(n)
    }

    /// The id's number (stable across a durable registry's restarts).
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A registered rule and whom it belongs to.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RuleInfo {
    /// The rule's id.
    pub id: RuleId,
    /// The subscriber the rule delivers to.
    pub subscriber: Arc<str>,
    /// The tag reported with matches.
    pub tag: Option<Arc<str>>,
    /// The rule.
    pub rule: Rule,
    /// Unique per registration (a replacement gets a new one), so that a tombstone hides
    /// exactly the version it was made for.
    serial: u64,
    /// A small number for the subscriber, shared by all its rules and unique among the
    /// subscribers with rules (reused once a subscriber has none): lets the engine find
    /// where a match goes by indexing an array instead of hashing the name.
    subscriber_slot: u32,
}

/// Why a registry operation was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// The subscriber already has this rule (same dialect and canonical text).
    Duplicate {
        /// The rule already registered.
        existing: RuleId,
    },
    /// The subscriber has as many rules as allowed.
    TooManyRulesForSubscriber {
        /// The subscriber.
        subscriber: String,
        /// The limit.
        limit: usize,
    },
    /// The registry holds as many rules as allowed.
    TooManyRules {
        /// The limit.
        limit: usize,
    },
    /// No rule has this id (never registered, or already removed).
    UnknownRule(RuleId),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryError::Duplicate { existing } => {
                write!(f, "the subscriber already has this rule (rule {existing})")
            }
            RegistryError::TooManyRulesForSubscriber { subscriber, limit } => {
                write!(f, "subscriber {subscriber:?} already has {limit} rules, the limit")
            }
            RegistryError::TooManyRules { limit } => {
                write!(f, "the registry already holds {limit} rules, the limit")
            }
            RegistryError::UnknownRule(id) => write!(f, "no rule {id} is registered"),
        }
    }
}

impl std::error::Error for RegistryError {}

/// Settings of a [`Registry`].
#[derive(Clone, Debug)]
pub struct RegistryBuilder {
    max_rules_per_subscriber: usize,
    max_rules: usize,
    delta_max: usize,
    max_layers: usize,
    tombstones_max: usize,
    background_merges: bool,
    seed: Option<(u64, u64)>,
    small_set: Mode,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            max_rules_per_subscriber: 100_000,
            max_rules: 10_000_000,
            delta_max: 64,
            max_layers: 8,
            tombstones_max: 4096,
            background_merges: true,
            seed: None,
            small_set: Mode::Auto,
        }
    }
}

impl RegistryBuilder {
    /// Most rules one subscriber may hold (default 100,000).
    pub fn max_rules_per_subscriber(mut self, n: usize) -> Self {
        self.max_rules_per_subscriber = n;
        self
    }

    /// Most rules in total (default 10,000,000).
    pub fn max_rules(mut self, n: usize) -> Self {
        self.max_rules = n;
        self
    }

    /// Rules added since the last freeze that the delta may hold (default 64). Each write
    /// rebuilds the delta, so this bounds the cost of a write.
    pub fn delta_max(mut self, n: usize) -> Self {
        self.delta_max = n.max(1);
        self
    }

    /// Frozen layers above which a merge starts (default 8).
    pub fn max_layers(mut self, n: usize) -> Self {
        self.max_layers = n.max(2);
        self
    }

    /// Tombstones above which a merge starts (default 4,096).
    pub fn tombstones_max(mut self, n: usize) -> Self {
        self.tombstones_max = n.max(1);
        self
    }

    /// Whether merges run on a background thread (default) or inside the write that
    /// triggers them (deterministic, for tests).
    pub fn background_merges(mut self, yes: bool) -> Self {
        self.background_merges = yes;
        self
    }

    /// Fixes the word-hash key (reproducible benchmarks).
    pub fn hash_seed(mut self, k0: u64, k1: u64) -> Self {
        self.seed = Some((k0, k1));
        self
    }

    /// Forces the small-set prefilter on (whenever every rule can be keyed, whatever their
    /// number) or off. By default a snapshot uses it while its segments hold up to 20,000
    /// keys in total (DESIGN.md, "The small-set prefilter"): a post holding none of them is
    /// answered without tokenising it.
    pub fn small_set_prefilter(mut self, on: bool) -> Self {
        self.small_set = if on { Mode::On } else { Mode::Off };
        self
    }

    /// The registry.
    pub fn build(self) -> Registry {
        let hasher = match self.seed {
            Some((a, b)) => WordHasher::with_seed(a, b),
            None => WordHasher::random(),
        };
        let seed = small_seed(hasher);
        let mut kept = Kept::new(self.small_set, seed);
        let (small, keys) = kept.update(&[], &[], self.small_set, seed);
        let empty = Arc::new(Layer::with_keys(Vec::new(), hasher, keys));
        let state = State {
            layers: Vec::new(),
            delta: empty.clone(),
            removed: Arc::new(HashMap::new()),
            version: 0,
            slot_epoch: 0,
            small,
        };
        Registry {
            shared: Arc::new(Shared {
                current: PublishCell::new(state),
                writer: Mutex::new(Writer {
                    rules: FastMap::default(),
                    by_subscriber: FastMap::default(),
                    free_slots: Vec::new(),
                    dedup: FastMap::default(),
                    layers: Vec::new(),
                    delta: Vec::new(),
                    removed: HashMap::new(),
                    next_id: 1,
                    version: 0,
                    slot_epoch: 0,
                    merging: false,
                    small: kept,
                }),
                settings: self,
                hasher,
            }),
        }
    }
}

/// One compiled, immutable group of rules.
#[derive(Debug)]
struct Layer {
    segment: Segment,
    /// Segment-local rule number -> rule, ascending by id.
    infos: Vec<Arc<RuleInfo>>,
    /// Segment-local rule number -> what routing a match needs (see [`Routed`]), so that a
    /// message matching ten thousand rules reads a dense array rather than ten thousand
    /// records.
    keys: Vec<RouteKey>,
    /// The rules' keys for the small-set prefilter (`None`: some rule has none, there are
    /// too many, or the prefilter is off).
    small: Option<Keys>,
}

/// What the engine needs to route a matching rule: its id, its subscriber's slot, whether
/// it has a tag.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RouteKey {
    pub id: RuleId,
    /// The subscriber's slot (see `RuleInfo::subscriber_slot`).
    pub slot: u32,
    pub tagged: bool,
}

impl RouteKey {
    fn of(info: &RuleInfo) -> RouteKey {
        RouteKey { id: info.id, slot: info.subscriber_slot, tagged: info.tag.is_some() }
    }
}

/// A matching rule as [`Snapshot::find_routed_into`] reports it: the fields routing needs,
/// copied out of the rule's record (which the engine then reads only for a tag or a
/// subscriber it has not seen), and the record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Routed<'a> {
    pub key: RouteKey,
    pub info: &'a RuleInfo,
}

impl Layer {
    fn build(infos: Vec<Arc<RuleInfo>>, hasher: WordHasher, small: Mode) -> Layer {
        let small = small.keys(infos.iter().map(|i| &i.rule));
        Layer::with_keys(infos, hasher, small)
    }

    /// A layer whose rules have these prefilter keys.
    fn with_keys(infos: Vec<Arc<RuleInfo>>, hasher: WordHasher, small: Option<Keys>) -> Layer {
        let segment = Segment::build(infos.iter().map(|i| &i.rule), hasher);
        let keys = infos.iter().map(|i| RouteKey::of(i)).collect();
        Layer { segment, infos, keys, small }
    }

    /// The layer-local numbers of the rules matching `msg`, into `scratch.local`.
    fn find_local(&self, msg: &Message, scratch: &mut Scratch) {
        scratch.local.clear();
        self.segment.find(msg, &mut scratch.prepared, &mut scratch.segment, &mut scratch.local);
    }

    /// Whether the layer holds this version (serial) of rule `id`.
    fn holds(&self, id: RuleId, serial: u64) -> bool {
        self.infos.binary_search_by_key(&id, |i| i.id).is_ok_and(|k| self.infos[k].serial == serial)
    }

    fn heap_bytes(&self) -> usize {
        self.segment.heap_bytes()
            + self.small.as_ref().map_or(0, Keys::heap_bytes)
            + self.infos.capacity() * 8
            + self.keys.capacity() * std::mem::size_of::<RouteKey>()
    }
}

/// What a snapshot holds.
#[derive(Debug)]
struct State {
    layers: Vec<Arc<Layer>>,
    delta: Arc<Layer>,
    removed: Arc<HashMap<u64, RuleId>>,
    version: u64,
    /// Grows whenever a subscriber slot passes to another subscriber.
    slot_epoch: u64,
    /// The small-set prefilter, if every segment has keys and there are few enough.
    small: Option<Prefilter>,
}

impl State {
    /// `false` if the prefilter proves that no rule matches `msg`.
    #[inline]
    fn may_match(&self, msg: &Message, scratch: &mut Scratch) -> bool {
        let Some(p) = &self.small else { return true };
        let may = p.may_match(msg, &mut scratch.fold);
        scratch.prefiltered += u64::from(!may);
        may
    }
}

/// The writer side, behind a mutex (writers may wait for each other; readers never do).
#[derive(Debug)]
struct Writer {
    rules: FastMap<RuleId, Arc<RuleInfo>>,
    by_subscriber: FastMap<Arc<str>, SubscriberRules>,
    /// Subscriber slots given back (their subscriber has no rules left), reused first.
    free_slots: Vec<u32>,
    /// (subscriber, dialect, canonical text) -> the rule: refuses duplicates.
    dedup: FastMap<(Arc<str>, Dialect, String), RuleId>,
    layers: Vec<Arc<Layer>>,
    /// Rules added since the last freeze, ascending by id.
    delta: Vec<Arc<RuleInfo>>,
    /// Removed rule versions still present in a frozen layer: serial -> id.
    removed: HashMap<u64, RuleId>,
    next_id: u64,
    version: u64,
    /// See `State::slot_epoch`.
    slot_epoch: u64,
    merging: bool,
    /// What the next snapshot's small-set prefilter is built from.
    small: Kept,
}

/// A subscriber's rules and its slot (see `RuleInfo::subscriber_slot`).
#[derive(Debug)]
struct SubscriberRules {
    rules: HashSet<RuleId, FastHash>,
    slot: u32,
}

impl Writer {
    /// The registry's copy of the name `subscriber` and its slot, entered (with no rules yet)
    /// if it has none: the caller adds a rule right away.
    fn subscriber_entry(&mut self, subscriber: &Arc<str>) -> (Arc<str>, u32) {
        if let Some((k, e)) = self.by_subscriber.get_key_value(&**subscriber) {
            return (k.clone(), e.slot);
        }
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slot_epoch += 1;
                slot
            }
            None => self.by_subscriber.len() as u32,
        };
        self.by_subscriber
            .insert(subscriber.clone(), SubscriberRules { rules: HashSet::default(), slot });
        (subscriber.clone(), slot)
    }

    /// A new registration of `rule` as `id` for `subscriber` (a new serial; the subscriber
    /// entered, with a slot, if it had no rules). The caller inserts it.
    fn new_info(
        &mut self,
        id: RuleId,
        subscriber: &Arc<str>,
        rule: Rule,
        tag: Option<Arc<str>>,
    ) -> Arc<RuleInfo> {
        let serial = self.next_serial();
        let (subscriber, subscriber_slot) = self.subscriber_entry(subscriber);
        Arc::new(RuleInfo { id, subscriber, tag, rule, serial, subscriber_slot })
    }

    fn next_serial(&mut self) -> u64 {
        let s = self.next_id;
        self.next_id += 1;
        s
    }
}

#[derive(Debug)]
struct Shared {
    current: PublishCell<State>,
    writer: Mutex<Writer>,
    settings: RegistryBuilder,
    hasher: WordHasher,
}

/// A live set of subscriptions. `Send + Sync`; clone it (cheap, shared) to hand to writer
/// and matcher threads.
#[derive(Clone, Debug)]
pub struct Registry {
    shared: Arc<Shared>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

/// A rule to restore with [`Registry::restore`].
#[derive(Debug)]
pub(crate) struct Restore<'a> {
    /// The id it had.
    pub id: RuleId,
    pub subscriber: &'a str,
    pub rule: Rule,
    pub tag: Option<&'a str>,
    /// The rule's canonical text (`rule.to_string()`, as stored): the duplicate key, taken
    /// as is instead of rendered again.
    pub text: &'a str,
}

/// What [`Registry::restore`] did and where its time went.
#[derive(Debug)]
pub(crate) struct Restored {
    /// The rules refused (by id; all others were restored).
    pub refused: Vec<(RuleId, RegistryError)>,
    /// Ids, subscribers, duplicate keys.
    pub bookkeeping: Duration,
    /// The matcher compile (one layer over every rule).
    pub compile: Duration,
}

/// A rule to add in a batch.
#[derive(Clone, Debug)]
pub struct NewRule {
    /// The subscriber.
    pub subscriber: String,
    /// The rule.
    pub rule: Rule,
    /// The tag reported with matches.
    pub tag: Option<String>,
}

impl Registry {
    /// A registry with default settings.
    pub fn new() -> Self {
        RegistryBuilder::default().build()
    }

    /// A builder for settings and limits.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    fn lock(&self) -> MutexGuard<'_, Writer> {
        // A writer that panicked left consistent state behind (every mutation publishes
        // whole snapshots), so a poisoned lock is recovered.
        self.shared.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current rules, for matching. Lock-free and wait-free: never blocks on writers.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot { state: self.shared.current.load() }
    }

    /// Adds `rule` for `subscriber`; it applies to every message matched after this returns.
    ///
    /// ```
    /// use streamtrack::registry::Scratch;
    /// use streamtrack::{Message, Registry, Rule};
    ///
    /// let registry = Registry::new();
    /// let id = registry.subscribe("alice", Rule::parse_track("wii fit")?, Some("games".into()))?;
    /// let snapshot = registry.snapshot();
    /// let mut scratch = Scratch::new();
    /// let found = snapshot.find(&Message::new("1", "my Wii Fit board"), &mut scratch);
    /// assert_eq!(found.len(), 1);
    /// assert_eq!((found[0].id, &*found[0].subscriber), (id, "alice"));
    /// assert_eq!(found[0].tag.as_deref(), Some("games"));
    /// registry.unsubscribe(id)?;
    /// let later = registry.snapshot();
    /// assert!(later.find(&Message::new("2", "wii fit"), &mut scratch).is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn subscribe(
        &self,
        subscriber: &str,
        rule: Rule,
        tag: Option<String>,
    ) -> Result<RuleId, RegistryError> {
        let mut w = self.lock();
        let id = self.add_locked(&mut w, subscriber, rule, tag)?;
        self.publish(&mut w);
        Ok(id)
    }

    /// Adds many rules with one publication; each result says what became of each rule.
    pub fn subscribe_all(
        &self,
        rules: impl IntoIterator<Item = NewRule>,
    ) -> Vec<Result<RuleId, RegistryError>> {
        let mut w = self.lock();
        let results: Vec<_> = rules
            .into_iter()
            .map(|r| self.add_locked(&mut w, &r.subscriber, r.rule, r.tag))
            .collect();
        // A bulk load freezes straight into a layer instead of growing the delta.
        if w.delta.len() > self.shared.settings.delta_max {
            let infos = std::mem::take(&mut w.delta);
            w.layers.push(Arc::new(Layer::build(infos, self.shared.hasher, self.small_mode())));
        }
        self.publish(&mut w);
        results
    }

    /// Removes a rule; it applies to no message matched after this returns.
    pub fn unsubscribe(&self, id: RuleId) -> Result<(), RegistryError> {
        let mut w = self.lock();
        self.remove_locked(&mut w, id)?;
        self.publish(&mut w);
        Ok(())
    }

    /// Removes many rules with one publication.
    pub fn unsubscribe_all(
        &self,
        ids: impl IntoIterator<Item = RuleId>,
    ) -> Vec<Result<(), RegistryError>> {
        let mut w = self.lock();
        let results: Vec<_> = ids.into_iter().map(|id| self.remove_locked(&mut w, id)).collect();
        self.publish(&mut w);
        results
    }

    /// Replaces a rule's tree and tag in one publication, keeping its id and subscriber.
    pub fn replace(
        &self,
        id: RuleId,
        rule: Rule,
        tag: Option<String>,
    ) -> Result<(), RegistryError> {
        let mut w = self.lock();
        let old = w.rules.get(&id).cloned().ok_or(RegistryError::UnknownRule(id))?;
        let key = (old.subscriber.clone(), rule.dialect(), rule.to_string());
        if let Some(&existing) = w.dedup.get(&key) {
            if existing != id {
                return Err(RegistryError::Duplicate { existing });
            }
        }
        self.remove_locked(&mut w, id)?;
        let info = w.new_info(id, &old.subscriber, rule, tag.map(Into::into));
        self.insert_locked(&mut w, info, key);
        // The replacement keeps its (old) id, so the delta may no longer be in id order.
        w.delta.sort_by_key(|i| i.id);
        self.publish(&mut w);
        Ok(())
    }

    /// Removes every rule of `subscriber`; returns how many there were.
    pub fn remove_subscriber(&self, subscriber: &str) -> usize {
        let mut w = self.lock();
        let ids: Vec<RuleId> = w
            .by_subscriber
            .get(subscriber)
            .map(|e| e.rules.iter().copied().collect())
            .unwrap_or_default();
        for &id in &ids {
            let _ = self.remove_locked(&mut w, id);
        }
        self.publish(&mut w);
        ids.len()
    }

    /// The rules of `subscriber`, ascending by id.
    pub fn rules_of(&self, subscriber: &str) -> Vec<Arc<RuleInfo>> {
        let w = self.lock();
        let mut v: Vec<Arc<RuleInfo>> = w
            .by_subscriber
            .get(subscriber)
            .map(|e| e.rules.iter().filter_map(|id| w.rules.get(id).cloned()).collect())
            .unwrap_or_default();
        v.sort_by_key(|i| i.id);
        v
    }

    /// The rule with this id, if registered.
    pub fn get(&self, id: RuleId) -> Option<Arc<RuleInfo>> {
        self.lock().rules.get(&id).cloned()
    }

    /// The number of registered rules.
    pub fn len(&self) -> usize {
        self.lock().rules.len()
    }

    /// Whether no rule is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Merges every layer, the delta and the tombstones into one layer now (in this thread).
    pub fn compact(&self) {
        let mut w = self.lock();
        let mut infos: Vec<Arc<RuleInfo>> = w.rules.values().cloned().collect();
        infos.sort_by_key(|i| i.id);
        w.layers = vec![Arc::new(Layer::build(infos, self.shared.hasher, self.small_mode()))];
        w.delta.clear();
        w.removed.clear();
        self.publish(&mut w);
    }

    /// Heap bytes held by the published structures (segments, rule records, tombstones).
    pub fn heap_bytes(&self) -> usize {
        let s = self.shared.current.load();
        let layers: usize = s.layers.iter().map(|l| l.heap_bytes()).sum();
        let infos = self.lock().rules.len() * (std::mem::size_of::<RuleInfo>() + 64);
        let small = s.small.as_ref().map_or(0, Prefilter::heap_bytes);
        layers + s.delta.heap_bytes() + small + s.removed.capacity() * 16 + infos
    }

    /// The number of frozen layers and tombstones (for monitoring merges).
    pub fn layer_stats(&self) -> (usize, usize) {
        let s = self.shared.current.load();
        (s.layers.len(), s.removed.len())
    }

    /// Restores rules with the ids they had before (the durable registry, `crate::durable`,
    /// reopening its state): one publication, and no id below `id_floor` is ever handed out
    /// again, so ids of removed rules stay retired across restarts. Rules given twice (same
    /// id, or same subscriber, dialect and canonical text) are refused but the first given;
    /// limits are not applied (the rules were admitted when first subscribed).
    ///
    /// Built for a million rules: `rules` may be produced while this runs (parsed on other
    /// threads) and only gets its record and subscriber slot here; then the matcher compile
    /// (once, over every rule) runs on one thread while this one fills the id and duplicate
    /// maps, sized once from `count`. A refused rule (never, from files this crate wrote) is
    /// taken out again and the compile redone.
    pub(crate) fn restore<'a>(
        &self,
        rules: impl Iterator<Item = Restore<'a>>,
        count: usize,
        id_floor: u64,
    ) -> Restored {
        let t = Instant::now();
        let mut guard = self.lock();
        // Disjoint borrows of the writer's fields.
        let w = &mut *guard;
        w.next_id = w.next_id.max(id_floor);
        let mut top = 0;
        let mut infos: Vec<Arc<RuleInfo>> = Vec::with_capacity(count);
        let mut texts: Vec<&'a str> = Vec::with_capacity(count);
        for Restore { id, subscriber, rule, tag, text } in rules {
            top = top.max(id.0 + 1);
            let serial = w.next_id;
            w.next_id += 1;
            let known = w.by_subscriber.get_mut(subscriber).map(|e| {
                e.rules.insert(id);
                e.slot
            });
            let (sub, subscriber_slot) = match known {
                Some(slot) => {
                    let (k, _) = w.by_subscriber.get_key_value(subscriber).expect("known");
                    (k.clone(), slot)
                }
                None => {
                    let sub: Arc<str> = subscriber.into();
                    let slot = match w.free_slots.pop() {
                        Some(slot) => {
                            w.slot_epoch += 1;
                            slot
                        }
                        None => w.by_subscriber.len() as u32,
                    };
                    let mut rules = HashSet::default();
                    rules.insert(id);
                    w.by_subscriber.insert(sub.clone(), SubscriberRules { rules, slot });
                    (sub, slot)
                }
            };
            infos.push(Arc::new(RuleInfo {
                id,
                subscriber: sub,
                tag: tag.map(Into::into),
                rule,
                serial,
                subscriber_slot,
            }));
            texts.push(text);
        }
        w.next_id = w.next_id.max(top);
        let mut bookkeeping = t.elapsed();
        let t = Instant::now();
        // The ids and duplicate keys, on this thread, while another compiles.
        let fill = |w: &mut Writer| -> Vec<(RuleId, u64, RegistryError)> {
            let mut refused = Vec::new();
            w.rules.reserve(infos.len());
            w.dedup.reserve(infos.len());
            for (info, &text) in infos.iter().zip(&texts) {
                let Entry::Vacant(by_id) = w.rules.entry(info.id) else {
                    let e = RegistryError::Duplicate { existing: info.id };
                    refused.push((info.id, info.serial, e));
                    continue;
                };
                let key = (info.subscriber.clone(), info.rule.dialect(), text.to_owned());
                match w.dedup.entry(key) {
                    Entry::Occupied(e) => {
                        let e = RegistryError::Duplicate { existing: *e.get() };
                        refused.push((info.id, info.serial, e));
                    }
                    Entry::Vacant(by_key) => {
                        by_key.insert(info.id);
                        by_id.insert(info.clone());
                    }
                }
            }
            refused
        };
        let hasher = self.shared.hasher;
        let small = self.small_mode();
        let delta_max = self.shared.settings.delta_max;
        let sorted = infos.is_sorted_by_key(|i| i.id);
        let mut filling = Duration::ZERO;
        let (refused, layer) = if infos.len() > delta_max && sorted {
            std::thread::scope(|scope| {
                let compiling = infos.clone();
                let compile = std::thread::Builder::new()
                    .name("streamtrack-restore-compile".into())
                    .spawn_scoped(scope, move || Layer::build(compiling, hasher, small));
                let f = Instant::now();
                let refused = fill(w);
                filling = f.elapsed();
                let layer = match compile {
                    Ok(h) => h.join().expect("compiling does not panic"),
                    Err(_) => Layer::build(infos.clone(), hasher, small),
                };
                (refused, Some(layer))
            })
        } else {
            let f = Instant::now();
            let refused = fill(w);
            filling = f.elapsed();
            (refused, None)
        };
        // The compile's wait for the thread compiling beside the fill.
        let mut compile = t.elapsed().saturating_sub(filling);
        bookkeeping += filling;
        let t = Instant::now();
        let mut layer = layer.filter(|_| refused.is_empty());
        if !refused.is_empty() {
            // Take the refused rules out of the subscribers' sets (an id refused as a
            // duplicate of itself stays: the first is kept) and drop subscribers left
            // with none.
            let gone: HashSet<u64, FastHash> = refused.iter().map(|r| r.1).collect();
            infos.retain(|i| !gone.contains(&i.serial));
            for e in w.by_subscriber.values_mut() {
                e.rules.clear();
            }
            for info in w.rules.values() {
                if let Some(e) = w.by_subscriber.get_mut(&info.subscriber) {
                    e.rules.insert(info.id);
                }
            }
            let empty: Vec<Arc<str>> = w
                .by_subscriber
                .iter()
                .filter(|(_, e)| e.rules.is_empty())
                .map(|(k, _)| k.clone())
                .collect();
            for k in empty {
                if let Some(e) = w.by_subscriber.remove(&k) {
                    w.free_slots.push(e.slot);
                }
            }
        }
        // The delta stays ascending by id (removal searches it).
        if w.delta.is_empty() {
            w.delta = infos;
        } else {
            w.delta.extend(infos);
        }
        if !sorted {
            w.delta.sort_by_key(|i| i.id);
        }
        bookkeeping += t.elapsed();
        let t = Instant::now();
        if w.delta.len() > delta_max {
            let infos = std::mem::take(&mut w.delta);
            let layer = match layer.take() {
                Some(l) => l,
                None => Layer::build(infos, hasher, small),
            };
            w.layers.push(Arc::new(layer));
        }
        self.publish(w);
        compile += t.elapsed();
        let refused = refused.into_iter().map(|(id, _, e)| (id, e)).collect();
        Restored { refused, bookkeeping, compile }
    }

    fn add_locked(
        &self,
        w: &mut Writer,
        subscriber: &str,
        rule: Rule,
        tag: Option<String>,
    ) -> Result<RuleId, RegistryError> {
        let settings = &self.shared.settings;
        let sub: Arc<str> = match w.by_subscriber.get_key_value(subscriber) {
            Some((k, _)) => k.clone(),
            None => subscriber.into(),
        };
        let key = (sub.clone(), rule.dialect(), rule.to_string());
        if let Some(&existing) = w.dedup.get(&key) {
            return Err(RegistryError::Duplicate { existing });
        }
        if w.by_subscriber.get(subscriber).map_or(0, |e| e.rules.len())
            >= settings.max_rules_per_subscriber
        {
            return Err(RegistryError::TooManyRulesForSubscriber {
                subscriber: subscriber.to_string(),
                limit: settings.max_rules_per_subscriber,
            });
        }
        if w.rules.len() >= settings.max_rules {
            return Err(RegistryError::TooManyRules { limit: settings.max_rules });
        }
        let id = RuleId(w.next_id);
        let info = w.new_info(id, &sub, rule, tag.map(Into::into));
        self.insert_locked(w, info, key);
        Ok(id)
    }

    fn insert_locked(&self, w: &mut Writer, info: Arc<RuleInfo>, key: (Arc<str>, Dialect, String)) {
        let id = info.id;
        w.dedup.insert(key, id);
        w.by_subscriber
            .get_mut(&info.subscriber)
            .expect("entered by subscriber_entry")
            .rules
            .insert(id);
        w.rules.insert(id, info.clone());
        w.delta.push(info);
    }

    fn remove_locked(&self, w: &mut Writer, id: RuleId) -> Result<(), RegistryError> {
        let info = w.rules.remove(&id).ok_or(RegistryError::UnknownRule(id))?;
        w.dedup.remove(&(info.subscriber.clone(), info.rule.dialect(), info.rule.to_string()));
        if let Some(entry) = w.by_subscriber.get_mut(&info.subscriber) {
            entry.rules.remove(&id);
            if entry.rules.is_empty() {
                let slot = entry.slot;
                w.by_subscriber.remove(&info.subscriber);
                w.free_slots.push(slot);
            }
        }
        match w.delta.binary_search_by_key(&id, |i| i.id) {
            Ok(i) if w.delta[i].serial == info.serial => {
                w.delta.remove(i);
            }
            _ => {
                w.removed.insert(info.serial, id);
            }
        }
        Ok(())
    }

    /// Freezes a full delta, starts a merge when needed, and publishes a new snapshot.
    fn publish(&self, w: &mut Writer) {
        let settings = &self.shared.settings;
        if w.delta.len() >= settings.delta_max {
            let infos = std::mem::take(&mut w.delta);
            w.layers.push(Arc::new(Layer::build(infos, self.shared.hasher, self.small_mode())));
        }
        if !w.merging {
            if let Some(range) = merge_plan(&w.layers, w.removed.len(), settings) {
                let inputs: Vec<Arc<Layer>> = w.layers[range.clone()].to_vec();
                if settings.background_merges && cfg!(not(loom)) {
                    w.merging = true;
                    let weak = Arc::downgrade(&self.shared);
                    let removed = w.removed.clone();
                    let start = range.start;
                    let spawned = std::thread::Builder::new()
                        .name("streamtrack-merge".into())
                        .spawn(move || merge_in_background(weak, start, inputs, removed));
                    if spawned.is_err() {
                        w.merging = false;
                    }
                } else {
                    let merged =
                        merge_layers(&inputs, &w.removed, self.shared.hasher, self.small_mode());
                    install_merge(w, range.start, &inputs, merged);
                }
            }
        }
        w.version += 1;
        let (hasher, mode) = (self.shared.hasher, self.small_mode());
        let seed = small_seed(hasher);
        let (small, keys) = w.small.update(&w.layers, &w.delta, mode, seed);
        let delta = Arc::new(Layer::with_keys(w.delta.clone(), hasher, keys));
        self.shared.current.store(Arc::new(State {
            layers: w.layers.clone(),
            delta,
            removed: Arc::new(w.removed.clone()),
            version: w.version,
            slot_epoch: w.slot_epoch,
            small,
        }));
    }

    fn small_mode(&self) -> Mode {
        self.shared.settings.small_set
    }
}

/// Which layers to merge, if any: with too many tombstones, every layer (reclaiming removed
/// rules); with too many layers, the newest half (size-tiered, like an LSM tree: layers grow
/// geometrically, so a rule is rebuilt O(log n) times), or everything when the newer layers
/// are no longer small next to the oldest.
fn merge_plan(
    layers: &[Arc<Layer>],
    tombstones: usize,
    settings: &RegistryBuilder,
) -> Option<std::ops::Range<usize>> {
    if layers.is_empty() {
        return None;
    }
    if tombstones > settings.tombstones_max {
        return Some(0..layers.len());
    }
    if layers.len() <= settings.max_layers {
        return None;
    }
    let start = layers.len() - layers.len() / 2;
    let newer: usize = layers[1..].iter().map(|l| l.infos.len()).sum();
    if newer * 2 >= layers[0].infos.len() {
        return Some(0..layers.len());
    }
    Some(start..layers.len())
}

/// The live rules of `inputs`, compiled into one layer (in id order).
fn merge_layers(
    inputs: &[Arc<Layer>],
    removed: &HashMap<u64, RuleId>,
    hasher: WordHasher,
    small: Mode,
) -> Layer {
    let mut infos: Vec<Arc<RuleInfo>> = inputs
        .iter()
        .flat_map(|l| l.infos.iter())
        .filter(|i| !removed.contains_key(&i.serial))
        .cloned()
        .collect();
    infos.sort_by_key(|i| i.id);
    Layer::build(infos, hasher, small)
}

/// The seed of the prefilters' hash multiplier, from the registry's random hash key.
fn small_seed(hasher: WordHasher) -> u64 {
    hasher.hash(b"small")
}

/// Replaces `inputs` (the writer's layers from `start` on) by `merged` and drops the
/// tombstones no layer needs any more.
fn install_merge(w: &mut Writer, start: usize, inputs: &[Arc<Layer>], merged: Layer) {
    let end = start + inputs.len();
    debug_assert!(w.layers[start..end].iter().zip(inputs).all(|(a, b)| Arc::ptr_eq(a, b)));
    w.layers.splice(start..end, [Arc::new(merged)]);
    let layers = &w.layers;
    w.removed.retain(|&serial, &mut id| layers.iter().any(|l| l.holds(id, serial)));
}

fn merge_in_background(
    shared: Weak<Shared>,
    start: usize,
    inputs: Vec<Arc<Layer>>,
    removed: HashMap<u64, RuleId>,
) {
    let Some(s) = shared.upgrade() else { return };
    let (hasher, small) = (s.hasher, s.settings.small_set);
    drop(s);
    let merged = merge_layers(&inputs, &removed, hasher, small);
    let Some(s) = shared.upgrade() else { return };
    let registry = Registry { shared: s };
    let mut w = registry.lock();
    w.merging = false;
    // Layers are only appended while a merge runs (merges are exclusive), so the inputs are
    // still where they were.
    let end = start + inputs.len();
    let still_there = w.layers.len() >= end
        && w.layers[start..end].iter().zip(&inputs).all(|(a, b)| Arc::ptr_eq(a, b));
    if still_there {
        install_merge(&mut w, start, &inputs, merged);
        registry.publish(&mut w);
    }
}

/// The rules at one instant, for matching. Cheap to clone; matching threads take one per
/// message (or per batch) with [`Registry::snapshot`].
#[derive(Clone, Debug)]
pub struct Snapshot {
    state: Arc<State>,
}

/// Per-thread working memory for [`Snapshot::find`].
#[derive(Debug, Default)]
pub struct Scratch {
    prepared: Prepared,
    segment: SegmentScratch,
    local: Vec<u32>,
    out: Vec<Arc<RuleInfo>>,
    /// The prefilter's case-folding space.
    fold: String,
    /// Messages the prefilter answered (see [`Scratch::take_prefiltered`]).
    prefiltered: u64,
}

impl Scratch {
    /// Empty working memory.
    pub fn new() -> Self {
        Scratch::default()
    }

    /// The number of messages the small-set prefilter answered (no rule can match) since
    /// the last call: the engine's `prefiltered` count.
    pub(crate) fn take_prefiltered(&mut self) -> u64 {
        std::mem::take(&mut self.prefiltered)
    }
}

impl Snapshot {
    /// The rules that match `msg`, each once, ascending by id.
    pub fn find<'s>(&self, msg: &Message, scratch: &'s mut Scratch) -> &'s [Arc<RuleInfo>] {
        let mut out = std::mem::take(&mut scratch.out);
        out.clear();
        self.each_match(msg, scratch, |info| out.push(info.clone()));
        out.sort_by_key(|i| i.id);
        scratch.out = out;
        &scratch.out
    }

    /// Like [`Snapshot::find`], but borrows the rules from the snapshot instead of counting
    /// references: a message matching ten thousand rules costs no ten thousand atomic
    /// increments (and decrements later). `out` is cleared first.
    pub fn find_into<'a>(
        &'a self,
        msg: &Message,
        scratch: &mut Scratch,
        out: &mut Vec<&'a RuleInfo>,
    ) {
        out.clear();
        self.each_match(msg, scratch, |info| out.push(info));
        out.sort_by_key(|i| i.id);
    }

    /// Like [`Snapshot::find_into`], for routing: each matching rule with its id, subscriber
    /// slot and whether it is tagged, read from a dense array beside the records (the
    /// records themselves are not read unless there are tombstones), ascending by id.
    pub(crate) fn find_routed_into<'a>(
        &'a self,
        msg: &Message,
        scratch: &mut Scratch,
        out: &mut Vec<Routed<'a>>,
    ) {
        out.clear();
        let s = &*self.state;
        scratch.prepared.reset();
        if !s.may_match(msg, scratch) {
            return;
        }
        let frozen = s.layers.iter().map(|l| (l, true));
        for (layer, frozen) in frozen.chain([(&s.delta, false)]) {
            if layer.infos.is_empty() {
                continue;
            }
            layer.find_local(msg, scratch);
            if frozen && !s.removed.is_empty() {
                // The tombstone check reads each record anyway: take the fields from it.
                for &i in &scratch.local {
                    let info = &*layer.infos[i as usize];
                    if !s.removed.contains_key(&info.serial) {
                        out.push(Routed { key: RouteKey::of(info), info });
                    }
                }
                continue;
            }
            for &i in &scratch.local {
                let (key, info) = (layer.keys[i as usize], &*layer.infos[i as usize]);
                out.push(Routed { key, info });
            }
        }
        out.sort_by_key(|r| r.key.id);
    }

    /// Grows whenever a subscriber slot passes to another subscriber (see
    /// `RuleInfo::subscriber_slot`): what the engine remembers by slot is stale then.
    pub(crate) fn slot_epoch(&self) -> u64 {
        self.state.slot_epoch
    }

    /// Calls `f` with every rule matching `msg`, each once, in no particular order.
    fn each_match<'a>(
        &'a self,
        msg: &Message,
        scratch: &mut Scratch,
        mut f: impl FnMut(&'a Arc<RuleInfo>),
    ) {
        let s = &*self.state;
        scratch.prepared.reset();
        if !s.may_match(msg, scratch) {
            return;
        }
        for layer in s.layers.iter().filter(|l| !l.infos.is_empty()) {
            layer.find_local(msg, scratch);
            for &i in &scratch.local {
                let info = &layer.infos[i as usize];
                if !s.removed.contains_key(&info.serial) {
                    f(info);
                }
            }
        }
        if !s.delta.infos.is_empty() {
            s.delta.find_local(msg, scratch);
            for &i in &scratch.local {
                f(&s.delta.infos[i as usize]);
            }
        }
    }

    /// The rules the snapshot holds, ascending by id.
    pub fn rules(&self) -> Vec<Arc<RuleInfo>> {
        let s = &*self.state;
        let mut v: Vec<Arc<RuleInfo>> = s
            .layers
            .iter()
            .flat_map(|l| l.infos.iter())
            .filter(|i| !s.removed.contains_key(&i.serial))
            .chain(s.delta.infos.iter())
            .cloned()
            .collect();
        v.sort_by_key(|i| i.id);
        v
    }

    /// The number of keys of the small-set prefilter, if this snapshot has one: then a
    /// message holding none of them is answered without tokenising it (DESIGN.md, "The
    /// small-set prefilter").
    pub fn small_set_keys(&self) -> Option<usize> {
        self.state.small.as_ref().map(Prefilter::keys)
    }

    /// The snapshot's version: it grows with every publication.
    pub fn version(&self) -> u64 {
        self.state.version
    }

    /// The number of rules the snapshot holds.
    pub fn len(&self) -> usize {
        let s = &*self.state;
        s.layers.iter().map(|l| l.infos.len()).sum::<usize>() - s.removed.len()
            + s.delta.infos.len()
    }

    /// Whether the snapshot holds no rule.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// The slot of each rule's subscriber, by rule id.
    fn slots(r: &Registry) -> Vec<(String, u32)> {
        r.snapshot().rules().iter().map(|i| (i.subscriber.to_string(), i.subscriber_slot)).collect()
    }

    #[test]
    fn subscriber_slots_are_shared_per_subscriber_unique_and_reused() {
        let r = Registry::new();
        let rule = |s: &str| Rule::parse(s).unwrap();
        let a1 = r.subscribe("a", rule("x"), None).unwrap();
        r.subscribe("b", rule("x"), None).unwrap();
        let a2 = r.subscribe("a", rule("y"), None).unwrap();
        assert_eq!(slots(&r), [("a".into(), 0), ("b".into(), 1), ("a".into(), 0)]);
        // A failed subscribe takes no slot.
        assert!(r.subscribe("c", rule("x"), None).is_ok());
        assert!(r.subscribe("c", rule("x"), None).is_err());
        assert_eq!(slots(&r)[3], ("c".into(), 2));
        // `a` keeps its slot while it has a rule; once it has none, the next new subscriber
        // gets the slot.
        r.unsubscribe(a1).unwrap();
        assert_eq!(slots(&r)[1], ("a".into(), 0));
        r.unsubscribe(a2).unwrap();
        r.subscribe("d", rule("x"), None).unwrap();
        let now = slots(&r);
        assert_eq!(now, [("b".into(), 1), ("c".into(), 2), ("d".into(), 0)]);
        // Replacing a subscriber's only rule keeps the subscriber on one slot.
        let d = r.rules_of("d")[0].id;
        r.replace(d, rule("z"), None).unwrap();
        assert_eq!(slots(&r)[2], ("d".into(), 0));
        let e = r.subscribe("e", rule("x"), None).unwrap();
        assert_eq!(r.get(e).unwrap().subscriber_slot, 3);
        assert_eq!(r.remove_subscriber("b"), 1);
        r.subscribe("f", rule("x"), None).unwrap();
        assert_eq!(r.rules_of("f")[0].subscriber_slot, 1);
    }

    #[test]
    fn routed_matches_are_the_matches_with_their_routing_fields() {
        // Several frozen layers, a delta, tombstones, tags, and a slot passed on.
        let r = Registry::builder().delta_max(4).background_merges(false).build();
        let rule = |s: &str| Rule::parse(s).unwrap();
        let mut ids = Vec::new();
        for i in 0..30 {
            let tag = (i % 3 == 0).then(|| format!("t{i}"));
            let text =
                if i % 2 == 0 { format!("alpha -n{i}") } else { format!("alpha beta -n{i}") };
            ids.push(r.subscribe(&format!("s{}", i % 7), rule(&text), tag).unwrap());
        }
        for id in ids.iter().step_by(4) {
            r.unsubscribe(*id).unwrap();
        }
        let epoch = r.snapshot().slot_epoch();
        for id in r.rules_of("s3") {
            r.unsubscribe(id.id).unwrap();
        }
        r.subscribe("late", rule("alpha"), Some("x".into())).unwrap();
        let snap = r.snapshot();
        assert!(snap.slot_epoch() > epoch, "the slot of s3 passed to `late`");
        let mut scratch = Scratch::new();
        let mut routed = Vec::new();
        let mut found = Vec::new();
        for text in ["alpha", "alpha beta", "beta", "gamma"] {
            let msg = Message::new("m", text);
            snap.find_into(&msg, &mut scratch, &mut found);
            snap.find_routed_into(&msg, &mut scratch, &mut routed);
            let want: Vec<(RuleId, u32, bool)> =
                found.iter().map(|i| (i.id, i.subscriber_slot, i.tag.is_some())).collect();
            let got: Vec<(RuleId, u32, bool)> =
                routed.iter().map(|r| (r.key.id, r.key.slot, r.key.tagged)).collect();
            assert_eq!(got, want, "{text}");
            assert!(routed.iter().all(|r| r.info.id == r.key.id));
            assert_eq!(text.contains("alpha"), !routed.is_empty());
        }
    }

    #[test]
    fn restore_refuses_repeated_ids_and_keys_and_keeps_the_first() {
        let texts: Vec<String> = (0..200).map(|i| format!("w{i} -x")).collect();
        for in_order in [true, false] {
            let r = Registry::builder().delta_max(8).build();
            let mut given: Vec<(u64, &str, &str)> =
                texts.iter().enumerate().map(|(i, t)| (i as u64 + 1, "a", t.as_str())).collect();
            // The only rule of `lonely` repeats an id; `b`'s repeats a key (another id).
            given.push((7, "lonely", "other"));
            given.push((500, "a", "w3 -x"));
            given.push((501, "b", "w3 -x"));
            if !in_order {
                given.reverse();
            }
            let rules = given.iter().map(|&(id, sub, text)| Restore {
                id: RuleId(id),
                subscriber: sub,
                rule: Rule::parse(text).unwrap(),
                tag: None,
                text,
            });
            let restored = r.restore(rules, given.len(), 1000);
            let mut refused: Vec<(u64, RuleId)> = restored
                .refused
                .iter()
                .map(|(id, e)| match e {
                    RegistryError::Duplicate { existing } => (id.0, *existing),
                    other => panic!("{other:?}"),
                })
                .collect();
            refused.sort();
            let want = if in_order {
                vec![(7, RuleId(7)), (500, RuleId(4))]
            } else {
                // Given in reverse, the later ones were first.
                vec![(4, RuleId(500)), (7, RuleId(7))]
            };
            assert_eq!(refused, want, "in order: {in_order}");
            assert_eq!(r.len(), 201);
            assert_eq!(r.snapshot().len(), 201);
            assert_eq!(r.rules_of("a").len(), if in_order { 200 } else { 199 });
            assert_eq!(r.rules_of("b").len(), 1);
            let lonely_kept = !in_order;
            assert_eq!(r.rules_of("lonely").len(), usize::from(lonely_kept));
            // What matches is what was kept; ids are not handed out again.
            let mut scratch = Scratch::new();
            let found = r.snapshot().find(&Message::new("m", "w3"), &mut scratch).len();
            assert_eq!(found, 2, "in order: {in_order}");
            let found = r.snapshot().find(&Message::new("m", "other"), &mut scratch).len();
            assert_eq!(found, usize::from(lonely_kept));
            assert!(r.subscribe("c", Rule::parse("new").unwrap(), None).unwrap().0 >= 1000);
            // A slot freed with `lonely` is taken by the next new subscriber.
            let slots: HashSet<u32> =
                r.snapshot().rules().iter().map(|i| i.subscriber_slot).collect();
            assert_eq!(slots.len(), 3 + usize::from(lonely_kept));
            assert!(slots.iter().all(|&s| s < 4));
        }
    }

    #[test]
    fn restore_in_id_order_with_a_repeated_key_compiles_without_it() {
        // Ascending ids: the compile runs beside the duplicate check, then again without
        // the refused rule.
        let r = Registry::builder().delta_max(8).build();
        let mut texts: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        texts.push("w4".into());
        let rules = texts.iter().enumerate().map(|(i, t)| Restore {
            id: RuleId(i as u64 + 1),
            subscriber: if i == 100 { "a" } else { ["a", "b"][i % 2] },
            rule: Rule::parse(t).unwrap(),
            tag: None,
            text: t,
        });
        let restored = r.restore(rules, texts.len(), 1);
        assert_eq!(
            restored.refused,
            [(RuleId(101), RegistryError::Duplicate { existing: RuleId(5) })]
        );
        let found = r.snapshot().find(&Message::new("m", "w4"), &mut Scratch::new()).to_vec();
        assert_eq!(found.iter().map(|i| i.id).collect::<Vec<_>>(), [RuleId(5)]);
        assert_eq!((r.len(), r.snapshot().len(), r.rules_of("a").len()), (100, 100, 50));
    }

    #[test]
    fn registry_and_snapshot_are_send_and_sync() {
        assert_send_sync::<Registry>();
        assert_send_sync::<Snapshot>();
        assert_send_sync::<Scratch>();
    }
}
