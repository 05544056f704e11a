//! Sender report, SR (RFC 3550 §6.4.1).
//!
//! ```text
//! |V=2|P|    RC   |   PT=SR=200   |             length            |
//! |                         SSRC of sender                        |
//! |              NTP timestamp, most significant word             | sender
//! |             NTP timestamp, least significant word             | info
//! |                         RTP timestamp                         |
//! |                     sender's packet count                     |
//! |                      sender's octet count                     |
//! |                 report blocks (RC x 24 bytes)                 |
//! |                  profile-specific extensions                  |
//! ```

use super::error::{RtcpError, RtcpWriteError};
use super::header::{HEADER_LEN, PacketType, Put, begin_packet};
use super::ntp::NtpTime;
use super::report_block::{REPORT_BLOCK_LEN, ReportBlocks};
use crate::rtp::Ssrc;

/// Length of the sender-info section.
pub const SENDER_INFO_LEN: usize = 20;

/// The sender-info section of an SR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SenderInfo {
    /// Wall-clock time when the report was sent.
    pub ntp: NtpTime,
    /// The same instant in the RTP timestamp units of the sender's stream.
    pub rtp_timestamp: u32,
    /// RTP data packets sent since starting transmission (mod 2^32).
    pub packet_count: u32,
    /// RTP payload octets sent since starting transmission (mod 2^32).
    pub octet_count: u32,
}

/// A sender report (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderReport<'a> {
    /// SSRC of the sender.
    pub ssrc: Ssrc,
    /// What the sender has sent.
    pub sender_info: SenderInfo,
    /// Reception reports, at most 31.
    pub report_blocks: ReportBlocks<'a>,
    /// Profile-specific extension, a whole number of 32-bit words, kept as
    /// bytes.
    pub profile_extension: &'a [u8],
}

impl SenderInfo {
    /// Decodes the 20-byte section.
    pub fn from_bytes(b: &[u8; SENDER_INFO_LEN]) -> SenderInfo {
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        SenderInfo {
            ntp: NtpTime(u64::from(word(0)) << 32 | u64::from(word(4))),
            rtp_timestamp: word(8),
            packet_count: word(12),
            octet_count: word(16),
        }
    }

    /// Appends the 20-byte section.
    pub(crate) fn write(&self, put: &mut Put<'_>) {
        put.u32(self.ntp.seconds());
        put.u32(self.ntp.fraction());
        put.u32(self.rtp_timestamp);
        put.u32(self.packet_count);
        put.u32(self.octet_count);
    }
}

impl<'a> SenderReport<'a> {
    /// Parses the body of an SR with `count` report blocks (RFC 3550
    /// §6.4.1); whatever follows the blocks is the profile extension.
    pub(crate) fn parse_body(count: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let needed = 4 + SENDER_INFO_LEN + REPORT_BLOCK_LEN * count as usize;
        let truncated = RtcpError::Truncated {
            packet_type: PacketType::SR,
            needed,
            available: body.len(),
        };
        let Some((fixed, profile_extension)) = body.split_at_checked(needed) else {
            return Err(truncated);
        };
        let Some((ssrc, rest)) = fixed.split_first_chunk::<4>() else {
            return Err(truncated);
        };
        let Some((info, blocks)) = rest.split_first_chunk::<SENDER_INFO_LEN>() else {
            return Err(truncated);
        };
        Ok(SenderReport {
            ssrc: Ssrc(u32::from_be_bytes(*ssrc)),
            sender_info: SenderInfo::from_bytes(info),
            report_blocks: ReportBlocks::from_wire(blocks),
            profile_extension,
        })
    }

    /// Bytes the packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN
            + 4
            + SENDER_INFO_LEN
            + self.report_blocks.wire_len()
            + self.profile_extension.len()
    }

    /// Writes the packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        if !self.profile_extension.len().is_multiple_of(4) {
            return Err(RtcpWriteError::Unaligned(self.profile_extension.len()));
        }
        let len = self.wire_len();
        let mut put = begin_packet(out, len, self.report_blocks.len(), PacketType::SR)?;
        put.u32(self.ssrc.0);
        self.sender_info.write(&mut put);
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
    use crate::rtcp::ntp::NtpShort;
    use crate::rtcp::report_block::tests::arb_block;
    use proptest::prelude::*;

    /// SR with one report block and a one-word profile extension, laid out
    /// by hand from the RFC 3550 §6.4.1 figure.
    pub(crate) const SR: [u8; 56] = [
        0x81, 200, 0, 13, // V=2 RC=1 PT=200 length=13 (56 bytes)
        0xde, 0xad, 0xbe, 0xef, // SSRC of sender
        0xe8, 0xf3, 0x1c, 0x00, // NTP seconds
        0x80, 0x00, 0x00, 0x00, // NTP fraction (.5)
        0x00, 0x01, 0x00, 0x00, // RTP timestamp 65536
        0x00, 0x00, 0x00, 0x64, // 100 packets
        0x00, 0x00, 0x3e, 0x80, // 16000 octets
        0x01, 0x02, 0x03, 0x04, // SSRC_1
        0x00, 0x00, 0x00, 0x03, // fraction 0, lost 3
        0x00, 0x00, 0x12, 0x34, // highest seq
        0x00, 0x00, 0x00, 0x07, // jitter
        0x00, 0x00, 0x00, 0x00, // LSR
        0x00, 0x00, 0x00, 0x00, // DLSR
        0xca, 0xfe, 0xba, 0xbe, // profile extension
    ];

    #[test]
    fn parses_hand_built_sr() {
        let f = crate::rtcp::header::split_packet(&SR).unwrap();
        let sr = SenderReport::parse_body(f.header.count, f.body).unwrap();
        assert_eq!(sr.ssrc, Ssrc(0xdead_beef));
        assert_eq!(sr.sender_info.ntp, NtpTime(0xe8f3_1c00_8000_0000));
        assert_eq!(sr.sender_info.rtp_timestamp, 65536);
        assert_eq!(sr.sender_info.packet_count, 100);
        assert_eq!(sr.sender_info.octet_count, 16000);
        let blocks: Vec<ReportBlock> = sr.report_blocks.iter().collect();
        assert_eq!(
            blocks,
            [ReportBlock {
                ssrc: Ssrc(0x0102_0304),
                fraction_lost: 0,
                cumulative_lost: 3,
                highest_seq: 0x1234,
                jitter: 7,
                lsr: NtpShort(0),
                dlsr: NtpShort(0),
            }]
        );
        assert_eq!(sr.profile_extension, &[0xca, 0xfe, 0xba, 0xbe]);
        let mut out = [0u8; 56];
        assert_eq!(sr.write(&mut out), Ok(56));
        assert_eq!(out, SR);
    }

    #[test]
    fn truncated_blocks() {
        // RC=2 but room for one block.
        let f = crate::rtcp::header::split_packet(&SR).unwrap();
        assert_eq!(
            SenderReport::parse_body(2, f.body),
            Err(RtcpError::Truncated {
                packet_type: PacketType::SR,
                needed: 72,
                available: 52
            })
        );
        assert!(matches!(
            SenderReport::parse_body(0, &f.body[..20]),
            Err(RtcpError::Truncated { .. })
        ));
    }

    #[test]
    fn write_errors() {
        let sr = SenderReport {
            profile_extension: &[1, 2, 3],
            ..SenderReport::default()
        };
        assert_eq!(sr.write(&mut [0u8; 64]), Err(RtcpWriteError::Unaligned(3)));
        let blocks = [ReportBlock::default(); 32];
        let sr = SenderReport {
            report_blocks: ReportBlocks::new(&blocks),
            ..SenderReport::default()
        };
        assert_eq!(
            sr.write(&mut [0u8; 2048]),
            Err(RtcpWriteError::CountOverflow(32))
        );
    }

    proptest! {
        #[test]
        fn sr_round_trip(
            ssrc: u32,
            info in any::<(u64, u32, u32, u32)>(),
            blocks in proptest::collection::vec(arb_block(), 0..=31),
            ext in proptest::collection::vec(any::<[u8; 4]>(), 0..4),
        ) {
            let ext: Vec<u8> = ext.concat();
            let sr = SenderReport {
                ssrc: Ssrc(ssrc),
                sender_info: SenderInfo {
                    ntp: NtpTime(info.0),
                    rtp_timestamp: info.1,
                    packet_count: info.2,
                    octet_count: info.3,
                },
                report_blocks: ReportBlocks::new(&blocks),
                profile_extension: &ext,
            };
            let mut out = vec![0u8; sr.wire_len()];
            prop_assert_eq!(sr.write(&mut out), Ok(out.len()));
            let f = crate::rtcp::header::split_packet(&out).unwrap();
            prop_assert_eq!(f.header.packet_type, PacketType::SR);
            prop_assert_eq!(SenderReport::parse_body(f.header.count, f.body), Ok(sr));
        }
    }
}
