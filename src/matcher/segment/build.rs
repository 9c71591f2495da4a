//! Compilation of a segment: rules to key terms, postings and verification programs.

use super::{touch_together, KeyedState, Segment, TermSlot, ValueIndex, VerifyWords};
use super::{INLINE_POSTING, OTHER};
use crate::matcher::compile::{
    emit_program, key_is_exact, key_terms, op_len, prerequisite_words, rule_is_exact,
    term_fingerprint, term_key, KeyKind, OP_TERM, TERM_ID, TERM_KEY, TERM_WORD,
};
use crate::matcher::geo::GeoIndex;
use crate::matcher::hash::{pair_hash, BloomFilter, WordHasher, WordTable};
use crate::matcher::substrings::Substrings;
use crate::rule::{Rule, Term};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

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
    /// Whether some key is a word pair.
    has_pairs: bool,
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
            KeyKind::Word(_) | KeyKind::Pair(..) => {
                unreachable!("word and pair keys are queued, not interned one by one")
            }
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

    /// Queues the pair key `a b` (see [`KeyKind::Pair`]) of a posting about to be pushed at
    /// `entries[entry]`.
    fn push_key_pair(&mut self, a: &str, b: &str, entry: usize) {
        let hasher = self.words.hasher();
        let h = pair_hash(hasher.hash(a.as_bytes()), hasher.hash(b.as_bytes()));
        let mut key = Vec::with_capacity(a.len() + 1 + b.len());
        key.extend_from_slice(a.as_bytes());
        key.push(b' ');
        key.extend_from_slice(b.as_bytes());
        self.pending.push(h, &key, IdTarget::Entry(entry));
        self.has_pairs = true;
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
            has_pairs: false,
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
                            KeyKind::Pair(a, b) => {
                                c.push_key_pair(&a, &b, entries.len());
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
                bloom.insert(c.words.hasher().key_hash(c.words.word(id)));
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
                has_pairs: c.has_pairs,
            }
        })
    }
}
