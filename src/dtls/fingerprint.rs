//! The certificate fingerprint of the SDP `a=fingerprint` attribute
//! (RFC 8122 §5, formerly RFC 4572 §5): a hash function name and the hash
//! of the DER certificate, written as upper-case hex bytes joined by
//! colons.
//!
//! ```text
//! fingerprint-attribute = "fingerprint" ":" hash-func SP fingerprint
//! hash-func = "sha-1" / "sha-224" / "sha-256" / "sha-384" / "sha-512" / ...
//! fingerprint = 2UHEX *(":" 2UHEX)
//! ```
//!
//! Parsing is lenient where peers are: the hash name is matched without
//! regard to case (RFC 8122 §5 makes it case-insensitive) and hex digits
//! may be lower case; writing is canonical (upper case).

use std::fmt;
use std::str::FromStr;

use openssl::hash::MessageDigest;
use openssl::x509::X509Ref;

/// A hash function of `a=fingerprint` (RFC 8122 §5; the names are those of
/// the IANA "Hash Function Textual Names" registry). MD2 and MD5 are not
/// accepted (RFC 8122 §5: they MUST NOT be used).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashFunc {
    /// `sha-1` (20 bytes).
    Sha1,
    /// `sha-224` (28 bytes).
    Sha224,
    /// `sha-256` (32 bytes): what this relay offers.
    Sha256,
    /// `sha-384` (48 bytes).
    Sha384,
    /// `sha-512` (64 bytes).
    Sha512,
}

impl HashFunc {
    /// Every supported hash function.
    pub const ALL: [HashFunc; 5] = [
        HashFunc::Sha1,
        HashFunc::Sha224,
        HashFunc::Sha256,
        HashFunc::Sha384,
        HashFunc::Sha512,
    ];

    /// The textual name, lower case as registered.
    pub fn name(self) -> &'static str {
        match self {
            HashFunc::Sha1 => "sha-1",
            HashFunc::Sha224 => "sha-224",
            HashFunc::Sha256 => "sha-256",
            HashFunc::Sha384 => "sha-384",
            HashFunc::Sha512 => "sha-512",
        }
    }

    /// The function named `name`, compared case-insensitively.
    pub fn from_name(name: &str) -> Option<HashFunc> {
        HashFunc::ALL
            .into_iter()
            .find(|h| h.name().eq_ignore_ascii_case(name))
    }

    /// Length of the hash in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            HashFunc::Sha1 => 20,
            HashFunc::Sha224 => 28,
            HashFunc::Sha256 => 32,
            HashFunc::Sha384 => 48,
            HashFunc::Sha512 => 64,
        }
    }

    fn message_digest(self) -> MessageDigest {
        match self {
            HashFunc::Sha1 => MessageDigest::sha1(),
            HashFunc::Sha224 => MessageDigest::sha224(),
            HashFunc::Sha256 => MessageDigest::sha256(),
            HashFunc::Sha384 => MessageDigest::sha384(),
            HashFunc::Sha512 => MessageDigest::sha512(),
        }
    }
}

impl fmt::Display for HashFunc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A certificate fingerprint (RFC 8122 §5): the hash function and the hash
/// of the certificate's DER encoding.
///
/// `FromStr` reads an attribute value such as `sha-256 AB:CD:...`;
/// `Display` writes it back with upper-case hex (RFC 8122 §5 `UHEX`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// The hash function.
    pub hash: HashFunc,
    /// The hash, [`HashFunc::digest_len`] bytes when parsed or computed.
    pub bytes: Vec<u8>,
}

impl Fingerprint {
    /// The fingerprint of `cert` under `hash` (RFC 8122 §5: the hash of the
    /// DER form of the certificate).
    pub(crate) fn of_cert(
        hash: HashFunc,
        cert: &X509Ref,
    ) -> Result<Fingerprint, openssl::error::ErrorStack> {
        let digest = cert.digest(hash.message_digest())?;
        Ok(Fingerprint {
            hash,
            bytes: digest.to_vec(),
        })
    }
}

impl FromStr for Fingerprint {
    type Err = FingerprintError;

    fn from_str(s: &str) -> Result<Fingerprint, FingerprintError> {
        // RFC 8122 §5: hash-func SP fingerprint. More than one space or a
        // tab is tolerated, as peers write them.
        let mut parts = s.split_ascii_whitespace();
        let (Some(name), Some(hex)) = (parts.next(), parts.next()) else {
            return Err(FingerprintError::Malformed);
        };
        if parts.next().is_some() {
            return Err(FingerprintError::Malformed);
        }
        let hash = HashFunc::from_name(name).ok_or_else(|| FingerprintError::UnknownHash {
            name: name.chars().take(32).collect(),
        })?;
        let mut bytes = Vec::with_capacity(hash.digest_len());
        for pair in hex.split(':') {
            let [hi, lo] = pair.as_bytes() else {
                return Err(FingerprintError::BadHex);
            };
            let (Some(hi), Some(lo)) = (hex_value(*hi), hex_value(*lo)) else {
                return Err(FingerprintError::BadHex);
            };
            if bytes.len() == hash.digest_len() {
                return Err(FingerprintError::WrongLength {
                    hash,
                    len: hex.split(':').count(),
                });
            }
            bytes.push(hi << 4 | lo);
        }
        if bytes.len() != hash.digest_len() {
            return Err(FingerprintError::WrongLength {
                hash,
                len: bytes.len(),
            });
        }
        Ok(Fingerprint { hash, bytes })
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.hash.name())?;
        for (i, b) in self.bytes.iter().enumerate() {
            let sep = if i == 0 { " " } else { ":" };
            write!(f, "{sep}{b:02X}")?;
        }
        Ok(())
    }
}

/// One hex digit's value.
fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why an `a=fingerprint` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Not `hash-func SP fingerprint`: a part is missing or there are more.
    #[error("fingerprint is not `hash-func SP fingerprint`")]
    Malformed,
    /// A hash function that is not supported (MD5, MD2, unregistered).
    #[error("unsupported fingerprint hash function {name:?}")]
    UnknownHash {
        /// The name as written (at most 32 characters of it).
        name: String,
    },
    /// A byte that is not two hex digits, or an empty byte between colons.
    #[error("fingerprint bytes are not colon-separated hex pairs")]
    BadHex,
    /// The number of bytes differs from the hash function's length.
    #[error("{hash} fingerprint of {len} bytes, expected {}", hash.digest_len())]
    WrongLength {
        /// The hash function named.
        hash: HashFunc,
        /// Bytes written.
        len: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SHA256: &str = "sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB:3E:4B:65:A6:CC:C2:57:A1:8A:8F:B6:1F";

    #[test]
    fn parses_and_writes() {
        let fp: Fingerprint = SHA256.parse().unwrap();
        assert_eq!(fp.hash, HashFunc::Sha256);
        assert_eq!(fp.bytes.len(), 32);
        assert_eq!(fp.bytes[0], 0x4a);
        assert_eq!(fp.to_string(), SHA256);
        // Case-insensitive name, lower-case hex, extra blanks.
        let lower = SHA256.replace("sha-256", "SHA-256").to_lowercase();
        let fp2: Fingerprint = format!("  {}\t", lower.replacen(' ', "   ", 1))
            .parse()
            .unwrap();
        assert_eq!(fp2, fp);
        let sha1: Fingerprint = "SHA-1 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"
            .parse()
            .unwrap();
        assert_eq!(sha1.hash, HashFunc::Sha1);
    }

    #[test]
    fn rejects() {
        let cases: &[(&str, FingerprintError)] = &[
            ("", FingerprintError::Malformed),
            ("sha-256", FingerprintError::Malformed),
            ("sha-256 AB:CD extra", FingerprintError::Malformed),
            (
                "md5 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
                FingerprintError::UnknownHash { name: "md5".into() },
            ),
            ("sha-256 AB:C", FingerprintError::BadHex),
            ("sha-256 AB::CD", FingerprintError::BadHex),
            ("sha-256 AB:CD:", FingerprintError::BadHex),
            ("sha-256 ABCD", FingerprintError::BadHex),
            ("sha-256 AB:GG", FingerprintError::BadHex),
            ("sha-256 AB:é", FingerprintError::BadHex),
            (
                "sha-256 AB:CD",
                FingerprintError::WrongLength {
                    hash: HashFunc::Sha256,
                    len: 2,
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<Fingerprint>().as_ref(), Err(want), "{text:?}");
        }
        let long = format!("{SHA256}:00");
        assert!(matches!(
            long.parse::<Fingerprint>(),
            Err(FingerprintError::WrongLength { len: 33, .. })
        ));
    }

    proptest! {
        #[test]
        fn round_trip(h in 0usize..5, seed in proptest::collection::vec(any::<u8>(), 64)) {
            let hash = HashFunc::ALL[h];
            let fp = Fingerprint { hash, bytes: seed[..hash.digest_len()].to_vec() };
            let text = fp.to_string();
            prop_assert_eq!(text.parse::<Fingerprint>(), Ok(fp.clone()));
            prop_assert_eq!(text.to_lowercase().parse::<Fingerprint>(), Ok(fp));
        }

        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            if let Ok(fp) = text.parse::<Fingerprint>() {
                prop_assert_eq!(fp.to_string().parse::<Fingerprint>(), Ok(fp));
            }
        }
    }
}
