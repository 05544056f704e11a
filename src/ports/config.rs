//! [`PortConfig`]: the validated allocator configuration (range, shard split,
//! [`Strategy`], release delay, PRNG seed).
//!
//! Contract: a `PortConfig` only exists for a range that holds at least one
//! pair per shard; everything after construction is infallible.

use std::time::Duration;

use super::layout::ShardLayout;
use super::range::{PortRange, RangeError};

/// Release delay used unless [`PortConfig::with_release_delay`] says
/// otherwise: long enough for a far end that keeps sending after the call
/// ended to stop (or be ignored) before the pair carries a new call, as long
/// as other pairs are left (a quarantine is cut short rather than an
/// allocation refused).
pub const DEFAULT_RELEASE_DELAY: Duration = Duration::from_secs(10);

/// Seed used unless [`PortConfig::with_seed`] says otherwise. Fixed, so tests
/// are reproducible; a daemon should seed from the OS (see [`Strategy::Random`]).
pub const DEFAULT_SEED: u64 = 0x6d65_6469_6172_656c; // "mediarel"

/// Where an allocation starts probing its shard's slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Next fit: start at a cursor just past the last pair handed out, so
    /// ports are used round-robin and a released pair is reached again only
    /// after the cursor has gone once around the slice (or when its
    /// quarantine is cut short because nothing else is left).
    Sequential,
    /// Start at a pseudo-random pair (lock-free SplitMix64 per slice), then
    /// probe upwards. Makes ports hard to predict for off-path injection
    /// (RTP Bleed); only as unpredictable as the seed, so seed it from the
    /// OS with [`PortConfig::with_seed`].
    #[default]
    Random,
}

/// Validated configuration of a [`PortAllocator`](super::PortAllocator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortConfig {
    layout: ShardLayout,
    strategy: Strategy,
    release_delay: Duration,
    seed: u64,
}

impl PortConfig {
    /// Validates the operator range `min..=max` (e.g. `--port-min 30000
    /// --port-max 40000`), aligns it to whole RTP/RTCP pairs (see
    /// [`PortRange::new`]) and splits it into `shards` slices of at least one
    /// pair each. Uses [`Strategy::Random`], [`DEFAULT_RELEASE_DELAY`] and
    /// [`DEFAULT_SEED`].
    pub fn new(min: u16, max: u16, shards: u16) -> Result<Self, RangeError> {
        Self::from_range(PortRange::new(min, max)?, shards)
    }

    /// As [`PortConfig::new`], from an already aligned range.
    pub fn from_range(range: PortRange, shards: u16) -> Result<Self, RangeError> {
        Ok(PortConfig {
            layout: ShardLayout::new(range, shards)?,
            strategy: Strategy::default(),
            release_delay: DEFAULT_RELEASE_DELAY,
            seed: DEFAULT_SEED,
        })
    }

    /// Sets the probing strategy.
    pub const fn with_strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// Sets how long a released pair stays quarantined, i.e. is passed over
    /// while free or expired pairs are left (zero allows immediate reuse).
    pub const fn with_release_delay(mut self, delay: Duration) -> Self {
        self.release_delay = delay;
        self
    }

    /// Sets the seed of the [`Strategy::Random`] generators.
    pub const fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The aligned port range.
    pub const fn range(&self) -> PortRange {
        self.layout.range()
    }

    /// Number of shards (slices).
    pub const fn shards(&self) -> u16 {
        self.layout.shards()
    }

    /// The probing strategy.
    pub const fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The release quarantine (a preference, see [`PortConfig::with_release_delay`]).
    pub const fn release_delay(&self) -> Duration {
        self.release_delay
    }

    /// The PRNG seed.
    pub const fn seed(&self) -> u64 {
        self.seed
    }

    /// The shard split.
    pub(crate) const fn layout(&self) -> &ShardLayout {
        &self.layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_builders() {
        let c = PortConfig::new(30000, 40000, 4).unwrap();
        assert_eq!(c.range().pairs(), 5000);
        assert_eq!(c.shards(), 4);
        assert_eq!(c.strategy(), Strategy::Random);
        assert_eq!(c.release_delay(), DEFAULT_RELEASE_DELAY);
        let c = c
            .with_strategy(Strategy::Sequential)
            .with_release_delay(Duration::ZERO)
            .with_seed(7);
        assert_eq!(
            (c.strategy(), c.release_delay(), c.seed()),
            (Strategy::Sequential, Duration::ZERO, 7)
        );
    }

    #[test]
    fn invalid_ranges_are_typed_errors() {
        assert_eq!(PortConfig::new(0, 10, 1), Err(RangeError::PortZero));
        assert_eq!(PortConfig::new(10, 20, 0), Err(RangeError::NoShards));
        assert!(matches!(
            PortConfig::new(10, 13, 3),
            Err(RangeError::TooManyShards {
                pairs: 2,
                shards: 3,
                ..
            })
        ));
    }
}
