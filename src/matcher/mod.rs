//! The compiled matcher: all rules' terms in one index, a presearcher that wakes only the
//! rules whose key term a message contains, and exact verification of those.
//!
//! How it works (details and figures in DESIGN.md):
//!
//! 1. Each rule is reduced to a set of *key terms*, one of which must be present whenever the
//!    rule matches (an AND picks its most selective child, an OR needs all of its children's).
//!    The rule is registered under each key (a posting list per key term).
//! 2. A message is tokenised once (fast ASCII path). Each word is hashed with a keyed hash,
//!    checked against a blocked Bloom filter and, if it may be a term, looked up in an
//!    open-addressing word table. Runs of no-space scripts and `contains:` values go through
//!    Aho-Corasick automata; entities, users and geo cells through small exact indexes.
//! 3. The postings of the key terms found give the candidate rules. A rule that is a single
//!    exact term (60% of a typical rule set) matches outright; the others run a tiny
//!    verification program over the terms found, falling back to plain term evaluation (`terms`) for
//!    phrases, proximity and operators.
//!
//! ```
//! use streamtrack::matcher::{Matcher, Scratch};
//! use streamtrack::{Message, Rule};
//!
//! let rules = vec![
//!     Rule::parse("cat #meme -grumpy").unwrap(),
//!     Rule::parse_track("nintendo,wii fit").unwrap(),
//!     Rule::parse("\"product launch\" acme").unwrap(),
//! ];
//! let matcher = Matcher::new(&rules);
//! let mut scratch = Scratch::new();
//! let msg = Message::new("1", "Fit again with my Wii! cat #meme");
//! assert_eq!(matcher.find(&msg, &mut scratch), &[0, 1]);
//! ```

mod chars;
mod compile;
mod geo;
pub(crate) mod hash;
mod pages;
pub(crate) mod prefetch;
mod prepare;
mod proximity;
mod scan;
pub(crate) mod segment;
pub(crate) mod small;
mod substrings;
mod terms;

use crate::normalize::NormalizedMessage;
use crate::rule::Rule;
use crate::Message;
use hash::WordHasher;
use segment::{Prepared, Segment, SegmentScratch};

/// The word hash the matcher uses, under a given key: exposed for the hash-flooding
/// benchmark, which crafts colliding words for a *known* key to show that the random key
/// every matcher draws defeats them. Not part of the stable API.
#[doc(hidden)]
pub fn word_hash(k0: u64, k1: u64, word: &[u8]) -> u64 {
    WordHasher::with_seed(k0, k1).hash(word)
}

/// The phases of the last matcher compiled on this thread, with their seconds, in order:
/// what `examples/profile_compile` prints to show where a compile's time goes. Not part of
/// the stable API.
#[doc(hidden)]
pub fn last_compile_phases() -> Vec<(&'static str, f64)> {
    segment::last_compile_phases()
}

/// A matching rule and the byte ranges of the message text to highlight for it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MatchSpans {
    /// The rule's number.
    pub rule: u32,
    /// Byte ranges of `Message::text`, ascending.
    pub spans: Vec<std::ops::Range<usize>>,
}

/// Builds a [`Matcher`].
#[derive(Clone, Debug, Default)]
pub struct MatcherBuilder {
    seed: Option<(u64, u64)>,
    small_set: Option<bool>,
}

impl MatcherBuilder {
    /// A builder with default settings (a random hash key).
    pub fn new() -> Self {
        MatcherBuilder::default()
    }

    /// Fixes the key of the word hash (reproducible benchmarks). By default every matcher
    /// draws a random key, so that no one can craft colliding terms (hash flooding).
    pub fn hash_seed(mut self, k0: u64, k1: u64) -> Self {
        self.seed = Some((k0, k1));
        self
    }

    /// Forces the small-set prefilter on (whenever every rule can be keyed soundly, whatever
    /// the size of the set) or off. By default it is built for sets of up to 20,000 distinct
    /// keys (DESIGN.md, "The small-set prefilter").
    pub fn small_set_prefilter(mut self, on: bool) -> Self {
        self.small_set = Some(on);
        self
    }

    pub(crate) fn hasher(&self) -> WordHasher {
        match self.seed {
            Some((a, b)) => WordHasher::with_seed(a, b),
            None => WordHasher::random(),
        }
    }

    /// Compiles `rules`; rule `i` of the iterator is reported as `i`.
    pub fn build<'a>(&self, rules: impl IntoIterator<Item = &'a Rule>) -> Matcher {
        let rules: Vec<&Rule> = rules.into_iter().collect();
        let hasher = self.hasher();
        let small = match self.small_set {
            Some(false) => None,
            force => small::SmallSet::build(&rules, hasher.hash(b"small"), force.is_some()),
        };
        Matcher { segment: Segment::build(rules, hasher), small }
    }
}

/// Per-thread working memory for matching: the prepared message and the candidate lists.
/// Reusing one `Scratch` for every message makes matching allocation-free in steady state.
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    norm: Prepared,
    segment: SegmentScratch,
    results: Vec<u32>,
    fold: String,
}

impl Scratch {
    /// Empty working memory.
    pub fn new() -> Self {
        Scratch::default()
    }

    /// The message's normalised view, if the last call to [`Matcher::find`] needed it.
    pub fn prepared(&self) -> Option<&NormalizedMessage> {
        self.norm.as_ref()
    }
}

/// A compiled, immutable set of rules. `Send + Sync`: share one across matching threads, each
/// with its own [`Scratch`].
#[derive(Clone, Debug)]
pub struct Matcher {
    segment: Segment,
    small: Option<small::SmallSet>,
}

impl Matcher {
    /// Compiles `rules` with default settings.
    pub fn new<'a>(rules: impl IntoIterator<Item = &'a Rule>) -> Matcher {
        MatcherBuilder::new().build(rules)
    }

    /// A builder.
    pub fn builder() -> MatcherBuilder {
        MatcherBuilder::new()
    }

    /// The number of rules.
    pub fn rule_count(&self) -> usize {
        self.segment.rule_count()
    }

    /// The numbers of the rules matching `msg`, each once, ascending: a rule's number is its
    /// position in the list the matcher was built from.
    ///
    /// ```
    /// use streamtrack::matcher::{Matcher, Scratch};
    /// use streamtrack::{Message, Rule};
    /// let rules = [
    ///     Rule::parse("snow").unwrap(),
    ///     Rule::parse_track("nintendo,wii fit").unwrap(),
    ///     Rule::parse("\"product launch\" -job").unwrap(),
    /// ];
    /// let matcher = Matcher::new(&rules);
    /// let mut scratch = Scratch::new(); // reuse it: matching then allocates nothing
    /// let msg = Message::new("1", "Wii Fit in the snow! #Nintendo");
    /// assert_eq!(matcher.find(&msg, &mut scratch), [0, 1]);
    /// // Words, not substrings: "snowing" is not "snow".
    /// assert!(matcher.find(&Message::new("2", "snowing"), &mut scratch).is_empty());
    /// ```
    pub fn find<'s>(&self, msg: &Message, scratch: &'s mut Scratch) -> &'s [u32] {
        scratch.norm.reset();
        scratch.results.clear();
        if self.small.as_ref().is_some_and(|s| !s.may_match(msg, &mut scratch.fold)) {
            return &scratch.results; // no rule's key in the message (`small.rs`)
        }
        self.segment.find(msg, &mut scratch.norm, &mut scratch.segment, &mut scratch.results);
        &scratch.results
    }

    /// [`Matcher::find`] for each message of a batch, in order: `each(i, rules)` receives the
    /// index of `messages[i]` and its matching rules. The same answers as calling `find` in a
    /// loop, faster on batches that are not in cache: while a message is matched, the next ones
    /// are requested from memory (the struct two ahead, the text one ahead), which took 2-3%
    /// off a post of the shared corpus at 100k rules and 7% at 1M (bench/journal.md,
    /// "Prefetching the next messages"). Takes messages by value or behind a pointer
    /// (`&[Message]`, `&[Arc<Message>]`).
    ///
    /// ```
    /// use streamtrack::matcher::{Matcher, Scratch};
    /// use streamtrack::{Message, Rule};
    /// let matcher = Matcher::new(&[Rule::parse("snow").unwrap()]);
    /// let batch = [Message::new("1", "Snow!"), Message::new("2", "rain"), Message::new("3", "snow day")];
    /// let mut hits = Vec::new();
    /// matcher.find_each(&batch, &mut Scratch::new(), |i, rules| {
    ///     if !rules.is_empty() {
    ///         hits.push(batch[i].id.clone());
    ///     }
    /// });
    /// assert_eq!(hits, ["1", "3"]);
    /// ```
    pub fn find_each<M: std::borrow::Borrow<Message>>(
        &self,
        messages: &[M],
        scratch: &mut Scratch,
        mut each: impl FnMut(usize, &[u32]),
    ) {
        for (i, m) in messages.iter().enumerate() {
            prefetch::ahead(messages, i);
            each(i, self.find(m.borrow(), scratch));
        }
    }

    /// Like [`Matcher::find`], with the byte ranges of `msg.text` to highlight for each
    /// matching rule: the words of the text that belong to the rule's positive terms (words
    /// of a no-space script are highlighted where the term occurs inside them).
    ///
    /// ```
    /// use streamtrack::matcher::{Matcher, Scratch};
    /// use streamtrack::{Message, Rule};
    /// let rules = [Rule::parse("\"product launch\" -job").unwrap()];
    /// let matcher = Matcher::new(&rules);
    /// let msg = Message::new("1", "The Product Launch is today");
    /// let found = matcher.find_with_spans(&msg, &mut Scratch::new());
    /// assert_eq!(found[0].rule, 0);
    /// let words: Vec<&str> = found[0].spans.iter().map(|r| &msg.text[r.clone()]).collect();
    /// assert_eq!(words, ["Product", "Launch"]);
    /// ```
    pub fn find_with_spans(&self, msg: &Message, scratch: &mut Scratch) -> Vec<MatchSpans> {
        let rules = self.find(msg, scratch).to_vec();
        let norm = NormalizedMessage::of(msg);
        let text = &norm.fields()[0].tokens;
        let mut words = Vec::new();
        rules
            .into_iter()
            .map(|rule| {
                words.clear();
                self.segment.positive_words(rule, &mut words);
                let mut spans: Vec<std::ops::Range<usize>> = Vec::new();
                for (i, w) in text.words().iter().enumerate() {
                    let t = text.word_text(i);
                    let hit = words
                        .iter()
                        .any(|x| x == t || (w.no_space && !x.is_empty() && t.contains(x.as_str())));
                    if hit {
                        spans.push(w.source.clone());
                    }
                }
                MatchSpans { rule, spans }
            })
            .collect()
    }

    /// Heap bytes held by the compiled structures (word table, filters, postings, programs,
    /// automata, indexes).
    pub fn heap_bytes(&self) -> usize {
        self.segment.heap_bytes() + self.small.as_ref().map_or(0, small::SmallSet::heap_bytes)
    }

    /// Whether the small-set prefilter lets `msg` through to the matcher (`None` without a
    /// prefilter): for the benchmarks' pass rates. Not part of the stable API.
    #[doc(hidden)]
    pub fn small_set_passes(&self, msg: &Message) -> Option<bool> {
        self.small.as_ref().map(|s| s.may_match(msg, &mut String::new()))
    }

    /// The number of distinct keys of the small-set prefilter, if this matcher has one: then
    /// a message holding none of them is answered without tokenising it.
    pub fn small_set_keys(&self) -> Option<usize> {
        self.small.as_ref().map(small::SmallSet::key_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    /// An exact rule highlights its own words only: a program rule's posting (`pc << 1`) whose
    /// `pc` equals the exact rule's number is not one of its postings (`rule << 1 | 1`).
    #[test]
    fn an_exact_rule_highlights_only_its_own_words() {
        // Rule 1's program is the first, at pc 0, and its key word's posting reads 0 >> 1 = 0.
        let rules = [Rule::parse("cat").unwrap(), Rule::parse("apple pie").unwrap()];
        let matcher = Matcher::new(&rules);
        let msg = Message::new("1", "cat apple pie");
        let found = matcher.find_with_spans(&msg, &mut Scratch::new());
        let words = |rule: u32| -> Vec<&str> {
            let f = found.iter().find(|f| f.rule == rule).expect("the rule matches");
            f.spans.iter().map(|r| &msg.text[r.clone()]).collect()
        };
        assert_eq!(words(0), ["cat"]);
        assert_eq!(words(1), ["apple", "pie"]);
    }

    #[test]
    fn matcher_and_scratch_are_send_and_sync() {
        assert_send_sync::<Matcher>();
        assert_send_sync::<Scratch>();
    }
}
