//! MinHash signatures of shingle sets, their LSH band keys and the overlap estimate.

/// Values per signature (512 bytes stored). Measured on the fixtures: with 64 the estimate's
/// noise (±0.06) made the closest same-story and different-story pairs overlap; with 128 the
/// lowest same-story similarity is 0.44 and the highest different-story one 0.36.
pub const K: usize = 128;
/// Rows per LSH band: with 64 bands of two rows a pair of Jaccard similarity 0.15 (a short
/// version against a long rewrite) shares a band with probability ~0.77, and 0.25 with ~0.98,
/// while unrelated articles rarely share one.
pub const ROWS: usize = 2;
pub const BANDS: usize = K / ROWS;

/// A MinHash signature plus the size of the shingle set it summarises (needed to turn the
/// Jaccard estimate into an overlap estimate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub mins: [u32; K],
    pub shingles: u32,
}

impl Signature {
    /// The signature of a set of (distinct) shingle hashes, by one-permutation hashing: each
    /// shingle is hashed once, its top bits choose one of the `K` buckets and the bucket keeps
    /// the smallest low 32 bits. Empty buckets borrow from the next filled bucket to the right
    /// (circularly), mixed with the distance ("densification", Shrivastava & Li 2014), so
    /// positions stay comparable. One hash per shingle instead of `K` keeps signing cheap.
    pub fn of(shingles: &[u64]) -> Signature {
        const BITS: u32 = K.trailing_zeros();
        let mut mins = [u32::MAX; K];
        let mut filled = [false; K];
        for &x in shingles {
            let h = super::mix(x ^ 0x5851_f42d_4c95_7f2d);
            let bucket = (h >> (64 - BITS)) as usize;
            mins[bucket] = mins[bucket].min(h as u32);
            filled[bucket] = true;
        }
        if !shingles.is_empty() {
            for i in 0..K {
                if filled[i] {
                    continue;
                }
                let (d, j) = (1..K)
                    .map(|d| (d, (i + d) % K))
                    .find(|&(_, j)| filled[j])
                    .unwrap_or((0, i));
                mins[i] = super::mix(u64::from(mins[j]) ^ ((d as u64) << 32)) as u32;
            }
        }
        Signature {
            mins,
            shingles: u32::try_from(shingles.len()).unwrap_or(u32::MAX),
        }
    }

    /// Estimated Jaccard similarity: the share of equal minima.
    pub fn jaccard(&self, other: &Signature) -> f64 {
        if self.shingles == 0 || other.shingles == 0 {
            return 0.0;
        }
        let equal = self
            .mins
            .iter()
            .zip(&other.mins)
            .filter(|(x, y)| x == y)
            .count();
        equal as f64 / K as f64
    }

    /// Estimated overlap coefficient |A∩B| / min(|A|,|B|), from the Jaccard estimate J and the
    /// set sizes: |A∩B| = J·(|A|+|B|)/(1+J). Capped at 1.
    pub fn similarity(&self, other: &Signature) -> f64 {
        let j = self.jaccard(other);
        let (a, b) = (f64::from(self.shingles), f64::from(other.shingles));
        let smaller = a.min(b);
        if smaller == 0.0 {
            return 0.0;
        }
        (j * (a + b) / (1.0 + j) / smaller).min(1.0)
    }

    /// One key per LSH band; two signatures sharing a key are candidates. Keys are stored as
    /// BIGINT, so they are kept within i64.
    ///
    /// Band `b` takes the rows `b, b + BANDS, …`, not `ROWS` adjacent ones: densification fills
    /// an empty bucket from its right neighbour, so two adjacent rows often hold one shingle
    /// and a band of them is as loose as a single row. With a frequent shingle ("of the") that
    /// made unrelated articles share bands, and candidate checks grew with the window (bench
    /// `stories`: 7.3k → 20k articles/s at a 20,000-article window). Band keys stored before
    /// this change do not match new ones; they age out of the window.
    pub fn band_keys(&self) -> [u64; BANDS] {
        let mut keys = [0u64; BANDS];
        for (band, key) in keys.iter_mut().enumerate() {
            let mut h = super::mix(band as u64 + 1);
            for row in 0..ROWS {
                h = super::mix(h ^ u64::from(self.mins[band + row * BANDS]));
            }
            *key = h >> 1;
        }
        keys
    }

    /// Little-endian bytes: the shingle count, then the minima.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 4 * K);
        out.extend_from_slice(&self.shingles.to_le_bytes());
        for m in &self.mins {
            out.extend_from_slice(&m.to_le_bytes());
        }
        out
    }

    /// The inverse of [`Signature::to_bytes`]; `None` for a blob of the wrong length.
    pub fn from_bytes(bytes: &[u8]) -> Option<Signature> {
        if bytes.len() != 4 + 4 * K {
            return None;
        }
        let word =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        let mut mins = [0u32; K];
        for (i, m) in mins.iter_mut().enumerate() {
            *m = word(4 + 4 * i);
        }
        Some(Signature {
            mins,
            shingles: word(0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip() {
        let sig = Signature::of(&[1, 2, 3, 99]);
        assert_eq!(Signature::from_bytes(&sig.to_bytes()), Some(sig));
        assert_eq!(Signature::from_bytes(&[0; 7]), None);
    }

    #[test]
    fn overlap_of_a_subset_is_high_and_of_disjoint_sets_low() {
        let long: Vec<u64> = (0..400).map(super::super::mix).collect();
        let short = &long[..100];
        let other: Vec<u64> = (1000..1400).map(super::super::mix).collect();
        let l = Signature::of(&long);
        assert!(l.similarity(&Signature::of(short)) > 0.8);
        assert!(l.similarity(&Signature::of(&other)) < 0.1);
    }
}
