//! Errors of the network simulator: impairment settings it refuses.

/// Why an [`Impairments`](super::Impairments) or [`Gilbert`](super::Gilbert)
/// setting is rejected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NetsimError {
    /// A probability is not a number in `[0, 1]`.
    #[error("{field} = {value} is not a probability in [0, 1]")]
    ProbabilityOutOfRange {
        /// Name of the field, e.g. `"loss"` or `"gilbert.p"`.
        field: &'static str,
        /// The rejected value (may be NaN).
        value: f64,
    },
    /// A duration exceeds [`MAX_DURATION`](super::MAX_DURATION).
    #[error("{field} = {value:?} exceeds the simulator's limit of {max:?}")]
    DurationTooLong {
        /// Name of the field, e.g. `"delay"`.
        field: &'static str,
        /// The rejected value.
        value: std::time::Duration,
        /// The limit.
        max: std::time::Duration,
    },
    /// `rate_bps` is `Some(0)`: a path that can never send anything.
    #[error("rate_bps must be at least 1 bit/s")]
    ZeroRate,
    /// A mean burst length below one datagram was asked of
    /// [`Gilbert::with_mean_burst`](super::Gilbert::with_mean_burst).
    #[error("mean burst length {0} is below 1 datagram")]
    BurstTooShort(f64),
}
