//! Compound RTCP datagrams (RFC 3550 §6.1): a lenient zero-copy parser, the
//! strict RFC 3550 A.2 validity check, and a writer.
//!
//! [`Compound`] iterates the packets of a datagram. It is lenient, as real
//! endpoints require: reduced-size RTCP (RFC 5506, e.g. a lone PSFB),
//! compounds that start with something other than a report, and unknown
//! packet types are all returned. A packet whose body is malformed but whose
//! framing (version, length, padding) is sound yields an `Err` and parsing
//! continues with the next packet; a framing error yields an `Err` and ends
//! the iteration, since the next header cannot be located.
//!
//! [`validate_strict`] applies the RFC 3550 A.2 header checks and the §6.1
//! CNAME requirement on top. [`CompoundWriter`] stacks packets into a
//! caller-provided buffer.

use std::iter::FusedIterator;

use super::error::{RtcpError, RtcpWriteError};
use super::header::{Header, PacketType, split_packet};
use super::packet::RtcpPacket;

/// Iterator over the packets of a compound RTCP datagram.
#[derive(Debug, Clone)]
pub struct Compound<'a> {
    rest: &'a [u8],
}

/// Writes packets one after another into a caller-provided buffer.
#[derive(Debug)]
pub struct CompoundWriter<'b> {
    out: &'b mut [u8],
    len: usize,
}

impl<'a> Compound<'a> {
    /// Iterates the packets of `buf`. Never panics, never allocates.
    pub const fn new(buf: &'a [u8]) -> Self {
        Compound { rest: buf }
    }

    /// The bytes not yet parsed (empty after the last packet or a framing
    /// error).
    pub const fn remaining(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'b> CompoundWriter<'b> {
    /// Starts an empty compound at the beginning of `out`.
    pub fn new(out: &'b mut [u8]) -> Self {
        CompoundWriter { out, len: 0 }
    }

    /// Appends one packet; on error nothing is appended.
    pub fn push(&mut self, packet: &RtcpPacket<'_>) -> Result<(), RtcpWriteError> {
        let dst = self.out.get_mut(self.len..).unwrap_or_default();
        self.len += packet.write(dst)?;
        Ok(())
    }

    /// Bytes written so far.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// True before the first packet.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The compound written so far.
    pub fn as_bytes(&self) -> &[u8] {
        self.out.get(..self.len).unwrap_or_default()
    }

    /// Ends the compound; returns its length.
    pub fn finish(self) -> usize {
        self.len
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        match split_packet(self.rest) {
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
            Ok(framed) => {
                self.rest = framed.rest;
                Some(RtcpPacket::from_framed(&framed))
            }
        }
    }
}

impl FusedIterator for Compound<'_> {}

/// Parses `buf` as a compound RTCP datagram; see [`Compound`].
pub const fn parse_compound(buf: &[u8]) -> Compound<'_> {
    Compound::new(buf)
}

/// Writes `packets` as one compound into `out`; returns its length.
pub fn write_compound(packets: &[RtcpPacket<'_>], out: &mut [u8]) -> Result<usize, RtcpWriteError> {
    let mut w = CompoundWriter::new(out);
    for p in packets {
        w.push(p)?;
    }
    Ok(w.finish())
}

/// The strict validity check of RFC 3550 A.2, plus §6.1.
///
/// Every packet must be version 2 and well formed, the lengths must add up
/// to the datagram, only the last packet may be padded; the first packet
/// must be an unpadded SR or RR; and an SDES packet must carry a CNAME.
/// Use it where RFC 3550 compounds are required; the relay itself parses
/// leniently with [`Compound`].
pub fn validate_strict(buf: &[u8]) -> Result<(), RtcpError> {
    if buf.is_empty() {
        return Err(RtcpError::Empty);
    }
    // RFC 3550 A.2: the first header against RTCP_VALID_MASK.
    let first = Header::parse(buf)?;
    if first.packet_type != PacketType::SR && first.packet_type != PacketType::RR {
        return Err(RtcpError::FirstNotReport(first.packet_type));
    }
    if first.padding {
        return Err(RtcpError::PaddedFirst);
    }
    let mut cname = false;
    for packet in Compound::new(buf) {
        if let RtcpPacket::SourceDescription(sdes) = packet? {
            cname |= sdes.chunks.iter().any(|c| c.items.cname().is_some());
        }
    }
    // split_packet checks that each length fits; iterating to the end
    // without error means they add up to the datagram exactly.
    if !cname {
        return Err(RtcpError::MissingCname);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::xr::tests::{XR, arb_metrics};
    use crate::rtcp::{
        App, Bye, ExtendedReport, ReceiverReport, ReportBlock, ReportBlocks, SdesChunk, SdesItem,
        SenderInfo, SenderReport, SourceDescription, SsrcList, Unknown, XrBlock,
    };
    use crate::rtp::Ssrc;
    use proptest::prelude::*;

    /// SR (no blocks) + SDES CNAME, laid out by hand.
    const SR_SDES: [u8; 44] = [
        0x80, 200, 0, 6, // SR, length 6 (28 bytes)
        0, 0, 0, 1, // SSRC 1
        0, 0, 0, 2, 0, 0, 0, 3, // NTP
        0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6, // RTP ts, packets, octets
        0x81, 202, 0, 3, // SDES SC=1 length 3 (16 bytes)
        0, 0, 0, 1, // SSRC 1
        1, 3, b'a', b'b', b'c', 0, 0, 0, // CNAME "abc" + END + pad
    ];

    #[test]
    fn iterates_sr_and_sdes() {
        let packets: Vec<_> = Compound::new(&SR_SDES).collect();
        assert_eq!(packets.len(), 2);
        let Ok(RtcpPacket::SenderReport(sr)) = packets[0] else {
            panic!("expected SR, got {:?}", packets[0]);
        };
        assert_eq!(sr.ssrc, Ssrc(1));
        assert_eq!(sr.sender_info.octet_count, 6);
        let Ok(RtcpPacket::SourceDescription(sdes)) = packets[1] else {
            panic!("expected SDES, got {:?}", packets[1]);
        };
        assert_eq!(sdes.cname(Ssrc(1)), Some(&b"abc"[..]));
        assert_eq!(validate_strict(&SR_SDES), Ok(()));
    }

    #[test]
    fn framing_errors_are_typed_and_end_iteration() {
        // Short.
        assert_eq!(
            Compound::new(&[0x80, 201, 0]).collect::<Vec<_>>(),
            [Err(RtcpError::TooShort { len: 3 })]
        );
        // Bad version in the second packet: first still parsed.
        let mut bad = SR_SDES;
        bad[28] = 0x41;
        let got: Vec<_> = Compound::new(&bad).collect();
        assert!(matches!(got[0], Ok(RtcpPacket::SenderReport(_))));
        assert_eq!(got[1], Err(RtcpError::BadVersion(1)));
        assert_eq!(got.len(), 2);
        // Length overrun: SDES claims 5 words more than there are.
        let mut over = SR_SDES;
        over[31] = 8;
        assert_eq!(
            Compound::new(&over).nth(1),
            Some(Err(RtcpError::LengthOverrun {
                declared: 36,
                available: 16
            }))
        );
        // Padding on the first (non-last) packet.
        let mut pad = SR_SDES;
        pad[0] |= 0x20;
        assert_eq!(
            Compound::new(&pad).collect::<Vec<_>>(),
            [Err(RtcpError::PaddingNotLast)]
        );
        // Trailing garbage shorter than a header.
        let mut trail = SR_SDES.to_vec();
        trail.push(0x80);
        assert_eq!(
            Compound::new(&trail).nth(2),
            Some(Err(RtcpError::TooShort { len: 1 }))
        );
    }

    #[test]
    fn body_error_does_not_stop_parsing() {
        // RR claiming one block but only an SSRC, then a valid BYE.
        let buf = [0x81, 201, 0, 1, 0, 0, 0, 1, 0x81, 203, 0, 1, 0, 0, 0, 1];
        let got: Vec<_> = Compound::new(&buf).collect();
        assert_eq!(
            got[0],
            Err(RtcpError::Truncated {
                packet_type: PacketType::RR,
                needed: 28,
                available: 4
            })
        );
        assert!(matches!(got[1], Ok(RtcpPacket::Bye(_))));
    }

    #[test]
    fn padded_last_packet() {
        // RR (SSRC only) padded with 4 bytes.
        let buf = [0xa0, 201, 0, 2, 0, 0, 0, 7, 0, 0, 0, 4];
        let got: Vec<_> = Compound::new(&buf).collect();
        let Ok(RtcpPacket::ReceiverReport(rr)) = got[0] else {
            panic!("expected RR, got {got:?}");
        };
        assert_eq!(rr.ssrc, Ssrc(7));
        assert!(rr.profile_extension.is_empty());
        // Strict check rejects padding on the first packet.
        assert_eq!(validate_strict(&buf), Err(RtcpError::PaddedFirst));
    }

    #[test]
    fn strict_checks() {
        assert_eq!(validate_strict(&[]), Err(RtcpError::Empty));
        // Reduced-size (RFC 5506) PLI alone: lenient yes, strict no.
        let pli = [0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2];
        assert!(Compound::new(&pli).all(|p| p.is_ok()));
        assert_eq!(
            validate_strict(&pli),
            Err(RtcpError::FirstNotReport(PacketType::PSFB))
        );
        // An RR alone has no CNAME.
        assert_eq!(
            validate_strict(&[0x80, 201, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::MissingCname)
        );
        // Body errors surface in the strict check.
        let mut bad = SR_SDES;
        bad[37] = 200; // CNAME length past the end
        assert_eq!(
            validate_strict(&bad),
            Err(RtcpError::SdesItemOverrun { item_type: 1 })
        );
    }

    #[test]
    fn sr_sdes_xr_compound() {
        // The fuzz seed `fuzz/corpus/rtcp/sr_sdes_xr`: SR + SDES + XR.
        let mut buf = SR_SDES.to_vec();
        buf.extend_from_slice(&XR);
        assert_eq!(buf, include_bytes!("../../fuzz/corpus/rtcp/sr_sdes_xr"));
        let got: Vec<_> = Compound::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), 3);
        let RtcpPacket::Xr(xr) = got[2] else {
            panic!("expected XR, got {:?}", got[2]);
        };
        assert_eq!(got[2].packet_type(), PacketType::XR);
        assert_eq!(xr.ssrc(), Ssrc(0x1234_5678));
        assert!(matches!(
            xr.blocks().next(),
            Some(XrBlock::VoipMetrics(m)) if m.ssrc == Ssrc(0xdead_beef)
        ));
        assert_eq!(validate_strict(&buf), Ok(()));
        let mut out = vec![0u8; buf.len()];
        assert_eq!(write_compound(&got, &mut out), Ok(buf.len()));
        assert_eq!(out, buf);
        // A malformed XR body is an error for that packet only.
        let mut bad = SR_SDES.to_vec();
        bad.extend_from_slice(&XR);
        bad[44 + 47] = 9; // DLRR block length past the packet
        bad.extend_from_slice(&[0x80, 201, 0, 1, 0, 0, 0, 1]);
        let got: Vec<_> = Compound::new(&bad).collect();
        assert!(matches!(got[2], Err(RtcpError::XrBlockOverrun { .. })));
        assert!(matches!(got[3], Ok(RtcpPacket::ReceiverReport(_))));
        assert!(matches!(
            validate_strict(&bad),
            Err(RtcpError::XrBlockOverrun { .. })
        ));
    }

    #[test]
    fn writer_stops_at_buffer_end() {
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: Ssrc(1),
            ..ReceiverReport::default()
        });
        let mut buf = [0u8; 12];
        let mut w = CompoundWriter::new(&mut buf);
        assert!(w.is_empty());
        assert_eq!(w.push(&rr), Ok(()));
        assert_eq!(
            w.push(&rr),
            Err(RtcpWriteError::BufferTooSmall {
                needed: 8,
                available: 4
            })
        );
        assert_eq!(w.as_bytes(), &[0x80, 201, 0, 1, 0, 0, 0, 1]);
        assert_eq!(w.finish(), 8);
    }

    proptest! {
        #[test]
        fn compound_round_trip(
            ssrc: u32,
            info: (u64, u32, u32, u32),
            cname in proptest::collection::vec(any::<u8>(), 0..=255),
            reason in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
            fb in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
            blocks in proptest::collection::vec(any::<(u32, u8, u32)>(), 0..5),
            metrics in proptest::collection::vec(arb_metrics(), 0..4),
        ) {
            let blocks: Vec<ReportBlock> = blocks
                .into_iter()
                .map(|(s, f, h)| ReportBlock { ssrc: Ssrc(s), fraction_lost: f, highest_seq: h, ..ReportBlock::default() })
                .collect();
            let fb = fb.concat();
            let items = [SdesItem::Cname(&cname)];
            let chunks = [SdesChunk::new(Ssrc(ssrc), &items)];
            let ssrcs = [Ssrc(ssrc)];
            let packets = [
                RtcpPacket::SenderReport(SenderReport {
                    ssrc: Ssrc(ssrc),
                    sender_info: SenderInfo {
                        ntp: crate::rtcp::NtpTime(info.0),
                        rtp_timestamp: info.1,
                        packet_count: info.2,
                        octet_count: info.3,
                    },
                    report_blocks: ReportBlocks::new(&blocks),
                    profile_extension: &[],
                }),
                RtcpPacket::ReceiverReport(ReceiverReport {
                    ssrc: Ssrc(ssrc),
                    report_blocks: ReportBlocks::new(&blocks),
                    profile_extension: &[],
                }),
                RtcpPacket::SourceDescription(SourceDescription::new(&chunks)),
                RtcpPacket::Unknown(Unknown { packet_type: PacketType::RTPFB, count: 1, body: &fb }),
                RtcpPacket::App(App { subtype: 3, ssrc: Ssrc(ssrc), name: *b"test", data: &fb }),
                RtcpPacket::Xr(ExtendedReport::new(Ssrc(ssrc), &metrics)),
                RtcpPacket::Bye(Bye { sources: SsrcList::new(&ssrcs), reason: reason.as_deref() }),
            ];
            let total: usize = packets.iter().map(RtcpPacket::wire_len).sum();
            let mut out = vec![0u8; total];
            prop_assert_eq!(write_compound(&packets, &mut out), Ok(total));
            let parsed: Vec<RtcpPacket> = Compound::new(&out).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&parsed[..], &packets[..]);
            prop_assert_eq!(validate_strict(&out), Ok(()));
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            for p in Compound::new(&bytes) {
                let _ = p;
            }
            let _ = validate_strict(&bytes);
        }
    }
}
