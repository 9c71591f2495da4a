//! The kept messages: the last matched messages of every series, what a click on a plot
//! shows. Each message is copied once, compactly, into a byte log of chunks; the series hold
//! the copies' addresses.
//!
//! Why copies and not the shared `Arc<Message>` the engine hands over: kept by reference, a
//! message is released by whichever series lets go of it last, minutes later, when its
//! reference count, its strings and the allocator's records of them have gone cold; at the
//! default bounds that cost the recorder thread more than counting and burst detection
//! together (see DESIGN.md, "What the stage costs"). A copy is written while the message is
//! in the cache, in order, into memory the log reuses; dropping old copies frees nothing and
//! touches nothing.
//!
//! Layout: chunks of `cap / 16` bytes (between 256 B and 1 MiB; an entry larger than that
//! has a chunk of its own), oldest first. An entry is written once into the newest chunk and
//! never moved; its address is its logical byte position (the log's bytes counted since it
//! began, never reused). A chunk that would take the log over its cap drops the oldest
//! chunks first and reuses the first dropped buffer; an address before the first chunk's
//! start is gone. Memory is counted by the chunks' capacities, so the log never holds more
//! than the cap. `tests/steady_state.rs` checks that a full log allocates nothing.
//!
//! The copy holds every field of the [`Message`] except `source` (the JSON object it was
//! read from, kept for echoing input on output; no view of kept messages reads it).

use super::Reaction;
use crate::message::{GeoBox, UrlEntity};
use crate::Message;
use std::collections::VecDeque;
use std::sync::Arc;

/// The smallest chunk (a smaller cap has one chunk of the cap's size).
const MIN_CHUNK: usize = 256;
/// The largest ordinary chunk: a 64 MiB log has 64 of them, so dropping one loses 1/64.
const MAX_CHUNK: usize = 1 << 20;

/// A copy as it is read back.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Recent {
    /// Event time (or arrival time when the message had none), ms since the epoch.
    pub time_ms: i64,
    /// The message as it was matched (without `source`, the JSON object it was read from).
    pub message: Arc<Message>,
    /// Its reaction, when scored.
    pub reaction: Option<Reaction>,
}

/// The byte log of kept messages.
pub(crate) struct KeptLog {
    cap: usize,
    chunk_bytes: usize,
    /// Oldest first; addresses grow along it.
    chunks: VecDeque<Chunk>,
    /// The chunks' capacities summed: what counts against `cap`.
    bytes: usize,
    /// The address of the next entry.
    next: u64,
    /// Entries dropped with their chunk, or never kept because they alone exceed the cap.
    evicted: u64,
    /// Where an entry is encoded before it is copied in (its size decides the chunk).
    scratch: Vec<u8>,
}

struct Chunk {
    /// The address of the chunk's first byte.
    start: u64,
    buf: Vec<u8>,
    entries: u64,
}

impl KeptLog {
    /// An empty log of at most `cap` bytes.
    pub(crate) fn new(cap: usize) -> Self {
        KeptLog {
            cap,
            chunk_bytes: (cap / 16).clamp(MIN_CHUNK, MAX_CHUNK).min(cap),
            chunks: VecDeque::new(),
            bytes: 0,
            next: 0,
            evicted: 0,
            scratch: Vec::new(),
        }
    }

    /// Copies a message in; its address, or `None` when it alone is larger than the cap
    /// (counted as evicted).
    pub(crate) fn push(
        &mut self,
        time_ms: i64,
        reaction: Option<Reaction>,
        m: &Message,
    ) -> Option<u64> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let encoded = encode(&mut scratch, time_ms, reaction, m);
        let addr = match encoded {
            Some(()) if scratch.len() <= self.cap => {
                let size = scratch.len();
                if self.chunks.back().is_none_or(|c| c.buf.capacity() - c.buf.len() < size) {
                    self.open_chunk(size);
                }
                self.chunks.back_mut().map(|c| {
                    let addr = c.start + c.buf.len() as u64;
                    c.buf.extend_from_slice(&scratch);
                    c.entries += 1;
                    addr
                })
            }
            _ => None,
        };
        match addr {
            Some(a) => self.next = a + scratch.len() as u64,
            None => self.evicted += 1,
        }
        // Kept for the next message, unless a rare huge one grew it past a chunk (it is not
        // counted against the cap).
        if scratch.capacity() <= MAX_CHUNK {
            self.scratch = scratch;
        }
        addr
    }

    /// Starts a chunk with room for `size` bytes, dropping the oldest chunks as the cap needs.
    fn open_chunk(&mut self, size: usize) {
        let want = size.max(self.chunk_bytes);
        let mut reuse: Option<Vec<u8>> = None;
        while self.bytes + want > self.cap {
            let Some(old) = self.chunks.pop_front() else { break };
            self.bytes -= old.buf.capacity();
            self.evicted += old.entries;
            if reuse.is_none() && old.buf.capacity() >= want {
                reuse = Some(old.buf);
            }
        }
        let mut buf = match reuse {
            Some(b) if self.bytes + b.capacity() <= self.cap => b,
            _ => Vec::with_capacity(want),
        };
        buf.clear();
        self.bytes += buf.capacity();
        self.chunks.push_back(Chunk { start: self.next, buf, entries: 0 });
    }

    /// The entry at `addr`, or `None` when it is gone.
    pub(crate) fn get(&self, addr: u64) -> Option<Recent> {
        decode(self.bytes_at(addr)?)
    }

    /// The time of the entry at `addr` (its first field), without decoding the rest.
    pub(crate) fn time_at(&self, addr: u64) -> Option<i64> {
        Reader { buf: self.bytes_at(addr)? }.i64()
    }

    fn bytes_at(&self, addr: u64) -> Option<&[u8]> {
        let i = self.chunks.partition_point(|c| c.start <= addr).checked_sub(1)?;
        let c = &self.chunks[i];
        let off = usize::try_from(addr - c.start).ok()?;
        c.buf.get(off..)
    }

    /// Bytes held (the chunks' capacities), at most the cap.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Entries dropped by the cap.
    pub(crate) fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Entries held.
    #[cfg(test)]
    pub(crate) fn entries(&self) -> u64 {
        self.chunks.iter().map(|c| c.entries).sum()
    }
}

// The encoding, little-endian: time (i64), flags (u8), the reaction (5 f64) when scored, the
// timestamp (i64), coordinates (2 f64) and place (4 f64) when present, then the strings and
// lists in the order of `encode`. A string is its length (u32) and bytes; an absent optional
// string or list is the length u32::MAX; a list is its length and its items.

const HAS_REACTION: u8 = 1;
const HAS_TIMESTAMP: u8 = 2;
const HAS_COORDINATES: u8 = 4;
const HAS_PLACE: u8 = 8;
const IS_RETWEET: u8 = 16;
const IS_REPLY: u8 = 32;
const IS_QUOTE: u8 = 64;
const ABSENT: u32 = u32::MAX;

/// Appends the entry to `out`; `None` when a string or list is too long to encode (4 GiB).
fn encode(out: &mut Vec<u8>, time_ms: i64, reaction: Option<Reaction>, m: &Message) -> Option<()> {
    // Every field named, so that a new field of `Message` is a compile error here.
    let Message {
        id,
        text,
        user,
        user_id,
        lang,
        urls,
        media,
        hashtags,
        mentions,
        cashtags,
        coordinates,
        place,
        is_retweet,
        is_reply,
        is_quote,
        quoted_text,
        retweeted_text,
        in_reply_to_user,
        in_reply_to_user_id,
        timestamp,
        #[cfg(feature = "json")]
            source: _,
    } = m;
    let flags = [
        (reaction.is_some(), HAS_REACTION),
        (timestamp.is_some(), HAS_TIMESTAMP),
        (coordinates.is_some(), HAS_COORDINATES),
        (place.is_some(), HAS_PLACE),
        (*is_retweet, IS_RETWEET),
        (*is_reply, IS_REPLY),
        (*is_quote, IS_QUOTE),
    ]
    .iter()
    .fold(0u8, |f, &(on, bit)| if on { f | bit } else { f });
    out.extend_from_slice(&time_ms.to_le_bytes());
    out.push(flags);
    if let Some(r) = reaction {
        for x in [r.compound, r.pos, r.neu, r.neg, r.mean] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    if let Some(t) = timestamp {
        out.extend_from_slice(&t.to_le_bytes());
    }
    if let Some((lon, lat)) = coordinates {
        out.extend_from_slice(&lon.to_le_bytes());
        out.extend_from_slice(&lat.to_le_bytes());
    }
    if let Some(p) = place {
        for x in [p.west, p.south, p.east, p.north] {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    put_str(out, id)?;
    put_str(out, text)?;
    for s in
        [user, user_id, lang, quoted_text, retweeted_text, in_reply_to_user, in_reply_to_user_id]
    {
        put_opt_str(out, s.as_deref())?;
    }
    for list in [urls, media] {
        put_opt_list(out, list.as_deref(), |out, u| {
            put_opt_str(out, u.expanded_url.as_deref())?;
            put_opt_str(out, u.display_url.as_deref())
        })?;
    }
    for list in [hashtags, mentions, cashtags] {
        put_opt_list(out, list.as_deref(), |out, s| put_str(out, s))?;
    }
    Some(())
}

fn put_len(out: &mut Vec<u8>, n: usize) -> Option<()> {
    let n = u32::try_from(n).ok().filter(|&n| n != ABSENT)?;
    out.extend_from_slice(&n.to_le_bytes());
    Some(())
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    put_len(out, s.len())?;
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// An optional list: its length and items, or the length `ABSENT`.
fn put_opt_list<T>(
    out: &mut Vec<u8>,
    list: Option<&[T]>,
    mut put: impl FnMut(&mut Vec<u8>, &T) -> Option<()>,
) -> Option<()> {
    let Some(items) = list else {
        out.extend_from_slice(&ABSENT.to_le_bytes());
        return Some(());
    };
    put_len(out, items.len())?;
    items.iter().try_for_each(|x| put(out, x))
}

fn put_opt_str(out: &mut Vec<u8>, s: Option<&str>) -> Option<()> {
    match s {
        None => {
            out.extend_from_slice(&ABSENT.to_le_bytes());
            Some(())
        }
        Some(s) => put_str(out, s),
    }
}

/// Reads an entry back (`None` only if the bytes are not one `encode` wrote).
fn decode(buf: &[u8]) -> Option<Recent> {
    let mut r = Reader { buf };
    let time_ms = r.i64()?;
    let flags = r.u8()?;
    let reaction = if flags & HAS_REACTION != 0 {
        Some(Reaction {
            compound: r.f64()?,
            pos: r.f64()?,
            neu: r.f64()?,
            neg: r.f64()?,
            mean: r.f64()?,
        })
    } else {
        None
    };
    let timestamp = if flags & HAS_TIMESTAMP != 0 { Some(r.i64()?) } else { None };
    let coordinates = if flags & HAS_COORDINATES != 0 { Some((r.f64()?, r.f64()?)) } else { None };
    let place = if flags & HAS_PLACE != 0 {
        Some(GeoBox { west: r.f64()?, south: r.f64()?, east: r.f64()?, north: r.f64()? })
    } else {
        None
    };
    // Fields in the order `encode` wrote them (a struct expression evaluates its fields in
    // the order written).
    let message = Message {
        id: r.string()?,
        text: r.string()?,
        user: r.opt_string()?,
        user_id: r.opt_string()?,
        lang: r.opt_string()?,
        quoted_text: r.opt_string()?,
        retweeted_text: r.opt_string()?,
        in_reply_to_user: r.opt_string()?,
        in_reply_to_user_id: r.opt_string()?,
        urls: r.opt_list(Reader::url_entity)?,
        media: r.opt_list(Reader::url_entity)?,
        hashtags: r.opt_list(Reader::string)?,
        mentions: r.opt_list(Reader::string)?,
        cashtags: r.opt_list(Reader::string)?,
        coordinates,
        place,
        is_retweet: flags & IS_RETWEET != 0,
        is_reply: flags & IS_REPLY != 0,
        is_quote: flags & IS_QUOTE != 0,
        timestamp,
        #[cfg(feature = "json")]
        source: None,
    };
    Some(Recent { time_ms, message: Arc::new(message), reaction })
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.buf.split_first_chunk::<N>()?;
        self.buf = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_le_bytes)
    }
    fn f64(&mut self) -> Option<f64> {
        self.take().map(f64::from_le_bytes)
    }
    /// A length, or `None` inside for an absent string or list.
    fn len(&mut self) -> Option<Option<usize>> {
        let n = self.take().map(u32::from_le_bytes)?;
        Some((n != ABSENT).then_some(n as usize))
    }
    /// An optional list of items read by `item`.
    fn opt_list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Option<Vec<T>>> {
        let Some(n) = self.len()? else { return Some(None) };
        Some(Some((0..n).map(|_| item(self)).collect::<Option<Vec<T>>>()?))
    }
    fn url_entity(&mut self) -> Option<UrlEntity> {
        Some(UrlEntity { expanded_url: self.opt_string()?, display_url: self.opt_string()? })
    }
    fn string(&mut self) -> Option<String> {
        self.opt_string()?
    }
    fn opt_string(&mut self) -> Option<Option<String>> {
        let Some(n) = self.len()? else { return Some(None) };
        let bytes = self.buf.get(..n)?;
        self.buf = &self.buf[n..];
        Some(Some(String::from_utf8_lossy(bytes).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn opt_str() -> impl Strategy<Value = Option<String>> {
        prop::option::of(".{0,12}")
    }

    fn urls() -> impl Strategy<Value = Option<Vec<UrlEntity>>> {
        prop::option::of(prop::collection::vec(
            (opt_str(), opt_str())
                .prop_map(|(expanded_url, display_url)| UrlEntity { expanded_url, display_url }),
            0..3,
        ))
    }

    fn strs() -> impl Strategy<Value = Option<Vec<String>>> {
        prop::option::of(prop::collection::vec(".{0,8}", 0..3))
    }

    fn message() -> impl Strategy<Value = Message> {
        (
            (".{0,10}", ".{0,80}", opt_str(), opt_str(), opt_str(), opt_str(), opt_str()),
            (opt_str(), opt_str(), urls(), urls(), strs(), strs(), strs()),
            (
                prop::option::of((-180.0f64..180.0, -90.0f64..90.0)),
                prop::option::of((-180.0f64..0.0, -90.0f64..0.0, 0.0f64..180.0, 0.0f64..90.0)),
                any::<(bool, bool, bool)>(),
                prop::option::of(any::<i64>()),
            ),
        )
            .prop_map(|(a, b, c)| {
                let (id, text, user, user_id, lang, quoted_text, retweeted_text) = a;
                let (
                    in_reply_to_user,
                    in_reply_to_user_id,
                    urls,
                    media,
                    hashtags,
                    mentions,
                    cashtags,
                ) = b;
                let (coordinates, place, (is_retweet, is_reply, is_quote), timestamp) = c;
                Message {
                    id,
                    text,
                    user,
                    user_id,
                    lang,
                    urls,
                    media,
                    hashtags,
                    mentions,
                    cashtags,
                    coordinates,
                    place: place.map(|(west, south, east, north)| GeoBox {
                        west,
                        south,
                        east,
                        north,
                    }),
                    is_retweet,
                    is_reply,
                    is_quote,
                    quoted_text,
                    retweeted_text,
                    in_reply_to_user,
                    in_reply_to_user_id,
                    timestamp,
                    ..Message::default()
                }
            })
    }

    fn reaction() -> impl Strategy<Value = Option<Reaction>> {
        prop::option::of(
            (-1.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0, 0.0f64..1.0, -1.0f64..1.0).prop_map(
                |(compound, pos, neu, neg, mean)| Reaction { compound, pos, neu, neg, mean },
            ),
        )
    }

    proptest! {
        /// What is read back is what was kept, every field (`source` aside).
        #[test]
        fn a_kept_message_reads_back_whole(m in message(), t in any::<i64>(), r in reaction()) {
            let mut log = KeptLog::new(1 << 20);
            let before = log.push(0, None, &Message::new("x", "y"));
            let addr = log.push(t, r, &m).expect("kept");
            let got = log.get(addr).expect("held");
            prop_assert_eq!(got.time_ms, t);
            prop_assert_eq!(got.reaction, r);
            prop_assert_eq!(&*got.message, &m);
            prop_assert_eq!(&log.get(before.expect("kept")).expect("held").message.id, "x");
        }

        /// The log's contract: the oldest go first, nothing is held over the cap, every
        /// entry pushed is either held or counted as evicted, the newest is held when it fits,
        /// a chunk is dropped only when the cap needs its room (the log then holds more than
        /// the cap less one chunk) and closed only when the next entry does not fit in it.
        #[test]
        fn the_log_keeps_the_newest_within_the_cap(
            cap in 0usize..6_000,
            texts in prop::collection::vec(0usize..700, 1..120),
        ) {
            let mut log = KeptLog::new(cap);
            let mut pushed: Vec<(Option<u64>, usize)> = Vec::new();
            let mut largest_chunk = log.chunk_bytes;
            for (i, &n) in texts.iter().enumerate() {
                let m = Message::new(i.to_string(), "x".repeat(n));
                let mut probe = Vec::new();
                encode(&mut probe, 0, None, &m).expect("encodable");
                let size = probe.len();
                let addr = log.push(i as i64, None, &m);
                pushed.push((addr, size));
                prop_assert_eq!(addr.is_some(), size <= cap, "kept exactly when it fits");
                prop_assert!(log.bytes() <= cap, "{} > {}", log.bytes(), cap);
                if let Some(a) = addr {
                    prop_assert_eq!(log.get(a).map(|r| r.time_ms), Some(i as i64));
                    largest_chunk = largest_chunk.max(size);
                }
                let held: Vec<bool> = pushed
                    .iter()
                    .map(|(a, _)| a.is_some_and(|a| log.get(a).is_some()))
                    .collect();
                if let Some(first) = held.iter().position(|&h| h) {
                    for (j, (a, _)) in pushed.iter().enumerate().skip(first) {
                        prop_assert_eq!(held[j], a.is_some(), "entry {} of {}", j, i);
                    }
                }
                let kept = held.iter().filter(|&&h| h).count() as u64;
                prop_assert_eq!(kept + log.evicted(), pushed.len() as u64);
                let dropped = pushed.iter().zip(&held).any(|((a, _), &h)| a.is_some() && !h);
                if dropped {
                    prop_assert!(log.bytes() + largest_chunk > cap, "dropped early: {} of {}", log.bytes(), cap);
                }
                let size_at: std::collections::HashMap<u64, usize> =
                    pushed.iter().filter_map(|&(a, s)| Some((a?, s))).collect();
                for w in log.chunks.iter().collect::<Vec<_>>().windows(2) {
                    let tail = w[0].buf.capacity() - w[0].buf.len();
                    prop_assert!(tail < size_at[&w[1].start], "a chunk closed with room left");
                }
            }
        }
    }

    /// A huge message is kept in a chunk of its own and leaves no encoding buffer of its
    /// size behind (that buffer is outside the cap).
    #[test]
    fn a_huge_message_leaves_no_scratch_behind() {
        let mut log = KeptLog::new(8 << 20);
        let a = log.push(0, None, &Message::new("1", "x".repeat(3 << 20))).expect("kept");
        assert!(log.scratch.capacity() <= MAX_CHUNK, "{}", log.scratch.capacity());
        assert_eq!(log.get(a).expect("held").message.text.len(), 3 << 20);
        assert!(log.bytes() <= 8 << 20);
    }

    /// A message larger than the whole cap is not kept and is counted; one larger than a
    /// chunk has a chunk of its own.
    #[test]
    fn oversized_messages() {
        let mut log = KeptLog::new(4096);
        assert_eq!(log.push(0, None, &Message::new("1", "x".repeat(5000))), None);
        assert_eq!(log.evicted(), 1);
        let a = log.push(0, None, &Message::new("2", "x".repeat(1000))).expect("kept");
        assert_eq!(log.get(a).expect("held").message.text.len(), 1000);
        assert!(log.bytes() <= 4096);
        let mut empty = KeptLog::new(0);
        assert_eq!(empty.push(0, None, &Message::new("1", "")), None);
        assert_eq!((empty.bytes(), empty.evicted()), (0, 1));
    }
}
