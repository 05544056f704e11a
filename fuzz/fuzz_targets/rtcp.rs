//! Fuzz RTCP (RFC 3550 §6) and rtcp-mux demultiplexing (RFC 5761 §4,
//! RFC 7983): parsing arbitrary bytes as a compound never panics, every
//! packet that parses re-writes and re-parses to the same packet (where the
//! writer can encode it), the compound re-writes as a whole, and the demux
//! classification agrees with the first two bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::rtcp::{
    Compound, PacketKind, RtcpPacket, RtcpWriteError, demux, validate_strict, write_compound,
};

fuzz_target!(|data: &[u8]| {
    // RFC 5761 §4 / RFC 7983: the classification follows the first bytes.
    let kind = demux(data);
    match (data.first(), data.get(1)) {
        (Some(128..=191), Some(192..=223)) => assert_eq!(kind, PacketKind::Rtcp),
        (Some(128..=191), Some(_)) => assert_eq!(kind, PacketKind::Rtp),
        (Some(0..=3), _) => assert_eq!(kind, PacketKind::Stun),
        (Some(20..=63), _) => assert_eq!(kind, PacketKind::Dtls),
        _ => assert!(!matches!(kind, PacketKind::Rtp | PacketKind::Rtcp)),
    }

    let strict_ok = validate_strict(data).is_ok();
    let mut all_ok = true;
    let mut packets = Vec::new();
    for item in Compound::new(data) {
        let Ok(p) = item else {
            all_ok = false;
            continue;
        };
        packets.push(p);
        let len = p.wire_len();
        let mut out = vec![0u8; len];
        match p.write(&mut out) {
            Ok(n) => {
                assert_eq!(n, len);
                let (again, rest) = RtcpPacket::parse_first(&out).expect("a written packet parses");
                assert!(rest.is_empty());
                assert_eq!(again, p);
            }
            // Odd padding can leave a body that is not whole words, and a
            // lenient SDES grows by its missing terminators.
            Err(e) => assert!(
                matches!(e, RtcpWriteError::Unaligned(_) | RtcpWriteError::TooLong(_)),
                "{e:?} for {p:?}"
            ),
        }
    }
    // A strictly valid compound parses without errors.
    if strict_ok {
        assert!(all_ok && !packets.is_empty());
    }
    // The parsed packets re-written as one compound parse to the same list.
    let total: usize = packets.iter().map(RtcpPacket::wire_len).sum();
    let mut out = vec![0u8; total];
    if write_compound(&packets, &mut out).is_ok() {
        let again: Vec<RtcpPacket> = Compound::new(&out)
            .collect::<Result<_, _>>()
            .expect("a written compound parses");
        assert_eq!(again, packets);
    }
});
