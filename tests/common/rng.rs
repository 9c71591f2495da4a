//! The integration tests' deterministic random numbers (one definition, not a closure per
//! test; the library's unit tests have the same in `src/test_rng.rs`).

/// A xorshift64 generator from `seed`: each call gives the next value below `n`.
pub fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}
