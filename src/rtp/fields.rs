//! Newtypes for RTP header fields (RFC 3550 §5.1).
//!
//! Parse, don't validate: a [`PayloadType`] is always 7 bits, a [`SeqNo`] is
//! the *extended* 64-bit sequence number (RFC 3550 A.1: cycles of 2^16 plus
//! the 16-bit wire value), an [`Ssrc`] is an opaque 32-bit source identifier.

use std::fmt;

/// Synchronization source identifier (RFC 3550 §5.1, `SSRC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Ssrc(pub u32);

impl fmt::Display for Ssrc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

impl From<u32> for Ssrc {
    fn from(v: u32) -> Self {
        Ssrc(v)
    }
}

/// A 7-bit RTP payload type (RFC 3550 §5.1, `PT`; RFC 3551 §6 static types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PayloadType(u8);

impl PayloadType {
    /// PCMU (G.711 µ-law), RFC 3551 §6.
    pub const PCMU: PayloadType = PayloadType(0);
    /// PCMA (G.711 A-law), RFC 3551 §6.
    pub const PCMA: PayloadType = PayloadType(8);

    /// Builds a payload type, or `None` when `v` does not fit in 7 bits.
    pub const fn new(v: u8) -> Option<Self> {
        if v <= 127 { Some(PayloadType(v)) } else { None }
    }

    /// Builds a payload type from the low 7 bits of `v` (the wire encoding).
    pub const fn from_wire(v: u8) -> Self {
        PayloadType(v & 0x7f)
    }

    /// The numeric value, 0..=127.
    pub const fn value(self) -> u8 {
        self.0
    }

    /// True for the dynamic range 96..=127 (RFC 3551 §3).
    pub const fn is_dynamic(self) -> bool {
        self.0 >= 96
    }
}

impl fmt::Display for PayloadType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Extended RTP sequence number: `cycles << 16 | seq` (RFC 3550 A.1).
///
/// The wire carries 16 bits that wrap every 65536 packets; receivers and
/// senders keep this 64-bit form so ordering and loss arithmetic never wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The 16-bit value carried on the wire.
    pub const fn wire(self) -> u16 {
        // Truncation is the point: the low 16 bits are the wire value.
        self.0 as u16
    }

    /// Number of completed 16-bit cycles (RFC 3550 A.1 `cycles >> 16`).
    pub const fn cycles(self) -> u64 {
        self.0 >> 16
    }

    /// The next sequence number.
    pub const fn next(self) -> SeqNo {
        SeqNo(self.0.wrapping_add(1))
    }

    /// Extends a 16-bit wire value to the extended number closest to `self`
    /// (the highest seen so far), handling wrap in both directions.
    ///
    /// A value less than 2^15 ahead counts as forward (possibly wrapping
    /// into the next cycle), anything else as a late or reordered packet
    /// of the current or previous cycle.
    pub const fn extend(self, wire: u16) -> SeqNo {
        let cur = self.wire();
        let delta = wire.wrapping_sub(cur) as i16;
        let ext = self.0 as i64 + delta as i64;
        if ext < 0 {
            // Before the very first cycle: clamp into cycle 0.
            SeqNo(wire as u64)
        } else {
            SeqNo(ext as u64)
        }
    }
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_type_range() {
        assert_eq!(PayloadType::new(127).map(PayloadType::value), Some(127));
        assert_eq!(PayloadType::new(128), None);
        assert_eq!(PayloadType::from_wire(0x80 | 8), PayloadType::PCMA);
        assert!(PayloadType::new(96).is_some_and(PayloadType::is_dynamic));
        assert!(!PayloadType::PCMU.is_dynamic());
    }

    #[test]
    fn seq_extend_forward_wrap() {
        let s = SeqNo(65535);
        assert_eq!(s.extend(0), SeqNo(65536));
        assert_eq!(s.extend(5), SeqNo(65541));
        assert_eq!(SeqNo(65536).extend(65535), SeqNo(65535));
    }

    #[test]
    fn seq_extend_backward_and_start() {
        assert_eq!(SeqNo(3 * 65536 + 10).extend(5), SeqNo(3 * 65536 + 5));
        assert_eq!(
            SeqNo(3 * 65536 + 10).extend(65530),
            SeqNo(2 * 65536 + 65530)
        );
        // Before cycle 0: never negative.
        assert_eq!(SeqNo(2).extend(65535), SeqNo(65535));
        assert_eq!(SeqNo(65536 * 7 + 1).cycles(), 7);
        assert_eq!(SeqNo(65536 * 7 + 1).wire(), 1);
    }
}
