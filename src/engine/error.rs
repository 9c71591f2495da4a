//! Errors of the engine's own API.

use std::fmt;

/// Why an engine call was refused.
#[derive(Debug)]
#[non_exhaustive]
pub enum EngineError {
    /// A thread could not be started.
    Spawn(std::io::Error),
    /// The engine is stopping or has stopped: no new subscribers.
    Stopped,
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Spawn(e) => write!(f, "cannot start an engine thread: {e}"),
            EngineError::Stopped => f.write_str("the engine has stopped"),
        }
    }
}

impl std::error::Error for EngineError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            EngineError::Spawn(e) => Some(e),
            EngineError::Stopped => None,
        }
    }
}
