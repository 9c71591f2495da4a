//! The small-set prefilter (`matcher/small.rs`) for the live registry's snapshots: a snapshot
//! whose rules have few keys first asks whether any of its rules can match a message at all,
//! and skips every segment's matcher when none can (most posts, for a few topics tracked).
//!
//! Each segment keeps its rules' keys (built with it; `None` if a rule cannot be keyed or
//! there are too many). A snapshot holds two prefilters, asked in one pass over the message:
//! the frozen layers' keys united (rebuilt only when the layers change: a freeze, a merge, a
//! bulk load) and the delta's (rebuilt with the delta on every write, so a write's extra cost
//! is bounded by the delta's size). A layer without keys, or more keys in total than
//! [`AUTO_MAX_KEYS`] (unless forced), leaves the snapshot without a prefilter. Removed rules
//! still in a frozen layer keep their keys until a merge drops them: a post holding one only
//! goes to the matchers, which hide the rule as before.

use crate::matcher::small::{Keys, SmallSet, AUTO_MAX_KEYS};
use crate::rule::Rule;
use crate::Message;
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
        let rules: Vec<&Rule> = rules.collect();
        Keys::of(&rules, self == Mode::On)
    }

    fn allows(self, keys: usize) -> bool {
        match self {
            Mode::Auto => keys <= AUTO_MAX_KEYS,
            Mode::On => true,
            Mode::Off => false,
        }
    }
}

/// The frozen layers' part of a snapshot's prefilter, shared by the snapshots until the
/// layers change.
#[derive(Clone, Debug)]
pub(super) enum Frozen {
    /// Some layer has no keys, or (unless forced) they have too many: no prefilter.
    Unkeyed,
    /// The layers' keys united (`None`: no rule needs a key or coordinates) and their number.
    Keyed(Option<Arc<SmallSet>>, usize),
}

impl Frozen {
    /// The part for layers with these keys.
    pub(super) fn of<'a>(
        layers: impl Iterator<Item = Option<&'a Keys>>,
        mode: Mode,
        seed: u64,
    ) -> Frozen {
        let Some(all) = layers.collect::<Option<Vec<&Keys>>>() else { return Frozen::Unkeyed };
        match Keys::union(all, mode == Mode::On) {
            None => Frozen::Unkeyed,
            Some(k) if k.is_empty() => Frozen::Keyed(None, 0),
            Some(k) => Frozen::Keyed(Some(Arc::new(SmallSet::of_keys(&k, seed))), k.len()),
        }
    }
}

/// A snapshot's prefilter: the frozen layers' and the delta's, asked together.
#[derive(Debug)]
pub(super) struct Prefilter {
    frozen: Option<Arc<SmallSet>>,
    delta: Option<SmallSet>,
    keys: usize,
}

impl Prefilter {
    /// The prefilter of a snapshot with these frozen layers and a delta with these keys, if
    /// every segment has keys and `mode` allows their number.
    pub(super) fn new(
        frozen: &Frozen,
        delta: Option<&Keys>,
        mode: Mode,
        seed: u64,
    ) -> Option<Self> {
        let (Frozen::Keyed(frozen, frozen_keys), Some(delta)) = (frozen, delta) else {
            return None;
        };
        let keys = frozen_keys + delta.len();
        if !mode.allows(keys) {
            return None;
        }
        let delta = (!delta.is_empty()).then(|| SmallSet::of_keys(delta, seed));
        Some(Prefilter { frozen: frozen.clone(), delta, keys })
    }

    /// `false` if no rule of the snapshot can match `msg`. `fold` is scratch space.
    #[inline]
    pub(super) fn may_match(&self, msg: &Message, fold: &mut String) -> bool {
        match (&self.frozen, &self.delta) {
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
        self.frozen.as_ref().map_or(0, |f| f.heap_bytes())
            + self.delta.as_ref().map_or(0, SmallSet::heap_bytes)
    }
}
