//! Substring automata: no-space words (over characters, see `chars`) and `contains:` values
//! (over bytes), each pattern mapped to its term.

use super::chars::CharAutomaton;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// A substring automaton and the term id of each pattern.
#[derive(Clone, Debug)]
pub(crate) struct Substrings {
    pub(crate) automaton: SubstringAutomaton,
    pub(crate) terms: Vec<u32>,
    /// The patterns, for highlighting.
    pub(crate) patterns: Vec<String>,
}

/// Bytes for `contains:` values (any text); characters for no-space words (see `chars`).
#[derive(Clone, Debug)]
pub(crate) enum SubstringAutomaton {
    Bytes(AhoCorasick),
    Chars(CharAutomaton),
}

impl Substrings {
    /// The automaton of `patterns`: over characters when `char_seed` is given (it keys the
    /// character table), else over bytes.
    pub(crate) fn build(
        patterns: Vec<(String, u32)>,
        char_seed: Option<u64>,
    ) -> Option<Substrings> {
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
    pub(crate) fn find_all(&self, haystack: &[u8], hits: &mut Vec<u32>) {
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

    pub(crate) fn heap_bytes(&self) -> usize {
        let automaton = match &self.automaton {
            SubstringAutomaton::Bytes(a) => a.memory_usage(),
            SubstringAutomaton::Chars(a) => a.heap_bytes(),
        };
        automaton
            + self.terms.capacity() * 4
            + self.patterns.iter().map(|p| p.capacity() + 24).sum::<usize>()
    }
}
