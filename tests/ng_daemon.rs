//! End to end: the real `mediarelay` binary driven over UDP as an NG
//! client would (ping, offer, answer, RTP both ways through the relay
//! ports of the rewritten SDPs, query, list, statistics, delete), then a
//! garbage flood after which `ping` still answers; and an rtcp-mux call
//! whose RTCP travels on the RTP ports.
#![cfg(feature = "daemon")]

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use common::{int_at, m_port, start, t};
use mediarelay::ng::OwnedValue;

#[test]
fn ng_client_drives_a_call_through_the_daemon() {
    let (_daemon, mut c) = start(&[
        "--num-threads",
        "1",
        "--port-min",
        "42000",
        "--port-max",
        "42999",
    ]);
    let ng = c.ng;

    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let sdp = |name: &str, port: u16| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns={name}\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    };
    let offer = c.cmd(&[
        ("command", t("offer")),
        ("call-id", t("it-1")),
        ("from-tag", t("tagA")),
        ("sdp", t(&sdp("A", pa))),
    ]);
    let offer_sdp = offer
        .get("sdp")
        .and_then(OwnedValue::as_str)
        .expect("sdp")
        .to_string();
    assert!(offer_sdp.contains("c=IN IP4 127.0.0.1\r\n"));
    let b_sends_to = m_port(&offer_sdp);
    assert!((42000..=42999).contains(&b_sends_to));
    assert!(offer_sdp.contains(&format!("a=rtcp:{}\r\n", b_sends_to + 1)));
    let answer = c.cmd(&[
        ("command", t("answer")),
        ("call-id", t("it-1")),
        ("from-tag", t("tagA")),
        ("to-tag", t("tagB")),
        ("sdp", t(&sdp("B", pb))),
    ]);
    let a_sends_to = m_port(answer.get("sdp").and_then(OwnedValue::as_str).expect("sdp"));
    assert_ne!(a_sends_to, b_sends_to);

    // RTP both ways (12-byte header + 160 bytes payload).
    let mut buf = [0u8; 2048];
    for i in 0..5u8 {
        let mut pkt = vec![0x80, 0, 0, i, 0, 0, 0, 0, 0x11, 0x11, 0x11, 0x11];
        pkt.extend([0xffu8; 160]);
        a.send_to(&pkt, ("127.0.0.1", a_sends_to)).unwrap();
        let (n, from) = b.recv_from(&mut buf).expect("B receives A's RTP");
        assert_eq!(&buf[..n], &pkt[..]);
        assert_eq!(
            from.port(),
            b_sends_to,
            "symmetric: from the port B was given"
        );
        pkt[8] = 0x22;
        b.send_to(&pkt, ("127.0.0.1", b_sends_to)).unwrap();
        let (n, from) = a.recv_from(&mut buf).expect("A receives B's RTP");
        assert_eq!(&buf[..n], &pkt[..]);
        assert_eq!(from.port(), a_sends_to);
    }

    let q = c.cmd(&[("command", t("query")), ("call-id", t("it-1"))]);
    for tag in ["tagA", "tagB"] {
        assert_eq!(common::tag_packets(&q, tag), 5, "{tag}: {q:?}");
    }
    assert_eq!(int_at(&q, &["totals", "RTP", "packets"]), 10);

    let l = c.cmd(&[("command", t("list"))]);
    assert_eq!(l.get("calls"), Some(&OwnedValue::List(vec![t("it-1")])));
    let s = c.cmd(&[("command", t("statistics"))]);
    assert_eq!(
        int_at(&s, &["statistics", "currentstatistics", "sessionsown"]),
        1
    );
    assert_eq!(
        int_at(&s, &["statistics", "controlstatistics", "totaloffercount"]),
        1
    );

    let d = c.cmd(&[
        ("command", t("delete")),
        ("call-id", t("it-1")),
        ("from-tag", t("tagA")),
    ]);
    assert_eq!(d.get("result").and_then(OwnedValue::as_str), Some("ok"));
    assert_eq!(int_at(&d, &["totals", "RTP", "bytes"]), 10 * 172);

    // Garbage: none of it may stop the daemon.
    let mut seed = 0x1234_5678_u32;
    for _ in 0..200 {
        let len = (seed % 300) as usize;
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                seed as u8
            })
            .collect();
        c.sock.send_to(&junk, ng).unwrap();
    }
    // Drain whatever the garbage provoked (junk with a space gets an error).
    std::thread::sleep(Duration::from_millis(300));
    let mut sink = [0u8; 65536];
    c.sock
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    while c.sock.recv_from(&mut sink).is_ok() {}
    let truncated = c.raw(b"g1 d7:command5:offe").expect("error reply");
    assert!(
        truncated.starts_with(b"g1 d6:result5:error"),
        "{}",
        String::from_utf8_lossy(&truncated)
    );
    let mut deep = b"g2 ".to_vec();
    deep.extend(std::iter::repeat_n(b'l', 10_000));
    deep.extend(std::iter::repeat_n(b'e', 10_000));
    let deep_reply = c.raw(&deep).expect("error reply to deep nesting");
    assert!(deep_reply.starts_with(b"g2 d6:result5:error"));
    assert_eq!(
        c.raw(b"p9 d7:command4:pinge").as_deref(),
        Some(&b"p9 d6:result4:ponge"[..])
    );
    // The garbage was counted, not silently lost.
    let malformed = c.metric("mediarelay_ng_malformed_total").expect("metric");
    assert!(malformed >= 2, "malformed datagrams counted: {malformed}");
}

/// rtcp-mux end to end: A offers `a=rtcp-mux` with `rtcp-mux: [accept]`, B
/// answers with it; RTP and an RTCP RR each way use only the RTP ports and
/// leave from the relay port the receiver was given (RFC 5761).
#[test]
fn rtcp_mux_call_relays_rtcp_on_the_rtp_ports() {
    let (_daemon, mut c) = start(&[
        "--num-threads",
        "1",
        "--port-min",
        "43000",
        "--port-max",
        "43999",
    ]);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    }
    let (pa, pb) = (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    );
    let sdp = |name: &str, port: u16| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns={name}\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=rtcp-mux\r\n"
        )
    };
    let offer = c.cmd(&[
        ("command", t("offer")),
        ("call-id", t("it-mux")),
        ("from-tag", t("tagA")),
        ("sdp", t(&sdp("A", pa))),
        ("rtcp-mux", OwnedValue::List(vec![t("accept")])),
    ]);
    let offer_sdp = offer.get("sdp").and_then(OwnedValue::as_str).expect("sdp");
    let b_sends_to = m_port(offer_sdp);
    // Offered on: a=rtcp still names port + 1 until B accepts.
    assert!(offer_sdp.contains(&format!("a=rtcp:{}\r\n", b_sends_to + 1)));
    assert!(offer_sdp.contains("a=rtcp-mux\r\n"), "{offer_sdp}");
    let answer = c.cmd(&[
        ("command", t("answer")),
        ("call-id", t("it-mux")),
        ("from-tag", t("tagA")),
        ("to-tag", t("tagB")),
        ("sdp", t(&sdp("B", pb))),
    ]);
    let answer_sdp = answer.get("sdp").and_then(OwnedValue::as_str).expect("sdp");
    let a_sends_to = m_port(answer_sdp);
    assert!(
        answer_sdp.contains(&format!("a=rtcp:{a_sends_to}\r\n")),
        "{answer_sdp}"
    );
    assert!(answer_sdp.contains("a=rtcp-mux\r\n"), "{answer_sdp}");

    let mut buf = [0u8; 2048];
    let mut rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0x11, 0x11, 0x11, 0x11];
    rtp.extend([0xffu8; 160]);
    let rr = |ssrc: u8| vec![0x80, 0xc9, 0x00, 0x01, ssrc, ssrc, ssrc, ssrc];
    for (pkt, what) in [(rtp.clone(), "RTP"), (rr(0x11), "RTCP")] {
        a.send_to(&pkt, ("127.0.0.1", a_sends_to)).unwrap();
        let (n, from) = b
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("B gets A's {what}: {e}"));
        assert_eq!(&buf[..n], &pkt[..], "{what}");
        assert_eq!(
            from.port(),
            b_sends_to,
            "A->B {what} from B's relay RTP port"
        );
    }
    rtp[8..12].copy_from_slice(&[0x22; 4]);
    for (pkt, what) in [(rtp.clone(), "RTP"), (rr(0x22), "RTCP")] {
        b.send_to(&pkt, ("127.0.0.1", b_sends_to)).unwrap();
        let (n, from) = a
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("A gets B's {what}: {e}"));
        assert_eq!(&buf[..n], &pkt[..], "{what}");
        assert_eq!(
            from.port(),
            a_sends_to,
            "B->A {what} from A's relay RTP port"
        );
    }
}
