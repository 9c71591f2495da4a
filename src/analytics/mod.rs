//! Analytics of a tracked conversation: reactions (sentiment), intensity and bursts.
//!
//! - [`sentiment`]: the VADER scorer and lexicons;
//! - [`bursts`]: the online burst detector;

pub mod bursts;
pub mod sentiment;

pub use bursts::{BurstConfig, BurstDetector, BurstEvent, BurstStep, Sensitivity};
pub use sentiment::{
    Fixes, Label, LanguageScorers, Lexicon, LexiconError, Reaction, SentimentScorer,
};
