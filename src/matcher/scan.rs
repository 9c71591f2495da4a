//! The presearch's fast path: find the words of an ASCII text and hash them, 8 bytes at a time,
//! without building the full tokenisation.
//!
//! For ASCII text without URLs, the words of [`crate::normalize::Tokens`] are exactly the
//! maximal runs of ASCII letters and digits, lower-cased (tested differentially). This scanner
//! finds those runs with SWAR arithmetic on `u64` lanes (a bit per byte, no branch per byte),
//! lower-cases the text in the same pass and hashes each word from its 8-byte chunks.

use super::hash::WordHasher;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
const fn splat(b: u8) -> u64 {
    ONES * b as u64
}

/// High bit set in each byte of `x` (all bytes < 0x80) that is >= `lo`.
#[inline(always)]
fn ge(x: u64, lo: u8) -> u64 {
    x.wrapping_add(splat(0x80 - lo)) & HIGH
}

/// High bit set in each byte of `x` (all bytes < 0x80) in `lo..=hi`.
#[inline(always)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    ge(x, lo) & !ge(x, hi + 1)
}

/// Gathers the high bit of each byte into the low 8 bits (byte 0 -> bit 0).
#[inline(always)]
fn movemask(x: u64) -> u64 {
    ((x & HIGH).wrapping_mul(0x0002_0408_1020_4081)) >> 56
}

/// Whether the scanner applies: ASCII text with nothing a URL could start with (`://` or
/// `www.`, any case). Elsewhere the full tokenizer runs.
pub(crate) fn applies(text: &[u8]) -> bool {
    text.is_ascii()
        && memchr::memmem::find(text, b"://").is_none()
        && !memchr::memchr_iter(b'.', text)
            .any(|i| i >= 3 && text[i - 3..i].eq_ignore_ascii_case(b"www"))
}

/// Calls `f(hash, word)` for each word of the ASCII `text` (lower-cased), in order.
/// `buf` is working memory reused between calls.
#[inline]
pub(crate) fn for_each_word(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    mut f: impl FnMut(u64, &[u8]),
) {
    let n = text.len();
    let padded = n.div_ceil(8) * 8 + 8;
    buf.clear();
    buf.extend_from_slice(text);
    buf.resize(padded, 0);
    // Pass 1: lower-case in place and collect the word-byte mask, 8 bytes at a time.
    let mut in_word = false;
    let mut start = 0usize;
    let mut k = 0;
    while k < padded - 8 {
        let mut x = u64::from_le_bytes(buf[k..k + 8].try_into().expect("8 bytes"));
        x |= in_range(x, b'A', b'Z') >> 2;
        buf[k..k + 8].copy_from_slice(&x.to_le_bytes());
        let word = in_range(x, b'0', b'9') | in_range(x, b'a', b'z');
        let m = movemask(word);
        // Transitions between word and non-word bytes, relative to the previous byte.
        let mut t = m ^ ((m << 1) | u64::from(in_word));
        t &= 0xff;
        while t != 0 {
            let p = k + t.trailing_zeros() as usize;
            if in_word {
                emit(buf, start, p, hasher, &mut f);
            } else {
                start = p;
            }
            in_word = !in_word;
            t &= t - 1;
        }
        k += 8;
    }
    if in_word {
        emit(buf, start, n, hasher, &mut f);
    }
}

#[inline(always)]
fn emit(buf: &[u8], start: usize, end: usize, hasher: &WordHasher, f: &mut impl FnMut(u64, &[u8])) {
    f(hasher.hash_padded(buf, start, end - start), &buf[start..end]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Tokens, UrlMode};

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let h = WordHasher::with_seed(1, 2);
        for_each_word(text.as_bytes(), &mut Vec::new(), &h, |hash, w| {
            assert_eq!(hash, h.hash(w));
            out.push(String::from_utf8(w.to_vec()).unwrap());
        });
        out
    }

    #[test]
    fn swar_helpers() {
        let x = u64::from_le_bytes(*b"aZ09 _~\x7f");
        assert_eq!(movemask(in_range(x, b'a', b'z')), 0b0000_0001);
        assert_eq!(movemask(in_range(x, b'A', b'Z')), 0b0000_0010);
        assert_eq!(movemask(in_range(x, b'0', b'9')), 0b0000_1100);
    }

    #[test]
    fn scanner_equals_tokenizer_on_ascii() {
        let samples = [
            "",
            "a",
            "Hello, World! It's 2024 -- c++ and C# (x_y) tab\there\nnew",
            "exactly8 exactly16bytes!!x 0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
            "  leading and trailing  ",
            "\u{0}ctrl\u{1f}chars\u{7f}del",
            "#tag @user $5 RT: done.",
        ];
        for s in samples {
            assert!(applies(s.as_bytes()));
            let want: Vec<String> =
                Tokens::of(s, UrlMode::Canonicalize).word_texts().map(String::from).collect();
            assert_eq!(words(s), want, "{s:?}");
        }
        for long in 1..200 {
            let s: String = (0..long)
                .map(|i| if i % 7 == 3 { ' ' } else { (b'a' + (i % 26) as u8) as char })
                .collect();
            let want: Vec<String> =
                Tokens::of(&s, UrlMode::Canonicalize).word_texts().map(String::from).collect();
            assert_eq!(words(&s), want, "{s:?}");
        }
    }

    #[test]
    fn urls_and_non_ascii_are_left_to_the_tokenizer() {
        assert!(!applies(b"see http://x.com"));
        assert!(!applies(b"see WWW.x.com"));
        assert!(!applies("café".as_bytes()));
        assert!(applies(b"www is not a url without a dot, nor is http: alone"));
    }
}
