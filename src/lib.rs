//! streamtrack: real-time keyword tracking over message streams.
//!
//! Modules, one concept each (DESIGN.md maps them in detail):
//!
//! - [`message`]: messages and their JSON readers;
//! - [`normalize`]: text normalisation and tokenisation;
//! - [`rule`]: the two rule dialects, parsed into one tree;
//! - [`reference`](mod@reference): the reference matcher, the oracle for tests;
//! - [`matcher`]: the compiled matcher (presearch index + verification);
//! - [`registry`]: live subscriptions with lock-free snapshots;
//! - [`durable`]: a registry kept in a directory (log + snapshots), restored on open;
//! - [`explain`]: why a rule matches a message or not, as a tree mirroring the rule;
//! - [`dry_run`]: what new rules would match over a set of recent messages;
//! - [`backfill`]: a new rule's recent matches, then the live ones, with no gap or duplicate;
//! - [`workload`]: a deterministic generator of messages and rule sets.
#![deny(missing_docs)]
#![deny(unsafe_code)]

pub mod backfill;
pub mod dry_run;
pub mod durable;
pub mod engine;
pub mod explain;
pub mod matcher;
pub mod message;
pub mod normalize;

pub use message::Message;
pub mod reference;
pub mod registry;
pub mod rule;
mod sync;

pub use rule::{Dialect, Rule, RuleError};
#[cfg(feature = "json")]
pub mod rules_file;
pub mod workload;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
