//! DTLS-SRTP keying (RFC 5763, RFC 5764): DTLS 1.2 handshakes with the
//! `use_srtp` extension on OpenSSL, giving the SRTP master keys of a
//! transport to the [`srtp`](crate::srtp) transform.
//!
//! This module owns the relay's certificate ([`DtlsCert`]), the SDP values
//! that steer DTLS-SRTP ([`Fingerprint`], RFC 8122 §5; [`Setup`],
//! RFC 4145 §4), and the handshake of one transport ([`DtlsSession`]).
//!
//! Contract: a [`DtlsSession`] is sans-IO, in the shape of the other cores:
//! received datagrams go in through [`DtlsSession::handle_input`], datagrams
//! to send come out of [`DtlsSession::poll_transmit`], time enters as
//! `now: Instant` ([`DtlsSession::handle_timeout`],
//! [`DtlsSession::poll_timeout`]) and results leave as [`DtlsEvent`]s.
//! OpenSSL runs over an in-memory datagram transport and never sees a
//! socket. Bad input never panics: it is a typed [`DtlsError`], or dropped
//! as DTLS drops bad records (RFC 6347 §4.1.2.7).
//!
//! Peers are authenticated only by the fingerprint of their certificate,
//! which the signalling carries (RFC 5763 §5, §6.7.1): self-signed
//! certificates are the rule, no CA is consulted.
//!
//! Retransmission (RFC 6347 §4.2.4) runs on the caller's clock, not
//! OpenSSL's: the `openssl` crate does not expose `DTLSv1_handle_timeout`,
//! and OpenSSL's own timer reads the wall clock. The session keeps a copy
//! of the last flight it sent and sends it again, byte for byte, when
//! [`DtlsSession::handle_timeout`] finds the timer expired (1 s, doubling
//! up to 60 s, [`MAX_RETRANSMITS`] times, then [`DtlsError::Timeout`]) and
//! when the peer repeats a handshake datagram already received (the peer
//! lost this side's flight: RFC 6347 §4.2.4 "retransmitted flight from the
//! peer"). See `docs/dtls.md`.

mod cert;
mod fingerprint;
mod session;
mod setup;
mod transport;

pub use cert::{CERT_COMMON_NAME, DtlsCert};
pub use fingerprint::{Fingerprint, FingerprintError, HashFunc};
pub use session::{DtlsSession, INITIAL_RTO, MAX_RETRANSMITS, MAX_RTO, MTU};
pub use setup::{Setup, SetupError};

use crate::srtp::{MasterKey, Suite};

/// Longest datagram [`DtlsSession::handle_input`] takes (the largest UDP
/// payload over IPv4 is shorter).
pub const MAX_DATAGRAM_LEN: usize = 65_535;

/// Whether a datagram is DTLS by its first byte (RFC 7983 §7: 20..=63),
/// among STUN (0..=3), ZRTP (16..=19), TURN channels (64..=79) and RTP/RTCP
/// (128..=191) on one transport.
pub fn is_dtls(data: &[u8]) -> bool {
    matches!(data.first(), Some(20..=63))
}

/// The DTLS role of this side (RFC 5763 §5: from `a=setup`, see
/// [`Setup::role`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsRole {
    /// Sends the ClientHello (`a=setup:active`).
    Client,
    /// Waits for it (`a=setup:passive`).
    Server,
}

/// The SRTP keys of a transport after the handshake (RFC 5764 §4.2).
///
/// `Debug` does not print key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKeys {
    /// The profile negotiated (RFC 5764 §4.1.2), as the SRTP suite.
    pub suite: Suite,
    /// Key and salt this side protects with: what it sends.
    pub local: MasterKey,
    /// Key and salt this side unprotects with: what the peer sends.
    pub remote: MasterKey,
}

/// What a [`DtlsSession`] reports, from [`DtlsSession::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// The handshake completed with a peer whose certificate matches the
    /// expected fingerprint; the keys are exported. Reported once.
    Connected(SrtpKeys),
    /// The handshake or connection failed; the session is finished. Any
    /// alert OpenSSL wrote for the peer is still in `poll_transmit`.
    Failed(DtlsError),
    /// The peer closed the connection (a `close_notify` alert,
    /// RFC 5246 §7.2.1); the keys stay valid for media already flowing.
    Closed,
}

/// Why a DTLS operation or handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtlsError {
    /// Making the key pair or certificate failed (OpenSSL's reason).
    #[error("certificate generation failed: {0}")]
    Certificate(String),
    /// Setting up the OpenSSL context or session failed (OpenSSL's reason).
    #[error("DTLS setup failed: {0}")]
    Setup(String),
    /// The datagram's first byte is not 20..=63 (RFC 7983 §7).
    #[error("not a DTLS datagram")]
    NotDtls,
    /// The datagram is longer than [`MAX_DATAGRAM_LEN`].
    #[error("datagram of {len} bytes is longer than {MAX_DATAGRAM_LEN}")]
    TooLong {
        /// Its length.
        len: usize,
    },
    /// The session has failed or closed and takes no more input.
    #[error("DTLS session is finished")]
    Finished,
    /// The peer's certificate does not have the fingerprint its signalling
    /// announced (RFC 5763 §6.7.1): the handshake is refused.
    #[error("peer certificate fingerprint {actual} differs from the expected {expected}")]
    FingerprintMismatch {
        /// The fingerprint from the signalling.
        expected: Fingerprint,
        /// The fingerprint of the certificate presented, same hash.
        actual: Fingerprint,
    },
    /// The peer completed the handshake without a certificate.
    #[error("peer presented no certificate")]
    NoPeerCertificate,
    /// The peer did not negotiate an SRTP profile this side supports
    /// (RFC 5764 §4.1.1: no `use_srtp`, or no common profile).
    #[error("no SRTP protection profile negotiated")]
    NoSrtpProfile,
    /// The handshake failed in OpenSSL: an alert received or sent, a
    /// protocol error (OpenSSL's reason).
    #[error("DTLS handshake failed: {0}")]
    Handshake(String),
    /// After the handshake, the connection failed (a fatal alert or a
    /// protocol error; OpenSSL's reason).
    #[error("DTLS connection failed: {0}")]
    Connection(String),
    /// Exporting the keying material failed (OpenSSL's reason).
    #[error("SRTP key export failed: {0}")]
    KeyExport(String),
    /// The handshake made no progress through every retransmission.
    #[error("DTLS handshake timed out after {MAX_RETRANSMITS} retransmissions")]
    Timeout,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_by_first_byte() {
        assert!(!is_dtls(&[]));
        for b in 0..=255u8 {
            assert_eq!(is_dtls(&[b, 0]), (20..=63).contains(&b), "{b}");
        }
    }
}
