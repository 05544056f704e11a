//! G.711 µ-law (PCMU) and A-law (PCMA) companding (ITU-T G.711), and
//! PCMU <-> PCMA transcoding.
//!
//! Everything is table driven, with the tables computed at compile time:
//! decoding is one 256-entry `i16` lookup, encoding one lookup in a table
//! indexed by the high bits of the sample (14 bits for µ-law, 12 for
//! A-law: the bits that can change the code), transcoding one 256-entry
//! `u8` lookup.
//!
//! Conventions (bit-exact with the ITU-T G.191 reference implementation):
//! - samples are 16-bit linear PCM; µ-law quantises `x >> 2`, A-law
//!   `x >> 3`;
//! - a negative sample is coded by its one's complement (`!x`), so the
//!   quantiser is symmetric about -1/2: `encode(!x) == encode(x) ^ 0x80`;
//! - µ-law transmits the code inverted (bias 33 on the 14-bit magnitude,
//!   0xFF is +0, 0x7F is -0, both decode to 0); A-law inverts the even bits
//!   (XOR 0x55, 0xD5 is +0);
//! - transcoding is decode-then-encode.
//!
//! Contract: total functions, no panics, no allocation.

use crate::rtp::PayloadType;

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// µ-law, RTP payload type 0 (RFC 3551 §4.5.14).
    Pcmu,
    /// A-law, RTP payload type 8 (RFC 3551 §4.5.14).
    Pcma,
}

/// µ-law code -> 16-bit linear sample.
static ULAW_DECODE: [i16; 256] = build_decode(G711::Pcmu);
/// A-law code -> 16-bit linear sample.
static ALAW_DECODE: [i16; 256] = build_decode(G711::Pcma);
/// `(x >> 2)` as 14 bits -> µ-law code.
static ULAW_ENCODE: [u8; 1 << 14] = build_ulaw_encode();
/// `(x >> 4)` as 12 bits -> A-law code (the lowest magnitude step of
/// A-law is 16 in 16-bit units, so bit 3 never matters).
static ALAW_ENCODE: [u8; 1 << 12] = build_alaw_encode();
/// µ-law code -> A-law code.
static ULAW_TO_ALAW: [u8; 256] = build_transcode(G711::Pcmu);
/// A-law code -> µ-law code.
static ALAW_TO_ULAW: [u8; 256] = build_transcode(G711::Pcma);

impl G711 {
    /// The static RTP payload type (0 or 8).
    pub const fn payload_type(self) -> PayloadType {
        match self {
            G711::Pcmu => PayloadType::PCMU,
            G711::Pcma => PayloadType::PCMA,
        }
    }

    /// The law of a static payload type, if it is 0 or 8.
    pub const fn from_payload_type(pt: PayloadType) -> Option<Self> {
        match pt.value() {
            0 => Some(G711::Pcmu),
            8 => Some(G711::Pcma),
            _ => None,
        }
    }

    /// Encodes one sample.
    pub fn encode(self, sample: i16) -> u8 {
        match self {
            G711::Pcmu => ulaw_encode(sample),
            G711::Pcma => alaw_encode(sample),
        }
    }

    /// Decodes one code.
    pub fn decode(self, code: u8) -> i16 {
        match self {
            G711::Pcmu => ulaw_decode(code),
            G711::Pcma => alaw_decode(code),
        }
    }

    /// Encodes `src` into `dst`; returns the number of samples coded,
    /// `min(src.len(), dst.len())`.
    pub fn encode_into(self, src: &[i16], dst: &mut [u8]) -> usize {
        let n = src.len().min(dst.len());
        let (src, dst) = (&src[..n], &mut dst[..n]);
        match self {
            G711::Pcmu => {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = ulaw_encode(s);
                }
            }
            G711::Pcma => {
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = alaw_encode(s);
                }
            }
        }
        n
    }

    /// Decodes `src` into `dst`; returns the number of samples decoded,
    /// `min(src.len(), dst.len())`.
    pub fn decode_into(self, src: &[u8], dst: &mut [i16]) -> usize {
        let table = match self {
            G711::Pcmu => &ULAW_DECODE,
            G711::Pcma => &ALAW_DECODE,
        };
        let n = src.len().min(dst.len());
        for (d, &c) in dst[..n].iter_mut().zip(&src[..n]) {
            *d = table[usize::from(c)];
        }
        n
    }

    /// The other law.
    pub const fn other(self) -> Self {
        match self {
            G711::Pcmu => G711::Pcma,
            G711::Pcma => G711::Pcmu,
        }
    }
}

/// Encodes a sample to µ-law.
#[inline]
pub fn ulaw_encode(sample: i16) -> u8 {
    // Arithmetic shift then masking keeps the 14 high bits, sign included.
    ULAW_ENCODE[((sample >> 2) as u16 & 0x3fff) as usize]
}

/// Encodes a sample to A-law.
#[inline]
pub fn alaw_encode(sample: i16) -> u8 {
    ALAW_ENCODE[((sample >> 4) as u16 & 0x0fff) as usize]
}

/// Decodes a µ-law code.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Decodes an A-law code.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

/// Converts a µ-law code to A-law (decode, then encode).
#[inline]
pub fn ulaw_to_alaw(code: u8) -> u8 {
    ULAW_TO_ALAW[usize::from(code)]
}

/// Converts an A-law code to µ-law (decode, then encode).
#[inline]
pub fn alaw_to_ulaw(code: u8) -> u8 {
    ALAW_TO_ULAW[usize::from(code)]
}

/// Transcodes a payload from law `from` into the other law; returns the
/// number of bytes written, `min(src.len(), dst.len())`.
pub fn transcode(from: G711, src: &[u8], dst: &mut [u8]) -> usize {
    let table = transcode_table(from);
    let n = src.len().min(dst.len());
    for (d, &c) in dst[..n].iter_mut().zip(&src[..n]) {
        *d = table[usize::from(c)];
    }
    n
}

/// Transcodes a payload from law `from` into the other law, in place.
pub fn transcode_in_place(from: G711, buf: &mut [u8]) {
    let table = transcode_table(from);
    for c in buf {
        *c = table[usize::from(*c)];
    }
}

fn transcode_table(from: G711) -> &'static [u8; 256] {
    match from {
        G711::Pcmu => &ULAW_TO_ALAW,
        G711::Pcma => &ALAW_TO_ULAW,
    }
}

/// µ-law decoding (G.711 Table 2a): invert, then
/// `((2·mantissa + 33) << segment) - 33` in 14-bit units, scaled to 16 bits.
const fn ulaw_decode_calc(code: u8) -> i16 {
    let u = !code;
    let segment = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    // In 16-bit units: ((mantissa << 3) + 0x84) << segment, minus the bias 0x84.
    let t = ((mantissa << 3) + 0x84) << segment;
    let v = t - 0x84;
    if u & 0x80 != 0 { -v as i16 } else { v as i16 }
}

/// A-law decoding (G.711 Table 1a): undo the even-bit inversion, then the
/// interval midpoint in 13-bit units, scaled to 16 bits.
const fn alaw_decode_calc(code: u8) -> i16 {
    let a = code ^ 0x55;
    let segment = ((a >> 4) & 0x07) as i32;
    let mantissa = (a & 0x0f) as i32;
    let v = if segment == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (segment - 1)
    };
    // Sign bit 1 is positive.
    if a & 0x80 != 0 { v as i16 } else { -v as i16 }
}

/// µ-law encoding of a 16-bit sample (G.711 Table 2a via G.191): 14-bit
/// one's-complement magnitude, bias 33, segment search, inversion.
const fn ulaw_encode_calc(sample: i16) -> u8 {
    let x = sample as i32;
    let (mag, sign) = if x < 0 {
        ((!x) >> 2, 0x00)
    } else {
        (x >> 2, 0x80)
    };
    let mut biased = mag + 33;
    if biased > 0x1fff {
        biased = 0x1fff;
    }
    // Segment: biased is in [32 << seg, 64 << seg).
    let mut seg = 0;
    while biased >= (64 << seg) {
        seg += 1;
    }
    let mantissa = (biased >> (seg + 1)) & 0x0f;
    let code = ((seg << 4) | mantissa) as u8;
    // Transmitted inverted; the sign bit ends up 1 for positive.
    (!code & 0x7f) | sign
}

/// A-law encoding of a 16-bit sample (G.711 Table 1a via G.191): 12-bit
/// one's-complement magnitude, segment search, even-bit inversion.
const fn alaw_encode_calc(sample: i16) -> u8 {
    let x = sample as i32;
    let (mag, sign) = if x < 0 {
        ((!x) >> 3, 0x00)
    } else {
        (x >> 3, 0x80)
    };
    // mag is 0..=4095; segment 0 and 1 have step 2, segment s >= 2 step 2^s.
    let code = if mag < 32 {
        mag >> 1
    } else {
        let mut seg = 1;
        while mag >= (32 << seg) {
            seg += 1;
        }
        (seg << 4) | ((mag >> seg) & 0x0f)
    };
    ((code as u8) | sign) ^ 0x55
}

const fn build_decode(law: G711) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match law {
            G711::Pcmu => ulaw_decode_calc(i as u8),
            G711::Pcma => alaw_decode_calc(i as u8),
        };
        i += 1;
    }
    t
}

const fn build_ulaw_encode() -> [u8; 1 << 14] {
    let mut t = [0u8; 1 << 14];
    let mut i = 0;
    while i < (1 << 14) {
        // Index i holds the 14 high bits; the two low bits do not matter.
        let hi = ((i as u16) << 2) as i16;
        t[i] = ulaw_encode_calc(hi);
        i += 1;
    }
    t
}

const fn build_alaw_encode() -> [u8; 1 << 12] {
    let mut t = [0u8; 1 << 12];
    let mut i = 0;
    while i < (1 << 12) {
        let hi = ((i as u16) << 4) as i16;
        t[i] = alaw_encode_calc(hi);
        i += 1;
    }
    t
}

/// Decode with `from`, encode with the other law.
const fn build_transcode(from: G711) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match from {
            G711::Pcmu => alaw_encode_calc(ulaw_decode_calc(i as u8)),
            G711::Pcma => ulaw_encode_calc(alaw_decode_calc(i as u8)),
        };
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Straightforward G.711 reference, written from the tables of the
    /// Recommendation rather than from bit tricks: a list of decision
    /// levels and reconstruction values per law, searched linearly.
    mod reference {
        /// µ-law (G.711 Table 2a), in 14-bit magnitude units (0..=8159).
        /// Segment s ends at 32·2^(s+1) - 33: 31, 95, 223, ..., 8159. In
        /// segment 0 the first interval is 1 wide, the others 2; in segment
        /// s >= 1 intervals are 2^(s+1) wide. Returns (lower decision level,
        /// reconstruction value) for magnitude index n = 16·s + i.
        pub fn ulaw_interval(n: u8) -> (i32, i32) {
            let s = i32::from(n >> 4);
            let i = i32::from(n & 0x0f);
            if s == 0 {
                let lower = if i == 0 { 0 } else { 2 * i - 1 };
                return (lower, 2 * i);
            }
            let seg_start = (32 << s) - 33;
            let width = 2 << s;
            (seg_start + i * width, seg_start + i * width + width / 2)
        }

        /// A-law (G.711 Table 1a), in 12-bit magnitude units (0..=4095).
        /// Segments 0 and 1 ([0,32), [32,64)) have intervals 2 wide; segment
        /// s >= 2 spans [16·2^s, 32·2^s) in intervals 2^s wide.
        pub fn alaw_interval(n: u8) -> (i32, i32) {
            let s = i32::from(n >> 4);
            let i = i32::from(n & 0x0f);
            let (start, width) = if s == 0 { (0, 2) } else { (16 << s, 1 << s) };
            (start + i * width, start + i * width + width / 2)
        }

        /// Largest n whose lower decision level is <= mag.
        fn quantise(mag: i32, interval: fn(u8) -> (i32, i32)) -> u8 {
            (0..128u8)
                .rev()
                .find(|&n| interval(n).0 <= mag)
                .unwrap_or(0)
        }

        pub fn ulaw_encode(x: i16) -> u8 {
            let x = i32::from(x);
            let positive = x >= 0;
            // G.191: negative samples by one's complement; 16 -> 14 bits.
            let mag = if positive { x } else { !x } >> 2;
            let n = quantise(mag, ulaw_interval);
            // Sign bit 1 = positive; magnitude bits inverted.
            (if positive { 0x80 } else { 0 }) | (0x7f - n)
        }

        pub fn ulaw_decode(c: u8) -> i16 {
            let n = 0x7f - (c & 0x7f);
            let y = ulaw_interval(n).1 * 4;
            (if c & 0x80 != 0 { y } else { -y }) as i16
        }

        pub fn alaw_encode(x: i16) -> u8 {
            let x = i32::from(x);
            let positive = x >= 0;
            // G.191: negative samples by one's complement; 16 -> 12 bits.
            let mag = if positive { x } else { !x } >> 3;
            let n = quantise(mag, alaw_interval);
            // Even-bit inversion (0x55) of the character signal.
            ((if positive { 0x80 } else { 0 }) | n) ^ 0x55
        }

        pub fn alaw_decode(c: u8) -> i16 {
            let a = c ^ 0x55;
            let y = alaw_interval(a & 0x7f).1 * 8;
            (if a & 0x80 != 0 { y } else { -y }) as i16
        }
    }

    fn all_samples() -> impl Iterator<Item = i16> {
        i16::MIN..=i16::MAX
    }

    #[test]
    fn decode_matches_reference_all_codes() {
        for c in 0..=255u8 {
            assert_eq!(ulaw_decode(c), reference::ulaw_decode(c), "µ-law {c:#04x}");
            assert_eq!(alaw_decode(c), reference::alaw_decode(c), "A-law {c:#04x}");
        }
        // Landmarks of the Recommendation.
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
    }

    #[test]
    fn encode_matches_reference_all_samples() {
        for x in all_samples() {
            assert_eq!(ulaw_encode(x), reference::ulaw_encode(x), "µ-law {x}");
            assert_eq!(alaw_encode(x), reference::alaw_encode(x), "A-law {x}");
        }
        assert_eq!(ulaw_encode(0), 0xff);
        assert_eq!(ulaw_encode(-1), 0x7f);
        assert_eq!(alaw_encode(0), 0xd5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(alaw_encode(i16::MAX), 0xaa);
        assert_eq!(alaw_encode(i16::MIN), 0x2a);
    }

    #[test]
    fn symmetric_about_minus_half() {
        for x in all_samples() {
            assert_eq!(ulaw_encode(!x), ulaw_encode(x) ^ 0x80);
            assert_eq!(alaw_encode(!x), alaw_encode(x) ^ 0x80);
        }
    }

    #[test]
    fn decode_encode_within_quantisation_step() {
        for x in all_samples() {
            let xi = i32::from(x);
            // µ-law: step 8·2^seg in 16-bit units; beyond ±32124 it clips.
            let c = ulaw_encode(x);
            let seg = u32::from((!c >> 4) & 7);
            let y = i32::from(ulaw_decode(c));
            if xi.abs() <= 32124 {
                assert!((y - xi).abs() <= (8 << seg), "µ-law {x} -> {y}");
            } else {
                assert_eq!(y.abs(), 32124);
            }
            // A-law: step 16·2^max(seg-1, 0); beyond ±32256 it clips.
            let c = alaw_encode(x);
            let seg = u32::from(((c ^ 0x55) >> 4) & 7);
            let y = i32::from(alaw_decode(c));
            let step = 16 << seg.saturating_sub(1);
            if xi.abs() <= 32256 {
                assert!((y - xi).abs() <= step, "A-law {x} -> {y}");
            } else {
                assert_eq!(y.abs(), 32256);
            }
        }
    }

    #[test]
    fn encode_decode_is_identity_on_codes() {
        for c in 0..=255u8 {
            let mu = ulaw_encode(ulaw_decode(c));
            // 0x7f (-0) decodes to 0, which encodes as +0 (0xff).
            assert_eq!(mu, if c == 0x7f { 0xff } else { c }, "µ-law {c:#04x}");
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A-law {c:#04x}");
        }
    }

    #[test]
    fn transcoding_is_decode_then_encode() {
        let codes: Vec<u8> = (0..=255).collect();
        let mut a = [0u8; 256];
        assert_eq!(transcode(G711::Pcmu, &codes, &mut a), 256);
        let mut u = [0u8; 256];
        assert_eq!(transcode(G711::Pcma, &codes, &mut u), 256);
        for c in 0..=255u8 {
            let i = usize::from(c);
            assert_eq!(a[i], alaw_encode(ulaw_decode(c)));
            assert_eq!(a[i], reference::alaw_encode(reference::ulaw_decode(c)));
            assert_eq!(u[i], ulaw_encode(alaw_decode(c)));
            assert_eq!(u[i], reference::ulaw_encode(reference::alaw_decode(c)));
            assert_eq!(ulaw_to_alaw(c), a[i]);
            assert_eq!(alaw_to_ulaw(c), u[i]);
        }
        let mut buf = codes.clone();
        transcode_in_place(G711::Pcmu, &mut buf);
        assert_eq!(buf, a);
        transcode_in_place(G711::Pcma, &mut buf);
        // A-law is coarser near zero and µ-law near full scale: the round
        // trip is lossy for a few codes, but never by more than one step.
        for c in 0..=255u8 {
            let back = buf[usize::from(c)];
            let d = (i32::from(ulaw_decode(back)) - i32::from(ulaw_decode(c))).abs();
            let seg = u32::from((!c >> 4) & 7);
            assert!(d <= 16 << seg, "{c:#04x} -> {back:#04x}");
        }
    }

    #[test]
    fn slice_helpers() {
        let pcm: Vec<i16> = (0..160)
            .map(|i| ((i * 409) as i16).wrapping_mul(7))
            .collect();
        for law in [G711::Pcmu, G711::Pcma] {
            let mut enc = [0u8; 160];
            assert_eq!(law.encode_into(&pcm, &mut enc), 160);
            for (i, &x) in pcm.iter().enumerate() {
                assert_eq!(enc[i], law.encode(x));
            }
            let mut dec = [0i16; 160];
            assert_eq!(law.decode_into(&enc, &mut dec), 160);
            for (i, &c) in enc.iter().enumerate() {
                assert_eq!(dec[i], law.decode(c));
            }
            // Short destination: only what fits.
            let mut short = [0u8; 10];
            assert_eq!(law.encode_into(&pcm, &mut short), 10);
            assert_eq!(law.decode_into(&enc[..5], &mut dec), 5);
            assert_eq!(G711::from_payload_type(law.payload_type()), Some(law));
            assert_eq!(law.other().other(), law);
        }
        assert_eq!(G711::from_payload_type(PayloadType::new(18).unwrap()), None);
    }
}
