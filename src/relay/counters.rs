//! Per-stream counters and the reasons a packet is dropped.
//!
//! Counters are plain integers owned by the shard that owns the stream: no
//! atomics on the hot path. Other threads read them through snapshots that
//! the shard hands out over its control mailbox.

use std::time::{Duration, Instant};

use crate::rtp::Ssrc;
use crate::rtp::stats::ReceiveStats;

/// Why the relay dropped a packet. Every drop is counted under one reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// Not a valid RTP packet on an RTP port (RFC 3550 §5.1).
    MalformedRtp,
    /// Not a valid RTCP packet on an RTCP port (RFC 3550 §6.4).
    MalformedRtcp,
    /// Neither RTP nor RTCP on an rtcp-mux port (RFC 5761 §4, RFC 7983).
    NotMedia,
    /// The datagram did not fit the receive buffer (truncated).
    Oversize,
    /// Strict source: the source is not the signalled one (asymmetric) or
    /// not the learned one after the learning window (symmetric).
    StrictSource,
    /// Another source while the stream's current source is active: an
    /// injection or hijack attempt (RTP bleed), or a duplicate path.
    SourceActive,
    /// A new source after the learning window that does not continue the
    /// current RTP stream (same SSRC, next sequence numbers).
    NoContinuity,
    /// The other leg has no address to send to yet.
    NoDestination,
    /// The stream has no peer leg (half set-up call).
    NoPeer,
    /// The packet came back from the relay itself (loop protection).
    Loop,
    /// SRTP termination refused it: authentication or replay check failed
    /// (RFC 3711 §3.3), or it could not be protected or queued.
    Srtp,
    /// The other leg's far end withdrew its consent to receive: its ICE
    /// consent expired (RFC 7675 §5.1) and nothing is sent to it until
    /// another pair is selected, ICE restarts or ICE is removed.
    NoConsent,
}

impl DropReason {
    /// Number of variants (size of the per-reason counter array).
    pub const COUNT: usize = 12;

    /// Every reason, in counter-array order.
    pub const ALL: [DropReason; DropReason::COUNT] = [
        DropReason::MalformedRtp,
        DropReason::MalformedRtcp,
        DropReason::NotMedia,
        DropReason::Oversize,
        DropReason::StrictSource,
        DropReason::SourceActive,
        DropReason::NoContinuity,
        DropReason::NoDestination,
        DropReason::NoPeer,
        DropReason::Loop,
        DropReason::Srtp,
        DropReason::NoConsent,
    ];

    /// Index into a per-reason counter array.
    pub const fn index(self) -> usize {
        match self {
            DropReason::MalformedRtp => 0,
            DropReason::MalformedRtcp => 1,
            DropReason::NotMedia => 2,
            DropReason::Oversize => 3,
            DropReason::StrictSource => 4,
            DropReason::SourceActive => 5,
            DropReason::NoContinuity => 6,
            DropReason::NoDestination => 7,
            DropReason::NoPeer => 8,
            DropReason::Loop => 9,
            DropReason::Srtp => 10,
            DropReason::NoConsent => 11,
        }
    }

    /// A stable snake_case name, used as a metrics label.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::MalformedRtp => "malformed_rtp",
            DropReason::MalformedRtcp => "malformed_rtcp",
            DropReason::NotMedia => "not_media",
            DropReason::Oversize => "oversize",
            DropReason::StrictSource => "strict_source",
            DropReason::SourceActive => "source_active",
            DropReason::NoContinuity => "no_continuity",
            DropReason::NoDestination => "no_destination",
            DropReason::NoPeer => "no_peer",
            DropReason::Loop => "loop",
            DropReason::Srtp => "srtp",
            DropReason::NoConsent => "no_consent",
        }
    }
}

/// Counters of one relay stream (one local socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamCounters {
    /// Packets received and accepted.
    pub packets: u64,
    /// Bytes of accepted packets (UDP payload).
    pub bytes: u64,
    /// Packets handed to this stream's socket for sending: relayed from
    /// the peer leg, and a local endpoint's own.
    pub sent_packets: u64,
    /// Bytes of those packets.
    pub sent_bytes: u64,
    /// Send errors on this stream's socket (ECONNREFUSED after an ICMP
    /// unreachable, EAGAIN, ENOBUFS...).
    pub errors: u64,
    /// Drops by reason, indexed by [`DropReason::index`]; each saturates
    /// at `u32::MAX` (four billion drops on one stream: the shard's totals
    /// in the metrics keep counting), which keeps a stream small: it is
    /// part of every endpoint's and every relay leg's footprint.
    pub drops: [u32; DropReason::COUNT],
    /// Times the learned address changed.
    pub relatches: u64,
    /// Arrival time of the last accepted packet.
    pub last_packet: Option<Instant>,
    /// SSRC of the last accepted RTP packet.
    pub last_ssrc: Option<Ssrc>,
    /// Packets a forwarding path outside the table (the kernel fast path)
    /// forwarded whose sequence number was not the previous one + 1: a
    /// sign of loss or reordering upstream in the part of the stream the
    /// table did not see (its RTP statistics cover only the packets it
    /// handled).
    pub offloaded_seq_jumps: u64,
}

/// RTP receive statistics of a stream's current source (RFC 3550 A.1, A.3,
/// A.8), as carried in snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpSummary {
    /// The source.
    pub ssrc: Ssrc,
    /// Packets received from it (validated sequence).
    pub received: u64,
    /// Packets expected from the extended sequence range.
    pub expected: u64,
    /// Cumulative packets lost (negative with duplicates, RFC 3550 A.3).
    pub lost: i64,
    /// Interarrival jitter.
    pub jitter: Duration,
}

impl From<&ReceiveStats> for RtpSummary {
    fn from(s: &ReceiveStats) -> Self {
        RtpSummary {
            ssrc: s.ssrc(),
            received: s.received(),
            expected: s.expected(),
            lost: s.cumulative_lost(),
            jitter: s.jitter_duration(),
        }
    }
}

impl StreamCounters {
    /// Counts one dropped packet.
    pub fn drop_packet(&mut self, reason: DropReason) {
        let d = &mut self.drops[reason.index()];
        *d = d.saturating_add(1);
    }

    /// Drops for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        u64::from(self.drops[reason.index()])
    }

    /// All drops.
    pub fn dropped_total(&self) -> u64 {
        self.drops.iter().map(|&d| u64::from(d)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_indices_are_dense_and_unique() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DropReason::COUNT);
    }

    #[test]
    fn drop_counting() {
        let mut c = StreamCounters::default();
        c.drop_packet(DropReason::Oversize);
        c.drop_packet(DropReason::Oversize);
        c.drop_packet(DropReason::SourceActive);
        assert_eq!(c.dropped(DropReason::Oversize), 2);
        assert_eq!(c.dropped(DropReason::SourceActive), 1);
        assert_eq!(c.dropped_total(), 3);
    }
}
