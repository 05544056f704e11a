//! AES-128 in counter mode (RFC 3711 §4.1.1): the SRTP and SRTCP keystream,
//! and the PRF of the key derivation (§4.3.3).
//!
//! The 128-bit counter block is the IV with the block number `j` in its low
//! 16 bits; every IV built here has those bits zero (they are the `* 2^16`
//! of §4.1.1 and §4.3.3), so setting them equals adding `j`. One keystream
//! therefore covers at most 2^16 blocks (1 MiB), far above any datagram.

use aes::Aes128;
use aes::Block;
use aes::cipher::BlockEncrypt;

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
pub(super) fn apply_keystream(cipher: &Aes128, iv: &[u8; 16], data: &mut [u8]) {
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
    use aes::cipher::KeyInit;

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
            let cipher = Aes128::new(&key.into());
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
        let cipher = Aes128::new(&[7u8; 16].into());
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
