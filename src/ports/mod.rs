//! Lock-free, per-shard RTP/RTCP port allocator.
//!
//! The operator's UDP port range (`--port-min`/`--port-max`) is aligned to
//! whole RTP/RTCP pairs (RFC 3550 §11: RTP on the even port, RTCP on the
//! next odd one) and split into one contiguous slice per shard, so shards
//! allocate without contending. [`PortAllocator`] hands out [`PortPair`]s
//! from a shard's slice (or, with [`PortAllocator::allocate_any`], from any
//! slice) using atomics only (no locks, no blocking, bounded work), and
//! reports typed errors for exhaustion and for bad releases without
//! corrupting its state.
//!
//! A released pair is quarantined for `release_delay` so that late packets
//! of an old call do not reach a new one. Quarantine is a preference, never
//! a refusal: an allocation takes a free or expired pair if there is one,
//! else the pair quarantined longest (cutting its quarantine short, which is
//! counted in [`Counts::quarantine_cut_short`]); only a slice with every pair
//! in use is exhausted.
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
//!
//! // One pair, quarantined: handed out anyway rather than refused.
//! let one = PortAllocator::new(PortConfig::new(30000, 30001, 1)?, epoch);
//! let p = one.allocate(ShardId(0), epoch)?;
//! one.release(p, epoch)?;
//! assert_eq!(one.allocate(ShardId(0), epoch)?, p);
//! assert_eq!(one.totals().quarantine_cut_short, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Design, state machine, allocation rule and its bound, memory orderings:
//! `docs/ports.md`.

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
