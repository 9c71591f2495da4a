//! Deterministic, seeded workloads: tweet-like messages and rule sets for streamtrack's
//! benchmarks and tests. It is a crate of its own so that the `streamtrack` library's public
//! API holds only what users need; readers for external corpora (so the same benchmark runs on
//! any data) are in `streamtrack::read`.
//!
//! # The standard workload
//!
//! [`WorkloadConfig::default`] describes the synthetic corpus of the targets document: 200,000
//! messages of 60-277 bytes (mean about 137), about 17% of them non-ASCII, 10% each with
//! hashtags, mentions, URLs and emoji. [`RuleSetConfig::default`] describes the standard rule
//! mix: 60% one keyword, 25% AND of 2-3 keywords, 10% exact two-word phrases and 5% with a
//! negation, a `#hashtag` or `from:`, about 15% of them in a non-Latin script or with accents.
//!
//! ```
//! use streamtrack_workload::{RuleSetConfig, WorkloadConfig};
//!
//! let messages = WorkloadConfig::default().seed(7).count(1_000).messages();
//! assert_eq!(messages.len(), 1_000);
//! assert_eq!(messages[0].id, "0");
//!
//! let rules = RuleSetConfig::default().seed(7).rules(1_000);
//! assert!(rules.iter().all(|r| r.parse().is_ok()));
//! // Rule sets are nested: a smaller set is a prefix of a larger one.
//! assert_eq!(rules[..100], RuleSetConfig::default().seed(7).rules(100)[..]);
//! ```
//!
//! # Determinism
//!
//! Everything is a pure function of the configuration. The generator uses its own PRNG
//! (xoshiro256\*\* seeded through SplitMix64) and its own logarithm and exponential written with
//! IEEE-754 basic operations only, so the output is the same on every machine, operating system
//! and compiler version. Message `i` and rule `i` each get a PRNG seeded by `(seed, i)`, so any
//! one can be generated on its own ([`MessageGenerator::message`], [`RuleGenerator::rule`]) and
//! rule sets are nested: `rules(1_000)` is a prefix of `rules(1_000_000)`.
//!
//! # Vocabulary
//!
//! No word list is shipped. Latin-script words are pronounceable pseudo-words built from
//! syllables (onset, nucleus, optional final coda), numbered by *rank*: short words first, and a
//! seeded bijection inside each length class, so rank `r` always names the same word and no two
//! ranks name the same word. The other scripts (accented Latin, Cyrillic, Greek, Arabic,
//! Japanese kana and kanji, Chinese, Thai) start with a few dozen real words written inline
//! (function words first) and continue with pseudo-words built the same way from that script's
//! syllables or characters. The vocabulary depends only on
//! [`vocabulary_seed`](WorkloadConfig::vocabulary_seed) (not on `seed`), so messages and rules
//! generated with different seeds still share it.
//!
//! Messages draw words by Zipf's law over the first [`vocabulary`](WorkloadConfig::vocabulary)
//! ranks (50,000 by default; one tenth of that, at least the built-in list, for each other
//! script). After a word past the top 100 ranks (30 for other scripts), with probability 0.15 the
//! next word is that word's fixed *successor*, so messages contain recurring two-word
//! collocations, which the phrase rules use.
//!
//! # Rule terms
//!
//! Real subscriptions track selective terms, and most rules of a large set match rarely. Rule
//! keywords skip the top 20 ranks (10 for the other scripts: stop words and particles). A small
//! share (2.5% for Latin keywords, 15% for the other scripts, whose vocabularies are smaller) is
//! drawn uniformly from the message vocabulary, so it is mostly mid- and tail-ranked words and
//! occasionally a frequent one (a hot rule). The rest is drawn log-uniformly from the generated
//! tail beyond the message vocabulary (ranks `V` to `16 V`): rare terms that the messages of this
//! corpus never contain. The tail is what lets 1,000,000 rules hold several hundred thousand
//! distinct terms while the rate of messages matching at least one rule stays moderate at
//! 100,000 rules. Second and third keywords of AND rules and negated words are drawn like
//! message words (context words such as `apple iphone`); the second word of a phrase is usually
//! the first word's successor.

#![deny(missing_docs)]

use std::fmt;
use streamtrack::message::{extract_entities, Message};
use streamtrack::normalize::{char_class, CharClass};
use streamtrack::rule::{Dialect, Parser, Rule, RuleError};

/// The shortest generated message, in UTF-8 bytes.
pub const MIN_MESSAGE_BYTES: usize = 60;
/// The longest generated message, in UTF-8 bytes.
pub const MAX_MESSAGE_BYTES: usize = 277;

// ---------------------------------------------------------------------------------------------
// PRNG and deterministic floating point
// ---------------------------------------------------------------------------------------------

const STREAM_MESSAGES: u64 = 0x6d65_7373_6167_6573;
const STREAM_RULES: u64 = 0x7275_6c65_7300_0001;
const STREAM_VOCABULARY: u64 = 0x766f_6361_6200_0002;
const STREAM_SUCCESSOR: u64 = 0x7375_6363_0000_0003;
const STREAM_USERS: u64 = 0x7573_6572_7300_0004;

/// SplitMix64 step: used to seed xoshiro and to hash `(seed, stream, index)`.
#[inline]
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256**.
#[derive(Clone, Debug)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut sm = seed;
        Rng { s: [splitmix(&mut sm), splitmix(&mut sm), splitmix(&mut sm), splitmix(&mut sm)] }
    }

    /// A generator for item `index` of `stream` under `seed`.
    fn for_item(seed: u64, stream: u64, index: u64) -> Rng {
        Rng::new(mix64(seed ^ mix64(stream ^ mix64(index.wrapping_add(0x5851_F42D_4C95_7F2D)))))
    }

    #[inline]
    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A number in `0..n` (`n > 0`), by multiply-shift.
    #[inline]
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    #[inline]
    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// A float in `[0, 1)` with 53 random bits.
    #[inline]
    fn f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.index(items.len())]
    }
}

const LN2: f64 = std::f64::consts::LN_2;

/// Natural logarithm of a positive, finite, normal `x`, with basic operations only (so the same
/// bits on every platform).
fn det_ln(x: f64) -> f64 {
    if x <= 0.0 || !x.is_finite() {
        return f64::NEG_INFINITY;
    }
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m /= 2.0;
        exponent += 1;
    }
    // ln(m) = 2 atanh(z), z = (m - 1) / (m + 1), |z| <= 0.1716.
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let mut term = z;
    let mut sum = 0.0;
    let mut k = 1.0;
    for _ in 0..14 {
        sum += term / k;
        term *= z2;
        k += 2.0;
    }
    2.0 * sum + exponent as f64 * LN2
}

/// `1 / k!` for `k` in `0..15`.
const INV_FACTORIAL: [f64; 15] = [
    1.0,
    1.0,
    0.5,
    0.16666666666666666,
    0.041666666666666664,
    0.008333333333333333,
    0.001388888888888889,
    0.0001984126984126984,
    2.48015873015873e-05,
    2.7557319223985893e-06,
    2.755731922398589e-07,
    2.505210838544172e-08,
    2.08767569878681e-09,
    1.6059043836821613e-10,
    1.1470745597729725e-11,
];

/// `e^y` for `y` in about `[-700, 700]`, with basic operations only.
fn det_exp(y: f64) -> f64 {
    if y < -700.0 {
        return 0.0;
    }
    let y = y.min(700.0);
    let k = (y / LN2).round();
    let r = y - k * LN2; // |r| <= 0.35: 15 Taylor terms reach full precision
    let mut sum = INV_FACTORIAL[14];
    for &c in INV_FACTORIAL[..14].iter().rev() {
        sum = sum * r + c;
    }
    let scale = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    sum * scale
}

/// `x^s` for positive `x`.
fn det_pow(x: f64, s: f64) -> f64 {
    det_exp(s * det_ln(x))
}

/// A discrete distribution sampled by inversion: a 32-bit fixed-point cumulative table plus a
/// guide table that jumps close to the answer (one random number and a short forward scan; for
/// skewed distributions such as Zipf the frequent entries stay in cache).
#[derive(Clone, Debug)]
struct Sampler {
    /// `cdf[i]`: probability of `0..=i`, scaled to 2^32 and rounded; the last entry is
    /// `u32::MAX` and no draw reaches past it.
    cdf: Vec<u32>,
    /// `guide[k]`: the first `i` with `cdf[i] > k << shift`.
    guide: Vec<u32>,
    shift: u32,
}

impl Sampler {
    fn new(weights: &[f64]) -> Sampler {
        let n = weights.len().max(1);
        let total: f64 = weights.iter().sum();
        let (total, uniform) = if total > 0.0 { (total, false) } else { (n as f64, true) };
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for i in 0..n {
            acc += if uniform { 1.0 } else { weights.get(i).copied().unwrap_or(0.0) };
            cdf.push(((acc / total) * 4_294_967_295.0).min(4_294_967_295.0) as u32);
        }
        // Draws are below u32::MAX, so the last entry with weight catches everything above.
        let last = cdf.iter().rposition(|&c| c > 0).unwrap_or(n - 1);
        for c in &mut cdf[last..] {
            *c = u32::MAX;
        }
        // About four entries per guide cell: a small guide table, a scan of one cache line.
        let bits = (n.next_power_of_two() / 4).clamp(256, 1 << 22).trailing_zeros();
        let shift = 32 - bits;
        let mut guide = Vec::with_capacity(1 << bits);
        let mut i = 0usize;
        for k in 0..1u64 << bits {
            let u = k << shift;
            while u64::from(cdf[i]) <= u {
                i += 1;
            }
            guide.push(i as u32);
        }
        Sampler { cdf, guide, shift }
    }

    #[inline]
    fn sample(&self, rng: &mut Rng) -> usize {
        self.sample_u32(rng.next_u64() as u32)
    }

    /// The entry for the uniform 32-bit number `x`.
    #[inline]
    fn sample_u32(&self, x: u32) -> usize {
        // In 0..u32::MAX (never u32::MAX itself), so the scan stops at the last entry.
        let u = ((u64::from(x) * u64::from(u32::MAX)) >> 32) as u32;
        let mut i = self.guide[(u >> self.shift) as usize] as usize;
        while self.cdf[i] <= u {
            i += 1;
        }
        i
    }
}

/// Zipf's law over ranks `0..n` (weight of rank `r` is `1 / (r + 1)^s`): the top 4,096 ranks
/// from a table, the rest by inverting the continuous density `x^-s` (within 0.01% of the
/// discrete law there), so sampling touches no large table.
#[derive(Clone, Debug)]
struct Zipf {
    head: Sampler,
    head_len: usize,
    n: usize,
    /// Probability of the head, scaled to 2^32 (`u64` so that 1 is representable).
    head_mass: u64,
    s: f64,
    /// Tail bounds in the inverse's coordinates: `ln x` for `s == 1`, else `x^(1-s)`.
    lo: f64,
    hi: f64,
}

impl Zipf {
    const HEAD: usize = 4096;

    fn new(n: usize, s: f64) -> Zipf {
        let n = n.max(1);
        let weight = |r: usize| if s == 1.0 { 1.0 / r as f64 } else { det_pow(r as f64, -s) };
        let head_len = n.min(Zipf::HEAD);
        let weights: Vec<f64> = (1..=head_len).map(weight).collect();
        let head_total: f64 = weights.iter().sum();
        let tail_total: f64 = (head_len + 1..=n).map(weight).sum();
        let head_mass = if tail_total > 0.0 {
            ((head_total / (head_total + tail_total)) * 4_294_967_296.0) as u64
        } else {
            1 << 32
        };
        let coord = |x: f64| if s == 1.0 { det_ln(x) } else { det_pow(x, 1.0 - s) };
        Zipf {
            head: Sampler::new(&weights),
            head_len,
            n,
            head_mass,
            s,
            lo: coord((head_len + 1) as f64),
            hi: coord((n + 1) as f64),
        }
    }

    #[inline]
    fn sample(&self, rng: &mut Rng) -> usize {
        let x = rng.next_u64();
        if (x >> 32) < self.head_mass {
            return self.head.sample_u32(x as u32);
        }
        let v = f64::from(x as u32) * (1.0 / 4_294_967_296.0);
        let t = self.lo + v * (self.hi - self.lo);
        let rank1 = if self.s == 1.0 { det_exp(t) } else { det_pow(t, 1.0 / (1.0 - self.s)) };
        (rank1 as usize).saturating_sub(1).clamp(self.head_len, self.n - 1)
    }
}

// ---------------------------------------------------------------------------------------------
// Word generators
// ---------------------------------------------------------------------------------------------

/// Ranks beyond this are never needed; length classes stop here.
const RANK_LIMIT: u64 = 1 << 48;

#[derive(Clone, Debug)]
enum Alphabet {
    /// Words of syllables `onset nucleus`, the last nucleus from `last`, then an optional coda.
    /// Onsets and codas use only consonant letters, nuclei only vowel letters, so every word
    /// splits back into its syllables in one way: distinct indices give distinct words.
    Syllables {
        onsets: Vec<&'static str>,
        nuclei: Vec<&'static str>,
        last: Vec<&'static str>,
        codas: Vec<&'static str>,
    },
    /// Words of `len` units (single characters or fixed-length groups) for `len >= min_len`.
    Units { units: Vec<&'static str>, min_len: u32 },
}

#[derive(Clone, Debug)]
struct LengthClass {
    start: u64,
    size: u64,
    mul: u64,
    add: u64,
    len: u32,
    coda: bool,
}

/// Rank -> word, a bijection from ranks onto words of increasing length.
#[derive(Clone, Debug)]
struct WordGen {
    alphabet: Alphabet,
    classes: Vec<LengthClass>,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

fn shuffled(items: &[&'static str], rng: &mut Rng) -> Vec<&'static str> {
    let mut v = items.to_vec();
    for i in (1..v.len()).rev() {
        let j = rng.index(i + 1);
        v.swap(i, j);
    }
    v
}

impl WordGen {
    fn new(alphabet: Alphabet, rng: &mut Rng) -> WordGen {
        let alphabet = match alphabet {
            Alphabet::Syllables { onsets, nuclei, last, codas } => Alphabet::Syllables {
                onsets: shuffled(&onsets, rng),
                nuclei: shuffled(&nuclei, rng),
                last: shuffled(&last, rng),
                codas: shuffled(&codas, rng),
            },
            Alphabet::Units { units, min_len } => {
                Alphabet::Units { units: shuffled(&units, rng), min_len }
            }
        };
        let mut classes = Vec::new();
        let mut start = 0u64;
        let mut len = match &alphabet {
            Alphabet::Syllables { .. } => 1,
            Alphabet::Units { min_len, .. } => (*min_len).max(1),
        };
        while start < RANK_LIMIT {
            let shapes: &[bool] = match &alphabet {
                Alphabet::Syllables { codas, .. } if !codas.is_empty() => &[false, true],
                _ => &[false],
            };
            for &coda in shapes {
                let size = match &alphabet {
                    Alphabet::Syllables { onsets, nuclei, last, codas } => {
                        let mut n = (last.len() as u64).saturating_mul(onsets.len() as u64);
                        for _ in 1..len {
                            n = n
                                .saturating_mul(onsets.len() as u64)
                                .saturating_mul(nuclei.len() as u64);
                        }
                        if coda {
                            n = n.saturating_mul(codas.len() as u64);
                        }
                        n
                    }
                    Alphabet::Units { units, .. } => {
                        (0..len).fold(1u64, |n, _| n.saturating_mul(units.len() as u64))
                    }
                }
                .clamp(1, RANK_LIMIT);
                let mut mul = (rng.next_u64() % size) | 1;
                while gcd(mul, size) != 1 {
                    mul = (mul + 2) % size.max(2);
                    if mul == 0 {
                        mul = 1;
                    }
                }
                let add = rng.below(size);
                classes.push(LengthClass { start, size, mul, add, len, coda });
                start = start.saturating_add(size);
            }
            len += 1;
        }
        WordGen { alphabet, classes }
    }

    fn push_word(&self, rank: u64, out: &mut String) {
        let class = self
            .classes
            .iter()
            .find(|c| rank < c.start.saturating_add(c.size))
            .unwrap_or_else(|| self.classes.last().expect("at least one class"));
        let offset = (rank - class.start.min(rank)) % class.size;
        let mut idx = if class.size <= 1 << 31 {
            (class.mul * offset + class.add) % class.size
        } else {
            ((u128::from(class.mul) * u128::from(offset) + u128::from(class.add))
                % u128::from(class.size)) as u64
        };
        let mut digit = |n: usize| -> usize {
            let d = (idx % n as u64) as usize;
            idx /= n as u64;
            d
        };
        match &self.alphabet {
            Alphabet::Syllables { onsets, nuclei, last, codas } => {
                for i in 0..class.len {
                    out.push_str(onsets[digit(onsets.len())]);
                    if i + 1 == class.len {
                        out.push_str(last[digit(last.len())]);
                    } else {
                        out.push_str(nuclei[digit(nuclei.len())]);
                    }
                }
                if class.coda {
                    out.push_str(codas[digit(codas.len())]);
                }
            }
            Alphabet::Units { units, .. } => {
                for _ in 0..class.len {
                    out.push_str(units[digit(units.len())]);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scripts and their built-in words
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Script {
    Latin,
    Accented,
    Cyrillic,
    Greek,
    Arabic,
    Japanese,
    Chinese,
    Thai,
}

const SCRIPTS: [Script; 8] = [
    Script::Latin,
    Script::Accented,
    Script::Cyrillic,
    Script::Greek,
    Script::Arabic,
    Script::Japanese,
    Script::Chinese,
    Script::Thai,
];

/// Non-Latin scripts and their share of the non-ASCII messages and rules.
const SCRIPT_WEIGHTS: [(Script, f64); 7] = [
    (Script::Japanese, 0.25),
    (Script::Accented, 0.20),
    (Script::Arabic, 0.15),
    (Script::Cyrillic, 0.12),
    (Script::Chinese, 0.10),
    (Script::Thai, 0.10),
    (Script::Greek, 0.08),
];

const LATIN_ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z", "bl",
    "br", "ch", "cl", "cr", "dr", "fl", "fr", "gr", "pl", "pr", "sh", "sk", "sl", "sp", "st", "th",
    "tr",
];
const LATIN_NUCLEI: &[&str] = &["a", "e", "i", "o", "u", "ai", "ea", "ee", "oo", "ou"];
const LATIN_CODAS: &[&str] = &["n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck"];

const ACCENTED_NUCLEI: &[&str] =
    &["a", "e", "i", "o", "u", "á", "é", "í", "ó", "ú", "à", "è", "ê", "ô", "ü", "ö", "ä", "ã"];
const ACCENTED_LAST: &[&str] =
    &["á", "é", "í", "ó", "ú", "à", "è", "ê", "ô", "â", "î", "ü", "ö", "ä", "ã", "õ", "ão", "ía"];
const ACCENTED_ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "l", "m", "n", "p", "r", "s", "t", "v", "z", "ñ", "ç", "ch", "br",
    "tr", "pr", "gr", "pl",
];
const ACCENTED_CODAS: &[&str] = &["n", "r", "s", "l", "z"];
#[rustfmt::skip]
const ACCENTED_WORDS: &[&str] = &[
    "à", "é", "más", "qué", "sí", "así", "también", "où", "très", "déjà", "über", "você", "não",
    "está", "después", "café", "été", "école", "hôtel", "noël", "crème", "garçon", "français",
    "año", "niño", "mañana", "señor", "corazón", "canción", "fútbol", "música", "película", "schön",
    "grüße", "müde", "straße", "mädchen", "köln", "münchen", "fußball", "são", "coração", "irmão",
    "ação", "família", "cidade", "avião", "crêpe", "fête", "forêt", "bientôt", "déjà-vu", "brûlée",
    "jalapeño", "açaí", "português", "español", "méxico", "bogotá", "perú", "zürich",
];

const CYRILLIC_ONSETS: &[&str] = &[
    "б", "в", "г", "д", "ж", "з", "к", "л", "м", "н", "п", "р", "с", "т", "ф", "х", "ц", "ч", "ш",
    "бр", "гр", "др", "кр", "пр", "тр", "ст", "ск", "сл", "зв",
];
const CYRILLIC_NUCLEI: &[&str] = &["а", "е", "и", "о", "у", "ы", "я", "ю", "ё", "э"];
const CYRILLIC_CODAS: &[&str] = &["н", "т", "к", "р", "л", "м", "й", "с", "ст", "нь", "ть"];
#[rustfmt::skip]
const CYRILLIC_WORDS: &[&str] = &[
    "и", "в", "не", "на", "я", "что", "с", "он", "а", "как", "это", "по", "но", "все", "так",
    "сегодня", "завтра", "москва", "россия", "привет", "спасибо", "погода", "работа", "друзья",
    "музыка", "фильм", "новости", "футбол", "хоккей", "время", "жизнь", "город", "любовь", "кофе",
    "весна", "зима", "лето", "праздник", "день", "рождения", "хорошо", "отлично", "школа", "книга",
    "интернет", "телефон", "игра", "команда", "выборы", "метро", "ночь", "утро", "дом", "человек",
    "страна", "киев", "питер", "снег",
];

const GREEK_ONSETS: &[&str] = &[
    "β", "γ", "δ", "ζ", "θ", "κ", "λ", "μ", "ν", "ξ", "π", "ρ", "σ", "τ", "φ", "χ", "ψ", "στ",
    "τρ", "κρ", "πρ", "γρ", "σκ", "σπ",
];
const GREEK_NUCLEI: &[&str] =
    &["α", "ε", "η", "ι", "ο", "υ", "ω", "ά", "έ", "ή", "ί", "ό", "ύ", "ώ", "ου", "αι", "ει", "οι"];
const GREEK_CODAS: &[&str] = &["ς", "ν", "ρ"];
#[rustfmt::skip]
const GREEK_WORDS: &[&str] = &[
    "και", "το", "να", "η", "ο", "της", "του", "την", "με", "σε", "για", "που", "τα", "θα", "από",
    "σήμερα", "αύριο", "αθήνα", "ελλάδα", "καλημέρα", "ευχαριστώ", "καιρός", "δουλειά", "φίλοι",
    "μουσική", "ταινία", "ειδήσεις", "ποδόσφαιρο", "θάλασσα", "καλοκαίρι", "χειμώνας", "καφές",
    "αγάπη", "ζωή", "σπίτι", "πόλη", "σχολείο", "βιβλίο", "τηλέφωνο", "ομάδα", "εκλογές", "νύχτα",
    "πρωί", "ήλιος", "βροχή", "θεσσαλονίκη", "κρήτη",
];

const ARABIC_LETTERS: &[&str] = &[
    "ا", "ب", "ت", "ث", "ج", "ح", "خ", "د", "ذ", "ر", "ز", "س", "ش", "ص", "ض", "ط", "ظ", "ع", "غ",
    "ف", "ق", "ك", "ل", "م", "ن", "ه", "و", "ي",
];
#[rustfmt::skip]
const ARABIC_WORDS: &[&str] = &[
    "في", "من", "على", "أن", "إلى", "عن", "مع", "هذا", "ما", "لا", "هذه", "كان", "التي", "الذي",
    "قد", "اليوم", "غدا", "القاهرة", "الرياض", "دبي", "مصر", "السعودية", "شكرا", "صباح", "الخير",
    "مساء", "الحمد", "لله", "الطقس", "العمل", "الأصدقاء", "الموسيقى", "فيلم", "الأخبار", "كرة",
    "القدم", "مباراة", "الحياة", "الحب", "قهوة", "رمضان", "كريم", "عيد", "مبارك", "الجامعة",
    "المدرسة", "الهاتف", "بيروت", "عمان", "المغرب",
];

const KANJI: &[&str] = &[
    "日", "本", "人", "大", "年", "中", "出", "時", "行", "見", "月", "分", "後", "前", "生", "間",
    "上", "東", "京", "田", "高", "学", "長", "円", "国", "会", "気", "手", "新", "方", "社", "地",
    "場", "自", "事", "意", "合", "市", "物", "電", "話", "車", "食", "店", "家", "花", "山", "川",
    "海", "空", "雨", "雪", "風", "光", "色", "音", "楽", "曲", "歌", "夢", "愛", "心", "声", "朝",
    "夜", "春", "夏", "秋", "冬", "駅", "道", "町", "村", "天", "子", "女", "男", "友",
];
const KATAKANA: &[&str] = &[
    "ア", "イ", "ウ", "エ", "オ", "カ", "キ", "ク", "ケ", "コ", "サ", "シ", "ス", "セ", "ソ", "タ",
    "チ", "ツ", "テ", "ト", "ナ", "ニ", "ヌ", "ネ", "ノ", "ハ", "ヒ", "フ", "ヘ", "ホ", "マ", "ミ",
    "ム", "メ", "モ", "ヤ", "ユ", "ヨ", "ラ", "リ", "ル", "レ", "ロ", "ワ", "ン", "ガ", "ギ", "グ",
    "ゲ", "ゴ", "ザ", "ジ", "ズ", "ゼ", "ゾ", "ダ", "デ", "ド", "バ", "ビ", "ブ", "ベ", "ボ", "パ",
    "ピ", "プ", "ペ", "ポ",
];
#[rustfmt::skip]
const JAPANESE_WORDS: &[&str] = &[
    "の", "に", "は", "を", "が", "で", "と", "も", "から", "まで", "です", "ます", "した", "こと", "この", "その", "今日",
    "明日", "東京", "日本", "大阪", "天気", "仕事", "電車", "学校", "友達", "写真", "音楽", "映画", "ラーメン", "コーヒー", "カレー",
    "ゲーム", "アニメ", "ニュース", "テレビ", "スマホ", "最高", "可愛い", "楽しい", "嬉しい", "眠い", "疲れた", "ありがとう", "おはよう",
    "おやすみ", "頑張る", "桜", "猫", "犬", "雨", "地震", "試合", "野球", "サッカー", "選挙", "誕生日", "ライブ", "新曲", "京都",
    "北海道",
];

const HANZI: &[&str] = &[
    "的", "一", "是", "不", "了", "人", "我", "在", "有", "他", "这", "中", "大", "来", "上", "国",
    "个", "到", "说", "们", "为", "子", "和", "你", "地", "出", "道", "也", "时", "年", "得", "就",
    "那", "要", "下", "以", "生", "会", "自", "着", "去", "之", "过", "家", "学", "对", "可", "她",
    "里", "后", "小", "么", "心", "多", "天", "而", "能", "好", "都", "然", "没", "日", "于", "起",
    "还", "发", "成", "事", "只", "作", "当", "想", "看", "文", "无", "开", "手", "十", "用", "主",
    "行", "方", "又", "如", "前", "所", "本", "见", "经", "头", "面", "公", "同", "三", "已", "老",
    "从", "动", "两", "长",
];
#[rustfmt::skip]
const CHINESE_WORDS: &[&str] = &[
    "的", "了", "是", "我", "不", "在", "有", "这", "人", "你", "他", "就", "都", "也", "很", "今天", "明天", "北京",
    "上海", "中国", "手机", "电影", "音乐", "朋友", "工作", "学习", "天气", "喜欢", "开心", "吃饭", "咖啡", "新闻", "比赛", "足球",
    "篮球", "老师", "学生", "公司", "时间", "问题", "价格", "质量", "快递", "客服", "东西", "不错", "满意", "推荐", "生日", "周末",
    "晚安", "早上好", "谢谢", "加油", "深圳", "广州",
];

const THAI_UNITS: &[&str] = &[
    "กา", "กิ", "กี", "กุ", "กู", "ขา", "ขิ", "ขี", "ขุ", "คา", "คิ", "คี", "คุ", "งา", "งู", "จา", "จิ", "จี",
    "จุ", "ชา", "ชิ", "ชี", "ซา", "ซี", "ดา", "ดิ", "ดี", "ดุ", "ตา", "ติ", "ตี", "ตุ", "ถา", "ถิ", "ทา", "ทิ",
    "ที", "ทุ", "นา", "นิ", "นี", "นุ", "บา", "บิ", "บี", "บุ", "ปา", "ปิ", "ปี", "ปุ", "ผา", "ผิ", "พา", "พิ",
    "พี", "พุ", "ฟา", "ฟี", "มา", "มิ", "มี", "มุ", "ยา", "ยิ", "รา", "ริ", "รี", "รุ", "ลา", "ลิ", "ลี", "ลุ",
    "วา", "วิ", "วี", "สา", "สิ", "สี", "สุ", "หา", "หิ", "อา", "อิ", "อี", "อุ",
];
#[rustfmt::skip]
const THAI_WORDS: &[&str] = &[
    "ที่", "และ", "ใน", "เป็น", "ของ", "มี", "ไม่", "ได้", "จะ", "ก็", "ให้", "การ", "ว่า", "กับ",
    "นี้", "วันนี้", "พรุ่งนี้", "กรุงเทพ", "ประเทศไทย", "สวัสดี", "ขอบคุณ", "อากาศ", "ทำงาน",
    "เพื่อน", "เพลง", "หนัง", "ข่าว", "ฟุตบอล", "กาแฟ", "อาหาร", "อร่อย", "สนุก", "มหาวิทยาลัย",
    "โรงเรียน", "ความรัก", "ชีวิต", "ทะเล", "ฝนตก", "ร้อน", "เชียงใหม่", "ภูเก็ต", "ตลาด", "รถไฟ",
    "แมว", "หมา",
];

#[rustfmt::skip]
const EMOJI: &[&str] = &[
    "😂", "❤️", "😍", "🤣", "😊", "🙏", "💕", "😭", "😘", "👍", "😅", "👏", "😁", "🔥", "🥰", "💔", "💖", "💙", "😢",
    "🤔", "😆", "🙄", "💪", "😉", "☺️", "👌", "🤗", "💜", "😔", "😎", "😇", "🌹", "🎉", "✨", "😱", "🌸", "🙌", "😋",
    "💯", "🙈", "👀", "🎶", "😒", "👍🏽", "👏🏻", "🙏🏾", "👨‍👩‍👧", "🏳️‍🌈", "🇯🇵", "🇧🇷", "🇺🇸", "⚽", "☕", "🍕",
    "🎂", "🤦‍♀️", "🥺",
];

#[rustfmt::skip]
const URL_DOMAINS: &[&str] = &[
    "example.com", "www.example.com", "news.example.org", "blog.example.net", "bit.ly", "youtu.be",
    "shop.example.co.uk",
];

impl Script {
    fn builtin(self) -> &'static [&'static str] {
        match self {
            Script::Latin => &[],
            Script::Accented => ACCENTED_WORDS,
            Script::Cyrillic => CYRILLIC_WORDS,
            Script::Greek => GREEK_WORDS,
            Script::Arabic => ARABIC_WORDS,
            Script::Japanese => JAPANESE_WORDS,
            Script::Chinese => CHINESE_WORDS,
            Script::Thai => THAI_WORDS,
        }
    }

    /// Whether words are separated by spaces.
    fn spaced(self) -> bool {
        !matches!(self, Script::Japanese | Script::Chinese | Script::Thai)
    }

    /// Whether the script has letter case (the first word may be capitalised).
    fn cased(self) -> bool {
        matches!(self, Script::Latin | Script::Accented | Script::Cyrillic | Script::Greek)
    }

    fn langs(self) -> &'static [&'static str] {
        match self {
            Script::Latin => &["en"],
            Script::Accented => &["fr", "es", "de", "pt"],
            Script::Cyrillic => &["ru"],
            Script::Greek => &["el"],
            Script::Arabic => &["ar"],
            Script::Japanese => &["ja"],
            Script::Chinese => &["zh"],
            Script::Thai => &["th"],
        }
    }

    /// Top ranks that rule keywords skip (stop words, particles).
    fn head_skip(self) -> usize {
        if self == Script::Latin {
            20
        } else {
            10
        }
    }

    /// Words of lower rank have no successor in messages (a successor of a stop word would
    /// become as frequent as a stop word).
    fn bigram_min_rank(self) -> usize {
        if self == Script::Latin {
            100
        } else {
            30
        }
    }

    /// The share of rule keywords drawn from the message vocabulary (the rest come from the
    /// generated tail).
    fn rule_in_vocabulary(self) -> f64 {
        if self == Script::Latin {
            0.025
        } else {
            0.15
        }
    }

    fn generators(self, rng: &mut Rng) -> (WordGen, Option<WordGen>) {
        let syllables = |onsets: &[&'static str],
                         nuclei: &[&'static str],
                         last: &[&'static str],
                         codas: &[&'static str],
                         rng: &mut Rng| {
            WordGen::new(
                Alphabet::Syllables {
                    onsets: onsets.to_vec(),
                    nuclei: nuclei.to_vec(),
                    last: last.to_vec(),
                    codas: codas.to_vec(),
                },
                rng,
            )
        };
        let units = |units: &[&'static str], min_len: u32, rng: &mut Rng| {
            WordGen::new(Alphabet::Units { units: units.to_vec(), min_len }, rng)
        };
        match self {
            Script::Latin => {
                (syllables(LATIN_ONSETS, LATIN_NUCLEI, LATIN_NUCLEI, LATIN_CODAS, rng), None)
            }
            Script::Accented => (
                syllables(ACCENTED_ONSETS, ACCENTED_NUCLEI, ACCENTED_LAST, ACCENTED_CODAS, rng),
                None,
            ),
            Script::Cyrillic => (
                syllables(CYRILLIC_ONSETS, CYRILLIC_NUCLEI, CYRILLIC_NUCLEI, CYRILLIC_CODAS, rng),
                None,
            ),
            Script::Greek => {
                (syllables(GREEK_ONSETS, GREEK_NUCLEI, GREEK_NUCLEI, GREEK_CODAS, rng), None)
            }
            Script::Arabic => (units(ARABIC_LETTERS, 3, rng), None),
            Script::Japanese => (units(KANJI, 2, rng), Some(units(KATAKANA, 3, rng))),
            Script::Chinese => (units(HANZI, 2, rng), None),
            Script::Thai => (units(THAI_UNITS, 2, rng), None),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lexicon: the shared vocabulary of messages and rules
// ---------------------------------------------------------------------------------------------

/// One script's vocabulary: the first `size` ranks precomputed, Zipf sampling over them, and
/// the generator for every rank.
#[derive(Clone, Debug)]
struct ScriptLexicon {
    script: Script,
    gen: (WordGen, Option<WordGen>),
    /// Word `r` starts at byte `r * slot`, padded with spaces to the slot size, so that looking
    /// a word up touches one place in memory.
    text: String,
    slot: usize,
    lens: Vec<u8>,
    zipf: Zipf,
    successor_seed: u64,
}

impl ScriptLexicon {
    fn new(script: Script, vocabulary_seed: u64, size: usize, exponent: f64) -> ScriptLexicon {
        let mut rng = Rng::for_item(vocabulary_seed, STREAM_VOCABULARY, script as u64);
        let gen = script.generators(&mut rng);
        let mut lex = ScriptLexicon {
            script,
            gen,
            text: String::new(),
            slot: 0,
            lens: Vec::with_capacity(size),
            zipf: Zipf::new(size, exponent),
            successor_seed: mix64(vocabulary_seed ^ (script as u64).wrapping_mul(0x0001_2345_6789)),
        };
        let mut all = String::with_capacity(size * 8);
        let mut ends = Vec::with_capacity(size);
        for rank in 0..size as u64 {
            lex.push_generated(rank, &mut all);
            ends.push(all.len());
        }
        // Words are short (tens of bytes); a longer one would be cut at a character boundary.
        let mut longest = 0;
        let mut start = 0;
        for &end in &ends {
            longest = longest.max(end - start);
            start = end;
        }
        lex.slot = (longest.min(255) + 1).next_multiple_of(8);
        lex.text.reserve(size * lex.slot);
        let mut start = 0;
        for &end in &ends {
            let mut word = &all[start..end];
            let mut cut = word.len().min(255);
            while !word.is_char_boundary(cut) {
                cut -= 1;
            }
            word = &word[..cut];
            lex.text.push_str(word);
            lex.lens.push(word.len() as u8);
            for _ in word.len()..lex.slot {
                lex.text.push(' ');
            }
            start = end;
        }
        lex
    }

    fn size(&self) -> usize {
        self.lens.len()
    }

    /// The word of `rank`, computed (not looked up).
    fn push_generated(&self, rank: u64, out: &mut String) {
        let builtin = self.script.builtin();
        if let Some(w) = builtin.get(rank as usize) {
            out.push_str(w);
            return;
        }
        let g = rank - builtin.len() as u64;
        match &self.gen {
            (a, None) => a.push_word(g, out),
            (a, Some(b)) => {
                if g.is_multiple_of(2) {
                    a.push_word(g / 2, out)
                } else {
                    b.push_word(g / 2, out)
                }
            }
        }
    }

    fn word(&self, rank: usize) -> &str {
        let start = rank * self.slot;
        &self.text[start..start + usize::from(self.lens[rank])]
    }

    fn push_word(&self, rank: u64, out: &mut String) {
        if rank < self.size() as u64 {
            out.push_str(self.word(rank as usize));
        } else {
            self.push_generated(rank, out);
        }
    }

    /// A word rank drawn like message words.
    fn sample(&self, rng: &mut Rng) -> usize {
        self.zipf.sample(rng)
    }

    /// A word rank drawn like message words, skipping the stop words.
    fn sample_context(&self, rng: &mut Rng) -> usize {
        let skip = self.script.head_skip().min(self.size() - 1);
        for _ in 0..8 {
            let r = self.sample(rng);
            if r >= skip {
                return r;
            }
        }
        skip + rng.index(self.size() - skip)
    }

    /// The fixed successor of `rank` (a word that often follows it).
    fn successor(&self, rank: u64) -> usize {
        let mut rng = Rng::for_item(self.successor_seed, STREAM_SUCCESSOR, rank);
        self.sample_context(&mut rng)
    }

    /// A rule keyword rank: a few from the message vocabulary, most from the generated tail.
    fn keyword_rank(&self, rng: &mut Rng) -> u64 {
        let size = self.size() as u64;
        if rng.chance(self.script.rule_in_vocabulary()) {
            let skip = (self.script.head_skip() as u64).min(size - 1);
            skip + rng.below(size - skip)
        } else {
            let x = det_exp(rng.f64() * (4.0 * LN2)); // [1, 16)
            ((size as f64 * x) as u64).max(size)
        }
    }
}

/// The generated screen names.
#[derive(Clone, Debug)]
struct UserPool {
    gen: WordGen,
    seed: u64,
    names: Vec<String>,
    zipf: Zipf,
}

impl UserPool {
    fn new(vocabulary_seed: u64, size: usize) -> UserPool {
        let mut rng = Rng::for_item(vocabulary_seed, STREAM_USERS, 0);
        let gen = WordGen::new(
            Alphabet::Syllables {
                onsets: LATIN_ONSETS.to_vec(),
                nuclei: LATIN_NUCLEI.to_vec(),
                last: LATIN_NUCLEI.to_vec(),
                codas: LATIN_CODAS.to_vec(),
            },
            &mut rng,
        );
        let mut pool = UserPool {
            gen,
            seed: mix64(vocabulary_seed ^ STREAM_USERS),
            names: Vec::new(),
            zipf: Zipf::new(size, 1.0),
        };
        pool.names = (0..size as u64).map(|u| pool.name(u)).collect();
        pool
    }

    /// Screen name `u`: a pseudo-word, sometimes with digits; distinct for distinct `u` (the
    /// letters alone differ), at most 15 characters.
    fn name(&self, u: u64) -> String {
        let mut name = String::with_capacity(16);
        self.gen.push_word(u + 400, &mut name);
        let h = mix64(self.seed ^ u);
        let style = h % 10;
        let digits = 1 + (h >> 8) % 4;
        if style >= 5 && name.len() + digits as usize + usize::from(style >= 8) <= 15 {
            if style >= 8 {
                name.push('_');
            }
            let n = (h >> 16) % 10u64.pow(digits as u32);
            name.push_str(&n.to_string());
        }
        name
    }
}

#[derive(Clone, Debug)]
struct Lexicon {
    scripts: Vec<ScriptLexicon>,
    users: UserPool,
    script_pick: Sampler,
}

impl Lexicon {
    fn new(vocabulary_seed: u64, vocabulary: usize, exponent: f64, users: usize) -> Lexicon {
        let vocabulary = vocabulary.max(100);
        let scripts = SCRIPTS
            .iter()
            .map(|&s| {
                let size = if s == Script::Latin {
                    vocabulary
                } else {
                    (vocabulary / 10).max(s.builtin().len() + 10)
                };
                ScriptLexicon::new(s, vocabulary_seed, size, exponent)
            })
            .collect();
        let weights: Vec<f64> = SCRIPT_WEIGHTS.iter().map(|&(_, w)| w).collect();
        Lexicon {
            scripts,
            users: UserPool::new(vocabulary_seed, users.max(1)),
            script_pick: Sampler::new(&weights),
        }
    }

    fn script(&self, s: Script) -> &ScriptLexicon {
        &self.scripts[s as usize]
    }

    fn pick_script(&self, rng: &mut Rng) -> Script {
        SCRIPT_WEIGHTS[self.script_pick.sample(rng)].0
    }
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// What to generate: the size and shape of a synthetic message stream.
///
/// The defaults are the standard workload (see the [module documentation](self)). Setters
/// take and return the configuration, builder style:
///
/// ```
/// use streamtrack_workload::WorkloadConfig;
/// let config = WorkloadConfig::default().seed(42).count(10).emoji(0.5);
/// assert_eq!(config.messages().len(), 10);
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkloadConfig {
    /// Seed of the message stream. Default 0.
    pub seed: u64,
    /// Seed of the vocabulary (words and screen names), shared with [`RuleSetConfig`]. Default 0.
    pub vocabulary_seed: u64,
    /// Number of messages; `usize::MAX` makes [`WorkloadConfig::message_stream`] endless.
    /// Default 200,000.
    pub messages: usize,
    /// Latin-script words that messages draw from (Zipf ranks); each other script gets a tenth
    /// of this. At least 100. Default 50,000.
    pub vocabulary: usize,
    /// The Zipf exponent of word frequencies. Default 1.0.
    pub zipf_exponent: f64,
    /// Size of the pool of authors and mentioned users. Default 10,000.
    pub users: usize,
    /// Fraction of messages with at least one non-ASCII character, emoji included (the rest of
    /// the non-ASCII messages are written in other scripts). Default 0.17.
    pub non_ascii: f64,
    /// Fraction of messages with hashtags. Default 0.10.
    pub hashtags: f64,
    /// Fraction of messages with mentions. Default 0.10.
    pub mentions: f64,
    /// Fraction of messages with URLs. Default 0.10.
    pub urls: f64,
    /// Fraction of messages with emoji. Default 0.10.
    pub emoji: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            seed: 0,
            vocabulary_seed: 0,
            messages: 200_000,
            vocabulary: 50_000,
            zipf_exponent: 1.0,
            users: 10_000,
            non_ascii: 0.17,
            hashtags: 0.10,
            mentions: 0.10,
            urls: 0.10,
            emoji: 0.10,
        }
    }
}

impl WorkloadConfig {
    /// Sets the seed of the message stream.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the seed of the vocabulary.
    pub fn vocabulary_seed(mut self, seed: u64) -> Self {
        self.vocabulary_seed = seed;
        self
    }

    /// Sets the number of messages, the field [`messages`](WorkloadConfig::messages)
    /// (`usize::MAX`: endless stream).
    pub fn count(mut self, n: usize) -> Self {
        self.messages = n;
        self
    }

    /// Sets the vocabulary size (at least 100 is used).
    pub fn vocabulary(mut self, n: usize) -> Self {
        self.vocabulary = n;
        self
    }

    /// Sets the Zipf exponent.
    pub fn zipf_exponent(mut self, s: f64) -> Self {
        self.zipf_exponent = s;
        self
    }

    /// Sets the size of the user pool.
    pub fn users(mut self, n: usize) -> Self {
        self.users = n;
        self
    }

    /// Sets the fraction of messages with non-ASCII characters.
    pub fn non_ascii(mut self, p: f64) -> Self {
        self.non_ascii = p;
        self
    }

    /// Sets the fraction of messages with hashtags.
    pub fn hashtags(mut self, p: f64) -> Self {
        self.hashtags = p;
        self
    }

    /// Sets the fraction of messages with mentions.
    pub fn mentions(mut self, p: f64) -> Self {
        self.mentions = p;
        self
    }

    /// Sets the fraction of messages with URLs.
    pub fn urls(mut self, p: f64) -> Self {
        self.urls = p;
        self
    }

    /// Sets the fraction of messages with emoji.
    pub fn emoji(mut self, p: f64) -> Self {
        self.emoji = p;
        self
    }

    /// A rule-set configuration with the same seeds, vocabulary, exponent and user pool, so
    /// that its rules match these messages.
    pub fn rule_set(&self) -> RuleSetConfig {
        RuleSetConfig {
            seed: self.seed,
            vocabulary_seed: self.vocabulary_seed,
            vocabulary: self.vocabulary,
            zipf_exponent: self.zipf_exponent,
            users: self.users,
            ..RuleSetConfig::default()
        }
    }

    /// Prepares the vocabulary (a few milliseconds) and returns a generator for single
    /// messages.
    pub fn generator(&self) -> MessageGenerator {
        let lexicon =
            Lexicon::new(self.vocabulary_seed, self.vocabulary, self.zipf_exponent, self.users);
        let emoji = self.emoji.clamp(0.0, 1.0);
        let script_share = if emoji >= 1.0 {
            0.0
        } else {
            (1.0 - (1.0 - self.non_ascii.clamp(0.0, 1.0)) / (1.0 - emoji)).clamp(0.0, 1.0)
        };
        MessageGenerator { config: self.clone(), lexicon, script_share }
    }

    /// All the messages (as many as the field `messages` says), ids `"0"`, `"1"`, … A shorter
    /// stream with the same seeds is a prefix of a longer one.
    ///
    /// Runs out of memory if `messages` is `usize::MAX`; use
    /// [`WorkloadConfig::message_stream`] for endless streams.
    pub fn messages(&self) -> Vec<Message> {
        self.message_stream().collect()
    }

    /// The messages as an iterator, generated one at a time (endless when `messages` is
    /// `usize::MAX`). Yields exactly what [`WorkloadConfig::messages`] returns.
    pub fn message_stream(&self) -> MessageStream {
        MessageStream { generator: self.generator(), next: 0, end: self.messages as u64 }
    }
}

/// An endless stream of standard-workload messages with the given seed: a firehose.
pub fn firehose(seed: u64) -> MessageStream {
    WorkloadConfig::default().seed(seed).count(usize::MAX).message_stream()
}

/// Generates any message of a configured stream on its own (message `i` does not depend on
/// the others, so streams can be split among threads).
#[derive(Clone, Debug)]
pub struct MessageGenerator {
    config: WorkloadConfig,
    lexicon: Lexicon,
    /// Probability that a message is written in a non-Latin script or with accents.
    script_share: f64,
}

/// The iterator of [`WorkloadConfig::message_stream`] and [`firehose`].
#[derive(Clone, Debug)]
pub struct MessageStream {
    generator: MessageGenerator,
    next: u64,
    end: u64,
}

impl Iterator for MessageStream {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        if self.next >= self.end {
            return None;
        }
        let m = self.generator.message(self.next);
        self.next += 1;
        Some(m)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.end - self.next;
        let n = usize::try_from(left).unwrap_or(usize::MAX);
        (n, usize::try_from(left).ok())
    }

    fn nth(&mut self, n: usize) -> Option<Message> {
        self.next = self.next.saturating_add(n as u64).min(self.end);
        self.next()
    }
}

/// Probabilities in 16-bit fixed point (`p * 65536`).
const P16_BIGRAM: u64 = 9_830; // 0.15: the next word is the previous word's successor
const P16_40: u64 = 26_214;
const P16_20: u64 = 13_107;
const P16_14: u64 = 9_175;
const P16_10: u64 = 6_554;
const P16_8: u64 = 5_243;
const P16_7: u64 = 4_588;
const P16_5: u64 = 3_277;
const P16_4: u64 = 2_621;
const P16_1: u64 = 655;

/// Target text length in bytes: Kumaraswamy(2, 5) over the allowed range (mean about 140,
/// mode about 130).
fn target_length(rng: &mut Rng) -> usize {
    let u = rng.f64();
    let t = 1.0 - det_pow(1.0 - u, 1.0 / 5.0);
    let x = if t > 0.0 { t.sqrt() } else { 0.0 };
    let span = (MAX_MESSAGE_BYTES - MIN_MESSAGE_BYTES) as f64;
    (MIN_MESSAGE_BYTES + (x * span) as usize).min(MAX_MESSAGE_BYTES)
}

fn push_capitalized(word: &str, out: &mut String) {
    let mut chars = word.chars();
    if let Some(c) = chars.next() {
        out.extend(c.to_uppercase());
        out.push_str(chars.as_str());
    }
}

impl MessageGenerator {
    /// The configuration this generator was made from.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// Message number `index` (its id is `index` in decimal).
    pub fn message(&self, index: u64) -> Message {
        let cfg = &self.config;
        let lex = &self.lexicon;
        let mut rng = Rng::for_item(cfg.seed, STREAM_MESSAGES, index);
        let target = target_length(&mut rng);
        let script =
            if rng.chance(self.script_share) { lex.pick_script(&mut rng) } else { Script::Latin };
        let has_hashtag = rng.chance(cfg.hashtags);
        let has_mention = rng.chance(cfg.mentions);
        let has_url = rng.chance(cfg.urls);
        let has_emoji = rng.chance(cfg.emoji);
        let author = lex.users.zipf.sample(&mut rng);

        let mut prefix = String::new();
        let mut is_retweet = false;
        let mut inline: Vec<String> = Vec::new();
        if has_mention {
            let name = &lex.users.names[lex.users.zipf.sample(&mut rng)];
            let style = rng.f64();
            if style < 0.45 {
                prefix = format!("@{name} ");
            } else if style < 0.65 {
                prefix = format!("RT @{name}: ");
                is_retweet = true;
            } else {
                inline.push(format!("@{name}"));
            }
        }
        // Pieces after the body, each with its leading separator.
        let mut glued = String::new();
        let mut suffix: Vec<String> = Vec::new();
        if has_hashtag {
            let n = if rng.chance(0.25) { 2 } else { 1 };
            for _ in 0..n {
                suffix.push(format!(" #{}", self.hashtag(&mut rng, script)));
            }
        }
        if has_url {
            suffix.push(format!(" {}", self.url(&mut rng)));
        }
        if has_emoji {
            let mut e = String::new();
            let n = 1 + rng.index(3);
            let first = rng.pick(EMOJI);
            for i in 0..n {
                e.push_str(if i > 0 && rng.chance(0.5) { rng.pick(EMOJI) } else { first });
            }
            let place = rng.f64();
            if place < 0.35 {
                glued = e;
            } else if place < 0.7 {
                suffix.push(format!(" {e}"));
            } else {
                inline.push(e);
            }
        }
        for i in (1..suffix.len()).rev() {
            let j = rng.index(i + 1);
            suffix.swap(i, j);
        }
        // Inline items take their length plus up to two spaces.
        let fixed = prefix.len() + glued.len() + suffix.iter().map(String::len).sum::<usize>();
        let inline_len = inline.iter().map(String::len).sum::<usize>();
        let budget = target.saturating_sub(fixed + inline_len + 2 * inline.len());
        let min = MIN_MESSAGE_BYTES.saturating_sub(fixed + inline_len);
        let mut text = String::with_capacity(target + 32);
        text.push_str(&prefix);
        self.push_body(&mut rng, script, budget, min, &mut inline, &mut text);
        text.push_str(&glued);
        for s in &suffix {
            text.push_str(s);
        }
        if text.len() > MAX_MESSAGE_BYTES {
            // Not reached with the built-in word lists; a safety net for odd configurations.
            let mut cut = MAX_MESSAGE_BYTES;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }

        let mut message =
            Message::new(index.to_string(), text).with_user(lex.users.names[author].clone());
        message.is_retweet = is_retweet;
        let lang_roll = rng.f64();
        if script == Script::Latin {
            if lang_roll < 0.6 {
                message.lang = Some("en".into());
            } else if lang_roll < 0.65 {
                message.lang = Some("und".into());
            }
        } else if lang_roll < 0.85 {
            message.lang = Some(rng.pick(script.langs()).into());
        }
        message
    }

    fn hashtag(&self, rng: &mut Rng, script: Script) -> String {
        let s = if script != Script::Latin && rng.chance(0.8) { script } else { Script::Latin };
        let lex = self.lexicon.script(s);
        let mut tag = String::new();
        if s.cased() && rng.chance(0.2) {
            push_capitalized(lex.word(lex.sample_context(rng)), &mut tag);
            push_capitalized(lex.word(lex.sample_context(rng)), &mut tag);
        } else {
            tag.push_str(lex.word(lex.sample_context(rng)));
        }
        tag
    }

    fn url(&self, rng: &mut Rng) -> String {
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let mut url = String::from(if rng.chance(0.1) { "http://" } else { "https://" });
        if rng.chance(0.6) {
            url.push_str("t.co/");
            for _ in 0..10 {
                url.push(ALNUM[rng.index(ALNUM.len())] as char);
            }
        } else {
            let lex = self.lexicon.script(Script::Latin);
            url.push_str(rng.pick(URL_DOMAINS));
            url.push('/');
            url.push_str(lex.word(lex.sample_context(rng)));
            if rng.chance(0.4) {
                url.push('/');
                url.push_str(lex.word(lex.sample_context(rng)));
            }
        }
        url
    }

    /// Appends words of `script` to `out` until the body is about `budget` bytes long (and at
    /// least `min`), placing the `inline` items among them.
    fn push_body(
        &self,
        rng: &mut Rng,
        script: Script,
        budget: usize,
        min: usize,
        inline: &mut Vec<String>,
        out: &mut String,
    ) {
        let base = out.len();
        let inline_at = 1 + rng.index(4);
        let mut words = 0usize;
        let mut fails = 0;
        let mut prev: Option<(Script, usize)> = None;
        let mut capitalize = script.cased() && rng.chance(0.6);
        // Inline items are part of `fixed`, not of the body's budget.
        let mut inline_bytes = 0;
        loop {
            let len = out.len() - base - inline_bytes;
            if words >= inline_at {
                if let Some(item) = inline.pop() {
                    // A mention needs a non-word character on both sides to be one.
                    let mention = item.starts_with('@');
                    let before = out.len();
                    if out.len() > base && !out.ends_with(' ') && (script.spaced() || mention) {
                        out.push(' ');
                    }
                    out.push_str(&item);
                    if mention && !script.spaced() {
                        out.push(' ');
                    }
                    inline_bytes += out.len() - before;
                    prev = None;
                    continue;
                }
            }
            // One random number decides the small things: 16 bits each for the successor,
            // the word's script, the separator or capitals, and punctuation.
            let bits = rng.next_u64();
            let chance16 = |shift: u32, p: u64| (bits >> shift) & 0xffff < p;
            let (s, rank) = match prev {
                Some((ps, pr)) if pr >= ps.bigram_min_rank() && chance16(0, P16_BIGRAM) => {
                    (ps, self.lexicon.script(ps).successor(pr as u64))
                }
                _ => {
                    let s = if script == Script::Accented && words > 0 && !chance16(16, P16_40) {
                        Script::Latin
                    } else {
                        script
                    };
                    (s, self.lexicon.script(s).sample(rng))
                }
            };
            let word = self.lexicon.script(s).word(rank);
            let mark = out.len();
            let was_capitalized = capitalize;
            if out.len() > base && !out.ends_with(' ') {
                let space = match script {
                    Script::Japanese | Script::Chinese => chance16(32, P16_5),
                    Script::Thai => chance16(32, P16_20),
                    _ => true,
                };
                if space {
                    out.push(' ');
                }
            }
            if capitalize {
                push_capitalized(word, out);
                capitalize = false;
            } else if s == Script::Latin && chance16(32, P16_1) {
                out.extend(word.chars().map(|c| c.to_ascii_uppercase()));
            } else {
                out.push_str(word);
            }
            let p = (bits >> 48) & 0xffff;
            if p < P16_14 {
                match script {
                    Script::Japanese | Script::Chinese => {
                        if p < P16_10 {
                            out.push(if script == Script::Japanese { '、' } else { '，' });
                        } else {
                            out.push_str(rng.pick(&["。", "！", "？"]));
                        }
                    }
                    Script::Thai => {}
                    Script::Arabic => {
                        if p < P16_4 {
                            out.push('،');
                        } else if p < P16_7 {
                            out.push_str(rng.pick(&[".", "!", "؟"]));
                        }
                    }
                    _ => {
                        if p < P16_4 {
                            out.push(',');
                        } else if p < P16_8 {
                            out.push_str(rng.pick(&[".", "!", "?", "...", "!!"]));
                            capitalize = script.cased() && rng.chance(0.8);
                        }
                    }
                }
            }
            let fits = len + (out.len() - mark) <= budget;
            if !fits && len >= min && words > 0 {
                out.truncate(mark);
                capitalize = was_capitalized;
                fails += 1;
                prev = None;
                if fails >= 3 {
                    break;
                }
                continue;
            }
            words += 1;
            prev = Some((s, rank));
        }
        while let Some(item) = inline.pop() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
            out.push_str(&item);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------------------------

/// The kind of a generated rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RuleKind {
    /// One keyword: `word`.
    Keyword,
    /// AND of 2 or 3 keywords: `word1 word2 [word3]`.
    And,
    /// An exact two-word phrase: `"word1 word2"` (no space inside for Japanese, Chinese and
    /// Thai, which are written without spaces).
    Phrase,
    /// A keyword and a negated context word: `word -other`.
    Negation,
    /// A hashtag, alone or with a keyword: `#tag` or `#tag word`.
    Hashtag,
    /// An author, alone or with a keyword: `from:user` or `from:user word`.
    From,
}

impl RuleKind {
    /// A short lowercase label: `keyword`, `and`, `phrase`, `negation`, `hashtag` or `from`.
    pub fn label(self) -> &'static str {
        match self {
            RuleKind::Keyword => "keyword",
            RuleKind::And => "and",
            RuleKind::Phrase => "phrase",
            RuleKind::Negation => "negation",
            RuleKind::Hashtag => "hashtag",
            RuleKind::From => "from",
        }
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// The proportions of rule kinds. They need not sum to 1 (they are weights).
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct RuleMix {
    /// One keyword. Default 0.60.
    pub keyword: f64,
    /// AND of 2-3 keywords. Default 0.25.
    pub and: f64,
    /// Exact two-word phrase. Default 0.10.
    pub phrase: f64,
    /// Negation, hashtag or `from:` (a third each). Default 0.05.
    pub special: f64,
}

impl Default for RuleMix {
    fn default() -> Self {
        RuleMix { keyword: 0.60, and: 0.25, phrase: 0.10, special: 0.05 }
    }
}

impl RuleMix {
    /// A mix with the given weights.
    pub fn new(keyword: f64, and: f64, phrase: f64, special: f64) -> Self {
        RuleMix { keyword, and, phrase, special }
    }
}

/// What rule sets to generate.
///
/// ```
/// use streamtrack_workload::{RuleKind, RuleSetConfig};
/// let rules = RuleSetConfig::default().seed(1).rules(10);
/// assert_eq!(rules[3].id, "3");
/// let only_phrases = RuleSetConfig::default()
///     .mix(streamtrack_workload::RuleMix::new(0.0, 0.0, 1.0, 0.0))
///     .rules(5);
/// assert!(only_phrases.iter().all(|r| r.kind == RuleKind::Phrase));
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RuleSetConfig {
    /// Seed of the rule set. Default 0.
    pub seed: u64,
    /// Seed of the vocabulary; must equal the messages' for the rules to match them. Default 0.
    pub vocabulary_seed: u64,
    /// The message vocabulary size (as in [`WorkloadConfig::vocabulary`]); keywords beyond it
    /// come from the generated tail. Default 50,000.
    pub vocabulary: usize,
    /// The Zipf exponent of the messages (context words are drawn with it). Default 1.0.
    pub zipf_exponent: f64,
    /// The messages' user pool size (as in [`WorkloadConfig::users`]); `from:` names users
    /// among twice as many, so half of them never post. Default 10,000.
    pub users: usize,
    /// Fraction of rules written in another script or with accents. Default 0.15.
    pub non_ascii: f64,
    /// The proportions of rule kinds. Default: the standard mix.
    pub mix: RuleMix,
    /// Whether rules carry their kind's label as tag. Default true.
    pub tags: bool,
}

impl Default for RuleSetConfig {
    fn default() -> Self {
        RuleSetConfig {
            seed: 0,
            vocabulary_seed: 0,
            vocabulary: 50_000,
            zipf_exponent: 1.0,
            users: 10_000,
            non_ascii: 0.15,
            mix: RuleMix::default(),
            tags: true,
        }
    }
}

impl RuleSetConfig {
    /// Sets the seed of the rule set.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the seed of the vocabulary.
    pub fn vocabulary_seed(mut self, seed: u64) -> Self {
        self.vocabulary_seed = seed;
        self
    }

    /// Sets the message vocabulary size.
    pub fn vocabulary(mut self, n: usize) -> Self {
        self.vocabulary = n;
        self
    }

    /// Sets the Zipf exponent.
    pub fn zipf_exponent(mut self, s: f64) -> Self {
        self.zipf_exponent = s;
        self
    }

    /// Sets the user pool size.
    pub fn users(mut self, n: usize) -> Self {
        self.users = n;
        self
    }

    /// Sets the fraction of non-ASCII rules.
    pub fn non_ascii(mut self, p: f64) -> Self {
        self.non_ascii = p;
        self
    }

    /// Sets the proportions of rule kinds.
    pub fn mix(mut self, mix: RuleMix) -> Self {
        self.mix = mix;
        self
    }

    /// Sets whether rules carry their kind's label as tag.
    pub fn tags(mut self, tags: bool) -> Self {
        self.tags = tags;
        self
    }

    /// Prepares the vocabulary and returns a generator for single rules.
    pub fn generator(&self) -> RuleGenerator {
        let lexicon =
            Lexicon::new(self.vocabulary_seed, self.vocabulary, self.zipf_exponent, self.users);
        let m = &self.mix;
        let weights = [m.keyword, m.and, m.phrase, m.special].map(|w| w.max(0.0));
        let total: f64 = weights.iter().sum();
        let mut cumulative = [0.0; 4];
        let mut acc = 0.0;
        for (c, w) in cumulative.iter_mut().zip(weights) {
            acc += if total > 0.0 { w / total } else { 0.25 };
            *c = acc;
        }
        RuleGenerator { config: self.clone(), lexicon, cumulative }
    }

    /// The first `n` rules, ids `"0"`, `"1"`, … A smaller set is a prefix of a larger one.
    pub fn rules(&self, n: usize) -> Vec<GeneratedRule> {
        let generator = self.generator();
        (0..n as u64).map(|i| generator.rule(i)).collect()
    }
}

/// A generated rule, ready to parse or to write to a rules file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedRule {
    /// The rule id: its index in decimal.
    pub id: String,
    /// The rule text.
    pub value: String,
    /// The dialect of `value` (always [`Dialect::Rule`] for the standard mix).
    pub dialect: Dialect,
    /// The tag (the kind's label when [`RuleSetConfig::tags`] is set).
    pub tag: Option<String>,
    /// What kind of rule this is.
    pub kind: RuleKind,
    /// Whether `value` has a non-ASCII character (its words are in another script or
    /// accented; a `from:` rule whose keyword was left out stays ASCII).
    pub non_ascii: bool,
}

impl GeneratedRule {
    /// Parses the rule with the default limits.
    pub fn parse(&self) -> Result<Rule, RuleError> {
        Parser::new().parse(&self.value, self.dialect)
    }

    /// The rule as one line of a rules file (`{"id": …, "value": …, "tag": …, "dialect": …}`),
    /// without the line feed.
    pub fn to_json_line(&self) -> String {
        let mut s = String::with_capacity(self.value.len() + 64);
        s.push_str("{\"id\": ");
        push_json_string(&self.id, &mut s);
        s.push_str(", \"value\": ");
        push_json_string(&self.value, &mut s);
        if let Some(tag) = &self.tag {
            s.push_str(", \"tag\": ");
            push_json_string(tag, &mut s);
        }
        s.push_str(", \"dialect\": ");
        s.push_str(match self.dialect {
            Dialect::Rule => "\"rule\"",
            Dialect::Track => "\"track\"",
        });
        s.push('}');
        s
    }
}

fn push_json_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Generates any rule of a configured set on its own.
#[derive(Clone, Debug)]
pub struct RuleGenerator {
    config: RuleSetConfig,
    lexicon: Lexicon,
    cumulative: [f64; 4],
}

impl RuleGenerator {
    /// The configuration this generator was made from.
    pub fn config(&self) -> &RuleSetConfig {
        &self.config
    }

    /// Rule number `index` (its id is `index` in decimal).
    pub fn rule(&self, index: u64) -> GeneratedRule {
        let mut rng = Rng::for_item(self.config.seed, STREAM_RULES, index);
        let roll = rng.f64();
        let kind = if roll < self.cumulative[0] {
            RuleKind::Keyword
        } else if roll < self.cumulative[1] {
            RuleKind::And
        } else if roll < self.cumulative[2] {
            RuleKind::Phrase
        } else {
            [RuleKind::Negation, RuleKind::Hashtag, RuleKind::From][rng.index(3)]
        };
        let script = if rng.chance(self.config.non_ascii) {
            self.lexicon.pick_script(&mut rng)
        } else {
            Script::Latin
        };
        let lex = self.lexicon.script(script);
        let mut value = String::with_capacity(32);
        let keyword = |rng: &mut Rng, out: &mut String| lex.push_word(lex.keyword_rank(rng), out);
        match kind {
            RuleKind::Keyword => keyword(&mut rng, &mut value),
            RuleKind::And => {
                keyword(&mut rng, &mut value);
                let n = if rng.chance(0.6) { 2 } else { 3 };
                for _ in 1..n {
                    value.push(' ');
                    if rng.chance(0.5) {
                        value.push_str(lex.word(lex.sample_context(&mut rng)));
                    } else {
                        keyword(&mut rng, &mut value);
                    }
                }
            }
            RuleKind::Phrase => {
                let first = lex.keyword_rank(&mut rng);
                let second = if rng.chance(0.7) {
                    lex.successor(first)
                } else {
                    lex.sample_context(&mut rng)
                };
                value.push('"');
                lex.push_word(first, &mut value);
                if script.spaced() {
                    value.push(' ');
                }
                value.push_str(lex.word(second));
                value.push('"');
            }
            RuleKind::Negation => {
                keyword(&mut rng, &mut value);
                let mut other = lex.word(lex.sample_context(&mut rng));
                if other == value {
                    // `word -word` can never match; negate another word.
                    let skip = lex.script.head_skip();
                    other = lex.word(if lex.word(skip) == value { skip + 1 } else { skip });
                }
                value.push_str(" -");
                value.push_str(other);
            }
            RuleKind::Hashtag => {
                value.push('#');
                keyword(&mut rng, &mut value);
                if rng.chance(0.5) {
                    value.push(' ');
                    keyword(&mut rng, &mut value);
                }
            }
            RuleKind::From => {
                let users = self.config.users.max(1) as u64;
                value.push_str("from:");
                value.push_str(&self.lexicon.users.name(rng.below(2 * users)));
                if rng.chance(0.5) {
                    value.push(' ');
                    keyword(&mut rng, &mut value);
                }
            }
        }
        GeneratedRule {
            id: index.to_string(),
            non_ascii: !value.is_ascii(),
            value,
            dialect: Dialect::Rule,
            tag: self.config.tags.then(|| kind.label().to_string()),
            kind,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------------

/// What a message corpus looks like, for benchmark reports.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct WorkloadSummary {
    /// Number of messages.
    pub messages: usize,
    /// Mean text length in UTF-8 bytes.
    pub mean_bytes: f64,
    /// Shortest text, in bytes (0 for no messages).
    pub min_bytes: usize,
    /// Longest text, in bytes.
    pub max_bytes: usize,
    /// Fraction of messages whose text has a non-ASCII character.
    pub non_ascii: f64,
    /// Fraction with at least one hashtag (entity list, or found in the text).
    pub hashtags: f64,
    /// Fraction with at least one mention.
    pub mentions: f64,
    /// Fraction with at least one URL.
    pub urls: f64,
    /// Fraction whose text has an emoji.
    pub emoji: f64,
}

impl fmt::Display for WorkloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} messages, mean {:.1} bytes ({}-{}), {:.1}% non-ASCII, {:.1}% hashtags, \
             {:.1}% mentions, {:.1}% URLs, {:.1}% emoji",
            self.messages,
            self.mean_bytes,
            self.min_bytes,
            self.max_bytes,
            100.0 * self.non_ascii,
            100.0 * self.hashtags,
            100.0 * self.mentions,
            100.0 * self.urls,
            100.0 * self.emoji
        )
    }
}

/// Counts what [`WorkloadSummary`] reports.
pub fn summary(messages: &[Message]) -> WorkloadSummary {
    let n = messages.len();
    if n == 0 {
        return WorkloadSummary::default();
    }
    let mut total = 0usize;
    let mut min = usize::MAX;
    let mut max = 0usize;
    let [mut non_ascii, mut hashtags, mut mentions, mut urls, mut emoji] = [0usize; 5];
    for m in messages {
        let len = m.text.len();
        total += len;
        min = min.min(len);
        max = max.max(len);
        non_ascii += usize::from(!m.text.is_ascii());
        emoji += usize::from(
            !m.text.is_ascii() && m.text.chars().any(|c| char_class(c) == CharClass::Emoji),
        );
        let needs_text = m.hashtags.is_none() || m.mentions.is_none() || m.urls.is_none();
        let extracted = if needs_text { Some(extract_entities(&m.text)) } else { None };
        let has = |list: Option<usize>,
                   found: fn(&streamtrack::message::ExtractedEntities) -> usize| {
            match list {
                Some(k) => k > 0,
                None => extracted.as_ref().is_some_and(|e| found(e) > 0),
            }
        };
        hashtags += usize::from(has(m.hashtags.as_ref().map(Vec::len), |e| e.hashtags.len()));
        mentions += usize::from(has(m.mentions.as_ref().map(Vec::len), |e| e.mentions.len()));
        urls += usize::from(has(m.urls.as_ref().map(Vec::len), |e| e.urls.len()));
    }
    let frac = |k: usize| k as f64 / n as f64;
    WorkloadSummary {
        messages: n,
        mean_bytes: total as f64 / n as f64,
        min_bytes: min,
        max_bytes: max,
        non_ascii: frac(non_ascii),
        hashtags: frac(hashtags),
        mentions: frac(mentions),
        urls: frac(urls),
        emoji: frac(emoji),
    }
}

/// CPU seconds this process has used (all threads, those ended included), from
/// `/proc/self/stat` (clock ticks, assumed 100 per second); `None` elsewhere. The benchmarks
/// compare runs by CPU time beside wall time: on a shared machine wall time measures the
/// neighbours too.
pub fn process_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn deterministic_math_is_accurate() {
        for &x in &[1e-300, 1e-5, 0.3, 1.0, 2.0, 10.0, 12345.678, 1e300] {
            let (a, b) = (det_ln(x), x.ln());
            assert!((a - b).abs() <= 1e-13 * b.abs().max(1.0), "ln {x}: {a} vs {b}");
        }
        for &y in &[-700.0, -20.0, -1.0, -0.1, 0.0, 0.5, 1.0, 4.158, 50.0, 700.0] {
            let (a, b) = (det_exp(y), f64::exp(y));
            assert!((a - b).abs() <= 1e-13 * b, "exp {y}: {a} vs {b}");
        }
        assert!((det_pow(2.0, 10.0) - 1024.0).abs() < 1e-9);
    }

    #[test]
    fn word_generators_are_injective() {
        for &script in &SCRIPTS {
            let mut rng = Rng::new(script as u64);
            let (a, b) = script.generators(&mut rng);
            for gen in std::iter::once(&a).chain(b.as_ref()) {
                let mut seen = HashSet::new();
                for rank in (0..60_000u64).chain(1_000_000..1_020_000) {
                    let mut w = String::new();
                    gen.push_word(rank, &mut w);
                    assert!(!w.is_empty());
                    assert!(seen.insert(w.clone()), "{script:?}: duplicate {w} at {rank}");
                }
            }
        }
    }

    #[test]
    fn sampler_follows_weights() {
        let alias = Sampler::new(&[1.0, 3.0, 0.0, 4.0, 0.0]);
        let mut rng = Rng::new(5);
        let mut counts = [0usize; 5];
        for _ in 0..80_000 {
            counts[alias.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[2] + counts[4], 0);
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((29_000..31_000).contains(&counts[1]), "{counts:?}");
        assert!((39_000..41_000).contains(&counts[3]), "{counts:?}");
    }

    #[test]
    fn screen_names_are_distinct_and_short() {
        let pool = UserPool::new(3, 100);
        let mut seen = HashSet::new();
        for u in 0..40_000 {
            let name = pool.name(u);
            assert!(name.len() <= 15 && !name.is_empty(), "{name}");
            assert!(seen.insert(name));
        }
    }

    #[test]
    fn target_lengths_stay_in_range() {
        let mut rng = Rng::new(1);
        let mut sum = 0;
        for _ in 0..10_000 {
            let t = target_length(&mut rng);
            assert!((MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&t));
            sum += t;
        }
        let mean = sum as f64 / 10_000.0;
        assert!((130.0..150.0).contains(&mean), "{mean}");
    }
}
