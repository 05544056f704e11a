//! Application-defined packet, APP (RFC 3550 §6.7).
//!
//! ```text
//! |V=2|P| subtype |   PT=APP=204  |             length            |
//! |                           SSRC/CSRC                           |
//! |                          name (ASCII)                         |
//! |                   application-dependent data                ...
//! ```
//!
//! The data is passed through untouched.

use super::error::{RtcpError, RtcpWriteError};
use super::header::{HEADER_LEN, MAX_COUNT, PacketType, begin_packet};
use crate::rtp::Ssrc;

/// An application-defined packet (RFC 3550 §6.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct App<'a> {
    /// 5-bit subtype.
    pub subtype: u8,
    /// SSRC/CSRC of the originator.
    pub ssrc: Ssrc,
    /// Four ASCII characters naming the application.
    pub name: [u8; 4],
    /// Application data, a whole number of 32-bit words.
    pub data: &'a [u8],
}

impl<'a> App<'a> {
    /// Parses the body of an APP packet with subtype `subtype` (RFC 3550 §6.7).
    pub(crate) fn parse_body(subtype: u8, body: &'a [u8]) -> Result<Self, RtcpError> {
        let truncated = RtcpError::Truncated {
            packet_type: PacketType::APP,
            needed: 8,
            available: body.len(),
        };
        let Some((ssrc, rest)) = body.split_first_chunk::<4>() else {
            return Err(truncated);
        };
        let Some((name, data)) = rest.split_first_chunk::<4>() else {
            return Err(truncated);
        };
        Ok(App {
            subtype,
            ssrc: Ssrc(u32::from_be_bytes(*ssrc)),
            name: *name,
            data,
        })
    }

    /// Bytes the packet takes on the wire.
    pub fn wire_len(&self) -> usize {
        HEADER_LEN + 8 + self.data.len()
    }

    /// Writes the packet into `out`; returns its length.
    pub fn write(&self, out: &mut [u8]) -> Result<usize, RtcpWriteError> {
        if self.subtype as usize > MAX_COUNT {
            return Err(RtcpWriteError::CountOverflow(self.subtype as usize));
        }
        if !self.data.len().is_multiple_of(4) {
            return Err(RtcpWriteError::Unaligned(self.data.len()));
        }
        let len = self.wire_len();
        let mut put = begin_packet(out, len, self.subtype as usize, PacketType::APP)?;
        put.u32(self.ssrc.0);
        put.bytes(&self.name);
        put.bytes(self.data);
        debug_assert_eq!(put.position(), len);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::header::split_packet;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> Result<App<'_>, RtcpError> {
        let f = split_packet(bytes).unwrap();
        App::parse_body(f.header.count, f.body)
    }

    #[test]
    fn parses_hand_built_app() {
        let app = [
            0x85, 204, 0, 3, // V=2 subtype=5 PT=204 length=3 (16 bytes)
            0x00, 0x00, 0x30, 0x39, // SSRC 12345
            b'q', b'o', b'e', b'1', // name
            0xde, 0xad, 0xbe, 0xef, // data
        ];
        let parsed = parse(&app).unwrap();
        assert_eq!(
            parsed,
            App {
                subtype: 5,
                ssrc: Ssrc(12345),
                name: *b"qoe1",
                data: &[0xde, 0xad, 0xbe, 0xef],
            }
        );
        let mut out = [0u8; 16];
        assert_eq!(parsed.write(&mut out), Ok(16));
        assert_eq!(out, app);
    }

    #[test]
    fn app_errors() {
        assert_eq!(
            parse(&[0x80, 204, 0, 1, 0, 0, 0, 1]),
            Err(RtcpError::Truncated {
                packet_type: PacketType::APP,
                needed: 8,
                available: 4
            })
        );
        let mut app = App {
            subtype: 32,
            ..App::default()
        };
        assert_eq!(
            app.write(&mut [0u8; 64]),
            Err(RtcpWriteError::CountOverflow(32))
        );
        app.subtype = 0;
        app.data = &[1, 2];
        assert_eq!(app.write(&mut [0u8; 64]), Err(RtcpWriteError::Unaligned(2)));
    }

    proptest! {
        #[test]
        fn app_round_trip(
            subtype in 0u8..32,
            ssrc: u32,
            name: [u8; 4],
            data in proptest::collection::vec(any::<[u8; 4]>(), 0..16),
        ) {
            let data = data.concat();
            let app = App { subtype, ssrc: Ssrc(ssrc), name, data: &data };
            let mut out = vec![0u8; app.wire_len()];
            prop_assert_eq!(app.write(&mut out), Ok(out.len()));
            prop_assert_eq!(parse(&out), Ok(app));
        }
    }
}
