//! AES-128 in f8 mode (RFC 3711 §4.1.2): the keystream of the `F8_128_*`
//! suites and their SRTP and SRTCP IVs.
//!
//! f8 is an output-feedback mode: each keystream block depends on the one
//! before, so a keystream is generated block by block from the start of
//! the packet's encrypted part.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Block};

/// A session key ready for f8: AES-128 under `k_e` and under `k_e XOR m`.
#[derive(Clone)]
pub(super) struct F8 {
    /// AES under the session encryption key `k_e`.
    cipher: Aes128,
    /// AES under `k_e XOR m`, which encrypts the IV (RFC 3711 §4.1.2.1).
    masked: Aes128,
}

impl F8 {
    /// f8 under the 128-bit session key `k_e` with the session salt `k_s`
    /// (112 bits in SRTP; any length up to 16 bytes): the mask is
    /// `m = k_s || 0x555..5` (RFC 3711 §4.1.2.1).
    pub(super) fn new(k_e: &[u8; 16], k_s: &[u8]) -> F8 {
        let mut masked = [0x55u8; 16];
        for (m, s) in masked.iter_mut().zip(k_s) {
            *m = *s;
        }
        for (m, k) in masked.iter_mut().zip(k_e) {
            *m ^= k;
        }
        let f8 = F8 {
            cipher: Aes128::new(k_e.into()),
            masked: Aes128::new(&masked.into()),
        };
        masked.fill(0);
        f8
    }

    /// XORs `data` with the f8 keystream of `iv` (RFC 3711 §4.1.2.1):
    /// `IV' = E(k_e XOR m, IV)`, `S(-1) = 0`,
    /// `S(j) = E(k_e, IV' XOR j XOR S(j-1))`. Encrypts and decrypts alike.
    pub(super) fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        let mut iv_prime = Block::from(*iv);
        self.masked.encrypt_block(&mut iv_prime);
        let mut s = Block::default();
        for (j, chunk) in data.chunks_mut(16).enumerate() {
            // `j` counts 16-byte blocks of one packet (at most 2^12 for
            // 64 KiB), XORed into the low 32 bits of the 128-bit counter.
            let j = (j as u32).to_be_bytes();
            for (i, b) in s.iter_mut().enumerate() {
                let counter = if i >= 12 { j[i - 12] } else { 0 };
                *b ^= iv_prime[i] ^ counter;
            }
            self.cipher.encrypt_block(&mut s);
            for (d, k) in chunk.iter_mut().zip(s.iter()) {
                *d ^= k;
            }
        }
    }
}

/// The SRTP IV of RFC 3711 §4.1.2.2:
/// `IV = 0x00 || M || PT || SEQ || TS || SSRC || ROC`, that is the first 12
/// bytes of the RTP header with the first byte zeroed, then the ROC.
pub(super) fn rtp_iv(header: &[u8; 12], roc: u32) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[1..12].copy_from_slice(&header[1..]);
    iv[12..].copy_from_slice(&roc.to_be_bytes());
    iv
}

/// The SRTCP IV of RFC 3711 §4.1.2.3:
/// `IV = 0 (32 bits) || E || SRTCP index || V || P || RC || PT || length || SSRC`,
/// with `word` the E flag and index and `header` the first 8 bytes of the
/// RTCP packet.
pub(super) fn rtcp_iv(word: u32, header: &[u8; 8]) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[4..8].copy_from_slice(&word.to_be_bytes());
    iv[8..].copy_from_slice(header);
    iv
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, Item};
    use super::*;

    /// RFC 3711 Appendix B.1, as written to vectors.txt by the generator,
    /// which checked it against the RFC: IV from the header and ROC, and
    /// the ciphertext of the 39-byte payload (three blocks, the last
    /// partial).
    #[test]
    fn rfc3711_b1_f8() {
        let mut checked = 0;
        for item in vectors::items() {
            let Item::F8 {
                key,
                salt,
                header,
                roc,
                iv,
                plain,
                cipher,
            } = item
            else {
                continue;
            };
            let header: [u8; 12] = header.try_into().expect("12 bytes");
            assert_eq!(rtp_iv(&header, roc).to_vec(), iv);
            let f8 = F8::new(&key, &salt);
            let mut data = plain.clone();
            f8.apply_keystream(&rtp_iv(&header, roc), &mut data);
            assert_eq!(data, cipher);
            f8.apply_keystream(&rtp_iv(&header, roc), &mut data);
            assert_eq!(data, plain);
            checked += 1;
        }
        assert_eq!(checked, 1);
    }

    #[test]
    fn rtcp_iv_layout() {
        let header = [0x81, 0xc8, 0, 0x0d, 0x4d, 0x61, 0x72, 0x73];
        assert_eq!(
            rtcp_iv(0x8000_05d4, &header),
            [
                0, 0, 0, 0, 0x80, 0, 0x05, 0xd4, 0x81, 0xc8, 0, 0x0d, 0x4d, 0x61, 0x72, 0x73
            ]
        );
    }

    #[test]
    fn prefixes_agree() {
        let f8 = F8::new(&[3; 16], &[4; 14]);
        let iv = [9u8; 16];
        let mut whole = vec![0u8; 100];
        f8.apply_keystream(&iv, &mut whole);
        for len in [0, 1, 15, 16, 17, 99] {
            let mut part = vec![0u8; len];
            f8.apply_keystream(&iv, &mut part);
            assert_eq!(part, whole[..len]);
        }
    }
}
