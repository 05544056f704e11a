//! Demultiplexing what arrives on one port: RTP and RTCP sharing it
//! (rtcp-mux, RFC 5761 §4), plus STUN, DTLS, ZRTP and TURN channel data
//! (RFC 7983 §7), which an rtcp-mux port with ICE and DTLS-SRTP also sees.
//!
//! ```text
//!              +----------------+
//!              |        [0..3] -+--> STUN
//!              |      [16..19] -+--> ZRTP
//!   packet --> |      [20..63] -+--> DTLS
//!              |      [64..79] -+--> TURN channel
//!              |    [128..191] -+--> RTP / RTCP, by the second byte
//!              +----------------+
//! ```
//!
//! Within 128..=191, RFC 5761 §4: a second byte in 192..=223 (RTCP packet
//! types 192-223, i.e. what would be RTP payload types 64-95 with the marker
//! set) is RTCP, anything else RTP. The check is O(1), reads at most two
//! bytes, and validates nothing further.

/// What a datagram on a multiplexed port is (RFC 7983, RFC 5761 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketKind {
    /// RTP (first byte 128..=191, second byte outside 192..=223).
    Rtp,
    /// RTCP (first byte 128..=191, second byte 192..=223).
    Rtcp,
    /// STUN (first byte 0..=3), e.g. ICE connectivity checks.
    Stun,
    /// ZRTP (first byte 16..=19).
    Zrtp,
    /// DTLS (first byte 20..=63), e.g. the DTLS-SRTP handshake.
    Dtls,
    /// TURN channel data (first byte 64..=79).
    TurnChannel,
    /// Anything else, including datagrams too short to classify.
    Other,
}

/// Classifies a datagram received on an rtcp-mux port (RFC 7983 §7,
/// RFC 5761 §4). RTP and RTCP need at least two bytes; the other kinds are
/// told by the first byte alone.
pub fn demux(buf: &[u8]) -> PacketKind {
    let Some(&first) = buf.first() else {
        return PacketKind::Other;
    };
    match first {
        0..=3 => PacketKind::Stun,
        16..=19 => PacketKind::Zrtp,
        20..=63 => PacketKind::Dtls,
        64..=79 => PacketKind::TurnChannel,
        128..=191 => match buf.get(1) {
            // RFC 5761 §4: RTCP packet types 192..=223 collide with
            // RTP payload types 64..=95 with M=1, which RTP must not use.
            Some(192..=223) => PacketKind::Rtcp,
            Some(_) => PacketKind::Rtp,
            None => PacketKind::Other,
        },
        _ => PacketKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5761_second_byte_edges() {
        assert_eq!(demux(&[0x80, 191]), PacketKind::Rtp);
        assert_eq!(demux(&[0x80, 192]), PacketKind::Rtcp);
        assert_eq!(demux(&[0x80, 200]), PacketKind::Rtcp);
        assert_eq!(demux(&[0x80, 223]), PacketKind::Rtcp);
        assert_eq!(demux(&[0x80, 224]), PacketKind::Rtp);
        // PCMU with and without marker, dynamic PT 96 with marker (224).
        assert_eq!(demux(&[0x80, 0]), PacketKind::Rtp);
        assert_eq!(demux(&[0x80, 0x80]), PacketKind::Rtp);
        assert_eq!(demux(&[0x80, 0x80 | 96]), PacketKind::Rtp);
    }

    #[test]
    fn rfc7983_first_byte_ranges() {
        let kind = |b: u8| demux(&[b, 0]);
        assert_eq!(kind(0), PacketKind::Stun);
        assert_eq!(kind(3), PacketKind::Stun);
        assert_eq!(kind(4), PacketKind::Other);
        assert_eq!(kind(15), PacketKind::Other);
        assert_eq!(kind(16), PacketKind::Zrtp);
        assert_eq!(kind(19), PacketKind::Zrtp);
        assert_eq!(kind(20), PacketKind::Dtls);
        assert_eq!(kind(63), PacketKind::Dtls);
        assert_eq!(kind(64), PacketKind::TurnChannel);
        assert_eq!(kind(79), PacketKind::TurnChannel);
        assert_eq!(kind(80), PacketKind::Other);
        assert_eq!(kind(127), PacketKind::Other);
        assert_eq!(kind(128), PacketKind::Rtp);
        assert_eq!(kind(191), PacketKind::Rtp);
        assert_eq!(kind(192), PacketKind::Other);
        assert_eq!(kind(255), PacketKind::Other);
    }

    #[test]
    fn too_short() {
        assert_eq!(demux(&[]), PacketKind::Other);
        assert_eq!(demux(&[0x80]), PacketKind::Other);
        assert_eq!(demux(&[0x16]), PacketKind::Dtls);
    }
}
