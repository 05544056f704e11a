//! Outbound RTP source state (RFC 3550 §5.1): one SSRC, one sequence-number
//! counter and one RTP timestamp clock, shared by everything an outgoing
//! stream sends.
//!
//! Audio frames and RFC 4733 telephone-events of one stream must draw their
//! sequence numbers from ONE counter and their timestamps from ONE clock
//! (RFC 4733 §2.1: the events use the same SSRC, sequence space and
//! timestamp base as the audio they replace). [`RtpSource`] owns that state;
//! [`crate::dtmf::DtmfSender`] and an audio path both write through it.
//!
//! Contract:
//! - Sans-IO: time is "media units" (`u64` ticks of the clock rate since the
//!   source's base instant) or an `Instant` converted against the base instant
//!   passed to [`RtpSource::new`]. Nothing reads a clock.
//! - The wire timestamp is `initial_timestamp + units` modulo 2^32; the wire
//!   sequence number is the low 16 bits of the extended [`SeqNo`].
//! - No allocation, ever.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use super::fields::{PayloadType, SeqNo, Ssrc};
use super::packet::{RtpHeader, RtpWriteError};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Why a source configuration is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The clock rate is zero.
    #[error("RTP clock rate must be non-zero")]
    ZeroClockRate,
    /// `ptime` is shorter than one tick of the clock.
    #[error("ptime {ptime:?} is shorter than one tick of a {clock_rate} Hz clock")]
    PtimeTooShort {
        /// The configured packetisation interval.
        ptime: Duration,
        /// The configured clock rate.
        clock_rate: u32,
    },
    /// `ptime` spans more than 2^31 ticks (an RTP timestamp could not tell
    /// two consecutive packets apart).
    #[error("ptime {ptime:?} spans more than 2^31 ticks of a {clock_rate} Hz clock")]
    PtimeTooLong {
        /// The configured packetisation interval.
        ptime: Duration,
        /// The configured clock rate.
        clock_rate: u32,
    },
}

/// Initial values of an outbound source.
///
/// RFC 3550 §5.1 recommends random initial sequence numbers and timestamps
/// (and §8.1 a random SSRC): [`SourceConfig::random`] draws them; tests and
/// replays give them explicitly with [`SourceConfig::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceConfig {
    /// Synchronization source identifier.
    pub ssrc: Ssrc,
    /// Sequence number of the first packet.
    pub initial_seq: SeqNo,
    /// RTP timestamp at the base instant (media unit 0).
    pub initial_timestamp: u32,
    /// RTP clock rate in Hz (8000 for PCMU/PCMA and their telephone-events).
    pub clock_rate: u32,
    /// Packetisation interval of the stream (RFC 4566 `a=ptime`); also the
    /// update interval of telephone-events.
    pub ptime: Duration,
}

/// Outbound state of one RTP stream: SSRC, sequence counter, timestamp clock
/// and the RFC 3550 §6.4.1 sender counters.
#[derive(Debug, Clone)]
pub struct RtpSource {
    ssrc: Ssrc,
    next_seq: SeqNo,
    initial_timestamp: u32,
    clock_rate: u32,
    ptime: Duration,
    ptime_units: u32,
    base: Instant,
    packets_sent: u64,
    payload_octets_sent: u64,
}

impl SourceConfig {
    /// A configuration with explicit initial values.
    pub const fn new(
        ssrc: Ssrc,
        initial_seq: u16,
        initial_timestamp: u32,
        clock_rate: u32,
        ptime: Duration,
    ) -> Self {
        SourceConfig {
            ssrc,
            initial_seq: SeqNo(initial_seq as u64),
            initial_timestamp,
            clock_rate,
            ptime,
        }
    }

    /// A configuration with a random SSRC, initial sequence number and
    /// initial timestamp (RFC 3550 §5.1, §8.1).
    ///
    /// The randomness comes from the standard library's per-process hash
    /// keys: unpredictable enough to avoid collisions and naive guessing, but
    /// not cryptographic (SRTP does not rely on it).
    pub fn random(clock_rate: u32, ptime: Duration) -> Self {
        let mut h = RandomState::new().build_hasher();
        h.write_u32(clock_rate);
        let a = h.finish();
        h.write_u64(a);
        let b = h.finish();
        SourceConfig {
            // Truncations pick independent halves of the hash outputs.
            ssrc: Ssrc(a as u32),
            initial_seq: SeqNo(u64::from((a >> 32) as u16)),
            initial_timestamp: b as u32,
            clock_rate,
            ptime,
        }
    }
}

impl RtpSource {
    /// Builds the source; media unit 0 (timestamp `initial_timestamp`) is the
    /// instant `base`.
    pub fn new(config: SourceConfig, base: Instant) -> Result<Self, SourceError> {
        if config.clock_rate == 0 {
            return Err(SourceError::ZeroClockRate);
        }
        let units = duration_to_units(config.ptime, config.clock_rate);
        if units == 0 {
            return Err(SourceError::PtimeTooShort {
                ptime: config.ptime,
                clock_rate: config.clock_rate,
            });
        }
        if units > u64::from(i32::MAX as u32) {
            return Err(SourceError::PtimeTooLong {
                ptime: config.ptime,
                clock_rate: config.clock_rate,
            });
        }
        Ok(RtpSource {
            ssrc: config.ssrc,
            next_seq: config.initial_seq,
            initial_timestamp: config.initial_timestamp,
            clock_rate: config.clock_rate,
            ptime: config.ptime,
            // Checked above: at most 2^31 - 1.
            ptime_units: units as u32,
            base,
            packets_sent: 0,
            payload_octets_sent: 0,
        })
    }

    /// The synchronization source identifier.
    pub fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// RTP clock rate in Hz.
    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// The packetisation interval.
    pub fn ptime(&self) -> Duration {
        self.ptime
    }

    /// The packetisation interval in clock ticks (160 for 20 ms at 8 kHz).
    pub fn ptime_units(&self) -> u32 {
        self.ptime_units
    }

    /// The instant of media unit 0.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// The sequence number the next packet will carry.
    pub fn next_seq(&self) -> SeqNo {
        self.next_seq
    }

    /// Packets written through [`RtpSource::write_packet`] (RFC 3550 §6.4.1
    /// sender's packet count; not wrapped to 32 bits).
    pub fn packets_sent(&self) -> u64 {
        self.packets_sent
    }

    /// Payload octets written through [`RtpSource::write_packet`] (RFC 3550
    /// §6.4.1 sender's octet count: payload only, no header or padding).
    pub fn payload_octets_sent(&self) -> u64 {
        self.payload_octets_sent
    }

    /// Takes the next sequence number, advancing the counter.
    ///
    /// Prefer [`RtpSource::write_packet`], which also keeps the sender
    /// counters; use this when the packet is written elsewhere.
    pub fn take_seq(&mut self) -> SeqNo {
        let s = self.next_seq;
        self.next_seq = s.next();
        s
    }

    /// Media units (clock ticks) elapsed from the base instant to `now`,
    /// rounded down; 0 for instants before the base.
    pub fn units_at(&self, now: Instant) -> u64 {
        let d = now.saturating_duration_since(self.base);
        duration_to_units(d, self.clock_rate)
    }

    /// The earliest instant whose [`RtpSource::units_at`] is `units`
    /// (saturating at the latest representable instant).
    pub fn instant_at(&self, units: u64) -> Instant {
        // ceil(units * 1e9 / rate): the inverse of the floor in units_at.
        let rate = u128::from(self.clock_rate);
        let nanos = (u128::from(units) * NANOS_PER_SEC).div_ceil(rate);
        let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
        // The remainder is below 1e9 and fits in u32.
        let d = Duration::new(secs, (nanos % NANOS_PER_SEC) as u32);
        self.base
            .checked_add(d)
            .unwrap_or_else(|| far_future(self.base))
    }

    /// The RTP timestamp of media unit `units` (RFC 3550 §5.1: the initial
    /// value plus the clock ticks, modulo 2^32).
    pub fn timestamp_for(&self, units: u64) -> u32 {
        // Truncation is the point: RTP timestamps wrap modulo 2^32.
        self.initial_timestamp.wrapping_add(units as u32)
    }

    /// The RTP timestamp at `now`.
    pub fn timestamp_at(&self, now: Instant) -> u32 {
        self.timestamp_for(self.units_at(now))
    }

    /// A header for the next packet: takes a sequence number.
    pub fn header(
        &mut self,
        payload_type: PayloadType,
        timestamp: u32,
        marker: bool,
    ) -> RtpHeader<'static> {
        let seq = self.take_seq();
        let mut h = RtpHeader::new(payload_type, seq.wire(), timestamp, self.ssrc);
        h.marker = marker;
        h
    }

    /// Writes one packet of this source into `out` and returns its length.
    ///
    /// The sequence number and the sender counters advance only when the
    /// write succeeds.
    pub fn write_packet(
        &mut self,
        payload_type: PayloadType,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
        out: &mut [u8],
    ) -> Result<usize, RtpWriteError> {
        let mut h = RtpHeader::new(payload_type, self.next_seq.wire(), timestamp, self.ssrc);
        h.marker = marker;
        let n = h.write(payload, out)?;
        self.next_seq = self.next_seq.next();
        self.packets_sent += 1;
        self.payload_octets_sent += payload.len() as u64;
        Ok(n)
    }
}

/// `floor(d * rate)` in clock ticks, saturating at `u64::MAX`.
pub(crate) fn duration_to_units(d: Duration, clock_rate: u32) -> u64 {
    let units = d.as_nanos() * u128::from(clock_rate) / NANOS_PER_SEC;
    u64::try_from(units).unwrap_or(u64::MAX)
}

/// An instant far enough ahead to mean "never" without overflowing.
fn far_future(base: Instant) -> Instant {
    // One hundred years is representable on every supported platform.
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    base.checked_add(CENTURY).unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn source(ts0: u32, seq0: u16) -> (RtpSource, Instant) {
        let base = Instant::now();
        let cfg = SourceConfig::new(Ssrc(7), seq0, ts0, 8000, Duration::from_millis(20));
        (RtpSource::new(cfg, base).unwrap(), base)
    }

    #[test]
    fn rejects_bad_config() {
        let base = Instant::now();
        let mut cfg = SourceConfig::new(Ssrc(1), 0, 0, 0, Duration::from_millis(20));
        assert_eq!(
            RtpSource::new(cfg, base).unwrap_err(),
            SourceError::ZeroClockRate
        );
        cfg.clock_rate = 8000;
        cfg.ptime = Duration::from_micros(100);
        assert!(matches!(
            RtpSource::new(cfg, base),
            Err(SourceError::PtimeTooShort { .. })
        ));
        cfg.ptime = Duration::from_secs(1 << 20);
        assert!(matches!(
            RtpSource::new(cfg, base),
            Err(SourceError::PtimeTooLong { .. })
        ));
    }

    #[test]
    fn clock_and_timestamps() {
        let (s, base) = source(u32::MAX - 100, 0);
        assert_eq!(s.ptime_units(), 160);
        assert_eq!(s.units_at(base), 0);
        assert_eq!(s.units_at(base + Duration::from_millis(20)), 160);
        assert_eq!(s.units_at(base + Duration::from_micros(20_124)), 160);
        assert_eq!(s.timestamp_at(base), u32::MAX - 100);
        // Wraps modulo 2^32.
        assert_eq!(s.timestamp_at(base + Duration::from_millis(20)), 59);
        // Before the base: clamps to unit 0.
        let (s2, base2) = source(5, 0);
        let before = base2.checked_sub(Duration::from_millis(1));
        if let Some(b) = before {
            assert_eq!(s2.units_at(b), 0);
        }
        assert_eq!(s.instant_at(160), base + Duration::from_millis(20));
        assert_eq!(s.instant_at(1), base + Duration::from_nanos(125_000));
    }

    #[test]
    fn shared_counter_and_sender_counters() {
        let (mut s, _) = source(0, 65535);
        let mut buf = [0u8; 64];
        let n = s
            .write_packet(PayloadType::PCMU, 0, false, &[0xff; 20], &mut buf)
            .unwrap();
        assert_eq!(n, 32);
        let p = crate::rtp::RtpPacket::parse(&buf[..n]).unwrap();
        assert_eq!(p.sequence(), 65535);
        assert_eq!(p.ssrc(), Ssrc(7));
        // A header taken elsewhere (e.g. a telephone-event) uses the same counter.
        let h = s.header(PayloadType::new(101).unwrap(), 0, true);
        assert_eq!(h.sequence, 0);
        assert!(h.marker);
        assert_eq!(s.next_seq(), SeqNo(65537));
        // A failed write consumes nothing.
        assert!(
            s.write_packet(PayloadType::PCMU, 0, false, &[0; 20], &mut [0u8; 8])
                .is_err()
        );
        assert_eq!(s.next_seq(), SeqNo(65537));
        assert_eq!(s.packets_sent(), 1);
        assert_eq!(s.payload_octets_sent(), 20);
    }

    #[test]
    fn random_configs_differ() {
        let a = SourceConfig::random(8000, Duration::from_millis(20));
        let b = SourceConfig::random(8000, Duration::from_millis(20));
        assert_ne!(
            (a.ssrc, a.initial_seq, a.initial_timestamp),
            (b.ssrc, b.initial_seq, b.initial_timestamp)
        );
        assert!(a.initial_seq.0 <= 0xffff);
    }

    proptest! {
        #[test]
        fn instant_at_inverts_units_at(units in 0u64..1 << 40, rate in prop::sample::select(vec![8000u32, 16000, 48000, 90000, 1])) {
            let base = Instant::now();
            let cfg = SourceConfig::new(Ssrc(1), 0, 0, rate, Duration::from_secs(1));
            let s = RtpSource::new(cfg, base).unwrap();
            let t = s.instant_at(units);
            prop_assert_eq!(s.units_at(t), units);
            // One nanosecond earlier is still the previous unit.
            if let Some(e) = t.checked_sub(Duration::from_nanos(1)) {
                if e >= base && units > 0 {
                    prop_assert_eq!(s.units_at(e), units - 1);
                }
            }
        }
    }
}
