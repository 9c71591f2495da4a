//! The on-disk format: checksummed, length-prefixed frames, and the records they carry.
//!
//! A frame is `len: u32 LE | crc: u32 LE | payload (len bytes)`, where `crc` is the CRC-32
//! (IEEE) of the four length bytes followed by the payload, so a damaged length is caught as
//! surely as a damaged payload. A record is one frame; see DESIGN.md, "The durable registry".

use crate::registry::RuleId;
use crate::rule::Dialect;

/// Bytes before a frame's payload.
pub(crate) const FRAME_HEADER: usize = 8;
/// The largest payload accepted (a rule is at most a few KiB; this only bounds damage).
pub(crate) const MAX_PAYLOAD: usize = 1 << 24;

const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut j = 1;
        while j < 8 {
            let prev = t[j - 1][i];
            t[j][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            j += 1;
        }
        i += 1;
    }
    t
}

/// Slicing-by-8 tables: eight bytes per step instead of one (a reopen checks every byte of
/// the log and the snapshot; byte-at-a-time was ~3 cycles a byte).
static CRC_TABLES: [[u32; 256]; 8] = crc_tables();

/// Continues a CRC-32 (IEEE) over `bytes`; start with `!0` and finish with `!`.
fn crc_update(mut crc: u32, bytes: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let lo = crc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        crc = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][c[4] as usize]
            ^ t[2][c[5] as usize]
            ^ t[1][c[6] as usize]
            ^ t[0][c[7] as usize];
    }
    for &b in chunks.remainder() {
        crc = t[0][((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

/// CRC-32 of a frame: its length bytes, then its payload.
pub(crate) fn frame_crc(len: [u8; 4], payload: &[u8]) -> u32 {
    !crc_update(crc_update(!0, &len), payload)
}

/// The payload of the whole, valid frame starting at `at`, if there is one.
pub(crate) fn frame_at(buf: &[u8], at: usize) -> Option<&[u8]> {
    let header = buf.get(at..at.checked_add(FRAME_HEADER)?)?;
    let len_bytes: [u8; 4] = header[..4].try_into().ok()?;
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len > MAX_PAYLOAD {
        return None;
    }
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let payload = buf.get(at + FRAME_HEADER..at + FRAME_HEADER + len)?;
    (frame_crc(len_bytes, payload) == crc).then_some(payload)
}

/// The first offset after `at` where a whole, valid frame starts, if any: tells a damaged
/// record in the middle (valid records follow it) from a torn tail (nothing valid follows).
pub(crate) fn next_valid_frame(buf: &[u8], at: usize) -> Option<usize> {
    (at + 1..buf.len().saturating_sub(FRAME_HEADER - 1)).find(|&i| frame_at(buf, i).is_some())
}

/// One change to the registry, as logged. `S` is `&str` when decoded (borrowing from the
/// file's bytes: a reopen allocates nothing per record) and `String` or `&str` when written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Record<S> {
    /// A rule added (also the form of each rule in a snapshot).
    Subscribe {
        id: u64,
        subscriber: S,
        tag: Option<S>,
        /// The application's own name for the rule (e.g. its id in a rules file).
        name: Option<S>,
        dialect: Dialect,
        text: S,
    },
    /// A rule's tree and tag replaced.
    Replace { id: u64, tag: Option<S>, dialect: Dialect, text: S },
    /// A rule removed.
    Unsubscribe { id: u64 },
    /// A snapshot's first record: the id floor and the number of rules that follow.
    SnapshotHead { id_floor: u64, rules: u64 },
    /// A snapshot's last record: the number of rules it holds (a snapshot without it is
    /// incomplete).
    SnapshotEnd { rules: u64 },
}

const SUBSCRIBE: u8 = 1;
const REPLACE: u8 = 2;
const UNSUBSCRIBE: u8 = 3;
const SNAPSHOT_HEAD: u8 = 10;
const SNAPSHOT_END: u8 = 11;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_opt<S: AsRef<str>>(out: &mut Vec<u8>, s: &Option<S>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_str(out, s.as_ref());
        }
    }
}

fn dialect_byte(d: Dialect) -> u8 {
    match d {
        Dialect::Track => 0,
        Dialect::Rule => 1,
    }
}

impl<S: AsRef<str>> Record<S> {
    /// Appends the record's payload to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Record::Subscribe { id, subscriber, tag, name, dialect, text } => {
                out.push(SUBSCRIBE);
                out.extend_from_slice(&id.to_le_bytes());
                out.push(dialect_byte(*dialect));
                put_str(out, subscriber.as_ref());
                put_opt(out, tag);
                put_opt(out, name);
                put_str(out, text.as_ref());
            }
            Record::Replace { id, tag, dialect, text } => {
                out.push(REPLACE);
                out.extend_from_slice(&id.to_le_bytes());
                out.push(dialect_byte(*dialect));
                put_opt(out, tag);
                put_str(out, text.as_ref());
            }
            Record::Unsubscribe { id } => {
                out.push(UNSUBSCRIBE);
                out.extend_from_slice(&id.to_le_bytes());
            }
            Record::SnapshotHead { id_floor, rules } => {
                out.push(SNAPSHOT_HEAD);
                out.extend_from_slice(&id_floor.to_le_bytes());
                out.extend_from_slice(&rules.to_le_bytes());
            }
            Record::SnapshotEnd { rules } => {
                out.push(SNAPSHOT_END);
                out.extend_from_slice(&rules.to_le_bytes());
            }
        }
    }

    /// Appends the record as one frame to `out`.
    pub(crate) fn push_framed(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER]);
        self.encode(out);
        let len = ((out.len() - start - FRAME_HEADER) as u32).to_le_bytes();
        let crc = frame_crc(len, &out[start + FRAME_HEADER..]);
        out[start..start + 4].copy_from_slice(&len);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    }

    /// The rule the record is about, if any.
    pub(crate) fn rule_id(&self) -> Option<RuleId> {
        match self {
            Record::Subscribe { id, .. }
            | Record::Replace { id, .. }
            | Record::Unsubscribe { id } => Some(RuleId::from_u64(*id)),
            _ => None,
        }
    }
}

impl<'a> Record<&'a str> {
    /// Decodes a payload, borrowing its strings; `None` if it is not a well-formed record.
    pub(crate) fn decode(payload: &'a [u8]) -> Option<Record<&'a str>> {
        let mut r = Reader { buf: payload, at: 0 };
        let record = match r.u8()? {
            SUBSCRIBE => {
                let id = r.u64()?;
                let dialect = r.dialect()?;
                let subscriber = r.string()?;
                let tag = r.opt()?;
                let name = r.opt()?;
                let text = r.string()?;
                Record::Subscribe { id, subscriber, tag, name, dialect, text }
            }
            REPLACE => {
                let id = r.u64()?;
                let dialect = r.dialect()?;
                let tag = r.opt()?;
                let text = r.string()?;
                Record::Replace { id, tag, dialect, text }
            }
            UNSUBSCRIBE => Record::Unsubscribe { id: r.u64()? },
            SNAPSHOT_HEAD => Record::SnapshotHead { id_floor: r.u64()?, rules: r.u64()? },
            SNAPSHOT_END => Record::SnapshotEnd { rules: r.u64()? },
            _ => return None,
        };
        (r.at == payload.len()).then_some(record)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn dialect(&mut self) -> Option<Dialect> {
        match self.u8()? {
            0 => Some(Dialect::Track),
            1 => Some(Dialect::Rule),
            _ => None,
        }
    }
    fn string(&mut self) -> Option<&'a str> {
        let n = u32::from_le_bytes(self.take(4)?.try_into().ok()?) as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn opt(&mut self) -> Option<Option<&'a str>> {
        match self.u8()? {
            0 => Some(None),
            1 => Some(Some(self.string()?)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_the_ieee_crc32() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(!crc_update(!0, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn sliced_crc_is_the_bytewise_crc_at_every_length_and_alignment() {
        fn bytewise(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 != 0 { 0xEDB8_8320 ^ (crc >> 1) } else { crc >> 1 };
                }
            }
            !crc
        }
        let data: Vec<u8> =
            (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for start in 0..9 {
            for end in start..data.len() {
                assert_eq!(!crc_update(!0, &data[start..end]), bytewise(&data[start..end]));
            }
        }
    }

    #[test]
    fn records_round_trip_and_damage_is_seen() {
        let records = [
            Record::Subscribe {
                id: 7,
                subscriber: "alice",
                tag: Some("t"),
                name: Some("r1"),
                dialect: Dialect::Rule,
                text: "cat -dog",
            },
            Record::Replace { id: 7, tag: None, dialect: Dialect::Track, text: "a b,c" },
            Record::Unsubscribe { id: 7 },
            Record::SnapshotHead { id_floor: 9, rules: 1 },
            Record::SnapshotEnd { rules: 1 },
        ];
        let mut buf = Vec::new();
        let mut starts = Vec::new();
        for r in &records {
            starts.push(buf.len());
            r.push_framed(&mut buf);
        }
        for (r, &at) in records.iter().zip(&starts) {
            assert_eq!(Record::decode(frame_at(&buf, at).unwrap()).as_ref(), Some(r));
        }
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x5a;
            let k = starts.iter().rposition(|&s| s <= i).unwrap();
            assert!(frame_at(&bad, starts[k]).is_none(), "flip at {i} unseen");
        }
    }
}
