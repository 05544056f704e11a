//! STUN messages (RFC 8489, compatible with RFC 5389) as ICE connectivity
//! checks use them (RFC 8445 §7, §16.1).
//!
//! This module owns the message header (class, method, transaction id),
//! the demultiplexing test [`is_stun`] (RFC 7983 §7), the parsed view
//! [`Message`] with the attributes ICE needs, the integrity checks
//! (MESSAGE-INTEGRITY with a short-term credential, RFC 8489 §14.5, and
//! FINGERPRINT, §14.7) and the writer [`MessageWriter`] with functions for
//! Binding requests, success and error responses.
//!
//! Contract: sans-IO. Parsing borrows the datagram and does not allocate;
//! writing goes into a caller buffer and returns the length. Bad input is a
//! typed [`StunError`], never a panic. Unknown comprehension-optional
//! attributes are skipped; the first unknown comprehension-required one is
//! reported by [`Message::unknown_required`] for the caller to answer with
//! 420 or to ignore. See `docs/ice.md` for what is and is not supported.

mod crc32;
pub mod message;
pub mod writer;

use std::fmt;

pub use message::{ErrorCode, Message};
pub use writer::{
    BindingRequest, MessageWriter, write_binding_error, write_binding_request,
    write_binding_success,
};

/// The magic cookie in bytes 4..8 of every message (RFC 8489 §5).
pub const MAGIC_COOKIE: u32 = 0x2112_a442;
/// Length of the message header (RFC 8489 §5).
pub const HEADER_LEN: usize = 20;
/// The Binding method (RFC 8489 §18.2).
pub const BINDING: u16 = 0x001;

/// Attribute types (RFC 8489 §18.3, RFC 8445 §16.1).
pub mod attr {
    /// MAPPED-ADDRESS (RFC 8489 §14.1).
    pub const MAPPED_ADDRESS: u16 = 0x0001;
    /// USERNAME (RFC 8489 §14.3).
    pub const USERNAME: u16 = 0x0006;
    /// MESSAGE-INTEGRITY (RFC 8489 §14.5): HMAC-SHA1.
    pub const MESSAGE_INTEGRITY: u16 = 0x0008;
    /// ERROR-CODE (RFC 8489 §14.8).
    pub const ERROR_CODE: u16 = 0x0009;
    /// UNKNOWN-ATTRIBUTES (RFC 8489 §14.9).
    pub const UNKNOWN_ATTRIBUTES: u16 = 0x000a;
    /// XOR-MAPPED-ADDRESS (RFC 8489 §14.2).
    pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
    /// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
    pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001c;
    /// PRIORITY (RFC 8445 §16.1).
    pub const PRIORITY: u16 = 0x0024;
    /// USE-CANDIDATE (RFC 8445 §16.1).
    pub const USE_CANDIDATE: u16 = 0x0025;
    /// SOFTWARE (RFC 8489 §14.14).
    pub const SOFTWARE: u16 = 0x8022;
    /// FINGERPRINT (RFC 8489 §14.7).
    pub const FINGERPRINT: u16 = 0x8028;
    /// ICE-CONTROLLED (RFC 8445 §16.1).
    pub const ICE_CONTROLLED: u16 = 0x8029;
    /// ICE-CONTROLLING (RFC 8445 §16.1).
    pub const ICE_CONTROLLING: u16 = 0x802a;
}

/// The value XORed into the CRC-32 of FINGERPRINT (RFC 8489 §14.7).
const FINGERPRINT_XOR: u32 = 0x5354_554e;
/// Length of an HMAC-SHA1 value (RFC 8489 §14.5).
const INTEGRITY_LEN: usize = 20;

/// Why a STUN message was not parsed, verified or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StunError {
    /// Not a STUN message: shorter than the header, first two bits not
    /// zero, or no magic cookie (RFC 8489 §5, RFC 7983 §7).
    #[error("not a STUN message")]
    NotStun,
    /// The length field is not a multiple of 4 or does not match the
    /// datagram (RFC 8489 §5: the length excludes the 20-byte header).
    #[error("length field {field} does not match {actual} bytes after the header")]
    BadLength {
        /// The message length field.
        field: usize,
        /// Bytes after the header in the datagram.
        actual: usize,
    },
    /// An attribute's length runs past the end of the message.
    #[error("attribute {typ:#06x} runs past the end of the message")]
    TruncatedAttribute {
        /// Attribute type.
        typ: u16,
    },
    /// An attribute ICE uses has a value of the wrong length or content
    /// (e.g. an address family other than IPv4 or IPv6).
    #[error("malformed attribute {typ:#06x}")]
    BadAttribute {
        /// Attribute type.
        typ: u16,
    },
    /// The message has no MESSAGE-INTEGRITY attribute.
    #[error("no MESSAGE-INTEGRITY")]
    NoIntegrity,
    /// MESSAGE-INTEGRITY does not match the key (RFC 8489 §9.1.3).
    #[error("MESSAGE-INTEGRITY does not match")]
    IntegrityMismatch,
    /// The message has no FINGERPRINT attribute.
    #[error("no FINGERPRINT")]
    NoFingerprint,
    /// FINGERPRINT does not match the message (RFC 8489 §7.3).
    #[error("FINGERPRINT does not match")]
    FingerprintMismatch,
    /// The caller's buffer cannot hold the message being written.
    #[error("buffer of {available} bytes, need {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Length of the buffer.
        available: usize,
    },
    /// An attribute value to write is longer than a message can carry.
    #[error("attribute value of {len} bytes is too long")]
    ValueTooLong {
        /// Length of the value.
        len: usize,
    },
    /// An error code to write is outside 300..=699 (RFC 8489 §14.8).
    #[error("error code {code} outside 300..=699")]
    BadErrorCode {
        /// The code.
        code: u16,
    },
}

/// The class of a message (RFC 8489 §5: bits C1 and C0 of the type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request (0b00).
    Request,
    /// An indication (0b01).
    Indication,
    /// A success response (0b10).
    Success,
    /// An error response (0b11).
    Error,
}

/// Message type: class and 12-bit method (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The class.
    pub class: Class,
    /// The method, 0..=0xfff ([`BINDING`] for ICE).
    pub method: u16,
}

impl MessageType {
    /// A Binding request.
    pub const BINDING_REQUEST: MessageType = MessageType {
        class: Class::Request,
        method: BINDING,
    };
    /// A Binding success response.
    pub const BINDING_SUCCESS: MessageType = MessageType {
        class: Class::Success,
        method: BINDING,
    };
    /// A Binding error response.
    pub const BINDING_ERROR: MessageType = MessageType {
        class: Class::Error,
        method: BINDING,
    };

    /// Decodes the 16-bit type field; `None` when either of the two top
    /// bits is set (RFC 8489 §5: they are zero).
    pub fn from_u16(v: u16) -> Option<MessageType> {
        if v & 0xc000 != 0 {
            return None;
        }
        // RFC 8489 §5 figure 3: M11..M7 C1 M6..M4 C0 M3..M0.
        let method = (v & 0x000f) | ((v & 0x00e0) >> 1) | ((v & 0x3e00) >> 2);
        let class = match ((v >> 7) & 0b10) | ((v >> 4) & 0b01) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        };
        Some(MessageType { class, method })
    }

    /// Encodes the 16-bit type field. Method bits above the 12th are
    /// dropped.
    pub fn to_u16(self) -> u16 {
        let m = self.method & 0x0fff;
        let c: u16 = match self.class {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        };
        (m & 0x000f)
            | ((m & 0x0070) << 1)
            | ((m & 0x0f80) << 2)
            | ((c & 0b01) << 4)
            | ((c & 0b10) << 7)
    }
}

/// The 96-bit transaction id (RFC 8489 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TransactionId(pub [u8; 12]);

impl fmt::Display for TransactionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Whether `data` looks like a STUN message: the first byte is 0..=3
/// (RFC 7983 §7, so it is not RTP, RTCP, DTLS or ZRTP), it holds at least
/// the 20-byte header, bytes 4..8 are the magic cookie and the length field
/// is a multiple of 4 that matches the datagram (RFC 8489 §5). Does not
/// look at attributes.
pub fn is_stun(data: &[u8]) -> bool {
    header_check(data).is_ok()
}

/// The header checks of [`is_stun`], with the reason of a refusal.
fn header_check(data: &[u8]) -> Result<(), StunError> {
    if data.len() < HEADER_LEN || data[0] > 3 {
        return Err(StunError::NotStun);
    }
    if u32::from_be_bytes([data[4], data[5], data[6], data[7]]) != MAGIC_COOKIE {
        return Err(StunError::NotStun);
    }
    let field = usize::from(u16::from_be_bytes([data[2], data[3]]));
    let actual = data.len() - HEADER_LEN;
    if field % 4 != 0 || field != actual {
        return Err(StunError::BadLength { field, actual });
    }
    Ok(())
}

/// Bytes of an attribute value with its padding to 4 bytes (RFC 8489 §14).
fn padded(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_type_bits() {
        assert_eq!(MessageType::BINDING_REQUEST.to_u16(), 0x0001);
        assert_eq!(MessageType::BINDING_SUCCESS.to_u16(), 0x0101);
        assert_eq!(MessageType::BINDING_ERROR.to_u16(), 0x0111);
        let ind = MessageType {
            class: Class::Indication,
            method: BINDING,
        };
        assert_eq!(ind.to_u16(), 0x0011);
        for v in 0..=0x3fffu16 {
            let t = MessageType::from_u16(v).expect("top bits clear");
            assert_eq!(t.to_u16(), v);
        }
        assert_eq!(MessageType::from_u16(0x4001), None);
        assert_eq!(MessageType::from_u16(0x8001), None);
    }

    #[test]
    fn is_stun_checks_header() {
        let mut m = [0u8; 28];
        m[1] = 1;
        m[3] = 8;
        m[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(is_stun(&m));
        // Wrong length field, odd length, other first bytes, no cookie.
        assert!(!is_stun(&m[..24]));
        let mut bad = m;
        bad[3] = 9;
        assert!(!is_stun(&bad));
        bad = m;
        bad[0] = 4;
        assert!(!is_stun(&bad));
        bad = m;
        bad[0] = 0x80; // RTP
        assert!(!is_stun(&bad));
        bad = m;
        bad[4] = 0;
        assert!(!is_stun(&bad));
        assert!(!is_stun(&m[..19]));
        assert!(!is_stun(&[]));
        // Header only.
        let mut h = [0u8; 20];
        h[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(is_stun(&h));
        assert_eq!(TransactionId([0xab; 12]).to_string(), "ab".repeat(12));
    }
}
