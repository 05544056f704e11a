//! What a path does to the datagrams it carries: [`Impairments`], with
//! [`Gilbert`] burst loss. Plain settings, validated before use.

use std::time::Duration;

use super::NetsimError;

/// Upper bound on every duration setting (one day). Keeps all the instant
/// arithmetic of the simulator far from overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Gilbert-Elliott two-state burst loss.
///
/// The channel is in a *good* or a *bad* state. For every datagram the state
/// first moves (good to bad with probability `p`, bad to good with
/// probability `r`), then the datagram is lost with the new state's loss
/// probability. With the defaults (`loss_good = 0`, `loss_bad = 1`) this is
/// the simple Gilbert model: loss bursts have a mean length of `1 / r`
/// datagrams and the long-run loss share is `p / (p + r)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gilbert {
    /// Probability, per datagram, of moving from good to bad.
    pub p: f64,
    /// Probability, per datagram, of moving from bad to good.
    pub r: f64,
    /// Loss probability in the good state (default `0`).
    pub loss_good: f64,
    /// Loss probability in the bad state (default `1`).
    pub loss_bad: f64,
}

impl Gilbert {
    /// The simple Gilbert model: transitions `p` and `r`, no loss when
    /// good, all lost when bad.
    pub fn new(p: f64, r: f64) -> Self {
        Self {
            p,
            r,
            loss_good: 0.0,
            loss_bad: 1.0,
        }
    }

    /// The simple Gilbert model with a long-run loss share `loss_share` in
    /// `[0, 1)` and bursts of `mean_burst` datagrams on average (at least 1):
    /// `r = 1 / mean_burst`, `p = loss_share * r / (1 - loss_share)`.
    pub fn with_mean_burst(loss_share: f64, mean_burst: f64) -> Result<Self, NetsimError> {
        // NaN is not in the range either.
        if !(1.0..).contains(&mean_burst) {
            return Err(NetsimError::BurstTooShort(mean_burst));
        }
        if !(0.0..1.0).contains(&loss_share) {
            return Err(NetsimError::ProbabilityOutOfRange {
                field: "loss_share",
                value: loss_share,
            });
        }
        let r = 1.0 / mean_burst;
        let g = Self::new(loss_share * r / (1.0 - loss_share), r);
        g.validate()?;
        Ok(g)
    }

    /// Checks that all four numbers are probabilities in `[0, 1]`.
    pub fn validate(&self) -> Result<(), NetsimError> {
        probability("gilbert.p", self.p)?;
        probability("gilbert.r", self.r)?;
        probability("gilbert.loss_good", self.loss_good)?;
        probability("gilbert.loss_bad", self.loss_bad)
    }
}

/// Everything one direction of a path does to a datagram, in the order
/// applied: burst loss, random loss, rate limit with tail drop, delay,
/// jitter, reordering hold, duplication (see the [module docs](super)).
///
/// Build with struct update syntax over [`Impairments::none`]:
/// `Impairments { loss: 0.01, ..Impairments::none() }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Impairments {
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `[0, jitter]` per datagram. Unless
    /// `jitter_reorders` is set, a datagram is clamped so that it is never
    /// delivered before one sent earlier on the same path.
    pub jitter: Duration,
    /// Lets jitter reorder datagrams (no clamp).
    pub jitter_reorders: bool,
    /// Independent random loss probability.
    pub loss: f64,
    /// Burst loss, applied in addition to `loss`.
    pub gilbert: Option<Gilbert>,
    /// Probability that a datagram is held back `reorder_delay` extra, so
    /// that later datagrams overtake it. Held datagrams are exempt from the
    /// no-reorder clamp.
    pub reorder: f64,
    /// How long a reordered datagram is held back (default 25 ms).
    pub reorder_delay: Duration,
    /// Probability that a datagram is delivered twice; the copy arrives
    /// `[0, 1)` ms after the original.
    pub duplicate: f64,
    /// Serialisation rate of the path in bits/s, counting 28 bytes of
    /// IPv4 + UDP header per datagram; datagrams queue behind each other.
    /// `None`: unlimited.
    pub rate_bps: Option<u64>,
    /// Tail drop: a datagram arriving when the rate limiter's backlog
    /// exceeds this is dropped (default 100 ms). Unused without `rate_bps`.
    pub queue_limit: Duration,
}

impl Impairments {
    /// A perfect path: no delay, loss, jitter, reordering, duplication or
    /// rate limit; `reorder_delay` 25 ms and `queue_limit` 100 ms ready for
    /// when those are switched on.
    pub fn none() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            jitter_reorders: false,
            loss: 0.0,
            gilbert: None,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(25),
            duplicate: 0.0,
            rate_bps: None,
            queue_limit: Duration::from_millis(100),
        }
    }

    /// Checks that probabilities are in `[0, 1]` (NaN rejected), durations
    /// at most [`MAX_DURATION`], and a rate, when set, at least 1 bit/s.
    pub fn validate(&self) -> Result<(), NetsimError> {
        probability("loss", self.loss)?;
        probability("reorder", self.reorder)?;
        probability("duplicate", self.duplicate)?;
        if let Some(g) = &self.gilbert {
            g.validate()?;
        }
        duration("delay", self.delay)?;
        duration("jitter", self.jitter)?;
        duration("reorder_delay", self.reorder_delay)?;
        duration("queue_limit", self.queue_limit)?;
        if self.rate_bps == Some(0) {
            return Err(NetsimError::ZeroRate);
        }
        Ok(())
    }
}

impl Default for Impairments {
    fn default() -> Self {
        Self::none()
    }
}

fn probability(field: &'static str, value: f64) -> Result<(), NetsimError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(NetsimError::ProbabilityOutOfRange { field, value })
    }
}

fn duration(field: &'static str, value: Duration) -> Result<(), NetsimError> {
    if value <= MAX_DURATION {
        Ok(())
    } else {
        Err(NetsimError::DurationTooLong {
            field,
            value,
            max: MAX_DURATION,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_valid_and_default() {
        assert_eq!(Impairments::none().validate(), Ok(()));
        assert_eq!(Impairments::default(), Impairments::none());
    }

    #[test]
    fn out_of_range_probabilities_are_typed_errors() {
        let bad = Impairments {
            loss: 1.5,
            ..Impairments::none()
        };
        assert_eq!(
            bad.validate(),
            Err(NetsimError::ProbabilityOutOfRange {
                field: "loss",
                value: 1.5
            })
        );
        let nan = Impairments {
            duplicate: f64::NAN,
            ..Impairments::none()
        };
        assert!(matches!(
            nan.validate(),
            Err(NetsimError::ProbabilityOutOfRange {
                field: "duplicate",
                ..
            })
        ));
        let neg = Impairments {
            reorder: -0.1,
            ..Impairments::none()
        };
        assert!(matches!(
            neg.validate(),
            Err(NetsimError::ProbabilityOutOfRange {
                field: "reorder",
                ..
            })
        ));
        let g = Impairments {
            gilbert: Some(Gilbert::new(0.1, 2.0)),
            ..Impairments::none()
        };
        assert!(matches!(
            g.validate(),
            Err(NetsimError::ProbabilityOutOfRange {
                field: "gilbert.r",
                ..
            })
        ));
    }

    #[test]
    fn zero_rate_and_long_durations_are_typed_errors() {
        let zero = Impairments {
            rate_bps: Some(0),
            ..Impairments::none()
        };
        assert_eq!(zero.validate(), Err(NetsimError::ZeroRate));
        let long = Impairments {
            delay: MAX_DURATION + Duration::from_nanos(1),
            ..Impairments::none()
        };
        assert!(matches!(
            long.validate(),
            Err(NetsimError::DurationTooLong { field: "delay", .. })
        ));
    }

    #[test]
    fn gilbert_with_mean_burst() {
        let g = Gilbert::with_mean_burst(0.2, 4.0).expect("valid");
        assert!((g.r - 0.25).abs() < 1e-12);
        assert!((g.p / (g.p + g.r) - 0.2).abs() < 1e-12);
        assert_eq!(
            Gilbert::with_mean_burst(0.2, 0.5),
            Err(NetsimError::BurstTooShort(0.5))
        );
        assert!(Gilbert::with_mean_burst(1.0, 2.0).is_err());
    }
}
