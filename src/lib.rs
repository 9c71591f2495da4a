//! streamtrack: real-time keyword tracking over message streams.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod matcher;
pub mod message;
pub mod normalize;

pub use message::Message;
pub mod reference;
pub mod registry;
pub mod rule;

pub use rule::{Dialect, Rule, RuleError};
#[cfg(feature = "json")]
pub mod rules_file;
pub mod workload;
