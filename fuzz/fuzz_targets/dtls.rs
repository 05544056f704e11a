//! Fuzz the DTLS-SRTP session (RFC 5764) as a server: the input is a
//! sequence of datagrams, each a big-endian 16-bit length and its bytes
//! (at most 16 datagrams). Every datagram goes to one server-role
//! `DtlsSession`, with time advancing a second per datagram and the
//! retransmission timer served. Nothing panics; `handle_input` errs only
//! for what DTLS never sees (not DTLS, too long, session finished); the
//! session never reports `Connected` (no input carries the expected
//! client's certificate and Finished); every queued datagram fits the MTU.
//! Seeds: a ClientHello of `openssl s_client -dtls1_2 -use_srtp`.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use libfuzzer_sys::fuzz_target;
use mediarelay::dtls::{DtlsCert, DtlsError, DtlsEvent, DtlsRole, DtlsSession, Fingerprint, MTU};

/// The server's certificate and the fingerprint it expects, made once.
fn fixture() -> &'static (DtlsCert, Fingerprint) {
    static FIXTURE: OnceLock<(DtlsCert, Fingerprint)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let server = DtlsCert::generate(SystemTime::UNIX_EPOCH).expect("certificate");
        let client = DtlsCert::generate(SystemTime::UNIX_EPOCH).expect("certificate");
        (server, client.fingerprint())
    })
}

fuzz_target!(|data: &[u8]| {
    let (cert, expected) = fixture();
    let mut now = Instant::now();
    let mut server =
        DtlsSession::new(cert, DtlsRole::Server, expected.clone(), now).expect("session");
    let mut buf = vec![0u8; 2048];
    let mut rest = data;
    for _ in 0..16 {
        let [hi, lo, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, tail) = tail.split_at(len);
        rest = tail;

        match server.handle_input(now, datagram) {
            Ok(()) => {}
            Err(DtlsError::NotDtls) => assert!(!mediarelay::dtls::is_dtls(datagram)),
            Err(DtlsError::Finished) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
        while let Some(n) = server.poll_transmit(&mut buf) {
            assert!(n <= MTU as usize);
        }
        while let Some(event) = server.poll_event() {
            assert!(!matches!(event, DtlsEvent::Connected(_)), "{event:?}");
        }
        now += Duration::from_secs(1);
        if let Some(t) = server.poll_timeout() {
            assert!(t > now - Duration::from_secs(1));
            server.handle_timeout(now.max(t));
        }
    }
});
