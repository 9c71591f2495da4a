//! Compilation of a segment: rules to key terms, postings and verification programs.

use super::{KeyedState, Segment, TermSlot, ValueIndex, VerifyWords};
use super::{INLINE_POSTING, OTHER};
use crate::matcher::compile::{
    emit_program, for_each_prerequisite_word, is_no_space_word, key_is_exact, key_terms, op_len,
    rule_is_exact, term_fingerprint, term_key, KeyKind, OP_TERM, TERM_ID, TERM_KEY, TERM_WORD,
};
use crate::matcher::geo::GeoIndex;
use crate::matcher::hash::{pair_hash, BloomFilter, WordHasher, WordTable};
use crate::matcher::pages;
use crate::matcher::substrings::Substrings;
use crate::rule::{Node, Rule, Term};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

thread_local! {
    /// The phases of the last compile on this thread, in seconds (see [`last_phases`]).
    static PHASES: RefCell<Vec<(&'static str, f64)>> = const { RefCell::new(Vec::new()) };
}

/// The phases of the last segment compiled on this thread and their seconds, in order (for
/// `examples/profile_compile`): a few clock reads per compile, nothing per rule.
pub(crate) fn last_phases() -> Vec<(&'static str, f64)> {
    PHASES.with(|p| p.borrow().clone())
}

/// Records compile phases into [`PHASES`].
struct PhaseClock {
    at: Instant,
    phases: Vec<(&'static str, f64)>,
}

impl PhaseClock {
    fn start() -> Self {
        PhaseClock { at: Instant::now(), phases: Vec::with_capacity(16) }
    }

    /// Ends phase `name` (begun at the previous mark).
    fn mark(&mut self, name: &'static str) {
        let now = Instant::now();
        self.phases.push((name, (now - self.at).as_secs_f64()));
        self.at = now;
    }

    /// Records a phase timed elsewhere (the helper thread's).
    fn add(&mut self, name: &'static str, secs: f64) {
        self.phases.push((name, secs));
    }

    fn publish(self) {
        PHASES.with(|p| *p.borrow_mut() = self.phases);
    }
}

/// Interns terms while a segment is compiled.
struct Compiler {
    hasher: WordHasher,
    /// Key words (and word pairs) queued with the entry their id goes to.
    key_words: WordQueue,
    /// Words only verification needs, queued in op order.
    verify_words: WordQueue,
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
    /// Whether some key is a word pair.
    has_pairs: bool,
    /// The hashes of the pair keys' first words (marked in the Bloom filter).
    pair_firsts: Vec<u64>,
    /// The pair keys' hashes (counted to size the gate).
    pair_keys: Vec<u64>,
    /// Whether pairs are probed only after words marked as pair-first (see `intern_key_words`).
    gate_pairs: bool,
}

/// Pair probes are gated by first words when fewer than one single-word key in this many
/// is a pair's first word. Measured (`bench match`, 2026-12-05): the generated workload at
/// 100k rules (9,031 first words among 75,397 single-word keys) gains 12% on ASCII posts with
/// the gate; the shared corpus at 1M (113,722 among 775,712, and its posts' common words
/// mostly begin some pair) lost 3-6% with it, at 100k (24,367 among 72,046) 1-2% either way.
const PAIR_GATE_RATIO: usize = 8;

/// Words queued while the rules are read, interned once they all are: sorted by hash, so
/// that equal words are neighbours (no table lookup per word) and the word table is filled
/// front to back (its home slots are in hash order, see [`WordTable::place_sorted`]). At a
/// million rules the tables are 16-32 MB, and interning one word at a time was a cache miss
/// per word, waiting for the one before (half of the compile).
#[derive(Default)]
struct WordQueue {
    bytes: Vec<u8>,
    items: Vec<QueuedWord>,
    /// Queues appended whole ([`WordQueue::append`]), each with the offset of its program
    /// counters: moved into this one by the sort's radix pass rather than copied before it
    /// (the copy touched tens of megabytes of fresh pages at a million rules).
    appended: Vec<(WordQueue, u32)>,
}

/// A posting of a queue appended with program offset `offset`: a program counter moved by it
/// (`pc << 1`); an exact rule's number (`rule << 1 | 1`) is the segment's already.
fn moved_posting(posting: u32, offset: u32) -> u32 {
    if posting & 1 == 1 {
        posting
    } else {
        posting + (offset << 1)
    }
}

/// A queued word: its hash, its bytes in [`WordQueue::bytes`] and where its id goes.
#[derive(Clone, Copy, Default)]
struct QueuedWord {
    h: u64,
    start: u32,
    end: u32,
    /// Its place in the queue (a verification word's index goes to `verify_ids[target]`).
    target: u32,
    /// A key word's posting.
    posting: u32,
}

impl QueuedWord {
    /// This word of a queue appended at place `first` with program offset `program_offset`
    /// (see [`WordQueue::append`]), its bytes moved to `start`.
    fn moved(&self, start: u32, first: u32, program_offset: u32) -> QueuedWord {
        QueuedWord {
            h: self.h,
            start,
            end: start + (self.end - self.start),
            target: self.target + first,
            posting: moved_posting(self.posting, program_offset),
        }
    }
}

/// Substring terms (no-space words and `contains:` values) from which their automata are
/// built on a second thread (the thread costs tens of microseconds; the automata for this
/// many take milliseconds).
const PARALLEL_SUBSTRINGS: usize = 20_000;

impl WordQueue {
    fn push(&mut self, h: u64, word: &[u8], posting: u32) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(word);
        self.push_item(h, start, posting);
    }

    /// Queues the pair key `a b` (see [`KeyKind::Pair`]), written straight into the queue.
    fn push_pair(&mut self, h: u64, a: &[u8], b: &[u8], posting: u32) {
        let start = self.bytes.len() as u32;
        self.bytes.extend_from_slice(a);
        self.bytes.push(b' ');
        self.bytes.extend_from_slice(b);
        self.push_item(h, start, posting);
    }

    fn push_item(&mut self, h: u64, start: u32, posting: u32) {
        assert!(self.bytes.len() < u32::MAX as usize, "too many word bytes in one segment");
        let target = u32::try_from(self.items.len()).expect("too many words in one segment");
        self.items.push(QueuedWord { h, start, end: self.bytes.len() as u32, target, posting });
    }

    /// Queues `other`'s words after this queue's (and after those appended before), its
    /// program counters moved by `program_offset`.
    fn append(&mut self, other: WordQueue, program_offset: u32) {
        debug_assert!(other.appended.is_empty(), "appended once");
        self.appended.push((other, program_offset));
    }

    /// The words queued, appended ones included.
    fn len(&self) -> usize {
        self.items.len() + self.appended.iter().map(|(q, _)| q.items.len()).sum::<usize>()
    }

    /// Moves the appended queues' words into this one's lists.
    fn flatten(&mut self) {
        for (other, offset) in std::mem::take(&mut self.appended) {
            let (bytes, items) = (self.bytes.len() as u32, self.items.len() as u32);
            self.bytes.extend_from_slice(&other.bytes);
            assert!(self.bytes.len() < u32::MAX as usize, "too many word bytes in one segment");
            self.items.extend(other.items.iter().map(|q| q.moved(q.start + bytes, items, offset)));
        }
    }

    fn word(&self, q: &QueuedWord) -> &[u8] {
        &self.bytes[q.start as usize..q.end as usize]
    }

    /// Sorts the queue by hash (then by queue order, so that the order is the same on every
    /// run and a word's occurrences stay in rule order) and returns an upper bound of the
    /// number of distinct words. One radix pass on the hash's top bits first moves the words
    /// *and their bytes* into buckets of a few hundred, each sorted then in the cache: sorting
    /// the whole queue at once, then reading each word's bytes in hash order, was a cache and
    /// TLB miss per word (as slow as the one-at-a-time table inserts it replaced).
    fn sort(&mut self) -> usize {
        let n = self.len();
        let bits = (usize::BITS - (n / 256).leading_zeros()).min(14);
        if bits == 0 {
            self.flatten();
            self.items.sort_unstable_by_key(|q| (q.h, q.target));
        } else {
            let shift = 64 - bits;
            let buckets = 1usize << bits;
            // This queue and the appended ones, each with its first word's place in the
            // whole queue and its program offset.
            let appended = std::mem::take(&mut self.appended);
            let mut parts: Vec<(&WordQueue, u32, u32)> = vec![(&*self, 0, 0)];
            let mut first = self.items.len() as u32;
            for (q, offset) in &appended {
                parts.push((q, first, *offset));
                first += q.items.len() as u32;
            }
            let total_bytes: usize = parts.iter().map(|(q, ..)| q.bytes.len()).sum();
            assert!(total_bytes < u32::MAX as usize, "too many word bytes in one segment");
            let mut starts = vec![0u32; buckets + 1];
            let mut byte_starts = vec![0u32; buckets + 1];
            for q in parts.iter().flat_map(|(p, ..)| &p.items) {
                let b = (q.h >> shift) as usize;
                starts[b + 1] += 1;
                byte_starts[b + 1] += q.end - q.start;
            }
            for b in 0..buckets {
                starts[b + 1] += starts[b];
                byte_starts[b + 1] += byte_starts[b];
            }
            let mut items = vec![QueuedWord::default(); n];
            let mut bytes = vec![0u8; total_bytes];
            let (mut at, mut byte_at) = (starts.clone(), byte_starts);
            for &(part, first, offset) in &parts {
                for q in &part.items {
                    let b = (q.h >> shift) as usize;
                    let (i, start) = (at[b] as usize, byte_at[b]);
                    let len = q.end - q.start;
                    bytes[start as usize..(start + len) as usize]
                        .copy_from_slice(&part.bytes[q.start as usize..q.end as usize]);
                    items[i] = q.moved(start, first, offset);
                    at[b] += 1;
                    byte_at[b] += len;
                }
            }
            drop(parts);
            drop(appended);
            let mut spare = Vec::new();
            for b in 0..buckets {
                let run = &mut items[starts[b] as usize..starts[b + 1] as usize];
                sort_bucket(run, &mut spare, shift - SUB_BITS);
            }
            self.items = items;
            self.bytes = bytes;
        }
        let mut distinct = 0;
        for (i, q) in self.items.iter().enumerate() {
            let new = i == 0 || {
                let p = &self.items[i - 1];
                p.h != q.h || self.word(p) != self.word(q)
            };
            distinct += usize::from(new);
        }
        distinct
    }

    /// Calls `f(hash, word, occurrences)` once per distinct word of the sorted queue, in
    /// ascending order of hash, with the word's occurrences in queue order.
    fn for_each_word(&self, mut f: impl FnMut(u64, &[u8], &[QueuedWord])) {
        let mut same: Vec<QueuedWord> = Vec::new();
        let mut rest: Vec<QueuedWord> = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            let h = self.items[i].h;
            let mut j = i + 1;
            while j < self.items.len() && self.items[j].h == h {
                j += 1;
            }
            let run = &self.items[i..j];
            let first = self.word(&run[0]);
            if run[1..].iter().all(|q| self.word(q) == first) {
                f(h, first, run);
            } else {
                // Different words with one 64-bit hash: practically never, but handled.
                rest.clear();
                rest.extend_from_slice(run);
                while let Some(q) = rest.first().copied() {
                    let word = self.word(&q);
                    same.clear();
                    same.extend(rest.iter().filter(|r| self.word(r) == word));
                    rest.retain(|r| self.word(r) != word);
                    f(h, word, &same);
                }
            }
            i = j;
        }
    }
}

/// Hash bits of the second radix pass, within a bucket of the first.
const SUB_BITS: u32 = 8;

/// Runs of at most this many words are sorted by insertion.
const INSERTION_RUN: usize = 24;

/// Sorts `run` (a bucket of [`WordQueue::sort`]'s radix pass: its words in queue order) by
/// `(hash, queue order)`: a second, stable counting pass on the `SUB_BITS` hash bits below
/// `shift + SUB_BITS`, then each sub-bucket (a word or two, or one word's occurrences,
/// already in queue order) by insertion. A comparison sort of the bucket cost ~500
/// instructions a word, a quarter of the compile at a million rules.
fn sort_bucket(run: &mut [QueuedWord], spare: &mut Vec<QueuedWord>, shift: u32) {
    if run.len() <= INSERTION_RUN {
        insertion_sort(run);
        return;
    }
    let digit = |q: &QueuedWord| (q.h >> shift) as usize & ((1 << SUB_BITS) - 1);
    let mut ends = [0u32; (1 << SUB_BITS) + 1];
    for q in run.iter() {
        ends[digit(q) + 1] += 1;
    }
    for d in 0..1 << SUB_BITS {
        ends[d + 1] += ends[d];
    }
    spare.clear();
    spare.extend_from_slice(run);
    let mut at = ends;
    for q in spare.iter() {
        let d = digit(q);
        run[at[d] as usize] = *q;
        at[d] += 1;
    }
    for d in 0..1 << SUB_BITS {
        let sub = &mut run[ends[d] as usize..ends[d + 1] as usize];
        if sub.len() <= INSERTION_RUN {
            insertion_sort(sub);
        } else {
            // Many words with these hash bits: most likely one word's occurrences (sorted
            // already, which the sort sees in one pass).
            sub.sort_by_key(|q| (q.h, q.target));
        }
    }
}

/// Sorts a short run by `(hash, queue order)`.
fn insertion_sort(run: &mut [QueuedWord]) {
    for i in 1..run.len() {
        let q = run[i];
        let mut j = i;
        while j > 0 && (run[j - 1].h, run[j - 1].target) > (q.h, q.target) {
            run[j] = run[j - 1];
            j -= 1;
        }
        run[j] = q;
    }
}

/// Calls `f` on each `OP_TERM` op of the programs starting at `prog_start` (`u32::MAX`: none),
/// in program order.
fn for_each_term_op(programs: &mut [u32], prog_start: &[u32], mut f: impl FnMut(&mut u32)) {
    for &start in prog_start {
        if start == u32::MAX {
            continue;
        }
        // Skip the header; ops follow in prefix order, operands in place.
        let mut pc = start as usize + 1;
        let end = pc + op_len(programs[pc]);
        while pc < end {
            let op = programs[pc];
            if op >> 30 == OP_TERM {
                f(&mut programs[pc]);
                pc += op_len(op);
            } else {
                pc += 1;
            }
        }
    }
}

/// Interns the queued verification words (in hash order); returns them and each queued
/// word's index, in queue order (the order of their ops in the programs).
fn intern_verify_words(mut q: WordQueue) -> (VerifyWords, Vec<u32>) {
    let distinct = q.sort();
    let mut words = VerifyWords {
        arena: Vec::with_capacity(q.bytes.len()),
        ends: Vec::with_capacity(distinct),
    };
    let mut ids = vec![0; q.items.len()];
    q.for_each_word(|_, word, occurrences| {
        let i = words.ends.len() as u32;
        assert!(i <= TERM_ID, "too many distinct words in one segment");
        words.arena.extend_from_slice(word);
        words.ends.push(words.arena.len() as u32);
        for o in occurrences {
            ids[o.target as usize] = i;
        }
    });
    words.arena.shrink_to_fit();
    words.ends.shrink_to_fit();
    (words, ids)
}

/// Rules from which the second half is read on a thread of its own.
const PARALLEL_RULES: usize = 100_000;

/// Verification words from which they are interned on a thread of their own (a million
/// rules of the generated workload queue ~1.7 million).
const PARALLEL_VERIFY_WORDS: usize = 50_000;

/// From how many rules the second half of them is read on a thread of its own, and from how
/// many verification words and substring terms each is done on a thread of its own while the
/// key words are interned.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Helpers {
    pub(crate) rules: usize,
    pub(crate) verify_words: usize,
    pub(crate) substrings: usize,
}

impl Helpers {
    /// None: everything on the calling thread.
    pub(crate) const NONE: Helpers =
        Helpers { rules: usize::MAX, verify_words: usize::MAX, substrings: usize::MAX };

    /// [`Helpers::BY_SIZE`] where the process may run on more than one core (its CPU
    /// affinity included), else [`Helpers::NONE`]: on one core the halves and the helpers only
    /// interleave (1M rules pinned to one core: 0.49-0.54 s with them, 0.47-0.49 without).
    pub(crate) fn for_this_machine() -> Helpers {
        static CORES: OnceLock<usize> = OnceLock::new();
        let cores =
            *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        if cores > 1 {
            Helpers::BY_SIZE
        } else {
            Helpers::NONE
        }
    }

    /// Where a thread's start (tens of microseconds) is a small part of the work.
    pub(crate) const BY_SIZE: Helpers = Helpers {
        rules: PARALLEL_RULES,
        verify_words: PARALLEL_VERIFY_WORDS,
        substrings: PARALLEL_SUBSTRINGS,
    };
}

/// The key words of a segment, interned (see [`Compiler::intern_key_words`]).
struct KeyWords {
    table: WordTable,
    bloom: BloomFilter,
    pair_bloom: BloomFilter,
    post_start: Vec<u32>,
    postings: Vec<u32>,
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

/// [`intern_value`] for the substring terms' maps (keyed by `String`, the automata's input).
fn intern_string(
    index: &mut HashMap<String, u32, KeyedState>,
    terms: &mut Vec<TermSlot>,
    value: String,
) -> u32 {
    *index.entry(value).or_insert_with(|| {
        terms.push(TermSlot::Key);
        OTHER | (terms.len() as u32 - 1)
    })
}

/// What the rule loop writes besides the compiler's interned terms and queues.
#[derive(Default)]
struct RuleParts {
    /// Postings of the keys other than words (their index among the other terms).
    entries: Vec<(u32, u32)>,
    prog_start: Vec<u32>,
    programs: Vec<u32>,
    unkeyed: Vec<u32>,
}

impl RuleParts {
    /// Room for `rules` rules: about 2 words of program per rule on the side-by-side corpus,
    /// 3.3 on the generated workload; 4 keeps a buffer advised for huge pages from growing
    /// into a new allocation (the shrink at the end returns the rest in place).
    fn with_capacity(rules: usize) -> RuleParts {
        RuleParts {
            prog_start: Vec::with_capacity(rules),
            programs: Vec::with_capacity(rules * 4),
            ..RuleParts::default()
        }
    }
}

impl Compiler {
    /// A compiler for `rules` rules.
    fn new(hasher: WordHasher, rules: usize) -> Compiler {
        let mut c = Compiler {
            hasher,
            key_words: WordQueue::default(),
            verify_words: WordQueue::default(),
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
            terms: Vec::with_capacity(rules),
            has_pairs: false,
            pair_firsts: Vec::new(),
            pair_keys: Vec::new(),
            gate_pairs: false,
        };
        // Sizes up front: a key per rule is the common case, a verification word per two.
        c.key_words.items.reserve(rules);
        c.key_words.bytes.reserve(rules * 8);
        c.verify_words.items.reserve(rules / 2);
        c.verify_words.bytes.reserve(rules * 4);
        c
    }

    /// Reads `rules` (rule `first + k` is `rules[k]`): their keys queued or interned, their
    /// programs written.
    fn compile_rules(&mut self, rules: &[&Rule], first: usize, parts: &mut RuleParts) {
        let mut keys = Vec::new();
        for (k, rule) in rules.iter().enumerate() {
            let i = first + k;
            let root = rule.root();
            // A single keyword of one word (60-80% of a rule set): its own exact key, straight.
            if let Node::Term(Term::Keyword(words)) = root {
                if let [w] = &words[..] {
                    if !is_no_space_word(w) {
                        parts.prog_start.push(u32::MAX);
                        self.push_key_word(w, (i as u32) << 1 | 1);
                        continue;
                    }
                }
            }
            let exact = rule_is_exact(root);
            // A posting is `rule << 1 | 1` for an exact rule, else `pc << 1` for the rule's
            // program at `pc`: a header (the rule's number), then its ops.
            let posting = if exact {
                parts.prog_start.push(u32::MAX);
                (i as u32) << 1 | 1
            } else {
                let pc = parts.programs.len() as u32;
                assert!(pc < INLINE_POSTING >> 2, "segment programs too large");
                parts.prog_start.push(pc);
                parts.programs.push(i as u32);
                emit_program(root, &mut parts.programs, &mut |t, out| self.program_terms(t, out));
                pc << 1
            };
            keys.clear();
            match key_terms(root, &mut keys) {
                Some(_) => {
                    for (t, key) in keys.drain(..) {
                        match key {
                            KeyKind::Word(w) => self.push_key_word(&w, posting),
                            KeyKind::Pair(a, b) => self.push_key_pair(&a, &b, posting),
                            key => parts.entries.push((self.key_term(key, t) & !OTHER, posting)),
                        }
                    }
                }
                None => parts.unkeyed.push(posting >> 1),
            }
        }
    }

    /// Appends `other`, the compiler of the rules after this one's, and its parts: its terms
    /// interned here (a value or evaluated term both have is one term), their ids renumbered
    /// in its programs and postings, its program counters and queue positions offset.
    fn append(&mut self, parts: &mut RuleParts, other: Compiler, theirs: RuleParts) {
        let Compiler {
            key_words,
            verify_words,
            no_space,
            contains,
            raw_tokens,
            hashtags,
            mentions,
            cashtags,
            from,
            to,
            follow,
            mut geo,
            terms,
            has_pairs,
            pair_firsts,
            pair_keys,
            ..
        } = other;
        // Their term `j` (an index among the other terms) is `remap[j]` here (`OTHER | index`).
        let mut remap = vec![u32::MAX; terms.len()];
        for (index, values) in [
            (&mut self.raw_tokens, raw_tokens),
            (&mut self.hashtags, hashtags),
            (&mut self.mentions, mentions),
            (&mut self.cashtags, cashtags),
            (&mut self.from, from),
            (&mut self.to, to),
            (&mut self.follow, follow),
        ] {
            for (value, t) in values {
                remap[(t & !OTHER) as usize] = intern_value(index, &mut self.terms, &value);
            }
        }
        for (index, values) in [(&mut self.no_space, no_space), (&mut self.contains, contains)] {
            for (value, t) in values {
                remap[(t & !OTHER) as usize] = intern_string(index, &mut self.terms, value);
            }
        }
        for &t in geo.ids() {
            remap[(t & !OTHER) as usize] = OTHER | self.terms.len() as u32;
            self.terms.push(TermSlot::Key);
        }
        geo.remap(|t| remap[(t & !OTHER) as usize]);
        self.geo.append(geo);
        for (j, slot) in terms.into_iter().enumerate() {
            if let TermSlot::Eval(term) = slot {
                let (fp, known) = self.find_eval(&term);
                remap[j] = known.unwrap_or_else(|| self.push_eval(fp, term));
            }
        }
        assert!(remap.iter().all(|&t| t != u32::MAX), "every term of the second half renumbered");
        let index = |t: u32| remap[t as usize] & !OTHER;
        // Their programs after ours: key and evaluated terms renumbered (words keep their
        // inline hash; their indexes are written in after `intern_verify_words`).
        let offset = parts.programs.len() as u32;
        let RuleParts { entries, prog_start, mut programs, unkeyed } = theirs;
        for_each_term_op(&mut programs, &prog_start, |op| {
            if *op & TERM_WORD == 0 {
                *op = (OP_TERM << 30) | (*op & TERM_KEY) | index(*op & TERM_ID);
            }
        });
        assert!(
            offset as usize + programs.len() < (INLINE_POSTING >> 2) as usize,
            "segment programs too large"
        );
        let posting = |p: u32| moved_posting(p, offset);
        // (`u32::MAX`: an exact rule, no program.)
        parts
            .prog_start
            .extend(prog_start.iter().map(|&s| if s == u32::MAX { s } else { s + offset }));
        parts.programs.extend_from_slice(&programs);
        parts.entries.extend(entries.iter().map(|&(k, p)| (index(k), posting(p))));
        parts.unkeyed.extend(unkeyed.iter().map(|&pc| pc + offset));
        self.key_words.append(key_words, offset);
        self.verify_words.append(verify_words, 0);
        self.has_pairs |= has_pairs;
        self.pair_firsts.extend(pair_firsts);
        self.pair_keys.extend(pair_keys);
    }
}

impl Compiler {
    fn key_term(&mut self, key: KeyKind<'_>, term: &Term) -> u32 {
        let terms = &mut self.terms;
        match key {
            // Both callers queue word keys instead (`push_key_word`, `push_word_term`), so
            // that words are interned in batches, in order.
            KeyKind::Word(_) | KeyKind::Pair(..) => {
                unreachable!("word and pair keys are queued, not interned one by one")
            }
            KeyKind::NoSpaceWord(w) => intern_string(&mut self.no_space, terms, w.into_owned()),
            KeyKind::Contains(s) => intern_string(&mut self.contains, terms, s.into_owned()),
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
        let h = self.hasher.hash(w);
        // The word's index is written in after `intern_verify_words`.
        self.verify_words.push(h, w, 0);
        out.extend([(OP_TERM << 30) | TERM_WORD, h as u32, (h >> 32) as u32]);
    }

    /// Queues key word `w` with its posting.
    fn push_key_word(&mut self, w: &str, posting: u32) {
        let w = w.as_bytes();
        self.key_words.push(self.hasher.hash(w), w, posting);
    }

    /// Queues the pair key `a b` (see [`KeyKind::Pair`]) with its posting.
    fn push_key_pair(&mut self, a: &str, b: &str, posting: u32) {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        let first = self.hasher.hash(a);
        let h = pair_hash(first, self.hasher.hash(b));
        self.key_words.push_pair(h, a, b, posting);
        self.pair_firsts.push(first);
        self.pair_keys.push(h);
        self.has_pairs = true;
    }

    /// Interns the queued key words: ids in hash order; the presearch's word table (whose
    /// value for a word of at most 8 bytes with one posting is that posting, see
    /// `INLINE_POSTING`), its Bloom filter, and the words' postings (`post_start` from 0 and
    /// `postings`, in id order), all written front to back. `min_words` sizes the table as
    /// [`WordTable::with_capacity`] does; `others` (the other terms, their postings) is the
    /// room left in `post_start` and `postings` for what is appended after the words', so
    /// that neither grows into a new allocation (without the huge pages asked for here).
    fn intern_key_words(&mut self, min_words: usize, others: (usize, usize)) -> KeyWords {
        let q = &mut self.key_words;
        let distinct = q.sort();
        let mut table = WordTable::for_sorted(self.hasher, min_words, distinct, q.bytes.len());
        let mut post_start = Vec::with_capacity(distinct + 1 + others.0);
        post_start.push(0);
        let mut postings = Vec::with_capacity(q.items.len() + others.1);
        pages::advise_huge_pages(&post_start);
        pages::advise_huge_pages(&postings);
        q.for_each_word(|h, word, occurrences| {
            let id = table.push_word(word);
            postings.extend(occurrences.iter().map(|o| o.posting));
            post_start.push(postings.len() as u32);
            let value = match occurrences {
                [o] if word.len() <= 8 && o.posting < INLINE_POSTING - 1 => {
                    INLINE_POSTING | o.posting
                }
                _ => id,
            };
            table.place_sorted(h, word, value);
        });
        let mut pairs = std::mem::take(&mut self.pair_keys);
        pairs.sort_unstable();
        pairs.dedup();
        // Pair keys have a filter of their own: a post's pairs are far more varied than its
        // words, so their probes miss the caches more, and their own filter is a fraction of
        // the words' (at 1M rules of the shared corpus 0.5 MB against 2 MB).
        let single_words = table.len().saturating_sub(pairs.len());
        let mut bloom = BloomFilter::with_capacity(single_words);
        let mut pair_bloom = BloomFilter::with_capacity(pairs.len());
        let mut last = None;
        for item in &q.items {
            // A pair key is `a b`; a word never holds a space.
            let pair = q.word(item).contains(&b' ');
            if last != Some((item.h, pair)) {
                if pair {
                    pair_bloom.insert(item.h);
                } else {
                    bloom.insert(item.h);
                }
                last = Some((item.h, pair));
            }
        }
        // A message pair is probed only after a word that may begin one (the presearch asks
        // in the block that word's own probe read), when few words do: where most key words
        // begin some pair (a million rules, half of them phrases over a 100k vocabulary) the
        // bits would pass nearly every word and only add work.
        let mut firsts = std::mem::take(&mut self.pair_firsts);
        firsts.sort_unstable();
        firsts.dedup();
        self.gate_pairs = !firsts.is_empty() && firsts.len() * PAIR_GATE_RATIO < single_words;
        if self.gate_pairs {
            for &h in &firsts {
                bloom.mark_pair_first(h);
            }
        }
        *q = WordQueue::default();
        KeyWords { table, bloom, pair_bloom, post_start, postings }
    }

    /// The fingerprint of evaluated term `term` and the id (`OTHER | index`) of an equal
    /// term interned before, if any (else [`Compiler::push_eval`] with that fingerprint).
    fn find_eval(&self, term: &Term) -> (u64, Option<u32>) {
        let fp = term_fingerprint(term, &KeyedState(self.hasher));
        let known = self.eval_terms.get(&fp).copied().filter(
            |&t| matches!(&self.terms[(t & !OTHER) as usize], TermSlot::Eval(b) if **b == *term),
        );
        (fp, known)
    }

    /// Interns a new evaluated term of fingerprint `fp`; its id.
    fn push_eval(&mut self, fp: u64, term: Box<Term>) -> u32 {
        let t = OTHER | self.terms.len() as u32;
        self.terms.push(TermSlot::Eval(term));
        self.eval_terms.entry(fp).or_insert(t);
        t
    }

    /// Appends the ops a program uses for `term` and returns how many terms they check: its
    /// prerequisite words (see [`for_each_prerequisite_word`]), then the term itself: a word, a key
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
        for_each_prerequisite_word(term, |w| {
            self.push_word_term(w, out);
            n += 1;
        });
        let (fp, known) = self.find_eval(term);
        let t = known.unwrap_or_else(|| self.push_eval(fp, Box::new(term.clone())));
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
        Segment::build_with(rules, hasher, Helpers::for_this_machine())
    }

    /// [`Segment::build`], with the sizes from which the parts after the rules get threads of
    /// their own.
    pub(crate) fn build_with<'a>(
        rules: impl IntoIterator<Item = &'a Rule>,
        hasher: WordHasher,
        helpers: Helpers,
    ) -> Segment {
        let mut clock = PhaseClock::start();
        let rules: Vec<&Rule> = rules.into_iter().collect();
        let split = if rules.len() >= helpers.rules { rules.len() / 2 } else { rules.len() };
        let mut c = Compiler::new(hasher, split);
        // Room for both halves' programs (the second's are appended).
        let mut parts = RuleParts::with_capacity(rules.len());
        pages::advise_huge_pages(&parts.programs);
        clock.mark("set up");
        // The rules in two halves, the second on a thread of its own (then appended: its term
        // ids renumbered, its programs and queues offset), when there are enough of them.
        let (head, tail) = rules.split_at(split);
        let compile_tail = || {
            let mut c = Compiler::new(hasher, tail.len());
            let mut parts = RuleParts::with_capacity(tail.len());
            c.compile_rules(tail, split, &mut parts);
            (c, parts)
        };
        std::thread::scope(|scope| {
            let helper = (!tail.is_empty())
                .then(|| std::thread::Builder::new().name("streamtrack-compile-rules".into()))
                .and_then(|b| b.spawn_scoped(scope, compile_tail).ok());
            c.compile_rules(head, 0, &mut parts);
            if !tail.is_empty() {
                clock.mark("rules, first half");
                let (other, other_parts) = match helper.map(|h| h.join()) {
                    Some(Ok(compiled)) => compiled,
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    None => compile_tail(),
                };
                clock.mark("rules, second half (waited for)");
                c.append(&mut parts, other, other_parts);
                clock.mark("rules, second half appended");
            }
        });
        let RuleParts { entries, prog_start, mut programs, unkeyed } = parts;
        if tail.is_empty() {
            clock.mark("rules (keys, programs)");
        }
        // What follows the rules falls in three independent parts: the key words (the
        // presearch's table and filters, this thread), the verification words and the
        // substring automata (each on a thread of its own when it is big enough; on this
        // thread if it is small or a thread cannot be started). At a million rules they took
        // 115, 75 and 30 ms one after the other.
        let verify_queue = std::mem::take(&mut c.verify_words);
        let parallel_verify = verify_queue.len() >= helpers.verify_words;
        let verify_queue = Mutex::new(Some(verify_queue));
        let intern_verify = || {
            let t = Instant::now();
            let queue = verify_queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .expect("interned once");
            (intern_verify_words(queue), t.elapsed().as_secs_f64())
        };
        // The substring terms keep their ids among the other terms until the word table is
        // built (the final ids are written into the automata's term lists after).
        let no_space = std::mem::replace(&mut c.no_space, HashMap::with_hasher(KeyedState(hasher)));
        let contains = std::mem::replace(&mut c.contains, HashMap::with_hasher(KeyedState(hasher)));
        let parallel_substrings = no_space.len() + contains.len() >= helpers.substrings;
        let substrings = Mutex::new(Some((no_space, contains)));
        let char_seed = hasher.hash(b"the no-space character table");
        let build_substrings = || {
            let t = Instant::now();
            let (no_space, contains) = substrings
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .expect("built once");
            let built = (
                Substrings::build(no_space.into_iter().collect(), Some(char_seed)),
                Substrings::build(contains.into_iter().collect(), None),
            );
            (built, t.elapsed().as_secs_f64())
        };
        std::thread::scope(|scope| {
            let spawn = |parallel: bool, name: &str| {
                parallel.then(|| std::thread::Builder::new().name(name.into()))
            };
            let verify_helper = spawn(parallel_verify, "streamtrack-compile-words")
                .and_then(|b| b.spawn_scoped(scope, intern_verify).ok());
            let substring_helper = spawn(parallel_substrings, "streamtrack-compile")
                .and_then(|b| b.spawn_scoped(scope, build_substrings).ok());
            // The presearch's table is kept at most a quarter full for short probes (at 1M
            // rules half full made matching 25% slower).
            let KeyWords { table: words, bloom, pair_bloom, mut post_start, mut postings } =
                c.intern_key_words(rules.len(), (c.terms.len(), entries.len()));
            clock.mark("key words (table, Bloom filter)");
            let ((verify_words, verify_ids), verify_secs) = match verify_helper.map(|h| h.join()) {
                Some(Ok(interned)) => interned,
                Some(Err(panic)) => std::panic::resume_unwind(panic),
                None => intern_verify(),
            };
            clock.mark("verification words (waited for)");
            clock.add("  verification words (interned)", verify_secs);
            // Final term ids: words first (a word's id is its word-table id), then the others.
            let n_words = words.len() as u32;
            let fix = |id: u32| if id & OTHER != 0 { n_words + (id & !OTHER) } else { id };
            let mut verify_ids = verify_ids.iter();
            // Programs are walked in the order they were emitted, as the words were queued.
            for_each_term_op(&mut programs, &prog_start, |op| {
                if *op & TERM_WORD == 0 {
                    // Key and evaluated terms hold their index among the non-word terms.
                    let id = fix(OTHER | (*op & TERM_ID));
                    assert!(id < TERM_KEY, "too many terms in one segment");
                    *op = (OP_TERM << 30) | (*op & TERM_KEY) | id;
                } else {
                    *op |= verify_ids.next().expect("a verification word per op");
                }
            });
            assert!(verify_ids.next().is_none(), "every verification word has an op");
            clock.mark("renumbering");
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
            clock.mark("value indexes");
            c.geo.remap(fix);
            // Postings of the other terms after the words' (counting sort).
            let n_others = c.terms.len();
            let base = postings.len() as u32;
            let mut fill = vec![0u32; n_others + 1];
            for &(k, _) in &entries {
                fill[k as usize + 1] += 1;
            }
            for i in 0..n_others {
                fill[i + 1] += fill[i];
            }
            debug_assert!(post_start.capacity() - post_start.len() >= n_others, "room reserved");
            debug_assert!(postings.capacity() - postings.len() >= entries.len(), "room reserved");
            post_start.extend(fill[1..].iter().map(|&f| base + f));
            postings.resize(postings.len() + entries.len(), 0);
            for &(k, e) in &entries {
                postings[(base + fill[k as usize]) as usize] = e;
                fill[k as usize] += 1;
            }
            post_start.shrink_to_fit();
            c.terms.shrink_to_fit();
            clock.mark("postings");
            programs.shrink_to_fit();
            clock.mark("shrinking");
            let ((mut no_space, mut contains), substring_secs) =
                match substring_helper.map(|h| h.join()) {
                    Some(Ok(built)) => built,
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    None => build_substrings(),
                };
            for automaton in [&mut no_space, &mut contains].into_iter().flatten() {
                automaton.terms.iter_mut().for_each(|t| *t = fix(*t));
            }
            clock.mark("substring automata (waited for)");
            clock.add("  substring automata (built)", substring_secs);
            clock.publish();
            Segment {
                bloom,
                pair_bloom,
                no_space,
                contains,
                words,
                verify_words,
                raw_tokens: c.raw_tokens,
                hashtags: c.hashtags,
                mentions: c.mentions,
                cashtags: c.cashtags,
                from: c.from,
                to: c.to,
                follow: c.follow,
                geo: c.geo,
                n_words,
                terms: c.terms,
                post_start,
                postings,
                prog_start,
                programs,
                unkeyed,
                rule_count: rules.len(),
                phrases: OnceLock::new(),
                has_pairs: c.has_pairs,
                gate_pairs: c.gate_pairs,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words_of(q: &WordQueue) -> Vec<(u64, Vec<u8>, Vec<u32>)> {
        let mut seen = Vec::new();
        q.for_each_word(|h, w, occ| {
            seen.push((h, w.to_vec(), occ.iter().map(|o| o.posting).collect()))
        });
        seen
    }

    /// Different words with one hash (a collision, forced here) are told apart by their bytes,
    /// each with its own occurrences in queue order.
    #[test]
    fn queued_words_with_one_hash_are_told_apart() {
        let mut q = WordQueue::default();
        for (i, w) in ["ab", "cd", "ab", "ef", "cd"].iter().enumerate() {
            q.push(42, w.as_bytes(), i as u32);
        }
        q.push(7, b"zz", 5);
        assert!(q.sort() >= 4, "an upper bound of the distinct words");
        assert_eq!(
            words_of(&q),
            [
                (7, b"zz".to_vec(), vec![5]),
                (42, b"ab".to_vec(), vec![0, 2]),
                (42, b"cd".to_vec(), vec![1, 4]),
                (42, b"ef".to_vec(), vec![3]),
            ]
        );
    }

    /// The radix passes (a queue of more than 256 words: buckets by the hash's top bits, then
    /// sub-buckets by the next bits, short runs by insertion, a hot word's many occurrences by
    /// a merge sort) move each word with its bytes and keep the occurrences of a word in queue
    /// order; the result is what one plain sort gives, pairs included, at sizes from a plain
    /// sort's (under 256) to hundreds of buckets; and the same when the second half of the
    /// words was queued apart and appended (the compile's second half of the rules: its
    /// program counters moved).
    #[test]
    fn the_radix_sort_equals_a_plain_sort() {
        for (n, distinct) in [(100u32, 90u32), (300, 290), (5000, 1300), (70_000, 40_000)] {
            for split in [None, Some(n / 2), Some(n / 3)] {
                let hasher = WordHasher::with_seed(3, u64::from(n));
                let (mut q, mut tail) = (WordQueue::default(), WordQueue::default());
                let offset = 1_000_000;
                let mut want: Vec<(u64, Vec<u8>, u32, u32)> = Vec::new();
                for i in 0..n {
                    // Every seventh word is one hot word: a sub-bucket of hundreds.
                    let w = if i % 7 == 3 {
                        "hot".to_string()
                    } else {
                        format!("w{}", (i * 7919) % distinct)
                    };
                    // Odd postings (exact rules) stay; even ones (programs) move.
                    let posting = i * 3;
                    let (queue, moved) = match split {
                        Some(at) if i >= at => (&mut tail, moved_posting(posting, offset)),
                        _ => (&mut q, posting),
                    };
                    if i % 5 == 0 {
                        let (a, b) = (w.as_bytes(), b"next".as_slice());
                        let h = pair_hash(hasher.hash(a), hasher.hash(b));
                        queue.push_pair(h, a, b, posting);
                        want.push((h, [a, b" ", b].concat(), i, moved));
                    } else {
                        let h = hasher.hash(w.as_bytes());
                        queue.push(h, w.as_bytes(), posting);
                        want.push((h, w.into_bytes(), i, moved));
                    }
                }
                if split.is_some() {
                    q.append(tail, offset);
                }
                assert_eq!(q.len(), n as usize);
                let distinct = q.sort();
                want.sort_by_key(|w| (w.0, w.2));
                let mut grouped: Vec<(u64, Vec<u8>, Vec<u32>)> = Vec::new();
                for (h, w, _, p) in want {
                    match grouped.last_mut() {
                        Some(g) if g.0 == h && g.1 == w => g.2.push(p),
                        _ => grouped.push((h, w, vec![p])),
                    }
                }
                assert_eq!(distinct, grouped.len(), "{n} words, split {split:?}");
                assert_eq!(words_of(&q), grouped, "{n} words, split {split:?}");
                let targets: Vec<u32> = q.items.iter().map(|w| w.target).collect();
                let mut sorted = targets.clone();
                sorted.sort_unstable();
                assert!(sorted.iter().copied().eq(0..n), "each place in the queue once");
            }
        }
    }

    /// A bucket's own sort (its words share the hash's bits above the sub-pass's), on runs
    /// with equal hashes, hashes equal in the sub-pass's bits, and reversed input.
    #[test]
    fn a_bucket_sorts_by_hash_then_queue_order() {
        let mut spare = Vec::new();
        for len in [0usize, 1, 2, 24, 25, 100, 1000] {
            for shape in 0..3u64 {
                let mut run: Vec<QueuedWord> = (0..len as u32)
                    .map(|i| {
                        let k = u64::from(i);
                        let h = match shape {
                            // Distinct hashes in reverse order, differing in the sub-pass's
                            // bits (the bits above them are the bucket's, the same for all).
                            0 => {
                                (1u64 << 60)
                                    | ((len as u64 - k) & 255) << 42
                                    | (len as u64 - k) >> 8
                            }
                            // Few hashes, each repeated: runs of one word.
                            1 => (k * 2_654_435_761 % 5) << 42,
                            // Equal in the sub-pass's bits, different below them.
                            _ => (len as u64 - k) * 977,
                        };
                        QueuedWord { h, target: i, ..QueuedWord::default() }
                    })
                    .collect();
                let mut want = run.clone();
                want.sort_by_key(|q| (q.h, q.target));
                sort_bucket(&mut run, &mut spare, 42);
                let key = |v: &[QueuedWord]| v.iter().map(|q| (q.h, q.target)).collect::<Vec<_>>();
                assert_eq!(key(&run), key(&want), "{len} words, shape {shape}");
            }
        }
    }
}
