//! [`Slice`]: one shard's contiguous run of pairs, its state words, probe
//! cursor / PRNG and counters. All operations are lock-free.
//!
//! # Memory orderings
//!
//! - Pair word, allocation CAS: `Acquire` on success. It reads the word a
//!   release CAS wrote (`Release`), so everything the previous holder did
//!   before releasing (closing its socket, dropping routes) happens-before
//!   the new holder's use: the allocator hands over ownership like a mutex.
//!   Mutual exclusion itself needs no ordering: a CAS always acts on the
//!   latest value in the word's modification order, so two CASes from the
//!   same claimable value cannot both succeed.
//! - Pair word, release CAS: `Release` on success (the other half of the
//!   hand-over). Failures are `Relaxed`: they only classify the error.
//! - Pair word, the pre-CAS probe load: `Relaxed`; the CAS re-validates.
//! - Cursor and PRNG: `Relaxed`; they only choose where probing starts.
//!   A cursor store may be overtaken by a concurrent one and go backwards,
//!   which costs at most a few extra probes.
//! - Tally: `Relaxed`, see `counts.rs`.

use crossbeam_utils::CachePadded;

use super::config::Strategy;
use super::counts::{Counts, Tally};
use super::pair::PortPair;
use super::range::PortRange;
use super::state::PairState;
use super::sync::{AtomicU64, Ordering};

/// SplitMix64 increment (golden ratio).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// One shard's slice of the port range.
#[derive(Debug)]
pub(crate) struct Slice {
    /// Written by every allocation and release of this slice; padded so
    /// slices of different shards never share a cache line.
    hot: CachePadded<Hot>,
    /// One state word per pair, `words[i]` for `range.pair(i)`.
    words: Box<[AtomicU64]>,
    range: PortRange,
}

/// The per-slice words every operation writes.
#[derive(Debug)]
struct Hot {
    tally: Tally,
    /// [`Strategy::Sequential`]: index where the next probe starts.
    cursor: AtomicU64,
    /// [`Strategy::Random`]: SplitMix64 counter.
    rng: AtomicU64,
}

impl Slice {
    /// A slice of all-free pairs over `range`, PRNG seeded with `seed`.
    pub(crate) fn new(range: PortRange, seed: u64) -> Self {
        Slice {
            hot: CachePadded::new(Hot {
                tally: Tally::new(),
                cursor: AtomicU64::new(0),
                rng: AtomicU64::new(mix(seed)),
            }),
            words: (0..range.pairs()).map(|_| AtomicU64::new(0)).collect(),
            range,
        }
    }

    /// The ports this slice hands out.
    pub(crate) const fn range(&self) -> PortRange {
        self.range
    }

    /// Counter snapshot.
    pub(crate) fn counts(&self) -> Counts {
        self.hot.tally.counts(self.range.pairs())
    }

    /// Claims a pair that is free or whose quarantine ended by tick `now`,
    /// probing once around the slice from the strategy's start. `None` when
    /// a full pass found nothing claimable.
    pub(crate) fn allocate(&self, strategy: Strategy, now: u64) -> Option<PortPair> {
        let len = self.words.len() as u64; // >= 1: a slice holds >= 1 pair
        let start = match strategy {
            Strategy::Sequential => self.hot.cursor.load(Ordering::Relaxed) % len,
            Strategy::Random => {
                let r = mix(self.hot.rng.fetch_add(GAMMA, Ordering::Relaxed));
                // Lemire's multiply-shift: uniform enough in 0..len, no division.
                ((u128::from(r) * u128::from(len)) >> 64) as u64
            }
        };
        // start < len, so the split point is in bounds; usize holds it
        // because len came from a slice length.
        let (before, from) = self.words.split_at(start as usize);
        let probes = (start..).zip(from).chain((0..).zip(before));
        for (index, word) in probes {
            let current = word.load(Ordering::Relaxed);
            let state = PairState::decode(current);
            if !state.claimable(now) {
                continue;
            }
            // Strong CAS: a spurious failure would skip a claimable pair.
            // On failure another allocation took the pair (the only way out
            // of a claimable state), so move on.
            if word
                .compare_exchange(
                    current,
                    PairState::ALLOCATED_WORD,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_err()
            {
                continue;
            }
            match state {
                PairState::Free => self.hot.tally.claimed_free(),
                _ => self.hot.tally.claimed_quarantined(),
            }
            if strategy == Strategy::Sequential {
                self.hot.cursor.store((index + 1) % len, Ordering::Relaxed);
            }
            // index < len = range.pairs(), which fits u32.
            return self.range.pair(u32::try_from(index).ok()?);
        }
        None
    }

    /// Moves the pair at `index` from allocated to quarantined until tick
    /// `until`. On failure returns the state found instead (never
    /// `Allocated`), and changes nothing.
    pub(crate) fn release(&self, index: u32, until: u64) -> Result<(), PairState> {
        let word = usize::try_from(index)
            .ok()
            .and_then(|i| self.words.get(i))
            .ok_or(PairState::Free)?;
        let quarantined = PairState::Quarantined { until }.encode();
        match word.compare_exchange(
            PairState::ALLOCATED_WORD,
            quarantined,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            Ok(_) => {
                self.hot.tally.released();
                Ok(())
            }
            Err(found) => Err(PairState::decode(found)),
        }
    }
}

/// SplitMix64 output function (Steele, Lea, Flood 2014).
const fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn slice(pairs: u16) -> Slice {
        Slice::new(PortRange::new(1000, 1000 + 2 * pairs - 1).unwrap(), 1)
    }

    #[test]
    fn sequential_is_next_fit() {
        let s = slice(4);
        let a = s.allocate(Strategy::Sequential, 0).unwrap();
        let b = s.allocate(Strategy::Sequential, 0).unwrap();
        assert_eq!((a.rtp(), b.rtp()), (1000, 1002));
        s.release(0, 0).unwrap();
        // Released pair 0 is claimable, but the cursor is past it.
        assert_eq!(s.allocate(Strategy::Sequential, 0).unwrap().rtp(), 1004);
        assert_eq!(s.allocate(Strategy::Sequential, 0).unwrap().rtp(), 1006);
        assert_eq!(s.allocate(Strategy::Sequential, 0).unwrap().rtp(), 1000);
        assert_eq!(s.allocate(Strategy::Sequential, 0), None);
    }

    #[test]
    fn quarantine_blocks_until_its_tick() {
        let s = slice(1);
        s.allocate(Strategy::Random, 0).unwrap();
        s.release(0, 50).unwrap();
        assert_eq!(s.allocate(Strategy::Random, 49), None);
        assert_eq!(s.counts().quarantined, 1);
        assert_eq!(s.allocate(Strategy::Random, 50).unwrap().rtp(), 1000);
        let c = s.counts();
        assert_eq!((c.in_use, c.quarantined, c.free), (1, 0, 0));
    }

    #[test]
    fn release_reports_the_state_it_found() {
        let s = slice(2);
        assert_eq!(s.release(0, 0), Err(PairState::Free));
        assert_eq!(s.release(7, 0), Err(PairState::Free));
        s.allocate(Strategy::Sequential, 0).unwrap();
        s.release(0, 9).unwrap();
        assert_eq!(s.release(0, 10), Err(PairState::Quarantined { until: 9 }));
        let c = s.counts();
        assert_eq!((c.in_use, c.quarantined, c.free), (0, 1, 1));
    }

    #[test]
    fn random_start_covers_the_slice() {
        let s = slice(8);
        let mut seen = [false; 8];
        for _ in 0..200 {
            let p = s.allocate(Strategy::Random, 0).unwrap();
            let i = s.range().index_of(p.rtp()).unwrap();
            seen[i as usize] = true;
            s.release(i, 0).unwrap();
        }
        assert!(seen.iter().all(|&x| x), "{seen:?}");
    }
}
