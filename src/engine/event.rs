//! What the engine reports while it runs: errors and disconnections, for logging.

use super::{DisconnectCode, SourceError};
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
        }
    }
}
