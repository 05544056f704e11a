//! [`PortRange`]: a validated, pair-aligned UDP port range, and
//! [`RangeError`] for ranges that cannot hold a pair.
//!
//! Contract: a `PortRange` always starts on an even port, ends on the odd
//! RTCP port of its last pair, and holds at least one [`PortPair`]. The
//! operator's `--port-min`/`--port-max` are rounded *inwards*: `min` up to
//! the next even port, `max` down so the last pair's RTCP port still fits.

use std::fmt;

use super::pair::PortPair;

/// Why a port range (or its split into shard slices) was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// `min` is 0, which the socket API reads as "any port".
    #[error("port range may not start at port 0")]
    PortZero,
    /// `min` is larger than `max`.
    #[error("port range {min}-{max} is inverted (min > max)")]
    Inverted {
        /// Requested lower bound.
        min: u16,
        /// Requested upper bound.
        max: u16,
    },
    /// After aligning `min` up to even and `max` down to the last RTCP port,
    /// not a single RTP/RTCP pair fits.
    #[error("port range {min}-{max} holds no even/odd RTP/RTCP pair")]
    NoPair {
        /// Requested lower bound.
        min: u16,
        /// Requested upper bound.
        max: u16,
    },
    /// Zero shards were asked for.
    #[error("port range must be split into at least one shard slice")]
    NoShards,
    /// Fewer pairs than shards: some shard would get an empty slice.
    #[error("port range {range} has {pairs} pairs, too few for {shards} shards")]
    TooManyShards {
        /// The aligned range.
        range: PortRange,
        /// Pairs in the aligned range.
        pairs: u32,
        /// Requested shard count.
        shards: u16,
    },
}

/// A non-empty, pair-aligned port range: `min()` is even, `max()` is odd,
/// and it holds `pairs()` consecutive [`PortPair`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortRange {
    /// First RTP port (even, non-zero).
    first: u16,
    /// Number of pairs, at least 1.
    pairs: u16,
}

impl PortRange {
    /// Aligns the operator range `min..=max` to whole pairs: `min` is rounded
    /// up to even, `max` down to the RTCP port of the last pair that fits.
    ///
    /// `PortRange::new(30000, 40000)` holds the pairs 30000/30001 through
    /// 39998/39999 (40000 has no RTCP port inside the range).
    pub fn new(min: u16, max: u16) -> Result<Self, RangeError> {
        if min == 0 {
            return Err(RangeError::PortZero);
        }
        if min > max {
            return Err(RangeError::Inverted { min, max });
        }
        // u32 so that rounding 65535 up to 65536 does not wrap.
        let first = (u32::from(min) + 1) & !1;
        let end = u32::from(max) + 1; // exclusive
        let pairs = end.saturating_sub(first) / 2;
        let (Ok(first), Ok(pairs)) = (u16::try_from(first), u16::try_from(pairs)) else {
            return Err(RangeError::NoPair { min, max });
        };
        if pairs == 0 {
            return Err(RangeError::NoPair { min, max });
        }
        Ok(PortRange { first, pairs })
    }

    /// The first (even) RTP port.
    pub const fn min(self) -> u16 {
        self.first
    }

    /// The last (odd) RTCP port.
    pub const fn max(self) -> u16 {
        // pairs <= 32767 and first + 2 * pairs - 1 <= 65535 by construction;
        // the parentheses keep the intermediate sum in range too.
        self.first + (2 * self.pairs - 1)
    }

    /// How many RTP/RTCP pairs the range holds (at least 1).
    pub const fn pairs(self) -> u32 {
        self.pairs as u32
    }

    /// True when `port` (RTP or RTCP) lies in the range.
    pub const fn contains(self, port: u16) -> bool {
        port >= self.min() && port <= self.max()
    }

    /// The pair at `index` (0-based), or `None` past the end.
    pub fn pair(self, index: u32) -> Option<PortPair> {
        if index >= self.pairs() {
            return None;
        }
        // index < pairs, so the port is inside the range and even.
        let rtp = u16::try_from(u32::from(self.first) + 2 * index).ok()?;
        PortPair::new(rtp)
    }

    /// The 0-based index of the pair that owns `port` (its RTP or RTCP
    /// port), or `None` outside the range.
    pub fn index_of(self, port: u16) -> Option<u32> {
        if !self.contains(port) {
            return None;
        }
        Some(u32::from(port - self.first) / 2)
    }

    /// The sub-range of `pairs` pairs starting at pair `start`, or `None`
    /// when it would be empty or run past the end.
    pub(crate) fn sub(self, start: u32, pairs: u32) -> Option<PortRange> {
        if pairs == 0 || start.checked_add(pairs)? > self.pairs() {
            return None;
        }
        let first = self.pair(start)?.rtp();
        Some(PortRange {
            first,
            pairs: u16::try_from(pairs).ok()?,
        })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.min(), self.max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_range_is_kept_whole_pairs() {
        let r = PortRange::new(30000, 40000).unwrap();
        assert_eq!((r.min(), r.max(), r.pairs()), (30000, 39999, 5000));
        let r = PortRange::new(30000, 40001).unwrap();
        assert_eq!((r.min(), r.max(), r.pairs()), (30000, 40001, 5001));
        assert_eq!(r.to_string(), "30000-40001");
    }

    #[test]
    fn odd_min_rounds_up_and_even_max_rounds_down() {
        let r = PortRange::new(30001, 30010).unwrap();
        assert_eq!((r.min(), r.max(), r.pairs()), (30002, 30009, 4));
    }

    #[test]
    fn full_port_space() {
        let r = PortRange::new(1, u16::MAX).unwrap();
        assert_eq!((r.min(), r.max(), r.pairs()), (2, 65535, 32767));
        assert_eq!(r.pair(32766).unwrap().rtcp(), 65535);
        assert_eq!(r.pair(32767), None);
    }

    #[test]
    fn ranges_without_a_pair_are_rejected() {
        assert_eq!(PortRange::new(0, 100), Err(RangeError::PortZero));
        assert_eq!(
            PortRange::new(200, 100),
            Err(RangeError::Inverted { min: 200, max: 100 })
        );
        for (min, max) in [
            (30001, 30002),
            (30000, 30000),
            (65535, 65535),
            (65534, 65534),
        ] {
            assert_eq!(
                PortRange::new(min, max),
                Err(RangeError::NoPair { min, max }),
                "{min}-{max}"
            );
        }
        assert_eq!(PortRange::new(65534, 65535).unwrap().pairs(), 1);
    }

    #[test]
    fn index_of_maps_rtp_and_rtcp_to_the_same_pair() {
        let r = PortRange::new(100, 109).unwrap();
        assert_eq!(r.index_of(99), None);
        assert_eq!(r.index_of(100), Some(0));
        assert_eq!(r.index_of(101), Some(0));
        assert_eq!(r.index_of(108), Some(4));
        assert_eq!(r.index_of(109), Some(4));
        assert_eq!(r.index_of(110), None);
        for i in 0..r.pairs() {
            assert_eq!(r.index_of(r.pair(i).unwrap().rtp()), Some(i));
        }
    }

    #[test]
    fn sub_ranges_stay_inside() {
        let r = PortRange::new(100, 109).unwrap();
        let s = r.sub(1, 3).unwrap();
        assert_eq!((s.min(), s.max()), (102, 107));
        assert_eq!(r.sub(4, 1).unwrap().max(), 109);
        assert_eq!(r.sub(4, 2), None);
        assert_eq!(r.sub(0, 0), None);
        assert_eq!(r.sub(u32::MAX, 2), None);
    }
}
