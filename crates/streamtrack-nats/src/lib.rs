//! NATS JetStream transport for the [`streamtrack`] engine.
//!
//! - [`JetStreamSource`]: reads a stream through a durable pull consumer shared by any number
//!   of instances, and acknowledges a message only once the engine has delivered everything it
//!   produced ([`streamtrack::Source::ack`]): at-least-once.
//! - [`SubjectSource`]: reads a plain subject (core NATS, optionally in a queue group):
//!   at-most-once, nothing is acknowledged or redelivered.
//! - [`JetStreamSink`]: publishes one subscriber's deliveries to `<prefix>.<subscriber>` as the
//!   JSON the `run` command writes, through JetStream with the de-duplication id
//!   `<message id>:<subscriber>`, so that a redelivery after a failover is dropped by the server
//!   inside its duplicate window.
//! - [`RulesWatcher`]: applies the rules of a KV bucket (key = rule id, value = rule JSON) to a
//!   [`Registry`](streamtrack::Registry), in revision order; an invalid value is skipped, its
//!   reason published to an error subject, and the key's previous version stays in force.
//!
//! The engine is thread-based; this crate owns a small tokio runtime ([`Nats`]) and bridges with
//! `block_on` and channels. DESIGN.md, "The NATS transport", states the delivery guarantees.
#![deny(missing_docs)]

mod rules;
mod sink;
mod source;

pub use rules::{
    rule_value, validate_rules, RuleNames, RulesEvent, RulesFollower, RulesWatcher,
};
pub use sink::{delivery_json, subject_token, JetStreamSink, SinkCounters};
pub use source::{JetStreamSource, SourceCounters, SubjectSource};

use async_nats::jetstream::{self, consumer, kv, stream};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A problem talking to the NATS server (connecting, creating a stream, a consumer or a bucket).
#[derive(Debug)]
#[non_exhaustive]
pub struct NatsError {
    /// What was being done and what went wrong.
    pub message: String,
}

impl NatsError {
    /// An error with a message saying what was being done.
    pub fn new(message: impl Into<String>) -> Self {
        NatsError { message: message.into() }
    }

    fn ctx(what: &str, e: impl fmt::Display) -> Self {
        NatsError::new(format!("{what}: {e}"))
    }
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NatsError {}

/// Settings of the shared durable pull consumer.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConsumerSettings {
    /// How long the server waits for an acknowledgement before redelivering to another
    /// instance: the failover delay, and the bound on how long one instance may hold a message.
    pub ack_wait: Duration,
    /// How many messages may be delivered and unacknowledged at once, over all instances:
    /// the bound on the duplicates a failover can cause.
    pub max_ack_pending: i64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings { ack_wait: Duration::from_secs(5), max_ack_pending: 4096 }
    }
}

impl ConsumerSettings {
    /// Sets [`ack_wait`](Self::ack_wait).
    pub fn ack_wait(mut self, d: Duration) -> Self {
        self.ack_wait = d;
        self
    }

    /// Sets [`max_ack_pending`](Self::max_ack_pending).
    pub fn max_ack_pending(mut self, n: i64) -> Self {
        self.max_ack_pending = n;
        self
    }
}

/// A connection to a NATS server with its own tokio runtime (one worker thread), so that the
/// thread-based engine can use it from any thread. Cheap to clone.
#[derive(Clone)]
pub struct Nats {
    rt: Arc<tokio::runtime::Runtime>,
    client: async_nats::Client,
    js: jetstream::Context,
}

impl fmt::Debug for Nats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Nats").finish_non_exhaustive()
    }
}

impl Nats {
    /// Connects to `url` (`nats://host:port`). A connection lost later is retried for ever
    /// with back-off (async-nats' reconnect: 0 ms, then doubling up to 4 s, plus jitter).
    pub fn connect(url: &str) -> Result<Nats, NatsError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("streamtrack-nats")
            .enable_all()
            .build()
            .map_err(|e| NatsError::ctx("cannot start the NATS runtime", e))?;
        let client = rt
            .block_on(async {
                async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(5))
                    .max_reconnects(None)
                    .connect(url)
                    .await
            })
            .map_err(|e| NatsError::ctx(&format!("cannot connect to {url}"), e))?;
        let js = jetstream::new(client.clone());
        Ok(Nats { rt: Arc::new(rt), client, js })
    }

    /// Runs a future on this connection's runtime, blocking the calling thread (which must not
    /// be one of the runtime's).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The runtime's handle, to spawn tasks.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    /// The core NATS client.
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// The JetStream context.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Sends everything buffered to the server (acknowledgements included); waits at most
    /// `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), NatsError> {
        self.block_on(async { tokio::time::timeout(timeout, self.client.flush()).await })
            .map_err(|_| NatsError::new("flush timed out"))?
            .map_err(|e| NatsError::ctx("flush failed", e))
    }

    /// The stream `name` capturing `subject`, created (file storage) if absent.
    pub fn ensure_stream(&self, name: &str, subject: &str) -> Result<stream::Stream, NatsError> {
        self.block_on(self.js.get_or_create_stream(stream::Config {
            name: name.to_string(),
            subjects: vec![subject.to_string()],
            ..Default::default()
        }))
        .map_err(|e| NatsError::ctx(&format!("cannot create or open the stream {name}"), e))
    }

    /// The stream every [`JetStreamSink`] under `prefix` publishes to (subjects `<prefix>.>`,
    /// duplicate window `window`), created if absent; its name is [`delivery_stream_name`].
    pub fn ensure_delivery_stream(
        &self,
        prefix: &str,
        window: Duration,
    ) -> Result<stream::Stream, NatsError> {
        let name = delivery_stream_name(prefix);
        self.block_on(self.js.get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{prefix}.>")],
            duplicate_window: window,
            ..Default::default()
        }))
        .map_err(|e| NatsError::ctx(&format!("cannot create or open the stream {name}"), e))
    }

    /// The durable pull consumer `name` on `stream` (explicit acknowledgements), created if
    /// absent; an existing one keeps its settings.
    pub fn ensure_consumer(
        &self,
        stream: &str,
        name: &str,
        settings: &ConsumerSettings,
    ) -> Result<consumer::Consumer<consumer::pull::Config>, NatsError> {
        self.block_on(async {
            let s = self.js.get_stream(stream).await.map_err(|e| e.to_string())?;
            s.get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_string()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: settings.ack_wait,
                    max_ack_pending: settings.max_ack_pending,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| e.to_string())
        })
        .map_err(|e| NatsError::ctx(&format!("cannot create or open the consumer {name}"), e))
    }

    /// The KV bucket `name`, created (history 1) if absent.
    pub fn ensure_bucket(&self, name: &str) -> Result<kv::Store, NatsError> {
        self.block_on(async {
            match self.js.get_key_value(name).await {
                Ok(s) => Ok(s),
                Err(_) => self
                    .js
                    .create_key_value(kv::Config { bucket: name.to_string(), ..Default::default() })
                    .await
                    .map_err(|e| e.to_string()),
            }
        })
        .map_err(|e| NatsError::ctx(&format!("cannot create or open the bucket {name}"), e))
    }
}

/// The name of the delivery stream for `prefix`: `DELIVER_` and the prefix with every
/// character a stream name cannot hold replaced by `_`.
pub fn delivery_stream_name(prefix: &str) -> String {
    let body: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect();
    format!("DELIVER_{body}")
}
