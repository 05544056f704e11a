//! Loom models of the allocator: ranges of 1-3 pairs, one or two shards, two
//! or three threads. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --lib --target-dir target/loom -- loom`.
//!
//! Every model checks, over all interleavings loom explores: no pair is held
//! twice, exactly one of two racing releases wins, and once the threads are
//! joined the counters equal the state the outcome implies. The models with
//! a release delay check the quarantine rule: a quarantine is cut short
//! only when nothing free or expired is claimable, then rather than
//! refusing, and two allocations never both get the pair cut short.

use std::time::{Duration, Instant};

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering};
use loom::thread;

use super::*;

/// An allocator over `pairs` pairs starting at port 30000, split into
/// `shards` slices, with no release delay (so released pairs are reusable at
/// once and races between release and reuse are explored).
fn allocator(pairs: u16, shards: u16, strategy: Strategy) -> (Arc<PortAllocator>, Instant) {
    allocator_with_delay(pairs, shards, strategy, Duration::ZERO)
}

/// As [`allocator`], with a release delay: every model thread uses the
/// same `now`, so a pair released in the model stays quarantined.
fn allocator_with_delay(
    pairs: u16,
    shards: u16,
    strategy: Strategy,
    delay: Duration,
) -> (Arc<PortAllocator>, Instant) {
    let epoch = Instant::now();
    let config = PortConfig::new(30000, 30000 + 2 * pairs - 1, shards)
        .unwrap()
        .with_strategy(strategy)
        .with_release_delay(delay);
    (Arc::new(PortAllocator::new(config, epoch)), epoch)
}

const DELAY: Duration = Duration::from_secs(1);

fn cut_short(a: &PortAllocator) -> u64 {
    a.totals().quarantine_cut_short
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

/// Two allocators race for a slice whose only pair not in use is
/// quarantined: exactly one cuts its quarantine short, the other (whose
/// cut-short CAS, if it got that far, lost) finds every pair in use.
#[test]
fn loom_two_allocators_race_for_the_last_quarantined_pair() {
    loom::model(|| {
        let (a, t) = allocator_with_delay(1, 1, Strategy::Random, DELAY);
        let p = a.allocate(ShardId(0), t).unwrap();
        a.release(p, t).unwrap();
        let a2 = Arc::clone(&a);
        let other = thread::spawn(move || a2.allocate(ShardId(0), t));
        let mine = a.allocate(ShardId(0), t);
        let theirs = other.join().unwrap();
        match (mine, theirs) {
            (Ok(x), Err(e)) | (Err(e), Ok(x)) => {
                assert_eq!(x, p);
                assert!(matches!(e, AllocError::Exhausted { total: 1, .. }), "{e:?}");
            }
            other => panic!("expected exactly one Ok: {other:?}"),
        }
        assert_eq!(in_use_quarantined(&a), (1, 0));
        assert_eq!(cut_short(&a), 1);
    });
}

/// One quarantined pair and two never-used ones: two concurrent
/// allocations both get never-used pairs; the quarantine is not touched
/// while something claimable exists.
#[test]
fn loom_quarantine_is_not_cut_short_while_a_pair_is_claimable() {
    for strategy in [Strategy::Sequential, Strategy::Random] {
        loom::model(move || {
            let (a, t) = allocator_with_delay(3, 1, strategy, DELAY);
            let p = a.allocate(ShardId(0), t).unwrap();
            a.release(p, t).unwrap();
            let a2 = Arc::clone(&a);
            let other = thread::spawn(move || a2.allocate(ShardId(0), t).unwrap());
            let mine = a.allocate(ShardId(0), t).unwrap();
            let theirs = other.join().unwrap();
            assert_ne!(mine, theirs);
            assert!(mine != p && theirs != p);
            assert_eq!(in_use_quarantined(&a), (2, 1));
            assert_eq!(cut_short(&a), 0);
        });
    }
}

/// One quarantined pair and one never-used one: whichever allocation loses
/// the never-used pair cuts the quarantine short instead of failing.
#[test]
fn loom_loser_of_the_free_pair_cuts_the_quarantine_short() {
    loom::model(|| {
        let (a, t) = allocator_with_delay(2, 1, Strategy::Random, DELAY);
        let p = a.allocate(ShardId(0), t).unwrap();
        a.release(p, t).unwrap();
        let a2 = Arc::clone(&a);
        let other = thread::spawn(move || a2.allocate(ShardId(0), t).unwrap());
        let mine = a.allocate(ShardId(0), t).unwrap();
        let theirs = other.join().unwrap();
        assert_ne!(mine, theirs);
        assert!(mine == p || theirs == p);
        assert_eq!(in_use_quarantined(&a), (2, 0));
        assert_eq!(cut_short(&a), 1);
    });
}

/// A release (with a delay) racing an allocation that can only succeed by
/// cutting that fresh quarantine short: if it does, the releasing thread's
/// earlier writes are visible (the cut-short CAS acquires like any claim).
#[test]
fn loom_release_happens_before_cut_short_reuse() {
    loom::model(|| {
        let (a, t) = allocator_with_delay(1, 1, Strategy::Sequential, DELAY);
        let p = a.allocate(ShardId(0), t).unwrap();
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
        if got.is_ok() {
            assert_eq!((in_use_quarantined(&a), cut_short(&a)), ((1, 0), 1));
        } else {
            assert_eq!((in_use_quarantined(&a), cut_short(&a)), ((0, 1), 0));
        }
    });
}

/// `allocate_any` with shard 0's only pair quarantined and shard 1's free:
/// of two concurrent calls preferring shard 0, one spills to shard 1's free
/// pair and the other cuts shard 0's quarantine short; never both on shard
/// 0, never a failure.
#[test]
fn loom_allocate_any_claims_everywhere_before_cutting_short() {
    loom::model(|| {
        let (a, t) = allocator_with_delay(2, 2, Strategy::Random, DELAY);
        let p = a.allocate(ShardId(0), t).unwrap();
        a.release(p, t).unwrap();
        let a2 = Arc::clone(&a);
        let other = thread::spawn(move || a2.allocate_any(ShardId(0), t).unwrap());
        let mine = a.allocate_any(ShardId(0), t).unwrap();
        let theirs = other.join().unwrap();
        assert_ne!(mine.1, theirs.1);
        let mut shards = [mine.0, theirs.0];
        shards.sort();
        assert_eq!(shards, [ShardId(0), ShardId(1)]);
        assert!(mine.1 == p || theirs.1 == p);
        let c0 = a.counts(ShardId(0)).unwrap();
        let c1 = a.counts(ShardId(1)).unwrap();
        assert_eq!((c0.in_use, c0.quarantine_cut_short), (1, 1));
        assert_eq!((c1.in_use, c1.quarantine_cut_short), (1, 0));
    });
}
