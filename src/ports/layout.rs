//! [`ShardId`] and the split of a [`PortRange`] into one contiguous slice per
//! shard.
//!
//! Contract: with `P` pairs and `S` shards (`S <= P`), slice `i` holds
//! `P / S` pairs, plus one more for the first `P % S` slices; slices are
//! contiguous, ordered by shard, disjoint, and cover the whole range. The
//! split is pure arithmetic, so [`ShardLayout::locate`] (the engine's
//! "which shard owns this port") is O(1) and needs no table.

use std::fmt;

use super::range::{PortRange, RangeError};

/// Index of a shard (one per core in the engine), `0..shards`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ShardId(pub u16);

/// A [`PortRange`] split into per-shard slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShardLayout {
    range: PortRange,
    /// At least 1 and at most `range.pairs()`.
    shards: u16,
}

impl ShardId {
    /// The shard number as an index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl ShardLayout {
    /// Splits `range` into `shards` slices of at least one pair each.
    pub(crate) fn new(range: PortRange, shards: u16) -> Result<Self, RangeError> {
        if shards == 0 {
            return Err(RangeError::NoShards);
        }
        if u32::from(shards) > range.pairs() {
            return Err(RangeError::TooManyShards {
                range,
                pairs: range.pairs(),
                shards,
            });
        }
        Ok(ShardLayout { range, shards })
    }

    /// The whole range.
    pub(crate) const fn range(&self) -> PortRange {
        self.range
    }

    /// Number of shards (slices).
    pub(crate) const fn shards(&self) -> u16 {
        self.shards
    }

    /// Pairs every slice has at least.
    fn base(&self) -> u32 {
        self.range.pairs() / u32::from(self.shards)
    }

    /// How many leading slices hold `base() + 1` pairs.
    fn longer(&self) -> u32 {
        self.range.pairs() % u32::from(self.shards)
    }

    /// The slice owned by `shard`, or `None` for an unknown shard.
    pub(crate) fn slice(&self, shard: ShardId) -> Option<PortRange> {
        if shard.0 >= self.shards {
            return None;
        }
        let i = u32::from(shard.0);
        let start = i * self.base() + i.min(self.longer());
        let len = self.base() + u32::from(i < self.longer());
        self.range.sub(start, len)
    }

    /// The shard owning `port` (RTP or RTCP) and the pair's index inside
    /// that shard's slice, or `None` outside the range.
    pub(crate) fn locate(&self, port: u16) -> Option<(ShardId, u32)> {
        let index = self.range.index_of(port)?;
        let base = self.base(); // >= 1 because shards <= pairs
        let long_span = self.longer() * (base + 1);
        let (shard, offset) = if index < long_span {
            (index / (base + 1), index % (base + 1))
        } else {
            let rest = index - long_span;
            (self.longer() + rest / base, rest % base)
        };
        Some((ShardId(u16::try_from(shard).ok()?), offset))
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shard {}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(min: u16, max: u16, shards: u16) -> ShardLayout {
        ShardLayout::new(PortRange::new(min, max).unwrap(), shards).unwrap()
    }

    #[test]
    fn slices_are_contiguous_disjoint_and_cover_the_range() {
        for pairs in 1u16..=23 {
            for shards in 1..=pairs {
                let l = layout(1000, 1000 + 2 * pairs - 1, shards);
                let mut next = 1000u32;
                for s in 0..shards {
                    let slice = l.slice(ShardId(s)).unwrap();
                    assert_eq!(u32::from(slice.min()), next, "{pairs} pairs / {shards}");
                    let len = slice.pairs();
                    let base = u32::from(pairs / shards);
                    assert!(len == base || len == base + 1);
                    for port in slice.min()..=slice.max() {
                        let (owner, offset) = l.locate(port).unwrap();
                        assert_eq!(owner, ShardId(s), "port {port}");
                        assert_eq!(Some(offset), slice.index_of(port));
                    }
                    next = u32::from(slice.max()) + 1;
                }
                assert_eq!(next, u32::from(l.range().max()) + 1);
                assert_eq!(l.slice(ShardId(shards)), None);
            }
        }
    }

    #[test]
    fn ports_outside_have_no_owner() {
        let l = layout(1000, 1019, 3);
        assert_eq!(l.locate(999), None);
        assert_eq!(l.locate(1020), None);
        assert_eq!(l.locate(1019).unwrap().0, ShardId(2));
    }

    #[test]
    fn shard_count_is_validated() {
        let r = PortRange::new(1000, 1005).unwrap(); // 3 pairs
        assert_eq!(ShardLayout::new(r, 0), Err(RangeError::NoShards));
        assert_eq!(
            ShardLayout::new(r, 4),
            Err(RangeError::TooManyShards {
                range: r,
                pairs: 3,
                shards: 4
            })
        );
        assert!(ShardLayout::new(r, 3).is_ok());
    }
}
