//! The small-set prefilter (issue 20, item 3): for rule sets of up to about ten thousand
//! terms, most posts hold no term at all, and the cheapest way to match them is to prove
//! that before the scanner tokenises, hashes and looks up every word.
//!
//! Every rule is reduced to alternatives one of which every message the rule matches holds
//! (an AND takes its most selective child, an OR all of its children's; a rule that cannot be
//! keyed soundly disables the prefilter). An alternative is made of the *units* of normalised
//! words: a maximal run of ASCII letters and digits (keyed by its first 8 bytes,
//! ASCII-lower-cased, and whether it is longer) or one non-ASCII character. It is one unit, or
//! two units in a row (inside a word, or across two words that every match holds next to each
//! other), looked up by the rarer one.
//!
//! A message is then scanned raw, without normalising it: 64-byte blocks (overlapping, see
//! [`STEP`]), masks of the ASCII letters and digits and of the first bytes of non-ASCII
//! characters (SSE2, or SWAR on `u64` lanes); at every start of a run one masked 8-byte load
//! makes the run's key, and every non-ASCII character is decoded and case-folded into its key;
//! each key is looked up in a bit filter and, if it passes, in an exact table (and, for a pair,
//! the unit before or after it is read). A message with no alternative present skips the
//! matcher.
//!
//! Why that is sound: in the caseless normal form the matcher uses, an ASCII letter or digit
//! is only lower-cased and every other character maps to non-ASCII characters, *unless* the
//! message holds a character that normalises to ASCII (`ß` → `ss`, the Kelvin sign, `ﬁ`), a
//! character that NFC may combine or reorder (combining accents after a letter), or a
//! default-ignorable character after an ASCII one (`b\u{200B}omb` is the word `bomb`). Without
//! those, each run of a word of every field is a maximal run of the raw text, each non-ASCII
//! character is what a raw character folds to, and units next to each other in a match are
//! next to each other among the raw text's units, except across a URL prefix that tokenising
//! removes (`all http://yearn` holds the phrase `all yearn`: a pair that fails counts as
//! found if the raw unit next to it may be part of a URL prefix, see [`UrlCache`]). A message
//! holding one of those characters is *unsafe*: it always goes to the matcher, as does a
//! message with coordinates or a place when some rule has a geo term.

use crate::normalize::{is_scheme_byte, plain_char, push_case_folded, CharClass, Tokens, UrlMode};
use crate::rule::{Node, Rule, Term};
use crate::Message;

/// Above this many distinct keys the prefilter is not built unless forced: measured on the
/// shared side-by-side corpus and the generated workload (DESIGN.md, "The small-set prefilter";
/// the table in bench/journal.md), past it too many posts hold some key for skipping to pay for
/// the scan.
pub(crate) const AUTO_MAX_KEYS: usize = 20_000;

/// A message key (see the module documentation): an ASCII run's first 8 bytes, lower-cased,
/// little-endian, with bit 63 set if the run is longer; or a non-ASCII character `c` as
/// `c << 8 | 0xff` (the low byte of an ASCII key is a letter or digit, never `0xff`). Never 0.
type Key = u64;

const LONG_RUN: u64 = 1 << 63;

/// The key of an ASCII run whose first `min(run, 8)` bytes are the low bytes of `w`.
#[inline(always)]
fn ascii_key(w: u64, run: u32) -> Key {
    // Without a branch: run lengths are as unpredictable as word lengths.
    let mask = u64::MAX >> (8 * (8 - run.clamp(1, 8)));
    // `| 0x20` lower-cases ASCII letters and leaves digits as they are.
    ((w | 0x2020_2020_2020_2020) & mask) | (u64::from(run > 8) * LONG_RUN)
}

#[inline(always)]
fn char_key(c: char) -> Key {
    (u64::from(c as u32) << 8) | 0xff
}

/// The key of a maximal run of ASCII letters and digits, and its score: longer runs are
/// rarer in text (runs past 8 bytes are keyed by their first 8). Runs of 1 or 2 bytes score
/// below any character: a fifth of the runs of English text, which the scan drops unread
/// when no key is that short (`naïve` is looked up by `ï`, not by `na`).
fn run_key(run: &[u8]) -> (Key, u32) {
    // (Not `copy_from_slice`: a call to `memcpy` for a few bytes, on the pair path.)
    let w = run.iter().take(8).rev().fold(0, |w, &c| w << 8 | u64::from(c));
    let len = run.len().min(9) as u32;
    (ascii_key(w, len), if len <= 2 { len - 1 } else { len })
}

/// The key of a non-ASCII character and its score: an accented Latin letter is common in
/// European text (`é`: 4% of the shared corpus's posts), other characters are rarer.
fn char_key_scored(c: char) -> (Key, u32) {
    (char_key(c), if (c as u32) < 0x250 { 2 } else { 3 })
}

/// The *units* of a normalised word, in order, with their keys and scores: each maximal run
/// of ASCII letters and digits, and each non-ASCII character. In a safe message (module
/// documentation) a run of the word is a maximal run of the raw text too (it is bounded by
/// non-ASCII characters or by the word's ends), a character is what a raw character folds
/// to, and units next to each other in the word are next to each other among the raw text's
/// units.
fn word_units(word: &str, out: &mut Vec<(Key, u32)>) {
    let b = word.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            let n = b[i..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            out.push(run_key(&b[i..i + n]));
            i += n;
        } else {
            let Some(c) = word.get(i..).and_then(|t| t.chars().next()) else { break };
            if !c.is_ascii() {
                out.push(char_key_scored(c));
            }
            i += c.len_utf8();
        }
    }
}

/// One way for a rule to be present: a unit found anywhere, or two units in a row (looked up
/// by the more selective one: the first if `by_first`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Want {
    One(Key),
    Pair { first: Key, second: Key, by_first: bool },
}

/// The most selective way to find `words` (all of which a match holds): a unit, or two
/// units in a row, of one word, or (if the words are consecutive words of one field in every
/// match: `in_a_row`) across two adjacent words. Between two words only separators lie,
/// which are not units.
fn best_want(words: &[&str], in_a_row: bool) -> Option<Alt> {
    let mut best: Option<(Want, u32)> = None;
    let mut offer = |w: Want, score: u32| {
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((w, score));
        }
    };
    let mut units = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !in_a_row || i == 0 {
            units.clear();
        }
        let from = units.len().saturating_sub(1);
        word_units(w, &mut units);
        for &(k, score) in &units[from..] {
            offer(Want::One(k), score);
        }
        for pair in units[from..].windows(2) {
            let ((a, sa), (b, sb)) = (pair[0], pair[1]);
            // (A pair is more selective than either of its units.)
            offer(Want::Pair { first: a, second: b, by_first: sa >= sb }, sa + sb + 1);
        }
    }
    best.map(|(w, score)| Alt { wants: vec![w], cost: 20u32.saturating_sub(score), geo: false })
}

/// The words of a normalised value (a phrase, a raw token, an entity or operator value), all
/// of which are consecutive words of the field holding it.
fn value_want(value: &str) -> Option<Alt> {
    let t = Tokens::of(value, UrlMode::Keep);
    let words: Vec<&str> = t.word_texts().collect();
    best_want(&words, true)
}

/// What a rule (or a node of it) needs to be true in a message: one of `wants` present, or
/// (if `geo`) the message having coordinates or a place.
#[derive(Clone, Debug)]
struct Alt {
    wants: Vec<Want>,
    /// Lower is more selective: the sum over the wants.
    cost: u32,
    geo: bool,
}

/// The need of a node, or `None` if the node may hold with no key present (negations,
/// filters, `contains:`).
fn need(node: &Node) -> Option<Alt> {
    match node {
        Node::Term(t) => term_need(t),
        Node::Not(_) => None,
        Node::And(children) => children.iter().filter_map(need).min_by_key(|a| (a.cost, a.geo)),
        Node::Or(children) => {
            let mut all = Alt { wants: Vec::new(), cost: 0, geo: false };
            for c in children {
                let a = need(c)?;
                all.wants.extend(a.wants);
                all.cost += a.cost;
                all.geo |= a.geo;
            }
            Some(all)
        }
    }
}

fn words(w: &[String]) -> Vec<&str> {
    w.iter().map(String::as_str).collect()
}

fn term_need(term: &Term) -> Option<Alt> {
    match term {
        // Consecutive words of one field.
        Term::Keyword(w) | Term::Url(w) => best_want(&words(w), true),
        // Anywhere within a few positions, in any order.
        Term::Proximity { words: w, .. } => best_want(&words(w), false),
        Term::Phrase(v)
        | Term::Token(v)
        | Term::Hashtag(v)
        | Term::Mention(v)
        | Term::Cashtag(v)
        | Term::From(v)
        | Term::To(v)
        | Term::Follow(v) => value_want(v),
        Term::BoundingBox(_) | Term::PointRadius { .. } | Term::Locations(_) => {
            // Only a message with coordinates or a place can match: cheaper than any key.
            Some(Alt { wants: Vec::new(), cost: 0, geo: true })
        }
        // A substring may start and end inside words; filters hold with no text at all.
        Term::Contains(_) | Term::Lang(_) | Term::Has(_) | Term::Is(_) | Term::Sample(_) => None,
    }
}

/// Table flag: some rule wants the key alone.
const ONE: u8 = 1;
/// Table flag: some rule wants the key right before another unit (see `pairs`).
const FIRST: u8 = 2;
/// Table flag: some rule wants the key right after another unit (see `pairs`).
const SECOND: u8 = 4;

/// A set of non-zero `u64`s: open addressing, linear probing, at most half full.
#[derive(Clone, Debug)]
struct Table {
    slots: Vec<u64>,
    /// A flag byte per slot.
    flags: Vec<u8>,
    shift: u32,
}

impl Table {
    fn new(items: usize) -> Table {
        let n = Table::slots_for(items);
        Table { slots: vec![0; n], flags: vec![0; n], shift: 64 - n.trailing_zeros() }
    }

    #[inline(always)]
    fn home(&self, k: u64, mul: u64) -> usize {
        (k.wrapping_mul(mul).rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift)
            as usize
    }

    /// The number of slots for `items` keys.
    fn slots_for(items: usize) -> usize {
        (items * 2).next_power_of_two().max(16)
    }

    /// Adds `k` with `flag`; whether `k` is new.
    fn insert(&mut self, k: u64, mul: u64, flag: u8) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = self.home(k, mul);
        while self.slots[i] != 0 && self.slots[i] != k {
            i = (i + 1) & mask;
        }
        let new = self.slots[i] == 0;
        self.slots[i] = k;
        self.flags[i] |= flag;
        new
    }

    /// The flags of `k`, 0 if absent.
    #[inline(always)]
    fn get(&self, k: u64, mul: u64) -> u8 {
        let mask = self.slots.len() - 1;
        let mut i = self.home(k, mul);
        loop {
            match self.slots[i] {
                0 => return 0,
                x if x == k => return self.flags[i],
                _ => i = (i + 1) & mask,
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 8 + self.flags.capacity()
    }
}

/// The table entry of a pair of runs (never 0).
#[inline(always)]
fn pair_entry(first: Key, second: Key) -> u64 {
    (first.wrapping_mul(0xff51_afd7_ed55_8ccd).rotate_left(31) ^ second) | 1
}

/// What a set of rules needs for one of them to match, before it is compiled into a
/// [`SmallSet`]: kept by the live registry per segment, so that the keys of several segments
/// can be united without reducing their rules again.
#[derive(Clone, Debug, Default)]
pub(crate) struct Keys {
    /// Ascending, distinct.
    wants: Vec<Want>,
    /// Some rule has a geo term.
    geo: bool,
}

impl Keys {
    /// The keys of `rules`, or `None` if some rule cannot be keyed soundly or (unless
    /// `force`) there are more than [`AUTO_MAX_KEYS`] distinct ones.
    pub(crate) fn of<'a>(rules: impl IntoIterator<Item = &'a Rule>, force: bool) -> Option<Keys> {
        let mut wants: Vec<Want> = Vec::new();
        let mut geo = false;
        // When to count the distinct keys so far: a large rule set (the live registry's base
        // layer) stops after about `AUTO_MAX_KEYS` rules; rules sharing keys go on.
        let mut count_at = AUTO_MAX_KEYS + 1;
        for r in rules {
            let a = need(r.root())?;
            wants.extend(a.wants);
            geo |= a.geo;
            if !force && wants.len() >= count_at {
                wants.sort_unstable();
                wants.dedup();
                if wants.len() > AUTO_MAX_KEYS {
                    return None;
                }
                count_at = (2 * wants.len()).max(AUTO_MAX_KEYS + 1);
            }
        }
        Keys::sorted(wants, geo, force)
    }

    /// The keys of all of `parts` (see [`Keys::of`] for `force`).
    pub(crate) fn union<'a>(
        parts: impl IntoIterator<Item = &'a Keys>,
        force: bool,
    ) -> Option<Keys> {
        let mut wants = Vec::new();
        let mut geo = false;
        for k in parts {
            wants.extend_from_slice(&k.wants);
            geo |= k.geo;
        }
        Keys::sorted(wants, geo, force)
    }

    /// The keys of `self` and `other` (see [`Keys::of`] for `force`), merged in linear time.
    pub(crate) fn merged(&self, other: &Keys, force: bool) -> Option<Keys> {
        let (a, b) = (&self.wants, &other.wants);
        let mut wants = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].cmp(&b[j]) {
                std::cmp::Ordering::Less => (wants.push(a[i]), i += 1),
                std::cmp::Ordering::Greater => (wants.push(b[j]), j += 1),
                std::cmp::Ordering::Equal => (wants.push(a[i]), (i, j) = (i + 1, j + 1)),
            };
        }
        wants.extend_from_slice(&a[i..]);
        wants.extend_from_slice(&b[j..]);
        if !force && wants.len() > AUTO_MAX_KEYS {
            return None;
        }
        Some(Keys { wants, geo: self.geo || other.geo })
    }

    fn sorted(mut wants: Vec<Want>, geo: bool, force: bool) -> Option<Keys> {
        wants.sort_unstable();
        wants.dedup();
        if !force && wants.len() > AUTO_MAX_KEYS {
            return None;
        }
        wants.shrink_to_fit();
        Some(Keys { wants, geo })
    }

    fn pairs(&self) -> usize {
        self.wants.iter().filter(|w| matches!(w, Want::Pair { .. })).count()
    }

    /// The number of distinct keys (units and pairs of units).
    pub(crate) fn len(&self) -> usize {
        self.wants.len()
    }

    /// Whether no message can pass: no key, no geo term (a set of no rules).
    pub(crate) fn is_empty(&self) -> bool {
        self.wants.is_empty() && !self.geo
    }

    /// Heap bytes.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.wants.capacity() * std::mem::size_of::<Want>()
    }
}

/// The compiled prefilter: the rules' keys in a bit filter and an exact table.
#[derive(Clone, Debug)]
pub(crate) struct SmallSet {
    /// One bit per hash value of the filter (multiply-shift by `mul`, top `64 - shift` bits).
    filter: Vec<u64>,
    filter_shift: u32,
    /// Every key a rule wants, flagged [`ONE`] and/or [`SECOND`].
    keys: Table,
    /// The pairs of runs ([`pair_entry`]) rules want.
    pairs: Table,
    mul: u64,
    /// Some rule has a geo term.
    geo: bool,
    key_count: usize,
    /// The length of the shortest ASCII run looked up (9: longer than 8; 10: none): the scan
    /// drops shorter runs from a block's mask of run starts before looking any up.
    min_run: u32,
}

impl SmallSet {
    /// The prefilter for `rules`, or `None` if some rule cannot be keyed soundly or (unless
    /// `force`) the rules have more than [`AUTO_MAX_KEYS`] distinct keys. `seed` makes the
    /// hash multiplier unpredictable (colliding keys cost speed, never a match).
    pub(crate) fn build(rules: &[&Rule], seed: u64, force: bool) -> Option<SmallSet> {
        Keys::of(rules.iter().copied(), force).map(|k| SmallSet::of_keys(&k, seed))
    }

    /// The prefilter for `keys` (see [`Keys`]), whatever their number.
    pub(crate) fn of_keys(keys: &Keys, seed: u64) -> SmallSet {
        let (filter_bits, _, _) = SmallSet::sizes(keys);
        let mut s = SmallSet {
            filter: vec![0; filter_bits / 64],
            filter_shift: 64 - filter_bits.trailing_zeros(),
            keys: Table::new(keys.wants.len()),
            pairs: Table::new(keys.pairs()),
            mul: seed | 1,
            geo: keys.geo,
            key_count: 0,
            min_run: 10,
        };
        s.insert(keys);
        s
    }

    /// The filter's bits and the tables' slots for `keys`.
    fn sizes(keys: &Keys) -> (usize, usize, usize) {
        // 64 filter bits per key (at least 4 KiB): 1.5% of absent keys pass to the table.
        let filter_bits = (keys.wants.len() * 64).next_power_of_two().max(1 << 15);
        (filter_bits, Table::slots_for(keys.wants.len()), Table::slots_for(keys.pairs()))
    }

    /// The prefilter for `all`, the keys of this one's and `added`, if it has the sizes
    /// [`SmallSet::of_keys`] would give it: this one with `added` inserted (what the live
    /// registry does when a layer is frozen, instead of building all again).
    pub(crate) fn extended(&self, all: &Keys, added: &Keys) -> Option<SmallSet> {
        let sizes = (self.filter.len() * 64, self.keys.slots.len(), self.pairs.slots.len());
        if SmallSet::sizes(all) != sizes {
            return None;
        }
        let mut s = self.clone();
        s.geo |= added.geo;
        s.insert(added);
        Some(s)
    }

    fn insert(&mut self, keys: &Keys) {
        let mul = self.mul;
        for &w in &keys.wants {
            let (k, flag) = match w {
                Want::One(k) => (k, ONE),
                Want::Pair { first, second, by_first } => {
                    self.pairs.insert(pair_entry(first, second), mul, ONE);
                    if by_first {
                        (first, FIRST)
                    } else {
                        (second, SECOND)
                    }
                }
            };
            if k & 0xff != 0xff {
                // An ASCII run's key: its length is the number of its non-zero bytes (all
                // letters and digits), or 9 with the long-run bit.
                let run = if k & LONG_RUN != 0 { 9 } else { (71 - k.leading_zeros()) / 8 };
                self.min_run = self.min_run.min(run);
            }
            let h = self.filter_bit(k);
            self.filter[(h >> 6) as usize] |= 1 << (h & 63);
            self.key_count += usize::from(self.keys.insert(k, mul, flag));
        }
    }

    #[inline(always)]
    fn filter_bit(&self, k: Key) -> u64 {
        k.wrapping_mul(self.mul) >> self.filter_shift
    }

    /// Whether some rule may want `k` (the filter: 1.5% of other keys pass too).
    #[inline(always)]
    fn may_have(&self, k: Key) -> bool {
        let h = self.filter_bit(k);
        // `h >> 6` is below the filter's length, a power of two: the mask only lets the
        // compiler see it (an `and` instead of a compare and a branch per run).
        let words = self.filter.len();
        self.filter[(h >> 6) as usize & (words - 1)] & (1 << (h & 63)) != 0
    }

    /// The number of distinct keys.
    pub(crate) fn key_count(&self) -> usize {
        self.key_count
    }

    /// Heap bytes of the filter and the tables.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.filter.capacity() * 8 + self.keys.heap_bytes() + self.pairs.heap_bytes()
    }

    /// `false` if no rule can match `msg` (no key present, the message safe); `true` if some
    /// rule may. `fold` is scratch space for case folding.
    pub(crate) fn may_match(&self, msg: &Message, fold: &mut String) -> bool {
        may_match(self, msg, fold)
    }

    /// Like [`SmallSet::may_match`], for the rules of two prefilters together (the live
    /// registry's frozen layers and its delta): one pass over the message, each key looked
    /// up in both.
    pub(crate) fn may_match_either(
        a: &SmallSet,
        b: &SmallSet,
        msg: &Message,
        fold: &mut String,
    ) -> bool {
        may_match(&(a, b), msg, fold)
    }

    /// Whether the unit `k` at bytes `start..end` of `text` makes some rule possible: wanted
    /// alone, or with the unit before or after it (a pair). Taken only when the filter lets
    /// `k` through.
    #[cold]
    fn found(
        &self,
        text: &str,
        k: Key,
        start: usize,
        end: usize,
        fold: &mut String,
        url: &UrlCache,
    ) -> bool {
        let f = self.keys.get(k, self.mul);
        if f & ONE != 0 {
            return true;
        }
        let b = text.as_bytes();
        // `neighbour`: the start of the raw unit next to `k` (after it or before it).
        let pair = |first: Key, second: Key, neighbour: usize| {
            self.pairs.get(pair_entry(first, second), self.mul) != 0
                // A URL prefix removed by tokenising (`all http://yearn` holds the phrase
                // `all yearn`) hides the raw units of its scheme and its `www`: if the raw
                // neighbour may be one of them, the unit next to `k` in the normal form may
                // be another, so the pair counts as found.
                || url.may_hide(b, neighbour)
        };
        if f & FIRST != 0 {
            // A run longer than 9 bytes was measured up to 9: the next unit is after all of
            // it. Only a run: after a non-ASCII unit (`🍕e`) the letters are the next unit.
            let end = if b[start].is_ascii_alphanumeric() {
                end + b[end..].iter().take_while(|c| c.is_ascii_alphanumeric()).count()
            } else {
                end
            };
            match next_unit(text, end, fold) {
                Err(()) => return true,
                // At the end of the text: no pair.
                Ok(None) => {}
                Ok(Some((next, at))) => {
                    if pair(k, next, at) {
                        return true;
                    }
                }
            }
        }
        if f & SECOND != 0 {
            match prev_unit(text, start, fold) {
                Err(()) => return true,
                Ok(None) => {}
                Ok(Some((prev, at))) => {
                    if pair(prev, k, at) {
                        return true;
                    }
                }
            }
        }
        false
    }
}

/// What a scan asks of each unit it meets: one prefilter's keys, or two prefilters' (asked
/// in one pass over the text).
trait Probe {
    /// Some rule has a geo term.
    fn geo(&self) -> bool;
    /// The length of the shortest ASCII run looked up (see [`SmallSet::min_run`]).
    fn min_run(&self) -> u32;
    /// Whether the unit `k` at bytes `start..end` of `text` makes some rule possible.
    fn hit(
        &self,
        text: &str,
        k: Key,
        start: usize,
        end: usize,
        fold: &mut String,
        url: &UrlCache,
    ) -> bool;
}

impl Probe for SmallSet {
    #[inline(always)]
    fn geo(&self) -> bool {
        self.geo
    }

    #[inline(always)]
    fn min_run(&self) -> u32 {
        self.min_run
    }

    #[inline(always)]
    fn hit(
        &self,
        text: &str,
        k: Key,
        start: usize,
        end: usize,
        fold: &mut String,
        url: &UrlCache,
    ) -> bool {
        self.may_have(k) && self.found(text, k, start, end, fold, url)
    }
}

impl Probe for (&SmallSet, &SmallSet) {
    #[inline(always)]
    fn geo(&self) -> bool {
        self.0.geo || self.1.geo
    }

    #[inline(always)]
    fn min_run(&self) -> u32 {
        self.0.min_run.min(self.1.min_run)
    }

    #[inline(always)]
    fn hit(
        &self,
        text: &str,
        k: Key,
        start: usize,
        end: usize,
        fold: &mut String,
        url: &UrlCache,
    ) -> bool {
        self.0.hit(text, k, start, end, fold, url) || self.1.hit(text, k, start, end, fold, url)
    }
}

/// `false` if no rule can match `msg` (no key present, the message safe); `true` if some
/// rule may. `fold` is scratch space for case folding.
///
/// On x86-64 CPUs with BMI1 and BMI2 (nearly all since 2013), the same code compiled for
/// them ([`may_match_bmi`]): the scan's variable shifts and bit tricks become one
/// instruction each (`shrx`, `blsr`, `tzcnt`), -5% instructions per post at 1k rules on the
/// shared corpus (bench/journal.md, "1k rules back past Hyperscan").
#[inline]
fn may_match<P: Probe>(p: &P, msg: &Message, fold: &mut String) -> bool {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("bmi1") && std::arch::is_x86_feature_detected!("bmi2") {
        // SAFETY: `may_match_bmi` only requires BMI1 and BMI2, which the CPU running this was
        // just found to have. It is `may_match_in` (safe code) compiled for them.
        #[allow(unsafe_code)]
        return unsafe { may_match_bmi(p, msg, fold) };
    }
    may_match_in(p, msg, fold)
}

/// [`may_match_in`] compiled for BMI1 and BMI2 (see [`may_match`]). Not AVX: compiled with
/// AVX2 as well (VEX-encoded SSE), it ran 7-10% slower than the baseline build on the
/// shared corpus although it took 8.5% fewer instructions (not analysed).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "bmi1,bmi2")]
fn may_match_bmi<P: Probe>(p: &P, msg: &Message, fold: &mut String) -> bool {
    may_match_in(p, msg, fold)
}

/// See [`may_match`]. Inlined, with the text's scan, into the baseline and the BMI builds.
#[inline(always)]
fn may_match_in<P: Probe>(p: &P, msg: &Message, fold: &mut String) -> bool {
    if p.geo() && (msg.coordinates.is_some() || msg.place.is_some()) {
        return true;
    }
    if scan_in(p, &msg.text, fold) {
        return true;
    }
    // Every other string a term can read: usually none is present.
    let mut any = |s: &Option<String>| s.as_deref().is_some_and(|s| scan(p, s, fold));
    if any(&msg.quoted_text)
        || any(&msg.retweeted_text)
        || any(&msg.user)
        || any(&msg.user_id)
        || any(&msg.in_reply_to_user)
        || any(&msg.in_reply_to_user_id)
    {
        return true;
    }
    let mut urls = |list: &Option<Vec<crate::message::UrlEntity>>| {
        list.iter().flatten().any(|u| {
            [&u.expanded_url, &u.display_url].into_iter().flatten().any(|s| scan(p, s, fold))
        })
    };
    if msg.urls.is_some() && urls(&msg.urls) || msg.media.is_some() && urls(&msg.media) {
        return true;
    }
    [&msg.hashtags, &msg.mentions, &msg.cashtags]
        .into_iter()
        .any(|list| list.iter().flatten().any(|s| scan(p, s, fold)))
}

/// Whether `text` holds a key or an unsafe character (the strings other than the text,
/// usually absent: one baseline copy of [`scan_in`]).
fn scan<P: Probe>(p: &P, text: &str, fold: &mut String) -> bool {
    scan_in(p, text, fold)
}

/// See [`scan`]; inlined into [`may_match_in`] for the text.
#[inline(always)]
fn scan_in<P: Probe>(p: &P, text: &str, fold: &mut String) -> bool {
    let b = text.as_bytes();
    let url = UrlCache::default();
    if b.len() < 64 {
        // One block, copied, zero-padded to 72 bytes (8 after its last run's start).
        let mut padded = [0u8; 72];
        padded[..b.len()].copy_from_slice(b);
        let (head, _) = padded.split_first_chunk::<64>().expect("72 bytes");
        let m = block(head);
        let load = |i: usize| u64::from_le_bytes(padded[i..][..8].try_into().expect("8 bytes"));
        let starts = m.alnum & !(m.alnum << 1);
        return units(p, text, 0, m.alnum, starts, m.lead, load, fold, &url);
    }
    let mut at = 0;
    // Whether the byte before the block is an ASCII letter or digit (bit 0).
    let mut carry = 0u64;
    // 64 bytes are classified, the runs and characters starting in the first `STEP` are
    // taken, and the next block starts there: every run taken has at least 9 bytes of the
    // mask after its start, so its length up to 9 (all a key needs) is in the mask, and its
    // first 8 bytes are in the block.
    // With 72 bytes from the block's start, a run's 8 bytes are read at `i & 63` (no bounds
    // check: `i` is below 56).
    while let Some(view) = b.get(at..).and_then(<[u8]>::first_chunk::<72>) {
        let (head, _) = view.split_first_chunk::<64>().expect("72 bytes");
        let m = block(head);
        let starts = m.alnum & !((m.alnum << 1) | carry) & TAKE;
        let load = |i: usize| u64::from_le_bytes(view[i & 63..][..8].try_into().expect("8"));
        if units(p, text, at, m.alnum, starts, m.lead & TAKE, load, fold, &url) {
            return true;
        }
        carry = (m.alnum >> (STEP - 1)) & 1;
        at += STEP;
    }
    // 64 to 71 bytes left: one more such block (a run taken starts at byte 55 at most).
    if let Some(view) = b.get(at..).and_then(<[u8]>::first_chunk::<64>) {
        let m = block(view);
        let starts = m.alnum & !((m.alnum << 1) | carry) & TAKE;
        let load = |i: usize| u64::from_le_bytes(view[i.min(56)..][..8].try_into().expect("8"));
        if units(p, text, at, m.alnum, starts, m.lead & TAKE, load, fold, &url) {
            return true;
        }
        carry = (m.alnum >> (STEP - 1)) & 1;
        at += STEP;
    }
    // The last `b.len() - at` bytes (8 to 63: so the bit after the last byte is in the
    // mask, and ends a run there): the block of the text's last 64 bytes, its
    // masks shifted down to start at `at` (the bytes past the end then read as 0), and the
    // 8 bytes of a run near the end read from the text's last 8, shifted down too (the key's
    // mask drops the bytes past the run).
    let off = at + 64 - b.len();
    let Some(tail) = b.last_chunk::<64>() else { return false };
    let m = block(tail);
    let (alnum, lead) = (m.alnum >> off, m.lead >> off);
    let last = b.len() - 8;
    let load = |i: usize| {
        let q = at + i;
        let s = q.min(last);
        u64::from_le_bytes(b[s..][..8].try_into().expect("8 bytes")) >> (8 * (q - s))
    };
    let starts = alnum & !((alnum << 1) | carry);
    units(p, text, at, alnum, starts, lead, load, fold, &url)
}

/// Bytes taken per 64-byte block (see [`scan`]): a run starting before it has 9 bytes of
/// the block after its start.
const STEP: usize = 56;
const TAKE: u64 = (1 << STEP) - 1;

/// Probes the units starting in a block at byte `at` of `text`: the runs starting at the
/// bits of `starts` (`alnum`: the block's mask of ASCII letters and digits, at least 9 bits
/// from each start) and the non-ASCII characters starting at the bits of `leads`. `load(i)`:
/// the 8 bytes of the text from byte `at + i` (any bytes past the run).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn units<P: Probe>(
    p: &P,
    text: &str,
    at: usize,
    alnum: u64,
    mut starts: u64,
    mut leads: u64,
    load: impl Fn(usize) -> u64,
    fold: &mut String,
    url: &UrlCache,
) -> bool {
    let other = !alnum;
    // Runs shorter than any key can be no key: most of a text's short words (`a`, `to`,
    // `of`: a fifth of the runs of English posts) are not looked up.
    starts = long_runs(starts, alnum, p.min_run());
    while starts != 0 {
        let i = starts.trailing_zeros() as usize;
        starts &= starts - 1;
        // 9 for a run longer than 8 bytes.
        let run = ((other >> i) | 1 << 9).trailing_zeros() as usize;
        let (or, and) = KEY_OF_RUN[run];
        let k = (load(i) | or) & and;
        if p.hit(text, k, at + i, at + i + run, fold, url) {
            return true;
        }
    }
    while leads != 0 {
        let q = at + leads.trailing_zeros() as usize;
        leads &= leads - 1;
        match char_unit(text, q, fold) {
            Unit::Key(k, len) => {
                if p.hit(text, k, q, q + len, fold, url) {
                    return true;
                }
            }
            Unit::Separator => {}
            Unit::Unsafe => return true,
        }
    }
    false
}

/// The bits of `starts` whose run in `alnum` is at least `n` bytes long (`n` up to 9, each
/// start with at least 9 bits of `alnum` from it on; 10: none).
#[inline(always)]
fn long_runs(mut starts: u64, alnum: u64, n: u32) -> u64 {
    if n > 9 {
        return 0;
    }
    for j in 1..n {
        starts &= alnum >> j;
    }
    starts
}

/// The first unit at or after byte `from` of `text`: its key and start, `Ok(None)` at the
/// end, `Err` at an unsafe character.
fn next_unit(text: &str, from: usize, fold: &mut String) -> Result<Option<(Key, usize)>, ()> {
    let b = text.as_bytes();
    let mut p = from;
    while p < b.len() {
        let c = b[p];
        if c.is_ascii_alphanumeric() {
            let n = b[p..].iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            return Ok(Some((run_key(&b[p..p + n]).0, p)));
        }
        if c < 0x80 {
            p += 1;
            continue;
        }
        match char_unit(text, p, fold) {
            Unit::Key(k, _) => return Ok(Some((k, p))),
            Unit::Separator => p += text[p..].chars().next().map_or(1, char::len_utf8),
            Unit::Unsafe => return Err(()),
        }
    }
    Ok(None)
}

/// The last unit ending at or before byte `before` of `text` (see [`next_unit`]).
fn prev_unit(text: &str, before: usize, fold: &mut String) -> Result<Option<(Key, usize)>, ()> {
    let b = text.as_bytes();
    let mut p = before;
    while p > 0 {
        let c = b[p - 1];
        if c.is_ascii_alphanumeric() {
            let n = b[..p].iter().rev().take_while(|c| c.is_ascii_alphanumeric()).count();
            return Ok(Some((run_key(&b[p - n..p]).0, p - n)));
        }
        if c < 0x80 {
            p -= 1;
            continue;
        }
        // Back to the first byte of the character.
        let mut s = p - 1;
        while s > 0 && b[s] & 0xc0 == 0x80 {
            s -= 1;
        }
        match char_unit(text, s, fold) {
            Unit::Key(k, _) => return Ok(Some((k, s))),
            Unit::Separator => p = s,
            Unit::Unsafe => return Err(()),
        }
    }
    Ok(None)
}

/// What a non-ASCII character is for the prefilter.
enum Unit {
    /// A unit of a word: this key, and the character's length in bytes.
    Key(Key, usize),
    /// White space, punctuation, a control character or a default-ignorable one after a
    /// non-ASCII character: in no word, and joining no units.
    Separator,
    /// A character that may normalise to ASCII or change what is around it.
    Unsafe,
}

/// The non-ASCII character starting at byte `p` of `text`.
#[inline]
fn char_unit(text: &str, p: usize, fold: &mut String) -> Unit {
    let Some(c) = text.get(p..).and_then(|t| t.chars().next()) else { return Unit::Unsafe };
    let f = match plain_char(c) {
        // NFC may change it, or it is outside the fast tables.
        None => return Unit::Unsafe,
        Some((CharClass::Ignorable, _, _)) => {
            // Dropped: after an ASCII character it could join two runs (`b\u{200B}omb`) or
            // make a URL prefix (`:\u{200B}//`). After a non-ASCII one it joins no run.
            return if p > 0 && text.as_bytes()[p - 1] < 0x80 {
                Unit::Unsafe
            } else {
                Unit::Separator
            };
        }
        // A mark is part of the word it follows, whatever its class.
        Some((CharClass::Space | CharClass::Punct | CharClass::Control, _, false)) => {
            return Unit::Separator
        }
        Some((_, false, _)) => c,
        Some((_, true, _)) => {
            fold.clear();
            push_case_folded(c, fold);
            let mut chars = fold.chars();
            match (chars.next(), chars.next()) {
                (Some(f), None) if !f.is_ascii() && plain_char(f).is_some() => f,
                // Folds to ASCII (`K` Kelvin, `ſ`) or to several characters (`ß`).
                _ => return Unit::Unsafe,
            }
        }
    };
    Unit::Key(char_key(f), c.len_utf8())
}

/// Whether a raw unit may be part of a URL prefix that tokenising removes (see
/// [`crate::normalize::ascii_url_prefix`]: after a raw token's leading punctuation, a scheme
/// `ALPHA *(ALPHA / DIGIT / "+" / "-" / ".") "://"` and one `www.`, or a `www.` alone). Such
/// a unit is a run of ASCII letters and digits that is `www` followed by `.`, or that is
/// followed by scheme characters up to `://`. Asked only when a pair fails; the end of the
/// last run of scheme characters followed is kept, so that the runs of one long token (the
/// `long_messages` fuzz target) follow it once, not once per run (quadratic).
#[derive(Default)]
struct UrlCache(std::cell::Cell<Option<(usize, usize, bool)>>);

impl UrlCache {
    /// Whether the unit starting at byte `start` of `text` may be hidden by a URL prefix.
    fn may_hide(&self, text: &[u8], start: usize) -> bool {
        let Some(run) = text.get(start..) else { return false };
        let n = run.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
        if n == 0 {
            // A non-ASCII unit: a scheme and `www` are ASCII.
            return false;
        }
        let end = start + n;
        if n == 3 && run[..3].eq_ignore_ascii_case(b"www") && text.get(end) == Some(&b'.') {
            return true;
        }
        // Scheme characters from `end` on, then `://`? (All bytes of `lo..hi` are scheme
        // characters, so any start between them reaches the same end.)
        if let Some((lo, hi, scheme)) = self.0.get() {
            if (lo..=hi).contains(&end) {
                return scheme;
            }
        }
        let hi = end + text[end..].iter().take_while(|&&c| is_scheme_byte(c)).count();
        let scheme = text[hi..].starts_with(b"://");
        self.0.set(Some((end, hi, scheme)));
        scheme
    }
}

/// Masks of 64 bytes of a text (bit `i` for byte `i`).
#[derive(Clone, Copy, Default)]
struct Masks {
    /// ASCII letters and digits.
    alnum: u64,
    /// First bytes of non-ASCII characters.
    lead: u64,
}

/// The masks of the 64 bytes of `view`.
#[inline(always)]
fn block(view: &[u8; 64]) -> Masks {
    let mut m = Masks::default();
    for k in 0..4 {
        let lo = u64::from_le_bytes(view[16 * k..16 * k + 8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(view[16 * k + 8..16 * k + 16].try_into().expect("8 bytes"));
        let (alnum, lead) = classify16(lo, hi);
        m.alnum |= u64::from(alnum) << (16 * k);
        m.lead |= u64::from(lead) << (16 * k);
    }
    m
}

/// The key of an ASCII run by its length (9: longer than 8), from an 8-byte load `w` of
/// it: `(w | or) & and`, `or` lower-casing letters (and setting the long-run bit), `and`
/// keeping the run's bytes. (A table: two loads instead of a branch or six instructions per
/// run; equal to [`ascii_key`], see the unit tests.)
const KEY_OF_RUN: [(u64, u64); 10] = {
    let mut t = [(0x2020_2020_2020_2020, u64::MAX); 10];
    let mut n = 0;
    while n < 8 {
        t[n].1 = (1u64 << (8 * n)) - 1;
        n += 1;
    }
    t[9].0 |= LONG_RUN;
    t
};

/// Bit `i` of the first mask: byte `i` of `lo` then `hi` (little-endian) is an ASCII letter
/// or digit; of the second: byte `i` starts a non-ASCII character (`0xc0..=0xff`). SSE2 on
/// x86-64 (part of its baseline).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(unsafe_code)]
fn classify16(lo: u64, hi: u64) -> (u16, u16) {
    // SAFETY: `classify16_sse2` only requires SSE2, which this item's
    // `cfg(target_feature = "sse2")` guarantees on every CPU the build runs on; it takes and
    // returns values only (no pointers). Its results are compared with the portable version
    // on every byte value, under Miri too (`cargo +nightly miri test --lib matcher::small`).
    unsafe { classify16_sse2(lo, hi) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn classify16_sse2(lo: u64, hi: u64) -> (u16, u16) {
    use std::arch::x86_64::{
        _mm_add_epi8, _mm_and_si128, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_movemask_epi8,
        _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x,
    };
    // Lead bytes `0xc0..=0xff` are `-64..=-1` as `i8`; continuation bytes are below `-64`.
    let v = _mm_set_epi64x(hi as i64, lo as i64);
    // `x + (0x80 - lo) < -128 + n` (signed) is `lo <= x < lo + n`, for every byte value.
    let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
    let alpha = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8(0x1f)), _mm_set1_epi8(-128 + 26));
    let digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x50)), _mm_set1_epi8(-128 + 10));
    // Negative (the high bit, which `movemask` takes) and at least -64.
    let lead = _mm_movemask_epi8(_mm_and_si128(v, _mm_cmpgt_epi8(v, _mm_set1_epi8(-65))));
    (_mm_movemask_epi8(_mm_or_si128(alpha, digit)) as u16, lead as u16)
}

/// The portable classification (SWAR on two `u64` lanes).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn classify16(lo: u64, hi: u64) -> (u16, u16) {
    swar::classify16(lo, hi)
}

/// The portable classification, on `u64` lanes: the fallback on other architectures, and the
/// model the SSE2 path is tested against.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    /// High bit set in each byte of `x` (a lane with every high bit clear) in `lo..lo + n`.
    fn within(x: u64, lo: u8, n: u8) -> u64 {
        let ge = x.wrapping_add(ONES * u64::from(0x80 - lo)) & HIGH;
        let ge_end = x.wrapping_add(ONES * u64::from(0x80 - lo - n)) & HIGH;
        ge & !ge_end
    }

    /// Gathers the high bit of each byte into the low 8 bits (byte 0 -> bit 0).
    fn movemask(x: u64) -> u16 {
        (((x & HIGH) >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u16
    }

    fn classify8(x: u64) -> (u16, u16) {
        let high = x & HIGH;
        let ascii = x & !HIGH;
        let lower = ascii | (ONES * 0x20);
        let alnum = (within(lower, b'a', 26) | within(ascii, b'0', 10)) & !high;
        // `0b11xx_xxxx`: bit 6 moved up to bit 7.
        let lead = high & (x << 1);
        (movemask(alnum), movemask(lead))
    }

    pub(super) fn classify16(lo: u64, hi: u64) -> (u16, u16) {
        let (a0, h0) = classify8(lo);
        let (a1, h1) = classify8(hi);
        (a0 | a1 << 8, h0 | h1 << 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(rules: &[&str]) -> Option<SmallSet> {
        let rules: Vec<Rule> = rules.iter().map(|r| Rule::parse(r).expect("valid")).collect();
        let refs: Vec<&Rule> = rules.iter().collect();
        SmallSet::build(&refs, 0x1234_5678_9abc_def1, true)
    }

    /// The prefilter's answer for `text`, the same from the build `may_match` dispatches to
    /// (the BMI one on a CPU with BMI1 and BMI2) and from the baseline build.
    fn may(s: &SmallSet, text: &str) -> bool {
        let msg = Message::new("1", text);
        let got = s.may_match(&msg, &mut String::new());
        assert_eq!(got, may_match_in(s, &msg, &mut String::new()), "{text:?}");
        got
    }

    #[test]
    fn classification_equals_the_portable_model_on_every_byte() {
        // Every byte value at every lane position.
        let lanes = if cfg!(miri) { 2 } else { 16 };
        for shift in 0..lanes {
            for base in (0..=255u8).step_by(16) {
                let mut chunk = [0u8; 16];
                for (i, c) in chunk.iter_mut().enumerate() {
                    *c = base.wrapping_add(((i + shift) % 16) as u8);
                }
                let want = (0..16).fold((0u16, 0u16), |(a, h), i| {
                    let c = chunk[i];
                    (a | u16::from(c.is_ascii_alphanumeric()) << i, h | u16::from(c >= 0xc0) << i)
                });
                let lo = u64::from_le_bytes(chunk[..8].try_into().unwrap());
                let hi = u64::from_le_bytes(chunk[8..].try_into().unwrap());
                assert_eq!(classify16(lo, hi), want, "{chunk:?}");
                assert_eq!(swar::classify16(lo, hi), want, "{chunk:?}");
            }
        }
    }

    #[test]
    fn the_scan_key_table_equals_the_word_keys() {
        for w in [*b"aBcDeFgH", *b"01234567", *b"Zz9Yy8Xx", *b"MMMMMMMM"] {
            let w = u64::from_le_bytes(w);
            for run in 1..=9u32 {
                let (or, and) = KEY_OF_RUN[run as usize];
                assert_eq!((w | or) & and, ascii_key(w, run), "{w:x} {run}");
            }
        }
    }

    #[test]
    fn keys_of_words_and_of_message_runs_agree() {
        let s = set(&["nintendo", "wii", "\"new york\"", "reykjavík", "interconnection"])
            .expect("keyed");
        for text in
            ["NINTENDO!", "a Wii.", "I love NEW York", "REYKJAVÍK", "the #interconnection", "x:wii"]
        {
            assert!(may(&s, text), "{text:?}");
        }
        // (Runs longer than 8 bytes are keyed by their first 8: "interconnect" would pass.)
        for text in ["nintendos", "wiii", "new yorker", "intercon", "reykjavik", "w ii"] {
            assert!(!may(&s, text), "{text:?}");
        }
    }

    /// Found by the `explain` fuzz target in CI: `🍕-e mi` on a text with `🍕e`. A pair
    /// looked up by a non-ASCII unit skipped the letters right after it as if they were the
    /// rest of a long run, so the post was dropped.
    #[test]
    fn the_unit_after_a_non_ascii_one_is_the_letters_that_follow_it() {
        let s = set(&["\u{1f355}-e mi", "\u{1f355}-ab", "caf\u{e9}-x"]).expect("keyed");
        for text in ["mi \u{1f355}e", "\u{1f355}ab", "\u{0}mi\u{0} \u{1f355}e m", "CAF\u{c9}x"] {
            assert!(may(&s, text), "{text:?}");
        }
        assert!(!may(&s, "mi \u{1f355} and e"), "the pair is not there");
    }

    #[test]
    fn phrases_are_keyed_by_two_units_in_a_row() {
        // Looked up by the second unit (`yearn` is longer than `all`), by the first
        // (`tasseled`), and across a non-ASCII character.
        let rules = [
            "\"all yearn\"",
            "\"tasseled fly\"",
            "interconnection-cafe",
            "wi-fi",
            "\"naïve yearn\"",
            "привет",
        ];
        let s = set(&rules).expect("keyed");
        for pad in [0, 1, 7, 50, 56, 60, 62, 63, 64, 65, 70] {
            let pad = format!("{}.", "-".repeat(pad));
            let may = |t: &str| may(&s, &format!("{pad}{t}"));
            for text in [
                "ALL yearn",
                "all, yearn",
                "all\u{a0}yearn",
                "TASSELED, fly",
                "tasseled \u{2014} fly!",
                "interconnection cafe",
                "wi fi",
                "Wi-Fi!",
                "naïve yearn",
                "ПРИ\u{200b}ВЕТ",
            ] {
                assert!(may(text), "{pad}{text:?}");
            }
            for text in [
                "yearn all",
                "we yearn",
                "all we yearn",
                "tasseled flyer",
                "interconnection cafes",
                "fly tasseled",
                "tasseled",
                "fi wi",
                "wifi",
                "wi",
                "ри вет п",
            ] {
                assert!(!may(text), "{pad}{text:?}");
            }
            // A URL prefix between the words is removed by tokenising: `all yearn` then.
            for text in [
                "all http://yearn",
                "all WWW.yearn",
                "all x+y.z://yearn",
                "tasseled http://www.fly",
                "tasseled http:// fly",
                "interconnection http://cafe",
            ] {
                assert!(may(text), "{pad}{text:?}");
            }
        }
    }

    #[test]
    fn runs_across_block_boundaries_are_measured_whole() {
        let s = set(&["abcdefghij", "wii"]).expect("keyed");
        for pad in 0..70 {
            let head = "-".repeat(pad);
            assert!(may(&s, &format!("{head}ABCDEFGHIJ")), "{pad}");
            assert!(may(&s, &format!("{head}wii {head}")), "{pad}");
            assert!(!may(&s, &format!("{head}ABCDEFGH {head}")), "{pad}");
            assert!(!may(&s, &format!("{head}wiiwii")), "{pad}");
            assert!(!may(&s, &format!("{head}xwii")), "{pad}");
        }
    }

    /// The scan against a model on texts of every length up to 3 blocks and a half, with
    /// runs of 1 to 12 bytes everywhere (across the blocks' 56-byte steps, ending at the
    /// text's end, in the last block read in place) between ASCII and non-ASCII separators:
    /// some maximal run of the text has a rule's key. Key sets whose shortest run is 1 to 9
    /// bytes, or with no ASCII run (the scan then drops the shorter runs unread).
    #[test]
    fn every_run_of_texts_of_every_length_is_keyed() {
        let sets: [&[&str]; 6] = [
            &["a", "b1", "cab", "abcabcab", "abcabcabc", "ccccccccc", "bacab"],
            &["cab", "abcabcab", "bacab", "aaa"],
            &["abcab", "c1a1b", "xyzxyz"],
            &["abcabcab", "ccccccccc"],
            &["abcabcabc", "aaaaaaaaaaaa"],
            &["\u{e9}"],
        ];
        let mut next = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let runs = if cfg!(miri) { 1 } else { 16 };
        let seps = ["-", " ", "..", "\u{e9}", "\u{a0}", "\u{1f355}"];
        for words in sets {
            let s = set(words).expect("keyed");
            let keys: Vec<Key> = words.iter().map(|w| run_key(w.as_bytes()).0).collect();
            let model = |t: &str| {
                t.split(|c: char| !c.is_ascii_alphanumeric())
                    .any(|r| !r.is_empty() && keys.contains(&run_key(r.as_bytes()).0))
                    || words.iter().any(|w| !w.is_ascii() && t.to_lowercase().contains(w))
            };
            let (mut found, mut absent) = (0, 0);
            for len in 0..200 {
                for _ in 0..runs {
                    let mut t = String::new();
                    while t.len() < len {
                        if next(3) == 0 {
                            t.push_str(seps[next(seps.len() as u64) as usize]);
                        } else {
                            let n = 1 + next(12) as usize;
                            // Mostly runs of no key; now and then a key's letters.
                            for _ in 0..n {
                                let letters = if next(4) == 0 { 10 } else { 6 };
                                t.push(b"abcABC1xyz"[next(letters) as usize] as char);
                            }
                        }
                    }
                    let len = (0..=len).rev().find(|&n| t.is_char_boundary(n)).unwrap_or(0);
                    t.truncate(len);
                    // Keys at the very end and across a step, now and then.
                    if len > 14 && next(4) == 0 {
                        let w = words[next(words.len() as u64) as usize];
                        let at = len - w.len() - next(2) as usize;
                        let range = at - 1..at + w.len();
                        if t.is_char_boundary(range.start) && t.is_char_boundary(range.end) {
                            t.replace_range(range, &format!("-{}", w.to_uppercase()));
                        }
                    }
                    let want = model(&t);
                    assert_eq!(may(&s, &t), want, "{words:?} {t:?} ({})", t.len());
                    if want {
                        found += 1;
                    } else {
                        absent += 1;
                    }
                }
            }
            assert!(found > 10 * runs && absent > 10 * runs, "{words:?} {found} {absent}");
        }
    }

    /// A pair of a short run and a character is looked up by the character, so that the
    /// scan can drop the runs of 1 and 2 bytes (a fifth of the shared corpus's runs); only a
    /// rule with nothing longer (`wi-fi`) brings them back.
    #[test]
    fn short_runs_are_looked_up_only_when_nothing_else_can_be() {
        let words = ["na\u{ef}ve", "caf\u{e9}", "r\u{e9}sum\u{e9}", "\"s\u{e3}o paulo\"", "a-bcd"];
        let s = set(&words).expect("keyed");
        assert_eq!(s.min_run, 3);
        for text in ["NA\u{cf}VE!", "un caf\u{e9}", "R\u{c9}SUM\u{c9}", "S\u{e3}o Paulo", "a bcd"] {
            assert!(may(&s, text), "{text:?}");
        }
        for text in ["na ive", "\u{ef}ve", "cafe", "resume", "sao paul", "bcd a"] {
            assert!(!may(&s, text), "{text:?}");
        }
        let s = set(&["wi-fi", "wii"]).expect("keyed");
        assert_eq!(s.min_run, 2);
        assert!(may(&s, "Wi-Fi") && !may(&s, "wi-f"));
        assert_eq!(set(&["\u{e9}t\u{e9}"]).expect("keyed").min_run, 10);
    }

    #[test]
    fn non_ascii_words_are_keyed_by_their_folded_characters() {
        let s = set(&["привет", "東京", "🍕", "über"]).expect("keyed");
        for text in ["ПРИВЕТ мир", "大東京タワー", "I like 🍕!", "ÜBER alles"] {
            assert!(may(&s, text), "{text:?}");
        }
        for text in ["мир", "大阪", "I like 🍔", "uber"] {
            assert!(!may(&s, text), "{text:?}");
        }
    }

    #[test]
    fn unsafe_characters_always_pass() {
        let s = set(&["strasse", "bomb", "kilo", "cafe"]).expect("keyed");
        // `ß` folds to `ss`, U+212A KELVIN SIGN to `k`, a zero-width space joins, a combining
        // accent composes.
        for text in ["STRAßE", "\u{212a}ilo", "b\u{200b}omb", "cafe\u{301}", "ſtraſſe"] {
            assert!(may(&s, text), "{text:?}");
        }
        // An ignorable after a non-ASCII character joins nothing.
        for text in ["❤\u{fe0f} love", "a\u{a0}\u{200b}b", "👨\u{200d}👩"] {
            assert!(!may(&s, text), "{text:?}");
        }
    }

    #[test]
    fn rules_that_cannot_be_keyed_disable_it() {
        assert!(set(&["apple", "contains:pp"]).is_none());
        assert!(set(&["apple", "apple OR contains:pp"]).is_none());
        // An AND keys on a keyable child; a filter or a negation is skipped.
        let s = set(&["contains:pp apple", "lang:en pear -fig"]).expect("keyed");
        assert!(may(&s, "an APPLE"));
        assert!(may(&s, "a pear"));
        assert!(!may(&s, "a fig, pp"));
    }

    #[test]
    fn the_key_count_stops_large_sets_but_not_shared_keys() {
        let parse = |t: String| Rule::parse(&t).expect("valid");
        let distinct: Vec<Rule> = (0..=AUTO_MAX_KEYS).map(|i| parse(format!("w{i}"))).collect();
        let keys = |n: usize, force| Keys::of(distinct[..n].iter(), force).map(|k| k.len());
        assert_eq!(keys(AUTO_MAX_KEYS, false), Some(AUTO_MAX_KEYS));
        assert_eq!(keys(AUTO_MAX_KEYS + 1, false), None);
        assert_eq!(keys(AUTO_MAX_KEYS + 1, true), Some(AUTO_MAX_KEYS + 1));
        // Many rules, few keys: counted, not cut off by the number of rules.
        let shared: Vec<Rule> =
            (0..5 * AUTO_MAX_KEYS).map(|i| parse(format!("apple -x{i}"))).collect();
        assert_eq!(Keys::of(&shared, false).map(|k| k.len()), Some(1));
    }

    #[test]
    fn merged_keys_are_the_union() {
        let rules: Vec<Rule> =
            ["apple", "pear", "\"new york\"", "fig", "kiwi", "bounding_box:[0 0 1 1]"]
                .iter()
                .map(|r| Rule::parse(r).expect("valid"))
                .collect();
        let (a, b) = (&rules[..4], &rules[2..]);
        let (ka, kb) = (Keys::of(a, true).unwrap(), Keys::of(b, true).unwrap());
        let all = Keys::of(&rules, true).unwrap();
        for merged in [ka.merged(&kb, true).unwrap(), kb.merged(&ka, true).unwrap()] {
            assert_eq!((&merged.wants, merged.geo), (&all.wants, all.geo));
        }
        assert_eq!(Keys::union([&ka, &kb], true).unwrap().wants, all.wants);
    }

    #[test]
    fn other_fields_and_geo_are_read() {
        let s = set(&["from:alice", "bounding_box:[-10 40 10 50]", "#meme"]).expect("keyed");
        assert!(!may(&s, "nothing"));
        let m = Message::new("1", "nothing").with_user("Alice");
        assert!(s.may_match(&m, &mut String::new()));
        let m = Message::new("1", "nothing").with_coordinates(1.0, 45.0);
        assert!(s.may_match(&m, &mut String::new()));
        let m = Message::new("1", "nothing").with_hashtags(["Meme"]);
        assert!(s.may_match(&m, &mut String::new()));
        assert!(may(&s, "a #MEME"));
    }
}
