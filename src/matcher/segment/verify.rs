//! Verification of candidate rules: their programs run over the key terms found, with
//! phrases, proximity and operators evaluated on first need and memoised per message.

use super::{Segment, TermSlot};
use crate::matcher::compile::{
    op_len, OP_AND, OP_NOT, OP_OR, OP_TERM, PAYLOAD, TERM_ID, TERM_KEY, TERM_WORD,
};
use crate::matcher::hash::WordHasher;
use crate::matcher::prepare::Prepared;
use crate::matcher::proximity::ProximityIndex;
use crate::matcher::terms::{phrase_in, term_holds};
use crate::message::{Message, NormalizedMessage};
use crate::rule::Term;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use std::collections::HashMap;

/// The position index of one message for proximity, multi-word keyword and `url:` terms (see
/// [`ProximityIndex`]), built once the message has evaluated [`PROXIMITY_INDEX_AFTER`] of
/// them one by one.
#[derive(Clone, Debug, Default)]
pub(super) struct ProximityScratch {
    pub(super) evals: usize,
    pub(super) ready: bool,
    pub(super) index: ProximityIndex,
}

impl ProximityScratch {
    /// The message's position index, built on its first use for this message.
    fn index_of(&mut self, norm: &NormalizedMessage, hasher: &WordHasher) -> &mut ProximityIndex {
        if !self.ready {
            self.index.build(norm, hasher);
            self.ready = true;
        }
        &mut self.index
    }
}

/// Proximity, multi-word keyword and `url:` terms a message evaluates one by one (a
/// pass over every word of every field each) before its words' positions are indexed once
/// for the rest.
pub(super) const PROXIMITY_INDEX_AFTER: usize = 8;

/// Evaluated terms' results for one message (a term shared by several candidate rules is
/// evaluated once): a short list searched in order while it is short (the usual case: at
/// most a few evaluated terms per message), a hash map once it is not, so that a message
/// waking many rules does not pay a search of all earlier results per term.
#[derive(Clone, Debug, Default)]
pub(super) struct Memo {
    pub(super) list: Vec<(u32, bool)>,
    pub(super) map: HashMap<u32, bool>,
}

/// Results the memo keeps in its list before it moves them to its map.
pub(super) const MEMO_LIST_MAX: usize = 16;

impl Memo {
    pub(super) fn clear(&mut self) {
        self.list.clear();
        self.map.clear();
    }

    pub(super) fn get(&self, term: u32) -> Option<bool> {
        if self.map.is_empty() {
            self.list.iter().find(|&&(t, _)| t == term).map(|&(_, v)| v)
        } else {
            self.map.get(&term).copied()
        }
    }

    pub(super) fn insert(&mut self, term: u32, v: bool) {
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
pub(super) struct PhraseScratch {
    /// Phrase terms evaluated one by one so far in this message.
    pub(super) evals: usize,
    pub(super) ready: bool,
    pub(super) found: Vec<u32>,
}

/// Phrase terms a message evaluates one by one (a substring search of the whole text each)
/// before the segment's phrase automaton finds all of them in one pass instead.
pub(super) const PHRASE_SCAN_AFTER: usize = 8;

/// Every phrase of a segment's evaluated terms in one Aho-Corasick automaton, built on the
/// first message that needs it. Checking a phrase searches the whole text, so a long message
/// that wakes many phrase rules (one per distinct word pair it holds, say) would cost the
/// number of those rules times its length; with the automaton it costs one pass.
#[derive(Clone, Debug)]
pub(super) struct PhraseIndex {
    pub(super) automaton: Option<AhoCorasick>,
    /// The evaluated-term id of each pattern.
    pub(super) terms: Vec<u32>,
}

impl PhraseIndex {
    /// The index of the phrases among `terms`, the segment's terms from id `first` on.
    pub(super) fn build(terms: &[TermSlot], first: u32) -> PhraseIndex {
        let (patterns, ids): (Vec<&str>, Vec<u32>) = terms
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                TermSlot::Eval(t) => match &**t {
                    Term::Phrase(p) if !p.is_empty() => Some((p.as_str(), first + i as u32)),
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
    pub(super) fn find_all(&self, text: &str, found: &mut Vec<u32>) {
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

    pub(super) fn heap_bytes(&self) -> usize {
        self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage) + self.terms.capacity() * 4
    }
}

/// What verification reads: the key terms found, memoised term results, and the message
/// (normalised on first need).
pub(super) struct EvalContext<'a> {
    pub(super) msg: &'a Message,
    pub(super) hasher: &'a WordHasher,
    pub(super) prepared: &'a mut Prepared,
    pub(super) hits: &'a [u32],
    pub(super) memo: &'a mut Memo,
    pub(super) phrases: &'a mut PhraseScratch,
    pub(super) proximity: &'a mut ProximityScratch,
}

impl Segment {
    /// Evaluates the program at `pc` (short-circuit). The full normalised view of the message
    /// is built only if an evaluated term (phrase, proximity, operator) is reached.
    pub(super) fn eval(&self, pc: usize, cx: &mut EvalContext<'_>) -> bool {
        let op = self.programs[pc];
        let payload = op & PAYLOAD;
        match op >> 30 {
            OP_TERM if op & TERM_WORD != 0 => {
                let h = u64::from(self.programs[pc + 1]) | u64::from(self.programs[pc + 2]) << 32;
                let i = op & TERM_ID;
                cx.prepared.has_word(cx.msg, cx.hasher, h, || self.verify_words.word(i))
            }
            OP_TERM if op & TERM_KEY != 0 => cx.hits.binary_search(&(op & TERM_ID)).is_ok(),
            OP_TERM => match self.slot(payload) {
                TermSlot::Key | TermSlot::KeyWord => {
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
                            cx.proximity
                                .index_of(norm, cx.hasher)
                                .within(norm, words, usize::from(*distance), cx.hasher)
                                .unwrap_or_else(|| term_holds(term, norm))
                        }
                        Term::Keyword(words) | Term::Url(words)
                            if cx.proximity.evals >= PROXIMITY_INDEX_AFTER =>
                        {
                            let norm = cx.prepared.get(cx.msg);
                            let urls_only = matches!(**term, Term::Url(_));
                            cx.proximity
                                .index_of(norm, cx.hasher)
                                .sequence(norm, words, urls_only, cx.hasher)
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
    pub(super) fn find_phrases(
        &self,
        msg: &Message,
        prepared: &mut Prepared,
        found: &mut Vec<u32>,
    ) {
        found.clear();
        let index = self.phrases.get_or_init(|| PhraseIndex::build(&self.terms, self.n_words));
        match prepared.simple_text(msg) {
            Some(text) => index.find_all(text, found),
            None => {
                for field in prepared.get(msg).fields() {
                    index.find_all(field.tokens.text(), found);
                }
            }
        }
    }
}
