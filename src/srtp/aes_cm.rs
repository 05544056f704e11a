//! AES in counter mode (RFC 3711 §4.1.1; AES-192 and AES-256, RFC 6188
//! §3): the SRTP and SRTCP keystream, and the PRF of the key derivation
//! (RFC 3711 §4.3.3, RFC 6188 §4).
//!
//! The 128-bit counter block is the IV with the block number `j` in its low
//! 16 bits; every IV built here has those bits zero (they are the `* 2^16`
//! of §4.1.1 and §4.3.3), so setting them equals adding `j`. One keystream
//! therefore covers at most 2^16 blocks (1 MiB), far above any datagram.

use aes::cipher::{BlockEncrypt, KeyInit};
use aes::{Aes128, Aes192, Aes256, Block};

/// AES keyed with a 128-, 192- or 256-bit key (the key schedule, ready to
/// encrypt blocks).
#[derive(Clone)]
pub(super) enum Aes {
    /// AES-128.
    A128(Aes128),
    /// AES-192 (RFC 6188).
    A192(Aes192),
    /// AES-256 (RFC 6188).
    A256(Aes256),
}

impl Aes {
    /// AES under `key`, or `None` unless it is 16, 24 or 32 bytes.
    pub(super) fn new(key: &[u8]) -> Option<Aes> {
        Some(match key.len() {
            16 => Aes::A128(Aes128::new_from_slice(key).ok()?),
            24 => Aes::A192(Aes192::new_from_slice(key).ok()?),
            32 => Aes::A256(Aes256::new_from_slice(key).ok()?),
            _ => return None,
        })
    }

    /// Encrypts `blocks` in place (ECB, one block at a time or pipelined).
    pub(super) fn encrypt_blocks(&self, blocks: &mut [Block]) {
        match self {
            Aes::A128(c) => c.encrypt_blocks(blocks),
            Aes::A192(c) => c.encrypt_blocks(blocks),
            Aes::A256(c) => c.encrypt_blocks(blocks),
        }
    }
}

/// Counter blocks encrypted per AES call (lets the cipher pipeline them).
const BATCH: usize = 8;

/// Longest input [`apply_keystream`] takes: 2^16 blocks of 16 bytes.
pub(super) const MAX_KEYSTREAM_LEN: usize = 16 << 16;

/// The IV of RFC 3711 §4.1.1:
/// `IV = (k_s * 2^16) XOR (SSRC * 2^64) XOR (i * 2^16)`, with `i` the 48-bit
/// SRTP packet index or the 31-bit SRTCP index (§3.4).
pub(super) fn iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(salt);
    for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
        *b ^= s;
    }
    // The low 48 bits of the index land in bytes 8..14.
    for (b, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
        *b ^= s;
    }
    iv
}

/// XORs `data` with the keystream `AES_k(IV + j)`, `j = 0, 1, ...`
/// (RFC 3711 §4.1.1): encrypts and decrypts alike.
///
/// `data` longer than [`MAX_KEYSTREAM_LEN`] would reuse counter blocks;
/// callers bound their lengths (debug builds assert it).
pub(super) fn apply_keystream(cipher: &Aes, iv: &[u8; 16], data: &mut [u8]) {
    debug_assert!(data.len() <= MAX_KEYSTREAM_LEN);
    let mut blocks = [Block::default(); BATCH];
    let mut counter: u16 = 0;
    for chunk in data.chunks_mut(16 * BATCH) {
        let n = chunk.len().div_ceil(16);
        for block in &mut blocks[..n] {
            block.copy_from_slice(iv);
            block[14..].copy_from_slice(&counter.to_be_bytes());
            counter = counter.wrapping_add(1);
        }
        cipher.encrypt_blocks(&mut blocks[..n]);
        for (d, k) in chunk.iter_mut().zip(blocks[..n].iter().flatten()) {
            *d ^= k;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::vectors::{self, Item};
    use super::*;

    /// RFC 3711 Appendix B.2 (keystream blocks 0, 1, 2, 0xfeff, 0xff00,
    /// 0xff01), as written to vectors.txt by the generator, which checked
    /// them against the RFC.
    #[test]
    fn rfc3711_b2_keystream() {
        let mut checked = 0;
        for item in vectors::items() {
            let Item::AesCm {
                key,
                salt,
                block,
                keystream,
            } = item
            else {
                continue;
            };
            let cipher = Aes::new(&key).expect("16 bytes");
            let iv = iv(&salt, 0, 0);
            let mut data = vec![0u8; (block + 1) * 16];
            apply_keystream(&cipher, &iv, &mut data);
            assert_eq!(&data[block * 16..], &keystream[..], "block {block:#x}");
            checked += 1;
        }
        assert_eq!(checked, 6);
    }

    #[test]
    fn iv_layout() {
        let salt: [u8; 14] = std::array::from_fn(|i| i as u8);
        let iv = iv(&salt, 0xffff_ffff, 0xffff_ffff_ffff);
        assert_eq!(
            iv,
            [
                0, 1, 2, 3, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4, 0xf3, 0xf2, 0, 0
            ]
        );
    }

    #[test]
    fn partial_blocks_and_batches() {
        let cipher = Aes::new(&[7u8; 16]).expect("16 bytes");
        let iv = iv(&[9u8; 14], 1, 2);
        let mut whole = vec![0u8; 16 * BATCH * 2 + 5];
        apply_keystream(&cipher, &iv, &mut whole);
        // The keystream does not depend on how the caller slices its data
        // as long as each call starts at block 0: a prefix is a prefix.
        for len in [0, 1, 15, 16, 17, 16 * BATCH, 16 * BATCH + 1] {
            let mut part = vec![0u8; len];
            apply_keystream(&cipher, &iv, &mut part);
            assert_eq!(part, whole[..len]);
        }
    }
}
