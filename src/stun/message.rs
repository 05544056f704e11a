//! The parsed view of one STUN message (RFC 8489 §5, §14) with the
//! attributes that ICE uses (RFC 8445 §16.1), and the checks of
//! MESSAGE-INTEGRITY (§14.5) and FINGERPRINT (§14.7).
//!
//! ```text
//!  0                   1                   2                   3
//! |0 0|     STUN Message Type     |         Message Length        |
//! |                         Magic Cookie                          |
//! |                     Transaction ID (96 bits)                  |
//! | attributes: Type (16) | Length (16) | Value, padded to 4 ...  |
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use hmac::{Hmac, Mac};
use sha1::Sha1;

use super::crc32::Crc32;
use super::{
    FINGERPRINT_XOR, HEADER_LEN, INTEGRITY_LEN, MAGIC_COOKIE, MessageType, StunError,
    TransactionId, attr, header_check, padded,
};

/// An ERROR-CODE attribute (RFC 8489 §14.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorCode<'a> {
    /// The code, class * 100 + number (e.g. 401, 487).
    pub code: u16,
    /// The reason phrase; empty when it is not UTF-8.
    pub reason: &'a str,
}

/// A parsed STUN message borrowing its datagram. Attributes after
/// MESSAGE-INTEGRITY other than FINGERPRINT, and everything after
/// FINGERPRINT, are ignored (RFC 8489 §14.5, §14.7); of an attribute that
/// appears twice the first counts (§14).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    raw: &'a [u8],
    typ: MessageType,
    transaction_id: TransactionId,
    username: Option<&'a [u8]>,
    xor_mapped_address: Option<SocketAddr>,
    error_code: Option<ErrorCode<'a>>,
    priority: Option<u32>,
    use_candidate: bool,
    ice_controlling: Option<u64>,
    ice_controlled: Option<u64>,
    unknown_required: Option<u16>,
    /// Offset of the MESSAGE-INTEGRITY attribute header.
    integrity_at: Option<usize>,
    /// Offset of the FINGERPRINT attribute header.
    fingerprint_at: Option<usize>,
}

impl<'a> Message<'a> {
    /// Parses the datagram `data`: header checks as [`super::is_stun`],
    /// then every attribute's length, and the values of the attributes this
    /// module knows.
    pub fn parse(data: &'a [u8]) -> Result<Message<'a>, StunError> {
        header_check(data)?;
        let typ = MessageType::from_u16(u16::from_be_bytes([data[0], data[1]]))
            .ok_or(StunError::NotStun)?;
        let mut transaction_id = TransactionId::default();
        transaction_id.0.copy_from_slice(&data[8..HEADER_LEN]);
        let mut m = Message {
            raw: data,
            typ,
            transaction_id,
            username: None,
            xor_mapped_address: None,
            error_code: None,
            priority: None,
            use_candidate: false,
            ice_controlling: None,
            ice_controlled: None,
            unknown_required: None,
            integrity_at: None,
            fingerprint_at: None,
        };

        let mut at = HEADER_LEN;
        while at < data.len() {
            // The length field is a multiple of 4, so 4 header bytes fit.
            if data.len() - at < 4 {
                return Err(StunError::TruncatedAttribute { typ: 0 });
            }
            let typ = u16::from_be_bytes([data[at], data[at + 1]]);
            let len = usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]]));
            let start = at + 4;
            if data.len() - start < len {
                return Err(StunError::TruncatedAttribute { typ });
            }
            let value = &data[start..start + len];
            let next = (start + padded(len)).min(data.len());
            if m.fingerprint_at.is_some() {
                // RFC 8489 §14.7: FINGERPRINT is the last attribute.
                break;
            }
            if m.integrity_at.is_some() && typ != attr::FINGERPRINT {
                // RFC 8489 §14.5: ignore what follows MESSAGE-INTEGRITY
                // except FINGERPRINT.
                at = next;
                continue;
            }
            m.attribute(at, typ, value)?;
            at = next;
        }
        Ok(m)
    }

    /// Reads one attribute value at offset `at` of the message.
    fn attribute(&mut self, at: usize, typ: u16, value: &'a [u8]) -> Result<(), StunError> {
        let bad = StunError::BadAttribute { typ };
        match typ {
            attr::USERNAME => {
                // RFC 8489 §14.3: less than 513 bytes.
                if value.len() > 512 {
                    return Err(bad);
                }
                self.username.get_or_insert(value);
            }
            attr::MESSAGE_INTEGRITY => {
                if value.len() != INTEGRITY_LEN {
                    return Err(bad);
                }
                self.integrity_at = Some(at);
            }
            attr::FINGERPRINT => {
                if value.len() != 4 {
                    return Err(bad);
                }
                self.fingerprint_at = Some(at);
            }
            attr::XOR_MAPPED_ADDRESS if self.xor_mapped_address.is_none() => {
                self.xor_mapped_address = Some(xor_address(value, &self.transaction_id, typ)?);
            }
            attr::ERROR_CODE => {
                // RFC 8489 §14.8: 21 reserved bits, class (3), number (8).
                if value.len() < 4 {
                    return Err(bad);
                }
                let class = u16::from(value[2] & 0x07);
                let number = u16::from(value[3]);
                if !(3..=6).contains(&class) || number > 99 {
                    return Err(bad);
                }
                let reason = std::str::from_utf8(&value[4..]).unwrap_or("");
                self.error_code.get_or_insert(ErrorCode {
                    code: class * 100 + number,
                    reason,
                });
            }
            attr::PRIORITY => {
                let v: [u8; 4] = value.try_into().map_err(|_| bad)?;
                self.priority.get_or_insert(u32::from_be_bytes(v));
            }
            attr::USE_CANDIDATE => {
                if !value.is_empty() {
                    return Err(bad);
                }
                self.use_candidate = true;
            }
            attr::ICE_CONTROLLING => {
                let v: [u8; 8] = value.try_into().map_err(|_| bad)?;
                self.ice_controlling.get_or_insert(u64::from_be_bytes(v));
            }
            attr::ICE_CONTROLLED => {
                let v: [u8; 8] = value.try_into().map_err(|_| bad)?;
                self.ice_controlled.get_or_insert(u64::from_be_bytes(v));
            }
            // RFC 8489 §14: 0x0000..=0x7fff are comprehension-required.
            other if other < 0x8000 => {
                let known = matches!(
                    other,
                    attr::MAPPED_ADDRESS
                        // A second XOR-MAPPED-ADDRESS (the first counts).
                        | attr::XOR_MAPPED_ADDRESS
                        | attr::UNKNOWN_ATTRIBUTES
                        | attr::MESSAGE_INTEGRITY_SHA256
                        // REALM, NONCE: long-term credentials, not used by ICE.
                        | 0x0014
                        | 0x0015
                );
                if !known {
                    self.unknown_required.get_or_insert(other);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The message type.
    pub fn message_type(&self) -> MessageType {
        self.typ
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> TransactionId {
        self.transaction_id
    }

    /// The whole message.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.raw
    }

    /// USERNAME (RFC 8489 §14.3), raw bytes.
    pub fn username(&self) -> Option<&'a [u8]> {
        self.username
    }

    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2), decoded.
    pub fn xor_mapped_address(&self) -> Option<SocketAddr> {
        self.xor_mapped_address
    }

    /// ERROR-CODE (RFC 8489 §14.8).
    pub fn error_code(&self) -> Option<ErrorCode<'a>> {
        self.error_code
    }

    /// PRIORITY (RFC 8445 §7.1.1).
    pub fn priority(&self) -> Option<u32> {
        self.priority
    }

    /// Whether USE-CANDIDATE is present (RFC 8445 §7.1.2).
    pub fn use_candidate(&self) -> bool {
        self.use_candidate
    }

    /// The tie-breaker of ICE-CONTROLLING (RFC 8445 §7.1.3).
    pub fn ice_controlling(&self) -> Option<u64> {
        self.ice_controlling
    }

    /// The tie-breaker of ICE-CONTROLLED (RFC 8445 §7.1.3).
    pub fn ice_controlled(&self) -> Option<u64> {
        self.ice_controlled
    }

    /// The first unknown comprehension-required attribute type (before
    /// MESSAGE-INTEGRITY), which a server may answer with 420
    /// (RFC 8489 §6.3.1).
    pub fn unknown_required(&self) -> Option<u16> {
        self.unknown_required
    }

    /// Whether MESSAGE-INTEGRITY is present.
    pub fn has_integrity(&self) -> bool {
        self.integrity_at.is_some()
    }

    /// Whether FINGERPRINT is present.
    pub fn has_fingerprint(&self) -> bool {
        self.fingerprint_at.is_some()
    }

    /// Checks MESSAGE-INTEGRITY with `key` (RFC 8489 §14.5; a short-term
    /// credential's key is the password bytes, §9.1.1): HMAC-SHA1 over the
    /// message up to the attribute, with the length field set as if the
    /// message ended after it. Compared in constant time.
    pub fn verify_integrity(&self, key: &[u8]) -> Result<(), StunError> {
        let at = self.integrity_at.ok_or(StunError::NoIntegrity)?;
        let expected = &self.raw[at + 4..at + 4 + INTEGRITY_LEN];
        let mac = integrity_mac(key, self.raw, at);
        mac.verify_slice(expected)
            .map_err(|_| StunError::IntegrityMismatch)
    }

    /// Checks FINGERPRINT (RFC 8489 §14.7): CRC-32 of the message up to the
    /// attribute, with the length field covering it, XOR 0x5354554e.
    pub fn verify_fingerprint(&self) -> Result<(), StunError> {
        let at = self.fingerprint_at.ok_or(StunError::NoFingerprint)?;
        let v = &self.raw[at + 4..at + 8];
        let got = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        if fingerprint(self.raw, at) != got {
            return Err(StunError::FingerprintMismatch);
        }
        Ok(())
    }
}

/// The HMAC-SHA1 of `msg[..at]` (the attributes before MESSAGE-INTEGRITY at
/// offset `at`) with the length field counting up to the end of
/// MESSAGE-INTEGRITY (RFC 8489 §14.5).
pub(super) fn integrity_mac(key: &[u8], msg: &[u8], at: usize) -> Hmac<Sha1> {
    // HMAC takes keys of any length (RFC 2104 §2), so this never fails.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    let len = (at + 4 + INTEGRITY_LEN - HEADER_LEN) as u16;
    mac.update(&msg[..2]);
    mac.update(&len.to_be_bytes());
    mac.update(&msg[4..at]);
    mac
}

/// The FINGERPRINT value of `msg[..at]` (the attributes before FINGERPRINT
/// at offset `at`), with the length field counting up to the end of
/// FINGERPRINT (RFC 8489 §14.7).
pub(super) fn fingerprint(msg: &[u8], at: usize) -> u32 {
    let len = (at + 8 - HEADER_LEN) as u16;
    let mut crc = Crc32::new();
    crc.update(&msg[..2]);
    crc.update(&len.to_be_bytes());
    crc.update(&msg[4..at]);
    crc.finish() ^ FINGERPRINT_XOR
}

/// Decodes XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
fn xor_address(v: &[u8], tid: &TransactionId, typ: u16) -> Result<SocketAddr, StunError> {
    let bad = StunError::BadAttribute { typ };
    if v.len() < 4 {
        return Err(bad);
    }
    let cookie = MAGIC_COOKIE.to_be_bytes();
    let port = u16::from_be_bytes([v[2] ^ cookie[0], v[3] ^ cookie[1]]);
    let ip = match (v[1], v.len()) {
        (0x01, 8) => {
            let a: [u8; 4] = std::array::from_fn(|i| v[4 + i] ^ cookie[i]);
            IpAddr::V4(Ipv4Addr::from(a))
        }
        (0x02, 20) => {
            let a: [u8; 16] = std::array::from_fn(|i| {
                let k = if i < 4 { cookie[i] } else { tid.0[i - 4] };
                v[4 + i] ^ k
            });
            IpAddr::V6(Ipv6Addr::from(a))
        }
        _ => return Err(bad),
    };
    Ok(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::super::Class;
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).expect("hex"))
            .collect()
    }

    /// RFC 5769 §2.1: the sample request (short-term credential).
    pub(crate) fn rfc5769_request() -> Vec<u8> {
        hex("00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74
             00 24 00 04 6e 00 01 ff
             80 29 00 08 93 2f f9 b1 51 26 3b 36
             00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
             00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2
             80 28 00 04 e5 7a 3b cf")
    }

    /// RFC 5769 §2.2: the sample IPv4 response.
    fn rfc5769_ipv4_response() -> Vec<u8> {
        hex("01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 08 00 01 a1 47 e1 12 a6 43
             00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7
             80 28 00 04 c0 7d 4c 96")
    }

    /// RFC 5769 §2.3: the sample IPv6 response.
    fn rfc5769_ipv6_response() -> Vec<u8> {
        hex("01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
             80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20
             00 20 00 14 00 02 a1 47 01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
             00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41
             80 28 00 04 c8 fb 0b 4c")
    }

    /// RFC 5769 §2: the password of the samples.
    const PASSWORD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";
    const TID: [u8; 12] = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    #[test]
    fn rfc5769_sample_request() {
        let data = rfc5769_request();
        assert!(super::super::is_stun(&data));
        let m = Message::parse(&data).expect("parses");
        assert_eq!(m.message_type(), MessageType::BINDING_REQUEST);
        assert_eq!(m.transaction_id(), TransactionId(TID));
        assert_eq!(m.username(), Some(&b"evtj:h6vY"[..]));
        assert_eq!(m.priority(), Some(0x6e00_01ff));
        assert_eq!(m.ice_controlled(), Some(0x932f_f9b1_5126_3b36));
        assert_eq!(m.ice_controlling(), None);
        assert!(!m.use_candidate());
        assert_eq!(m.unknown_required(), None);
        assert_eq!(m.verify_integrity(PASSWORD), Ok(()));
        assert_eq!(m.verify_fingerprint(), Ok(()));
        assert_eq!(
            m.verify_integrity(b"VOkJxbRl1RmTxUk/WvJxBT"),
            Err(StunError::IntegrityMismatch)
        );
    }

    #[test]
    fn rfc5769_sample_responses() {
        for (data, addr) in [
            (rfc5769_ipv4_response(), "192.0.2.1:32853"),
            (
                rfc5769_ipv6_response(),
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
            ),
        ] {
            let m = Message::parse(&data).expect("parses");
            assert_eq!(m.message_type().class, Class::Success);
            assert_eq!(m.transaction_id(), TransactionId(TID));
            assert_eq!(m.xor_mapped_address(), addr.parse().ok());
            assert_eq!(m.verify_integrity(PASSWORD), Ok(()));
            assert_eq!(m.verify_fingerprint(), Ok(()));
        }
    }

    #[test]
    fn any_flipped_bit_fails_a_check() {
        let data = rfc5769_request();
        for i in 0..data.len() * 8 {
            let mut d = data.clone();
            d[i / 8] ^= 1 << (i % 8);
            let Ok(m) = Message::parse(&d) else { continue };
            let ok = m.verify_integrity(PASSWORD).is_ok() && m.verify_fingerprint().is_ok();
            assert!(!ok, "bit {i} flipped still verifies");
        }
    }

    #[test]
    fn malformed_messages_are_errors() {
        let data = rfc5769_request();
        // Attribute length running past the end: the USERNAME says 0x39.
        let mut d = data.clone();
        d[HEADER_LEN + 20 + 8 + 12 + 3] = 0x39;
        assert!(matches!(
            Message::parse(&d),
            Err(StunError::TruncatedAttribute { .. })
        ));
        // PRIORITY of 3 bytes.
        let mut d = data.clone();
        d[HEADER_LEN + 20 + 3] = 3;
        assert_eq!(
            Message::parse(&d).err(),
            Some(StunError::BadAttribute {
                typ: attr::PRIORITY
            })
        );
        // Truncated datagram: length field no longer matches.
        assert!(matches!(
            Message::parse(&data[..data.len() - 4]),
            Err(StunError::BadLength { .. })
        ));
        assert_eq!(Message::parse(&data[..10]).err(), Some(StunError::NotStun));
        // No integrity, no fingerprint on a bare header.
        let mut h = data[..HEADER_LEN].to_vec();
        h[2] = 0;
        h[3] = 0;
        let m = Message::parse(&h).expect("header only");
        assert_eq!(m.verify_integrity(PASSWORD), Err(StunError::NoIntegrity));
        assert_eq!(m.verify_fingerprint(), Err(StunError::NoFingerprint));
    }
}
