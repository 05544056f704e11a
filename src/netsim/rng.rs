//! Small seeded pseudo-random number generator: xoshiro256** (Blackman and
//! Vigna, 2018) seeded through SplitMix64. Not cryptographic; chosen because
//! it is tiny, fast, has a 2^256 - 1 period and passes BigCrush, and because
//! the whole simulator must replay bit for bit from one `u64` seed.

use std::time::Duration;

/// Seeded xoshiro256** generator.
///
/// The same seed always yields the same stream on every platform; nothing
/// here reads the clock or the operating system's entropy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    /// A generator whose state is expanded from `seed` by SplitMix64, as the
    /// xoshiro authors recommend (any seed is fine, `0` included).
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        // SplitMix64 is a bijection of its counter, so four consecutive
        // outputs are never all zero: the xoshiro state is valid.
        let s = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Self { s }
    }

    /// An independent stream for `key` under `seed`: the key bytes are hashed
    /// (FNV-1a, then SplitMix64 finalisation mixed with the seed) into the
    /// seed of a fresh generator. Same `(seed, key)`, same stream.
    pub fn for_stream(seed: u64, key: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in key {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        Self::new(mix64(seed ^ mix64(h)))
    }

    /// Next 64 uniformly distributed bits.
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform `f64` in `[0, 1)` with 53 bits of precision.
    pub fn next_f64(&mut self) -> f64 {
        unit_f64(self.next_u64())
    }

    /// `true` with probability `p`: always `false` for `p <= 0`, always
    /// `true` for `p >= 1`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.next_f64() < p
    }

    /// Uniform integer in `[0, n)`, without bias (Lemire's multiply-shift
    /// with rejection). Returns `0` for `n == 0`.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        if (m as u64) < n {
            let threshold = n.wrapping_neg() % n;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
            }
        }
        (m >> 64) as u64
    }

    /// Uniform duration in `[lo, hi]`, both inclusive, at nanosecond
    /// resolution. Returns `lo` when `hi <= lo`. Spans beyond `u64::MAX - 1`
    /// nanoseconds (about 584 years) are truncated to that.
    pub fn uniform(&mut self, lo: Duration, hi: Duration) -> Duration {
        if hi <= lo {
            return lo;
        }
        let span = u64::try_from((hi - lo).as_nanos()).unwrap_or(u64::MAX - 1);
        let span = span.min(u64::MAX - 1);
        lo + Duration::from_nanos(self.below(span + 1))
    }
}

/// Maps 64 random bits to `[0, 1)` using the top 53 bits.
pub(crate) fn unit_f64(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Maps 64 random bits to `[0, n)` in one step (multiply-shift, no
/// rejection: the bias is below `n / 2^64`, negligible for the durations in
/// nanoseconds it is used for). Used where a fixed number of draws per
/// datagram matters more than exactness at the 2^-40 level.
pub(crate) fn scale_below(bits: u64, n: u64) -> u64 {
    ((u128::from(bits) * u128::from(n)) >> 64) as u64
}

/// One SplitMix64 step (Steele, Lea and Flood, 2014).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    mix64(*state)
}

/// The SplitMix64 finaliser: a bijective 64-bit mixer.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_different_seed_differs() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xa: Vec<u64> = (0..64).map(|_| a.next_u64()).collect();
        let xb: Vec<u64> = (0..64).map(|_| b.next_u64()).collect();
        let xc: Vec<u64> = (0..64).map(|_| c.next_u64()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
    }

    #[test]
    fn zero_seed_is_usable() {
        let mut r = Rng::new(0);
        assert_ne!(r.next_u64(), r.next_u64());
    }

    #[test]
    fn streams_differ_by_key() {
        let mut a = Rng::for_stream(1, b"a");
        let mut b = Rng::for_stream(1, b"b");
        let mut a2 = Rng::for_stream(1, b"a");
        let x = a.next_u64();
        assert_ne!(x, b.next_u64());
        assert_eq!(x, a2.next_u64());
    }

    #[test]
    fn next_f64_in_unit_interval_with_mean_half() {
        let mut r = Rng::new(3);
        let n = 100_000;
        let mut sum = 0.0;
        for _ in 0..n {
            let x = r.next_f64();
            assert!((0.0..1.0).contains(&x));
            sum += x;
        }
        let mean = sum / f64::from(n);
        assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
    }

    #[test]
    fn chance_extremes() {
        let mut r = Rng::new(4);
        for _ in 0..10_000 {
            assert!(!r.chance(0.0));
            assert!(r.chance(1.0));
        }
    }

    #[test]
    fn below_in_range_and_roughly_uniform() {
        let mut r = Rng::new(5);
        let mut counts = [0u32; 6];
        for _ in 0..60_000 {
            let x = r.below(6);
            counts[x as usize] += 1;
        }
        for c in counts {
            assert!((9_000..11_000).contains(&c), "{counts:?}");
        }
        assert_eq!(r.below(0), 0);
        assert_eq!(r.below(1), 0);
    }

    #[test]
    fn uniform_bounds_inclusive() {
        let mut r = Rng::new(6);
        let lo = Duration::from_nanos(10);
        let hi = Duration::from_nanos(12);
        let mut seen = [false; 3];
        for _ in 0..1_000 {
            let d = r.uniform(lo, hi);
            assert!(d >= lo && d <= hi);
            seen[(d.as_nanos() - 10) as usize] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(r.uniform(hi, lo), hi);
        let big = r.uniform(Duration::ZERO, Duration::MAX);
        assert!(big <= Duration::MAX);
    }

    #[test]
    fn scale_below_stays_in_range() {
        assert_eq!(scale_below(u64::MAX, 10), 9);
        assert_eq!(scale_below(0, 10), 0);
        assert_eq!(scale_below(u64::MAX, 0), 0);
    }
}
