//! `streamtrack run`: the streaming engine over JSON Lines, every subscriber's deliveries on
//! standard output (or one file per subscriber with `--out-dir`).
//!
//! Output: one JSON object per line, each with a leading `"subscriber"` field so that one
//! stream carries every subscriber:
//!
//! ```text
//! {"subscriber":"alice","id":"1","text":"…","matching_rules":[{"id":"r1","tag":"t"}]}
//! {"subscriber":"bob","limit":{"track":3}}
//! ```
//!
//! A match echoes the input object (unknown fields included) plus `matching_rules` with the
//! ids of the rules file. Limit notices, stall warnings and disconnects are written as well;
//! the routine disconnect every subscriber gets at the end of the input (code 5) is left out
//! unless `--disconnects` is given.
//!
//! Faults (issue 23): a first SIGINT/SIGTERM stops reading and drains (at most
//! `--shutdown-timeout`), a second one ends the process at once; the first output error stops
//! the run and is reported once; the exit status says whether anything was lost
//! ([`EXIT_HELP`]).

use crate::format::group;
use crate::format::DialectArg;
use crate::state::IdMap;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use streamtrack::analytics::{AnalyticsConfig, AnalyticsEvent, BurstEvent, SeriesKey};
use streamtrack::engine::jsonl::JsonLinesSource;
use streamtrack::engine::{
    Delivery, DisconnectCode, Engine, EngineEvent, EngineStats, FullPolicy, Sink, SinkError,
    Source, SourceError, SourceErrorKind, SourceStatus, StopReason, SubscriberConfig,
    POLL_INTERVAL,
};
use streamtrack::read::BadLines;
use streamtrack::registry::{NewRule, Registry, RegistryError, RuleId};
use streamtrack::Message;

/// The exit statuses, shown by `run --help` (README, "streamtrack run", says the same).
pub const EXIT_HELP: &str = concat!(
    crate::input_help!(),
    "\n\
Exit status:
  0    the input ended (or a first SIGINT/SIGTERM stopped the run) and every delivery was
       written; drops chosen by a drop policy or --rate-limit are reported as limit notices
       and do not count as lost
  1    the input could not be read, or (with --strict) a line was bad
  2    invalid arguments or rules
  3    deliveries were lost: --drain-timeout or --shutdown-timeout ran out with deliveries
       not yet written (the summary says how many)
  4    writing the output failed (e.g. a full disk); reported once, the run stops
  141  the reader of the output went away (`run | head`): the run stops quietly and ends
       killed by SIGPIPE, as grep does
  130/143  a second SIGINT/SIGTERM during the drain: the process ends at once, killed by
       that signal (lines still queued are lost)"
);

/// How long "no timeout" is: a century, well within what `Instant` can add on every platform.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Exit status: deliveries were lost (drain or shutdown timeout).
const EXIT_LOST: u8 = 3;
/// Exit status: writing the output failed.
const EXIT_OUTPUT: u8 = 4;
#[derive(Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    /// Wait for the output (nothing is dropped; the input is read at the output's pace).
    Block,
    /// Drop new matches for a subscriber whose queue is full (reported as limit notices).
    DropNewest,
    /// Drop a subscriber's oldest queued matches (reported as limit notices).
    DropOldest,
    /// Disconnect a subscriber whose queue is full (code 4).
    Disconnect,
}

impl PolicyArg {
    fn name(self) -> &'static str {
        match self {
            PolicyArg::Block => "block",
            PolicyArg::DropNewest => "drop-newest",
            PolicyArg::DropOldest => "drop-oldest",
            PolicyArg::Disconnect => "disconnect",
        }
    }
}

#[derive(Args)]
#[command(after_help = EXIT_HELP)]
pub struct RunArgs {
    /// Rules, one JSON object per line:
    /// {"id": …, "value": …, "tag": …, "subscriber": …, "dialect": "track"|"rule"}.
    /// Rules without a subscriber are each their own subscriber, named after the rule id.
    /// Optional with `--state`.
    #[arg(long, required_unless_present = "state")]
    rules: Option<PathBuf>,
    /// Keep the rules in DIR (created if missing): the rules of `--rules` are stored there,
    /// and a later start with the same DIR and no `--rules` resumes with them.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Dialect of rules that do not name one.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
    /// Matcher threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Matches each subscriber's queue holds.
    #[arg(long, default_value_t = 10_000)]
    queue: usize,
    /// What happens to a subscriber whose queue is full. `block` (the default) loses nothing:
    /// a slow output slows the reading down.
    #[arg(long, value_enum, default_value = "block")]
    policy: PolicyArg,
    /// Most matches per second delivered to each subscriber (the rest: limit notices).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// At the end of the input, wait at most SECS for the output to take what is queued;
    /// what it did not take is lost (exit status 3). Default: no limit under `block`, 10 s
    /// under the other policies.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    drain_timeout: Option<Duration>,
    /// After a first SIGINT/SIGTERM (reading stops), wait at most SECS for the output to take
    /// what was read; then exit with status 3 if anything is left. A second signal ends the
    /// process at once.
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "10")]
    shutdown_timeout: Duration,
    /// Flush after every line (on by default when standard output is a terminal); without
    /// it, lines are still flushed whenever a subscriber's queue runs empty, so a live input
    /// shows its deliveries at once.
    #[arg(long)]
    line_buffered: bool,
    /// Write each subscriber's deliveries to a file of its own in DIR (created if missing),
    /// `NAME.jsonl` with NAME escaped: bytes other than ASCII letters, digits, `-`, `_` and
    /// a `.` that does not come first as `%XX`; `~2`, `~3`… added where names would differ
    /// only in case; names longer than 200 bytes shortened and ended with `~` and a hash.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Also write the disconnect notice each subscriber gets at the end of the input.
    #[arg(long)]
    disconnects: bool,
    /// Run the analytics stage: each match carries `"reaction": {"compound", "pos", "neu",
    /// "neg", "label"}`, and burst starts and ends of a subscriber's rules (and of the
    /// subscriber) are written to its output as `{"subscriber": …, "burst": {…}}`.
    #[arg(long)]
    analytics: bool,
    /// No progress bar and no summary on standard error.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    bad_lines: crate::format::BadLineArgs,
    /// Messages, one per line: JSON (any line starting with `{`) or plain text (id: the line
    /// number); standard input when omitted or `-`.
    input: Option<PathBuf>,
}

/// `--drain-timeout 2.5`: seconds, finite and not negative.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|d| *d < FOREVER)
        .ok_or_else(|| format!("{s:?}: expected seconds from 0 to 3e9"))
}

// ---------------------------------------------------------------------------------------------
// Output.

/// The first output failure; every sink stops writing once there is one (one report, not one
/// per subscriber or per line).
#[derive(Default)]
struct OutputState {
    failed: AtomicBool,
    error: Mutex<Option<io::Error>>,
}

impl OutputState {
    fn fail(&self, e: io::Error) -> SinkError {
        let message = e.to_string();
        let mut first = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(e);
        }
        self.failed.store(true, Ordering::SeqCst);
        SinkError::new(message)
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// The first error, if any: (whether the reader went away, the message).
    fn error(&self) -> Option<(bool, String)> {
        let e = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        e.as_ref().map(|e| (e.kind() == io::ErrorKind::BrokenPipe, e.to_string()))
    }
}

/// Standard output, shared by every subscriber's sink (each line is written whole).
type Stdout = Arc<Mutex<BufWriter<io::Stdout>>>;

/// Where one subscriber's lines go.
enum Target {
    Stdout(Stdout),
    File(FileOut),
}

/// How many per-subscriber files stay open between writes; beyond that a file is opened,
/// appended to and closed at each flush (10,000 subscribers must not exhaust descriptors).
const OPEN_FILES: usize = 128;

/// One subscriber's file under `--out-dir`: lines are buffered here and appended at each
/// flush (when the subscriber's queue runs empty, or at 64 KiB).
struct FileOut {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
    open_slots: Arc<AtomicUsize>,
    holds_slot: bool,
}

impl FileOut {
    fn write_out(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let mut file = match self.file.take() {
            Some(f) => f,
            None => std::fs::OpenOptions::new().append(true).open(&self.path)?,
        };
        let written = file.write_all(&self.buf);
        self.buf.clear();
        if !self.holds_slot {
            self.holds_slot = self
                .open_slots
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        }
        if self.holds_slot {
            self.file = Some(file);
        }
        written
    }
}

impl Drop for FileOut {
    fn drop(&mut self) {
        if self.holds_slot {
            self.open_slots.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// One subscriber's stream, written to the shared standard output or to its own file.
struct RunSink {
    subscriber: String,
    ids: Arc<IdMap>,
    target: Target,
    state: Arc<OutputState>,
    disconnects: bool,
    line_buffered: bool,
    line: Vec<u8>,
}

impl RunSink {
    fn object(&self, delivery: &Delivery) -> Option<Map<String, Value>> {
        if !self.disconnects && streamtrack_nats::is_normal_end(delivery) {
            return None;
        }
        Some(streamtrack_nats::delivery_object(&self.subscriber, delivery, |id| {
            self.ids.get(&id).cloned()
        }))
    }

    /// Once the output has failed, nothing more is written (the engine disconnects this
    /// subscriber; the failure is reported once, at the end).
    fn check(&self) -> Result<(), SinkError> {
        if self.state.failed() {
            return Err(SinkError::new("the output failed"));
        }
        Ok(())
    }
}

impl Sink for RunSink {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        self.check()?;
        let Some(o) = self.object(&delivery) else { return Ok(()) };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &o).map_err(|e| SinkError::new(e.to_string()))?;
        self.line.push(b'\n');
        let result = match &mut self.target {
            Target::Stdout(out) => {
                let mut w = out.lock().unwrap_or_else(PoisonError::into_inner);
                w.write_all(&self.line).and_then(|()| match self.line_buffered {
                    true => w.flush(),
                    false => Ok(()),
                })
            }
            Target::File(f) => {
                f.buf.extend_from_slice(&self.line);
                match self.line_buffered || f.buf.len() >= 1 << 16 {
                    true => f.write_out(),
                    false => Ok(()),
                }
            }
        };
        result.map_err(|e| self.state.fail(e))
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        self.check()?;
        let result = match &mut self.target {
            Target::Stdout(out) => out.lock().unwrap_or_else(PoisonError::into_inner).flush(),
            Target::File(f) => f.write_out(),
        };
        result.map_err(|e| self.state.fail(e))
    }
}

/// The file name (without `.jsonl`) of each subscriber under `--out-dir`, in order: escaped
/// so that no name leaves the directory, is hidden or holds a separator, and distinct even
/// on a file system that folds case (see `--out-dir`).
fn file_names(subscribers: &[String]) -> Vec<String> {
    let mut taken = HashSet::new();
    subscribers
        .iter()
        .map(|s| {
            let base = escape_file_name(s);
            let mut name = base.clone();
            let mut n = 1;
            // `~` is always escaped in `base`, so a suffixed name collides with no other.
            while !taken.insert(name.to_lowercase()) {
                n += 1;
                name = format!("{base}~{n}");
            }
            name
        })
        .collect()
}

/// The longest escaped name kept whole (file names are limited to 255 bytes).
const MAX_NAME: usize = 200;

fn escape_file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for (i, b) in name.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        return "~".into();
    }
    if out.len() > MAX_NAME {
        // Cut before an escape it would split, and tell long names apart by a hash of the
        // whole name (FNV-1a: stable across builds, so reruns write the same files).
        let mut cut = MAX_NAME - 20;
        while out[..cut].rfind('%').is_some_and(|p| p + 3 > cut) {
            cut -= 1;
        }
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        out.truncate(cut);
        out.push_str(&format!("~{hash:016x}"));
    }
    out
}

/// Creates `dir` and an empty file per subscriber (so a subscriber with no deliveries has an
/// empty file, not a stale one from an earlier run); the paths, in order.
fn create_files(dir: &Path, subscribers: &[String]) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    file_names(subscribers)
        .into_iter()
        .map(|name| {
            let path = dir.join(format!("{name}.jsonl"));
            File::create(&path)?;
            Ok(path)
        })
        .collect()
}

/// Whether standard output is a terminal (lines flushed one by one).
fn stdout_is_terminal() -> bool {
    io::stdout().is_terminal()
}

/// Flushes standard output from a helper thread, waiting at most `limit` (a stalled reader
/// must not hold up an exit that was asked for). Skipped if a sink holds the lock.
fn flush_briefly(out: &Option<Stdout>, limit: Duration) {
    let Some(out) = out.clone() else { return };
    let (tx, rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new().spawn(move || {
        if let Ok(mut w) = out.try_lock() {
            let _ = w.flush();
        }
        let _ = tx.send(());
    });
    if spawned.is_ok() {
        let _ = rx.recv_timeout(limit);
    }
}

// ---------------------------------------------------------------------------------------------
// Signals.

/// The first SIGINT/SIGTERM received (0: none yet). The second ends the process at once,
/// killed by that signal (status 130/143 in a shell), after a brief flush of standard output.
#[cfg(unix)]
fn watch_signals(out: Option<Stdout>) -> io::Result<Arc<AtomicI32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let first = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let seen = first.clone();
    std::thread::Builder::new().name("streamtrack-signals".into()).spawn(move || {
        for sig in signals.forever() {
            if seen.compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                continue;
            }
            eprintln!(
                "streamtrack run: second {}: stopping at once; deliveries not yet written are lost",
                signal_name(sig)
            );
            flush_briefly(&out, Duration::from_millis(200));
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            std::process::exit(128 + sig);
        }
    })?;
    Ok(first)
}

#[cfg(not(unix))]
fn watch_signals(_out: Option<Stdout>) -> io::Result<Arc<AtomicI32>> {
    Ok(Arc::new(AtomicI32::new(0)))
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        2 => "SIGINT",
        15 => "SIGTERM",
        _ => "signal",
    }
}

/// Ends the process the way grep does when its reader goes away: killed by SIGPIPE (status
/// 141 in a shell). Rust ignores SIGPIPE, so the write failed with EPIPE instead.
fn exit_broken_pipe() -> ExitCode {
    let _ = io::stderr().flush();
    #[cfg(unix)]
    {
        let _ = signal_hook::low_level::emulate_default_handler(signal_hook::consts::SIGPIPE);
    }
    ExitCode::from(141)
}

// ---------------------------------------------------------------------------------------------
// Reading that a shutdown does not wait for.

/// Reads a source whose reads may block indefinitely (standard input, a FIFO) on a thread of
/// its own, handing the engine a batch at a time and an empty batch every
/// [`POLL_INTERVAL`] while nothing comes: so a shutdown request does not wait for the next
/// input line (the engine only notices it between reads). The reader thread is left blocked
/// when the engine stops; the process exits soon after.
struct ReadAhead {
    rx: crossbeam_channel::Receiver<(Vec<Message>, Result<SourceStatus, SourceError>)>,
    max: Arc<AtomicUsize>,
    ended: bool,
}

impl ReadAhead {
    fn new(mut inner: Box<dyn Source>) -> io::Result<Self> {
        // One batch waiting, one being read: the read-ahead stays small.
        let (tx, rx) = crossbeam_channel::bounded(1);
        let max = Arc::new(AtomicUsize::new(256));
        let want = max.clone();
        std::thread::Builder::new().name("streamtrack-input".into()).spawn(move || loop {
            let mut batch = Vec::new();
            let n = want.load(Ordering::Relaxed).max(1);
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inner.next_batch(&mut batch, n)
            }))
            .unwrap_or_else(|_| Err(SourceError::fatal("the input reader panicked")));
            let last = match &read {
                Ok(status) => *status == SourceStatus::Ended,
                Err(e) => e.is_fatal(),
            };
            if tx.send((batch, read)).is_err() || last {
                return;
            }
        })?;
        Ok(ReadAhead { rx, max, ended: false })
    }
}

impl Source for ReadAhead {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        if self.ended {
            return Ok(SourceStatus::Ended);
        }
        self.max.store(max, Ordering::Relaxed);
        match self.rx.recv_timeout(POLL_INTERVAL) {
            Ok((mut batch, read)) => {
                out.append(&mut batch);
                self.ended = match &read {
                    Ok(status) => *status == SourceStatus::Ended,
                    Err(e) => e.is_fatal(),
                };
                read
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => Ok(SourceStatus::Open),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                self.ended = true;
                Err(SourceError::fatal("the input reader stopped"))
            }
        }
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

/// Whether reading the input may block indefinitely (anything but a regular file).
fn input_may_block(input: &Option<PathBuf>) -> bool {
    match input {
        Some(p) if p.as_os_str() != "-" => !std::fs::metadata(p).is_ok_and(|m| m.is_file()),
        _ => !stdin_is_file(),
    }
}

#[cfg(unix)]
fn stdin_is_file() -> bool {
    use std::os::fd::AsFd;
    io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map(File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.is_file())
}

#[cfg(not(unix))]
fn stdin_is_file() -> bool {
    false
}

// ---------------------------------------------------------------------------------------------

fn policy(p: PolicyArg) -> FullPolicy {
    match p {
        PolicyArg::Block => FullPolicy::Block,
        PolicyArg::DropNewest => FullPolicy::DropNewest,
        PolicyArg::DropOldest => FullPolicy::DropOldest,
        PolicyArg::Disconnect => FullPolicy::Disconnect,
    }
}

pub fn run(args: RunArgs) -> ExitCode {
    if let Some(dir) = &args.state {
        let starting = StartProgress::new(args.quiet, Instant::now());
        return match crate::state::load(dir, args.rules.as_deref(), args.dialect.into()) {
            Ok((registry, ids, subscribers)) => start(args, registry, ids, subscribers, starting),
            Err(code) => code,
        };
    }
    let rules_path = args.rules.clone().expect("clap requires --rules without --state");
    let mut starting = StartProgress::new(args.quiet, Instant::now());
    let entries = match crate::format::load_rules_with_progress(
        &rules_path,
        args.dialect.into(),
        &mut |done, total| starting.count(Instant::now(), "read", done, total, " bytes"),
    ) {
        Ok(e) => e,
        Err(code) => return code,
    };
    starting.phase(Instant::now(), &format!("subscribing {} rules", group(entries.len() as u64)));
    let registry = Registry::new();
    // One batch: a single publication and one layer for the whole file (subscribing rule by
    // rule published and merged layers as it went: 2.7 s for 100k rules, 28 s for 1M).
    let results = registry.subscribe_all(entries.iter().map(|e| NewRule {
        subscriber: e.subscriber.clone().unwrap_or_else(|| e.id.clone()),
        rule: e.rule.clone(),
        tag: e.tag.clone(),
    }));
    let mut ids = IdMap::with_capacity_and_hasher(results.len(), Default::default());
    let mut subscribers: Vec<String> = Vec::new();
    let mut seen: HashSet<&str, foldhash::fast::RandomState> =
        HashSet::with_capacity_and_hasher(results.len(), Default::default());
    for (e, result) in entries.iter().zip(results) {
        let subscriber = e.subscriber.as_deref().unwrap_or(&e.id);
        match result {
            Ok(id) => {
                if seen.insert(subscriber) {
                    subscribers.push(subscriber.to_owned());
                }
                ids.insert(id, e.id.clone());
            }
            Err(RegistryError::Duplicate { existing }) => eprintln!(
                "warning: {}: rule {} (id {:?}) repeats rule id {:?} of subscriber {subscriber:?}; skipped",
                rules_path.display(),
                e.line,
                e.id,
                ids.get(&existing).map_or("?", String::as_str),
            ),
            Err(err) => {
                eprintln!("error: {}: rule {}: {err}", rules_path.display(), e.line);
                return ExitCode::from(2);
            }
        }
    }
    drop(seen);
    drop(entries);
    start(args, registry, ids, subscribers, starting)
}

/// Says on standard error what a long start-up is doing: nothing during the first second (a
/// quick start stays silent) nor with `--quiet`, then a line when a phase begins and the
/// counts within a phase at most once a second, e.g.
/// `loading rules: attached 400,000 of 1,000,000 subscribers`.
pub(crate) struct StartProgress {
    quiet: bool,
    start: Instant,
    /// When the last line was written (`None`: none yet).
    last: Option<Instant>,
}

impl StartProgress {
    /// How long a start-up stays silent, and the least time between two count lines.
    const EVERY: Duration = Duration::from_secs(1);

    pub(crate) fn new(quiet: bool, start: Instant) -> Self {
        StartProgress { quiet, start, last: None }
    }

    /// The line announcing a phase, when one is due at `now`.
    fn phase_line(&mut self, now: Instant, what: &str) -> Option<String> {
        if self.quiet || now.saturating_duration_since(self.start) < Self::EVERY {
            return None;
        }
        self.last = Some(now);
        Some(format!("loading rules: {what}"))
    }

    /// The line giving a count, when one is due at `now`.
    fn count_line(
        &mut self,
        now: Instant,
        what: &str,
        done: u64,
        total: u64,
        unit: &str,
    ) -> Option<String> {
        if self.last.is_some_and(|l| now.saturating_duration_since(l) < Self::EVERY) {
            return None;
        }
        self.phase_line(now, &format!("{what} {} of {}{unit}", group(done), group(total)))
    }

    fn phase(&mut self, now: Instant, what: &str) {
        if let Some(line) = self.phase_line(now, what) {
            eprintln!("{line}");
        }
    }

    fn count(&mut self, now: Instant, what: &str, done: u64, total: u64, unit: &str) {
        if let Some(line) = self.count_line(now, what, done, total, unit) {
            eprintln!("{line}");
        }
    }

    /// After the engine started: how long it took, if anything was said.
    fn done(&self, now: Instant) {
        if self.last.is_some() {
            let secs = now.saturating_duration_since(self.start).as_secs_f64();
            eprintln!("loading rules: started in {secs:.1} s");
        }
    }
}

/// Opens the input and runs the engine over `registry`.
fn start(
    args: RunArgs,
    registry: Registry,
    ids: IdMap,
    subscribers: Vec<String>,
    starting: StartProgress,
) -> ExitCode {
    let input = match crate::format::open_input(args.input.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let bad = BadLines::to_stderr(input.name.clone());
    let source = JsonLinesSource::new(input.reader).report_bad_lines(bad.clone());
    let bytes = input.len.map(|_| source.bytes_read());
    run_engine(args, registry, ids, subscribers, Box::new(source), input.len, bytes, bad, starting)
}

/// Deliveries lost: matches still queued (or being written) and those dropped when a stream
/// was closed with them queued (drain timeout, failed output). Drops by the chosen policy or
/// rate cap are not counted: the subscriber was told about them in limit notices. The
/// per-subscriber figures keep the last 10,000 streams; with more subscribers, under `block`
/// without a rate cap, every drop is a loss and the engine's total is used.
fn lost(stats: &EngineStats, subscribers: usize, every_drop_is_lost: bool) -> u64 {
    let listed: u64 = stats.subscribers.iter().map(|s| s.queued + s.dropped_closed).sum();
    if every_drop_is_lost && stats.subscribers.len() < subscribers {
        listed.max(stats.dropped)
    } else {
        listed
    }
}

/// Writes burst starts and ends (`--analytics`) to the output of the subscriber they concern:
/// `{"subscriber":"alice","burst":{"event":"start","series":"rule","id":"r1",
/// "resolution_ms":1000,"bucket_start_ms":…,"score":…}}` (`series` is `rule` or
/// `subscriber`). Under `--out-dir` the line is appended to the subscriber's file at once, so
/// it may precede deliveries still buffered for it.
struct BurstWriter {
    stdout: Option<Stdout>,
    files: HashMap<String, PathBuf>,
    ids: Arc<IdMap>,
    state: Arc<OutputState>,
}

impl BurstWriter {
    fn write(&self, subscriber: &str, e: &AnalyticsEvent) {
        if self.state.failed() {
            return;
        }
        let id = match &e.key {
            SeriesKey::Rule(n) => n
                .parse::<u64>()
                .ok()
                .and_then(|n| self.ids.get(&RuleId::from_u64(n)).cloned())
                .unwrap_or_else(|| n.to_string()),
            other => other.name().to_string(),
        };
        let res =
            AnalyticsConfig::default().resolutions.get(e.event.resolution).map(|r| r.bucket_ms);
        let line = serde_json::json!({
            "subscriber": subscriber,
            "burst": {
                "event": match e.event.kind { BurstEvent::Start => "start", BurstEvent::End => "end" },
                "series": e.key.kind(),
                "id": id,
                "resolution_ms": res,
                "bucket_start_ms": e.event.bucket_start_ms,
                "score": (e.event.score * 1000.0).round() / 1000.0,
            }
        });
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let result = match (&self.stdout, self.files.get(subscriber)) {
            (Some(out), _) => out.lock().unwrap_or_else(PoisonError::into_inner).write_all(&bytes),
            (None, Some(path)) => std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(&bytes)),
            (None, None) => Ok(()),
        };
        if let Err(e) = result {
            let _ = self.state.fail(e);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_engine(
    args: RunArgs,
    registry: Registry,
    ids: IdMap,
    subscribers: Vec<String>,
    source: Box<dyn Source>,
    total_bytes: Option<u64>,
    bytes_read: Option<Arc<AtomicU64>>,
    bad: BadLines,
    mut starting: StartProgress,
) -> ExitCode {
    let ids = Arc::new(ids);
    let state = Arc::new(OutputState::default());
    let (stdout, files): (Option<Stdout>, Vec<PathBuf>) = match &args.out_dir {
        None => {
            (Some(Arc::new(Mutex::new(BufWriter::with_capacity(1 << 16, io::stdout())))), vec![])
        }
        Some(dir) => match create_files(dir, &subscribers) {
            Ok(paths) => (None, paths),
            Err(e) => {
                eprintln!("error: cannot create the output files in {}: {e}", dir.display());
                return ExitCode::from(EXIT_OUTPUT);
            }
        },
    };
    let line_buffered = args.line_buffered || (stdout.is_some() && stdout_is_terminal());
    let config = SubscriberConfig::new()
        .capacity(args.queue)
        .policy(policy(args.policy))
        .rate_limit(args.rate_limit);
    let every_drop_is_lost = matches!(args.policy, PolicyArg::Block) && args.rate_limit.is_none();
    let source: Box<dyn Source> = if input_may_block(&args.input) && !source.wants_acks() {
        match ReadAhead::new(source) {
            Ok(s) => Box::new(s),
            Err(e) => {
                eprintln!("error: cannot start the input reader: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        source
    };
    let progress = match (total_bytes, &bytes_read) {
        (Some(len), Some(_)) if !args.quiet && io::stderr().is_terminal() => {
            let bar = ProgressBar::new(len);
            let style = ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {elapsed_precise} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Some(bar)
        }
        _ => None,
    };
    let say = {
        let bar = progress.clone();
        move |line: &str| match &bar {
            Some(b) => b.println(line),
            None => eprintln!("{line}"),
        }
    };
    let bursts = BurstWriter {
        stdout: stdout.clone(),
        files: subscribers.iter().cloned().zip(files.iter().cloned()).collect(),
        ids: ids.clone(),
        state: state.clone(),
    };
    let printer = {
        let say = say.clone();
        let state = state.clone();
        move |event: &EngineEvent| {
            let line = match event {
                EngineEvent::Burst { subscriber, event } => {
                    bursts.write(subscriber, event);
                    return;
                }
                // Bad lines are reported by the source itself (`BadLines`, as in `match`).
                EngineEvent::Source(e) if e.kind == SourceErrorKind::Malformed => return,
                EngineEvent::Source(e) => format!("input {e}"),
                // Reported once, at the end.
                EngineEvent::SinkFailed { .. } if state.failed() => return,
                EngineEvent::SinkFailed { subscriber, error } => {
                    format!("subscriber {subscriber:?}: output failed: {error}")
                }
                EngineEvent::Disconnected { subscriber, code, reason }
                    if *code == DisconnectCode::STALL =>
                {
                    format!("subscriber {subscriber:?} disconnected (code {}): {reason}", code.0)
                }
                _ => return,
            };
            say(&line);
        }
    };
    let drain = args.drain_timeout.unwrap_or(match args.policy {
        PolicyArg::Block => FOREVER,
        _ => Duration::from_secs(10),
    });
    let mut builder = Engine::builder(registry)
        .on_event(printer)
        .subscriber_defaults(config)
        .drain_timeout(drain);
    if let Some(t) = args.threads {
        builder = builder.matcher_threads(t);
    }
    if args.analytics {
        builder = builder.analytics(AnalyticsConfig::default());
    }
    let open_slots = Arc::new(AtomicUsize::new(OPEN_FILES));
    let total = subscribers.len() as u64;
    starting.phase(Instant::now(), &format!("attaching {} subscribers", group(total)));
    for (i, s) in subscribers.iter().enumerate() {
        if i % 4096 == 4095 {
            starting.count(Instant::now(), "attached", i as u64 + 1, total, " subscribers");
        }
        let target = match (&stdout, files.get(i)) {
            (Some(out), _) => Target::Stdout(out.clone()),
            (None, Some(path)) => Target::File(FileOut {
                path: path.clone(),
                file: None,
                buf: Vec::new(),
                open_slots: open_slots.clone(),
                holds_slot: false,
            }),
            (None, None) => unreachable!("one file per subscriber"),
        };
        builder = builder.attach(
            s,
            RunSink {
                subscriber: s.clone(),
                ids: ids.clone(),
                target,
                state: state.clone(),
                disconnects: args.disconnects,
                line_buffered,
                line: Vec::new(),
            },
        );
    }
    let first_signal = watch_signals(stdout.clone()).unwrap_or_else(|e| {
        eprintln!("warning: SIGINT/SIGTERM will end the run at once: {e}");
        Arc::new(AtomicI32::new(0))
    });
    starting.phase(Instant::now(), "starting the engine");
    let start = Instant::now();
    let engine = match builder.start(source) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    starting.done(Instant::now());
    let mut signalled: Option<(i32, Instant)> = None;
    let mut stopped_for_output = false;
    while engine.is_running() {
        std::thread::sleep(Duration::from_millis(20));
        if state.failed() && !stopped_for_output {
            // A full disk, or the reader went away (e.g. `| head`): stop.
            stopped_for_output = true;
            engine.request_shutdown();
        }
        let sig = first_signal.load(Ordering::SeqCst);
        if sig != 0 && signalled.is_none() {
            engine.request_shutdown();
            signalled = Some((sig, Instant::now() + args.shutdown_timeout));
            if !args.quiet {
                say(&format!(
                    "streamtrack run: {}: reading stopped; writing out what was read (at most \
                     {:.1} s; a second signal stops at once)",
                    signal_name(sig),
                    args.shutdown_timeout.as_secs_f64()
                ));
            }
        }
        if let Some((sig, deadline)) = signalled {
            if Instant::now() >= deadline {
                // The output takes nothing (a stalled reader under `block`): give up.
                let s = engine.stats();
                if let Some(bar) = &progress {
                    bar.finish_and_clear();
                }
                flush_briefly(&stdout, Duration::from_millis(200));
                let lost = lost(&s, subscribers.len(), every_drop_is_lost);
                // Read but not yet matched: their deliveries, if any, are lost too.
                let unmatched = s.received.saturating_sub(s.processed);
                if !args.quiet {
                    summary(&args, &s, subscribers.len(), lost, start, Some(sig));
                }
                if lost == 0 && unmatched == 0 {
                    // Only the end of the streams was not reached (e.g. a stuck source).
                    eprintln!("streamtrack run: the shutdown timeout ran out; nothing was lost");
                    std::process::exit(0);
                }
                eprintln!(
                    "error: {} deliveries (and {} messages read) not written within the \
                     shutdown timeout ({:.1} s)",
                    group(lost),
                    group(unmatched),
                    args.shutdown_timeout.as_secs_f64()
                );
                std::process::exit(i32::from(EXIT_LOST));
            }
        }
        if let (Some(bar), Some(bytes)) = (&progress, &bytes_read) {
            let s = engine.stats();
            bar.set_position(bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{} msgs, {} matched", group(s.received), group(s.matched)));
        }
    }
    let finished = engine.join();
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    if let Some(out) = &stdout {
        if !state.failed() {
            if let Err(e) = out.lock().unwrap_or_else(PoisonError::into_inner).flush() {
                state.fail(e);
            }
        }
    }
    let lost = lost(&finished.stats, subscribers.len(), every_drop_is_lost);
    let error = state.error();
    if let Some((true, _)) = error {
        // The reader went away (`| head`): end quietly, no summary, as grep does.
        return exit_broken_pipe();
    }
    if !args.quiet {
        if let Some(line) = bad.summary(finished.stats.received + bad.count()) {
            eprintln!("{line}");
        }
        summary(&args, &finished.stats, subscribers.len(), lost, start, signalled.map(|s| s.0));
    }
    if let Some((_, error)) = error {
        eprintln!("error: writing the output: {error}; the run was stopped");
        return ExitCode::from(EXIT_OUTPUT);
    }
    if let StopReason::SourceFailed(e) = &finished.reason {
        eprintln!("error: reading input: {e}");
        return ExitCode::from(1);
    }
    if lost > 0 {
        eprintln!(
            "error: {} deliveries lost: the output did not take them within the drain timeout",
            group(lost)
        );
        return ExitCode::from(EXIT_LOST);
    }
    if args.bad_lines.strict && bad.count() > 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// The summary line on standard error: what was read, matched and delivered, the policy and
/// what was dropped by it or lost.
fn summary(
    args: &RunArgs,
    s: &EngineStats,
    subscribers: usize,
    lost: u64,
    start: Instant,
    signal: Option<i32>,
) {
    let secs = start.elapsed().as_secs_f64();
    let stopped = signal.map_or(String::new(), |sig| format!(", stopped by {}", signal_name(sig)));
    let gone = if s.unrouted > 0 {
        format!(", {} for subscribers already disconnected", group(s.unrouted))
    } else {
        String::new()
    };
    let by_policy: u64 = s.subscribers.iter().map(|x| x.dropped_full + x.dropped_rate).sum();
    eprintln!(
        "streamtrack run: {} messages read in {secs:.2} s ({} msgs/s){stopped}; {} \
         matched; {} deliveries to {} subscribers; policy {}: {} dropped by it or the rate \
         cap, {} lost{gone}",
        group(s.received),
        group((s.received as f64 / secs.max(1e-9)) as u64),
        group(s.matched),
        group(s.delivered),
        group(subscribers as u64),
        args.policy.name(),
        group(by_policy),
        group(lost),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_in_the_directory_and_are_distinct() {
        let names: Vec<String> =
            ["alice", "Alice", "../x", "a/b", ".", "..", "", "~", "%41", "A", "a", "caf\u{e9}"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        let files = file_names(&names);
        let folded: HashSet<String> = files.iter().map(|f| f.to_lowercase()).collect();
        assert_eq!(folded.len(), names.len(), "{files:?}");
        for f in &files {
            assert!(!f.is_empty() && !f.starts_with('.') && !f.contains('/'), "{f:?}");
            assert!(f.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'), "{f:?}");
        }
        assert_eq!(files[0], "alice");
        assert_eq!(files[1], "Alice~2");
        assert_eq!(files[2], "%2E.%2Fx");
        assert_eq!(files[11], "caf%C3%A9");
    }

    #[test]
    fn long_names_are_shortened_and_told_apart() {
        let a = format!("{}a", "\u{e9}".repeat(200));
        let b = format!("{}b", "\u{e9}".repeat(200));
        let files = file_names(&[a, b]);
        assert_ne!(files[0], files[1]);
        for f in &files {
            assert!(f.len() <= MAX_NAME, "{}", f.len());
            // No escape was cut in two.
            let stem = f.split('~').next().unwrap();
            assert!(stem.rfind('%').is_none_or(|p| p + 3 <= stem.len()), "{f}");
        }
    }

    #[test]
    fn start_up_progress_waits_a_second_then_says_at_most_a_line_a_second() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut p = StartProgress::new(false, t0);
        // A start-up shorter than a second says nothing.
        assert_eq!(p.count_line(at(10), "read", 1, 4, " bytes"), None);
        assert_eq!(p.phase_line(at(999), "subscribing 4 rules"), None);
        assert_eq!(
            p.count_line(at(1000), "read", 2_000, 4_000_000, " bytes").as_deref(),
            Some("loading rules: read 2,000 of 4,000,000 bytes")
        );
        // Counts: at most one a second.
        assert_eq!(p.count_line(at(1999), "read", 3, 4, " bytes"), None);
        assert_eq!(
            p.count_line(at(2000), "attached", 400_000, 1_000_000, " subscribers").as_deref(),
            Some("loading rules: attached 400,000 of 1,000,000 subscribers")
        );
        // A phase is announced whenever it begins (after the first second).
        assert_eq!(
            p.phase_line(at(2001), "starting the engine").as_deref(),
            Some("loading rules: starting the engine")
        );
        // ... and counts as the last line.
        assert_eq!(p.count_line(at(2500), "attached", 1, 2, ""), None);
        assert!(p.count_line(at(3001), "attached", 1, 2, "").is_some());
        // `--quiet`: nothing at all.
        let mut q = StartProgress::new(true, t0);
        assert_eq!(q.count_line(at(5000), "read", 1, 4, " bytes"), None);
        assert_eq!(q.phase_line(at(5000), "starting the engine"), None);
        assert!(q.last.is_none());
    }

    #[test]
    fn seconds_are_checked() {
        assert_eq!(parse_secs("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_secs("-1").is_err());
        assert!(parse_secs("nan").is_err());
        assert!(parse_secs("inf").is_err());
        assert!(parse_secs("soon").is_err());
    }
}
