//! Model-based property test of the port allocator (single thread, virtual
//! clock): random sequences of allocations, releases of held pairs, bogus
//! releases and clock advances, checked step by step against a plain model
//! (held set + released-at map + cut-short counters).
//!
//! The allocation rule the model predicts: a free or expired pair if the
//! slice (for `allocate_any`: any slice, in order from the preferred one)
//! has one; else the pair quarantined longest (earliest release; for
//! `allocate_any` over the whole range, ties to the slice met first), which
//! counts as a quarantine cut short; else exhaustion, which therefore means
//! every pair is in use.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use mediarelay::ports::{
    AllocError, Counts, PortAllocator, PortConfig, PortPair, PortRange, ReleaseError, ShardId,
    Strategy as Probe,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Allocate on shard `n % shards`.
    Allocate(u16),
    /// `allocate_any` preferring shard `n % shards`.
    AllocateAny(u16),
    /// Release the held pair at `n % held.len()`.
    Release(usize),
    /// Release an arbitrary port number (mostly near the range).
    ReleasePort(u16),
    /// Advance the clock by this many milliseconds.
    Advance(u16),
}

#[derive(Debug, Clone)]
struct Setup {
    min: u16,
    max: u16,
    shards: u16,
    probe: Probe,
    delay_ms: u64,
    seed: u64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        30000u16..30004,
        1u16..90,
        1u16..5,
        prop_oneof![Just(Probe::Sequential), Just(Probe::Random)],
        prop_oneof![Just(0u64), Just(50), Just(150)],
        any::<u64>(),
    )
        .prop_filter_map(
            "range must hold a pair",
            |(min, span, shards, probe, delay_ms, seed)| {
                let max = min + span;
                let pairs = PortRange::new(min, max).ok()?.pairs();
                let shards = shards.min(u16::try_from(pairs).ok()?);
                Some(Setup {
                    min,
                    max,
                    shards,
                    probe,
                    delay_ms,
                    seed,
                })
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<u16>().prop_map(Op::Allocate),
        1 => any::<u16>().prop_map(Op::AllocateAny),
        3 => any::<usize>().prop_map(Op::Release),
        1 => prop_oneof![29990u16..30110, any::<u16>()].prop_map(Op::ReleasePort),
        2 => (0u16..120).prop_map(Op::Advance),
    ]
}

struct Model {
    alloc: PortAllocator,
    epoch: Instant,
    delay: Duration,
    now: Duration,
    /// Pairs the allocator has handed out and we have not released.
    held: Vec<PortPair>,
    held_set: HashSet<PortPair>,
    /// Released pairs not handed out again since, with their release time.
    released: HashMap<PortPair, Duration>,
    /// Quarantines cut short, per shard.
    cut_short: Vec<u64>,
}

impl Model {
    fn new(s: &Setup) -> Self {
        let delay = Duration::from_millis(s.delay_ms);
        let config = PortConfig::new(s.min, s.max, s.shards)
            .unwrap()
            .with_strategy(s.probe)
            .with_release_delay(delay)
            .with_seed(s.seed);
        let epoch = Instant::now();
        Model {
            alloc: PortAllocator::new(config, epoch),
            epoch,
            delay,
            now: Duration::ZERO,
            held: Vec::new(),
            held_set: HashSet::new(),
            released: HashMap::new(),
            cut_short: vec![0; usize::from(s.shards)],
        }
    }

    fn instant(&self) -> Instant {
        self.epoch + self.now
    }

    fn shard(&self, n: u16) -> ShardId {
        ShardId(n % self.alloc.shards())
    }

    fn slice(&self, shard: ShardId) -> PortRange {
        self.alloc.slice_range(shard).unwrap()
    }

    fn pairs_of(range: PortRange) -> impl Iterator<Item = PortPair> {
        (0..range.pairs()).map(move |i| range.pair(i).unwrap())
    }

    /// True when the model says `pair` may be handed out now.
    fn claimable(&self, pair: PortPair) -> bool {
        if self.held_set.contains(&pair) {
            return false;
        }
        self.released
            .get(&pair)
            .is_none_or(|&at| at + self.delay <= self.now)
    }

    /// When the oldest still-quarantined pair of `range` was released, if
    /// it has one.
    fn oldest_quarantine(&self, range: PortRange) -> Option<Duration> {
        Self::pairs_of(range)
            .filter(|p| !self.claimable(*p))
            .filter_map(|p| self.released.get(&p).copied())
            .min()
    }

    /// Checks a successful allocation from `shard`'s slice against the rule,
    /// given the slices an allocation looked at before (`earlier`, in
    /// probing order) and the set it chose among (`scope`). Returns whether
    /// it cut a quarantine short.
    fn check_choice(
        &self,
        earlier: &[ShardId],
        shard: ShardId,
        scope: PortRange,
        pair: PortPair,
    ) -> bool {
        let any_claimable = Self::pairs_of(scope).any(|p| self.claimable(p));
        if any_claimable {
            assert!(
                self.claimable(pair),
                "{pair} handed out while a claimable pair was left"
            );
            for &s in earlier {
                assert!(
                    Self::pairs_of(self.slice(s)).all(|p| !self.claimable(p)),
                    "went past {s}, which has a claimable pair, to {shard}"
                );
            }
            return false;
        }
        let oldest = self.oldest_quarantine(scope).expect("nothing claimable");
        assert_eq!(
            self.released.get(&pair),
            Some(&oldest),
            "{pair} cut short, but it is not the oldest quarantine"
        );
        for &s in earlier {
            assert_ne!(
                self.oldest_quarantine(self.slice(s)),
                Some(oldest),
                "tie for the oldest quarantine not given to {s}, met before {shard}"
            );
        }
        true
    }

    /// Shards `allocate_any(preferred)` visits, in order.
    fn order(&self, preferred: ShardId) -> Vec<ShardId> {
        let n = self.alloc.shards();
        (0..n).map(|k| ShardId((preferred.0 + k) % n)).collect()
    }

    fn expected_counts(&self, range: PortRange) -> Counts {
        let in_use = self.held.iter().filter(|p| range.contains(p.rtp())).count();
        let quarantined = self
            .released
            .keys()
            .filter(|p| range.contains(p.rtp()))
            .count();
        let total = range.pairs();
        let in_use = u32::try_from(in_use).unwrap();
        let quarantined = u32::try_from(quarantined).unwrap();
        let quarantine_cut_short = (0..self.alloc.shards())
            .filter(|&s| range.contains(self.slice(ShardId(s)).pair(0).unwrap().rtp()))
            .map(|s| self.cut_short[usize::from(s)])
            .sum();
        Counts {
            in_use,
            quarantined,
            free: total - in_use - quarantined,
            total,
            quarantine_cut_short,
        }
    }

    /// Checks a pair handed out for `shard` and records it as held; `cut`
    /// says whether the rule predicted a quarantine cut short.
    fn took(&mut self, shard: ShardId, pair: PortPair, cut: bool) {
        assert!(!self.held_set.contains(&pair), "{pair} handed out twice");
        assert!(
            self.slice(shard).contains(pair.rtp()),
            "{pair} outside {shard}"
        );
        assert_eq!(self.alloc.shard_of(pair.rtp()), Some(shard));
        assert_eq!(self.alloc.shard_of(pair.rtcp()), Some(shard));
        if let Some(at) = self.released.remove(&pair) {
            assert_eq!(
                at + self.delay > self.now,
                cut,
                "{pair} reissued {:?} after release, delay {:?}",
                self.now - at,
                self.delay
            );
        } else {
            assert!(!cut, "{pair} was never released");
        }
        if cut {
            self.cut_short[usize::from(shard.0)] += 1;
        }
        self.held.push(pair);
        self.held_set.insert(pair);
    }

    fn drop_held(&mut self, pair: PortPair) {
        self.held.retain(|&p| p != pair);
        self.held_set.remove(&pair);
        self.released.insert(pair, self.now);
    }

    fn apply(&mut self, op: &Op) {
        let now = self.instant();
        match *op {
            Op::Allocate(n) => {
                let shard = self.shard(n);
                match self.alloc.allocate(shard, now) {
                    Ok(pair) => {
                        let cut = self.check_choice(&[], shard, self.slice(shard), pair);
                        self.took(shard, pair, cut);
                    }
                    Err(AllocError::Exhausted {
                        shard: s,
                        range,
                        in_use,
                        quarantined,
                        total,
                    }) => {
                        assert_eq!(s, shard);
                        assert_eq!(range, self.slice(shard));
                        assert!(
                            Self::pairs_of(range).all(|p| self.held_set.contains(&p)),
                            "exhausted although the model has a pair not in use"
                        );
                        let c = self.expected_counts(range);
                        assert_eq!(
                            (in_use, quarantined, total),
                            (c.in_use, c.quarantined, c.total)
                        );
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::AllocateAny(n) => {
                let preferred = self.shard(n);
                match self.alloc.allocate_any(preferred, now) {
                    Ok((shard, pair)) => {
                        let order = self.order(preferred);
                        let at = order.iter().position(|&s| s == shard).unwrap();
                        let cut = self.check_choice(&order[..at], shard, self.alloc.range(), pair);
                        self.took(shard, pair, cut);
                    }
                    Err(AllocError::AllExhausted {
                        in_use,
                        quarantined,
                        total,
                        ..
                    }) => {
                        let range = self.alloc.range();
                        assert!(Self::pairs_of(range).all(|p| self.held_set.contains(&p)));
                        let c = self.expected_counts(range);
                        assert_eq!(
                            (in_use, quarantined, total),
                            (c.in_use, c.quarantined, c.total)
                        );
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            Op::Release(n) => {
                if self.held.is_empty() {
                    return;
                }
                let pair = self.held[n % self.held.len()];
                assert_eq!(self.alloc.release(pair, now), Ok(()));
                self.drop_held(pair);
            }
            Op::ReleasePort(port) => {
                let range = self.alloc.range();
                let got = self.alloc.release_port(port, now);
                let expected = if port % 2 == 1 {
                    Err(ReleaseError::OddPort { port })
                } else if !range.contains(port) {
                    Err(ReleaseError::OutOfRange { port, range })
                } else {
                    let pair = PortPair::new(port).unwrap();
                    if self.held_set.contains(&pair) {
                        Ok(())
                    } else if self.released.contains_key(&pair) {
                        Err(ReleaseError::AlreadyReleased { pair })
                    } else {
                        Err(ReleaseError::NeverAllocated { pair })
                    }
                };
                assert_eq!(got, expected, "release_port({port})");
                if got.is_ok() {
                    self.drop_held(PortPair::new(port).unwrap());
                }
            }
            Op::Advance(ms) => self.now += Duration::from_millis(u64::from(ms)),
        }
    }

    fn check_counts(&self) {
        for s in 0..self.alloc.shards() {
            let shard = ShardId(s);
            let expected = self.expected_counts(self.slice(shard));
            assert_eq!(self.alloc.counts(shard), Some(expected), "{shard}");
        }
        assert_eq!(
            self.alloc.totals(),
            self.expected_counts(self.alloc.range())
        );
    }

    /// Releases everything, waits out the delay, and allocates the whole
    /// range again: nothing may have been lost.
    fn drain_and_refill(&mut self) {
        let now = self.instant();
        for pair in self.held.clone() {
            assert_eq!(self.alloc.release(pair, now), Ok(()));
            self.drop_held(pair);
        }
        self.now += self.delay;
        self.check_counts();
        let now = self.instant();
        for s in 0..self.alloc.shards() {
            let shard = ShardId(s);
            let total = self.slice(shard).pairs();
            for _ in 0..total {
                let pair = self.alloc.allocate(shard, now).unwrap();
                self.took(shard, pair, false);
            }
            assert!(matches!(
                self.alloc.allocate(shard, now),
                Err(AllocError::Exhausted { in_use, quarantined: 0, total: t, .. })
                    if in_use == total && t == total
            ));
        }
        assert_eq!(self.held.len(), self.alloc.range().pairs() as usize);
        self.check_counts();
    }

    /// Releases everything and at once allocates the whole range again
    /// through `op` (with a delay, every allocation cuts a quarantine
    /// short), then checks that the range is exhausted.
    fn drain_and_reissue_at_once(&mut self, op: fn(u16) -> Op) {
        while !self.held.is_empty() {
            self.apply(&Op::Release(0));
        }
        let before: u64 = self.cut_short.iter().sum();
        for s in 0..self.alloc.shards() {
            for _ in 0..self.slice(ShardId(s)).pairs() {
                self.apply(&op(s));
                self.check_counts();
            }
        }
        let pairs = self.alloc.range().pairs();
        assert_eq!(self.held.len(), pairs as usize);
        if !self.delay.is_zero() {
            assert_eq!(
                self.cut_short.iter().sum::<u64>() - before,
                u64::from(pairs)
            );
        }
        self.apply(&op(0));
        assert_eq!(self.held.len(), pairs as usize);
        self.check_counts();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn allocator_matches_model(s in setup(), ops in prop::collection::vec(op(), 0..200)) {
        let mut m = Model::new(&s);
        m.check_counts();
        for op in &ops {
            m.apply(op);
            m.check_counts();
        }
        m.drain_and_refill();
        m.drain_and_reissue_at_once(Op::Allocate);
        m.drain_and_reissue_at_once(Op::AllocateAny);
    }
}

#[test]
fn sequential_does_not_reuse_the_last_released_pair_first() {
    let s = Setup {
        min: 30000,
        max: 30007,
        shards: 1,
        probe: Probe::Sequential,
        delay_ms: 0,
        seed: 0,
    };
    let mut m = Model::new(&s);
    m.apply(&Op::Allocate(0));
    let first = m.held[0];
    m.apply(&Op::Release(0));
    m.apply(&Op::Allocate(0));
    assert_ne!(m.held[0], first, "next fit moves on");
    m.check_counts();
}

#[test]
fn quarantined_pairs_are_reissued_oldest_first_and_counted() {
    let s = Setup {
        min: 30000,
        max: 30007,
        shards: 2,
        probe: Probe::Random,
        delay_ms: 150,
        seed: 3,
    };
    let mut m = Model::new(&s);
    for _ in 0..4 {
        m.apply(&Op::AllocateAny(0));
    }
    let order = m.held.clone();
    for _ in 0..4 {
        m.apply(&Op::Release(0));
        m.apply(&Op::Advance(10));
    }
    m.check_counts();
    for (n, want) in order.iter().enumerate() {
        m.apply(&Op::AllocateAny(1));
        assert_eq!(m.held.last(), Some(want), "reissued out of release order");
        assert_eq!(m.alloc.totals().quarantine_cut_short, n as u64 + 1);
    }
    m.check_counts();
}
