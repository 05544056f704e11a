//! The SDP `a=crypto` attribute of SDP Security Descriptions (RFC 4568
//! §9.1) for the SRTP suites of [`Suite`], with its `inline:` key method
//! (§6.1) and base64 (RFC 4648 §4) key encoding. The key-salt is as long as
//! the suite's key and salt together ([`Suite::key_len`] +
//! [`Suite::salt_len`]: 30 bytes for the AES-128, f8 and NULL suites, 38
//! for AES-192, 46 for AES-256 (RFC 6188 §6), 28 and 44 for AES-GCM
//! (RFC 7714 §14.1)).
//!
//! ```text
//! a=crypto:<tag> <crypto-suite> inline:<key||salt base64>[|<lifetime>][|<mki>:<len>] [<session-param> ...]
//! ```
//!
//! [`CryptoAttr::parse`] takes the attribute value (the text after
//! `a=crypto:`); `Display` writes it back. Parsing allocates only for the
//! optional strings; it never panics.
//!
//! Choices where the grammar leaves room:
//! - A line whose suite is not one of [`Suite::ALL`] is
//!   [`CryptoAttrError::UnknownSuite`], reported before its key parameters
//!   are looked at (other suites have other key formats): callers skip it.
//! - Several key parameters (`inline:...;inline:...`, RFC 4568 §6.1: more
//!   than one master key, told apart by MKI) are refused with
//!   [`CryptoAttrError::MultipleKeys`] rather than half-honoured: a context
//!   ([`Srtp`](super::Srtp)) holds one master key, and the packets of the
//!   other keys would all fail.
//! - MKIs of 1 to 4 bytes are supported; longer ones (the grammar allows up
//!   to 128) are [`CryptoAttrError::UnsupportedMki`].
//! - The lifetime is kept as written and not enforced.
//! - Session parameters are kept as written; see
//!   [`CryptoAttr::unsupported_session_param`].

use std::fmt::{self, Write};

use super::{MasterKey, Mki, Suite};

/// Why an `a=crypto` value was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoAttrError {
    /// The value does not have the shape
    /// `tag 1*WSP crypto-suite 1*WSP key-params *(1*WSP session-param)`.
    #[error("a=crypto syntax: {0}")]
    Syntax(&'static str),
    /// The tag is not 1 to 9 decimal digits.
    #[error("a=crypto tag is not 1 to 9 digits")]
    BadTag,
    /// A crypto suite this crate does not implement (or a misspelt one:
    /// names are case-sensitive). Callers skip such lines.
    #[error("unsupported crypto suite {0:?}")]
    UnknownSuite(String),
    /// A key method other than `inline` (RFC 4568 §6.1).
    #[error("unsupported key method {0:?}")]
    KeyMethod(String),
    /// More than one key parameter; see the module documentation.
    #[error("more than one key parameter in one a=crypto line")]
    MultipleKeys,
    /// The key-salt is not base64 (RFC 4648 §4) of exactly the suite's
    /// key and salt length.
    #[error("inline key is not base64 of the suite's key and salt")]
    BadKey,
    /// The lifetime is not `["2^"] 1*DIGIT`.
    #[error("bad key lifetime")]
    BadLifetime,
    /// The MKI is not `value:length` with a length of 1 to 128 bytes and a
    /// value that fits in it.
    #[error("bad MKI")]
    BadMki,
    /// A well-formed MKI longer than the 4 bytes supported here.
    #[error("MKI of {len} bytes is longer than the 4 supported")]
    UnsupportedMki {
        /// The MKI length in bytes.
        len: u8,
    },
}

/// One `a=crypto` attribute (RFC 4568 §9.1) for an SRTP suite.
///
/// `Debug` does not print the key (see [`MasterKey`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptoAttr {
    /// The tag that names this line in the answer (RFC 4568 §4.1); at most
    /// [`CryptoAttr::MAX_TAG`] to be written back as valid.
    pub tag: u32,
    /// The crypto suite.
    pub suite: Suite,
    /// The master key and salt of the first (only) `inline:` key.
    pub key: MasterKey,
    /// The key lifetime as written (`2^31`, `1048576`), if given
    /// (RFC 4568 §6.1); informational here.
    pub lifetime: Option<String>,
    /// The master key identifier, if given (RFC 4568 §6.1).
    pub mki: Option<Mki>,
    /// Session parameters as written, in order (RFC 4568 §6.3, e.g.
    /// `KDR=0`, `UNENCRYPTED_SRTCP`, `WSH=128`).
    pub session_params: Vec<String>,
}

impl CryptoAttr {
    /// Largest tag the grammar allows (`tag = 1*9DIGIT`).
    pub const MAX_TAG: u32 = 999_999_999;

    /// A line with `tag`, `suite` and `key`, no lifetime, MKI or session
    /// parameters.
    pub fn new(tag: u32, suite: Suite, key: MasterKey) -> CryptoAttr {
        CryptoAttr {
            tag,
            suite,
            key,
            lifetime: None,
            mki: None,
            session_params: Vec::new(),
        }
    }

    /// Parses an attribute value: the text after `a=crypto:` (RFC 4568
    /// §9.1). Surrounding whitespace (a trailing CR) is ignored; fields are
    /// separated by one or more spaces or tabs.
    pub fn parse(value: &str) -> Result<CryptoAttr, CryptoAttrError> {
        let value = value.trim_matches([' ', '\t', '\r', '\n']);
        let mut fields = value.split([' ', '\t']).filter(|f| !f.is_empty());
        let tag = fields.next().ok_or(CryptoAttrError::Syntax("empty"))?;
        let tag = parse_tag(tag)?;
        let suite = fields
            .next()
            .ok_or(CryptoAttrError::Syntax("no crypto suite"))?;
        let suite =
            Suite::from_name(suite).ok_or_else(|| CryptoAttrError::UnknownSuite(suite.into()))?;
        let key_params = fields
            .next()
            .ok_or(CryptoAttrError::Syntax("no key parameters"))?;
        let (key, lifetime, mki) = parse_key_params(suite, key_params)?;
        let mut session_params = Vec::new();
        for p in fields {
            // session-param = 1*(VCHAR)
            if !p.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(CryptoAttrError::Syntax("session parameter is not VCHAR"));
            }
            session_params.push(p.to_string());
        }
        Ok(CryptoAttr {
            tag,
            suite,
            key,
            lifetime,
            mki,
            session_params,
        })
    }

    /// The first session parameter that changes the transform in a way
    /// [`Srtp`](super::Srtp) does not implement, if any (RFC 4568 §6.3):
    /// `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`, `UNAUTHENTICATED_SRTP`, a
    /// key derivation rate other than `KDR=0`, `FEC_KEY`, and parameters
    /// this module does not know. `KDR=0`, `WSH=` (a window size hint; the
    /// window here is 128) and `FEC_ORDER=` (no FEC here) are harmless.
    pub fn unsupported_session_param(&self) -> Option<&str> {
        self.session_params
            .iter()
            .map(String::as_str)
            .find(|p| !(*p == "KDR=0" || p.starts_with("WSH=") || p.starts_with("FEC_ORDER=")))
    }
}

impl fmt::Display for CryptoAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} inline:", self.tag, self.suite.name())?;
        write_base64(f, self.key.as_bytes())?;
        if let Some(lifetime) = &self.lifetime {
            write!(f, "|{lifetime}")?;
        }
        if let Some(mki) = self.mki {
            write!(f, "|{}:{}", mki.value, mki.len)?;
        }
        for p in &self.session_params {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// `tag = 1*9DIGIT`.
fn parse_tag(s: &str) -> Result<u32, CryptoAttrError> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoAttrError::BadTag);
    }
    s.parse().map_err(|_| CryptoAttrError::BadTag)
}

/// `key-params = key-param *(";" key-param)`, `key-param = key-method ":"
/// key-info`, and for SRTP `key-info = key-salt ["|" lifetime] ["|" mki]`
/// (RFC 4568 §9.1, §6.1), with `suite`'s key-salt length.
fn parse_key_params(
    suite: Suite,
    s: &str,
) -> Result<(MasterKey, Option<String>, Option<Mki>), CryptoAttrError> {
    if s.contains(';') {
        return Err(CryptoAttrError::MultipleKeys);
    }
    let (method, info) = s
        .split_once(':')
        .ok_or(CryptoAttrError::Syntax("key parameter without ':'"))?;
    if method != "inline" {
        return Err(CryptoAttrError::KeyMethod(method.into()));
    }
    let mut parts = info.split('|');
    let key_salt = parts.next().unwrap_or_default();
    let mut raw = [0u8; MasterKey::MAX_LEN];
    let n = decode_base64(key_salt, &mut raw).ok_or(CryptoAttrError::BadKey)?;
    let key = MasterKey::from_suite_bytes(suite, &raw[..n]).ok_or(CryptoAttrError::BadKey)?;
    raw.fill(0);
    let mut lifetime = None;
    let mut mki = None;
    for part in parts {
        if mki.is_some() {
            // Nothing may follow the MKI.
            return Err(CryptoAttrError::Syntax("text after the MKI"));
        }
        if part.contains(':') {
            mki = Some(parse_mki(part)?);
        } else if lifetime.is_none() {
            check_lifetime(part)?;
            lifetime = Some(part.to_string());
        } else {
            return Err(CryptoAttrError::Syntax("second lifetime"));
        }
    }
    Ok((key, lifetime, mki))
}

/// `lifetime = ["2^"] 1*(DIGIT)`.
fn check_lifetime(s: &str) -> Result<(), CryptoAttrError> {
    let digits = s.strip_prefix("2^").unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CryptoAttrError::BadLifetime);
    }
    Ok(())
}

/// `mki = mki-value ":" mki-length`, `mki-value = 1*DIGIT`,
/// `mki-length = 1*3DIGIT` in 1..=128.
fn parse_mki(s: &str) -> Result<Mki, CryptoAttrError> {
    let (value, len) = s.split_once(':').ok_or(CryptoAttrError::BadMki)?;
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(value) || !all_digits(len) || len.len() > 3 {
        return Err(CryptoAttrError::BadMki);
    }
    let len: u8 = len.parse().map_err(|_| CryptoAttrError::BadMki)?;
    if !(1..=128).contains(&len) {
        return Err(CryptoAttrError::BadMki);
    }
    if len > 4 {
        return Err(CryptoAttrError::UnsupportedMki { len });
    }
    let value: u32 = value.parse().map_err(|_| CryptoAttrError::BadMki)?;
    Mki::new(value, len).ok_or(CryptoAttrError::BadMki)
}

/// The base64 alphabet of RFC 4648 §4.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Writes `bytes` in base64 with padding (RFC 4648 §4).
fn write_base64(f: &mut impl Write, bytes: &[u8]) -> fmt::Result {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                let six = (n >> (18 - 6 * i)) & 0x3f;
                f.write_char(char::from(ALPHABET[six as usize]))?;
            } else {
                f.write_char('=')?;
            }
        }
    }
    Ok(())
}

/// Decodes base64 (RFC 4648 §4; padding optional, no whitespace, unused
/// bits zero) into `out`; returns the number of bytes, or `None` for bad
/// text or more bytes than `out` holds.
fn decode_base64(s: &str, out: &mut [u8]) -> Option<usize> {
    let s = s.as_bytes();
    let unpadded = match s {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => rest,
        _ => s,
    };
    if !s.len().is_multiple_of(4) && unpadded.len() != s.len() {
        return None;
    }
    let mut n = 0;
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in unpadded {
        let six = ALPHABET.iter().position(|&a| a == c)?;
        acc = (acc << 6) | six as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
            acc &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding of the last byte, never a whole
    // sextet.
    if bits >= 6 || acc != 0 {
        return None;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Base64 strings below were made with Python's `base64` module.
    const B64_0_TO_29: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";
    const B64_FF_DOWN: &str = "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi";

    fn key_0_to_29() -> MasterKey {
        MasterKey::from_bytes(&std::array::from_fn(|i| i as u8))
    }

    #[test]
    fn parses_a_plain_line() {
        let a =
            CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{B64_0_TO_29}")).unwrap();
        assert_eq!(
            a,
            CryptoAttr::new(1, Suite::AesCm128HmacSha1_80, key_0_to_29())
        );
        assert_eq!(
            a.to_string(),
            format!("1 AES_CM_128_HMAC_SHA1_80 inline:{B64_0_TO_29}")
        );
        let b =
            CryptoAttr::parse(&format!("7 AES_CM_128_HMAC_SHA1_32 inline:{B64_FF_DOWN}")).unwrap();
        assert_eq!(b.suite, Suite::AesCm128HmacSha1_32);
        assert_eq!(
            b.key.as_bytes(),
            std::array::from_fn::<u8, 30, _>(|i| 0xff - i as u8)
        );
        assert_eq!(
            b.to_string(),
            format!("7 AES_CM_128_HMAC_SHA1_32 inline:{B64_FF_DOWN}")
        );
    }

    /// Each suite takes exactly its key and salt length in `inline:`
    /// (base64 by Python's `base64` module: bytes 0, 1, 2, ...), with or
    /// without padding, and refuses the other lengths.
    #[test]
    fn every_suite_and_its_key_length() {
        const B64_0_TO_45: &str =
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLQ==";
        let encode = |n: usize| {
            let mut s = String::new();
            write_base64(&mut s, &(0..n as u8).collect::<Vec<u8>>()).unwrap();
            s
        };
        assert_eq!(encode(46), B64_0_TO_45);
        assert_eq!(encode(28), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==");
        for suite in Suite::ALL {
            let n = suite.key_len() + suite.salt_len();
            let line = format!("3 {suite} inline:{}|2^31|2:1", encode(n));
            let a = CryptoAttr::parse(&line).unwrap();
            assert_eq!(a.suite, suite);
            assert_eq!(a.key.as_bytes(), (0..n as u8).collect::<Vec<u8>>());
            assert_eq!(a.key.key().len(), suite.key_len());
            assert_eq!(a.to_string(), line);
            let unpadded = line.replace('=', "");
            assert_eq!(CryptoAttr::parse(&unpadded), Ok(a), "{unpadded}");
            for other in [28, 30, 38, 44, 46] {
                if other != n {
                    assert_eq!(
                        CryptoAttr::parse(&format!("3 {suite} inline:{}", encode(other))),
                        Err(CryptoAttrError::BadKey),
                        "{suite} with {other} bytes"
                    );
                }
            }
        }
    }

    #[test]
    fn lifetime_and_mki_round_trip() {
        let line = format!("1 AES_CM_128_HMAC_SHA1_80 inline:{B64_0_TO_29}|2^31|1:1");
        let a = CryptoAttr::parse(&line).unwrap();
        assert_eq!(a.lifetime.as_deref(), Some("2^31"));
        assert_eq!(a.mki, Some(Mki { value: 1, len: 1 }));
        assert_eq!(a.to_string(), line);
        // MKI without lifetime; decimal lifetime; 4-byte MKI.
        for tail in ["|1:4", "|1048576", "|2^20|4294967295:4", "|255:1"] {
            let line = format!("2 AES_CM_128_HMAC_SHA1_32 inline:{B64_FF_DOWN}{tail}");
            let a = CryptoAttr::parse(&line).unwrap();
            assert_eq!(a.to_string(), line);
            assert_eq!(CryptoAttr::parse(&a.to_string()).unwrap(), a);
        }
        let a = CryptoAttr::parse(&format!(
            "2 AES_CM_128_HMAC_SHA1_32 inline:{B64_FF_DOWN}|1:4"
        ))
        .unwrap();
        assert_eq!(a.lifetime, None);
        assert_eq!(a.mki, Some(Mki { value: 1, len: 4 }));
    }

    /// Lines as Microsoft Teams / Skype for Business and common SBCs send
    /// them: lifetime `2^31`, MKI `1:1`, several lines with rising tags,
    /// CRLF, extra blanks.
    #[test]
    fn teams_style_lines() {
        let sdp = "a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^31|1:1\r\n\
                   a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31\r\n\
                   a=crypto:5 AES_256_CM_HMAC_SHA1_256 inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKiss|2^31\r\n\
                   a=crypto:9  AES_CM_128_HMAC_SHA1_32\tinline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR  KDR=0 WSH=64 \r\n";
        let mut ok = Vec::new();
        let mut skipped = Vec::new();
        for line in sdp.split("\r\n").filter(|l| !l.is_empty()) {
            let value = line.trim_start().strip_prefix("a=crypto:").unwrap();
            match CryptoAttr::parse(value) {
                Ok(a) => ok.push(a),
                Err(CryptoAttrError::UnknownSuite(s)) => skipped.push(s),
                Err(e) => panic!("{line}: {e}"),
            }
        }
        assert_eq!(skipped, ["AES_256_CM_HMAC_SHA1_256"]);
        assert_eq!(ok.len(), 3);
        assert_eq!(
            (ok[0].tag, ok[0].mki, ok[0].lifetime.as_deref()),
            (2, Some(Mki { value: 1, len: 1 }), Some("2^31"))
        );
        // Bytes from Python's base64.b64decode.
        assert_eq!(
            ok[0].key.as_bytes().to_vec(),
            hex("3d2d6e40255e7821426a75667239293f2c2335685c603d265d7b71695051")
        );
        assert_eq!(
            ok[1].key.as_bytes().to_vec(),
            hex("59535f5f5f73656d63746c202829207b093232303b7d0a7d0a756e6c6573")
        );
        assert_eq!((ok[1].tag, ok[1].mki), (3, None));
        assert_eq!(ok[2].suite, Suite::AesCm128HmacSha1_32);
        assert_eq!(ok[2].session_params, ["KDR=0", "WSH=64"]);
        assert_eq!(ok[2].unsupported_session_param(), None);
        assert_eq!(
            ok[2].to_string(),
            "9 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR KDR=0 WSH=64"
        );
    }

    #[test]
    fn session_params() {
        let a = CryptoAttr::parse(&format!(
            "1 AES_CM_128_HMAC_SHA1_80 inline:{B64_0_TO_29} FEC_ORDER=FEC_SRTP UNENCRYPTED_SRTCP KDR=1"
        ))
        .unwrap();
        assert_eq!(a.unsupported_session_param(), Some("UNENCRYPTED_SRTCP"));
        let mut b = a.clone();
        b.session_params.retain(|p| p != "UNENCRYPTED_SRTCP");
        assert_eq!(b.unsupported_session_param(), Some("KDR=1"));
    }

    #[test]
    fn errors() {
        let k = B64_0_TO_29;
        let cases: &[(&str, CryptoAttrError)] = &[
            ("", CryptoAttrError::Syntax("empty")),
            ("   ", CryptoAttrError::Syntax("empty")),
            ("1", CryptoAttrError::Syntax("no crypto suite")),
            (
                "1 AES_CM_128_HMAC_SHA1_80",
                CryptoAttrError::Syntax("no key parameters"),
            ),
            (
                "x AES_CM_128_HMAC_SHA1_80 inline:k",
                CryptoAttrError::BadTag,
            ),
            (
                "1234567890 AES_CM_128_HMAC_SHA1_80 inline:k",
                CryptoAttrError::BadTag,
            ),
            (
                "-1 AES_CM_128_HMAC_SHA1_80 inline:k",
                CryptoAttrError::BadTag,
            ),
            (
                "1 aes_cm_128_hmac_sha1_80 inline:k",
                CryptoAttrError::UnknownSuite("aes_cm_128_hmac_sha1_80".into()),
            ),
            (
                "1 AEAD_AES_192_GCM inline:whatever",
                CryptoAttrError::UnknownSuite("AEAD_AES_192_GCM".into()),
            ),
            // A known suite whose key is another suite's length.
            (
                "1 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd",
                CryptoAttrError::BadKey,
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 outline:k",
                CryptoAttrError::KeyMethod("outline".into()),
            ),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline",
                CryptoAttrError::Syntax("key parameter without ':'"),
            ),
            ("1 AES_CM_128_HMAC_SHA1_80 inline:", CryptoAttrError::BadKey),
            (
                "1 AES_CM_128_HMAC_SHA1_80 inline:AAEC",
                CryptoAttrError::BadKey,
            ),
        ];
        for (value, want) in cases {
            assert_eq!(CryptoAttr::parse(value).as_ref(), Err(want), "{value:?}");
        }
        let with =
            |tail: &str| CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{k}{tail}"));
        assert_eq!(
            with(&format!(";inline:{k}")),
            Err(CryptoAttrError::MultipleKeys)
        );
        assert_eq!(with("|2^"), Err(CryptoAttrError::BadLifetime));
        assert_eq!(with("|2^x"), Err(CryptoAttrError::BadLifetime));
        assert_eq!(with("|"), Err(CryptoAttrError::BadLifetime));
        assert_eq!(with("|1:0"), Err(CryptoAttrError::BadMki));
        assert_eq!(with("|1:129"), Err(CryptoAttrError::BadMki));
        assert_eq!(with("|1:0004"), Err(CryptoAttrError::BadMki));
        assert_eq!(with("|256:1"), Err(CryptoAttrError::BadMki));
        assert_eq!(with("|:1"), Err(CryptoAttrError::BadMki));
        assert_eq!(with("|1:x"), Err(CryptoAttrError::BadMki));
        assert_eq!(
            with("|1:5"),
            Err(CryptoAttrError::UnsupportedMki { len: 5 })
        );
        assert_eq!(
            with("|1:128"),
            Err(CryptoAttrError::UnsupportedMki { len: 128 })
        );
        assert_eq!(
            with("|1:1|2^31"),
            Err(CryptoAttrError::Syntax("text after the MKI"))
        );
        assert_eq!(
            with("|2^31|2^20"),
            Err(CryptoAttrError::Syntax("second lifetime"))
        );
        assert_eq!(
            with(" caf\u{e9}"),
            Err(CryptoAttrError::Syntax("session parameter is not VCHAR"))
        );
        // Key text: wrong length, bad characters, bad padding, stray bits.
        for key in [
            &k[..39],
            &k[..36],
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw*",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd=",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd==",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw_",
        ] {
            assert_eq!(
                CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{key}")),
                Err(CryptoAttrError::BadKey),
                "{key}"
            );
        }
    }

    #[test]
    fn base64_both_ways() {
        for len in 0..8usize {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(77)).collect();
            let mut s = String::new();
            write_base64(&mut s, &bytes).unwrap();
            assert_eq!(s.len(), len.div_ceil(3) * 4);
        }
        let mut s = String::new();
        write_base64(&mut s, key_0_to_29().as_bytes()).unwrap();
        assert_eq!(s, B64_0_TO_29);
        let mut out = [0u8; 46];
        assert_eq!(decode_base64(B64_FF_DOWN, &mut out), Some(30));
        assert_eq!(out[0], 0xff);
        assert_eq!(decode_base64(B64_FF_DOWN, &mut out[..29]), None);
    }

    #[test]
    fn debug_hides_the_key() {
        let a = CryptoAttr::new(1, Suite::AesCm128HmacSha1_80, key_0_to_29());
        assert!(format!("{a:?}").contains("redacted"));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn arb_attr() -> impl Strategy<Value = CryptoAttr> {
        (
            0..=CryptoAttr::MAX_TAG,
            proptest::sample::select(Suite::ALL.to_vec()),
            any::<[u8; 46]>(),
            proptest::option::of("(2\\^)?[0-9]{1,10}"),
            proptest::option::of((1u8..=4, any::<u32>())),
            proptest::collection::vec("[!-~]{1,12}", 0..4),
        )
            .prop_map(
                |(tag, suite, key, lifetime, mki, session_params)| CryptoAttr {
                    tag,
                    suite,
                    key: MasterKey::from_suite_bytes(
                        suite,
                        &key[..suite.key_len() + suite.salt_len()],
                    )
                    .unwrap(),
                    lifetime,
                    mki: mki.map(|(len, v)| Mki {
                        value: if len == 4 {
                            v
                        } else {
                            v & ((1 << (8 * len)) - 1)
                        },
                        len,
                    }),
                    session_params,
                },
            )
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(a in arb_attr()) {
            let text = a.to_string();
            prop_assert_eq!(CryptoAttr::parse(&text), Ok(a.clone()));
            // Also with blanks around and CRLF.
            prop_assert_eq!(CryptoAttr::parse(&format!(" {text}\r\n").replace(' ', " \t")), Ok(a));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = CryptoAttr::parse(&s);
        }

        #[test]
        fn parse_then_display_is_stable(s in "[0-9]{1,3} AES_CM_128_HMAC_SHA1_(80|32) inline:[A-Za-z0-9+/]{40}(\\|2\\^[0-9]{1,2})?(\\|[0-9]{1,3}:[1-4])?( [A-Z_=0-9]{1,8}){0,2}") {
            if let Ok(a) = CryptoAttr::parse(&s) {
                let again = CryptoAttr::parse(&a.to_string()).unwrap();
                prop_assert_eq!(again, a);
            }
        }
    }
}
