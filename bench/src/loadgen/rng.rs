//! A seeded pseudo-random generator (SplitMix64) whose output is fixed by its definition, not by
//! a crate version, so that a workload is the same for a given seed on every machine and release.

/// SplitMix64 (Steele, Lea and Flood): one 64-bit word of state, good enough statistics for
/// choosing benchmark data, and a stateless form ([`mix`]) for indexing large data sets lazily.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stateless hash of `(seed, a, b)`: the same inputs always give the same word, so item `a` of
/// a lazily generated data set can be recomputed without generating the items before it.
pub fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let first = finalize(seed.wrapping_add(a.wrapping_mul(GOLDEN_GAMMA)));
    finalize(
        first
            ^ b.wrapping_add(GOLDEN_GAMMA)
                .wrapping_mul(0xD6E8_FEB8_6659_FD93),
    )
}

/// Maps a 64-bit word onto `0..n` (Lemire's multiply-shift); `n == 0` gives 0.
pub fn scale_to(word: u64, n: u64) -> u64 {
    ((u128::from(word) * u128::from(n)) >> 64) as u64
}

impl SplitMix64 {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64-bit word.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        finalize(self.state)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        scale_to(self.next_u64(), n)
    }

    /// An index into a slice of length `len` (0 when `len` is 0).
    pub fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    /// True with probability `p` (clamped to `0.0..=1.0`).
    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for item_idx in (1..items.len()).rev() {
            let other = self.index(item_idx + 1);
            items.swap(item_idx, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_known_first_word() {
        let mut a = SplitMix64::new(7);
        let mut b = SplitMix64::new(7);
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        // The reference SplitMix64 output for seed 0 (from the published algorithm).
        assert_eq!(SplitMix64::new(0).next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_ne!(SplitMix64::new(8).next_u64(), xs[0]);
    }

    #[test]
    fn below_and_index_stay_in_range() {
        let mut rng = SplitMix64::new(1);
        for n in [1u64, 2, 3, 10, 1000] {
            for _ in 0..200 {
                assert!(rng.below(n) < n);
            }
        }
        assert_eq!(rng.below(0), 0);
        assert_eq!(scale_to(u64::MAX, 10), 9);
    }

    #[test]
    fn mix_is_stateless_and_spreads() {
        assert_eq!(mix(1, 2, 3), mix(1, 2, 3));
        assert_ne!(mix(1, 2, 3), mix(1, 3, 2));
        assert_ne!(mix(1, 2, 3), mix(2, 2, 3));
        let buckets = (0..10_000u64).fold([0u32; 4], |mut acc, i| {
            acc[scale_to(mix(9, i, 0), 4) as usize] += 1;
            acc
        });
        assert!(
            buckets.iter().all(|&n| (2200..2800).contains(&n)),
            "{buckets:?}"
        );
    }

    #[test]
    fn shuffle_is_a_seeded_permutation() {
        let mut items: Vec<u32> = (0..50).collect();
        SplitMix64::new(3).shuffle(&mut items);
        let mut again: Vec<u32> = (0..50).collect();
        SplitMix64::new(3).shuffle(&mut again);
        assert_eq!(items, again);
        assert_ne!(items, (0..50).collect::<Vec<_>>());
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
    }
}
