//! Receiver report, RR (RFC 3550 §6.4.2).
//!
//! ```text
//! |V=2|P|    RC   |   PT=RR=201   |             length            |
//! |                     SSRC of packet sender                     |
//! |                 report blocks (RC x 24 bytes)                 |
//! |                  profile-specific extensions                  |
//! ```
//!
//! An RR with no blocks (RC = 0) is legal and common: a receiver that has
//! heard no one, or a reduced-size RTCP packet (RFC 5506).

use super::error::{RtcpError, RtcpWriteError};
use super::header::{HEADER_LEN, PacketType, begin_packet};
use super::report_block::{REPORT_BLOCK_LEN, ReportBlocks};
use crate::rtp::Ssrc;

/// A receiver report (RFC 3550 §6.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceiverReport<'a> {
    /// SSRC of the packet sender.
    pub ssrc: Ssrc,
    /// Reception reports, at most 31.
    pub report_blocks: ReportBlocks<'a>,
    /// Profile-specific extension, a whole number of 32-bit words, kept as
    /// bytes.
    pub profile_extension: &'a [u8],
}

impl<'a> ReceiverReport<'a> {
    /// Parses the body of an RR with `count` report blocks (RFC 3550
    /// §6.4.2); whatever follows the blocks is the profile extension.
    pub(crate) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let needed = 4 + REPORT_BLOCK_LEN * count as usize;
        let truncated = RtcpError::Truncated {
            packet_type: PacketType::RR,
            needed,
            available: body.len(),
        };
        let Some((fixed, profile_extension)) = body.split_at_checked(needed) else {
            return Err(truncated);
        };
        let Some((ssrc, blocks)) = fixed.split_first_chunk::<4>() else {
            return Err(truncated);
        };
        Ok(ReceiverReport {
            ssrc: Ssrc(u32::from_be_bytes(*ssrc)),
            report_blocks: ReportBlocks::from_wire(blocks),
            profile_extension,
        })
    }

    /// Bytes the packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 4 + self.report_blocks.wire_len() + self.profile_extension.len()
    }

    /// Writes the packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        if !self.profile_extension.len().is_multiple_of(4) {
            return Err(RtcpWriteError::Unaligned(self.profile_extension.len()));
        }
        let len = self.wire_len();
        let mut put = begin_packet(out, len, self.report_blocks.len(), PacketType::RR)?;
        put.u32(self.ssrc.0);
        self.report_blocks.write(&mut put);
        put.bytes(self.profile_extension);
        debug_assert_eq!(put.position(), len);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::ReportBlock;
    use crate::rtcp::header::split_packet;
    use crate::rtcp::ntp::NtpShort;
    use crate::rtcp::report_block::tests::arb_block;
    use proptest::prelude::*;

    #[test]
    fn parses_hand_built_rr() {
        let rr = [
            0x81, 201, 0, 7, // V=2 RC=1 PT=201 length=7 (32 bytes)
            0x00, 0x00, 0x00, 0x2a, // SSRC of packet sender
            0x01, 0x02, 0x03, 0x04, // SSRC_1
            0x19, 0x80, 0x00, 0x00, // fraction 25, lost -8388608
            0x00, 0x01, 0xff, 0xff, // 1 cycle, seq 65535
            0x00, 0x00, 0x00, 0xa0, // jitter 160
            0x12, 0x34, 0x56, 0x78, // LSR
            0x00, 0x01, 0x00, 0x00, // DLSR 1 s
        ];
        let f = split_packet(&rr).unwrap();
        let parsed = ReceiverReport::parse_body(f.header.count, f.body).unwrap();
        assert_eq!(parsed.ssrc, Ssrc(42));
        assert!(parsed.profile_extension.is_empty());
        let b: Vec<ReportBlock> = parsed.report_blocks.iter().collect();
        assert_eq!(
            b,
            [ReportBlock {
                ssrc: Ssrc(0x0102_0304),
                fraction_lost: 25,
                cumulative_lost: -0x80_0000,
                highest_seq: 0x0001_ffff,
                jitter: 160,
                lsr: NtpShort(0x1234_5678),
                dlsr: NtpShort(0x0001_0000),
            }]
        );
        let mut out = [0u8; 32];
        assert_eq!(parsed.write(&mut out), Ok(32));
        assert_eq!(out, rr);
    }

    #[test]
    fn empty_rr_and_truncation() {
        // Reduced-size style empty RR: header + SSRC.
        let f = split_packet(&[0x80, 201, 0, 1, 0, 0, 0, 9]).unwrap();
        let rr = ReceiverReport::parse_body(f.header.count, f.body).unwrap();
        assert_eq!(rr.ssrc, Ssrc(9));
        assert!(rr.report_blocks.is_empty());
        // Header only: no SSRC.
        assert_eq!(
            ReceiverReport::parse_body(0, &[]),
            Err(RtcpError::Truncated {
                packet_type: PacketType::RR,
                needed: 4,
                available: 0
            })
        );
        // RC=1 with only the SSRC.
        assert_eq!(
            ReceiverReport::parse_body(1, &[0, 0, 0, 9]),
            Err(RtcpError::Truncated {
                packet_type: PacketType::RR,
                needed: 28,
                available: 4
            })
        );
    }

    proptest! {
        #[test]
        fn rr_round_trip(
            ssrc: u32,
            blocks in proptest::collection::vec(arb_block(), 0..=31),
            ext in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
        ) {
            let ext: Vec<u8> = ext.concat();
            let rr = ReceiverReport {
                ssrc: Ssrc(ssrc),
                report_blocks: ReportBlocks::new(&blocks),
                profile_extension: &ext,
            };
            let mut out = vec![0u8; rr.wire_len()];
            prop_assert_eq!(rr.write(&mut out), Ok(out.len()));
            let f = split_packet(&out).unwrap();
            prop_assert_eq!(f.header.packet_type, PacketType::RR);
            prop_assert_eq!(ReceiverReport::parse_body(f.header.count, f.body), Ok(rr));
        }
    }
}
