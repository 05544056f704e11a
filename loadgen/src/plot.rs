//! The SVG report (`--svg FILE`): what a run draws.
//!
//! Data types only here; [`write_svg`] draws them with plotters' SVG
//! backend (no font files needed).

/// One second of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecondRow {
    /// Seconds since the run's start.
    pub t: u64,
    /// Packets scheduled in that second and sent.
    pub sent: u64,
    /// Of those, received.
    pub received: u64,
    /// Of those, lost.
    pub lost: u64,
    /// Latency of the arrivals in that second, from the scheduled time, µs.
    pub p50_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Highest, µs.
    pub max_us: u64,
}

/// One trial of a `--find-max` search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RampPoint {
    /// Calls offered.
    pub calls: u64,
    /// Loss, percent of sent.
    pub loss_pct: f64,
    /// p99 latency from the scheduled time, µs.
    pub p99_us: u64,
    /// Relay CPU, percent of one core (None when not measured).
    pub relay_cpu_pct: Option<f64>,
    /// Whether the trial met every bound.
    pub pass: bool,
}

/// Everything one SVG draws.
#[derive(Debug, Clone, Copy)]
pub struct Plot<'a> {
    /// Title (relay, calls, rate, date).
    pub title: &'a str,
    /// Latency percentile spectrum: (percentile, e.g. 99.9, latency µs),
    /// percentiles ascending.
    pub spectrum: &'a [(f64, u64)],
    /// Per-second figures.
    pub seconds: &'a [SecondRow],
    /// `--find-max` trials in the order run (empty otherwise).
    pub ramp: &'a [RampPoint],
}

/// Draws `plot` as an SVG file at `path`.
pub fn write_svg(path: &std::path::Path, plot: &Plot<'_>) -> Result<(), String> {
    let _ = (path, plot);
    Err("SVG drawing is not built yet".into())
}
