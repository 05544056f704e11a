//! The telephone-event payload (RFC 4733 §2.3) and the DTMF event codes
//! (RFC 4733 §3.2).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     event     |E|R| volume    |          duration             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Contract: [`TelephoneEvent::parse`] reads the first 4-byte block of a
//! payload and never panics; [`blocks`] iterates over every whole block
//! (RFC 4733 §2.5.1.5 allows several events in one packet). The reserved
//! `R` bit is written as 0 and ignored on read (§2.3.3). Nothing allocates.

use std::fmt;

/// Length of one telephone-event block (RFC 4733 §2.3).
pub const EVENT_LEN: usize = 4;

/// Why a telephone-event payload cannot be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The payload is shorter than one 4-byte event block.
    #[error("telephone-event payload of {len} bytes, need at least 4")]
    TooShort {
        /// Payload length.
        len: usize,
    },
    /// The output buffer cannot hold a 4-byte event block.
    #[error("output buffer of {available} bytes, a telephone-event needs 4")]
    BufferTooSmall {
        /// Bytes the buffer has.
        available: usize,
    },
}

/// A DTMF key (RFC 4733 §3.2, Table 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DtmfDigit {
    /// `0` (event 0).
    D0,
    /// `1` (event 1).
    D1,
    /// `2` (event 2).
    D2,
    /// `3` (event 3).
    D3,
    /// `4` (event 4).
    D4,
    /// `5` (event 5).
    D5,
    /// `6` (event 6).
    D6,
    /// `7` (event 7).
    D7,
    /// `8` (event 8).
    D8,
    /// `9` (event 9).
    D9,
    /// `*` (event 10).
    Star,
    /// `#` (event 11).
    Pound,
    /// `A` (event 12).
    A,
    /// `B` (event 13).
    B,
    /// `C` (event 14).
    C,
    /// `D` (event 15).
    D,
}

/// An event code (RFC 4733 §2.3.1): any 8-bit value. Codes 0..=15 are the
/// DTMF keys ([`EventCode::digit`]); other codes are kept as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct EventCode(pub u8);

/// Power level of a tone (RFC 4733 §2.3.4): 0..=63, in dBm0 negated
/// (0 is the loudest, 63 the quietest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Volume(u8);

/// One telephone-event block (RFC 4733 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvent {
    /// The event (§2.3.1).
    pub event: EventCode,
    /// `E`: this packet reports the end of the event (§2.3.2).
    pub end: bool,
    /// Tone power level (§2.3.4); 0 for events without one.
    pub volume: Volume,
    /// Duration so far, in RTP timestamp units from the packet's timestamp
    /// (§2.3.5).
    pub duration: u16,
}

impl DtmfDigit {
    /// All sixteen keys, in event-code order.
    pub const ALL: [DtmfDigit; 16] = [
        DtmfDigit::D0,
        DtmfDigit::D1,
        DtmfDigit::D2,
        DtmfDigit::D3,
        DtmfDigit::D4,
        DtmfDigit::D5,
        DtmfDigit::D6,
        DtmfDigit::D7,
        DtmfDigit::D8,
        DtmfDigit::D9,
        DtmfDigit::Star,
        DtmfDigit::Pound,
        DtmfDigit::A,
        DtmfDigit::B,
        DtmfDigit::C,
        DtmfDigit::D,
    ];

    /// The event code (RFC 4733 §3.2: `0`-`9` are 0-9, `*` 10, `#` 11,
    /// `A`-`D` 12-15).
    pub const fn code(self) -> EventCode {
        EventCode(self as u8)
    }

    /// The key for an event code, or `None` outside 0..=15.
    pub const fn from_code(code: EventCode) -> Option<Self> {
        if code.0 < 16 {
            Some(DtmfDigit::ALL[code.0 as usize])
        } else {
            None
        }
    }

    /// The key's character: `0`-`9`, `*`, `#`, `A`-`D`.
    pub const fn as_char(self) -> char {
        // Indexing a 16-byte table with a 0..=15 discriminant.
        b"0123456789*#ABCD"[self as usize] as char
    }

    /// The key for a character (`a`-`d` accepted as `A`-`D`), or `None`.
    pub const fn from_char(c: char) -> Option<Self> {
        let code = match c {
            '0'..='9' => c as u8 - b'0',
            '*' => 10,
            '#' => 11,
            'A'..='D' => c as u8 - b'A' + 12,
            'a'..='d' => c as u8 - b'a' + 12,
            _ => return None,
        };
        DtmfDigit::from_code(EventCode(code))
    }
}

impl EventCode {
    /// The DTMF key this code stands for, if it is one of 0..=15.
    pub const fn digit(self) -> Option<DtmfDigit> {
        DtmfDigit::from_code(self)
    }
}

impl Volume {
    /// The loudest level, 0 dBm0.
    pub const MAX: Volume = Volume(0);
    /// -10 dBm0, a common default for generated DTMF.
    pub const DEFAULT: Volume = Volume(10);
    /// The quietest level, -63 dBm0.
    pub const MIN: Volume = Volume(63);

    /// A volume of `-dbm0` dBm0, or `None` above 63.
    pub const fn new(dbm0: u8) -> Option<Self> {
        if dbm0 <= 63 { Some(Volume(dbm0)) } else { None }
    }

    /// From the low 6 bits of `v` (the wire encoding).
    pub const fn from_wire(v: u8) -> Self {
        Volume(v & 0x3f)
    }

    /// The attenuation in dB below 0 dBm0, 0..=63.
    pub const fn value(self) -> u8 {
        self.0
    }
}

impl TelephoneEvent {
    /// Reads the first event block of a telephone-event payload.
    ///
    /// Bytes after the first block are not looked at (see [`blocks`]); the
    /// `R` bit is ignored (RFC 4733 §2.3.3).
    pub fn parse(payload: &[u8]) -> Result<Self, EventError> {
        match payload.first_chunk::<EVENT_LEN>() {
            Some(b) => Ok(TelephoneEvent::from_bytes(*b)),
            None => Err(EventError::TooShort { len: payload.len() }),
        }
    }

    /// Decodes one 4-byte block; infallible.
    pub const fn from_bytes(b: [u8; EVENT_LEN]) -> Self {
        TelephoneEvent {
            event: EventCode(b[0]),
            end: b[1] & 0x80 != 0,
            // RFC 4733 §2.3.3: R is reserved, ignored by receivers.
            volume: Volume::from_wire(b[1]),
            duration: u16::from_be_bytes([b[2], b[3]]),
        }
    }

    /// Encodes the block; `R` is written as 0 (RFC 4733 §2.3.3).
    pub const fn to_bytes(&self) -> [u8; EVENT_LEN] {
        let d = self.duration.to_be_bytes();
        let e = if self.end { 0x80 } else { 0 };
        [self.event.0, e | self.volume.0, d[0], d[1]]
    }

    /// Writes the block into the start of `out`; returns 4.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, EventError> {
        let available = out.len();
        let Some(dst) = out.first_chunk_mut::<EVENT_LEN>() else {
            return Err(EventError::BufferTooSmall { available });
        };
        *dst = self.to_bytes();
        Ok(EVENT_LEN)
    }
}

/// Every whole 4-byte event block of a payload, in order (RFC 4733
/// §2.5.1.5); a trailing partial block is ignored.
pub fn blocks(payload: &[u8]) -> impl ExactSizeIterator<Item = TelephoneEvent> + '_ {
    payload
        .chunks_exact(EVENT_LEN)
        // chunks_exact yields exactly 4-byte chunks: the indices are in bounds.
        .map(|c| TelephoneEvent::from_bytes([c[0], c[1], c[2], c[3]]))
}

impl fmt::Display for DtmfDigit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_char())
    }
}

impl fmt::Display for EventCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.digit() {
            Some(d) => write!(f, "{d}"),
            None => write!(f, "event {}", self.0),
        }
    }
}

impl From<DtmfDigit> for EventCode {
    fn from(d: DtmfDigit) -> Self {
        d.code()
    }
}

impl From<u8> for EventCode {
    fn from(v: u8) -> Self {
        EventCode(v)
    }
}

impl TryFrom<char> for DtmfDigit {
    type Error = char;

    /// Parses a key character; the error returns the character.
    fn try_from(c: char) -> Result<Self, char> {
        DtmfDigit::from_char(c).ok_or(c)
    }
}

impl From<[u8; EVENT_LEN]> for TelephoneEvent {
    fn from(b: [u8; EVENT_LEN]) -> Self {
        TelephoneEvent::from_bytes(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digit_mapping_rfc4733_table7() {
        let chars = "0123456789*#ABCD";
        for (i, c) in chars.chars().enumerate() {
            let d = DtmfDigit::from_char(c).unwrap();
            assert_eq!(d.code(), EventCode(i as u8));
            assert_eq!(d.as_char(), c);
            assert_eq!(EventCode(i as u8).digit(), Some(d));
            assert_eq!(d.to_string(), c.to_string());
        }
        assert_eq!(DtmfDigit::from_char('b'), Some(DtmfDigit::B));
        assert_eq!(DtmfDigit::try_from('E'), Err('E'));
        assert_eq!(EventCode(16).digit(), None);
        assert_eq!(EventCode(255).digit(), None);
        assert_eq!(EventCode(16).to_string(), "event 16");
        assert_eq!(EventCode::from(DtmfDigit::Pound), EventCode(11));
    }

    #[test]
    fn volume_range() {
        assert_eq!(Volume::new(63), Some(Volume::MIN));
        assert_eq!(Volume::new(64), None);
        assert_eq!(Volume::from_wire(0xff).value(), 63);
    }

    #[test]
    fn parses_rfc_layout() {
        // Event 5, E set, R set (must be ignored), volume 10, duration 800.
        let b = [5u8, 0x80 | 0x40 | 10, 0x03, 0x20];
        let e = TelephoneEvent::parse(&b).unwrap();
        assert_eq!(e.event, EventCode(5));
        assert!(e.end);
        assert_eq!(e.volume, Volume::new(10).unwrap());
        assert_eq!(e.duration, 800);
        // R is written back as 0.
        assert_eq!(e.to_bytes(), [5, 0x8a, 0x03, 0x20]);
        assert_eq!(
            TelephoneEvent::parse(&b[..3]),
            Err(EventError::TooShort { len: 3 })
        );
        assert_eq!(
            e.write(&mut [0u8; 3]),
            Err(EventError::BufferTooSmall { available: 3 })
        );
        let mut out = [0u8; 6];
        assert_eq!(e.write(&mut out), Ok(4));
        assert_eq!(out, [5, 0x8a, 0x03, 0x20, 0, 0]);
    }

    #[test]
    fn blocks_iterate_whole_blocks() {
        let p = [1u8, 0x80, 0, 160, 2, 0x0a, 1, 0, 9];
        let it = blocks(&p);
        assert_eq!(it.len(), 2);
        let v: Vec<_> = it.collect();
        assert_eq!(v[0].event, EventCode(1));
        assert!(v[0].end);
        assert_eq!(v[1].duration, 256);
        assert_eq!(blocks(&p[..3]).count(), 0);
    }

    proptest! {
        #[test]
        fn round_trip(code: u8, end: bool, vol in 0u8..64, duration: u16) {
            let e = TelephoneEvent { event: EventCode(code), end, volume: Volume::new(vol).unwrap(), duration };
            let mut out = [0u8; 4];
            e.write(&mut out).unwrap();
            prop_assert_eq!(TelephoneEvent::parse(&out).unwrap(), e);
        }

        #[test]
        fn bytes_round_trip_modulo_r(b: [u8; 4]) {
            let e = TelephoneEvent::from_bytes(b);
            let mut expect = b;
            expect[1] &= !0x40;
            prop_assert_eq!(e.to_bytes(), expect);
        }
    }
}
