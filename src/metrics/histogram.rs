//! A lock-free duration histogram with fixed buckets, for Prometheus
//! histogram families (`_bucket`, `_sum`, `_count`).
//!
//! [`Histogram::observe`] is two relaxed atomic adds and a scan of
//! [`DURATION_BUCKETS_NS`]: no lock, no allocation. [`Histogram::snapshot`]
//! loads the counters one by one, so a snapshot taken while observations
//! are being recorded may have a `sum` one observation ahead of or behind
//! its buckets; `count` is derived from the buckets and always equals the
//! `+Inf` bucket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (inclusive, Prometheus `le`) of the finite buckets, in
/// nanoseconds: 50 µs to 1 s. A last, implicit bucket is `+Inf`.
pub const DURATION_BUCKETS_NS: [u64; 14] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
];

/// Buckets of a [`Histogram`], the `+Inf` one included.
pub const BUCKETS: usize = DURATION_BUCKETS_NS.len() + 1;

/// Durations counted into [`DURATION_BUCKETS_NS`] (plus `+Inf`), and their
/// sum.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket, not cumulative; the last one is `+Inf`.
    buckets: [AtomicU64; BUCKETS],
    /// Sum of the observations, nanoseconds.
    sum_ns: AtomicU64,
}

/// The values of a [`Histogram`] at one time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HistogramSnapshot {
    /// Observations per bucket, not cumulative; the last one is `+Inf`.
    pub buckets: [u64; BUCKETS],
    /// Sum of the observations, nanoseconds.
    pub sum_ns: u64,
}

impl Histogram {
    /// Records one duration (lock-free, no allocation).
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let i = DURATION_BUCKETS_NS
            .iter()
            .position(|&bound| ns <= bound)
            .unwrap_or(DURATION_BUCKETS_NS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Reads the counters (relaxed loads).
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: std::array::from_fn(|i| {
                self.buckets.get(i).map_or(0, |b| b.load(Ordering::Relaxed))
            }),
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
        }
    }
}

impl HistogramSnapshot {
    /// Observations in all buckets.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Sum of the observations, seconds.
    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }

    /// `(le, cumulative count)` per bucket, as the `_bucket` samples are
    /// written: finite bounds in seconds, then `f64::INFINITY`.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let bounds = DURATION_BUCKETS_NS
            .iter()
            .map(|&ns| ns as f64 / 1e9)
            .chain(std::iter::once(f64::INFINITY));
        bounds.zip(self.buckets.iter().scan(0u64, |acc, &n| {
            *acc = acc.saturating_add(n);
            Some(*acc)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_bounds_inclusive() {
        let h = Histogram::default();
        h.observe(Duration::ZERO);
        h.observe(Duration::from_micros(50)); // le 0.00005 (inclusive)
        h.observe(Duration::from_nanos(50_001)); // le 0.0001
        h.observe(Duration::from_millis(3)); // le 0.005
        h.observe(Duration::from_secs(1)); // le 1
        h.observe(Duration::from_secs(2)); // +Inf
        h.observe(Duration::from_secs(3600)); // +Inf
        let s = h.snapshot();
        assert_eq!(s.count(), 7);
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[6], 1);
        assert_eq!(s.buckets[13], 1);
        assert_eq!(s.buckets[14], 2);
        let cumulative: Vec<(f64, u64)> = s.cumulative().collect();
        assert_eq!(cumulative.len(), BUCKETS);
        assert_eq!(cumulative[0], (0.00005, 2));
        assert_eq!(cumulative[1], (0.0001, 3));
        assert_eq!(cumulative[13], (1.0, 5));
        assert_eq!(cumulative[14], (f64::INFINITY, 7));
        assert!(
            cumulative
                .windows(2)
                .all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0)
        );
    }

    #[test]
    fn sum_in_seconds() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(1500));
        h.observe(Duration::from_micros(500));
        let s = h.snapshot();
        assert_eq!(s.sum_ns, 2_000_000);
        assert_eq!(s.sum_seconds(), 0.002);
        assert_eq!(Histogram::default().snapshot().count(), 0);
    }

    #[test]
    fn concurrent_observations_are_all_counted() {
        let h = std::sync::Arc::new(Histogram::default());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let h = std::sync::Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        h.observe(Duration::from_micros(t * 1000 + i));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(h.snapshot().count(), 4000);
    }
}
