#![no_main]
//! See `streamtrack_fuzz::check_explain` (fuzz/src/lib.rs) for what this target asserts.
//! Input: a rule (rule dialect, or track dialect after a leading `T`), a NUL byte, then a
//! message as JSON (or plain text when it is not JSON).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| streamtrack_fuzz::check_explain(data));
