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
//! - `read` (feature `json`): the one reader of JSON Lines messages and rules files.
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[doc = include_str!("../docs/rule-language.md")]
pub mod rule_language {}

pub mod analytics;
pub mod engine;
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
