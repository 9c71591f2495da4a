//! Proximity terms (`"a b"~N`), multi-word keywords and `url:` terms decided from position
//! lists built once per message.
//!
//! The plain evaluation (`terms::term_holds`, like the reference matcher) tests every word of
//! every field against the term's words: a message waking many such
//! rules (one per distinct word pair it holds, say) costs the number of those rules times its
//! length. Here the positions of every word of the message are indexed once (sorted by word
//! hash), and each term reads only the positions of its own words (and of no-space words,
//! inside which its words may sit), with the same answer.

use super::terms::word_fits;
use crate::matcher::hash::WordHasher;
use crate::normalize::{FieldKind, NormalizedMessage, Tokens};

/// The widest window (`N + 1` positions) decided here; wider ones (a parser configured past
/// the default limit of 6) go to `terms::term_holds`.
pub(crate) const MAX_WIDTH: usize = 7;

/// Per-message position index, reused from message to message.
#[derive(Clone, Debug, Default)]
pub(crate) struct ProximityIndex {
    /// `(word hash, field, position)` of every word of every field, sorted.
    entries: Vec<(u64, u32, u32)>,
    /// `(field, position)` of every no-space word (a term word may match inside one).
    no_space: Vec<(u32, u32)>,
    /// Positions of each term word in the field being checked.
    lists: Vec<Vec<u32>>,
    /// The positions where some term word sits.
    starts: Vec<u32>,
    /// The fields where the first term word may sit.
    fields: Vec<u32>,
}

impl ProximityIndex {
    /// Indexes the words of every field of `msg`.
    pub(crate) fn build(&mut self, msg: &NormalizedMessage, hasher: &WordHasher) {
        self.entries.clear();
        self.no_space.clear();
        for (f, field) in msg.fields().iter().enumerate() {
            let t = &field.tokens;
            for (i, w) in t.words().iter().enumerate() {
                self.entries.push((hasher.hash(t.word_text(i).as_bytes()), f as u32, i as u32));
                if w.no_space {
                    self.no_space.push((f as u32, i as u32));
                }
            }
        }
        self.entries.sort_unstable();
    }

    /// Whether each of `words` sits at a distinct position of one field of `msg` (the message
    /// indexed last), all within `distance` of each other: exactly
    /// `terms::within` over any field. `None` if the window is wider than
    /// [`MAX_WIDTH`].
    pub(crate) fn within(
        &mut self,
        msg: &NormalizedMessage,
        words: &[String],
        distance: usize,
        hasher: &WordHasher,
    ) -> Option<bool> {
        let k = words.len();
        if k == 0 || k > distance + 1 {
            return Some(false);
        }
        if distance + 1 > MAX_WIDTH {
            return None;
        }
        while self.lists.len() < k {
            self.lists.push(Vec::new());
        }
        let hashes: [u64; MAX_WIDTH] =
            std::array::from_fn(|j| words.get(j).map_or(0, |r| hasher.hash(r.as_bytes())));
        // Only the fields holding the first word (or a no-space word it may sit in): a
        // message can have thousands of fields (one per URL).
        self.fields.clear();
        let lo = self.entries.partition_point(|&(eh, _, _)| eh < hashes[0]);
        let with_first = self.entries[lo..].iter().take_while(|e| e.0 == hashes[0]);
        self.fields.extend(with_first.map(|&(_, f, _)| f));
        self.fields.extend(self.no_space.iter().map(|&(f, _)| f));
        self.fields.sort_unstable();
        self.fields.dedup();
        let fields = std::mem::take(&mut self.fields);
        let found = self.within_fields(msg, words, distance, &hashes, &fields);
        self.fields = fields;
        Some(found)
    }

    /// [`ProximityIndex::within`] over the fields numbered in `fields`.
    fn within_fields(
        &mut self,
        msg: &NormalizedMessage,
        words: &[String],
        distance: usize,
        hashes: &[u64; MAX_WIDTH],
        fields: &[u32],
    ) -> bool {
        let k = words.len();
        'fields: for &f in fields {
            let t = &msg.fields()[f as usize].tokens;
            let n = t.words().len();
            if k > n {
                continue;
            }
            for (j, r) in words.iter().enumerate() {
                self.positions(t, f, r, hashes[j], j);
                if self.lists[j].is_empty() {
                    continue 'fields;
                }
            }
            if self.window_fits(k, (distance + 1).min(n), n) {
                return true;
            }
        }
        false
    }

    /// Whether `words` appear at consecutive positions of one field of `msg` (of a URL field
    /// if `urls_only`): exactly `terms::in_sequence` over those fields. A
    /// match starts where the first word sits as a whole word or inside a no-space word, so
    /// only those positions are tried.
    pub(crate) fn sequence(
        &self,
        msg: &NormalizedMessage,
        words: &[String],
        urls_only: bool,
        hasher: &WordHasher,
    ) -> bool {
        let Some(first) = words.first() else { return false };
        let k = words.len();
        let h = hasher.hash(first.as_bytes());
        let lo = self.entries.partition_point(|&(eh, _, _)| eh < h);
        let exact = self.entries[lo..].iter().take_while(|e| e.0 == h).map(|&(_, f, i)| (f, i));
        exact.chain(self.no_space.iter().copied()).any(|(f, s)| {
            let field = &msg.fields()[f as usize];
            let t = &field.tokens;
            let s = s as usize;
            (!urls_only || field.kind == FieldKind::Url)
                && s + k <= t.words().len()
                && words.iter().enumerate().all(|(j, r)| word_fits(t, s + j, r, j, k))
        })
    }

    /// Fills `lists[j]` with the positions of field `f` (tokens `t`) where term word `r`
    /// (hash `h`) sits: as the whole word, or inside a no-space word (`terms::word_fits`
    /// for a lone word), ascending.
    fn positions(&mut self, t: &Tokens, f: u32, r: &str, h: u64, j: usize) {
        let list = &mut self.lists[j];
        list.clear();
        let lo = self.entries.partition_point(|&(eh, ef, _)| (eh, ef) < (h, f));
        for &(eh, ef, i) in &self.entries[lo..] {
            if eh != h || ef != f {
                break;
            }
            if t.word_text(i as usize) == r {
                list.push(i);
            }
        }
        let lo = self.no_space.partition_point(|&(ef, _)| ef < f);
        let exact = list.len();
        for &(ef, i) in &self.no_space[lo..] {
            if ef != f {
                break;
            }
            let w = t.word_text(i as usize);
            if w != r && w.contains(r) {
                list.push(i);
            }
        }
        if list.len() > exact {
            list.sort_unstable();
        }
    }

    /// The window search over `lists[..k]`: for each position where some word
    /// sits, whether the words can take distinct positions in the `width` positions from
    /// there (a subset dynamic programme over the window).
    fn window_fits(&mut self, k: usize, width: usize, n: usize) -> bool {
        self.starts.clear();
        for list in &self.lists[..k] {
            self.starts.extend_from_slice(list);
        }
        self.starts.sort_unstable();
        self.starts.dedup();
        let mut cursor = [0usize; MAX_WIDTH];
        let mut reachable = [false; 1 << MAX_WIDTH];
        for &s in &self.starts {
            let s = s as usize;
            let hi = (s + width).min(n);
            // masks[j]: bit b set iff word j can sit at position s + b.
            let mut masks = [0u32; MAX_WIDTH];
            for j in 0..k {
                let list = &self.lists[j];
                while cursor[j] < list.len() && (list[cursor[j]] as usize) < s {
                    cursor[j] += 1;
                }
                for &p in &list[cursor[j]..] {
                    if p as usize >= hi {
                        break;
                    }
                    masks[j] |= 1 << (p as usize - s);
                }
            }
            let size = 1usize << (hi - s);
            reachable[..size].iter_mut().for_each(|r| *r = false);
            reachable[0] = true;
            for mask in 0..size {
                if !reachable[mask] {
                    continue;
                }
                let j = mask.count_ones() as usize;
                if j == k {
                    return true;
                }
                let free = masks[j] & !(mask as u32);
                for b in 0..hi - s {
                    if free & (1 << b) != 0 {
                        reachable[mask | (1 << b)] = true;
                    }
                }
            }
        }
        false
    }
}
