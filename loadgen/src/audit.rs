//! Generator self-audit: whether the generator kept its schedule, so a
//! run in which it could not is marked invalid instead of being read as a
//! relay's fault.
//!
//! - send lag: actual − scheduled send time of every packet (HDR, µs);
//! - missed ticks: schedule slots skipped outright (the generator was more
//!   than a catch-up window behind);
//! - `ENOBUFS` / `EAGAIN` on send;
//! - the kernel's UDP `RcvbufErrors` / `SndbufErrors` (from
//!   `/proc/net/snmp`), as deltas over the run.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::latency::{MAX_LATENCY_US, Percentiles};

/// The default validity bound: p99 send lag above 1 ms invalidates a run.
pub const DEFAULT_MAX_SEND_LAG: Duration = Duration::from_millis(1);

/// The kernel's UDP error counters (`/proc/net/snmp`, line `Udp:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpCounters {
    /// `InErrors`.
    pub in_errors: u64,
    /// `RcvbufErrors`: datagrams dropped because a socket's receive buffer
    /// was full.
    pub rcvbuf_errors: u64,
    /// `SndbufErrors`.
    pub sndbuf_errors: u64,
}

impl UdpCounters {
    /// Parses the text of `/proc/net/snmp`; `None` without a `Udp:` pair of
    /// lines naming the counters.
    pub fn parse(snmp: &str) -> Option<UdpCounters> {
        let mut lines = snmp.lines().filter(|l| l.starts_with("Udp:"));
        let names: Vec<&str> = lines.next()?.split_whitespace().skip(1).collect();
        let values: Vec<u64> = lines
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        let get = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .and_then(|i| values.get(i).copied())
        };
        Some(UdpCounters {
            in_errors: get("InErrors")?,
            rcvbuf_errors: get("RcvbufErrors").unwrap_or(0),
            sndbuf_errors: get("SndbufErrors").unwrap_or(0),
        })
    }

    /// This host's counters now; `None` where `/proc/net/snmp` is missing.
    pub fn read() -> Option<UdpCounters> {
        UdpCounters::parse(&std::fs::read_to_string("/proc/net/snmp").ok()?)
    }

    /// `self − earlier`, per counter (0 where a counter went back).
    pub fn since(&self, earlier: &UdpCounters) -> UdpCounters {
        UdpCounters {
            in_errors: self.in_errors.saturating_sub(earlier.in_errors),
            rcvbuf_errors: self.rcvbuf_errors.saturating_sub(earlier.rcvbuf_errors),
            sndbuf_errors: self.sndbuf_errors.saturating_sub(earlier.sndbuf_errors),
        }
    }
}

/// Whether a run's figures can be trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// The generator kept its schedule.
    Valid,
    /// It did not; the reason names the bound it broke.
    Invalid(String),
}

/// The sender side's audit.
#[derive(Debug)]
pub struct SenderAudit {
    lag: Histogram<u64>,
    sent: u64,
    missed_ticks: u64,
    enobufs: u64,
    eagain: u64,
    other_errors: u64,
}

/// The audit's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditReport {
    /// Packets sent.
    pub sent: u64,
    /// Send lag percentiles, µs.
    pub send_lag_us: Percentiles,
    /// Schedule slots skipped.
    pub missed_ticks: u64,
    /// Sends refused with `ENOBUFS`.
    pub enobufs: u64,
    /// Sends refused with `EAGAIN`/`EWOULDBLOCK`.
    pub eagain: u64,
    /// Other send errors.
    pub other_errors: u64,
}

impl Default for SenderAudit {
    fn default() -> Self {
        SenderAudit::new()
    }
}

impl SenderAudit {
    /// An empty audit.
    pub fn new() -> SenderAudit {
        let lag = crate::latency::new_histogram();
        SenderAudit {
            lag,
            sent: 0,
            missed_ticks: 0,
            enobufs: 0,
            eagain: 0,
            other_errors: 0,
        }
    }

    /// A packet scheduled at `scheduled_ns` went out at `sent_ns`.
    pub fn record_send(&mut self, scheduled_ns: u64, sent_ns: u64) {
        self.sent += 1;
        let us = (sent_ns.saturating_sub(scheduled_ns) / 1000).clamp(1, MAX_LATENCY_US);
        let _ = self.lag.record(us);
    }

    /// `n` schedule slots were skipped.
    pub fn record_missed(&mut self, n: u64) {
        self.missed_ticks += n;
    }

    /// A send failed with `err`.
    pub fn record_error(&mut self, err: &std::io::Error) {
        match err.raw_os_error() {
            Some(105) => self.enobufs += 1, // ENOBUFS on Linux
            _ if err.kind() == std::io::ErrorKind::WouldBlock => self.eagain += 1,
            _ => self.other_errors += 1,
        }
    }

    /// Adds another sender's audit (one per sending thread).
    pub fn merge(&mut self, other: &SenderAudit) {
        let _ = self.lag.add(&other.lag);
        self.sent += other.sent;
        self.missed_ticks += other.missed_ticks;
        self.enobufs += other.enobufs;
        self.eagain += other.eagain;
        self.other_errors += other.other_errors;
    }

    /// The figures.
    pub fn report(&self) -> AuditReport {
        AuditReport {
            sent: self.sent,
            send_lag_us: Percentiles::of(&self.lag),
            missed_ticks: self.missed_ticks,
            enobufs: self.enobufs,
            eagain: self.eagain,
            other_errors: self.other_errors,
        }
    }

    /// Valid unless the p99 send lag exceeds `max_p99_lag`, ticks were
    /// missed, or sends failed for lack of buffers.
    pub fn validity(&self, max_p99_lag: Duration) -> Validity {
        let r = self.report();
        let bound = max_p99_lag.as_micros().min(u128::from(u64::MAX)) as u64;
        if r.send_lag_us.p99 > bound {
            return Validity::Invalid(format!(
                "p99 send lag {} us exceeds {} us",
                r.send_lag_us.p99, bound
            ));
        }
        if r.missed_ticks > 0 {
            return Validity::Invalid(format!("{} schedule ticks missed", r.missed_ticks));
        }
        if r.enobufs + r.eagain > 0 {
            return Validity::Invalid(format!(
                "{} sends refused (ENOBUFS {}, EAGAIN {})",
                r.enobufs + r.eagain,
                r.enobufs,
                r.eagain
            ));
        }
        Validity::Valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
Udp: 1000 2 7 900 5 1 0 0 0\n\
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n\
UdpLite: 0 0 0 0 0 0 0 0 0\n";

    #[test]
    fn snmp_counters_parse_and_subtract() {
        let c = UdpCounters::parse(SNMP).unwrap();
        assert_eq!(
            c,
            UdpCounters {
                in_errors: 7,
                rcvbuf_errors: 5,
                sndbuf_errors: 1
            }
        );
        let earlier = UdpCounters {
            in_errors: 2,
            rcvbuf_errors: 5,
            sndbuf_errors: 3,
        };
        assert_eq!(
            c.since(&earlier),
            UdpCounters {
                in_errors: 5,
                rcvbuf_errors: 0,
                sndbuf_errors: 0
            }
        );
        assert_eq!(UdpCounters::parse("nothing"), None);
        assert!(UdpCounters::read().is_some());
    }

    #[test]
    fn a_lagging_generator_is_invalid() {
        let mut a = SenderAudit::new();
        for k in 0..1000u64 {
            a.record_send(k * 20_000_000, k * 20_000_000 + 50_000);
        }
        assert_eq!(a.validity(DEFAULT_MAX_SEND_LAG), Validity::Valid);
        for k in 1000..1100u64 {
            a.record_send(k * 20_000_000, k * 20_000_000 + 5_000_000);
        }
        assert!(matches!(
            a.validity(DEFAULT_MAX_SEND_LAG),
            Validity::Invalid(_)
        ));
        let mut b = SenderAudit::new();
        b.record_error(&std::io::Error::from_raw_os_error(105));
        b.record_error(&std::io::Error::from(std::io::ErrorKind::WouldBlock));
        let r = b.report();
        assert_eq!((r.enobufs, r.eagain), (1, 1));
        assert!(matches!(
            b.validity(DEFAULT_MAX_SEND_LAG),
            Validity::Invalid(_)
        ));
    }
}
