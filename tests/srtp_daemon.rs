//! SDES-SRTP termination through the daemon, on both I/O backends: an
//! `RTP/SAVP` party bridged to an `RTP/AVP` party with NG
//! `transport-protocol`, whichever side offers. The SRTP party protects
//! and unprotects with the library's SRTP core (checked byte for byte
//! against libsrtp by its known-answer tests); the plain party sees plain
//! RTP and RTCP; tampered and replayed packets are dropped and counted.
//! Where the kernel fast path is on (root), SRTP streams must stay in
//! userspace, or nothing would be decrypted: the same test covers it.

#![cfg(feature = "daemon")]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{Client, t};
use mediarelay::ng::OwnedValue;
use mediarelay::srtp::{CryptoAttr, MAX_OVERHEAD, MasterKey, Srtp, Suite};

const KEY_A: &str = "mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT";
const KEY_B: &str = "gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8";

fn sock() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    s
}

fn sdp(port: u16, rtcp: u16, proto: &str, crypto: &[String]) -> String {
    let mut s = format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} {proto} 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=rtcp:{rtcp}\r\n"
    );
    for c in crypto {
        s.push_str(&format!("a=crypto:{c}\r\n"));
    }
    s
}

/// An NG `offer` from tag `a` of `sdp`, with `transport-protocol` when given.
fn offer(c: &mut Client, call: &str, sdp: &str, tp: Option<&str>) -> OwnedValue {
    sdp_command(c, "offer", call, sdp, tp)
}

/// An NG `answer` from tag `b` to `a`'s offer, with `transport-protocol`
/// when given.
fn answer(c: &mut Client, call: &str, sdp: &str, tp: Option<&str>) -> OwnedValue {
    sdp_command(c, "answer", call, sdp, tp)
}

fn sdp_command(
    c: &mut Client,
    command: &str,
    call: &str,
    sdp: &str,
    tp: Option<&str>,
) -> OwnedValue {
    let mut msg = vec![
        ("command", t(command)),
        ("call-id", t(call)),
        ("from-tag", t("a")),
        ("sdp", t(sdp)),
    ];
    if command == "answer" {
        msg.push(("to-tag", t("b")));
    }
    if let Some(tp) = tp {
        msg.push(("transport-protocol", t(tp)));
    }
    c.cmd(&msg)
}

fn sdp_of(r: &OwnedValue) -> String {
    r.get("sdp")
        .and_then(OwnedValue::as_str)
        .unwrap_or_else(|| panic!("no sdp in {r:?}"))
        .to_string()
}

fn crypto_lines(sdp: &str) -> Vec<CryptoAttr> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=crypto:"))
        .map(|v| CryptoAttr::parse(v.trim()).unwrap())
        .collect()
}

fn proto(sdp: &str) -> String {
    let m = sdp.lines().find(|l| l.starts_with("m=audio")).unwrap();
    m.split(' ').nth(2).unwrap().to_string()
}

fn rtp(seq: u16, pt: u8, fill: u8) -> Vec<u8> {
    let mut p = common::rtp(0x1234_5678, seq, u32::from(seq) * 160, fill);
    p[1] = pt;
    p
}

/// An RTCP receiver report of SSRC `ssrc` with no report blocks, then an
/// SDES CNAME (a compound packet, RFC 3550 §6.1).
fn rtcp(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[1, 3, b'a', b'b', b'c', 0, 0, 0]);
    p
}

fn protect(ctx: &mut Srtp, plain: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = plain.to_vec();
    buf.resize(plain.len() + MAX_OVERHEAD, 0);
    let n = if rtcp {
        ctx.protect_rtcp(&mut buf, plain.len()).unwrap()
    } else {
        ctx.protect_rtp(&mut buf, plain.len()).unwrap()
    };
    buf.truncate(n);
    buf
}

fn unprotect(ctx: &mut Srtp, wire: &[u8], rtcp: bool) -> Vec<u8> {
    let mut buf = wire.to_vec();
    let n = if rtcp {
        ctx.unprotect_rtcp(&mut buf, wire.len())
    } else {
        ctx.unprotect_rtp(&mut buf, wire.len())
    }
    .unwrap_or_else(|e| panic!("unprotect: {e}"));
    buf.truncate(n);
    buf
}

fn recv(s: &UdpSocket) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    s.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

fn key(b64: &str) -> MasterKey {
    CryptoAttr::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 inline:{b64}"))
        .unwrap()
        .key
}

fn srtp_drops(c: &Client) -> u64 {
    c.metric("mediarelay_dropped_packets_total{reason=\"srtp\"}")
        .expect("srtp drop counter")
}

/// Media both ways between the SRTP party (`s`, its contexts) and the
/// plain party (`p`), RTP and RTCP, then a tampered and a replayed packet.
#[allow(clippy::too_many_arguments)]
fn exchange(
    c: &Client,
    s: (&UdpSocket, &UdpSocket),
    s_to: (u16, u16),
    tx: &mut Srtp,
    rx: &mut Srtp,
    p: (&UdpSocket, &UdpSocket),
    p_to: (u16, u16),
) {
    let at = |port: u16| format!("127.0.0.1:{port}");
    for seq in 1..=20u16 {
        // SRTP party -> plain party.
        let plain = rtp(seq, 0, seq as u8);
        s.0.send_to(&protect(tx, &plain, false), at(s_to.0))
            .unwrap();
        assert_eq!(
            recv(p.0).as_deref(),
            Some(&plain[..]),
            "plain side, seq {seq}"
        );
        // Plain party -> SRTP party.
        let plain = rtp(seq, 0, !(seq as u8));
        p.0.send_to(&plain, at(p_to.0)).unwrap();
        let got = recv(s.0).expect("SRTP side receives");
        assert_ne!(got, plain, "encrypted on the way to the SRTP side");
        assert_eq!(unprotect(rx, &got, false), plain, "seq {seq}");
    }
    // Out of the learning window (3 s) the streams stay in userspace:
    // the kernel fast path, where it is on, cannot encrypt.
    std::thread::sleep(Duration::from_millis(3200));
    for seq in 100..=104u16 {
        let plain = rtp(seq, 0, 9);
        s.0.send_to(&protect(tx, &plain, false), at(s_to.0))
            .unwrap();
        assert_eq!(
            recv(p.0).as_deref(),
            Some(&plain[..]),
            "plain side, seq {seq}"
        );
        p.0.send_to(&plain, at(p_to.0)).unwrap();
        let got = recv(s.0).expect("SRTP side receives");
        assert_eq!(unprotect(rx, &got, false), plain, "seq {seq}");
    }
    assert_eq!(c.metric("mediarelay_fast_path_streams").unwrap_or(0), 0);
    // telephone-event (RFC 4733) is terminated too.
    let event = rtp(21, 101, 7);
    s.0.send_to(&protect(tx, &event, false), at(s_to.0))
        .unwrap();
    assert_eq!(recv(p.0).as_deref(), Some(&event[..]));
    // RTCP both ways, on the RTCP ports (SRTCP, RFC 3711 §3.4).
    let report = rtcp(0x1234_5678);
    s.1.send_to(&protect(tx, &report, true), at(s_to.1))
        .unwrap();
    assert_eq!(recv(p.1).as_deref(), Some(&report[..]), "plain RTCP");
    let report = rtcp(0x0bad_cafe);
    p.1.send_to(&report, at(p_to.1)).unwrap();
    let got = recv(s.1).expect("SRTCP");
    assert_eq!(unprotect(rx, &got, true), report);
    // A tampered packet and a replayed one are dropped and counted.
    let before = srtp_drops(c);
    let mut bad = protect(tx, &rtp(22, 0, 1), false);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    s.0.send_to(&bad, at(s_to.0)).unwrap();
    let good = protect(tx, &rtp(23, 0, 2), false);
    s.0.send_to(&good, at(s_to.0)).unwrap();
    s.0.send_to(&good, at(s_to.0)).unwrap();
    assert_eq!(recv(p.0).as_deref(), Some(&rtp(23, 0, 2)[..]));
    assert_eq!(recv(p.0), None, "tampered and replayed packets are dropped");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while srtp_drops(c) < before + 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(srtp_drops(c), before + 2);
}

/// The SRTP party offers (`RTP/SAVP` with two suites) and
/// `transport-protocol: RTP/AVP` asks for plain RTP on the other side.
fn srtp_offerer(backend: &str) {
    let (_d, mut c) = common::start(&["--io-backend", backend]);
    let (a, a_rtcp, b, b_rtcp) = (sock(), sock(), sock(), sock());
    let port = |s: &UdpSocket| s.local_addr().unwrap().port();
    let a_offer = sdp(
        port(&a),
        port(&a_rtcp),
        "RTP/SAVP",
        &[
            format!("1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}"),
            format!("2 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}"),
        ],
    );
    let r = offer(&mut c, "srtp-1", &a_offer, Some("RTP/AVP"));
    let to_b = sdp_of(&r);
    assert_eq!(r.get("warning"), None, "{r:?}");
    assert_eq!(proto(&to_b), "RTP/AVP");
    assert!(crypto_lines(&to_b).is_empty(), "{to_b}");
    let b_to = common::m_port(&to_b);
    // Early media from the plain side, before the answer: the keys are
    // known from the offer, so it reaches the SRTP side protected.
    let early = rtp(0, 0, 0xee);
    b.send_to(&early, format!("127.0.0.1:{b_to}")).unwrap();
    let early_wire = recv(&a).expect("early media reaches the SRTP side");
    // The answer carries transport-protocol as Kamailio scripts pass it:
    // what the bridge does, so no warning.
    let r = answer(
        &mut c,
        "srtp-1",
        &sdp(port(&b), port(&b_rtcp), "RTP/AVP", &[]),
        Some("RTP/SAVP"),
    );
    assert_eq!(r.get("warning"), None, "{r:?}");
    let to_a = sdp_of(&r);
    assert_eq!(proto(&to_a), "RTP/SAVP");
    let lines = crypto_lines(&to_a);
    assert_eq!(lines.len(), 1, "{to_a}");
    // RFC 4568 §5.1.2: the first offered line, its tag and suite, the
    // relay's own key.
    assert_eq!(lines[0].tag, 1);
    assert_eq!(lines[0].suite, Suite::AesCm128HmacSha1_32);
    assert_ne!(lines[0].key, key(KEY_A));
    let a_to = common::m_port(&to_a);
    let mut tx = Srtp::new(Suite::AesCm128HmacSha1_32, &key(KEY_A), None).unwrap();
    let mut rx = Srtp::new(Suite::AesCm128HmacSha1_32, &lines[0].key, None).unwrap();
    assert_eq!(unprotect(&mut rx, &early_wire, false), early);
    exchange(
        &c,
        (&a, &a_rtcp),
        (a_to, a_to + 1),
        &mut tx,
        &mut rx,
        (&b, &b_rtcp),
        (b_to, b_to + 1),
    );
    // A re-offer with a new key of the SRTP party: the relay's own key
    // (and its running index towards the party) stays, the new key
    // decrypts from now on.
    let rekey = sdp(
        port(&a),
        port(&a_rtcp),
        "RTP/SAVP",
        &[format!("1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_B}")],
    );
    let r = offer(&mut c, "srtp-1", &rekey, Some("RTP/AVP"));
    assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("ok"));
    let r = answer(
        &mut c,
        "srtp-1",
        &sdp(port(&b), port(&b_rtcp), "RTP/AVP", &[]),
        None,
    );
    let again = crypto_lines(&sdp_of(&r));
    assert_eq!(again[0].key, lines[0].key, "the relay's key is kept");
    let mut tx = Srtp::new(Suite::AesCm128HmacSha1_32, &key(KEY_B), None).unwrap();
    for seq in 200..=203u16 {
        let plain = rtp(seq, 0, 3);
        a.send_to(
            &protect(&mut tx, &plain, false),
            format!("127.0.0.1:{a_to}"),
        )
        .unwrap();
        assert_eq!(recv(&b).as_deref(), Some(&plain[..]), "new key, seq {seq}");
        b.send_to(&plain, format!("127.0.0.1:{b_to}")).unwrap();
        let got = recv(&a).expect("SRTP side receives after the re-key");
        assert_eq!(unprotect(&mut rx, &got, false), plain);
    }
    // `query`: each leg's own profile, and the SRTP drops on the stream
    // they arrived on.
    let q = c.cmd(&[("command", t("query")), ("call-id", t("srtp-1"))]);
    let media = |tag: &str| {
        q.get("tags")
            .and_then(|x| x.get(tag))
            .and_then(|x| x.get("medias"))
            .and_then(OwnedValue::as_list)
            .and_then(|l| l.first())
            .cloned()
            .unwrap_or_else(|| panic!("no media of {tag}: {q:?}"))
    };
    let protocol = |tag: &str| {
        media(tag)
            .get("protocol")
            .and_then(OwnedValue::as_str)
            .map(str::to_string)
    };
    assert_eq!(protocol("a").as_deref(), Some("RTP/SAVP"));
    assert_eq!(protocol("b").as_deref(), Some("RTP/AVP"));
    let srtp_dropped: i64 = media("a")
        .get("streams")
        .and_then(OwnedValue::as_list)
        .map(|l| {
            l.iter()
                .filter_map(|s| s.get("dropped").and_then(|d| d.get("srtp")))
                .filter_map(OwnedValue::as_int)
                .sum()
        })
        .unwrap_or(0);
    assert_eq!(srtp_dropped, 2, "{q:?}");
    assert_eq!(c.delete("srtp-1"), "ok");
}

/// The plain party offers and `transport-protocol: RTP/SAVP` asks for SRTP
/// on the other side: the relay offers its suites, the SRTP party answers
/// one.
fn plain_offerer(backend: &str) {
    let (_d, mut c) = common::start(&["--io-backend", backend]);
    let (a, a_rtcp, b, b_rtcp) = (sock(), sock(), sock(), sock());
    let port = |s: &UdpSocket| s.local_addr().unwrap().port();
    let r = offer(
        &mut c,
        "srtp-2",
        &sdp(port(&a), port(&a_rtcp), "RTP/AVP", &[]),
        Some("RTP/SAVP"),
    );
    let to_b = sdp_of(&r);
    assert_eq!(proto(&to_b), "RTP/SAVP");
    let offered = crypto_lines(&to_b);
    let names: Vec<Suite> = offered.iter().map(|l| l.suite).collect();
    assert_eq!(names, Suite::ALL);
    let tags: Vec<u32> = offered.iter().map(|l| l.tag).collect();
    assert_eq!(tags, (1..=12).collect::<Vec<u32>>());
    // B accepts the AES_CM_128_HMAC_SHA1_80 line (tag 7).
    let accepted = offered
        .iter()
        .find(|l| l.suite == Suite::AesCm128HmacSha1_80)
        .expect("AES_CM_128_HMAC_SHA1_80 offered");
    let b_to = common::m_port(&to_b);
    // Before the SRTP side answers its leg has no keys: a packet there
    // (anyone's) is dropped, never latched nor passed on in the clear.
    let before = srtp_drops(&c);
    let stranger = sock();
    stranger
        .send_to(&rtp(1, 0, 0x55), format!("127.0.0.1:{b_to}"))
        .unwrap();
    assert_eq!(recv(&a), None, "nothing reaches the plain side");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while srtp_drops(&c) == before && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(srtp_drops(&c), before + 1);
    let r = answer(
        &mut c,
        "srtp-2",
        &sdp(
            port(&b),
            port(&b_rtcp),
            "RTP/SAVP",
            &[format!(
                "{} AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}",
                accepted.tag
            )],
        ),
        None,
    );
    let to_a = sdp_of(&r);
    assert_eq!(proto(&to_a), "RTP/AVP");
    assert!(crypto_lines(&to_a).is_empty(), "{to_a}");
    let a_to = common::m_port(&to_a);
    let mut tx = Srtp::new(Suite::AesCm128HmacSha1_80, &key(KEY_B), None).unwrap();
    let mut rx = Srtp::new(Suite::AesCm128HmacSha1_80, &accepted.key, None).unwrap();
    exchange(
        &c,
        (&b, &b_rtcp),
        (b_to, b_to + 1),
        &mut tx,
        &mut rx,
        (&a, &a_rtcp),
        (a_to, a_to + 1),
    );
    assert_eq!(c.delete("srtp-2"), "ok");
}

#[test]
fn srtp_offerer_bridged_to_plain_rtp() {
    for backend in common::backends() {
        srtp_offerer(backend);
    }
}

#[test]
fn plain_offerer_bridged_to_srtp() {
    for backend in common::backends() {
        plain_offerer(backend);
    }
}

/// An offer whose SRTP suites the relay cannot terminate is refused and
/// leaves no call; an answer that accepts none of the relay's lines is
/// refused.
#[test]
fn unusable_sdes_is_an_error() {
    let (_d, mut c) = common::start(&[]);
    let r = offer(
        &mut c,
        "srtp-3",
        &sdp(
            4000,
            4001,
            "RTP/SAVP",
            &[format!("1 AEAD_AES_256_GCM inline:{KEY_A}{KEY_B}")],
        ),
        Some("RTP/AVP"),
    );
    assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("error"));
    let reason = r.get("error-reason").and_then(OwnedValue::as_str).unwrap();
    assert!(reason.contains("SDES"), "{reason}");
    assert!(c.list().is_empty());
    let r = offer(
        &mut c,
        "srtp-4",
        &sdp(4000, 4001, "RTP/AVP", &[]),
        Some("RTP/SAVP"),
    );
    assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("ok"));
    let r = answer(
        &mut c,
        "srtp-4",
        &sdp(
            5000,
            5001,
            "RTP/SAVP",
            &[format!("9 AES_CM_128_HMAC_SHA1_80 inline:{KEY_B}")],
        ),
        None,
    );
    assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("error"));
}

/// The SRTP side answers the relay's SRTP offer with plain RTP: the bridge
/// ends and media is relayed as it comes, both ways.
#[test]
fn srtp_declined_in_the_answer_relays_plain() {
    let (_d, mut c) = common::start(&[]);
    let (a, a_rtcp, b, b_rtcp) = (sock(), sock(), sock(), sock());
    let port = |s: &UdpSocket| s.local_addr().unwrap().port();
    let r = offer(
        &mut c,
        "srtp-5",
        &sdp(port(&a), port(&a_rtcp), "RTP/AVP", &[]),
        Some("RTP/SAVP"),
    );
    let b_to = common::m_port(&sdp_of(&r));
    let r = answer(
        &mut c,
        "srtp-5",
        &sdp(port(&b), port(&b_rtcp), "RTP/AVP", &[]),
        None,
    );
    let to_a = sdp_of(&r);
    assert_eq!(proto(&to_a), "RTP/AVP");
    assert!(crypto_lines(&to_a).is_empty());
    let a_to = common::m_port(&to_a);
    for seq in 1..=5u16 {
        let plain = rtp(seq, 0, 1);
        a.send_to(&plain, format!("127.0.0.1:{a_to}")).unwrap();
        assert_eq!(recv(&b).as_deref(), Some(&plain[..]));
        b.send_to(&plain, format!("127.0.0.1:{b_to}")).unwrap();
        assert_eq!(recv(&a).as_deref(), Some(&plain[..]));
    }
    assert_eq!(c.delete("srtp-5"), "ok");
}
