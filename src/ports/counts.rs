//! [`Counts`]: pairs in use, quarantined and free, quarantines cut short,
//! and the lock-free tally a slice keeps them in.
//!
//! The two gauges of a slice live in ONE `AtomicU64` as two signed 32-bit
//! lanes (`in_use + quarantined << 32`, wrapping), so every state transition
//! is one `fetch_add` and every read is a snapshot of both gauges at one
//! point of the tally's modification order. The cut-short counter is a
//! second `AtomicU64`, only ever incremented, read separately (it may be one
//! step ahead of or behind the lanes it is read with).
//!
//! The tally is updated *after* the compare-and-swap on the pair's state
//! word, so while operations are in flight it may lag the words by those
//! operations; a release whose tally update lands before the matching
//! allocation's can even push a lane transiently below zero. Reads clamp
//! into `0..=total`. With no operation in flight the tally is exact.

use super::sync::{AtomicU64, Ordering};

/// Pair counts of one shard slice (or, summed, of the whole range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    /// Pairs currently allocated.
    pub in_use: u32,
    /// Pairs released and not yet handed out again. Includes pairs whose
    /// release delay has passed but that no allocation has reclaimed yet
    /// (reclaiming is lazy).
    pub quarantined: u32,
    /// Pairs never allocated since construction: `total - in_use - quarantined`.
    pub free: u32,
    /// All pairs.
    pub total: u32,
    /// Allocations that took a quarantined pair before its release delay
    /// had passed, because no free or expired pair was left (the oldest
    /// quarantine is cut short instead of refusing). Monotonically
    /// increasing since construction; summed over slices in totals.
    pub quarantine_cut_short: u64,
}

/// The lock-free counters of one slice: the packed gauges and the
/// cut-short counter.
#[derive(Debug)]
pub(crate) struct Tally {
    /// `in_use + quarantined << 32`, two signed 32-bit lanes.
    lanes: AtomicU64,
    /// Quarantines cut short; only incremented.
    cut_short: AtomicU64,
}

/// +1 in the `in_use` lane.
const IN_USE_ONE: u64 = 1;
/// +1 in the `quarantined` lane.
const QUARANTINED_ONE: u64 = 1 << 32;

impl Counts {
    /// Builds counts from possibly transient (negative, too large) lanes,
    /// clamped so that `in_use + quarantined + free == total`.
    fn clamped(in_use: i32, quarantined: i32, total: u32) -> Self {
        let in_use = u32::try_from(in_use).unwrap_or(0).min(total);
        let quarantined = u32::try_from(quarantined).unwrap_or(0).min(total - in_use);
        Counts {
            in_use,
            quarantined,
            free: total - in_use - quarantined,
            total,
            quarantine_cut_short: 0,
        }
    }

    /// Field-wise sum (for totals over slices), saturating.
    pub(crate) fn plus(self, other: Counts) -> Counts {
        Counts {
            in_use: self.in_use.saturating_add(other.in_use),
            quarantined: self.quarantined.saturating_add(other.quarantined),
            free: self.free.saturating_add(other.free),
            total: self.total.saturating_add(other.total),
            quarantine_cut_short: self
                .quarantine_cut_short
                .saturating_add(other.quarantine_cut_short),
        }
    }
}

impl Tally {
    /// Zero in use, zero quarantined.
    pub(crate) fn new() -> Self {
        Tally {
            lanes: AtomicU64::new(0),
            cut_short: AtomicU64::new(0),
        }
    }

    // Relaxed everywhere: the tally is statistics. Nothing is published
    // through it and no decision about pair ownership reads it; the state
    // words alone decide ownership.

    /// A never-used pair was allocated.
    pub(crate) fn claimed_free(&self) {
        self.lanes.fetch_add(IN_USE_ONE, Ordering::Relaxed);
    }

    /// A quarantined pair whose delay had passed was allocated.
    pub(crate) fn claimed_quarantined(&self) {
        self.lanes
            .fetch_add(IN_USE_ONE.wrapping_sub(QUARANTINED_ONE), Ordering::Relaxed);
    }

    /// A quarantined pair whose delay had NOT passed was allocated (its
    /// quarantine was cut short).
    pub(crate) fn claimed_cut_short(&self) {
        self.claimed_quarantined();
        self.cut_short.fetch_add(1, Ordering::Relaxed);
    }

    /// An allocated pair was released into quarantine.
    pub(crate) fn released(&self) {
        self.lanes
            .fetch_add(QUARANTINED_ONE.wrapping_sub(IN_USE_ONE), Ordering::Relaxed);
    }

    /// A snapshot of the counters of a slice of `total` pairs.
    pub(crate) fn counts(&self, total: u32) -> Counts {
        let (in_use, quarantined) = unpack(self.lanes.load(Ordering::Relaxed));
        Counts {
            quarantine_cut_short: self.cut_short.load(Ordering::Relaxed),
            ..Counts::clamped(in_use, quarantined, total)
        }
    }
}

/// Splits a tally word `in_use + quarantined * 2^32 (mod 2^64)` with signed
/// 32-bit lanes back into the lanes.
fn unpack(word: u64) -> (i32, i32) {
    // Truncations are the point: each lane is 32 bits, two's complement.
    let in_use = word as u32 as i32;
    let quarantined = (word.wrapping_sub(i64::from(in_use) as u64) >> 32) as u32 as i32;
    (in_use, quarantined)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn transitions_move_the_right_lanes() {
        let t = Tally::new();
        t.claimed_free();
        t.claimed_free();
        t.claimed_free();
        t.released();
        let c = t.counts(10);
        assert_eq!(
            c,
            Counts {
                in_use: 2,
                quarantined: 1,
                free: 7,
                total: 10,
                quarantine_cut_short: 0,
            }
        );
        t.claimed_quarantined();
        assert_eq!(t.counts(10).in_use, 3);
        assert_eq!(t.counts(10).quarantined, 0);
        assert_eq!(t.counts(10).quarantine_cut_short, 0);
        t.released();
        t.claimed_cut_short();
        let c = t.counts(10);
        assert_eq!((c.in_use, c.quarantined, c.free), (3, 0, 7));
        assert_eq!(c.quarantine_cut_short, 1);
        assert_eq!(c.plus(c).quarantine_cut_short, 2);
    }

    #[test]
    fn lanes_survive_transient_negatives() {
        // A release's tally update landing before its allocation's.
        let t = Tally::new();
        t.released();
        assert_eq!(unpack(t.lanes.load(Ordering::Relaxed)), (-1, 1));
        assert_eq!(t.counts(4).in_use, 0);
        t.claimed_free();
        assert_eq!(unpack(t.lanes.load(Ordering::Relaxed)), (0, 1));
        // Quarantine reclaimed before the release that fed it is counted.
        let t = Tally::new();
        t.claimed_quarantined();
        assert_eq!(unpack(t.lanes.load(Ordering::Relaxed)), (1, -1));
        let c = t.counts(4);
        assert_eq!((c.in_use, c.quarantined, c.free), (1, 0, 3));
    }

    #[test]
    fn clamping_keeps_the_sum() {
        let c = Counts::clamped(5, 5, 6);
        assert_eq!(c.in_use + c.quarantined + c.free, 6);
        let c = Counts::clamped(-3, 9, 6);
        assert_eq!((c.in_use, c.quarantined, c.free), (0, 6, 0));
    }
}
