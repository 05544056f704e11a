//! One direction of one address pair: its impairment state (Gilbert state,
//! no-reorder clamp, rate-limiter backlog), its own random stream and its
//! counters. [`Network`](super::Network) asks it what happens to each
//! datagram sent.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::Impairments;
use super::rng::{Rng, scale_below};

/// IPv4 (20 bytes) plus UDP (8 bytes) header, counted by the rate limiter.
pub const IPV4_UDP_OVERHEAD: usize = 28;

/// Counters of one path, or of all paths together ([`Network::stats`]).
///
/// Every datagram sent ends up exactly once in `lost`, `rate_dropped`, or
/// (later) `delivered`; duplicates add to `delivered` too, so once nothing
/// is in flight `sent + duplicated == delivered + lost + rate_dropped`.
///
/// [`Network::stats`]: super::Network::stats
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PathStats {
    /// Datagrams handed to [`Network::send`](super::Network::send).
    pub sent: u64,
    /// Datagrams handed out by `poll_deliver`, duplicate copies included.
    pub delivered: u64,
    /// Datagrams lost to random or burst loss.
    pub lost: u64,
    /// The part of `lost` due to the Gilbert-Elliott burst model.
    pub burst_lost: u64,
    /// Datagrams that were delivered twice (copies created).
    pub duplicated: u64,
    /// Datagrams held back `reorder_delay` to be overtaken.
    pub reordered: u64,
    /// Datagrams tail-dropped by the rate limiter's queue.
    pub rate_dropped: u64,
}

impl PathStats {
    /// Adds `other` to `self`, field by field.
    pub(super) fn add(&mut self, other: &PathStats) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.lost += other.lost;
        self.burst_lost += other.burst_lost;
        self.duplicated += other.duplicated;
        self.reordered += other.reordered;
        self.rate_dropped += other.rate_dropped;
    }
}

/// What happens to one datagram sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    /// Lost or tail-dropped; already counted.
    Dropped,
    /// Delivered at `at`, and a second time at `copy` when duplicated.
    Deliver { at: Instant, copy: Option<Instant> },
}

/// State of one directional path.
#[derive(Debug, Clone)]
pub(super) struct PathState {
    rng: Rng,
    /// Gilbert-Elliott state: `true` while bad.
    bad: bool,
    /// Latest delivery time of a datagram not held back (duplicates
    /// included): the no-reorder clamp.
    last_deliver: Option<Instant>,
    /// When the rate limiter finishes serialising its backlog.
    busy_until: Option<Instant>,
    pub(super) stats: PathStats,
}

/// The random numbers of one datagram. Every datagram draws the same set in
/// the same order whatever the settings, so that switching one impairment
/// on does not shift the pattern of the others.
struct Draws {
    gilbert_step: f64,
    gilbert_loss: f64,
    loss: f64,
    jitter: u64,
    reorder: f64,
    duplicate: f64,
    copy_offset: u64,
}

impl PathState {
    /// Fresh state with the random stream of `(seed, src, dst)`.
    pub(super) fn new(seed: u64, src: SocketAddr, dst: SocketAddr) -> Self {
        let mut key = Vec::with_capacity(2 * 19);
        push_addr(&mut key, src);
        push_addr(&mut key, dst);
        Self {
            rng: Rng::for_stream(seed, &key),
            bad: false,
            last_deliver: None,
            busy_until: None,
            stats: PathStats::default(),
        }
    }

    /// Decides the fate of a datagram of `len` payload bytes sent at `now`.
    ///
    /// `imp` must have passed [`Impairments::validate`]: its durations are at
    /// most a day, so adding them to `now` cannot overflow an `Instant`.
    pub(super) fn admit(&mut self, imp: &Impairments, now: Instant, len: usize) -> Fate {
        self.stats.sent += 1;
        let d = Draws {
            gilbert_step: self.rng.next_f64(),
            gilbert_loss: self.rng.next_f64(),
            loss: self.rng.next_f64(),
            jitter: self.rng.next_u64(),
            reorder: self.rng.next_f64(),
            duplicate: self.rng.next_f64(),
            copy_offset: self.rng.next_u64(),
        };

        if let Some(g) = &imp.gilbert {
            self.bad = if self.bad {
                d.gilbert_step >= g.r
            } else {
                d.gilbert_step < g.p
            };
            let p = if self.bad { g.loss_bad } else { g.loss_good };
            if d.gilbert_loss < p {
                self.stats.lost += 1;
                self.stats.burst_lost += 1;
                return Fate::Dropped;
            }
        }
        if d.loss < imp.loss {
            self.stats.lost += 1;
            return Fate::Dropped;
        }

        let departure = match imp.rate_bps {
            None => now,
            Some(bps) => {
                let start = self.busy_until.map_or(now, |b| b.max(now));
                if start - now > imp.queue_limit {
                    self.stats.rate_dropped += 1;
                    return Fate::Dropped;
                }
                let done = start + serialisation(len, bps);
                self.busy_until = Some(done);
                done
            }
        };

        let jitter = nanos_in(d.jitter, imp.jitter);
        let mut at = departure + imp.delay + jitter;
        let held = d.reorder < imp.reorder;
        if held {
            self.stats.reordered += 1;
            at += imp.reorder_delay;
        } else if !imp.jitter_reorders {
            if let Some(last) = self.last_deliver {
                at = at.max(last);
            }
        }
        let copy = (d.duplicate < imp.duplicate).then(|| {
            self.stats.duplicated += 1;
            // [0, 1) ms after the original.
            at + Duration::from_nanos(scale_below(d.copy_offset, 1_000_000))
        });
        if !held {
            let latest = copy.unwrap_or(at);
            self.last_deliver = Some(self.last_deliver.map_or(latest, |l| l.max(latest)));
        }
        Fate::Deliver { at, copy }
    }
}

/// Time to serialise `len` payload bytes plus IPv4/UDP headers at `bps`
/// bits/s, rounded up to the nanosecond. `bps >= 1` (validated).
fn serialisation(len: usize, bps: u64) -> Duration {
    let bits = (len as u128 + IPV4_UDP_OVERHEAD as u128) * 8;
    let bps = u128::from(bps.max(1));
    let nanos = (bits * 1_000_000_000).div_ceil(bps);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// A duration uniform in `[0, max]` from 64 random bits.
fn nanos_in(bits: u64, max: Duration) -> Duration {
    // `max` is at most a day (validated), far below u64::MAX nanoseconds.
    let span = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX - 1);
    Duration::from_nanos(scale_below(bits, span.saturating_add(1)))
}

/// Appends a stable byte encoding of `addr` (family tag, address, port).
fn push_addr(key: &mut Vec<u8>, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(a) => {
            key.push(4);
            key.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            key.push(6);
            key.extend_from_slice(&a.ip().octets());
        }
    }
    key.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialisation_time_counts_headers() {
        // 172 + 28 bytes = 1600 bits at 64 kbit/s = 25 ms.
        assert_eq!(serialisation(172, 64_000), Duration::from_millis(25));
        assert_eq!(serialisation(0, 1), Duration::from_secs(224));
    }

    #[test]
    fn unit_draws_are_in_range() {
        assert!(crate::netsim::rng::unit_f64(u64::MAX) < 1.0);
        assert_eq!(
            nanos_in(u64::MAX, Duration::from_nanos(5)),
            Duration::from_nanos(5)
        );
        assert_eq!(nanos_in(u64::MAX, Duration::ZERO), Duration::ZERO);
    }
}
