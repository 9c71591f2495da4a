//! The unit tests' deterministic random numbers (one definition, not a closure per test).

/// A xorshift64 generator from `seed`: each call gives the next value below `n`.
pub(crate) fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}
