//! Criterion benches for the lock-free port allocator (group `ports`).
//!
//! Every bench measures one allocate + release round trip over the range
//! 30000-40000 split into two shards of 2500 pairs, with no release delay
//! (so the slice never runs dry) unless stated:
//!
//! - `round_trip_1t/{sequential,random}`: one thread, empty slice.
//! - `round_trip_1t/random_half_full`: one thread, half of the slice held,
//!   so random probing has to skip taken pairs.
//! - `round_trip_1t/cut_short`: one thread, a one-hour release delay and
//!   every pair of the slice quarantined, so each allocation reads the
//!   whole slice and then cuts the oldest quarantine short (the worst case
//!   of the quarantine rule, reached under churn once every pair was used).
//! - `round_trip_2t/{own_slices,same_slice}`: two threads at once, each on
//!   its own shard's slice (the engine's case) or both on one slice (the
//!   contended worst case). `iter_custom`: threads are spawned once per
//!   measurement batch and released together by a barrier; each times its
//!   own `iters` round trips and the slowest is reported, i.e. the time per
//!   round trip per thread. Throughput (2 elements per iteration) gives the
//!   combined rate.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mediarelay::ports::{PortAllocator, PortConfig, ShardId, Strategy};

fn allocator(strategy: Strategy) -> (PortAllocator, Instant) {
    allocator_with_delay(strategy, Duration::ZERO)
}

fn allocator_with_delay(strategy: Strategy, delay: Duration) -> (PortAllocator, Instant) {
    let epoch = Instant::now();
    let config = PortConfig::new(30000, 40000, 2)
        .expect("valid range")
        .with_strategy(strategy)
        .with_release_delay(delay);
    (PortAllocator::new(config, epoch), epoch)
}

fn round_trip(a: &PortAllocator, shard: ShardId, now: Instant) {
    let pair = a.allocate(black_box(shard), now).expect("slice has room");
    a.release(black_box(pair), now).expect("pair is held");
}

/// Runs `iters` round trips on each of two threads at once; returns the
/// slower thread's time.
fn two_threads(a: &PortAllocator, now: Instant, shards: [ShardId; 2], iters: u64) -> Duration {
    let start = Barrier::new(2);
    std::thread::scope(|s| {
        let handles = shards.map(|shard| {
            let start = &start;
            s.spawn(move || {
                start.wait();
                let t0 = Instant::now();
                for _ in 0..iters {
                    round_trip(a, shard, now);
                }
                t0.elapsed()
            })
        });
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

fn ports(c: &mut Criterion) {
    let mut g = c.benchmark_group("ports");

    g.throughput(Throughput::Elements(1));
    for (name, strategy) in [
        ("round_trip_1t/sequential", Strategy::Sequential),
        ("round_trip_1t/random", Strategy::Random),
    ] {
        let (a, now) = allocator(strategy);
        g.bench_function(name, |b| b.iter(|| round_trip(&a, ShardId(0), now)));
    }
    let (a, now) = allocator(Strategy::Random);
    let half = a.counts(ShardId(0)).expect("shard 0").total / 2;
    for _ in 0..half {
        a.allocate(ShardId(0), now).expect("slice has room");
    }
    g.bench_function("round_trip_1t/random_half_full", |b| {
        b.iter(|| round_trip(&a, ShardId(0), now))
    });
    let (a, now) = allocator_with_delay(Strategy::Random, Duration::from_secs(3600));
    let total = a.counts(ShardId(0)).expect("shard 0").total;
    let held: Vec<_> = (0..total)
        .map(|_| a.allocate(ShardId(0), now).expect("slice has room"))
        .collect();
    for pair in held {
        a.release(pair, now).expect("pair is held");
    }
    g.bench_function("round_trip_1t/cut_short", |b| {
        b.iter(|| round_trip(&a, ShardId(0), now))
    });

    g.throughput(Throughput::Elements(2));
    for (name, shards) in [
        ("round_trip_2t/own_slices", [ShardId(0), ShardId(1)]),
        ("round_trip_2t/same_slice", [ShardId(0), ShardId(0)]),
    ] {
        let (a, now) = allocator(Strategy::Random);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| two_threads(&a, now, shards, iters))
        });
    }
    g.finish();
}

criterion_group!(benches, ports);
criterion_main!(benches);
