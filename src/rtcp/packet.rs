//! One typed RTCP packet: [`RtcpPacket`] dispatches on the packet type to
//! the SR, RR, SDES, BYE, APP and XR views, and keeps every other type
//! (RTPFB, PSFB, ...) as an opaque [`Unknown`] passthrough.

use super::app::App;
use super::bye::Bye;
use super::error::{RtcpError, RtcpWriteError};
use super::header::{Framed, HEADER_LEN, PacketType, begin_packet, split_packet};
use super::rr::ReceiverReport;
use super::sdes::SourceDescription;
use super::sr::SenderReport;
use super::xr::ExtendedReport;

/// A packet of a type this module does not interpret, kept byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unknown<'a> {
    /// `PT`.
    pub packet_type: PacketType,
    /// The 5-bit count/format field (e.g. the FMT of RFC 4585 feedback).
    pub count: u8,
    /// Everything after the 4-byte header, without padding.
    pub body: &'a [u8],
}

/// One RTCP packet of a compound (RFC 3550 §6.4-§6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report (PT 200).
    SenderReport(SenderReport<'a>),
    /// Receiver report (PT 201).
    ReceiverReport(ReceiverReport<'a>),
    /// Source description (PT 202).
    SourceDescription(SourceDescription<'a>),
    /// Goodbye (PT 203).
    Bye(Bye<'a>),
    /// Application-defined (PT 204).
    App(App<'a>),
    /// Extended report (PT 207, RFC 3611 §2).
    Xr(ExtendedReport<'a>),
    /// Any other type, e.g. RTPFB (205), PSFB (206).
    Unknown(Unknown<'a>),
}

impl<'a> Unknown<'a> {
    /// Bytes the packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + self.body.len()
    }

    /// Writes the packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        if !self.body.len().is_multiple_of(4) {
            return Err(RtcpWriteError::Unaligned(self.body.len()));
        }
        let len = self.wire_len();
        let mut put = begin_packet(out, len, self.count as usize, self.packet_type)?;
        put.bytes(self.body);
        Ok(len)
    }
}

impl<'a> RtcpPacket<'a> {
    /// Parses the first packet of `buf` and returns it with the bytes after
    /// it (RFC 3550 §6.4.1 framing, then the type's body).
    pub fn parse_first(buf: &'a [u8]) -> Result<(RtcpPacket<'a>, &'a [u8]), RtcpError> {
        let framed = split_packet(buf)?;
        Ok((RtcpPacket::from_framed(&framed)?, framed.rest))
    }

    /// Interprets the body of a framed packet by its type.
    pub(crate) fn from_framed(framed: &Framed<'a>) -> Result<RtcpPacket<'a>, RtcpError> {
        let h = framed.header;
        let body = framed.body;
        Ok(match h.packet_type {
            PacketType::SR => RtcpPacket::SenderReport(SenderReport::parse_body(h.count, body)?),
            PacketType::RR => {
                RtcpPacket::ReceiverReport(ReceiverReport::parse_body(h.count, body)?)
            }
            PacketType::SDES => {
                RtcpPacket::SourceDescription(SourceDescription::parse_body(h.count, body)?)
            }
            PacketType::BYE => RtcpPacket::Bye(Bye::parse_body(h.count, body)?),
            PacketType::APP => RtcpPacket::App(App::parse_body(h.count, body)?),
            // RFC 3611 §2: the 5 count bits are reserved and ignored.
            PacketType::XR => RtcpPacket::Xr(ExtendedReport::parse_body(body)?),
            packet_type => RtcpPacket::Unknown(Unknown {
                packet_type,
                count: h.count,
                body,
            }),
        })
    }

    /// The packet type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            RtcpPacket::SenderReport(_) => PacketType::SR,
            RtcpPacket::ReceiverReport(_) => PacketType::RR,
            RtcpPacket::SourceDescription(_) => PacketType::SDES,
            RtcpPacket::Bye(_) => PacketType::BYE,
            RtcpPacket::App(_) => PacketType::APP,
            RtcpPacket::Xr(_) => PacketType::XR,
            RtcpPacket::Unknown(u) => u.packet_type,
        }
    }

    /// Bytes the packet takes on the wire (without padding).
    pub fn wire_len(&self) -> usize {
        match self {
            RtcpPacket::SenderReport(p) => p.wire_len(),
            RtcpPacket::ReceiverReport(p) => p.wire_len(),
            RtcpPacket::SourceDescription(p) => p.wire_len(),
            RtcpPacket::Bye(p) => p.wire_len(),
            RtcpPacket::App(p) => p.wire_len(),
            RtcpPacket::Xr(p) => p.wire_len(),
            RtcpPacket::Unknown(p) => p.wire_len(),
        }
    }

    /// Writes the packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        match self {
            RtcpPacket::SenderReport(p) => p.write(out),
            RtcpPacket::ReceiverReport(p) => p.write(out),
            RtcpPacket::SourceDescription(p) => p.write(out),
            RtcpPacket::Bye(p) => p.write(out),
            RtcpPacket::App(p) => p.write(out),
            RtcpPacket::Xr(p) => p.write(out),
            RtcpPacket::Unknown(p) => p.write(out),
        }
    }
}

impl<'a> From<SenderReport<'a>> for RtcpPacket<'a> {
    fn from(p: SenderReport<'a>) -> Self {
        RtcpPacket::SenderReport(p)
    }
}

impl<'a> From<ReceiverReport<'a>> for RtcpPacket<'a> {
    fn from(p: ReceiverReport<'a>) -> Self {
        RtcpPacket::ReceiverReport(p)
    }
}

impl<'a> From<SourceDescription<'a>> for RtcpPacket<'a> {
    fn from(p: SourceDescription<'a>) -> Self {
        RtcpPacket::SourceDescription(p)
    }
}

impl<'a> From<Bye<'a>> for RtcpPacket<'a> {
    fn from(p: Bye<'a>) -> Self {
        RtcpPacket::Bye(p)
    }
}

impl<'a> From<App<'a>> for RtcpPacket<'a> {
    fn from(p: App<'a>) -> Self {
        RtcpPacket::App(p)
    }
}

impl<'a> From<ExtendedReport<'a>> for RtcpPacket<'a> {
    fn from(p: ExtendedReport<'a>) -> Self {
        RtcpPacket::Xr(p)
    }
}

impl<'a> From<Unknown<'a>> for RtcpPacket<'a> {
    fn from(p: Unknown<'a>) -> Self {
        RtcpPacket::Unknown(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn psfb_pli_is_kept_opaque() {
        // RFC 4585 §6.3.1 PLI: FMT=1, PT=206, sender SSRC, media SSRC.
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        let (p, rest) = RtcpPacket::parse_first(&pli).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            p,
            RtcpPacket::Unknown(Unknown {
                packet_type: PacketType::PSFB,
                count: 1,
                body: &pli[4..],
            })
        );
        let mut out = [0u8; 12];
        assert_eq!(p.write(&mut out), Ok(12));
        assert_eq!(out, pli);
        assert_eq!(p.wire_len(), 12);
    }

    proptest! {
        #[test]
        fn unknown_round_trip(
            pt in (0u8..=255).prop_filter("not a typed packet", |pt| !(200..=204).contains(pt) && *pt != 207),
            count in 0u8..32,
            body in proptest::collection::vec(any::<[u8; 4]>(), 0..16),
        ) {
            let body = body.concat();
            let u = RtcpPacket::Unknown(Unknown { packet_type: PacketType(pt), count, body: &body });
            let mut out = vec![0u8; u.wire_len()];
            prop_assert_eq!(u.write(&mut out), Ok(out.len()));
            prop_assert_eq!(RtcpPacket::parse_first(&out), Ok((u, &[][..])));
        }
    }
}
