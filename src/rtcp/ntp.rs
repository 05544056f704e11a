//! NTP timestamps as RTCP carries them (RFC 3550 §4, RFC 5905 §6).
//!
//! [`NtpTime`] is the 64-bit timestamp of a sender report: seconds since
//! 1900-01-01 in the high 32 bits, a binary fraction in the low 32 bits.
//! [`NtpShort`] is the 32-bit "short format" (16.16 fixed point): the middle
//! 32 bits of an [`NtpTime`], used by the LSR field, and a duration in
//! 1/65536 s units, used by the DLSR field (RFC 3550 §6.4.1).
//!
//! `Instant` has no epoch, so the wall-clock time always enters from the
//! caller (e.g. [`NtpTime::from_system_time`] on `SystemTime::now()`); nothing
//! here reads a clock.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch (1970-01-01),
/// RFC 5905 §6 (Figure 4: 2,208,988,800).
pub const NTP_UNIX_OFFSET_SECS: u64 = 2_208_988_800;

const NANOS_PER_SEC: u64 = 1_000_000_000;

/// A 64-bit NTP timestamp (RFC 5905 §6, RFC 3550 §4): 32.32 fixed-point
/// seconds since 1900-01-01 (era 0; the seconds wrap in 2036 and are kept
/// modulo 2^32, which is all RTCP needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NtpTime(pub u64);

/// The NTP short format (RFC 5905 §6): 16.16 fixed-point seconds.
///
/// As a timestamp (LSR) it is the middle 32 bits of an [`NtpTime`]; as a
/// duration (DLSR, round-trip time) its unit is 1/65536 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NtpShort(pub u32);

impl NtpTime {
    /// Converts a time since the Unix epoch to NTP (RFC 5905 §6), with the
    /// seconds taken modulo 2^32 (NTP era wrap).
    pub const fn from_unix(since_unix: Duration) -> NtpTime {
        let secs = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET_SECS) & 0xffff_ffff;
        // subsec_nanos < 10^9 < 2^30, so the shift stays below 2^62.
        let frac = ((since_unix.subsec_nanos() as u64) << 32) / NANOS_PER_SEC;
        NtpTime(secs << 32 | frac)
    }

    /// Converts a wall-clock reading (the caller's `SystemTime::now()`).
    ///
    /// A time before 1970 is clamped to the Unix epoch.
    pub fn from_system_time(t: SystemTime) -> NtpTime {
        NtpTime::from_unix(t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO))
    }

    /// Whole seconds since 1900 (modulo 2^32).
    pub const fn seconds(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Binary fraction of a second, in units of 2^-32 s.
    pub const fn fraction(self) -> u32 {
        // Truncation is the point: the low 32 bits.
        self.0 as u32
    }

    /// The middle 32 bits (RFC 3550 §6.4.1 LSR): 16 bits of seconds and the
    /// 16 high bits of the fraction.
    pub const fn middle(self) -> NtpShort {
        NtpShort((self.0 >> 16) as u32)
    }
}

impl NtpShort {
    /// Converts a duration to 1/65536 s units (RFC 3550 §6.4.1 DLSR),
    /// rounding down and saturating at `0xffff_ffff` (about 18.2 hours).
    pub const fn from_duration(d: Duration) -> NtpShort {
        if d.as_secs() > 0xffff {
            return NtpShort(u32::MAX);
        }
        let secs = d.as_secs() as u32;
        // subsec_nanos < 10^9, so << 16 stays below 2^46.
        let frac = ((d.subsec_nanos() as u64) << 16) / NANOS_PER_SEC;
        NtpShort(secs << 16 | frac as u32)
    }

    /// The value as a duration (1/65536 s units), rounded up to whole
    /// nanoseconds so that `from_duration(x.to_duration()) == x`.
    pub const fn to_duration(self) -> Duration {
        let secs = (self.0 >> 16) as u64;
        let nanos = ((self.0 & 0xffff) as u64 * NANOS_PER_SEC).div_ceil(1 << 16);
        Duration::new(secs, nanos as u32)
    }
}

impl fmt::Display for NtpTime {
    /// `seconds.fraction` in hex, as RFC 3550 writes timestamps.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08x}:{:08x}", self.seconds(), self.fraction())
    }
}

impl fmt::Display for NtpShort {
    /// `seconds:fraction` in hex, as in the RFC 3550 §6.4.1 example.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.0 >> 16, self.0 & 0xffff)
    }
}

impl From<Duration> for NtpShort {
    fn from(d: Duration) -> Self {
        NtpShort::from_duration(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unix_epoch_is_ntp_2208988800() {
        let t = NtpTime::from_unix(Duration::ZERO);
        assert_eq!(t.seconds(), 2_208_988_800);
        assert_eq!(t.fraction(), 0);
        assert_eq!(NtpTime::from_system_time(UNIX_EPOCH), t);
    }

    #[test]
    fn fraction_and_middle() {
        // 0.5 s is 0x8000_0000 in the fraction.
        let t = NtpTime::from_unix(Duration::from_millis(1500));
        assert_eq!(t.seconds(), 2_208_988_801);
        assert_eq!(t.fraction(), 0x8000_0000);
        // Middle: low 16 bits of seconds, high 16 bits of the fraction.
        assert_eq!(
            t.middle(),
            NtpShort((2_208_988_801u32 & 0xffff) << 16 | 0x8000)
        );
        assert_eq!(
            NtpTime(0x1234_5678_9abc_def0).middle(),
            NtpShort(0x5678_9abc)
        );
    }

    #[test]
    fn era_wraps_in_2036() {
        // 2^32 - 2208988800 s after 1970 is 2036-02-07T06:28:16Z.
        let t = NtpTime::from_unix(Duration::from_secs((1u64 << 32) - NTP_UNIX_OFFSET_SECS + 5));
        assert_eq!(t.seconds(), 5);
    }

    #[test]
    fn short_duration_units() {
        assert_eq!(
            NtpShort::from_duration(Duration::from_millis(5250)),
            NtpShort(0x0005_4000)
        );
        assert_eq!(
            NtpShort(0x0005_4000).to_duration(),
            Duration::from_millis(5250)
        );
        assert_eq!(NtpShort(1).to_duration(), Duration::from_nanos(15_259));
        assert_eq!(
            NtpShort::from_duration(Duration::from_secs(70_000)),
            NtpShort(u32::MAX)
        );
        assert_eq!(NtpShort(0xb705_2000).to_string(), "b705:2000");
    }

    proptest! {
        #[test]
        fn short_duration_round_trip(v: u32) {
            let d = NtpShort(v).to_duration();
            prop_assert_eq!(NtpShort::from_duration(d), NtpShort(v));
        }
    }
}
