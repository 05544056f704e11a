//! RTP fixed header, CSRC list, header extension and padding (RFC 3550 §5.1, §5.3.1).
//!
//! [`RtpPacket`] is a zero-copy, validated view over a received datagram: once
//! `parse` succeeds every accessor is infallible and O(1). [`RtpHeader`] writes
//! a packet into a caller-provided buffer. Neither allocates.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! |                           timestamp                           |
//! |           synchronization source (SSRC) identifier            |
//! |            contributing source (CSRC) identifiers             |
//! |                             ....                              |
//! ```

use super::fields::{PayloadType, Ssrc};

/// Length of the fixed RTP header (RFC 3550 §5.1).
pub const FIXED_HEADER_LEN: usize = 12;
/// The only RTP version this crate speaks (RFC 3550 §5.1, `V`).
pub const RTP_VERSION: u8 = 2;
/// Most CSRCs a header can carry (4-bit `CC`).
pub const MAX_CSRCS: usize = 15;

/// Why a datagram is not a well-formed RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    #[error("RTP packet too short: {len} bytes, need at least 12")]
    TooShort {
        /// Datagram length.
        len: usize,
    },
    /// `V` is not 2.
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    /// The CSRC list announced by `CC` runs past the end.
    #[error("CSRC list of {count} entries runs past the end of a {len}-byte packet")]
    CsrcOverrun {
        /// Announced CSRC count.
        count: u8,
        /// Datagram length.
        len: usize,
    },
    /// The header extension (RFC 3550 §5.3.1) runs past the end.
    #[error("header extension of {words} words runs past the end of a {len}-byte packet")]
    ExtensionOverrun {
        /// Announced extension length in 32-bit words (0 if even the 4-byte
        /// extension header is missing).
        words: u16,
        /// Datagram length.
        len: usize,
    },
    /// The padding count is zero or longer than the payload area.
    #[error("padding of {padding} bytes is invalid for {available} bytes after the header")]
    BadPadding {
        /// Value of the last octet.
        padding: u8,
        /// Bytes after the header, including the padding.
        available: usize,
    },
}

/// A header extension (RFC 3550 §5.3.1): a 16-bit profile-defined value and
/// a body whose length is a multiple of four bytes.
///
/// RFC 8285 one-byte (`0xBEDE`) and two-byte (`0x100x`) forms are carried
/// opaquely; a relay forwards them untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    /// "defined by profile" field.
    pub profile: u16,
    /// Extension body, `4 * length` bytes.
    pub data: &'a [u8],
}

/// A validated, zero-copy view over one RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    buf: &'a [u8],
    /// Offset of the payload (end of header, CSRCs and extension).
    payload_start: usize,
    /// End of the payload (start of padding).
    payload_end: usize,
}

impl<'a> RtpPacket<'a> {
    /// Validates `buf` as an RTP packet (RFC 3550 §5.1) and returns a view.
    ///
    /// Checks the version, the CSRC list and extension lengths against the
    /// datagram, and the padding count (§5.1 `P`: the last octet counts the
    /// padding including itself, so it is at least 1).
    pub fn parse(buf: &'a [u8]) -> Result<Self, RtpError> {
        let len = buf.len();
        if len < FIXED_HEADER_LEN {
            return Err(RtpError::TooShort { len });
        }
        let b0 = buf[0];
        let version = b0 >> 6;
        if version != RTP_VERSION {
            return Err(RtpError::BadVersion(version));
        }
        let count = b0 & 0x0f;
        let mut off = FIXED_HEADER_LEN + 4 * count as usize;
        if off > len {
            return Err(RtpError::CsrcOverrun { count, len });
        }
        if b0 & 0x10 != 0 {
            // RFC 3550 §5.3.1: 16-bit profile, 16-bit length in words.
            if off + 4 > len {
                return Err(RtpError::ExtensionOverrun { words: 0, len });
            }
            let words = u16::from_be_bytes([buf[off + 2], buf[off + 3]]);
            off += 4 + 4 * words as usize;
            if off > len {
                return Err(RtpError::ExtensionOverrun { words, len });
            }
        }
        let mut end = len;
        if b0 & 0x20 != 0 {
            let available = len - off;
            let padding = buf[len - 1];
            if padding == 0 || padding as usize > available {
                return Err(RtpError::BadPadding { padding, available });
            }
            end -= padding as usize;
        }
        Ok(RtpPacket {
            buf,
            payload_start: off,
            payload_end: end,
        })
    }

    /// The whole datagram, byte for byte.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// Always 2 for a parsed packet.
    pub fn version(&self) -> u8 {
        self.buf[0] >> 6
    }

    /// `P`: padding present.
    pub fn has_padding(&self) -> bool {
        self.buf[0] & 0x20 != 0
    }

    /// Number of padding bytes (0 without `P`).
    pub fn padding_len(&self) -> usize {
        self.buf.len() - self.payload_end
    }

    /// `X`: header extension present.
    pub fn has_extension(&self) -> bool {
        self.buf[0] & 0x10 != 0
    }

    /// `M`: marker bit.
    pub fn marker(&self) -> bool {
        self.buf[1] & 0x80 != 0
    }

    /// `PT`: payload type.
    pub fn payload_type(&self) -> PayloadType {
        PayloadType::from_wire(self.buf[1])
    }

    /// 16-bit sequence number as carried on the wire.
    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.buf[2], self.buf[3]])
    }

    /// RTP timestamp.
    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]])
    }

    /// Synchronization source.
    pub fn ssrc(&self) -> Ssrc {
        Ssrc(u32::from_be_bytes([
            self.buf[8],
            self.buf[9],
            self.buf[10],
            self.buf[11],
        ]))
    }

    /// Number of CSRC entries (`CC`).
    pub fn csrc_count(&self) -> usize {
        (self.buf[0] & 0x0f) as usize
    }

    /// The contributing sources, in order.
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = Ssrc> + 'a {
        let list = &self.buf[FIXED_HEADER_LEN..FIXED_HEADER_LEN + 4 * self.csrc_count()];
        list.chunks_exact(4)
            .map(|c| Ssrc(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
    }

    /// The header extension, if `X` is set.
    pub fn extension(&self) -> Option<HeaderExtension<'a>> {
        if !self.has_extension() {
            return None;
        }
        let off = FIXED_HEADER_LEN + 4 * self.csrc_count();
        let profile = u16::from_be_bytes([self.buf[off], self.buf[off + 1]]);
        Some(HeaderExtension {
            profile,
            data: &self.buf[off + 4..self.payload_start],
        })
    }

    /// Length of everything before the payload.
    pub fn header_len(&self) -> usize {
        self.payload_start
    }

    /// The payload, without header, extension or padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.buf[self.payload_start..self.payload_end]
    }
}

/// Why a packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtpWriteError {
    /// The output buffer cannot hold the packet.
    #[error("output buffer of {available} bytes, packet needs {needed}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// More than 15 CSRCs.
    #[error("{0} CSRCs, at most 15 fit in the header")]
    TooManyCsrcs(usize),
    /// Extension body not a multiple of 4 bytes or longer than 65535 words.
    #[error("header extension body of {0} bytes is not a whole number of 32-bit words (max 65535)")]
    BadExtension(usize),
}

/// Fields of an RTP packet to write (RFC 3550 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    /// `M`.
    pub marker: bool,
    /// `PT`.
    pub payload_type: PayloadType,
    /// 16-bit wire sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// Synchronization source.
    pub ssrc: Ssrc,
    /// Contributing sources (at most 15).
    pub csrcs: &'a [Ssrc],
    /// Header extension, if any.
    pub extension: Option<HeaderExtension<'a>>,
    /// Padding bytes to append (0: none; otherwise the `P` bit is set and
    /// the last byte holds this count, RFC 3550 §5.1).
    pub padding: u8,
}

impl<'a> RtpHeader<'a> {
    /// A header with no CSRCs, extension, padding or marker.
    pub const fn new(payload_type: PayloadType, sequence: u16, timestamp: u32, ssrc: Ssrc) -> Self {
        RtpHeader {
            marker: false,
            payload_type,
            sequence,
            timestamp,
            ssrc,
            csrcs: &[],
            extension: None,
            padding: 0,
        }
    }

    /// Bytes before the payload.
    pub fn header_len(&self) -> usize {
        FIXED_HEADER_LEN + 4 * self.csrcs.len() + self.extension.map_or(0, |e| 4 + e.data.len())
    }

    /// Total packet length with `payload_len` bytes of payload.
    pub fn packet_len(&self, payload_len: usize) -> usize {
        self.header_len() + payload_len + self.padding as usize
    }

    /// Writes header, `payload` and padding into `out`; returns the length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, RtpWriteError> {
        if self.csrcs.len() > MAX_CSRCS {
            return Err(RtpWriteError::TooManyCsrcs(self.csrcs.len()));
        }
        if let Some(ext) = self.extension {
            if ext.data.len() % 4 != 0 || ext.data.len() / 4 > u16::MAX as usize {
                return Err(RtpWriteError::BadExtension(ext.data.len()));
            }
        }
        let needed = self.packet_len(payload.len());
        if out.len() < needed {
            return Err(RtpWriteError::BufferTooSmall {
                needed,
                available: out.len(),
            });
        }
        let mut b0 = RTP_VERSION << 6 | self.csrcs.len() as u8;
        if self.padding > 0 {
            b0 |= 0x20;
        }
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out[0] = b0;
        out[1] = (u8::from(self.marker) << 7) | self.payload_type.value();
        out[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..12].copy_from_slice(&self.ssrc.0.to_be_bytes());
        let mut off = FIXED_HEADER_LEN;
        for c in self.csrcs {
            out[off..off + 4].copy_from_slice(&c.0.to_be_bytes());
            off += 4;
        }
        if let Some(ext) = self.extension {
            out[off..off + 2].copy_from_slice(&ext.profile.to_be_bytes());
            // Checked above: fits in u16.
            let words = (ext.data.len() / 4) as u16;
            out[off + 2..off + 4].copy_from_slice(&words.to_be_bytes());
            off += 4;
            out[off..off + ext.data.len()].copy_from_slice(ext.data);
            off += ext.data.len();
        }
        out[off..off + payload.len()].copy_from_slice(payload);
        off += payload.len();
        if self.padding > 0 {
            let p = self.padding as usize;
            out[off..off + p - 1].fill(0);
            out[off + p - 1] = self.padding;
            off += p;
        }
        Ok(off)
    }
}

impl<'a> From<&RtpPacket<'a>> for RtpHeader<'a> {
    /// Copies the header fields of a parsed packet, for re-writing it.
    ///
    /// CSRCs are stored big-endian in the packet, so a borrowed `&[Ssrc]`
    /// cannot point at them: the result carries none (copy them with
    /// [`RtpPacket::csrcs`] when needed). Padding is not carried either.
    fn from(p: &RtpPacket<'a>) -> Self {
        RtpHeader {
            marker: p.marker(),
            payload_type: p.payload_type(),
            sequence: p.sequence(),
            timestamp: p.timestamp(),
            ssrc: p.ssrc(),
            csrcs: &[],
            extension: p.extension(),
            padding: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pcmu(seq: u16) -> [u8; 172] {
        let mut out = [0u8; 172];
        let h = RtpHeader::new(PayloadType::PCMU, seq, 160 * seq as u32, Ssrc(0xdead_beef));
        let n = h.write(&[0xffu8; 160], &mut out).unwrap();
        assert_eq!(n, 172);
        out
    }

    #[test]
    fn parses_plain_packet() {
        let buf = pcmu(7);
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.version(), 2);
        assert!(!p.marker() && !p.has_padding() && !p.has_extension());
        assert_eq!(p.payload_type(), PayloadType::PCMU);
        assert_eq!(p.sequence(), 7);
        assert_eq!(p.timestamp(), 1120);
        assert_eq!(p.ssrc(), Ssrc(0xdead_beef));
        assert_eq!(p.csrc_count(), 0);
        assert_eq!(p.header_len(), 12);
        assert_eq!(p.payload().len(), 160);
        assert_eq!(p.as_bytes(), &buf[..]);
    }

    #[test]
    fn full_header_round_trip() {
        let csrcs = [Ssrc(1), Ssrc(2), Ssrc(3)];
        let ext = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut h = RtpHeader::new(PayloadType::new(101).unwrap(), 65535, u32::MAX, Ssrc(9));
        h.marker = true;
        h.csrcs = &csrcs;
        h.extension = Some(HeaderExtension {
            profile: 0xBEDE,
            data: &ext,
        });
        h.padding = 3;
        let mut out = [0u8; 64];
        let n = h.write(b"abc", &mut out).unwrap();
        assert_eq!(n, 12 + 12 + 4 + 8 + 3 + 3);
        let p = RtpPacket::parse(&out[..n]).unwrap();
        assert!(p.marker() && p.has_padding() && p.has_extension());
        assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs);
        assert_eq!(p.extension().unwrap().profile, 0xBEDE);
        assert_eq!(p.extension().unwrap().data, &ext);
        assert_eq!(p.payload(), b"abc");
        assert_eq!(p.padding_len(), 3);
        assert_eq!(p.sequence(), 65535);
        assert_eq!(p.timestamp(), u32::MAX);
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(RtpPacket::parse(&[]), Err(RtpError::TooShort { len: 0 }));
        assert_eq!(
            RtpPacket::parse(&[0x80; 11]),
            Err(RtpError::TooShort { len: 11 })
        );
        let mut b = pcmu(1);
        b[0] = 0x40; // version 1
        assert_eq!(RtpPacket::parse(&b), Err(RtpError::BadVersion(1)));
        // CC = 15 on a 20-byte packet.
        let mut b = [0u8; 20];
        b[0] = 0x8f;
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::CsrcOverrun { count: 15, len: 20 })
        );
        // X set but no room for the extension header.
        let mut b = [0u8; 14];
        b[0] = 0x90;
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::ExtensionOverrun { words: 0, len: 14 })
        );
        // X set, extension claims 100 words.
        let mut b = [0u8; 20];
        b[0] = 0x90;
        b[14] = 0;
        b[15] = 100;
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::ExtensionOverrun {
                words: 100,
                len: 20
            })
        );
        // P set, padding count larger than the payload area.
        let mut b = [0u8; 16];
        b[0] = 0xa0;
        b[15] = 5;
        assert_eq!(
            RtpPacket::parse(&b),
            Err(RtpError::BadPadding {
                padding: 5,
                available: 4
            })
        );
        // P set, zero padding count.
        b[15] = 0;
        assert!(matches!(
            RtpPacket::parse(&b),
            Err(RtpError::BadPadding { .. })
        ));
        // P set, padding fills the whole payload area: valid, empty payload.
        b[15] = 4;
        assert_eq!(RtpPacket::parse(&b).unwrap().payload(), b"");
    }

    #[test]
    fn writer_errors() {
        let h = RtpHeader::new(PayloadType::PCMU, 0, 0, Ssrc(0));
        let mut small = [0u8; 11];
        assert_eq!(
            h.write(&[], &mut small),
            Err(RtpWriteError::BufferTooSmall {
                needed: 12,
                available: 11
            })
        );
        let many = [Ssrc(0); 16];
        let mut h2 = h;
        h2.csrcs = &many;
        assert_eq!(
            h2.write(&[], &mut [0u8; 128]),
            Err(RtpWriteError::TooManyCsrcs(16))
        );
        let mut h3 = h;
        h3.extension = Some(HeaderExtension {
            profile: 1,
            data: &[1, 2, 3],
        });
        assert_eq!(
            h3.write(&[], &mut [0u8; 128]),
            Err(RtpWriteError::BadExtension(3))
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = RtpPacket::parse(&bytes);
        }

        #[test]
        fn write_parse_round_trip(
            marker: bool,
            pt in 0u8..128,
            seq: u16,
            ts: u32,
            ssrc: u32,
            csrcs in proptest::collection::vec(any::<u32>(), 0..=15),
            ext in proptest::option::of((any::<u16>(), proptest::collection::vec(any::<u8>(), 0..8usize).prop_map(|mut v| { v.resize(v.len() / 4 * 4, 0); v }))),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            padding: u8,
        ) {
            let csrcs: Vec<Ssrc> = csrcs.into_iter().map(Ssrc).collect();
            let h = RtpHeader {
                marker,
                payload_type: PayloadType::new(pt).unwrap(),
                sequence: seq,
                timestamp: ts,
                ssrc: Ssrc(ssrc),
                csrcs: &csrcs,
                extension: ext.as_ref().map(|(p, d)| HeaderExtension { profile: *p, data: d }),
                padding,
            };
            let mut out = vec![0u8; h.packet_len(payload.len())];
            let n = h.write(&payload, &mut out).unwrap();
            prop_assert_eq!(n, out.len());
            let p = RtpPacket::parse(&out).unwrap();
            prop_assert_eq!(p.marker(), marker);
            prop_assert_eq!(p.payload_type().value(), pt);
            prop_assert_eq!(p.sequence(), seq);
            prop_assert_eq!(p.timestamp(), ts);
            prop_assert_eq!(p.ssrc(), Ssrc(ssrc));
            prop_assert_eq!(p.csrcs().collect::<Vec<_>>(), csrcs.clone());
            prop_assert_eq!(p.extension().map(|e| (e.profile, e.data.to_vec())), ext);
            prop_assert_eq!(p.payload(), &payload[..]);
            prop_assert_eq!(p.padding_len(), padding as usize);
            // Re-writing from the view reproduces the bytes (CSRC-free case).
            if csrcs.is_empty() {
                let mut h2 = RtpHeader::from(&p);
                h2.padding = padding;
                let mut out2 = vec![0u8; n];
                h2.write(p.payload(), &mut out2).unwrap();
                prop_assert_eq!(out2, out);
            }
        }
    }
}
