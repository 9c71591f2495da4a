//! Reactions: a lexicon-based positive/negative scorer, the VADER method (Hutto & Gilbert,
//! ICWSM 2014), with the VADER 3.3.2 lexicon built in.
//!
//! The scorer reads the raw message text, not the engine's normalised tokens: VADER's cues
//! (ALL-CAPS emphasis, `!`, emoticons such as `:D`, punctuation around short words) are exactly
//! what normalisation removes. Tokenising again is cheap next to the lexicon look-ups (see
//! DESIGN.md, "Analytics", for the measurement).
//!
//! [`Fixes::none`] reproduces the Python package `vaderSentiment` 3.3.2 exactly (pinned by frozen
//! vectors in `tests/data/vader_vectors.jsonl`); the default, [`Fixes::all`], departs from it on
//! purpose in the places listed on [`Fixes`], each with a test.

use crate::normalize::is_ascii;
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, OnceLock};

const B_INCR: f64 = 0.293;
const B_DECR: f64 = -0.293;
const C_INCR: f64 = 0.733;
const N_SCALAR: f64 = -0.74;
/// What a negated superlative keeps of its flipped valence ("not the worst" is faint praise).
const SUPERLATIVE_NEGATION: f64 = 0.3;
/// Weight of the pos−neg balance in the compound score (see [`Fixes::balance_weight`]).
const BALANCE_WEIGHT: f64 = 0.35;

/// The compound score at or above which a text is labelled positive (at or below its negative,
/// negative), as VADER recommends.
pub const LABEL_THRESHOLD: f64 = 0.05;

static VADER_LEXICON: &str = include_str!("../../data/vader/vader_lexicon.tsv");
static VADER_EMOJI: &str = include_str!("../../data/vader/emoji_utf8_lexicon.txt");

/// A small, fast hasher for the lexicon's string keys (FxHash). The lexicon is fixed once built,
/// so hostile input can only look keys up, never fill a bucket: no flooding risk.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(K);
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut buf = [0u8; 8];
            buf[..rest.len()].copy_from_slice(rest);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The three labels of a reaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// Compound score >= 0.05.
    Positive,
    /// Compound score strictly between -0.05 and 0.05.
    Neutral,
    /// Compound score <= -0.05.
    Negative,
}

impl Label {
    /// The label of a compound score, at VADER's thresholds of ±[`LABEL_THRESHOLD`].
    pub fn of(compound: f64) -> Label {
        if compound >= LABEL_THRESHOLD {
            Label::Positive
        } else if compound <= -LABEL_THRESHOLD {
            Label::Negative
        } else {
            Label::Neutral
        }
    }

    /// `"positive"`, `"neutral"` or `"negative"`, as written in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Positive => "positive",
            Label::Neutral => "neutral",
            Label::Negative => "negative",
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The reaction a text expresses: VADER's scores plus a length-normalised mean.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Reaction {
    /// Overall score in [-1, 1]: the normalised sum of the word valences (VADER's compound),
    /// blended with the pos−neg balance by default (see [`Fixes::balance_weight`]).
    pub compound: f64,
    /// Share of the text that is positive, in [0, 1].
    pub pos: f64,
    /// Share of the text that is neutral, in [0, 1].
    pub neu: f64,
    /// Share of the text that is negative, in [0, 1].
    pub neg: f64,
    /// Mean valence of the sentiment-bearing words, scaled to [-1, 1]: unlike the sum-based
    /// compound it does not saturate on long texts.
    pub mean: f64,
}

impl Reaction {
    /// The label of the compound score.
    pub fn label(&self) -> Label {
        Label::of(self.compound)
    }

    /// The reaction rounded as VADER prints it (compound and mean to 4 decimals, shares to 3),
    /// for stable output.
    pub fn rounded(&self) -> Reaction {
        let r = |x: f64, p: f64| (x * p).round() / p;
        Reaction {
            compound: r(self.compound, 1e4),
            pos: r(self.pos, 1e3),
            neu: r(self.neu, 1e3),
            neg: r(self.neg, 1e3),
            mean: r(self.mean, 1e4),
        }
    }

    /// The JSON object attached to output, `{"compound", "pos", "neu", "neg", "label"}`
    /// (rounded as [`Reaction::rounded`]).
    #[cfg(feature = "json")]
    pub fn to_json(&self) -> serde_json::Value {
        let r = self.rounded();
        serde_json::json!({
            "compound": r.compound,
            "pos": r.pos,
            "neu": r.neu,
            "neg": r.neg,
            "label": self.label().as_str(),
        })
    }
}

/// The deliberate departures from the Python package, each switchable so that a test can show
/// the complaint with the fix off and its absence with it on. [`Fixes::all`] is the default;
/// [`Fixes::none`] is `vaderSentiment` 3.3.2 exactly.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Fixes {
    /// Emoticons (lexicon entries that start with a non-letter: `:)`, `<3`) are never negated or
    /// boosted by earlier words: in "not bad :)" the `not` belongs to `bad`, not to `:)`.
    pub emoticon_scope: bool,
    /// A negation or booster reaches back only up to the nearest sentiment word: in
    /// "don't care don't care" the second `care` is negated once, not twice.
    pub negation_scope: bool,
    /// `kindly` before another word is a request marker ("kindly refund my order"), worth 0;
    /// it keeps its valence only at the end of a clause ("they treated us kindly").
    pub kindly_request: bool,
    /// A negated superlative keeps only 0.3 of its flipped valence: "not the worst" is faint
    /// praise, not +2.3.
    pub negated_superlative: bool,
    /// `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&#39;`, `&apos;` are decoded first (raw tweets carry
    /// them; `&lt;3` is a heart).
    pub html_entities: bool,
    /// `no` is not negated by an earlier `no`: "NO NO NO" is negative, not positive.
    pub repeated_no: bool,
    /// The special phrases ("bad ass", "the shit", "kiss of death") are checked at every word,
    /// not only when the word three back is not a sentiment word.
    pub idioms_anywhere: bool,
    /// Punctuation is stripped from short words too (`ok,` is `ok`), unless the token is itself a
    /// lexicon entry (an emoticon).
    pub short_token_punct: bool,
    /// "but" halves the words before it and raises by half those after it, by position (the
    /// Python package looks values up by equality and can scale the wrong one).
    pub but_positions: bool,
    /// Elongated words ("gooood", "sooo") are looked up with letter runs shortened to two, then
    /// one letter, when the word itself is not in the lexicon.
    pub elongation: bool,
    /// Weight `w` of the pos−neg balance in the compound: `(1 − w)·normalise(sum) + w·(pos − neg)`.
    /// The sum alone saturates on long texts; the balance is length-normalised. 0 is VADER.
    pub balance_weight: f64,
}

impl Fixes {
    /// Every fix on (the default).
    pub fn all() -> Fixes {
        Fixes {
            emoticon_scope: true,
            negation_scope: true,
            kindly_request: true,
            negated_superlative: true,
            html_entities: true,
            repeated_no: true,
            idioms_anywhere: true,
            short_token_punct: true,
            but_positions: true,
            elongation: true,
            balance_weight: BALANCE_WEIGHT,
        }
    }

    /// No fix: the Python package `vaderSentiment` 3.3.2, bug for bug.
    pub fn none() -> Fixes {
        Fixes {
            emoticon_scope: false,
            negation_scope: false,
            kindly_request: false,
            negated_superlative: false,
            html_entities: false,
            repeated_no: false,
            idioms_anywhere: false,
            short_token_punct: false,
            but_positions: false,
            elongation: false,
            balance_weight: 0.0,
        }
    }
}

impl Default for Fixes {
    fn default() -> Self {
        Fixes::all()
    }
}

/// Why a lexicon file could not be read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum LexiconError {
    /// A line has too few tab-separated fields.
    MissingField {
        /// 1-based line number.
        line: usize,
        /// 1-based column (in characters) where the missing field should start.
        column: usize,
        /// What was expected there.
        expected: &'static str,
    },
    /// A valence is not a finite number.
    BadNumber {
        /// 1-based line number.
        line: usize,
        /// 1-based column (in characters) of the field.
        column: usize,
        /// The field as written.
        text: String,
    },
    /// The file could not be read.
    Io(String),
    /// The file has no entries.
    Empty,
}

impl fmt::Display for LexiconError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LexiconError::MissingField { line, column, expected } => {
                write!(f, "line {line}, column {column}: missing field ({expected})")
            }
            LexiconError::BadNumber { line, column, text } => {
                write!(f, "line {line}, column {column}: not a number: {text:?}")
            }
            LexiconError::Io(e) => write!(f, "cannot read lexicon: {e}"),
            LexiconError::Empty => f.write_str("lexicon has no entries"),
        }
    }
}

impl std::error::Error for LexiconError {}

/// A sentiment lexicon: word valences on VADER's −4…+4 scale, and emoji descriptions.
#[derive(Clone, Debug, Default)]
pub struct Lexicon {
    /// Everything known about a lower-case word, in one look-up (its valence, whether it is a
    /// booster, a negation or a superlative), in an open-addressing table keyed by the
    /// lower-case bytes: the one look-up per word of the scorer's hot path.
    table: WordTable,
    entries: usize,
    emoji: FxMap<char, Box<str>>,
    /// One bit per Basic Multilingual Plane character: whether it is in `emoji` (so that
    /// text in other scripts is not looked up character by character).
    emoji_bmp: Vec<u64>,
    /// One bit per byte value: whether some character of `emoji` starts with it in UTF-8
    /// (a text is searched for emoji only at those bytes).
    emoji_lead: [u64; 4],
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct WordInfo {
    lex: Option<f64>,
    /// The booster increment (0: not a booster).
    booster: f64,
    negate: bool,
    superlative: bool,
    /// The word's [`sp`] id (0: none of the words the context rules name).
    sp: u8,
    /// Whether the word's first character is alphabetic (not an emoticon).
    alpha_first: bool,
}

/// Ids of the words the context rules compare with (`"but"`, `"kind" "of"`, the idioms, ...),
/// kept in the word table so that a rule compares two bytes, not two strings. 0 is no such
/// word (and every position outside the text).
mod sp {
    pub(super) const KIND: u8 = 1;
    pub(super) const OF: u8 = 2;
    pub(super) const BUT: u8 = 3;
    pub(super) const KINDLY: u8 = 4;
    pub(super) const NO: u8 = 5;
    pub(super) const OR: u8 = 6;
    pub(super) const NOR: u8 = 7;
    pub(super) const NEVER: u8 = 8;
    pub(super) const SO: u8 = 9;
    pub(super) const THIS: u8 = 10;
    pub(super) const WITHOUT: u8 = 11;
    pub(super) const DOUBT: u8 = 12;
    pub(super) const THE: u8 = 13;
    pub(super) const SHIT: u8 = 14;
    pub(super) const BOMB: u8 = 15;
    pub(super) const BAD: u8 = 16;
    pub(super) const ASS: u8 = 17;
    pub(super) const BUS: u8 = 18;
    pub(super) const STOP: u8 = 19;
    pub(super) const YEAH: u8 = 20;
    pub(super) const RIGHT: u8 = 21;
    pub(super) const BEATING: u8 = 22;
    pub(super) const HEART: u8 = 23;
    pub(super) const KISS: u8 = 24;
    pub(super) const DEATH: u8 = 25;
    pub(super) const TO: u8 = 26;
    pub(super) const DIE: u8 = 27;
    pub(super) const FOR: u8 = 28;
    pub(super) const JUST: u8 = 29;
    pub(super) const ENOUGH: u8 = 30;
    pub(super) const SORT: u8 = 31;
    pub(super) const LEAST: u8 = 32;
    pub(super) const AT: u8 = 33;
    pub(super) const VERY: u8 = 34;

    /// Every id with its word.
    pub(super) const WORDS: &[(&str, u8)] = &[
        ("kind", KIND),
        ("of", OF),
        ("but", BUT),
        ("kindly", KINDLY),
        ("no", NO),
        ("or", OR),
        ("nor", NOR),
        ("never", NEVER),
        ("so", SO),
        ("this", THIS),
        ("without", WITHOUT),
        ("doubt", DOUBT),
        ("the", THE),
        ("shit", SHIT),
        ("bomb", BOMB),
        ("bad", BAD),
        ("ass", ASS),
        ("bus", BUS),
        ("stop", STOP),
        ("yeah", YEAH),
        ("right", RIGHT),
        ("beating", BEATING),
        ("heart", HEART),
        ("kiss", KISS),
        ("death", DEATH),
        ("to", TO),
        ("die", DIE),
        ("for", FOR),
        ("just", JUST),
        ("enough", ENOUGH),
        ("sort", SORT),
        ("least", LEAST),
        ("at", AT),
        ("very", VERY),
    ];
}

/// Words ending in "est" that are not superlatives.
const NOT_SUPERLATIVE: &[&str] =
    &["arrest", "dishonest", "earnest", "honest", "interest", "molest", "protest"];

fn column_of(line: &str, byte: usize) -> usize {
    line[..byte].chars().count() + 1
}

impl Lexicon {
    /// The VADER 3.3.2 lexicon and emoji descriptions built into the crate (parsed once).
    pub fn vader() -> Arc<Lexicon> {
        static LEX: OnceLock<Arc<Lexicon>> = OnceLock::new();
        LEX.get_or_init(|| {
            let mut lex = Lexicon::from_vader_str(VADER_LEXICON)
                .expect("the built-in VADER lexicon parses (tested)");
            lex.set_emoji_str(VADER_EMOJI);
            Arc::new(lex)
        })
        .clone()
    }

    /// Reads a lexicon in VADER's format: one entry a line, `token \t valence [\t ...]`.
    pub fn from_vader_str(text: &str) -> Result<Lexicon, LexiconError> {
        let mut words: FxMap<Box<str>, f64> = FxMap::default();
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim();
            if line.is_empty() {
                continue;
            }
            let mut fields = line.split('\t');
            let word = fields.next().unwrap_or_default();
            let Some(value) = fields.next() else {
                return Err(LexiconError::MissingField {
                    line: n + 1,
                    column: line.chars().count() + 1,
                    expected: "a tab and a valence",
                });
            };
            let v = parse_valence(value, n + 1, column_of(line, word.len() + 1))?;
            words.insert(word.into(), v);
        }
        Lexicon::from_words(words)
    }

    /// Reads a lexicon in Pattern's TSV format (`form pos polarity subjectivity ...`, with a
    /// header line): polarity (−1…+1) is scaled to VADER's −4…+4; a form listed with several
    /// senses gets their mean.
    pub fn from_pattern_tsv(text: &str) -> Result<Lexicon, LexiconError> {
        let mut sums: FxMap<Box<str>, (f64, u32)> = FxMap::default();
        for (n, raw) in text.split('\n').enumerate() {
            let line = raw.trim_end_matches('\r');
            if line.trim().is_empty() || (n == 0 && line.starts_with("form\t")) {
                continue;
            }
            let mut fields = line.split('\t');
            let form = fields.next().unwrap_or_default().trim();
            let (Some(_pos), Some(pol)) = (fields.next(), fields.next()) else {
                return Err(LexiconError::MissingField {
                    line: n + 1,
                    column: line.chars().count() + 1,
                    expected: "pos and polarity columns",
                });
            };
            let start = line.len() - line[form.len()..].len();
            let col = column_of(line, (start + 1 + _pos.len() + 1).min(line.len()));
            let v = parse_valence(pol, n + 1, col)? * 4.0;
            let e = sums.entry(form.to_lowercase().into()).or_insert((0.0, 0));
            e.0 += v;
            e.1 += 1;
        }
        if sums.is_empty() {
            return Err(LexiconError::Empty);
        }
        Lexicon::from_words(sums.into_iter().map(|(k, (s, c))| (k, s / f64::from(c))).collect())
    }

    /// Reads a lexicon file, in Pattern's TSV format when its name ends in `.tsv` and its first
    /// line is Pattern's header, in VADER's format otherwise. VADER's emoji descriptions are
    /// kept (they are English words: they score only if the lexicon knows them).
    pub fn from_file(path: &std::path::Path) -> Result<Lexicon, LexiconError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LexiconError::Io(format!("{}: {e}", path.display())))?;
        let mut lex = if text.starts_with("form\t") {
            Lexicon::from_pattern_tsv(&text)?
        } else {
            Lexicon::from_vader_str(&text)?
        };
        lex.set_emoji_str(VADER_EMOJI);
        Ok(lex)
    }

    /// Replaces the emoji descriptions with a file in VADER's `emoji \t description` format
    /// (entries that are not a single character are ignored, as VADER does).
    pub fn set_emoji_str(&mut self, text: &str) {
        self.emoji.clear();
        self.emoji_bmp = vec![0; 1 << 10];
        self.emoji_lead = [0; 4];
        for line in text.split('\n') {
            let mut f = line.trim().split('\t');
            let (Some(e), Some(d)) = (f.next(), f.next()) else { continue };
            let mut cs = e.chars();
            if let (Some(c), None) = (cs.next(), cs.next()) {
                self.emoji.insert(c, d.into());
                let u = c as usize;
                if let Some(w) = self.emoji_bmp.get_mut(u >> 6) {
                    *w |= 1 << (u & 63);
                }
                let lead = c.encode_utf8(&mut [0; 4]).as_bytes()[0];
                self.emoji_lead[usize::from(lead >> 6)] |= 1 << (lead & 63);
            }
        }
    }

    /// The valence of a (lower-case) word, if the lexicon has it.
    pub fn valence(&self, word: &str) -> Option<f64> {
        self.table.get(word.as_bytes()).and_then(|i| i.lex)
    }

    /// Whether `text` holds a character `emoji` describes: decoded only where a byte can start
    /// one (`emoji_lead`).
    fn has_emoji(&self, text: &str) -> bool {
        let mut found = false;
        self.for_each_emoji(text, |_, _, _| {
            found = true;
            true
        });
        found
    }

    /// Calls `f(at, character, description)` for each character of `text` that `emoji`
    /// describes, in order, until `f` returns `true`. Decoded only where a byte can start one
    /// (`emoji_lead`): with no ASCII emoji, only lead bytes of multi-byte characters (>= 0xc0),
    /// found 8 bytes at a time.
    #[inline]
    fn for_each_emoji<'s>(&'s self, text: &str, mut f: impl FnMut(usize, char, &'s str) -> bool) {
        let b = text.as_bytes();
        // `true` to stop.
        let mut at = |i: usize| {
            if b.get(i).is_none_or(|&c| self.emoji_lead[usize::from(c >> 6)] >> (c & 63) & 1 == 0) {
                return false;
            }
            let Some(c) = text.get(i..).and_then(|t| t.chars().next()) else { return false };
            self.emoji(c).is_some_and(|d| f(i, c, d))
        };
        if self.emoji_lead[0] | self.emoji_lead[1] != 0 {
            // An ASCII emoji: every byte may start one.
            for i in 0..b.len() {
                if at(i) {
                    return;
                }
            }
            return;
        }
        let mut chunks = b.chunks_exact(8);
        for (k, c) in (&mut chunks).enumerate() {
            let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            let mut leads = x & (x << 1) & HI;
            while leads != 0 {
                if at(8 * k + leads.trailing_zeros() as usize / 8) {
                    return;
                }
                leads &= leads - 1;
            }
        }
        for i in b.len() - chunks.remainder().len()..b.len() {
            if at(i) {
                return;
            }
        }
    }

    /// VADER's emoji loop into `out` (each described character replaced by its description,
    /// after a space unless at the start or right after a space), the text between emoji
    /// copied whole instead of character by character; `false` (and `out` untouched) when
    /// `text` holds none. The general path's char loop is its oracle
    /// (`fast_paths_are_the_general_path`).
    fn replace_emoji(&self, text: &str, out: &mut String) -> bool {
        // Bytes of `text` already copied or replaced.
        let mut done = None::<usize>;
        let mut prev_space = true;
        self.for_each_emoji(text, |i, c, d| {
            let from = match done {
                Some(d) => d,
                None => {
                    out.clear();
                    0
                }
            };
            if let Some(run) = text.get(from..i).filter(|r| !r.is_empty()) {
                out.push_str(run);
                prev_space = run.ends_with(' ');
            }
            if !prev_space {
                out.push(' ');
            }
            out.push_str(d);
            prev_space = false;
            done = Some(i + c.len_utf8());
            false
        });
        let Some(from) = done else { return false };
        out.push_str(text.get(from..).unwrap_or_default());
        true
    }

    /// The description of an emoji, if `c` is one the lexicon describes.
    fn emoji(&self, c: char) -> Option<&str> {
        let u = c as usize;
        if u < 1 << 16 && self.emoji_bmp.get(u >> 6).is_none_or(|w| w >> (u & 63) & 1 == 0) {
            return None;
        }
        self.emoji.get(&c).map(|d| &**d)
    }

    /// Number of word entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// Whether the lexicon has no word entry.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    fn from_words(words: FxMap<Box<str>, f64>) -> Result<Lexicon, LexiconError> {
        if words.is_empty() {
            return Err(LexiconError::Empty);
        }
        let entries = words.len();
        let mut info: FxMap<Box<str>, WordInfo> = words
            .into_iter()
            .map(|(w, v)| {
                let superlative =
                    (w.len() > 4 && w.ends_with("est") && !NOT_SUPERLATIVE.contains(&&*w))
                        || matches!(&*w, "best" | "worst");
                (w, WordInfo { lex: Some(v), superlative, ..WordInfo::default() })
            })
            .collect();
        for (w, b) in BOOSTERS {
            info.entry((*w).into()).or_default().booster = *b;
        }
        for w in NEGATE {
            info.entry((*w).into()).or_default().negate = true;
        }
        for (w, id) in sp::WORDS {
            info.entry((*w).into()).or_default().sp = *id;
        }
        for (w, i) in info.iter_mut() {
            i.alpha_first = w.chars().next().is_some_and(char::is_alphabetic);
        }
        let table = WordTable::new(&info);
        Ok(Lexicon {
            table,
            entries,
            emoji: FxMap::default(),
            emoji_bmp: Vec::new(),
            emoji_lead: [0; 4],
        })
    }
}

/// Whether `w` contains `n't` (VADER's negation by contraction), without the substring
/// searcher's set-up cost on short words.
fn has_nt(w: &[u8]) -> bool {
    w.len() >= 3 && memchr_quote(w).is_some_and(|_| w.windows(3).any(|x| x == b"n't"))
}

/// [`has_nt`] of the word lower-cased, for a word whose only cased characters are ASCII:
/// `n't` in any case.
fn has_nt_any_case(w: &[u8]) -> bool {
    memchr_quote(w).is_some()
        && w.windows(3).any(|x| x[0] | 0x20 == b'n' && x[1] == b'\'' && x[2] | 0x20 == b't')
}

fn memchr_quote(w: &[u8]) -> Option<usize> {
    w.iter().position(|&b| b == b'\'')
}

/// The hash of a word's bytes for [`WordTable`]: FxHash over 8-byte chunks, the length
/// folded in (so that trailing zero bytes of the last chunk do not collide).
#[inline]
fn word_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(buf)).wrapping_mul(K);
    }
    h
}

/// Bits of [`WordTable`]'s miss filter (2^17 bits, 16 KiB).
const FILTER_BITS: u32 = 17;

/// The filter bit of a hash: bits 20..37 (the slot uses the top bits, the tag the low 32).
#[inline]
fn filter_bit(h: u64) -> usize {
    (h >> 20) as usize & ((1 << FILTER_BITS) - 1)
}

/// A fixed open-addressing (linear probing) table from lower-case word bytes to
/// [`WordInfo`], at most half full: a miss (most words of a post) usually ends at the first
/// empty slot after one hash, and a hit costs one hash compare and one `memcmp`. Built once
/// per lexicon; lookups never insert, so hostile input cannot degrade it.
#[derive(Clone, Debug, Default)]
struct WordTable {
    /// `(hash's low 32 bits, index + 1)`, 0 for an empty slot; a power-of-two length
    /// (8 bytes a slot: 128 KiB for VADER's 7,5xx entries).
    slots: Box<[(u32, u32)]>,
    /// One bit per [`FILTER_BITS`] hash value, set for the entries' hashes: most words of a
    /// post are not in the lexicon, and this 16 KiB map (in L1/L2 cache) rejects ~94% of them
    /// without touching `slots`.
    filter: Box<[u64]>,
    /// Key bytes of every entry, end to end, then 8 zero bytes (see [`WordTable::get_words`]).
    bytes: Vec<u8>,
    /// Per entry: where its key is in `bytes` and its info.
    entries: Vec<(u32, u32, WordInfo)>,
    /// The longest key, in bytes: longer words are not looked up.
    max_len: usize,
    /// `64 - log2(slots.len())`: the slot is the hash's top bits (the multiply mixes up).
    shift: u32,
}

impl WordTable {
    fn new(info: &FxMap<Box<str>, WordInfo>) -> WordTable {
        let cap = (info.len() * 2).next_power_of_two().max(2);
        let mut t = WordTable {
            slots: vec![(0u32, 0u32); cap].into_boxed_slice(),
            filter: vec![0u64; (1 << FILTER_BITS) / 64].into_boxed_slice(),
            bytes: Vec::new(),
            entries: Vec::with_capacity(info.len()),
            max_len: 0,
            shift: 64 - cap.trailing_zeros(),
        };
        // Sorted, so that the layout does not depend on the map's iteration order.
        let mut keys: Vec<(&Box<str>, &WordInfo)> = info.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, i) in keys {
            let k = k.as_bytes();
            let h = word_hash(k);
            let lo = t.bytes.len() as u32;
            t.bytes.extend_from_slice(k);
            t.entries.push((lo, t.bytes.len() as u32, *i));
            t.max_len = t.max_len.max(k.len());
            let mask = cap - 1;
            let mut s = (h >> t.shift) as usize;
            while t.slots[s].1 != 0 {
                s = (s + 1) & mask;
            }
            t.slots[s] = (h as u32, t.entries.len() as u32);
            let f = filter_bit(h);
            t.filter[f >> 6] |= 1 << (f & 63);
        }
        t.bytes.extend_from_slice(&[0; 8]);
        t
    }

    #[inline]
    fn get(&self, key: &[u8]) -> Option<&WordInfo> {
        if key.len() > self.max_len || self.slots.is_empty() {
            return None;
        }
        self.get_hashed(key, word_hash(key))
    }

    /// [`WordTable::get`] of a key no longer than `max_len`, its [`word_hash`] given.
    #[inline]
    fn get_hashed(&self, key: &[u8], h: u64) -> Option<&WordInfo> {
        self.probe(h, |lo, hi| self.bytes.get(lo..hi) == Some(key))
    }

    /// [`WordTable::get`] of a key no longer than `max_len` given as `len` bytes in
    /// zero-padded little-endian 8-byte words, its [`word_hash`] given: compared a word at a
    /// time.
    #[inline]
    fn get_words(&self, key: &[u64], len: usize, h: u64) -> Option<&WordInfo> {
        self.probe(h, |lo, hi| {
            hi - lo == len
                && key.iter().take(len.div_ceil(8)).enumerate().all(|(k, &w)| {
                    let p = lo + 8 * k;
                    // `bytes` ends with 8 zero bytes: every key's last word can be read whole.
                    let Some(b) = self.bytes.get(p..p + 8) else { return false };
                    let mut t =
                        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
                    let rest = len - 8 * k;
                    if rest < 8 {
                        t &= (1u64 << (8 * rest)) - 1;
                    }
                    t == w
                })
        })
    }

    /// The entry whose hash is `h` and whose key bytes `bytes[lo..hi]` pass `eq`.
    #[inline(always)]
    fn probe(&self, h: u64, eq: impl Fn(usize, usize) -> bool) -> Option<&WordInfo> {
        let f = filter_bit(h);
        if self.filter.get(f >> 6).is_none_or(|w| w >> (f & 63) & 1 == 0) {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut s = (h >> self.shift) as usize;
        loop {
            let (sh, idx) = *self.slots.get(s)?;
            if idx == 0 {
                return None;
            }
            if sh == h as u32 {
                let (lo, hi, ref info) = *self.entries.get(idx as usize - 1)?;
                if eq(lo as usize, hi as usize) {
                    return Some(info);
                }
            }
            s = (s + 1) & mask;
        }
    }
}

fn parse_valence(field: &str, line: usize, column: usize) -> Result<f64, LexiconError> {
    match field.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LexiconError::BadNumber { line, column, text: field.to_string() }),
    }
}

/// VADER's booster dictionary (its one-word entries; see [`booster2`] for the others).
const BOOSTERS: &[(&str, f64)] = &[
    ("absolutely", B_INCR),
    ("amazingly", B_INCR),
    ("awfully", B_INCR),
    ("completely", B_INCR),
    ("considerable", B_INCR),
    ("considerably", B_INCR),
    ("decidedly", B_INCR),
    ("deeply", B_INCR),
    ("effing", B_INCR),
    ("enormous", B_INCR),
    ("enormously", B_INCR),
    ("entirely", B_INCR),
    ("especially", B_INCR),
    ("exceptional", B_INCR),
    ("exceptionally", B_INCR),
    ("extreme", B_INCR),
    ("extremely", B_INCR),
    ("fabulously", B_INCR),
    ("flipping", B_INCR),
    ("flippin", B_INCR),
    ("frackin", B_INCR),
    ("fracking", B_INCR),
    ("fricking", B_INCR),
    ("frickin", B_INCR),
    ("frigging", B_INCR),
    ("friggin", B_INCR),
    ("fully", B_INCR),
    ("fuckin", B_INCR),
    ("fucking", B_INCR),
    ("fuggin", B_INCR),
    ("fugging", B_INCR),
    ("greatly", B_INCR),
    ("hella", B_INCR),
    ("highly", B_INCR),
    ("hugely", B_INCR),
    ("incredible", B_INCR),
    ("incredibly", B_INCR),
    ("intensely", B_INCR),
    ("major", B_INCR),
    ("majorly", B_INCR),
    ("more", B_INCR),
    ("most", B_INCR),
    ("particularly", B_INCR),
    ("purely", B_INCR),
    ("quite", B_INCR),
    ("really", B_INCR),
    ("remarkably", B_INCR),
    ("so", B_INCR),
    ("substantially", B_INCR),
    ("thoroughly", B_INCR),
    ("total", B_INCR),
    ("totally", B_INCR),
    ("tremendous", B_INCR),
    ("tremendously", B_INCR),
    ("uber", B_INCR),
    ("unbelievably", B_INCR),
    ("unusually", B_INCR),
    ("utter", B_INCR),
    ("utterly", B_INCR),
    ("very", B_INCR),
    ("almost", B_DECR),
    ("barely", B_DECR),
    ("hardly", B_DECR),
    ("kinda", B_DECR),
    ("kindof", B_DECR),
    ("kind-of", B_DECR),
    ("less", B_DECR),
    ("little", B_DECR),
    ("marginal", B_DECR),
    ("marginally", B_DECR),
    ("occasional", B_DECR),
    ("occasionally", B_DECR),
    ("partly", B_DECR),
    ("scarce", B_DECR),
    ("scarcely", B_DECR),
    ("slight", B_DECR),
    ("slightly", B_DECR),
    ("somewhat", B_DECR),
    ("sorta", B_DECR),
    ("sortof", B_DECR),
    ("sort-of", B_DECR),
];

/// VADER's negation words (a word containing "n't" negates too).
const NEGATE: &[&str] = &[
    "aint",
    "arent",
    "cannot",
    "cant",
    "couldnt",
    "darent",
    "didnt",
    "doesnt",
    "ain't",
    "aren't",
    "can't",
    "couldn't",
    "daren't",
    "didn't",
    "doesn't",
    "dont",
    "hadnt",
    "hasnt",
    "havent",
    "isnt",
    "mightnt",
    "mustnt",
    "neither",
    "don't",
    "hadn't",
    "hasn't",
    "haven't",
    "isn't",
    "mightn't",
    "mustn't",
    "neednt",
    "needn't",
    "never",
    "none",
    "nope",
    "nor",
    "not",
    "nothing",
    "nowhere",
    "oughtnt",
    "shant",
    "shouldnt",
    "uhuh",
    "wasnt",
    "werent",
    "oughtn't",
    "shan't",
    "shouldn't",
    "uh-uh",
    "wasn't",
    "weren't",
    "without",
    "wont",
    "wouldnt",
    "won't",
    "wouldn't",
    "rarely",
    "seldom",
    "despite",
];

/// The two-word boosters ("kind of"), which only the phrase check can see (by [`sp`] ids).
fn booster2(a: u8, b: u8) -> Option<f64> {
    match (a, b) {
        (sp::JUST, sp::ENOUGH) | (sp::KIND, sp::OF) | (sp::SORT, sp::OF) => Some(B_DECR),
        _ => None,
    }
}

/// The two-word special phrases ("the shit", "bad ass"), by [`sp`] ids.
fn special2(a: u8, b: u8) -> Option<f64> {
    match (a, b) {
        (sp::THE, sp::SHIT) | (sp::THE, sp::BOMB) => Some(3.0),
        (sp::BAD, sp::ASS) => Some(1.5),
        (sp::BUS, sp::STOP) => Some(0.0),
        (sp::YEAH, sp::RIGHT) => Some(-2.0),
        (sp::BEATING, sp::HEART) => Some(3.5),
        _ => None,
    }
}

/// The three-word special phrases ("kiss of death"), by [`sp`] ids.
fn special3(a: u8, b: u8, c: u8) -> Option<f64> {
    match (a, b, c) {
        (sp::KISS, sp::OF, sp::DEATH) => Some(-1.5),
        (sp::TO, sp::DIE, sp::FOR) => Some(3.0),
        _ => None,
    }
}

/// Python's `str.isupper`: at least one cased character and no lower-case one.
fn is_upper(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        return b.iter().any(u8::is_ascii_uppercase) && !b.iter().any(u8::is_ascii_lowercase);
    }
    s.chars().any(char::is_uppercase) && !s.chars().any(char::is_lowercase)
}

/// Per byte: [`SPACE`] if it is an ASCII white space of Python's `str.split()`, [`PUNCT`] if
/// ASCII punctuation. One load instead of range compares or a 128-bit shift: the tokenizer
/// asks both of every token's ends (about a tenth of the scorer's instructions before).
static BYTE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 128 {
        let b = c as u8;
        if matches!(b, b' ' | b'\t'..=b'\r' | 0x1c..=0x1f) {
            t[c] |= SPACE;
        }
        if b.is_ascii_punctuation() {
            t[c] |= PUNCT;
        }
        c += 1;
    }
    t
};
const SPACE: u8 = 1;
const PUNCT: u8 = 2;

/// [`is_py_space`] of an ASCII byte.
#[inline(always)]
fn is_ascii_py_space(c: u8) -> bool {
    BYTE_CLASS[c as usize] & SPACE != 0
}

/// `s` without ASCII punctuation at either end.
fn trim_ascii_punct(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b.iter().position(|c| !c.is_ascii_punctuation()).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !c.is_ascii_punctuation()).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// Whether `s` has three equal word characters in a row (what [`collapse_runs`] shortens).
fn has_run3(s: &str) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    if s.is_ascii() {
        return s.as_bytes().windows(3).any(|w| w[0] == w[1] && w[1] == w[2] && word(w[0] as char));
    }
    let mut it = s.chars();
    let (mut a, mut b) = match (it.next(), it.next()) {
        (Some(a), Some(b)) => (a, b),
        _ => return false,
    };
    for c in it {
        if a == b && b == c && word(c) {
            return true;
        }
        (a, b) = (b, c);
    }
    false
}

/// `u8::is_ascii_punctuation` by [`BYTE_CLASS`].
#[inline(always)]
fn is_punct(c: u8) -> bool {
    BYTE_CLASS[c as usize] & PUNCT != 0
}

/// Whether a UTF-8 lead byte can start a non-ASCII white space character (U+0085, U+00A0,
/// U+1680, U+2000…U+205F, U+3000; tested over every character).
#[inline]
fn unicode_space_lead(b: u8) -> bool {
    matches!(b, 0xc2 | 0xe1 | 0xe2 | 0xe3)
}

/// The length of the character at byte `i` of `text` when it is white space of
/// Python's `str.split()` ([`is_py_space`]), `None` otherwise.
#[inline]
fn space_len(text: &str, i: usize) -> Option<usize> {
    let c = text.get(i..)?.chars().next()?;
    is_py_space(c).then(|| c.len_utf8())
}

/// Python's `str.isspace` for `str.split()`: Unicode white space plus the four separators
/// U+001C…U+001F.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn decode_entities(text: &str, out: &mut String) {
    out.clear();
    let mut rest = text;
    while let Some(p) = rest.find('&') {
        out.push_str(&rest[..p]);
        rest = &rest[p..];
        let table: [(&str, char); 6] = [
            ("&amp;", '&'),
            ("&lt;", '<'),
            ("&gt;", '>'),
            ("&quot;", '"'),
            ("&#39;", '\''),
            ("&apos;", '\''),
        ];
        match table.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
}

/// Collapses runs of three or more equal word characters to `keep` (Python `(\w)\1\1+`).
fn collapse_runs(s: &str, keep: usize, out: &mut String) {
    out.clear();
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        let mut n = 1;
        while it.peek() == Some(&c) {
            it.next();
            n += 1;
        }
        let word_char = c.is_alphanumeric() || c == '_';
        let times = if n >= 3 && word_char { keep } else { n };
        for _ in 0..times {
            out.push(c);
        }
    }
}

/// Flags of a [`Tok`]: the word has a valence.
const F_LEX: u8 = 1;
/// The word is in capitals (Python's `isupper`).
const F_UPPER: u8 = 2;
/// The word negates (a negation word, or one holding `n't`).
const F_NEGATE: u8 = 4;
/// The word is a superlative.
const F_SUPERLATIVE: u8 = 8;
/// The word's first character is alphabetic (not an emoticon).
const F_ALPHA: u8 = 16;

/// One word of a text, looked up once: everything the rules read of it, the context rules
/// included (they look back up to three words and compare [`sp`] ids, never strings).
#[derive(Clone, Copy, Default)]
struct Tok {
    /// The valence (with [`F_LEX`]; 0 without).
    lex: f64,
    /// The booster increment (0: not a booster).
    booster: f64,
    /// The word's [`sp`] id.
    sp: u8,
    /// [`F_LEX`], [`F_UPPER`], [`F_NEGATE`], [`F_SUPERLATIVE`], [`F_ALPHA`].
    flags: u8,
}

impl Tok {
    #[inline(always)]
    fn new(info: Option<&WordInfo>, upper: bool, nt: bool) -> Tok {
        let bit = |on: bool, flag: u8| if on { flag } else { 0 };
        match info {
            None => Tok { flags: bit(upper, F_UPPER) | bit(nt, F_NEGATE), ..Tok::default() },
            Some(i) => Tok {
                lex: i.lex.unwrap_or(0.0),
                booster: i.booster,
                sp: i.sp,
                flags: bit(upper, F_UPPER)
                    | bit(i.lex.is_some(), F_LEX)
                    | bit(i.negate || nt, F_NEGATE)
                    | bit(i.superlative, F_SUPERLATIVE)
                    | bit(i.alpha_first, F_ALPHA),
            },
        }
    }
}

/// The longest word lower-cased on the stack, in 8-byte words (longer ones go through a
/// buffer).
const KEY_WORDS: usize = 8;

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Whether a UTF-8 lead byte starts a character without case: one that lower-cases to itself
/// and is neither upper- nor lower-case (Hebrew, Arabic and the scripts up to U+07FF, Indic
/// and Thai in U+0800…U+0FFF, CJK, kana and Hangul in U+3000…U+9FFF and U+B000…U+DFFF).
/// Tested exhaustively (`caseless_lead_bytes_start_caseless_characters`). A word of ASCII and
/// such characters lower-cases byte by byte, keeping its length.
#[inline]
fn caseless_lead(b: u8) -> bool {
    matches!(b, 0xd7..=0xe0 | 0xe3..=0xe9 | 0xeb..=0xed)
}

/// A word lower-cased into zero-padded little-endian 8-byte words on the stack (built in
/// registers and stored whole: storing bytes and loading words would stall store forwarding),
/// with what the one pass over its bytes tells. Its bytes are ASCII or in characters without
/// case ([`caseless_lead`]): only `A`…`Z` change.
#[derive(Clone, Copy)]
struct AsciiKey {
    len: usize,
    /// [`word_hash`] of the lower-case bytes (the zero padding is the hash's own).
    hash: u64,
    /// Upper-case and lower-case ASCII letters seen (a high bit per byte).
    up: u64,
    low: u64,
    /// Whether the word holds `'` (and so may hold `n't`).
    apostrophe: bool,
}

impl AsciiKey {
    #[inline(always)]
    fn empty() -> AsciiKey {
        AsciiKey { len: 0, hash: 0, up: 0, low: 0, apostrophe: false }
    }

    /// Adds the next `m` (1…8) bytes, `x` (zero above them), lower-cased into `slot`.
    #[inline(always)]
    fn add(&mut self, x: u64, m: usize, slot: &mut u64) {
        // Per byte, on the low 7 bits (no carry crosses bytes): the high bit of
        // `x + (0x80 - a)` is set when the byte is >= a. Bytes >= 0x80 are no letters.
        let x7 = x & !HI;
        let ascii = !x & HI;
        let u = (x7 + 0x3f * LO) & !(x7 + 0x25 * LO) & ascii; // 'A'..='Z'
        self.up |= u;
        self.low |= (x7 + 0x1f * LO) & !(x7 + 0x05 * LO) & ascii; // 'a'..='z'
        let q = x ^ (u64::from(b'\'') * LO); // a zero byte where `'` is
        self.apostrophe |= q.wrapping_sub(LO) & !q & HI != 0;
        *slot = x | (u >> 2);
        self.len += m;
    }

    /// Keeps the first `k` (1…`len`) bytes: those past them zeroed in `buf`, as the hash's
    /// padding. The flags stay those of every byte added: `up` and `low` do not change when
    /// the dropped bytes are punctuation; `apostrophe` is a candidate that [`has_nt`]
    /// decides on the kept bytes.
    #[inline(always)]
    fn truncate(&mut self, k: usize, buf: &mut [u64; KEY_WORDS]) {
        if k < self.len {
            if let Some(last) = buf.get_mut((k.max(1) - 1) / 8) {
                if !k.is_multiple_of(8) {
                    *last &= (1u64 << (8 * (k % 8))) - 1;
                }
            }
            self.len = k;
        }
    }

    /// Ends the key: its [`word_hash`], from `buf` (the lower-case words `add` stored).
    #[inline(always)]
    fn finish(&mut self, buf: &[u64; KEY_WORDS]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut h = (self.len as u64).wrapping_mul(K);
        for &x in buf.iter().take(self.len.div_ceil(8)) {
            h = (h.rotate_left(5) ^ x).wrapping_mul(K);
        }
        self.hash = h;
    }

    /// Lower-cases `w` (ASCII and caseless characters) into `buf`; `None` when it is longer.
    #[inline(always)]
    fn new(w: &[u8], buf: &mut [u64; KEY_WORDS]) -> Option<AsciiKey> {
        if w.len() > KEY_WORDS * 8 {
            return None;
        }
        let mut key = AsciiKey::empty();
        for (slot, chunk) in buf.iter_mut().zip(w.chunks(8)) {
            // A whole chunk in one load; the last, shorter one byte by byte.
            let x = match <[u8; 8]>::try_from(chunk) {
                Ok(c) => u64::from_le_bytes(c),
                Err(_) => {
                    let mut x = 0u64;
                    for (k, &c) in chunk.iter().enumerate() {
                        x |= u64::from(c) << (8 * k);
                    }
                    x
                }
            };
            key.add(x, chunk.len(), slot);
        }
        key.finish(buf);
        Some(key)
    }

    /// Three equal bytes in a row (of the lower-case bytes in `buf`: a superset of the
    /// word's own runs), or more than 8 bytes: a candidate for [`has_run3`], which decides.
    /// Asked only when the elongation retry may apply (a word without a valence), not for
    /// every word as it is keyed.
    #[inline(always)]
    fn run3(&self, buf: &[u64; KEY_WORDS]) -> bool {
        if self.len > 8 {
            return true;
        }
        // A zero byte of `g` at j is a run starting at j (the len - 2 starts that fit; the
        // zero padding past the word is masked off).
        let x = buf[0];
        let g = (x ^ (x >> 8)) | (x ^ (x >> 16)) | (!0u64 << (8 * self.len.saturating_sub(2)));
        g.wrapping_sub(LO) & !g & HI != 0
    }

    /// Python's `isupper` of the word.
    #[inline(always)]
    fn upper(&self) -> bool {
        self.up != 0 && self.low == 0
    }

    /// The word's entry in `table`, `buf` its words.
    #[inline]
    fn get<'t>(&self, table: &'t WordTable, buf: &[u64; KEY_WORDS]) -> Option<&'t WordInfo> {
        if self.len > table.max_len {
            return None;
        }
        table.get_words(buf, self.len, self.hash)
    }

    /// The word as a [`Tok`], `info` its entry.
    #[inline(always)]
    fn tok(&self, info: Option<&WordInfo>, buf: &[u64; KEY_WORDS]) -> Tok {
        let nt = self.apostrophe && {
            let mut b = [0u8; KEY_WORDS * 8];
            for (d, w) in b.chunks_exact_mut(8).zip(buf) {
                d.copy_from_slice(&w.to_le_bytes());
            }
            has_nt(&b[..self.len])
        };
        Tok::new(info, self.upper(), nt)
    }
}

/// The words of a text and the buffers their slow paths use.
#[derive(Default)]
struct Words {
    toks: Vec<Tok>,
    /// Whether some word has a valence.
    any_lex: bool,
    /// The indices of the words with a valence, ascending: only they can have a non-zero
    /// entry in `sent`, so the later passes visit them instead of every word.
    lex: Vec<u32>,
    /// Words in capitals ([`F_UPPER`]).
    upper: usize,
    runs: String,
    lower: String,
    tmp: String,
}

impl Words {
    #[inline(always)]
    fn push(&mut self, t: Tok) {
        if t.flags & F_LEX != 0 {
            self.any_lex = true;
            self.lex.push(self.toks.len() as u32);
        }
        self.upper += usize::from(t.flags & F_UPPER != 0);
        self.toks.push(t);
    }
}

#[derive(Default)]
struct Scratch {
    work: String,
    work2: String,
    words: Words,
    sent: Vec<f64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A VADER scorer over one lexicon.
#[derive(Clone, Debug)]
pub struct SentimentScorer {
    lexicon: Arc<Lexicon>,
    fixes: Fixes,
}

impl Default for SentimentScorer {
    fn default() -> Self {
        SentimentScorer::new()
    }
}

/// The [`sp`] id of word `i`, 0 outside the text (so that phrases never match there).
#[inline]
fn sp_at(t: &[Tok], i: isize) -> u8 {
    if i < 0 {
        return 0;
    }
    t.get(i as usize).map_or(0, |t| t.sp)
}

/// Whether word `i` has a valence.
#[inline]
fn has_lex(t: &[Tok], i: usize) -> bool {
    t.get(i).is_some_and(|t| t.flags & F_LEX != 0)
}

/// Whether word `i` negates (false outside the text).
#[inline]
fn negates(t: &[Tok], i: isize) -> bool {
    i >= 0 && t.get(i as usize).is_some_and(|t| t.flags & F_NEGATE != 0)
}

/// The reaction of `n` words none of which has a valence: what [`SentimentScorer::score_valence`]
/// gives for `n` zeros (compound, pos, neg and mean 0; neu n/n), all zeros without a word.
fn neutral_of(n: usize) -> Reaction {
    if n == 0 {
        Reaction::default()
    } else {
        Reaction { neu: 1.0, ..Reaction::default() }
    }
}

impl SentimentScorer {
    /// The built-in VADER lexicon with every fix on.
    pub fn new() -> SentimentScorer {
        SentimentScorer { lexicon: Lexicon::vader(), fixes: Fixes::all() }
    }

    /// The built-in VADER lexicon scored exactly as the Python package `vaderSentiment` 3.3.2.
    pub fn python_compatible() -> SentimentScorer {
        SentimentScorer { lexicon: Lexicon::vader(), fixes: Fixes::none() }
    }

    /// A scorer over another lexicon, with every fix on.
    pub fn with_lexicon(lexicon: Arc<Lexicon>) -> SentimentScorer {
        SentimentScorer { lexicon, fixes: Fixes::all() }
    }

    /// The same scorer with other fixes.
    pub fn with_fixes(mut self, fixes: Fixes) -> SentimentScorer {
        self.fixes = fixes;
        self
    }

    /// The fixes in force.
    pub fn fixes(&self) -> Fixes {
        self.fixes
    }

    /// The lexicon in use.
    pub fn lexicon(&self) -> &Arc<Lexicon> {
        &self.lexicon
    }

    /// Scores a text. Never panics; an empty or wordless text scores all zeros.
    pub fn score(&self, text: &str) -> Reaction {
        self.run(text, true, true).0
    }

    /// The full scorer, without the neutral shortcut.
    #[cfg(test)]
    fn score_full(&self, text: &str) -> Reaction {
        self.run(text, false, true).0
    }

    /// The scorer through its general paths only: every token of every text through
    /// [`SentimentScorer::push_plain_token`] (the oracle of the tokenizer's fast paths).
    #[cfg(test)]
    fn score_general(&self, text: &str) -> Reaction {
        self.run(text, true, false).0
    }

    /// The neutral shortcut alone: `Some` (the exact result of the full scorer) when no word
    /// of `text` has a valence, `None` when the rules must run.
    #[cfg(test)]
    fn neutral(&self, text: &str) -> Option<Reaction> {
        let (r, decided) = self.run(text, true, true);
        decided.then_some(r)
    }

    /// The reaction, and whether the neutral shortcut gave it (with `shortcut`); `fast`: the
    /// tokenizer's fast paths (off: the general path alone, for tests).
    fn run(&self, text: &str, shortcut: bool, fast: bool) -> (Reaction, bool) {
        SCRATCH.with(|s| match s.try_borrow_mut() {
            Ok(mut s) => self.score_with(text, &mut s, shortcut, fast),
            // Re-entered from the same thread (not possible today): use a fresh scratch.
            Err(_) => self.score_with(text, &mut Scratch::default(), shortcut, fast),
        })
    }

    /// One pass splits the text and looks each word up once ([`SentimentScorer::tokenize`]);
    /// the rules then read the words' [`Tok`]s only.
    ///
    /// The neutral shortcut (`shortcut`): a word's entry in `sent` is 0.0 unless the word has a
    /// valence (boosters and "kind of" push 0.0, `valence` returns 0.0 without one), and "but"
    /// only scales entries; with every entry 0.0, `score_valence` gives exactly
    /// [`neutral_of`] (punctuation amplifies a non-zero sum only). So when no word has a
    /// valence, the rules are skipped. `neutral_pass_is_the_full_scorer` compares both, bit
    /// for bit.
    fn score_with(
        &self,
        text: &str,
        s: &mut Scratch,
        shortcut: bool,
        fast: bool,
    ) -> (Reaction, bool) {
        let f = &self.fixes;
        let Scratch { work, work2, words, sent } = s;
        // 1. HTML entities, then emoji → descriptions (VADER's loop: each described character
        // replaced by its description, after a space unless at the start or after a space).
        let mut cur: &str = text;
        if f.html_entities && memchr::memchr(b'&', cur.as_bytes()).is_some() {
            decode_entities(cur, work2);
            cur = work2;
        }
        // Asked once (the emoji check and the tokenizer's choice), again only if the emoji
        // descriptions replaced the text.
        let mut ascii = is_ascii(cur.as_bytes());
        if !fast {
            // The general path: VADER's loop, char by char (the oracle of `replace_emoji`).
            if !cur.is_ascii() && self.lexicon.has_emoji(cur) {
                work.clear();
                let mut prev_space = true;
                for c in cur.chars() {
                    if let Some(d) = self.lexicon.emoji(c) {
                        if !prev_space {
                            work.push(' ');
                        }
                        work.push_str(d);
                        prev_space = false;
                    } else {
                        work.push(c);
                        prev_space = c == ' ';
                    }
                }
                cur = work;
            }
        } else if !ascii && self.lexicon.replace_emoji(cur, work) {
            cur = work;
            ascii = is_ascii(cur.as_bytes());
        }

        // 2. Tokens: split on white space, strip punctuation around words, look each up.
        self.tokenize(cur, ascii, words, fast);
        let toks = &words.toks[..];
        let n = toks.len();
        if shortcut && !words.any_lex {
            return (neutral_of(n), true);
        }
        let upper_count = words.upper;
        let cap_diff = n > upper_count && upper_count > 0;

        // 3. Valence of each word: 0.0 but for words with a valence (`words.lex`), unless a
        // booster or the "kind" of "kind of".
        sent.clear();
        sent.resize(n, 0.0);
        let lex = &words.lex[..];
        for &i in lex {
            let i = i as usize;
            let t = &toks[i];
            if t.booster != 0.0 || (t.sp == sp::KIND && sp_at(toks, i as isize + 1) == sp::OF) {
                continue;
            }
            sent[i] = self.valence(toks, i, cap_diff);
        }

        // 4. "but".
        if let Some(bi) = toks.iter().position(|t| t.sp == sp::BUT) {
            if f.but_positions {
                // Zero entries stay zero: only the words with a valence are scaled.
                for &k in lex {
                    let k = k as usize;
                    if k < bi {
                        sent[k] *= 0.5;
                    } else if k > bi {
                        sent[k] *= 1.5;
                    }
                }
            } else {
                // vaderSentiment 3.3.2: each value is found again by equality (list.index).
                for k in 0..sent.len() {
                    let v = sent[k];
                    let si = sent.iter().position(|&x| x == v).unwrap_or(k);
                    if si < bi {
                        sent[si] = v * 0.5;
                    } else if si > bi {
                        sent[si] = v * 1.5;
                    }
                }
            }
        }
        (self.score_valence(sent, lex, cur), false)
    }

    /// The tokens of `text` as Python's `str.split()` gives them (an ASCII text split byte by
    /// byte, any other on Unicode white space), each turned into its word and looked up.
    /// `fast`: through [`SentimentScorer::tokenize_fast`] (off: every token through the
    /// general path, [`SentimentScorer::tokenize_unicode`], for tests). `ascii`: whether
    /// `text` is ASCII.
    fn tokenize(&self, text: &str, ascii: bool, w: &mut Words, fast: bool) {
        w.toks.clear();
        w.any_lex = false;
        w.lex.clear();
        w.upper = 0;
        if !fast {
            self.tokenize_unicode(text, w);
        } else if ascii {
            self.tokenize_fast::<true>(text, w);
        } else {
            self.tokenize_fast::<false>(text, w);
        }
    }

    /// [`SentimentScorer::tokenize`] of any text: bytes that may start a non-ASCII white space
    /// character ([`unicode_space_lead`]) are decoded, the others are not.
    fn tokenize_unicode(&self, text: &str, w: &mut Words) {
        let b = text.as_bytes();
        let (mut i, mut start, mut ascii) = (0, None, true);
        while let Some(&c) = b.get(i) {
            let (space, len) = if c < 0x80 {
                (is_ascii_py_space(c), 1)
            } else if unicode_space_lead(c) {
                match text.get(i..).and_then(|t| t.chars().next()) {
                    Some(ch) => (is_py_space(ch), ch.len_utf8()),
                    None => (false, 1),
                }
            } else {
                (false, 1)
            };
            if space {
                if let Some(t) = start.take().and_then(|s| text.get(s..i)) {
                    self.push_plain_token(t, ascii, w);
                }
            } else if start.is_none() {
                (start, ascii) = (Some(i), true);
            }
            ascii &= c < 0x80;
            i += len;
        }
        if let Some(t) = start.and_then(|s| text.get(s..)) {
            self.push_plain_token(t, ascii, w);
        }
    }

    /// [`SentimentScorer::tokenize`]: each ASCII token is found, lower-cased, hashed and
    /// flagged 8 bytes at a time in one pass; a token with trailing punctuation is keyed
    /// with and without it from the same pass (the word chosen as in
    /// [`SentimentScorer::push_token`]). A token with punctuation first, a control character,
    /// more than 64 bytes or (`ASCII` false: a text with other characters) a byte >= 0x80 goes
    /// to [`SentimentScorer::push_plain_token`]. In a non-ASCII text the white space between
    /// tokens may be Unicode's: decoded only at the bytes that may start one
    /// ([`unicode_space_lead`]).
    fn tokenize_fast<const ASCII: bool>(&self, text: &str, w: &mut Words) {
        let b = text.as_bytes();
        let n = b.len();
        let table = &self.lexicon.table;
        let elongation = self.fixes.elongation;
        let mut i = 0;
        // The lower-case words of the token in hand (those past its length are stale).
        let mut buf = [0u64; KEY_WORDS];
        loop {
            loop {
                match b.get(i) {
                    Some(&c) if is_ascii_py_space(c) => i += 1,
                    Some(&c) if !ASCII && unicode_space_lead(c) => match space_len(text, i) {
                        Some(len) => i += len,
                        None => break,
                    },
                    _ => break,
                }
            }
            let start = i;
            let Some(&first) = b.get(start) else { break };
            let mut key = AsciiKey::empty();
            let mut fast = !is_punct(first);
            // Whether the loop saw the token end: at a white space byte (or past the text).
            let mut ended = false;
            for slot in &mut buf[..if fast { KEY_WORDS } else { 0 }] {
                // The next 8 bytes, spaces past the end.
                let x = match b.get(i..i + 8) {
                    Some(c) => u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
                    None => {
                        let mut c = [b' '; 8];
                        for (d, s) in c.iter_mut().zip(&b[i.min(n)..]) {
                            *d = *s;
                        }
                        u64::from_le_bytes(c)
                    }
                };
                // Bytes <= 0x20: white space, or a control character (rare: slow path); in a
                // non-ASCII text also bytes >= 0x80 (the slow path). Per byte on the low 7
                // bits, no carry crosses bytes.
                let stop =
                    if ASCII { !(x + 0x5f * LO) & HI } else { (!((x & !HI) + 0x5f * LO) | x) & HI };
                if stop == 0 {
                    key.add(x, 8, slot);
                    i += 8;
                    continue;
                }
                let m = stop.trailing_zeros() as usize / 8;
                if !is_ascii_py_space((x >> (8 * m)) as u8) {
                    fast = false;
                    break;
                }
                if m > 0 {
                    key.add(x & ((1u64 << (8 * m)) - 1), m, slot);
                    i += m;
                }
                ended = true;
                break;
            }
            // The token's end (past the bytes read when the fast path gave up), and whether
            // it is ASCII (the bytes before `i` are).
            let mut ascii = true;
            if !fast || !ended || key.len == 0 {
                if ASCII {
                    while b.get(i).is_some_and(|&c| !is_ascii_py_space(c)) {
                        i += 1;
                    }
                } else {
                    while let Some(&c) = b.get(i) {
                        if c < 0x80 {
                            if is_ascii_py_space(c) {
                                break;
                            }
                        } else {
                            if unicode_space_lead(c) && space_len(text, i).is_some() {
                                break;
                            }
                            ascii = false;
                        }
                        i += 1;
                    }
                }
                fast = false;
            }
            let Some(token) = text.get(start..i) else { break };
            if fast {
                let tb = token.as_bytes();
                // The word: the token without its trailing punctuation (none leads).
                let k = match tb.last() {
                    Some(&c) if !is_punct(c) => tb.len(), // most tokens: no loop
                    _ => tb.iter().rposition(|&c| !is_punct(c)).map_or(0, |p| p + 1),
                };
                if k == tb.len() || k > 2 {
                    key.truncate(k, &mut buf);
                    key.finish(&buf);
                    let info = key.get(table, &buf);
                    let retry = elongation
                        && info.is_none_or(|i| i.lex.is_none())
                        && key.run3(&buf)
                        && token.get(..k).is_some_and(has_run3);
                    if !retry {
                        w.push(key.tok(info, &buf));
                        continue;
                    }
                } else {
                    self.push_short_punct_token(key, &mut buf, &tb[..k], w);
                    continue;
                }
            }
            self.push_plain_token(token, ascii, w);
        }
    }

    /// [`SentimentScorer::push_token`] of an ASCII token of a word of 1 or 2 bytes (`word`)
    /// and trailing punctuation (`to,` `a...`), `key` the token's (not finished): the token
    /// itself unless (`short_token_punct`) the word is letters and the token has no valence.
    /// No run of three fits in 2 bytes. Out of line: inlined, it slowed the common token.
    #[inline(never)]
    fn push_short_punct_token(
        &self,
        mut key: AsciiKey,
        buf: &mut [u64; KEY_WORDS],
        word: &[u8],
        w: &mut Words,
    ) {
        let table = &self.lexicon.table;
        key.finish(buf);
        let info = key.get(table, buf);
        if self.fixes.short_token_punct
            && word.iter().all(u8::is_ascii_alphabetic)
            && info.is_none_or(|i| i.lex.is_none())
        {
            key.truncate(word.len(), buf);
            key.finish(buf);
            let info = key.get(table, buf);
            w.push(key.tok(info, buf));
        } else {
            w.push(key.tok(info, buf));
        }
    }

    /// [`SentimentScorer::push_token`], the common case first: a token of ASCII and
    /// caseless characters ([`caseless_lead`]) without punctuation at either end, whose word
    /// is the token, lower-cased byte by byte, flagged and looked up in one pass (the
    /// elongation retry, when it may apply, reuses the look-up). `ascii`: the token is ASCII.
    #[inline]
    fn push_plain_token(&self, token: &str, ascii: bool, w: &mut Words) {
        let b = token.as_bytes();
        let plain = (ascii || b.iter().all(|&c| c < 0xc0 || caseless_lead(c)))
            && b.first().is_some_and(|c| !c.is_ascii_punctuation())
            && b.last().is_some_and(|c| !c.is_ascii_punctuation());
        if plain {
            let mut buf = [0u64; KEY_WORDS];
            // Longer than any entry: not looked up (caseless: lower-casing keeps the length).
            let fits = b.len() <= self.lexicon.table.max_len;
            let key = if fits { AsciiKey::new(b, &mut buf) } else { None };
            if let Some(key) = key {
                let info = key.get(&self.lexicon.table, &buf);
                // A run of equal bytes is a run of equal characters only in ASCII.
                let retry = self.fixes.elongation
                    && info.is_none_or(|i| i.lex.is_none())
                    && (!ascii || key.run3(&buf))
                    && has_run3(token);
                if !retry {
                    w.push(key.tok(info, &buf));
                    return;
                }
            } else if token.len() > self.lexicon.table.max_len
                && !(self.fixes.elongation && has_run3(token))
            {
                // Lower-casing keeps the length: no entry. Case is in the ASCII letters only.
                let upper =
                    b.iter().any(u8::is_ascii_uppercase) && !b.iter().any(u8::is_ascii_lowercase);
                w.push(Tok::new(None, upper, has_nt_any_case(b)));
                return;
            }
        } else if ascii && self.push_ascii_punct_token(token, w) {
            return;
        }
        self.push_token(token, w);
    }

    /// [`SentimentScorer::push_token`] of an ASCII token with punctuation at an end, its
    /// stripped form and the token itself looked up at most once each; `false` (nothing
    /// pushed) when the slow path must decide (a run of three, a word over 64 bytes).
    fn push_ascii_punct_token(&self, token: &str, w: &mut Words) -> bool {
        let f = &self.fixes;
        let table = &self.lexicon.table;
        let stripped = trim_ascii_punct(token);
        let mut sbuf = [0u64; KEY_WORDS];
        let mut tbuf = [0u64; KEY_WORDS];
        let Some(skey) = AsciiKey::new(stripped.as_bytes(), &mut sbuf) else { return false };
        let sinfo = skey.get(table, &sbuf);
        if f.elongation
            && sinfo.is_none_or(|i| i.lex.is_none())
            && skey.run3(&sbuf)
            && has_run3(stripped)
        {
            return false;
        }
        // The choice of `push_token`, with `lex_get(token)` from the token's own key.
        let mut tkey = None;
        // `stripped.len() > 2` first: the token's own look-up only matters for shorter words.
        let stripped_word = stripped.len() == token.len()
            || stripped.len() > 2
            || (f.short_token_punct
                && !stripped.is_empty()
                && stripped.bytes().all(|c| c.is_ascii_alphabetic())
                && {
                    let Some(k) = AsciiKey::new(token.as_bytes(), &mut tbuf) else { return false };
                    let none = k.get(table, &tbuf).is_none_or(|i| i.lex.is_none());
                    tkey = Some(k);
                    none
                });
        if stripped_word {
            w.push(skey.tok(sinfo, &sbuf));
            return true;
        }
        let tkey = match tkey {
            Some(k) => k,
            None => match AsciiKey::new(token.as_bytes(), &mut tbuf) {
                Some(k) => k,
                None => return false,
            },
        };
        w.push(tkey.tok(tkey.get(table, &tbuf), &tbuf));
        true
    }

    /// Picks the word of a token as VADER does (punctuation stripped or kept, elongation
    /// collapsed) and pushes it.
    fn push_token(&self, token: &str, w: &mut Words) {
        let f = &self.fixes;
        let lex = &self.lexicon;
        let ascii = token.is_ascii();
        // Bytes of other characters are no ASCII punctuation: trimming bytes trims characters.
        let stripped = trim_ascii_punct(token);
        if f.elongation && has_run3(stripped) && lex_get(lex, stripped, &mut w.tmp).is_none() {
            let mut runs = std::mem::take(&mut w.runs);
            let mut found = false;
            for keep in [2, 1] {
                collapse_runs(stripped, keep, &mut runs);
                if runs != stripped && lex_get(lex, &runs, &mut w.tmp).is_some() {
                    found = true;
                    break;
                }
            }
            if found {
                self.push_word(&runs, w);
            }
            w.runs = runs;
            if found {
                return;
            }
        }
        let word = if stripped.len() == token.len() {
            token
        } else if f.short_token_punct
            && !stripped.is_empty()
            && stripped.chars().all(char::is_alphabetic)
            && lex_get(lex, token, &mut w.tmp).is_none()
        {
            stripped
        } else if (if ascii { stripped.len() } else { stripped.chars().count() }) <= 2 {
            token
        } else {
            stripped
        };
        self.push_word(word, w);
    }

    /// Pushes `word` lower-cased and looked up.
    fn push_word(&self, word: &str, w: &mut Words) {
        if word.is_ascii() {
            let mut buf = [0u64; KEY_WORDS];
            if let Some(key) = AsciiKey::new(word.as_bytes(), &mut buf) {
                w.push(key.tok(key.get(&self.lexicon.table, &buf), &buf));
                return;
            }
        }
        let mut lower = std::mem::take(&mut w.lower);
        lower.clear();
        let upper = push_lower_upper(word, &mut lower);
        let b = lower.as_bytes();
        w.push(Tok::new(self.lexicon.table.get(b), upper, has_nt(b)));
        w.lower = lower;
    }

    fn valence(&self, t: &[Tok], i: usize, cap_diff: bool) -> f64 {
        let f = &self.fixes;
        let Some(&tok) = t.get(i).filter(|t| t.flags & F_LEX != 0) else { return 0.0 };
        let lexv = tok.lex;
        let n = t.len();
        let ii = i as isize;
        let item = tok.sp;
        if f.kindly_request && item == sp::KINDLY && i + 1 < n {
            return 0.0;
        }
        let mut valence = lexv;
        if item == sp::NO && i + 1 < n && has_lex(t, i + 1) {
            valence = 0.0;
        }
        let emoticon = f.emoticon_scope && tok.flags & F_ALPHA == 0;
        let no_before = (i > 0 && sp_at(t, ii - 1) == sp::NO)
            || (i > 1 && sp_at(t, ii - 2) == sp::NO)
            || (i > 2
                && sp_at(t, ii - 3) == sp::NO
                && matches!(sp_at(t, ii - 1), sp::OR | sp::NOR));
        if no_before && !emoticon && !(f.repeated_no && item == sp::NO) {
            valence = lexv * N_SCALAR;
        }
        if tok.flags & F_UPPER != 0 && cap_diff {
            if valence > 0.0 {
                valence += C_INCR;
            } else {
                valence -= C_INCR;
            }
        }
        let mut idioms_done = false;
        if !emoticon {
            for start_i in 0..3usize {
                if f.negation_scope && start_i > 0 && i >= start_i && has_lex(t, i - start_i) {
                    break;
                }
                if i > start_i && !has_lex(t, i - start_i - 1) {
                    let j = i - start_i - 1;
                    let mut s = scalar_inc_dec(t, j, valence, cap_diff);
                    if start_i == 1 && s != 0.0 {
                        s *= 0.95;
                    }
                    if start_i == 2 && s != 0.0 {
                        s *= 0.9;
                    }
                    valence += s;
                    valence = negation_check(valence, t, start_i, ii);
                    if start_i == 2 {
                        valence = idioms_check(valence, t, ii);
                        idioms_done = true;
                    }
                }
            }
            if f.idioms_anywhere && !idioms_done {
                valence = idioms_check(valence, t, ii);
            }
        }
        // "least": negation unless "at least" / "very least".
        if i > 0 && sp_at(t, ii - 1) == sp::LEAST && !has_lex(t, i - 1) {
            if i > 1 {
                if !matches!(sp_at(t, ii - 2), sp::AT | sp::VERY) {
                    valence *= N_SCALAR;
                }
            } else {
                valence *= N_SCALAR;
            }
        }
        if f.negated_superlative && valence * lexv < 0.0 && tok.flags & F_SUPERLATIVE != 0 {
            valence *= SUPERLATIVE_NEGATION;
        }
        valence
    }

    fn score_valence(&self, sent: &[f64], lex: &[u32], text: &str) -> Reaction {
        if sent.is_empty() {
            return Reaction::default();
        }
        // Every entry but those of `lex` is a zero, which changes no sum below (a sum of
        // non-zero terms from +0.0 is never -0.0) and counts as neutral: the passes visit
        // `lex` only, in the same order, so the result is bit for bit the dense one's.
        let values = || lex.iter().map(|&i| sent[i as usize]);
        let mut sum: f64 = 0.0;
        for v in values() {
            sum += v;
        }
        let (mut ep_count, mut qm_count) = (0usize, 0usize);
        // Most texts have neither: found (or not) by a vector search, counted from the first.
        let b = text.as_bytes();
        if let Some(first) = memchr::memchr2(b'!', b'?', b) {
            for &c in &b[first..] {
                ep_count += usize::from(c == b'!');
                qm_count += usize::from(c == b'?');
            }
        }
        let ep = ep_count.min(4) as f64 * 0.292;
        let qm = match qm_count {
            0 | 1 => 0.0,
            2 | 3 => qm_count as f64 * 0.18,
            _ => 0.96,
        };
        let punct = ep + qm;
        let mut nz_sum = 0.0;
        let mut nz = 0usize;
        for v in values() {
            if v != 0.0 {
                nz_sum += v;
                nz += 1;
            }
        }
        if sum > 0.0 {
            sum += punct;
        } else if sum < 0.0 {
            sum -= punct;
        }
        let mut compound = normalize(sum);
        let (mut pos_sum, mut neg_sum, mut neu) = (0.0f64, 0.0f64, sent.len() - lex.len());
        for v in values() {
            if v > 0.0 {
                pos_sum += v + 1.0;
            }
            if v < 0.0 {
                neg_sum += v - 1.0;
            }
            if v == 0.0 {
                neu += 1;
            }
        }
        if pos_sum > neg_sum.abs() {
            pos_sum += punct;
        } else if pos_sum < neg_sum.abs() {
            neg_sum -= punct;
        }
        let total = pos_sum + neg_sum.abs() + neu as f64;
        let pos = (pos_sum / total).abs();
        let neg = (neg_sum / total).abs();
        let neu = (neu as f64 / total).abs();
        let w = self.fixes.balance_weight;
        if w != 0.0 {
            compound = (1.0 - w) * compound + w * (pos - neg);
        }
        let mean = if nz == 0 { 0.0 } else { (nz_sum / nz as f64 / 4.0).clamp(-1.0, 1.0) };
        Reaction { compound, pos, neu, neg, mean }
    }
}

/// Looks `word` up lower-cased (using `buf` when it has upper-case letters).
fn lex_get(lex: &Lexicon, word: &str, buf: &mut String) -> Option<f64> {
    if word.is_ascii() {
        if word.len() > lex.table.max_len {
            return None; // ASCII lower-casing keeps the length
        }
        // Lower-cased on the stack: no allocation, no copy into `buf`.
        let mut low = [0u8; 64];
        if let Some(low) = low.get_mut(..word.len()) {
            low.copy_from_slice(word.as_bytes());
            low.make_ascii_lowercase();
            return lex.table.get(low).and_then(|i| i.lex);
        }
    }
    buf.clear();
    push_lower(word, buf);
    lex.valence(buf)
}

/// [`push_lower`] and [`is_upper`] of `word` in one pass over an ASCII word.
fn push_lower_upper(word: &str, out: &mut String) -> bool {
    if !word.is_ascii() {
        if word.contains('Σ') {
            let upper = is_upper(word);
            push_lower(word, out);
            return upper;
        }
        // One pass; Latin-1 letters by their fixed offset, not the conversion tables.
        let (mut up, mut low) = (false, false);
        for c in word.chars() {
            if c.is_ascii() {
                up |= c.is_ascii_uppercase();
                low |= c.is_ascii_lowercase();
                out.push(c.to_ascii_lowercase());
            } else if let Some(l) = latin1_lower(c) {
                up |= l != c;
                low |= c.is_lowercase();
                out.push(l);
            } else if c.is_lowercase() {
                // Lower case: maps to itself, not upper case (tested over every character).
                low = true;
                out.push(c);
            } else {
                up |= c.is_uppercase();
                low |= c.is_lowercase();
                out.extend(c.to_lowercase());
            }
        }
        return up && !low;
    }
    let (mut up, mut low) = (false, false);
    for &b in word.as_bytes() {
        up |= b.wrapping_sub(b'A') < 26;
        low |= b.wrapping_sub(b'a') < 26;
    }
    let lo = out.len();
    out.push_str(word);
    out[lo..].make_ascii_lowercase();
    up && !low
}

/// The lower case of a Latin-1 character (U+0080…U+00FF; `None` above): `À`…`Þ` but `×` are
/// the upper-case letters, 0x20 below their lower case; every other maps to itself.
#[inline]
fn latin1_lower(c: char) -> Option<char> {
    let u = u32::from(c);
    match u {
        0xc0..=0xde if u != 0xd7 => char::from_u32(u + 0x20),
        0x80..=0xff => Some(c),
        _ => None,
    }
}

fn push_lower(word: &str, out: &mut String) {
    if word.is_ascii() {
        let lo = out.len();
        out.push_str(word);
        out[lo..].make_ascii_lowercase();
    } else if word.contains('Σ') {
        // The one context-dependent mapping (final sigma): the standard library's rule.
        out.push_str(&word.to_lowercase());
    } else {
        // Char by char is `str::to_lowercase` everywhere else, without its allocation.
        for c in word.chars() {
            out.extend(c.to_lowercase());
        }
    }
}

fn normalize(score: f64) -> f64 {
    let n = score / (score * score + 15.0).sqrt();
    n.clamp(-1.0, 1.0)
}

fn scalar_inc_dec(t: &[Tok], j: usize, valence: f64, cap_diff: bool) -> f64 {
    let Some(&tok) = t.get(j) else { return 0.0 };
    let mut scalar = tok.booster;
    if scalar == 0.0 {
        return 0.0;
    }
    if valence < 0.0 {
        scalar = -scalar;
    }
    if tok.flags & F_UPPER != 0 && cap_diff {
        if valence > 0.0 {
            scalar += C_INCR;
        } else {
            scalar -= C_INCR;
        }
    }
    scalar
}

fn negation_check(valence: f64, t: &[Tok], start_i: usize, i: isize) -> f64 {
    let w = |k: isize| sp_at(t, k);
    match start_i {
        0 => {
            if negates(t, i - 1) {
                return valence * N_SCALAR;
            }
        }
        1 => {
            if w(i - 2) == sp::NEVER && matches!(w(i - 1), sp::SO | sp::THIS) {
                return valence * 1.25;
            } else if w(i - 2) == sp::WITHOUT && w(i - 1) == sp::DOUBT {
                return valence;
            } else if negates(t, i - 2) {
                return valence * N_SCALAR;
            }
        }
        _ => {
            // Python's precedence: `a and b or c`.
            if (w(i - 3) == sp::NEVER && matches!(w(i - 2), sp::SO | sp::THIS))
                || matches!(w(i - 1), sp::SO | sp::THIS)
            {
                return valence * 1.25;
            } else if w(i - 3) == sp::WITHOUT && (w(i - 2) == sp::DOUBT || w(i - 1) == sp::DOUBT) {
                return valence;
            } else if negates(t, i - 3) {
                return valence * N_SCALAR;
            }
        }
    }
    valence
}

fn idioms_check(mut valence: f64, t: &[Tok], i: isize) -> f64 {
    let (w3, w2, w1, w0) = (sp_at(t, i - 3), sp_at(t, i - 2), sp_at(t, i - 1), sp_at(t, i));
    let seqs = [special2(w1, w0), special3(w2, w1, w0), special2(w2, w1), special3(w3, w2, w1)];
    if let Some(v) = seqs.into_iter().flatten().next().or_else(|| special2(w3, w2)) {
        valence = v;
    }
    let n = t.len() as isize;
    if n - 1 > i {
        if let Some(v) = special2(w0, sp_at(t, i + 1)) {
            valence = v;
        }
    }
    if n - 1 > i + 1 {
        if let Some(v) = special3(w0, sp_at(t, i + 1), sp_at(t, i + 2)) {
            valence = v;
        }
    }
    // n-grams in the booster dictionary: only its two-word entries can match.
    for (a, b) in [(w3, w2), (w2, w1)] {
        if let Some(v) = booster2(a, b) {
            valence += v;
        }
    }
    valence
}

/// Scorers chosen per message language: a default (VADER, English) and optional lexicons for
/// other languages, keyed by primary language subtag (`fr` serves `fr-CA`).
#[derive(Clone, Debug, Default)]
pub struct LanguageScorers {
    default: SentimentScorer,
    by_lang: Vec<(String, SentimentScorer)>,
}

impl LanguageScorers {
    /// The built-in VADER scorer for every language.
    pub fn new(default: SentimentScorer) -> Self {
        LanguageScorers { default, by_lang: Vec::new() }
    }

    /// Uses `scorer` for messages whose `lang` has the primary subtag `lang`.
    pub fn with_language(mut self, lang: &str, scorer: SentimentScorer) -> Self {
        let lang = lang.to_ascii_lowercase();
        self.by_lang.retain(|(l, _)| *l != lang);
        self.by_lang.push((lang, scorer));
        self
    }

    /// The scorer for a language tag (`None`: the default).
    pub fn for_lang(&self, lang: Option<&str>) -> &SentimentScorer {
        let Some(lang) = lang else { return &self.default };
        let primary = lang.split(['-', '_']).next().unwrap_or(lang);
        self.by_lang
            .iter()
            .find(|(l, _)| l.eq_ignore_ascii_case(primary))
            .map_or(&self.default, |(_, s)| s)
    }

    /// Scores a message's text with the scorer of its language.
    pub fn score_message(&self, m: &crate::Message) -> Reaction {
        self.for_lang(m.lang.as_deref()).score(&m.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_table_finds_every_entry_and_nothing_else() {
        let l = Lexicon::vader();
        let mut last: HashMap<&str, f64> = HashMap::new();
        for line in VADER_LEXICON.lines().filter(|l| !l.trim().is_empty()) {
            let mut f = line.trim().split('\t');
            let (w, v) = (f.next().unwrap(), f.next().unwrap().parse::<f64>().unwrap());
            last.insert(w, v); // the later of a twice-listed token wins, as in Python
        }
        assert_eq!(last.len(), 7506);
        for (w, v) in last {
            assert_eq!(l.table.get(w.as_bytes()).and_then(|i| i.lex), Some(v), "{w:?}");
        }
        for (w, b) in BOOSTERS {
            assert_eq!(l.table.get(w.as_bytes()).map(|i| i.booster), Some(*b), "{w}");
        }
        for w in NEGATE {
            assert!(l.table.get(w.as_bytes()).is_some_and(|i| i.negate), "{w}");
        }
        // Misses: prefixes, extensions, upper case, the empty word, words past the longest key.
        for w in ["", "goo", "goodx", "GOOD", "not'", "n't", &"a".repeat(l.table.max_len + 1)] {
            assert_eq!(l.table.get(w.as_bytes()), None, "{w:?}");
        }
        assert!(Lexicon::default().table.get(b"good").is_none());
        assert!(Lexicon::default().table.get(b"").is_none());
    }

    /// Every field, bit for bit.
    fn bits(r: &Reaction) -> [u64; 5] {
        [r.compound, r.pos, r.neu, r.neg, r.mean].map(f64::to_bits)
    }

    /// The texts of the shared posts (`../shared/data/posts/*`, JSON Lines), none (with a
    /// note) when `../shared` is absent.
    fn shared_post_texts() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let posts = root.join("../shared/data/posts");
        let mut texts = Vec::new();
        match std::fs::read_dir(&posts) {
            Ok(dir) => {
                for e in dir.flatten() {
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    for l in text.lines() {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(l) {
                            texts.extend(v["text"].as_str().map(str::to_string));
                        }
                    }
                }
            }
            Err(_) => eprintln!("note: {} absent: shared posts not checked", posts.display()),
        }
        texts
    }

    #[test]
    fn neutral_pass_is_the_full_scorer() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut texts: Vec<String> = shared_post_texts();
        let vectors = std::fs::read_to_string(root.join("tests/data/vader_vectors.jsonl"))
            .expect("the frozen vectors are in the repository");
        for l in vectors.lines() {
            let v: serde_json::Value = serde_json::from_str(l).expect("a vector line");
            texts.extend(v["text"].as_str().map(str::to_string));
        }
        let generated = streamtrack_workload::WorkloadConfig::default().count(20_000).messages();
        let first_generated = texts.len();
        texts.extend(generated.into_iter().map(|m| m.text));
        for s in [SentimentScorer::new(), SentimentScorer::python_compatible()] {
            let (mut fast, mut fast_generated) = (0, 0);
            for (i, t) in texts.iter().enumerate() {
                let full = s.score_full(t);
                if let Some(r) = s.neutral(t) {
                    assert_eq!(bits(&r), bits(&full), "{t:?}");
                    fast += 1;
                    fast_generated += usize::from(i >= first_generated);
                }
                assert_eq!(bits(&s.score(t)), bits(&full), "{t:?}");
            }
            // The pass does decide: neutral texts are common, generated ones most of all.
            assert!(fast > texts.len() / 10, "{fast} of {}", texts.len());
            assert!(fast_generated > 5_000, "{fast_generated} of 20,000 generated");
            eprintln!(
                "neutral pass: {fast} of {} texts ({fast_generated} of 20,000 generated)",
                texts.len()
            );
        }
        // Texts made to reach each branch: punctuation, elongation, entities, emoji, spaces.
        let s = SentimentScorer::new();
        for t in [
            "",
            "   ",
            "\u{a0}",
            "zork, blip.",
            "(zork)",
            "gooood",
            "&lt;3 zork",
            "zork 😀",
            "zork\u{2003}blip",
            "ok,",
            ":)",
            "ZORK BLIP!!!",
            "but zork",
            "ÉCOLE zork",
            "KIND OF zork",
        ] {
            let full = s.score_full(t);
            assert_eq!(bits(&s.score(t)), bits(&full), "{t:?}");
        }
        assert!(s.neutral("zork, blip.").is_some() && s.neutral("good").is_none());
        assert!(s.neutral("gooood").is_none() && s.neutral("&lt;3").is_none());
        assert!(s.neutral("zork 😀").is_none() && s.neutral(":)").is_none());
    }

    /// Texts of pieces that reach the fast paths' edges (ASCII words beside other scripts,
    /// emoji next to punctuation, capitals in Cyrillic and Greek, final sigma, combining marks,
    /// Unicode white space, trailing punctuation, runs, 8-byte boundaries, long tokens), joined
    /// by white space or nothing: a fixed generator.
    fn mixed_texts(count: usize) -> Vec<String> {
        let pieces: &[&str] = &[
            "good",
            "GOOD",
            "Good",
            "bad",
            "BAD",
            "not",
            "NOT",
            "isn't",
            "ISN'T",
            "n't",
            "kind",
            "of",
            "but",
            "BUT",
            "very",
            "VERY",
            "no",
            "least",
            "at",
            "kindly",
            "zork",
            "gooood",
            "GOOOOD",
            "baaad",
            "sooo",
            "a",
            "I",
            "ok",
            "lol",
            "love",
            "hate",
            "terrible",
            "wonderful",
            "horrible",
            "extremely",
            "the",
            "xoxo",
            "zzz",
            "aaa",
            ",",
            ".",
            "!",
            "!!!",
            "?",
            "??",
            "...",
            ":)",
            ":(",
            ":-)",
            ";",
            "'",
            "\"",
            "(",
            ")",
            "#",
            "@",
            "-",
            "'s",
            "_",
            "é",
            "É",
            "café",
            "CAFÉ",
            "naïve",
            "NAÏVE",
            "ПРИВЕТ",
            "привет",
            "Привет",
            "ХОРОШО",
            "хорошо",
            "ΣΟΦΟΣ",
            "σοφος",
            "ΟΔΟΣ",
            "Σ",
            "ς",
            "ΑΓΑΠΗ",
            "ΑΣ",
            "e\u{301}",
            "E\u{301}",
            "GOOD\u{301}",
            "\u{301}",
            "\u{308}",
            "日本語",
            "שלום",
            "مرحبا",
            "İ",
            "ß",
            "ẞ",
            "ǅ",
            "Ⅷ",
            "ⓐ",
            "ﬁ",
            "ñññ",
            "ÉÉÉ",
            "😀",
            "😂",
            "💔",
            "❤",
            "\u{fe0f}",
            "\u{200d}",
            "👨\u{200d}👩",
            "🇺🇸",
            "🔥",
            "☕",
            "♥",
            "&amp;",
            "&lt;3",
            "\u{1}",
            "\u{7f}",
            "\u{200b}",
        ];
        let spaces: &[&str] = &[
            "", " ", " ", " ", "  ", "\t", "\n", "\u{a0}", "\u{2003}", "\u{3000}", "\u{85}",
            "\u{1c}", "\u{2028}", "\u{1680}", "\u{202f}", "\u{180e}",
        ];
        let long = ["y".repeat(7), "Zz".repeat(4), "w".repeat(9), "a".repeat(63), "B".repeat(65)];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        (0..count)
            .map(|_| {
                let mut t = String::new();
                for _ in 0..1 + next(14) {
                    t.push_str(spaces[next(spaces.len())]);
                    match next(12) {
                        0 => t.push_str(&long[next(long.len())]),
                        _ => t.push_str(pieces[next(pieces.len())]),
                    }
                }
                t
            })
            .collect()
    }

    /// The tokenizer's fast paths (ASCII tokens of non-ASCII texts, trailing punctuation
    /// keyed from the token's pass, emoji replaced run by run) against the general path
    /// (every token through `push_plain_token`, emoji char by char), bit for bit: generated
    /// mixed texts in both modes and with four fixes off, the shared posts in both modes.
    #[test]
    fn fast_paths_are_the_general_path() {
        let mut texts = mixed_texts(30_000);
        let generated = streamtrack_workload::WorkloadConfig::default().count(5_000).messages();
        texts.extend(generated.into_iter().map(|m| m.text));
        // Generated texts through every scorer, the shared posts through the two modes.
        let generated_texts = texts.len();
        texts.extend(shared_post_texts());
        let off: [fn(&mut Fixes); 4] = [
            |f| f.elongation = false,
            |f| f.short_token_punct = false,
            |f| f.html_entities = false,
            |f| f.emoticon_scope = false,
        ];
        let mut scorers = vec![SentimentScorer::new(), SentimentScorer::python_compatible()];
        for f in off {
            let mut fixes = Fixes::all();
            f(&mut fixes);
            scorers.push(SentimentScorer::new().with_fixes(fixes));
        }
        let mut non_ascii = 0;
        for (k, s) in scorers.iter().enumerate() {
            let texts = if k < 2 { &texts[..] } else { &texts[..generated_texts] };
            for t in texts {
                non_ascii += usize::from(k == 0 && !t.is_ascii());
                assert_eq!(bits(&s.score(t)), bits(&s.score_general(t)), "{t:?} ({:?})", s.fixes);
            }
        }
        // The generator does reach the non-ASCII path.
        assert!(non_ascii > 20_000, "{non_ascii}");
    }

    #[test]
    fn caseless_lead_bytes_start_caseless_characters() {
        let mut checked = 0;
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32) {
            let mut b = [0u8; 4];
            let lead = c.encode_utf8(&mut b).as_bytes()[0];
            if lead >= 0xc0 && caseless_lead(lead) {
                let mut low = c.to_lowercase();
                assert_eq!((low.next(), low.next()), (Some(c), None), "{c:?}");
                assert!(!c.is_uppercase() && !c.is_lowercase(), "{c:?}");
                checked += 1;
            }
        }
        assert!(checked > 40_000, "{checked}");
        // And the cased scripts around them are not taken.
        for c in ['É', 'Σ', 'Ж', 'Ա', 'Ⴀ', 'Ꭰ', 'Ａ', 'Ⓐ', 'Ⅰ', 'ꙁ', 'Ꜳ', 'ꭰ', '𐐀']
        {
            let mut b = [0u8; 4];
            assert!(!caseless_lead(c.encode_utf8(&mut b).as_bytes()[0]), "{c:?}");
        }
    }

    #[test]
    fn unicode_white_space_starts_with_a_space_lead() {
        for c in (0x80..=0x10_ffffu32).filter_map(char::from_u32).filter(|&c| is_py_space(c)) {
            let mut b = [0u8; 4];
            assert!(unicode_space_lead(c.encode_utf8(&mut b).as_bytes()[0]), "{c:?}");
        }
    }

    #[test]
    fn lower_case_characters_map_to_themselves() {
        for c in (0..=0x10_ffffu32).filter_map(char::from_u32).filter(|c| c.is_lowercase()) {
            let mut l = c.to_lowercase();
            assert_eq!((l.next(), l.next()), (Some(c), None), "{c:?}");
            assert!(!c.is_uppercase(), "{c:?}");
        }
    }

    #[test]
    fn emoji_are_found_at_their_lead_bytes() {
        let l = Lexicon::vader();
        for &c in l.emoji.keys() {
            for t in [format!("{c}"), format!("zork{c}"), format!("東{c} x"), format!("é{c}")] {
                assert!(l.has_emoji(&t), "{t:?}");
            }
        }
        for t in ["", "zork", "東京", "Très", "\u{a0}", "ΟΔΥΣΣΕΥΣ"] {
            assert!(!l.has_emoji(t), "{t:?}");
        }
        assert!(!Lexicon::default().has_emoji("😀"));
    }

    #[test]
    fn is_punct_is_is_ascii_punctuation() {
        for c in 0..=255u8 {
            assert_eq!(is_punct(c), c.is_ascii_punctuation(), "{c}");
        }
    }

    #[test]
    fn is_ascii_py_space_is_is_py_space() {
        for c in 0..=127u8 {
            assert_eq!(is_ascii_py_space(c), is_py_space(char::from(c)), "{c}");
        }
        // Bytes of other characters are never ASCII white space.
        assert!((128..=255u8).all(|c| !is_ascii_py_space(c)));
    }

    #[test]
    fn latin1_lower_is_to_lowercase() {
        for c in (0x80..=0xffu32).filter_map(char::from_u32) {
            let l = latin1_lower(c).unwrap();
            assert_eq!(l.to_string(), c.to_lowercase().to_string(), "{c:?}");
            assert_eq!(l != c, c.is_uppercase(), "{c:?}");
        }
        assert_eq!(latin1_lower('a'), None);
        assert_eq!(latin1_lower('Ā'), None);
    }

    #[test]
    fn has_nt_any_case_is_has_nt_of_the_lower_case() {
        for w in ["DON'T", "Don't", "doN'T", "N'T", "n'", "N'X", "isn’t", "東n't", "", "'t"] {
            assert_eq!(has_nt_any_case(w.as_bytes()), w.to_lowercase().contains("n't"), "{w:?}");
        }
    }

    #[test]
    fn ascii_keys_are_the_lower_case_bytes_and_their_flags() {
        let words = [
            "a",
            "Good",
            "GOOD",
            "gooD'n'T",
            "abcdefgh",
            "ABCDEFGHI",
            "aaa",
            "abbb",
            "abcdefgg",
            "abcdefghh",
            "abcdefgggh",
            "xyzxyzxaaa",
            "A'B",
            "東京'n't",
            "日本語",
            "スシキ",
            &"x".repeat(63),
            &"Ab".repeat(32),
            "\u{7f}zork",
            "z@[`{",
        ];
        for w in words {
            let mut buf = [0u64; KEY_WORDS];
            let key = AsciiKey::new(w.as_bytes(), &mut buf).unwrap();
            let mut bytes = [0u8; KEY_WORDS * 8];
            for (d, x) in bytes.chunks_exact_mut(8).zip(&buf) {
                d.copy_from_slice(&x.to_le_bytes());
            }
            let lower = w.to_lowercase();
            assert_eq!(&bytes[..key.len], lower.as_bytes(), "{w:?}");
            assert!(bytes[key.len..].iter().all(|&b| b == 0), "{w:?}");
            assert_eq!(key.hash, word_hash(lower.as_bytes()), "{w:?}");
            assert_eq!(key.upper(), is_upper(w), "{w:?}");
            assert_eq!(key.apostrophe, w.contains('\''), "{w:?}");
            let run = lower.as_bytes().windows(3).any(|x| x[0] == x[1] && x[1] == x[2]);
            assert!(key.run3(&buf) == run || (key.run3(&buf) && w.len() > 8), "{w:?}");
            if w.as_bytes().windows(3).any(|x| x[0] == x[1] && x[1] == x[2]) {
                assert!(key.run3(&buf), "{w:?}: a run of the word is a candidate");
            }
        }
        assert!(AsciiKey::new("x".repeat(65).as_bytes(), &mut [0; KEY_WORDS]).is_none());
    }

    /// `AsciiKey::run3` (from the lower-case first word, asked late) never misses a run of
    /// `has_run3`: every word of 1-9 bytes over `a A b ! '`, and the same words after a
    /// caseless character (`日`).
    #[test]
    fn run3_candidates_cover_every_run() {
        let alphabet = [b'a', b'A', b'b', b'!', b'\''];
        let mut checked = 0;
        for len in 1..=9u32 {
            for mut n in 0..alphabet.len().pow(len) {
                let mut w = String::new();
                for _ in 0..len {
                    w.push(char::from(alphabet[n % alphabet.len()]));
                    n /= alphabet.len();
                }
                for w in [w.clone(), format!("日{w}")] {
                    let mut buf = [0u64; KEY_WORDS];
                    let key = AsciiKey::new(w.as_bytes(), &mut buf).expect("short");
                    if has_run3(&w) {
                        assert!(key.run3(&buf), "{w:?}");
                    }
                }
                checked += 1;
            }
        }
        assert!(checked > 2_000_000, "{checked}");
    }

    #[test]
    fn has_nt_is_contains_nt() {
        for w in ["don't", "n't", "nt", "n'", "isn'tx", "'n't", "can''t", "won’t", ""] {
            assert_eq!(has_nt(w.as_bytes()), w.contains("n't"), "{w:?}");
        }
    }

    #[test]
    fn lex_get_lowercases_on_the_stack_as_through_the_buffer() {
        let l = Lexicon::vader();
        let mut buf = String::new();
        for w in ["GOOD", "Good", "good", "ÜBER", "Über", "kind-of", &"A".repeat(70)] {
            assert_eq!(lex_get(&l, w, &mut buf), l.valence(&w.to_lowercase()), "{w:?}");
        }
    }

    #[test]
    fn push_lower_upper_is_push_lower_and_is_upper() {
        for w in [
            "GOOD",
            "Good",
            "good",
            "G00D!",
            "123",
            ":D",
            "ÜBER",
            "Σ",
            "ok",
            "",
            "ÀÉÎ×ÿ",
            "Très",
            "ÉCOLE",
            "ΟΔΥΣΣΕΥΣ",
            "İstanbul",
            "東京",
            "Ⓐb",
            "ªB",
            "µ",
        ] {
            let mut a = String::from("x");
            let mut b = String::from("x");
            let up = push_lower_upper(w, &mut a);
            push_lower(w, &mut b);
            assert_eq!((a, up), (b, is_upper(w)), "{w:?}");
        }
    }

    #[test]
    fn push_lower_is_str_to_lowercase() {
        for w in ["ΟΔΥΣΣΕΥΣ", "ΣΑΣ", "Σ", "İstanbul", "STRAẞE", "ǅemal", "ÀÉÎ", "東京", "ok", "Ⓐ"]
        {
            let mut out = String::from("x");
            push_lower(w, &mut out);
            assert_eq!(out, format!("x{}", w.to_lowercase()), "{w}");
        }
    }

    #[test]
    fn the_emoji_filter_finds_every_described_character() {
        let l = Lexicon::vader();
        for (&c, d) in &l.emoji {
            assert_eq!(l.emoji(c), Some(&**d), "{c:?}");
        }
        assert_eq!(l.emoji('東'), None);
        assert_eq!(l.emoji('a'), None);
        // A lexicon without descriptions describes nothing.
        assert_eq!(Lexicon::default().emoji('😀'), None);
    }

    #[test]
    fn builtin_lexicon_parses_with_every_entry() {
        let l = Lexicon::vader();
        assert_eq!(
            l.len(),
            7506,
            "7,520 lines, 14 tokens listed twice (the later wins, as in Python)"
        );
        assert_eq!(
            l.emoji.len(),
            1212,
            "the single-character entries: only those can match, as in Python"
        );
        let info = |w: &str| *l.table.get(w.as_bytes()).unwrap();
        assert!(info("worst").superlative);
        assert!(!info("honest").superlative);
        assert!(info("not").negate && info("very").booster > 0.0);
    }

    #[test]
    fn lexicon_errors_name_line_and_column() {
        let e = Lexicon::from_vader_str("good\t1.9\nbad\tx1\n").unwrap_err();
        assert_eq!(e, LexiconError::BadNumber { line: 2, column: 5, text: "x1".into() });
        let e = Lexicon::from_vader_str("good\t1.9\n\nbad\n").unwrap_err();
        assert!(matches!(e, LexiconError::MissingField { line: 3, column: 4, .. }), "{e:?}");
        assert_eq!(Lexicon::from_vader_str("\n\n").unwrap_err(), LexiconError::Empty);
        let e = Lexicon::from_pattern_tsv("form\tpos\tpolarity\nbon\tJJ\tbien\n").unwrap_err();
        assert!(matches!(e, LexiconError::BadNumber { line: 2, column: 8, .. }), "{e:?}");
    }

    #[test]
    fn pattern_senses_are_averaged_and_scaled() {
        let l = Lexicon::from_pattern_tsv(
            "form\tpos\tpolarity\tsubj\nBon\tJJ\t0.5\t0\nbon\tJJ\t0.25\t0\n",
        )
        .unwrap();
        assert!((l.valence("bon").unwrap() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn entities_and_runs() {
        let mut s = String::new();
        decode_entities("a &amp; b &lt;3 &x; &", &mut s);
        assert_eq!(s, "a & b <3 &x; &");
        collapse_runs("gooood!!!", 2, &mut s);
        assert_eq!(s, "good!!!");
        collapse_runs("gooood", 1, &mut s);
        assert_eq!(s, "god");
    }
}
