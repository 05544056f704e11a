//! Per-source RTP receive statistics (RFC 3550 Appendix A.1, A.3, A.8).
//!
//! [`ReceiveStats`] follows one SSRC: it validates the sequence numbers
//! (A.1: probation, dropout and misorder limits, restart detection), counts
//! what arrived, computes loss (A.3) and interarrival jitter (A.8), and
//! remembers the last sender report from the source so a reception report
//! block can carry LSR/DLSR (RFC 3550 §6.4.1).
//!
//! Contract: sans-IO and allocation-free. Time enters as `now: Instant` on
//! every call and only differences between those instants are used, so a
//! virtual clock drives it deterministically. [`ReceiveStats::handle_packet`]
//! is meant to run for every forwarded packet: it is O(1), a few compares,
//! one 128-bit multiply and no branches that depend on history length.
//!
//! Arrival times are converted to RTP timestamp units with 16 fractional
//! bits, measured from the first packet's arrival; the jitter estimate keeps
//! the same 16 fractional bits and is reported truncated to whole units.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use super::{RtpPacket, SeqNo, Ssrc};
use crate::rtcp::{NtpShort, NtpTime, ReportBlock};

/// Sequential packets needed before a source is valid (RFC 3550 A.1).
pub const MIN_SEQUENTIAL: u8 = 2;
/// Largest forward gap still taken as the same stream (RFC 3550 A.1).
pub const MAX_DROPOUT: u16 = 3000;
/// Largest backward step still taken as a late packet (RFC 3550 A.1).
pub const MAX_MISORDER: u16 = 100;

/// 2^16, the sequence number modulus (RFC 3550 A.1 `RTP_SEQ_MOD`).
const RTP_SEQ_MOD: u32 = 1 << 16;
/// `bad_seq` value that no wire sequence number equals.
const NO_BAD_SEQ: u32 = RTP_SEQ_MOD + 1;
/// Fractional bits of arrival times and of the jitter estimate.
const FRAC_BITS: u32 = 16;
/// Packets behind the highest that the duplicate window remembers; covers
/// the whole [`MAX_MISORDER`] range.
const WINDOW_BITS: u64 = 128;

/// The RTP clock rate of a stream in Hz (RFC 3550 §5.1; RFC 3551 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClockRate(NonZeroU32);

/// What [`ReceiveStats::handle_packet`] made of a packet (RFC 3550 A.1).
///
/// Only the counted outcomes ([`Outcome::is_counted`]) enter the loss and
/// jitter statistics; the relay may forward the others anyway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The source is still on probation: fewer than [`MIN_SEQUENTIAL`]
    /// sequential packets so far. Not counted.
    Probation,
    /// A new highest sequence number, possibly after a gap of up to
    /// [`MAX_DROPOUT`]. Counted.
    InOrder(SeqNo),
    /// Older than the highest, and not seen before (reordered). Counted.
    Late(SeqNo),
    /// A sequence number already received. Counted, as RFC 3550 §6.4.1
    /// prescribes (so cumulative loss can go negative).
    Duplicate(SeqNo),
    /// A jump of more than [`MAX_DROPOUT`] ahead or [`MAX_MISORDER`]
    /// behind. Not counted; if the next packet follows it sequentially the
    /// source is taken to have restarted.
    Jump,
    /// The packet after a [`Outcome::Jump`] followed it: the sender
    /// restarted, the sequence state starts over from this packet. Counted.
    Restarted(SeqNo),
    /// The packet is from another SSRC. Ignored.
    ForeignSsrc,
}

/// Receive statistics of one RTP source (RFC 3550 A.1, A.3, A.8).
#[derive(Debug, Clone)]
pub struct ReceiveStats {
    ssrc: Ssrc,
    clock_rate: ClockRate,
    /// `ceil(rate * 2^48 / 10^9)`: nanoseconds to 2^-16 RTP units, << 32.
    units_per_nano: u64,

    // RFC 3550 A.1.
    /// Arrival of the first packet (any outcome): the jitter time base.
    first_arrival: Option<Instant>,
    /// Sequential packets still needed; 0 once valid.
    probation: u8,
    /// Extended highest sequence number (`cycles + max_seq`).
    max: SeqNo,
    /// Extended sequence number of the first counted packet.
    base_seq: u64,
    /// Wire sequence number expected after a jump, or [`NO_BAD_SEQ`].
    bad_seq: u32,
    /// Bit `i` set: `max - i` was received (duplicate detection).
    window: u128,

    // RFC 3550 A.3.
    received: u64,
    expected_prior: u64,
    received_prior: u64,

    // Lifetime counters (not reset by a restart).
    octets: u64,
    payload_octets: u64,
    duplicates: u64,
    late: u64,
    restarts: u64,
    last_arrival: Option<Instant>,

    // RFC 3550 A.8.
    /// Arrival (2^-16 RTP units since `first_arrival`) and RTP timestamp of
    /// the previous counted packet.
    prev_transit: Option<(i64, u32)>,
    /// Jitter estimate in 2^-16 RTP units.
    jitter: u64,

    /// Middle 32 bits of the last SR's NTP time, and when it arrived.
    last_sr: Option<(NtpShort, Instant)>,
}

impl ClockRate {
    /// 8 kHz: G.711 PCMU/PCMA, G.729, telephone-event (RFC 3551 §6).
    pub const G711: ClockRate = ClockRate(NonZeroU32::MIN.saturating_add(7999));
    /// 48 kHz: Opus (RFC 7587 §4.1).
    pub const OPUS: ClockRate = ClockRate(NonZeroU32::MIN.saturating_add(47_999));
    /// 90 kHz: video (RFC 3551 §5).
    pub const VIDEO: ClockRate = ClockRate(NonZeroU32::MIN.saturating_add(89_999));

    /// A clock rate, or `None` for 0 Hz.
    pub const fn new(hz: u32) -> Option<Self> {
        match NonZeroU32::new(hz) {
            Some(nz) => Some(ClockRate(nz)),
            None => None,
        }
    }

    /// The rate in Hz.
    pub const fn hz(self) -> u32 {
        self.0.get()
    }
}

impl Outcome {
    /// True when the packet entered the loss and jitter statistics.
    pub const fn is_counted(self) -> bool {
        matches!(
            self,
            Outcome::InOrder(_) | Outcome::Late(_) | Outcome::Duplicate(_) | Outcome::Restarted(_)
        )
    }
}

impl ReceiveStats {
    /// Statistics for `ssrc`, whose RTP timestamps tick at `clock_rate`.
    pub fn new(ssrc: Ssrc, clock_rate: ClockRate) -> Self {
        // rate < 2^32, so rate << 48 < 2^80 and the quotient < 2^51.
        let units = (u128::from(clock_rate.hz()) << 48).div_ceil(1_000_000_000);
        ReceiveStats {
            ssrc,
            clock_rate,
            units_per_nano: u64::try_from(units).unwrap_or(u64::MAX),
            first_arrival: None,
            probation: MIN_SEQUENTIAL,
            max: SeqNo(0),
            base_seq: 0,
            bad_seq: NO_BAD_SEQ,
            window: 0,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            octets: 0,
            payload_octets: 0,
            duplicates: 0,
            late: 0,
            restarts: 0,
            last_arrival: None,
            prev_transit: None,
            jitter: 0,
            last_sr: None,
        }
    }

    /// Accounts one received packet arriving at `now` (RFC 3550 A.1, A.8).
    pub fn handle_packet(&mut self, now: Instant, pkt: &RtpPacket<'_>) -> Outcome {
        self.account(now, pkt, true)
    }

    /// Accounts a telephone-event packet of this source: it counts in the
    /// sequence and loss statistics like any packet (RFC 4733 §2.1: events
    /// share the audio stream's sequence space), but stays out of the
    /// interarrival jitter. Every packet of an event carries the event's
    /// start timestamp (RFC 4733 §2.3.1), not its sampling instant, so in
    /// RFC 3550 A.8's transit difference each update would look like a
    /// packet one ptime late.
    pub fn handle_event_packet(&mut self, now: Instant, pkt: &RtpPacket<'_>) -> Outcome {
        self.account(now, pkt, false)
    }

    fn account(&mut self, now: Instant, pkt: &RtpPacket<'_>, jitter: bool) -> Outcome {
        if pkt.ssrc() != self.ssrc {
            return Outcome::ForeignSsrc;
        }
        if self.first_arrival.is_none() {
            // RFC 3550 A.1: first packet, start probation.
            self.first_arrival = Some(now);
            self.max = SeqNo(u64::from(pkt.sequence().wrapping_sub(1)));
            self.probation = MIN_SEQUENTIAL;
        }
        self.last_arrival = Some(now);
        let outcome = self.update_seq(pkt.sequence());
        match outcome {
            Outcome::Probation | Outcome::Jump | Outcome::ForeignSsrc => return outcome,
            Outcome::Late(_) => self.late += 1,
            Outcome::Duplicate(_) => self.duplicates += 1,
            Outcome::Restarted(_) => {
                self.restarts += 1;
                self.prev_transit = None;
            }
            Outcome::InOrder(_) => {}
        }
        self.received += 1;
        self.octets += pkt.as_bytes().len() as u64;
        self.payload_octets += pkt.payload().len() as u64;
        if jitter {
            self.update_jitter(now, pkt.timestamp());
        }
        outcome
    }

    /// Records a sender report from this source arriving at `now`, carrying
    /// `ntp` (RFC 3550 §6.4.1: the LSR of the next report block is its
    /// middle 32 bits, the DLSR the time since `now`).
    pub fn handle_sender_report(&mut self, now: Instant, ntp: NtpTime) {
        self.last_sr = Some((ntp.middle(), now));
    }

    /// The reception report block for this source at `now` (RFC 3550
    /// §6.4.1, A.3), closing the current reporting interval: the next
    /// block's fraction lost covers the time from here on.
    ///
    /// `None` while the source is on probation.
    pub fn report_block(&mut self, now: Instant) -> Option<ReportBlock> {
        if !self.is_valid() {
            return None;
        }
        let expected = self.expected();
        // RFC 3550 A.3: loss over the interval since the last report.
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let fraction_lost = match expected_interval.checked_sub(received_interval) {
            Some(lost) if lost > 0 => {
                // lost <= expected_interval, so the quotient is <= 256; 256
                // (nothing received) cannot happen as the highest sequence
                // only advances with a counted packet, but clamp anyway.
                (u128::from(lost) * 256 / u128::from(expected_interval)).min(255) as u8
            }
            _ => 0,
        };
        let (lsr, dlsr) = match self.last_sr {
            Some((lsr, at)) => (
                lsr,
                NtpShort::from_duration(now.saturating_duration_since(at)),
            ),
            None => (NtpShort(0), NtpShort(0)),
        };
        Some(ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            // Clamped to the 24-bit field range (RFC 3550 A.3).
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            // The report carries the low 16 bits of the cycle count.
            highest_seq: self.max.0 as u32,
            jitter: self.jitter(),
            lsr,
            dlsr,
        })
    }

    /// The source this tracks.
    pub const fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The stream's RTP clock rate.
    pub const fn clock_rate(&self) -> ClockRate {
        self.clock_rate
    }

    /// True once probation is over (RFC 3550 A.1).
    pub const fn is_valid(&self) -> bool {
        self.first_arrival.is_some() && self.probation == 0
    }

    /// Extended highest sequence number received, once valid.
    pub const fn highest_seq(&self) -> Option<SeqNo> {
        if self.is_valid() {
            Some(self.max)
        } else {
            None
        }
    }

    /// Packets counted (RFC 3550 A.3 `received`: late and duplicate ones
    /// included), since validation or the last restart.
    pub const fn received(&self) -> u64 {
        self.received
    }

    /// Packets expected from the first counted to the highest sequence
    /// number (RFC 3550 A.3); 0 while on probation.
    pub const fn expected(&self) -> u64 {
        if !self.is_valid() {
            return 0;
        }
        // max >= base_seq: max only grows after init_seq sets both.
        self.max.0.saturating_sub(self.base_seq) + 1
    }

    /// Cumulative packets lost, `expected - received` (RFC 3550 A.3);
    /// negative when duplicates outnumber losses.
    pub const fn cumulative_lost(&self) -> i64 {
        // Both counts are far below 2^63 in any real stream.
        self.expected() as i64 - self.received as i64
    }

    /// Packets counted since the last [`ReceiveStats::report_block`]: a
    /// source with none needs no report block (RFC 3550 §6.4).
    pub const fn received_in_interval(&self) -> u64 {
        self.received.saturating_sub(self.received_prior)
    }

    /// Duplicate packets seen (lifetime).
    pub const fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Late (reordered, first-seen) packets (lifetime).
    pub const fn late(&self) -> u64 {
        self.late
    }

    /// Source restarts detected (RFC 3550 A.1 `bad_seq` resynchronisation).
    pub const fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Datagram octets of counted packets, headers included (lifetime).
    pub const fn octets(&self) -> u64 {
        self.octets
    }

    /// Payload octets of counted packets (lifetime; the unit of the SR
    /// octet count, RFC 3550 §6.4.1).
    pub const fn payload_octets(&self) -> u64 {
        self.payload_octets
    }

    /// Arrival of the latest packet from this SSRC, whatever its outcome.
    pub const fn last_arrival(&self) -> Option<Instant> {
        self.last_arrival
    }

    /// The last SR from this source: middle 32 bits of its NTP timestamp and
    /// when it arrived.
    pub const fn last_sender_report(&self) -> Option<(NtpShort, Instant)> {
        self.last_sr
    }

    /// Interarrival jitter in RTP timestamp units (RFC 3550 A.8), as a
    /// report block carries it.
    pub const fn jitter(&self) -> u32 {
        let whole = self.jitter >> FRAC_BITS;
        if whole > u32::MAX as u64 {
            u32::MAX
        } else {
            whole as u32
        }
    }

    /// Interarrival jitter as a duration.
    pub fn jitter_duration(&self) -> Duration {
        let nanos = u128::from(self.jitter) * 1_000_000_000
            / (u128::from(self.clock_rate.hz()) << FRAC_BITS);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// RFC 3550 A.1 `init_seq`: start the sequence state at `seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u64::from(seq);
        self.max = SeqNo(u64::from(seq));
        self.bad_seq = NO_BAD_SEQ;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.window = 1;
    }

    /// RFC 3550 A.1 `update_seq`, extended with duplicate detection.
    ///
    /// Deviation (docs/rtcp.md): "in sequence" during probation is
    /// `max_seq + 1` modulo 2^16, so probation completes across a wrap.
    fn update_seq(&mut self, seq: u16) -> Outcome {
        let max_seq = self.max.wire();
        let udelta = seq.wrapping_sub(max_seq);
        if self.probation > 0 {
            if seq == max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max = SeqNo(u64::from(seq));
                if self.probation == 0 {
                    self.init_seq(seq);
                    return Outcome::InOrder(self.max);
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max = SeqNo(u64::from(seq));
            }
            return Outcome::Probation;
        }
        if udelta < MAX_DROPOUT {
            if udelta == 0 {
                return Outcome::Duplicate(self.max);
            }
            // In order, with a permissible gap; crossing 65535 -> 0 adds a
            // cycle because the extended number simply keeps counting.
            self.max = SeqNo(self.max.0 + u64::from(udelta));
            self.window = if u64::from(udelta) < WINDOW_BITS {
                self.window << udelta
            } else {
                0
            };
            self.window |= 1;
            return Outcome::InOrder(self.max);
        }
        if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump.
            if u32::from(seq) == self.bad_seq {
                // Two sequential packets: the sender restarted (A.1).
                self.init_seq(seq);
                return Outcome::Restarted(self.max);
            }
            self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
            return Outcome::Jump;
        }
        // Duplicate or reordered, 1..MAX_MISORDER behind the highest.
        let behind = udelta.wrapping_neg();
        let ext = self.max.extend(seq);
        let bit = 1u128 << behind;
        if self.window & bit != 0 {
            return Outcome::Duplicate(ext);
        }
        self.window |= bit;
        Outcome::Late(ext)
    }

    /// RFC 3550 A.8: `D = (Rj - Ri) - (Sj - Si)`, `J += (|D| - J) / 16`,
    /// in 2^-16 RTP units. The timestamp difference is taken modulo 2^32 as
    /// a signed 32-bit value, so a wrap of the RTP timestamp is no spike.
    fn update_jitter(&mut self, now: Instant, timestamp: u32) {
        let arrival = self.arrival_units(now);
        if let Some((prev_arrival, prev_ts)) = self.prev_transit {
            let ts_delta = i64::from(timestamp.wrapping_sub(prev_ts) as i32) << FRAC_BITS;
            let d = arrival
                .saturating_sub(prev_arrival)
                .saturating_sub(ts_delta)
                .unsigned_abs();
            if d >= self.jitter {
                self.jitter += (d - self.jitter) / 16;
            } else {
                self.jitter -= (self.jitter - d) / 16;
            }
        }
        self.prev_transit = Some((arrival, timestamp));
    }

    /// `now` in 2^-16 RTP units since the first arrival.
    fn arrival_units(&self, now: Instant) -> i64 {
        let base = self.first_arrival.unwrap_or(now);
        let nanos = now.saturating_duration_since(base).as_nanos();
        let units = nanos.saturating_mul(u128::from(self.units_per_nano)) >> 32;
        i64::try_from(units).unwrap_or(i64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{PayloadType, RtpHeader};
    use proptest::prelude::*;

    const SSRC: Ssrc = Ssrc(0x1234_5678);
    const MS20: Duration = Duration::from_millis(20);

    /// A 172-byte PCMU packet.
    fn pcmu(seq: u16, ts: u32) -> Vec<u8> {
        let mut out = vec![0u8; 172];
        RtpHeader::new(PayloadType::PCMU, seq, ts, SSRC)
            .write(&[0xff; 160], &mut out)
            .unwrap();
        out
    }

    /// Feeds a packet arriving `at` after `t0`.
    fn feed(s: &mut ReceiveStats, t0: Instant, at: Duration, seq: u16, ts: u32) -> Outcome {
        let buf = pcmu(seq, ts);
        s.handle_packet(t0 + at, &RtpPacket::parse(&buf).unwrap())
    }

    fn stats() -> ReceiveStats {
        ReceiveStats::new(SSRC, ClockRate::G711)
    }

    #[test]
    fn event_packets_count_but_leave_jitter_alone() {
        let t0 = Instant::now();
        let mut s = stats();
        for k in 0..4u16 {
            feed(&mut s, t0, MS20 * u32::from(k), k, u32::from(k) * 160);
        }
        // A 100 ms event from timestamp 640: six packets, one timestamp.
        let event = |seq: u16| {
            let mut out = vec![0u8; 16];
            RtpHeader::new(PayloadType::new(101).unwrap(), seq, 640, SSRC)
                .write(&[1, 0x8a, 0, 0], &mut out)
                .unwrap();
            out
        };
        for k in 4..10u16 {
            let buf = event(k);
            let at = t0 + MS20 * u32::from(k);
            s.handle_event_packet(at, &RtpPacket::parse(&buf).unwrap());
        }
        feed(&mut s, t0, MS20 * 10, 10, 1600);
        assert_eq!(s.jitter(), 0);
        assert_eq!((s.expected(), s.cumulative_lost()), (10, 0));
    }

    #[test]
    fn clock_rates() {
        assert_eq!(ClockRate::G711.hz(), 8000);
        assert_eq!(ClockRate::OPUS.hz(), 48_000);
        assert_eq!(ClockRate::VIDEO.hz(), 90_000);
        assert_eq!(ClockRate::new(0), None);
    }

    #[test]
    fn probation_then_acceptance() {
        let t0 = Instant::now();
        let mut s = stats();
        assert_eq!(feed(&mut s, t0, Duration::ZERO, 10, 0), Outcome::Probation);
        assert!(!s.is_valid());
        assert_eq!(s.report_block(t0), None);
        // Not sequential: probation restarts from 12.
        assert_eq!(feed(&mut s, t0, MS20, 12, 320), Outcome::Probation);
        assert_eq!(s.highest_seq(), None);
        assert_eq!(
            feed(&mut s, t0, MS20 * 2, 13, 480),
            Outcome::InOrder(SeqNo(13))
        );
        assert!(s.is_valid());
        // RFC 3550 A.1: the packet that ends probation is the first counted.
        assert_eq!(s.received(), 1);
        assert_eq!(s.expected(), 1);
        assert_eq!(s.payload_octets(), 160);
        assert_eq!(s.octets(), 172);
        assert_eq!(
            feed(&mut s, t0, MS20 * 3, 14, 640),
            Outcome::InOrder(SeqNo(14))
        );
        assert_eq!((s.received(), s.expected(), s.cumulative_lost()), (2, 2, 0));
    }

    #[test]
    fn foreign_ssrc_is_ignored() {
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(Ssrc(1), ClockRate::G711);
        assert_eq!(feed(&mut s, t0, MS20, 1, 0), Outcome::ForeignSsrc);
        assert_eq!(s.last_arrival(), None);
    }

    #[test]
    fn sequence_wrap_counts_a_cycle() {
        let t0 = Instant::now();
        let mut s = stats();
        let seqs = [65533u16, 65534, 65535, 0, 1];
        let mut outs = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            outs.push(feed(&mut s, t0, MS20 * i as u32, seq, 160 * i as u32));
        }
        assert_eq!(
            outs,
            [
                Outcome::Probation,
                Outcome::InOrder(SeqNo(65534)),
                Outcome::InOrder(SeqNo(65535)),
                Outcome::InOrder(SeqNo(65536)),
                Outcome::InOrder(SeqNo(65537)),
            ]
        );
        let hi = s.highest_seq().unwrap();
        assert_eq!((hi.cycles(), hi.wire()), (1, 1));
        assert_eq!((s.expected(), s.received()), (4, 4));
        let b = s.report_block(t0 + MS20 * 5).unwrap();
        assert_eq!(b.highest_seq, 0x0001_0001);
        assert_eq!(b.cumulative_lost, 0);
        // A late packet from before the wrap is extended into cycle 0.
        assert_eq!(
            feed(&mut s, t0, MS20 * 6, 65535, 320),
            Outcome::Duplicate(SeqNo(65535))
        );
    }

    #[test]
    fn probation_across_the_wrap() {
        let t0 = Instant::now();
        let mut s = stats();
        assert_eq!(
            feed(&mut s, t0, Duration::ZERO, 65535, 0),
            Outcome::Probation
        );
        assert_eq!(feed(&mut s, t0, MS20, 0, 160), Outcome::InOrder(SeqNo(0)));
    }

    #[test]
    fn large_jump_then_restart() {
        let t0 = Instant::now();
        let mut s = stats();
        for seq in 100u16..=110 {
            feed(&mut s, t0, MS20 * u32::from(seq), seq, 160 * u32::from(seq));
        }
        assert_eq!((s.received(), s.expected()), (10, 10));
        // A single stray packet far ahead is not counted...
        assert_eq!(feed(&mut s, t0, MS20 * 111, 20_000, 7), Outcome::Jump);
        // ...and the stream carries on.
        assert_eq!(
            feed(&mut s, t0, MS20 * 111, 111, 160 * 111),
            Outcome::InOrder(SeqNo(111))
        );
        assert_eq!((s.received(), s.expected()), (11, 11));
        // Restart: two sequential packets after a jump resynchronise.
        assert_eq!(feed(&mut s, t0, MS20 * 113, 5000, 9_000_000), Outcome::Jump);
        assert_eq!(
            feed(&mut s, t0, MS20 * 114, 5001, 9_000_160),
            Outcome::Restarted(SeqNo(5001))
        );
        assert_eq!(s.restarts(), 1);
        assert_eq!(
            (s.received(), s.expected(), s.highest_seq()),
            (1, 1, Some(SeqNo(5001)))
        );
        assert_eq!(
            feed(&mut s, t0, MS20 * 115, 5002, 9_000_320),
            Outcome::InOrder(SeqNo(5002))
        );
        // The timestamp jump of the restart does not reach the jitter.
        assert_eq!(s.jitter(), 0);
        // A jump backwards beyond MAX_MISORDER is a jump too.
        assert_eq!(feed(&mut s, t0, MS20 * 116, 5002 - 101, 0), Outcome::Jump);
    }

    #[test]
    fn gap_below_max_dropout_is_loss() {
        let t0 = Instant::now();
        let mut s = stats();
        feed(&mut s, t0, Duration::ZERO, 0, 0);
        feed(&mut s, t0, MS20, 1, 160);
        let far = 1 + MAX_DROPOUT - 1;
        assert_eq!(
            feed(&mut s, t0, MS20 * 2, far, 320),
            Outcome::InOrder(SeqNo(u64::from(far)))
        );
        assert_eq!(s.cumulative_lost(), i64::from(MAX_DROPOUT) - 2);
    }

    #[test]
    fn duplicates_and_reordering_in_loss_accounting() {
        let t0 = Instant::now();
        let mut s = stats();
        // Probation packet 0, then 1..=10 with 7/8 swapped, 5 duplicated and
        // 9 lost.
        let order = [0u16, 1, 2, 3, 4, 5, 5, 6, 8, 7, 10];
        let mut outs = Vec::new();
        for (i, &seq) in order.iter().enumerate() {
            outs.push(feed(&mut s, t0, MS20 * i as u32, seq, 160 * u32::from(seq)));
        }
        assert_eq!(outs[6], Outcome::Duplicate(SeqNo(5)));
        assert_eq!(outs[8], Outcome::InOrder(SeqNo(8)));
        assert_eq!(outs[9], Outcome::Late(SeqNo(7)));
        assert_eq!(outs[10], Outcome::InOrder(SeqNo(10)));
        assert_eq!((s.duplicates(), s.late()), (1, 1));
        // Expected 1..=10 = 10; counted 10 (9 distinct + 1 duplicate).
        assert_eq!((s.expected(), s.received()), (10, 10));
        assert_eq!(s.cumulative_lost(), 0);
        // A second copy of the late packet is a duplicate too.
        assert_eq!(
            feed(&mut s, t0, MS20 * 11, 7, 1120),
            Outcome::Duplicate(SeqNo(7))
        );
        let b = s.report_block(t0 + MS20 * 12).unwrap();
        assert_eq!(b.cumulative_lost, -1);
        assert_eq!(b.fraction_lost, 0);
        // A late arrival of the lost packet 9 now.
        assert_eq!(
            feed(&mut s, t0, MS20 * 13, 9, 1440),
            Outcome::Late(SeqNo(9))
        );
        assert_eq!(s.cumulative_lost(), -2);
    }

    #[test]
    fn fraction_lost_over_intervals() {
        let t0 = Instant::now();
        let mut s = stats();
        let send = |s: &mut ReceiveStats, seq: u16| {
            feed(s, t0, MS20 * u32::from(seq), seq, 160 * u32::from(seq))
        };
        let at = MS20 * 200;
        // Probation packet 0; then 1..=100 with 5, 15, ..., 95 dropped:
        // expected 100, received 90, fraction 10/100 * 256 = 25.6 -> 25.
        for seq in 0u16..=100 {
            if seq % 10 != 5 {
                send(&mut s, seq);
            }
        }
        let b = s.report_block(t0 + at).unwrap();
        assert_eq!((s.expected(), s.received()), (100, 90));
        assert_eq!(b.fraction_lost, 25);
        assert_eq!(b.cumulative_lost, 10);
        // Second interval without loss.
        for seq in 101u16..=140 {
            send(&mut s, seq);
        }
        let b = s.report_block(t0 + at).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (0, 10));
        // Third interval: 141..=180 with 141, 145, ..., 177 lost: 1 in 4,
        // 64/256.
        for seq in 141u16..=180 {
            if seq % 4 != 1 {
                send(&mut s, seq);
            }
        }
        let b = s.report_block(t0 + at).unwrap();
        assert_eq!((b.fraction_lost, b.cumulative_lost), (64, 20));
        // Empty interval: nothing expected, fraction 0.
        assert_eq!(s.received_in_interval(), 0);
        assert_eq!(s.report_block(t0 + at).unwrap().fraction_lost, 0);
    }

    #[test]
    fn jitter_hand_computed() {
        // 8 kHz, 20 ms packets (160 units). Arrivals 0, 30, 40, 60 ms:
        //  D1 = 240 - 160 = 80      J = 0 + 80/16             = 5
        //  D2 =  80 - 160 = -80     J = 5 + (80 - 5)/16       = 9.6875
        //  D3 = 160 - 160 = 0       J = 9.6875 - 9.6875/16    = 9.08203125
        let t0 = Instant::now();
        let mut s = stats();
        feed(&mut s, t0, Duration::ZERO, 0, 0); // probation, no jitter yet
        feed(&mut s, t0, Duration::from_millis(10), 1, 160); // first counted
        assert_eq!(s.jitter, 0);
        feed(&mut s, t0, Duration::from_millis(40), 2, 320);
        assert_eq!(s.jitter, 5 << 16);
        feed(&mut s, t0, Duration::from_millis(50), 3, 480);
        assert_eq!(s.jitter, (9.6875 * 65536.0) as u64);
        feed(&mut s, t0, Duration::from_millis(70), 4, 640);
        assert_eq!(s.jitter, (9.082_031_25 * 65536.0) as u64);
        assert_eq!(s.jitter(), 9);
        assert_eq!(s.report_block(t0).unwrap().jitter, 9);
        // 9.08203125 units at 8 kHz.
        assert_eq!(s.jitter_duration(), Duration::from_nanos(1_135_253));
    }

    #[test]
    fn jitter_sub_unit_precision() {
        // 48 kHz; each packet arrives 1/96000 s (half a unit) late relative
        // to the previous one: |D| = 0.5 units each time.
        let t0 = Instant::now();
        let mut s = ReceiveStats::new(SSRC, ClockRate::OPUS);
        let step = Duration::from_millis(20) + Duration::from_nanos(10_417);
        for i in 0..200u32 {
            feed(&mut s, t0, step * i, i as u16, 960 * i);
        }
        // Converges on 0.5 units: whole units report 0, the estimate is
        // within 1% of half a unit.
        assert_eq!(s.jitter(), 0);
        let half = 1u64 << 15;
        assert!(s.jitter.abs_diff(half) < half / 100, "jitter {}", s.jitter);
    }

    #[test]
    fn timestamp_wrap_is_no_spike() {
        let t0 = Instant::now();
        let arrivals = [0u64, 25, 40, 61, 80, 99, 120, 140];
        let run = |ts0: u32| {
            let mut s = stats();
            for (i, ms) in arrivals.iter().enumerate() {
                let ts = ts0.wrapping_add(160 * i as u32);
                feed(&mut s, t0, Duration::from_millis(*ms), i as u16, ts);
            }
            s.jitter
        };
        // The second stream's timestamps wrap past u32::MAX mid-way.
        let plain = run(1000);
        let wrapped = run(u32::MAX - 3 * 160 + 1);
        assert_eq!(plain, wrapped);
        assert!(plain > 0 && plain < 20 << 16, "jitter {plain}");
    }

    #[test]
    fn lsr_and_dlsr() {
        let t0 = Instant::now();
        let mut s = stats();
        feed(&mut s, t0, Duration::ZERO, 0, 0);
        feed(&mut s, t0, MS20, 1, 160);
        let b = s.report_block(t0 + MS20).unwrap();
        assert_eq!((b.lsr, b.dlsr), (NtpShort(0), NtpShort(0)));
        // SR with NTP 0xe8f3_b705_2000_0000 arrives at t0 + 1 s; the
        // report goes out 5.25 s later.
        let sr_at = t0 + Duration::from_secs(1);
        s.handle_sender_report(sr_at, NtpTime(0xe8f3_b705_2000_0000));
        assert_eq!(s.last_sender_report(), Some((NtpShort(0xb705_2000), sr_at)));
        let b = s.report_block(sr_at + Duration::from_millis(5250)).unwrap();
        assert_eq!(b.lsr, NtpShort(0xb705_2000));
        assert_eq!(b.dlsr, NtpShort(0x0005_4000));
        // The SR sender computes RTT from this block (RFC 3550 §6.4.1
        // example: A = b710:8000 gives 6.125 s).
        let a = NtpTime(0xe8f3_b710_8000_0000);
        assert_eq!(b.round_trip_time(a), Some(Duration::from_millis(6125)));
    }

    proptest! {
        #[test]
        fn arbitrary_streams_keep_invariants(
            steps in proptest::collection::vec((any::<u16>(), any::<u32>(), 0u64..100_000_000), 1..200),
            rate in 1u32..200_000,
        ) {
            let t0 = Instant::now();
            let mut s = ReceiveStats::new(SSRC, ClockRate::new(rate).unwrap());
            let mut now = Duration::ZERO;
            let mut counted = 0u64;
            for (seq, ts, dt) in steps {
                now += Duration::from_nanos(dt);
                if feed(&mut s, t0, now, seq, ts).is_counted() {
                    counted += 1;
                }
                prop_assert!(s.received() <= counted);
                if let Some(b) = s.report_block(t0 + now) {
                    prop_assert_eq!(b.ssrc, SSRC);
                    prop_assert_eq!(u64::from(b.highest_seq), s.highest_seq().unwrap().0 & 0xffff_ffff);
                }
            }
        }
    }
}
