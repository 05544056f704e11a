//! `a=rtpmap:<payload type> <encoding name>/<clock rate>[/<encoding parameters>]`
//! (RFC 8866 §6.6) and the RFC 3551 §6 static payload-type table, which
//! describes static payload types offered without an `rtpmap`.

use std::fmt;

use crate::rtp::PayloadType;

/// A codec description: payload type, encoding name, clock rate and, for
/// audio, the channel count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rtpmap<'a> {
    /// The RTP payload type it describes.
    pub pt: PayloadType,
    /// Encoding name as written (compare with [`Rtpmap::same_codec`]).
    pub encoding: &'a str,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channel count; `None` means the default of one.
    pub channels: Option<u16>,
}

/// RFC 3551 §6 tables 4 and 5: static audio and video payload types.
const STATIC: [(u8, &str, u32, Option<u16>); 24] = [
    (0, "PCMU", 8000, None),
    (3, "GSM", 8000, None),
    (4, "G723", 8000, None),
    (5, "DVI4", 8000, None),
    (6, "DVI4", 16000, None),
    (7, "LPC", 8000, None),
    (8, "PCMA", 8000, None),
    (9, "G722", 8000, None),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, None),
    (12, "QCELP", 8000, None),
    (13, "CN", 8000, None),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, None),
    (16, "DVI4", 11025, None),
    (17, "DVI4", 22050, None),
    (18, "G729", 8000, None),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

/// Reads a payload-type token (an `m=` `<fmt>`, the `rtpmap` or `fmtp`
/// format): RFC 8866 §6.6 `payload-type = zero-based-integer`, i.e. `0` or
/// decimal digits without a leading zero or sign, at most 127. Only the
/// canonical spelling is accepted, so `pt.to_string()` is always the token
/// it came from: a negotiator that writes a payload type back (RFC 3264
/// §6.1) then writes a format the peer listed, never `8` for `008` or `+8`.
pub(crate) fn parse_payload_type(token: &str) -> Option<PayloadType> {
    let canonical = match token.as_bytes() {
        [b'0'] => true,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !canonical {
        return None;
    }
    PayloadType::new(token.parse().ok()?)
}

impl<'a> Rtpmap<'a> {
    /// Parses the value of an `rtpmap` attribute (after `rtpmap:`).
    pub fn parse(value: &'a str) -> Option<Rtpmap<'a>> {
        let value = value.trim();
        let (pt, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
        let pt = parse_payload_type(pt)?;
        let mut parts = rest.trim().split('/');
        let encoding = parts.next().filter(|e| !e.is_empty())?;
        let clock_rate = parts.next()?.trim().parse().ok()?;
        let channels = parts.next().map(|c| c.trim().parse()).transpose().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Rtpmap {
            pt,
            encoding,
            clock_rate,
            channels,
        })
    }

    /// The RFC 3551 §6 meaning of a static payload type, if it has one.
    pub fn static_pt(pt: PayloadType) -> Option<Rtpmap<'static>> {
        STATIC
            .iter()
            .find(|s| s.0 == pt.value())
            .map(|&(_, encoding, clock_rate, channels)| Rtpmap {
                pt,
                encoding,
                clock_rate,
                channels,
            })
    }

    /// The channel count with the default of one applied.
    pub fn channel_count(&self) -> u16 {
        self.channels.unwrap_or(1)
    }

    /// True when both describe the same codec: encoding name
    /// (case-insensitive, RFC 8866 §6.6), clock rate and channel count.
    /// The payload-type numbers are not compared.
    pub fn same_codec(&self, encoding: &str, clock_rate: u32, channels: Option<u16>) -> bool {
        self.encoding.eq_ignore_ascii_case(encoding)
            && self.clock_rate == clock_rate
            && self.channel_count() == channels.unwrap_or(1)
    }

    /// True for RFC 4733 `telephone-event`.
    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case("telephone-event")
    }
}

impl fmt::Display for Rtpmap<'_> {
    /// The value of an `rtpmap` attribute (after `rtpmap:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.pt, self.encoding, self.clock_rate)?;
        if let Some(c) = self.channels {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pt(v: u8) -> PayloadType {
        PayloadType::new(v).unwrap()
    }

    #[test]
    fn parses_variants() {
        let r = Rtpmap::parse("111 opus/48000/2").unwrap();
        assert_eq!(
            (r.pt, r.encoding, r.clock_rate, r.channels),
            (pt(111), "opus", 48000, Some(2))
        );
        let r = Rtpmap::parse("0  PCMU/8000 ").unwrap();
        assert_eq!(r.channels, None);
        assert!(Rtpmap::parse("128 x/8000").is_none());
        assert!(Rtpmap::parse("96 /8000").is_none());
        assert!(Rtpmap::parse("96 x").is_none());
        assert!(Rtpmap::parse("96 x/8000/2/3").is_none());
        assert!(Rtpmap::parse("96").is_none());
    }

    #[test]
    fn static_table_and_matching() {
        let g729 = Rtpmap::static_pt(pt(18)).unwrap();
        assert!(g729.same_codec("g729", 8000, None));
        assert!(g729.same_codec("G729", 8000, Some(1)));
        assert!(!g729.same_codec("G729", 16000, None));
        assert!(Rtpmap::static_pt(pt(96)).is_none());
        assert!(Rtpmap::static_pt(pt(2)).is_none());
        let opus = Rtpmap::parse("96 opus/48000/2").unwrap();
        assert!(!opus.same_codec("opus", 48000, None));
        assert!(
            Rtpmap::parse("101 Telephone-Event/8000")
                .unwrap()
                .is_telephone_event()
        );
    }

    #[test]
    fn payload_type_tokens_are_canonical_decimal() {
        assert_eq!(parse_payload_type("0"), Some(pt(0)));
        assert_eq!(parse_payload_type("127"), Some(pt(127)));
        for bad in [
            "", "008", "08", "00", "+8", "-0", " 8", "8 ", "128", "256", "1e2", "٨",
        ] {
            assert_eq!(parse_payload_type(bad), None, "{bad:?}");
        }
        assert!(Rtpmap::parse("096 opus/48000/2").is_none());
    }

    proptest! {
        #[test]
        fn payload_type_token_round_trip(token in "[+0-9]{1,4}") {
            // Whatever is accepted is written back as the same token.
            if let Some(p) = parse_payload_type(&token) {
                prop_assert_eq!(p.to_string(), token);
            }
        }

        #[test]
        fn round_trip(p in 0u8..128, enc in "[A-Za-z0-9-]{1,12}", clock in any::<u32>(),
                      ch in proptest::option::of(any::<u16>())) {
            let r = Rtpmap { pt: pt(p), encoding: &enc, clock_rate: clock, channels: ch };
            let text = r.to_string();
            prop_assert_eq!(Rtpmap::parse(&text), Some(r));
        }
    }
}
