//! Random inputs for the unit tests: a seeded xorshift, so every run draws
//! the same inputs and a failure repeats.

/// A generator of numbers below its argument, from `seed` (not zero).
pub fn numbers(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut state = seed;
    move |below| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    }
}
