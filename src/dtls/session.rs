//! The DTLS-SRTP handshake of one transport (RFC 5764 §4): [`DtlsSession`].
//!
//! OpenSSL does the DTLS 1.2 handshake (RFC 6347) over the in-memory
//! transport of `transport.rs`; this file drives it from received
//! datagrams and the caller's clock, checks the peer's certificate against
//! the signalled fingerprint (RFC 5763 §6.7.1), retransmits lost flights
//! (RFC 6347 §4.2.4) and exports the SRTP keys (RFC 5764 §4.2).

use std::collections::VecDeque;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use openssl::srtp::SrtpProfileId;
use openssl::ssl::{ErrorCode, Ssl, SslStream, SslVerifyMode};
use openssl::x509::X509StoreContextRef;

use super::transport::Datagrams;
use super::{
    DtlsCert, DtlsError, DtlsEvent, DtlsRole, Fingerprint, MAX_DATAGRAM_LEN, SrtpKeys, is_dtls,
};
use crate::srtp::{MasterKey, Suite};

/// The DTLS MTU: the largest datagram the session writes. Set on OpenSSL,
/// which is told not to query it (there is no socket to ask); 1200 bytes
/// fit any path that carries media, IPv6 and tunnels included.
pub const MTU: u32 = 1200;

/// First retransmission timeout of a flight (RFC 6347 §4.2.4.1: 1 s).
pub const INITIAL_RTO: Duration = Duration::from_secs(1);

/// The timeout doubles per retransmission up to this (RFC 6347 §4.2.4.1:
/// at least the 60 s of RFC 6298).
pub const MAX_RTO: Duration = Duration::from_secs(60);

/// Retransmissions of one flight before the handshake fails with
/// [`DtlsError::Timeout`]: the flight goes out at 0, 1, 3, 7, 15 and 31 s
/// and the handshake fails at 63 s.
pub const MAX_RETRANSMITS: u32 = 5;

/// Least time between two retransmissions caused by datagrams the peer
/// repeated: a retransmitted flight of several datagrams asks once.
const DUPLICATE_RESEND_INTERVAL: Duration = Duration::from_millis(100);

/// Received datagrams remembered (by hash) to notice the peer's
/// retransmissions.
const RECENT_DATAGRAMS: usize = 16;

/// The exporter label of DTLS-SRTP (RFC 5764 §4.2).
const EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Length of an SRTP master key and salt (RFC 5764 §4.1.2: 128 and 112 bits
/// for both AES-CM profiles).
const KEY_LEN: usize = 16;
const SALT_LEN: usize = 14;

/// Application data records read per received datagram at most (they are
/// dropped; a datagram holds a few).
const MAX_READS: usize = 64;

/// Where the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Handshaking,
    Connected,
    Failed,
    Closed,
}

/// The DTLS-SRTP handshake of one transport (one socket) of a call leg.
///
/// Sans-IO (see the [module](super) docs): feed every DTLS datagram from the
/// peer to [`handle_input`](Self::handle_input), send what
/// [`poll_transmit`](Self::poll_transmit) gives, call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and read
/// [`poll_event`](Self::poll_event) after each of them.
///
/// A client sends its ClientHello from [`new`](Self::new); a server waits
/// for one. The peer must present a certificate whose fingerprint is
/// `remote` (RFC 5763 §6.7.1); its chain is not checked. Application data
/// after the handshake is read and dropped.
pub struct DtlsSession {
    role: DtlsRole,
    remote: Fingerprint,
    stream: SslStream<Datagrams>,
    state: State,
    /// The fingerprint of a peer certificate that did not match, set by the
    /// verify callback inside OpenSSL.
    mismatch: Arc<OnceLock<Fingerprint>>,
    events: VecDeque<DtlsEvent>,
    /// When the last flight is sent again; `None` while no flight waits for
    /// an answer.
    timer: Option<Instant>,
    /// The current retransmission timeout.
    rto: Duration,
    /// Retransmissions of the current flight.
    retransmits: u32,
    /// Hashes of the last received datagrams, newest last.
    recent: VecDeque<u64>,
    last_duplicate_resend: Option<Instant>,
}

impl DtlsSession {
    /// A session of `role` that presents `cert` and accepts a peer whose
    /// certificate has the fingerprint `remote`. A client's ClientHello is
    /// ready in [`poll_transmit`](Self::poll_transmit) on return.
    ///
    /// Errors only when OpenSSL cannot set the session up
    /// ([`DtlsError::Setup`]).
    pub fn new(
        cert: &DtlsCert,
        role: DtlsRole,
        remote: Fingerprint,
        now: Instant,
    ) -> Result<DtlsSession, DtlsError> {
        let setup = |e: openssl::error::ErrorStack| DtlsError::Setup(e.to_string());
        let mut ssl = Ssl::new(cert.context()).map_err(setup)?;
        ssl.set_mtu(MTU).map_err(setup)?;
        let mismatch = Arc::new(OnceLock::new());
        let (expected, seen) = (remote.clone(), Arc::clone(&mismatch));
        // RFC 5763 §5: the server requests the client's certificate and
        // both sides require one.
        let mode = SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT;
        ssl.set_verify_callback(mode, move |_chain_ok, ctx| {
            verify_by_fingerprint(&expected, &seen, ctx)
        });
        match role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, Datagrams::default()).map_err(setup)?;
        let mut session = DtlsSession {
            role,
            remote,
            stream,
            state: State::Handshaking,
            mismatch,
            events: VecDeque::new(),
            timer: None,
            rto: INITIAL_RTO,
            retransmits: 0,
            recent: VecDeque::with_capacity(RECENT_DATAGRAMS),
            last_duplicate_resend: None,
        };
        if role == DtlsRole::Client {
            session.handshake(now);
        }
        Ok(session)
    }

    /// One datagram received from the peer: a DTLS one (RFC 7983: first
    /// byte 20..=63).
    ///
    /// Errors for datagrams refused before DTLS sees them: not DTLS, longer
    /// than [`MAX_DATAGRAM_LEN`], or the session already finished. What
    /// DTLS makes of a datagram is in [`poll_event`](Self::poll_event):
    /// records that do not parse or authenticate are dropped silently
    /// (RFC 6347 §4.1.2.7), a handshake that fails is
    /// [`DtlsEvent::Failed`].
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        if !is_dtls(data) {
            return Err(DtlsError::NotDtls);
        }
        if data.len() > MAX_DATAGRAM_LEN {
            return Err(DtlsError::TooLong { len: data.len() });
        }
        if matches!(self.state, State::Failed | State::Closed) {
            return Err(DtlsError::Finished);
        }
        let hash = datagram_hash(data);
        if self.recent.contains(&hash) {
            // RFC 6347 §4.2.4: the peer sending its flight again means it
            // lost ours. OpenSSL would drop the copy as a replay.
            if is_handshake_record(data) {
                self.resend_for_duplicate(now);
            }
            return Ok(());
        }
        if self.recent.len() == RECENT_DATAGRAMS {
            self.recent.pop_front();
        }
        self.recent.push_back(hash);

        self.stream.get_mut().push_inbound(data);
        match self.state {
            State::Handshaking => self.handshake(now),
            State::Connected => self.read_records(),
            State::Failed | State::Closed => {}
        }
        self.stream.get_mut().clear_inbound();
        Ok(())
    }

    /// Retransmits the last flight if its timer expired at `now`, or fails
    /// the handshake after [`MAX_RETRANSMITS`] (RFC 6347 §4.2.4).
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != State::Handshaking {
            return;
        }
        let Some(deadline) = self.timer else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.retransmits >= MAX_RETRANSMITS {
            self.fail(DtlsError::Timeout);
            return;
        }
        self.stream.get_mut().resend_flight();
        self.retransmits += 1;
        // RFC 6347 §4.2.4.1: double the timer per retransmission.
        self.rto = self.rto.saturating_mul(2).min(MAX_RTO);
        self.timer = Some(now.checked_add(self.rto).unwrap_or(now));
        tracing::debug!(
            retransmits = self.retransmits,
            "DTLS flight retransmitted on timeout"
        );
    }

    /// When [`handle_timeout`](Self::handle_timeout) is due: while a flight
    /// of the handshake waits for its answer; `None` otherwise.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Handshaking => self.timer,
            _ => None,
        }
    }

    /// The next datagram to send to the peer, written into `buf`; its
    /// length. Datagrams are at most [`MTU`] bytes; one longer than `buf`
    /// is dropped.
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        while let Some(d) = self.stream.get_mut().pop_outbound() {
            if let Some(out) = buf.get_mut(..d.len()) {
                out.copy_from_slice(&d);
                return Some(d.len());
            }
            tracing::debug!(
                len = d.len(),
                buf = buf.len(),
                "DTLS datagram longer than the transmit buffer dropped"
            );
        }
        None
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// Whether the handshake completed (and the connection is not closed
    /// or failed since).
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// This side's role.
    pub fn role(&self) -> DtlsRole {
        self.role
    }

    /// Closes the connection: a `close_notify` alert (RFC 5246 §7.2.1) is
    /// queued for [`poll_transmit`](Self::poll_transmit) when the handshake
    /// had completed. The session takes no more input; no event follows.
    pub fn close(&mut self) {
        if self.state == State::Connected {
            // Ok(Sent) is the expected answer; an error has nothing left
            // to undo.
            let _ = self.stream.shutdown();
        }
        if matches!(self.state, State::Handshaking | State::Connected) {
            self.state = State::Closed;
            self.timer = None;
        }
    }

    /// One step of the handshake: OpenSSL consumes what is queued and
    /// writes its next flight, if any.
    fn handshake(&mut self, now: Instant) {
        self.stream.get_mut().begin_step();
        let result = self.stream.do_handshake();
        let wrote = self.stream.get_ref().step_wrote();
        match result {
            Ok(()) => {
                self.timer = None;
                if !wrote {
                    // The peer's flight ended the handshake: it has ours.
                    // A final flight this side wrote stays, to be sent
                    // again if the peer repeats its last one.
                    self.stream.get_mut().clear_flight();
                }
                match self.keys() {
                    Ok(keys) => {
                        self.state = State::Connected;
                        self.events.push_back(DtlsEvent::Connected(keys));
                        // Records behind the last handshake message.
                        self.read_records();
                    }
                    Err(e) => self.fail(e),
                }
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => {
                if wrote {
                    // A new flight: its timer starts (RFC 6347 §4.2.4).
                    self.rto = INITIAL_RTO;
                    self.retransmits = 0;
                    self.timer = Some(now.checked_add(self.rto).unwrap_or(now));
                }
            }
            Err(e) => {
                let err = match self.mismatch.get() {
                    Some(actual) => DtlsError::FingerprintMismatch {
                        expected: self.remote.clone(),
                        actual: actual.clone(),
                    },
                    None => DtlsError::Handshake(e.to_string()),
                };
                self.fail(err);
            }
        }
    }

    /// After the handshake: the peer's certificate once more, the profile,
    /// the keys (RFC 5764 §4.2).
    fn keys(&self) -> Result<SrtpKeys, DtlsError> {
        let ssl = self.stream.ssl();
        let cert = ssl.peer_certificate().ok_or(DtlsError::NoPeerCertificate)?;
        let actual = Fingerprint::of_cert(self.remote.hash, &cert)
            .map_err(|e| DtlsError::Handshake(e.to_string()))?;
        if actual != self.remote {
            return Err(DtlsError::FingerprintMismatch {
                expected: self.remote.clone(),
                actual,
            });
        }
        let profile = ssl
            .selected_srtp_profile()
            .map(|p| p.id())
            .ok_or(DtlsError::NoSrtpProfile)?;
        let suite = if profile == SrtpProfileId::SRTP_AES128_CM_SHA1_80 {
            Suite::AesCm128HmacSha1_80
        } else if profile == SrtpProfileId::SRTP_AES128_CM_SHA1_32 {
            Suite::AesCm128HmacSha1_32
        } else {
            return Err(DtlsError::NoSrtpProfile);
        };

        // RFC 5764 §4.2: client_write_SRTP_master_key | server_write_...key
        // | client_write_SRTP_master_salt | server_write_..._salt, from the
        // exporter (RFC 5705) with no context.
        let mut material = [0u8; 2 * (KEY_LEN + SALT_LEN)];
        ssl.export_keying_material(&mut material, EXPORTER_LABEL, None)
            .map_err(|e| DtlsError::KeyExport(e.to_string()))?;
        let (keys, salts) = material.split_at(2 * KEY_LEN);
        let (client_key, server_key) = keys.split_at(KEY_LEN);
        let (client_salt, server_salt) = salts.split_at(SALT_LEN);
        let client = master_key(client_key, client_salt);
        let server = master_key(server_key, server_salt);
        let (local, remote) = match self.role {
            DtlsRole::Client => (client, server),
            DtlsRole::Server => (server, client),
        };
        Ok(SrtpKeys {
            suite,
            local,
            remote,
        })
    }

    /// Reads what OpenSSL has after the handshake: application data is
    /// dropped, `close_notify` closes, a fatal alert fails.
    fn read_records(&mut self) {
        let mut scratch = [0u8; 2048];
        for _ in 0..MAX_READS {
            match self.stream.ssl_read(&mut scratch) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    match e.code() {
                        ErrorCode::WANT_READ | ErrorCode::WANT_WRITE => {}
                        ErrorCode::ZERO_RETURN => {
                            // RFC 5246 §7.2.1: answer with our close_notify.
                            let _ = self.stream.shutdown();
                            self.state = State::Closed;
                            self.events.push_back(DtlsEvent::Closed);
                        }
                        _ => self.fail(DtlsError::Connection(e.to_string())),
                    }
                    return;
                }
            }
        }
    }

    /// Sends the last flight again because the peer repeated a datagram,
    /// at most once per [`DUPLICATE_RESEND_INTERVAL`].
    fn resend_for_duplicate(&mut self, now: Instant) {
        if !matches!(self.state, State::Handshaking | State::Connected)
            || !self.stream.get_ref().has_flight()
        {
            return;
        }
        if let Some(last) = self.last_duplicate_resend
            && now.saturating_duration_since(last) < DUPLICATE_RESEND_INTERVAL
        {
            return;
        }
        self.last_duplicate_resend = Some(now);
        self.stream.get_mut().resend_flight();
        tracing::debug!("DTLS flight retransmitted for a repeated peer flight");
    }

    fn fail(&mut self, err: DtlsError) {
        tracing::debug!(error = %err, role = ?self.role, "DTLS failed");
        self.state = State::Failed;
        self.timer = None;
        self.events.push_back(DtlsEvent::Failed(err));
    }
}

impl fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsSession")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("remote", &self.remote.to_string())
            .field("timer", &self.timer)
            .field("retransmits", &self.retransmits)
            .finish_non_exhaustive()
    }
}

/// The verify callback: RFC 5763 §6.7.1, the peer's certificate is
/// accepted when its fingerprint is the signalled one, whatever the chain
/// (self-signed is the rule). Only the end-entity certificate (depth 0)
/// is looked at.
fn verify_by_fingerprint(
    expected: &Fingerprint,
    mismatch: &OnceLock<Fingerprint>,
    ctx: &mut X509StoreContextRef,
) -> bool {
    if ctx.error_depth() != 0 {
        return true;
    }
    let Some(cert) = ctx.current_cert() else {
        return false;
    };
    match Fingerprint::of_cert(expected.hash, cert) {
        Ok(actual) if actual == *expected => true,
        Ok(actual) => {
            // The first mismatch is the one reported; later calls see the
            // same certificate.
            let _ = mismatch.set(actual);
            false
        }
        Err(_) => false,
    }
}

/// A master key from its 16 key and 14 salt bytes.
fn master_key(key: &[u8], salt: &[u8]) -> MasterKey {
    let mut b = [0u8; KEY_LEN + SALT_LEN];
    // Both slices come from fixed splits of the exporter output.
    b[..KEY_LEN].copy_from_slice(key);
    b[KEY_LEN..].copy_from_slice(salt);
    let k = MasterKey::from_bytes(&b);
    b.fill(0);
    k
}

/// Hash of a datagram, to notice repeats.
fn datagram_hash(data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    data.hash(&mut h);
    h.finish()
}

/// Whether the datagram starts with a handshake or change_cipher_spec
/// record (content types 22 and 20, RFC 5246 §6.2.1).
fn is_handshake_record(data: &[u8]) -> bool {
    matches!(data.first(), Some(20 | 22))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::srtp::{MAX_OVERHEAD, Srtp};
    use std::time::SystemTime;

    /// Both ends of one transport on a virtual clock.
    struct Link {
        client: DtlsSession,
        server: DtlsSession,
        now: Instant,
    }

    fn certs() -> (DtlsCert, DtlsCert) {
        (
            DtlsCert::generate(SystemTime::now()).unwrap(),
            DtlsCert::generate(SystemTime::now()).unwrap(),
        )
    }

    impl Link {
        fn new() -> Link {
            let (c, s) = certs();
            Link::with(&c, &s, s.fingerprint(), c.fingerprint())
        }

        /// The client expects `server_fp`, the server `client_fp`.
        fn with(
            c: &DtlsCert,
            s: &DtlsCert,
            server_fp: Fingerprint,
            client_fp: Fingerprint,
        ) -> Link {
            let now = Instant::now();
            Link {
                client: DtlsSession::new(c, DtlsRole::Client, server_fp, now).unwrap(),
                server: DtlsSession::new(s, DtlsRole::Server, client_fp, now).unwrap(),
                now,
            }
        }

        /// Moves datagrams both ways until none is left; `drop` decides, by
        /// direction (true: client to server) and index of the datagram in
        /// that direction, which are lost. Datagrams moved.
        fn pump(
            &mut self,
            drop: &mut dyn FnMut(bool, usize) -> bool,
            counts: &mut [usize; 2],
        ) -> usize {
            let mut buf = [0u8; 2048];
            let mut moved = 0;
            loop {
                let mut any = false;
                while let Some(n) = self.client.poll_transmit(&mut buf) {
                    any = true;
                    counts[0] += 1;
                    if !drop(true, counts[0] - 1) {
                        let _ = self.server.handle_input(self.now, &buf[..n]);
                        moved += 1;
                    }
                }
                while let Some(n) = self.server.poll_transmit(&mut buf) {
                    any = true;
                    counts[1] += 1;
                    if !drop(false, counts[1] - 1) {
                        let _ = self.client.handle_input(self.now, &buf[..n]);
                        moved += 1;
                    }
                }
                if !any {
                    return moved;
                }
            }
        }

        /// Pumps, firing timers on the virtual clock, until both sides
        /// have an event or nothing is left to do.
        fn run(
            &mut self,
            drop: &mut dyn FnMut(bool, usize) -> bool,
        ) -> (Vec<DtlsEvent>, Vec<DtlsEvent>) {
            let mut counts = [0; 2];
            let (mut ce, mut se) = (Vec::new(), Vec::new());
            for _ in 0..50 {
                self.pump(drop, &mut counts);
                ce.extend(std::iter::from_fn(|| self.client.poll_event()));
                se.extend(std::iter::from_fn(|| self.server.poll_event()));
                if !ce.is_empty() && !se.is_empty() {
                    break;
                }
                let next = [self.client.poll_timeout(), self.server.poll_timeout()]
                    .into_iter()
                    .flatten()
                    .min();
                let Some(next) = next else { break };
                self.now = self.now.max(next);
                self.client.handle_timeout(self.now);
                self.server.handle_timeout(self.now);
            }
            (ce, se)
        }
    }

    fn keys(events: &[DtlsEvent]) -> SrtpKeys {
        match events {
            [DtlsEvent::Connected(k)] => *k,
            other => panic!("expected one Connected, got {other:?}"),
        }
    }

    /// Protects an RTP packet with `tx` and unprotects it with `rx`.
    fn srtp_works(suite: Suite, tx: &MasterKey, rx: &MasterKey) -> bool {
        let mut packet = vec![0x80, 0, 0, 1, 0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78];
        packet.extend_from_slice(&[0xd5; 160]);
        let len = packet.len();
        let mut buf = packet.clone();
        buf.resize(len + MAX_OVERHEAD, 0);
        let n = Srtp::new(suite, tx, None)
            .unwrap()
            .protect_rtp(&mut buf, len)
            .unwrap();
        assert_ne!(&buf[12..len], &packet[12..]);
        match Srtp::new(suite, rx, None)
            .unwrap()
            .unprotect_rtp(&mut buf, n)
        {
            Ok(back) => back == len && buf[..len] == packet[..],
            Err(_) => false,
        }
    }

    #[test]
    fn handshake_gives_matching_working_keys() {
        let mut link = Link::new();
        assert!(
            openssl::error::ErrorStack::get().errors().is_empty(),
            "setting up leaves no error queued in OpenSSL"
        );
        assert!(link.client.poll_timeout().is_some(), "ClientHello timer");
        assert_eq!(link.server.poll_timeout(), None, "server waits");
        let (ce, se) = link.run(&mut |_, _| false);
        let (ck, sk) = (keys(&ce), keys(&se));
        assert!(link.client.is_connected() && link.server.is_connected());
        assert_eq!(ck.suite, Suite::AesCm128HmacSha1_80, "preferred profile");
        assert_eq!(ck.suite, sk.suite);
        assert_eq!(ck.local, sk.remote);
        assert_eq!(ck.remote, sk.local);
        assert_ne!(ck.local, ck.remote);
        assert!(srtp_works(ck.suite, &ck.local, &sk.remote));
        assert!(srtp_works(sk.suite, &sk.local, &ck.remote));
        assert!(!srtp_works(ck.suite, &ck.local, &ck.remote));
        assert_eq!(link.client.poll_timeout(), None);
        assert_eq!(link.server.poll_timeout(), None);
        assert_eq!(link.client.poll_event(), None, "Connected once");
        assert_eq!(link.server.role(), DtlsRole::Server);
        assert!(format!("{:?}", link.client).contains("Connected"));
    }

    #[test]
    fn datagrams_fit_the_mtu() {
        let mut link = Link::new();
        let mut buf = [0u8; 2048];
        let mut sizes = Vec::new();
        for _ in 0..6 {
            while let Some(n) = link.client.poll_transmit(&mut buf) {
                sizes.push(n);
                link.server.handle_input(link.now, &buf[..n]).unwrap();
            }
            while let Some(n) = link.server.poll_transmit(&mut buf) {
                sizes.push(n);
                link.client.handle_input(link.now, &buf[..n]).unwrap();
            }
        }
        assert!(link.client.is_connected() && link.server.is_connected());
        assert!(sizes.iter().all(|&n| n <= MTU as usize), "{sizes:?}");
    }

    #[test]
    fn fingerprint_mismatch_fails_the_client() {
        let (c, s) = certs();
        let other = DtlsCert::generate(SystemTime::now()).unwrap();
        let mut link = Link::with(&c, &s, other.fingerprint(), c.fingerprint());
        let (ce, se) = link.run(&mut |_, _| false);
        match &ce[..] {
            [DtlsEvent::Failed(DtlsError::FingerprintMismatch { expected, actual })] => {
                assert_eq!(*expected, other.fingerprint());
                assert_eq!(*actual, s.fingerprint());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&se[..], [DtlsEvent::Failed(DtlsError::Handshake(_))]),
            "the alert fails the server: {se:?}"
        );
        assert!(!link.client.is_connected() && !link.server.is_connected());
        assert_eq!(
            link.client.handle_input(link.now, &[22, 254, 253]),
            Err(DtlsError::Finished)
        );
    }

    #[test]
    fn fingerprint_mismatch_fails_the_server() {
        let (c, s) = certs();
        let other = DtlsCert::generate(SystemTime::now()).unwrap();
        // Same bytes, other hash function: also a mismatch.
        let mut link = Link::with(&c, &s, s.fingerprint(), other.fingerprint());
        let (ce, se) = link.run(&mut |_, _| false);
        match &se[..] {
            [DtlsEvent::Failed(DtlsError::FingerprintMismatch { actual, .. })] => {
                assert_eq!(*actual, c.fingerprint());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(&ce[..], [DtlsEvent::Failed(_)]), "{ce:?}");
    }

    #[test]
    fn sha1_fingerprint_is_checked_with_sha1() {
        let (c, s) = certs();
        let sha1 = |cert: &DtlsCert| {
            let der = openssl::x509::X509::from_der(&cert.to_der().unwrap()).unwrap();
            Fingerprint::of_cert(super::super::HashFunc::Sha1, &der).unwrap()
        };
        let mut link = Link::with(&c, &s, sha1(&s), sha1(&c));
        let (ce, se) = link.run(&mut |_, _| false);
        assert_eq!(keys(&ce).local, keys(&se).remote);
    }

    #[test]
    fn lost_client_hello_is_retransmitted_on_the_timer() {
        let mut link = Link::new();
        let start = link.now;
        let (ce, se) = link.run(&mut |to_server, i| to_server && i == 0);
        assert_eq!(keys(&ce).local, keys(&se).remote);
        assert_eq!(link.now, start + INITIAL_RTO, "one timer fired");
    }

    #[test]
    fn lost_server_flight_is_retransmitted() {
        let mut link = Link::new();
        // The server's first flight (all its datagrams of the first pump).
        let (ce, se) = link.run(&mut |to_server, i| !to_server && i < 1);
        assert_eq!(keys(&ce).local, keys(&se).remote);
    }

    #[test]
    fn lost_final_flight_is_sent_again_when_the_client_repeats() {
        let mut link = Link::new();
        let mut counts = [0; 2];
        // Up to the server's final flight, which is lost.
        let mut server_sent = 0;
        link.pump(
            &mut |to_server, _| {
                if !to_server {
                    server_sent += 1;
                }
                false
            },
            &mut counts,
        );
        assert!(link.server.is_connected() && link.client.is_connected());
        // Flight 4 (ServerHello .. ServerHelloDone) and flight 6
        // (ChangeCipherSpec, Finished): one datagram each at this MTU.
        assert_eq!(server_sent, 2);
        let mut link = Link::new();
        let start = link.now;
        let mut counts = [0; 2];
        let first_flight = server_sent - 1;
        link.pump(
            &mut |to_server, i| !to_server && i >= first_flight,
            &mut counts,
        );
        assert!(link.server.is_connected());
        assert!(!link.client.is_connected());
        assert_eq!(
            link.server.poll_timeout(),
            None,
            "no timer after the last flight"
        );
        let (ce, se) = link.run(&mut |_, _| false);
        assert_eq!(keys(&ce).local, keys(&se).remote);
        assert_eq!(
            link.now,
            start + INITIAL_RTO,
            "the client's timer fired once"
        );
    }

    #[test]
    fn unanswered_handshake_times_out() {
        let (c, s) = certs();
        let now = Instant::now();
        let mut client = DtlsSession::new(&c, DtlsRole::Client, s.fingerprint(), now).unwrap();
        let mut buf = [0u8; 2048];
        let hello = client.poll_transmit(&mut buf).unwrap();
        let hello = buf[..hello].to_vec();
        let mut deadlines = Vec::new();
        while let Some(t) = client.poll_timeout() {
            deadlines.push(t - now);
            client.handle_timeout(t - Duration::from_millis(1));
            assert_eq!(client.poll_transmit(&mut buf), None, "not yet");
            client.handle_timeout(t);
            if let Some(n) = client.poll_transmit(&mut buf) {
                assert_eq!(&buf[..n], &hello[..], "the same ClientHello");
            }
        }
        let secs: Vec<u64> = deadlines.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 3, 7, 15, 31, 63]);
        assert_eq!(
            client.poll_event(),
            Some(DtlsEvent::Failed(DtlsError::Timeout))
        );
    }

    #[test]
    fn refuses_non_dtls_and_oversize() {
        let mut link = Link::new();
        let s = &mut link.server;
        assert_eq!(s.handle_input(link.now, &[]), Err(DtlsError::NotDtls));
        assert_eq!(
            s.handle_input(link.now, &[0x80, 0]),
            Err(DtlsError::NotDtls)
        );
        assert_eq!(s.handle_input(link.now, &[0, 1]), Err(DtlsError::NotDtls));
        let big = vec![22; MAX_DATAGRAM_LEN + 1];
        assert_eq!(
            s.handle_input(link.now, &big),
            Err(DtlsError::TooLong { len: big.len() })
        );
        // Still able to handshake.
        let (ce, se) = link.run(&mut |_, _| false);
        assert_eq!(keys(&ce).local, keys(&se).remote);
    }

    /// xorshift64, for repeatable garbage.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn garbage_never_panics() {
        let (c, s) = certs();
        let now = Instant::now();
        let mut client = DtlsSession::new(&c, DtlsRole::Client, s.fingerprint(), now).unwrap();
        let mut buf = [0u8; 2048];
        let n = client.poll_transmit(&mut buf).unwrap();
        let hello = buf[..n].to_vec();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..300 {
            let mut server = DtlsSession::new(&s, DtlsRole::Server, c.fingerprint(), now).unwrap();
            let mut datagram = if round % 2 == 0 {
                // A ClientHello with bytes changed.
                let mut d = hello.clone();
                for _ in 0..1 + next(&mut rng) % 4 {
                    let i = (next(&mut rng) as usize) % d.len();
                    d[i] = next(&mut rng) as u8;
                }
                d
            } else {
                let len = (next(&mut rng) % 300) as usize;
                (0..len).map(|_| next(&mut rng) as u8).collect::<Vec<u8>>()
            };
            if round % 3 == 0 {
                let cut = (next(&mut rng) as usize) % (datagram.len() + 1);
                datagram.truncate(cut);
            }
            match server.handle_input(now, &datagram) {
                Ok(()) | Err(DtlsError::NotDtls) => {}
                Err(e) => panic!("{e:?}"),
            }
            while server.poll_transmit(&mut buf).is_some() {}
            while let Some(e) = server.poll_event() {
                assert!(matches!(e, DtlsEvent::Failed(_)), "{e:?}");
            }
            server.handle_timeout(now + MAX_RTO);
        }
        // A connected session fed garbage stays up: bad records are dropped.
        let mut link = Link::new();
        let (ce, _) = link.run(&mut |_, _| false);
        keys(&ce);
        for _ in 0..200 {
            let len = 1 + (next(&mut rng) % 200) as usize;
            let mut d: Vec<u8> = (0..len).map(|_| next(&mut rng) as u8).collect();
            d[0] = 20 + (next(&mut rng) % 44) as u8;
            let _ = link.client.handle_input(link.now, &d);
        }
        while let Some(e) = link.client.poll_event() {
            assert!(
                matches!(e, DtlsEvent::Failed(_) | DtlsEvent::Closed),
                "{e:?}"
            );
        }
    }

    #[test]
    fn close_notify_closes_the_peer() {
        let mut link = Link::new();
        let (ce, se) = link.run(&mut |_, _| false);
        keys(&ce);
        keys(&se);
        link.client.close();
        assert!(!link.client.is_connected());
        link.pump(&mut |_, _| false, &mut [0; 2]);
        assert_eq!(link.server.poll_event(), Some(DtlsEvent::Closed));
        assert!(!link.server.is_connected());
        assert_eq!(link.client.poll_event(), None);
    }

    #[test]
    fn small_transmit_buffer_drops_the_datagram() {
        let mut link = Link::new();
        let mut tiny = [0u8; 8];
        assert_eq!(link.client.poll_transmit(&mut tiny), None);
        let mut buf = [0u8; 2048];
        assert_eq!(link.client.poll_transmit(&mut buf), None);
    }
}
