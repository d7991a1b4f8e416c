//! Tests of every manager: one conformance suite run against each, model-based property
//! tests, the concurrent manager's borrow states and stress test, and owned tokens.

mod concurrent;
mod conformance;
mod owned_token;
mod property;
mod stress;

/// A small, fast, seedable PRNG (xorshift64*), so the random tests need no dependency and
/// every failure replays from its seed.
pub(super) struct XorShift(u64);

impl XorShift {
    pub(super) fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`bound > 0`).
    pub(super) fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}
