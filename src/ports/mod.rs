//! Lock-free, per-shard RTP/RTCP port allocator.
//!
//! The operator's UDP port range (`--port-min`/`--port-max`) is aligned to
//! whole RTP/RTCP pairs (RFC 3550 §11: RTP on the even port, RTCP on the
//! next odd one) and split into one contiguous slice per shard, so shards
//! allocate without contending. [`PortAllocator`] hands out [`PortPair`]s
//! from a shard's slice using atomics only (no locks, no blocking), keeps a
//! released pair in quarantine for `release_delay` so late packets of an old
//! call never reach a new one, and reports typed errors for exhaustion and
//! for bad releases without corrupting its state.
//!
//! Sans-IO: no clock is read; every operation takes the caller's
//! `now: Instant`.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use mediarelay::ports::{PortAllocator, PortConfig, ShardId, Strategy};
//!
//! let epoch = Instant::now();
//! let config = PortConfig::new(30000, 40000, 4)?
//!     .with_strategy(Strategy::Sequential)
//!     .with_release_delay(Duration::from_secs(5));
//! let ports = PortAllocator::new(config, epoch);
//!
//! let pair = ports.allocate(ShardId(2), epoch)?;
//! assert_eq!(pair.rtcp(), pair.rtp() + 1);
//! assert_eq!(ports.shard_of(pair.rtcp()), Some(ShardId(2)));
//! ports.release(pair, epoch)?;
//! assert_eq!(ports.counts(ShardId(2)).unwrap().quarantined, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Design, state machine and memory orderings: `docs/ports.md`.

mod allocator;
mod config;
mod counts;
mod layout;
mod pair;
mod range;
mod slice;
mod state;
mod sync;

#[cfg(all(test, loom))]
mod loom_tests;

pub use allocator::{AllocError, PortAllocator, ReleaseError};
pub use config::{DEFAULT_RELEASE_DELAY, DEFAULT_SEED, PortConfig, Strategy};
pub use counts::Counts;
pub use layout::ShardId;
pub use pair::PortPair;
pub use range::{PortRange, RangeError};
