//! streamtrack: real-time keyword tracking over message streams.
//!
//! Subscribers register rules, in Twitter's `track` dialect or the PowerTrack / API v2 `rule`
//! dialect; messages stream through; each message reaches every subscriber with a matching
//! rule. What a rule matches is specified in [`rule_language`], the crate's own reference
//! (both dialects, tokenisation, fields, limits, and examples that are run as tests).
//!
//! Modules, one concept each (DESIGN.md maps them in detail):
//!
//! - [`rule_language`]: the reference of the rule language (documentation only);
//! - [`analytics`]: reactions (sentiment), intensity and bursts of the tracked conversation;
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
//! - `read` (feature `json`): the one reader of JSON Lines messages and rules files.
//!
//! The primary types are re-exported here: [`Rule`] and [`Message`] (what is matched),
//! [`Matcher`] (a fixed rule set, compiled), [`Registry`], [`NewRule`] and [`Snapshot`] (live
//! subscriptions), [`Engine`], [`Source`], [`Sink`] and [`Delivery`] (the streaming engine).
//!
//! # Example
//!
//! A registry of subscriptions and an engine reading messages from an iterator, delivering
//! each subscriber's matches to its sink (here a channel):
//!
//! ```
//! use streamtrack::engine::{channel_sink, IterSource};
//! use streamtrack::{Delivery, Engine, Message, Registry, Rule};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let registry = Registry::new();
//! let wii = registry.subscribe("alice", Rule::parse_track("nintendo,wii fit")?, None)?;
//!
//! let (sink, deliveries) = channel_sink(usize::MAX);
//! let engine = Engine::builder(registry.clone())
//!     .attach("alice", sink)
//!     .start(IterSource::new(vec![
//!         Message::new("1", "New Wii Fit board!"),
//!         Message::new("2", "nothing to see"),
//!     ]))?;
//! // `registry` accepts new rules while the engine runs; `join` waits for the end of input.
//! assert_eq!(engine.join().stats.received, 2);
//! let matched: Vec<_> = deliveries
//!     .try_iter()
//!     .filter_map(|d| match d {
//!         Delivery::Match { message, matching_rules } => {
//!             Some((message.id.clone(), matching_rules[0].id))
//!         }
//!         _ => None,
//!     })
//!     .collect();
//! assert_eq!(matched, [("1".to_string(), wii)]);
//! # Ok(())
//! # }
//! ```
//!
//! # Crate features
//!
//! - `json` (default): JSON Lines input and output and serde support for messages, rules
//!   and deliveries: `Message::from_json`, the `read` and `rules_file` modules,
//!   `engine::jsonl`, the `serde_json` re-export. Adds `serde` and `serde_json`.
//! - `async`: adapters between the engine and `futures` streams and sinks
//!   (`engine::async_adapters`); no runtime is needed or pulled in. Adds `futures-core` and
//!   `futures-sink`.
//!
//! With default features the library depends on no runtime, network, command-line or
//! allocator crate. The `streamtrack` command-line tool is the `streamtrack-cli` package, and
//! the deterministic workload of the tests and benchmarks is `streamtrack-workload`, both in
//! this repository's `crates/` folder.
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[doc = include_str!("../docs/rule-language.md")]
pub mod rule_language {}

pub mod analytics;
pub mod backfill;
pub mod dry_run;
pub mod durable;
pub mod engine;
pub mod explain;
pub mod matcher;
pub mod message;
pub mod normalize;

pub use engine::{Delivery, Engine, Sink, Source};
pub use matcher::Matcher;
pub use message::Message;
pub mod reference;
pub mod registry;
pub mod rule;
mod sync;
#[cfg(test)]
mod test_rng;

pub use registry::{NewRule, Registry, Snapshot};
pub use rule::{Dialect, Rule, RuleError};
#[cfg(feature = "json")]
pub mod read;
#[cfg(feature = "json")]
pub mod rules_file;
/// The JSON library of [`Message::source`] and [`Message::json_field`], re-exported so that
/// reading a post's extra fields (`sentiment`, `created_at`, …) needs no second dependency
/// kept at the same version (feature `json`).
#[cfg(feature = "json")]
pub use serde_json;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
