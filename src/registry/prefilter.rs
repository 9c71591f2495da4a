//! The small-set prefilter (`matcher/small.rs`) for the live registry's snapshots: a snapshot
//! whose rules have few keys first asks whether any of its rules can match a message at all,
//! and skips every segment's matcher when none can (most posts, for a few topics tracked).
//!
//! Each segment keeps its rules' keys (built with it; `None` if a rule cannot be keyed or
//! there are too many). A snapshot holds two prefilters, asked in one pass over the message:
//! the frozen layers' keys united (kept while the layers stay, extended in a copy when a layer
//! is appended, rebuilt after a merge) and the delta's (rebuilt on every write from keys kept
//! per delta rule: a write reduces only its own rule, and builds a prefilter of at most the
//! delta's keys). A layer without keys, or more keys in total than [`AUTO_MAX_KEYS`] (unless
//! forced), leaves the snapshot without a prefilter. Removed rules still in a frozen layer
//! keep their keys until a merge drops them: a post holding one only goes to the matchers,
//! which hide the rule as before.

use super::{FastHash, Layer, RuleInfo};
use crate::matcher::small::{Keys, SmallSet, AUTO_MAX_KEYS};
use crate::rule::Rule;
use crate::Message;
use std::collections::HashMap;
use std::sync::Arc;

/// When the registry builds the prefilter (`RegistryBuilder::small_set_prefilter`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Mode {
    /// Up to [`AUTO_MAX_KEYS`] keys in total.
    #[default]
    Auto,
    /// Whenever every rule can be keyed, whatever their number.
    On,
    /// Never.
    Off,
}

impl Mode {
    /// The keys of a segment's rules, if the prefilter may use them.
    pub(super) fn keys<'a>(self, rules: impl Iterator<Item = &'a Rule>) -> Option<Keys> {
        if self == Mode::Off {
            return None;
        }
        Keys::of(rules, self == Mode::On)
    }

    fn allows(self, keys: usize) -> bool {
        match self {
            Mode::Auto => keys <= AUTO_MAX_KEYS,
            Mode::On => true,
            Mode::Off => false,
        }
    }
}

/// What the writer keeps from one publication to the next to build the next snapshot's
/// prefilter cheaply: the frozen layers' part and the layers it was made for, and the keys of
/// the delta's rules.
#[derive(Debug)]
pub(super) struct Kept {
    layers: Vec<Arc<Layer>>,
    frozen: Frozen,
    delta: DeltaKeys,
}

impl Kept {
    /// Nothing kept yet (no layers).
    pub(super) fn new(mode: Mode, seed: u64) -> Kept {
        let frozen = Frozen::of(std::iter::empty(), mode, seed);
        Kept { layers: Vec::new(), frozen, delta: DeltaKeys::default() }
    }

    /// The prefilter of a snapshot with these frozen layers and delta, and the delta's keys
    /// (for its layer). The frozen layers' part is kept while they stay, extended when layers
    /// were only appended (a freeze, a bulk load), rebuilt after a merge or a compaction.
    pub(super) fn update(
        &mut self,
        layers: &[Arc<Layer>],
        delta: &[Arc<RuleInfo>],
        mode: Mode,
        seed: u64,
    ) -> (Option<Prefilter>, Option<Keys>) {
        let n = self.layers.len();
        let kept =
            n <= layers.len() && self.layers.iter().zip(layers).all(|(a, b)| Arc::ptr_eq(a, b));
        if !kept {
            self.frozen = Frozen::of(layers.iter().map(|l| l.small.as_ref()), mode, seed);
        } else if n < layers.len() {
            self.frozen =
                self.frozen.appended(layers[n..].iter().map(|l| l.small.as_ref()), mode, seed);
        }
        if !kept || n < layers.len() {
            self.layers = layers.to_vec();
        }
        let keys = self.delta.of(delta, &self.frozen, mode);
        (Prefilter::new(&self.frozen, keys.as_ref(), mode, seed), keys)
    }
}

/// The keys of each rule of the delta, kept by the writer while the rule stays in the delta:
/// a write then reduces only its own rule to keys, not the delta's other rules again.
#[derive(Debug, Default)]
struct DeltaKeys {
    /// Serial -> the rule's keys (`None`: it has none).
    by_serial: HashMap<u64, Option<Keys>, FastHash>,
}

impl DeltaKeys {
    /// The keys of the rules of `delta` (see [`Mode::keys`]), or `None` (then nothing is
    /// kept) if `frozen` leaves the snapshot without a prefilter anyway.
    fn of(&mut self, delta: &[Arc<RuleInfo>], frozen: &Frozen, mode: Mode) -> Option<Keys> {
        if mode == Mode::Off || matches!(frozen, Frozen::Unkeyed) {
            self.by_serial.clear();
            return None;
        }
        for info in delta {
            self.by_serial.entry(info.serial).or_insert_with(|| Keys::of([&info.rule], true));
        }
        if self.by_serial.len() > delta.len() {
            // Rules left the delta (removed, replaced, frozen).
            let mut live: Vec<u64> = delta.iter().map(|i| i.serial).collect();
            live.sort_unstable();
            self.by_serial.retain(|s, _| live.binary_search(s).is_ok());
        }
        let all: Option<Vec<&Keys>> = self.by_serial.values().map(Option::as_ref).collect();
        Keys::union(all?, mode == Mode::On)
    }
}

/// The frozen layers' part of a snapshot's prefilter, shared by the snapshots until the
/// layers change.
#[derive(Clone, Debug)]
enum Frozen {
    /// Some layer has no keys, or (unless forced) they have too many: no prefilter.
    Unkeyed,
    /// The layers' keys united.
    Keyed(Arc<FrozenKeys>),
}

/// The frozen layers' keys and their prefilter (`None`: no rule needs a key or coordinates).
#[derive(Debug)]
struct FrozenKeys {
    keys: Keys,
    set: Option<SmallSet>,
}

impl Frozen {
    /// The part for layers with these keys.
    fn of<'a>(layers: impl Iterator<Item = Option<&'a Keys>>, mode: Mode, seed: u64) -> Frozen {
        let Some(all) = layers.collect::<Option<Vec<&Keys>>>() else { return Frozen::Unkeyed };
        match Keys::union(all, mode == Mode::On) {
            None => Frozen::Unkeyed,
            Some(keys) => {
                let set = (!keys.is_empty()).then(|| SmallSet::of_keys(&keys, seed));
                Frozen::Keyed(Arc::new(FrozenKeys { keys, set }))
            }
        }
    }

    /// The part for this one's layers and layers with the keys `added` after them (a freeze,
    /// a bulk load): the new keys are inserted into a copy of the prefilter when its sizes
    /// stay (a copy of at most a few hundred KiB instead of building every key again).
    fn appended<'a>(
        &self,
        added: impl Iterator<Item = Option<&'a Keys>>,
        mode: Mode,
        seed: u64,
    ) -> Frozen {
        let Frozen::Keyed(before) = self else { return Frozen::Unkeyed };
        let Some(added) = added.collect::<Option<Vec<&Keys>>>() else { return Frozen::Unkeyed };
        let Some(added) = Keys::union(added, true) else { return Frozen::Unkeyed };
        let Some(keys) = before.keys.merged(&added, mode == Mode::On) else {
            return Frozen::Unkeyed;
        };
        let set = match &before.set {
            _ if keys.is_empty() => None,
            Some(b) => b.extended(&keys, &added).or_else(|| Some(SmallSet::of_keys(&keys, seed))),
            None => Some(SmallSet::of_keys(&keys, seed)),
        };
        Frozen::Keyed(Arc::new(FrozenKeys { keys, set }))
    }
}

/// A snapshot's prefilter: the frozen layers' and the delta's, asked together.
#[derive(Debug)]
pub(super) struct Prefilter {
    frozen: Option<Arc<FrozenKeys>>,
    delta: Option<SmallSet>,
    keys: usize,
}

impl Prefilter {
    /// The prefilter of a snapshot with these frozen layers and a delta with these keys, if
    /// every segment has keys and `mode` allows their number.
    fn new(frozen: &Frozen, delta: Option<&Keys>, mode: Mode, seed: u64) -> Option<Self> {
        let (Frozen::Keyed(frozen), Some(delta)) = (frozen, delta) else {
            return None;
        };
        let keys = frozen.keys.len() + delta.len();
        if !mode.allows(keys) {
            return None;
        }
        let delta = (!delta.is_empty()).then(|| SmallSet::of_keys(delta, seed));
        let frozen = frozen.set.is_some().then(|| frozen.clone());
        Some(Prefilter { frozen, delta, keys })
    }

    /// `false` if no rule of the snapshot can match `msg`. `fold` is scratch space.
    #[inline]
    pub(super) fn may_match(&self, msg: &Message, fold: &mut String) -> bool {
        match (self.frozen.as_ref().and_then(|f| f.set.as_ref()), &self.delta) {
            (Some(a), Some(b)) => SmallSet::may_match_either(a, b, msg, fold),
            (Some(a), None) => a.may_match(msg, fold),
            (None, Some(b)) => b.may_match(msg, fold),
            // No rule at all, or none that needs a key or coordinates (none exists).
            (None, None) => false,
        }
    }

    /// The number of keys (the frozen layers' and the delta's: a key in both counts twice).
    pub(super) fn keys(&self) -> usize {
        self.keys
    }

    /// Heap bytes (the frozen part is shared by the snapshots until the layers change).
    pub(super) fn heap_bytes(&self) -> usize {
        let frozen = self
            .frozen
            .as_ref()
            .map_or(0, |f| f.keys.heap_bytes() + f.set.as_ref().map_or(0, SmallSet::heap_bytes));
        frozen + self.delta.as_ref().map_or(0, SmallSet::heap_bytes)
    }
}
