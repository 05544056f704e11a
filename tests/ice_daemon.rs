//! ICE and DTLS-SRTP termination through the daemon (RFC 8445, RFC 5763,
//! RFC 5764), on both I/O backends.
//!
//! The far ends are independent implementations in Python: two `aioice`
//! agents (the ICE of aiortc) run by `tests/ice/aioice_call.py`, which
//! sends their offer and answer through the daemon's NG port, runs the
//! connectivity checks of both against the relay and then sends RTP each
//! way over the selected pairs; and an `aiortc` WebRTC peer
//! (`tests/ice/aiortc_call.py`: ICE, DTLS-SRTP, rtcp-mux, as a browser)
//! bridged to a plain RTP/AVP socket with `transport-protocol: RTP/AVP`,
//! and two such peers with no flags (`tests/ice/aiortc_pair.py`). The
//! scripts pass unchanged against rtpengine. The Python interpreter
//! is `$MEDIARELAY_PYTHON` (else `python3`); without the modules the tests
//! are skipped, unless `MEDIARELAY_REQUIRE_PYTHON_PEERS` is set (CI),
//! which makes that a failure.
//!
//! The checks of the relay's own STUN handling (credentials, a stranger's
//! requests) use the crate's STUN codec. Consent freshness (RFC 7675): an
//! `aioice` far end that stops answering the relay's checks.

#![cfg(feature = "daemon")]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{Client, backends, start, t};
use mediarelay::ice::IceCredentials;
use mediarelay::ng::OwnedValue;
use mediarelay::stun;

fn python() -> String {
    std::env::var("MEDIARELAY_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Whether the interpreter has `module`; a missing one fails the test when
/// `MEDIARELAY_REQUIRE_PYTHON_PEERS` is set.
fn have(module: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("MEDIARELAY_REQUIRE_PYTHON_PEERS").is_none(),
            "{} has no {module} module",
            python()
        );
        eprintln!("{module} is not installed: the test is skipped");
    }
    ok
}

/// Runs `tests/ice/<script>` against the daemon `c`; its JSON output.
fn run_peer(script: &str, c: &Client, extra: &[&str]) -> String {
    let out = Command::new(python())
        .arg(format!("{}/tests/ice/{script}", env!("CARGO_MANIFEST_DIR")))
        .args(["--ng", &c.ng.to_string()])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("run {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script}: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The raw value of `key` in a flat JSON object (up to the next comma).
fn json_field(json: &str, key: &str) -> String {
    json.find(&format!("\"{key}\": "))
        .map(|i| {
            json[i + key.len() + 4..]
                .split([',', '}'])
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The value of the first `a=NAME:` line of `sdp`.
fn attr<'a>(sdp: &'a str, name: &str) -> Option<&'a str> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix(&format!("a={name}:")))
}

#[test]
fn aioice_agents_connect_and_exchange_media_through_the_relay() {
    if !have("aioice") {
        return;
    }
    for backend in backends() {
        let (_d, c) = start(&["--io-backend", backend]);
        let out = run_peer("aioice_call.py", &c, &["--packets", "50"]);
        assert_eq!(json_field(&out, "connected"), "true", "{backend}: {out}");
        assert_eq!(json_field(&out, "a_to_b"), "50", "{backend}: {out}");
        assert_eq!(json_field(&out, "b_to_a"), "50", "{backend}: {out}");
        let checks = c.metric("mediarelay_ice_packets_total").unwrap_or(0);
        assert!(checks >= 4, "{backend}: {checks} STUN packets counted");
    }
}

/// RFC 7675 §5.1: a far end that stops answering the relay's consent
/// checks gets no more media once its consent expires (30 s after the last
/// response), and what was meant for it is counted as dropped for want of
/// consent. One backend: the test waits out the consent timeout.
#[test]
fn a_far_end_that_stops_answering_consent_checks_gets_no_more_media() {
    if !have("aioice") {
        return;
    }
    let (_d, c) = start(&[]);
    let out = run_peer(
        "aioice_call.py",
        &c,
        &["--packets", "20", "--silence", "36"],
    );
    assert_eq!(json_field(&out, "connected"), "true", "{out}");
    assert_eq!(json_field(&out, "b_to_a"), "20", "{out}");
    let last: f64 = json_field(&out, "last_arrival_s").parse().unwrap_or(-1.0);
    assert!(
        (25.0..34.0).contains(&last),
        "last packet {last} s after the far end fell silent: {out}"
    );
    // B sent for 36 s at 50 pps: several seconds of it after the expiry.
    let dropped = c
        .metric("mediarelay_dropped_packets_total{reason=\"no_consent\"}")
        .unwrap_or(0);
    assert!(
        dropped >= 100,
        "{dropped} dropped for want of consent: {out}"
    );
}

/// A WebRTC peer (ICE, DTLS-SRTP, rtcp-mux) bridged to plain RTP, whichever
/// side offers: the relay terminates ICE and DTLS toward it, SRTP both
/// ways.
#[test]
fn webrtc_peer_is_bridged_to_plain_rtp() {
    if !have("aiortc") {
        return;
    }
    for backend in backends() {
        let (_d, c) = start(&["--io-backend", backend]);
        // The WebRTC peer offers; then the plain side offers toward it.
        for extra in [&[][..], &["--reverse"][..]] {
            let mut args = vec!["--seconds", "3"];
            args.extend(extra);
            let out = run_peer("aiortc_call.py", &c, &args);
            assert_eq!(
                json_field(&out, "connected"),
                "true",
                "{backend} {extra:?}: {out}"
            );
            let num = |k: &str| json_field(&out, k).parse::<u64>().unwrap_or(0);
            // 3 s of 20 ms frames each way: the tone decrypted toward B,
            // B's RTP encrypted toward A (a few lost to start-up at most).
            assert!(num("b_received") >= 100, "{backend} {extra:?}: {out}");
            assert!(num("a_received") >= 100, "{backend} {extra:?}: {out}");
        }
        assert!(
            c.metric("mediarelay_dtls_packets_total").unwrap_or(0) >= 4,
            "{backend}"
        );
        assert_eq!(
            c.metric("mediarelay_dropped_packets_total{reason=\"srtp\"}"),
            Some(0),
            "{backend}"
        );
    }
}

/// Two WebRTC peers with no flags: the relay terminates ICE and DTLS-SRTP
/// toward each (rtpengine's default) and re-encrypts the media between
/// them.
#[test]
fn two_webrtc_peers_through_the_relay_by_default() {
    if !have("aiortc") {
        return;
    }
    for backend in backends() {
        let (_d, c) = start(&["--io-backend", backend]);
        let out = run_peer("aiortc_pair.py", &c, &["--seconds", "3"]);
        assert_eq!(json_field(&out, "connected"), "true", "{backend}: {out}");
        let num = |k: &str| json_field(&out, k).parse::<u64>().unwrap_or(0);
        assert!(num("a_received") >= 100, "{backend}: {out}");
        assert!(num("b_received") >= 100, "{backend}: {out}");
        // Two handshakes, the relay's own on each side.
        assert!(
            c.metric("mediarelay_dtls_packets_total").unwrap_or(0) >= 8,
            "{backend}"
        );
    }
}

/// An offer with ICE; the SDP handed on and the relay's credentials
/// toward the offerer (from the answer handed back).
fn ice_call(c: &mut Client, call: &str, a: &UdpSocket, b_port: u16) -> (String, String) {
    let a_port = a.local_addr().unwrap().port();
    let offer = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {a_port} RTP/AVP 0\r\na=rtcp-mux\r\na=ice-ufrag:aaaa\r\n\
         a=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
         a=candidate:1 1 UDP 2130706431 127.0.0.1 {a_port} typ host\r\n"
    );
    let r = c.cmd(&[
        ("command", t("offer")),
        ("call-id", t(call)),
        ("from-tag", t("tagA")),
        ("sdp", t(&offer)),
    ]);
    let handed_on = r
        .get("sdp")
        .and_then(OwnedValue::as_str)
        .unwrap()
        .to_string();
    let answer = format!(
        "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {b_port} RTP/AVP 0\r\na=rtcp-mux\r\n"
    );
    let r = c.cmd(&[
        ("command", t("answer")),
        ("call-id", t(call)),
        ("from-tag", t("tagA")),
        ("to-tag", t("tagB")),
        ("sdp", t(&answer)),
    ]);
    let back = r
        .get("sdp")
        .and_then(OwnedValue::as_str)
        .unwrap()
        .to_string();
    (handed_on, back)
}

/// A Binding request from `sock` to `to` with `username`, keyed by `pwd`;
/// the response, if any arrives within `wait`.
fn binding(
    sock: &UdpSocket,
    to: SocketAddr,
    username: &str,
    pwd: &str,
    wait: Duration,
) -> Option<Vec<u8>> {
    let mut buf = [0u8; 512];
    let req = stun::BindingRequest {
        transaction_id: stun::TransactionId([7u8; 12]),
        username,
        priority: 1_853_824_767,
        controlling: true,
        tie_breaker: 42,
        use_candidate: false,
    };
    let len = stun::write_binding_request(&mut buf, &req, pwd.as_bytes()).expect("fits");
    sock.send_to(&buf[..len], to).unwrap();
    sock.set_read_timeout(Some(wait)).unwrap();
    let mut rx = [0u8; 1500];
    // The relay's own checks may arrive too: the response is the message
    // with this request's transaction id.
    while let Ok((n, _)) = sock.recv_from(&mut rx) {
        if stun::Message::parse(&rx[..n]).is_ok_and(|m| m.transaction_id() == req.transaction_id) {
            return Some(rx[..n].to_vec());
        }
    }
    None
}

#[test]
fn the_relay_answers_checks_with_its_credentials_and_ignores_strangers() {
    for backend in backends() {
        let (_d, mut c) = start(&["--io-backend", backend]);
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (handed_on, back) = ice_call(&mut c, "ice-creds", &a, b.local_addr().unwrap().port());
        // Toward B (which did not answer with ICE) and toward A: the
        // relay's own credentials and host candidates.
        assert!(
            attr(&handed_on, "ice-ufrag").is_some_and(|u| u.len() == 8),
            "{handed_on}"
        );
        assert!(
            attr(&handed_on, "ice-pwd").is_some_and(|p| p.len() == 26),
            "{handed_on}"
        );
        assert!(
            !handed_on.contains("aaaa"),
            "A's credentials stay with the relay: {handed_on}"
        );
        let local = IceCredentials {
            ufrag: attr(&back, "ice-ufrag").unwrap().to_string(),
            pwd: attr(&back, "ice-pwd").unwrap().to_string(),
        };
        let relay_port = common::m_port(&back);
        let relay: SocketAddr = format!("127.0.0.1:{relay_port}").parse().unwrap();
        let cand = attr(&back, "candidate").unwrap();
        assert!(
            cand.ends_with(&format!(
                " 1 UDP 2130706431 127.0.0.1 {relay_port} typ host"
            )) || cand.contains(&format!("127.0.0.1 {relay_port} typ host")),
            "{cand}"
        );
        // A's check with the right credentials: a success response that
        // names A's address (XOR-MAPPED-ADDRESS, RFC 8489 §14.2).
        let user = format!("{}:aaaa", local.ufrag);
        let resp = binding(&a, relay, &user, &local.pwd, Duration::from_secs(2))
            .unwrap_or_else(|| panic!("{backend}: no response to a valid check"));
        let msg = stun::Message::parse(&resp).expect("a STUN response");
        assert!(
            (msg.message_type() == stun::MessageType::BINDING_SUCCESS),
            "{backend}"
        );
        assert_eq!(msg.xor_mapped_address(), Some(a.local_addr().unwrap()));
        assert!(
            msg.verify_integrity(local.pwd.as_bytes()).is_ok(),
            "{backend}"
        );
        // A stranger with a wrong password, or the wrong username, gets
        // nothing (RFC 8489 §9.1.3), and B sees none of it.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        let wait = Duration::from_millis(300);
        assert!(
            binding(&stranger, relay, &user, "wrong-password-wrong-pw", wait)
                .is_none_or(|r| stun::Message::parse(&r)
                    .is_ok_and(|m| m.message_type() != stun::MessageType::BINDING_SUCCESS))
        );
        assert!(
            binding(&stranger, relay, "zzzz:aaaa", &local.pwd, wait)
                .is_none_or(|r| stun::Message::parse(&r)
                    .is_ok_and(|m| m.message_type() != stun::MessageType::BINDING_SUCCESS))
        );
        b.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut rx = [0u8; 1500];
        assert!(b.recv_from(&mut rx).is_err(), "{backend}: STUN leaked to B");
        assert!(c.metric("mediarelay_ice_packets_total").unwrap_or(0) >= 2);
        c.delete("ice-creds");
    }
}
