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

/// Whether the scanner applies: ASCII text. (URLs are handled by blanking their scheme and
/// `www.` before scanning: see [`blank_url_prefixes`].)
pub(crate) fn applies(text: &[u8]) -> bool {
    text.is_ascii()
}

/// Whether `text` may hold a URL prefix (`://` or `www.` in any case).
fn may_hold_url(text: &[u8]) -> bool {
    memchr::memchr_iter(b':', text).any(|i| text[i + 1..].starts_with(b"//"))
        || memchr::memchr_iter(b'.', text)
            .any(|i| i >= 3 && text[i - 3..i].eq_ignore_ascii_case(b"www"))
}

/// Overwrites with spaces the part of each raw token that URL canonicalisation removes (the
/// scheme and one `www.`, after leading punctuation). The words of the result are those of
/// the canonical text: the blanked part sits between leading punctuation (no word) and the
/// rest of the token, so no two words merge or split. Only raw tokens holding a `:` or a
/// `.` can hold a URL, so only those are examined.
fn blank_url_prefixes(t: &mut [u8]) {
    let space =
        |c: u8| crate::normalize::char_class(c as char) == crate::normalize::CharClass::Space;
    let mut done_to = 0;
    let mut k = 0;
    while let Some(off) = memchr::memchr2(b':', b'.', &t[k..]) {
        let pos = k + off;
        k = pos + 1;
        if pos < done_to {
            continue;
        }
        let s = t[..pos].iter().rposition(|&c| space(c)).map_or(0, |i| i + 1);
        let e = t[pos..].iter().position(|&c| space(c)).map_or(t.len(), |i| pos + i);
        if let (Some((from, to)), true) = crate::normalize::ascii_url_prefix(&t[s..e]) {
            t[s + from..s + to].fill(b' ');
        }
        done_to = e;
        k = e.max(k);
    }
}

/// Appends the ASCII `text`, lower-cased and padded, to `buf`, and calls `f(hash, start, end)`
/// for each of its words (`buf[start..end]`), in order.
#[inline]
pub(crate) fn for_each_word(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    mut f: impl FnMut(u64, usize, usize),
) {
    let base = buf.len();
    let n = text.len();
    let padded = n.div_ceil(8) * 8 + 8;
    buf.extend_from_slice(text);
    buf.resize(base + padded, 0);
    let chunk_area = &mut buf[base..];
    if may_hold_url(text) {
        blank_url_prefixes(&mut chunk_area[..n]);
    }
    // Lower-case in place and collect word-byte masks, 8 bytes at a time.
    let mut in_word = false;
    let mut start = 0usize;
    let mut k = 0;
    while k < padded - 8 {
        let lane: &mut [u8; 8] = (&mut chunk_area[k..k + 8]).try_into().expect("8 bytes");
        let mut x = u64::from_le_bytes(*lane);
        x |= in_range(x, b'A', b'Z') >> 2;
        *lane = x.to_le_bytes();
        let m = movemask(in_range(x, b'0', b'9') | in_range(x, b'a', b'z'));
        // Transitions between word and non-word bytes, relative to the previous byte.
        let mut t = (m ^ ((m << 1) | u64::from(in_word))) & 0xff;
        while t != 0 {
            let p = k + t.trailing_zeros() as usize;
            if in_word {
                f(hasher.hash_padded(chunk_area, start, p - start), base + start, base + p);
            } else {
                start = p;
            }
            in_word = !in_word;
            t &= t - 1;
        }
        k += 8;
    }
    if in_word {
        f(hasher.hash_padded(chunk_area, start, n - start), base + start, base + n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Tokens, UrlMode};

    fn words(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let h = WordHasher::with_seed(1, 2);
        let mut buf = b"prefix".to_vec();
        let mut spans = Vec::new();
        for_each_word(text.as_bytes(), &mut buf, &h, |hash, a, b| spans.push((hash, a, b)));
        for (hash, a, b) in spans {
            assert_eq!(hash, h.hash(&buf[a..b]));
            out.push(String::from_utf8(buf[a..b].to_vec()).unwrap());
        }
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
    fn urls_are_canonicalised_like_the_tokenizer_does() {
        for s in [
            "see http://x.com and (HTTPS://WWW.Example.com/a). www.www.y.org ftp://z",
            "http:// alone, x+y.z://q, a://b://c, http://a.com/?u=http://b, wwwx. www.",
            "WWW.A http://www. https://www.www.",
        ] {
            assert!(applies(s.as_bytes()));
            let want: Vec<String> =
                Tokens::of(s, UrlMode::Canonicalize).word_texts().map(String::from).collect();
            assert_eq!(words(s), want, "{s:?}");
        }
        assert!(!applies("café".as_bytes()));
    }
}
