//! Sources: a JetStream durable pull consumer (at-least-once) and a plain subject
//! (at-most-once).

use crate::{InRuntime, Nats, NatsError};
use async_nats::jetstream::{self, consumer, AckKind};
use futures::StreamExt;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use streamtrack::engine::{Source, SourceError, SourceStatus, POLL_INTERVAL};
use streamtrack::Message;
use tokio::sync::mpsc;

/// What a source has seen, shared with whoever reports it (the figures grow while it runs).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SourceCounters {
    /// Messages taken from the server (malformed ones included).
    pub received: AtomicU64,
    /// Messages handed to the engine.
    pub handed: AtomicU64,
    /// Messages acknowledged to the server (malformed ones included).
    pub acked: AtomicU64,
    /// Malformed messages: acknowledged, counted and published to the dead-letter subject.
    pub malformed: AtomicU64,
    /// Messages the server had delivered before (to this or another instance).
    pub redelivered: AtomicU64,
    /// Pull errors (lost connection, missed heartbeats); each is retried.
    pub errors: AtomicU64,
}

impl SourceCounters {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

enum Pulled {
    Message(Box<jetstream::Message>),
    Error(String),
}

/// A [`Source`] reading a JetStream stream through a durable pull consumer that any number
/// of instances share: each message goes to one instance; one that dies leaves its
/// unacknowledged messages to be redelivered to the others after the consumer's `ack_wait`.
///
/// A message is acknowledged when the engine acknowledges its position, i.e. once every sink
/// it matched took it (or its loss was reported): at-least-once. A malformed message (not a
/// JSON message object) is acknowledged at once, counted, and published with its reason to
/// the dead-letter subject, so it is never redelivered. Pull errors (a lost connection) are
/// retried with back-off (100 ms doubling to 5 s).
pub struct JetStreamSource {
    nats: Nats,
    rx: mpsc::Receiver<Pulled>,
    /// Messages handed to the engine and not yet acknowledged, in position order.
    unacked: VecDeque<jetstream::Message>,
    acked: u64,
    dead_letter: String,
    counters: Arc<SourceCounters>,
    stop: Arc<AtomicBool>,
}

impl JetStreamSource {
    /// Starts pulling from `consumer`; malformed messages go to `dead_letter`. `batch` is the
    /// pull batch (also the depth of the hand-over queue).
    pub fn start(
        nats: &Nats,
        consumer: consumer::Consumer<consumer::pull::Config>,
        dead_letter: &str,
        batch: usize,
    ) -> JetStreamSource {
        let batch = batch.max(1);
        let (tx, rx) = mpsc::channel(batch);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(SourceCounters::default());
        nats.handle().spawn(pull_loop(consumer, tx, batch, stop.clone()));
        JetStreamSource {
            nats: nats.clone(),
            rx,
            unacked: VecDeque::new(),
            acked: 0,
            dead_letter: dead_letter.to_string(),
            counters,
            stop,
        }
    }

    /// The figures, shared.
    pub fn counters(&self) -> Arc<SourceCounters> {
        self.counters.clone()
    }

    fn take(&mut self, m: jetstream::Message, out: &mut Vec<Message>) -> Result<(), SourceError> {
        SourceCounters::add(&self.counters.received, 1);
        let info = m.info().ok().map(|i| (i.stream_sequence, i.delivered));
        if matches!(info, Some((_, d)) if d > 1) {
            SourceCounters::add(&self.counters.redelivered, 1);
        }
        match Message::from_json_bytes(&m.payload) {
            Ok(msg) => {
                out.push(msg);
                self.unacked.push_back(m);
                SourceCounters::add(&self.counters.handed, 1);
                Ok(())
            }
            Err(e) => {
                let seq = info.map(|i| i.0);
                let reason = e.to_string();
                let report = serde_json::json!({
                    "reason": reason,
                    "subject": m.subject.as_str(),
                    "stream_sequence": seq,
                    "payload": String::from_utf8_lossy(&m.payload),
                });
                let client = self.nats.client().clone();
                let subject = self.dead_letter.clone();
                // Published before the acknowledgement: a crash in between publishes it again
                // (at-least-once), never loses it.
                let _ = self.nats.block_on(async move {
                    client.publish(subject, report.to_string().into()).await?;
                    m.ack().await.map_err(|e| e.to_string().into())
                        as Result<(), Box<dyn std::error::Error + Send + Sync>>
                });
                SourceCounters::add(&self.counters.malformed, 1);
                SourceCounters::add(&self.counters.acked, 1);
                let at = seq.map_or_else(String::new, |s| format!(" (stream sequence {s})"));
                Err(SourceError::malformed(
                    None,
                    format!(
                        "a stream message{at} is not a message ({reason}); sent to {}",
                        self.dead_letter
                    ),
                ))
            }
        }
    }
}

async fn pull_loop(
    consumer: consumer::Consumer<consumer::pull::Config>,
    tx: mpsc::Sender<Pulled>,
    batch: usize,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Duration::from_millis(100);
    while !stop.load(Ordering::Relaxed) {
        let stream = consumer
            .stream()
            .max_messages_per_batch(batch)
            .heartbeat(Duration::from_secs(2))
            .expires(Duration::from_secs(10))
            .messages()
            .await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                if tx.send(Pulled::Error(format!("pull: {e}"))).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        while let Some(next) = stream.next().await {
            let item = match next {
                Ok(m) => {
                    backoff = Duration::from_millis(100);
                    Pulled::Message(Box::new(m))
                }
                Err(e) => Pulled::Error(format!("pull: {e}")),
            };
            if tx.send(item).await.is_err() || stop.load(Ordering::Relaxed) {
                return;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

impl Source for JetStreamSource {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        let first = {
            let rx = &mut self.rx;
            self.nats.block_on(async { tokio::time::timeout(POLL_INTERVAL, rx.recv()).await })
        };
        let mut next = match first {
            Err(_) => return Ok(SourceStatus::Open),
            Ok(None) => return Err(SourceError::fatal("the NATS pull task ended")),
            Ok(Some(p)) => Some(p),
        };
        while let Some(p) = next.take() {
            match p {
                Pulled::Message(m) => self.take(*m, out)?,
                Pulled::Error(e) => {
                    SourceCounters::add(&self.counters.errors, 1);
                    return Err(SourceError::transient(e));
                }
            }
            if out.len() < max {
                next = self.rx.try_recv().ok();
            }
        }
        Ok(SourceStatus::Open)
    }

    fn ack(&mut self, processed: u64) {
        let n = processed.saturating_sub(self.acked) as usize;
        if n == 0 {
            return;
        }
        let done: Vec<_> = self.unacked.drain(..n.min(self.unacked.len())).collect();
        self.acked = processed;
        SourceCounters::add(&self.counters.acked, done.len() as u64);
        // An acknowledgement is a publication queued to the client (no round trip).
        self.nats.block_on(async move {
            for m in done {
                let _ = m.ack().await;
            }
        });
    }
}

impl Drop for JetStreamSource {
    /// Stops pulling, hands back (NAK) what was pulled but never given to the engine, so
    /// another instance gets it at once, and flushes the acknowledgements.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.close();
        let mut back = Vec::new();
        while let Ok(p) = self.rx.try_recv() {
            if let Pulled::Message(m) = p {
                back.push(*m);
            }
        }
        back.extend(self.unacked.drain(..));
        let client = self.nats.client().clone();
        let _ = self.nats.block_on(async move {
            for m in back {
                let _ = m.ack_with(AckKind::Nak(None)).await;
            }
            tokio::time::timeout(Duration::from_secs(5), client.flush()).await
        });
    }
}

/// A [`Source`] reading a plain subject (core NATS; in a queue group when given, so that
/// instances share the subject). **At-most-once**: nothing is acknowledged, a message
/// published while no instance listens, or held by an instance that dies, is lost.
/// Malformed messages are counted, published to the dead-letter subject and skipped.
pub struct SubjectSource {
    nats: Nats,
    sub: InRuntime<async_nats::Subscriber>,
    dead_letter: String,
    counters: Arc<SourceCounters>,
}

impl SubjectSource {
    /// Subscribes to `subject` (in `queue` when given).
    pub fn subscribe(
        nats: &Nats,
        subject: &str,
        queue: Option<&str>,
        dead_letter: &str,
    ) -> Result<SubjectSource, NatsError> {
        let client = nats.client().clone();
        let subject_owned = subject.to_string();
        let sub = nats
            .block_on(async move {
                match queue {
                    Some(q) => client.queue_subscribe(subject_owned, q.to_string()).await,
                    None => client.subscribe(subject_owned).await,
                }
            })
            .map_err(|e| NatsError::ctx(&format!("cannot subscribe to {subject}"), e))?;
        Ok(SubjectSource {
            nats: nats.clone(),
            sub: InRuntime::new(sub, nats.handle()),
            dead_letter: dead_letter.to_string(),
            counters: Arc::new(SourceCounters::default()),
        })
    }

    /// The figures, shared.
    pub fn counters(&self) -> Arc<SourceCounters> {
        self.counters.clone()
    }
}

impl Source for SubjectSource {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        let sub = self.sub.get();
        let mut got = Vec::new();
        let ended = self.nats.block_on(async {
            match tokio::time::timeout(POLL_INTERVAL, sub.next()).await {
                Err(_) => false,
                Ok(None) => true,
                Ok(Some(m)) => {
                    got.push(m);
                    while got.len() < max {
                        match futures::FutureExt::now_or_never(sub.next()) {
                            Some(Some(m)) => got.push(m),
                            _ => break,
                        }
                    }
                    false
                }
            }
        });
        let mut error = None;
        for m in got {
            SourceCounters::add(&self.counters.received, 1);
            match Message::from_json_bytes(&m.payload) {
                Ok(msg) => {
                    SourceCounters::add(&self.counters.handed, 1);
                    out.push(msg)
                }
                Err(e) => {
                    SourceCounters::add(&self.counters.malformed, 1);
                    let report = serde_json::json!({
                        "reason": e.to_string(),
                        "subject": m.subject.as_str(),
                        "payload": String::from_utf8_lossy(&m.payload),
                    });
                    let client = self.nats.client().clone();
                    let subject = self.dead_letter.clone();
                    let _ = self.nats.block_on(async move {
                        client.publish(subject, report.to_string().into()).await
                    });
                    error.get_or_insert(SourceError::malformed(None, format!("message {e}")));
                }
            }
        }
        match (error, ended) {
            (Some(e), _) => Err(e),
            (None, true) => Ok(SourceStatus::Ended),
            (None, false) => Ok(SourceStatus::Open),
        }
    }

    fn wants_acks(&self) -> bool {
        false
    }
}
