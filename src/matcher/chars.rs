//! An Aho-Corasick automaton over characters, for the words of the no-space scripts.
//!
//! No-space terms (Chinese, Japanese, Thai, …) are found as substrings of a message's
//! no-space runs. A byte automaton takes each 3-byte character in three transitions, each
//! a likely cache miss in an automaton of thousands of patterns: about 10 ns a byte. This
//! one maps each character that occurs in some pattern to a small id (one probe of a table
//! keyed by the character's UTF-8 bytes) and takes one transition per character; a
//! character in no pattern sends it back to the root without a transition.
//!
//! Matches are the same as the byte automaton's: UTF-8 is self-synchronising, so a
//! pattern's bytes occur in a text exactly where its characters do.

use std::collections::HashMap;

/// The automaton. Node 0 is the root.
#[derive(Clone, Debug)]
pub(crate) struct CharAutomaton {
    /// The character table (open addressing, linear probing, load <= 1/2): a character's
    /// UTF-8 bytes packed little-endian into a `u32`, and its id + 1 (0 = empty slot).
    chars: Vec<[u32; 2]>,
    char_shift: u32,
    /// Keyed mixing of the table's hash (an adversarial rule set cannot aim at one slot).
    seed: u64,
    /// The root's transitions, by character id (0 = stay at the root).
    root: Vec<u32>,
    /// Per node, what a step reads, in one record (a miss or two per node visited instead of
    /// one per array).
    nodes: Vec<Node>,
    /// All children, by parent, each parent's sorted by character id.
    edges: Vec<(u32, u32)>,
}

/// Edge lists up to this long are scanned; longer ones binary-searched (8, 16 and 32
/// measured alike on Chinese text).
const LINEAR_EDGES: usize = 32;

/// A node of the trie.
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    /// Its children: `edges[first_edge..first_edge + edge_count]`.
    first_edge: u32,
    edge_count: u32,
    /// Failure link: the node of the longest proper suffix of its path that is a path too.
    fail: u32,
    /// The pattern ending here, + 1 (0 = none).
    own: u32,
    /// The nearest node on the failure chain with a pattern (0 = none).
    dict: u32,
    /// Bit `c % 64` set for each character id `c` it has a child on: a step on any other
    /// character fails without reading the edges (most steps of a failure walk fail).
    child_bits: u64,
}

/// The bit of character id `c` in [`Node::child_bits`].
#[inline(always)]
fn char_bit(c: u32) -> u64 {
    1 << (c & 63)
}

/// The byte length of the UTF-8 sequence led by `b` (1 for bytes that lead nothing, so a
/// scan always moves on).
#[inline(always)]
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xF7 => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// The character at `at` (`len` bytes) packed into a `u32`; bytes past the end read as 0.
#[inline(always)]
fn pack(text: &[u8], at: usize, len: usize) -> u32 {
    if let Some(four) = text.get(at..at + 4) {
        let all = u32::from_le_bytes(four.try_into().expect("4 bytes"));
        return all & (u32::MAX >> (32 - 8 * len as u32));
    }
    let mut key = 0u32;
    for k in 0..len {
        key |= u32::from(text.get(at + k).copied().unwrap_or(0)) << (8 * k);
    }
    key
}

impl CharAutomaton {
    /// Builds the automaton of `patterns` (distinct, non-empty strings: a match of pattern
    /// `i` reports `i`; an empty pattern never matches, a repeated one reports its first
    /// index). `seed` keys the character table's hash.
    pub(crate) fn build(patterns: &[String], seed: u64) -> CharAutomaton {
        // Character ids, in order of first appearance.
        let mut char_ids: HashMap<u32, u32> = HashMap::new();
        let mut pattern_ids: Vec<Vec<u32>> = Vec::with_capacity(patterns.len());
        for p in patterns {
            let bytes = p.as_bytes();
            let mut ids = Vec::with_capacity(bytes.len() / 2);
            let mut i = 0;
            while i < bytes.len() {
                let len = utf8_len(bytes[i]);
                let key = pack(bytes, i, len);
                i += len;
                let next = char_ids.len() as u32;
                ids.push(*char_ids.entry(key).or_insert(next));
            }
            pattern_ids.push(ids);
        }
        // The trie.
        let mut goto: HashMap<(u32, u32), u32> = HashMap::new();
        let mut own = vec![0u32];
        for (index, ids) in pattern_ids.iter().enumerate() {
            let mut node = 0u32;
            for &c in ids {
                let fresh = own.len() as u32;
                node = *goto.entry((node, c)).or_insert_with(|| {
                    own.push(0);
                    fresh
                });
            }
            if node != 0 && own[node as usize] == 0 {
                own[node as usize] = index as u32 + 1;
            }
        }
        let nodes = own.len();
        let mut children: Vec<Vec<(u32, u32)>> = vec![Vec::new(); nodes];
        for (&(from, c), &to) in &goto {
            children[from as usize].push((c, to));
        }
        let mut root = vec![0u32; char_ids.len()];
        for &(c, to) in &children[0] {
            root[c as usize] = to;
        }
        let mut node_list = vec![Node::default(); nodes];
        let mut edges = Vec::with_capacity(goto.len());
        for (n, list) in children.iter_mut().enumerate() {
            list.sort_unstable();
            node_list[n].first_edge = edges.len() as u32;
            node_list[n].edge_count = list.len() as u32;
            node_list[n].own = own[n];
            node_list[n].child_bits = list.iter().fold(0, |b, &(c, _)| b | char_bit(c));
            edges.extend_from_slice(list);
        }
        let cap = (char_ids.len() * 2).max(16).next_power_of_two();
        let mut automaton = CharAutomaton {
            chars: vec![[0, 0]; cap],
            char_shift: 64 - cap.trailing_zeros(),
            seed,
            root,
            nodes: node_list,
            edges,
        };
        for (&key, &id) in &char_ids {
            let mut slot = automaton.char_slot(key);
            while automaton.chars[slot][1] != 0 {
                slot = (slot + 1) & (cap - 1);
            }
            automaton.chars[slot] = [key, id + 1];
        }
        // Failure and dictionary links, breadth first (a node's links need its parent's).
        let mut queue: std::collections::VecDeque<u32> =
            children[0].iter().map(|&(_, to)| to).collect();
        while let Some(u) = queue.pop_front() {
            for &(c, v) in &children[u as usize] {
                let target = automaton.next_state(automaton.nodes[u as usize].fail, c);
                let t = automaton.nodes[target as usize];
                let node = &mut automaton.nodes[v as usize];
                node.fail = target;
                node.dict = if t.own != 0 { target } else { t.dict };
                queue.push_back(v);
            }
        }
        automaton
    }

    /// The state after `node` reads character `c`: its transition, else the transition of
    /// the nearest node on its failure chain that has one, else the root.
    #[inline(always)]
    fn next_state(&self, mut node: u32, c: u32) -> u32 {
        loop {
            if let Some(t) = self.step_from(node, c) {
                return t;
            }
            if node == 0 {
                return 0;
            }
            node = self.nodes[node as usize].fail;
        }
    }

    /// The transition from `node` on character `c`, if any.
    #[inline(always)]
    fn step_from(&self, node: u32, c: u32) -> Option<u32> {
        if node == 0 {
            return Some(self.root[c as usize]).filter(|&t| t != 0);
        }
        let n = self.nodes[node as usize];
        if n.child_bits & char_bit(c) == 0 {
            return None;
        }
        let children = &self.edges[n.first_edge as usize..(n.first_edge + n.edge_count) as usize];
        if children.len() <= LINEAR_EDGES {
            children.iter().find(|&&(x, _)| x == c).map(|&(_, t)| t)
        } else {
            children.binary_search_by_key(&c, |&(x, _)| x).ok().map(|k| children[k].1)
        }
    }

    #[inline(always)]
    fn char_slot(&self, key: u32) -> usize {
        ((u64::from(key) ^ self.seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.char_shift)
            as usize
    }

    /// The id of the character packed as `key`, if some pattern has it.
    #[inline(always)]
    fn char_id(&self, key: u32) -> Option<u32> {
        let mask = self.chars.len() - 1;
        let mut slot = self.char_slot(key);
        loop {
            let [k, id] = self.chars[slot];
            if id == 0 {
                return None;
            }
            if k == key {
                return Some(id - 1);
            }
            slot = (slot + 1) & mask;
        }
    }

    /// Calls `found` with the index of every pattern occurring in `text` (once per
    /// occurrence, overlapping ones included).
    #[inline]
    pub(crate) fn find_overlapping(&self, text: &[u8], mut found: impl FnMut(u32)) {
        let mut state = 0u32;
        let mut i = 0;
        while let Some(&lead) = text.get(i) {
            let len = utf8_len(lead);
            let key = pack(text, i, len);
            i += len;
            let Some(c) = self.char_id(key) else {
                state = 0;
                continue;
            };
            state = self.next_state(state, c);
            let mut n = self.nodes[state as usize];
            if n.own == 0 {
                if n.dict == 0 {
                    continue;
                }
                n = self.nodes[n.dict as usize];
            }
            loop {
                found(n.own - 1);
                if n.dict == 0 {
                    break;
                }
                n = self.nodes[n.dict as usize];
            }
        }
    }

    /// Heap bytes used.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chars.capacity() * 8
            + self.edges.capacity() * 8
            + self.root.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<Node>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every occurrence, by brute force over character boundaries.
    fn naive(patterns: &[String], text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        for (start, _) in text.char_indices() {
            for (i, p) in patterns.iter().enumerate() {
                if text[start..].starts_with(p.as_str()) {
                    out.push(i as u32);
                }
            }
        }
        out.sort_unstable();
        out
    }

    fn found(a: &CharAutomaton, text: &str) -> Vec<u32> {
        let mut out = Vec::new();
        a.find_overlapping(text.as_bytes(), |i| out.push(i));
        out.sort_unstable();
        out
    }

    #[test]
    fn finds_every_occurrence_of_every_pattern() {
        let patterns: Vec<String> =
            ["東京", "京都", "東京タワー", "タワー", "ー", "東", "ภาษา", "ไทย", "a東", "🍕"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let a = CharAutomaton::build(&patterns, 0x1234);
        for text in [
            "東京タワーに行きたい",
            "京都と東京と東京タワー",
            "東東東京京",
            "ภาษาไทยภาษา",
            "a東京 b東京",
            "",
            "x",
            "🍕東京🍕",
            "タワタワー",
        ] {
            assert_eq!(found(&a, text), naive(&patterns, text), "{text:?}");
        }
    }

    #[test]
    fn invalid_and_truncated_bytes_neither_panic_nor_match_falsely() {
        let patterns = vec!["東京".to_string()];
        let a = CharAutomaton::build(&patterns, 7);
        let tokyo = "東京".as_bytes();
        let mut text = tokyo[..4].to_vec(); // 東 and a truncated 京
        let mut hits = 0;
        a.find_overlapping(&text, |_| hits += 1);
        assert_eq!(hits, 0);
        text.extend_from_slice(&[0xFF, 0x80]);
        text.extend_from_slice(tokyo);
        a.find_overlapping(&text, |_| hits += 1);
        assert_eq!(hits, 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        #[test]
        fn agrees_with_brute_force(
            patterns in proptest::collection::vec("[東京都タワーあa]{1,4}", 1..12),
            text in "[東京都タワーあab ]{0,24}",
            seed: u64,
        ) {
            let mut patterns = patterns;
            patterns.sort();
            patterns.dedup();
            let a = CharAutomaton::build(&patterns, seed);
            proptest::prop_assert_eq!(found(&a, &text), naive(&patterns, &text));
        }

        /// More than 64 distinct characters, so that characters share a bit of a node's
        /// `child_bits` (the bit lets a step skip the edges only when it is clear).
        #[test]
        fn agrees_with_brute_force_when_child_bits_collide(
            patterns in proptest::collection::vec(
                proptest::collection::vec(0u32..160, 1..4), 1..200),
            text in proptest::collection::vec(0u32..170, 0..40),
            seed: u64,
        ) {
            let to_text = |ids: &[u32]| -> String {
                ids.iter().map(|&i| char::from_u32(0x4e00 + i).expect("CJK")).collect()
            };
            let mut patterns: Vec<String> = patterns.iter().map(|p| to_text(p)).collect();
            patterns.sort();
            patterns.dedup();
            let a = CharAutomaton::build(&patterns, seed);
            let text = to_text(&text);
            proptest::prop_assert_eq!(found(&a, &text), naive(&patterns, &text));
        }
    }
}
