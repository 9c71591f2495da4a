//! Where messages come from: the [`Source`] trait and the ready-made sources for iterators and
//! channels (JSON Lines is in [`super::jsonl`], `futures` streams in `super::async_adapters`).

use crate::Message;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::fmt;
use std::time::Duration;

/// How long the ready-made blocking sources wait for a message before returning an empty
/// batch, so that the engine can notice a shutdown request.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Whether a source has more to give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceStatus {
    /// Call [`Source::next_batch`] again.
    Open,
    /// The stream has ended; the messages appended by this call are the last ones.
    Ended,
}

/// What kind of problem a [`SourceError`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceErrorKind {
    /// One input record could not be read as a message; it was skipped.
    Malformed,
    /// The transport failed; whether the stream goes on is [`SourceError::is_fatal`].
    Transport,
    /// The source panicked (caught by the engine); the stream ends.
    Panicked,
}

/// A problem a [`Source`] reports. A *fatal* error ends the stream (everything already read
/// is still delivered, then subscribers get disconnect code 10); any other is counted in the
/// statistics, reported as an [`EngineEvent`](super::EngineEvent), and reading goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceError {
    /// What kind of problem.
    pub kind: SourceErrorKind,
    /// The 1-based line or record number the problem is about, when there is one.
    pub line: Option<u64>,
    /// What went wrong.
    pub message: String,
    /// Whether the stream ends.
    pub fatal: bool,
}

impl SourceError {
    /// A record that was skipped because it is not a valid message (reading goes on).
    pub fn malformed(line: Option<u64>, message: impl Into<String>) -> Self {
        SourceError {
            kind: SourceErrorKind::Malformed,
            line,
            message: message.into(),
            fatal: false,
        }
    }

    /// A transport problem after which reading goes on (e.g. a reconnect).
    pub fn transient(message: impl Into<String>) -> Self {
        SourceError {
            kind: SourceErrorKind::Transport,
            line: None,
            message: message.into(),
            fatal: false,
        }
    }

    /// A transport problem that ends the stream.
    pub fn fatal(message: impl Into<String>) -> Self {
        SourceError {
            kind: SourceErrorKind::Transport,
            line: None,
            message: message.into(),
            fatal: true,
        }
    }

    /// Whether the stream ends with this error.
    pub fn is_fatal(&self) -> bool {
        self.fatal
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.line) {
            (SourceErrorKind::Malformed, Some(line)) => {
                write!(f, "line {line}: {}; skipped", self.message)
            }
            (SourceErrorKind::Malformed, None) => write!(f, "{}; skipped", self.message),
            (SourceErrorKind::Panicked, _) => write!(f, "the source panicked: {}", self.message),
            (SourceErrorKind::Transport, _) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for SourceError {}

impl From<std::io::Error> for SourceError {
    fn from(e: std::io::Error) -> Self {
        SourceError::fatal(e.to_string())
    }
}

/// Where messages come from: a transport (a queue consumer, a socket, a file, a generator).
///
/// The engine calls [`next_batch`](Source::next_batch) in a loop, and [`ack`](Source::ack)
/// whenever more messages have been fully handled, so a transport with at-least-once
/// delivery can commit its offsets. The engine's matcher threads take turns reading, so the
/// calls may come from different threads, but never two at once: a source needs `Send` but
/// not `Sync`.
///
/// # Contract
///
/// - `next_batch` appends up to `max` messages to `out` (which the engine hands over empty)
///   and returns [`SourceStatus::Open`], or [`SourceStatus::Ended`] with the last messages.
/// - It may block while nothing is available, but should return now and then (an empty batch
///   is fine; the ready-made sources return after [`POLL_INTERVAL`]) so that
///   [`Engine::shutdown`](super::Engine::shutdown) is not held up by it.
/// - `Err` reports a problem: see [`SourceError`]. Messages already appended to `out` by that
///   call are still processed (a skipped record need not hold back the good ones around it).
/// - `ack(n)`: the first `n` messages this source returned have been matched and each of
///   their deliveries was handed to its sink (or dropped and counted under a subscriber's
///   policy). `n` only grows. The last call, after graceful shutdown, covers everything.
///
/// # Example: a source over a transport with offsets
///
/// ```
/// use streamtrack::engine::{Source, SourceError, SourceStatus};
/// use streamtrack::Message;
/// use std::collections::VecDeque;
///
/// /// A stand-in for a broker client: records with offsets, and a commit call.
/// struct Broker { records: VecDeque<(u64, String)>, committed: u64 }
///
/// struct BrokerSource {
///     broker: Broker,
///     /// The offset of each message returned so far and not yet acknowledged, in order.
///     in_flight: VecDeque<u64>,
///     returned: u64,
/// }
///
/// impl Source for BrokerSource {
///     fn next_batch(&mut self, out: &mut Vec<Message>, max: usize)
///         -> Result<SourceStatus, SourceError>
///     {
///         while out.len() < max {
///             let Some((offset, text)) = self.broker.records.pop_front() else {
///                 return Ok(SourceStatus::Ended);
///             };
///             out.push(Message::new(offset.to_string(), text));
///             self.in_flight.push_back(offset);
///             self.returned += 1;
///         }
///         Ok(SourceStatus::Open)
///     }
///
///     fn ack(&mut self, processed: u64) {
///         // Messages `0..processed` are done: commit the offset after the last of them.
///         let first_in_flight = self.returned - self.in_flight.len() as u64;
///         for _ in first_in_flight..processed {
///             if let Some(offset) = self.in_flight.pop_front() {
///                 self.broker.committed = offset + 1;
///             }
///         }
///     }
/// }
///
/// let broker = Broker { records: (0..5).map(|i| (100 + i, format!("message {i}"))).collect(),
///                       committed: 0 };
/// let mut source = BrokerSource { broker, in_flight: VecDeque::new(), returned: 0 };
/// let mut batch = Vec::new();
/// assert_eq!(source.next_batch(&mut batch, 3).unwrap(), SourceStatus::Open);
/// source.ack(2);
/// assert_eq!(source.broker.committed, 102);
/// ```
pub trait Source: Send {
    /// Appends up to `max` messages to `out`; see the [trait documentation](Source).
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError>;

    /// The first `processed` messages returned have been fully handled: each was delivered to
    /// every sink it matched (the sink's `send` returned) or its loss was reported to that
    /// subscriber (a limit or disconnect notice went through); commit them. Never ahead of
    /// that, so a source that commits here gets at-least-once delivery.
    fn ack(&mut self, processed: u64) {
        let _ = processed;
    }

    /// Whether [`ack`](Source::ack) does anything (default `true`). Working out what to
    /// acknowledge means visiting every subscriber (every 50 ms while messages flow: at
    /// 10,000 subscribers, 10,000 cache misses); a source that commits nothing returns
    /// `false` and the engine skips that work, acknowledging everything once at the end.
    fn wants_acks(&self) -> bool {
        true
    }
}

impl<S: Source + ?Sized> Source for Box<S> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        (**self).next_batch(out, max)
    }

    fn ack(&mut self, processed: u64) {
        (**self).ack(processed)
    }

    fn wants_acks(&self) -> bool {
        (**self).wants_acks()
    }
}

/// A source over any iterator of messages (a generated stream, a `Vec`, …). It never blocks
/// and ends when the iterator does.
#[derive(Debug)]
pub struct IterSource<I> {
    iter: I,
}

impl<I: Iterator<Item = Message> + Send> IterSource<I> {
    /// A source reading `iter`.
    pub fn new(iter: impl IntoIterator<IntoIter = I>) -> Self {
        IterSource { iter: iter.into_iter() }
    }
}

impl<I: Iterator<Item = Message> + Send> Source for IterSource<I> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        for _ in 0..max {
            match self.iter.next() {
                Some(m) => out.push(m),
                None => return Ok(SourceStatus::Ended),
            }
        }
        Ok(SourceStatus::Open)
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

/// A source fed through a `crossbeam-channel`: another thread (a network client, a test)
/// sends messages; the stream ends when every sender is dropped.
#[derive(Debug)]
pub struct ChannelSource {
    rx: Receiver<Message>,
}

impl ChannelSource {
    /// A source reading `rx`.
    pub fn new(rx: Receiver<Message>) -> Self {
        ChannelSource { rx }
    }
}

/// A bounded channel and the source reading it; sending blocks while `capacity` messages wait.
pub fn channel_source(capacity: usize) -> (Sender<Message>, ChannelSource) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    (tx, ChannelSource::new(rx))
}

impl Source for ChannelSource {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        match self.rx.recv_timeout(POLL_INTERVAL) {
            Ok(m) => out.push(m),
            Err(RecvTimeoutError::Timeout) => return Ok(SourceStatus::Open),
            Err(RecvTimeoutError::Disconnected) => return Ok(SourceStatus::Ended),
        }
        while out.len() < max {
            match self.rx.try_recv() {
                Ok(m) => out.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return Ok(SourceStatus::Ended),
            }
        }
        Ok(SourceStatus::Open)
    }

    fn wants_acks(&self) -> bool {
        false
    }
}
