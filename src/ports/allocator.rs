//! [`PortAllocator`]: the lock-free, per-shard RTP/RTCP port allocator, and
//! its errors [`AllocError`] and [`ReleaseError`].
//!
//! Contract:
//! - `&self` everywhere, atomics only: any number of threads may allocate
//!   and release concurrently, in the same slice or not. No operation
//!   blocks or retries unboundedly: an allocation makes at most
//!   `MAX_PASSES` (4, `slice.rs`) passes over its slice (`allocate`) or
//!   over every slice (`allocate_any`), a further one only each time a
//!   concurrent allocation took the pair it was about to cut short.
//! - A pair is held by at most one allocation at a time.
//! - Quarantine is a preference, never a refusal: a released pair is not
//!   handed out again before `release_delay` has passed (measured on the
//!   caller's `now`) *while any free or expired pair is left*. When none is,
//!   the pair quarantined longest (smallest end tick) is handed out instead
//!   and counted in [`Counts::quarantine_cut_short`]. Only a slice (range,
//!   for `allocate_any`) with every pair in use is exhausted.
//! - A bad release (odd or out-of-range port, never allocated, already
//!   released) is a typed error and changes nothing; of two concurrent
//!   releases of one allocation exactly one succeeds.
//! - Sans-IO: time is the caller's `now`, kept as ticks since the `epoch`
//!   given at construction. Quarantined pairs become reusable lazily, when
//!   an allocation finds them expired.

use std::time::{Duration, Instant};

use super::config::{PortConfig, Strategy};
use super::counts::Counts;
use super::layout::{ShardId, ShardLayout};
use super::pair::PortPair;
use super::range::PortRange;
use super::slice::{MAX_PASSES, Oldest, Slice};
use super::state::{PairState, duration_ticks, ticks_since};

/// Why no pair was allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllocError {
    /// The shard does not exist.
    #[error("{shard} does not exist ({shards} shards)")]
    UnknownShard {
        /// The requested shard.
        shard: ShardId,
        /// How many shards there are.
        shards: u16,
    },
    /// Every pair of the shard's slice is in use. (Under concurrency also
    /// reported when the allocation raced: see `docs/ports.md`.)
    #[error(
        "ports exhausted on {shard}, slice {range}: {in_use} in use, {quarantined} quarantined, {total} total"
    )]
    Exhausted {
        /// The shard whose slice is full.
        shard: ShardId,
        /// That shard's slice.
        range: PortRange,
        /// Pairs allocated.
        in_use: u32,
        /// Pairs released and waiting out (or past) their release delay;
        /// 0 unless the allocation raced with others.
        quarantined: u32,
        /// Pairs in the slice.
        total: u32,
    },
    /// [`PortAllocator::allocate_any`] found every pair of every slice in
    /// use (or raced, as for `Exhausted`).
    #[error(
        "ports exhausted on all shards, range {range}: {in_use} in use, {quarantined} quarantined, {total} total"
    )]
    AllExhausted {
        /// The whole range.
        range: PortRange,
        /// Pairs allocated.
        in_use: u32,
        /// Pairs released and waiting out (or past) their release delay;
        /// 0 unless the allocation raced with others.
        quarantined: u32,
        /// Pairs in the range.
        total: u32,
    },
}

/// Why a release was refused. A refused release changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReleaseError {
    /// The port is odd: pairs are named by their even RTP port.
    #[error("port {port} is odd; release the pair by its even RTP port")]
    OddPort {
        /// The port given.
        port: u16,
    },
    /// The port is outside the allocator's range.
    #[error("port {port} is outside the port range {range}")]
    OutOfRange {
        /// The port given.
        port: u16,
        /// The allocator's range.
        range: PortRange,
    },
    /// The pair was never allocated.
    #[error("port pair {pair} was never allocated")]
    NeverAllocated {
        /// The pair given.
        pair: PortPair,
    },
    /// The pair was released and not allocated again since.
    #[error("port pair {pair} is already released")]
    AlreadyReleased {
        /// The pair given.
        pair: PortPair,
    },
}

/// Lock-free allocator of RTP/RTCP [`PortPair`]s over a port range split
/// into one slice per shard. Share it by reference or `Arc`.
#[derive(Debug)]
pub struct PortAllocator {
    layout: ShardLayout,
    /// `slices[i]` belongs to `ShardId(i)`.
    slices: Box<[Slice]>,
    strategy: Strategy,
    release_delay: Duration,
    delay_ticks: u64,
    epoch: Instant,
}

impl PortAllocator {
    /// An allocator with every pair free. Times passed later are measured
    /// from `epoch` (any instant not after the first `now` used).
    pub fn new(config: PortConfig, epoch: Instant) -> Self {
        let layout = *config.layout();
        let slices = (0..layout.shards())
            .filter_map(|s| {
                let range = layout.slice(ShardId(s))?; // Some for s < shards
                // Distinct PRNG stream per slice.
                let seed = config.seed() ^ u64::from(s).wrapping_mul(0xa076_1d64_78bd_642f);
                Some(Slice::new(range, seed))
            })
            .collect();
        PortAllocator {
            layout,
            slices,
            strategy: config.strategy(),
            release_delay: config.release_delay(),
            delay_ticks: duration_ticks(config.release_delay()),
            epoch,
        }
    }

    /// The whole (aligned) port range.
    pub const fn range(&self) -> PortRange {
        self.layout.range()
    }

    /// Number of shards.
    pub const fn shards(&self) -> u16 {
        self.layout.shards()
    }

    /// The probing strategy.
    pub const fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The release quarantine (preferred, not guaranteed: see
    /// [`PortAllocator::allocate`]).
    pub const fn release_delay(&self) -> Duration {
        self.release_delay
    }

    /// The shard whose slice holds `port` (RTP or RTCP), or `None` outside
    /// the range. Traffic and control calls for a port belong on this shard.
    pub fn shard_of(&self, port: u16) -> Option<ShardId> {
        Some(self.layout.locate(port)?.0)
    }

    /// The slice of `shard`, or `None` for an unknown shard.
    pub fn slice_range(&self, shard: ShardId) -> Option<PortRange> {
        Some(self.slice(shard)?.range())
    }

    /// Counters of `shard`'s slice, or `None` for an unknown shard. Exact
    /// when no operation is in flight; see [`Counts`].
    pub fn counts(&self, shard: ShardId) -> Option<Counts> {
        Some(self.slice(shard)?.counts())
    }

    /// Counters summed over all slices (each slice read separately), among
    /// them the quarantines cut short over the whole range.
    pub fn totals(&self) -> Counts {
        self.slices
            .iter()
            .fold(Counts::default(), |sum, s| sum.plus(s.counts()))
    }

    /// Allocates a pair from `shard`'s slice at time `now`: a free pair or
    /// one whose quarantine has ended; failing that, the pair of the slice
    /// quarantined longest, its quarantine cut short (counted in
    /// [`Counts::quarantine_cut_short`]). `Exhausted` only when every pair of
    /// the slice is in use (or, under concurrency, the allocation lost the
    /// race for a quarantined pair on each of its 4 passes: other
    /// allocations were draining the slice).
    pub fn allocate(&self, shard: ShardId, now: Instant) -> Result<PortPair, AllocError> {
        let slice = self.slice(shard).ok_or(AllocError::UnknownShard {
            shard,
            shards: self.shards(),
        })?;
        if let Some(pair) = slice.allocate(self.strategy, self.tick(now)) {
            return Ok(pair);
        }
        let c = slice.counts();
        Err(AllocError::Exhausted {
            shard,
            range: slice.range(),
            in_use: c.in_use,
            quarantined: c.quarantined,
            total: c.total,
        })
    }

    /// Allocates from any slice, `preferred`'s first, and returns the shard
    /// whose slice the pair came from.
    ///
    /// 1. A free or expired pair: `preferred`'s slice, then the following
    ///    shards' slices (wrapping). No quarantine is cut short while any
    ///    slice has such a pair.
    /// 2. Failing that, the pair quarantined longest in the *whole range*
    ///    (smallest end tick; a tie goes to the slice met first in the order
    ///    above), its quarantine cut short and counted on its slice.
    /// 3. Failing that, `AllExhausted`: every pair of the range is in use.
    ///
    /// Globally oldest rather than preferred-slice-first because the
    /// quarantine is what keeps a stale far end's packets away from a new
    /// call: when one must be cut short, the one released longest ago is the
    /// least likely to still receive any.
    pub fn allocate_any(
        &self,
        preferred: ShardId,
        now: Instant,
    ) -> Result<(ShardId, PortPair), AllocError> {
        let shards = self.shards();
        if preferred.0 >= shards {
            return Err(AllocError::UnknownShard {
                shard: preferred,
                shards,
            });
        }
        let now = self.tick(now);
        for _ in 0..MAX_PASSES {
            let mut oldest: Option<(ShardId, &Slice, Oldest)> = None;
            for k in 0..shards {
                // < 2 * u16::MAX, fits u32; the remainder is < shards.
                let s = (u32::from(preferred.0) + u32::from(k)) % u32::from(shards);
                let shard = ShardId(u16::try_from(s).unwrap_or(0));
                let Some(slice) = self.slice(shard) else {
                    continue;
                };
                match slice.claim(self.strategy, now) {
                    Ok(pair) => return Ok((shard, pair)),
                    Err(Some(o)) if oldest.is_none_or(|(_, _, best)| o.until < best.until) => {
                        oldest = Some((shard, slice, o));
                    }
                    Err(_) => {}
                }
            }
            // Nothing quarantined was seen: every pair is in use.
            let Some((shard, slice, o)) = oldest else {
                break;
            };
            if let Some(pair) = slice.cut_short(self.strategy, o) {
                return Ok((shard, pair));
            }
            // Lost the pair to a concurrent allocation: look again.
        }
        let c = self.totals();
        Err(AllocError::AllExhausted {
            range: self.range(),
            in_use: c.in_use,
            quarantined: c.quarantined,
            total: c.total,
        })
    }

    /// Releases `pair` at time `now`; it is quarantined until
    /// `now + release_delay`, handed out again before that only if nothing
    /// else is left.
    pub fn release(&self, pair: PortPair, now: Instant) -> Result<(), ReleaseError> {
        let port = pair.rtp();
        let (shard, index) = self.layout.locate(port).ok_or(ReleaseError::OutOfRange {
            port,
            range: self.range(),
        })?;
        let slice = self.slice(shard).ok_or(ReleaseError::OutOfRange {
            port,
            range: self.range(),
        })?;
        let until = self.tick(now).saturating_add(self.delay_ticks);
        slice.release(index, until).map_err(|found| match found {
            PairState::Quarantined { .. } => ReleaseError::AlreadyReleased { pair },
            // `Allocated` cannot be found: the CAS would have succeeded.
            PairState::Free | PairState::Allocated => ReleaseError::NeverAllocated { pair },
        })
    }

    /// As [`PortAllocator::release`], for a raw RTP port number (e.g. from a
    /// control command): odd ports are refused.
    pub fn release_port(&self, rtp_port: u16, now: Instant) -> Result<(), ReleaseError> {
        let pair = PortPair::new(rtp_port).ok_or(if rtp_port == 0 {
            ReleaseError::OutOfRange {
                port: 0,
                range: self.range(),
            }
        } else {
            ReleaseError::OddPort { port: rtp_port }
        })?;
        self.release(pair, now)
    }

    fn slice(&self, shard: ShardId) -> Option<&Slice> {
        self.slices.get(shard.index())
    }

    fn tick(&self, now: Instant) -> u64 {
        ticks_since(self.epoch, now)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn alloc(min: u16, max: u16, shards: u16, strategy: Strategy) -> (PortAllocator, Instant) {
        let epoch = Instant::now();
        let config = PortConfig::new(min, max, shards)
            .unwrap()
            .with_strategy(strategy)
            .with_release_delay(100 * MS);
        (PortAllocator::new(config, epoch), epoch)
    }

    #[test]
    fn shards_allocate_from_their_own_slice() {
        for strategy in [Strategy::Sequential, Strategy::Random] {
            let (a, t) = alloc(30000, 30019, 3, strategy); // 10 pairs: 4+3+3
            for s in 0..3 {
                let shard = ShardId(s);
                let slice = a.slice_range(shard).unwrap();
                let total = a.counts(shard).unwrap().total;
                for _ in 0..total {
                    let p = a.allocate(shard, t).unwrap();
                    assert!(slice.contains(p.rtp()) && slice.contains(p.rtcp()));
                    assert_eq!(a.shard_of(p.rtp()), Some(shard));
                    assert_eq!(a.shard_of(p.rtcp()), Some(shard));
                }
                assert_eq!(
                    a.allocate(shard, t),
                    Err(AllocError::Exhausted {
                        shard,
                        range: slice,
                        in_use: total,
                        quarantined: 0,
                        total
                    })
                );
            }
            assert_eq!(a.totals().in_use, 10);
        }
    }

    #[test]
    fn released_pairs_wait_out_the_delay_while_others_are_left() {
        let (a, t) = alloc(30000, 30005, 1, Strategy::Random); // 3 pairs
        let p = a.allocate(ShardId(0), t).unwrap();
        let q = a.allocate(ShardId(0), t).unwrap();
        a.release(p, t).unwrap();
        // The never-used third pair goes first: p is still quarantined.
        let r = a.allocate(ShardId(0), t + 99 * MS).unwrap();
        assert!(r != p && r != q);
        assert_eq!(a.totals().quarantine_cut_short, 0);
        // p's quarantine has ended: taken without cutting anything short.
        assert_eq!(a.allocate(ShardId(0), t + 100 * MS), Ok(p));
        let c = a.totals();
        assert_eq!((c.in_use, c.quarantined, c.free), (3, 0, 0));
        assert_eq!(c.quarantine_cut_short, 0);
    }

    #[test]
    fn quarantine_is_cut_short_rather_than_refused() {
        let (a, t) = alloc(30000, 30005, 1, Strategy::Random); // 3 pairs
        let p: Vec<PortPair> = (0..3).map(|_| a.allocate(ShardId(0), t).unwrap()).collect();
        a.release(p[1], t).unwrap();
        a.release(p[0], t + 10 * MS).unwrap();
        a.release(p[2], t + 20 * MS).unwrap();
        // Nothing expired at +30 ms: oldest first, each counted.
        let now = t + 30 * MS;
        for (n, want) in [p[1], p[0], p[2]].into_iter().enumerate() {
            assert_eq!(a.allocate(ShardId(0), now), Ok(want));
            assert_eq!(
                a.counts(ShardId(0)).unwrap().quarantine_cut_short,
                n as u64 + 1
            );
        }
        // Every pair in use: exhausted, with nothing quarantined.
        let err = a.allocate(ShardId(0), now).unwrap_err();
        assert_eq!(
            err,
            AllocError::Exhausted {
                shard: ShardId(0),
                range: a.range(),
                in_use: 3,
                quarantined: 0,
                total: 3
            }
        );
        assert_eq!(
            err.to_string(),
            "ports exhausted on shard 0, slice 30000-30005: 3 in use, 0 quarantined, 3 total"
        );
        assert_eq!(a.totals().quarantine_cut_short, 3);
    }

    #[test]
    fn bad_releases_are_typed_and_change_nothing() {
        let (a, t) = alloc(30000, 30007, 2, Strategy::Sequential);
        let p = a.allocate(ShardId(1), t).unwrap();
        let before = a.totals();
        let never = PortPair::new(30000).unwrap();
        assert_eq!(
            a.release(never, t),
            Err(ReleaseError::NeverAllocated { pair: never })
        );
        assert_eq!(
            a.release_port(30005, t),
            Err(ReleaseError::OddPort { port: 30005 })
        );
        let range = a.range();
        assert_eq!(
            a.release_port(29998, t),
            Err(ReleaseError::OutOfRange { port: 29998, range })
        );
        assert_eq!(
            a.release_port(30008, t),
            Err(ReleaseError::OutOfRange { port: 30008, range })
        );
        assert_eq!(
            a.release_port(0, t),
            Err(ReleaseError::OutOfRange { port: 0, range })
        );
        assert_eq!(a.totals(), before);
        a.release_port(p.rtp(), t).unwrap();
        assert_eq!(
            a.release(p, t),
            Err(ReleaseError::AlreadyReleased { pair: p })
        );
        let c = a.totals();
        assert_eq!((c.in_use, c.quarantined, c.free, c.total), (0, 1, 3, 4));
    }

    #[test]
    fn allocate_any_falls_back_to_other_shards() {
        let (a, t) = alloc(30000, 30007, 2, Strategy::Sequential); // 2 + 2
        assert_eq!(a.allocate_any(ShardId(1), t).unwrap().0, ShardId(1));
        assert_eq!(a.allocate_any(ShardId(1), t).unwrap().0, ShardId(1));
        let (shard, pair) = a.allocate_any(ShardId(1), t).unwrap();
        assert_eq!(
            (shard, a.shard_of(pair.rtp())),
            (ShardId(0), Some(ShardId(0)))
        );
        a.allocate_any(ShardId(0), t).unwrap();
        assert_eq!(
            a.allocate_any(ShardId(0), t),
            Err(AllocError::AllExhausted {
                range: a.range(),
                in_use: 4,
                quarantined: 0,
                total: 4
            })
        );
        assert_eq!(
            a.allocate_any(ShardId(2), t),
            Err(AllocError::UnknownShard {
                shard: ShardId(2),
                shards: 2
            })
        );
    }

    #[test]
    fn allocate_any_takes_claimable_pairs_anywhere_before_cutting_short() {
        let (a, t) = alloc(30000, 30011, 3, Strategy::Sequential); // 2 + 2 + 2
        let held: Vec<(ShardId, PortPair)> = (0..6)
            .map(|_| a.allocate_any(ShardId(0), t).unwrap())
            .collect();
        // Quarantine shard 0's and shard 1's pairs; leave one of shard 2's
        // expired.
        let (_, expired) = held[4];
        a.release(expired, t).unwrap(); // until +100 ms
        for (i, &(_, p)) in held.iter().enumerate().take(4) {
            a.release(p, t + (60 + i as u32) * MS).unwrap(); // until +160.. ms
        }
        let now = t + 150 * MS;
        // The expired pair in shard 2's slice beats cutting shard 0's short.
        assert_eq!(a.allocate_any(ShardId(0), now), Ok((ShardId(2), expired)));
        assert_eq!(a.totals().quarantine_cut_short, 0);
        // Then the globally oldest quarantine, in release order, whatever
        // the preferred shard.
        for (n, &(shard, p)) in held.iter().take(4).enumerate() {
            assert_eq!(a.allocate_any(ShardId(1), now), Ok((shard, p)));
            assert_eq!(a.totals().quarantine_cut_short, n as u64 + 1);
        }
        assert_eq!(a.counts(ShardId(0)).unwrap().quarantine_cut_short, 2);
        assert_eq!(a.counts(ShardId(1)).unwrap().quarantine_cut_short, 2);
        assert_eq!(a.counts(ShardId(2)).unwrap().quarantine_cut_short, 0);
        assert_eq!(
            a.allocate_any(ShardId(2), now),
            Err(AllocError::AllExhausted {
                range: a.range(),
                in_use: 6,
                quarantined: 0,
                total: 6
            })
        );
    }

    #[test]
    fn allocate_any_breaks_ties_towards_the_preferred_shard() {
        let (a, t) = alloc(30000, 30007, 2, Strategy::Sequential); // 2 + 2
        let held: Vec<(ShardId, PortPair)> = (0..4)
            .map(|_| a.allocate_any(ShardId(0), t).unwrap())
            .collect();
        for &(_, p) in &held {
            a.release(p, t).unwrap();
        }
        assert_eq!(a.allocate_any(ShardId(1), t).unwrap().0, ShardId(1));
        assert_eq!(a.allocate_any(ShardId(0), t).unwrap().0, ShardId(0));
        assert_eq!(a.allocate_any(ShardId(1), t).unwrap().0, ShardId(1));
        assert_eq!(a.allocate_any(ShardId(1), t).unwrap().0, ShardId(0));
        assert_eq!(a.totals().quarantine_cut_short, 4);
    }

    #[test]
    fn unknown_shard() {
        let (a, t) = alloc(30000, 30007, 2, Strategy::Random);
        assert_eq!(
            a.allocate(ShardId(2), t),
            Err(AllocError::UnknownShard {
                shard: ShardId(2),
                shards: 2
            })
        );
        assert_eq!(a.counts(ShardId(2)), None);
        assert_eq!(a.slice_range(ShardId(2)), None);
    }

    #[test]
    fn times_before_the_epoch_count_as_the_epoch() {
        let (a, t) = alloc(30000, 30001, 1, Strategy::Random);
        let p = a.allocate(ShardId(0), t).unwrap();
        a.release(p, t).unwrap();
        // Quarantined until epoch + 100 ms; an earlier `now` does not end
        // the quarantine: taking the pair cuts it short.
        assert_eq!(a.allocate(ShardId(0), t - Duration::from_secs(1)), Ok(p));
        assert_eq!(a.totals().quarantine_cut_short, 1);
        // Released "before the epoch": quarantined until epoch + 100 ms.
        a.release(p, t - Duration::from_secs(1)).unwrap();
        assert_eq!(a.allocate(ShardId(0), t + 99 * MS), Ok(p));
        assert_eq!(a.totals().quarantine_cut_short, 2);
        a.release(p, t - Duration::from_secs(1)).unwrap();
        assert_eq!(a.allocate(ShardId(0), t + 100 * MS), Ok(p));
        assert_eq!(a.totals().quarantine_cut_short, 2);
    }

    #[test]
    fn random_seeds_change_the_order() {
        let epoch = Instant::now();
        let order = |seed| {
            let c = PortConfig::new(30000, 30199, 1).unwrap().with_seed(seed);
            let a = PortAllocator::new(c, epoch);
            (0..10)
                .map(|_| a.allocate(ShardId(0), epoch).unwrap().rtp())
                .collect::<Vec<_>>()
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
    }

    #[test]
    fn concurrent_double_release_succeeds_once() {
        let (a, t) = alloc(30000, 30003, 1, Strategy::Random);
        for _ in 0..50 {
            let p = a
                .allocate(ShardId(0), t + Duration::from_secs(1000))
                .unwrap();
            let barrier = std::sync::Barrier::new(4);
            let oks = std::thread::scope(|s| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        s.spawn(|| {
                            barrier.wait();
                            a.release(p, t).is_ok()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|&ok| ok)
                    .count()
            });
            assert_eq!(oks, 1);
        }
    }
}
