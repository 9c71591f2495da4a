#![no_main]
//! See `streamtrack_fuzz::check_engine_ops` (fuzz/src/lib.rs) for what this target asserts:
//! the engine against a model of its delivery guarantees, with rule changes, a failing sink,
//! a sink that stalls and resumes, and a shutdown with a drain deadline.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| streamtrack_fuzz::check_engine_ops(data));
