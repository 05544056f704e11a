//! Multi-threaded stress test of the port allocator on real threads: four
//! threads allocate and release in shared and separate slices, and a shared
//! bitmap of `AtomicBool` proves no pair is ever held by two threads at once.
//! With a release delay longer than the run, every reuse cuts a quarantine
//! short, so those races (claim vs cut short vs release) are stressed too.
//! Bounded in iterations; no timing assertions.

use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mediarelay::ports::{AllocError, PortAllocator, PortConfig, PortPair, ShardId, Strategy};

const THREADS: u64 = 4;
const ITERATIONS: u64 = 10_000;
/// Most pairs one thread holds at once; 2 threads x 6 > 8 pairs per slice,
/// so slices run full and exhaustion paths race with releases too.
const MAX_HELD: usize = 6;

/// Marks `pair` held in `bitmap`, failing if another thread holds it.
fn mark(a: &PortAllocator, bitmap: &[AtomicBool], pair: PortPair, held: bool) {
    let i = a.range().index_of(pair.rtp()).unwrap() as usize;
    let was = bitmap[i].swap(held, Ordering::AcqRel);
    assert_eq!(
        was,
        !held,
        "{pair} {} twice",
        if held { "held" } else { "freed" }
    );
}

/// Runs the stress; returns the quarantines cut short.
fn stress(strategy: Strategy, delay: Duration, one_slice: bool) -> u64 {
    let epoch = Instant::now();
    let config = PortConfig::new(30000, 30031, 2) // 16 pairs, 8 per shard
        .unwrap()
        .with_strategy(strategy)
        .with_release_delay(delay);
    let a = PortAllocator::new(config, epoch);
    let bitmap: Vec<AtomicBool> = (0..a.range().pairs())
        .map(|_| AtomicBool::new(false))
        .collect();

    let start = Barrier::new(THREADS as usize);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (a, bitmap, start) = (&a, &bitmap, &start);
            s.spawn(move || {
                start.wait();
                // Threads 0 and 2 share shard 0; 1 uses shard 1; 3 plays the
                // control plane and allocates anywhere, preferring shard 1.
                // With `one_slice`, everyone prefers shard 0.
                let shard = if one_slice {
                    ShardId(0)
                } else {
                    ShardId(u16::try_from(t % 2).unwrap())
                };
                let mut held: Vec<PortPair> = Vec::new();
                let mut rng = 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(t + 1);
                for i in 0..ITERATIONS {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Each thread's clock advances 1 µs per iteration.
                    let now = epoch + Duration::from_micros(i);
                    let allocate =
                        held.is_empty() || (held.len() < MAX_HELD && rng.is_multiple_of(2));
                    if allocate {
                        let got = if t == 3 {
                            a.allocate_any(shard, now).map(|(_, p)| p)
                        } else {
                            a.allocate(shard, now)
                        };
                        match got {
                            Ok(pair) => {
                                mark(a, bitmap, pair, true);
                                held.push(pair);
                            }
                            Err(AllocError::Exhausted { .. } | AllocError::AllExhausted { .. }) => {
                            }
                            Err(e) => panic!("{e}"),
                        }
                    } else {
                        let pair = held.swap_remove((rng >> 8) as usize % held.len());
                        // Unmark before releasing: after the release another
                        // thread may take the pair and mark it.
                        mark(a, bitmap, pair, false);
                        a.release(pair, now).unwrap();
                    }
                    let c = a.totals();
                    assert_eq!(c.in_use + c.quarantined + c.free, c.total);
                }
                let now = epoch + Duration::from_micros(ITERATIONS);
                for pair in held {
                    mark(a, bitmap, pair, false);
                    a.release(pair, now).unwrap();
                }
            });
        }
    });

    // Quiescent: counters are exact, and nothing was lost.
    let c = a.totals();
    assert_eq!((c.in_use, c.quarantined + c.free, c.total), (0, 16, 16));
    let cut_short = c.quarantine_cut_short;
    let later = epoch + Duration::from_secs(3600);
    let mut all: Vec<PortPair> = (0..2)
        .flat_map(|s| (0..8).map(move |_| ShardId(s)))
        .map(|shard| a.allocate(shard, later).unwrap())
        .collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 16);
    assert!(a.allocate_any(ShardId(0), later).is_err());
    assert_eq!(a.totals().quarantine_cut_short, cut_short);
    cut_short
}

#[test]
fn four_threads_random_no_delay() {
    stress(Strategy::Random, Duration::ZERO, false);
}

#[test]
fn four_threads_sequential_no_delay() {
    stress(Strategy::Sequential, Duration::ZERO, false);
}

#[test]
fn four_threads_random_with_delay() {
    stress(Strategy::Random, Duration::from_micros(5), false);
}

#[test]
fn four_threads_one_slice_random() {
    stress(Strategy::Random, Duration::ZERO, true);
}

#[test]
fn four_threads_one_slice_sequential_with_delay() {
    stress(Strategy::Sequential, Duration::from_micros(5), true);
}

#[test]
fn four_threads_random_quarantine_always_cut_short() {
    assert!(stress(Strategy::Random, Duration::from_secs(1), false) > 0);
}

#[test]
fn four_threads_one_slice_sequential_quarantine_always_cut_short() {
    assert!(stress(Strategy::Sequential, Duration::from_secs(1), true) > 0);
}
