//! [`Slice`]: one shard's contiguous run of pairs, its state words, probe
//! cursor / PRNG and counters. All operations are lock-free and bounded.
//!
//! # Allocation rule
//!
//! Quarantine is a preference, never a refusal. An allocation takes, in
//! order of preference:
//!
//! 1. a free pair, or a quarantined one whose delay has passed
//!    ([`Slice::claim`], one pass over the slice from the strategy's start);
//! 2. failing that, the quarantined pair with the smallest `until` seen by
//!    that pass, i.e. the one released longest ago ([`Slice::cut_short`]);
//!    this is counted in [`Counts::quarantine_cut_short`];
//! 3. failing that (every pair seen was allocated), nothing: the slice is
//!    exhausted.
//!
//! If the cut-short CAS loses (another allocation took that pair: the only
//! way out of `Quarantined`), the allocation makes a fresh pass. At most
//! [`MAX_PASSES`] passes are made, so an allocation costs at most
//! `MAX_PASSES * len` probes and `MAX_PASSES` cut-short CASes; each lost
//! CAS means some concurrent allocation succeeded. When the bound is hit the
//! allocation reports exhaustion, as a pass that raced does.
//!
//! # Memory orderings
//!
//! - Pair word, allocation CAS (claim and cut-short alike): `Acquire` on
//!   success. It reads the word a release CAS wrote (`Release`), so
//!   everything the previous holder did before releasing (closing its
//!   socket, dropping routes) happens-before the new holder's use: the
//!   allocator hands over ownership like a mutex. Mutual exclusion itself
//!   needs no ordering: a CAS always acts on the latest value in the word's
//!   modification order, so two CASes from the same value cannot both
//!   succeed.
//! - Pair word, release CAS: `Release` on success (the other half of the
//!   hand-over). Failures are `Relaxed`: they only classify the error.
//! - Pair word, the pre-CAS probe load: `Relaxed`; the CAS re-validates.
//!   The `until` it reads only ranks candidates for cutting short.
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

/// Most passes one allocation makes (over a slice, or over every slice for
/// `allocate_any`): the first, plus one fresh pass per lost cut-short CAS.
pub(crate) const MAX_PASSES: usize = 4;

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

/// The still-quarantined pair a pass saw with the smallest `until`: the
/// candidate to cut short when nothing is claimable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oldest {
    /// Index of the pair in its slice.
    index: u32,
    /// The word the pass loaded; the cut-short CAS expects exactly it.
    word: u64,
    /// The tick its quarantine ends.
    pub(crate) until: u64,
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

    /// Allocates by the rule in the module docs: a free or expired pair,
    /// else the oldest quarantined one (cut short), within [`MAX_PASSES`]
    /// passes. `None` when a pass saw every pair allocated, or when the
    /// bound was hit.
    pub(crate) fn allocate(&self, strategy: Strategy, now: u64) -> Option<PortPair> {
        for _ in 0..MAX_PASSES {
            match self.claim(strategy, now) {
                Ok(pair) => return Some(pair),
                Err(None) => return None,
                Err(Some(oldest)) => {
                    if let Some(pair) = self.cut_short(strategy, oldest) {
                        return Some(pair);
                    }
                }
            }
        }
        None
    }

    /// One pass: claims a pair that is free or whose quarantine ended by
    /// tick `now`, probing once around the slice from the strategy's start.
    /// When nothing was claimable, returns the still-quarantined pair with
    /// the smallest `until` the pass saw (ties: the first probed), or
    /// `None` if every pair it saw was allocated.
    pub(crate) fn claim(&self, strategy: Strategy, now: u64) -> Result<PortPair, Option<Oldest>> {
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
        let mut oldest: Option<Oldest> = None;
        for (index, word) in probes {
            let current = word.load(Ordering::Relaxed);
            let state = PairState::decode(current);
            if !state.claimable(now) {
                if let PairState::Quarantined { until } = state {
                    if oldest.is_none_or(|o| until < o.until) {
                        oldest = Some(Oldest {
                            // index < len = range.pairs(), which fits u32.
                            index: u32::try_from(index).unwrap_or(u32::MAX),
                            word: current,
                            until,
                        });
                    }
                }
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
            // index < len = range.pairs(), which fits u32, so `taken`
            // names a pair.
            return self
                .taken(strategy, u32::try_from(index).unwrap_or(u32::MAX))
                .ok_or(None);
        }
        Err(oldest)
    }

    /// Takes the still-quarantined pair `oldest` (from [`Slice::claim`] on
    /// this slice), cutting its quarantine short. `None` when its word
    /// changed since the pass loaded it: another allocation took it.
    pub(crate) fn cut_short(&self, strategy: Strategy, oldest: Oldest) -> Option<PortPair> {
        let word = self.words.get(usize::try_from(oldest.index).ok()?)?;
        // Strong CAS from the exact quarantined word: it can only succeed if
        // the pair is still quarantined with that `until` (an allocation
        // and re-release in between that wrote the same word is harmless:
        // the pair is quarantined either way). Acquire as for any claim.
        word.compare_exchange(
            oldest.word,
            PairState::ALLOCATED_WORD,
            Ordering::Acquire,
            Ordering::Relaxed,
        )
        .ok()?;
        self.hot.tally.claimed_cut_short();
        self.taken(strategy, oldest.index)
    }

    /// Bookkeeping after the pair at `index` was claimed: moves the
    /// sequential cursor past it and names it.
    fn taken(&self, strategy: Strategy, index: u32) -> Option<PortPair> {
        if strategy == Strategy::Sequential {
            let len = self.words.len() as u64;
            self.hot
                .cursor
                .store((u64::from(index) + 1) % len, Ordering::Relaxed);
        }
        self.range.pair(index)
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
    fn expired_quarantine_is_claimed_without_cutting_short() {
        let s = slice(1);
        s.allocate(Strategy::Random, 0).unwrap();
        s.release(0, 50).unwrap();
        assert_eq!(s.counts().quarantined, 1);
        assert_eq!(s.allocate(Strategy::Random, 50).unwrap().rtp(), 1000);
        let c = s.counts();
        assert_eq!((c.in_use, c.quarantined, c.free), (1, 0, 0));
        assert_eq!(c.quarantine_cut_short, 0);
    }

    #[test]
    fn quarantine_yields_when_nothing_else_is_left() {
        let s = slice(1);
        s.allocate(Strategy::Random, 0).unwrap();
        s.release(0, 50).unwrap();
        // Still quarantined at tick 49, but it is the only pair not in use.
        assert_eq!(s.allocate(Strategy::Random, 49).unwrap().rtp(), 1000);
        let c = s.counts();
        assert_eq!((c.in_use, c.quarantined, c.free), (1, 0, 0));
        assert_eq!(c.quarantine_cut_short, 1);
        // Every pair in use: now, and only now, the slice is exhausted.
        assert_eq!(s.allocate(Strategy::Random, 49), None);
        assert_eq!(s.claim(Strategy::Random, 49), Err(None));
    }

    #[test]
    fn free_and_expired_pairs_come_before_cutting_short() {
        for strategy in [Strategy::Sequential, Strategy::Random] {
            let s = slice(4);
            for _ in 0..3 {
                s.allocate(strategy, 0).unwrap();
            }
            let held: Vec<u32> = (0..4)
                .filter(|&i| s.words[i as usize].load(Ordering::Relaxed) != 0)
                .collect();
            let [a, b, _] = held[..] else {
                panic!("{held:?}")
            };
            s.release(a, 100).unwrap();
            s.release(b, 50).unwrap();
            // At tick 60: the never-used pair and b (expired) are taken,
            // in either order, before a's quarantine is cut short.
            let mut got: Vec<u32> = (0..2)
                .map(|_| {
                    let p = s.allocate(strategy, 60).unwrap();
                    s.range().index_of(p.rtp()).unwrap()
                })
                .collect();
            got.sort_unstable();
            let free = (0..4).find(|i| !held.contains(i)).unwrap();
            let mut want = vec![free, b];
            want.sort_unstable();
            assert_eq!(got, want, "{strategy:?}");
            assert_eq!(s.counts().quarantine_cut_short, 0);
            let p = s.allocate(strategy, 60).unwrap();
            assert_eq!(s.range().index_of(p.rtp()), Some(a));
            assert_eq!(s.counts().quarantine_cut_short, 1);
            assert_eq!(s.allocate(strategy, 60), None);
            let c = s.counts();
            assert_eq!((c.in_use, c.quarantined, c.free), (4, 0, 0));
        }
    }

    #[test]
    fn the_oldest_quarantine_is_cut_short_first() {
        for strategy in [Strategy::Sequential, Strategy::Random] {
            let s = slice(4);
            for _ in 0..4 {
                s.allocate(strategy, 0).unwrap();
            }
            for (index, until) in [(2, 30), (0, 10), (3, 20), (1, 40)] {
                s.release(index, until).unwrap();
            }
            for want in [0, 3, 2, 1] {
                let p = s.allocate(strategy, 5).unwrap();
                assert_eq!(s.range().index_of(p.rtp()), Some(want), "{strategy:?}");
            }
            assert_eq!(s.allocate(strategy, 5), None);
            assert_eq!(s.counts().quarantine_cut_short, 4);
        }
    }

    #[test]
    fn a_stale_cut_short_candidate_takes_nothing() {
        let s = slice(2);
        s.allocate(Strategy::Sequential, 0).unwrap();
        s.allocate(Strategy::Sequential, 0).unwrap();
        s.release(0, 10).unwrap();
        let Err(Some(oldest)) = s.claim(Strategy::Sequential, 0) else {
            panic!("pair 0 is the only candidate");
        };
        assert_eq!(oldest.until, 10);
        // Another allocation cuts it short first: the candidate is stale.
        assert_eq!(s.allocate(Strategy::Sequential, 0).unwrap().rtp(), 1000);
        assert_eq!(s.cut_short(Strategy::Sequential, oldest), None);
        // Released again with another `until`: still stale.
        s.release(0, 20).unwrap();
        assert_eq!(s.cut_short(Strategy::Sequential, oldest), None);
        let c = s.counts();
        assert_eq!((c.in_use, c.quarantined), (1, 1));
        assert_eq!(c.quarantine_cut_short, 1);
        // A fresh pass sees the new word and takes it.
        assert_eq!(s.allocate(Strategy::Sequential, 0).unwrap().rtp(), 1000);
        assert_eq!(s.counts().quarantine_cut_short, 2);
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
