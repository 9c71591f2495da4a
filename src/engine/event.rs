//! What the engine reports while it runs: errors and disconnections, for logging.

use super::{DisconnectCode, SourceError};
use crate::analytics::AnalyticsEvent;
use std::fmt;
use std::sync::Arc;

/// Something worth logging, passed to the callback set with
/// [`EngineBuilder::on_event`](super::EngineBuilder::on_event). The callback runs on an engine
/// thread, so it should be quick.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// The source reported a problem (a skipped malformed record, a transport error).
    Source(SourceError),
    /// A sink returned an error or panicked; its subscriber is disconnected.
    SinkFailed {
        /// The subscriber.
        subscriber: Arc<str>,
        /// The error, or the panic message.
        error: String,
    },
    /// A subscriber's stream was closed (the final notice was sent, or could not be).
    Disconnected {
        /// The subscriber.
        subscriber: Arc<str>,
        /// Why.
        code: DisconnectCode,
        /// A sentence for humans.
        reason: String,
    },
    /// A burst started or ended in a series of the analytics stage
    /// ([`EngineBuilder::analytics`](super::EngineBuilder::analytics)): the series of one of
    /// the subscriber's rules, or of the subscriber itself. Sent from the stage's thread,
    /// after the deliveries of the message that started it were emitted (not necessarily
    /// delivered); burst ends are found when buckets close, checked every second.
    Burst {
        /// The subscriber the series belongs to.
        subscriber: Arc<str>,
        /// The series and what happened.
        event: AnalyticsEvent,
    },
}

impl fmt::Display for EngineEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineEvent::Source(e) => write!(f, "source: {e}"),
            EngineEvent::SinkFailed { subscriber, error } => {
                write!(f, "subscriber {subscriber:?}: sink failed: {error}")
            }
            EngineEvent::Disconnected { subscriber, code, reason } => {
                write!(f, "subscriber {subscriber:?}: disconnected, code {code}: {reason}")
            }
            EngineEvent::Burst { subscriber, event } => {
                write!(
                    f,
                    "subscriber {subscriber:?}: {} {}: {:?}",
                    event.key.kind(),
                    event.key.name(),
                    event.event
                )
            }
        }
    }
}
