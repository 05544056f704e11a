//! SDES-SRTP: SRTP and SRTCP (RFC 3711) with keys from the SDP `a=crypto`
//! attribute (RFC 4568), for the twelve suites of [`Suite::ALL`]: AES-GCM
//! (RFC 7714), AES-128/192/256 in counter mode (RFC 3711 §4.1.1,
//! RFC 6188), AES-128 in f8 mode (RFC 3711 §4.1.2) and the null cipher,
//! the last three with HMAC-SHA1; with or without an MKI.
//!
//! This module owns the crypto suite names, the master key, the `a=crypto`
//! attribute ([`CryptoAttr`], RFC 4568 §9.1) and the packet transform
//! ([`Srtp`]: one direction of one master key, with its per-SSRC rollover
//! counters, SRTCP indexes and replay windows).
//!
//! Contract: everything is sans-IO and transforms packets in place in a
//! caller-provided buffer; after an SSRC is first seen no call allocates.
//! Bad input never panics: it is a typed [`SrtpError`] or
//! [`CryptoAttrError`]. Session keys are derived once, when the context is
//! made (RFC 3711 §4.3, key derivation rate 0). State changes (rollover
//! counter, highest index, replay window) only after a packet
//! authenticates. See `docs/srtp.md` for what is and is not supported.

pub mod context;
pub mod crypto_attr;

mod aead;
mod aes_cm;
mod f8;
mod kdf;
mod replay;
#[cfg(test)]
mod vectors;

use std::fmt;

pub use context::{MAX_PACKET_LEN, MAX_SSRCS, REPLAY_WINDOW, Srtp, SrtpError};
pub use crypto_attr::{CryptoAttr, CryptoAttrError};

/// Most bytes [`Srtp::protect_rtp`] or [`Srtp::protect_rtcp`] add to a
/// packet: 4 (E flag and SRTCP index) + 4 (MKI) + 16 (the AES-GCM tag,
/// RFC 7714 §7; the HMAC-SHA1 suites add at most 10).
pub const MAX_OVERHEAD: usize = 24;

/// A crypto suite (RFC 4568 §6.2, RFC 6188 §6, RFC 7714 §14.1): cipher,
/// key sizes and tag lengths.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `AEAD_AES_256_GCM` (RFC 7714 §14.1): AES-256-GCM, 96-bit salt,
    /// 128-bit tags.
    AeadAes256Gcm,
    /// `AEAD_AES_128_GCM` (RFC 7714 §14.1): AES-128-GCM, 96-bit salt,
    /// 128-bit tags.
    AeadAes128Gcm,
    /// `AES_256_CM_HMAC_SHA1_80` (RFC 6188 §6): AES-256 counter mode,
    /// 80-bit tags.
    Aes256CmHmacSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32` (RFC 6188 §6): 32-bit SRTP tags, 80-bit
    /// SRTCP tags.
    Aes256CmHmacSha1_32,
    /// `AES_192_CM_HMAC_SHA1_80` (RFC 6188 §6): AES-192 counter mode,
    /// 80-bit tags.
    Aes192CmHmacSha1_80,
    /// `AES_192_CM_HMAC_SHA1_32` (RFC 6188 §6): 32-bit SRTP tags, 80-bit
    /// SRTCP tags.
    Aes192CmHmacSha1_32,
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 §6.2.1): 80-bit tags.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2): 32-bit SRTP tags,
    /// 80-bit SRTCP tags.
    AesCm128HmacSha1_32,
    /// `F8_128_HMAC_SHA1_80` (RFC 4568 §6.2.3): AES-128 in f8 mode
    /// (RFC 3711 §4.1.2), 80-bit tags.
    F8_128HmacSha1_80,
    /// `F8_128_HMAC_SHA1_32`: as [`Suite::F8_128HmacSha1_80`] with 32-bit
    /// SRTP tags (not registered by RFC 4568; offered by libsrtp-based
    /// peers and rtpengine).
    F8_128HmacSha1_32,
    /// `NULL_HMAC_SHA1_80`: no encryption (RFC 3711 §4.1.3), 80-bit tags;
    /// the 128-bit key and 112-bit salt still derive the auth key.
    NullHmacSha1_80,
    /// `NULL_HMAC_SHA1_32`: no encryption, 32-bit SRTP tags, 80-bit SRTCP
    /// tags.
    NullHmacSha1_32,
}

/// How a suite encrypts (and whether it authenticates with HMAC-SHA1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CipherKind {
    /// AES counter mode (RFC 3711 §4.1.1, RFC 6188) + HMAC-SHA1.
    AesCm,
    /// AES-128 f8 mode (RFC 3711 §4.1.2) + HMAC-SHA1.
    F8,
    /// No encryption (RFC 3711 §4.1.3) + HMAC-SHA1.
    Null,
    /// AES-GCM, authenticated encryption (RFC 7714).
    Gcm,
}

impl Suite {
    /// Every supported suite, most preferred first (the order in which the
    /// relay offers them, as rtpengine does).
    pub const ALL: [Suite; 12] = [
        Suite::AeadAes256Gcm,
        Suite::AeadAes128Gcm,
        Suite::Aes256CmHmacSha1_80,
        Suite::Aes256CmHmacSha1_32,
        Suite::Aes192CmHmacSha1_80,
        Suite::Aes192CmHmacSha1_32,
        Suite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32,
        Suite::F8_128HmacSha1_80,
        Suite::F8_128HmacSha1_32,
        Suite::NullHmacSha1_80,
        Suite::NullHmacSha1_32,
    ];

    /// The suite's name in `a=crypto` (RFC 4568 §6.2).
    pub fn name(self) -> &'static str {
        match self {
            Suite::AeadAes256Gcm => "AEAD_AES_256_GCM",
            Suite::AeadAes128Gcm => "AEAD_AES_128_GCM",
            Suite::Aes256CmHmacSha1_80 => "AES_256_CM_HMAC_SHA1_80",
            Suite::Aes256CmHmacSha1_32 => "AES_256_CM_HMAC_SHA1_32",
            Suite::Aes192CmHmacSha1_80 => "AES_192_CM_HMAC_SHA1_80",
            Suite::Aes192CmHmacSha1_32 => "AES_192_CM_HMAC_SHA1_32",
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
            Suite::F8_128HmacSha1_80 => "F8_128_HMAC_SHA1_80",
            Suite::F8_128HmacSha1_32 => "F8_128_HMAC_SHA1_32",
            Suite::NullHmacSha1_80 => "NULL_HMAC_SHA1_80",
            Suite::NullHmacSha1_32 => "NULL_HMAC_SHA1_32",
        }
    }

    /// The suite named `name`, compared exactly and case-sensitively as the
    /// RFC 4568 §9.1 grammar spells the registered names.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Length in bytes of the SRTP authentication tag: 16 for AES-GCM
    /// (RFC 7714 §7), 10 or 4 for the HMAC-SHA1 suites.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AeadAes256Gcm | Suite::AeadAes128Gcm => 16,
            Suite::Aes256CmHmacSha1_32
            | Suite::Aes192CmHmacSha1_32
            | Suite::AesCm128HmacSha1_32
            | Suite::F8_128HmacSha1_32
            | Suite::NullHmacSha1_32 => 4,
            _ => 10,
        }
    }

    /// Length in bytes of the SRTCP authentication tag: 16 for AES-GCM
    /// (RFC 7714 §7), else 80 bits, the `_32` suites included (RFC 4568
    /// §6.2.2; RFC 3711 §5.2).
    pub fn rtcp_tag_len(self) -> usize {
        match self.cipher() {
            CipherKind::Gcm => 16,
            _ => 10,
        }
    }

    /// Length in bytes of the master key: 32 for the AES-256 suites, 24
    /// for AES-192, else 16.
    pub fn key_len(self) -> usize {
        match self {
            Suite::AeadAes256Gcm | Suite::Aes256CmHmacSha1_80 | Suite::Aes256CmHmacSha1_32 => 32,
            Suite::Aes192CmHmacSha1_80 | Suite::Aes192CmHmacSha1_32 => 24,
            _ => 16,
        }
    }

    /// Length in bytes of the master salt: 12 for AES-GCM (RFC 7714 §14.1),
    /// else 14 (RFC 3711 §8.2).
    pub fn salt_len(self) -> usize {
        match self.cipher() {
            CipherKind::Gcm => 12,
            _ => 14,
        }
    }

    /// How the suite encrypts.
    fn cipher(self) -> CipherKind {
        match self {
            Suite::AeadAes256Gcm | Suite::AeadAes128Gcm => CipherKind::Gcm,
            Suite::F8_128HmacSha1_80 | Suite::F8_128HmacSha1_32 => CipherKind::F8,
            Suite::NullHmacSha1_80 | Suite::NullHmacSha1_32 => CipherKind::Null,
            _ => CipherKind::AesCm,
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SRTP master key and master salt (RFC 3711 §8.2), as carried
/// concatenated in `inline:` (RFC 4568 §6.1): a 16-, 24- or 32-byte key and
/// a 14-byte salt (12 bytes for AES-GCM, RFC 7714 §14.1).
///
/// `Debug` does not print the key bytes. `Copy` because it is at most
/// 46 bytes of plain data that travels by value into contexts and control
/// messages. Bytes past the key and salt are always zero, so equality is
/// that of the key and salt.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    /// `key || salt`, zero after them.
    bytes: [u8; MasterKey::MAX_LEN],
    /// Key length in bytes: 16, 24 or 32.
    key_len: u8,
    /// Salt length in bytes: 12 or 14.
    salt_len: u8,
}

impl MasterKey {
    /// Length of key and salt together for the AES-128 suites other than
    /// AES-GCM (30 bytes).
    pub const LEN: usize = 30;
    /// Longest key and salt together (AES-256 counter mode: 32 + 14).
    pub const MAX_LEN: usize = 46;

    /// A master key from its key (16, 24 or 32 bytes) and salt (12 or 14
    /// bytes), or `None` for other lengths.
    pub fn new(key: &[u8], salt: &[u8]) -> Option<MasterKey> {
        if !matches!(key.len(), 16 | 24 | 32) || !matches!(salt.len(), 12 | 14) {
            return None;
        }
        let mut bytes = [0u8; MasterKey::MAX_LEN];
        bytes[..key.len()].copy_from_slice(key);
        bytes[key.len()..key.len() + salt.len()].copy_from_slice(salt);
        Some(MasterKey {
            bytes,
            // 32 and 14 at most, checked above.
            key_len: key.len() as u8,
            salt_len: salt.len() as u8,
        })
    }

    /// Splits the concatenated `key || salt` of an AES-128 suite other
    /// than AES-GCM (16 + 14 bytes).
    pub fn from_bytes(b: &[u8; 30]) -> MasterKey {
        let mut bytes = [0u8; MasterKey::MAX_LEN];
        bytes[..30].copy_from_slice(b);
        MasterKey {
            bytes,
            key_len: 16,
            salt_len: 14,
        }
    }

    /// Splits the concatenated `key || salt` of `suite`: `b` must be
    /// exactly [`Suite::key_len`] + [`Suite::salt_len`] bytes (for example
    /// from a random source), else `None`.
    pub fn from_suite_bytes(suite: Suite, b: &[u8]) -> Option<MasterKey> {
        if b.len() != suite.key_len() + suite.salt_len() {
            return None;
        }
        let (key, salt) = b.split_at(suite.key_len());
        MasterKey::new(key, salt)
    }

    /// The master key.
    pub fn key(&self) -> &[u8] {
        &self.bytes[..usize::from(self.key_len)]
    }

    /// The master salt.
    pub fn salt(&self) -> &[u8] {
        let k = usize::from(self.key_len);
        &self.bytes[k..k + usize::from(self.salt_len)]
    }

    /// The concatenated `key || salt`, as in `inline:`.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.key_len) + usize::from(self.salt_len)]
    }

    /// Whether the key and salt have `suite`'s lengths.
    pub fn fits(&self, suite: Suite) -> bool {
        usize::from(self.key_len) == suite.key_len()
            && usize::from(self.salt_len) == suite.salt_len()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MasterKey {{ key: <{} bytes redacted>, salt: <{} bytes redacted> }}",
            self.key_len, self.salt_len
        )
    }
}

/// A master key identifier (RFC 3711 §3.1; RFC 4568 §6.1 `value:length`):
/// `value` sent big-endian in `len` bytes between the payload and the tag.
///
/// This implementation carries 1 to 4 bytes. [`Mki::new`] checks that; a
/// hand-built `Mki` outside that range is clamped by [`Srtp::new`], which
/// uses `len.clamp(1, 4)` bytes and the low bytes of `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mki {
    /// The identifier.
    pub value: u32,
    /// Its length on the wire in bytes, 1..=4.
    pub len: u8,
}

impl Mki {
    /// An MKI of `len` bytes, or `None` when `len` is not 1..=4 or `value`
    /// does not fit in `len` bytes.
    pub fn new(value: u32, len: u8) -> Option<Mki> {
        if !(1..=4).contains(&len) {
            return None;
        }
        if len < 4 && value >> (8 * u32::from(len)) != 0 {
            return None;
        }
        Some(Mki { value, len })
    }

    /// The wire bytes: `value` big-endian in the first `len` bytes of the
    /// array (length clamped to 1..=4), and that length.
    pub fn to_wire(self) -> ([u8; 4], usize) {
        let len = usize::from(self.len.clamp(1, 4));
        let be = self.value.to_be_bytes();
        let mut out = [0u8; 4];
        out[..len].copy_from_slice(&be[4 - len..]);
        (out, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suite_names() {
        let names: Vec<&str> = Suite::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "AEAD_AES_256_GCM",
                "AEAD_AES_128_GCM",
                "AES_256_CM_HMAC_SHA1_80",
                "AES_256_CM_HMAC_SHA1_32",
                "AES_192_CM_HMAC_SHA1_80",
                "AES_192_CM_HMAC_SHA1_32",
                "AES_CM_128_HMAC_SHA1_80",
                "AES_CM_128_HMAC_SHA1_32",
                "F8_128_HMAC_SHA1_80",
                "F8_128_HMAC_SHA1_32",
                "NULL_HMAC_SHA1_80",
                "NULL_HMAC_SHA1_32",
            ]
        );
        for s in Suite::ALL {
            assert_eq!(Suite::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
            let gcm = s.name().starts_with("AEAD");
            assert_eq!(s.rtcp_tag_len(), if gcm { 16 } else { 10 });
            let want = if gcm {
                16
            } else if s.name().ends_with("_32") {
                4
            } else {
                10
            };
            assert_eq!(s.rtp_tag_len(), want, "{s}");
            assert!(s.rtcp_tag_len() + 4 + 4 <= MAX_OVERHEAD);
        }
        // `inline:` lengths (key || salt).
        let lens: Vec<usize> = Suite::ALL
            .iter()
            .map(|s| s.key_len() + s.salt_len())
            .collect();
        assert_eq!(lens, [44, 28, 46, 46, 38, 38, 30, 30, 30, 30, 30, 30]);
        assert_eq!(Suite::from_name("aes_cm_128_hmac_sha1_80"), None);
        assert_eq!(Suite::from_name("AES_CM_128_HMAC_SHA1_80 "), None);
        assert_eq!(Suite::from_name("AEAD_AES_192_GCM"), None);
    }

    #[test]
    fn master_key_bytes_and_redaction() {
        let b: [u8; 30] = std::array::from_fn(|i| i as u8 + 0xa0);
        let k = MasterKey::from_bytes(&b);
        assert_eq!(k.key(), &b[..16]);
        assert_eq!(k.salt(), &b[16..]);
        assert_eq!(k.as_bytes(), b);
        assert!(k.fits(Suite::AesCm128HmacSha1_80) && k.fits(Suite::NullHmacSha1_32));
        assert!(!k.fits(Suite::AeadAes128Gcm) && !k.fits(Suite::Aes256CmHmacSha1_80));
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("160") && !dbg.contains("a0"), "{dbg}");
        assert!(dbg.contains("redacted"));
        for suite in Suite::ALL {
            let n = suite.key_len() + suite.salt_len();
            let raw: Vec<u8> = (0..n as u8).collect();
            let k = MasterKey::from_suite_bytes(suite, &raw).expect("suite size");
            assert!(k.fits(suite));
            assert_eq!(k.as_bytes(), raw);
            assert_eq!(k.key(), &raw[..suite.key_len()]);
            assert_eq!(MasterKey::new(k.key(), k.salt()), Some(k));
            assert_eq!(MasterKey::from_suite_bytes(suite, &raw[1..]), None);
        }
        assert_eq!(MasterKey::new(&[0; 15], &[0; 14]), None);
        assert_eq!(MasterKey::new(&[0; 16], &[0; 13]), None);
        // Same bytes, other split: not equal.
        assert_ne!(
            MasterKey::new(&[1; 16], &[1; 12]),
            MasterKey::new(&[1; 16], &[1; 14])
        );
    }

    #[test]
    fn mki_wire() {
        assert_eq!(Mki::new(1, 1).map(Mki::to_wire), Some(([1, 0, 0, 0], 1)));
        assert_eq!(
            Mki::new(0xdead_beef, 4).map(Mki::to_wire),
            Some(([0xde, 0xad, 0xbe, 0xef], 4))
        );
        assert_eq!(
            Mki::new(0x102, 2).map(Mki::to_wire),
            Some(([1, 2, 0, 0], 2))
        );
        assert_eq!(Mki::new(256, 1), None);
        assert_eq!(Mki::new(0, 0), None);
        assert_eq!(Mki::new(0, 5), None);
        // Out-of-range hand-built values are clamped, never panic.
        assert_eq!(
            Mki {
                value: 0x1234,
                len: 0
            }
            .to_wire(),
            ([0x34, 0, 0, 0], 1)
        );
        assert_eq!(Mki { value: 7, len: 9 }.to_wire(), ([0, 0, 0, 7], 4));
    }
}
