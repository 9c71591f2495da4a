//! A registry whose rules survive a restart: an append-only log of subscribe, replace and
//! unsubscribe records plus snapshots that compact it, in a directory of its own.
//!
//! [`DurableRegistry::open`] restores the same rules with the same ids, subscribers and tags;
//! every change is logged before the call returns, and is durable (flushed and synced) at
//! once ([`Durability::EveryOp`]) or within a bounded delay ([`Durability::Group`], see
//! [`Receipt`]). A crash mid-write leaves a torn tail, which the next open truncates and
//! reports ([`OpenReport::truncated`]); damage in the middle of the log stops the open with
//! an error naming the offset ([`DurableError::Corrupt`]), unless
//! [`OpenOptions::recovery`] says to truncate there. Matching threads keep using
//! [`Registry::snapshot`] (through [`DurableRegistry::registry`]) and never wait for a
//! writer. The format and the guarantees are in DESIGN.md, "The durable registry".
//!
//! ```
//! use streamtrack::durable::{DurableRegistry, OpenOptions};
//! use streamtrack::Rule;
//! let dir = std::env::temp_dir().join(format!("streamtrack-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let (reg, _) = DurableRegistry::open(&dir, OpenOptions::new()).unwrap();
//! let id = reg.subscribe("alice", Rule::parse("rust -rusty").unwrap(), None).unwrap().value;
//! drop(reg);
//! let (reg, report) = DurableRegistry::open(&dir, OpenOptions::new()).unwrap();
//! assert_eq!(report.rules, 1);
//! assert_eq!(reg.registry().get(id).unwrap().subscriber.as_ref(), "alice");
//! # drop(reg); std::fs::remove_dir_all(&dir).unwrap();
//! ```

mod format;
#[cfg(test)]
mod tests;

use crate::registry::{NewRule, Registry, RegistryBuilder, RegistryError, Restore, RuleId};
use crate::rule::{Dialect, Parser, Rule};
use format::{frame_at, next_valid_frame, Record, FRAME_HEADER};
use std::collections::HashMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// The hasher of the maps a reopen fills with a million entries (SipHash was a quarter of
/// the time; see DESIGN.md, "The durable registry").
type FastHash = foldhash::fast::RandomState;

/// When a change becomes durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Each change is written and synced (`fdatasync`) before its call returns.
    EveryOp,
    /// Changes are written and synced together by a background thread at most `max_delay`
    /// after they return (group commit); [`DurableRegistry::wait`] waits for one.
    Group {
        /// The longest a returned change may stay unsynced.
        max_delay: Duration,
    },
}

/// What to do with damage in the middle of the log (valid records after a damaged one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Recovery {
    /// Refuse to open ([`DurableError::Corrupt`] names the offset). The default: nothing is
    /// dropped without someone deciding to.
    #[default]
    Strict,
    /// Keep the records before the damage, truncate the log there (dropping every later
    /// record, reported in [`OpenReport::truncated`]) and open.
    TruncateAtCorruption,
}

/// Settings of [`DurableRegistry::open`].
#[derive(Clone, Debug)]
pub struct OpenOptions {
    durability: Durability,
    recovery: Recovery,
    snapshot_min_records: usize,
    registry: RegistryBuilder,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            durability: Durability::EveryOp,
            recovery: Recovery::Strict,
            snapshot_min_records: 65_536,
            registry: RegistryBuilder::default(),
        }
    }
}

impl OpenOptions {
    /// Per-operation durability, strict recovery, snapshots every 65,536 records or more.
    pub fn new() -> Self {
        OpenOptions::default()
    }

    /// When changes become durable (default [`Durability::EveryOp`]).
    pub fn durability(mut self, d: Durability) -> Self {
        self.durability = d;
        self
    }

    /// What to do with damage in the middle of the log (default [`Recovery::Strict`]).
    pub fn recovery(mut self, r: Recovery) -> Self {
        self.recovery = r;
        self
    }

    /// A snapshot replaces the log once it holds this many records and at least as many as
    /// there are rules (so replaying the log never costs more than loading the snapshot).
    pub fn snapshot_min_records(mut self, n: usize) -> Self {
        self.snapshot_min_records = n.max(1);
        self
    }

    /// Settings of the in-memory registry.
    pub fn registry(mut self, b: RegistryBuilder) -> Self {
        self.registry = b;
        self
    }
}

/// What opening found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenReport {
    /// Rules restored.
    pub rules: usize,
    /// Rules read from the snapshot.
    pub snapshot_rules: usize,
    /// Log records replayed.
    pub log_records: usize,
    /// A torn or damaged tail that was cut off, if any.
    pub truncated: Option<Truncation>,
    /// Where the open spent its time (wall clock per phase).
    pub phases: OpenPhases,
}

/// Wall-clock time per phase of [`DurableRegistry::open`], for sizing and profiling (DESIGN.md,
/// "The durable registry", has the figures at 1M rules).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenPhases {
    /// Reading the snapshot and the log into memory.
    pub read: Duration,
    /// Finding the frames and checking their checksums.
    pub check: Duration,
    /// Decoding the records and replaying them into the set of stored rules.
    pub decode: Duration,
    /// Parsing the stored rule texts back into trees (on every core).
    pub parse: Duration,
    /// The registry's bookkeeping: ids, subscribers, duplicate keys.
    pub registry: Duration,
    /// Compiling the matcher over every rule (once).
    pub compile: Duration,
}

impl OpenPhases {
    /// The sum of the phases.
    pub fn total(&self) -> Duration {
        self.read + self.check + self.decode + self.parse + self.registry + self.compile
    }
}

/// A log tail cut off at open.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Truncation {
    /// The log file.
    pub file: PathBuf,
    /// The byte offset the log was cut at (the start of the first record not applied).
    pub offset: u64,
    /// Bytes dropped.
    pub bytes: u64,
    /// Whether valid records were dropped too ([`Recovery::TruncateAtCorruption`]); `false`
    /// for a torn tail (a crash mid-write).
    pub dropped_valid_records: bool,
}

impl fmt::Display for Truncation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} at byte {}: {} bytes cut off",
            self.file.display(),
            if self.dropped_valid_records { "damaged record" } else { "torn tail" },
            self.offset,
            self.bytes
        )
    }
}

/// Why a durable registry could not open or log a change.
#[derive(Debug)]
#[non_exhaustive]
pub enum DurableError {
    /// A file could not be read or written.
    Io(io::Error),
    /// A damaged record with valid records after it (not a torn tail). Reopen with
    /// [`Recovery::TruncateAtCorruption`] to keep what precedes it.
    Corrupt {
        /// The file.
        file: PathBuf,
        /// Byte offset of the damaged record.
        offset: u64,
        /// Byte offset of the next valid record.
        next_valid: Option<u64>,
    },
    /// A well-formed record that does not fit the state before it (a rule logged twice,
    /// removed before it was added, a rule text that no longer parses).
    Inconsistent {
        /// The file.
        file: PathBuf,
        /// Byte offset of the record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The registry refused the change (nothing was logged).
    Registry(RegistryError),
    /// The rule cannot be stored: its canonical text does not parse back to the same tree
    /// (a track filter with `follow` or `locations`).
    NotStorable(String),
}

impl fmt::Display for DurableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::Io(e) => write!(f, "durable registry: {e}"),
            DurableError::Corrupt { file, offset, next_valid } => {
                write!(f, "{}: damaged record at byte {offset}", file.display())?;
                if let Some(n) = next_valid {
                    write!(f, " (valid records follow from byte {n})")?;
                }
                write!(f, "; open with truncation at the damage to keep what precedes it")
            }
            DurableError::Inconsistent { file, offset, reason } => {
                write!(f, "{}: record at byte {offset}: {reason}", file.display())
            }
            DurableError::Registry(e) => e.fmt(f),
            DurableError::NotStorable(why) => write!(f, "rule cannot be stored: {why}"),
        }
    }
}

impl std::error::Error for DurableError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DurableError::Io(e) => Some(e),
            DurableError::Registry(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for DurableError {
    fn from(e: io::Error) -> Self {
        DurableError::Io(e)
    }
}

impl From<RegistryError> for DurableError {
    fn from(e: RegistryError) -> Self {
        DurableError::Registry(e)
    }
}

/// Says when a logged change is durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Receipt {
    seq: u64,
    durable: bool,
}

impl Receipt {
    /// Whether the change was already synced when its call returned (always, under
    /// [`Durability::EveryOp`]).
    pub fn is_durable(&self) -> bool {
        self.durable
    }
}

/// A change's result and its [`Receipt`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Written<T> {
    /// What the registry returned.
    pub value: T,
    /// When it is durable.
    pub receipt: Receipt,
}

/// One stored rule, as the files describe it (borrowing from the files' bytes).
#[derive(Clone, Copy, Debug)]
struct Stored<'a> {
    subscriber: &'a str,
    tag: Option<&'a str>,
    name: Option<&'a str>,
    dialect: Dialect,
    text: &'a str,
}

/// The rules the files describe: the snapshot's, then the log replayed over them.
#[derive(Default)]
struct StoredRules<'a> {
    /// In the order first added; `None` once removed. Files hold rules in ascending id order
    /// (a snapshot is sorted, and ids are handed out and logged in order under one lock), so
    /// this is sorted and searched by bisection: no map of a million entries to fill.
    entries: Vec<(u64, Option<Stored<'a>>)>,
    /// Rule id -> its place in `entries`, built only if an id ever comes out of order.
    index: Option<HashMap<u64, usize, FastHash>>,
    live: usize,
}

impl<'a> StoredRules<'a> {
    fn with_capacity(n: usize) -> Self {
        StoredRules { entries: Vec::with_capacity(n), index: None, live: 0 }
    }

    fn position(&self, id: u64) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(&id).copied(),
            None => self.entries.binary_search_by_key(&id, |e| e.0).ok(),
        }
    }

    fn add(&mut self, id: u64, s: Stored<'a>) -> Result<(), String> {
        let ascending = self.entries.last().is_none_or(|e| e.0 < id);
        if !ascending && self.index.is_none() {
            let live = self.entries.iter().enumerate().filter(|(_, e)| e.1.is_some());
            self.index = Some(live.map(|(k, e)| (e.0, k)).collect());
        }
        if let Some(index) = &mut self.index {
            if index.insert(id, self.entries.len()).is_some() {
                return Err(format!("rule {id} added twice"));
            }
        }
        self.entries.push((id, Some(s)));
        self.live += 1;
        Ok(())
    }

    fn get_mut(&mut self, id: u64) -> Option<&mut Stored<'a>> {
        let k = self.position(id)?;
        self.entries[k].1.as_mut()
    }

    fn remove(&mut self, id: u64) -> Option<Stored<'a>> {
        let k = self.position(id)?;
        let s = self.entries[k].1.take()?;
        if let Some(index) = &mut self.index {
            index.remove(&id);
        }
        self.live -= 1;
        Some(s)
    }

    /// The live rules, ascending by id (in place: no second copy of a million entries).
    fn into_sorted(mut self) -> Vec<(u64, Option<Stored<'a>>)> {
        self.entries.retain(|e| e.1.is_some());
        if self.index.is_some() {
            self.entries.sort_unstable_by_key(|e| e.0);
        }
        self.entries
    }
}

struct LogState {
    dir: PathBuf,
    generation: u64,
    file: Arc<File>,
    /// Framed records not yet written (group commit).
    pending: Vec<u8>,
    /// Records in the current log file.
    records: usize,
    /// Sequence number of the last change logged.
    seq: u64,
    /// Ids below this were handed out.
    id_floor: u64,
    /// Error of the background flush, given to the next caller.
    failed: Option<io::ErrorKind>,
}

struct Inner {
    registry: Registry,
    /// Names given with [`DurableRegistry::subscribe_named`], by rule id.
    names: Mutex<HashMap<u64, String>>,
    state: Mutex<LogState>,
    durable_seq: Mutex<u64>,
    durable_cv: Condvar,
    durability: Durability,
    snapshot_min_records: usize,
    parser: Parser,
}

/// A [`Registry`] kept in a directory. Cheap to clone (shared).
#[derive(Clone)]
pub struct DurableRegistry {
    inner: Arc<Inner>,
}

impl fmt::Debug for DurableRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableRegistry").field("rules", &self.inner.registry.len()).finish()
    }
}

fn log_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("log-{generation:016x}"))
}

fn snapshot_path(dir: &Path, generation: u64) -> PathBuf {
    dir.join(format!("snapshot-{generation:016x}"))
}

/// The generation in a file name `PREFIX-XXXXXXXXXXXXXXXX`.
fn generation_of(name: &str, prefix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?.strip_prefix('-')?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten()
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A parser that takes back any canonical text (which may exceed the limits of the text as
/// first written, see [`crate::rule`]).
fn lenient_parser() -> Parser {
    Parser::builder()
        .max_rule_chars(usize::MAX)
        .max_phrase_bytes(usize::MAX)
        .max_phrases(usize::MAX)
        .max_proximity(u8::MAX)
        .max_depth(1024)
        .build()
}

fn apply<'a>(
    rules: &mut StoredRules<'a>,
    id_floor: &mut u64,
    record: Record<&'a str>,
) -> Result<(), String> {
    if let Some(id) = record.rule_id() {
        *id_floor = (*id_floor).max(id.as_u64() + 1);
    }
    match record {
        Record::Subscribe { id, subscriber, tag, name, dialect, text } => {
            rules.add(id, Stored { subscriber, tag, name, dialect, text })?;
        }
        Record::Replace { id, tag, dialect, text } => {
            let Some(s) = rules.get_mut(id) else {
                return Err(format!("rule {id} replaced but not registered"));
            };
            s.tag = tag;
            s.dialect = dialect;
            s.text = text;
        }
        Record::Unsubscribe { id } => {
            if rules.remove(id).is_none() {
                return Err(format!("rule {id} removed but not registered"));
            }
        }
        Record::SnapshotHead { .. } | Record::SnapshotEnd { .. } => {
            return Err("a snapshot record in a log".into())
        }
    }
    Ok(())
}

/// The whole, valid frames at the start of a file: checked once (checksums), then walked.
struct Frames<'a> {
    buf: &'a [u8],
    /// How many there are.
    count: usize,
    /// Where the first frame that is not whole and valid starts, if any.
    bad: Option<usize>,
}

impl<'a> Frames<'a> {
    fn check(buf: &'a [u8]) -> Frames<'a> {
        let (mut at, mut count) = (0, 0);
        while at < buf.len() {
            let Some(payload) = frame_at(buf, at) else {
                return Frames { buf, count, bad: Some(at) };
            };
            count += 1;
            at += FRAME_HEADER + payload.len();
        }
        Frames { buf, count, bad: None }
    }

    /// The frames, as (offset, payload), without checking them again.
    fn iter(&self) -> impl Iterator<Item = (usize, &'a [u8])> {
        let buf = self.buf;
        let mut at = 0;
        (0..self.count).map(move |_| {
            let len = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            let frame = (at, &buf[at + FRAME_HEADER..at + FRAME_HEADER + len]);
            at += FRAME_HEADER + len;
            frame
        })
    }

    /// Where the frames end: the first bad frame, or the end of the file.
    fn end(&self) -> usize {
        self.bad.unwrap_or(self.buf.len())
    }
}

/// Reads a snapshot's bytes: every rule, and the id floor.
fn read_snapshot<'a>(
    path: &Path,
    buf: &'a [u8],
    phases: &mut OpenPhases,
) -> Result<(StoredRules<'a>, u64), DurableError> {
    let corrupt = |offset: usize| DurableError::Corrupt {
        file: path.to_path_buf(),
        offset: offset as u64,
        next_valid: None,
    };
    let t = Instant::now();
    let frames = Frames::check(buf);
    phases.check += t.elapsed();
    let t = Instant::now();
    let mut walk = frames.iter();
    let mut next = || -> Result<(usize, Record<&'a str>), DurableError> {
        let (at, payload) = walk.next().ok_or_else(|| corrupt(frames.end()))?;
        Ok((at, Record::decode(payload).ok_or_else(|| corrupt(at))?))
    };
    let (_, Record::SnapshotHead { id_floor, rules: count }) = next()? else {
        return Err(corrupt(0));
    };
    // A damaged count cannot make us reserve more than the file holds.
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    let mut rules = StoredRules::with_capacity(count.min(frames.count));
    for _ in 0..count {
        match next()? {
            (at, Record::Subscribe { id, subscriber, tag, name, dialect, text }) => {
                rules.add(id, Stored { subscriber, tag, name, dialect, text }).map_err(
                    |reason| DurableError::Inconsistent {
                        file: path.to_path_buf(),
                        offset: at as u64,
                        reason,
                    },
                )?;
            }
            (at, _) => return Err(corrupt(at)),
        }
    }
    match next()? {
        (_, Record::SnapshotEnd { rules: n })
            if n as usize == count && frames.bad.is_none() && frames.count == count + 2 => {}
        (at, _) => return Err(corrupt(at)),
    }
    phases.decode += t.elapsed();
    Ok((rules, id_floor))
}

/// A stored rule text that no longer parses: its id, its text, why.
type ParseFailure = (u64, String, crate::rule::RuleError);

/// Rules per unit of parsing work handed to a thread.
const PARSE_CHUNK: usize = 8192;

/// Parses the stored rules on every core, chunk by chunk, while this thread hands them, in
/// order, to the registry's bookkeeping as they come (parsing and bookkeeping overlap); the
/// rule's canonical text (the registry's duplicate key) is the stored text. Returns what
/// the registry did, and the time this thread spent waiting for parsed chunks.
fn parse_and_restore<'a>(
    all: &[(u64, Option<Stored<'a>>)],
    parser: &Parser,
    registry: &Registry,
    id_floor: u64,
) -> Result<(crate::registry::Restored, Duration), ParseFailure> {
    let parse = |part: &[(u64, Option<Stored<'a>>)]| -> Result<Vec<Restore<'a>>, ParseFailure> {
        let mut out = Vec::with_capacity(part.len());
        for &(id, s) in part {
            let Some(s) = s else { continue };
            match parser.parse(s.text, s.dialect) {
                Ok(rule) => out.push(Restore {
                    id: RuleId::from_u64(id),
                    subscriber: s.subscriber,
                    rule,
                    tag: s.tag,
                    text: s.text,
                }),
                Err(e) => return Err((id, s.text.to_owned(), e)),
            }
        }
        Ok(out)
    };
    let chunks: Vec<_> = all.chunks(PARSE_CHUNK).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
    if chunks.len() <= 1 || threads == 1 {
        let mut failed = None;
        let mut rules = Vec::with_capacity(all.len());
        for part in &chunks {
            match parse(part) {
                Ok(p) => rules.extend(p),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            return Err(e);
        }
        return Ok((registry.restore(rules.into_iter(), all.len(), id_floor), Duration::ZERO));
    }
    let claimed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Bounded: parsed rules wait for the bookkeeping a few chunks ahead at most, not
        // all of them at once.
        let (tx, rx) = mpsc::sync_channel(threads * 2);
        for _ in 0..threads.min(chunks.len()) {
            let (tx, chunks, claimed, stop, parse) = (tx.clone(), &chunks, &claimed, &stop, &parse);
            let work = move || loop {
                let k = claimed.fetch_add(1, Ordering::Relaxed);
                if k >= chunks.len() || stop.load(Ordering::Relaxed) {
                    return;
                }
                if tx.send((k, parse(chunks[k]))).is_err() {
                    return;
                }
            };
            // Named, so that profiles tell parsing from the rest. Without the thread, its
            // chunks are parsed by the others, or below.
            let named = std::thread::Builder::new().name("streamtrack-parse".into());
            let _ = named.spawn_scoped(scope, work);
        }
        drop(tx);
        let mut arrived: Vec<Option<Result<Vec<Restore<'a>>, ParseFailure>>> =
            (0..chunks.len()).map(|_| None).collect();
        let mut failed = None;
        let mut waiting = Duration::ZERO;
        let mut next = 0;
        let in_order = std::iter::from_fn(|| {
            if failed.is_some() || next == chunks.len() {
                return None;
            }
            let t = Instant::now();
            while arrived[next].is_none() {
                match rx.recv() {
                    Ok((k, part)) => arrived[k] = Some(part),
                    // No parsing thread left (none could start): parse it here.
                    Err(_) => arrived[next] = Some(parse(chunks[next])),
                }
            }
            waiting += t.elapsed();
            let part = arrived[next].take().expect("arrived");
            next += 1;
            match part {
                Ok(rules) => Some(rules),
                Err(e) => {
                    failed = Some(e);
                    stop.store(true, Ordering::Relaxed);
                    None
                }
            }
        })
        .flatten();
        let restored = registry.restore(in_order, all.len(), id_floor);
        match failed {
            Some(e) => Err(e),
            None => Ok((restored, waiting)),
        }
    })
}

impl DurableRegistry {
    /// Opens (or creates) the state in `dir` and restores its rules.
    pub fn open(
        dir: impl AsRef<Path>,
        options: OpenOptions,
    ) -> Result<(DurableRegistry, OpenReport), DurableError> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        let mut snapshot_gen = None;
        let mut logs = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(".tmp") {
                // A snapshot that was being written when the process stopped.
                fs::remove_file(dir.join(name))?;
            } else if let Some(g) = generation_of(name, "snapshot") {
                snapshot_gen = snapshot_gen.max(Some(g));
            } else if let Some(g) = generation_of(name, "log") {
                logs.push(g);
            }
        }
        // The newest snapshot and its log are the state (a snapshot is complete: written
        // aside, synced, then renamed); with no snapshot, log 0 is. The log may not exist
        // yet (a stop between the rename and its first record).
        let generation = snapshot_gen.unwrap_or(0);
        let mut report = OpenReport::default();
        let mut phases = OpenPhases::default();
        let read = |path: &Path| match fs::read(path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e),
        };
        let t = Instant::now();
        let snapshot_buf = match snapshot_gen {
            Some(g) => fs::read(snapshot_path(&dir, g))?,
            None => Vec::new(),
        };
        let path = log_path(&dir, generation);
        let buf = read(&path)?;
        phases.read = t.elapsed();
        let (mut rules, mut id_floor) = match snapshot_gen {
            Some(g) => read_snapshot(&snapshot_path(&dir, g), &snapshot_buf, &mut phases)?,
            None => (StoredRules::with_capacity(buf.len() / 48), 1),
        };
        report.snapshot_rules = rules.live;
        let t = Instant::now();
        let frames = Frames::check(&buf);
        phases.check += t.elapsed();
        if let Some(at) = frames.bad {
            let next_valid = next_valid_frame(&buf, at);
            if next_valid.is_some() && options.recovery == Recovery::Strict {
                return Err(DurableError::Corrupt {
                    file: path,
                    offset: at as u64,
                    next_valid: next_valid.map(|n| n as u64),
                });
            }
            report.truncated = Some(Truncation {
                file: path.clone(),
                offset: at as u64,
                bytes: (buf.len() - at) as u64,
                dropped_valid_records: next_valid.is_some(),
            });
        }
        let t = Instant::now();
        rules.entries.reserve(frames.count);
        for (at, payload) in frames.iter() {
            let inconsistent = |reason: String| DurableError::Inconsistent {
                file: path.clone(),
                offset: at as u64,
                reason,
            };
            let record =
                Record::decode(payload).ok_or_else(|| inconsistent("unknown record".into()))?;
            apply(&mut rules, &mut id_floor, record).map_err(inconsistent)?;
        }
        report.log_records = frames.count;
        let rules = rules.into_sorted();
        phases.decode += t.elapsed();
        let file = fs::OpenOptions::new().create(true).append(true).open(&path)?;
        if let Some(t) = &report.truncated {
            file.set_len(t.offset)?;
            file.sync_all()?;
        }
        sync_dir(&dir)?;
        // Files of older generations are superseded; a newer log without its snapshot is
        // the empty leftover of a compaction that did not finish.
        for g in logs.into_iter().filter(|&g| g != generation) {
            fs::remove_file(log_path(&dir, g))?;
        }
        if let Some(g) = snapshot_gen {
            for old in 0..g {
                let p = snapshot_path(&dir, old);
                if p.exists() {
                    fs::remove_file(p)?;
                }
            }
        }
        let parser = lenient_parser();
        let registry = options.registry.clone().build();
        let (restored, waiting) =
            parse_and_restore(&rules, &parser, &registry, id_floor).map_err(|(id, text, e)| {
                DurableError::Inconsistent {
                    file: path.clone(),
                    offset: 0,
                    reason: format!("rule {id} ({text:?}) no longer parses: {e}"),
                }
            })?;
        if let Some((id, e)) = restored.refused.into_iter().next() {
            return Err(DurableError::Inconsistent {
                file: path.clone(),
                offset: 0,
                reason: format!("rule {id}: {e}"),
            });
        }
        // Bookkeeping ran while other threads parsed: the time it waited for them is parsing.
        phases.parse = waiting;
        phases.registry = restored.bookkeeping.saturating_sub(waiting);
        phases.compile = restored.compile;
        report.rules = rules.len();
        let names = rules.iter().filter_map(|&(id, s)| Some((id, s?.name?.to_owned()))).collect();
        drop(rules);
        drop(buf);
        drop(snapshot_buf);
        report.phases = phases;
        let inner = Arc::new(Inner {
            registry,
            names: Mutex::new(names),
            state: Mutex::new(LogState {
                dir,
                generation,
                file: Arc::new(file),
                pending: Vec::new(),
                records: report.log_records,
                seq: 0,
                id_floor,
                failed: None,
            }),
            durable_seq: Mutex::new(0),
            durable_cv: Condvar::new(),
            durability: options.durability,
            snapshot_min_records: options.snapshot_min_records,
            parser,
        });
        if let Durability::Group { max_delay } = options.durability {
            let weak = Arc::downgrade(&inner);
            std::thread::Builder::new()
                .name("streamtrack-group-commit".into())
                .spawn(move || group_commit(weak, max_delay))?;
        }
        Ok((DurableRegistry { inner }, report))
    }

    /// The in-memory registry: match with its [`Registry::snapshot`]. Change rules through
    /// this [`DurableRegistry`], not the registry itself, or the change is not stored.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The record that stores `rule`, checked to parse back to the same tree.
    fn stored_text(&self, rule: &Rule) -> Result<String, DurableError> {
        let text = rule.to_string();
        match self.inner.parser.parse(&text, rule.dialect()) {
            Ok(back) if back == *rule => Ok(text),
            _ => Err(DurableError::NotStorable(format!(
                "{text:?} does not parse back to the same rule (a track filter with follow \
                 or locations?)"
            ))),
        }
    }

    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds `rule` for `subscriber` and logs it.
    pub fn subscribe(
        &self,
        subscriber: &str,
        rule: Rule,
        tag: Option<String>,
    ) -> Result<Written<RuleId>, DurableError> {
        self.subscribe_named(subscriber, rule, tag, None)
    }

    /// Like [`DurableRegistry::subscribe`], storing the application's own `name` for the
    /// rule with it (e.g. its id in a rules file; see [`DurableRegistry::name_of`]).
    pub fn subscribe_named(
        &self,
        subscriber: &str,
        rule: Rule,
        tag: Option<String>,
        name: Option<String>,
    ) -> Result<Written<RuleId>, DurableError> {
        let text = self.stored_text(&rule)?;
        let dialect = rule.dialect();
        let mut st = self.lock();
        let id = self.inner.registry.subscribe(subscriber, rule, tag.clone())?;
        if let Some(n) = &name {
            self.names().insert(id.as_u64(), n.clone());
        }
        let record = Record::Subscribe {
            id: id.as_u64(),
            subscriber: subscriber.into(),
            tag,
            name,
            dialect,
            text,
        };
        let receipt = self.log(&mut st, &[record])?;
        Ok(Written { value: id, receipt })
    }

    /// The name stored with a rule by [`DurableRegistry::subscribe_named`].
    pub fn name_of(&self, id: RuleId) -> Option<String> {
        self.names().get(&id.as_u64()).cloned()
    }

    fn names(&self) -> MutexGuard<'_, HashMap<u64, String>> {
        self.inner.names.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds many rules with one publication and one sync; each result says what became of
    /// each rule.
    pub fn subscribe_all(
        &self,
        rules: Vec<NewRule>,
    ) -> Result<Written<Vec<Result<RuleId, DurableError>>>, DurableError> {
        self.subscribe_all_named(rules.into_iter().map(|r| (r, None)).collect())
    }

    /// [`DurableRegistry::subscribe_all`] with a name stored with each rule, as
    /// [`DurableRegistry::subscribe_named`] stores it (a rules file loaded at start: one sync
    /// for the file, not one per rule).
    pub fn subscribe_all_named(
        &self,
        rules: Vec<(NewRule, Option<String>)>,
    ) -> Result<Written<Vec<Result<RuleId, DurableError>>>, DurableError> {
        let mut texts = Vec::with_capacity(rules.len());
        let mut ok = Vec::with_capacity(rules.len());
        let mut names = Vec::with_capacity(rules.len());
        for (r, name) in rules {
            match self.stored_text(&r.rule) {
                Ok(t) => {
                    texts.push(Ok(t));
                    ok.push(r);
                    names.push(name);
                }
                Err(e) => texts.push(Err(e)),
            }
        }
        let mut st = self.lock();
        let meta: Vec<(String, Option<String>, Dialect, Option<String>)> = ok
            .iter()
            .zip(names)
            .map(|(r, name)| (r.subscriber.clone(), r.tag.clone(), r.rule.dialect(), name))
            .collect();
        let mut added = self.inner.registry.subscribe_all(ok).into_iter().zip(meta);
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(texts.len());
        for t in texts {
            results.push(match t {
                Err(e) => Err(e),
                Ok(text) => {
                    let (r, (subscriber, tag, dialect, name)) = added.next().expect("one per rule");
                    match r {
                        Ok(id) => {
                            if let Some(n) = &name {
                                self.names().insert(id.as_u64(), n.clone());
                            }
                            records.push(Record::Subscribe {
                                id: id.as_u64(),
                                subscriber,
                                tag,
                                name,
                                dialect,
                                text,
                            });
                            Ok(id)
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            });
        }
        let receipt = self.log(&mut st, &records)?;
        Ok(Written { value: results, receipt })
    }

    /// Replaces a rule's tree and tag, keeping its id and subscriber, and logs it.
    pub fn replace(
        &self,
        id: RuleId,
        rule: Rule,
        tag: Option<String>,
    ) -> Result<Written<()>, DurableError> {
        let text = self.stored_text(&rule)?;
        let dialect = rule.dialect();
        let mut st = self.lock();
        self.inner.registry.replace(id, rule, tag.clone())?;
        let receipt =
            self.log(&mut st, &[Record::Replace { id: id.as_u64(), tag, dialect, text }])?;
        Ok(Written { value: (), receipt })
    }

    /// Removes a rule and logs it.
    pub fn unsubscribe(&self, id: RuleId) -> Result<Written<()>, DurableError> {
        let mut st = self.lock();
        self.inner.registry.unsubscribe(id)?;
        self.names().remove(&id.as_u64());
        let receipt = self.log(&mut st, &[Record::Unsubscribe { id: id.as_u64() }])?;
        Ok(Written { value: (), receipt })
    }

    /// Removes many rules with one publication and one sync (a rules file replacing the
    /// stored rules); each result says what became of each id.
    pub fn unsubscribe_all(
        &self,
        ids: &[RuleId],
    ) -> Result<Written<Vec<Result<(), DurableError>>>, DurableError> {
        let mut st = self.lock();
        let removed = self.inner.registry.unsubscribe_all(ids.iter().copied());
        let mut records = Vec::new();
        let results = ids
            .iter()
            .zip(removed)
            .map(|(id, r)| {
                r?;
                self.names().remove(&id.as_u64());
                records.push(Record::Unsubscribe { id: id.as_u64() });
                Ok(())
            })
            .collect();
        let receipt = self.log(&mut st, &records)?;
        Ok(Written { value: results, receipt })
    }

    /// Waits until the change behind `receipt` is durable.
    pub fn wait(&self, receipt: Receipt) -> Result<(), DurableError> {
        if receipt.durable {
            return Ok(());
        }
        loop {
            {
                // Never held while taking the writer lock (writers take this one under it).
                let d = self.inner.durable_seq.lock().unwrap_or_else(|e| e.into_inner());
                if *d >= receipt.seq {
                    return Ok(());
                }
                let (d, _) = self
                    .inner
                    .durable_cv
                    .wait_timeout(d, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner());
                if *d >= receipt.seq {
                    return Ok(());
                }
            }
            if let Some(kind) = self.lock().failed {
                return Err(io::Error::new(kind, "a group commit failed").into());
            }
        }
    }

    /// Writes and syncs every pending change now.
    pub fn sync(&self) -> Result<(), DurableError> {
        let mut st = self.lock();
        let seq = st.seq;
        write_pending(&mut st)?;
        st.file.sync_data()?;
        drop(st);
        self.inner.mark_durable(seq);
        Ok(())
    }

    /// Writes a snapshot of every rule and starts a new, empty log (done by itself when the
    /// log grows past [`OpenOptions::snapshot_min_records`]). Writers wait meanwhile;
    /// matching does not.
    pub fn compact(&self) -> Result<(), DurableError> {
        let mut st = self.lock();
        self.compact_locked(&mut st)
    }

    fn compact_locked(&self, st: &mut LogState) -> Result<(), DurableError> {
        write_pending(st)?;
        let next = st.generation + 1;
        let rules = self.inner.registry.snapshot().rules();
        let names = self.names().clone();
        let mut buf = Vec::with_capacity(rules.len() * 64 + 64);
        Record::<&str>::SnapshotHead { id_floor: st.id_floor, rules: rules.len() as u64 }
            .push_framed(&mut buf);
        let mut text = String::new();
        for info in &rules {
            text.clear();
            fmt::write(&mut text, format_args!("{}", info.rule)).expect("a String takes it");
            Record::Subscribe {
                id: info.id.as_u64(),
                subscriber: &*info.subscriber,
                tag: info.tag.as_deref(),
                name: names.get(&info.id.as_u64()).map(String::as_str),
                dialect: info.rule.dialect(),
                text: text.as_str(),
            }
            .push_framed(&mut buf);
        }
        Record::<&str>::SnapshotEnd { rules: rules.len() as u64 }.push_framed(&mut buf);
        let final_path = snapshot_path(&st.dir, next);
        let tmp = final_path.with_extension("tmp");
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        let log = fs::OpenOptions::new().create(true).append(true).open(log_path(&st.dir, next))?;
        log.sync_all()?;
        fs::rename(&tmp, &final_path)?;
        sync_dir(&st.dir)?;
        // From here on, the new generation is the state; the old files are superseded.
        let old = st.generation;
        st.generation = next;
        st.file = Arc::new(log);
        st.records = 0;
        let _ = fs::remove_file(log_path(&st.dir, old));
        let _ = fs::remove_file(snapshot_path(&st.dir, old));
        let seq = st.seq;
        self.inner.mark_durable(seq);
        Ok(())
    }

    /// Logs `records` (already applied to the registry) and makes them durable as the
    /// settings say.
    fn log(&self, st: &mut LogState, records: &[Record<String>]) -> Result<Receipt, DurableError> {
        if let Some(kind) = st.failed.take() {
            return Err(io::Error::new(kind, "an earlier group commit failed").into());
        }
        for r in records {
            if let Some(id) = r.rule_id() {
                st.id_floor = st.id_floor.max(id.as_u64() + 1);
            }
            r.push_framed(&mut st.pending);
        }
        st.records += records.len();
        st.seq += 1;
        let seq = st.seq;
        if st.records >= self.inner.snapshot_min_records && st.records >= self.inner.registry.len()
        {
            self.compact_locked(st)?;
            return Ok(Receipt { seq, durable: true });
        }
        match self.inner.durability {
            Durability::EveryOp => {
                write_pending(st)?;
                st.file.sync_data()?;
                self.inner.mark_durable(seq);
                Ok(Receipt { seq, durable: true })
            }
            Durability::Group { .. } => Ok(Receipt { seq, durable: false }),
        }
    }
}

fn write_pending(st: &mut LogState) -> io::Result<()> {
    if !st.pending.is_empty() {
        (&*st.file).write_all(&st.pending)?;
        st.pending.clear();
    }
    Ok(())
}

impl Inner {
    fn mark_durable(&self, seq: u64) {
        let mut d = self.durable_seq.lock().unwrap_or_else(|e| e.into_inner());
        if *d < seq {
            *d = seq;
            self.durable_cv.notify_all();
        }
    }

    /// Writes what is pending (under the lock: a write to the page cache) and syncs it
    /// (outside the lock, so writers keep going meanwhile).
    fn flush(&self) {
        let (file, seq) = {
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if st.pending.is_empty() {
                return;
            }
            if let Err(e) = write_pending(&mut st) {
                st.failed = Some(e.kind());
                return;
            }
            (st.file.clone(), st.seq)
        };
        match file.sync_data() {
            Ok(()) => self.mark_durable(seq),
            Err(e) => self.state.lock().unwrap_or_else(|e| e.into_inner()).failed = Some(e.kind()),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.flush();
    }
}

fn group_commit(weak: Weak<Inner>, max_delay: Duration) {
    loop {
        std::thread::sleep(max_delay);
        let Some(inner) = weak.upgrade() else { return };
        inner.flush();
    }
}
