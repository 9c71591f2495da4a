//! From rule trees to what the matcher runs: key terms (the presearcher's index entries) and a
//! small verification program per rule.

use crate::normalize::{char_class, CharClass, Tokens, UrlMode};
use crate::rule::{Node, Term};
use std::borrow::Cow;

/// How a term is recognised in a message (borrowing the term's text where it can).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum KeyKind<'a> {
    /// A whole word of some field (word table).
    Word(Cow<'a, str>),
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

/// The words of a term's text, with whether each is a no-space word.
fn words_of_text(text: &str) -> Vec<String> {
    Tokens::of(text, UrlMode::Keep).word_texts().map(str::to_string).collect()
}

/// Estimated cost of waking on a word: long words are rarer than short ones.
fn word_cost(w: &str) -> f64 {
    let n = w.chars().count().max(1) as f64;
    if is_no_space_word(w) {
        // Each character of a no-space script carries more information.
        4.0 / (n * 2.0)
    } else {
        4.0 / n
    }
}

/// The cheapest word of `words` to key on.
fn best_word<'a>(words: &'a [String]) -> Option<(f64, KeyKind<'a>)> {
    words
        .iter()
        .map(|w| (word_cost(w), w))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(c, w)| (c, word_key(w)))
}

fn word_key(w: &str) -> KeyKind<'_> {
    if is_no_space_word(w) {
        KeyKind::NoSpaceWord(Cow::Borrowed(w))
    } else {
        KeyKind::Word(Cow::Borrowed(w))
    }
}

/// [`best_word`] for words the caller does not keep (tokenised from a phrase).
fn best_owned_word(words: Vec<String>) -> Option<(f64, KeyKind<'static>)> {
    let (cost, key) = best_word(&words)?;
    Some((
        cost,
        match key {
            KeyKind::NoSpaceWord(w) => KeyKind::NoSpaceWord(Cow::Owned(w.into_owned())),
            KeyKind::Word(w) => KeyKind::Word(Cow::Owned(w.into_owned())),
            other => unreachable!("best_word gives words, not {other:?}"),
        },
    ))
}

/// The key a positive term is found by, and its cost; `None` for terms that do not anchor
/// (`has:`, `is:`, `lang:`, `sample:`).
pub(crate) fn term_key(term: &Term) -> Option<(f64, KeyKind<'_>)> {
    match term {
        Term::Keyword(words) | Term::Url(words) | Term::Proximity { words, .. } => best_word(words),
        Term::Phrase(p) => best_owned_word(words_of_text(p)),
        Term::Token(t) => best_owned_word(words_of_text(t))
            .or_else(|| Some((0.5, KeyKind::RawToken(Cow::Borrowed(t))))),
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

/// A set of terms one of which is present whenever the rule matches: the rule is registered
/// under each. Returns the terms (by reference into the tree) and the total cost.
pub(crate) fn key_terms(node: &Node) -> Option<(f64, Vec<&Term>)> {
    match node {
        Node::Term(t) => term_key(t).map(|(c, _)| (c, vec![t])),
        Node::Not(_) => None,
        Node::And(children) => {
            children.iter().filter_map(key_terms).min_by(|a, b| a.0.total_cmp(&b.0))
        }
        Node::Or(children) => {
            let mut cost = 0.0;
            let mut terms = Vec::new();
            for c in children {
                let (k, t) = key_terms(c)?;
                cost += k;
                terms.extend(t);
            }
            Some((cost, terms))
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
/// a proximity term or a multi-word keyword, except no-space words (those match inside runs).
/// `None` for terms where finding the words proves nothing cheaper.
pub(crate) fn prerequisite_words(term: &Term) -> Option<Vec<String>> {
    let words = match term {
        Term::Keyword(words) | Term::Proximity { words, .. } if words.len() > 1 => words.clone(),
        Term::Phrase(p) => words_of_text(p),
        _ => return None,
    };
    let words: Vec<String> = words.into_iter().filter(|w| !is_no_space_word(w)).collect();
    (!words.is_empty()).then_some(words)
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

/// A canonical text for a term, to intern equal terms once.
pub(crate) fn term_signature(term: &Term) -> String {
    format!("{term:?}")
}
