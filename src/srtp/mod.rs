//! SDES-SRTP: SRTP and SRTCP (RFC 3711) with keys from the SDP `a=crypto`
//! attribute (RFC 4568), for the suites `AES_CM_128_HMAC_SHA1_80` and
//! `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.1, §6.2.2), with or without an
//! MKI.
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

mod aes_cm;
mod kdf;
mod replay;
#[cfg(test)]
mod vectors;

use std::fmt;

pub use context::{MAX_PACKET_LEN, MAX_SSRCS, REPLAY_WINDOW, Srtp, SrtpError};
pub use crypto_attr::{CryptoAttr, CryptoAttrError};

/// Most bytes [`Srtp::protect_rtp`] or [`Srtp::protect_rtcp`] add to a
/// packet: 4 (E flag and SRTCP index) + 4 (MKI) + 10 (authentication tag).
pub const MAX_OVERHEAD: usize = 18;

/// A crypto suite (RFC 4568 §6.2): AES-128 in counter mode with HMAC-SHA1
/// authentication, differing in the SRTP tag length.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80` (RFC 4568 §6.2.1): 80-bit tags.
    AesCm128HmacSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (RFC 4568 §6.2.2): 32-bit SRTP tags,
    /// 80-bit SRTCP tags.
    AesCm128HmacSha1_32,
}

impl Suite {
    /// Every supported suite, most preferred first.
    pub const ALL: [Suite; 2] = [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32];

    /// The suite's name in `a=crypto` (RFC 4568 §6.2).
    pub fn name(self) -> &'static str {
        match self {
            Suite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            Suite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The suite named `name`, compared exactly and case-sensitively as the
    /// RFC 4568 §9.1 grammar spells the registered names.
    pub fn from_name(name: &str) -> Option<Suite> {
        Suite::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Length in bytes of the SRTP authentication tag.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Suite::AesCm128HmacSha1_80 => 10,
            Suite::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Length in bytes of the SRTCP authentication tag: 80 bits for both
    /// suites (RFC 4568 §6.2.1, §6.2.2; RFC 3711 §5.2).
    pub fn rtcp_tag_len(self) -> usize {
        10
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An SRTP master key and master salt (RFC 3711 §8.2): 128-bit key, 112-bit
/// salt, as carried concatenated in `inline:` (RFC 4568 §6.1).
///
/// `Debug` does not print the key bytes. `Copy` because it is 30 bytes of
/// plain data that travels by value into contexts and control messages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MasterKey {
    /// The 16-byte master key.
    pub key: [u8; 16],
    /// The 14-byte master salt.
    pub salt: [u8; 14],
}

impl MasterKey {
    /// Length of key and salt together, as in `inline:` (30 bytes).
    pub const LEN: usize = 30;

    /// Splits the concatenated `key || salt`.
    pub fn from_bytes(b: &[u8; 30]) -> Self {
        let mut key = [0u8; 16];
        let mut salt = [0u8; 14];
        key.copy_from_slice(&b[..16]);
        salt.copy_from_slice(&b[16..]);
        MasterKey { key, salt }
    }

    /// The concatenated `key || salt`.
    pub fn to_bytes(&self) -> [u8; 30] {
        let mut b = [0u8; 30];
        b[..16].copy_from_slice(&self.key);
        b[16..].copy_from_slice(&self.salt);
        b
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey { key: <redacted>, salt: <redacted> }")
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
        for s in Suite::ALL {
            assert_eq!(Suite::from_name(s.name()), Some(s));
            assert_eq!(s.to_string(), s.name());
            assert_eq!(s.rtcp_tag_len(), 10);
        }
        assert_eq!(Suite::ALL[0], Suite::AesCm128HmacSha1_80);
        assert_eq!(Suite::AesCm128HmacSha1_80.rtp_tag_len(), 10);
        assert_eq!(Suite::AesCm128HmacSha1_32.rtp_tag_len(), 4);
        assert_eq!(Suite::from_name("aes_cm_128_hmac_sha1_80"), None);
        assert_eq!(Suite::from_name("AES_CM_128_HMAC_SHA1_80 "), None);
        assert_eq!(Suite::from_name("F8_128_HMAC_SHA1_80"), None);
    }

    #[test]
    fn master_key_bytes_and_redaction() {
        let b: [u8; 30] = std::array::from_fn(|i| i as u8 + 0xa0);
        let k = MasterKey::from_bytes(&b);
        assert_eq!(k.key[0], 0xa0);
        assert_eq!(k.salt[0], 0xb0);
        assert_eq!(k.to_bytes(), b);
        let dbg = format!("{k:?}");
        assert!(!dbg.contains("160") && !dbg.contains("a0"), "{dbg}");
        assert!(dbg.contains("redacted"));
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
