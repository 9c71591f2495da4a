#![no_main]
//! See `streamtrack_fuzz::check_parse_rule` (fuzz/src/lib.rs) for what this target asserts.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| streamtrack_fuzz::check_parse_rule(data));
