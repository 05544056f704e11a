//! Writing STUN messages into a caller buffer (RFC 8489 §5, §14), with
//! MESSAGE-INTEGRITY (§14.5) and FINGERPRINT (§14.7) last, and functions
//! that write the three messages of an ICE connectivity check
//! (RFC 8445 §7.1, §7.3).

use std::net::{IpAddr, SocketAddr};

use hmac::Mac;

use super::message::{fingerprint, integrity_mac};
use super::{
    HEADER_LEN, INTEGRITY_LEN, MAGIC_COOKIE, MessageType, StunError, TransactionId, attr, padded,
};

/// Longest attribute value this writer accepts: what keeps the message
/// length field (16 bits) valid with room for the integrity attributes.
const MAX_VALUE_LEN: usize = 0xff00;

/// Builds one message in a caller buffer: the header first, then
/// attributes in call order, then [`MessageWriter::finish`] adds
/// MESSAGE-INTEGRITY (with a key) and FINGERPRINT. Padding bytes are zero.
#[derive(Debug)]
pub struct MessageWriter<'b> {
    buf: &'b mut [u8],
    len: usize,
}

impl<'b> MessageWriter<'b> {
    /// Starts a message of type `typ` with `transaction_id` in `buf`.
    pub fn new(
        buf: &'b mut [u8],
        typ: MessageType,
        transaction_id: TransactionId,
    ) -> Result<MessageWriter<'b>, StunError> {
        if buf.len() < HEADER_LEN {
            return Err(StunError::BufferTooSmall {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        buf[..2].copy_from_slice(&typ.to_u16().to_be_bytes());
        buf[2..4].fill(0);
        buf[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf[8..HEADER_LEN].copy_from_slice(&transaction_id.0);
        Ok(MessageWriter {
            buf,
            len: HEADER_LEN,
        })
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether only the header is written.
    pub fn is_empty(&self) -> bool {
        self.len == HEADER_LEN
    }

    /// Appends an attribute of type `typ` whose value is the concatenation
    /// of `parts`, padded with zeros to 4 bytes.
    fn put(&mut self, typ: u16, parts: &[&[u8]]) -> Result<(), StunError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_VALUE_LEN {
            return Err(StunError::ValueTooLong { len });
        }
        let needed = self.len + 4 + padded(len);
        if needed > self.buf.len() || needed - HEADER_LEN > usize::from(u16::MAX) {
            return Err(StunError::BufferTooSmall {
                needed,
                available: self.buf.len(),
            });
        }
        let b = &mut self.buf[self.len..needed];
        b[..2].copy_from_slice(&typ.to_be_bytes());
        // `len` <= MAX_VALUE_LEN fits in 16 bits.
        b[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        let mut at = 4;
        for p in parts {
            b[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        b[at..].fill(0);
        self.len = needed;
        self.set_length(self.len);
        Ok(())
    }

    /// Sets the header's length field as if the message ended at `end`.
    fn set_length(&mut self, end: usize) {
        // `put` keeps `end - HEADER_LEN` within 16 bits.
        let l = (end - HEADER_LEN) as u16;
        self.buf[2..4].copy_from_slice(&l.to_be_bytes());
    }

    /// Appends an attribute with an arbitrary `value` (padded to 4 bytes).
    pub fn attribute(&mut self, typ: u16, value: &[u8]) -> Result<(), StunError> {
        self.put(typ, &[value])
    }

    /// USERNAME (RFC 8489 §14.3): less than 513 bytes.
    pub fn username(&mut self, username: &str) -> Result<(), StunError> {
        if username.len() > 512 {
            return Err(StunError::ValueTooLong {
                len: username.len(),
            });
        }
        self.put(attr::USERNAME, &[username.as_bytes()])
    }

    /// PRIORITY (RFC 8445 §7.1.1).
    pub fn priority(&mut self, priority: u32) -> Result<(), StunError> {
        self.put(attr::PRIORITY, &[&priority.to_be_bytes()])
    }

    /// USE-CANDIDATE (RFC 8445 §7.1.2).
    pub fn use_candidate(&mut self) -> Result<(), StunError> {
        self.put(attr::USE_CANDIDATE, &[])
    }

    /// ICE-CONTROLLING with `tie_breaker` (RFC 8445 §7.1.3).
    pub fn ice_controlling(&mut self, tie_breaker: u64) -> Result<(), StunError> {
        self.put(attr::ICE_CONTROLLING, &[&tie_breaker.to_be_bytes()])
    }

    /// ICE-CONTROLLED with `tie_breaker` (RFC 8445 §7.1.3).
    pub fn ice_controlled(&mut self, tie_breaker: u64) -> Result<(), StunError> {
        self.put(attr::ICE_CONTROLLED, &[&tie_breaker.to_be_bytes()])
    }

    /// XOR-MAPPED-ADDRESS of `addr` (RFC 8489 §14.2).
    pub fn xor_mapped_address(&mut self, addr: SocketAddr) -> Result<(), StunError> {
        let cookie = MAGIC_COOKIE.to_be_bytes();
        let port = addr.port() ^ (MAGIC_COOKIE >> 16) as u16;
        let port = port.to_be_bytes();
        match addr.ip() {
            IpAddr::V4(ip) => {
                let o = ip.octets();
                let x: [u8; 4] = std::array::from_fn(|i| o[i] ^ cookie[i]);
                self.put(attr::XOR_MAPPED_ADDRESS, &[&[0, 0x01], &port, &x])
            }
            IpAddr::V6(ip) => {
                let o = ip.octets();
                let tid = &self.buf[8..HEADER_LEN];
                let x: [u8; 16] =
                    std::array::from_fn(|i| o[i] ^ if i < 4 { cookie[i] } else { tid[i - 4] });
                self.put(attr::XOR_MAPPED_ADDRESS, &[&[0, 0x02], &port, &x])
            }
        }
    }

    /// ERROR-CODE with `code` (300..=699) and `reason` (RFC 8489 §14.8:
    /// fewer than 128 characters; longer reasons are cut at a character
    /// boundary).
    pub fn error_code(&mut self, code: u16, reason: &str) -> Result<(), StunError> {
        if !(300..=699).contains(&code) {
            return Err(StunError::BadErrorCode { code });
        }
        let mut end = reason.len().min(763);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        // `code` is 300..=699: class 3..=6, number 0..=99.
        let head = [0, 0, (code / 100) as u8, (code % 100) as u8];
        self.put(attr::ERROR_CODE, &[&head, &reason.as_bytes()[..end]])
    }

    /// Ends the message: MESSAGE-INTEGRITY keyed by `integrity_key` when
    /// given (RFC 8489 §14.5), then FINGERPRINT (§14.7). Returns the
    /// message length.
    pub fn finish(mut self, integrity_key: Option<&[u8]>) -> Result<usize, StunError> {
        let needed = self.len + integrity_key.map_or(0, |_| 4 + INTEGRITY_LEN) + 8;
        if needed > self.buf.len() {
            return Err(StunError::BufferTooSmall {
                needed,
                available: self.buf.len(),
            });
        }
        if let Some(key) = integrity_key {
            let at = self.len;
            let tag = integrity_mac(key, self.buf, at).finalize().into_bytes();
            self.put(attr::MESSAGE_INTEGRITY, &[&tag])?;
        }
        let at = self.len;
        let fp = fingerprint(self.buf, at);
        self.put(attr::FINGERPRINT, &[&fp.to_be_bytes()])?;
        Ok(self.len)
    }
}

/// The contents of an ICE connectivity check (RFC 8445 §7.1.1-§7.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRequest<'a> {
    /// Transaction id.
    pub transaction_id: TransactionId,
    /// USERNAME: `remote-ufrag:local-ufrag` of the sender.
    pub username: &'a str,
    /// PRIORITY: the sender's peer-reflexive priority.
    pub priority: u32,
    /// `true` for ICE-CONTROLLING, `false` for ICE-CONTROLLED.
    pub controlling: bool,
    /// The tie-breaker carried by ICE-CONTROLLING or ICE-CONTROLLED.
    pub tie_breaker: u64,
    /// Whether to add USE-CANDIDATE (only by the controlling agent).
    pub use_candidate: bool,
}

/// Writes the Binding request `req` into `buf` with MESSAGE-INTEGRITY keyed
/// by `key` (the remote password) and FINGERPRINT; returns its length.
pub fn write_binding_request(
    buf: &mut [u8],
    req: &BindingRequest<'_>,
    key: &[u8],
) -> Result<usize, StunError> {
    let mut w = MessageWriter::new(buf, MessageType::BINDING_REQUEST, req.transaction_id)?;
    w.username(req.username)?;
    w.priority(req.priority)?;
    if req.controlling {
        w.ice_controlling(req.tie_breaker)?;
    } else {
        w.ice_controlled(req.tie_breaker)?;
    }
    if req.use_candidate {
        w.use_candidate()?;
    }
    w.finish(Some(key))
}

/// Writes a Binding success response with XOR-MAPPED-ADDRESS `mapped` (the
/// request's source), MESSAGE-INTEGRITY keyed by `key` (the local
/// password) and FINGERPRINT (RFC 8445 §7.3.1.2); returns its length.
pub fn write_binding_success(
    buf: &mut [u8],
    transaction_id: TransactionId,
    mapped: SocketAddr,
    key: &[u8],
) -> Result<usize, StunError> {
    let mut w = MessageWriter::new(buf, MessageType::BINDING_SUCCESS, transaction_id)?;
    w.xor_mapped_address(mapped)?;
    w.finish(Some(key))
}

/// Writes a Binding error response with ERROR-CODE `code` and `reason`,
/// MESSAGE-INTEGRITY when `key` is given (not for 400 and 401, RFC 8489
/// §9.1.3) and FINGERPRINT; returns its length.
pub fn write_binding_error(
    buf: &mut [u8],
    transaction_id: TransactionId,
    code: u16,
    reason: &str,
    key: Option<&[u8]>,
) -> Result<usize, StunError> {
    let mut w = MessageWriter::new(buf, MessageType::BINDING_ERROR, transaction_id)?;
    w.error_code(code, reason)?;
    w.finish(key)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::super::{Class, Message, is_stun};
    use super::*;

    #[test]
    fn request_round_trip() {
        let mut buf = [0u8; 200];
        let req = BindingRequest {
            transaction_id: TransactionId([7; 12]),
            username: "remote:local",
            priority: 1_862_270_975,
            controlling: true,
            tie_breaker: 0x0102_0304_0506_0708,
            use_candidate: true,
        };
        let n = write_binding_request(&mut buf, &req, b"secret-password").expect("fits");
        let m = Message::parse(&buf[..n]).expect("parses");
        assert!(is_stun(&buf[..n]));
        assert_eq!(m.message_type(), MessageType::BINDING_REQUEST);
        assert_eq!(m.username(), Some(&b"remote:local"[..]));
        assert_eq!(m.priority(), Some(1_862_270_975));
        assert_eq!(m.ice_controlling(), Some(0x0102_0304_0506_0708));
        assert!(m.use_candidate());
        assert_eq!(m.verify_integrity(b"secret-password"), Ok(()));
        assert_eq!(m.verify_fingerprint(), Ok(()));
        // 20 + 16 (USERNAME) + 8 + 12 + 4 + 24 + 8.
        assert_eq!(n, 92);
        // Too small a buffer is an error at every length, never a panic.
        for len in 0..n {
            assert!(matches!(
                write_binding_request(&mut buf[..len], &req, b"k"),
                Err(StunError::BufferTooSmall { .. })
            ));
        }
    }

    #[test]
    fn error_response_round_trip() {
        let mut buf = [0u8; 200];
        let tid = TransactionId([9; 12]);
        let n =
            write_binding_error(&mut buf, tid, 487, "Role Conflict", Some(b"pw")).expect("fits");
        let m = Message::parse(&buf[..n]).expect("parses");
        assert_eq!(m.message_type().class, Class::Error);
        let e = m.error_code().expect("ERROR-CODE");
        assert_eq!((e.code, e.reason), (487, "Role Conflict"));
        assert_eq!(m.verify_integrity(b"pw"), Ok(()));
        let n = write_binding_error(&mut buf, tid, 401, "Unauthenticated", None).expect("fits");
        let m = Message::parse(&buf[..n]).expect("parses");
        assert!(!m.has_integrity());
        assert_eq!(m.verify_fingerprint(), Ok(()));
        assert_eq!(
            write_binding_error(&mut buf, tid, 200, "", None),
            Err(StunError::BadErrorCode { code: 200 })
        );
    }

    fn arb_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        ]
    }

    proptest! {
        #[test]
        fn success_round_trip(
            tid in any::<[u8; 12]>(),
            addr in arb_addr(),
            key in proptest::collection::vec(any::<u8>(), 0..80),
        ) {
            let mut buf = [0u8; 128];
            let n = write_binding_success(&mut buf, TransactionId(tid), addr, &key).expect("fits");
            let m = Message::parse(&buf[..n]).expect("parses");
            prop_assert_eq!(m.message_type(), MessageType::BINDING_SUCCESS);
            prop_assert_eq!(m.transaction_id(), TransactionId(tid));
            prop_assert_eq!(m.xor_mapped_address(), Some(addr));
            prop_assert_eq!(m.verify_integrity(&key), Ok(()));
            prop_assert_eq!(m.verify_fingerprint(), Ok(()));
        }

        #[test]
        fn request_fields_round_trip(
            tid in any::<[u8; 12]>(),
            username in "[a-zA-Z0-9+/]{1,60}:[a-zA-Z0-9+/]{1,60}",
            priority in any::<u32>(),
            controlling in any::<bool>(),
            tie_breaker in any::<u64>(),
            use_candidate in any::<bool>(),
            extra in proptest::collection::vec((0x8000u16..=0xffff, proptest::collection::vec(any::<u8>(), 0..9)), 0..3),
        ) {
            let mut buf = [0u8; 512];
            let mut w = MessageWriter::new(&mut buf, MessageType::BINDING_REQUEST, TransactionId(tid)).expect("fits");
            // Unknown comprehension-optional attributes are skipped.
            for (typ, v) in &extra {
                if !matches!(*typ, attr::SOFTWARE | attr::FINGERPRINT | attr::ICE_CONTROLLED | attr::ICE_CONTROLLING) {
                    w.attribute(*typ, v).expect("fits");
                }
            }
            w.username(&username).expect("fits");
            w.priority(priority).expect("fits");
            if controlling { w.ice_controlling(tie_breaker).expect("fits"); } else { w.ice_controlled(tie_breaker).expect("fits"); }
            if use_candidate { w.use_candidate().expect("fits"); }
            let n = w.finish(Some(b"pw")).expect("fits");
            let m = Message::parse(&buf[..n]).expect("parses");
            prop_assert_eq!(m.username(), Some(username.as_bytes()));
            prop_assert_eq!(m.priority(), Some(priority));
            prop_assert_eq!(m.ice_controlling(), controlling.then_some(tie_breaker));
            prop_assert_eq!(m.ice_controlled(), (!controlling).then_some(tie_breaker));
            prop_assert_eq!(m.use_candidate(), use_candidate);
            prop_assert_eq!(m.unknown_required(), None);
            prop_assert_eq!(m.verify_integrity(b"pw"), Ok(()));
            prop_assert_eq!(m.verify_fingerprint(), Ok(()));
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(m) = Message::parse(&data) {
                let _ = m.verify_integrity(b"pw");
                let _ = m.verify_fingerprint();
            }
        }
    }
}
