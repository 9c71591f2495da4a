//! The small-set prefilter (issue 20, item 3): for rule sets of up to about ten thousand
//! terms, most posts hold no term at all, and the cheapest way to match them is to prove
//! that before the scanner tokenises, hashes and looks up every word.
//!
//! Every rule is reduced to a set of *keys*, one of which is present in every message the
//! rule matches (an AND takes its most selective child, an OR all of its children's; a rule
//! that cannot be keyed soundly disables the prefilter). A key comes from one normalised
//! word of a term:
//!
//! - a word that starts with an ASCII letter or digit is keyed by its leading run of ASCII
//!   letters and digits: the first 8 bytes, ASCII-lower-cased, and whether the run is longer;
//! - a word that starts with any other character is keyed by that character.
//!
//! A message is then scanned raw, without normalising it: 64 bytes at a time, masks of the
//! ASCII letters and digits and of the non-ASCII bytes (SSE2, or SWAR on `u64` lanes); at
//! every start of a run of letters and digits one masked 8-byte load makes the run's key, and
//! every non-ASCII character is its own key (case-folded); each key is looked up in a bit
//! filter and, if it passes, in an exact table. A message with no key present skips the
//! matcher.
//!
//! Why that is sound: in the caseless normal form the matcher uses, an ASCII letter or digit
//! is only lower-cased and every other character maps to non-ASCII characters, *unless* the
//! message holds a character that normalises to ASCII (`ß` → `ss`, the Kelvin sign, `ﬁ`), a
//! character that NFC may combine or reorder (combining accents after a letter), or a
//! default-ignorable character between two ASCII letters (`b\u{200B}omb` is the word `bomb`).
//! Without those, each word of every field of the message starts, in the raw text, at the
//! start of a run of ASCII letters and digits holding the word's leading run exactly, or at
//! a non-ASCII character folding to the word's first character; so the word's key is found.
//! A message holding one of those characters is *unsafe*: it always goes to the matcher, as
//! does a message with coordinates or a place when some rule has a geo term.

use crate::normalize::{plain_char, push_case_folded, CharClass, Tokens, UrlMode};
use crate::rule::{Node, Rule, Term};
use crate::Message;

/// Above this many distinct keys the prefilter is not built unless forced: measured on the
/// shared side-by-side corpus and the generated workload (DESIGN.md, "The small-set
/// prefilter"), past it too many posts hold some key for skipping to pay for the scan.
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
    ((w | 0x2020_2020_2020_2020) & mask) | u64::from(run > 8) * LONG_RUN
}

#[inline(always)]
fn char_key(c: char) -> Key {
    (u64::from(c as u32) << 8) | 0xff
}

/// The key of a maximal run of ASCII letters and digits, and its score: longer runs are
/// rarer in text (runs past 8 bytes are keyed by their first 8).
fn run_key(run: &[u8]) -> (Key, u32) {
    let mut w = [0u8; 8];
    let n = run.len().min(8);
    w[..n].copy_from_slice(&run[..n]);
    let len = run.len().min(9) as u32;
    (ascii_key(u64::from_le_bytes(w), len), len)
}

/// The key of a non-ASCII character and its score: an accented Latin letter is common in
/// European text (`é`: 4% of the shared corpus's posts), other characters are rarer.
fn char_key_scored(c: char) -> (Key, u32) {
    (char_key(c), if (c as u32) < 0x250 { 1 } else { 3 })
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
            offer(Want::Pair { first: a, second: b, by_first: sa >= sb }, sa + sb);
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
        let n = (items * 2).next_power_of_two().max(16);
        Table { slots: vec![0; n], flags: vec![0; n], shift: 64 - n.trailing_zeros() }
    }

    #[inline(always)]
    fn home(&self, k: u64, mul: u64) -> usize {
        (k.wrapping_mul(mul).rotate_left(23).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift)
            as usize
    }

    fn insert(&mut self, k: u64, mul: u64, flag: u8) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(k, mul);
        while self.slots[i] != 0 && self.slots[i] != k {
            i = (i + 1) & mask;
        }
        self.slots[i] = k;
        self.flags[i] |= flag;
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
}

impl SmallSet {
    /// The prefilter for `rules`, or `None` if some rule cannot be keyed soundly or (unless
    /// `force`) the rules have more than [`AUTO_MAX_KEYS`] distinct keys. `seed` makes the
    /// hash multiplier unpredictable (colliding keys cost speed, never a match).
    pub(crate) fn build(rules: &[&Rule], seed: u64, force: bool) -> Option<SmallSet> {
        let mut wants: Vec<Want> = Vec::with_capacity(rules.len());
        let mut geo = false;
        for r in rules {
            let a = need(r.root())?;
            wants.extend(a.wants);
            geo |= a.geo;
            if !force && wants.len() > 4 * AUTO_MAX_KEYS {
                return None;
            }
        }
        wants.sort_unstable();
        wants.dedup();
        if !force && wants.len() > AUTO_MAX_KEYS {
            return None;
        }
        let mul = seed | 1;
        // 64 filter bits per key (at least 4 KiB): 1.5% of absent keys pass to the table.
        let filter_bits = (wants.len() * 64).next_power_of_two().max(1 << 15);
        let filter_shift = 64 - filter_bits.trailing_zeros();
        let pair_count = wants.iter().filter(|w| matches!(w, Want::Pair { .. })).count();
        let mut s = SmallSet {
            filter: vec![0; filter_bits / 64],
            filter_shift,
            keys: Table::new(wants.len()),
            pairs: Table::new(pair_count),
            mul,
            geo,
            key_count: 0,
        };
        for &w in &wants {
            let (k, flag) = match w {
                Want::One(k) => (k, ONE),
                Want::Pair { first, second, by_first } => {
                    s.pairs.insert(pair_entry(first, second), mul, ONE);
                    if by_first {
                        (first, FIRST)
                    } else {
                        (second, SECOND)
                    }
                }
            };
            let h = s.filter_bit(k);
            s.filter[(h >> 6) as usize] |= 1 << (h & 63);
            s.keys.insert(k, mul, flag);
        }
        s.key_count = s.keys.slots.iter().filter(|&&k| k != 0).count();
        Some(s)
    }

    #[inline(always)]
    fn filter_bit(&self, k: Key) -> u64 {
        k.wrapping_mul(self.mul) >> self.filter_shift
    }

    /// The table flags of `k` (0 if no rule wants it).
    #[inline(always)]
    fn flags(&self, k: Key) -> u8 {
        let h = self.filter_bit(k);
        if self.filter[(h >> 6) as usize] & (1 << (h & 63)) == 0 {
            return 0;
        }
        self.keys.get(k, self.mul)
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
        if self.geo && (msg.coordinates.is_some() || msg.place.is_some()) {
            return true;
        }
        if self.scan(&msg.text, fold) {
            return true;
        }
        // Every other string a term can read: usually none is present.
        let urls = [&msg.urls, &msg.media].into_iter().flatten().flatten();
        let lists = [&msg.hashtags, &msg.mentions, &msg.cashtags].into_iter().flatten().flatten();
        [&msg.quoted_text, &msg.retweeted_text, &msg.user, &msg.user_id]
            .into_iter()
            .chain([&msg.in_reply_to_user, &msg.in_reply_to_user_id])
            .flatten()
            .chain(urls.flat_map(|u| [&u.expanded_url, &u.display_url].into_iter().flatten()))
            .chain(lists)
            .any(|s| self.scan(s, fold))
    }

    /// Whether `text` holds a key or an unsafe character.
    fn scan(&self, text: &str, fold: &mut String) -> bool {
        let b = text.as_bytes();
        let mut at = 0;
        let mut m = block(b, 0);
        // Bit 0: whether the byte before this block is an ASCII letter or digit.
        let mut carry = 0u64;
        // The last unit: its key, flags and position (for pairs).
        let (mut prev, mut prev_flags, mut prev_at) = (0, 0, 0);
        let mut url: Option<bool> = None;
        while at < b.len() {
            let next = if at + 64 < b.len() { block(b, at + 64) } else { Masks::default() };
            let starts = m.alnum & !((m.alnum << 1) | carry);
            let window = u128::from(m.alnum) | u128::from(next.alnum) << 64;
            // Units in text order: runs of ASCII letters and digits, non-ASCII characters.
            for i in bits(starts | m.lead) {
                let p = at + i;
                let k = if starts >> i & 1 == 1 {
                    let run = ((window >> i) as u64).trailing_ones();
                    ascii_key(load8(b, p), run)
                } else {
                    match char_unit(text, p, fold) {
                        Unit::Key(k) => k,
                        Unit::Separator => continue,
                        Unit::Unsafe => return true,
                    }
                };
                let f = self.flags(k);
                if (f | prev_flags & FIRST) != 0 {
                    if f & ONE != 0 {
                        return true;
                    }
                    if (f & SECOND != 0 || prev_flags & FIRST != 0)
                        && (self.pairs.get(pair_entry(prev, k), self.mul) != 0
                            // A URL prefix removed between two words leaves runs (`http`,
                            // `www`) between them in the raw text, in the token of one.
                            || *url.get_or_insert_with(|| may_hold_url(b))
                                && may_hold_url(token_span(b, prev_at, p)))
                    {
                        return true;
                    }
                }
                (prev, prev_flags, prev_at) = (k, f, p);
            }
            carry = m.alnum >> 63;
            at += 64;
            m = next;
        }
        false
    }
}

/// What a non-ASCII character is for the prefilter.
enum Unit {
    /// A unit of a word: this key.
    Key(Key),
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
    Unit::Key(char_key(f))
}

/// The raw tokens holding bytes `a` and `b` (`a <= b`) and everything between: from the
/// ASCII white space before `a` to the one after `b` (non-ASCII white space also ends a
/// token: this may be more, never less).
fn token_span(text: &[u8], a: usize, b: usize) -> &[u8] {
    let space = |c: &u8| matches!(c, b'\t'..=b'\r' | b' ');
    let start = text[..a].iter().rposition(space).map_or(0, |i| i + 1);
    let end = text[b..].iter().position(space).map_or(text.len(), |i| b + i);
    &text[start..end]
}

/// Whether a raw text may hold a URL prefix, which tokenising removes (`://` or `www.` in any
/// case).
fn may_hold_url(text: &[u8]) -> bool {
    memchr::memchr_iter(b':', text).any(|i| text[i + 1..].starts_with(b"//"))
        || memchr::memchr_iter(b'.', text)
            .any(|i| i >= 3 && text[i - 3..i].eq_ignore_ascii_case(b"www"))
}

/// The positions of the set bits of `mask`, lowest first.
#[inline(always)]
fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = mask.trailing_zeros() as usize;
        mask &= mask.wrapping_sub(1);
        (i < 64).then_some(i)
    })
}

/// The 8 bytes of `b` from `p`, zero-padded past the end.
#[inline(always)]
fn load8(b: &[u8], p: usize) -> u64 {
    match b.get(p..p + 8) {
        Some(s) => u64::from_le_bytes(s.try_into().expect("8 bytes")),
        None => {
            let mut w = [0u8; 8];
            let tail = &b[p..];
            w[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(w)
        }
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

/// The masks of the 64 bytes of `b` from `at` (zero past the end).
#[inline(always)]
fn block(b: &[u8], at: usize) -> Masks {
    let mut m = Masks::default();
    for k in 0..4 {
        let p = at + 16 * k;
        let chunk: [u8; 16] = match b.get(p..p + 16) {
            Some(s) => s.try_into().expect("16 bytes"),
            None if p < b.len() => {
                let mut c = [0u8; 16];
                c[..b.len() - p].copy_from_slice(&b[p..]);
                c
            }
            None => break,
        };
        let lo = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
        let (alnum, lead) = classify16(lo, hi);
        m.alnum |= u64::from(alnum) << (16 * k);
        m.lead |= u64::from(lead) << (16 * k);
    }
    m
}

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
        _mm_add_epi8, _mm_cmplt_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_set_epi64x,
    };
    // Lead bytes `0xc0..=0xff` are `-64..=-1` as `i8`; continuation bytes are below `-64`.
    let v = _mm_set_epi64x(hi as i64, lo as i64);
    // `x + (0x80 - lo) < -128 + n` (signed) is `lo <= x < lo + n`, for every byte value.
    let lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
    let alpha = _mm_cmplt_epi8(_mm_add_epi8(lower, _mm_set1_epi8(0x1f)), _mm_set1_epi8(-128 + 26));
    let digit = _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(0x50)), _mm_set1_epi8(-128 + 10));
    let lead = _mm_movemask_epi8(v) & !_mm_movemask_epi8(_mm_cmplt_epi8(v, _mm_set1_epi8(-64)));
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
        let lower = ascii | ONES * 0x20;
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

    fn may(s: &SmallSet, text: &str) -> bool {
        s.may_match(&Message::new("1", text), &mut String::new())
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

    #[test]
    fn phrases_are_keyed_by_two_runs_in_a_row() {
        let s = set(&["\"all yearn\"", "wi-fi", "\"naïve yearn\""]).expect("keyed");
        for text in ["ALL yearn", "all, yearn", "all\u{a0}yearn", "wi fi", "Wi-Fi!", "naïve yearn"]
        {
            assert!(may(&s, text), "{text:?}");
        }
        for text in ["yearn all", "we yearn", "all we yearn", "fi wi", "wifi", "wi"] {
            assert!(!may(&s, text), "{text:?}");
        }
        // A URL prefix between the words is removed by tokenising: `all yearn` then.
        for text in ["all http://yearn", "all WWW.yearn", "all x+y.z://yearn"] {
            assert!(may(&s, text), "{text:?}");
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
