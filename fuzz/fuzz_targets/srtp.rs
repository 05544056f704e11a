//! Fuzz SDES-SRTP (RFC 3711, RFC 4568, RFC 6188, RFC 7714). The first byte
//! picks the context (bits 4-7: suite family, 0 AES_CM_128, 1 AEAD_AES_GCM,
//! 2 AES_256_CM, 3 AES_192_CM, 4 F8_128, 5 NULL, others AES_CM_128; bit 0:
//! `_80`/`_32`, or for GCM 256/128; bits 1-2: MKI none, `1:1`,
//! `3735928559:4`, `258:2`; bit 3: one of two master keys, those of the
//! AES_CM_128 cases of tests/data/srtp/vectors.txt, so seeds from that file
//! authenticate; other suites take as many of its bytes, then counting
//! bytes, as they need); the rest is the packet. Unprotecting arbitrary bytes as SRTP or SRTCP never
//! panics, leaves the buffer as it was on error, and never accepts the same
//! packet twice; protecting bytes that pass as RTP or RTCP and
//! unprotecting them gives them back; `a=crypto` values never panic the
//! parser, and what parses writes back and parses to the same attribute.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::srtp::{CryptoAttr, MAX_OVERHEAD, MasterKey, Mki, Srtp, SrtpError, Suite};

/// Master key and salt of the `full-80` case.
const KEY_1: [u8; 30] = [
    0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0, 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39,
    0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6,
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, packet)) = data.split_first() else {
        return;
    };
    let pair = match mode >> 4 {
        1 => [Suite::AeadAes256Gcm, Suite::AeadAes128Gcm],
        2 => [Suite::Aes256CmHmacSha1_80, Suite::Aes256CmHmacSha1_32],
        3 => [Suite::Aes192CmHmacSha1_80, Suite::Aes192CmHmacSha1_32],
        4 => [Suite::F8_128HmacSha1_80, Suite::F8_128HmacSha1_32],
        5 => [Suite::NullHmacSha1_80, Suite::NullHmacSha1_32],
        _ => [Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32],
    };
    let suite = pair[usize::from(mode & 1)];
    let mki = match (mode >> 1) & 3 {
        0 => None,
        1 => Mki::new(1, 1),
        2 => Mki::new(0xdead_beef, 4),
        _ => Mki::new(0x0102, 2),
    };
    let mut material: [u8; MasterKey::MAX_LEN] = std::array::from_fn(|i| i as u8);
    if mode & 8 == 0 {
        material[..30].copy_from_slice(&KEY_1);
    } else {
        // The `full-32` key: bytes 0x40..0x5d.
        material[..30].copy_from_slice(&std::array::from_fn::<u8, 30, _>(|i| 0x40 + i as u8));
    }
    let key = MasterKey::from_suite_bytes(suite, &material[..suite.key_len() + suite.salt_len()])
        .expect("suite size");

    let mut buf = packet.to_vec();
    buf.resize(packet.len() + MAX_OVERHEAD, 0);
    for rtcp in [false, true] {
        // Unprotect: never panics; on error the bytes are untouched; an
        // accepted packet is not accepted again.
        let mut rx = Srtp::new(suite, &key, mki).expect("key fits");
        let unprotect = |rx: &mut Srtp, buf: &mut [u8], len| {
            if rtcp {
                rx.unprotect_rtcp(buf, len)
            } else {
                rx.unprotect_rtp(buf, len)
            }
        };
        buf[..packet.len()].copy_from_slice(packet);
        match unprotect(&mut rx, &mut buf, packet.len()) {
            Ok(n) => {
                assert!(n + 4 <= packet.len());
                buf[..packet.len()].copy_from_slice(packet);
                assert!(matches!(
                    unprotect(&mut rx, &mut buf, packet.len()),
                    Err(SrtpError::Replay { .. })
                ));
            }
            Err(_) => assert_eq!(&buf[..packet.len()], packet),
        }

        // Protect then unprotect gives the packet back.
        let mut tx = Srtp::new(suite, &key, mki).expect("key fits");
        let mut rx = Srtp::new(suite, &key, mki).expect("key fits");
        buf[..packet.len()].copy_from_slice(packet);
        let protected = if rtcp {
            tx.protect_rtcp(&mut buf, packet.len())
        } else {
            tx.protect_rtp(&mut buf, packet.len())
        };
        if let Ok(n) = protected {
            assert!(n > packet.len() && n <= packet.len() + MAX_OVERHEAD);
            let back = unprotect(&mut rx, &mut buf, n).expect("own packet unprotects");
            assert_eq!(back, packet.len());
            assert_eq!(&buf[..back], packet);
        }
    }

    if let Some(attr) = std::str::from_utf8(packet)
        .ok()
        .and_then(|text| CryptoAttr::parse(text).ok())
    {
        let again = CryptoAttr::parse(&attr.to_string()).expect("written attribute parses");
        assert_eq!(again, attr);
    }
});
