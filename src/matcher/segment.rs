//! A segment: an immutable, compiled set of rules (the unit the live registry stacks and
//! merges). Rules are numbered `0..rule_count` inside a segment.

use super::chars::CharAutomaton;
use super::compile::{
    emit_program, key_is_exact, key_terms, op_len, prerequisite_words, rule_is_exact,
    term_fingerprint, term_key, term_text, KeyKind, OP_AND, OP_NOT, OP_OR, OP_TERM, PAYLOAD,
    TERM_ID, TERM_KEY, TERM_WORD,
};
use super::geo::GeoIndex;
use super::hash::{BloomFilter, WordHasher, WordTable};
use super::proximity::ProximityIndex;
use super::scan;
use super::terms::{phrase_in, term_holds};
use crate::message::extract::EntityScanner;
use crate::message::Message;
use crate::normalize::message::{push_extracted_tag, push_given_entities, StrList};
use crate::normalize::{NormalizedMessage, Tokens, UrlMode};
use crate::rule::{Rule, Term};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// How a term's presence is decided during verification.
#[derive(Clone, Debug)]
enum TermSlot {
    /// Present iff its key was found in the message (the key is exact).
    Key,
    /// A word key (word id in the word table): present iff found; also used for highlighting.
    KeyWord(u32),
    /// Evaluated by `terms::term_holds` (phrases, proximity, geo, lang:, …).
    Eval(Box<Term>),
}

/// A substring automaton and the term id of each pattern.
#[derive(Clone, Debug)]
struct Substrings {
    automaton: SubstringAutomaton,
    terms: Vec<u32>,
    /// The patterns, for highlighting.
    patterns: Vec<String>,
}

/// Bytes for `contains:` values (any text); characters for no-space words (see `chars`).
#[derive(Clone, Debug)]
enum SubstringAutomaton {
    Bytes(AhoCorasick),
    Chars(CharAutomaton),
}

impl Substrings {
    /// The automaton of `patterns`: over characters when `char_seed` is given (it keys the
    /// character table), else over bytes.
    fn build(patterns: Vec<(String, u32)>, char_seed: Option<u64>) -> Option<Substrings> {
        if patterns.is_empty() {
            return None;
        }
        let (texts, terms): (Vec<String>, Vec<u32>) = patterns.into_iter().unzip();
        let automaton = match char_seed {
            Some(seed) => SubstringAutomaton::Chars(CharAutomaton::build(&texts, seed)),
            None => SubstringAutomaton::Bytes(
                AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .build(&texts)
                    .expect("patterns are small and non-empty"),
            ),
        };
        Some(Substrings { automaton, terms, patterns: texts })
    }

    #[inline]
    fn find_all(&self, haystack: &[u8], hits: &mut Vec<u32>) {
        match &self.automaton {
            SubstringAutomaton::Bytes(a) => {
                for m in a.find_overlapping_iter(haystack) {
                    hits.push(self.terms[m.pattern().as_usize()]);
                }
            }
            SubstringAutomaton::Chars(a) => {
                a.find_overlapping(haystack, |i| hits.push(self.terms[i as usize]));
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        let automaton = match &self.automaton {
            SubstringAutomaton::Bytes(a) => a.memory_usage(),
            SubstringAutomaton::Chars(a) => a.heap_bytes(),
        };
        automaton
            + self.terms.capacity() * 4
            + self.patterns.iter().map(|p| p.capacity() + 24).sum::<usize>()
    }
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
}

/// The position index of one message for proximity, multi-word keyword and `url:` terms (see
/// [`ProximityIndex`]), built once the message has evaluated [`PROXIMITY_INDEX_AFTER`] of
/// them one by one.
#[derive(Clone, Debug, Default)]
struct ProximityScratch {
    evals: usize,
    ready: bool,
    index: ProximityIndex,
}

/// Proximity, multi-word keyword and `url:` terms a message evaluates one by one (a
/// pass over every word of every field each) before its words' positions are indexed once
/// for the rest.
const PROXIMITY_INDEX_AFTER: usize = 8;

/// Evaluated terms' results for one message (a term shared by several candidate rules is
/// evaluated once): a short list searched in order while it is short (the usual case: at
/// most a few evaluated terms per message), a hash map once it is not, so that a message
/// waking many rules does not pay a search of all earlier results per term.
#[derive(Clone, Debug, Default)]
struct Memo {
    list: Vec<(u32, bool)>,
    map: HashMap<u32, bool>,
}

/// Results the memo keeps in its list before it moves them to its map.
const MEMO_LIST_MAX: usize = 16;

impl Memo {
    fn clear(&mut self) {
        self.list.clear();
        self.map.clear();
    }

    fn get(&self, term: u32) -> Option<bool> {
        if self.map.is_empty() {
            self.list.iter().find(|&&(t, _)| t == term).map(|&(_, v)| v)
        } else {
            self.map.get(&term).copied()
        }
    }

    fn insert(&mut self, term: u32, v: bool) {
        if self.map.is_empty() && self.list.len() < MEMO_LIST_MAX {
            self.list.push((term, v));
        } else {
            self.map.extend(self.list.drain(..));
            self.map.insert(term, v);
        }
    }
}

/// The phrases found in one message by the segment's phrase automaton (see
/// [`PhraseIndex`]): evaluated-term ids, sorted, once `ready`.
#[derive(Clone, Debug, Default)]
struct PhraseScratch {
    /// Phrase terms evaluated one by one so far in this message.
    evals: usize,
    ready: bool,
    found: Vec<u32>,
}

/// Phrase terms a message evaluates one by one (a substring search of the whole text each)
/// before the segment's phrase automaton finds all of them in one pass instead.
const PHRASE_SCAN_AFTER: usize = 8;

/// Every phrase of a segment's evaluated terms in one Aho-Corasick automaton, built on the
/// first message that needs it. Checking a phrase searches the whole text, so a long message
/// that wakes many phrase rules (one per distinct word pair it holds, say) would cost the
/// number of those rules times its length; with the automaton it costs one pass.
#[derive(Clone, Debug)]
struct PhraseIndex {
    automaton: Option<AhoCorasick>,
    /// The evaluated-term id of each pattern.
    terms: Vec<u32>,
}

impl PhraseIndex {
    fn build(terms: &[TermSlot]) -> PhraseIndex {
        let (patterns, ids): (Vec<&str>, Vec<u32>) = terms
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                TermSlot::Eval(t) => match &**t {
                    Term::Phrase(p) if !p.is_empty() => Some((p.as_str(), i as u32)),
                    _ => None,
                },
                _ => None,
            })
            .unzip();
        let automaton = (!patterns.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .build(&patterns)
                .expect("phrases are short and non-empty")
        });
        PhraseIndex { automaton, terms: ids }
    }

    /// Appends to `found` the term ids of the phrases that occur in `text` with a word
    /// boundary at both ends (as `terms::phrase_in` decides), sorted and
    /// deduplicated with what `found` held.
    fn find_all(&self, text: &str, found: &mut Vec<u32>) {
        let Some(automaton) = &self.automaton else { return };
        // Every occurrence of every phrase is reported (a repetitive text repeats them), so
        // duplicates are dropped whenever the list doubles.
        let mut limit = (found.len() * 2).max(1024);
        for m in automaton.find_overlapping_iter(text) {
            if crate::normalize::is_boundary_at(text, m.start())
                && crate::normalize::is_boundary_at(text, m.end())
            {
                found.push(self.terms[m.pattern().as_usize()]);
                if found.len() >= limit {
                    found.sort_unstable();
                    found.dedup();
                    limit = (found.len() * 2).max(1024);
                }
            }
        }
        found.sort_unstable();
        found.dedup();
    }

    fn heap_bytes(&self) -> usize {
        self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage) + self.terms.capacity() * 4
    }
}

/// A message's folded entity lists, as [`NormalizedMessage`] has them.
#[derive(Clone, Debug, Default)]
struct Entities {
    hashtags: StrList,
    mentions: StrList,
    cashtags: StrList,
    scanner: EntityScanner,
}

impl Entities {
    fn fill(&mut self, msg: &Message) {
        self.hashtags.clear();
        self.mentions.clear();
        self.cashtags.clear();
        let extract = msg.hashtags.is_none() || msg.mentions.is_none() || msg.cashtags.is_none();
        if extract {
            let (h, m, c) = (&mut self.hashtags, &mut self.mentions, &mut self.cashtags);
            self.scanner.scan_tags(&msg.text, |kind, value| {
                push_extracted_tag(msg, kind, value, [&mut *h, &mut *m, &mut *c])
            });
        }
        push_given_entities(msg, [&mut self.hashtags, &mut self.mentions, &mut self.cashtags]);
    }
}

/// What the presearch reads of a message besides its words, derived on first need and shared
/// by every segment: its entity lists and the folded screen names of `from:` and `to:`.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageFacts {
    entities: Entities,
    entities_ready: bool,
    user: Option<String>,
    reply_to: Option<String>,
    names_ready: bool,
}

impl MessageFacts {
    fn reset(&mut self) {
        self.entities_ready = false;
        self.names_ready = false;
    }

    /// The message's folded entity lists.
    fn entities(&mut self, msg: &Message) -> &Entities {
        if !self.entities_ready {
            self.entities.fill(msg);
            self.entities_ready = true;
        }
        &self.entities
    }

    /// The author's and the replied-to user's screen names, folded, without a leading `@`.
    fn names(&mut self, msg: &Message) -> [Option<&str>; 2] {
        if !self.names_ready {
            for (name, out) in
                [(&msg.user, &mut self.user), (&msg.in_reply_to_user, &mut self.reply_to)]
            {
                match name {
                    Some(n) => {
                        let f = out.get_or_insert_with(String::new);
                        f.clear();
                        crate::normalize::push_fold(n.trim_start_matches('@'), f);
                    }
                    None => *out = None,
                }
            }
            self.names_ready = true;
        }
        [self.user.as_deref(), self.reply_to.as_deref()]
    }
}

/// The words of every field of a message, in normal form, with their hashes: what every
/// segment's presearch looks up. Fields extracted from the text (hashtags, mentions, URLs
/// found in it) hold only words the text already has, so they are not scanned again.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageWords {
    ready: bool,
    /// Normal-form bytes of the words, one after the other.
    bytes: Vec<u8>,
    /// `(hash, start, end)` of each word (not of no-space runs) in `bytes`.
    words: Vec<(u64, u32, u32)>,
    /// `(start, end)` of each no-space run in `bytes`.
    runs: Vec<(u32, u32)>,
    tokens: Tokens,
    fold_buf: String,
    /// Whether the text holds a `#`, `@` or `$` (`None`: not known, the text was not ASCII).
    text_sigil: Option<bool>,
    /// A copy of a field with its URL prefixes blanked.
    spare: Vec<u8>,
    /// One bit per word hash (of 1,024), built on the first lookup: most words looked up
    /// are absent (a candidate rule whose other words the message lacks), and this answers
    /// them without building `set`.
    filter: [u64; 16],
    filter_ready: bool,
    /// Open-addressing set over `words` (`index + 1`, 0 = empty), built on first need.
    set: Vec<u32>,
    set_ready: bool,
}

/// Loads every value of `loads` with nothing waiting on any one of them, so that their
/// cache misses overlap (the out-of-order core keeps several in flight); the loop that
/// then uses them finds them in cache. The loaded values are combined and kept from the
/// optimiser, which would otherwise drop the loads.
#[inline(always)]
fn touch_together(loads: impl Iterator<Item = u64>) {
    std::hint::black_box(loads.fold(0, |w, v| w ^ v));
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

/// The bit of `filter` for hash `h` (high bits: the set's index takes the low ones).
fn filter_bit(h: u64) -> (usize, u64) {
    let b = (h >> 48) as usize & 1023;
    (b >> 6, 1 << (b & 63))
}

impl MessageWords {
    fn fill(&mut self, msg: &Message, hasher: &WordHasher) {
        self.bytes.clear();
        self.words.clear();
        self.runs.clear();
        self.set_ready = false;
        self.filter_ready = false;
        self.text_sigil = self.field(&msg.text, hasher).map(|n| n.sigil);
        for t in [&msg.quoted_text, &msg.retweeted_text].into_iter().flatten() {
            self.field(t, hasher);
        }
        for list in [&msg.urls, &msg.media].into_iter().flatten() {
            for u in list {
                for t in [&u.expanded_url, &u.display_url].into_iter().flatten() {
                    self.field(t, hasher);
                }
            }
        }
        for list in [&msg.hashtags, &msg.mentions].into_iter().flatten() {
            for v in list {
                let mut f = std::mem::take(&mut self.fold_buf);
                f.clear();
                crate::normalize::push_fold(v.trim_start_matches(['#', '@', '$']), &mut f);
                self.field(&f, hasher);
                self.fold_buf = f;
            }
        }
        self.ready = true;
    }

    /// Whether the message has the word `word` (hash `h`) in any field. The word's bytes are
    /// read only to confirm a hash match (so a word that is absent costs no read of them).
    fn contains<'w>(&mut self, h: u64, word: impl Fn() -> &'w [u8]) -> bool {
        if !self.filter_ready {
            self.filter = [0; 16];
            for &(wh, _, _) in &self.words {
                let (i, bit) = filter_bit(wh);
                self.filter[i] |= bit;
            }
            self.filter_ready = true;
        }
        let (i, bit) = filter_bit(h);
        if self.filter[i] & bit == 0 {
            return false;
        }
        if !self.set_ready {
            self.build_set();
        }
        let mask = self.set.len() - 1;
        let mut k = h as usize & mask;
        // The set holds each distinct word once, so the probe ends at the first empty slot
        // after at most the words sharing this home slot (a hash collision, practically never,
        // only makes it look on).
        loop {
            let e = self.set[k];
            if e == 0 {
                return false;
            }
            let (wh, a, b) = self.words[e as usize - 1];
            if wh == h && &self.bytes[a as usize..b as usize] == word() {
                return true;
            }
            k = (k + 1) & mask;
        }
    }

    /// Builds `set`: one entry per *distinct* word. A message that repeats a word (`spam spam
    /// spam …`) has many words with one hash; inserting each of them would make one probe run
    /// as long as the repetitions, and building the set quadratic in the message length
    /// (issue 21). A repeated word is found at the end of its probe (same hash, same bytes)
    /// and not inserted again, so each insert probes past distinct words only: linear time.
    fn build_set(&mut self) {
        let cap = (self.words.len() * 2).max(8).next_power_of_two();
        let mask = cap - 1;
        self.set.clear();
        self.set.resize(cap, 0);
        'words: for (i, &(wh, a, b)) in self.words.iter().enumerate() {
            let mut k = wh as usize & mask;
            loop {
                let e = self.set[k];
                if e == 0 {
                    self.set[k] = i as u32 + 1;
                    continue 'words;
                }
                let (eh, ea, eb) = self.words[e as usize - 1];
                if eh == wh
                    && self.bytes[ea as usize..eb as usize] == self.bytes[a as usize..b as usize]
                {
                    continue 'words;
                }
                k = (k + 1) & mask;
            }
        }
        self.set_ready = true;
    }

    /// The words of one field: by the SSE2 scanner when the text is ASCII, by the
    /// per-character scanner when every character normalises on its own, else by the full
    /// tokenizer. Returns what the ASCII scanner noticed, if it ran.
    fn field(&mut self, text: &str, hasher: &WordHasher) -> Option<scan::Noticed> {
        let bytes = text.as_bytes();
        let noticed =
            scan::scan_field(bytes, &mut self.bytes, &mut self.spare, hasher, &mut self.words);
        if noticed.is_some()
            || scan::scan_unicode(
                text,
                &mut self.bytes,
                hasher,
                &mut self.words,
                &mut self.runs,
                &mut self.fold_buf,
            )
        {
            return noticed;
        }
        self.tokens.tokenize(text, UrlMode::Canonicalize);
        let norm = self.tokens.text().as_bytes();
        for w in self.tokens.words() {
            let word = &norm[w.norm.clone()];
            let a = self.bytes.len() as u32;
            self.bytes.extend_from_slice(word);
            let b = self.bytes.len() as u32;
            if w.no_space {
                self.runs.push((a, b));
            } else {
                self.words.push((hasher.hash(word), a, b));
            }
        }
        None
    }
}

/// A message's derived views, each built once on first need and shared by all segments:
/// its words (for the presearch), the normalised text of a message that is one ASCII text
/// field (for phrases), and its full normalised view (for everything else).
#[derive(Clone, Debug, Default)]
pub(crate) struct Prepared {
    norm: NormalizedMessage,
    ready: bool,
    words: MessageWords,
    simple: String,
    /// `None`: not computed yet; `Some(false)`: the message is not simple.
    simple_ready: Option<bool>,
    facts: MessageFacts,
}

impl Prepared {
    /// Forgets the previous message.
    pub(crate) fn reset(&mut self) {
        self.ready = false;
        self.words.ready = false;
        self.simple_ready = None;
        self.facts.reset();
    }

    /// For a message whose only searchable field is an ASCII text (entity fields extracted
    /// from the text add nothing a phrase could match), that field's normalised text, built
    /// without the full tokenisation.
    fn simple_text(&mut self, msg: &Message) -> Option<&str> {
        if self.simple_ready.is_none() {
            let simple = msg.text.is_ascii()
                && msg.quoted_text.is_none()
                && msg.retweeted_text.is_none()
                && msg.urls.is_none()
                && msg.media.is_none()
                && msg.hashtags.is_none()
                && msg.mentions.is_none();
            if simple {
                crate::normalize::ascii_normalized_text(&msg.text, &mut self.simple);
            }
            self.simple_ready = Some(simple);
        }
        (self.simple_ready == Some(true)).then_some(self.simple.as_str())
    }

    /// The words of `msg` (the same message since the last reset) and its other facts.
    fn words_and_facts(
        &mut self,
        msg: &Message,
        hasher: &WordHasher,
    ) -> (&MessageWords, &mut MessageFacts) {
        if !self.words.ready {
            self.words.fill(msg, hasher);
        }
        (&self.words, &mut self.facts)
    }

    /// Whether `msg` (the same message since the last reset) has the word `word` (hash `h`).
    fn has_word<'w>(
        &mut self,
        msg: &Message,
        hasher: &WordHasher,
        h: u64,
        word: impl Fn() -> &'w [u8],
    ) -> bool {
        if !self.words.ready {
            self.words.fill(msg, hasher);
        }
        self.words.contains(h, word)
    }

    /// The normalised view of `msg` (the same message since the last reset).
    pub(crate) fn get(&mut self, msg: &Message) -> &NormalizedMessage {
        if !self.ready {
            self.norm.prepare(msg);
            self.ready = true;
        }
        &self.norm
    }

    /// The view, if built.
    pub(crate) fn as_ref(&self) -> Option<&NormalizedMessage> {
        self.ready.then_some(&self.norm)
    }
}

/// What verification reads: the key terms found, memoised term results, and the message
/// (normalised on first need).
struct EvalContext<'a> {
    msg: &'a Message,
    hasher: &'a WordHasher,
    prepared: &'a mut Prepared,
    hits: &'a [u32],
    memo: &'a mut Memo,
    phrases: &'a mut PhraseScratch,
    proximity: &'a mut ProximityScratch,
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
    bloom: BloomFilter,
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
}

/// Marks a word-table value that is the word's only posting (`rule << 1 | exact`) rather than
/// its term id: most key words key one rule, and this saves the two posting-list reads (two
/// cache misses in a large segment) per word found.
const INLINE_POSTING: u32 = 1 << 31;

/// Marks a term id of a non-word term while compiling (word terms are numbered by the word
/// table, the others after them once the number of words is known).
const OTHER: u32 = 1 << 29;

/// Interns terms while a segment is compiled.
struct Compiler {
    words: WordTable,
    /// Words only verification needs.
    verify_words: WordTable,
    no_space: HashMap<String, u32, KeyedState>,
    contains: HashMap<String, u32, KeyedState>,
    raw_tokens: ValueIndex,
    hashtags: ValueIndex,
    mentions: ValueIndex,
    cashtags: ValueIndex,
    from: ValueIndex,
    to: ValueIndex,
    follow: ValueIndex,
    geo: GeoIndex,
    /// Evaluated terms by fingerprint (the first term with each fingerprint).
    eval_terms: HashMap<u64, u32, KeyedState>,
    terms: Vec<TermSlot>,
    /// Word inserts whose ids are written in later (see [`PendingWords`]).
    pending: PendingWords,
    /// The verification words' indexes, in the order of their ops in `programs` (written
    /// into the ops by the final pass over the programs).
    verify_ids: Vec<u32>,
}

/// Word inserts not done yet. At a million rules the word tables are 16-32 MB and each insert
/// was a cache miss waiting for the one before (half the compile time); so the words of a few
/// hundred rules are queued, a first pass reads each one's home slot (independent loads:
/// the misses overlap), and a second inserts them *in queue order*, so every word gets the
/// id it would have got at once. Key words' ids go into their postings; verification words'
/// ids into `Compiler::verify_ids`, in op order (op positions are not final while a program
/// is emitted).
#[derive(Default)]
struct PendingWords {
    bytes: Vec<u8>,
    items: Vec<PendingWord>,
}

struct PendingWord {
    h: u64,
    /// End of the word in `bytes` (start: the previous item's end).
    end: u32,
    target: IdTarget,
}

/// Where a word's id goes.
#[derive(Clone, Copy)]
enum IdTarget {
    /// A key word: `entries[i].0`, the presearch's word table.
    Entry(usize),
    /// A verification word (the verification word table): the next op's index.
    Op,
}

/// Substring terms (no-space words and `contains:` values) from which their automata are
/// built on a second thread (the thread costs tens of microseconds; the automata for this
/// many take milliseconds).
const PARALLEL_SUBSTRINGS: usize = 20_000;

/// Queued words after which [`Compiler::resolve_words`] runs.
const PENDING_BATCH: usize = 512;

impl PendingWords {
    fn push(&mut self, h: u64, word: &[u8], target: IdTarget) {
        self.bytes.extend_from_slice(word);
        self.items.push(PendingWord { h, end: self.bytes.len() as u32, target });
    }
}

fn intern_value(index: &mut ValueIndex, terms: &mut Vec<TermSlot>, value: &str) -> u32 {
    if let Some(&t) = index.get(value) {
        return t;
    }
    let t = OTHER | terms.len() as u32;
    terms.push(TermSlot::Key);
    index.insert(value.into(), t);
    t
}

impl Compiler {
    fn key_term(&mut self, key: KeyKind<'_>, term: &Term) -> u32 {
        let terms = &mut self.terms;
        match key {
            // Both callers queue word keys instead (`push_key_word`, `push_word_term`), so
            // that words are interned in batches, in order.
            KeyKind::Word(_) => unreachable!("word keys are queued, not interned one by one"),
            KeyKind::NoSpaceWord(w) => *self.no_space.entry(w.into_owned()).or_insert_with(|| {
                terms.push(TermSlot::Key);
                OTHER | (terms.len() as u32 - 1)
            }),
            KeyKind::Contains(s) => *self.contains.entry(s.into_owned()).or_insert_with(|| {
                terms.push(TermSlot::Key);
                OTHER | (terms.len() as u32 - 1)
            }),
            KeyKind::RawToken(v) => intern_value(&mut self.raw_tokens, terms, &v),
            KeyKind::Hashtag(v) => intern_value(&mut self.hashtags, terms, &v),
            KeyKind::Mention(v) => intern_value(&mut self.mentions, terms, &v),
            KeyKind::Cashtag(v) => intern_value(&mut self.cashtags, terms, &v),
            KeyKind::From(v) => intern_value(&mut self.from, terms, &v),
            KeyKind::To(v) => intern_value(&mut self.to, terms, &v),
            KeyKind::Follow(v) => intern_value(&mut self.follow, terms, &v),
            KeyKind::Geo => {
                let t = OTHER | terms.len() as u32;
                terms.push(TermSlot::Key);
                self.geo.insert(term, t);
                t
            }
        }
    }

    /// The op of the word term `w` in a program: a word looked up in the message's own words
    /// during verification (never in the presearch's table, so that words only programs need
    /// stay out of its filter), with its hash inline.
    fn push_word_term(&mut self, w: &str, out: &mut Vec<u32>) {
        let w = w.as_bytes();
        let h = self.words.hasher().hash(w);
        // The word's index is written in after `resolve_words`.
        self.pending.push(h, w, IdTarget::Op);
        out.extend([(OP_TERM << 30) | TERM_WORD, h as u32, (h >> 32) as u32]);
    }

    /// Queues key word `w` of a posting about to be pushed at `entries[entry]`.
    fn push_key_word(&mut self, w: &str, entry: usize) {
        let w = w.as_bytes();
        self.pending.push(self.words.hasher().hash(w), w, IdTarget::Entry(entry));
    }

    /// Inserts the queued words (see [`PendingWords`]) and writes their ids in.
    fn resolve_words(&mut self, entries: &mut [(u32, u32)]) {
        let p = &mut self.pending;
        touch_together(p.items.iter().map(|item| match item.target {
            IdTarget::Entry(_) => self.words.home_slot(item.h),
            IdTarget::Op => self.verify_words.home_slot(item.h),
        }));
        let mut start = 0;
        for item in &p.items {
            let word = &p.bytes[start..item.end as usize];
            start = item.end as usize;
            match item.target {
                IdTarget::Entry(i) => entries[i].0 = self.words.insert_hashed(item.h, word),
                IdTarget::Op => {
                    let i = self.verify_words.insert_hashed(item.h, word);
                    assert!(i <= TERM_ID, "too many distinct words in one segment");
                    self.verify_ids.push(i);
                }
            }
        }
        p.items.clear();
        p.bytes.clear();
    }

    /// Appends the ops a program uses for `term` and returns how many terms they check: its
    /// prerequisite words (see [`prerequisite_words`]), then the term itself: a word, a key
    /// term (entities, users, no-space words: found by the presearch) or an evaluated term.
    fn program_terms(&mut self, term: &Term, out: &mut Vec<u32>) -> usize {
        if key_is_exact(term) {
            let (_, key) = term_key(term).expect("exact terms have keys");
            match &key {
                KeyKind::Word(w) => self.push_word_term(w, out),
                _ => {
                    // A non-word key: `OTHER | index`, made a final id by `Segment::build`.
                    let id = self.key_term(key, term);
                    debug_assert!(id & OTHER != 0);
                    out.push((OP_TERM << 30) | TERM_KEY | (id & !OTHER));
                }
            }
            return 1;
        }
        let mut n = 0;
        if let Some(words) = prerequisite_words(term) {
            for w in &words {
                self.push_word_term(w, out);
                n += 1;
            }
        }
        let fp = term_fingerprint(term, &KeyedState(*self.words.hasher()));
        let known = self.eval_terms.get(&fp).copied().filter(
            |&t| matches!(&self.terms[(t & !OTHER) as usize], TermSlot::Eval(b) if **b == *term),
        );
        let t = match known {
            Some(t) => t,
            None => {
                let t = OTHER | self.terms.len() as u32;
                self.terms.push(TermSlot::Eval(Box::new(term.clone())));
                self.eval_terms.entry(fp).or_insert(t);
                t
            }
        };
        out.push((OP_TERM << 30) | (t & !OTHER));
        n + 1
    }
}

impl Segment {
    /// Compiles `rules`; rule `i` of the iterator is rule `i` of the segment.
    pub(crate) fn build<'a>(
        rules: impl IntoIterator<Item = &'a Rule>,
        hasher: WordHasher,
    ) -> Segment {
        let rules: Vec<&Rule> = rules.into_iter().collect();
        let mut c = Compiler {
            // The presearch's table is kept at most a quarter full for short probes (at 1M
            // rules half full made matching 25% slower); verification words, about one per
            // three rules in the standard mix, are looked up only to compile.
            words: WordTable::with_capacity(hasher, rules.len()),
            verify_words: WordTable::with_capacity(hasher, rules.len() / 3),
            no_space: HashMap::with_hasher(KeyedState(hasher)),
            contains: HashMap::with_hasher(KeyedState(hasher)),
            raw_tokens: HashMap::with_hasher(KeyedState(hasher)),
            hashtags: HashMap::with_hasher(KeyedState(hasher)),
            mentions: HashMap::with_hasher(KeyedState(hasher)),
            cashtags: HashMap::with_hasher(KeyedState(hasher)),
            from: HashMap::with_hasher(KeyedState(hasher)),
            to: HashMap::with_hasher(KeyedState(hasher)),
            follow: HashMap::with_hasher(KeyedState(hasher)),
            geo: GeoIndex::default(),
            eval_terms: HashMap::with_hasher(KeyedState(hasher)),
            terms: Vec::with_capacity(rules.len()),
            pending: PendingWords::default(),
            verify_ids: Vec::new(),
        };
        let mut entries: Vec<(u32, u32)> = Vec::with_capacity(rules.len() + rules.len() / 4);
        let mut prog_start = Vec::with_capacity(rules.len());
        let mut programs = Vec::new();
        let mut unkeyed = Vec::new();
        let mut keys = Vec::new();
        for (i, rule) in rules.iter().enumerate() {
            let root = rule.root();
            let exact = rule_is_exact(root);
            // A posting is `rule << 1 | 1` for an exact rule, else `pc << 1` for the rule's
            // program at `pc`: a header (the rule's number), then its ops.
            let posting = if exact {
                prog_start.push(u32::MAX);
                (i as u32) << 1 | 1
            } else {
                let pc = programs.len() as u32;
                assert!(pc < INLINE_POSTING >> 2, "segment programs too large");
                prog_start.push(pc);
                programs.push(i as u32);
                emit_program(root, &mut programs, &mut |t, out| c.program_terms(t, out));
                pc << 1
            };
            keys.clear();
            match key_terms(root, &mut keys) {
                Some(_) => {
                    for (t, key) in keys.drain(..) {
                        let kid = match key {
                            KeyKind::Word(w) => {
                                c.push_key_word(&w, entries.len());
                                0
                            }
                            key => c.key_term(key, t),
                        };
                        entries.push((kid, posting));
                    }
                }
                None => unkeyed.push(posting >> 1),
            }
            if c.pending.items.len() >= PENDING_BATCH {
                c.resolve_words(&mut entries);
            }
        }
        c.resolve_words(&mut entries);
        // Final term ids: words first (a word's id is its word-table id), then the others.
        let n_words = c.words.len() as u32;
        let fix = |id: u32| if id & OTHER != 0 { n_words + (id & !OTHER) } else { id };
        for e in &mut entries {
            e.0 = fix(e.0);
        }
        let mut verify_ids = c.verify_ids.iter();
        for &start in &prog_start {
            if start == u32::MAX {
                continue;
            }
            // Skip the header; ops follow in prefix order, operands in place.
            let mut pc = start as usize + 1;
            let end = pc + op_len(programs[pc]);
            while pc < end {
                let op = programs[pc];
                if op >> 30 == OP_TERM && op & TERM_WORD == 0 {
                    // Key and evaluated terms hold their index among the non-word terms.
                    let id = fix(OTHER | (op & TERM_ID));
                    assert!(id < TERM_KEY, "too many terms in one segment");
                    programs[pc] = (OP_TERM << 30) | (op & TERM_KEY) | id;
                } else if op >> 30 == OP_TERM {
                    // Programs are walked in the order they were emitted, as the words were
                    // queued.
                    programs[pc] |= verify_ids.next().expect("a verification word per op");
                }
                pc += if op >> 30 == OP_TERM { op_len(op) } else { 1 };
            }
        }
        assert!(verify_ids.next().is_none(), "every verification word has an op");
        for index in [
            &mut c.raw_tokens,
            &mut c.hashtags,
            &mut c.mentions,
            &mut c.cashtags,
            &mut c.from,
            &mut c.to,
            &mut c.follow,
        ] {
            index.values_mut().for_each(|v| *v = fix(*v));
        }
        let mut no_space =
            std::mem::replace(&mut c.no_space, HashMap::with_hasher(KeyedState(hasher)));
        let mut contains =
            std::mem::replace(&mut c.contains, HashMap::with_hasher(KeyedState(hasher)));
        no_space.values_mut().for_each(|v| *v = fix(*v));
        contains.values_mut().for_each(|v| *v = fix(*v));
        // Building the Aho-Corasick automata is a fifth of the compile at a million rules and
        // needs nothing else: with many substring terms it runs on a second thread while
        // this one finishes the rest (on one thread if the thread cannot be started).
        let parallel = no_space.len() + contains.len() >= PARALLEL_SUBSTRINGS;
        let substrings = Mutex::new(Some((no_space, contains)));
        let char_seed = hasher.hash(b"the no-space character table");
        let build_substrings = || {
            let (no_space, contains) = substrings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .expect("built once");
            (
                Substrings::build(no_space.into_iter().collect(), Some(char_seed)),
                Substrings::build(contains.into_iter().collect(), None),
            )
        };
        std::thread::scope(|scope| {
            let helper = if parallel {
                std::thread::Builder::new()
                    .name("streamtrack-compile".into())
                    .spawn_scoped(scope, build_substrings)
                    .ok()
            } else {
                None
            };
            c.geo.remap(fix);
            let mut terms: Vec<TermSlot> = (0..n_words).map(TermSlot::KeyWord).collect();
            terms.append(&mut c.terms);
            c.terms = terms;
            // Postings by key term (counting sort).
            let n_terms = c.terms.len();
            let mut post_start = vec![0u32; n_terms + 1];
            for &(k, _) in &entries {
                post_start[k as usize + 1] += 1;
            }
            for i in 0..n_terms {
                post_start[i + 1] += post_start[i];
            }
            let mut fill = post_start.clone();
            let mut postings = vec![0u32; entries.len()];
            for &(k, e) in &entries {
                postings[fill[k as usize] as usize] = e;
                fill[k as usize] += 1;
            }
            c.words.map_values(|id| {
                let (a, b) =
                    (post_start[id as usize] as usize, post_start[id as usize + 1] as usize);
                match b - a {
                    1 if postings[a] < INLINE_POSTING - 1 => INLINE_POSTING | postings[a],
                    _ => id,
                }
            });
            let mut bloom = BloomFilter::with_capacity(c.words.len());
            for id in 0..c.words.len() as u32 {
                bloom.insert(c.words.hasher().hash(c.words.word(id)));
            }
            c.words.shrink_to_fit();
            programs.shrink_to_fit();
            let (arena, ends) = c.verify_words.into_words();
            let verify_words = VerifyWords { arena, ends };
            let (no_space, contains) = match helper.map(|h| h.join()) {
                Some(Ok(built)) => built,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => build_substrings(),
            };
            Segment {
                bloom,
                no_space,
                contains,
                words: c.words,
                verify_words,
                raw_tokens: c.raw_tokens,
                hashtags: c.hashtags,
                mentions: c.mentions,
                cashtags: c.cashtags,
                from: c.from,
                to: c.to,
                follow: c.follow,
                geo: c.geo,
                terms: c.terms,
                post_start,
                postings,
                prog_start,
                programs,
                unkeyed,
                rule_count: rules.len(),
                phrases: OnceLock::new(),
            }
        })
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
            self.collect_hits(prepared.get(msg), &mut s.hits);
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

    /// The presearch without the full normalised view: the words of every field (found once
    /// per message and shared by all segments), entity, user and geo lookups.
    fn collect_hits_fast(&self, msg: &Message, prepared: &mut Prepared, s: &mut SegmentScratch) {
        let (words, facts) = prepared.words_and_facts(msg, self.words.hasher());
        // The filter for 64 words at a time, then the table slots of the words it let
        // through, touched together so that their misses overlap, then the lookups.
        for chunk in words.words.chunks(64) {
            let mut pass = 0u64;
            for (i, &(h, _, _)) in chunk.iter().enumerate() {
                pass |= u64::from(self.bloom.may_contain(h)) << i;
            }
            touch_together(bits(pass).map(|i| self.words.home_slot(chunk[i].0)));
            for i in bits(pass) {
                let (h, a, b) = chunk[i];
                if let Some(id) = self.words.get(h, &words.bytes[a as usize..b as usize]) {
                    s.hits.push(id);
                }
            }
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
    fn collect_hits(&self, msg: &NormalizedMessage, hits: &mut Vec<u32>) {
        let hasher = self.words.hasher();
        let check_raw_tokens = !self.raw_tokens.is_empty();
        for field in msg.fields() {
            let t = &field.tokens;
            let text = t.text().as_bytes();
            for w in t.words() {
                let bytes = &text[w.norm.clone()];
                if w.no_space {
                    if let Some(ns) = &self.no_space {
                        ns.find_all(bytes, hits);
                    }
                    continue;
                }
                self.lookup_word(hasher.hash(bytes), bytes, hits);
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

    /// Evaluates the program at `pc` (short-circuit). The full normalised view of the message
    /// is built only if an evaluated term (phrase, proximity, operator) is reached.
    fn eval(&self, pc: usize, cx: &mut EvalContext<'_>) -> bool {
        let op = self.programs[pc];
        let payload = op & PAYLOAD;
        match op >> 30 {
            OP_TERM if op & TERM_WORD != 0 => {
                let h = u64::from(self.programs[pc + 1]) | u64::from(self.programs[pc + 2]) << 32;
                let i = op & TERM_ID;
                cx.prepared.has_word(cx.msg, cx.hasher, h, || self.verify_words.word(i))
            }
            OP_TERM if op & TERM_KEY != 0 => cx.hits.binary_search(&(op & TERM_ID)).is_ok(),
            OP_TERM => match &self.terms[payload as usize] {
                TermSlot::Key | TermSlot::KeyWord(_) => {
                    unreachable!("word and key terms are checked by their op")
                }
                TermSlot::Eval(term) => {
                    if let Some(v) = cx.memo.get(payload) {
                        return v;
                    }
                    let v = match &**term {
                        Term::Phrase(_) if cx.phrases.evals >= PHRASE_SCAN_AFTER => {
                            if !cx.phrases.ready {
                                self.find_phrases(cx.msg, cx.prepared, &mut cx.phrases.found);
                                cx.phrases.ready = true;
                            }
                            cx.phrases.found.binary_search(&payload).is_ok()
                        }
                        Term::Phrase(p) => {
                            cx.phrases.evals += 1;
                            match cx.prepared.simple_text(cx.msg) {
                                Some(text) => phrase_in(text, p),
                                None => term_holds(term, cx.prepared.get(cx.msg)),
                            }
                        }
                        Term::Proximity { words, distance }
                            if cx.proximity.evals >= PROXIMITY_INDEX_AFTER =>
                        {
                            let norm = cx.prepared.get(cx.msg);
                            let p = &mut *cx.proximity;
                            if !p.ready {
                                p.index.build(norm, cx.hasher);
                                p.ready = true;
                            }
                            p.index
                                .within(norm, words, usize::from(*distance), cx.hasher)
                                .unwrap_or_else(|| term_holds(term, norm))
                        }
                        Term::Keyword(words) | Term::Url(words)
                            if cx.proximity.evals >= PROXIMITY_INDEX_AFTER =>
                        {
                            let norm = cx.prepared.get(cx.msg);
                            let p = &mut *cx.proximity;
                            if !p.ready {
                                p.index.build(norm, cx.hasher);
                                p.ready = true;
                            }
                            let urls_only = matches!(**term, Term::Url(_));
                            p.index.sequence(norm, words, urls_only, cx.hasher)
                        }
                        Term::Proximity { .. } | Term::Keyword(_) | Term::Url(_) => {
                            cx.proximity.evals += 1;
                            term_holds(term, cx.prepared.get(cx.msg))
                        }
                        _ => term_holds(term, cx.prepared.get(cx.msg)),
                    };
                    cx.memo.insert(payload, v);
                    v
                }
            },
            OP_NOT => !self.eval(pc + 1, cx),
            op_kind => {
                let end = pc + 1 + payload as usize;
                let mut p = pc + 1;
                let want = op_kind == OP_OR;
                debug_assert!(op_kind == OP_AND || op_kind == OP_OR);
                while p < end {
                    if self.eval(p, cx) == want {
                        return want;
                    }
                    p += op_len(self.programs[p]);
                }
                !want
            }
        }
    }

    /// Every phrase term of the segment that `msg` holds, into `found` (sorted): one pass of
    /// the phrase automaton over the fields a phrase is searched in (the normalised text of a
    /// message that is one ASCII field, else every field of the normalised view).
    fn find_phrases(&self, msg: &Message, prepared: &mut Prepared, found: &mut Vec<u32>) {
        found.clear();
        let index = self.phrases.get_or_init(|| PhraseIndex::build(&self.terms));
        match prepared.simple_text(msg) {
            Some(text) => index.find_all(text, found),
            None => {
                for field in prepared.get(msg).fields() {
                    index.find_all(field.tokens.text(), found);
                }
            }
        }
    }

    /// The normal-form words of rule `rule`'s positive (non-negated) terms, for highlighting.
    pub(crate) fn positive_words(&self, rule: u32, out: &mut Vec<String>) {
        let pc = self.prog_start[rule as usize];
        if pc == u32::MAX {
            // An exact rule: a single term or an OR of them; its key terms are in postings.
            for t in 0..self.terms.len() {
                let (a, b) = (self.post_start[t] as usize, self.post_start[t + 1] as usize);
                if self.postings[a..b].iter().any(|&e| e >> 1 == rule) {
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
        match &self.terms[term as usize] {
            TermSlot::KeyWord(w) => {
                out.push(String::from_utf8_lossy(self.words.word(*w)).into_owned())
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
                TermSlot::Key | TermSlot::KeyWord(_) => 0,
                TermSlot::Eval(term) => std::mem::size_of::<Term>() + term_heap(term),
            })
            .sum();
        self.words.heap_bytes()
            + self.verify_words.heap_bytes()
            + self.bloom.heap_bytes()
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

    /// `contains` answers from its filter (absent words) and its set (the rest): both must
    /// agree with the words, also when the message repeats them (the set holds each once).
    #[test]
    fn message_words_answer_the_same_before_and_after_the_set_is_built() {
        let hasher = WordHasher::with_seed(7, 11);
        // Every word three times, so that the set skips repeats.
        let text: String = (0..120).map(|i| format!("w{} ", i % 40)).collect();
        let mut words = MessageWords::default();
        words.fill(&Message::new("1", text), &hasher);
        let present: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let absent: Vec<String> = (40..60).map(|i| format!("w{i}")).collect();
        for w in &absent {
            assert!(!words.contains(hasher.hash(w.as_bytes()), || w.as_bytes()));
        }
        assert!(words.filter_ready);
        for round in 0..3 {
            for (w, want) in
                present.iter().map(|w| (w, true)).chain(absent.iter().map(|w| (w, false)))
            {
                let got = words.contains(hasher.hash(w.as_bytes()), || w.as_bytes());
                assert_eq!(got, want, "{w} in round {round}");
            }
        }
        assert!(words.set_ready, "the set is built for present words");
        assert_eq!(words.set.iter().filter(|&&e| e != 0).count(), 40, "one entry per word");
        // A fresh fill forgets the previous message's words.
        words.fill(&Message::new("2", "alpha beta"), &hasher);
        assert!(!words.set_ready && !words.filter_ready);
        assert!(words.contains(hasher.hash(b"beta"), || b"beta"));
        assert!(!words.contains(hasher.hash(b"w3"), || b"w3"));
    }

    /// Words sharing a hash (a collision, forced here) are all kept and told apart by their
    /// bytes; repeats of each are kept once.
    #[test]
    fn message_words_tell_colliding_words_apart() {
        let mut words = MessageWords::default();
        words.bytes.extend_from_slice(b"w3w17w3w17other");
        words.words = vec![(42, 0, 2), (42, 2, 5), (42, 5, 7), (42, 7, 10), (42 + 1024, 10, 15)];
        words.ready = true;
        assert!(words.contains(42, || b"w3"));
        assert!(words.contains(42, || b"w17"));
        assert!(!words.contains(42, || b"nope"), "collision with an absent word");
        assert!(words.contains(42 + 1024, || b"other"));
        assert!(!words.contains(42 + 1024, || b"w3"));
        assert_eq!(words.set.iter().filter(|&&e| e != 0).count(), 3, "one entry per word");
    }
}
