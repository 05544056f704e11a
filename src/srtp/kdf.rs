//! SRTP key derivation (RFC 3711 §4.3) with the AES-CM PRF (§4.3.3; with
//! AES-192 and AES-256 for the RFC 6188 suites, RFC 6188 §4; with a 96-bit
//! master salt for AES-GCM, RFC 7714 §11) and a key derivation rate of 0:
//! each master key yields its session keys once.

use aes::cipher::KeyInit;
use hmac::Hmac;
use sha1::Sha1;

use super::aead::Gcm;
use super::aes_cm::{self, Aes};
use super::f8::F8;
use super::{CipherKind, MasterKey, Suite};

/// HMAC-SHA1 (RFC 3711 §4.2.1).
pub(super) type HmacSha1 = Hmac<Sha1>;

/// Labels of RFC 3711 §4.3.1 (SRTP) and §4.3.2 (SRTCP).
const LABELS_RTP: Labels = Labels {
    encryption: 0x00,
    authentication: 0x01,
    salt: 0x02,
};
const LABELS_RTCP: Labels = Labels {
    encryption: 0x03,
    authentication: 0x04,
    salt: 0x05,
};

/// The three labels of one protocol.
struct Labels {
    encryption: u8,
    authentication: u8,
    salt: u8,
}

/// Session keys of SRTP or of SRTCP, ready to use: key schedules and MAC
/// state made once.
// Made once per context and used per packet: kept inline (no
// indirection per packet) although the variants differ in size.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(super) enum SessionKeys {
    /// A cipher with HMAC-SHA1 authentication (RFC 3711 §4.2).
    Hmac {
        /// The encryption transform under `k_e`.
        cipher: Cipher,
        /// Session salt `k_s` (112 bits).
        salt: [u8; 14],
        /// HMAC-SHA1 keyed with the 160-bit session authentication key
        /// `k_a` (RFC 3711 §8.2), cloned per packet.
        auth: HmacSha1,
    },
    /// AES-GCM (RFC 7714): encryption and authentication in one.
    Aead {
        /// AES-GCM under `k_e`.
        gcm: Gcm,
        /// Session salt (96 bits, RFC 7714 §11).
        salt: [u8; 12],
    },
}

/// The encryption of an HMAC-SHA1 suite, keyed.
// Made once per context and used per packet: kept inline (no
// indirection per packet) although the variants differ in size.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub(super) enum Cipher {
    /// AES counter mode (RFC 3711 §4.1.1, RFC 6188).
    AesCm(Aes),
    /// AES-128 f8 mode (RFC 3711 §4.1.2).
    F8(F8),
    /// The null cipher (RFC 3711 §4.1.3): the payload stays as it is.
    Null,
}

impl SessionKeys {
    /// SRTP session keys (labels 0, 1, 2), or `None` when `master` does
    /// not have `suite`'s lengths.
    pub(super) fn rtp(suite: Suite, master: &MasterKey) -> Option<Self> {
        Self::derive(suite, master, &LABELS_RTP)
    }

    /// SRTCP session keys (labels 3, 4, 5), or `None` as for
    /// [`SessionKeys::rtp`].
    pub(super) fn rtcp(suite: Suite, master: &MasterKey) -> Option<Self> {
        Self::derive(suite, master, &LABELS_RTCP)
    }

    fn derive(suite: Suite, master: &MasterKey, labels: &Labels) -> Option<Self> {
        if !master.fits(suite) {
            return None;
        }
        // RFC 6188 §4, RFC 7714 §11: the PRF is AES-CM under the master
        // key, of the master key's size.
        let prf = Aes::new(master.key())?;
        let salt = master.salt();
        // The session encryption key is as long as the master key (RFC 3711
        // §8.2, RFC 6188 §6, RFC 7714 §11).
        let mut k_e = [0u8; 32];
        let k_e = &mut k_e[..suite.key_len()];
        derive(&prf, salt, labels.encryption, k_e);
        let keys = match suite.cipher() {
            CipherKind::Gcm => {
                let mut k_s = [0u8; 12];
                derive(&prf, salt, labels.salt, &mut k_s);
                SessionKeys::Aead {
                    gcm: Gcm::new(k_e)?,
                    salt: k_s,
                }
            }
            kind => {
                let mut k_a = [0u8; 20];
                let mut k_s = [0u8; 14];
                derive(&prf, salt, labels.authentication, &mut k_a);
                derive(&prf, salt, labels.salt, &mut k_s);
                let cipher = match kind {
                    CipherKind::F8 => Cipher::F8(F8::new(&k_e.try_into().ok()?, &k_s)),
                    CipherKind::Null => Cipher::Null,
                    _ => Cipher::AesCm(Aes::new(k_e)?),
                };
                let keys = SessionKeys::hmac(cipher, k_s, &k_a);
                k_a.fill(0);
                keys
            }
        };
        k_e.fill(0);
        Some(keys)
    }

    /// HMAC-SHA1 session keys from the session salt and auth key.
    pub(super) fn hmac(cipher: Cipher, salt: [u8; 14], k_a: &[u8; 20]) -> Self {
        // RFC 2104 §2: a key shorter than the 64-byte block is padded with
        // zeros, so the padded key is the same HMAC key (and cannot fail).
        let mut block_key = [0u8; 64];
        block_key[..20].copy_from_slice(k_a);
        let auth = <HmacSha1 as KeyInit>::new(&block_key.into());
        block_key.fill(0);
        SessionKeys::Hmac { cipher, salt, auth }
    }
}

/// `PRF_n(k_master, x)` of RFC 3711 §4.3.3 into `out` (n = 8 * out.len()):
/// AES-CM under the master key with `IV = x * 2^16`, where
/// `x = key_id XOR k_s` and `key_id = label || r`, `r = index DIV kdr = 0`
/// (§4.3.1). `key_id` is 7 bytes aligned to the right of the 14-byte salt,
/// so the label meets salt byte 7. A 12-byte AES-GCM master salt is padded
/// with two zero bytes on the right to 112 bits first (RFC 7714 §11, as
/// libsrtp does).
fn derive(prf: &Aes, master_salt: &[u8], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    iv[7] ^= label;
    out.fill(0);
    aes_cm::apply_keystream(prf, &iv, out);
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, Item};
    use super::*;

    /// RFC 3711 Appendix B.3 (AES-128, with the whole 94-byte auth key of
    /// the example) and RFC 6188 §7.2 (AES-256) and §7.4 (AES-192), as
    /// written to vectors.txt by the generator, which checked them against
    /// the RFCs.
    #[test]
    fn rfc3711_b3_and_rfc6188_key_derivation() {
        let mut checked = [0; 3];
        for item in vectors::items() {
            let Item::Kdf {
                key,
                salt,
                label,
                out,
            } = item
            else {
                continue;
            };
            let prf = Aes::new(&key).expect("AES key");
            let mut got = vec![0u8; out.len()];
            derive(&prf, &salt, label, &mut got);
            assert_eq!(got, out, "key of {} bytes, label {label}", key.len());
            checked[key.len() / 8 - 2] += 1;
        }
        assert_eq!(checked, [3, 3, 3]);
    }

    #[test]
    fn session_salt_matches_b3() {
        let master = MasterKey::new(
            &vectors::hex("e1f97a0d3e018be0d64fa32c06de4139"),
            &vectors::hex("0ec675ad498afeebb6960b3aabe6"),
        )
        .expect("lengths");
        let Some(SessionKeys::Hmac { salt, .. }) =
            SessionKeys::rtp(Suite::AesCm128HmacSha1_80, &master)
        else {
            panic!("HMAC keys");
        };
        assert_eq!(salt.to_vec(), vectors::hex("30cbbc08863d8c85d49db34a9ae1"));
    }

    #[test]
    fn keys_of_the_wrong_size_are_refused() {
        let k128 = MasterKey::from_bytes(&[7; 30]);
        let k256 = MasterKey::new(&[7; 32], &[7; 14]).expect("lengths");
        let gcm = MasterKey::new(&[7; 16], &[7; 12]).expect("lengths");
        assert!(SessionKeys::rtp(Suite::Aes256CmHmacSha1_80, &k128).is_none());
        assert!(SessionKeys::rtcp(Suite::AesCm128HmacSha1_80, &k256).is_none());
        assert!(SessionKeys::rtp(Suite::AeadAes128Gcm, &k128).is_none());
        assert!(SessionKeys::rtp(Suite::AeadAes128Gcm, &gcm).is_some());
        assert!(SessionKeys::rtp(Suite::Aes256CmHmacSha1_32, &k256).is_some());
        for suite in Suite::ALL {
            let raw = vec![9u8; suite.key_len() + suite.salt_len()];
            let k = MasterKey::from_suite_bytes(suite, &raw).expect("size");
            assert!(SessionKeys::rtp(suite, &k).is_some(), "{suite}");
            assert!(SessionKeys::rtcp(suite, &k).is_some(), "{suite}");
        }
    }
}
