//! Loom models of the allocator: ranges of 1-3 pairs, one or two shards, two
//! threads. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib --target-dir target/loom -- loom`.
//!
//! Every model checks, over all interleavings loom explores: no pair is held
//! twice, exactly one of two racing releases wins, and once the threads are
//! joined the counters equal the state the outcome implies.

use std::time::Instant;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

use super::*;

/// An allocator over `pairs` pairs starting at port 30000, split into
/// `shards` slices, with no release delay (so released pairs are reusable at
/// once and races between release and reuse are explored).
fn allocator(pairs: u16, shards: u16, strategy: Strategy) -> (Arc<PortAllocator>, Instant) {
    let epoch = Instant::now();
    let config = PortConfig::new(30000, 30000 + 2 * pairs - 1, shards)
        .unwrap()
        .with_strategy(strategy)
        .with_release_delay(std::time::Duration::ZERO);
    (Arc::new(PortAllocator::new(config, epoch)), epoch)
}

fn in_use_quarantined(a: &PortAllocator) -> (u32, u32) {
    let c = a.totals();
    assert_eq!(c.in_use + c.quarantined + c.free, c.total);
    (c.in_use, c.quarantined)
}

#[test]
fn loom_two_allocators_get_distinct_pairs() {
    for strategy in [Strategy::Sequential, Strategy::Random] {
        loom::model(move || {
            let (a, t) = allocator(2, 1, strategy);
            let a2 = Arc::clone(&a);
            let other = thread::spawn(move || a2.allocate(ShardId(0), t).unwrap());
            let mine = a.allocate(ShardId(0), t).unwrap();
            let theirs = other.join().unwrap();
            assert_ne!(mine, theirs);
            assert_eq!(in_use_quarantined(&a), (2, 0));
        });
    }
}

#[test]
fn loom_last_pair_goes_to_exactly_one_allocator() {
    loom::model(|| {
        let (a, t) = allocator(1, 1, Strategy::Random);
        let a2 = Arc::clone(&a);
        let other = thread::spawn(move || a2.allocate(ShardId(0), t).is_ok());
        let mine = a.allocate(ShardId(0), t);
        let theirs = other.join().unwrap();
        assert!(mine.is_ok() != theirs, "{mine:?} / {theirs}");
        if let Err(e) = mine {
            assert!(matches!(e, AllocError::Exhausted { total: 1, .. }), "{e:?}");
        }
        assert_eq!(in_use_quarantined(&a), (1, 0));
    });
}

#[test]
fn loom_concurrent_double_release_succeeds_once() {
    loom::model(|| {
        let (a, t) = allocator(2, 1, Strategy::Sequential);
        let pair = a.allocate(ShardId(0), t).unwrap();
        let a2 = Arc::clone(&a);
        let other = thread::spawn(move || a2.release(pair, t));
        let mine = a.release(pair, t);
        let theirs = other.join().unwrap();
        match (mine, theirs) {
            (Ok(()), Err(e)) | (Err(e), Ok(())) => {
                assert_eq!(e, ReleaseError::AlreadyReleased { pair });
            }
            other => panic!("expected exactly one Ok: {other:?}"),
        }
        assert_eq!(in_use_quarantined(&a), (0, 1));
    });
}

/// A release racing an allocation that can only succeed by reclaiming the
/// released pair. If it does, everything the releasing thread wrote before
/// releasing must be visible to the allocating thread (Release/Acquire on
/// the pair word), even through a `Relaxed` load.
#[test]
fn loom_release_happens_before_reuse() {
    loom::model(|| {
        let (a, t) = allocator(2, 1, Strategy::Sequential);
        let p = a.allocate(ShardId(0), t).unwrap();
        let q = a.allocate(ShardId(0), t).unwrap();
        let teardown = Arc::new(AtomicU64::new(0));

        let (a2, teardown2) = (Arc::clone(&a), Arc::clone(&teardown));
        let releaser = thread::spawn(move || {
            teardown2.store(42, Ordering::Relaxed);
            a2.release(p, t).unwrap();
        });
        let got = a.allocate(ShardId(0), t);
        if let Ok(pair) = got {
            assert_eq!(pair, p);
            assert_eq!(teardown.load(Ordering::Relaxed), 42);
        }
        releaser.join().unwrap();

        let expected = if got.is_ok() { (2, 0) } else { (1, 1) };
        assert_eq!(in_use_quarantined(&a), expected);
        // q was never released; p is either held again or quarantined.
        assert_eq!(
            a.release(q, t).is_ok() && a.release(p, t).is_ok(),
            got.is_ok()
        );
    });
}

/// Allocation and release of *different* pairs of one slice at once (the
/// control plane allocating for a shard that is releasing): counters end
/// exact although their updates interleave.
#[test]
fn loom_allocate_while_other_pair_is_released() {
    loom::model(|| {
        let (a, t) = allocator(3, 1, Strategy::Random);
        let held = a.allocate(ShardId(0), t).unwrap();
        let a2 = Arc::clone(&a);
        let releaser = thread::spawn(move || a2.release(held, t).unwrap());
        let got = a.allocate(ShardId(0), t).unwrap();
        releaser.join().unwrap();
        // got may be `held` itself if the release landed first.
        let expected = if got == held { (1, 0) } else { (1, 1) };
        assert_eq!(in_use_quarantined(&a), expected);
    });
}

#[test]
fn loom_allocate_any_spills_to_the_other_shard() {
    loom::model(|| {
        let (a, t) = allocator(2, 2, Strategy::Sequential); // one pair per shard
        let a2 = Arc::clone(&a);
        let other = thread::spawn(move || a2.allocate_any(ShardId(0), t).unwrap());
        let (my_shard, mine) = a.allocate_any(ShardId(0), t).unwrap();
        let (their_shard, theirs) = other.join().unwrap();
        assert_ne!(mine, theirs);
        assert_ne!(my_shard, their_shard);
        assert_eq!(a.shard_of(mine.rtp()), Some(my_shard));
        assert_eq!(a.shard_of(theirs.rtp()), Some(their_shard));
        for s in [ShardId(0), ShardId(1)] {
            let c = a.counts(s).unwrap();
            assert_eq!((c.in_use, c.quarantined, c.free), (1, 0, 0));
        }
    });
}

/// Three threads on one slice of two pairs: one releases a held pair while
/// two others allocate. Whatever the interleaving, no pair is held twice and
/// the counters match the outcome.
#[test]
fn loom_two_allocators_race_a_release() {
    loom::model(|| {
        let (a, t) = allocator(2, 1, Strategy::Random);
        let p = a.allocate(ShardId(0), t).unwrap();
        let a2 = Arc::clone(&a);
        let releaser = thread::spawn(move || a2.release(p, t).unwrap());
        let a3 = Arc::clone(&a);
        let other = thread::spawn(move || a3.allocate(ShardId(0), t).ok());
        let mine = a.allocate(ShardId(0), t).ok();
        releaser.join().unwrap();
        let theirs = other.join().unwrap();

        let got: Vec<PortPair> = [mine, theirs].into_iter().flatten().collect();
        // At least the never-used pair went to someone.
        assert!(!got.is_empty());
        if let [x, y] = got[..] {
            assert_ne!(x, y);
        }
        let reclaimed = got.contains(&p);
        let n = u32::try_from(got.len()).unwrap();
        assert_eq!(in_use_quarantined(&a), (n, u32::from(!reclaimed)));
    });
}
