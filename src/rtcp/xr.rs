//! Extended report, XR (RFC 3611 §2), and its VoIP Metrics report block
//! (RFC 3611 §4.7).
//!
//! ```text
//! |V=2|P|reserved |   PT=XR=207   |             length            |
//! |                              SSRC                             |
//! :                         report blocks                         :
//! ```
//!
//! Each report block (RFC 3611 §3) starts with a 4-byte header:
//!
//! ```text
//! |      BT       | type-specific |         block length          |
//! :             type-specific block contents                      :
//! ```
//!
//! where `block length` is the block's length in 32-bit words minus one,
//! header included. The VoIP Metrics block (BT=7, RFC 3611 §4.7) is
//! interpreted as [`VoipMetrics`]; every other block type is kept as bytes
//! ([`XrBlock::Other`]).
//!
//! Contract: [`ExtendedReport`] is either a zero-copy view over received
//! bytes whose block framing was checked once at parse time, or a borrowed
//! slice of [`VoipMetrics`] to send; both compare, iterate and write the
//! same way. Parsing never panics; a block that runs past the packet, or a
//! VoIP Metrics block whose length is not 8, is a typed [`RtcpError`].

use std::fmt;
use std::iter::FusedIterator;
use std::slice::Iter;
use std::time::Duration;

use super::error::{RtcpError, RtcpWriteError};
use super::header::{HEADER_LEN, PacketType, Put, begin_packet};
use crate::rtp::Ssrc;

/// Length of an XR report block header (RFC 3611 §3).
pub const XR_BLOCK_HEADER_LEN: usize = 4;
/// Block type of the VoIP Metrics report block (RFC 3611 §4.7).
pub const VOIP_METRICS_BLOCK_TYPE: u8 = 7;
/// Length of a VoIP Metrics report block on the wire, header included
/// (RFC 3611 §4.7: block length = 8, i.e. 9 words).
pub const VOIP_METRICS_LEN: usize = 36;
/// The `block length` field of a VoIP Metrics block (RFC 3611 §4.7).
const VOIP_METRICS_BLOCK_LENGTH: u16 = 8;

/// Packet-loss concealment in use (RFC 3611 §4.7.6, `PLC`, 2 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Plc {
    /// `00`: unspecified.
    #[default]
    Unspecified,
    /// `01`: disabled.
    Disabled,
    /// `10`: an enhanced (e.g. interpolating) method.
    Enhanced,
    /// `11`: a standard method (e.g. the one of ITU-T G.711 Appendix I).
    Standard,
}

/// Jitter-buffer kind (RFC 3611 §4.7.6, `JBA`, 2 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum JitterBufferMode {
    /// `00`: unknown.
    #[default]
    Unknown,
    /// `01`: reserved by RFC 3611, kept as received.
    Reserved,
    /// `10`: fixed-size (non-adaptive).
    NonAdaptive,
    /// `11`: adaptive.
    Adaptive,
}

/// The receiver configuration byte of a VoIP Metrics block (RFC 3611
/// §4.7.6): `PLC` in bits 7-6, `JBA` in bits 5-4, `JB rate` in bits 3-0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RxConfig {
    /// Packet-loss concealment.
    pub plc: Plc,
    /// Jitter-buffer kind.
    pub jba: JitterBufferMode,
    /// Jitter-buffer adjustment rate, 0 to 15 (RFC 3611 §4.7.6: 0 for a
    /// fixed buffer, 1 for the fastest, 15 for the slowest adaptation);
    /// written saturated to 15.
    pub jb_rate: u8,
}

/// One VoIP Metrics report block (RFC 3611 §4.7).
///
/// ```text
/// |     BT=7      |   reserved    |       block length = 8        |
/// |                        SSRC of source                         |
/// |   loss rate   | discard rate  | burst density |  gap density  |
/// |       burst duration          |         gap duration          |
/// |     round trip delay          |       end system delay        |
/// | signal level  |  noise level  |     RERL      |     Gmin      |
/// |   R factor    | ext. R factor |    MOS-LQ     |    MOS-CQ     |
/// |   RX config   |   reserved    |          JB nominal           |
/// |          JB maximum           |          JB abs max           |
/// ```
///
/// Every field has its wire width, so a block always encodes; the helpers
/// [`VoipMetrics::fraction`] and [`VoipMetrics::millis`] saturate wider
/// values into a field. Fields whose value is not known take
/// [`VoipMetrics::UNAVAILABLE`] where RFC 3611 defines it (levels, RERL,
/// R factors, MOS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VoipMetrics {
    /// The source this block reports on.
    pub ssrc: Ssrc,
    /// Lost packets as a fraction of those expected, times 256
    /// (§4.7.1).
    pub loss_rate: u8,
    /// Packets discarded on arrival (late or early, jitter-buffer
    /// overflow) as a fraction of those expected, times 256 (§4.7.1).
    pub discard_rate: u8,
    /// Fraction of the packets inside bursts that were lost or discarded,
    /// times 256 (§4.7.2).
    pub burst_density: u8,
    /// Fraction of the packets inside gaps that were lost or discarded,
    /// times 256 (§4.7.2).
    pub gap_density: u8,
    /// Mean burst duration in milliseconds (§4.7.2).
    pub burst_duration: u16,
    /// Mean gap duration in milliseconds (§4.7.2).
    pub gap_duration: u16,
    /// Latest round-trip time between the RTP interfaces in
    /// milliseconds (§4.7.3).
    pub round_trip_delay: u16,
    /// Latest estimate of the end-system delay (encoding, packetisation,
    /// jitter buffer, decoding, playout) in milliseconds (§4.7.3).
    pub end_system_delay: u16,
    /// Voice signal level in dBm0, or 127 when unavailable (§4.7.4).
    pub signal_level: i8,
    /// Noise level during silence in dBm0, or 127 when unavailable
    /// (§4.7.4).
    pub noise_level: i8,
    /// Residual echo return loss in dB, or 127 when unavailable (§4.7.4).
    pub rerl: u8,
    /// The gap threshold used for the burst metrics, in packets (§4.7.2;
    /// 16 recommended).
    pub gmin: u8,
    /// Listening-conversational R factor 0-100 (ITU-T G.107), or 127 when
    /// unavailable (§4.7.5).
    pub r_factor: u8,
    /// External R factor for the segment beyond this endpoint, or 127 when
    /// unavailable (§4.7.5).
    pub ext_r_factor: u8,
    /// Listening-quality MOS times 10 (10-50), or 127 when unavailable
    /// (§4.7.5).
    pub mos_lq: u8,
    /// Conversational-quality MOS times 10 (10-50), or 127 when
    /// unavailable (§4.7.5).
    pub mos_cq: u8,
    /// Receiver configuration (§4.7.6).
    pub rx_config: RxConfig,
    /// Nominal jitter-buffer delay in milliseconds (§4.7.7).
    pub jb_nominal: u16,
    /// Current maximum jitter-buffer delay in milliseconds (§4.7.7).
    pub jb_maximum: u16,
    /// Absolute maximum the jitter buffer may grow to, in milliseconds
    /// (§4.7.7).
    pub jb_abs_max: u16,
}

/// One report block of an [`ExtendedReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XrBlock<'a> {
    /// A VoIP Metrics block (BT=7, RFC 3611 §4.7).
    VoipMetrics(VoipMetrics),
    /// Any other block type, kept as bytes (RFC 3611 §4.1-§4.6 and later
    /// registrations).
    Other {
        /// `BT`.
        block_type: u8,
        /// The type-specific octet of the block header.
        type_specific: u8,
        /// The block contents after its 4-byte header.
        body: &'a [u8],
    },
}

/// An extended report (RFC 3611 §2): the reporter's SSRC and its report
/// blocks. A zero-copy view over received bytes, or a borrowed slice of
/// [`VoipMetrics`] blocks to write.
#[derive(Clone, Copy)]
pub struct ExtendedReport<'a> {
    ssrc: Ssrc,
    blocks: Repr<'a>,
}

#[derive(Clone, Copy)]
enum Repr<'a> {
    /// Received block bytes whose framing was checked by `check_blocks`.
    Wire(&'a [u8]),
    /// Blocks to write.
    Typed(&'a [VoipMetrics]),
}

/// Iterator over the blocks of an [`ExtendedReport`].
#[derive(Debug, Clone)]
pub struct XrBlockIter<'a>(IterRepr<'a>);

#[derive(Debug, Clone)]
enum IterRepr<'a> {
    Wire(&'a [u8]),
    Typed(Iter<'a, VoipMetrics>),
}

impl Plc {
    /// The 2-bit code.
    const fn code(self) -> u8 {
        match self {
            Plc::Unspecified => 0,
            Plc::Disabled => 1,
            Plc::Enhanced => 2,
            Plc::Standard => 3,
        }
    }

    /// From the low 2 bits of `v`.
    const fn from_code(v: u8) -> Plc {
        match v & 3 {
            0 => Plc::Unspecified,
            1 => Plc::Disabled,
            2 => Plc::Enhanced,
            _ => Plc::Standard,
        }
    }
}

impl JitterBufferMode {
    /// The 2-bit code.
    const fn code(self) -> u8 {
        match self {
            JitterBufferMode::Unknown => 0,
            JitterBufferMode::Reserved => 1,
            JitterBufferMode::NonAdaptive => 2,
            JitterBufferMode::Adaptive => 3,
        }
    }

    /// From the low 2 bits of `v`.
    const fn from_code(v: u8) -> JitterBufferMode {
        match v & 3 {
            0 => JitterBufferMode::Unknown,
            1 => JitterBufferMode::Reserved,
            2 => JitterBufferMode::NonAdaptive,
            _ => JitterBufferMode::Adaptive,
        }
    }
}

impl RxConfig {
    /// Largest value of the 4-bit `JB rate` field.
    pub const MAX_JB_RATE: u8 = 15;

    /// Decodes the configuration byte (RFC 3611 §4.7.6).
    pub const fn from_byte(b: u8) -> RxConfig {
        RxConfig {
            plc: Plc::from_code(b >> 6),
            jba: JitterBufferMode::from_code(b >> 4),
            jb_rate: b & 0x0f,
        }
    }

    /// Encodes the configuration byte; `jb_rate` saturates at 15.
    pub const fn to_byte(&self) -> u8 {
        let rate = if self.jb_rate > Self::MAX_JB_RATE {
            Self::MAX_JB_RATE
        } else {
            self.jb_rate
        };
        self.plc.code() << 6 | self.jba.code() << 4 | rate
    }
}

impl VoipMetrics {
    /// The "unavailable" value of the level, RERL, R-factor and MOS fields
    /// (RFC 3611 §4.7.4, §4.7.5).
    pub const UNAVAILABLE: u8 = 127;
    /// [`VoipMetrics::UNAVAILABLE`] for the signed level fields.
    pub const LEVEL_UNAVAILABLE: i8 = 127;
    /// The recommended gap threshold (RFC 3611 §4.7.2).
    pub const GMIN_DEFAULT: u8 = 16;

    /// A block on `ssrc` with every measurement zero and every field that
    /// has an "unavailable" value set to it.
    pub const fn unavailable(ssrc: Ssrc) -> VoipMetrics {
        VoipMetrics {
            ssrc,
            loss_rate: 0,
            discard_rate: 0,
            burst_density: 0,
            gap_density: 0,
            burst_duration: 0,
            gap_duration: 0,
            round_trip_delay: 0,
            end_system_delay: 0,
            signal_level: Self::LEVEL_UNAVAILABLE,
            noise_level: Self::LEVEL_UNAVAILABLE,
            rerl: Self::UNAVAILABLE,
            gmin: Self::GMIN_DEFAULT,
            r_factor: Self::UNAVAILABLE,
            ext_r_factor: Self::UNAVAILABLE,
            mos_lq: Self::UNAVAILABLE,
            mos_cq: Self::UNAVAILABLE,
            rx_config: RxConfig {
                plc: Plc::Unspecified,
                jba: JitterBufferMode::Unknown,
                jb_rate: 0,
            },
            jb_nominal: 0,
            jb_maximum: 0,
            jb_abs_max: 0,
        }
    }

    /// A fraction 0.0-1.0 as the 8-bit fixed-point value of the rate and
    /// density fields (binary point at the left edge, RFC 3611 §4.7.1),
    /// truncated; values at or above 255/256 saturate at 255, negative
    /// values and NaN give 0.
    pub fn fraction(f: f64) -> u8 {
        // `as` saturates float-to-int conversions and maps NaN to 0.
        (f * 256.0).clamp(0.0, 255.0) as u8
    }

    /// A duration in whole milliseconds for the 16-bit delay and duration
    /// fields, saturating at 65535 ms.
    pub fn millis(d: Duration) -> u16 {
        u16::try_from(d.as_millis()).unwrap_or(u16::MAX)
    }

    /// Decodes the 32 bytes after the block header (RFC 3611 §4.7); the
    /// two reserved octets are ignored.
    pub fn from_body(b: &[u8; VOIP_METRICS_LEN - XR_BLOCK_HEADER_LEN]) -> VoipMetrics {
        let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
        VoipMetrics {
            ssrc: Ssrc(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            loss_rate: b[4],
            discard_rate: b[5],
            burst_density: b[6],
            gap_density: b[7],
            burst_duration: u16_at(8),
            gap_duration: u16_at(10),
            round_trip_delay: u16_at(12),
            end_system_delay: u16_at(14),
            signal_level: b[16] as i8,
            noise_level: b[17] as i8,
            rerl: b[18],
            gmin: b[19],
            r_factor: b[20],
            ext_r_factor: b[21],
            mos_lq: b[22],
            mos_cq: b[23],
            rx_config: RxConfig::from_byte(b[24]),
            // b[25] reserved.
            jb_nominal: u16_at(26),
            jb_maximum: u16_at(28),
            jb_abs_max: u16_at(30),
        }
    }

    /// Encodes the whole 36-byte block, header included; reserved octets
    /// are zero.
    pub fn to_bytes(&self) -> [u8; VOIP_METRICS_LEN] {
        let mut out = [0u8; VOIP_METRICS_LEN];
        let mut put = Put::new(&mut out);
        put.u8(VOIP_METRICS_BLOCK_TYPE);
        put.u8(0);
        put.bytes(&VOIP_METRICS_BLOCK_LENGTH.to_be_bytes());
        put.u32(self.ssrc.0);
        put.bytes(&[
            self.loss_rate,
            self.discard_rate,
            self.burst_density,
            self.gap_density,
        ]);
        put.bytes(&self.burst_duration.to_be_bytes());
        put.bytes(&self.gap_duration.to_be_bytes());
        put.bytes(&self.round_trip_delay.to_be_bytes());
        put.bytes(&self.end_system_delay.to_be_bytes());
        put.bytes(&[
            self.signal_level as u8,
            self.noise_level as u8,
            self.rerl,
            self.gmin,
            self.r_factor,
            self.ext_r_factor,
            self.mos_lq,
            self.mos_cq,
            self.rx_config.to_byte(),
            0,
        ]);
        put.bytes(&self.jb_nominal.to_be_bytes());
        put.bytes(&self.jb_maximum.to_be_bytes());
        put.bytes(&self.jb_abs_max.to_be_bytes());
        out
    }
}

impl<'a> ExtendedReport<'a> {
    /// An XR from `ssrc` carrying `blocks` (RFC 3611 §2, §4.7).
    pub const fn new(ssrc: Ssrc, blocks: &'a [VoipMetrics]) -> Self {
        ExtendedReport {
            ssrc,
            blocks: Repr::Typed(blocks),
        }
    }

    /// Parses the body of an XR packet (RFC 3611 §2): the reporter SSRC,
    /// then report blocks up to the end of the packet, each checked to fit.
    pub(crate) fn parse_body(body: &'a [u8]) -> Result<Self, RtcpError> {
        let Some((ssrc, blocks)) = body.split_first_chunk::<4>() else {
            return Err(RtcpError::Truncated {
                packet_type: PacketType::XR,
                needed: 4,
                available: body.len(),
            });
        };
        check_blocks(blocks)?;
        Ok(ExtendedReport {
            ssrc: Ssrc(u32::from_be_bytes(*ssrc)),
            blocks: Repr::Wire(blocks),
        })
    }

    /// SSRC of the reporter (the packet sender).
    pub const fn ssrc(&self) -> Ssrc {
        self.ssrc
    }

    /// The report blocks, in packet order.
    pub fn blocks(&self) -> XrBlockIter<'a> {
        XrBlockIter(match self.blocks {
            Repr::Wire(b) => IterRepr::Wire(b),
            Repr::Typed(t) => IterRepr::Typed(t.iter()),
        })
    }

    /// The VoIP Metrics blocks, in packet order, skipping other types.
    pub fn voip_metrics(&self) -> impl Iterator<Item = VoipMetrics> + use<'a> {
        self.blocks().filter_map(|b| match b {
            XrBlock::VoipMetrics(m) => Some(m),
            XrBlock::Other { .. } => None,
        })
    }

    /// Bytes the report blocks take on the wire.
    fn blocks_len(&self) -> usize {
        match self.blocks {
            Repr::Wire(b) => b.len(),
            Repr::Typed(t) => t.len() * VOIP_METRICS_LEN,
        }
    }

    /// Bytes the packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 4 + self.blocks_len()
    }

    /// Writes the packet into `out`; returns its length. The 5 reserved
    /// header bits are written as zero (RFC 3611 §2). Received blocks are
    /// copied byte for byte.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        let len = self.wire_len();
        let mut put = begin_packet(out, len, 0, PacketType::XR)?;
        put.u32(self.ssrc.0);
        match self.blocks {
            Repr::Wire(b) => put.bytes(b),
            Repr::Typed(t) => t.iter().for_each(|m| put.bytes(&m.to_bytes())),
        }
        debug_assert_eq!(put.position(), len);
        Ok(len)
    }
}

/// One report block cut out by [`split_block`].
struct RawBlock<'a> {
    /// `BT`.
    block_type: u8,
    /// The type-specific octet.
    type_specific: u8,
    /// The contents after the 4-byte block header.
    body: &'a [u8],
    /// The bytes after the block.
    rest: &'a [u8],
}

/// Cuts the first report block off `buf` (RFC 3611 §3).
fn split_block(buf: &[u8]) -> Result<RawBlock<'_>, RtcpError> {
    let Some((&[block_type, type_specific, l0, l1], rest)) =
        buf.split_first_chunk::<XR_BLOCK_HEADER_LEN>()
    else {
        return Err(RtcpError::XrBlockOverrun {
            block_type: buf.first().copied().unwrap_or(0),
            declared: XR_BLOCK_HEADER_LEN,
            available: buf.len(),
        });
    };
    let body_len = 4 * usize::from(u16::from_be_bytes([l0, l1]));
    let Some((body, after)) = rest.split_at_checked(body_len) else {
        return Err(RtcpError::XrBlockOverrun {
            block_type,
            declared: XR_BLOCK_HEADER_LEN + body_len,
            available: buf.len(),
        });
    };
    if block_type == VOIP_METRICS_BLOCK_TYPE && body_len != VOIP_METRICS_LEN - XR_BLOCK_HEADER_LEN {
        return Err(RtcpError::XrBlockLength {
            block_type,
            length: u16::from_be_bytes([l0, l1]),
        });
    }
    Ok(RawBlock {
        block_type,
        type_specific,
        body,
        rest: after,
    })
}

/// Checks that the report blocks tile `blocks` exactly.
fn check_blocks(mut blocks: &[u8]) -> Result<(), RtcpError> {
    while !blocks.is_empty() {
        blocks = split_block(blocks)?.rest;
    }
    Ok(())
}

impl<'a> Iterator for XrBlockIter<'a> {
    type Item = XrBlock<'a>;

    fn next(&mut self) -> Option<XrBlock<'a>> {
        match &mut self.0 {
            IterRepr::Typed(it) => it.next().copied().map(XrBlock::VoipMetrics),
            IterRepr::Wire(rest) => {
                // The framing was checked at parse time; an error here
                // cannot happen and would only end the iteration.
                let Ok(block) = split_block(rest) else {
                    *rest = &[];
                    return None;
                };
                *rest = block.rest;
                if block.block_type != VOIP_METRICS_BLOCK_TYPE {
                    return Some(XrBlock::Other {
                        block_type: block.block_type,
                        type_specific: block.type_specific,
                        body: block.body,
                    });
                }
                // `split_block` checked the length of a VoIP Metrics block.
                let Some(body) = block.body.first_chunk() else {
                    *rest = &[];
                    return None;
                };
                Some(XrBlock::VoipMetrics(VoipMetrics::from_body(body)))
            }
        }
    }
}

impl FusedIterator for XrBlockIter<'_> {}

impl PartialEq for ExtendedReport<'_> {
    /// Equal when the SSRCs and the blocks are, however each side is
    /// stored.
    fn eq(&self, other: &Self) -> bool {
        self.ssrc == other.ssrc && self.blocks().eq(other.blocks())
    }
}

impl Eq for ExtendedReport<'_> {}

impl fmt::Debug for ExtendedReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedReport")
            .field("ssrc", &self.ssrc)
            .field("blocks", &DebugBlocks(self))
            .finish()
    }
}

/// Lists the blocks of an XR for `Debug`.
struct DebugBlocks<'r, 'a>(&'r ExtendedReport<'a>);

impl fmt::Debug for DebugBlocks<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.blocks()).finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::rtcp::header::split_packet;
    use proptest::prelude::*;

    /// An XR with one VoIP Metrics block and one DLRR block (RFC 3611
    /// §4.5, kept opaque), laid out by hand from the RFC 3611 §2, §4.7 and
    /// §4.5 figures.
    pub(crate) const XR: [u8; 56] = [
        0x80, 207, 0, 13, // V=2 reserved=0 PT=207 length=13 (56 bytes)
        0x12, 0x34, 0x56, 0x78, // SSRC of the reporter
        7, 0, 0, 8, // BT=7 reserved block length=8
        0xde, 0xad, 0xbe, 0xef, // SSRC of source
        13, 2, 64, 5, // loss 13/256, discard 2/256, burst density 64, gap density 5
        0x00, 0x78, 0x07, 0xd0, // burst duration 120 ms, gap duration 2000 ms
        0x00, 0x50, 0x00, 0x46, // round trip 80 ms, end system 70 ms
        0xec, 0xba, 127, 16, // signal -20 dBm0, noise -70 dBm0, RERL n/a, Gmin 16
        90, 127, 43, 41, // R 90, ext R n/a, MOS-LQ 4.3, MOS-CQ 4.1
        0xf5, 0, 0x00, 0x28, // RX config: PLC 11, JBA 11, rate 5; JB nominal 40 ms
        0x00, 0x78, 0x01, 0xf4, // JB maximum 120 ms, JB abs max 500 ms
        5, 0, 0, 2, // BT=5 (DLRR) length=2
        0xca, 0xfe, 0xba, 0xbe, // DLRR body, not interpreted
        1, 2, 3, 4, //
    ];

    fn metrics() -> VoipMetrics {
        VoipMetrics {
            ssrc: Ssrc(0xdead_beef),
            loss_rate: 13,
            discard_rate: 2,
            burst_density: 64,
            gap_density: 5,
            burst_duration: 120,
            gap_duration: 2000,
            round_trip_delay: 80,
            end_system_delay: 70,
            signal_level: -20,
            noise_level: -70,
            rerl: 127,
            gmin: 16,
            r_factor: 90,
            ext_r_factor: 127,
            mos_lq: 43,
            mos_cq: 41,
            rx_config: RxConfig {
                plc: Plc::Standard,
                jba: JitterBufferMode::Adaptive,
                jb_rate: 5,
            },
            jb_nominal: 40,
            jb_maximum: 120,
            jb_abs_max: 500,
        }
    }

    fn parse(bytes: &[u8]) -> Result<ExtendedReport<'_>, RtcpError> {
        let f = split_packet(bytes)?;
        assert_eq!(f.header.packet_type, PacketType::XR);
        ExtendedReport::parse_body(f.body)
    }

    #[test]
    fn parses_hand_built_xr() {
        let xr = parse(&XR).unwrap();
        assert_eq!(xr.ssrc(), Ssrc(0x1234_5678));
        let blocks: Vec<XrBlock> = xr.blocks().collect();
        assert_eq!(
            blocks,
            [
                XrBlock::VoipMetrics(metrics()),
                XrBlock::Other {
                    block_type: 5,
                    type_specific: 0,
                    body: &[0xca, 0xfe, 0xba, 0xbe, 1, 2, 3, 4],
                },
            ]
        );
        assert_eq!(xr.voip_metrics().collect::<Vec<_>>(), [metrics()]);
        assert_eq!(xr.wire_len(), 56);
        let mut out = [0u8; 56];
        assert_eq!(xr.write(&mut out), Ok(56));
        assert_eq!(out, XR);
    }

    #[test]
    fn writes_rfc_layout() {
        let m = [metrics()];
        let xr = ExtendedReport::new(Ssrc(0x1234_5678), &m);
        assert_eq!(xr.wire_len(), 8 + VOIP_METRICS_LEN);
        let mut out = [0u8; 44];
        assert_eq!(xr.write(&mut out), Ok(44));
        assert_eq!(out[..4], [0x80, 207, 0, 10]);
        assert_eq!(out[4..], XR[4..44]);
        assert_eq!(m[0].to_bytes()[..], XR[8..44]);
        assert_eq!(parse(&out), Ok(xr));
        assert_ne!(parse(&XR), Ok(xr));
    }

    #[test]
    fn malformed_blocks_are_typed_errors() {
        // No SSRC.
        assert_eq!(
            parse(&[0x80, 207, 0, 0]),
            Err(RtcpError::Truncated {
                packet_type: PacketType::XR,
                needed: 4,
                available: 0
            })
        );
        // Second block claims 3 words of contents, 2 remain.
        let mut long = XR;
        long[47] = 3;
        assert_eq!(
            parse(&long),
            Err(RtcpError::XrBlockOverrun {
                block_type: 5,
                declared: 16,
                available: 12
            })
        );
        // A VoIP Metrics block of the wrong length.
        let mut short = XR;
        short[11] = 7;
        assert_eq!(
            parse(&short),
            Err(RtcpError::XrBlockLength {
                block_type: 7,
                length: 7
            })
        );
        // A partial block header at the end (odd padding leaves 2 bytes).
        let odd = [0xa0, 207, 0, 2, 0, 0, 0, 1, 9, 9, 0, 2];
        assert_eq!(
            parse(&odd),
            Err(RtcpError::XrBlockOverrun {
                block_type: 9,
                declared: 4,
                available: 2
            })
        );
        // Every truncation of the body is rejected or parses a prefix of
        // whole blocks, never panics.
        let f = split_packet(&XR).unwrap();
        for n in 0..f.body.len() {
            let cut = &f.body[..n];
            let ok = matches!(n, 4 | 40);
            assert_eq!(ExtendedReport::parse_body(cut).is_ok(), ok, "{n}");
        }
    }

    #[test]
    fn write_errors() {
        let m = [metrics()];
        let xr = ExtendedReport::new(Ssrc(1), &m);
        assert_eq!(
            xr.write(&mut [0u8; 40]),
            Err(RtcpWriteError::BufferTooSmall {
                needed: 44,
                available: 40
            })
        );
        let many = vec![metrics(); 8000];
        let xr = ExtendedReport::new(Ssrc(1), &many);
        assert_eq!(
            xr.write(&mut vec![0u8; xr.wire_len()]),
            Err(RtcpWriteError::TooLong(8 + 8000 * VOIP_METRICS_LEN))
        );
    }

    #[test]
    fn saturating_helpers() {
        assert_eq!(VoipMetrics::fraction(0.05), 12);
        assert_eq!(VoipMetrics::fraction(1.0), 255);
        assert_eq!(VoipMetrics::fraction(-0.5), 0);
        assert_eq!(VoipMetrics::fraction(f64::NAN), 0);
        assert_eq!(VoipMetrics::millis(Duration::from_micros(80_900)), 80);
        assert_eq!(VoipMetrics::millis(Duration::from_secs(100)), u16::MAX);
        let cfg = RxConfig {
            plc: Plc::Enhanced,
            jba: JitterBufferMode::NonAdaptive,
            jb_rate: 200,
        };
        assert_eq!(cfg.to_byte(), 0b1010_1111);
        assert_eq!(
            RxConfig::from_byte(0b0111_0000).jba,
            JitterBufferMode::Adaptive
        );
        assert_eq!(RxConfig::from_byte(0b0111_0000).plc, Plc::Disabled);
        let u = VoipMetrics::unavailable(Ssrc(3));
        assert_eq!((u.r_factor, u.mos_cq, u.signal_level), (127, 127, 127));
    }

    pub(crate) fn arb_metrics() -> impl Strategy<Value = VoipMetrics> {
        (
            any::<(u32, [u8; 4], [u16; 4])>(),
            any::<([i8; 2], [u8; 6], u8, [u16; 3])>(),
        )
            .prop_map(|((ssrc, r, d), (levels, q, cfg, jb))| VoipMetrics {
                ssrc: Ssrc(ssrc),
                loss_rate: r[0],
                discard_rate: r[1],
                burst_density: r[2],
                gap_density: r[3],
                burst_duration: d[0],
                gap_duration: d[1],
                round_trip_delay: d[2],
                end_system_delay: d[3],
                signal_level: levels[0],
                noise_level: levels[1],
                rerl: q[0],
                gmin: q[1],
                r_factor: q[2],
                ext_r_factor: q[3],
                mos_lq: q[4],
                mos_cq: q[5],
                rx_config: RxConfig::from_byte(cfg),
                jb_nominal: jb[0],
                jb_maximum: jb[1],
                jb_abs_max: jb[2],
            })
    }

    proptest! {
        #[test]
        fn voip_metrics_round_trip(m in arb_metrics()) {
            let bytes = m.to_bytes();
            let body = bytes[XR_BLOCK_HEADER_LEN..].first_chunk().unwrap();
            prop_assert_eq!(VoipMetrics::from_body(body), m);
            prop_assert_eq!(RxConfig::from_byte(m.rx_config.to_byte()), m.rx_config);
        }

        #[test]
        fn xr_round_trip(
            ssrc: u32,
            blocks in proptest::collection::vec(arb_metrics(), 0..8),
        ) {
            let xr = ExtendedReport::new(Ssrc(ssrc), &blocks);
            let mut out = vec![0u8; xr.wire_len()];
            prop_assert_eq!(xr.write(&mut out), Ok(out.len()));
            let parsed = parse(&out).unwrap();
            prop_assert_eq!(parsed, xr);
            prop_assert_eq!(parsed.voip_metrics().collect::<Vec<_>>(), blocks);
            // A received XR re-writes byte for byte.
            let mut again = vec![0u8; parsed.wire_len()];
            prop_assert_eq!(parsed.write(&mut again), Ok(out.len()));
            prop_assert_eq!(again, out);
        }

        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(xr) = ExtendedReport::parse_body(&body) {
                prop_assert_eq!(xr.wire_len(), HEADER_LEN + body.len());
                for b in xr.blocks() {
                    let _ = b;
                }
            }
        }
    }
}
