//! Port allocation through the engine, on real loopback sockets, for both
//! I/O backends: a call's legs take pairs from any shard's slice (the
//! call's shard preferred), and a released pair's quarantine is cut short
//! rather than a call refused. Every test uses its own port range.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

use mediarelay::engine::{
    CallInfo, CallSpec, Engine, EngineConfig, EngineError, IoBackend, LegOptions, UringSupport,
    uring_support,
};
use mediarelay::ports::ShardId;
use mediarelay::rtp::{PayloadType, RtpHeader, Ssrc};

/// An engine with `shards` shards over `pairs` pairs from port `base`, with
/// the default release delay; `None` (test skipped) when io_uring is wanted
/// but unavailable.
fn engine(backend: IoBackend, base: u16, pairs: u16, shards: usize) -> Option<Engine> {
    if backend == IoBackend::Uring {
        if let UringSupport::Unavailable(why) = uring_support() {
            eprintln!("SKIP io_uring test: {why}");
            return None;
        }
    }
    wait_until_bindable(base, 2 * pairs);
    let config = EngineConfig {
        shards,
        io_backend: backend,
        port_min: base,
        port_max: base + 2 * pairs - 1,
        // Tests run in parallel: let the scheduler place the shards.
        pin_cores: false,
        ..EngineConfig::default()
    };
    assert_eq!(
        config.release_delay,
        Duration::from_secs(1),
        "default delay"
    );
    let e = Engine::start(config).expect("engine starts");
    assert_eq!(e.backend(), backend);
    assert_eq!(e.ports().range().pairs(), u32::from(pairs));
    Some(e)
}

/// Waits (bounded) until every port of `base..base + count` can be bound on
/// loopback. A previous run of this binary may still hold them for a moment:
/// the kernel tears an exited process's io_uring instance down
/// asynchronously, closing its sockets only then. The tiny ranges here leave
/// the engine no other pair to fall back to.
fn wait_until_bindable(base: u16, count: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for port in base..base + count {
        while UdpSocket::bind((Ipv4Addr::LOCALHOST, port)).is_err() {
            assert!(Instant::now() < deadline, "port {port} stays in use");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn rtp(ssrc: u32, seq: u16) -> Vec<u8> {
    let h = RtpHeader::new(PayloadType::PCMU, seq, u32::from(seq) * 160, Ssrc(ssrc));
    let payload = [0xd5u8; 160];
    let mut out = vec![0u8; h.packet_len(payload.len())];
    h.write(&payload, &mut out).unwrap();
    out
}

fn spec(a: &UdpSocket, b: &UdpSocket) -> CallSpec {
    let leg = |s: &UdpSocket| LegOptions {
        remote_rtp: Some(s.local_addr().unwrap()),
        ..LegOptions::default()
    };
    CallSpec {
        tag: 1,
        legs: [leg(a), leg(b)],
    }
}

/// One RTP packet each way through `c`, checked byte for byte and for the
/// relay port it leaves from.
fn relays(c: &CallInfo, a: &UdpSocket, b: &UdpSocket, seq: u16) {
    let p = rtp(1, seq);
    a.send_to(&p, c.legs[0].rtp).unwrap();
    assert_eq!(
        common::recv_from(b),
        Some((p, c.legs[1].rtp)),
        "A->B, seq {seq}"
    );
    let q = rtp(2, seq);
    b.send_to(&q, c.legs[1].rtp).unwrap();
    assert_eq!(
        common::recv_from(a),
        Some((q, c.legs[0].rtp)),
        "B->A, seq {seq}"
    );
}

both_backends! {
    offset: 500;
    two_pairs_two_shards_place_a_call: 14000,
    churn_never_runs_out_of_ports: 14100,
}

/// Two pairs split over two shards (one pair per slice): a call needs both,
/// so one leg's pair comes from the other shard's slice. The call relays;
/// a second call while it is up finds every pair in use. Right after the
/// delete, both pairs are quarantined and nothing else is left: the next
/// call cuts both quarantines short and relays too.
fn two_pairs_two_shards_place_a_call(backend: IoBackend, base: u16) {
    let Some(e) = engine(backend, base, 2, 2) else {
        return;
    };
    for s in [ShardId(0), ShardId(1)] {
        assert_eq!(e.ports().counts(s).unwrap().total, 1);
    }
    let (a, b) = (endpoint(), endpoint());
    let c = e
        .create_call(spec(&a, &b))
        .expect("a call fits in two pairs");
    let slices = [0, 1].map(|i| e.ports().shard_of(c.legs[i].rtp.port()).unwrap());
    assert_ne!(slices[0], slices[1], "one leg from each slice");
    relays(&c, &a, &b, 1);

    match e.create_call(spec(&a, &b)) {
        Err(EngineError::Ports(_)) => {}
        other => panic!("expected port exhaustion, got {other:?}"),
    }
    assert_eq!(
        e.ports().totals().in_use,
        2,
        "the failed call released its pair"
    );
    relays(&c, &a, &b, 2);

    e.delete_call(c.id).unwrap();
    let t = e.ports().totals();
    assert_eq!((t.in_use, t.quarantined), (0, 2));
    let before = t.quarantine_cut_short;

    let c = e.create_call(spec(&a, &b)).expect("quarantine yields");
    relays(&c, &a, &b, 3);
    assert!(e.ports().totals().quarantine_cut_short >= before + 2);
    e.delete_call(c.id).unwrap();
    assert_eq!(e.ports().totals().in_use, 0);
}

/// Offer/answer/delete churn, one call up at a time, over a range of
/// `PAIRS` pairs with the default 1 s release delay: ten times as many
/// calls as pairs, all placed and all relaying, because quarantines are cut
/// short instead of calls refused.
fn churn_never_runs_out_of_ports(backend: IoBackend, base: u16) {
    const PAIRS: u16 = 16;
    const CALLS: u16 = 10 * PAIRS;
    let Some(e) = engine(backend, base, PAIRS, 2) else {
        return;
    };
    let (a, b) = (endpoint(), endpoint());
    let mut failures = Vec::new();
    for i in 0..CALLS {
        match e.create_call(spec(&a, &b)) {
            Ok(c) => {
                relays(&c, &a, &b, i);
                e.delete_call(c.id).unwrap();
            }
            Err(err) => failures.push((i, err)),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    let t = e.ports().totals();
    assert_eq!(t.in_use, 0);
    assert!(
        t.quarantine_cut_short > 0,
        "{CALLS} calls over {PAIRS} pairs without cutting a quarantine short: {t:?}"
    );
}
