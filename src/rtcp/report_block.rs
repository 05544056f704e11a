//! The reception report block of SR and RR packets (RFC 3550 §6.4.1) and
//! the round-trip time computed from it.
//!
//! ```text
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! |                 SSRC_1 (SSRC of first source)                 |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! | fraction lost |       cumulative number of packets lost       |
//! |           extended highest sequence number received           |
//! |                      interarrival jitter                      |
//! |                         last SR (LSR)                         |
//! |                   delay since last SR (DLSR)                  |
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! ```
//!
//! [`ReportBlocks`] is the list of blocks of one packet: either a validated
//! view over received bytes (no copy) or a slice of [`ReportBlock`]s to
//! write. Both compare, iterate and write the same way.

use std::fmt;
use std::iter::FusedIterator;
use std::slice::{ChunksExact, Iter};
use std::time::Duration;

use super::header::Put;
use super::ntp::{NtpShort, NtpTime};
use crate::rtp::Ssrc;

/// Length of one report block on the wire.
pub const REPORT_BLOCK_LEN: usize = 24;

/// Largest and smallest values of the 24-bit signed cumulative-lost field.
const LOST_MAX: i32 = 0x7f_ffff;
const LOST_MIN: i32 = -0x80_0000;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ReportBlock {
    /// The source this block reports on (`SSRC_n`).
    pub ssrc: Ssrc,
    /// Packets lost since the previous report, as a fraction of those
    /// expected, times 256 (RFC 3550 A.3).
    pub fraction_lost: u8,
    /// Cumulative packets lost: a 24-bit signed value (negative when
    /// duplicates outnumber losses). Written clamped to
    /// `-0x800000..=0x7fffff`.
    pub cumulative_lost: i32,
    /// Extended highest sequence number received: cycles in the high 16
    /// bits, the wire sequence number in the low 16 bits.
    pub highest_seq: u32,
    /// Interarrival jitter in RTP timestamp units (RFC 3550 A.8).
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR from this source,
    /// or 0 when none was received.
    pub lsr: NtpShort,
    /// Delay from receiving that SR to sending this block, in 1/65536 s
    /// (0 without an SR).
    pub dlsr: NtpShort,
}

/// The report blocks of an SR or RR packet: a zero-copy view over received
/// bytes, or a borrowed slice of blocks to write.
#[derive(Clone, Copy)]
pub struct ReportBlocks<'a>(Repr<'a>);

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// Received bytes, a whole number of 24-byte blocks.
    Wire(&'a [u8]),
    /// Blocks to write.
    Typed(&'a [ReportBlock]),
}

/// Iterator over [`ReportBlocks`].
#[derive(Debug, Clone)]
pub struct ReportBlockIter<'a>(IterRepr<'a>);

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Wire(ChunksExact<'a, u8>),
    Typed(Iter<'a, ReportBlock>),
}

impl ReportBlock {
    /// Decodes one block (RFC 3550 §6.4.1), sign-extending the 24-bit
    /// cumulative-lost field.
    pub fn from_bytes(b: &[u8; REPORT_BLOCK_LEN]) -> ReportBlock {
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        // Sign-extend 24 -> 32 bits: place the field high, shift back.
        let lost = (u32::from_be_bytes([b[5], b[6], b[7], 0]) as i32) >> 8;
        ReportBlock {
            ssrc: Ssrc(word(0)),
            fraction_lost: b[4],
            cumulative_lost: lost,
            highest_seq: word(8),
            jitter: word(12),
            lsr: NtpShort(word(16)),
            dlsr: NtpShort(word(20)),
        }
    }

    /// Encodes the block; `cumulative_lost` is clamped to 24 bits.
    pub fn to_bytes(&self) -> [u8; REPORT_BLOCK_LEN] {
        let mut out = [0u8; REPORT_BLOCK_LEN];
        let lost = self.cumulative_lost.clamp(LOST_MIN, LOST_MAX).to_be_bytes();
        let mut put = Put::new(&mut out);
        put.u32(self.ssrc.0);
        put.bytes(&[self.fraction_lost, lost[1], lost[2], lost[3]]);
        put.u32(self.highest_seq);
        put.u32(self.jitter);
        put.u32(self.lsr.0);
        put.u32(self.dlsr.0);
        out
    }

    /// Round-trip time to the reporter (RFC 3550 §6.4.1): `A - LSR - DLSR`,
    /// where `A` is the middle 32 bits of the wall-clock NTP time at which
    /// this block arrived, all modulo 2^32 in 1/65536 s.
    ///
    /// `None` when the block carries no LSR (0: the reporter has had no SR
    /// from us), or when the result is negative (clock trouble, or an LSR
    /// that is not ours).
    pub fn round_trip_time(&self, arrival: NtpTime) -> Option<Duration> {
        if self.lsr.0 == 0 {
            return None;
        }
        let rtt = arrival
            .middle()
            .0
            .wrapping_sub(self.lsr.0)
            .wrapping_sub(self.dlsr.0);
        // A wrapped difference of 2^31 or more is a negative delay.
        if rtt > i32::MAX as u32 {
            return None;
        }
        Some(NtpShort(rtt).to_duration())
    }
}

impl<'a> ReportBlocks<'a> {
    /// No blocks.
    pub const EMPTY: ReportBlocks<'static> = ReportBlocks(Repr::Typed(&[]));

    /// Blocks to write.
    pub const fn new(blocks: &'a [ReportBlock]) -> Self {
        ReportBlocks(Repr::Typed(blocks))
    }

    /// A view over received bytes; `bytes.len()` must be a multiple of 24
    /// (a trailing partial block is ignored).
    pub(crate) const fn from_wire(bytes: &'a [u8]) -> Self {
        ReportBlocks(Repr::Wire(bytes))
    }

    /// Number of blocks.
    pub const fn len(&self) -> usize {
        match self.0 {
            Repr::Wire(b) => b.len() / REPORT_BLOCK_LEN,
            Repr::Typed(t) => t.len(),
        }
    }

    /// True without blocks.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The blocks, in packet order.
    pub fn iter(&self) -> ReportBlockIter<'a> {
        ReportBlockIter(match self.0 {
            Repr::Wire(b) => IterRepr::Wire(b.chunks_exact(REPORT_BLOCK_LEN)),
            Repr::Typed(t) => IterRepr::Typed(t.iter()),
        })
    }

    /// Bytes the blocks take on the wire.
    pub const fn wire_len(&self) -> usize {
        self.len() * REPORT_BLOCK_LEN
    }

    /// Appends the blocks.
    pub(crate) fn write(&self, put: &mut Put<'_>) {
        match self.0 {
            Repr::Wire(b) => put.bytes(b.get(..self.wire_len()).unwrap_or_default()),
            Repr::Typed(t) => t.iter().for_each(|blk| put.bytes(&blk.to_bytes())),
        }
    }
}

impl Iterator for ReportBlockIter<'_> {
    type Item = ReportBlock;

    fn next(&mut self) -> Option<ReportBlock> {
        match &mut self.0 {
            IterRepr::Wire(chunks) => chunks
                .next()
                .and_then(|c| c.first_chunk::<REPORT_BLOCK_LEN>())
                .map(ReportBlock::from_bytes),
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

impl ExactSizeIterator for ReportBlockIter<'_> {}

impl FusedIterator for ReportBlockIter<'_> {}

impl<'a> IntoIterator for ReportBlocks<'a> {
    type Item = ReportBlock;
    type IntoIter = ReportBlockIter<'a>;

    fn into_iter(self) -> ReportBlockIter<'a> {
        self.iter()
    }
}

impl<'a> From<&'a [ReportBlock]> for ReportBlocks<'a> {
    fn from(blocks: &'a [ReportBlock]) -> Self {
        ReportBlocks::new(blocks)
    }
}

impl Default for ReportBlocks<'_> {
    fn default() -> Self {
        ReportBlocks::EMPTY
    }
}

impl PartialEq for ReportBlocks<'_> {
    /// Equal when the blocks are, however each side is stored.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for ReportBlocks<'_> {}

impl fmt::Debug for ReportBlocks<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A block laid out by hand from the RFC 3550 §6.4.1 figure.
    const BLOCK: [u8; 24] = [
        0x11, 0x22, 0x33, 0x44, // SSRC_1
        25, 0xff, 0xff, 0xfe, // fraction 25/256, cumulative lost -2
        0x00, 0x02, 0x00, 0x05, // 2 cycles, seq 5
        0x00, 0x00, 0x01, 0x00, // jitter 256
        0xb7, 0x05, 0x20, 0x00, // LSR
        0x00, 0x05, 0x40, 0x00, // DLSR 5.25 s
    ];

    #[test]
    fn decodes_rfc_layout() {
        let b = ReportBlock::from_bytes(&BLOCK);
        assert_eq!(b.ssrc, Ssrc(0x1122_3344));
        assert_eq!(b.fraction_lost, 25);
        assert_eq!(b.cumulative_lost, -2);
        assert_eq!(b.highest_seq, 2 << 16 | 5);
        assert_eq!(b.jitter, 256);
        assert_eq!(b.lsr, NtpShort(0xb705_2000));
        assert_eq!(b.dlsr.to_duration(), Duration::from_millis(5250));
        assert_eq!(b.to_bytes(), BLOCK);
    }

    #[test]
    fn cumulative_lost_clamps_to_24_bits() {
        let mut b = ReportBlock {
            cumulative_lost: 10_000_000,
            ..ReportBlock::default()
        };
        assert_eq!(
            ReportBlock::from_bytes(&b.to_bytes()).cumulative_lost,
            0x7f_ffff
        );
        b.cumulative_lost = -10_000_000;
        assert_eq!(
            ReportBlock::from_bytes(&b.to_bytes()).cumulative_lost,
            -0x80_0000
        );
    }

    #[test]
    fn rtt_rfc3550_example() {
        // RFC 3550 §6.4.1 figure: A = b710:8000 (46864.500 s),
        // LSR = b705:2000 (46853.125 s), DLSR = 0005:4000 (5.250 s),
        // delay = 0006:2000 (6.125 s).
        let b = ReportBlock::from_bytes(&BLOCK);
        let arrival = NtpTime(0xb710_8000 << 16);
        assert_eq!(
            b.round_trip_time(arrival),
            Some(Duration::from_millis(6125))
        );
        // No LSR, no RTT.
        let none = ReportBlock {
            lsr: NtpShort(0),
            ..b
        };
        assert_eq!(none.round_trip_time(arrival), None);
        // Arrival before LSR + DLSR: negative, no RTT.
        assert_eq!(b.round_trip_time(NtpTime(0xb705_2000 << 16)), None);
        // Across the 16-bit seconds wrap of the middle word.
        let w = ReportBlock {
            lsr: NtpShort(0xffff_0000),
            dlsr: NtpShort(0x0000_8000),
            ..b
        };
        assert_eq!(
            w.round_trip_time(NtpTime(0x0001_0000_0000_0000 | 0x0001_0000 << 16)),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn wire_and_typed_lists_compare_equal() {
        let typed = [ReportBlock::from_bytes(&BLOCK)];
        let mut two = BLOCK.to_vec();
        two.extend_from_slice(&BLOCK);
        assert_eq!(ReportBlocks::from_wire(&BLOCK), ReportBlocks::new(&typed));
        assert_ne!(ReportBlocks::from_wire(&two), ReportBlocks::new(&typed));
        assert_eq!(ReportBlocks::from_wire(&two).iter().len(), 2);
        assert!(ReportBlocks::EMPTY.is_empty());
    }

    pub(crate) fn arb_block() -> impl Strategy<Value = ReportBlock> {
        (
            any::<u32>(),
            any::<u8>(),
            LOST_MIN..=LOST_MAX,
            any::<[u32; 4]>(),
        )
            .prop_map(
                |(ssrc, fraction_lost, cumulative_lost, [highest_seq, jitter, lsr, dlsr])| {
                    ReportBlock {
                        ssrc: Ssrc(ssrc),
                        fraction_lost,
                        cumulative_lost,
                        highest_seq,
                        jitter,
                        lsr: NtpShort(lsr),
                        dlsr: NtpShort(dlsr),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn block_round_trip(b in arb_block()) {
            prop_assert_eq!(ReportBlock::from_bytes(&b.to_bytes()), b);
        }
    }
}
