//! SRTP key derivation (RFC 3711 §4.3) with the AES-CM PRF (§4.3.3) and a
//! key derivation rate of 0: each master key yields its session keys once.

use aes::Aes128;
use aes::cipher::KeyInit;
use hmac::Hmac;
use sha1::Sha1;

use super::MasterKey;
use super::aes_cm;

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

/// Session keys of SRTP or of SRTCP, ready to use: the AES key schedule
/// and the HMAC state keyed once.
#[derive(Clone)]
pub(super) struct SessionKeys {
    /// AES-128 keyed with the session encryption key `k_e`.
    pub(super) cipher: Aes128,
    /// Session salt `k_s` (112 bits).
    pub(super) salt: [u8; 14],
    /// HMAC-SHA1 keyed with the 160-bit session authentication key `k_a`
    /// (RFC 3711 §8.2), cloned per packet.
    pub(super) auth: HmacSha1,
}

impl SessionKeys {
    /// SRTP session keys (labels 0, 1, 2).
    pub(super) fn rtp(master: &MasterKey) -> Self {
        Self::derive(master, &LABELS_RTP)
    }

    /// SRTCP session keys (labels 3, 4, 5).
    pub(super) fn rtcp(master: &MasterKey) -> Self {
        Self::derive(master, &LABELS_RTCP)
    }

    fn derive(master: &MasterKey, labels: &Labels) -> Self {
        let prf = Aes128::new(&master.key.into());
        let mut k_e = [0u8; 16];
        let mut k_a = [0u8; 20];
        let mut salt = [0u8; 14];
        derive(&prf, &master.salt, labels.encryption, &mut k_e);
        derive(&prf, &master.salt, labels.authentication, &mut k_a);
        derive(&prf, &master.salt, labels.salt, &mut salt);
        let cipher = Aes128::new(&k_e.into());
        // RFC 2104 §2: a key shorter than the 64-byte block is padded with
        // zeros, so the padded key is the same HMAC key (and cannot fail).
        let mut block_key = [0u8; 64];
        block_key[..20].copy_from_slice(&k_a);
        let auth = <HmacSha1 as KeyInit>::new(&block_key.into());
        k_e.fill(0);
        k_a.fill(0);
        block_key.fill(0);
        SessionKeys { cipher, salt, auth }
    }
}

/// `PRF_n(k_master, x)` of RFC 3711 §4.3.3 into `out` (n = 8 * out.len()):
/// AES-CM under the master key with `IV = x * 2^16`, where
/// `x = key_id XOR k_s` and `key_id = label || r`, `r = index DIV kdr = 0`
/// (§4.3.1). `key_id` is 7 bytes aligned to the right of the 14-byte salt,
/// so the label meets salt byte 7.
fn derive(prf: &Aes128, master_salt: &[u8; 14], label: u8, out: &mut [u8]) {
    let mut x = *master_salt;
    x[7] ^= label;
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&x);
    out.fill(0);
    aes_cm::apply_keystream(prf, &iv, out);
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, Item};
    use super::*;

    /// RFC 3711 Appendix B.3, as written to vectors.txt by the generator,
    /// which checked it against the RFC: cipher key, salt and the whole
    /// 94-byte auth key of the example.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let mut checked = 0;
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
            let prf = Aes128::new(&key.into());
            let mut got = vec![0u8; out.len()];
            derive(&prf, &salt, label, &mut got);
            assert_eq!(got, out, "label {label}");
            checked += 1;
        }
        assert_eq!(checked, 3);
    }

    #[test]
    fn session_salt_matches_b3() {
        let master = MasterKey {
            key: hex16("e1f97a0d3e018be0d64fa32c06de4139"),
            salt: vectors::hex("0ec675ad498afeebb6960b3aabe6")
                .try_into()
                .expect("14 bytes"),
        };
        let keys = SessionKeys::rtp(&master);
        assert_eq!(
            keys.salt.to_vec(),
            vectors::hex("30cbbc08863d8c85d49db34a9ae1")
        );
    }

    fn hex16(s: &str) -> [u8; 16] {
        vectors::hex(s).try_into().expect("16 bytes")
    }
}
