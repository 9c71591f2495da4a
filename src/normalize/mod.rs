//! Text normalisation and tokenisation
//! ([rule language](crate::rule_language#2-text-normalisation-and-tokenisation)).
//!
//! Every matcher sees text through this module, so rule terms and message fields are compared
//! in one normal form:
//!
//! 1. Default-ignorable code points (soft hyphen, zero-width characters, variation selectors,
//!    tag characters, bidi controls) are dropped, so `b\u{200B}omb` is the word `bomb`.
//! 2. White space (the Unicode `White_Space` property) splits the text into *raw tokens*.
//! 3. In message text, a URL inside a raw token loses its scheme and one leading `www.`.
//! 4. Each raw token splits into *words* at punctuation, symbols, separators and control
//!    characters; every emoji is a word of its own; a run of a no-space script (Han, Hiragana,
//!    Katakana, Thai, Lao, Khmer, Myanmar) is a word inside which matches may start and end
//!    anywhere.
//! 5. Each word and each separator is put in the caseless normal form NFC, full case folding,
//!    NFC (`STRASSE` and `straße` both become `strasse`).
//!
//! The normalised text of a field is its raw tokens joined by single spaces: exact phrases and
//! `contains:` are substring searches over it. [`Tokens`] holds that text plus the raw tokens
//! and words with their byte ranges both in the normalised text and in the original text (for
//! highlighting). [`Tokens::clear`] keeps its buffers, so tokenising message after message into
//! one `Tokens` allocates nothing once the buffers have grown.

#[allow(clippy::all)]
mod tables;

/// The normalised message is built from a [`Message`](crate::Message), so it lives in
/// [`crate::message`] (which depends on this text-level module, not the other way round).
/// These paths only keep callers' imports working: nothing in this module uses them.
pub(crate) mod message {
    pub(crate) use crate::message::normalized::*;
}
pub use crate::message::{Field, FieldKind, NormalizedMessage, StrList};

use std::ops::Range;
use unicode_normalization::{is_nfc_quick, IsNormalized, UnicodeNormalization};

/// The class of a code point, which decides how it tokenises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CharClass {
    /// A letter, mark or number of a script written with spaces: part of a word.
    Word,
    /// A letter or mark of a script written without spaces (Han, Hiragana, Katakana, Thai, Lao,
    /// Khmer, Myanmar): part of a no-space run, inside which matches start and end anywhere.
    NoSpace,
    /// A code point with the Unicode `Emoji` property (ASCII `#`, `*` and digits excepted):
    /// always a word of its own.
    Emoji,
    /// Punctuation, a symbol, a separator or a format character: splits words.
    Punct,
    /// A control character that is not white space (NUL, ESC, …): splits words and can never be
    /// part of a match.
    Control,
    /// White space: splits raw tokens.
    Space,
    /// A default-ignorable code point: removed before anything else.
    Ignorable,
}

impl CharClass {
    /// Whether characters of this class make up words.
    #[inline]
    pub fn is_word(self) -> bool {
        matches!(self, CharClass::Word | CharClass::NoSpace)
    }
}

/// Classes in the order of their numbers in the generated tables.
const CLASSES: [CharClass; 8] = [
    CharClass::Word,
    CharClass::NoSpace,
    CharClass::Emoji,
    CharClass::Punct,
    CharClass::Control,
    CharClass::Space,
    CharClass::Ignorable,
    CharClass::Word,
];

/// Flag: case folding changes the character.
const FOLDS: u8 = 0x08;
/// Flag: NFC may change a string holding the character.
const NFC_UNSTABLE: u8 = 0x10;

/// The class and flags of `c`: a two-level table below `FAST_LIMIT`, None above.
#[inline(always)]
fn flags(c: char) -> Option<u8> {
    let cp = c as u32;
    if cp < tables::FAST_LIMIT {
        let block = tables::BLOCK_INDEX[(cp >> 8) as usize] as usize;
        Some(tables::BLOCKS[block][(cp & 0xff) as usize])
    } else {
        None
    }
}

/// The class of `c` (Unicode 15.0).
#[inline]
pub fn char_class(c: char) -> CharClass {
    let cp = c as u32;
    if cp < 128 {
        return tables::ASCII_CLASS[cp as usize];
    }
    if let Some(f) = flags(c) {
        return CLASSES[(f & 7) as usize];
    }
    match tables::CLASS_RANGES.binary_search_by(|&(lo, hi, _)| {
        if hi < cp {
            std::cmp::Ordering::Less
        } else if lo > cp {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    }) {
        Ok(i) => tables::CLASS_RANGES[i].2,
        Err(_) => CharClass::Word,
    }
}

/// Flag: a combining mark (general category M*).
const MARK: u8 = 0x20;

/// Whether `c` is a combining mark, which belongs to the character before it.
#[inline(always)]
pub fn is_mark(c: char) -> bool {
    flags(c).is_some_and(|f| f & MARK != 0)
}

/// Whether `c` is stable under NFC and case folding: neither can change a string because of it.
#[inline(always)]
fn is_caseless_stable(c: char) -> bool {
    flags(c).is_some_and(|f| f & (FOLDS | NFC_UNSTABLE) == 0)
}

/// Whether NFC never combines `c` with what comes before it nor reorders anything across it,
/// and the same holds for the first character of its case folding: then a text can be put in
/// caseless normal form in pieces cut before such characters. The flags answer for most
/// characters; the others (flagged conservatively: combining, composing, or unassigned in the
/// tables' Unicode version) are asked of the `unicode-normalization` crate.
fn starts_nfc_piece(c: char) -> bool {
    if is_nfc_stable(c) {
        return true;
    }
    use unicode_normalization::char::{canonical_combining_class, decompose_canonical};
    let starter = |c: char| {
        canonical_combining_class(c) == 0 && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes
    };
    // A character NFC decomposes (`ଡ଼` U+0B5C, excluded from composition) is safe when its
    // decomposition starts with such a starter.
    let stable = |c: char| {
        starter(c) || {
            let mut first = None;
            decompose_canonical(c, |d| {
                first.get_or_insert(d);
            });
            canonical_combining_class(c) == 0 && first.is_some_and(|d| d != c && starter(d))
        }
    };
    stable(c)
        && match tables::CASE_FOLD.binary_search_by_key(&(c as u32), |&(cp, _)| cp) {
            Ok(i) => tables::CASE_FOLD[i].1.chars().next().is_some_and(stable),
            Err(_) => true,
        }
}

/// Whether NFC can be skipped for a string made of `c`s.
#[inline(always)]
fn is_nfc_stable(c: char) -> bool {
    flags(c).is_some_and(|f| f & NFC_UNSTABLE == 0)
}

/// For the presearch's word scanner: the class of a non-ASCII `c`, whether case folding
/// changes it and whether it is a combining mark, or `None` if NFC may change a string holding
/// it (or it is outside the fast table). Characters with `Some` here are NFC starters that
/// compose with nothing, so a text made of them normalises character by character.
#[inline]
pub(crate) fn plain_char(c: char) -> Option<(CharClass, bool, bool)> {
    let f = flags(c)?;
    (f & NFC_UNSTABLE == 0).then(|| (CLASSES[(f & 7) as usize], f & FOLDS != 0, f & MARK != 0))
}

/// For the presearch's word scanner: the canonical combining class of a Thai or Lao
/// combining mark (a non-zero class in U+0E00-U+0EFF), which NFC changes only by reordering:
/// those marks compose with nothing and decompose to themselves (checked against every
/// character by a test). A text holding them normalises in place where the marks of each
/// sequence are already in canonical order (their classes never decrease), as written Thai
/// is. `None` for any other character.
#[inline]
pub(crate) fn reorderable_mark(c: char) -> Option<u8> {
    if !matches!(c, '\u{e00}'..='\u{eff}') {
        return None;
    }
    let class = unicode_normalization::char::canonical_combining_class(c);
    (class != 0).then_some(class)
}

/// The class a character has in context: a combining mark takes the class of the character
/// it is attached to (the nearest non-mark before it in the same raw token).
fn class_in_context(text: &str, at: usize) -> Option<CharClass> {
    let c = text[at..].chars().next()?;
    if !is_mark(c) {
        return Some(char_class(c));
    }
    for b in text[..at].chars().rev() {
        if !is_mark(b) {
            let k = char_class(b);
            return Some(if k == CharClass::Space { char_class(c) } else { k });
        }
    }
    Some(char_class(c))
}

/// Whether byte position `i` of the normalised text `text` is a word boundary: not between
/// two word characters (marks count as the character they are attached to), except that a
/// no-space run and a change of script are boundaries too. Not between punctuation (or a
/// control character) and a combining mark attached to it (`"` and the mark of
/// `"\u{5b7}`): the mark belongs to it and no word starts there, so no phrase may either
/// (the compiled matcher, keyed by words, never sees one there; found by the `explain` fuzz
/// target). Nor between an emoji and a mark attached to it: `👍\u{301}` is one word, which
/// the keyword `👍` does not match, so neither does the phrase `"👍"` (the compiled matcher,
/// keyed by the word `👍`, never matched it; until 2026-12-06 the reference did, and a
/// longer phrase ending in `👍` matched there in both: `tests/matcher_vs_reference.rs`).
pub(crate) fn is_boundary_at(text: &str, i: usize) -> bool {
    if i == 0 || i >= text.len() {
        return true;
    }
    if attached_to(text, i)
        .is_some_and(|c| matches!(c, CharClass::Punct | CharClass::Control | CharClass::Emoji))
    {
        return false;
    }
    let before_at = text[..i].char_indices().next_back().map_or(0, |(k, _)| k);
    let before = class_in_context(text, before_at);
    let after = class_in_context(text, i);
    !(before == Some(CharClass::Word) && after == Some(CharClass::Word))
}

/// Whether a phrase may start at byte position `i` of the normalised text: a boundary
/// ([`is_boundary_at`], which already refuses a mark attached to punctuation or an emoji)
/// that is not a combining mark attached to a character of a no-space script. The mark
/// belongs to that character (`𣍕` + U+05B7 is one character of a no-space run), so no word,
/// and no phrase, starts there, though inside a run a phrase may end there. Found by the
/// `explain` fuzz target, twice: the reference matched the phrase `"\u{5b7}"` in
/// `🍕\u{5b7}`, then in `𣍕\u{5b7}`; the compiled matcher, keyed by words, did not.
pub(crate) fn is_phrase_start_at(text: &str, i: usize) -> bool {
    is_boundary_at(text, i) && attached_to(text, i) != Some(CharClass::NoSpace)
}

/// Whether the rule word `r` sits in the no-space run `w`: anywhere (a word alone), as a
/// suffix (the first of several words) or as a prefix (the last of several). An occurrence
/// that begins with a combining mark counts only at the run's start: inside the run the mark
/// belongs to the character before it (`\u{5b6}` is not in `む\u{5b6}`, as no phrase starts
/// there: [`is_phrase_start_at`]; found by the `explain` fuzz target). One definition for the
/// reference matcher and `explain`.
pub(crate) fn no_space_run_holds(w: &str, r: &str, first: bool, last: bool) -> bool {
    let at_start_only = r.chars().next().is_some_and(is_mark);
    match (first, last) {
        (true, true) if at_start_only => w.starts_with(r),
        (true, true) => w.contains(r),
        (true, false) => w.ends_with(r) && (!at_start_only || w.len() == r.len()),
        (false, true) => w.starts_with(r),
        (false, false) => false,
    }
}

/// When byte position `i` of `text` holds a combining mark, the class of the character it is
/// attached to (the last one before it that is not a mark), if any.
fn attached_to(text: &str, i: usize) -> Option<CharClass> {
    if !text[i..].chars().next().is_some_and(is_mark) {
        return None;
    }
    text[..i].chars().rev().find(|&b| !is_mark(b)).map(char_class)
}

/// The full case folding of the non-ASCII `c` (CaseFolding.txt statuses C and F), or `None`
/// when folding leaves it as it is.
#[inline]
fn non_ascii_folding(c: char) -> Option<&'static str> {
    if flags(c).is_some_and(|f| f & FOLDS == 0) {
        return None;
    }
    let i = tables::CASE_FOLD.binary_search_by_key(&(c as u32), |&(cp, _)| cp).ok()?;
    Some(tables::CASE_FOLD[i].1)
}

/// Appends the full case folding of `c` (CaseFolding.txt statuses C and F) to `out`.
#[inline]
pub(crate) fn push_case_folded(c: char, out: &mut String) {
    if c.is_ascii() {
        out.push(c.to_ascii_lowercase());
        return;
    }
    match non_ascii_folding(c) {
        Some(folded) => out.push_str(folded),
        None => out.push(c),
    }
}

/// For the presearch's word scanner: the full case folding of the non-ASCII `c` (as
/// [`push_case_folded`] would append it) when it can be written in place of `c`: as many
/// bytes, and one character that is ASCII or plain ([`plain_char`]), or ASCII letters only
/// (`ß` to `ss`, `ﬃ` to `ffi`). `None` when it cannot (`ﬁ` to `fi`, `ẞ` to `ss`) or when `c`
/// does not fold.
#[inline]
pub(crate) fn fold_in_place(c: char) -> Option<&'static str> {
    let folded = non_ascii_folding(c)?;
    let mut chars = folded.chars();
    let fits = match (chars.next(), chars.next()) {
        (Some(one), None) => one.is_ascii() || plain_char(one).is_some(),
        _ => folded.is_ascii(),
    };
    (fits && folded.len() == c.len_utf8()).then_some(folded)
}

/// Appends the caseless normal form of `chars` (NFC, full case folding, NFC) to `out`.
///
/// Fast paths, all exact: ASCII is lower-cased; characters that neither NFC nor folding can
/// change (by the generated flags) are copied; a string whose characters are NFC-stable skips
/// the first NFC, and a folded result made of NFC-stable characters skips the second.
fn push_caseless<I>(chars: I, out: &mut String, scratch: &mut String)
where
    I: Iterator<Item = char> + Clone,
{
    // One pass in the common case: copy (lower-casing ASCII) while every character is stable;
    // on the first one that is not, undo and take the general path.
    let start = out.len();
    let mut stable = true;
    for c in chars.clone() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if is_caseless_stable(c) {
            out.push(c);
        } else {
            stable = false;
            break;
        }
    }
    if stable {
        return;
    }
    out.truncate(start);
    scratch.clear();
    if chars.clone().all(|c| c.is_ascii() || is_nfc_stable(c))
        || is_nfc_quick(chars.clone()) == IsNormalized::Yes
    {
        for c in chars {
            push_case_folded(c, scratch);
        }
    } else {
        for c in chars.nfc() {
            push_case_folded(c, scratch);
        }
    }
    if scratch.chars().all(|c| c.is_ascii() || is_nfc_stable(c))
        || is_nfc_quick(scratch.chars()) == IsNormalized::Yes
    {
        out.push_str(scratch);
    } else {
        out.extend(scratch.chars().nfc());
    }
}

/// The caseless normal form of a short value (an operator value such as a screen name, a
/// hashtag or a language tag): default-ignorables dropped, then NFC, case folding, NFC.
/// White space and punctuation are kept as they are (folded).
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    push_fold(text, &mut out);
    out
}

/// Whether `text` is ASCII: the OR of its 8-byte words (the last one overlapping), with no
/// branch per word. `<[u8]>::is_ascii` takes 64-byte blocks with SSE2 and the rest byte by
/// byte: ~170 instructions on a 137-byte post of the side-by-side corpus, this ~40
/// (callgrind; issue 20). The matcher asks it of every field, the sentiment scorer of every
/// text.
#[inline]
pub(crate) fn is_ascii(text: &[u8]) -> bool {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let load = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let Some(last) = text.len().checked_sub(8) else {
        return text.iter().fold(0, |acc, &b| acc | b) < 0x80;
    };
    let mut words = text.chunks_exact(8);
    let acc = words.by_ref().fold(load(&text[last..]), |acc, w| acc | load(w));
    acc & HIGH == 0
}

/// Appends [`fold`]`(text)` to `out`. Allocates nothing once `out` has grown: the working
/// string of the general path is kept per thread (matching a hashtag or a screen name with
/// a character that folds must not allocate per message).
pub(crate) fn push_fold(text: &str, out: &mut String) {
    if text.is_ascii() {
        let start = out.len();
        out.push_str(text);
        out[start..].make_ascii_lowercase();
        return;
    }
    thread_local! {
        static SCRATCH: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    let chars = text.chars().filter(|&c| char_class(c) != CharClass::Ignorable);
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => push_caseless(chars, out, &mut scratch),
        // Not reachable (push_caseless does not fold again), but never a panic.
        Err(_) => push_caseless(chars, out, &mut String::new()),
    });
}

/// Whether the text holds a character that splits words (punctuation, symbols, separators or
/// control characters, but not emoji or white space). Default-ignorables do not count.
pub(crate) fn has_punctuation(text: &str) -> bool {
    text.chars().any(|c| matches!(char_class(c), CharClass::Punct | CharClass::Control))
}

/// Whether URLs are canonicalised while tokenising: message fields do it, rule terms never do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum UrlMode {
    /// Remove the scheme and one leading `www.` of each URL (message fields).
    #[default]
    Canonicalize,
    /// Leave URLs as written (rule terms).
    Keep,
}

/// A raw token: a white-space-delimited piece of a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawToken {
    /// Byte range in the normalised text ([`Tokens::text`]).
    pub norm: Range<usize>,
    /// Byte range in the original text.
    pub source: Range<usize>,
    /// Whether a URL was found (and canonicalised) in this raw token.
    pub is_url: bool,
}

/// A word: the unit keywords match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Word {
    /// Byte range in the normalised text ([`Tokens::text`]).
    pub norm: Range<usize>,
    /// Byte range in the original text.
    pub source: Range<usize>,
    /// Index of the raw token holding the word.
    pub raw_token: usize,
    /// Whether this word is a run of a no-space script (matches may start and end inside it).
    pub no_space: bool,
}

/// A piece of a raw token put in caseless normal form on its own (see `push_raw_token`).
#[derive(Clone, Debug, Default)]
struct Piece {
    /// Where its normal form starts in [`Tokens::text`].
    norm: usize,
    /// Its byte range in the original text.
    source: Range<usize>,
    /// Whether its normal form has the source's bytes (ASCII lower-cased), so that offsets
    /// inside it map one to one.
    identity: bool,
}

/// The tokenisation of one text: its normalised form, raw tokens and words.
///
/// ```
/// use streamtrack::normalize::{Tokens, UrlMode};
/// let mut tokens = Tokens::new();
/// tokens.tokenize("I like Coca-Cola! http://www.Example.com/x", UrlMode::Canonicalize);
/// assert_eq!(tokens.text(), "i like coca-cola! example.com/x");
/// let words: Vec<&str> = tokens.word_texts().collect();
/// assert_eq!(words, ["i", "like", "coca", "cola", "example", "com", "x"]);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Tokens {
    text: String,
    raw_tokens: Vec<RawToken>,
    words: Vec<Word>,
    /// Non-ignorable characters of the raw token being processed, with their source offsets.
    chars: Vec<(usize, char)>,
    /// The NFC pieces of the raw token being processed.
    pieces: Vec<Piece>,
    /// The normal form of the piece being processed.
    piece_text: String,
    scratch: String,
}

impl Tokens {
    /// An empty tokenisation.
    pub fn new() -> Self {
        Tokens::default()
    }

    /// Tokenises `text` and returns the result (allocates; see [`Tokens::tokenize`] to reuse).
    pub fn of(text: &str, mode: UrlMode) -> Self {
        let mut t = Tokens::new();
        t.tokenize(text, mode);
        t
    }

    /// Forgets the previous text but keeps the buffers.
    pub fn clear(&mut self) {
        self.text.clear();
        self.raw_tokens.clear();
        self.words.clear();
    }

    /// The normalised text: raw tokens, each normalised, joined by single spaces.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The raw tokens, in order.
    pub fn raw_tokens(&self) -> &[RawToken] {
        &self.raw_tokens
    }

    /// The words, in order; a word's index is its position (adjacent words are 1 apart).
    pub fn words(&self) -> &[Word] {
        &self.words
    }

    /// The normalised text of word `i`.
    #[inline]
    pub fn word_text(&self, i: usize) -> &str {
        &self.text[self.words[i].norm.clone()]
    }

    /// The normalised text of raw token `i`.
    #[inline]
    pub fn raw_token_text(&self, i: usize) -> &str {
        &self.text[self.raw_tokens[i].norm.clone()]
    }

    /// The normalised texts of all words.
    pub fn word_texts(&self) -> impl Iterator<Item = &str> + '_ {
        self.words.iter().map(move |w| &self.text[w.norm.clone()])
    }

    /// Replaces the content with the tokenisation of `text`.
    ///
    /// Raw tokens made only of ASCII take a fast path (a byte table, in-place lower-casing);
    /// any other raw token goes through [`Tokens::tokenize_reference`]'s per-character path.
    /// Both give the same result (tested differentially).
    pub fn tokenize(&mut self, text: &str, mode: UrlMode) {
        self.clear();
        self.append(text, mode);
    }

    /// Appends the tokenisation of `text` as more raw tokens (for fields made of several
    /// strings). Source ranges are relative to `text`.
    pub fn append(&mut self, text: &str, mode: UrlMode) {
        let bytes = text.as_bytes();
        let n = bytes.len();
        let mut i = 0;
        while i < n {
            let b = bytes[i];
            if b < 0x80 && ASCII_SPACE[b as usize] {
                i += 1;
                continue;
            }
            if b >= 0x80 {
                let c = text[i..].chars().next().expect("i is on a char boundary");
                if char_class(c) == CharClass::Space {
                    i += c.len_utf8();
                    continue;
                }
            }
            let start = i;
            while i < n && bytes[i] < 0x80 && !ASCII_SPACE[bytes[i] as usize] {
                i += 1;
            }
            if i < n && bytes[i] >= 0x80 {
                // A non-ASCII character: find the end of the raw token char by char.
                let rest = &text[i..];
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| char_class(c) == CharClass::Space)
                    .map_or(n, |(k, _)| i + k);
                self.push_raw_token(text, start..end, mode);
                i = end;
            } else {
                self.push_ascii_token(text, start..i, mode);
            }
        }
    }

    /// The tokenisation of `text` by the plain per-character algorithm, straight from the
    /// rule language: the reference that [`Tokens::tokenize`] is tested against.
    pub fn tokenize_reference(&mut self, text: &str, mode: UrlMode) {
        self.clear();
        let mut start = None;
        for (i, c) in text.char_indices() {
            if char_class(c) == CharClass::Space {
                if let Some(s) = start.take() {
                    self.push_raw_token(text, s..i, mode);
                }
            } else if start.is_none() {
                start = Some(i);
            }
        }
        if let Some(s) = start {
            self.push_raw_token(text, s..text.len(), mode);
        }
    }

    /// The fast path for a raw token of ASCII characters (none of them white space).
    fn push_ascii_token(&mut self, text: &str, range: Range<usize>, mode: UrlMode) {
        let token = &text.as_bytes()[range.clone()];
        let (skip, is_url) = match mode {
            // A URL needs "://" or "www.": no ':' and no '.' means none.
            UrlMode::Canonicalize if token.iter().any(|&b| b == b':' || b == b'.') => {
                ascii_url_prefix(token)
            }
            _ => (None, false),
        };
        let (lead, rest) = match skip {
            Some((from, to)) => (from, to),
            None => (0, 0),
        };
        if lead == 0 && rest == token.len() {
            return;
        }
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let norm_start = self.text.len();
        let raw_index = self.raw_tokens.len();
        // `lead` bytes of leading punctuation, then the token from `rest` on.
        let src = &text[range.clone()];
        self.text.push_str(&src[..lead]);
        self.text.push_str(&src[rest..]);
        self.text[norm_start..].make_ascii_lowercase();
        let out = self.text.as_bytes();
        let mut k = norm_start;
        let end = out.len();
        while k < end {
            if !ASCII_WORD[out[k] as usize] {
                k += 1;
                continue;
            }
            let w = k;
            while k < end && ASCII_WORD[out[k] as usize] {
                k += 1;
            }
            // Map back to source: bytes before `lead` are at the same offset, after it shifted.
            let src_of = |p: usize| {
                let rel = p - norm_start;
                range.start + if rel < lead { rel } else { rel - lead + rest }
            };
            self.words.push(Word {
                norm: w..k,
                source: src_of(w)..src_of(k - 1) + 1,
                raw_token: raw_index,
                no_space: false,
            });
        }
        self.raw_tokens.push(RawToken { norm: norm_start..end, source: range, is_url });
    }

    fn push_raw_token(&mut self, text: &str, range: Range<usize>, mode: UrlMode) {
        let token = &text[range.clone()];
        let mut chars = std::mem::take(&mut self.chars);
        chars.clear();
        for (i, c) in token.char_indices() {
            if c.is_ascii() || char_class(c) != CharClass::Ignorable {
                chars.push((range.start + i, c));
            }
        }
        let (skip, is_url) = match mode {
            // A URL needs "://" or "www.": no ':' and no '.' means none.
            UrlMode::Canonicalize if memchr::memchr2(b':', b'.', token.as_bytes()).is_some() => {
                url_prefix(&chars)
            }
            _ => (None, false),
        };
        if let Some((from, to)) = skip {
            // Leading punctuation stays; the scheme and `www.` go.
            chars.drain(from..to);
        }
        let body: &[(usize, char)] = &chars;
        if body.is_empty() {
            self.chars = chars;
            return;
        }
        if !self.text.is_empty() {
            self.text.push(' ');
        }
        let norm_start = self.text.len();
        let raw_index = self.raw_tokens.len();
        let words_before = self.words.len();
        if self.push_plain_segments(body, raw_index) {
            self.raw_tokens.push(RawToken {
                norm: norm_start..self.text.len(),
                source: range,
                is_url,
            });
            self.chars = chars;
            return;
        }
        self.text.truncate(norm_start);
        self.words.truncate(words_before);
        // 1. The caseless normal form of the whole raw token, so that the words below are
        // those of the normalised text itself (NFC may move a mark across what would otherwise
        // be a word boundary: `[\u{345}\u{300}` becomes `[\u{300}ι`). NFC is computed piece by
        // piece: a piece starts at a character NFC never combines with or reorders across
        // (`starts_nfc_piece`), so the pieces' forms concatenate to the whole token's. Each
        // piece remembers its source range, for the words' source ranges.
        let mut pieces = std::mem::take(&mut self.pieces);
        pieces.clear();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut i = 0;
        while i < body.len() {
            let mut j = i + 1;
            while j < body.len() && !starts_nfc_piece(body[j].1) {
                j += 1;
            }
            let norm_at = self.text.len();
            let (src, c) = body[i];
            if j == i + 1 && (c.is_ascii() || is_caseless_stable(c)) {
                // Copied byte for byte (ASCII lower-cased): one identity piece for a run of
                // such characters that are contiguous in the source.
                self.text.push(if c.is_ascii() { c.to_ascii_lowercase() } else { c });
                let end = src + c.len_utf8();
                match pieces.last_mut() {
                    Some(last) if last.identity && last.source.end == src => last.source.end = end,
                    _ => pieces.push(Piece { norm: norm_at, source: src..end, identity: true }),
                }
            } else if j == i + 1 && is_nfc_stable(c) {
                // Only case folding changes it; NFC again only if the folding asks for it.
                push_case_folded(c, &mut self.text);
                if !self.text[norm_at..].chars().all(|f| f.is_ascii() || is_nfc_stable(f)) {
                    self.text.truncate(norm_at);
                    push_caseless(std::iter::once(c), &mut self.text, &mut scratch);
                }
                pieces.push(Piece {
                    norm: norm_at,
                    source: src..src + c.len_utf8(),
                    identity: false,
                });
            } else {
                push_caseless(body[i..j].iter().map(|&(_, c)| c), &mut self.text, &mut scratch);
                // When the characters' own normal forms add up to the piece's (NFC composed
                // and reordered nothing: a Hangul vowel after `[`), each keeps its source.
                let mut whole = std::mem::take(&mut self.piece_text);
                whole.clear();
                whole.push_str(&self.text[norm_at..]);
                self.text.truncate(norm_at);
                let pieces_before = pieces.len();
                for &(off, c) in &body[i..j] {
                    let at = self.text.len();
                    push_caseless(std::iter::once(c), &mut self.text, &mut scratch);
                    pieces.push(Piece {
                        norm: at,
                        source: off..off + c.len_utf8(),
                        identity: false,
                    });
                }
                if self.text[norm_at..] != whole[..] {
                    self.text.truncate(norm_at);
                    pieces.truncate(pieces_before);
                    // The first character apart when its own form and the rest's add up to
                    // the piece's (a `:` before two vowel signs NFC composes into one): a
                    // word of the rest must not take the `:` into its source range.
                    let (next_off, _) = body[i + 1];
                    push_caseless(std::iter::once(c), &mut self.text, &mut scratch);
                    let rest_at = self.text.len();
                    push_caseless(
                        body[i + 1..j].iter().map(|&(_, c)| c),
                        &mut self.text,
                        &mut scratch,
                    );
                    let (last_off, last_c) = body[j - 1];
                    if self.text[norm_at..] == whole[..] {
                        pieces.push(Piece {
                            norm: norm_at,
                            source: src..next_off,
                            identity: false,
                        });
                        let source = next_off..last_off + last_c.len_utf8();
                        pieces.push(Piece { norm: rest_at, source, identity: false });
                    } else {
                        self.text.truncate(norm_at);
                        self.text.push_str(&whole);
                        let source = src..last_off + last_c.len_utf8();
                        pieces.push(Piece { norm: norm_at, source, identity: false });
                    }
                }
                self.piece_text = whole;
            }
            i = j;
        }
        self.scratch = scratch;
        // The source range of the normalised bytes `norm`: exact inside identity pieces,
        // otherwise from the start of the piece holding its first byte to the end of the piece
        // holding its last.
        let source_of = |norm: &Range<usize>| {
            let piece = |at: usize| &pieces[pieces.partition_point(|p| p.norm <= at) - 1];
            let (first, last) = (piece(norm.start), piece(norm.end - 1));
            let start = match first.identity {
                true => first.source.start + (norm.start - first.norm),
                false => first.source.start,
            };
            let end = match last.identity {
                true => last.source.start + (norm.end - last.norm),
                false => last.source.end,
            };
            start..end
        };
        // 2. Words: a segment is one character (or a run of one word class) with the combining
        // marks that follow it: a mark belongs to the character it is attached to.
        let mut at = norm_start;
        while at < self.text.len() {
            let rest = &self.text[at..];
            let mut chars = rest.char_indices();
            let (_, first) = chars.next().expect("at < len");
            let class = char_class(first);
            let mut end = rest.len();
            for (k, c) in chars {
                let joins = is_mark(c)
                    || (matches!(class, CharClass::Word | CharClass::NoSpace)
                        && char_class(c) == class);
                if !joins {
                    end = k;
                    break;
                }
            }
            let seg = at..at + end;
            // An emoji followed by marks may have composed into a symbol (`↔` + U+0338 is
            // `↮`): the class is that of the normalised character, so it is no word then.
            if matches!(class, CharClass::Word | CharClass::NoSpace | CharClass::Emoji) {
                self.words.push(Word {
                    source: source_of(&seg),
                    norm: seg.clone(),
                    raw_token: raw_index,
                    no_space: class == CharClass::NoSpace,
                });
            }
            at = seg.end;
        }
        self.pieces = pieces;
        self.raw_tokens.push(RawToken { norm: norm_start..self.text.len(), source: range, is_url });
        self.chars = chars;
    }
}

impl Tokens {
    /// The common case of [`Tokens::push_raw_token`]: a token with no character that NFC or
    /// case folding could change (ASCII letters aside) is its own normal form, ASCII
    /// lower-cased, so it is split and copied in one pass. Returns false, having pushed part
    /// of it, on the first other character.
    fn push_plain_segments(&mut self, body: &[(usize, char)], raw_index: usize) -> bool {
        // (class, is a mark) of a plain character; None for any other.
        let plain = |c: char| -> Option<(CharClass, bool)> {
            if c.is_ascii() {
                return Some((tables::ASCII_CLASS[c as usize], false));
            }
            let f = flags(c)?;
            (f & (FOLDS | NFC_UNSTABLE) == 0).then(|| (CLASSES[(f & 7) as usize], f & MARK != 0))
        };
        let mut i = 0;
        while i < body.len() {
            let Some((class, _)) = plain(body[i].1) else { return false };
            let seg_start = self.text.len();
            self.text.push(body[i].1.to_ascii_lowercase());
            let mut j = i + 1;
            while j < body.len() {
                let c = body[j].1;
                let Some((k, mark)) = plain(c) else { return false };
                if !(mark || (matches!(class, CharClass::Word | CharClass::NoSpace) && k == class))
                {
                    break;
                }
                self.text.push(c.to_ascii_lowercase());
                j += 1;
            }
            if matches!(class, CharClass::Word | CharClass::NoSpace | CharClass::Emoji) {
                let (last_off, last_c) = body[j - 1];
                self.words.push(Word {
                    norm: seg_start..self.text.len(),
                    source: body[i].0..last_off + last_c.len_utf8(),
                    raw_token: raw_index,
                    no_space: class == CharClass::NoSpace,
                });
            }
            i = j;
        }
        true
    }
}

/// The normalised text ([`Tokens::text`]) of an ASCII text, written to `out` without building
/// the word and raw-token lists: raw tokens lower-cased, URL prefixes removed, joined by
/// single spaces.
pub(crate) fn ascii_normalized_text(text: &str, out: &mut String) {
    debug_assert!(text.is_ascii());
    out.clear();
    let b = text.as_bytes();
    let n = b.len();
    // The common case: words separated by single spaces, no URL: the text itself, lower-cased.
    let plain = b.first().is_some_and(|&c| c != b' ')
        && b.last().is_some_and(|&c| c != b' ')
        && !b.iter().any(|&c| c < 0x20 && ASCII_SPACE[c as usize])
        && memchr::memmem::find(b, b"  ").is_none()
        && !memchr::memchr_iter(b':', b).any(|i| b[i + 1..].starts_with(b"//"))
        && !memchr::memchr_iter(b'.', b)
            .any(|i| i >= 3 && b[i - 3..i].eq_ignore_ascii_case(b"www"));
    if plain {
        out.push_str(text);
        out.make_ascii_lowercase();
        return;
    }
    let mut i = 0;
    while i < n {
        if ASCII_SPACE[(b[i] & 0x7f) as usize] {
            i += 1;
            continue;
        }
        let s = i;
        let mut maybe_url = false;
        while i < n && !ASCII_SPACE[(b[i] & 0x7f) as usize] {
            maybe_url |= b[i] == b':' || b[i] == b'.';
            i += 1;
        }
        let token = &b[s..i];
        let (lead, rest) = match maybe_url {
            true => match ascii_url_prefix(token) {
                (Some((from, to)), _) => (from, to),
                _ => (0, 0),
            },
            false => (0, 0),
        };
        if lead == 0 && rest == token.len() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let start = out.len();
        out.push_str(&text[s..s + lead]);
        out.push_str(&text[s + rest..i]);
        out[start..].make_ascii_lowercase();
    }
}

/// The normalised text ([`Tokens::text`]) of a text whose every character normalises on its
/// own ([`plain_char`]) and which holds no URL prefix, written to `out` character by character
/// without the word and raw-token lists: ignorables dropped, raw tokens case-folded and
/// joined by single spaces. Returns `false` (`out` then unspecified) for any other text: a
/// character that needs NFC or folds to one that does, or an ignorable right after a `:`,
/// `/` or `w` (it may hide a URL prefix: `www\u{200b}.`); the caller checks for the
/// prefixes themselves (`://`, `www.`). For phrases on a non-ASCII post (issue 20): the full
/// view cost ~21,000 instructions per post that needed it.
pub(crate) fn plain_normalized_text(text: &str, out: &mut String) -> bool {
    out.clear();
    // A raw token has ended: a space goes before the next character kept.
    let mut gap = false;
    let mut prev = 0u8;
    for c in text.chars() {
        if c.is_ascii() {
            prev = c as u8;
            if ASCII_SPACE[c as usize] {
                gap = true;
                continue;
            }
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
            continue;
        }
        let Some((class, folds, _)) = plain_char(c) else { return false };
        match class {
            CharClass::Ignorable if matches!(prev, b':' | b'/' | b'w' | b'W') => return false,
            CharClass::Ignorable => continue,
            CharClass::Space => {
                prev = b' ';
                gap = true;
                continue;
            }
            _ => prev = 0,
        }
        if gap && !out.is_empty() {
            out.push(' ');
        }
        gap = false;
        if folds {
            let at = out.len();
            push_case_folded(c, out);
            if !out[at..].chars().all(|f| f.is_ascii() || plain_char(f).is_some()) {
                return false;
            }
        } else {
            out.push(c);
        }
    }
    true
}

/// ASCII bytes that are white space.
static ASCII_SPACE: [bool; 128] = {
    let mut t = [false; 128];
    let mut i = 0;
    while i < 128 {
        t[i] = matches!(tables::ASCII_CLASS[i], CharClass::Space);
        i += 1;
    }
    t
};

/// Bytes that are ASCII word characters (letters and digits); false for every byte >= 0x80.
static ASCII_WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 128 {
        t[i] = matches!(tables::ASCII_CLASS[i], CharClass::Word);
        i += 1;
    }
    t
};

/// Whether `c` may follow a URL scheme's first letter: `ALPHA / DIGIT / "+" / "-" / "."`.
#[inline]
pub(crate) fn is_scheme_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')
}

/// [`url_prefix`] for an ASCII raw token, in byte indices.
pub(crate) fn ascii_url_prefix(token: &[u8]) -> (Option<(usize, usize)>, bool) {
    let Some(start) =
        token.iter().position(|&b| tables::ASCII_CLASS[b as usize] != CharClass::Punct)
    else {
        return (None, false);
    };
    let rest = &token[start..];
    let is_www = |k: usize| rest.len() >= k + 4 && rest[k..k + 4].eq_ignore_ascii_case(b"www.");
    if rest[0].is_ascii_alphabetic() {
        let mut k = 1;
        while k < rest.len() && is_scheme_byte(rest[k]) {
            k += 1;
        }
        if rest[k..].starts_with(b"://") {
            let mut end = k + 3;
            if is_www(end) {
                end += 4;
            }
            return (Some((start, start + end)), true);
        }
    }
    if is_www(0) {
        return (Some((start, start + 4)), true);
    }
    (None, false)
}

/// Finds the URL prefix to remove in a raw token: `(from, to)` char indices of the scheme (and
/// `www.`) after leading punctuation, and whether the token holds a URL.
pub(crate) fn url_prefix(chars: &[(usize, char)]) -> (Option<(usize, usize)>, bool) {
    let start = chars.iter().position(|&(_, c)| char_class(c) != CharClass::Punct);
    let Some(start) = start else { return (None, false) };
    let rest = &chars[start..];
    let lower = |k: usize| rest.get(k).map(|&(_, c)| c.to_ascii_lowercase());
    let is_www = |k: usize| {
        lower(k) == Some('w')
            && lower(k + 1) == Some('w')
            && lower(k + 2) == Some('w')
            && lower(k + 3) == Some('.')
    };
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) "://"
    if rest.first().is_some_and(|&(_, c)| c.is_ascii_alphabetic()) {
        let mut k = 1;
        while rest.get(k).is_some_and(|&(_, c)| c.is_ascii() && is_scheme_byte(c as u8)) {
            k += 1;
        }
        if lower(k) == Some(':') && lower(k + 1) == Some('/') && lower(k + 2) == Some('/') {
            let mut end = k + 3;
            if is_www(end) {
                end += 4;
            }
            return (Some((start, start + end)), true);
        }
    }
    if is_www(0) {
        return (Some((start, start + 4)), true);
    }
    (None, false)
}

#[cfg(test)]
mod tests;
