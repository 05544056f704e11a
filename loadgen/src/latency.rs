//! Latency histograms (HDR, microsecond resolution up to 60 s, three
//! significant figures): one-way delay from the **scheduled** send time
//! (what a caller experiences when the generator itself fell behind:
//! coordinated omission corrected) and from the **actual** send time (what
//! the network path and the relay added), for the whole run. Per-second
//! figures are kept by the caller (`relay::generator::SecondBucket`), in
//! histograms of their own that merge across threads.

use hdrhistogram::Histogram;

/// Percentiles of a histogram, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Percentiles {
    /// Samples.
    pub count: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// 99.99th percentile.
    pub p9999: u64,
    /// Largest.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h`.
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            p9999: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// The latency recorder of a run.
#[derive(Debug)]
pub struct Latency {
    from_scheduled: Histogram<u64>,
    from_sent: Histogram<u64>,
}

/// Highest latency recorded, µs (larger values are clamped to it).
pub const MAX_LATENCY_US: u64 = 60_000_000;

/// An empty latency histogram: 1 µs to [`MAX_LATENCY_US`], 3 significant
/// digits (every histogram of the load generator).
pub fn new_histogram() -> Histogram<u64> {
    // Invariant: 1 <= low, high >= 2 * low and 3 significant figures are
    // valid bounds, so construction cannot fail.
    #[allow(clippy::expect_used)]
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant, valid histogram bounds")
}

impl Default for Latency {
    fn default() -> Self {
        Latency::new()
    }
}

impl Latency {
    /// An empty recorder.
    pub fn new() -> Latency {
        Latency {
            from_scheduled: new_histogram(),
            from_sent: new_histogram(),
        }
    }

    /// Records a packet scheduled at `scheduled_ns`, sent at `sent_ns`,
    /// arrived at `arrival_ns` (run clock).
    pub fn record(&mut self, scheduled_ns: u64, sent_ns: u64, arrival_ns: u64) {
        let us = |from: u64| (arrival_ns.saturating_sub(from) / 1000).clamp(1, MAX_LATENCY_US);
        let _ = self.from_scheduled.record(us(scheduled_ns));
        let _ = self.from_sent.record(us(sent_ns));
    }

    /// Whole-run latency from the scheduled send time.
    pub fn from_scheduled(&self) -> Percentiles {
        Percentiles::of(&self.from_scheduled)
    }

    /// Whole-run latency from the actual send time.
    pub fn from_sent(&self) -> Percentiles {
        Percentiles::of(&self.from_sent)
    }

    /// The percentile spectrum of the latency from the scheduled time:
    /// (percentile, µs) at 0, 10, ..., 90, then 90 + 9 × 10^-k steps to
    /// 99.999 (the "nines" of an HDR percentile plot).
    pub fn spectrum(&self) -> Vec<(f64, u64)> {
        spectrum_of(&self.from_scheduled)
    }

    /// Adds another recorder's samples (e.g. one per receiving thread).
    pub fn merge(&mut self, other: &Latency) {
        let _ = self.from_scheduled.add(&other.from_scheduled);
        let _ = self.from_sent.add(&other.from_sent);
    }
}

/// See [`Latency::spectrum`]; empty for an empty histogram.
pub fn spectrum_of(h: &Histogram<u64>) -> Vec<(f64, u64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut ps: Vec<f64> = (0..9).map(|i| f64::from(i) * 10.0).collect();
    for k in 1..=5 {
        // 90, 91, ..., 99; 99, 99.1, ..., 99.9; ... up to 99.999.
        let span = 10f64.powi(2 - k);
        for j in 0..10 {
            ps.push(100.0 - span + span * f64::from(j) / 10.0);
        }
    }
    ps.retain(|p| *p < 100.0);
    ps.sort_by(f64::total_cmp);
    ps.dedup();
    ps.into_iter()
        .map(|p| (p, h.value_at_quantile(p / 100.0)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinated_omission_shows_in_the_scheduled_figures() {
        let mut l = Latency::new();
        // 100 packets every 20 ms; the generator stalled 200 ms before
        // packet 50 and sent 50..59 late, the path adds 100 µs.
        for k in 0..100u64 {
            let scheduled = k * 20_000_000;
            let sent = if (50..60).contains(&k) {
                50 * 20_000_000 + 200_000_000
            } else {
                scheduled
            };
            l.record(scheduled, sent, sent + 100_000);
        }
        let s = l.from_sent();
        assert_eq!((s.count, s.p50, s.max), (100, 100, 100));
        let c = l.from_scheduled();
        assert_eq!(c.p50, 100);
        assert!(c.max >= 200_000, "{c:?}");
        // 10% of the packets waited 20-200 ms behind their schedule.
        assert!(c.p99 >= 20_000, "{c:?}");
        assert_eq!(c.p90, 100);
    }
}
