//! Real-socket integration tests of the engine on loopback, run for both I/O
//! backends (io_uring and epoll). Every test uses its own port range so the
//! tests can run in parallel.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mediarelay::engine::{
    CallInfo, CallSpec, Engine, EngineConfig, EngineEvent, IoBackend, LegOptions, LegUpdate,
    UringSupport, uring_support,
};
use mediarelay::relay::{AddressMode, DropReason, LatchPolicy, RelayConfig, TimeoutReason};
use mediarelay::rtp::{PayloadType, RtpHeader, Ssrc};

fn engine(backend: IoBackend, base: u16, span: u16, relay: RelayConfig) -> Option<Engine> {
    if backend == IoBackend::Uring {
        if let UringSupport::Unavailable(why) = uring_support() {
            eprintln!("SKIP io_uring test: {why}");
            return None;
        }
    }
    let e = Engine::start(EngineConfig {
        shards: 1,
        io_backend: backend,
        port_min: base,
        port_max: base + span - 1,
        relay,
        release_delay: Duration::from_millis(1),
        // Many engines run in parallel in this test binary: let the
        // scheduler place their shards.
        pin_cores: false,
        ..EngineConfig::default()
    })
    .expect("engine starts");
    assert_eq!(e.backend(), backend);
    Some(e)
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn rtp(ssrc: u32, seq: u16, payload_len: usize) -> Vec<u8> {
    let h = RtpHeader::new(PayloadType::PCMU, seq, u32::from(seq) * 160, Ssrc(ssrc));
    let mut out = vec![0u8; h.packet_len(payload_len)];
    let payload: Vec<u8> = (0..payload_len).map(|i| (i as u8) ^ (seq as u8)).collect();
    h.write(&payload, &mut out).unwrap();
    out
}

fn call(e: &Engine, a: &UdpSocket, b: &UdpSocket, opts: LegOptions) -> CallInfo {
    e.create_call(CallSpec {
        tag: 7,
        legs: [
            LegOptions {
                remote_rtp: Some(a.local_addr().unwrap()),
                ..opts
            },
            LegOptions {
                remote_rtp: Some(b.local_addr().unwrap()),
                ..opts
            },
        ],
    })
    .unwrap()
}

/// Waits until the shard has published counters satisfying `f`.
fn wait_stats(e: &Engine, f: impl Fn(&mediarelay::engine::EngineStats) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if f(&e.stats()) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

both_backends! {
    offset: 2000;
    forwards_byte_identical_both_ways: 20000,
    rtcp_on_port_plus_one: 20100,
    rtcp_mux_on_one_port: 20200,
    latching_and_rtp_bleed: 20300,
    strict_source: 20400,
    media_timeout_removes_call: 20500,
    send_to_closed_port_does_not_disturb_others: 20600,
    garbage_counted_and_dropped: 20700,
    shutdown_releases_ports_at_once: 20800,
    ten_thousand_legs_on_one_shard: 24000,
}
fn forwards_byte_identical_both_ways(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let c = call(&e, &a, &b, LegOptions::default());
    for seq in 0..200u16 {
        let len = [0usize, 1, 160, 1200][usize::from(seq % 4)];
        let p = rtp(1, seq, len);
        a.send_to(&p, c.legs[0].rtp).unwrap();
        let (got, from) =
            common::recv_from(&b).unwrap_or_else(|| panic!("A->B lost: {:?}", e.stats()));
        assert_eq!(got, p);
        assert_eq!(from, c.legs[1].rtp, "sent from B's relay port");
        let q = rtp(2, seq, len);
        b.send_to(&q, c.legs[1].rtp).unwrap();
        let (got, from) =
            common::recv_from(&a).unwrap_or_else(|| panic!("B->A lost: {:?}", e.stats()));
        assert_eq!(got, q);
        assert_eq!(from, c.legs[0].rtp);
    }
    let snap = e.query(c.id).unwrap();
    let a_rtp = snap
        .iter()
        .find(|s| s.local_port == c.legs[0].rtp.port())
        .unwrap();
    assert_eq!(a_rtp.counters.packets, 200);
    assert_eq!(a_rtp.latched, Some(a.local_addr().unwrap()));
    let removed = e.delete_call(c.id).unwrap();
    assert_eq!(
        removed
            .streams
            .iter()
            .map(|s| s.counters.packets)
            .sum::<u64>(),
        400
    );
    assert_eq!(e.ports().totals().in_use, 0);
}

fn rtcp_on_port_plus_one(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let (a_rtcp, b_rtcp) = (endpoint(), endpoint());
    let c = e
        .create_call(CallSpec {
            tag: 1,
            legs: [
                LegOptions {
                    remote_rtp: Some(a.local_addr().unwrap()),
                    remote_rtcp: Some(a_rtcp.local_addr().unwrap()),
                    ..LegOptions::default()
                },
                LegOptions {
                    remote_rtp: Some(b.local_addr().unwrap()),
                    remote_rtcp: Some(b_rtcp.local_addr().unwrap()),
                    ..LegOptions::default()
                },
            ],
        })
        .unwrap();
    assert_eq!(c.legs[0].rtcp.port(), c.legs[0].rtp.port() + 1);
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 9];
    a_rtcp.send_to(&rr, c.legs[0].rtcp).unwrap();
    let (got, from) = common::recv_from(&b_rtcp).expect("RTCP A->B");
    assert_eq!((got.as_slice(), from), (&rr[..], c.legs[1].rtcp));
    b_rtcp.send_to(&rr, c.legs[1].rtcp).unwrap();
    let (got, from) = common::recv_from(&a_rtcp).expect("RTCP B->A");
    assert_eq!((got.as_slice(), from), (&rr[..], c.legs[0].rtcp));
}

fn rtcp_mux_on_one_port(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let c = call(
        &e,
        &a,
        &b,
        LegOptions {
            rtcp_mux: true,
            ..LegOptions::default()
        },
    );
    assert_eq!(c.legs[0].rtcp, c.legs[0].rtp);
    let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 9];
    let p = rtp(5, 1, 160);
    a.send_to(&p, c.legs[0].rtp).unwrap();
    a.send_to(&rr, c.legs[0].rtp).unwrap();
    assert_eq!(common::recv_from(&b).unwrap(), (p, c.legs[1].rtp));
    assert_eq!(common::recv_from(&b).unwrap(), (rr.to_vec(), c.legs[1].rtp));
}

fn latching_and_rtp_bleed(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b, natted_a, attacker) = (endpoint(), endpoint(), endpoint(), endpoint());
    let policy = LatchPolicy {
        learning_window: Duration::from_millis(300),
        ..LatchPolicy::default()
    };
    let c = call(
        &e,
        &a,
        &b,
        LegOptions {
            policy,
            ..LegOptions::default()
        },
    );
    // In the learning window A's packets come from a NATed address: latch
    // (established after a few packets).
    for seq in 1..=5 {
        natted_a.send_to(&rtp(1, seq, 160), c.legs[0].rtp).unwrap();
        assert!(common::recv_from(&b).is_some());
    }
    b.send_to(&rtp(2, 1, 160), c.legs[1].rtp).unwrap();
    assert_eq!(
        common::recv_from(&natted_a).map(|(p, _)| p),
        Some(rtp(2, 1, 160)),
        "media goes to the latched address"
    );
    std::thread::sleep(Duration::from_millis(400));
    // After the window a third party cannot take over.
    attacker
        .send_to(&rtp(0xbad, 2, 160), c.legs[0].rtp)
        .unwrap();
    assert!(wait_stats(&e, |s| s.drops
        [DropReason::NoContinuity.index()]
        == 1));
    b.send_to(&rtp(2, 2, 160), c.legs[1].rtp).unwrap();
    assert_eq!(
        common::recv_from(&natted_a).map(|(p, _)| p),
        Some(rtp(2, 2, 160)),
        "call keeps working"
    );
    attacker
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    assert!(
        common::recv_from(&attacker).is_none(),
        "attacker got no media"
    );
    // The real endpoint still gets through.
    natted_a.send_to(&rtp(1, 6, 160), c.legs[0].rtp).unwrap();
    assert_eq!(common::recv_from(&b).map(|(p, _)| p), Some(rtp(1, 6, 160)));
}

fn strict_source(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b, other) = (endpoint(), endpoint(), endpoint());
    let policy = LatchPolicy {
        mode: AddressMode::Asymmetric,
        strict_source: true,
        ..LatchPolicy::default()
    };
    let c = call(
        &e,
        &a,
        &b,
        LegOptions {
            policy,
            ..LegOptions::default()
        },
    );
    other.send_to(&rtp(1, 1, 160), c.legs[0].rtp).unwrap();
    assert!(wait_stats(&e, |s| s.drops
        [DropReason::StrictSource.index()]
        == 1));
    a.send_to(&rtp(1, 2, 160), c.legs[0].rtp).unwrap();
    assert_eq!(common::recv_from(&b).map(|(p, _)| p), Some(rtp(1, 2, 160)));
    // Update to symmetric: the other source may latch (new window) once A,
    // the source followed so far, has gone quiet.
    std::thread::sleep(Duration::from_millis(100));
    e.update_leg(
        c.id,
        0,
        LegUpdate {
            policy: Some(LatchPolicy::default()),
            ..LegUpdate::default()
        },
    )
    .unwrap();
    other.send_to(&rtp(1, 3, 160), c.legs[0].rtp).unwrap();
    assert_eq!(common::recv_from(&b).map(|(p, _)| p), Some(rtp(1, 3, 160)));
}

fn media_timeout_removes_call(backend: IoBackend, base: u16) {
    let relay = RelayConfig {
        timeout: Duration::from_millis(400),
        timer_tick: Duration::from_millis(20),
        ..RelayConfig::default()
    };
    let Some(e) = engine(backend, base, 100, relay) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let idle = call(&e, &a, &b, LegOptions::default());
    let busy = call(&e, &a, &b, LegOptions::default());
    assert_eq!(e.ports().totals().in_use, 4);
    let start = Instant::now();
    let mut seq = 0;
    let mut event = None;
    while start.elapsed() < Duration::from_millis(1500) && event.is_none() {
        seq += 1;
        a.send_to(&rtp(1, seq, 20), busy.legs[0].rtp).unwrap();
        let _ = common::recv_from(&b);
        event = e.try_event();
        std::thread::sleep(Duration::from_millis(20));
    }
    let Some(EngineEvent::CallTimedOut {
        id,
        tag,
        removed,
        reason,
    }) = event
    else {
        panic!("no timeout event")
    };
    assert_eq!((id, tag, reason), (idle.id, 7, TimeoutReason::NoMedia));
    assert!(start.elapsed() >= Duration::from_millis(400));
    assert_eq!(removed.streams.len(), 4);
    assert!(e.query(idle.id).is_err());
    assert!(e.query(busy.id).is_ok(), "the busy call stays");
    assert_eq!(
        e.ports().totals().in_use,
        2,
        "the idle call's ports are released"
    );
    assert!(wait_stats(&e, |s| s.timeouts == 1 && s.calls == 1));
}

fn send_to_closed_port_does_not_disturb_others(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let closed = {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let dead = e
        .create_call(CallSpec {
            tag: 1,
            legs: [
                LegOptions {
                    remote_rtp: Some(a.local_addr().unwrap()),
                    ..LegOptions::default()
                },
                LegOptions {
                    remote_rtp: Some(closed),
                    ..LegOptions::default()
                },
            ],
        })
        .unwrap();
    let live = call(&e, &a, &b, LegOptions::default());
    for seq in 0..100u16 {
        a.send_to(&rtp(1, seq, 160), dead.legs[0].rtp).unwrap();
        a.send_to(&rtp(2, seq, 160), live.legs[0].rtp).unwrap();
        assert_eq!(
            common::recv_from(&b).map(|(p, _)| p),
            Some(rtp(2, seq, 160))
        );
    }
    assert!(e.query(dead.id).is_ok());
}

fn garbage_counted_and_dropped(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let c = call(&e, &a, &b, LegOptions::default());
    a.send_to(b"not rtp at all, just text", c.legs[0].rtp)
        .unwrap();
    a.send_to(&[0x80], c.legs[0].rtp).unwrap();
    a.send_to(&vec![0x80u8; 65_000], c.legs[0].rtp).unwrap();
    a.send_to(b"\x00\x01garbage", c.legs[0].rtcp).unwrap();
    assert!(
        wait_stats(&e, |s| {
            s.drops[DropReason::MalformedRtp.index()] == 2
                && s.drops[DropReason::Oversize.index()] == 1
                && s.drops[DropReason::MalformedRtcp.index()] == 1
        }),
        "{:?}",
        e.stats()
    );
    a.send_to(&rtp(1, 1, 160), c.legs[0].rtp).unwrap();
    assert_eq!(common::recv_from(&b).map(|(p, _)| p), Some(rtp(1, 1, 160)));
    assert!(wait_stats(&e, |s| s.tx_packets == 1));
}

/// `Engine::shutdown` returns only once the kernel has let go of every
/// socket (io_uring: the cancelled multishot receives have ended), so the
/// ports can be bound again at once.
fn shutdown_releases_ports_at_once(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 100, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let calls: Vec<CallInfo> = (0..3)
        .map(|_| call(&e, &a, &b, LegOptions::default()))
        .collect();
    a.send_to(&rtp(1, 1, 160), calls[0].legs[0].rtp).unwrap();
    assert_eq!(common::recv_from(&b).map(|(p, _)| p), Some(rtp(1, 1, 160)));
    let addrs: Vec<SocketAddr> = calls
        .iter()
        .flat_map(|c| c.legs.iter().flat_map(|l| [l.rtp, l.rtcp]))
        .collect();
    assert_eq!(addrs.len(), 12);
    e.shutdown();
    for addr in addrs {
        UdpSocket::bind(addr).unwrap_or_else(|err| panic!("{addr} still bound: {err}"));
    }
}

fn ten_thousand_legs_on_one_shard(backend: IoBackend, base: u16) {
    let _ = mediarelay::engine::raise_nofile_limit();
    // 10,000 pairs each; the two backends use disjoint ranges.
    let base = if backend == IoBackend::Uring {
        base
    } else {
        base + 20_200 - 2000
    };
    let Some(e) = engine(backend, base, 20_200, RelayConfig::default()) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let calls: Vec<_> = (0..5000)
        .map(|_| {
            call(
                &e,
                &a,
                &b,
                LegOptions {
                    rtcp_mux: true,
                    ..LegOptions::default()
                },
            )
        })
        .collect();
    assert!(wait_stats(&e, |s| s.streams == 10_000));
    let mut got = 0;
    for (i, c) in calls.iter().enumerate() {
        a.send_to(&rtp(i as u32, 1, 20), c.legs[0].rtp).unwrap();
        if i % 64 == 63 {
            while got <= i - 32 {
                common::recv_from(&b).expect("delivered");
                got += 1;
            }
        }
    }
    while got < calls.len() {
        common::recv_from(&b).expect("delivered");
        got += 1;
    }
    for c in &calls {
        e.delete_call(c.id).unwrap();
    }
    assert_eq!(e.ports().totals().in_use, 0);
}
