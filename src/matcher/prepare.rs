//! A message's prepared views, each built once on first need and shared by every segment:
//! its words with their hashes (the presearch), its entity lists and folded user names, the
//! normalised text of a one-field ASCII message (phrases), and its full normalised view.

use super::hash::WordHasher;
use super::scan;
use crate::message::extract::EntityScanner;
use crate::message::Message;
use crate::normalize::message::{push_extracted_tag, push_given_entities, StrList};
use crate::normalize::{NormalizedMessage, Tokens, UrlMode};

/// A message's folded entity lists, as [`NormalizedMessage`] has them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Entities {
    pub(crate) hashtags: StrList,
    pub(crate) mentions: StrList,
    pub(crate) cashtags: StrList,
    pub(crate) scanner: EntityScanner,
}

impl Entities {
    pub(crate) fn fill(&mut self, msg: &Message) {
        self.hashtags.clear();
        self.mentions.clear();
        self.cashtags.clear();
        let extract = msg.hashtags.is_none() || msg.mentions.is_none() || msg.cashtags.is_none();
        if extract {
            let (h, m, c) = (&mut self.hashtags, &mut self.mentions, &mut self.cashtags);
            self.scanner.scan_tags(&msg.text, |kind, value| {
                push_extracted_tag(msg, kind, value, [&mut *h, &mut *m, &mut *c])
            });
        }
        push_given_entities(msg, [&mut self.hashtags, &mut self.mentions, &mut self.cashtags]);
    }
}

/// What the presearch reads of a message besides its words, derived on first need and shared
/// by every segment: its entity lists and the folded screen names of `from:` and `to:`.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageFacts {
    pub(crate) entities: Entities,
    pub(crate) entities_ready: bool,
    pub(crate) user: Option<String>,
    pub(crate) reply_to: Option<String>,
    pub(crate) user_kind: NameKind,
    pub(crate) reply_to_kind: NameKind,
    pub(crate) names_ready: bool,
}

impl MessageFacts {
    pub(crate) fn reset(&mut self) {
        self.entities_ready = false;
        self.names_ready = false;
    }

    /// The message's folded entity lists.
    pub(crate) fn entities(&mut self, msg: &Message) -> &Entities {
        if !self.entities_ready {
            self.entities.fill(msg);
            self.entities_ready = true;
        }
        &self.entities
    }

    /// The author's and the replied-to user's screen names, folded, without a leading `@`.
    /// A name already in its folded form (ASCII without capitals: most screen names) is
    /// the message's own string; only the others are folded into `user` / `reply_to`.
    pub(crate) fn names<'a>(&'a mut self, msg: &'a Message) -> [Option<&'a str>; 2] {
        if !self.names_ready {
            for (name, out, kind) in [
                (&msg.user, &mut self.user, &mut self.user_kind),
                (&msg.in_reply_to_user, &mut self.reply_to, &mut self.reply_to_kind),
            ] {
                *kind = match name {
                    None => NameKind::Absent,
                    Some(n) if is_folded_ascii(n.as_bytes()) => NameKind::AsIs,
                    Some(n) => {
                        let f = out.get_or_insert_with(String::new);
                        f.clear();
                        crate::normalize::push_fold(n.trim_start_matches('@'), f);
                        NameKind::Folded
                    }
                };
            }
            self.names_ready = true;
        }
        let pick =
            |kind: NameKind, given: &'a Option<String>, folded: &'a Option<String>| match kind {
                NameKind::Absent => None,
                NameKind::AsIs => given.as_deref(),
                NameKind::Folded => folded.as_deref(),
            };
        [
            pick(self.user_kind, &msg.user, &self.user),
            pick(self.reply_to_kind, &msg.in_reply_to_user, &self.reply_to),
        ]
    }
}

/// Where [`MessageFacts::names`] finds a folded screen name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// The message has none.
    #[default]
    Absent,
    /// The message's own string is its folded form.
    AsIs,
    /// Folded into the facts' own string.
    Folded,
}

/// Whether `name` is its own folded form without a leading `@`: ASCII without capitals
/// (folding changes nothing there), so that it can be looked up as it is, not copied.
fn is_folded_ascii(name: &[u8]) -> bool {
    name.first() != Some(&b'@') && name.iter().all(|&b| b < 0x80 && !b.is_ascii_uppercase())
}

/// The words of every field of a message, in normal form, with their hashes: what every
/// segment's presearch looks up. Fields extracted from the text (hashtags, mentions, URLs
/// found in it) hold only words the text already has, so they are not scanned again.
#[derive(Clone, Debug, Default)]
pub(crate) struct MessageWords {
    pub(crate) ready: bool,
    /// Normal-form bytes of the words, one after the other.
    pub(crate) bytes: Vec<u8>,
    /// `(hash, start, end)` of each word (not of no-space runs) in `bytes`.
    pub(crate) words: Vec<(u64, u32, u32)>,
    /// `(start, end)` of each no-space run in `bytes`.
    pub(crate) runs: Vec<(u32, u32)>,
    pub(crate) tokens: Tokens,
    pub(crate) fold_buf: String,
    /// Whether the text holds a `#`, `@` or `$` (`None`: not known, the text was not ASCII).
    pub(crate) text_sigil: Option<bool>,
    /// A copy of a field with its URL prefixes blanked.
    pub(crate) spare: Vec<u8>,
    /// Scratch space of the non-ASCII scanner.
    pub(crate) unicode: scan::UnicodeScratch,
    /// One bit per word hash (of 1,024), built on the first lookup: most words looked up
    /// are absent (a candidate rule whose other words the message lacks), and this answers
    /// them without building `set`.
    pub(crate) filter: [u64; 16],
    pub(crate) filter_ready: bool,
    /// Open-addressing set over `words` (`index + 1`, 0 = empty), built on first need.
    pub(crate) set: Vec<u32>,
    pub(crate) set_ready: bool,
    /// Questions [`MessageWords::contains`] answered for this message by comparing hashes.
    pub(crate) linear_questions: u32,
}

/// Up to this many words, [`MessageWords::contains`] compares the hashes one by one instead
/// of building its filter and set, for the first [`LINEAR_QUESTIONS`] questions.
pub(crate) const LINEAR_WORDS: usize = 64;

/// Questions per message answered by comparing hashes before the filter and set are built:
/// at 100k generated rules a post is asked 0.5 on average, at 1M (6.4 candidate rules a post)
/// many more, and the set's constant-time answers pay for its building after a few.
pub(crate) const LINEAR_QUESTIONS: u32 = 4;

/// The bit of `filter` for hash `h` (high bits: the set's index takes the low ones).
pub(crate) fn filter_bit(h: u64) -> (usize, u64) {
    let b = (h >> 48) as usize & 1023;
    (b >> 6, 1 << (b & 63))
}

impl MessageWords {
    pub(crate) fn fill(&mut self, msg: &Message, hasher: &WordHasher, filter: &[u64]) {
        self.bytes.clear();
        self.words.clear();
        self.runs.clear();
        self.set_ready = false;
        self.filter_ready = false;
        self.linear_questions = 0;
        // Cleared by the non-ASCII scanner if it took the whole text in its first pass and
        // saw no non-ASCII character after a `/` or a `.`.
        self.unicode.non_ascii_after_slash_or_dot = true;
        self.text_sigil = self.field(&msg.text, hasher, filter).map(|n| n.sigil);
        // `text_sigil` is `None` for a text the ASCII scanner did not take (a non-ASCII one
        // `scan_mixed` declines, or the rare ASCII one handed to the tokenizer, which holds
        // no mark; `scan_mixed` declines a mark after a `/` or a `.`): no second pass.
        if msg.urls.is_none()
            && self.text_sigil.is_none()
            && self.unicode.non_ascii_after_slash_or_dot
        {
            self.url_fields_starting_with_a_mark(&msg.text, hasher, filter);
        }
        // Most posts have no other field: one test for all of them (the loops below cost ~45
        // instructions per post when every field was absent; issue 20, round 4).
        let others = msg.quoted_text.is_some()
            || msg.retweeted_text.is_some()
            || msg.urls.is_some()
            || msg.media.is_some()
            || msg.hashtags.is_some()
            || msg.mentions.is_some();
        if others {
            self.other_fields(msg, hasher, filter);
        }
        self.ready = true;
    }

    /// The words of the fields besides the text: quoted and retweeted texts, given URLs
    /// (expanded and displayed), hashtags and mentions.
    fn other_fields(&mut self, msg: &Message, hasher: &WordHasher, filter: &[u64]) {
        for t in [&msg.quoted_text, &msg.retweeted_text].into_iter().flatten() {
            self.field(t, hasher, filter);
        }
        for list in [&msg.urls, &msg.media].into_iter().flatten() {
            for u in list {
                for t in [&u.expanded_url, &u.display_url].into_iter().flatten() {
                    self.field(t, hasher, filter);
                }
            }
        }
        for list in [&msg.hashtags, &msg.mentions].into_iter().flatten() {
            for v in list {
                let mut f = std::mem::take(&mut self.fold_buf);
                f.clear();
                crate::normalize::push_fold(v.trim_start_matches(['#', '@', '$']), &mut f);
                self.field(&f, hasher, filter);
                self.fold_buf = f;
            }
        }
    }

    /// The URL fields found in a text (no `urls` given) hold only words of the text, except
    /// where a URL's body (after its scheme and `www.`) begins with a combining mark and
    /// punctuation comes before the URL in its raw token (`]http://` + U+05B7): in the text
    /// the mark belongs to the punctuation, in the URL field it starts a word. Those URLs are
    /// scanned as fields of their own. Found by the `explain` fuzz target: the reference
    /// matched the phrase `"\u{5b7}"` in that URL field, the compiled matcher did not.
    #[cold]
    fn url_fields_starting_with_a_mark(&mut self, text: &str, hasher: &WordHasher, filter: &[u64]) {
        use crate::normalize::{char_class, is_mark, CharClass};
        let bytes = text.as_bytes();
        // Cheap test first: a mark (after ignorables) right after a `/` or a `.`.
        // A mark and an ignorable are non-ASCII: an ASCII byte next rules the place out
        // without decoding.
        let may = memchr::memchr2_iter(b'/', b'.', bytes).any(|i| {
            bytes.get(i + 1).is_some_and(|&b| b >= 0x80)
                && text[i + 1..]
                    .chars()
                    .find(|&c| c.is_ascii() || char_class(c) != CharClass::Ignorable)
                    .is_some_and(is_mark)
        });
        if !may {
            return;
        }
        let mut urls: Vec<String> = Vec::new();
        EntityScanner::default().scan(text, |kind, value| {
            if kind == crate::message::extract::EntityKind::Url {
                urls.push(value.to_owned());
            }
        });
        for url in &urls {
            self.field(url, hasher, filter);
        }
    }

    /// Whether the message has the word `word` (hash `h`) in any field. The word's bytes are
    /// read only to confirm a hash match (so a word that is absent costs no read of them).
    pub(crate) fn contains<'w>(&mut self, h: u64, word: impl Fn() -> &'w [u8]) -> bool {
        if self.words.len() <= LINEAR_WORDS && self.linear_questions < LINEAR_QUESTIONS {
            // A post's few words: comparing their hashes costs less than building the
            // filter (and, for a present word, the set) when a message is asked only once
            // or twice (0.5 questions a message on the generated workload at 100k rules).
            self.linear_questions += 1;
            return self
                .words
                .iter()
                .any(|&(wh, a, b)| wh == h && &self.bytes[a as usize..b as usize] == word());
        }
        if !self.filter_ready {
            self.filter = [0; 16];
            for &(wh, _, _) in &self.words {
                let (i, bit) = filter_bit(wh);
                self.filter[i] |= bit;
            }
            self.filter_ready = true;
        }
        let (i, bit) = filter_bit(h);
        if self.filter[i] & bit == 0 {
            return false;
        }
        if !self.set_ready {
            self.build_set();
        }
        let mask = self.set.len() - 1;
        let mut k = h as usize & mask;
        // The set holds each distinct word once, so the probe ends at the first empty slot
        // after at most the words sharing this home slot (a hash collision, practically never,
        // only makes it look on).
        loop {
            let e = self.set[k];
            if e == 0 {
                return false;
            }
            let (wh, a, b) = self.words[e as usize - 1];
            if wh == h && &self.bytes[a as usize..b as usize] == word() {
                return true;
            }
            k = (k + 1) & mask;
        }
    }

    /// Builds `set`: one entry per *distinct* word. A message that repeats a word (`spam spam
    /// spam …`) has many words with one hash; inserting each of them would make one probe run
    /// as long as the repetitions, and building the set quadratic in the message length
    /// (issue 21). A repeated word is found at the end of its probe (same hash, same bytes)
    /// and not inserted again, so each insert probes past distinct words only: linear time.
    pub(crate) fn build_set(&mut self) {
        let cap = (self.words.len() * 2).max(8).next_power_of_two();
        let mask = cap - 1;
        self.set.clear();
        self.set.resize(cap, 0);
        'words: for (i, &(wh, a, b)) in self.words.iter().enumerate() {
            let mut k = wh as usize & mask;
            loop {
                let e = self.set[k];
                if e == 0 {
                    self.set[k] = i as u32 + 1;
                    continue 'words;
                }
                let (eh, ea, eb) = self.words[e as usize - 1];
                if eh == wh
                    && self.bytes[ea as usize..eb as usize] == self.bytes[a as usize..b as usize]
                {
                    continue 'words;
                }
                k = (k + 1) & mask;
            }
        }
        self.set_ready = true;
    }

    /// The words of one field: by the ASCII scanner when the text is ASCII or its non-ASCII
    /// characters normalise in place ([`scan::scan_mixed`]), by the per-character scanner
    /// when every character normalises on its own, else by the full tokenizer. Returns what
    /// the ASCII scanner noticed, if it took the text (`scan_mixed` declines a combining mark
    /// after a `/` or a `.`, which `fill` then looks for).
    pub(crate) fn field(
        &mut self,
        text: &str,
        hasher: &WordHasher,
        filter: &[u64],
    ) -> Option<scan::Noticed> {
        let bytes = text.as_bytes();
        // Decided once (issue 20): the ASCII scanner gives up at the first non-ASCII chunk,
        // and its work was thrown away for every non-ASCII text.
        if crate::normalize::is_ascii(bytes) {
            let noticed = scan::scan_field(
                bytes,
                &mut self.bytes,
                &mut self.spare,
                hasher,
                filter,
                &mut self.words,
            );
            if noticed.is_some() {
                return noticed;
            }
        } else if let Some(noticed) = scan::scan_mixed(
            text,
            &mut self.bytes,
            hasher,
            filter,
            &mut self.words,
            &mut self.runs,
            &mut self.unicode,
        ) {
            return Some(noticed);
        } else if scan::scan_unicode(
            text,
            &mut self.bytes,
            hasher,
            &mut self.words,
            &mut self.runs,
            &mut self.unicode,
        ) {
            return None;
        }
        self.tokens.tokenize(text, UrlMode::Canonicalize);
        let norm = self.tokens.text().as_bytes();
        for w in self.tokens.words() {
            let word = &norm[w.norm.clone()];
            let a = self.bytes.len() as u32;
            self.bytes.extend_from_slice(word);
            let b = self.bytes.len() as u32;
            if w.no_space {
                self.runs.push((a, b));
            } else {
                self.words.push((hasher.hash(word), a, b));
            }
        }
        None
    }
}

/// A message's derived views, each built once on first need and shared by all segments:
/// its words (for the presearch), the normalised text of a message that is one ASCII text
/// field (for phrases), and its full normalised view (for everything else).
#[derive(Clone, Debug, Default)]
pub(crate) struct Prepared {
    pub(crate) norm: NormalizedMessage,
    pub(crate) ready: bool,
    pub(crate) words: MessageWords,
    pub(crate) simple: String,
    /// `None`: not computed yet; `Some(false)`: the message is not simple.
    pub(crate) simple_ready: Option<bool>,
    pub(crate) facts: MessageFacts,
}

impl Prepared {
    /// Forgets the previous message.
    pub(crate) fn reset(&mut self) {
        self.ready = false;
        self.words.ready = false;
        self.simple_ready = None;
        self.facts.reset();
    }

    /// For a message whose only searchable field is its text, that field's normalised text,
    /// built without the full tokenisation: for an ASCII text (entity fields extracted from
    /// it add nothing a phrase could match), and for a non-ASCII one with no entity to
    /// extract (no `#`, `@`, `$`, no URL prefix) whose characters normalise on their own.
    pub(crate) fn simple_text(&mut self, msg: &Message) -> Option<&str> {
        if self.simple_ready.is_none() {
            let one_field = msg.quoted_text.is_none()
                && msg.retweeted_text.is_none()
                && msg.urls.is_none()
                && msg.media.is_none()
                && msg.hashtags.is_none()
                && msg.mentions.is_none();
            let simple = one_field
                && if msg.text.is_ascii() {
                    crate::normalize::ascii_normalized_text(&msg.text, &mut self.simple);
                    true
                } else {
                    let b = msg.text.as_bytes();
                    memchr::memchr3(b'#', b'@', b'$', b).is_none()
                        && !scan::may_hold_url(b)
                        && crate::normalize::plain_normalized_text(&msg.text, &mut self.simple)
                };
            self.simple_ready = Some(simple);
        }
        (self.simple_ready == Some(true)).then_some(self.simple.as_str())
    }

    /// The words of `msg` (the same message since the last reset) and its other facts.
    /// `filter`: the blocks of the filter the words will be probed in, to request as they
    /// are hashed ([`crate::matcher::hash::BloomFilter::blocks_to_prefetch`]; may be empty).
    pub(crate) fn words_and_facts(
        &mut self,
        msg: &Message,
        hasher: &WordHasher,
        filter: &[u64],
    ) -> (&MessageWords, &mut MessageFacts) {
        if !self.words.ready {
            self.words.fill(msg, hasher, filter);
        }
        (&self.words, &mut self.facts)
    }

    /// Whether `msg` (the same message since the last reset) has the word `word` (hash `h`).
    pub(crate) fn has_word<'w>(
        &mut self,
        msg: &Message,
        hasher: &WordHasher,
        h: u64,
        word: impl Fn() -> &'w [u8],
    ) -> bool {
        if !self.words.ready {
            self.words.fill(msg, hasher, &[]);
        }
        self.words.contains(h, word)
    }

    /// The normalised view of `msg` (the same message since the last reset).
    pub(crate) fn get(&mut self, msg: &Message) -> &NormalizedMessage {
        if !self.ready {
            self.norm.prepare(msg);
            self.ready = true;
        }
        &self.norm
    }

    /// The view, if built.
    pub(crate) fn as_ref(&self) -> Option<&NormalizedMessage> {
        self.ready.then_some(&self.norm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `contains` answers from its filter (absent words) and its set (the rest): both must
    /// agree with the words, also when the message repeats them (the set holds each once).
    #[test]
    fn message_words_answer_the_same_before_and_after_the_set_is_built() {
        let hasher = WordHasher::with_seed(7, 11);
        // Every word three times, so that the set skips repeats.
        let text: String = (0..120).map(|i| format!("w{} ", i % 40)).collect();
        let mut words = MessageWords::default();
        words.fill(&Message::new("1", text), &hasher, &[]);
        let present: Vec<String> = (0..40).map(|i| format!("w{i}")).collect();
        let absent: Vec<String> = (40..60).map(|i| format!("w{i}")).collect();
        for w in &absent {
            assert!(!words.contains(hasher.hash(w.as_bytes()), || w.as_bytes()));
        }
        assert!(words.filter_ready);
        for round in 0..3 {
            for (w, want) in
                present.iter().map(|w| (w, true)).chain(absent.iter().map(|w| (w, false)))
            {
                let got = words.contains(hasher.hash(w.as_bytes()), || w.as_bytes());
                assert_eq!(got, want, "{w} in round {round}");
            }
        }
        assert!(words.set_ready, "the set is built for present words");
        assert_eq!(words.set.iter().filter(|&&e| e != 0).count(), 40, "one entry per word");
        // A fresh fill forgets the previous message's words.
        words.fill(&Message::new("2", "alpha beta"), &hasher, &[]);
        assert!(!words.set_ready && !words.filter_ready);
        assert!(words.contains(hasher.hash(b"beta"), || b"beta"));
        assert!(!words.contains(hasher.hash(b"w3"), || b"w3"));
    }

    /// Words sharing a hash (a collision, forced here) are all kept and told apart by their
    /// bytes; repeats of each are kept once. Every way of answering: a post's few words
    /// compared one by one, the same after [`LINEAR_QUESTIONS`] questions (the filter and the
    /// set), and more words than [`LINEAR_WORDS`] (the filter and the set at once).
    #[test]
    fn message_words_tell_colliding_words_apart() {
        for (padding, warm_up) in [(0, 0), (0, LINEAR_QUESTIONS), (LINEAR_WORDS, 0)] {
            let make = || {
                let mut words = MessageWords::default();
                words.bytes.extend_from_slice(b"w3w17w3w17other");
                words.words =
                    vec![(42, 0, 2), (42, 2, 5), (42, 5, 7), (42, 7, 10), (42 + 1024, 10, 15)];
                // Distinct padding words ("p0", "p1", ...), hashed apart from the rest.
                for i in 0..padding {
                    let a = words.bytes.len() as u32;
                    words.bytes.extend_from_slice(format!("p{i}").as_bytes());
                    words.words.push((7 + (i as u64) * 4096, a, words.bytes.len() as u32));
                }
                words.ready = true;
                for _ in 0..warm_up {
                    assert!(!words.contains(99, || b"absent"));
                }
                words
            };
            let set = padding > 0 || warm_up > 0;
            let case = format!("padding {padding}, warm-up {warm_up}");
            let questions: [(u64, &[u8], bool); 6] = [
                (42, b"w3", true),
                (42, b"w17", true),
                (42, b"nope", false),
                (42 + 1024, b"other", true),
                (42 + 1024, b"w3", false),
                (7 + 4096, b"p1", padding > 1),
            ];
            for (h, w, want) in questions {
                let mut words = make();
                assert_eq!(words.contains(h, || w), want, "{case}: {w:?}");
                // (These small hashes share one filter bit, so the set is built whenever
                // the filter is asked.)
                assert_eq!(words.set_ready, set, "{case}: {w:?}");
                if words.set_ready {
                    let entries = words.set.iter().filter(|&&e| e != 0).count();
                    assert_eq!(entries, 3 + padding, "one entry per word");
                }
            }
        }
    }

    /// Short word lists answer as the filter and set do, one by one for the first
    /// [`LINEAR_QUESTIONS`] questions of a message and through the filter and set after them:
    /// every word present, absent words, the same word twice, an empty message; a new
    /// message starts one by one again.
    #[test]
    fn short_word_lists_answer_without_the_set() {
        let hasher = WordHasher::with_seed(3, 5);
        let mut words = MessageWords::default();
        for n in [0, 1, 2, 7, LINEAR_WORDS - 1, LINEAR_WORDS, LINEAR_WORDS + 1, 3 * LINEAR_WORDS] {
            let text: String = (0..n).map(|i| format!("v{} ", i % 20)).collect();
            words.fill(&Message::new("1", text), &hasher, &[]);
            assert_eq!(words.words.len(), n);
            for (q, i) in (0..40).enumerate() {
                let w = format!("v{i}");
                let want = i < 20 && i < n;
                let got = words.contains(hasher.hash(w.as_bytes()), || w.as_bytes());
                assert_eq!(got, want, "{w} among {n} words");
                let linear = n <= LINEAR_WORDS && q < LINEAR_QUESTIONS as usize;
                assert_eq!(words.filter_ready, !linear, "{n} words, question {q}");
            }
        }
    }
}
