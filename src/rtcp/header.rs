//! The RTCP common header (RFC 3550 §6.4.1) and packet framing inside a
//! compound datagram.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|   RC    |      PT       |             length            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! `length` is the packet length in 32-bit words minus one, header and
//! padding included. Only the last packet of a compound may set `P`; its last
//! octet then counts the padding octets, itself included.
//!
//! Contract: [`split_packet`] never panics; writers go through
//! [`begin_packet`], which checks the buffer, the count and the length field
//! before anything is written.

use std::fmt;

use super::error::{RtcpError, RtcpWriteError};

/// The only RTCP version (RFC 3550 §6.4.1, `V`).
pub const RTCP_VERSION: u8 = 2;
/// Length of the common header.
pub const HEADER_LEN: usize = 4;
/// Largest count a 5-bit RC/SC field holds.
pub const MAX_COUNT: usize = 31;
/// Longest packet the 16-bit length field can describe, in bytes.
pub const MAX_PACKET_LEN: usize = 4 * (u16::MAX as usize + 1);

/// An RTCP packet type (RFC 3550 §12.1, RFC 4585 §6.1, RFC 3611 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PacketType(pub u8);

/// The common header of one RTCP packet (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `P`: the packet ends in padding.
    pub padding: bool,
    /// The 5-bit count field (RC, SC or the APP/feedback subtype).
    pub count: u8,
    /// `PT`.
    pub packet_type: PacketType,
    /// The length field: packet length in 32-bit words minus one.
    pub length: u16,
}

/// One packet cut out of a compound datagram by [`split_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Framed<'a> {
    /// The common header.
    pub header: Header,
    /// The body after the 4-byte header, without padding.
    pub body: &'a [u8],
    /// Bytes after this packet.
    pub rest: &'a [u8],
}

/// Appends big-endian fields to an exactly-sized packet buffer.
///
/// Writers size the buffer with their `wire_len()` before writing, so every
/// write fits; a write that would not fit is dropped instead of panicking
/// (a writer bug then shows as wrong bytes in the round-trip tests).
pub(crate) struct Put<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl PacketType {
    /// Sender report (RFC 3550 §6.4.1).
    pub const SR: PacketType = PacketType(200);
    /// Receiver report (RFC 3550 §6.4.2).
    pub const RR: PacketType = PacketType(201);
    /// Source description (RFC 3550 §6.5).
    pub const SDES: PacketType = PacketType(202);
    /// Goodbye (RFC 3550 §6.6).
    pub const BYE: PacketType = PacketType(203);
    /// Application-defined (RFC 3550 §6.7).
    pub const APP: PacketType = PacketType(204);
    /// Generic RTP feedback, e.g. NACK (RFC 4585 §6.1).
    pub const RTPFB: PacketType = PacketType(205);
    /// Payload-specific feedback, e.g. PLI, FIR (RFC 4585 §6.1).
    pub const PSFB: PacketType = PacketType(206);
    /// Extended report (RFC 3611 §2).
    pub const XR: PacketType = PacketType(207);
}

impl Header {
    /// Reads the 4-byte common header at the start of `buf` and checks the
    /// version; lengths are checked by the compound parser.
    pub fn parse(buf: &[u8]) -> Result<Header, RtcpError> {
        let Some(&[b0, pt, l0, l1]) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(RtcpError::TooShort { len: buf.len() });
        };
        let version = b0 >> 6;
        if version != RTCP_VERSION {
            return Err(RtcpError::BadVersion(version));
        }
        Ok(Header {
            padding: b0 & 0x20 != 0,
            count: b0 & 0x1f,
            packet_type: PacketType(pt),
            length: u16::from_be_bytes([l0, l1]),
        })
    }

    /// Packet length in bytes, `4 * (length + 1)`.
    pub const fn packet_len(&self) -> usize {
        4 * (self.length as usize + 1)
    }

    /// The 4 header bytes (the count is masked to 5 bits).
    pub const fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let padding = if self.padding { 0x20 } else { 0 };
        let [l0, l1] = self.length.to_be_bytes();
        [
            RTCP_VERSION << 6 | padding | (self.count & 0x1f),
            self.packet_type.0,
            l0,
            l1,
        ]
    }
}

impl<'b> Put<'b> {
    /// Writes into `buf` from its start.
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Put { buf, pos: 0 }
    }

    /// Appends raw bytes.
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        let end = self.pos.saturating_add(b.len());
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.copy_from_slice(b);
        }
        self.pos = end;
    }

    /// Appends one octet.
    pub(crate) fn u8(&mut self, v: u8) {
        self.bytes(&[v]);
    }

    /// Appends a big-endian 32-bit word.
    pub(crate) fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// Appends `n` zero octets.
    pub(crate) fn zeros(&mut self, n: usize) {
        let end = self.pos.saturating_add(n);
        if let Some(dst) = self.buf.get_mut(self.pos..end) {
            dst.fill(0);
        }
        self.pos = end;
    }

    /// Bytes written so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match *self {
            PacketType::SR => "SR",
            PacketType::RR => "RR",
            PacketType::SDES => "SDES",
            PacketType::BYE => "BYE",
            PacketType::APP => "APP",
            PacketType::RTPFB => "RTPFB",
            PacketType::PSFB => "PSFB",
            PacketType::XR => "XR",
            _ => return write!(f, "{}", self.0),
        };
        write!(f, "{} ({name})", self.0)
    }
}

impl From<u8> for PacketType {
    fn from(v: u8) -> Self {
        PacketType(v)
    }
}

/// Cuts the first packet off `buf` (RFC 3550 §6.4.1, A.2): checks the
/// version, that the length fits, and the padding (only on the last packet,
/// count between 1 and the body length).
pub(crate) fn split_packet(buf: &[u8]) -> Result<Framed<'_>, RtcpError> {
    let header = Header::parse(buf)?;
    let declared = header.packet_len();
    let Some((packet, rest)) = buf.split_at_checked(declared) else {
        return Err(RtcpError::LengthOverrun {
            declared,
            available: buf.len(),
        });
    };
    // `declared >= 4`, so the header is inside `packet`.
    let mut body = packet.get(HEADER_LEN..).unwrap_or_default();
    if header.padding {
        if !rest.is_empty() {
            return Err(RtcpError::PaddingNotLast);
        }
        let padding = body.last().copied().unwrap_or(0);
        let Some(keep) = body
            .len()
            .checked_sub(padding as usize)
            .filter(|_| padding > 0)
        else {
            return Err(RtcpError::BadPadding {
                padding,
                available: body.len(),
            });
        };
        body = body.get(..keep).unwrap_or_default();
    }
    Ok(Framed { header, body, rest })
}

/// Starts writing a `len`-byte packet of type `packet_type` with `count` in
/// the RC/SC field: checks the count, the length field and the buffer,
/// writes the header and returns a writer for the rest of the
/// exactly-sized packet buffer.
pub(crate) fn begin_packet(
    out: &mut [u8],
    len: usize,
    count: usize,
    packet_type: PacketType,
) -> Result<Put<'_>, RtcpWriteError> {
    if count > MAX_COUNT {
        return Err(RtcpWriteError::CountOverflow(count));
    }
    if !len.is_multiple_of(4) {
        return Err(RtcpWriteError::Unaligned(len));
    }
    if len > MAX_PACKET_LEN {
        return Err(RtcpWriteError::TooLong(len));
    }
    let available = out.len();
    let Some(packet) = out.get_mut(..len) else {
        return Err(RtcpWriteError::BufferTooSmall {
            needed: len,
            available,
        });
    };
    let header = Header {
        padding: false,
        // Checked above: count <= 31.
        count: count as u8,
        packet_type,
        // Checked above: 4 <= len <= 4 * 65536 and len % 4 == 0.
        length: (len / 4).saturating_sub(1) as u16,
    };
    let mut put = Put::new(packet);
    put.bytes(&header.to_bytes());
    Ok(put)
}

/// Rounds `n` up to a whole number of 32-bit words.
pub(crate) const fn word_align(n: usize) -> usize {
    n.div_ceil(4) * 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        // V=2, P=1, RC=3, PT=201, length=7.
        let h = Header::parse(&[0xa3, 201, 0, 7]).unwrap();
        assert_eq!(
            h,
            Header {
                padding: true,
                count: 3,
                packet_type: PacketType::RR,
                length: 7
            }
        );
        assert_eq!(h.packet_len(), 32);
        assert_eq!(h.to_bytes(), [0xa3, 201, 0, 7]);
        assert_eq!(PacketType::PSFB.to_string(), "206 (PSFB)");
        assert_eq!(PacketType(99).to_string(), "99");
    }

    #[test]
    fn split_errors() {
        assert_eq!(
            split_packet(&[0x80, 201]),
            Err(RtcpError::TooShort { len: 2 })
        );
        assert_eq!(
            split_packet(&[0x40, 201, 0, 0]),
            Err(RtcpError::BadVersion(1))
        );
        assert_eq!(
            split_packet(&[0x80, 201, 0, 1, 0, 0]),
            Err(RtcpError::LengthOverrun {
                declared: 8,
                available: 6
            })
        );
        // Padded packet followed by another one.
        let two = [0xa0, 201, 0, 1, 0, 0, 0, 4, 0x80, 201, 0, 0];
        assert_eq!(split_packet(&two), Err(RtcpError::PaddingNotLast));
        // Padding count 0, and padding longer than the body.
        assert_eq!(
            split_packet(&[0xa0, 201, 0, 1, 0, 0, 0, 0]),
            Err(RtcpError::BadPadding {
                padding: 0,
                available: 4
            })
        );
        assert_eq!(
            split_packet(&[0xa0, 201, 0, 1, 0, 0, 0, 5]),
            Err(RtcpError::BadPadding {
                padding: 5,
                available: 4
            })
        );
        // P on a header-only packet: no octet to hold the count.
        assert_eq!(
            split_packet(&[0xa0, 201, 0, 0]),
            Err(RtcpError::BadPadding {
                padding: 0,
                available: 0
            })
        );
    }

    #[test]
    fn split_strips_padding_and_returns_rest() {
        let f = split_packet(&[0xa0, 204, 0, 2, 1, 2, 3, 4, 0, 0, 0, 4]).unwrap();
        assert_eq!(f.body, &[1, 2, 3, 4]);
        assert!(f.rest.is_empty());
        let f = split_packet(&[0x80, 201, 0, 1, 9, 9, 9, 9, 0x80]).unwrap();
        assert_eq!(f.body, &[9, 9, 9, 9]);
        assert_eq!(f.rest, &[0x80]);
    }

    #[test]
    fn begin_packet_checks() {
        let mut buf = [0u8; 8];
        assert_eq!(
            begin_packet(&mut buf, 12, 0, PacketType::RR).map(|p| p.position()),
            Err(RtcpWriteError::BufferTooSmall {
                needed: 12,
                available: 8
            })
        );
        assert_eq!(
            begin_packet(&mut buf, 8, 32, PacketType::RR).map(|p| p.position()),
            Err(RtcpWriteError::CountOverflow(32))
        );
        assert_eq!(
            begin_packet(&mut [0u8; 4 * 65537], 4 * 65537, 0, PacketType::APP)
                .map(|p| p.position()),
            Err(RtcpWriteError::TooLong(4 * 65537))
        );
        let p = begin_packet(&mut buf, 8, 31, PacketType::RR).unwrap();
        assert_eq!(p.position(), HEADER_LEN);
        assert_eq!(buf, [0x9f, 201, 0, 1, 0, 0, 0, 0]);
    }
}
