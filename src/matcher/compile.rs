//! From rule trees to what the matcher runs: key terms (the presearcher's index entries) and a
//! small verification program per rule.

use crate::normalize::{char_class, CharClass, Tokens, UrlMode};
use crate::rule::{Node, Term};
use std::borrow::Cow;
use std::hash::{BuildHasher, Hash, Hasher};

/// How a term is recognised in a message (borrowing the term's text where it can).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KeyKind<'a> {
    /// A whole word of some field (word table).
    Word(Cow<'a, str>),
    /// Two words next to each other in some field (word table, keyed `a b` by
    /// [`crate::matcher::hash::pair_hash`]): what a phrase or multi-word keyword is found by,
    /// so that a message word that merely belongs to some phrase wakes nothing.
    Pair(Cow<'a, str>, Cow<'a, str>),
    /// A substring of a no-space run (Aho-Corasick over runs).
    NoSpaceWord(Cow<'a, str>),
    /// A wordless raw token, exactly (track terms like `!!!`).
    RawToken(Cow<'a, str>),
    /// A hashtag entity.
    Hashtag(Cow<'a, str>),
    /// A mention entity.
    Mention(Cow<'a, str>),
    /// A cashtag entity.
    Cashtag(Cow<'a, str>),
    /// The author's screen name or id (`from:`).
    From(Cow<'a, str>),
    /// The replied-to user's screen name or id (`to:`).
    To(Cow<'a, str>),
    /// The author's id (track `follow`).
    Follow(Cow<'a, str>),
    /// A substring of a field's normalised text (`contains:`).
    Contains(Cow<'a, str>),
    /// A geo term: a box of candidate cells; the term itself is verified exactly.
    Geo,
}

/// Whether a word belongs to a no-space script (then it matches inside runs).
pub(crate) fn is_no_space_word(w: &str) -> bool {
    w.chars().next().is_some_and(|c| char_class(c) == CharClass::NoSpace)
}

/// The words of a simple term text (lower-case ASCII words and spaces: its pieces), or `None`
/// if the text needs the tokenizer.
fn simple_words(text: &str) -> Option<impl Iterator<Item = &str>> {
    text.bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b' ')
        .then(|| text.split(' ').filter(|w| !w.is_empty()))
}

/// The words of a term's text (borrowed from it when the text is simple).
fn words_of_text(text: &str) -> Vec<Cow<'_, str>> {
    match simple_words(text) {
        Some(words) => words.map(Cow::Borrowed).collect(),
        None => tokenized_words(text),
    }
}

/// The words of `text` by the tokenizer.
fn tokenized_words(text: &str) -> Vec<Cow<'_, str>> {
    Tokens::of(text, UrlMode::Keep).word_texts().map(|w| Cow::Owned(w.to_string())).collect()
}

/// Estimated cost of waking on a word: long words are rarer than short ones.
fn word_cost(w: &str) -> f64 {
    let n = if w.is_ascii() { w.len() } else { w.chars().count() }.max(1) as f64;
    if is_no_space_word(w) {
        // Each character of a no-space script carries more information.
        4.0 / (n * 2.0)
    } else {
        4.0 / n
    }
}

/// The cheapest word of `words` to key on.
fn best_word<'a>(words: impl Iterator<Item = &'a str>) -> Option<(f64, &'a str)> {
    words.map(|w| (word_cost(w), w)).min_by(|a, b| a.0.total_cmp(&b.0))
}

fn word_key(w: Cow<'_, str>) -> KeyKind<'_> {
    if is_no_space_word(&w) {
        KeyKind::NoSpaceWord(w)
    } else {
        KeyKind::Word(w)
    }
}

/// The best key word of a phrase or token text (borrowed when the text is simple).
fn best_text_word(text: &str) -> Option<(f64, KeyKind<'_>)> {
    if let Some(words) = simple_words(text) {
        let (cost, w) = best_word(words)?;
        return Some((cost, word_key(Cow::Borrowed(w))));
    }
    let words = tokenized_words(text);
    let (cost, w) = best_word(words.iter().map(|w| w.as_ref()))?;
    Some((cost, word_key(Cow::Owned(w.to_string()))))
}

/// Whether a term word can key a pair: it starts with a word character (not a no-space
/// script, whose words match inside runs; not an emoji, see [`for_each_prerequisite_word`]).
fn pairable(w: &str) -> bool {
    w.chars().next().is_some_and(|c| char_class(c) == CharClass::Word)
}

/// The cheapest pair of adjacent words of `words` that can key a pair, if any. Every match of
/// a phrase or multi-word keyword has its words as whole, consecutive words of one field
/// (the same premise as [`for_each_prerequisite_word`], plus order), so the pair is found whenever
/// the term matches. Its cost is that of its rarer word, quartered: two words in sequence
/// are far rarer than either.
fn best_pair<'a>(words: &[Cow<'a, str>]) -> Option<(f64, KeyKind<'a>)> {
    let (cost, i) = words
        .windows(2)
        .enumerate()
        .filter(|(_, w)| pairable(&w[0]) && pairable(&w[1]))
        .map(|(i, w)| (word_cost(&w[0]).min(word_cost(&w[1])) / 4.0, i))
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    Some((cost, KeyKind::Pair(words[i].clone(), words[i + 1].clone())))
}

/// [`best_pair`] over the words of a simple text (see [`simple_words`]), without collecting
/// them: most phrases are simple, and the compile of a million rules allocated a `Vec` per
/// phrase for this.
fn best_simple_pair<'a>(mut words: impl Iterator<Item = &'a str>) -> Option<(f64, KeyKind<'a>)> {
    let mut prev = words.next()?;
    let mut best: Option<(f64, &str, &str)> = None;
    for w in words {
        if pairable(prev) && pairable(w) {
            let cost = word_cost(prev).min(word_cost(w)) / 4.0;
            // The first pair of least cost, as `best_pair`'s `min_by` picks it.
            if best.is_none_or(|b| cost.total_cmp(&b.0).is_lt()) {
                best = Some((cost, prev, w));
            }
        }
        prev = w;
    }
    best.map(|(c, a, b)| (c, KeyKind::Pair(Cow::Borrowed(a), Cow::Borrowed(b))))
}

/// The key a positive term is found by, and its cost; `None` for terms that do not anchor
/// (`has:`, `is:`, `lang:`, `sample:`).
pub(crate) fn term_key(term: &Term) -> Option<(f64, KeyKind<'_>)> {
    match term {
        Term::Keyword(words) if words.len() > 1 => {
            let words: Vec<Cow<'_, str>> =
                words.iter().map(|w| Cow::Borrowed(w.as_str())).collect();
            best_pair(&words).or_else(|| {
                best_word(words.iter().map(|w| w.as_ref()))
                    .map(|(c, w)| (c, word_key(Cow::Owned(w.to_string()))))
            })
        }
        Term::Phrase(p) => match simple_words(p) {
            Some(words) => best_simple_pair(words),
            None => best_pair(&words_of_text(p)),
        }
        .or_else(|| best_text_word(p)),
        Term::Keyword(words) | Term::Url(words) | Term::Proximity { words, .. } => {
            best_word(words.iter().map(String::as_str))
                .map(|(c, w)| (c, word_key(Cow::Borrowed(w))))
        }
        Term::Token(t) => {
            best_text_word(t).or_else(|| Some((0.5, KeyKind::RawToken(Cow::Borrowed(t)))))
        }
        Term::Hashtag(v) => Some((0.3, KeyKind::Hashtag(Cow::Borrowed(v)))),
        Term::Mention(v) => Some((0.3, KeyKind::Mention(Cow::Borrowed(v)))),
        Term::Cashtag(v) => Some((0.3, KeyKind::Cashtag(Cow::Borrowed(v)))),
        Term::From(v) => Some((0.1, KeyKind::From(Cow::Borrowed(v)))),
        Term::To(v) => Some((0.1, KeyKind::To(Cow::Borrowed(v)))),
        Term::Follow(v) => Some((0.1, KeyKind::Follow(Cow::Borrowed(v)))),
        Term::Contains(s) => Some((2.0, KeyKind::Contains(Cow::Borrowed(s)))),
        Term::BoundingBox(_) | Term::PointRadius { .. } | Term::Locations(_) => {
            Some((1.0, KeyKind::Geo))
        }
        Term::Lang(_) | Term::Has(_) | Term::Is(_) | Term::Sample(_) => None,
    }
}

/// Whether finding the term's key already proves the term matches (no verification needed).
pub(crate) fn key_is_exact(term: &Term) -> bool {
    match term {
        Term::Keyword(words) => words.len() == 1,
        Term::Token(t) => words_of_text(t).is_empty(),
        Term::Hashtag(_)
        | Term::Mention(_)
        | Term::Cashtag(_)
        | Term::From(_)
        | Term::To(_)
        | Term::Follow(_)
        | Term::Contains(_) => true,
        _ => false,
    }
}

/// The cost of [`key_terms`] for `node` (without collecting the terms), or `None` if it
/// has no key terms.
fn key_cost(node: &Node) -> Option<f64> {
    match node {
        Node::Term(t) => term_key(t).map(|(c, _)| c),
        Node::Not(_) => None,
        Node::And(children) => children.iter().filter_map(key_cost).min_by(f64::total_cmp),
        Node::Or(children) => children.iter().map(key_cost).sum(),
    }
}

/// A set of terms one of which is present whenever the rule matches: the rule is registered
/// under each. Appends the terms (by reference into the tree) with their keys to `out` and
/// returns their total cost, or returns `None` (leaving `out` as it was) if the node has none.
pub(crate) fn key_terms<'a>(node: &'a Node, out: &mut Vec<(&'a Term, KeyKind<'a>)>) -> Option<f64> {
    match node {
        Node::Term(t) => {
            let (cost, key) = term_key(t)?;
            out.push((t, key));
            Some(cost)
        }
        Node::Not(_) => None,
        Node::And(children) => {
            // The first child of least cost (as `min_by` picks it).
            let (best, _) = children
                .iter()
                .filter_map(|c| key_cost(c).map(|k| (c, k)))
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            key_terms(best, out)
        }
        Node::Or(children) => {
            let mark = out.len();
            let mut cost = 0.0;
            for c in children {
                match key_terms(c, out) {
                    Some(k) => cost += k,
                    None => {
                        out.truncate(mark);
                        return None;
                    }
                }
            }
            Some(cost)
        }
    }
}

/// Whether the rule matches exactly when any of its key terms' keys is found: a single exact
/// term, or an OR of exact terms.
pub(crate) fn rule_is_exact(node: &Node) -> bool {
    match node {
        Node::Term(t) => key_is_exact(t),
        Node::Or(children) => {
            children.iter().all(|c| matches!(c, Node::Term(t) if key_is_exact(t)))
        }
        _ => false,
    }
}

/// Opcodes of verification programs: the high two bits of each `u32`.
pub(crate) const OP_TERM: u32 = 0;
pub(crate) const OP_AND: u32 = 1;
pub(crate) const OP_OR: u32 = 2;
pub(crate) const OP_NOT: u32 = 3;
pub(crate) const PAYLOAD: u32 = (1 << 30) - 1;
/// In an `OP_TERM` payload: the term is a word looked up in the message's own words; the
/// payload's low bits index the segment's verification words and the next two `u32`s hold the
/// word's hash (low half first), so that a check reads nothing but the program and the message.
pub(crate) const TERM_WORD: u32 = 1 << 29;
/// In an `OP_TERM` payload: the term is a key term, present iff the presearch found it (the
/// low bits are its term id).
pub(crate) const TERM_KEY: u32 = 1 << 28;
/// The term id (or verification-word index) in an `OP_TERM` payload.
pub(crate) const TERM_ID: u32 = TERM_KEY - 1;

/// Appends the prefix-order program of `node` to `out`; `term_ids` interns each term, writing
/// its `OP_TERM` ops into the vector it is given (and returning how many), after those of any
/// cheap *prerequisite* terms (words
/// the term cannot match without): a term with prerequisites is emitted as an AND of them and
/// the term, so that verification rejects most candidates before an expensive check.
/// An `AND`/`OR`/`NOT` op's payload is the length of its operands, so evaluation can skip.
pub(crate) fn emit_program(
    node: &Node,
    out: &mut Vec<u32>,
    term_ids: &mut impl FnMut(&Term, &mut Vec<u32>) -> usize,
) {
    match node {
        Node::Term(t) => {
            let at = out.len();
            out.push(0);
            let terms = term_ids(t, out);
            let n = out.len() - at - 1;
            if terms == 1 {
                out.remove(at);
            } else {
                out[at] = (OP_AND << 30) | n as u32;
            }
        }
        Node::And(children) | Node::Or(children) => {
            let op = if matches!(node, Node::And(_)) { OP_AND } else { OP_OR };
            let at = out.len();
            out.push(0);
            for c in children {
                emit_program(c, out, term_ids);
            }
            out[at] = (op << 30) | (out.len() - at - 1) as u32;
        }
        Node::Not(inner) => {
            let at = out.len();
            out.push(0);
            emit_program(inner, out, term_ids);
            out[at] = (OP_NOT << 30) | (out.len() - at - 1) as u32;
        }
    }
}

/// Words that every match of `term` has as whole words of some field: the words of a phrase,
/// a proximity term or a multi-word keyword that are made of word characters. Not no-space
/// words (those match inside runs) nor emoji: until 2026-12-06 a phrase ending in `👍`
/// matched `👍` followed by a combining mark, whose word is `👍` with the mark. It no longer
/// does (`normalize::is_boundary_at`), but emoji in phrases are rare and leaving them out is
/// safe (fewer prerequisites, never a missed match).
/// None for terms where finding the words proves nothing cheaper.
/// Calls `f` with each word, without collecting them (the compile of a million rules
/// allocated a `Vec` or two per phrase for this).
pub(crate) fn for_each_prerequisite_word(term: &Term, mut f: impl FnMut(&str)) {
    let is_word = |w: &str| w.chars().next().is_some_and(|c| char_class(c) == CharClass::Word);
    match term {
        Term::Keyword(words) | Term::Proximity { words, .. } if words.len() > 1 => {
            words.iter().filter(|w| is_word(w)).for_each(|w| f(w))
        }
        Term::Phrase(p) => match simple_words(p) {
            Some(words) => words.filter(|w| is_word(w)).for_each(f),
            None => words_of_text(p).iter().filter(|w| is_word(w)).for_each(|w| f(w)),
        },
        _ => {}
    }
}

/// The length of the operation at `pc` including its operands.
#[inline]
pub(crate) fn op_len(op: u32) -> usize {
    if op >> 30 == OP_TERM {
        if op & TERM_WORD != 0 {
            3
        } else {
            1
        }
    } else {
        1 + (op & PAYLOAD) as usize
    }
}

/// A fingerprint of a term, to intern equal terms once (equal terms have equal fingerprints;
/// the caller confirms a match with `==`).
pub(crate) fn term_fingerprint(term: &Term, state: &impl BuildHasher) -> u64 {
    let mut h = state.build_hasher();
    std::mem::discriminant(term).hash(&mut h);
    match term {
        Term::Keyword(w) | Term::Url(w) => w.hash(&mut h),
        Term::Proximity { words, distance } => (words, distance).hash(&mut h),
        Term::Sample(p) => p.hash(&mut h),
        other => match term_text(other) {
            Some(s) => s.hash(&mut h),
            // Rare terms (geo, has:, is:): their debug text.
            None => format!("{other:?}").hash(&mut h),
        },
    }
    h.finish()
}

/// The text of a term that is one string (a token, phrase, entity, user, `contains:` or
/// `lang:` value).
pub(crate) fn term_text(term: &Term) -> Option<&String> {
    match term {
        Term::Token(s)
        | Term::Phrase(s)
        | Term::Hashtag(s)
        | Term::Mention(s)
        | Term::Cashtag(s)
        | Term::From(s)
        | Term::To(s)
        | Term::Contains(s)
        | Term::Lang(s)
        | Term::Follow(s) => Some(s),
        _ => None,
    }
}
