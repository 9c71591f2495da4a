//! Async.
