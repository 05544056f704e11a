//! The measurement core against a known impaired stream over real UDP
//! sockets on loopback: an in-process forwarder drops every 20th packet,
//! duplicates every 50th and swaps neighbours every 100th; the reported
//! loss, duplicates and reordering must be exact.

use std::net::UdpSocket;
use std::time::Duration;

use loadgen::audit::{DEFAULT_MAX_SEND_LAG, SenderAudit, Validity};
use loadgen::clock::{instant_of, now_ns};
use loadgen::latency::Latency;
use loadgen::probe::{PROBE_LEN, Probe};
use loadgen::stream::StreamRx;
use mediarelay::rtp::{PayloadType, RtpHeader, RtpPacket, Ssrc};

const N: u64 = 3000;
const INTERVAL_NS: u64 = 200_000;
const RUN: u64 = 0x5eed;

fn dropped(k: u64) -> bool {
    k % 20 == 19
}
fn duplicated(k: u64) -> bool {
    k % 50 == 49
}
/// Held back and sent after its successor.
fn swapped(k: u64) -> bool {
    k % 100 == 50
}

#[test]
fn loss_duplicates_and_reordering_are_exact() {
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let fwd = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    fwd.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let (fwd_addr, rx_addr) = (fwd.local_addr().unwrap(), rx.local_addr().unwrap());

    let forwarder = std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        let mut held: Option<Vec<u8>> = None;
        while let Ok(n) = fwd.recv(&mut buf) {
            let pkt = &buf[..n];
            let seq = RtpPacket::parse(pkt)
                .ok()
                .and_then(|p| Probe::read(p.payload()).ok())
                .map(|p| p.seq)
                .unwrap();
            if dropped(seq) {
                continue;
            }
            if swapped(seq) {
                held = Some(pkt.to_vec());
                continue;
            }
            fwd.send_to(pkt, rx_addr).unwrap();
            if duplicated(seq) {
                fwd.send_to(pkt, rx_addr).unwrap();
            }
            if let Some(h) = held.take() {
                fwd.send_to(&h, rx_addr).unwrap();
            }
        }
    });

    let receiver = std::thread::spawn(move || {
        let mut stream = StreamRx::new(Duration::from_millis(100));
        let mut latency = Latency::new();
        let mut buf = [0u8; 1500];
        while let Ok(n) = rx.recv(&mut buf) {
            let arrival = now_ns();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            let probe = Probe::read(p.payload()).unwrap();
            assert_eq!(probe.run, RUN);
            stream.on_packet(&probe, arrival);
            latency.record(probe.scheduled_ns, probe.sent_ns, arrival);
        }
        (stream, latency)
    });

    // Open loop: packet k is due at start + k·interval whatever happened
    // before; it carries both times.
    let mut audit = SenderAudit::new();
    let start = now_ns() + 10_000_000;
    let mut payload = [0u8; 160];
    let mut out = [0u8; 172];
    for k in 0..N {
        let scheduled = start + k * INTERVAL_NS;
        std::thread::sleep(
            instant_of(scheduled).saturating_duration_since(std::time::Instant::now()),
        );
        let sent = now_ns();
        Probe {
            run: RUN,
            stream: 1,
            seq: k,
            scheduled_ns: scheduled,
            sent_ns: sent,
        }
        .write(&mut payload)
        .unwrap();
        let hdr = RtpHeader::new(
            PayloadType::PCMU,
            (65_000 + k) as u16,
            (k * 160) as u32,
            Ssrc(7),
        );
        let len = hdr.write(&payload, &mut out).unwrap();
        match sender.send_to(&out[..len], fwd_addr) {
            Ok(_) => audit.record_send(scheduled, sent),
            Err(e) => audit.record_error(&e),
        }
    }
    forwarder.join().unwrap();
    let (stream, latency) = receiver.join().unwrap();

    let expect_lost = (0..N).filter(|&k| dropped(k)).count() as u64;
    let expect_dup = (0..N).filter(|&k| duplicated(k) && !dropped(k)).count() as u64;
    let expect_reordered = (0..N)
        .filter(|&k| swapped(k) && k + 1 < N && !dropped(k))
        .count() as u64;
    let r = stream.report(audit.report().sent);
    assert_eq!(r.sent, N);
    assert_eq!(r.lost, expect_lost);
    assert_eq!(r.received, N - expect_lost);
    assert_eq!(r.duplicates, expect_dup);
    assert_eq!(r.reordered, expect_reordered);
    assert_eq!((r.max_gap, r.bursts), (1, expect_lost));
    assert_eq!(r.invalid, 0);
    assert!((r.loss_pct() - 5.0).abs() < 1e-9);
    assert_eq!((expect_lost, expect_dup, expect_reordered), (150, 30, 30));
    // Every distinct packet and every duplicate got a latency sample.
    let l = latency.from_sent();
    assert_eq!(l.count, r.received + r.duplicates);
    assert!(l.p50 > 0 && l.max < 100_000, "{l:?}");
    // From the schedule, every sample counted too, never below the
    // latency from the actual send.
    let c = latency.from_scheduled();
    assert_eq!(c.count, l.count);
    assert!(c.p50 >= l.p50 && c.max >= l.max, "{c:?} {l:?}");
    // A 2-core machine running other tests may lag; the audit says so
    // either way, and a valid run has a small p99 lag.
    if audit.validity(DEFAULT_MAX_SEND_LAG) == Validity::Valid {
        assert!(audit.report().send_lag_us.p99 <= 1000);
    }
    assert_eq!(PROBE_LEN, 44);
}
