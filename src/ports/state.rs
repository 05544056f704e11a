//! The per-pair state word and the tick clock it stores times in.
//!
//! Each pair is one `AtomicU64` holding a [`PairState`]:
//!
//! ```text
//! 0                          free (never handed out since construction)
//! 1 << 63                    allocated
//! 1 << 62 | until (62 bits)  quarantined until tick `until`
//! ```
//!
//! Transitions (each one compare-and-swap, see `slice.rs`):
//! `Free -> Allocated`, `Quarantined(until <= now) -> Allocated`,
//! `Quarantined(until > now) -> Allocated` (cut short: only when no free or
//! expired pair is left), `Allocated -> Quarantined(now + release_delay)`.
//! Nothing ever goes back to `Free`, so `Free` means "never allocated".
//! [`PairState::claimable`] is the preferred set; cutting short is decided
//! by the slice, not here.
//!
//! Ticks are nanoseconds since the allocator's epoch `Instant`, saturated to
//! 62 bits (about 146 years); instants before the epoch count as tick 0.

use std::time::{Duration, Instant};

/// Largest storable tick.
pub(crate) const MAX_TICK: u64 = (1 << 62) - 1;
const ALLOCATED: u64 = 1 << 63;
const QUARANTINED: u64 = 1 << 62;

/// Decoded state of one pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PairState {
    /// Never allocated since construction.
    Free,
    /// Held by a call.
    Allocated,
    /// Released; preferred for reuse from tick `until` on, reused before
    /// only when nothing else is left.
    Quarantined {
        /// First tick at which the pair is claimable again.
        until: u64,
    },
}

impl PairState {
    /// The word for [`PairState::Allocated`], the only state `release` CASes from.
    pub(crate) const ALLOCATED_WORD: u64 = ALLOCATED;

    /// The atomic word for this state.
    pub(crate) const fn encode(self) -> u64 {
        match self {
            PairState::Free => 0,
            PairState::Allocated => ALLOCATED,
            PairState::Quarantined { until } => QUARANTINED | (until & MAX_TICK),
        }
    }

    /// The state a word encodes. Only [`PairState::encode`] writes words, so
    /// every word decodes to the state that produced it.
    pub(crate) const fn decode(word: u64) -> Self {
        if word == 0 {
            PairState::Free
        } else if word & ALLOCATED != 0 {
            PairState::Allocated
        } else {
            PairState::Quarantined {
                until: word & MAX_TICK,
            }
        }
    }

    /// True when an allocation at tick `now` may take the pair without
    /// cutting a quarantine short.
    pub(crate) const fn claimable(self, now: u64) -> bool {
        match self {
            PairState::Free => true,
            PairState::Allocated => false,
            PairState::Quarantined { until } => until <= now,
        }
    }
}

/// Ticks of `now` since `epoch`: nanoseconds, saturated to [`MAX_TICK`].
pub(crate) fn ticks_since(epoch: Instant, now: Instant) -> u64 {
    duration_ticks(now.saturating_duration_since(epoch))
}

/// A duration in ticks, saturated to [`MAX_TICK`].
pub(crate) fn duration_ticks(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).map_or(MAX_TICK, |t| t.min(MAX_TICK))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_words() {
        for s in [
            PairState::Free,
            PairState::Allocated,
            PairState::Quarantined { until: 0 },
            PairState::Quarantined { until: 12345 },
            PairState::Quarantined { until: MAX_TICK },
        ] {
            assert_eq!(PairState::decode(s.encode()), s);
        }
        assert_eq!(PairState::Allocated.encode(), PairState::ALLOCATED_WORD);
    }

    #[test]
    fn quarantine_expires_at_until() {
        let q = PairState::Quarantined { until: 10 };
        assert!(!q.claimable(9));
        assert!(q.claimable(10));
        assert!(PairState::Free.claimable(0));
        assert!(!PairState::Allocated.claimable(u64::MAX));
    }

    #[test]
    fn ticks_saturate() {
        let epoch = Instant::now();
        assert_eq!(ticks_since(epoch, epoch), 0);
        assert_eq!(ticks_since(epoch + Duration::from_millis(1), epoch), 0);
        assert_eq!(ticks_since(epoch, epoch + Duration::from_micros(3)), 3000);
        assert_eq!(duration_ticks(Duration::MAX), MAX_TICK);
    }
}
