//! 64-bit SimHash over the same shingles: the measured alternative to MinHash (see `dedupe`).
//! Kept so the fixture test can report both side by side.

/// The SimHash fingerprint of a set of shingle hashes (each shingle weighs 1).
pub fn fingerprint(shingles: &[u64]) -> u64 {
    let mut counts = [0i32; 64];
    for &x in shingles {
        let h = super::mix(x);
        for (bit, count) in counts.iter_mut().enumerate() {
            *count += if h >> bit & 1 == 1 { 1 } else { -1 };
        }
    }
    counts
        .iter()
        .enumerate()
        .fold(0, |acc, (bit, &c)| if c > 0 { acc | 1 << bit } else { acc })
}

/// Similarity in 0–1: the share of equal bits.
pub fn similarity(a: u64, b: u64) -> f64 {
    1.0 - f64::from((a ^ b).count_ones()) / 64.0
}
