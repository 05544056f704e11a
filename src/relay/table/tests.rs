//! Deterministic tests of the relay table on a virtual clock.

use super::*;
use crate::relay::AddressMode;
use crate::rtp::stats::ClockRate;
use crate::rtp::{PayloadType, RtpHeader, Ssrc};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let h = RtpHeader::new(PayloadType::PCMU, seq, u32::from(seq) * 160, Ssrc(ssrc));
    let mut out = vec![0u8; h.packet_len(160)];
    h.write(&[0x55; 160], &mut out).unwrap();
    out
}

/// A minimal RTCP RR with no report blocks (RFC 3550 §6.4.2).
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut v = vec![0x80, 201, 0, 1];
    v.extend_from_slice(&ssrc.to_be_bytes());
    v
}

struct Fixture {
    t: RelayTable,
    t0: Instant,
    call: CallKey,
    a: LegStreams,
    b: LegStreams,
}

const A: &str = "192.0.2.10:4000";
const B: &str = "198.51.100.20:6000";

fn fixture(policy: LatchPolicy, mux: bool) -> Fixture {
    let t0 = Instant::now();
    let mut t = RelayTable::new(t0, RelayConfig::default());
    let call = t.add_call(t0, 42);
    let spec = |port: u16, remote: &str| LegSpec {
        rtp_port: port,
        rtcp_port: if mux { None } else { Some(port + 1) },
        policy,
        remote_rtp: Some(addr(remote)),
        remote_rtcp: None,
        clock_rate: ClockRate::G711,
        awaiting_answer: false,
    };
    // Leg a faces endpoint A (A sends to relay port 30000), leg b faces B.
    let a = t.add_leg(t0, call, spec(30000, A)).unwrap();
    let b = t.add_leg(t0, call, spec(30002, B)).unwrap();
    t.pair(a.leg, b.leg).unwrap();
    Fixture { t, t0, call, a, b }
}

#[test]
fn forwards_both_ways_from_the_peer_socket() {
    let mut f = fixture(LatchPolicy::default(), false);
    let now = f.t0;
    // A -> relay (leg a) -> out of leg b's socket -> B.
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
    assert_eq!(
        f.t.handle_packet(now, f.b.rtp, addr(B), &rtp(2, 1), false),
        Verdict::Forward {
            via: f.a.rtp,
            dest: addr(A)
        }
    );
    let c = f.t.stream_counters(f.a.rtp).unwrap();
    assert_eq!((c.packets, c.bytes, c.last_ssrc), (1, 172, Some(Ssrc(1))));
}

#[test]
fn a_leg_ending_in_an_endpoint_delivers_and_sends_from_its_own_sockets() {
    let mut f = fixture(LatchPolicy::default(), false);
    let now = f.t0;
    let ep = crate::relay::Key::from_parts(7, 1);
    f.t.attach_endpoint(f.a.leg, ep).unwrap();
    assert_eq!(f.t.endpoint_of(f.a.leg), Some(ep));
    // What leg a's far end sends goes to the endpoint, after latching...
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Deliver {
            endpoint: ep,
            component: Component::Rtp
        }
    );
    assert_eq!(
        f.t.handle_packet(now, f.a.rtcp, addr("192.0.2.10:4001"), &rtcp_rr(1), false),
        Verdict::Deliver {
            endpoint: ep,
            component: Component::Rtcp
        }
    );
    // ...and the endpoint's own packets leave leg a's sockets to it.
    assert_eq!(f.t.egress(f.a.leg, Component::Rtp), Ok((f.a.rtp, addr(A))));
    assert_eq!(
        f.t.egress(f.a.leg, Component::Rtcp),
        Ok((f.a.rtcp, addr("192.0.2.10:4001")))
    );
    // Leg b is unpaired: its media has nowhere to go.
    assert_eq!(
        f.t.handle_packet(now, f.b.rtp, addr(B), &rtp(2, 1), false),
        Verdict::Drop(DropReason::NoPeer)
    );
    // The foreign-source rules still hold in front of the endpoint.
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, addr("10.9.9.9:9"), &rtp(9, 1), false),
        Verdict::Drop(DropReason::SourceActive)
    );
}

#[test]
fn rtp_statistics_follow_the_source() {
    let mut f = fixture(LatchPolicy::default(), false);
    let mut now = f.t0;
    // 20 packets with seq 5 and 6 lost, 20 ms apart.
    for seq in 1..=22u16 {
        now += Duration::from_millis(20);
        if seq != 5 && seq != 6 {
            f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, seq), false);
        }
    }
    let snap = f.t.call_snapshot(f.call).unwrap();
    let a = snap.iter().find(|s| s.key == f.a.rtp).unwrap();
    let r = a.rtp.unwrap();
    assert_eq!(r.ssrc, Ssrc(1));
    // RFC 3550 A.1: the first packet only starts probation (MIN_SEQUENTIAL
    // = 2); counting starts at the second, so 19 of 21 expected arrived.
    assert_eq!((r.received, r.expected, r.lost), (19, 21, 2));
    // Packets sent every 160 timestamp units arriving every 20 ms: no jitter.
    assert_eq!(r.jitter, Duration::ZERO);
    // A new SSRC restarts the statistics.
    now += Duration::from_millis(20);
    f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(9, 500), false);
    let snap = f.t.call_snapshot(f.call).unwrap();
    let r = snap.iter().find(|s| s.key == f.a.rtp).unwrap().rtp.unwrap();
    assert_eq!((r.ssrc, r.lost), (Ssrc(9), 0));
    // RTCP streams carry no RTP statistics.
    assert!(
        snap.iter()
            .find(|s| s.key == f.a.rtcp)
            .unwrap()
            .rtp
            .is_none()
    );
}

#[test]
fn latched_address_wins_over_signalled() {
    let mut f = fixture(LatchPolicy::default(), false);
    let natted_b = addr("203.0.113.5:7777");
    f.t.handle_packet(f.t0, f.b.rtp, natted_b, &rtp(2, 1), false);
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: natted_b
        }
    );
}

#[test]
fn rtcp_on_port_plus_one_follows_rtp() {
    let mut f = fixture(LatchPolicy::default(), false);
    assert_ne!(f.a.rtp, f.a.rtcp);
    // Signalled RTCP defaults to RTP port + 1.
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtcp, addr("192.0.2.10:4001"), &rtcp_rr(1), false),
        Verdict::Forward {
            via: f.b.rtcp,
            dest: addr("198.51.100.20:6001")
        }
    );
    // RTP arriving on an RTCP port is dropped.
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtcp, addr("192.0.2.10:4001"), &rtp(1, 1), false),
        Verdict::Drop(DropReason::MalformedRtcp)
    );
}

#[test]
fn rtcp_mux_demultiplexes_on_one_port() {
    let mut f = fixture(LatchPolicy::default(), true);
    assert_eq!(f.a.rtp, f.a.rtcp);
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtcp_rr(1), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
    // STUN-looking bytes on a mux port: not media.
    let stun = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0];
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &stun, false),
        Verdict::Drop(DropReason::NotMedia)
    );
}

/// Leg a's far end (A) keeps RTCP on port + 1, leg b's far end (B) accepted
/// rtcp-mux in its answer (RFC 5761): RTCP both ways uses the right socket.
#[test]
fn switched_mux_on_one_leg_routes_rtcp_both_ways() {
    let mut f = fixture(LatchPolicy::default(), false);
    assert_eq!(f.t.rtcp_mux(f.b.leg), Some(false));
    f.t.set_rtcp_mux(f.b.leg, true).unwrap();
    assert_eq!(f.t.rtcp_mux(f.b.leg), Some(true));
    assert_eq!(f.t.rtcp_mux(f.a.leg), Some(false));
    // A's RTCP on leg a's RTCP socket -> out of leg b's RTP socket to B's
    // RTP address.
    let a_rtcp = addr("192.0.2.10:4001");
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtcp, a_rtcp, &rtcp_rr(1), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
    // B's RTCP on leg b's RTP socket is RTCP (RFC 5761 §4) -> out of leg
    // a's RTCP socket to A's port + 1.
    assert_eq!(
        f.t.handle_packet(f.t0, f.b.rtp, addr(B), &rtcp_rr(2), false),
        Verdict::Forward {
            via: f.a.rtcp,
            dest: a_rtcp
        }
    );
    // RTP is unchanged both ways.
    assert_eq!(
        f.t.handle_packet(f.t0, f.b.rtp, addr(B), &rtp(2, 1), false),
        Verdict::Forward {
            via: f.a.rtp,
            dest: addr(A)
        }
    );
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
    // The muxed RTP socket counts RTCP as received there.
    assert_eq!(f.t.stream_counters(f.b.rtp).unwrap().packets, 2);
}

#[test]
fn switched_mux_the_other_way_and_back() {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.set_rtcp_mux(f.a.leg, true).unwrap();
    // B's RTCP on its own socket -> leg a's RTP socket, A's RTP address.
    let b_rtcp = addr("198.51.100.20:6001");
    assert_eq!(
        f.t.handle_packet(f.t0, f.b.rtcp, b_rtcp, &rtcp_rr(2), false),
        Verdict::Forward {
            via: f.a.rtp,
            dest: addr(A)
        }
    );
    // A's RTCP muxed on leg a's RTP socket -> leg b's RTCP socket.
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtcp_rr(1), false),
        Verdict::Forward {
            via: f.b.rtcp,
            dest: b_rtcp
        }
    );
    // Demultiplexing again restores the RTCP socket.
    f.t.set_rtcp_mux(f.a.leg, false).unwrap();
    assert_eq!(
        f.t.handle_packet(f.t0, f.b.rtcp, b_rtcp, &rtcp_rr(2), false),
        Verdict::Forward {
            via: f.a.rtcp,
            dest: addr("192.0.2.10:4001")
        }
    );
    // The muxed kind shows in snapshots and goes away with demux.
    let kinds: Vec<StreamKind> =
        f.t.call_snapshot(f.call)
            .unwrap()
            .iter()
            .map(|s| s.kind)
            .collect();
    assert!(!kinds.contains(&StreamKind::Muxed));
}

#[test]
fn leg_created_muxed_cannot_demux() {
    let mut f = fixture(LatchPolicy::default(), true);
    assert_eq!(f.t.set_rtcp_mux(f.a.leg, true), Ok(()));
    assert_eq!(
        f.t.set_rtcp_mux(f.a.leg, false),
        Err(RelayError::NoRtcpSocket)
    );
    assert_eq!(
        f.t.set_rtcp_mux(Key::from_parts(77, 0), true),
        Err(RelayError::NoSuchLeg)
    );
    assert_eq!(f.t.rtcp_mux(f.a.leg), Some(true));
}

#[test]
fn garbage_is_counted_and_dropped() {
    let mut f = fixture(LatchPolicy::default(), false);
    let now = f.t0;
    let cases: [(&[u8], bool, DropReason); 4] = [
        (b"x", false, DropReason::MalformedRtp),
        (
            b"hello, this is not RTP at all",
            false,
            DropReason::MalformedRtp,
        ),
        (&[0x80, 0, 0], false, DropReason::MalformedRtp),
        (&[0x80; 2048], true, DropReason::Oversize),
    ];
    for (data, truncated, reason) in cases {
        assert_eq!(
            f.t.handle_packet(now, f.a.rtp, addr(A), data, truncated),
            Verdict::Drop(reason)
        );
    }
    let c = f.t.stream_counters(f.a.rtp).unwrap();
    assert_eq!(c.dropped(DropReason::MalformedRtp), 3);
    assert_eq!(c.dropped(DropReason::Oversize), 1);
    assert_eq!(c.packets, 0);
    // Garbage did not latch anything: the call still works.
    assert!(matches!(
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Forward { .. }
    ));
}

#[test]
fn rtp_bleed_after_learning_window_is_dropped_and_call_keeps_working() {
    let mut f = fixture(LatchPolicy::default(), false);
    for seq in 1..=5 {
        let t = f.t0 + Duration::from_millis(20 * u64::from(seq));
        f.t.handle_packet(t, f.a.rtp, addr(A), &rtp(1, seq), false);
        f.t.handle_packet(t, f.b.rtp, addr(B), &rtp(2, seq), false);
    }
    let late = f.t0 + Duration::from_secs(10);
    let attacker = addr("203.0.113.66:40000");
    assert_eq!(
        f.t.handle_packet(late, f.a.rtp, attacker, &rtp(0xbad, 1), false),
        Verdict::Drop(DropReason::NoContinuity)
    );
    assert_eq!(
        f.t.stream_counters(f.a.rtp)
            .unwrap()
            .dropped(DropReason::NoContinuity),
        1
    );
    // B's media still goes to A, not to the attacker.
    assert_eq!(
        f.t.handle_packet(late, f.b.rtp, addr(B), &rtp(2, 6), false),
        Verdict::Forward {
            via: f.a.rtp,
            dest: addr(A)
        }
    );
    assert_eq!(
        f.t.handle_packet(late, f.a.rtp, addr(A), &rtp(1, 6), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
}

#[test]
fn strict_source_drops_other_sources() {
    let policy = LatchPolicy {
        mode: AddressMode::Asymmetric,
        strict_source: true,
        ..LatchPolicy::default()
    };
    let mut f = fixture(policy, false);
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr("192.0.2.99:4000"), &rtp(1, 1), false),
        Verdict::Drop(DropReason::StrictSource)
    );
    assert!(matches!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Forward { .. }
    ));
}

#[test]
fn half_setup_calls_drop_with_reasons() {
    let t0 = Instant::now();
    let mut t = RelayTable::new(t0, RelayConfig::default());
    let call = t.add_call(t0, 1);
    let spec = LegSpec {
        rtp_port: 30000,
        rtcp_port: Some(30001),
        policy: LatchPolicy::default(),
        remote_rtp: None,
        remote_rtcp: None,
        clock_rate: ClockRate::G711,
        awaiting_answer: false,
    };
    let a = t.add_leg(t0, call, spec).unwrap();
    assert_eq!(
        t.handle_packet(t0, a.rtp, addr(A), &rtp(1, 1), false),
        Verdict::Drop(DropReason::NoPeer)
    );
    let b = t
        .add_leg(
            t0,
            call,
            LegSpec {
                rtp_port: 30002,
                rtcp_port: Some(30003),
                ..spec
            },
        )
        .unwrap();
    t.pair(a.leg, b.leg).unwrap();
    // B's address is neither signalled nor learned yet.
    assert_eq!(
        t.handle_packet(t0, a.rtp, addr(A), &rtp(1, 2), false),
        Verdict::Drop(DropReason::NoDestination)
    );
    t.set_remote(b.leg, Some(addr(B)), None).unwrap();
    assert_eq!(
        t.handle_packet(t0, a.rtp, addr(A), &rtp(1, 3), false),
        Verdict::Forward {
            via: b.rtp,
            dest: addr(B)
        }
    );
    let c = t.stream_counters(a.rtp).unwrap();
    assert_eq!(
        (
            c.dropped(DropReason::NoPeer),
            c.dropped(DropReason::NoDestination)
        ),
        (1, 1)
    );
    assert_eq!(t.pair(a.leg, a.leg), Err(RelayError::SelfPeer));
    let other = t.add_call(t0, 2);
    let c2 = t
        .add_leg(
            t0,
            other,
            LegSpec {
                rtp_port: 30004,
                rtcp_port: None,
                ..spec
            },
        )
        .unwrap();
    assert_eq!(t.pair(a.leg, c2.leg), Err(RelayError::CrossCall));
}

#[test]
fn media_timeout_reports_idle_calls_only() {
    let mut f = fixture(LatchPolicy::default(), false);
    let timeout = f.t.config().timeout;
    // A second call that keeps sending.
    let busy = f.t.add_call(f.t0, 7);
    let spec = LegSpec {
        rtp_port: 30010,
        rtcp_port: Some(30011),
        policy: LatchPolicy::default(),
        remote_rtp: Some(addr(B)),
        remote_rtcp: None,
        clock_rate: ClockRate::G711,
        awaiting_answer: false,
    };
    let x = f.t.add_leg(f.t0, busy, spec).unwrap();
    let y =
        f.t.add_leg(
            f.t0,
            busy,
            LegSpec {
                rtp_port: 30012,
                rtcp_port: Some(30013),
                ..spec
            },
        )
        .unwrap();
    f.t.pair(x.leg, y.leg).unwrap();
    let mut now = f.t0;
    let mut timed_out = Vec::new();
    let mut seq = 0u16;
    // Run the virtual clock for 2.5 timeouts in 1 s steps.
    while now < f.t0 + timeout * 5 / 2 {
        now += Duration::from_secs(1);
        seq += 1;
        f.t.handle_packet(now, x.rtp, addr(A), &rtp(5, seq), false);
        if f.t.poll_timeout().is_some_and(|d| d <= now) {
            f.t.handle_timeout(now);
        }
        while let Some(ev) = f.t.poll_event() {
            let RelayEvent::CallTimedOut { call, .. } = ev else {
                continue;
            };
            timed_out.push((now, ev));
            f.t.remove_call(call).unwrap();
        }
    }
    assert_eq!(timed_out.len(), 1, "{timed_out:?}");
    let (when, RelayEvent::CallTimedOut { call, tag, reason }) = timed_out[0] else {
        unreachable!("only timeouts are collected")
    };
    assert_eq!((call, tag, reason), (f.call, 42, TimeoutReason::NoMedia));
    // Not before the timeout, and within one timer tick plus one step.
    assert!(when >= f.t0 + timeout);
    assert!(when <= f.t0 + timeout + Duration::from_secs(2));
    assert_eq!(f.t.call_count(), 1);
    assert_eq!(f.t.stream_count(), 4);
}

#[test]
fn remove_call_returns_final_counters_and_stale_keys_miss() {
    let mut f = fixture(LatchPolicy::default(), false);
    // Forwarded from B's RTP socket: counted there when handed to it,
    // the failed send once more as an error.
    let packet = rtp(1, 1);
    assert!(matches!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &packet, false),
        Verdict::Forward { via, .. } if via == f.b.rtp
    ));
    f.t.record_send_error(f.b.rtp);
    let snap = f.t.call_snapshot(f.call).unwrap();
    assert_eq!(snap.len(), 4);
    let removed = f.t.remove_call(f.call).unwrap();
    assert_eq!(removed.tag, 42);
    assert_eq!(removed.streams.len(), 4);
    let b_rtp = removed.streams.iter().find(|s| s.key == f.b.rtp).unwrap();
    assert_eq!(
        (
            b_rtp.counters.sent_packets,
            b_rtp.counters.sent_bytes,
            b_rtp.counters.errors
        ),
        (1, packet.len() as u64, 1)
    );
    let a_rtp = removed.streams.iter().find(|s| s.key == f.a.rtp).unwrap();
    assert_eq!(a_rtp.latched, Some(addr(A)));
    assert_eq!(a_rtp.local_port, 30000);
    assert_eq!(
        f.t.handle_packet(f.t0, f.a.rtp, addr(A), &rtp(1, 2), false),
        Verdict::UnknownStream
    );
    assert_eq!(f.t.stream_count(), 0);
    assert!(f.t.remove_call(f.call).is_none());
}

#[test]
fn ten_thousand_legs_on_one_table() {
    let t0 = Instant::now();
    let mut t = RelayTable::new(t0, RelayConfig::default());
    let mut pairs = Vec::new();
    for i in 0..5000u16 {
        let call = t.add_call(t0, u64::from(i));
        let base = 20000 + i * 4;
        let spec = |port: u16| LegSpec {
            rtp_port: port,
            rtcp_port: Some(port + 1),
            policy: LatchPolicy::default(),
            remote_rtp: Some(SocketAddr::from(([192, 0, 2, 1], port))),
            remote_rtcp: None,
            clock_rate: ClockRate::G711,
            awaiting_answer: false,
        };
        let a = t.add_leg(t0, call, spec(base)).unwrap();
        let b = t.add_leg(t0, call, spec(base + 2)).unwrap();
        t.pair(a.leg, b.leg).unwrap();
        pairs.push((a, b));
    }
    assert_eq!(t.stream_count(), 20000);
    for (i, (a, b)) in pairs.iter().enumerate() {
        let src = SocketAddr::from(([198, 51, 100, 1], 10000 + i as u16));
        assert_eq!(
            t.handle_packet(t0, a.rtp, src, &rtp(i as u32, 1), false),
            Verdict::Forward {
                via: b.rtp,
                dest: SocketAddr::from(([192, 0, 2, 1], 20000 + i as u16 * 4 + 2))
            }
        );
    }
}

proptest::proptest! {
    /// Arbitrary datagrams from arbitrary sources on every kind of stream
    /// never panic, and every packet is either forwarded or counted once.
    #[test]
    fn arbitrary_input_is_forwarded_or_counted(
        packets in proptest::collection::vec(
            (0usize..4, 0u8..4, proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), proptest::prelude::any::<bool>()),
            1..64,
        ),
        mux in proptest::prelude::any::<bool>(),
    ) {
        let mut f = fixture(LatchPolicy::default(), mux);
        let streams = [f.a.rtp, f.a.rtcp, f.b.rtp, f.b.rtcp];
        let mut now = f.t0;
        let mut forwarded = 0u64;
        for (i, (which, src, data, truncated)) in packets.iter().enumerate() {
            now += Duration::from_millis(500);
            let src = SocketAddr::from(([192, 0, 2, *src], 4000));
            let mut bytes = data.clone();
            // Make about half of the inputs look like RTP/RTCP.
            if i % 2 == 0 && !bytes.is_empty() {
                bytes[0] = 0x80 | (bytes[0] & 0x3f);
            }
            match f.t.handle_packet(now, streams[*which], src, &bytes, *truncated) {
                Verdict::Forward { .. } => forwarded += 1,
                Verdict::Drop(_) => {}
                Verdict::Deliver { .. } | Verdict::Taken => proptest::prop_assert!(false, "no endpoint is attached"),
                Verdict::UnknownStream => proptest::prop_assert!(false, "live stream reported unknown"),
            }
        }
        let snap = f.t.call_snapshot(f.call).unwrap();
        let accepted: u64 = snap.iter().map(|s| s.counters.packets).sum();
        let dropped: u64 = snap.iter().map(|s| s.counters.dropped_total()).sum();
        // Accepted packets are forwarded or dropped for lack of a route;
        // rejected ones are dropped: each input is accounted exactly once.
        let route_drops: u64 = snap
            .iter()
            .map(|s| s.counters.dropped(DropReason::NoPeer) + s.counters.dropped(DropReason::NoDestination))
            .sum();
        proptest::prop_assert_eq!(accepted, forwarded + route_drops);
        proptest::prop_assert_eq!(forwarded + dropped, packets.len() as u64);
    }
}

/// Runs the virtual clock in 1 s steps until `until`, sending a packet on
/// `busy` (if any) each step; returns the timeout events with their times.
fn run_clock(
    t: &mut RelayTable,
    start: Instant,
    until: Duration,
    busy: Option<(StreamKey, u16)>,
) -> Vec<(Instant, RelayEvent)> {
    let mut now = start;
    let mut out = Vec::new();
    let mut seq = 0u16;
    while now < start + until {
        now += Duration::from_secs(1);
        if let Some((stream, _)) = busy {
            seq = seq.wrapping_add(1);
            t.handle_packet(now, stream, addr(A), &rtp(5, seq), false);
        }
        if t.poll_timeout().is_some_and(|d| d <= now) {
            t.handle_timeout(now);
        }
        while let Some(ev) = t.poll_event() {
            let RelayEvent::CallTimedOut { call, .. } = ev else {
                continue;
            };
            t.remove_call(call);
            out.push((now, ev));
        }
    }
    out
}

#[test]
fn on_hold_calls_get_the_silent_timeout() {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.config.silent_timeout = Duration::from_secs(300);
    f.t.set_on_hold(f.a.leg, true).unwrap();
    // Idle for 2 media timeouts: still there (on hold).
    let ev = run_clock(&mut f.t, f.t0, Duration::from_secs(120), None);
    assert!(ev.is_empty(), "{ev:?}");
    assert_eq!(f.t.call_count(), 1);
    // Off hold again: the media timeout applies from the last activity.
    f.t.set_on_hold(f.a.leg, false).unwrap();
    let ev = run_clock(
        &mut f.t,
        f.t0 + Duration::from_secs(120),
        Duration::from_secs(5),
        None,
    );
    assert_eq!(ev.len(), 1, "{ev:?}");
    let RelayEvent::CallTimedOut { reason, .. } = ev[0].1 else {
        unreachable!("only timeouts are collected")
    };
    assert_eq!(reason, TimeoutReason::NoMedia);
    assert_eq!(f.t.set_on_hold(f.a.leg, true), Err(RelayError::NoSuchLeg));
}

#[test]
fn silent_timeout_still_ends_a_call_on_hold() {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.config.silent_timeout = Duration::from_secs(90);
    f.t.set_on_hold(f.b.leg, true).unwrap();
    let ev = run_clock(&mut f.t, f.t0, Duration::from_secs(200), None);
    assert_eq!(ev.len(), 1);
    let (when, RelayEvent::CallTimedOut { reason, .. }) = ev[0] else {
        unreachable!("only timeouts are collected")
    };
    assert_eq!(reason, TimeoutReason::NoMedia);
    assert!(when >= f.t0 + Duration::from_secs(90) && when <= f.t0 + Duration::from_secs(92));
}

#[test]
fn final_timeout_ends_even_a_busy_call() {
    let t0 = Instant::now();
    let config = RelayConfig {
        final_timeout: Some(Duration::from_secs(30)),
        ..RelayConfig::default()
    };
    let mut t = RelayTable::new(t0, config);
    let call = t.add_call(t0, 9);
    let spec = |port: u16, remote: &str| LegSpec {
        rtp_port: port,
        rtcp_port: Some(port + 1),
        policy: LatchPolicy::default(),
        remote_rtp: Some(addr(remote)),
        remote_rtcp: None,
        clock_rate: ClockRate::G711,
        awaiting_answer: false,
    };
    let a = t.add_leg(t0, call, spec(30000, A)).unwrap();
    let b = t.add_leg(t0, call, spec(30002, B)).unwrap();
    t.pair(a.leg, b.leg).unwrap();
    let ev = run_clock(&mut t, t0, Duration::from_secs(60), Some((a.rtp, 0)));
    assert_eq!(ev.len(), 1, "{ev:?}");
    let (when, RelayEvent::CallTimedOut { tag, reason, .. }) = ev[0] else {
        unreachable!("only timeouts are collected")
    };
    assert_eq!((tag, reason), (9, TimeoutReason::Final));
    assert!(when >= t0 + Duration::from_secs(30) && when <= t0 + Duration::from_secs(32));
}

#[test]
fn unanswered_calls_get_the_offer_timeout() {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.config.offer_timeout = Duration::from_secs(600);
    f.t.set_awaiting_answer(f.b.leg, true).unwrap();
    // Ringing without early media for 5 media timeouts: still there.
    let ev = run_clock(&mut f.t, f.t0, Duration::from_secs(300), None);
    assert!(ev.is_empty(), "{ev:?}");
    // Answered: the media timeout applies from the last activity.
    f.t.set_awaiting_answer(f.b.leg, false).unwrap();
    let ev = run_clock(
        &mut f.t,
        f.t0 + Duration::from_secs(300),
        Duration::from_secs(5),
        None,
    );
    assert_eq!(ev.len(), 1, "{ev:?}");
    let RelayEvent::CallTimedOut { reason, .. } = ev[0].1 else {
        unreachable!("only timeouts are collected")
    };
    assert_eq!(reason, TimeoutReason::NoMedia);
}

#[test]
fn offer_timeout_ends_a_call_never_answered() {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.config.offer_timeout = Duration::from_secs(150);
    f.t.set_awaiting_answer(f.b.leg, true).unwrap();
    let ev = run_clock(&mut f.t, f.t0, Duration::from_secs(400), None);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let (when, RelayEvent::CallTimedOut { reason, .. }) = ev[0] else {
        unreachable!("only timeouts are collected")
    };
    assert_eq!(reason, TimeoutReason::NoMedia);
    assert!(when >= f.t0 + Duration::from_secs(150) && when <= f.t0 + Duration::from_secs(152));
}

/// Asserts that every stream's forwarding entry is what the routing rules
/// give for the table as it is now.
fn assert_routes_current(t: &RelayTable) {
    for (leg_key, leg) in t.legs.iter() {
        for key in leg.streams() {
            let st = t.streams.get(key).unwrap();
            for c in [Component::Rtp, Component::Rtcp] {
                assert_eq!(
                    st.routes[c.index()].verdict,
                    t.route(leg_key, c),
                    "stale entry of {key:?} for {c:?}"
                );
                // RFC 7675 §5.1, checked apart from the routing rules: no
                // entry sends from a socket whose far end lost consent.
                if let Verdict::Forward { via, .. } = st.routes[c.index()].verdict {
                    let out = t.streams.get(via).unwrap();
                    let l = t.legs.get(out.leg).unwrap();
                    let socket = usize::from(via != l.rtp);
                    assert!(
                        !l.consent_lost[socket],
                        "{key:?} sends from {via:?} without consent"
                    );
                }
            }
        }
    }
}

#[test]
fn a_far_end_that_moves_changes_the_entry_and_keeps_the_sent_count() {
    let mut f = fixture(LatchPolicy::default(), false);
    let mut now = f.t0;
    // B latches; A's packets go there.
    f.t.handle_packet(now, f.b.rtp, addr(B), &rtp(2, 1), false);
    let events: Vec<RelayEvent> = std::iter::from_fn(|| f.t.poll_event()).collect();
    assert!(
        events.contains(&RelayEvent::RouteChanged {
            stream: f.a.rtp,
            component: Component::Rtp,
            route: Verdict::Forward {
                via: f.b.rtp,
                dest: addr(B)
            },
        }),
        "{events:?}"
    );
    for seq in 1..=3 {
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, seq), false);
    }
    // B moves (NAT rebinding): after its source hold, the new source
    // latches and A's next packet goes to it.
    let moved = "198.51.100.20:6100";
    now += Duration::from_secs(1);
    f.t.handle_packet(now, f.b.rtp, addr(moved), &rtp(2, 2), false);
    assert_eq!(f.t.stream_counters(f.b.rtp).unwrap().relatches, 1);
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 4), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(moved)
        }
    );
    assert_routes_current(&f.t);
    // Sent from B's socket: 3 packets before the move, 1 after.
    let snap = f.t.call_snapshot(f.call).unwrap();
    let b = snap.iter().find(|s| s.key == f.b.rtp).unwrap();
    assert_eq!(b.counters.sent_packets, 4);
    assert_eq!(b.counters.sent_bytes, 4 * 172);
    let a = snap.iter().find(|s| s.key == f.a.rtp).unwrap();
    assert_eq!(
        a.counters.sent_packets, 2,
        "B's two packets left A's socket"
    );
}

/// One change to the table, for the property below.
#[derive(Debug, Clone)]
enum Op {
    Packet {
        leg_b: bool,
        rtcp: bool,
        port: u16,
    },
    Remote {
        leg_b: bool,
        port: Option<u16>,
    },
    Mux {
        leg_b: bool,
        on: bool,
    },
    Policy {
        leg_b: bool,
        asymmetric: bool,
    },
    Endpoint {
        leg_b: bool,
    },
    Consent {
        leg_b: bool,
        rtcp: bool,
        granted: bool,
    },
    Pair,
    Tick,
}

/// Applies a signalling change (every `Op` but `Packet` and `Tick`).
fn apply_signalling(f: &mut Fixture, now: Instant, op: Op) {
    let leg = |b: bool| if b { f.b.leg } else { f.a.leg };
    match op {
        Op::Remote { leg_b, port } => {
            let remote = port.map(|p| SocketAddr::from(([192, 0, 2, 10], p)));
            f.t.set_remote(leg(leg_b), remote, None).unwrap();
        }
        Op::Mux { leg_b, on } => f.t.set_rtcp_mux(leg(leg_b), on).unwrap(),
        Op::Policy { leg_b, asymmetric } => {
            let policy = LatchPolicy {
                mode: if asymmetric {
                    AddressMode::Asymmetric
                } else {
                    AddressMode::Symmetric
                },
                ..LatchPolicy::default()
            };
            f.t.update_policy(now, leg(leg_b), policy).unwrap();
        }
        Op::Endpoint { leg_b } => {
            f.t.attach_endpoint(leg(leg_b), Key::from_parts(3, 1))
                .unwrap();
        }
        Op::Consent {
            leg_b,
            rtcp,
            granted,
        } => {
            let component = if rtcp {
                Component::Rtcp
            } else {
                Component::Rtp
            };
            f.t.set_consent(leg(leg_b), component, granted).unwrap();
        }
        Op::Pair => f.t.pair(f.a.leg, f.b.leg).unwrap(),
        Op::Packet { .. } | Op::Tick => {}
    }
}

fn op() -> impl proptest::strategy::Strategy<Value = Op> {
    use proptest::prelude::*;
    prop_oneof![
        4 => (any::<bool>(), any::<bool>(), 5000u16..5004).prop_map(|(leg_b, rtcp, port)| Op::Packet { leg_b, rtcp, port }),
        2 => (any::<bool>(), proptest::option::of(5000u16..5004)).prop_map(|(leg_b, port)| Op::Remote { leg_b, port }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(leg_b, on)| Op::Mux { leg_b, on }),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(leg_b, asymmetric)| Op::Policy { leg_b, asymmetric }),
        1 => any::<bool>().prop_map(|leg_b| Op::Endpoint { leg_b }),
        1 => (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(leg_b, rtcp, granted)| Op::Consent { leg_b, rtcp, granted }),
        1 => Just(Op::Pair),
        2 => Just(Op::Tick),
    ]
}

proptest::proptest! {
    /// Whatever happens to a call (far ends latching and moving, answers,
    /// rtcp-mux, policies, an endpoint attached, re-pairing), every
    /// stream's forwarding entry is the one the routing rules give.
    #[test]
    fn forwarding_entries_follow_every_change(ops in proptest::collection::vec(op(), 1..60)) {
        let mut f = fixture(LatchPolicy::default(), false);
        let mut now = f.t0;
        let mut seq = 0u16;
        let mut forwarded = std::collections::HashMap::new();
        for op in ops {
            let legs = |b: bool| if b { f.b } else { f.a };
            match op {
                Op::Packet { leg_b, rtcp, port } => {
                    let l = legs(leg_b);
                    let src = SocketAddr::from(([192, 0, 2, 10], port));
                    seq = seq.wrapping_add(1);
                    let data = if rtcp { rtcp_rr(7) } else { rtp(7, seq) };
                    let stream = if rtcp { l.rtcp } else { l.rtp };
                    if let Verdict::Forward { via, .. } = f.t.handle_packet(now, stream, src, &data, false) {
                        *forwarded.entry(via).or_insert(0u64) += 1;
                    }
                }
                Op::Tick => now += Duration::from_millis(700),
                signalling => apply_signalling(&mut f, now, signalling),
            }
            assert_routes_current(&f.t);
        }
        // Every packet forwarded is counted once, on the socket that sent
        // it, however often the entries changed meanwhile.
        for snap in f.t.call_snapshot(f.call).unwrap() {
            let want = forwarded.get(&snap.key).copied().unwrap_or(0);
            proptest::prop_assert_eq!(snap.counters.sent_packets, want, "{:?}", snap.key);
        }
    }
}

/// A kernel fast path as the shard drives it: entries installed and
/// removed from the table's offload events, RTP from an entry's source
/// forwarded without the table, counts merged back.
#[derive(Default)]
struct KernelModel {
    entries: std::collections::HashMap<StreamKey, KernelEntry>,
}

#[derive(Clone, Copy)]
struct KernelEntry {
    source: SocketAddr,
    via: StreamKey,
    dest: SocketAddr,
    packets: u64,
    bytes: u64,
    last: Option<(Instant, Ssrc, u16)>,
}

impl KernelModel {
    /// Applies the table's offload events.
    fn drain(&mut self, t: &mut RelayTable) {
        while let Some(e) = t.poll_event() {
            match e {
                RelayEvent::Offload {
                    stream,
                    source,
                    via,
                    dest,
                    ..
                } => {
                    let old = self.entries.insert(
                        stream,
                        KernelEntry {
                            source,
                            via,
                            dest,
                            packets: 0,
                            bytes: 0,
                            last: None,
                        },
                    );
                    assert!(old.is_none(), "offered twice without an end");
                }
                RelayEvent::OffloadEnded { stream, via } => {
                    let e = self
                        .entries
                        .remove(&stream)
                        .expect("ended but never offered");
                    assert_eq!(e.via, via);
                    Self::merge(t, stream, e);
                }
                _ => {}
            }
        }
    }

    fn merge(t: &mut RelayTable, stream: StreamKey, e: KernelEntry) {
        t.merge_offloaded(
            stream,
            e.via,
            OffloadedTraffic {
                packets: e.packets,
                bytes: e.bytes,
                last: e.last.map(|l| l.0),
                last_rtp: e.last.map(|l| (l.1, l.2)),
                seq_jumps: 0,
            },
        );
    }

    /// Merges what every entry forwarded so far (the periodic read).
    fn sync(&mut self, t: &mut RelayTable, only: Option<StreamKey>) {
        for (k, e) in self.entries.iter_mut() {
            if only.is_some_and(|o| o != *k) {
                continue;
            }
            let taken = KernelEntry {
                packets: std::mem::take(&mut e.packets),
                bytes: std::mem::take(&mut e.bytes),
                last: e.last,
                ..*e
            };
            Self::merge(t, *k, taken);
        }
    }

    /// The kernel's decision: forwards RTP from the entry's source.
    fn forward(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        seq: u16,
    ) -> Option<StreamKey> {
        let e = self.entries.get_mut(&stream)?;
        if e.source != src || data[1] >= 192 && data[1] <= 223 {
            return None;
        }
        e.packets += 1;
        e.bytes += data.len() as u64;
        e.last = Some((now, Ssrc(7), seq));
        Some(e.via)
    }
}

#[test]
fn offload_waits_for_the_learning_window_and_ends_on_a_move() {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.set_offload(true);
    let mut k = KernelModel::default();
    let mut now = f.t0;
    for seq in 1..=100u16 {
        f.t.handle_packet(now, f.b.rtp, addr(B), &rtp(2, seq), false);
        if k.forward(now, f.a.rtp, addr(A), &rtp(1, seq), seq)
            .is_none()
        {
            f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, seq), false);
        }
        k.drain(&mut f.t);
        let offloaded = f.t.offloaded(f.a.rtp).is_some();
        // Learning lasts 3 s from the first packet.
        assert_eq!(offloaded, now >= f.t0 + Duration::from_secs(3), "at {seq}");
        now += Duration::from_millis(40);
    }
    // RTCP never goes to the kernel; B's stream is offloaded too.
    assert!(f.t.offloaded(f.a.rtcp).is_none());
    assert_eq!(f.t.offloaded(f.b.rtp), Some(f.a.rtp));
    k.sync(&mut f.t, None);
    let c = f.t.stream_counters(f.a.rtp).unwrap();
    assert_eq!(c.packets, 100, "every packet of A counted once");
    assert_eq!(f.t.stream_counters(f.b.rtp).unwrap().sent_packets, 100);
    assert_eq!(c.last_packet, Some(now - Duration::from_millis(40)));
    // A merge carries the kernel's sequence jumps.
    f.t.merge_offloaded(
        f.a.rtp,
        f.b.rtp,
        OffloadedTraffic {
            packets: 2,
            bytes: 344,
            last: Some(now),
            last_rtp: Some((Ssrc(1), 103)),
            seq_jumps: 1,
        },
    );
    let c = f.t.stream_counters(f.a.rtp).unwrap();
    assert_eq!((c.packets, c.offloaded_seq_jumps), (102, 1));
    assert_eq!(c.last_packet, Some(now));
    assert_eq!(f.t.stream_counters(f.b.rtp).unwrap().sent_packets, 102);
    // B moves: A's entry (towards B) and B's own entry end.
    let moved = "198.51.100.20:6100";
    now += Duration::from_secs(1);
    k.sync(&mut f.t, Some(f.b.rtp));
    f.t.handle_packet(now, f.b.rtp, addr(moved), &rtp(2, 101), false);
    k.drain(&mut f.t);
    assert!(k.entries.is_empty(), "both entries ended");
    assert_eq!(f.t.offloaded(f.a.rtp), None);
    // A's next packet offers the new entry at once (A is not learning).
    f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 101), false);
    k.drain(&mut f.t);
    assert_eq!(k.entries.get(&f.a.rtp).map(|e| e.dest), Some(addr(moved)));
    // The telephone-event type set for a leg ends its offload.
    f.t.set_userspace_payload_types(f.a.leg, 1 << 101).unwrap();
    k.drain(&mut f.t);
    assert!(k.entries.is_empty());
    f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 102), false);
    assert_eq!(
        f.t.poll_event().map(|e| match e {
            RelayEvent::Offload {
                userspace_payload_types,
                ..
            } => userspace_payload_types,
            _ => 0,
        }),
        Some(1 << 101)
    );
}

/// A call with offload on whose stream from A (RTP sequence 1..=`packets`,
/// one every `every`, through the kernel model once offloaded) went to the
/// kernel; the time after the last packet.
fn a_offloaded(packets: u16, every: Duration) -> (Fixture, KernelModel, Instant) {
    let mut f = fixture(LatchPolicy::default(), false);
    f.t.set_offload(true);
    let mut k = KernelModel::default();
    let mut now = f.t0;
    for seq in 1..=packets {
        if k.forward(now, f.a.rtp, addr(A), &rtp(1, seq), seq)
            .is_none()
        {
            f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, seq), false);
        }
        k.drain(&mut f.t);
        now += every;
    }
    assert!(k.entries.contains_key(&f.a.rtp));
    (f, k, now)
}

#[test]
fn nothing_is_sent_to_a_far_end_without_consent() {
    // A's stream to B goes to the kernel once out of its learning window.
    let (mut f, mut k, now) = a_offloaded(100, Duration::from_millis(40));
    // RFC 7675 §5.1: B's consent expires. The kernel entry towards B ends
    // and A's packets are dropped, counted; RTCP to B's own socket still
    // goes (its consent is its own).
    f.t.set_consent(f.b.leg, Component::Rtp, false).unwrap();
    k.drain(&mut f.t);
    assert!(!k.entries.contains_key(&f.a.rtp), "entry withdrawn");
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 101), false),
        Verdict::Drop(DropReason::NoConsent)
    );
    assert_eq!(
        f.t.stream_counters(f.a.rtp).unwrap().drops[DropReason::NoConsent.index()],
        1
    );
    assert!(matches!(
        f.t.handle_packet(now, f.a.rtcp, addr("192.0.2.10:4001"), &rtcp_rr(1), false),
        Verdict::Forward { via, .. } if via == f.b.rtcp
    ));
    assert_eq!(
        f.t.egress(f.b.leg, Component::Rtp),
        Err(DropReason::NoConsent)
    );
    // B towards A is not affected.
    assert!(matches!(
        f.t.handle_packet(now, f.b.rtp, addr(B), &rtp(2, 1), false),
        Verdict::Forward { .. }
    ));
    // Consent back (a check succeeded): forwarding resumes, and the kernel
    // is offered the entry again.
    f.t.set_consent(f.b.leg, Component::Rtp, true).unwrap();
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, addr(A), &rtp(1, 102), false),
        Verdict::Forward {
            via: f.b.rtp,
            dest: addr(B)
        }
    );
    k.drain(&mut f.t);
    assert!(k.entries.contains_key(&f.a.rtp));
    // Under rtcp-mux the RTP socket's consent covers RTCP too.
    f.t.set_rtcp_mux(f.b.leg, true).unwrap();
    f.t.set_consent(f.b.leg, Component::Rtp, false).unwrap();
    assert_eq!(
        f.t.handle_packet(now, f.a.rtcp, addr("192.0.2.10:4001"), &rtcp_rr(1), false),
        Verdict::Drop(DropReason::NoConsent)
    );
    assert_eq!(
        f.t.set_consent(Key::from_parts(99, 1), Component::Rtp, false),
        Err(RelayError::NoSuchLeg)
    );
}

#[test]
fn a_contender_is_judged_with_the_kernel_counts_merged() {
    let (mut f, mut k, now) = a_offloaded(200, Duration::from_millis(20));
    // An attacker continuing A's stream from elsewhere: the shard merges
    // the kernel's counts first, so A is seen active and the forger loses.
    let attacker = addr("203.0.113.66:4000");
    k.sync(&mut f.t, Some(f.a.rtp));
    assert_eq!(
        f.t.handle_packet(now, f.a.rtp, attacker, &rtp(1, 201), false),
        Verdict::Drop(DropReason::SourceActive)
    );
    k.drain(&mut f.t);
    assert!(k.entries.contains_key(&f.a.rtp), "the entry holds");
}

proptest::proptest! {
    /// With a kernel fast path beside the table: whatever happens to the
    /// call, every installed entry forwards exactly where the table would
    /// (its current route, from its latched source), and every packet,
    /// wherever it was forwarded, is counted once on the socket that sent
    /// it.
    #[test]
    fn offloaded_entries_follow_every_change(ops in proptest::collection::vec(op(), 1..80)) {
        let mut f = fixture(LatchPolicy::default(), false);
        f.t.set_offload(true);
        let mut k = KernelModel::default();
        let mut now = f.t0;
        let mut seq = 0u16;
        let mut forwarded = std::collections::HashMap::new();
        for op in ops {
            let legs = |b: bool| if b { f.b } else { f.a };
            match op {
                Op::Packet { leg_b, rtcp, port } => {
                    let l = legs(leg_b);
                    let src = SocketAddr::from(([192, 0, 2, 10], port));
                    seq = seq.wrapping_add(1);
                    let data = if rtcp { rtcp_rr(7) } else { rtp(7, seq) };
                    let stream = if rtcp { l.rtcp } else { l.rtp };
                    let via = match k.forward(now, stream, src, &data, seq) {
                        Some(via) => Some(via),
                        None => {
                            // The shard reads the kernel's counts before
                            // judging a packet for an offloaded stream.
                            k.sync(&mut f.t, Some(stream));
                            match f.t.handle_packet(now, stream, src, &data, false) {
                                Verdict::Forward { via, .. } => Some(via),
                                _ => None,
                            }
                        }
                    };
                    if let Some(via) = via {
                        *forwarded.entry(via).or_insert(0u64) += 1;
                    }
                }
                Op::Tick => {
                    now += Duration::from_millis(700);
                    k.sync(&mut f.t, None);
                }
                signalling => apply_signalling(&mut f, now, signalling),
            }
            k.drain(&mut f.t);
            for (stream, e) in &k.entries {
                let st = f.t.streams.get(*stream).unwrap();
                proptest::prop_assert_eq!(
                    st.routes[Component::Rtp.index()].verdict,
                    Verdict::Forward { via: e.via, dest: e.dest }
                );
                proptest::prop_assert_eq!(st.latch.latched(), Some(e.source));
                proptest::prop_assert_eq!(f.t.offloaded(*stream), Some(e.via));
            }
        }
        k.sync(&mut f.t, None);
        for snap in f.t.call_snapshot(f.call).unwrap() {
            let want = forwarded.get(&snap.key).copied().unwrap_or(0);
            proptest::prop_assert_eq!(snap.counters.sent_packets, want, "{:?}", snap.key);
        }
    }
}
#[test]
fn zz_sizes() {
    eprintln!(
        "Stream {} Leg {} Counters {} Route {}",
        std::mem::size_of::<Stream>(),
        std::mem::size_of::<Leg>(),
        std::mem::size_of::<StreamCounters>(),
        std::mem::size_of::<Route>()
    );
}
