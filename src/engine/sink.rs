//! Where one subscriber's deliveries go: the [`Sink`] trait and the ready-made sinks for
//! channels and callbacks (JSON Lines is in [`super::jsonl`], `futures` sinks in
//! `super::async_adapters`).

use super::Delivery;
use crossbeam_channel::{Receiver, Sender};
use std::fmt;

/// Why a sink could not take a delivery. The engine then disconnects that subscriber (and
/// only it), records the error in its statistics and reports an
/// [`EngineEvent::SinkFailed`](super::EngineEvent::SinkFailed).
#[derive(Debug)]
#[non_exhaustive]
pub struct SinkError {
    /// What went wrong.
    pub message: String,
    /// The underlying error, if any.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SinkError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        SinkError { message: message.into(), source: None }
    }

    /// The receiving end has gone away.
    pub fn closed() -> Self {
        SinkError::new("the receiver was dropped")
    }
}

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for SinkError {
    fn from(e: std::io::Error) -> Self {
        SinkError { message: e.to_string(), source: Some(Box::new(e)) }
    }
}

/// Where one subscriber's deliveries go: a connection, a queue producer, a file, a callback.
///
/// The engine calls a sink from one thread at a time (its dispatcher pool), in the
/// subscriber's order: matched messages in source order, with control notices
/// ([`Delivery::Limit`], [`Delivery::Warning`]) slipped in ahead of queued messages, and a
/// final [`Delivery::Disconnect`] followed by [`close`](Sink::close).
///
/// # Contract
///
/// - [`send`](Sink::send) may block (a full socket buffer): that is "reading slowly". The
///   subscriber's queue then fills, and its [`FullPolicy`](super::FullPolicy) applies; other
///   subscribers are not delayed (a dispatcher stuck in a sink is replaced by a fresh one).
/// - An `Err` from any method, or a panic, disconnects this subscriber only: it gets no more
///   calls (not even `close`), and the error is recorded and reported.
/// - [`flush`](Sink::flush) is called whenever the subscriber's queue runs empty, so a sink
///   may buffer inside `send` and write out in `flush`.
///
/// # Example: a sink that frames deliveries for a line-based connection
///
/// ```
/// use streamtrack::engine::{Delivery, Sink, SinkError};
/// use std::io::Write;
///
/// struct LineSink<W: Write + Send> { conn: W }
///
/// impl<W: Write + Send> Sink for LineSink<W> {
///     fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
///         match delivery {
///             Delivery::Match { message, matching_rules } => {
///                 let ids: Vec<String> =
///                     matching_rules.iter().map(|r| r.id.to_string()).collect();
///                 writeln!(self.conn, "MATCH {} [{}] {}", message.id, ids.join(","), message.text)?
///             }
///             Delivery::Limit { track } => writeln!(self.conn, "LIMIT {track}")?,
///             Delivery::Disconnect { code, reason, .. } => {
///                 writeln!(self.conn, "BYE {} {reason}", code.0)?
///             }
///             other => writeln!(self.conn, "NOTICE {other:?}")?,
///         }
///         Ok(())
///     }
///
///     fn flush(&mut self) -> Result<(), SinkError> {
///         Ok(self.conn.flush()?)
///     }
/// }
///
/// let mut sink = LineSink { conn: Vec::new() };
/// sink.send(Delivery::Limit { track: 3 }).unwrap();
/// assert_eq!(sink.conn, b"LIMIT 3\n");
/// ```
pub trait Sink: Send {
    /// Takes one delivery; may block while the receiver is slow.
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError>;

    /// Writes out anything buffered; called when the subscriber's queue runs empty.
    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    /// The stream is over (after the final [`Delivery::Disconnect`]); release the transport.
    fn close(&mut self) -> Result<(), SinkError> {
        self.flush()
    }
}

impl<S: Sink + ?Sized> Sink for Box<S> {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        (**self).send(delivery)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        (**self).flush()
    }

    fn close(&mut self) -> Result<(), SinkError> {
        (**self).close()
    }
}

/// A sink that sends each delivery into a `crossbeam-channel`. With a bounded channel, a
/// receiver that stops reading makes `send` block: a stalled subscriber. A dropped receiver
/// is a sink failure.
#[derive(Debug, Clone)]
pub struct ChannelSink {
    tx: Sender<Delivery>,
}

impl ChannelSink {
    /// A sink sending into `tx`.
    pub fn new(tx: Sender<Delivery>) -> Self {
        ChannelSink { tx }
    }
}

/// A channel sink and the receiver of its deliveries; `capacity` 0 is a rendezvous channel,
/// `usize::MAX` an unbounded one.
pub fn channel_sink(capacity: usize) -> (ChannelSink, Receiver<Delivery>) {
    let (tx, rx) = if capacity == usize::MAX {
        crossbeam_channel::unbounded()
    } else {
        crossbeam_channel::bounded(capacity)
    };
    (ChannelSink::new(tx), rx)
}

impl Sink for ChannelSink {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        self.tx.send(delivery).map_err(|_| SinkError::closed())
    }
}

/// A sink that calls a function for each delivery; the function's error disconnects the
/// subscriber.
pub struct CallbackSink<F> {
    f: F,
}

impl<F: FnMut(Delivery) -> Result<(), SinkError> + Send> CallbackSink<F> {
    /// A sink calling `f`.
    pub fn new(f: F) -> Self {
        CallbackSink { f }
    }
}

impl<F> fmt::Debug for CallbackSink<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackSink")
    }
}

impl<F: FnMut(Delivery) -> Result<(), SinkError> + Send> Sink for CallbackSink<F> {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        (self.f)(delivery)
    }
}
