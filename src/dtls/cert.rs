//! The relay's DTLS certificate: one self-signed ECDSA P-256 certificate,
//! made when the relay starts and offered on every DTLS-SRTP transport.
//! Peers check it by its fingerprint in SDP (RFC 5763 §5), so it needs no
//! CA; it carries no identity beyond the common name `mediarelay`.
//!
//! [`DtlsCert`] also holds the OpenSSL context every [`DtlsSession`] of the
//! certificate is made from: DTLS 1.2 only, the `use_srtp` profiles, a
//! peer certificate required.
//!
//! [`DtlsSession`]: super::DtlsSession

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{
    SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use openssl::x509::{X509, X509NameBuilder};

use super::{DtlsError, Fingerprint, HashFunc};

/// Common name of the certificate.
pub const CERT_COMMON_NAME: &str = "mediarelay";
/// How long before its making the certificate is valid (clock skew of
/// peers that do check validity).
const VALID_BEFORE: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long after its making the certificate is valid.
const VALID_AFTER: Duration = Duration::from_secs(365 * 24 * 3600);

/// The `use_srtp` profiles offered (client) and accepted (server), most
/// preferred first (RFC 5764 §4.1.2).
const SRTP_PROFILES: &str = "SRTP_AES128_CM_SHA1_80:SRTP_AES128_CM_SHA1_32";

/// DTLS 1.2 cipher suites, ECDHE only (forward secrecy): ECDSA ones for this
/// relay's own certificate as a server, RSA ones too as a client of a peer
/// with an RSA certificate. The CBC suites are for older SIP endpoints.
const CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:\
ECDHE-ECDSA-AES128-SHA:ECDHE-RSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA";

/// The relay's self-signed certificate and private key, with the DTLS
/// context built on them.
///
/// Cheap to clone: clones share one certificate, key and context.
#[derive(Clone)]
pub struct DtlsCert {
    inner: Arc<Inner>,
}

struct Inner {
    context: SslContext,
    cert: X509,
    fingerprint: Fingerprint,
}

impl DtlsCert {
    /// Makes a new key pair (ECDSA on P-256, "prime256v1") and a
    /// self-signed X.509 v3 certificate for it: random 127-bit serial,
    /// common name `mediarelay`, valid from 30 days before `now` to one
    /// year after, signed with SHA-256.
    ///
    /// `now` is wall-clock time, given by the caller as every core here
    /// takes its time; only the validity dates use it.
    pub fn generate(now: SystemTime) -> Result<DtlsCert, DtlsError> {
        let (cert, key) = self_signed(now).map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let fingerprint = Fingerprint::of_cert(HashFunc::Sha256, &cert)
            .map_err(|e| DtlsError::Certificate(e.to_string()))?;
        let context = context(&cert, &key).map_err(|e| DtlsError::Setup(e.to_string()))?;
        Ok(DtlsCert {
            inner: Arc::new(Inner {
                context,
                cert,
                fingerprint,
            }),
        })
    }

    /// The SHA-256 fingerprint of the certificate, for `a=fingerprint`
    /// (RFC 8122 §5).
    pub fn fingerprint(&self) -> Fingerprint {
        self.inner.fingerprint.clone()
    }

    /// The certificate in DER form (RFC 5280), as sent in the handshake.
    pub fn to_der(&self) -> Result<Vec<u8>, DtlsError> {
        self.inner
            .cert
            .to_der()
            .map_err(|e| DtlsError::Certificate(e.to_string()))
    }

    /// The context sessions are made from.
    pub(super) fn context(&self) -> &SslContext {
        &self.inner.context
    }
}

impl fmt::Debug for DtlsCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsCert")
            .field("fingerprint", &self.inner.fingerprint.to_string())
            .finish_non_exhaustive()
    }
}

/// The key pair and the certificate.
fn self_signed(
    now: SystemTime,
) -> Result<(X509, PKey<openssl::pkey::Private>), openssl::error::ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let key = PKey::from_ec_key(EcKey::generate(&group)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, CERT_COMMON_NAME)?;
    let name = name.build();

    // RFC 5280 §4.1.2.2: a positive serial of at most 20 bytes.
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;

    let mut b = X509::builder()?;
    b.set_version(2)?;
    b.set_serial_number(&*serial.to_asn1_integer()?)?;
    b.set_subject_name(&name)?;
    b.set_issuer_name(&name)?;
    b.set_pubkey(&key)?;
    let unix = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let not_before = unix.saturating_sub(VALID_BEFORE.as_secs());
    let not_after = unix.saturating_add(VALID_AFTER.as_secs());
    b.set_not_before(&*Asn1Time::from_unix(to_time_t(not_before))?)?;
    b.set_not_after(&*Asn1Time::from_unix(to_time_t(not_after))?)?;
    b.sign(&key, MessageDigest::sha256())?;
    Ok((b.build(), key))
}

/// Seconds since the epoch as `time_t`, saturated.
fn to_time_t(secs: u64) -> libc::time_t {
    libc::time_t::try_from(secs).unwrap_or(libc::time_t::MAX)
}

/// The DTLS context of the certificate.
fn context(
    cert: &X509,
    key: &PKey<openssl::pkey::Private>,
) -> Result<SslContext, openssl::error::ErrorStack> {
    let mut b = SslContextBuilder::new(SslMethod::dtls())?;
    // DTLS 1.2 only (RFC 6347); DTLS 1.0 lacks the SHA-256 PRF peers expect.
    b.set_min_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::DTLS1_2))?;
    b.set_cipher_list(CIPHERS)?;
    // RFC 5764 §4.1: the use_srtp extension.
    b.set_tlsext_use_srtp(SRTP_PROFILES)?;
    b.set_certificate(cert)?;
    b.set_private_key(key)?;
    b.check_private_key()?;
    // The session's datagram transport has no socket: the MTU is set on
    // each session, never queried. No tickets, no resumption cache, no
    // renegotiation (one handshake per transport).
    b.set_options(SslOptions::NO_QUERY_MTU | SslOptions::NO_TICKET | SslOptions::NO_RENEGOTIATION);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    // RFC 5763 §5: both sides present a certificate; the server asks the
    // client for one. Sessions replace the check with their fingerprint
    // callback.
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    Ok(b.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_distinct_p256_certs() {
        let a = DtlsCert::generate(SystemTime::now()).unwrap();
        let b = DtlsCert::generate(SystemTime::now()).unwrap();
        let fa = a.fingerprint();
        assert_eq!(fa.hash, HashFunc::Sha256);
        assert_eq!(fa.bytes.len(), 32);
        assert_ne!(fa, b.fingerprint());
        assert_eq!(a.clone().fingerprint(), fa);
        assert!(format!("{a:?}").contains("sha-256"));
        let x = X509::from_der(&a.to_der().unwrap()).unwrap();
        let ec = x.public_key().unwrap().ec_key().unwrap();
        assert_eq!(ec.group().curve_name(), Some(Nid::X9_62_PRIME256V1));
        let cn = x
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .unwrap();
        assert_eq!(cn.data().as_slice(), CERT_COMMON_NAME.as_bytes());
        assert_eq!(x.issuer_name().entries().count(), 1);
        assert!(x.verify(&x.public_key().unwrap()).unwrap(), "self-signed");
        // The epoch and far future do not fail.
        DtlsCert::generate(SystemTime::UNIX_EPOCH).unwrap();
    }
}
