//! AES-GCM for SRTP and SRTCP (RFC 7714): the AEAD itself (RustCrypto's
//! `aes-gcm`, in place, 128-bit tags) and the 96-bit IVs of RFC 7714 §8.1
//! and §9.1.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce, Tag};

/// Length of the AES-GCM tag (RFC 7714 §7: 16 octets).
pub(super) const TAG_LEN: usize = 16;

/// AES-GCM keyed with a 128- or 256-bit session key.
// Made once per context and used per packet: kept inline (no
// indirection per packet) although the variants differ in size.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(super) enum Gcm {
    /// `AEAD_AES_128_GCM`.
    A128(Aes128Gcm),
    /// `AEAD_AES_256_GCM`.
    A256(Aes256Gcm),
}

impl Gcm {
    /// AES-GCM under `key`, or `None` unless it is 16 or 32 bytes.
    pub(super) fn new(key: &[u8]) -> Option<Gcm> {
        Some(match key.len() {
            16 => Gcm::A128(Aes128Gcm::new_from_slice(key).ok()?),
            32 => Gcm::A256(Aes256Gcm::new_from_slice(key).ok()?),
            _ => return None,
        })
    }

    /// Encrypts `data` in place, authenticating `aad` with it
    /// (RFC 7714 §5.1); returns the tag, or `None` for data longer than
    /// GCM allows (far beyond a datagram).
    pub(super) fn seal(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8]) -> Option<[u8; 16]> {
        let nonce = Nonce::from_slice(iv);
        let tag = match self {
            Gcm::A128(c) => c.encrypt_in_place_detached(nonce, aad, data),
            Gcm::A256(c) => c.encrypt_in_place_detached(nonce, aad, data),
        }
        .ok()?;
        Some(tag.into())
    }

    /// Checks `tag` over `aad` and the ciphertext `data` and decrypts it in
    /// place (RFC 7714 §5.2). `false` leaves `data` unchanged: the tag is
    /// checked (in constant time) before anything is decrypted.
    pub(super) fn open(&self, iv: &[u8; 12], aad: &[u8], data: &mut [u8], tag: &[u8]) -> bool {
        if tag.len() != TAG_LEN {
            return false;
        }
        let nonce = Nonce::from_slice(iv);
        let tag = Tag::from_slice(tag);
        match self {
            Gcm::A128(c) => c.decrypt_in_place_detached(nonce, aad, data, tag),
            Gcm::A256(c) => c.decrypt_in_place_detached(nonce, aad, data, tag),
        }
        .is_ok()
    }
}

/// The SRTP IV of RFC 7714 §8.1:
/// `IV = (0x0000 || SSRC || ROC || SEQ) XOR salt`, where `ROC || SEQ` is
/// the 48-bit packet index.
pub(super) fn rtp_iv(salt: &[u8; 12], ssrc: u32, index: u64) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..].copy_from_slice(&index.to_be_bytes()[2..]);
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    iv
}

/// The SRTCP IV of RFC 7714 §9.1:
/// `IV = (0x0000 || SSRC || 0x0000 || 0 || SRTCP index) XOR salt`.
pub(super) fn rtcp_iv(salt: &[u8; 12], ssrc: u32, index: u32) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..].copy_from_slice(&(index & 0x7fff_ffff).to_be_bytes());
    for (b, s) in iv.iter_mut().zip(salt) {
        *b ^= s;
    }
    iv
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; 12] = *b"Quid pro quo";

    /// The IVs printed in RFC 7714 §16.1.1 and §17.1.
    #[test]
    fn rfc7714_ivs() {
        assert_eq!(
            rtp_iv(&SALT, 0x5501_a0b2, 0xf17b),
            [
                0x51, 0x75, 0x3c, 0x65, 0x80, 0xc2, 0x72, 0x6f, 0x20, 0x71, 0x84, 0x14
            ]
        );
        assert_eq!(
            rtcp_iv(&SALT, 0x4d61_7273, 0x5d4),
            [
                0x51, 0x75, 0x24, 0x05, 0x52, 0x03, 0x72, 0x6f, 0x20, 0x71, 0x70, 0xbb
            ]
        );
    }

    #[test]
    fn open_failure_leaves_data() {
        let gcm = Gcm::new(&[1; 32]).expect("32 bytes");
        let iv = [2; 12];
        let mut data = *b"payload";
        let tag = gcm.seal(&iv, b"aad", &mut data).expect("seal");
        let sealed = data;
        let mut bad = tag;
        bad[0] ^= 1;
        assert!(!gcm.open(&iv, b"aad", &mut data, &bad));
        assert_eq!(data, sealed);
        assert!(!gcm.open(&iv, b"aae", &mut data, &tag));
        assert!(!gcm.open(&iv, b"aad", &mut data, &tag[..15]));
        assert!(gcm.open(&iv, b"aad", &mut data, &tag));
        assert_eq!(&data, b"payload");
        assert!(Gcm::new(&[0; 24]).is_none());
    }
}
