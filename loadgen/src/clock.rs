//! The run clock: nanoseconds on the monotonic clock since a process-wide
//! epoch. Sender and receiver of a run live in one process, so their
//! readings compare directly (CLOCK_MONOTONIC through `Instant`).

use std::sync::OnceLock;
use std::time::Instant;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process's run-clock epoch.
pub fn now_ns() -> u64 {
    ns_of(Instant::now())
}

/// The run-clock reading of `at` (0 for an instant before the epoch).
pub fn ns_of(at: Instant) -> u64 {
    at.saturating_duration_since(epoch())
        .as_nanos()
        .min(u128::from(u64::MAX)) as u64
}

/// The instant of a run-clock reading.
pub fn instant_of(ns: u64) -> Instant {
    epoch() + std::time::Duration::from_nanos(ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_convertible() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        let i = instant_of(b);
        assert!(i <= Instant::now());
    }
}
