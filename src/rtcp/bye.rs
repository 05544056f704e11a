//! Goodbye, BYE (RFC 3550 §6.6).
//!
//! ```text
//! |V=2|P|    SC   |   PT=BYE=203  |             length            |
//! |                           SSRC/CSRC                           |
//! :                              ...                              :
//! |     length    |               reason for leaving            ... (opt)
//! ```
//!
//! The reason is padded with zero octets to a word boundary; its text is
//! kept as bytes.

use std::fmt;
use std::iter::FusedIterator;
use std::slice::{ChunksExact, Iter};

use super::error::{RtcpError, RtcpWriteError};
use super::header::{HEADER_LEN, PacketType, begin_packet, word_align};
use crate::rtp::Ssrc;

/// A list of SSRCs: a view over received bytes or a slice to write.
#[derive(Clone, Copy)]
pub struct SsrcList<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// Received bytes, a whole number of 4-byte SSRCs.
    Wire(&'a [u8]),
    Typed(&'a [Ssrc]),
}

/// Iterator over an [`SsrcList`].
#[derive(Debug, Clone)]
pub struct SsrcIter<'a>(IterRepr<'a>);

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Wire(ChunksExact<'a, u8>),
    Typed(Iter<'a, Ssrc>),
}

/// A goodbye packet (RFC 3550 §6.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bye<'a> {
    /// The sources leaving, at most 31.
    pub sources: SsrcList<'a>,
    /// Reason for leaving, at most 255 bytes.
    pub reason: Option<&'a [u8]>,
}

impl<'a> SsrcList<'a> {
    /// SSRCs to write.
    pub const fn new(ssrcs: &'a [Ssrc]) -> Self {
        SsrcList(Repr::Typed(ssrcs))
    }

    /// Number of SSRCs.
    pub const fn len(&self) -> usize {
        match self.0 {
            Repr::Wire(b) => b.len() / 4,
            Repr::Typed(t) => t.len(),
        }
    }

    /// True when empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The SSRCs, in packet order.
    pub fn iter(&self) -> SsrcIter<'a> {
        SsrcIter(match self.0 {
            Repr::Wire(b) => IterRepr::Wire(b.chunks_exact(4)),
            Repr::Typed(t) => IterRepr::Typed(t.iter()),
        })
    }
}

impl<'a> Bye<'a> {
    /// Parses the body of a BYE with `count` SSRCs (RFC 3550 §6.6).
    pub(crate) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let needed = 4 * count as usize;
        let Some((ssrcs, rest)) = body.split_at_checked(needed) else {
            return Err(RtcpError::Truncated {
                packet_type: PacketType::BYE,
                needed,
                available: body.len(),
            });
        };
        let reason = match rest.split_first() {
            None => None,
            Some((&len, text)) => match text.get(..len as usize) {
                Some(r) => Some(r),
                None => {
                    return Err(RtcpError::ByeReasonOverrun {
                        len,
                        available: text.len(),
                    });
                }
            },
        };
        Ok(Bye {
            sources: SsrcList(Repr::Wire(ssrcs)),
            reason,
        })
    }

    /// Bytes the packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        let reason = self.reason.map_or(0, |r| word_align(1 + r.len()));
        HEADER_LEN + 4 * self.sources.len() + reason
    }

    /// Writes the packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        if let Some(r) = self.reason.filter(|r| r.len() > 255) {
            return Err(RtcpWriteError::TextTooLong(r.len()));
        }
        let len = self.wire_len();
        let mut put = begin_packet(out, len, self.sources.len(), PacketType::BYE)?;
        for ssrc in self.sources.iter() {
            put.u32(ssrc.0);
        }
        if let Some(r) = self.reason {
            // Checked above: at most 255 bytes.
            put.u8(r.len() as u8);
            put.bytes(r);
            put.zeros(word_align(1 + r.len()) - 1 - r.len());
        }
        debug_assert_eq!(put.position(), len);
        Ok(len)
    }
}

impl Iterator for SsrcIter<'_> {
    type Item = Ssrc;

    fn next(&mut self) -> Option<Ssrc> {
        match &mut self.0 {
            IterRepr::Wire(chunks) => chunks
                .next()
                .and_then(|c| c.first_chunk::<4>())
                .map(|c| Ssrc(u32::from_be_bytes(*c))),
            IterRepr::Typed(it) => it.next().copied(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            IterRepr::Wire(chunks) => chunks.size_hint(),
            IterRepr::Typed(it) => it.size_hint(),
        }
    }
}

impl ExactSizeIterator for SsrcIter<'_> {}

impl FusedIterator for SsrcIter<'_> {}

impl<'a> IntoIterator for SsrcList<'a> {
    type Item = Ssrc;
    type IntoIter = SsrcIter<'a>;

    fn into_iter(self) -> SsrcIter<'a> {
        self.iter()
    }
}

impl<'a> From<&'a [Ssrc]> for SsrcList<'a> {
    fn from(ssrcs: &'a [Ssrc]) -> Self {
        SsrcList::new(ssrcs)
    }
}

impl Default for SsrcList<'_> {
    fn default() -> Self {
        SsrcList::new(&[])
    }
}

impl PartialEq for SsrcList<'_> {
    /// Equal when the SSRCs are, however each side is stored.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for SsrcList<'_> {}

impl fmt::Debug for SsrcList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::header::split_packet;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<Bye<'_>, RtcpError> {
        let f = split_packet(bytes).unwrap();
        Bye::parse_body(f.header.count, f.body)
    }

    #[test]
    fn parses_hand_built_bye_with_reason() {
        let bye = [
            0x82, 203, 0, 4, // V=2 SC=2 PT=203 length=4 (20 bytes)
            0x00, 0x00, 0x00, 0x01, // SSRC 1
            0x00, 0x00, 0x00, 0x02, // SSRC 2
            5, b'c', b'i', b'a', b'o', b'!', 0, 0, // reason "ciao!" + pad
        ];
        let parsed = parse(&bye).unwrap();
        assert_eq!(
            parsed.sources.iter().collect::<Vec<_>>(),
            [Ssrc(1), Ssrc(2)]
        );
        assert_eq!(parsed.reason, Some(&b"ciao!"[..]));
        let mut out = [0u8; 20];
        assert_eq!(parsed.write(&mut out), Ok(20));
        assert_eq!(out, bye);
    }

    #[test]
    fn bye_without_reason_and_errors() {
        let parsed = parse(&[0x81, 203, 0, 1, 0, 0, 0, 9]).unwrap();
        assert_eq!(parsed.sources.iter().collect::<Vec<_>>(), [Ssrc(9)]);
        assert_eq!(parsed.reason, None);
        // Reason length 9 with 3 bytes after it.
        assert_eq!(
            parse(&[0x81, 203, 0, 2, 0, 0, 0, 9, 9, b'a', b'b', b'c']),
            Err(RtcpError::ByeReasonOverrun {
                len: 9,
                available: 3
            })
        );
        // SC=2 with one SSRC.
        assert_eq!(
            parse(&[0x82, 203, 0, 1, 0, 0, 0, 9]),
            Err(RtcpError::Truncated {
                packet_type: PacketType::BYE,
                needed: 8,
                available: 4
            })
        );
        let long = [b'x'; 256];
        let bye = Bye {
            sources: SsrcList::new(&[]),
            reason: Some(&long),
        };
        assert_eq!(
            bye.write(&mut [0u8; 512]),
            Err(RtcpWriteError::TextTooLong(256))
        );
    }

    proptest! {
        #[test]
        fn bye_round_trip(
            ssrcs in proptest::collection::vec(any::<u32>(), 0..=31),
            reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..=255)),
        ) {
            let ssrcs: Vec<Ssrc> = ssrcs.into_iter().map(Ssrc).collect();
            let bye = Bye { sources: SsrcList::new(&ssrcs), reason: reason.as_deref() };
            let mut out = vec![0u8; bye.wire_len()];
            prop_assert_eq!(bye.write(&mut out), Ok(out.len()));
            prop_assert_eq!(parse(&out), Ok(bye));
        }
    }
}
