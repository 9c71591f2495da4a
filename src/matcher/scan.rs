//! The presearch's fast path: find the words of an ASCII text and hash them, 16 or 32 bytes
//! at a time, without building the full tokenisation.
//!
//! For ASCII text, the words of [`crate::normalize::Tokens`] are exactly the maximal runs of
//! ASCII letters and digits, lower-cased, once URL prefixes are removed (tested
//! differentially). The scanner lower-cases the text into a padded buffer and computes a bit
//! per byte ("word byte") for each 64-byte block (AVX2 where the CPU has it, else SSE2 on
//! x86-64; SWAR on `u64` lanes elsewhere). Word starts and ends are then the rising and
//! falling edges of that mask, taken with `trailing_zeros`: no branch per byte, one loop
//! iteration per word. Each word is hashed from 8-byte loads of the buffer. The same pass
//! notes whether the text holds a `:` or a word `www` (it may hold a URL: see [`scan_field`])
//! and any of `#`, `@`, `$` (it may hold entities).
//!
//! Non-ASCII text goes first to [`scan_mixed`]: the same block scan, each block's non-ASCII
//! characters (letters, marks, emoji, separators, no-space letters that normalise in place)
//! added to its word mask or to a no-space run by [`mixed_block`]. What that declines (a
//! folding of another length, an ignorable inside a word, ...) and normalises character by
//! character goes to [`scan_unicode`], which takes each stretch of ASCII bytes with the same
//! 16-byte classification, hands stretches of 24 bytes and more to [`scan_ascii`], blanks URL
//! prefixes as the tokenizer removes them, and takes only the other characters one by one.

use super::hash::WordHasher;
use crate::normalize::{plain_char, push_case_folded, reorderable_mark, CharClass};

/// What a scan noticed besides the words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Noticed {
    /// The text may hold a URL prefix: it holds a `://`, or a `www.` (or `w`s at the end of a
    /// 64-byte block).
    pub(crate) url: bool,
    /// The text holds a `#`, `@` or `$` (it may hold hashtags, mentions, cashtags).
    pub(crate) sigil: bool,
}

/// Per-16-byte classification: lower-cased bytes, and masks (bit `i` for byte `i`) of word
/// bytes, non-ASCII bytes, colons and entity sigils.
struct Lanes16 {
    lower: [u64; 2],
    word: u64,
    non_ascii: u32,
    colon: u64,
    sigil: u32,
    /// `w` or `W`, and `.`: to notice `www.` without a check per word.
    w: u64,
    dot: u64,
}

/// SSE2 classification (x86-64). SSE2 is part of the x86-64 baseline, so this is the path
/// every x86-64 build takes; it matched ASCII messages 1.46x faster than the SWAR fallback at
/// 1k rules and 1.30x at 100k, in alternating runs of `examples/profile_match` (DESIGN.md).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline(always)]
#[allow(unsafe_code)]
fn classify16(lo: u64, hi: u64) -> Lanes16 {
    // SAFETY: `classify16_sse2` only requires the CPU to support SSE2, which this item's
    // `cfg(target_feature = "sse2")` guarantees for every CPU the build can run on. It takes
    // and returns values only (no pointers). Tested under Miri (`cargo +nightly miri test
    // --lib matcher::scan`, run by `.ci/run`).
    unsafe { classify16_sse2(lo, hi) }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[target_feature(enable = "sse2")]
fn classify16_sse2(lo: u64, hi: u64) -> Lanes16 {
    use std::arch::x86_64::{
        _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_cmplt_epi8, _mm_cvtsi128_si64,
        _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_set_epi64x, _mm_unpackhi_epi64,
    };
    let v = _mm_set_epi64x(hi as i64, lo as i64);
    let within = |x, a: u8, b: u8| {
        _mm_and_si128(
            _mm_cmpgt_epi8(x, _mm_set1_epi8(a as i8 - 1)),
            _mm_cmplt_epi8(x, _mm_set1_epi8(b as i8 + 1)),
        )
    };
    let eq = |x, c: u8| _mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8));
    // Non-ASCII bytes are negative as `i8`, so no range below catches them.
    let upper = within(v, b'A', b'Z');
    let lower = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
    let word = _mm_or_si128(within(lower, b'a', b'z'), within(v, b'0', b'9'));
    let sigil = _mm_or_si128(_mm_or_si128(eq(v, b'#'), eq(v, b'@')), eq(v, b'$'));
    Lanes16 {
        lower: [
            _mm_cvtsi128_si64(lower) as u64,
            _mm_cvtsi128_si64(_mm_unpackhi_epi64(lower, lower)) as u64,
        ],
        word: _mm_movemask_epi8(word) as u64,
        non_ascii: _mm_movemask_epi8(v) as u32,
        colon: _mm_movemask_epi8(eq(v, b':')) as u64,
        sigil: _mm_movemask_epi8(sigil) as u32,
        w: _mm_movemask_epi8(eq(lower, b'w')) as u64,
        dot: _mm_movemask_epi8(eq(v, b'.')) as u64,
    }
}

/// The portable classification (SWAR on two `u64` lanes).
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline(always)]
fn classify16(lo: u64, hi: u64) -> Lanes16 {
    let a = swar::classify8(lo);
    let b = swar::classify8(hi);
    Lanes16 {
        lower: [a.0, b.0],
        word: a.1 | b.1 << 8,
        non_ascii: (a.2 | b.2 << 8) as u32,
        colon: a.3 | b.3 << 8,
        sigil: (a.4 | b.4 << 8) as u32,
        w: a.5 | b.5 << 8,
        dot: a.6 | b.6 << 8,
    }
}

/// The portable fallback: the same classification on `u64` lanes (SWAR).
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;

    const fn splat(b: u8) -> u64 {
        ONES * b as u64
    }

    /// High bit set in each byte of `x` (all bytes < 0x80) that is >= `lo`.
    fn ge(x: u64, lo: u8) -> u64 {
        x.wrapping_add(splat(0x80 - lo)) & HIGH
    }

    /// High bit set in each byte of `x` (all bytes < 0x80) in `lo..=hi`.
    fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
        ge(x, lo) & !ge(x, hi + 1)
    }

    /// High bit set in each byte of `x` (all bytes < 0x80) equal to `c`.
    fn eq(x: u64, c: u8) -> u64 {
        in_range(x, c, c)
    }

    /// Gathers the high bit of each byte into the low 8 bits (byte 0 -> bit 0).
    pub(super) fn movemask(x: u64) -> u64 {
        ((x & HIGH).wrapping_mul(0x0002_0408_1020_4081)) >> 56
    }

    /// (lower-cased lane, word mask, non-ASCII mask, colon mask, sigil mask, `w` mask, `.`
    /// mask) of 8 bytes.
    pub(super) fn classify8(x: u64) -> (u64, u64, u64, u64, u64, u64, u64) {
        let non_ascii = movemask(x);
        let x7 = x & !HIGH; // keep the arithmetic below within bytes
        let lower = x | (in_range(x7, b'A', b'Z') >> 2) & !(x & HIGH) >> 2;
        let l7 = lower & !HIGH;
        let word = (in_range(l7, b'0', b'9') | in_range(l7, b'a', b'z')) & !(x & HIGH);
        let colon = eq(x7, b':') & !(x & HIGH);
        let sigil = (eq(x7, b'#') | eq(x7, b'@') | eq(x7, b'$')) & !(x & HIGH);
        let w = eq(l7, b'w') & !(x & HIGH);
        let dot = eq(x7, b'.') & !(x & HIGH);
        (
            lower,
            movemask(word),
            non_ascii,
            movemask(colon),
            movemask(sigil),
            movemask(w),
            movemask(dot),
        )
    }
}

/// Appends the ASCII `text`, lower-cased and padded, to `buf`, and pushes `(hash, start,
/// end)` for each of its words (`buf[start..end]`) to `words`, in order. Returns `None`, with
/// `buf` and `words` as they were, if `text` is not ASCII. URL prefixes are *not* removed:
/// when [`Noticed::url`] is set the caller checks for them (see [`scan_field`]).
///
/// On x86-64 CPUs with AVX2 (detected at run time) the bytes are classified 32 at a time
/// ([`avx2`]), elsewhere 16 at a time; the words found are the same.
///
/// Inlined, with the 16-byte scan out of line: the dispatch is a load, a test and a call
/// (it was a function of its own whose frame, sized for the inlined 16-byte scan, cost ~25
/// instructions per call; issue 20, round 4).
#[inline]
pub(crate) fn scan_ascii(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
) -> Option<Noticed> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 (just checked).
        return unsafe { avx2::scan_ascii(text, buf, hasher, filter, words) };
    }
    scan_ascii_narrow(text, buf, hasher, filter, words)
}

/// [`scan_ascii`] 16 bytes at a time (SSE2 on x86-64, SWAR elsewhere).
#[inline(never)]
fn scan_ascii_narrow(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
) -> Option<Noticed> {
    scan_ascii_with::<Narrow, false>(text, buf, hasher, filter, words, &mut Vec::new())
}

/// The words and no-space runs of a non-ASCII `text` by the ASCII scanner's blocks, for a text
/// whose non-ASCII characters are each a letter, mark, emoji, separator or no-space letter that
/// normalises in place (most non-ASCII posts: English with an emoji or an accented, Cyrillic or
/// CJK word): [`mixed_block`] completes a block's word mask with its non-ASCII characters and
/// reads the runs, so the text costs about what an ASCII one does. URL prefixes are blanked as
/// the tokenizer removes them ([`blank_url_prefixes_unicode`]), and the text scanned again from
/// the raw token holding the first one (what [`scan_field`] does for ASCII text only past
/// [`MAX_PREFIXES`] prefixes or where a word crosses a prefix's edge). Returns `None`, with
/// `buf`, `words` and `runs` as they were, where the text needs more ([`scan_unicode`]): a
/// character `mixed_block` declines.
///
/// [`scan_unicode`] took the stretches between non-ASCII characters, cut the ASCII scan at
/// each, and cost ~3,200 instructions per non-ASCII post of the side-by-side corpus against
/// ~1,650 for the ASCII scan of an ASCII post (issue 20, round 6).
pub(crate) fn scan_mixed(
    text: &str,
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
    scratch: &mut UnicodeScratch,
) -> Option<Noticed> {
    let (base, first_word, first_run) = (buf.len(), words.len(), runs.len());
    let bytes = text.as_bytes();
    let noticed = scan_mixed_bytes(bytes, buf, hasher, filter, words, runs)?;
    if noticed.url && may_hold_url(bytes) {
        let (spare, from) = blanked_copy(text, scratch);
        // A word starting before the raw token at `from` ends before it (at the white space
        // before it, at the latest).
        let cut = (base + from) as u32;
        let keep = words[first_word..].partition_point(|w| w.1 < cut);
        words.truncate(first_word + keep);
        let keep = runs[first_run..].partition_point(|r| r.0 < cut);
        runs.truncate(first_run + keep);
        // (Blanking replaces whole characters by spaces: `spare[from..]` is UTF-8, and the
        // prefixes left in it, as the second `www.` of `www.www.x`, are not removed.)
        let again = scan_mixed_bytes(&spare[from..], buf, hasher, filter, words, runs);
        scratch.spare = spare;
        if again.is_none() {
            buf.truncate(base);
            words.truncate(first_word);
            runs.truncate(first_run);
            return None;
        }
    }
    Some(noticed)
}

/// [`scan_mixed`]'s scan, with no URL prefix removed.
#[inline]
fn scan_mixed_bytes(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
) -> Option<Noticed> {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: the CPU has AVX2 (just checked).
        return unsafe { avx2::scan_mixed(text, buf, hasher, filter, words, runs) };
    }
    scan_mixed_narrow(text, buf, hasher, filter, words, runs)
}

/// [`scan_mixed`] 16 bytes at a time (SSE2 on x86-64, SWAR elsewhere).
#[inline(never)]
fn scan_mixed_narrow(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
) -> Option<Noticed> {
    scan_ascii_with::<Narrow, true>(text, buf, hasher, filter, words, runs)
}

/// The masks of one chunk of [`Chunk::BYTES`] bytes (bit `i` for byte `i`): word bytes,
/// non-ASCII bytes, colons, entity sigils, `w` or `W`, and `.`.
#[derive(Clone, Copy)]
struct Masks {
    word: u64,
    non_ascii: u64,
    colon: u64,
    sigil: u64,
    w: u64,
    dot: u64,
}

/// A classification of the bytes of a chunk, lower-casing them in place.
trait Chunk {
    /// Bytes per chunk (16 or 32: a 64-byte block holds a whole number of chunks).
    const BYTES: usize;
    /// Whether the text is padded to whole 64-byte blocks, so that a block's chunks are
    /// classified in a loop of constant length (unrolled: constant shifts, no counter).
    const WHOLE_BLOCKS: bool;
    /// Lower-cases the first [`Chunk::BYTES`] bytes of `chunk` and returns their masks.
    fn classify(chunk: &mut [u8]) -> Masks;
}

/// 16-byte chunks: SSE2 on x86-64, SWAR elsewhere ([`classify16`]).
struct Narrow;

impl Chunk for Narrow {
    const BYTES: usize = 16;
    const WHOLE_BLOCKS: bool = false;
    #[inline(always)]
    fn classify(chunk: &mut [u8]) -> Masks {
        let lo = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
        let hi = u64::from_le_bytes(chunk[8..16].try_into().expect("8 bytes"));
        let c = classify16(lo, hi);
        chunk[..8].copy_from_slice(&c.lower[0].to_le_bytes());
        chunk[8..16].copy_from_slice(&c.lower[1].to_le_bytes());
        Masks {
            word: c.word,
            non_ascii: u64::from(c.non_ascii),
            colon: c.colon,
            sigil: u64::from(c.sigil),
            w: c.w,
            dot: c.dot,
        }
    }
}

/// The AVX2 scan: 32-byte chunks, for CPUs that have AVX2 (detected at run time by
/// [`scan_ascii`]). A 64-byte block is two classifications instead of four, in a loop of
/// constant length (the text padded to whole blocks): a 137-byte post of the side-by-side
/// corpus takes 6 instead of 9; see bench/journal.md ("Per-post costs at 100k-1M rules",
/// round 2).
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use super::{scan_ascii_with, Chunk, Masks, Noticed, WordHasher};

    /// [`super::scan_ascii`] on a CPU with AVX2: the generic scan compiled with AVX2
    /// enabled, so that [`Wide::classify`] inlines.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 (`is_x86_feature_detected!("avx2")`).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scan_ascii(
        text: &[u8],
        buf: &mut Vec<u8>,
        hasher: &WordHasher,
        filter: &[u64],
        words: &mut Vec<(u64, u32, u32)>,
    ) -> Option<Noticed> {
        scan_ascii_with::<Wide, false>(text, buf, hasher, filter, words, &mut Vec::new())
    }

    /// [`super::scan_mixed`] on a CPU with AVX2.
    ///
    /// # Safety
    ///
    /// The CPU must support AVX2 (`is_x86_feature_detected!("avx2")`).
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scan_mixed(
        text: &[u8],
        buf: &mut Vec<u8>,
        hasher: &WordHasher,
        filter: &[u64],
        words: &mut Vec<(u64, u32, u32)>,
        runs: &mut Vec<(u32, u32)>,
    ) -> Option<Noticed> {
        scan_ascii_with::<Wide, true>(text, buf, hasher, filter, words, runs)
    }

    /// 32-byte chunks (AVX2).
    struct Wide;

    impl Chunk for Wide {
        const BYTES: usize = 32;
        const WHOLE_BLOCKS: bool = true;
        #[inline(always)]
        fn classify(chunk: &mut [u8]) -> Masks {
            let chunk: &mut [u8; 32] = (&mut chunk[..32]).try_into().expect("32 bytes");
            // SAFETY: `Wide` is private to this module and used only by `scan_ascii` above,
            // whose callers guarantee AVX2 (its `# Safety`; `super::scan_ascii` checks
            // `is_x86_feature_detected!`). `classify32` reads and writes the 32 bytes of the
            // array it is given, and nothing else.
            unsafe { classify32(chunk) }
        }
    }

    /// Lower-cases the 32 bytes of `chunk` in place and returns their masks: the SSE2
    /// classification ([`super::classify16`]) on 32 lanes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn classify32(chunk: &mut [u8; 32]) -> Masks {
        use std::arch::x86_64::{
            __m256i, _mm256_and_si256, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_loadu_si256,
            _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8, _mm256_storeu_si256,
        };
        // SAFETY: `chunk` is 32 readable bytes; `loadu` has no alignment requirement.
        let v = unsafe { _mm256_loadu_si256(chunk.as_ptr().cast::<__m256i>()) };
        let within = |x, a: u8, b: u8| {
            _mm256_and_si256(
                _mm256_cmpgt_epi8(x, _mm256_set1_epi8(a as i8 - 1)),
                _mm256_cmpgt_epi8(_mm256_set1_epi8(b as i8 + 1), x),
            )
        };
        let eq = |x, c: u8| _mm256_cmpeq_epi8(x, _mm256_set1_epi8(c as i8));
        let mask = |x| u64::from(_mm256_movemask_epi8(x) as u32);
        // Non-ASCII bytes are negative as `i8`, so no range below catches them.
        let upper = within(v, b'A', b'Z');
        let lower = _mm256_or_si256(v, _mm256_and_si256(upper, _mm256_set1_epi8(0x20)));
        let word = _mm256_or_si256(within(lower, b'a', b'z'), within(v, b'0', b'9'));
        let sigil = _mm256_or_si256(_mm256_or_si256(eq(v, b'#'), eq(v, b'@')), eq(v, b'$'));
        // SAFETY: `chunk` is 32 writable bytes; `storeu` has no alignment requirement.
        unsafe { _mm256_storeu_si256(chunk.as_mut_ptr().cast::<__m256i>(), lower) };
        Masks {
            word: mask(word),
            non_ascii: mask(v),
            colon: mask(eq(v, b':')),
            sigil: mask(sigil),
            w: mask(eq(lower, b'w')),
            dot: mask(eq(v, b'.')),
        }
    }
}

/// [`scan_ascii`] with chunks of `C::BYTES` bytes; with `MIXED`, [`scan_mixed`]: a block
/// holding non-ASCII bytes has its characters taken by [`mixed_block`] (or the scan
/// declines) instead of ending the scan.
/// `filter`: the blocks of the filter the words will be probed in, each word's requested
/// as it is hashed (empty: none; [`super::hash::BloomFilter::blocks_to_prefetch`]).
#[inline(always)]
fn scan_ascii_with<C: Chunk, const MIXED: bool>(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
) -> Option<Noticed> {
    // Two loops, one requesting the blocks and one not: a single loop taking the filter
    // cost ~100 instructions a post more where it was empty (100k rules), where nothing is
    // requested (the registers of the loop allocated otherwise).
    if filter.is_empty() {
        scan_blocks::<C, MIXED, false>(text, buf, hasher, filter, words, runs)
    } else {
        scan_blocks::<C, MIXED, true>(text, buf, hasher, filter, words, runs)
    }
}

/// [`scan_ascii_with`]'s loop over the 64-byte blocks of `text`; with `PREFETCH`, each
/// word's block of `filter` requested as the word is hashed.
#[inline(always)]
fn scan_blocks<C: Chunk, const MIXED: bool, const PREFETCH: bool>(
    text: &[u8],
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
) -> Option<Noticed> {
    let base = buf.len();
    let first_word = words.len();
    let first_run = runs.len();
    let n = text.len();
    words.reserve(n / 2 + 1);
    let per_block = 64 / C::BYTES;
    let blocks = n.div_ceil(64);
    let chunks = if C::WHOLE_BLOCKS { blocks * per_block } else { n.div_ceil(C::BYTES) };
    buf.extend_from_slice(text);
    // Zero padding: a chunk never cuts a read, and a word's last 8-byte load stays inside
    // the buffer. At most 63 + 8 bytes: appended as a constant-size copy (a few vector
    // stores), then cut to length (`resize` called `memset`: ~30 instructions per post).
    const PADDING: [u8; 72] = [0; 72];
    buf.extend_from_slice(&PADDING);
    buf.truncate(base + chunks * C::BYTES + 8);
    debug_assert_eq!(buf.len(), base + chunks * C::BYTES + 8, "padding");
    let area = &mut buf[base..];
    let (mut sigil, mut url) = (0u64, false);
    // 1 if the byte before the block is a word byte.
    let mut carry = 0u64;
    // The start of a word that runs into the next block.
    let mut open = usize::MAX;
    // `MIXED`: what a character crossing into the next block leaves it, and the no-space run
    // being read.
    let mut mixed = Mixed { spill: Spill::default(), run: None, runs, base, last_mark: (0, 0) };
    /// Hashes the word `area[start..end]` and records it.
    #[inline(always)]
    fn emit<const PREFETCH: bool>(
        area: &[u8],
        start: usize,
        end: usize,
        base: usize,
        hasher: &WordHasher,
        filter: &[u64],
        words: &mut Vec<(u64, u32, u32)>,
    ) {
        let h = hasher.hash_padded(area, start, end - start);
        // The block its probe will read, requested now: the scan's own work then hides the
        // miss (at 1M rules ~half of `Segment::find`'s time was waiting on those loads).
        if PREFETCH {
            super::hash::prefetch_block(filter, h);
        }
        words.push((h, (base + start) as u32, (base + end) as u32));
    }
    for b in 0..blocks {
        let at = b * 64;
        let (mut mask, mut w, mut dot, mut colon) = (0u64, 0u64, 0u64, 0u64);
        let mut non_ascii = 0u64;
        let count =
            if C::WHOLE_BLOCKS { per_block } else { (chunks - b * per_block).min(per_block) };
        for q in 0..count {
            let p = at + q * C::BYTES;
            let c = C::classify(&mut area[p..p + C::BYTES]);
            if MIXED {
                non_ascii |= c.non_ascii << (q * C::BYTES);
            } else if c.non_ascii != 0 {
                buf.truncate(base);
                words.truncate(first_word);
                return None;
            }
            mask |= c.word << (q * C::BYTES);
            w |= c.w << (q * C::BYTES);
            dot |= c.dot << (q * C::BYTES);
            colon |= c.colon << (q * C::BYTES);
            sigil |= c.sigil;
        }
        // `www.` inside the block, or `w`s at its end that may continue into the next one.
        url |= (w & (w >> 1) & (w >> 2) & (dot >> 3)) != 0 || (w >> 61) != 0;
        if colon != 0 {
            // `://`: the two bytes after each colon (the text is in `area` already, and the
            // padding covers a colon at its end; `/` and `:` are the same lower-cased).
            for i in super::segment::bits(colon) {
                url |= area[at + i + 1] == b'/' && area[at + i + 2] == b'/';
            }
        }
        // `MIXED`: word boundaries between two word bytes (around an emoji).
        let mut breaks = 0u64;
        if MIXED {
            mask |= mixed.spill.word;
            breaks = mixed.spill.brk;
            if non_ascii != 0 {
                let todo = non_ascii & !mixed.spill.skip;
                if !mixed_block(area, at, todo, carry, (&mut mask, &mut breaks), &mut mixed) {
                    buf.truncate(base);
                    words.truncate(first_word);
                    mixed.runs.truncate(first_run);
                    return None;
                }
            } else {
                mixed.spill = Spill::default();
            }
        }
        let shifted = (mask << 1) | carry;
        let mut starts = mask & (!shifted | breaks);
        let mut ends = (!mask | breaks) & shifted;
        carry = mask >> 63;
        // Starts and ends alternate (an end before a start at the same byte); a word open
        // from the last block ends first.
        if open != usize::MAX {
            if ends == 0 {
                continue;
            }
            emit::<PREFETCH>(
                area,
                open,
                at + ends.trailing_zeros() as usize,
                base,
                hasher,
                filter,
                words,
            );
            ends &= ends - 1;
            open = usize::MAX;
        }
        while starts != 0 {
            let start = at + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            if ends == 0 {
                open = start;
                break;
            }
            emit::<PREFETCH>(
                area,
                start,
                at + ends.trailing_zeros() as usize,
                base,
                hasher,
                filter,
                words,
            );
            ends &= ends - 1;
        }
    }
    if open != usize::MAX {
        emit::<PREFETCH>(&buf[base..], open, n, base, hasher, filter, words);
    }
    if let Some((start, end)) = mixed.run {
        mixed.runs.push(((base + start) as u32, (base + end) as u32));
    }
    Some(Noticed { url, sigil: sigil != 0 })
}

/// What a character crossing the end of a block leaves the next one in [`scan_mixed`]: bit
/// `i` for its byte `i`.
#[derive(Clone, Copy, Default)]
struct Spill {
    /// The character's bytes there, when it is part of a word.
    word: u64,
    /// A word boundary there (after an emoji).
    brk: u64,
    /// The character's bytes there (taken already).
    skip: u64,
}

/// What [`scan_mixed`] carries from block to block besides the word scan's own state.
struct Mixed<'r> {
    /// What a character crossing the end of the last block leaves the next one.
    spill: Spill,
    /// The no-space run being read (its bytes in the scan's area), if any: the characters
    /// of a run are non-ASCII, so it is read by [`mixed_block`] alone.
    run: Option<(usize, usize)>,
    /// Where finished runs go, as `(start, end)` in `buf`.
    runs: &'r mut Vec<(u32, u32)>,
    /// Where the area starts in `buf`.
    base: usize,
    /// The end (in the area) and the combining class of the last reorderable mark taken
    /// ([`reorderable_mark`]): a mark right after it with a lower class would be moved by
    /// NFC.
    last_mark: (usize, u8),
}

/// The non-ASCII characters of a 64-byte block in [`scan_mixed`]: `todo` has a bit per
/// non-ASCII byte of `area[at..at + 64]` not taken yet (all but the continuation of a
/// character from the block before); `carry` says whether the byte before the block is a word
/// byte. Adds the characters' bytes to the block's word mask (`masks.0`) and the word
/// boundaries an emoji needs (it is a word of its own, even between letters) to `masks.1`;
/// case-folds letters in place; reads no-space runs (CJK, Thai) into `state`, and leaves
/// there what a character crossing into the next block leaves it. Returns `false` (the scan
/// declines) at a character that does not normalise on its own in place: one [`plain_char`]
/// refuses, a folding of another length, a combining mark not after a letter, or an ignorable
/// that the tokenizer would drop from inside a word, a run or a URL prefix. These rules are
/// [`scan_plain`]'s, for words and runs that keep their bytes where they are.
#[inline(never)]
fn mixed_block(
    area: &mut [u8],
    at: usize,
    mut todo: u64,
    carry: u64,
    masks: (&mut u64, &mut u64),
    state: &mut Mixed<'_>,
) -> bool {
    let (word, breaks) = masks;
    let mut spill = Spill::default();
    while todo != 0 {
        let p = todo.trailing_zeros() as usize;
        let (c, len) = char_at(area, at + p);
        let bytes = ((1u64 << len) - 1) << p;
        todo &= !bytes;
        // (The bits of a character crossing the block's end are cut by the shift.)
        let rest = if p + len > 64 { (1u64 << (p + len - 64)) - 1 } else { 0 };
        spill.skip |= rest;
        // Whether the character before continues a word (a letter or a digit, not an emoji),
        // or a no-space run.
        let after_word = |word: u64, breaks: u64| {
            let before = if p == 0 { carry } else { (word >> (p - 1)) & 1 };
            before != 0 && (breaks >> p) & 1 == 0
        };
        let after_run = state.run.is_some_and(|(_, end)| end == at + p);
        let (class, folds, mark) = match plain_char(c) {
            Some(plain) => plain,
            // A Thai or Lao mark in canonical order after the mark before it (if any).
            None => match reorderable_mark(c) {
                Some(ccc) if !(state.last_mark.0 == at + p && state.last_mark.1 > ccc) => {
                    state.last_mark = (at + p + len, ccc);
                    (CharClass::NoSpace, false, true)
                }
                _ => return false,
            },
        };
        let in_run = match class {
            CharClass::Ignorable => {
                // Dropped by the tokenizer: from inside a word or a run it joins the two
                // halves, and inside `://` or `www.` it hides a URL prefix from the byte
                // checks. (Some are marks too, as `U+FE0F`: this comes first.)
                let before = (at + p).checked_sub(1).map(|i| area[i]);
                if after_run
                    || after_word(*word, *breaks)
                    || matches!(before, Some(b':' | b'/' | b'w'))
                {
                    return false;
                }
                continue;
            }
            // A combining mark belongs to the letter (or no-space letter) it follows.
            _ if mark => match (folds, after_run) {
                (false, true) => true,
                (false, false) if after_word(*word, *breaks) => false,
                _ => return false,
            },
            CharClass::Word | CharClass::NoSpace => {
                if folds {
                    // Its folding, where it fits in place (`ß` to `ss`: a mark after it that
                    // could compose with the `s` is not plain, and the scan declines there).
                    let Some(f) = crate::normalize::fold_in_place(c) else { return false };
                    area[at + p..at + p + len].copy_from_slice(f.as_bytes());
                }
                class == CharClass::NoSpace
            }
            CharClass::Emoji if !folds => {
                *breaks |= 1u64 << p;
                if p + len < 64 {
                    *breaks |= 1u64 << (p + len);
                } else {
                    spill.brk = 1u64 << (p + len - 64);
                }
                false
            }
            CharClass::Punct | CharClass::Space | CharClass::Control => continue,
            _ => return false,
        };
        if in_run {
            // A run goes on while its characters follow each other (ASCII bytes, emoji,
            // punctuation and letters of spaced scripts end it).
            let start = match state.run {
                Some((start, _)) if after_run => start,
                Some((start, end)) => {
                    state.runs.push(((state.base + start) as u32, (state.base + end) as u32));
                    at + p
                }
                None => at + p,
            };
            state.run = Some((start, at + p + len));
        } else {
            *word |= bytes;
            spill.word |= rest;
        }
    }
    state.spill = spill;
    true
}

/// [`scan_ascii`] with URL canonicalisation. If the scanner noticed a possible URL prefix, the
/// prefixes (scheme, `://`, `www.`) are found and the words inside them dropped: the canonical
/// text's words are the others, since a prefix sits between leading punctuation and the rest of
/// its raw token. Where a word crosses a prefix's edge (or a field has more than
/// [`MAX_PREFIXES`]), the prefixes are blanked in a copy (`spare`) instead and the copy is
/// scanned again from the raw token holding the first blanked byte (the words before that token
/// are the same in both texts, since a space ends them). The words being the maximal runs of
/// letters and digits, and a prefix starting after punctuation or a space and ending with `/`
/// or `.`, no word crosses an edge in practice; the check stays, cheap. Dropping the words
/// instead of scanning again took ~1,060 instructions off a post of the side-by-side corpus
/// with a URL (one in 12; -2.8% over all posts at 100k rules). Inlined into
/// `MessageWords::field`, its one caller (out of line it cost ~30 instructions a post).
#[inline(always)]
pub(crate) fn scan_field(
    text: &[u8],
    buf: &mut Vec<u8>,
    spare: &mut Vec<u8>,
    hasher: &WordHasher,
    filter: &[u64],
    words: &mut Vec<(u64, u32, u32)>,
) -> Option<Noticed> {
    let (base, first_word) = (buf.len(), words.len());
    let noticed = scan_ascii(text, buf, hasher, filter, words)?;
    if !noticed.url {
        return Some(noticed);
    }
    let mut prefixes = [(0, 0); MAX_PREFIXES];
    let dropped = match url_prefixes(text, &mut prefixes) {
        Some(0) => return Some(noticed),
        Some(n) => drop_prefix_words(&prefixes[..n], base, words, first_word),
        None => false,
    };
    if !dropped {
        // The prefixes blanked in a copy: the blanked part sits between leading punctuation
        // (no word) and the rest of the token, so no two words merge or split.
        spare.clear();
        spare.extend_from_slice(text);
        let mut first = None;
        for_each_url_prefix(text, |from, to| {
            first.get_or_insert(from);
            spare[from..to].fill(b' ');
        });
        if let Some(first) = first {
            debug_assert_eq!(Some(first), spare.iter().zip(text).position(|(a, b)| a != b));
            let from = spare[..first].iter().rposition(|&c| is_space(c)).map_or(0, |i| i + 1);
            // A word starting before `from` ends before it (at the space, at the latest).
            let keep = words[first_word..].partition_point(|w| w.1 < (base + from) as u32);
            words.truncate(first_word + keep);
            // The lower-cased text stays in `buf` for the words kept; the rest is appended.
            scan_ascii(&spare[from..], buf, hasher, filter, words);
        }
    }
    Some(noticed)
}

/// The most URL prefixes of one field whose words [`scan_field`] drops in place.
const MAX_PREFIXES: usize = 8;

/// Calls `f(from, to)` with the byte range of each URL prefix tokenising removes from the
/// ASCII `t` (scheme, `://`, `www.`, after a raw token's leading punctuation), in text order.
/// A prefix holds a `:` followed by `//` or a `.` after `www`, so only the raw tokens holding
/// one are examined (a post's other dots and colons cost a comparison each).
fn for_each_url_prefix(t: &[u8], mut f: impl FnMut(usize, usize)) {
    let mut done_to = 0;
    for pos in memchr::memchr2_iter(b':', b'.', t) {
        let candidate = if t[pos] == b':' {
            t[pos + 1..].starts_with(b"//")
        } else {
            pos >= 3 && t[pos - 3..pos].eq_ignore_ascii_case(b"www")
        };
        if pos < done_to || !candidate {
            continue;
        }
        let s = t[..pos].iter().rposition(|&c| is_space(c)).map_or(0, |i| i + 1);
        let e = t[pos..].iter().position(|&c| is_space(c)).map_or(t.len(), |i| pos + i);
        if let (Some((from, to)), true) = crate::normalize::ascii_url_prefix(&t[s..e]) {
            f(s + from, s + to);
        }
        done_to = e;
    }
}

/// The URL prefixes of the ASCII `t` ([`for_each_url_prefix`]) as byte ranges into `out`;
/// how many, or `None` past [`MAX_PREFIXES`].
fn url_prefixes(t: &[u8], out: &mut [(usize, usize); MAX_PREFIXES]) -> Option<usize> {
    let mut n = 0;
    for_each_url_prefix(t, |from, to| {
        if let Some(slot) = out.get_mut(n) {
            *slot = (from, to);
        }
        n += 1;
    });
    (n <= MAX_PREFIXES).then_some(n)
}

/// Drops from `words[first..]` (spans into the buffer, the field's text at `base`) the words
/// inside `prefixes` (ranges of the text, in order; at most [`MAX_PREFIXES`]). Changes nothing
/// and answers `false` if a word crosses a prefix's edge (then only scanning the blanked text
/// gives its words). The words are in text order: two binary searches a prefix.
fn drop_prefix_words(
    prefixes: &[(usize, usize)],
    base: usize,
    words: &mut Vec<(u64, u32, u32)>,
    first: usize,
) -> bool {
    let mut inside = [(0, 0); MAX_PREFIXES];
    if prefixes.len() > MAX_PREFIXES {
        return false;
    }
    let field = &words[first..];
    for (span, &(from, to)) in inside.iter_mut().zip(prefixes) {
        let (from, to) = ((base + from) as u32, (base + to) as u32);
        let lo = field.partition_point(|w| w.1 < from);
        let hi = lo + field[lo..].partition_point(|w| w.1 < to);
        // The word before the prefix must end before it, the last one inside within it.
        if lo > 0 && field[lo - 1].2 > from || hi > lo && field[hi - 1].2 > to {
            return false;
        }
        *span = (first + lo, first + hi);
    }
    for &(lo, hi) in inside[..prefixes.len()].iter().rev() {
        words.drain(lo..hi);
    }
    true
}

/// Whether the ASCII byte `c` separates raw tokens (what [`for_each_url_prefix`] takes a
/// token's bounds from).
fn is_space(c: u8) -> bool {
    crate::normalize::char_class(c as char) == crate::normalize::CharClass::Space
}

/// The word [`scan_plain`] is reading, and where finished words go. The words' bytes are
/// written in place into `buf`, sized ahead (`at` is the write position, and at least 8
/// bytes after it are always in `buf`), so each word is hashed as it ends, from 8-byte loads
/// (bytes after its end are masked off), in the same pass.
struct Emitter<'a> {
    buf: &'a mut Vec<u8>,
    at: usize,
    words: &'a mut Vec<(u64, u32, u32)>,
    runs: &'a mut Vec<(u32, u32)>,
    hasher: &'a WordHasher,
    /// `NONE`, `WORD` or `NO_SPACE`: the kind of the word being read. While one is read,
    /// it ends at `at`.
    kind: u8,
    /// Its start in `buf`.
    start: usize,
}

const NONE: u8 = 0;
const WORD: u8 = 1;
const NO_SPACE: u8 = 2;

/// Bytes `buf` grows by when [`Emitter`] needs room.
const ROOM: usize = 64;

impl Emitter<'_> {
    /// Records the word `buf[start..end]` with its hash.
    #[inline(always)]
    fn word(&mut self, start: usize, end: usize) {
        let h = self.hasher.hash_padded(self.buf, start, end - start);
        self.words.push((h, start as u32, end as u32));
    }

    /// Ends the word being read, if any.
    #[inline(always)]
    fn flush(&mut self) {
        match self.kind {
            WORD => self.word(self.start, self.at),
            NO_SPACE => self.runs.push((self.start as u32, self.at as u32)),
            _ => {}
        }
        self.kind = NONE;
    }

    /// Makes sure a word of `kind` is being read (ending one of another kind).
    #[inline(always)]
    fn open(&mut self, kind: u8) {
        if self.kind != kind {
            self.flush();
            self.kind = kind;
            self.start = self.at;
        }
    }

    /// Appends `bytes` (a character or its folding).
    #[inline(always)]
    fn push(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if end + 8 > self.buf.len() {
            self.buf.resize(end + ROOM, 0);
        }
        self.buf[self.at..end].copy_from_slice(bytes);
        self.at = end;
    }

    /// Appends the character of `len` (2 to 4) bytes at `bytes[i..]` with one 4-byte copy:
    /// the bytes past it are overwritten by what follows or lie past the text's end (as
    /// after [`Emitter::ascii_chunk`]). [`Emitter::push`]'s copy, of a length known only at
    /// run time, was a `memcpy` call per character.
    #[inline(always)]
    fn push_char(&mut self, bytes: &[u8], i: usize, len: usize) {
        let end = self.at + len;
        if end + 8 > self.buf.len() {
            self.buf.resize(end + ROOM, 0);
        }
        let four = match bytes.get(i..i + 4) {
            Some(s) => <[u8; 4]>::try_from(s).expect("4 bytes"),
            None => {
                let mut t = [0u8; 4];
                t[..len].copy_from_slice(&bytes[i..i + len]);
                t
            }
        };
        self.buf[self.at..self.at + 4].copy_from_slice(&four);
        self.at = end;
    }

    /// Takes a long stretch of ASCII bytes (`s`, followed in the text by a non-ASCII
    /// character or the end) with [`scan_ascii`], the ASCII scanner (32-byte chunks with
    /// AVX2), and joins its words to what comes before and after: a word open before the
    /// stretch continues into its first word, and its last word, if it runs to the end of
    /// the stretch, stays open (the next character may continue it). Returns what
    /// [`scan_plain`] should end with, if anything.
    #[inline(always)]
    fn ascii_stretch(&mut self, s: &[u8], urls: bool) -> Option<Plain> {
        let joins = self.kind == WORD && s.first().is_some_and(u8::is_ascii_alphanumeric);
        if !joins {
            self.flush();
        }
        self.buf.truncate(self.at);
        let first = self.words.len();
        let Some(noticed) = scan_ascii(s, self.buf, self.hasher, &[], self.words) else {
            return Some(Plain::Declined);
        };
        // `noticed.url` is set whenever `may_hold_url` would find a prefix (and sometimes
        // when not): a `://` or a `www.` is made of ASCII bytes, all in one stretch.
        if urls && noticed.url && may_hold_url(s) {
            return Some(Plain::Url);
        }
        let end = self.at + s.len();
        self.at = end;
        // The scan padded `buf` with 8 bytes and more after `end`.
        if joins {
            // (The stretch starts with a letter or digit: its first word starts there.)
            let Some(&(_, _, word_end)) = self.words.get(first) else {
                return Some(Plain::Declined);
            };
            if word_end as usize == end {
                self.words.truncate(first);
                return None;
            }
            let h = self.hasher.hash_padded(self.buf, self.start, word_end as usize - self.start);
            self.words[first] = (h, self.start as u32, word_end);
        }
        self.kind = NONE;
        if let Some(&(_, word_start, word_end)) = self.words[first..].last() {
            if word_end as usize == end {
                self.words.pop();
                self.kind = WORD;
                self.start = word_start as usize;
            }
        }
        None
    }

    /// Takes the first `len` (1 to 16) bytes of a 16-byte chunk at once, all ASCII (`c` is
    /// the chunk's classification): writes them lower-cased, separators included, and ends
    /// and starts words at the edges of the word-byte mask (as [`scan_ascii`] does), exactly
    /// as taking them one by one would: letters and digits open or continue a word (a
    /// no-space run ends before them), anything else ends it.
    #[inline(always)]
    fn ascii_chunk(&mut self, c: &Lanes16, len: u32) {
        let at = self.at;
        if at + 16 + 8 > self.buf.len() {
            self.buf.resize(at + ROOM, 0);
        }
        self.buf[at..at + 8].copy_from_slice(&c.lower[0].to_le_bytes());
        self.buf[at + 8..at + 16].copy_from_slice(&c.lower[1].to_le_bytes());
        self.at = at + len as usize;
        if self.kind == NO_SPACE {
            self.runs.push((self.start as u32, at as u32));
            self.kind = NONE;
        }
        let within = (1u32 << len) - 1;
        let m = c.word as u32 & within;
        let shifted = (m << 1) | u32::from(self.kind == WORD);
        let mut starts = m & !shifted;
        let mut ends = !m & shifted & within;
        // Starts and ends alternate; a word open before the chunk ends first.
        if self.kind == WORD {
            if ends == 0 {
                return;
            }
            self.word(self.start, at + ends.trailing_zeros() as usize);
            ends &= ends - 1;
        }
        while starts != 0 {
            let start = at + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            if ends == 0 {
                self.kind = WORD;
                self.start = start;
                return;
            }
            self.word(start, at + ends.trailing_zeros() as usize);
            ends &= ends - 1;
        }
        self.kind = NONE;
    }
}

/// Scratch space of [`scan_unicode`], kept by the caller so that steady state allocates
/// nothing.
#[derive(Clone, Debug, Default)]
pub(crate) struct UnicodeScratch {
    /// A character's case folding.
    fold: String,
    /// A copy of the text with its URL prefixes blanked.
    spare: Vec<u8>,
    /// The characters of a non-ASCII raw token that may hold a URL (ignorables left out).
    chars: Vec<(usize, char)>,
    /// Whether the last text [`scan_unicode`] took may hold a non-ASCII character right after
    /// a `/` or a `.`: `false` only when its first pass took the whole text and saw none
    /// (the caller sets it to `true` first). What
    /// `MessageWords::url_fields_starting_with_a_mark` looks for with two `memchr` passes
    /// (~290 instructions per non-ASCII post; issue 20, round 4).
    pub(crate) non_ascii_after_slash_or_dot: bool,
}

/// The words of a non-ASCII `text` without the full tokenisation, for texts whose every
/// character normalises on its own (see [`plain_char`]): words (case-folded, hashed) go to
/// `words`, no-space runs to `runs`, their bytes to `buf`. Returns `false`, with everything
/// as it was, when the text needs the general tokenizer.
///
/// A text holding a URL prefix (noticed during the scan, from the colons and dots of its
/// ASCII chunks) is scanned again with the prefixes blanked
/// ([`blank_url_prefixes_unicode`]), as [`scan_field`] does for ASCII text (issue 20: one
/// non-ASCII post in ten of the side-by-side corpus holds a URL, and each took the full
/// tokenizer).
pub(crate) fn scan_unicode(
    text: &str,
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
    scratch: &mut UnicodeScratch,
) -> bool {
    let (first, after_slash_or_dot) =
        scan_plain(text, buf, hasher, words, runs, &mut scratch.fold, true);
    match first {
        Plain::Done => {
            scratch.non_ascii_after_slash_or_dot = after_slash_or_dot;
            return true;
        }
        Plain::Declined => return false,
        Plain::Url => {}
    }
    let (spare, _) = blanked_copy(text, scratch);
    // Blanking replaces whole characters by spaces: still UTF-8.
    let done = match std::str::from_utf8(&spare) {
        Ok(blanked) => {
            let fold = &mut scratch.fold;
            scan_plain(blanked, buf, hasher, words, runs, fold, false).0 == Plain::Done
        }
        Err(_) => false,
    };
    scratch.spare = spare;
    done
}

/// A copy of `text` with its URL prefixes blanked ([`blank_url_prefixes_unicode`]), in
/// `scratch.spare`'s buffer (the caller gives it back), and where the first raw token with a
/// prefix starts.
fn blanked_copy(text: &str, scratch: &mut UnicodeScratch) -> (Vec<u8>, usize) {
    let mut spare = std::mem::take(&mut scratch.spare);
    spare.clear();
    spare.extend_from_slice(text.as_bytes());
    let from = blank_url_prefixes_unicode(text, &mut spare, &mut scratch.chars);
    (spare, from)
}

/// Overwrites with spaces, in `t` (a copy of `text`), the part of each raw token of `text`
/// that URL canonicalisation removes: what [`scan_field`] blanks in ASCII text, with
/// raw tokens split at every white-space character and each non-ASCII token's prefix found
/// by the tokenizer's own [`url_prefix`] (over its characters, ignorables left out, as
/// the tokenizer gives them). The blanked part is ASCII (scheme, `://`, `www.`) plus the
/// ignorables inside it, which the tokenizer drops too; it sits between leading
/// punctuation and the rest of the token, so no two words merge or split.
///
/// Returns where the first raw token with a prefix starts (`text.len()` if none has one).
fn blank_url_prefixes_unicode(text: &str, t: &mut [u8], chars: &mut Vec<(usize, char)>) -> usize {
    use crate::normalize::{ascii_url_prefix, char_class, url_prefix};
    let is_sep = |c: char| char_class(c) == CharClass::Space;
    let bytes = text.as_bytes();
    let mut first = text.len();
    let mut done_to = 0;
    let mut k = 0;
    while let Some(off) = memchr::memchr2(b':', b'.', &bytes[k..]) {
        let pos = k + off;
        k = pos + 1;
        if pos < done_to {
            continue;
        }
        // `pos` holds an ASCII byte: a character boundary.
        let s = text[..pos]
            .char_indices()
            .rev()
            .find(|&(_, c)| is_sep(c))
            .map_or(0, |(i, c)| i + c.len_utf8());
        let e = text[pos..]
            .char_indices()
            .find(|&(_, c)| is_sep(c))
            .map_or(text.len(), |(i, _)| pos + i);
        let token = &text[s..e];
        let skip = if token.is_ascii() {
            ascii_url_prefix(token.as_bytes()).0.map(|(from, to)| (s + from, s + to))
        } else {
            chars.clear();
            chars.extend(
                token
                    .char_indices()
                    .filter(|&(_, c)| c.is_ascii() || char_class(c) != CharClass::Ignorable)
                    .map(|(i, c)| (s + i, c)),
            );
            url_prefix(chars).0.and_then(|(from, to)| {
                let (last, c) = *chars.get(to.checked_sub(1)?)?;
                Some((chars.get(from)?.0, last + c.len_utf8()))
            })
        };
        if let Some((from, to)) = skip {
            if from < to {
                first = first.min(s);
            }
            t[from..to].fill(b' ');
        }
        done_to = e;
        k = e.max(k);
    }
    first
}

/// How [`scan_plain`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plain {
    /// The words are found.
    Done,
    /// The text may hold a URL prefix (a `://` or a `www.`, as [`may_hold_url`] says, or
    /// an ignorable after a `:`, `/` or `w`, and a `:` or `.`): blank it first. Everything
    /// is left as it was.
    Url,
    /// The text needs the general tokenizer. Everything is left as it was.
    Declined,
}

/// ASCII stretches at least this long are taken by [`scan_ascii`] ([`Emitter::ascii_stretch`]),
/// shorter ones 16 bytes at a time ([`Emitter::ascii_chunk`]).
const LONG_ASCII: usize = 24;

/// The number of ASCII bytes `s` starts with (8 at a time).
#[inline(always)]
fn ascii_run(s: &[u8]) -> usize {
    let mut k = 0;
    while let Some(chunk) = s.get(k..k + 8) {
        let high = u64::from_le_bytes(chunk.try_into().expect("8 bytes")) & 0x8080_8080_8080_8080;
        if high != 0 {
            return k + high.trailing_zeros() as usize / 8;
        }
        k += 8;
    }
    k + s[k..].iter().take_while(|b| b.is_ascii()).count()
}

/// The character that starts at `bytes[i]`, a lead byte of at least two bytes in valid
/// UTF-8 (`bytes` is a `str`'s), and its length. Decoded from the bytes: `text[i..].chars()`
/// also checked that `i` is a character boundary, and went through an `Option` and
/// `len_utf8` (~15 instructions per non-ASCII character).
#[inline(always)]
fn char_at(bytes: &[u8], i: usize) -> (char, usize) {
    let b = u32::from(bytes[i]);
    let tail = |k: usize| u32::from(bytes[i + k] & 0x3f);
    let (code, len) = if b < 0xe0 {
        (((b & 0x1f) << 6) | tail(1), 2)
    } else if b < 0xf0 {
        (((b & 0x0f) << 12) | (tail(1) << 6) | tail(2), 3)
    } else {
        (((b & 0x07) << 18) | (tail(1) << 12) | (tail(2) << 6) | tail(3), 4)
    };
    (char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER), len)
}

/// [`scan_unicode`] on a text: [`Plain::Url`] if `urls` and the text may hold a URL prefix.
/// `fold` is scratch space. Also returns whether a non-ASCII character it took follows a `/`
/// or a `.` (meaningful with [`Plain::Done`]: it took them all).
///
/// Stretches of up to 16 ASCII bytes are classified at once (as [`scan_ascii`] does), their
/// words taken from the edges of the word mask; the other characters one by one. Words are
/// hashed as they end.
fn scan_plain(
    text: &str,
    buf: &mut Vec<u8>,
    hasher: &WordHasher,
    words: &mut Vec<(u64, u32, u32)>,
    runs: &mut Vec<(u32, u32)>,
    fold: &mut String,
    urls: bool,
) -> (Plain, bool) {
    let marks = (buf.len(), words.len(), runs.len());
    let bytes = text.as_bytes();
    let n = bytes.len();
    words.reserve(n / 2 + 1);
    buf.resize(marks.0 + n + ROOM, 0);
    let mut e = Emitter { at: marks.0, buf, words, runs, hasher, kind: NONE, start: 0 };
    let mut i = 0;
    // Whether the text holds an ignorable after a `:`, `/` or `w`: the tokenizer drops
    // ignorables before it looks for a URL prefix, so `www\u{200b}.` is one (and the checks
    // of the ASCII bytes miss it). (Any ignorable cost 350 instructions per non-ASCII post:
    // emoji sequences hold ZWJs and `U+FE0F`s, and most posts a `.` or a `:`.)
    let mut ignorable = false;
    // A non-ASCII character after a `/` or a `.` (a local: as a store per character through
    // a `&mut bool` parameter it cost ~26 instructions per non-ASCII post).
    let mut slash_or_dot = false;
    let mut result = 'scan: loop {
        let Some(&b) = bytes.get(i) else { break Plain::Done };
        if b < 0x80 {
            let run = ascii_run(&bytes[i..]);
            if run >= LONG_ASCII {
                if let Some(end) = e.ascii_stretch(&bytes[i..i + run], urls) {
                    break 'scan end;
                }
                i += run;
                continue;
            }
            // ASCII: the bytes up to the next non-ASCII one, 16 at a time (the last chunk of
            // the text zero-padded: zeros are not ASCII letters or digits, and they are left
            // out by `len`).
            let (lo, hi, avail) = match bytes.get(i..i + 16) {
                Some(chunk) => (
                    u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")),
                    u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes")),
                    16,
                ),
                None => {
                    let mut chunk = [0u8; 16];
                    let tail = &bytes[i..];
                    chunk[..tail.len()].copy_from_slice(tail);
                    (
                        u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes")),
                        u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes")),
                        tail.len() as u32,
                    )
                }
            };
            let c = classify16(lo, hi);
            let len = c.non_ascii.trailing_zeros().min(avail);
            // Every ASCII byte of the text is in exactly one chunk's first `len` bytes, so
            // this sees every `:` and `.`: a `://` or a `www.` (what `may_hold_url` looks for).
            let marks_here = (c.colon | c.dot) & ((1u64 << len) - 1);
            if urls && marks_here != 0 {
                for p in super::segment::bits(marks_here) {
                    let at = i + p;
                    let url = if bytes[at] == b':' {
                        bytes[at + 1..].starts_with(b"//")
                    } else {
                        at >= 3 && bytes[at - 3..at].eq_ignore_ascii_case(b"www")
                    };
                    if url {
                        break 'scan Plain::Url;
                    }
                }
            }
            e.ascii_chunk(&c, len);
            i += len as usize;
            continue;
        }
        let (c, len) = char_at(bytes, i);
        debug_assert_eq!(Some(c), text[i..].chars().next());
        slash_or_dot |= i > 0 && matches!(bytes[i - 1], b'/' | b'.');
        let at = i;
        i += len;
        let (class, folds) = match plain_char(c) {
            Some((CharClass::Ignorable, _, _)) => {
                // Inside a `://` or a `www.` only after one of their characters (the first
                // ignorable of a run sees it).
                ignorable |= at > 0 && matches!(bytes[at - 1], b':' | b'/' | b'w' | b'W');
                continue;
            }
            // A combining mark belongs to the word it follows. (After anything else it joins a
            // separator or may compose with an emoji: the general path decides.)
            Some((_, false, true)) if e.kind != NONE => {
                e.push_char(bytes, at, len);
                continue;
            }
            Some((class, folds, false)) => (class, folds),
            _ => break Plain::Declined,
        };
        let kind = match class {
            CharClass::Word | CharClass::Emoji => WORD,
            CharClass::NoSpace => NO_SPACE,
            _ => {
                e.flush();
                continue;
            }
        };
        if class == CharClass::Emoji {
            e.flush();
        }
        e.open(kind);
        if folds {
            fold.clear();
            push_case_folded(c, fold);
            if !fold.chars().all(|f| f.is_ascii() || plain_char(f).is_some()) {
                break Plain::Declined;
            }
            e.push(fold.as_bytes());
        } else {
            e.push_char(bytes, at, len);
        }
        if class == CharClass::Emoji {
            e.flush();
        }
    };
    if urls && ignorable && result == Plain::Done && memchr::memchr2(b':', b'.', bytes).is_some() {
        result = Plain::Url;
    }
    if result == Plain::Done {
        e.flush();
        let end = e.at;
        buf.truncate(end);
    } else {
        buf.truncate(marks.0);
        words.truncate(marks.1);
        runs.truncate(marks.2);
    }
    (result, slash_or_dot)
}

/// Whether `text` may hold a URL prefix (`://` or `www.` in any case), which tokenising
/// removes (also the small-set prefilter's test).
pub(super) fn may_hold_url(text: &[u8]) -> bool {
    memchr::memchr_iter(b':', text).any(|i| text[i + 1..].starts_with(b"//"))
        || memchr::memchr_iter(b'.', text)
            .any(|i| i >= 3 && text[i - 3..i].eq_ignore_ascii_case(b"www"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{Tokens, UrlMode};

    /// The words the scanner finds (checking each hash), or `None` for non-ASCII text.
    fn words(text: &str) -> Option<(Vec<String>, Noticed)> {
        let h = WordHasher::with_seed(1, 2);
        let mut buf = b"prefix".to_vec();
        let mut spans = vec![(0, 0, 0)];
        let noticed =
            scan_field(text.as_bytes(), &mut buf, &mut Vec::new(), &h, &[0; 16], &mut spans);
        let Some(noticed) = noticed else {
            assert_eq!((buf.as_slice(), spans.len()), (&b"prefix"[..], 1), "left as it was");
            return None;
        };
        let mut out = Vec::new();
        for &(hash, a, b) in &spans[1..] {
            let w = &buf[a as usize..b as usize];
            assert_eq!(hash, h.hash(w));
            out.push(String::from_utf8(w.to_vec()).unwrap());
        }
        Some((out, noticed))
    }

    fn tokenizer_words(s: &str) -> Vec<String> {
        Tokens::of(s, UrlMode::Canonicalize).word_texts().map(String::from).collect()
    }

    /// The (words, no-space runs) `scan_unicode` finds, or `None` where it declines.
    fn unicode_words(text: &str) -> Option<(Vec<String>, Vec<String>)> {
        super::unicode_tests::scanned(text)
    }

    fn tokenizer_words_and_runs(s: &str) -> (Vec<String>, Vec<String>) {
        let t = Tokens::of(s, UrlMode::Canonicalize);
        let (mut words, mut runs) = (Vec::new(), Vec::new());
        for (i, w) in t.words().iter().enumerate() {
            let list = if w.no_space { &mut runs } else { &mut words };
            list.push(t.word_text(i).to_string());
        }
        (words, runs)
    }

    #[test]
    fn unicode_scanner_equals_tokenizer() {
        for s in [
            "Привет, МИР! café STRASSE straße ΣΊΣΥΦΟΣ",
            "東京タワーに行きたい ภาษาไทย mixed東京abc สวัสดี",
            "b\u{200B}omb \u{ad}soft emoji🍕🍕x 👍🏽 🇫🇷 ©®",
            "İstanbul ǅ ﬁ ẞ Ⓜ ㎒ x\u{85}y\u{a0}z\u{3000}w \u{1}ctl",
            "",
            "é",
            // URL prefixes are blanked first (issue 20).
            "caf\u{e9} http://x.com",
        ] {
            match unicode_words(s) {
                Some(found) => assert_eq!(found, tokenizer_words_and_runs(s), "{s:?}"),
                // `İ` folds to `i` + a combining dot: the general path handles it.
                None => assert!(s.contains('İ'), "the fast path should take {s:?}"),
            }
        }
        // Declined: combining marks, characters NFC changes, URLs.
        for s in [
            "e\u{301}",
            "\u{212b}ngstr\u{f6}m",
            "\u{1100}\u{1161}",
            "x \u{e34}",
            "\u{1f44d}\u{e34}",
        ] {
            assert_eq!(unicode_words(s), None, "{s:?}");
        }
    }

    #[test]
    fn unicode_scanner_takes_ascii_stretches_of_every_length_and_position() {
        // ASCII before and after each non-ASCII piece, at every offset around the 16-byte
        // chunks, with the piece joined to a word, to a separator, or at an end.
        let pieces = ["é", "Ñá", "東京", "ภาษา", "🍕", "Σ", "x\u{200b}y", "ß", "\u{a0}", "👍🏽"];
        let ascii = "Abcdefghij Klmnop, qrstu 0123456789 vwxyz#tag ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        // (A sample under Miri, which interprets the SSE2 path slowly.)
        let lengths: &[usize] = if cfg!(miri) {
            &[0, 15, 17]
        } else {
            &[0, 1, 2, 5, 8, 15, 16, 17, 24, 31, 32, 33, 40]
        };
        let (froms, pieces) = if cfg!(miri) { (0..2, &pieces[..3]) } else { (0..16, &pieces[..]) };
        for piece in pieces {
            for (from, before, after) in froms.clone().flat_map(|f| {
                lengths.iter().flat_map(move |&b| lengths.iter().map(move |&a| (f, b, a)))
            }) {
                let (head, tail) = (&ascii[from..from + before], &ascii[from..from + after]);
                let s = format!("{head}{piece}{tail}");
                let found = unicode_words(&s).unwrap_or_else(|| panic!("declined {s:?}"));
                assert_eq!(found, tokenizer_words_and_runs(&s), "{s:?}");
            }
        }
    }

    /// Proptest cases: 512, or `STREAMTRACK_PROPTEST_CASES` for a long local run.
    fn cases() -> u32 {
        std::env::var("STREAMTRACK_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(cases()))]
        #[test]
        #[cfg_attr(miri, ignore = "too slow under Miri; the deterministic tests above cover the SSE2 paths")]
        fn unicode_scanner_equals_tokenizer_on_messy_text(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                4 => "[a-zA-Z0-9]{1,8}",
                // Long ASCII stretches: the 16-byte path, across chunk boundaries.
                2 => "[a-zA-Z0-9 ,.#]{8,40}",
                2 => "[ \t\n]{1,2}",
                2 => "[!-/:-@\\[-`{-~]{1,2}",
                1 => "[\u{0}-\u{1f}\u{7f}\u{80}-\u{9f}]",
                1 => "[\u{a0}\u{3000}\u{2003}\u{85}]",
                1 => "[\u{ad}\u{200b}\u{200d}\u{fe0f}\u{2060}]",
                1 => "[\u{300}-\u{36f}]",
                2 => "[àéîõüßİΣσςДжΐǅﬁẞⓂ㎒]{1,3}",
                2 => "[東京大タワー欲しいภาษา]{1,4}",
                1 => "[🍕👍🏽🇫🇷©]",
                1 => "\\PC{1,3}",
            ], 0..24)
        ) {
            let s = pieces.concat();
            if let Some(found) = unicode_words(&s) {
                proptest::prop_assert_eq!(found, tokenizer_words_and_runs(&s), "{:?}", s);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(cases()))]
        /// ASCII text dense in URL prefixes and near misses, with words before, between and
        /// after them (the scan is redone only from the first blanked token), at every
        /// offset against the 64-byte blocks (the padding piece).
        #[test]
        #[cfg_attr(miri, ignore = "too slow under Miri")]
        fn ascii_scanner_equals_tokenizer_around_urls(
            pad in 0usize..70,
            pieces in proptest::collection::vec(proptest::prop_oneof![
                4 => "[a-zA-Z0-9]{1,12}",
                3 => "[ \t\n]{1,2}",
                2 => proptest::strategy::Strategy::prop_map(proptest::sample::select(vec![
                    "http://", "HTTPS://", "www.", "WwW.", "://", "ftp://", "www", "w.",
                    "(http://www.", "x://", ":", "/", ".", "..", "@", "#", "$", "'", "-",
                ]), String::from),
                1 => "[!-/:-@\\[-`{-~]{1,3}",
            ], 0..30)
        ) {
            let s = format!("{}{}", " ".repeat(pad), pieces.concat());
            proptest::prop_assert_eq!(words(&s).unwrap().0, tokenizer_words(&s), "{:?}", s);
        }
    }

    /// The blanking as it was before prefixes were found from `://` and `www.` alone: every
    /// `:` and `.` of the text, the raw token around it examined (the reference the
    /// prefix finder is checked against). Returns the first byte blanked, if any.
    fn blank_url_prefixes_at_every_dot(t: &mut [u8]) -> Option<usize> {
        let mut first = None;
        let mut done_to = 0;
        let mut k = 0;
        while let Some(off) = memchr::memchr2(b':', b'.', &t[k..]) {
            let pos = k + off;
            k = pos + 1;
            if pos < done_to {
                continue;
            }
            let s = t[..pos].iter().rposition(|&c| is_space(c)).map_or(0, |i| i + 1);
            let e = t[pos..].iter().position(|&c| is_space(c)).map_or(t.len(), |i| pos + i);
            if let (Some((from, to)), true) = crate::normalize::ascii_url_prefix(&t[s..e]) {
                if from < to {
                    first = first.or(Some(s + from));
                }
                t[s + from..s + to].fill(b' ');
            }
            done_to = e;
            k = e.max(k);
        }
        first
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(cases()))]
        /// `url_prefixes` finds exactly the ranges the every-dot blanking blanks (examining
        /// only the raw tokens with a `://` or a `www.`), and `None` only past its bound.
        #[test]
        #[cfg_attr(miri, ignore = "too slow under Miri")]
        fn url_prefixes_are_what_the_blanking_removes(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                4 => "[a-zA-Z0-9]{1,6}",
                3 => "[ \t\n]{1,2}",
                3 => proptest::strategy::Strategy::prop_map(proptest::sample::select(vec![
                    "http://", "HTTPS://", "www.", "WwW.", "://", "ftp://", "www", "w.",
                    "(http://www.", "x://", "a.b+c-d://", ":", "/", ".", "..", "'", "-",
                ]), String::from),
                1 => "[!-/:-@\\[-`{-~]{1,3}",
            ], 0..40)
        ) {
            let t = pieces.concat().into_bytes();
            let mut copy = t.clone();
            blank_url_prefixes_at_every_dot(&mut copy);
            let mut blanked = Vec::new();
            for i in (0..t.len()).filter(|&i| copy[i] != t[i]) {
                match blanked.last_mut() {
                    Some((_, to)) if *to == i => *to = i + 1,
                    _ => blanked.push((i, i + 1)),
                }
            }
            let mut found = [(0, 0); MAX_PREFIXES];
            match url_prefixes(&t, &mut found) {
                Some(n) => proptest::prop_assert_eq!(&found[..n], &blanked[..]),
                None => proptest::prop_assert!(blanked.len() > MAX_PREFIXES),
            }
        }
    }

    /// Ordinary URLs take the in-place path (their words dropped, no second scan) and give
    /// the tokenizer's words; more prefixes than the bound, and a word crossing a prefix's
    /// edge, leave the words as they were for the blanked scan.
    #[test]
    fn prefix_words_are_dropped_in_place_unless_one_crosses_an_edge() {
        let h = WordHasher::with_seed(1, 2);
        for s in [
            "see http://x.com and (HTTPS://WWW.Example.com/a). www.www.y.org ftp://z",
            "RT @a: look https://t.co/AbC123 #now",
            "svn+ssh://host/x and www.a.b, then http://www.c.d/e?f=http://g",
        ] {
            let (mut buf, mut words) = (b"prefix".to_vec(), vec![(0, 0, 0)]);
            scan_ascii(s.as_bytes(), &mut buf, &h, &[0; 16], &mut words).unwrap();
            let mut prefixes = [(0, 0); MAX_PREFIXES];
            let n = url_prefixes(s.as_bytes(), &mut prefixes).unwrap();
            assert!(n > 0 && drop_prefix_words(&prefixes[..n], 6, &mut words, 1), "{s:?}");
            let found: Vec<String> = words[1..]
                .iter()
                .map(|&(_, a, b)| String::from_utf8(buf[a as usize..b as usize].to_vec()).unwrap())
                .collect();
            assert_eq!(found, tokenizer_words(s), "{s:?}");
        }
        let many = "http://a.b ".repeat(MAX_PREFIXES + 1) + "www.c.d end";
        assert_eq!(url_prefixes(many.as_bytes(), &mut [(0, 0); MAX_PREFIXES]), None);
        assert_eq!(words(&many).unwrap().0, tokenizer_words(&many));
        // A prefix range cutting a word (no text gives one: the blanked scan is the answer).
        let mut words = vec![(1, 6, 10), (2, 11, 15)];
        assert!(!drop_prefix_words(&[(2, 7)], 6, &mut words, 0));
        assert!(!drop_prefix_words(&[(0, 7)], 6, &mut words, 0));
        assert_eq!(words, [(1, 6, 10), (2, 11, 15)]);
        assert!(drop_prefix_words(&[(5, 9)], 6, &mut words, 0));
        assert_eq!(words, [(1, 6, 10)]);
    }

    /// A word scan (`scan_ascii` or one of its chunk sizes).
    type ScanFn =
        fn(&[u8], &mut Vec<u8>, &WordHasher, &[u64], &mut Vec<(u64, u32, u32)>) -> Option<Noticed>;
    /// What a scan found: its result, the words (hash, start, end), the buffer.
    type Scanned = (Option<Noticed>, Vec<(u64, u32, u32)>, Vec<u8>);

    /// What `scan` finds in `text` after a 6-byte prefix (the buffer up to the text's end).
    fn run_scan(scan: ScanFn, text: &[u8]) -> Scanned {
        let h = WordHasher::with_seed(5, 6);
        let (mut buf, mut words) = (b"prefix".to_vec(), vec![(7, 8, 9)]);
        // A filter's blocks to request as the words are hashed (what the answers must not
        // depend on; under Miri, the requests' addresses are checked).
        let filter = vec![0u64; 64];
        let found = scan(text, &mut buf, &h, &filter, &mut words);
        if found.is_none() {
            assert_eq!((buf.as_slice(), words.as_slice()), (&b"prefix"[..], &[(7, 8, 9)][..]));
        }
        buf.truncate(6 + if found.is_some() { text.len() } else { 0 });
        (found, words, buf)
    }

    /// The scan `scan_ascii` takes on this CPU (32-byte chunks with AVX2) and the 16-byte
    /// one find the same words, hashes, lower-cased bytes and flags, and both equal a
    /// reference: the maximal runs of ASCII letters and digits, lower-cased, each hashed by
    /// `WordHasher::hash`; `sigil` iff the text holds `#`, `@` or `$`; `url` whenever
    /// `may_hold_url` says yes; `None` (all left as it was) for non-ASCII text.
    fn scans_agree(text: &[u8]) {
        let wide = run_scan(scan_ascii, text);
        let narrow = run_scan(scan_ascii_narrow, text);
        assert_eq!(wide, narrow, "{:?}", String::from_utf8_lossy(text));
        let (found, words, buf) = narrow;
        let Some(noticed) = found else {
            assert!(!text.is_ascii(), "{:?}", String::from_utf8_lossy(text));
            return;
        };
        assert!(text.is_ascii());
        assert_eq!(&buf[6..], text.to_ascii_lowercase().as_slice());
        let h = WordHasher::with_seed(5, 6);
        let mut want = vec![(7, 8, 9)];
        let mut i = 0;
        while i < text.len() {
            if text[i].is_ascii_alphanumeric() {
                let len = text[i..].iter().take_while(|b| b.is_ascii_alphanumeric()).count();
                let word = text[i..i + len].to_ascii_lowercase();
                want.push((h.hash(&word), (6 + i) as u32, (6 + i + len) as u32));
                i += len;
            } else {
                i += 1;
            }
        }
        assert_eq!(words, want, "{:?}", String::from_utf8_lossy(text));
        assert_eq!(noticed.sigil, text.iter().any(|b| b"#@$".contains(b)));
        assert!(noticed.url || !may_hold_url(text), "{:?}", String::from_utf8_lossy(text));
    }

    /// Words of every length from 1 to 140 (one, two and more 8-byte loads, across the 16-,
    /// 32- and 64-byte chunk and block edges) at every offset from 0 to 70, mixed case, and
    /// a non-ASCII byte after the ASCII ones at every position (a sample under Miri).
    #[test]
    fn wide_and_narrow_scans_agree_on_every_length_and_offset() {
        let (lengths, offsets) = if cfg!(miri) { (1..20, 0..3) } else { (1..141, 0..71) };
        for len in lengths {
            for at in offsets.clone() {
                let word: String = (0..len)
                    .map(|i| if i % 3 == 0 { 'Q' } else { (b'a' + (i % 26) as u8) as char })
                    .collect();
                let text = format!("{}{word} x@Y", " ".repeat(at));
                scans_agree(text.as_bytes());
                let mut late = text.into_bytes();
                late.insert((at * 7 + len) % late.len(), 0xc3);
                scans_agree(&late);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(cases()))]
        /// Random ASCII posts (long words, URLs, entities, mixed case), sometimes with
        /// non-ASCII text after the ASCII: both scans agree with each other and with the
        /// reference of `scans_agree`.
        #[test]
        #[cfg_attr(miri, ignore = "too slow under Miri")]
        fn wide_and_narrow_scans_agree_on_posts(
            pad in 0usize..70,
            pieces in proptest::collection::vec(proptest::prop_oneof![
                4 => "[a-zA-Z0-9]{1,12}",
                1 => "[a-zA-Z0-9]{13,80}",
                3 => "[ \t\n]{1,2}",
                2 => proptest::strategy::Strategy::prop_map(proptest::sample::select(vec![
                    "http://", "HTTPS://", "www.", "WwW.", "://", "ww", "w", "#", "@", "$",
                    "RT @x:", "10:30", "&amp;", "a.b/c?d=e",
                ]), String::from),
                1 => "[!-/:-@\\[-`{-~]{1,3}",
                1 => "[\x00-\x1f\x7f]",
            ], 0..40),
            tail in proptest::option::weighted(0.2, "[é東🍕a-z ]{1,4}"),
        ) {
            let text = format!("{}{}{}", " ".repeat(pad), pieces.concat(), tail.unwrap_or_default());
            scans_agree(text.as_bytes());
        }
    }

    #[test]
    fn swar_helpers() {
        let (lower, word, non_ascii, colon, sigil, w, dot) =
            swar::classify8(u64::from_le_bytes(*b"aZ09:#\xc3@"));
        assert_eq!((w, dot), (0, 0));
        let (_, _, _, _, _, w, dot) = swar::classify8(u64::from_le_bytes(*b"wW.x...."));
        assert_eq!((w, dot), (0b11, 0b1111_0100));
        assert_eq!(lower.to_le_bytes(), *b"az09:#\xc3@");
        assert_eq!(word, 0b0000_1111);
        assert_eq!(non_ascii, 0b0100_0000);
        assert_eq!(colon, 0b0001_0000);
        assert_eq!(sigil, 0b1010_0000);
        assert_eq!(swar::movemask(0x8000_0000_0000_0080), 0b1000_0001);
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
            "[\\]^_`{|}~ /@AZaz09:;<=>?",
        ];
        for s in samples {
            assert_eq!(words(s).unwrap().0, tokenizer_words(s), "{s:?}");
        }
        // Every length and word position around the 16- and 64-byte block boundaries (a
        // sample of them under Miri, which interprets the SSE2 path slowly).
        let lengths: Vec<usize> =
            if cfg!(miri) { vec![1, 8, 15, 16, 17, 63, 64, 65, 129] } else { (1..300).collect() };
        let periods: &[usize] = if cfg!(miri) { &[3, 17] } else { &[2, 3, 7, 9, 17, 64, 65] };
        for long in lengths {
            for &period in periods {
                let s: String = (0..long)
                    .map(|i| {
                        if i % period == period - 1 {
                            ' '
                        } else {
                            (b'a' + (i % 26) as u8) as char
                        }
                    })
                    .collect();
                assert_eq!(words(&s).unwrap().0, tokenizer_words(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn non_ascii_text_is_left_to_the_tokenizer() {
        assert_eq!(words("café"), None);
        let late = format!("{}é", "a".repeat(200));
        assert_eq!(words(&late), None);
    }

    #[test]
    fn sigils_and_possible_urls_are_noticed() {
        let (_, n) = words("plain words only").unwrap();
        assert_eq!(n, Noticed { url: false, sigil: false });
        assert!(words("#tag").unwrap().1.sigil);
        assert!(words("mail a@b").unwrap().1.sigil);
        assert!(words("costs $5").unwrap().1.sigil);
        assert!(!words("at 10:30, RT @x: a:/b :/ / x.y").unwrap().1.url);
        assert!(words("see HTTP://x").unwrap().1.url);
        assert!(words("see WWW.example").unwrap().1.url);
        assert!(!words("wwx.x w.w.w.").unwrap().1.url);
        let far = format!("{}www.x", " ".repeat(61));
        assert!(words(&far).unwrap().1.url, "across a block boundary");
    }

    /// The scan notices every URL prefix `may_hold_url` finds (the scan's flag decides
    /// whether `may_hold_url` runs at all), wherever it sits against the 16- and 64-byte
    /// blocks, and not texts whose colons, slashes and dots make none.
    #[test]
    fn every_possible_url_prefix_is_noticed_at_every_offset() {
        let offsets: Vec<usize> =
            if cfg!(miri) { vec![0, 15, 61, 62, 63, 64] } else { (0..140).collect() };
        for at in offsets {
            for prefix in ["://", "wWw.", "http://", "ftp://x"] {
                let s = format!("{}{prefix}x y", "a".repeat(at));
                assert!(may_hold_url(s.as_bytes()), "{s:?}");
                assert!(words(&s).unwrap().1.url, "{s:?}");
            }
            // Colons, slashes and dots that make no prefix, away from a block's last bytes.
            let plain = format!("{}a:b c/d :/x / ww. w.w", " ".repeat(at % 40));
            assert!(!words(&plain).unwrap().1.url, "{plain:?}");
        }
    }

    #[test]
    fn urls_are_canonicalised_like_the_tokenizer_does() {
        for s in [
            "see http://x.com and (HTTPS://WWW.Example.com/a). www.www.y.org ftp://z",
            "http:// alone, x+y.z://q, a://b://c, http://a.com/?u=http://b, wwwx. www.",
            "WWW.A http://www. https://www.www.",
            "words before http://x.com/a?b=c, between www.y.org and after: awww. www",
            "no url here: 10:30 a.b awww.x ww.w x:/y",
        ] {
            assert_eq!(words(s).unwrap().0, tokenizer_words(s), "{s:?}");
        }
    }
}

/// Issue 20: the non-ASCII scanner (URL prefixes blanked) against the full tokenizer.
#[cfg(test)]
#[path = "scan_unicode_tests.rs"]
mod unicode_tests;
