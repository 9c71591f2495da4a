//! Keyed hashing, a blocked Bloom filter and an open-addressing word table: the structures that
//! recognise a message's words without walking a byte automaton.
//!
//! Every table is keyed by a random seed drawn when it is built, so an adversary who registers
//! rules (or writes messages) cannot craft words that collide (hash flooding, target R5).

use std::hash::{BuildHasher, Hasher};

/// A seeded, multiply-based hash of short byte strings (words are a few bytes long).
#[derive(Clone, Copy, Debug)]
pub(crate) struct WordHasher {
    k0: u64,
    k1: u64,
}

const P0: u64 = 0xa076_1d64_78bd_642f;
const P1: u64 = 0xe703_7ed1_a0b4_28db;
const P2: u64 = 0x8ebc_6af0_9c88_c6e3;

#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    (r as u64) ^ ((r >> 64) as u64)
}

impl WordHasher {
    /// A hasher with a random key (from the standard library's per-process randomness).
    pub(crate) fn random() -> Self {
        let state = std::collections::hash_map::RandomState::new();
        let mut a = state.build_hasher();
        a.write_u64(0x5eed);
        let mut b = state.build_hasher();
        b.write_u64(0xfeed);
        WordHasher::with_seed(a.finish(), b.finish())
    }

    /// A hasher with a fixed key (reproducible tests and benchmarks).
    pub(crate) fn with_seed(k0: u64, k1: u64) -> Self {
        WordHasher { k0: k0 | 1, k1 }
    }

    /// The hash of `bytes`. A word of at most 8 bytes (most words) takes one multiply: its
    /// bytes as a little-endian `u64` (zero-padded) mixed with the key and the length. Longer
    /// words take one multiply per 8-byte chunk and a finalising one.
    #[inline]
    pub(crate) fn hash(&self, bytes: &[u8]) -> u64 {
        if bytes.len() <= 8 {
            let mut v = 0u64;
            for (i, &b) in bytes.iter().enumerate() {
                v |= u64::from(b) << (8 * i);
            }
            return self.hash_short(v, bytes.len());
        }
        let mut h = self.k0 ^ (bytes.len() as u64).wrapping_mul(P0);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let v = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            h = folded_mul(h ^ v, P1 ^ self.k1);
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            let mut v = 0u64;
            for (i, &b) in tail.iter().enumerate() {
                v |= u64::from(b) << (8 * i);
            }
            h = folded_mul(h ^ v, P2 ^ self.k1);
        }
        folded_mul(h, P0 ^ self.k0)
    }

    /// The hash of a word of `len <= 8` bytes given as a zero-padded little-endian `u64`.
    #[inline(always)]
    pub(crate) fn hash_short(&self, v: u64, len: usize) -> u64 {
        folded_mul(v ^ self.k0, (P1 ^ self.k1) ^ ((len as u64) << 56))
    }

    /// [`WordHasher::hash`] of `buf[start..start + len]`, for a buffer with at least 8
    /// readable bytes past the word (the tail is read as one masked 8-byte load).
    #[inline(always)]
    pub(crate) fn hash_padded(&self, buf: &[u8], start: usize, len: usize) -> u64 {
        let first = u64::from_le_bytes(buf[start..start + 8].try_into().expect("padded buffer"));
        if len <= 8 {
            return self.hash_short(first & LOW_BYTES[len], len);
        }
        let mut h = self.k0 ^ (len as u64).wrapping_mul(P0);
        let mut p = start;
        let end = start + len;
        while p + 8 <= end {
            let v = u64::from_le_bytes(buf[p..p + 8].try_into().expect("8 bytes"));
            h = folded_mul(h ^ v, P1 ^ self.k1);
            p += 8;
        }
        let rest = end - p;
        if rest > 0 {
            let v = u64::from_le_bytes(buf[p..p + 8].try_into().expect("padded buffer"));
            let v = v & LOW_BYTES[rest];
            h = folded_mul(h ^ v, P2 ^ self.k1);
        }
        folded_mul(h, P0 ^ self.k0)
    }
}

/// `LOW_BYTES[n]` keeps the low `n` bytes of a `u64` (a load instead of a branch and a
/// variable shift per word).
const LOW_BYTES: [u64; 9] = {
    let mut m = [0u64; 9];
    let mut n = 1;
    while n <= 8 {
        m[n] = u64::MAX >> (64 - 8 * n);
        n += 1;
    }
    m
};

/// The key hash of two adjacent words from their word hashes (a [`KeyKind::Pair`] key):
/// one multiply per pair of message words, keyed since the word hashes are. Asymmetric, so
/// that `b a` is another key than `a b`.
///
/// [`KeyKind::Pair`]: crate::matcher::compile::KeyKind::Pair
#[inline(always)]
pub(crate) fn pair_hash(a: u64, b: u64) -> u64 {
    let x = (a ^ b.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^ (x >> 32)
}

impl WordHasher {
    /// The hash of a word-table key: a word's hash, or for a pair `a b` (a space is never
    /// inside a word) the [`pair_hash`] of its words' hashes.
    pub(crate) fn key_hash(&self, key: &[u8]) -> u64 {
        match key.iter().position(|&b| b == b' ') {
            Some(i) => pair_hash(self.hash(&key[..i]), self.hash(&key[i + 1..])),
            None => self.hash(key),
        }
    }
}

/// The bit patterns of [`BloomFilter`] keys: 2,048 masks of three distinct bits of 64, drawn
/// once (splitmix64 from a fixed seed) when the crate is compiled. A key's pattern is chosen by
/// its (seeded) hash, so the patterns need no key of their own.
static BLOOM_PATTERNS: [u64; 2048] = bloom_patterns();

const fn bloom_patterns() -> [u64; 2048] {
    let mut out = [0u64; 2048];
    let mut state = 0x5151_7ac4_e1d2_0b3fu64;
    let mut i = 0;
    while i < out.len() {
        let mut m = 0u64;
        while m.count_ones() < 3 {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            m |= 1 << (z & 63);
        }
        out[i] = m;
        i += 1;
    }
    out
}

/// A blocked Bloom filter: one `u64` per block, three bits per key, about 16 bits per key.
/// It answers "certainly absent" for most words that no rule uses, from a block that the
/// frequent words of a stream keep in cache.
#[derive(Clone, Debug, Default)]
pub(crate) struct BloomFilter {
    blocks: Vec<u64>,
    mask: usize,
}

impl BloomFilter {
    /// A filter sized for `keys` keys.
    pub(crate) fn with_capacity(keys: usize) -> Self {
        let blocks = (keys / 4).max(1).next_power_of_two();
        let v = vec![0; blocks];
        super::pages::advise_huge_pages(&v);
        BloomFilter { blocks: v, mask: blocks - 1 }
    }

    /// A key's block (hash bits 32 and up) and its three bits in it: one of
    /// [`BLOOM_PATTERNS`], chosen by hash bits 0-10 (one load from a 16 KB table that stays
    /// in L1, where three variable shifts took about ten instructions per probe). A probe
    /// that shares its pattern with one of its block's ~3 keys is a false positive: with
    /// 2,048 patterns that adds about 0.15 points to the rate (bench/journal.md, "Per-post costs at
    /// 100k-1M rules"; rotating the pattern by six more hash bits removed it, at 5-6
    /// instructions per probe, more than the table probes it saved).
    #[inline(always)]
    fn slot(&self, h: u64) -> (usize, u64) {
        let block = block_index(h, self.mask);
        (block, BLOOM_PATTERNS[h as usize & (BLOOM_PATTERNS.len() - 1)])
    }

    /// Adds a key by its hash.
    pub(crate) fn insert(&mut self, h: u64) {
        let (b, bits) = self.slot(h);
        self.blocks[b] |= bits;
    }

    /// Whether the key may be present.
    #[inline(always)]
    pub(crate) fn may_contain(&self, h: u64) -> bool {
        let (b, bits) = self.slot(h);
        self.blocks[b] & bits == bits
    }

    /// The bits of word hash `h`'s block that say "may be the first word of a pair key": a
    /// second pattern of [`BLOOM_PATTERNS`], chosen by hash bits 18-28 (the word's own by
    /// bits 0-10): one load, where two bits placed by variable shifts took six instructions
    /// a probe.
    #[inline(always)]
    fn first_bits(h: u64) -> u64 {
        BLOOM_PATTERNS[(h >> 18) as usize & (BLOOM_PATTERNS.len() - 1)]
    }

    /// Marks the word of hash `h` as the first word of some pair key (in the block its own
    /// probe reads, so asking costs no second load).
    pub(crate) fn mark_pair_first(&mut self, h: u64) {
        let (b, _) = self.slot(h);
        self.blocks[b] |= Self::first_bits(h);
    }

    /// Whether the word of hash `h` may be present, and whether it may begin a pair key
    /// ([`BloomFilter::mark_pair_first`]; no false negative): one load for both.
    #[inline(always)]
    pub(crate) fn probe_word(&self, h: u64) -> (bool, bool) {
        let (b, bits) = self.slot(h);
        let block = self.blocks[b];
        let first = Self::first_bits(h);
        (block & bits == bits, block & first == first)
    }

    /// The presearch's probe loop for up to 64 consecutive message words (`chunk`, word hash
    /// first) whose pairs are not gated: bit `i` of the first mask says word `i` may be a
    /// key (in this filter); with `PAIRS`, bit `i` of the second says the pair of words
    /// `i - 1` and `i` may be one (in `pair_filter`, the pair keys' own; `prev`: the hash of
    /// the word before `chunk[0]`). The same answers as [`BloomFilter::may_contain`] on
    /// each, in fewer instructions: 29 per word and pair
    /// against 44 in the loop it replaces (bench/journal.md, "The filter's probe loop …, round
    /// 3"). The block index is masked by the slice's own length, which lets the compiler
    /// drop the bounds check; the loop's values stay in registers (inlined into the
    /// presearch, the filter's pointer and the pair-hash constant were reloaded from the
    /// stack at every word); and the words are taken last to first, so that each answer is
    /// shifted in at bit 0 (a constant shift, not one by the word's index).
    #[inline(always)]
    pub(crate) fn probe_chunk<const PAIRS: bool>(
        &self,
        pair_filter: &BloomFilter,
        chunk: &[(u64, u32, u32)],
        prev: u64,
    ) -> (u64, u64) {
        debug_assert!(chunk.len() <= 64);
        let (blocks, pair_blocks) = (&self.blocks[..], &pair_filter.blocks[..]);
        if blocks.is_empty() || (PAIRS && pair_blocks.is_empty()) {
            return (0, 0);
        }
        let mask = blocks.len() - 1;
        let pair_mask = if PAIRS { pair_blocks.len() - 1 } else { 0 };
        let probe = |h: u64| {
            let bits = BLOOM_PATTERNS[h as usize & (BLOOM_PATTERNS.len() - 1)];
            u64::from(blocks[block_index(h, mask)] & bits == bits)
        };
        // Two closures, not one taking the blocks as arguments: that one kept both filters'
        // bases and masks in memory and cost ~300 instructions more per post.
        let probe_pair = |h: u64| {
            let bits = BLOOM_PATTERNS[h as usize & (BLOOM_PATTERNS.len() - 1)];
            u64::from(pair_blocks[block_index(h, pair_mask)] & bits == bits)
        };
        let (mut words, mut pairs) = (0u64, 0u64);
        for w in chunk.windows(2).rev() {
            let (a, b) = (w[0].0, w[1].0);
            words = words << 1 | probe(b);
            if PAIRS {
                pairs = pairs << 1 | probe_pair(pair_hash(a, b));
            }
        }
        if let Some(&(h, _, _)) = chunk.first() {
            words = words << 1 | probe(h);
            if PAIRS {
                pairs = pairs << 1 | probe_pair(pair_hash(prev, h));
            }
        }
        (words, pairs)
    }

    /// [`BloomFilter::probe_chunk`] for a filter whose pairs are gated
    /// ([`BloomFilter::mark_pair_first`]): bit `i` of the first mask says word `i` of `chunk`
    /// may be a key, bit `i` of the second that it may begin a pair key; both from the one
    /// block load per word. The same answers as [`BloomFilter::probe_word`] on each word, in
    /// fewer instructions (the loop it replaces took ~33 a word: an index-dependent shift per
    /// answer, and the iterator's own bookkeeping): words taken last to first, each answer
    /// shifted in at bit 0, as in [`BloomFilter::probe_chunk`].
    #[inline(always)]
    pub(crate) fn probe_chunk_gated(&self, chunk: &[(u64, u32, u32)]) -> (u64, u64) {
        debug_assert!(chunk.len() <= 64);
        let blocks = &self.blocks[..];
        if blocks.is_empty() {
            return (0, 0);
        }
        let mask = blocks.len() - 1;
        let (mut words, mut firsts) = (0u64, 0u64);
        for &(h, _, _) in chunk.iter().rev() {
            let block = blocks[block_index(h, mask)];
            let bits = BLOOM_PATTERNS[h as usize & (BLOOM_PATTERNS.len() - 1)];
            let first = Self::first_bits(h);
            words = words << 1 | u64::from(block & bits == bits);
            firsts = firsts << 1 | u64::from(block & first == first);
        }
        (words, firsts)
    }

    /// The blocks for the scanner to request as it hashes a message's words
    /// ([`prefetch_block`]), so that the probes find them in cache: all of them for a filter
    /// of [`PREFETCH_MIN_BYTES`] or more, none for a smaller one (it stays in L2, and the
    /// requests only cost instructions; bench/journal.md, "The filter's blocks requested during the
    /// scan").
    pub(crate) fn blocks_to_prefetch(&self) -> &[u64] {
        if self.blocks.len() * 8 >= PREFETCH_MIN_BYTES {
            &self.blocks
        } else {
            &[]
        }
    }

    /// Whether the word of hash `h` may begin a pair key.
    #[inline(always)]
    pub(crate) fn may_begin_pair(&self, h: u64) -> bool {
        self.probe_word(h).1
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.blocks.capacity() * 8
    }
}

/// The smallest filter whose blocks the scanner requests ahead of the probes: 1 MiB, half of
/// an L2 of 2 MiB (100k rules: 256 KiB, no requests; 1M rules: 2 MiB).
const PREFETCH_MIN_BYTES: usize = 1 << 20;

/// The block of a filter of `mask + 1` blocks (a power of two) that key hash `h` sets and
/// probes: hash bits 32 and up (bits 0-10 choose its pattern). One definition for the
/// probes, the chunk probe loop and the scanner's requests ([`prefetch_block`]).
#[inline(always)]
fn block_index(h: u64, mask: usize) -> usize {
    (h >> 32) as usize & mask
}

/// Requests from memory the block that a probe of hash `h` reads in `blocks` (the blocks
/// [`BloomFilter::blocks_to_prefetch`] gives; empty: nothing).
#[inline(always)]
pub(crate) fn prefetch_block(blocks: &[u64], h: u64) {
    if let Some(mask) = blocks.len().checked_sub(1) {
        super::prefetch::line(blocks.as_ptr().wrapping_add(block_index(h, mask)).cast());
    }
}

/// An exact map from words to dense ids (open addressing, linear probing, load <= 1/2).
///
/// A slot is 16 bytes: the word's first 8 bytes, and a fingerprint (24 hash bits), the
/// length and the id. A word of at most 8 bytes (most words) is confirmed from the slot
/// alone, one cache line; longer words are checked against the byte arena. The table owns
/// its keyed hasher so that it can rehash when it grows.
///
/// A word's home slot is the *high* bits of its hash, so that slots are in hash order: the
/// compiler sorts its words by hash once and fills the table front to back
/// ([`WordTable::place_sorted`]), with no probe and no cache miss per word.
#[derive(Clone, Debug)]
pub(crate) struct WordTable {
    hasher: WordHasher,
    /// `[prefix, fp << 40 | len << 32 | (id + 1)]`; `[_, 0]` is empty.
    slots: Vec<[u64; 2]>,
    mask: usize,
    /// `64 - log2(slots.len())`: a hash's home slot is `h >> shift`.
    shift: u32,
    /// The first slot [`WordTable::place_sorted`] may use.
    cursor: usize,
    arena: Vec<u8>,
    /// `ends[id]` = end of word `id` in `arena` (start = `ends[id - 1]`).
    ends: Vec<u32>,
}

/// The shift that makes `h >> shift` a slot of a table of `cap` (a power of two >= 2) slots.
fn shift_for(cap: usize) -> u32 {
    64 - cap.trailing_zeros()
}

/// Puts `value` for word `word` (hash `h`) in the first free slot of its probe sequence.
fn place(slots: &mut [[u64; 2]], shift: u32, h: u64, word: &[u8], value: u32) {
    let mask = slots.len() - 1;
    let mut i = (h >> shift) as usize;
    while slots[i][1] != 0 {
        i = (i + 1) & mask;
    }
    slots[i] = [prefix(word), meta_key(h, word.len()) | u64::from(value + 1)];
}

/// The first 8 bytes of `word`, little-endian, zero-padded (words never hold NUL).
#[inline(always)]
fn prefix(word: &[u8]) -> u64 {
    let mut p = 0u64;
    for (i, &b) in word.iter().take(8).enumerate() {
        p |= u64::from(b) << (8 * i);
    }
    p
}

/// A slot's fingerprint (24 hash bits that the home slot, the high bits, does not use) and
/// length, in place.
#[inline(always)]
fn meta_key(h: u64, len: usize) -> u64 {
    (((h >> 16) & 0xff_ffff) << 40) | ((len.min(255) as u64) << 32)
}

impl WordTable {
    /// A table for about `words` words (it grows past that).
    pub(crate) fn with_capacity(hasher: WordHasher, words: usize) -> Self {
        let cap = (words * 2).max(8).next_power_of_two();
        let slots = vec![[0, 0]; cap];
        super::pages::advise_huge_pages(&slots);
        WordTable {
            hasher,
            slots,
            mask: cap - 1,
            shift: shift_for(cap),
            cursor: 0,
            arena: Vec::new(),
            ends: Vec::with_capacity(words),
        }
    }

    /// A table to fill by [`WordTable::push_word`] and [`WordTable::place_sorted`] with
    /// `words` words (at most) of `bytes` bytes in all, with room for `min_words` words (the
    /// size [`WordTable::with_capacity`] would give) and never more than half full.
    pub(crate) fn for_sorted(
        hasher: WordHasher,
        min_words: usize,
        words: usize,
        bytes: usize,
    ) -> Self {
        let mut t = WordTable::with_capacity(hasher, min_words.max(words));
        t.arena.reserve_exact(bytes);
        t.ends.reserve_exact(words.saturating_sub(t.ends.capacity()));
        t
    }

    /// Appends `word` to the words, unplaced, and returns its id (see
    /// [`WordTable::place_sorted`]).
    pub(crate) fn push_word(&mut self, word: &[u8]) -> u32 {
        let id = self.ends.len() as u32;
        self.arena.extend_from_slice(word);
        self.ends.push(self.arena.len() as u32);
        id
    }

    /// Places `value` (`< u32::MAX`: a word id, or any value for a word of at most 8 bytes,
    /// such as the word's only posting) for `word`, of hash `h`, not in the table yet.
    /// Calls must come in ascending order of `h`, with the table at most half full: each
    /// word then goes to its home slot or just past the previous word, a write in order
    /// (only the few words that run past the end wrap around and probe).
    pub(crate) fn place_sorted(&mut self, h: u64, word: &[u8], value: u32) {
        debug_assert_eq!(h, self.hasher.key_hash(word));
        assert!(value < u32::MAX, "word-table values are below u32::MAX");
        let home = (h >> self.shift) as usize;
        let i = home.max(self.cursor);
        if i < self.slots.len() {
            debug_assert_eq!(self.slots[i][1], 0, "hashes in ascending order");
            self.slots[i] = [prefix(word), meta_key(h, word.len()) | u64::from(value + 1)];
            self.cursor = i + 1;
        } else {
            place(&mut self.slots, self.shift, h, word, value);
        }
    }

    /// The hasher the table uses.
    #[inline]
    pub(crate) fn hasher(&self) -> &WordHasher {
        &self.hasher
    }

    /// The number of words.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// Word `id`.
    #[inline]
    pub(crate) fn word(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.arena[start..self.ends[i] as usize]
    }

    /// The id of `word` (or the value [`WordTable::place_sorted`] gave it), whose hash is `h`,
    /// if present.
    #[inline]
    pub(crate) fn get(&self, h: u64, word: &[u8]) -> Option<u32> {
        let key = meta_key(h, word.len());
        let p = prefix(word);
        let mut i = (h >> self.shift) as usize;
        loop {
            let [sp, meta] = self.slots[i];
            if meta == 0 {
                return None;
            }
            if meta & !0xffff_ffff == key && sp == p {
                let id = (meta as u32) - 1;
                if word.len() <= 8 || eq_bytes(self.word(id), word) {
                    return Some(id);
                }
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Reads the slot a word of hash `h` probes first (to have it in the cache for a lookup
    /// soon after; see the presearch in `segment`).
    #[inline]
    pub(crate) fn home_slot(&self, h: u64) -> u64 {
        self.slots[(h >> self.shift) as usize][1]
    }

    /// Inserts `word` and returns its id (tests; the compiler sorts its words and fills the
    /// table with `place_sorted`).
    #[cfg(test)]
    pub(crate) fn insert(&mut self, word: &[u8]) -> u32 {
        self.insert_hashed(self.hasher.hash(word), word)
    }

    /// Inserts `word`, whose hash `h` the caller has computed, and returns its id; an
    /// existing word keeps its id.
    #[cfg(test)]
    pub(crate) fn insert_hashed(&mut self, h: u64, word: &[u8]) -> u32 {
        debug_assert_eq!(h, self.hasher.key_hash(word));
        if let Some(id) = self.get(h, word) {
            return id;
        }
        if (self.ends.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let id = self.ends.len() as u32;
        self.arena.extend_from_slice(word);
        self.ends.push(self.arena.len() as u32);
        self.place(h, word, id);
        id
    }

    #[cfg(test)]
    fn place(&mut self, h: u64, word: &[u8], id: u32) {
        place(&mut self.slots, self.shift, h, word, id);
    }

    #[cfg(test)]
    fn grow(&mut self) {
        let cap = self.slots.len() * 2;
        self.slots = vec![[0, 0]; cap];
        self.mask = cap - 1;
        self.shift = shift_for(cap);
        let mut start = 0;
        for (id, &end) in self.ends.iter().enumerate() {
            let word = &self.arena[start..end as usize];
            place(&mut self.slots, self.shift, self.hasher.key_hash(word), word, id as u32);
            start = end as usize;
        }
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * 16 + self.arena.capacity() + self.ends.capacity() * 4
    }
}

/// Byte-string equality without a call into `memcmp` for short words.
#[inline(always)]
fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        a.iter().zip(b).all(|(x, y)| x == y)
    } else {
        a == b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two tables every message word is looked up in get huge pages as they are filled
    /// (`pages.rs`); the assertion fails in THP's `madvise` mode without the advice.
    #[cfg(all(target_os = "linux", not(miri)))]
    #[test]
    fn the_filter_and_the_word_table_are_backed_by_huge_pages() {
        use crate::matcher::pages::tests::{huge_kb_at, FRESH_BYTES};
        let mut table = WordTable::with_capacity(WordHasher::with_seed(1, 2), FRESH_BYTES / 32);
        for i in (0..table.slots.len()).step_by(256) {
            table.slots[i][0] = 1;
        }
        let mut bloom = BloomFilter::with_capacity(FRESH_BYTES / 2);
        for i in (0..bloom.blocks.len()).step_by(512) {
            bloom.blocks[i] = 1;
        }
        assert!(table.slots.len() * 16 >= FRESH_BYTES && bloom.blocks.len() * 8 >= FRESH_BYTES);
        let middle = |p: *const u8, bytes: usize| p as usize + bytes / 2;
        for (what, at) in [
            ("word table", middle(table.slots.as_ptr().cast(), table.slots.len() * 16)),
            ("Bloom filter", middle(bloom.blocks.as_ptr().cast(), bloom.blocks.len() * 8)),
        ] {
            let Some(kb) = huge_kb_at(at) else { return };
            assert!(kb >= 2048, "the {what}'s mapping holds {kb} kB of huge pages");
        }
    }

    /// The presearch's chunk probe gives, bit for bit, the answers of `may_contain` on each
    /// word and on each pair (the previous chunk's last word with the first), for chunks of
    /// every length from 0 to 64, on a filter where about half of the words and pairs are
    /// keys (so that both answers occur at every position).
    #[test]
    fn chunk_probe_answers_as_single_probes() {
        let h = WordHasher::with_seed(7, 8);
        let hashes: Vec<u64> = (0..400).map(|i| h.hash(format!("w{i}").as_bytes())).collect();
        let mut bloom = BloomFilter::with_capacity(400);
        for (i, w) in hashes.windows(2).enumerate() {
            if i % 3 == 0 {
                bloom.insert(w[1]);
            }
            if i % 5 < 2 {
                bloom.insert(pair_hash(w[0], w[1]));
            }
        }
        let words: Vec<(u64, u32, u32)> = hashes.iter().map(|&h| (h, 0, 0)).collect();
        let (mut seen_word, mut seen_pair) = ([0u64; 2], [0u64; 2]);
        for len in 0..=64 {
            for from in 1..=100 {
                let chunk = &words[from..from + len];
                let prev = words[from - 1].0;
                let (w, p) = bloom.probe_chunk::<true>(&bloom, chunk, prev);
                let (w_only, p_none) = bloom.probe_chunk::<false>(&bloom, chunk, prev);
                let (mut want_w, mut want_p) = (0u64, 0u64);
                for (i, &(x, _, _)) in chunk.iter().enumerate() {
                    want_w |= u64::from(bloom.may_contain(x)) << i;
                    let before = if i == 0 { prev } else { chunk[i - 1].0 };
                    want_p |= u64::from(bloom.may_contain(pair_hash(before, x))) << i;
                }
                assert_eq!((w, p), (want_w, want_p), "{len} words from {from}");
                assert_eq!((w_only, p_none), (want_w, 0), "{len} words from {from}, no pairs");
                let valid = u64::MAX >> (64 - len).min(63) >> u32::from(len == 0);
                seen_word = [seen_word[0] | (!want_w & valid), seen_word[1] | want_w];
                seen_pair = [seen_pair[0] | (!want_p & valid), seen_pair[1] | want_p];
            }
        }
        // Both answers at every position.
        assert_eq!((seen_word, seen_pair), ([u64::MAX; 2], [u64::MAX; 2]));
        assert_eq!(BloomFilter::default().probe_chunk::<true>(&bloom, &words[1..9], 0), (0, 0));
    }

    /// The gated chunk probe gives, bit for bit, `probe_word`'s two answers on each word, for
    /// chunks of every length from 0 to 64, on a filter where about a third of the words are
    /// keys and a fifth begin pairs (so that both answers occur at every position).
    #[test]
    fn gated_chunk_probe_answers_as_single_probes() {
        let h = WordHasher::with_seed(9, 10);
        let hashes: Vec<u64> = (0..400).map(|i| h.hash(format!("w{i}").as_bytes())).collect();
        let mut bloom = BloomFilter::with_capacity(400);
        for (i, &x) in hashes.iter().enumerate() {
            if i % 3 == 0 {
                bloom.insert(x);
            }
            if i % 5 == 1 {
                bloom.mark_pair_first(x);
            }
        }
        let words: Vec<(u64, u32, u32)> = hashes.iter().map(|&h| (h, 0, 0)).collect();
        let (mut seen_word, mut seen_first) = ([0u64; 2], [0u64; 2]);
        for len in 0..=64 {
            for from in 0..=100 {
                let chunk = &words[from..from + len];
                let (mut want_w, mut want_f) = (0u64, 0u64);
                for (i, &(x, _, _)) in chunk.iter().enumerate() {
                    let (word, first) = bloom.probe_word(x);
                    want_w |= u64::from(word) << i;
                    want_f |= u64::from(first) << i;
                }
                assert_eq!(bloom.probe_chunk_gated(chunk), (want_w, want_f), "{len} from {from}");
                let valid = u64::MAX >> (64 - len).min(63) >> u32::from(len == 0);
                seen_word = [seen_word[0] | (!want_w & valid), seen_word[1] | want_w];
                seen_first = [seen_first[0] | (!want_f & valid), seen_first[1] | want_f];
            }
        }
        assert_eq!((seen_word, seen_first), ([u64::MAX; 2], [u64::MAX; 2]));
        assert_eq!(BloomFilter::default().probe_chunk_gated(&words[1..9]), (0, 0));
    }

    /// The "may begin a pair" bit has no false negative, and most other words do not have it
    /// (a message pair is probed only after a word that has it).
    #[test]
    fn pair_first_words_are_marked_in_their_own_block() {
        let h = WordHasher::with_seed(3, 4);
        let mut bloom = BloomFilter::with_capacity(20_000);
        for i in 0..20_000 {
            bloom.insert(h.hash(format!("key{i}").as_bytes()));
        }
        for i in 0..2_000 {
            bloom.mark_pair_first(h.hash(format!("first{i}").as_bytes()));
        }
        for i in 0..2_000 {
            let (_, first) = bloom.probe_word(h.hash(format!("first{i}").as_bytes()));
            assert!(first, "first{i}");
            assert!(bloom.may_begin_pair(h.hash(format!("first{i}").as_bytes())));
        }
        for i in 0..20_000 {
            assert!(bloom.probe_word(h.hash(format!("key{i}").as_bytes())).0, "key{i}");
        }
        let others = (0..10_000)
            .filter(|i| bloom.may_begin_pair(h.hash(format!("other{i}").as_bytes())))
            .count();
        assert!(others < 1_000, "{others} of 10,000 other words may begin a pair");
    }

    /// The false-positive rate of the pattern table against three bits drawn by shifts
    /// from the hash (the layout before the table), at the filter's sizing (keys / 4
    /// blocks, rounded up to a power of two) for 100k and 1M keys: at most a little higher
    /// (a probe may share its pattern with a key of its block), and below 1%.
    #[test]
    fn pattern_bits_keep_the_false_positive_rate() {
        let h = WordHasher::with_seed(5, 6);
        let shifted =
            |x: u64| (1u64 << (x & 63)) | (1u64 << ((x >> 6) & 63)) | (1u64 << ((x >> 12) & 63));
        let sizes: &[usize] = if cfg!(miri) { &[2_000] } else { &[100_000, 1_000_000] };
        for &keys in sizes {
            let mut bloom = BloomFilter::with_capacity(keys);
            let mut old = vec![0u64; bloom.blocks.len()];
            for i in 0..keys {
                let x = h.hash(format!("key{i}").as_bytes());
                bloom.insert(x);
                old[(x >> 32) as usize & bloom.mask] |= shifted(x);
            }
            let probes = if cfg!(miri) { 2_000 } else { 1_000_000 };
            let (mut new_fp, mut old_fp) = (0u32, 0u32);
            for i in 0..probes {
                let x = h.hash(format!("absent{i}").as_bytes());
                new_fp += u32::from(bloom.may_contain(x));
                let bits = shifted(x);
                old_fp += u32::from(old[(x >> 32) as usize & bloom.mask] & bits == bits);
            }
            let rate = |n: u32| f64::from(n) / f64::from(probes);
            eprintln!(
                "{keys} keys, {} blocks: false positives {:.3}% with patterns, {:.3}% with shifts",
                bloom.blocks.len(),
                100.0 * rate(new_fp),
                100.0 * rate(old_fp)
            );
            assert!(rate(new_fp) < 0.01, "{keys} keys: {}", rate(new_fp));
            assert!(new_fp <= old_fp + old_fp / 2, "{keys} keys: {new_fp} vs {old_fp}");
        }
        // Every pattern has three distinct bits.
        assert!(BLOOM_PATTERNS.iter().all(|p| p.count_ones() == 3));
    }

    #[test]
    fn table_finds_what_was_inserted_and_nothing_else() {
        let h = WordHasher::with_seed(1, 2);
        let words: Vec<String> = (0..1000).map(|i| format!("w{i}")).collect();
        let mut t = WordTable::with_capacity(h, 10);
        let mut bloom = BloomFilter::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            assert_eq!(t.insert(w.as_bytes()), i as u32);
            bloom.insert(h.hash(w.as_bytes()));
        }
        assert_eq!(t.insert(b"w5"), 5, "no duplicates");
        assert_eq!(t.len(), 1000);
        for (i, w) in words.iter().enumerate() {
            let hw = h.hash(w.as_bytes());
            assert!(bloom.may_contain(hw));
            assert_eq!(t.get(hw, w.as_bytes()), Some(i as u32));
            assert_eq!(t.word(i as u32), w.as_bytes());
        }
        let mut false_positives = 0;
        for i in 0..10_000 {
            let w = format!("absent{i}");
            let hw = h.hash(w.as_bytes());
            assert_eq!(t.get(hw, w.as_bytes()), None);
            false_positives += usize::from(bloom.may_contain(hw));
        }
        assert!(false_positives < 500, "bloom false positives: {false_positives} of 10000");
    }

    /// A table filled by `place_sorted` in ascending hash order (what the compiler does)
    /// finds every word with its value, also the words that ran past the last slot and
    /// wrapped around to the first ones, and nothing else.
    #[test]
    fn a_table_filled_in_hash_order_finds_every_word() {
        let mut wrapped = 0;
        for seed in 0..300u64 {
            let h = WordHasher::with_seed(seed, seed * 7 + 1);
            let n = 2 + (seed % 40) as usize;
            let mut words: Vec<(u64, String)> = (0..n)
                .map(|i| {
                    // Short words (confirmed from the slot) and long ones (from the arena).
                    let w =
                        if i % 3 == 0 { format!("long-word-{seed}-{i}") } else { format!("w{i}") };
                    (h.hash(w.as_bytes()), w)
                })
                .collect();
            words.sort();
            let mut t = WordTable::for_sorted(h, 0, n, 0);
            let mut values = Vec::new();
            for (hw, w) in &words {
                let id = t.push_word(w.as_bytes());
                // A short word may hold any value (an inlined posting); a long one its id.
                let value = if w.len() <= 8 { id + 1000 } else { id };
                t.place_sorted(*hw, w.as_bytes(), value);
                values.push(value);
            }
            assert!(t.len() * 2 <= t.slots.len(), "at most half full");
            for ((hw, w), &value) in words.iter().zip(&values) {
                assert_eq!(t.get(*hw, w.as_bytes()), Some(value), "{w} (seed {seed})");
                let home = (*hw >> t.shift) as usize;
                let at = t
                    .slots
                    .iter()
                    .position(|s| s[1] as u32 == value + 1 && s[0] == prefix(w.as_bytes()));
                wrapped += usize::from(at.is_some_and(|at| at < home));
            }
            for i in 0..20 {
                let w = format!("absent{i}");
                assert_eq!(t.get(h.hash(w.as_bytes()), w.as_bytes()), None);
            }
        }
        assert!(wrapped > 0, "some words wrapped around");
    }

    #[test]
    fn padded_hash_equals_plain_hash() {
        let h = WordHasher::with_seed(9, 8);
        let text = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let mut buf = text.to_vec();
        buf.extend_from_slice(&[0xAA; 8]);
        for start in 0..text.len() {
            for len in 0..=text.len() - start {
                assert_eq!(h.hash_padded(&buf, start, len), h.hash(&text[start..start + len]));
            }
        }
    }

    #[test]
    fn seeds_change_hashes() {
        let a = WordHasher::with_seed(1, 2).hash(b"hello");
        let b = WordHasher::with_seed(3, 4).hash(b"hello");
        assert_ne!(a, b);
        assert_ne!(WordHasher::with_seed(1, 2).hash(b""), WordHasher::with_seed(1, 2).hash(b"\0"));
    }
}
