//! Errors of the RTCP module: [`RtcpError`] for received bytes that are not
//! well-formed RTCP, [`RtcpWriteError`] for packets the writers cannot encode.

use super::header::PacketType;

/// Why bytes are not well-formed RTCP (RFC 3550 §6.4-§6.7, A.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpError {
    /// Fewer than the 4 bytes of a common header remain.
    #[error("RTCP packet too short: {len} bytes, a header needs 4")]
    TooShort {
        /// Bytes remaining where the header should start.
        len: usize,
    },
    /// `V` is not 2.
    #[error("RTCP version {0}, expected 2")]
    BadVersion(u8),
    /// The length field announces more bytes than remain in the datagram.
    #[error("RTCP length field announces {declared} bytes, only {available} remain")]
    LengthOverrun {
        /// Packet length from the length field, `4 * (length + 1)`.
        declared: usize,
        /// Bytes remaining in the datagram from the start of the packet.
        available: usize,
    },
    /// The `P` bit is set on a packet that is not the last of the compound
    /// (RFC 3550 §6.4.1: only the last packet may be padded).
    #[error("RTCP padding bit set on a packet that is not the last in the compound")]
    PaddingNotLast,
    /// The padding count is zero or longer than the packet body.
    #[error("RTCP padding of {padding} bytes is invalid for a {available}-byte body")]
    BadPadding {
        /// Value of the last octet.
        padding: u8,
        /// Bytes after the 4-byte header, including the padding.
        available: usize,
    },
    /// The body is shorter than its count field and fixed part require
    /// (report blocks, SSRC list, SDES chunk, APP name, XR SSRC).
    #[error("RTCP packet type {packet_type} needs {needed} body bytes, has {available}")]
    Truncated {
        /// Type of the truncated packet.
        packet_type: PacketType,
        /// Bytes the fixed part and the count require.
        needed: usize,
        /// Bytes in the body (after the header, without padding).
        available: usize,
    },
    /// An SDES item (RFC 3550 §6.5) runs past the end of the packet.
    #[error("SDES item of type {item_type} runs past the end of its packet")]
    SdesItemOverrun {
        /// The item type octet.
        item_type: u8,
    },
    /// The BYE reason length (RFC 3550 §6.6) runs past the end of the packet.
    #[error("BYE reason of {len} bytes runs past the end of its packet ({available} left)")]
    ByeReasonOverrun {
        /// The length octet.
        len: u8,
        /// Bytes after the length octet.
        available: usize,
    },
    /// An XR report block (RFC 3611 §3) runs past the end of its packet,
    /// or fewer than the 4 bytes of a block header remain.
    #[error("XR block of type {block_type} needs {declared} bytes, only {available} remain")]
    XrBlockOverrun {
        /// `BT` of the block (0 when not even that octet is there).
        block_type: u8,
        /// Block length from its length field, header included (4 when
        /// the header itself is cut).
        declared: usize,
        /// Bytes remaining in the packet from the start of the block.
        available: usize,
    },
    /// An XR report block of a fixed-size type has another length (RFC
    /// 3611 §4.7: a VoIP Metrics block has block length 8).
    #[error("XR block of type {block_type} with block length {length}")]
    XrBlockLength {
        /// `BT` of the block.
        block_type: u8,
        /// The block length field (32-bit words minus one).
        length: u16,
    },
    /// Strict check (RFC 3550 A.2): the datagram is empty.
    #[error("empty RTCP datagram")]
    Empty,
    /// Strict check (RFC 3550 A.2): the first packet is not an SR or RR.
    #[error("compound RTCP starts with packet type {0}, not SR or RR")]
    FirstNotReport(PacketType),
    /// Strict check (RFC 3550 A.2): the first packet is padded.
    #[error("padding bit set on the first packet of a compound RTCP packet")]
    PaddedFirst,
    /// Strict check (RFC 3550 §6.1): no SDES CNAME item in the compound.
    #[error("compound RTCP packet carries no SDES CNAME")]
    MissingCname,
}

/// Why an RTCP packet could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RtcpWriteError {
    /// The output buffer cannot hold the packet.
    #[error("output buffer of {available} bytes, RTCP packet needs {needed}")]
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A count field (report blocks, chunks, SSRCs, APP subtype) exceeds
    /// the 5 bits it has (RFC 3550 §6.4.1).
    #[error("count {0} does not fit the 5-bit RTCP count field (max 31)")]
    CountOverflow(usize),
    /// A variable part that must be a whole number of 32-bit words is not
    /// (profile extension, APP data, unknown-packet body).
    #[error("{0} bytes is not a whole number of 32-bit words")]
    Unaligned(usize),
    /// An SDES item or BYE reason is longer than its 255-byte length octet
    /// allows.
    #[error("{0}-byte text does not fit an 8-bit length")]
    TextTooLong(usize),
    /// SDES item type 0 is the end-of-list marker, not an item (RFC 3550 §6.5).
    #[error("SDES item type 0 (END) cannot be written as an item")]
    SdesEndItem,
    /// The packet exceeds the 16-bit length field (65536 words).
    #[error("RTCP packet of {0} bytes exceeds the 16-bit length field")]
    TooLong(usize),
}
