//! A segment: an immutable, compiled set of rules (the unit the live registry stacks and
//! merges). Rules are numbered `0..rule_count` inside a segment.
//!
//! One concept per module: the segment's structures and its presearch here, compilation in
//! `build`, verification of candidate rules in `verify`; the message's prepared views, which
//! every segment shares, are in `matcher::prepare`.

mod build;
mod verify;

pub(crate) use build::last_phases as last_compile_phases;

use super::compile::{op_len, term_text, OP_NOT, OP_TERM, PAYLOAD, TERM_ID, TERM_WORD};
use super::geo::GeoIndex;
use super::hash::{pair_hash, BloomFilter, WordHasher, WordTable};
use super::prepare::MessageWords;
use super::substrings::Substrings;
use crate::message::Message;
use crate::normalize::{NormalizedMessage, Tokens, UrlMode};
use crate::rule::Term;
use std::collections::HashMap;
use std::sync::OnceLock;
use verify::{EvalContext, Memo, PhraseIndex, PhraseScratch, ProximityScratch};

pub(crate) use super::prepare::Prepared;

/// How a term's presence is decided during verification.
#[derive(Clone, Debug)]
enum TermSlot {
    /// Present iff its key was found in the message (the key is exact).
    Key,
    /// A word key (its term id is its id in the word table): present iff found; also used
    /// for highlighting. Not stored: every term id below the number of key words is one.
    KeyWord,
    /// Evaluated by `terms::term_holds` (phrases, proximity, geo, lang:, …).
    Eval(Box<Term>),
}

/// Words that verification programs need but that key no rule: kept out of the presearch's
/// filter and table (a message word that only verification needs would otherwise pass the
/// filter and cost a table probe on every message holding it). Programs hold each word's
/// index here and its hash; the bytes are read only to confirm a hash match.
#[derive(Clone, Debug, Default)]
struct VerifyWords {
    arena: Vec<u8>,
    /// `ends[i]` = end of word `i` in `arena` (start = `ends[i - 1]`).
    ends: Vec<u32>,
}

impl VerifyWords {
    fn word(&self, i: u32) -> &[u8] {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    fn heap_bytes(&self) -> usize {
        self.arena.capacity() + self.ends.capacity() * 4
    }
}

/// Per-thread working memory for [`Segment::find`]; reused from message to message.
#[derive(Clone, Debug, Default)]
pub(crate) struct SegmentScratch {
    hits: Vec<u32>,
    candidates: Vec<u32>,
    memo: Memo,
    phrases: PhraseScratch,
    proximity: ProximityScratch,
    /// The key `a b` of a pair of message words being looked up.
    pair_key: Vec<u8>,
}

/// Loads every value of `loads` with nothing waiting on any one of them, so that their
/// cache misses overlap (the out-of-order core keeps several in flight); the loop that
/// then uses them finds them in cache. The loaded values are combined and kept from the
/// optimiser, which would otherwise drop the loads.
#[inline(always)]
fn touch_together(loads: impl Iterator<Item = u64>) {
    std::hint::black_box(loads.fold(0, |w, v| w ^ v));
}

/// The positions of the set bits of `mask`, lowest first (also the small-set prefilter's).
#[inline(always)]
pub(in crate::matcher) fn bits(mut mask: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        let i = mask.trailing_zeros() as usize;
        mask &= mask.wrapping_sub(1);
        (i < 64).then_some(i)
    })
}

/// Exact maps from short values to key terms (entities, users, wordless tokens), hashed with
/// the segment's keyed word hash.
type ValueIndex = HashMap<Box<str>, u32, KeyedState>;

/// A `BuildHasher` over the keyed word hash (random key per matcher: no hash flooding).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KeyedState(WordHasher);

/// The `Hasher` of [`KeyedState`].
pub(crate) struct KeyedHasher {
    key: WordHasher,
    h: u64,
}

impl std::hash::BuildHasher for KeyedState {
    type Hasher = KeyedHasher;
    fn build_hasher(&self) -> KeyedHasher {
        KeyedHasher { key: self.0, h: 0 }
    }
}

impl std::hash::Hasher for KeyedHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.h = self.h.rotate_left(23) ^ self.key.hash(bytes);
    }
    // `str` hashing ends with a `0xff` byte: mix it in without a second run of the keyed hash
    // (the string's bytes already went through it).
    fn write_u8(&mut self, b: u8) {
        self.h = self.h.rotate_left(8) ^ u64::from(b);
    }
    fn finish(&self) -> u64 {
        self.h
    }
}

/// The compiled form of a set of rules.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    words: WordTable,
    /// The filter of the single-word keys (and the pair gate's marks).
    bloom: BloomFilter,
    /// The filter of the pair keys.
    pair_bloom: BloomFilter,
    verify_words: VerifyWords,
    no_space: Option<Substrings>,
    contains: Option<Substrings>,
    raw_tokens: ValueIndex,
    hashtags: ValueIndex,
    mentions: ValueIndex,
    cashtags: ValueIndex,
    from: ValueIndex,
    to: ValueIndex,
    follow: ValueIndex,
    geo: GeoIndex,
    /// The number of key words (term ids `0..n_words`, [`TermSlot::KeyWord`]).
    n_words: u32,
    /// The other terms, term id `n_words + i` at `i`.
    terms: Vec<TermSlot>,
    /// Postings per key term: `rule << 1 | exact`.
    post_start: Vec<u32>,
    postings: Vec<u32>,
    /// Verification program per rule (`u32::MAX` for exact rules, which need none).
    prog_start: Vec<u32>,
    programs: Vec<u32>,
    /// Rules with no key term at all (never produced by the parser; evaluated every time).
    unkeyed: Vec<u32>,
    rule_count: usize,
    /// The phrase automaton, built on first need.
    phrases: OnceLock<PhraseIndex>,
    /// Whether some key is a word pair (see `KeyKind::Pair`): then the presearch also looks
    /// up every two adjacent words of a message.
    has_pairs: bool,
    /// Whether a pair is probed only after a word its filter block marks as a pair's first
    /// word (set when few key words are: see `build.rs`).
    gate_pairs: bool,
}

/// Marks a word-table value that is the word's only posting (`rule << 1 | exact`) rather than
/// its term id: most key words key one rule, and this saves the two posting-list reads (two
/// cache misses in a large segment) per word found.
const INLINE_POSTING: u32 = 1 << 31;

/// Marks a term id of a non-word term while compiling (word terms are numbered by the word
/// table, the others after them once the number of words is known).
const OTHER: u32 = 1 << 29;

/// The slot of every key word (see [`Segment::slot`]).
static KEY_WORD: TermSlot = TermSlot::KeyWord;

impl Segment {
    /// How term `term` is decided.
    fn slot(&self, term: u32) -> &TermSlot {
        match term.checked_sub(self.n_words) {
            Some(i) => &self.terms[i as usize],
            None => &KEY_WORD,
        }
    }

    /// The number of rules.
    pub(crate) fn rule_count(&self) -> usize {
        self.rule_count
    }

    /// Appends the (segment-local) numbers of the rules matching `msg` to `out`, each once,
    /// ascending. `prepared` is the message's full normalised view, built on first need and
    /// shared by every segment that matches the same message.
    pub(crate) fn find(
        &self,
        msg: &Message,
        prepared: &mut Prepared,
        s: &mut SegmentScratch,
        out: &mut Vec<u32>,
    ) {
        let start = out.len();
        s.hits.clear();
        if self.contains.is_some() || !self.raw_tokens.is_empty() {
            // Substring and raw-token terms read every field's normalised text.
            self.collect_hits(prepared.get(msg), &mut s.hits, &mut s.pair_key);
        } else {
            self.collect_hits_fast(msg, prepared, s);
        }
        s.hits.sort_unstable();
        s.hits.dedup();
        s.candidates.clear();
        // At a million rules the tables are far beyond the caches: every hit's posting range
        // first, so that the misses overlap instead of coming one by one.
        touch_together(
            s.hits
                .iter()
                .filter(|&&h| h & INLINE_POSTING == 0)
                .map(|&h| u64::from(self.post_start[h as usize])),
        );
        for &h in &s.hits {
            // A posting: `rule << 1 | 1` (a match) or `pc << 1` (a program to verify).
            let mut route = |e: u32| {
                if e & 1 == 1 {
                    out.push(e >> 1);
                } else {
                    s.candidates.push(e >> 1);
                }
            };
            if h & INLINE_POSTING != 0 {
                // A word with one posting, found straight from the word table.
                route(h & !INLINE_POSTING);
                continue;
            }
            let (a, b) =
                (self.post_start[h as usize] as usize, self.post_start[h as usize + 1] as usize);
            self.postings[a..b].iter().for_each(|&e| route(e));
        }
        s.candidates.extend_from_slice(&self.unkeyed);
        if !s.candidates.is_empty() {
            s.candidates.sort_unstable();
            s.candidates.dedup();
            // As above: the candidates' programs.
            touch_together(s.candidates.iter().map(|&pc| u64::from(self.programs[pc as usize])));
            s.memo.clear();
            s.phrases.evals = 0;
            s.phrases.ready = false;
            s.proximity.evals = 0;
            s.proximity.ready = false;
            let hasher = self.words.hasher();
            let mut cx = EvalContext {
                msg,
                hasher,
                prepared,
                hits: &s.hits,
                memo: &mut s.memo,
                phrases: &mut s.phrases,
                proximity: &mut s.proximity,
            };
            for &pc in &s.candidates {
                let pc = pc as usize;
                if self.eval(pc + 1, &mut cx) {
                    out.push(self.programs[pc]);
                }
            }
        }
        let found = &mut out[start..];
        found.sort_unstable();
        let mut w = start;
        for r in start..out.len() {
            if r == start || out[r] != out[w - 1] {
                out[w] = out[r];
                w += 1;
            }
        }
        out.truncate(w);
    }

    /// Looks up one word (normal form `word`, hash `h`).
    #[inline(always)]
    fn lookup_word(&self, h: u64, word: &[u8], hits: &mut Vec<u32>) {
        if self.bloom.may_contain(h) {
            if let Some(id) = self.words.get(h, word) {
                hits.push(id);
            }
        }
    }

    /// Looks up the words of the message and, when the segment has pair keys, every two
    /// adjacent words (the key `a b`), 64 words at a time: one pass over the words probes
    /// the filter for the word and for the pair it ends (into two bitmasks, without a
    /// branch unless pairs are gated), then the table slots of what passed are touched
    /// together (their misses overlap), then looked up. With `GATE`, a pair is probed only
    /// after a word whose filter block marks it as a pair's first word (read with the
    /// word's own probe).
    #[inline(always)]
    fn lookup_words<const PAIRS: bool, const GATE: bool>(
        &self,
        words: &MessageWords,
        s: &mut SegmentScratch,
    ) {
        let all = &words.words;
        // The previous word's hash, and whether it may begin a pair key.
        let (mut prev, mut prev_first) = (0u64, false);
        for (c, chunk) in all.chunks(64).enumerate() {
            let (pass, mut pairs) = if GATE {
                let (pass, firsts) = self.bloom.probe_chunk_gated(chunk);
                // Bit `i`: word `i - 1` (the previous chunk's last for `i = 0`) may begin a
                // pair; only those pairs are probed.
                let gated =
                    (firsts << 1 | u64::from(prev_first)) & (u64::MAX >> (64 - chunk.len()));
                let mut pairs = 0u64;
                for i in bits(gated) {
                    let before = if i == 0 { prev } else { chunk[i - 1].0 };
                    let pair = pair_hash(before, chunk[i].0);
                    pairs |= u64::from(self.pair_bloom.may_contain(pair)) << i;
                }
                prev_first = firsts >> (chunk.len() - 1) & 1 == 1;
                (pass, pairs)
            } else {
                self.bloom.probe_chunk::<PAIRS>(&self.pair_bloom, chunk, prev)
            };
            prev = chunk.last().map_or(prev, |w| w.0);
            if c == 0 {
                pairs &= !1; // the first word ends no pair
            }
            let base = c * 64;
            // Bit `i` of `pairs`: the pair of words `base + i - 1` and `base + i`. Rare (a
            // pair some rule uses, or a filter false positive): its hash is recomputed.
            let pair_hash_at = |i: usize| pair_hash(all[base + i - 1].0, chunk[i].0);
            touch_together(
                bits(pass)
                    .map(|i| self.words.home_slot(chunk[i].0))
                    .chain(bits(pairs).map(|i| self.words.home_slot(pair_hash_at(i)))),
            );
            for i in bits(pass) {
                let (h, a, b) = chunk[i];
                if let Some(id) = self.words.get(h, &words.bytes[a as usize..b as usize]) {
                    s.hits.push(id);
                }
            }
            for i in bits(pairs) {
                let ((_, a0, a1), (_, b0, b1)) = (all[base + i - 1], chunk[i]);
                s.pair_key.clear();
                s.pair_key.extend_from_slice(&words.bytes[a0 as usize..a1 as usize]);
                s.pair_key.push(b' ');
                s.pair_key.extend_from_slice(&words.bytes[b0 as usize..b1 as usize]);
                if let Some(id) = self.words.get(pair_hash_at(i), &s.pair_key) {
                    s.hits.push(id);
                }
            }
        }
    }

    /// The presearch without the full normalised view: the words of every field (found once
    /// per message and shared by all segments), entity, user and geo lookups.
    fn collect_hits_fast(&self, msg: &Message, prepared: &mut Prepared, s: &mut SegmentScratch) {
        let (words, facts) =
            prepared.words_and_facts(msg, self.words.hasher(), self.bloom.blocks_to_prefetch());
        match (self.has_pairs, self.gate_pairs) {
            (false, _) => self.lookup_words::<false, false>(words, s),
            (true, false) => self.lookup_words::<true, false>(words, s),
            (true, true) => self.lookup_words::<true, true>(words, s),
        }
        if let Some(ns) = &self.no_space {
            for &(a, b) in &words.runs {
                ns.find_all(&words.bytes[a as usize..b as usize], &mut s.hits);
            }
        }
        let needs_entities =
            !(self.hashtags.is_empty() && self.mentions.is_empty() && self.cashtags.is_empty());
        // An ASCII text without `#`, `@` or `$` has no entities to extract.
        let no_entities = words.text_sigil == Some(false)
            && msg.hashtags.is_none()
            && msg.mentions.is_none()
            && msg.cashtags.is_none();
        if needs_entities && !no_entities {
            let entities = facts.entities(msg);
            let hits = &mut s.hits;
            for (index, list) in [
                (&self.hashtags, &entities.hashtags),
                (&self.mentions, &entities.mentions),
                (&self.cashtags, &entities.cashtags),
            ] {
                if !index.is_empty() {
                    for v in list.iter() {
                        if let Some(&k) = index.get(v) {
                            hits.push(k);
                        }
                    }
                }
            }
        }
        if !(self.from.is_empty() && self.to.is_empty() && self.follow.is_empty()) {
            let [user, reply_to] = facts.names(msg);
            let lookup = |index: &ValueIndex, key: Option<&str>, hits: &mut Vec<u32>| {
                if let Some(&k) = key.and_then(|v| index.get(v)) {
                    hits.push(k);
                }
            };
            lookup(&self.from, user, &mut s.hits);
            lookup(&self.from, msg.user_id.as_deref(), &mut s.hits);
            lookup(&self.to, reply_to, &mut s.hits);
            lookup(&self.to, msg.in_reply_to_user_id.as_deref(), &mut s.hits);
            lookup(&self.follow, msg.user_id.as_deref(), &mut s.hits);
        }
        if !self.geo.is_empty() {
            self.geo.candidates(msg.coordinates, msg.place, &mut s.hits);
        }
    }

    /// Finds every key term present in `msg`.
    fn collect_hits(&self, msg: &NormalizedMessage, hits: &mut Vec<u32>, pair_key: &mut Vec<u8>) {
        let hasher = self.words.hasher();
        let check_raw_tokens = !self.raw_tokens.is_empty();
        for field in msg.fields() {
            let t = &field.tokens;
            let text = t.text().as_bytes();
            // The previous word, if it was an ordinary one (a pair key's first word).
            let mut prev: Option<(u64, &[u8])> = None;
            for w in t.words() {
                let bytes = &text[w.norm.clone()];
                if w.no_space {
                    if let Some(ns) = &self.no_space {
                        ns.find_all(bytes, hits);
                    }
                    prev = None;
                    continue;
                }
                let h = hasher.hash(bytes);
                self.lookup_word(h, bytes, hits);
                if let Some((ph, pbytes)) = prev.filter(|&(ph, _)| {
                    self.has_pairs && (!self.gate_pairs || self.bloom.may_begin_pair(ph))
                }) {
                    let pair = pair_hash(ph, h);
                    if self.pair_bloom.may_contain(pair) {
                        pair_key.clear();
                        pair_key.extend_from_slice(pbytes);
                        pair_key.push(b' ');
                        pair_key.extend_from_slice(bytes);
                        if let Some(id) = self.words.get(pair, pair_key) {
                            hits.push(id);
                        }
                    }
                }
                prev = Some((h, bytes));
            }
            if let Some(c) = &self.contains {
                c.find_all(text, hits);
            }
            if check_raw_tokens {
                // Only wordless raw tokens can equal a wordless track term.
                let mut next_word = 0;
                for (i, rt) in t.raw_tokens().iter().enumerate() {
                    let mut has_word = false;
                    while next_word < t.words().len() && t.words()[next_word].raw_token <= i {
                        has_word |= t.words()[next_word].raw_token == i;
                        next_word += 1;
                    }
                    if !has_word {
                        if let Some(&k) = self.raw_tokens.get(&t.text()[rt.norm.clone()]) {
                            hits.push(k);
                        }
                    }
                }
            }
        }
        let lookup = |index: &ValueIndex, value: Option<&str>, hits: &mut Vec<u32>| {
            if let Some(&k) = value.and_then(|v| index.get(v)) {
                hits.push(k);
            }
        };
        if !self.hashtags.is_empty() {
            msg.hashtags.iter().for_each(|v| lookup(&self.hashtags, Some(v), hits));
        }
        if !self.mentions.is_empty() {
            msg.mentions.iter().for_each(|v| lookup(&self.mentions, Some(v), hits));
        }
        if !self.cashtags.is_empty() {
            msg.cashtags.iter().for_each(|v| lookup(&self.cashtags, Some(v), hits));
        }
        if !self.from.is_empty() {
            lookup(&self.from, msg.user.as_deref(), hits);
            lookup(&self.from, msg.user_id.as_deref(), hits);
        }
        if !self.to.is_empty() {
            lookup(&self.to, msg.in_reply_to_user.as_deref(), hits);
            lookup(&self.to, msg.in_reply_to_user_id.as_deref(), hits);
        }
        if !self.follow.is_empty() {
            lookup(&self.follow, msg.user_id.as_deref(), hits);
        }
        if !self.geo.is_empty() {
            self.geo.candidates(msg.coordinates, msg.place, hits);
        }
    }

    /// The normal-form words of rule `rule`'s positive (non-negated) terms, for highlighting.
    pub(crate) fn positive_words(&self, rule: u32, out: &mut Vec<String>) {
        let pc = self.prog_start[rule as usize];
        if pc == u32::MAX {
            // An exact rule: a single term or an OR of them; its key terms are in postings.
            for t in 0..self.post_start.len() - 1 {
                let (a, b) = (self.post_start[t] as usize, self.post_start[t + 1] as usize);
                if self.postings[a..b].contains(&(rule << 1 | 1)) {
                    self.term_words(t as u32, out);
                }
            }
            return;
        }
        let mut stack = vec![(pc as usize + 1, false)];
        while let Some((p, negated)) = stack.pop() {
            let op = self.programs[p];
            let payload = op & PAYLOAD;
            match op >> 30 {
                OP_TERM if negated => {}
                OP_TERM if op & TERM_WORD != 0 => out.push(
                    String::from_utf8_lossy(self.verify_words.word(op & TERM_ID)).into_owned(),
                ),
                OP_TERM => self.term_words(op & TERM_ID, out),
                OP_NOT => stack.push((p + 1, !negated)),
                _ => {
                    let end = p + 1 + payload as usize;
                    let mut q = p + 1;
                    while q < end {
                        stack.push((q, negated));
                        q += op_len(self.programs[q]);
                    }
                }
            }
        }
    }

    fn term_words(&self, term: u32, out: &mut Vec<String>) {
        match self.slot(term) {
            TermSlot::KeyWord => {
                out.push(String::from_utf8_lossy(self.words.word(term)).into_owned())
            }
            TermSlot::Key => {
                // Entities: their words (a reverse lookup; highlighting is not the hot path).
                for index in [&self.hashtags, &self.mentions, &self.cashtags] {
                    if let Some((v, _)) = index.iter().find(|&(_, &t)| t == term) {
                        out.extend(Tokens::of(v, UrlMode::Keep).word_texts().map(String::from));
                    }
                }
                if let Some(ns) = &self.no_space {
                    if let Some(k) = ns.terms.iter().position(|&t| t == term) {
                        out.push(ns.patterns[k].clone());
                    }
                }
            }
            TermSlot::Eval(t) => match &**t {
                Term::Keyword(w) | Term::Url(w) | Term::Proximity { words: w, .. } => {
                    out.extend(w.iter().cloned())
                }
                Term::Phrase(p) | Term::Token(p) => {
                    out.extend(Tokens::of(p, UrlMode::Keep).word_texts().map(String::from))
                }
                _ => {}
            },
        }
    }

    /// Heap bytes used by the segment, all structures included.
    pub(crate) fn heap_bytes(&self) -> usize {
        let index = |m: &ValueIndex| {
            m.capacity() * (std::mem::size_of::<(Box<str>, u32)>() + 1)
                + m.keys().map(|k| k.len()).sum::<usize>()
        };
        let eval_bytes: usize = self
            .terms
            .iter()
            .map(|t| match t {
                TermSlot::Key | TermSlot::KeyWord => 0,
                TermSlot::Eval(term) => std::mem::size_of::<Term>() + term_heap(term),
            })
            .sum();
        self.words.heap_bytes()
            + self.verify_words.heap_bytes()
            + self.bloom.heap_bytes()
            + self.pair_bloom.heap_bytes()
            + self.no_space.as_ref().map_or(0, Substrings::heap_bytes)
            + self.contains.as_ref().map_or(0, Substrings::heap_bytes)
            + [
                &self.raw_tokens,
                &self.hashtags,
                &self.mentions,
                &self.cashtags,
                &self.from,
                &self.to,
                &self.follow,
            ]
            .into_iter()
            .map(index)
            .sum::<usize>()
            + self.geo.heap_bytes()
            + self.phrases.get().map_or(0, PhraseIndex::heap_bytes)
            + self.terms.capacity() * std::mem::size_of::<TermSlot>()
            + eval_bytes
            + (self.post_start.capacity() + self.postings.capacity()) * 4
            + (self.prog_start.capacity() + self.programs.capacity() + self.unkeyed.capacity()) * 4
    }
}

/// Approximate heap bytes held by a term's strings.
fn term_heap(term: &Term) -> usize {
    match term {
        Term::Keyword(w) | Term::Url(w) | Term::Proximity { words: w, .. } => {
            w.capacity() * 24 + w.iter().map(String::capacity).sum::<usize>()
        }
        other => term_text(other).map_or(0, String::capacity),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Rule;

    fn run(seg: &Segment, text: &str, s: &mut SegmentScratch) -> Vec<u32> {
        let mut prepared = Prepared::default();
        let mut out = Vec::new();
        seg.find(&Message::new("1", text), &mut prepared, s, &mut out);
        out
    }

    /// A pair is found wherever its words sit against the presearch's 64-word chunks (its
    /// first word the last of one chunk, its second the first of the next), with pairs
    /// gated or not, and the first word of a message ends no pair.
    #[test]
    fn pairs_are_found_across_the_64_word_chunks() {
        let phrase = Rule::parse("\"alpha beta\"").expect("valid");
        // Many one-word keys and one pair: pairs gated; the pair alone: not gated.
        let singles: Vec<Rule> =
            (0..40).map(|i| Rule::parse(&format!("single{i}")).expect("valid")).collect();
        let gated = Segment::build(
            &std::iter::once(phrase.clone()).chain(singles).collect::<Vec<_>>(),
            WordHasher::with_seed(5, 6),
        );
        let plain = Segment::build(std::slice::from_ref(&phrase), WordHasher::with_seed(5, 6));
        assert!(gated.gate_pairs && !plain.gate_pairs);
        let mut s = SegmentScratch::default();
        for at in [0, 1, 62, 63, 64, 65, 126, 127, 128] {
            let mut words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
            words[at] = "alpha".into();
            words[at + 1] = "beta".into();
            let text = words.join(" ");
            assert_eq!(run(&gated, &text, &mut s), [0], "gated, alpha at {at}");
            assert_eq!(run(&plain, &text, &mut s), [0], "not gated, alpha at {at}");
            words[at + 1] = "gamma".into();
            let text = words.join(" ");
            assert!(run(&plain, &text, &mut s).is_empty(), "alpha at {at} alone");
        }
        assert!(run(&plain, "beta alpha", &mut s).is_empty());
    }

    /// The rules read in two halves (the second on a helper thread, then appended), and the
    /// parts compiled after the rules (verification words, substring automata) on threads of
    /// their own, or everything on the calling thread: the same matches. Generated rules and
    /// posts (Japanese words in no-space runs, phrases and ANDs with verification words), and
    /// rules of every other kind of key at the start and at the end, so that both halves
    /// intern the same values (one term each after the append).
    #[test]
    fn helper_threads_build_the_same_segment() {
        let special: Vec<Rule> = [
            "contains:\"ea\"",
            "contains:\"ro\" -lea",
            "contains:\"の\"",
            "#launch",
            "@acme lea",
            "$ACME",
            "from:alice",
            "to:bob ree",
            "point_radius:[-10 0 100km]",
            "bounding_box:[0 40 10 50]",
            "x has:geo",
            "lang:fr lea",
            "\"lea ree\"",
            "\"ree lea\" -#launch",
        ]
        .iter()
        .map(|r| Rule::parse(r).expect("valid"))
        .collect();
        let generated: Vec<Rule> = streamtrack_workload::RuleSetConfig::default()
            .rules(20_000)
            .iter()
            .map(|g| Rule::parse(&g.value).expect("generated rules parse"))
            .collect();
        let rules: Vec<Rule> = special.iter().chain(&generated).chain(&special).cloned().collect();
        let mut messages: Vec<Message> = streamtrack_workload::WorkloadConfig::default()
            .count(3_000)
            .messages()
            .into_iter()
            .enumerate()
            .map(|(i, m)| Message::new(i.to_string(), m.text))
            .collect();
        for (i, (lon, lat)) in [(5.0, 45.0), (-10.0, 0.5), (120.0, -30.0)].into_iter().enumerate() {
            let text = "x lea ree #launch @acme $ACME ree lea";
            let m = Message::new(format!("c{i}"), text).with_coordinates(lon, lat);
            let mut reply = m.clone().with_user("alice").with_lang("fr");
            reply.in_reply_to_user = Some("bob".into());
            messages.push(reply);
            messages.push(m);
        }
        let build = |helpers| Segment::build_with(&rules, WordHasher::with_seed(7, 8), helpers);
        let threads = build(build::Helpers { rules: 0, verify_words: 0, substrings: 0 });
        let inline = build(build::Helpers::NONE);
        assert!(threads.no_space.is_some() && threads.contains.is_some());
        assert_eq!(threads.terms.len(), inline.terms.len(), "each value interned once");
        let mut s = SegmentScratch::default();
        let find = |seg: &Segment, m: &Message, s: &mut SegmentScratch| {
            let mut found = Vec::new();
            seg.find(m, &mut Prepared::default(), s, &mut found);
            found
        };
        let (n, last) = (special.len(), special.len() + generated.len());
        let japanese: Vec<bool> = rules
            .iter()
            .map(|r| format!("{r:?}").chars().any(|c| ('\u{3040}'..='\u{9fff}').contains(&c)))
            .collect();
        let (mut first_half, mut second_half, mut no_space, mut generated_hits) = (0, 0, 0, 0);
        for m in &messages {
            let found = find(&threads, m, &mut s);
            assert_eq!(found, find(&inline, m, &mut s), "{m:?}");
            for r in found.iter().map(|&r| r as usize) {
                match r {
                    _ if r < n => first_half += 1,
                    _ if r >= last => second_half += 1,
                    _ if japanese[r] => no_space += 1,
                    _ => generated_hits += 1,
                }
            }
        }
        assert!(
            generated_hits > 100 && no_space > 5 && first_half > 1_000 && second_half > 1_000,
            "{generated_hits} {no_space} {first_half} {second_half}"
        );
        // Every special rule matched some post, in both halves.
        let all: Vec<Vec<u32>> = messages.iter().map(|m| find(&threads, m, &mut s)).collect();
        for (k, rule) in special.iter().enumerate() {
            let hit = |r: usize| all.iter().any(|f| f.contains(&(r as u32)));
            assert!(hit(k) && hit(last + k), "{rule:?}");
        }
    }

    /// A rule nested as deep as the parser allows compiles in the second half, on a helper
    /// thread (whose stack is a spawned thread's, not the main thread's).
    #[test]
    fn a_deeply_nested_rule_compiles_on_a_helper_thread() {
        let mut text = String::from("last");
        for i in (0..250).rev() {
            text = if i % 2 == 0 { format!("w{i} OR ({text})") } else { format!("w{i} ({text})") };
        }
        let deep = crate::rule::Parser::builder()
            .max_depth(256)
            .max_rule_chars(1 << 16)
            .build()
            .parse(&text, crate::Dialect::Rule)
            .expect("within the parser's cap");
        let rules = [Rule::parse("first").expect("valid"), deep];
        let all = build::Helpers { rules: 0, verify_words: 0, substrings: 0 };
        let seg = Segment::build_with(&rules, WordHasher::with_seed(1, 2), all);
        let mut s = SegmentScratch::default();
        assert_eq!(run(&seg, "w0", &mut s), [1]);
        assert_eq!(run(&seg, "w1 w2 first", &mut s), [0, 1]);
        assert!(run(&seg, "w1 w3", &mut s).is_empty());
    }

    /// Phrases and multi-word keywords are keyed by a pair of adjacent words: a message that
    /// has their words, but not next to each other, wakes none of them (with a single-word
    /// key, each such message made the rule a candidate to verify).
    #[test]
    fn multi_word_terms_wake_only_on_their_word_pair() {
        let rules: Vec<Rule> = ["\"new york\"", "\"york city\" -rain", "wi-fi"]
            .iter()
            .map(|r| Rule::parse(r).expect("valid"))
            .collect();
        let seg = Segment::build(&rules, WordHasher::with_seed(3, 4));
        assert!(seg.has_pairs);
        let mut s = SegmentScratch::default();
        for text in ["new jersey and york", "city of york", "fi wi", "wi and fi", "york new"] {
            assert_eq!(run(&seg, text, &mut s), Vec::<u32>::new(), "{text}");
            assert!(s.candidates.is_empty(), "{text}: {:?}", s.candidates);
        }
        assert_eq!(run(&seg, "I love New York!", &mut s), [0]);
        assert_eq!(run(&seg, "new york city", &mut s), [0, 1]);
        assert_eq!(run(&seg, "new york city rain", &mut s), [0]);
        assert_eq!(run(&seg, "free WI-FI", &mut s), [2]);
        // The pair is found, the phrase is not there: verification says no.
        assert_eq!(run(&seg, "new, york", &mut s), Vec::<u32>::new());
        assert_eq!(s.candidates.len(), 1);
    }
}
