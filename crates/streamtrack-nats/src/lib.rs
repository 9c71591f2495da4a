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
pub mod server;
mod sink;
mod source;

pub use rules::{rule_value, validate_rules, RuleNames, RulesEvent, RulesFollower, RulesWatcher};
pub use sink::{
    delivery_json, delivery_object, is_normal_end, subject_token, JetStreamSink, SinkCounters,
};
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
    rt: Arc<Rt>,
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
        Ok(Nats { rt: Arc::new(Rt(Some(rt))), client, js })
    }

    /// Runs a future on this connection's runtime, blocking the calling thread (which must not
    /// be one of the runtime's).
    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.get().block_on(f)
    }

    /// The runtime's handle, to spawn tasks.
    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.get().handle().clone()
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
    ///
    /// The bucket's stream is created directly (the KV conventions: `KV_<name>` on
    /// `$KV.<name>.>`, one message per key, roll-ups, direct get) rather than through
    /// async-nats' `create_key_value`, which first reads account fields that servers before
    /// 2.10 (Debian's 2.9) do not send.
    pub fn ensure_bucket(&self, name: &str) -> Result<kv::Store, NatsError> {
        self.block_on(async {
            if let Ok(s) = self.js.get_key_value(name).await {
                return Ok(s);
            }
            self.js
                .get_or_create_stream(stream::Config {
                    name: format!("KV_{name}"),
                    subjects: vec![format!("$KV.{name}.>")],
                    max_messages_per_subject: 1,
                    discard: stream::DiscardPolicy::New,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    duplicate_window: Duration::from_secs(120),
                    num_replicas: 1,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            self.js.get_key_value(name).await.map_err(|e| e.to_string())
        })
        .map_err(|e| NatsError::ctx(&format!("cannot create or open the bucket {name}"), e))
    }
}

/// The runtime, shut down without waiting when its last handle goes inside one of its own
/// tasks (a task holding a [`Nats`] clone), where a blocking drop would panic.
struct Rt(Option<tokio::runtime::Runtime>);

impl Rt {
    fn get(&self) -> &tokio::runtime::Runtime {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                rt.shutdown_background();
            }
        }
    }
}

/// A value whose drop needs the runtime's context (async-nats subscriptions unsubscribe by
/// spawning a task): dropped inside it, from any thread.
pub(crate) struct InRuntime<T> {
    value: Option<T>,
    handle: tokio::runtime::Handle,
}

impl<T> InRuntime<T> {
    pub(crate) fn new(value: T, handle: tokio::runtime::Handle) -> Self {
        InRuntime { value: Some(value), handle }
    }

    pub(crate) fn get(&mut self) -> &mut T {
        self.value.as_mut().expect("present until dropped")
    }

    pub(crate) fn into_inner(mut self) -> T {
        self.value.take().expect("present until dropped")
    }
}

impl<T> Drop for InRuntime<T> {
    fn drop(&mut self) {
        let _guard = self.handle.enter();
        self.value.take();
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
