//! Renders the metrics of a real engine (1 shard, epoll, loopback) after
//! relaying a few RTP packets, parses the text back and checks key series.
#![cfg(feature = "daemon")]

use std::collections::HashMap;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use mediarelay::engine::{CallSpec, Engine, EngineConfig, IoBackend, LegOptions};
use mediarelay::metrics::{NgCounters, render};
use mediarelay::rtp::{PayloadType, RtpHeader, Ssrc};

struct Ng;

impl NgCounters for Ng {
    fn commands(&self) -> Vec<(&'static str, &'static str, u64)> {
        vec![("offer", "ok", 1)]
    }
    fn malformed(&self) -> u64 {
        0
    }
}

fn endpoint() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn rtp(seq: u16) -> Vec<u8> {
    let h = RtpHeader::new(PayloadType::PCMU, seq, u32::from(seq) * 160, Ssrc(9));
    let mut out = vec![0u8; h.packet_len(160)];
    h.write(&[0x55; 160], &mut out).unwrap();
    out
}

/// Parses sample lines into `series -> value`, checking the line shape.
fn parse(body: &str) -> HashMap<String, f64> {
    let mut m = HashMap::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect("name value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        assert!(m.insert(series.to_owned(), value).is_none(), "dup {series}");
    }
    m
}

fn scrape(e: &Engine) -> HashMap<String, f64> {
    let mut body = String::new();
    render(e, Some(&Ng), &mut body);
    parse(&body)
}

#[test]
fn renders_a_live_engine() {
    let e = Engine::start(EngineConfig {
        shards: 1,
        io_backend: IoBackend::Epoll,
        port_min: 43000,
        port_max: 43099,
        pin_cores: false,
        release_delay: Duration::from_millis(1),
        ..EngineConfig::default()
    })
    .expect("engine starts");
    let (a, b) = (endpoint(), endpoint());
    let leg = |s: &UdpSocket| LegOptions {
        remote_rtp: Some(s.local_addr().unwrap()),
        ..LegOptions::default()
    };
    let c = e
        .create_call(CallSpec {
            tag: 1,
            legs: [leg(&a), leg(&b)],
        })
        .unwrap();
    const SENT: u64 = 5;
    let mut buf = [0u8; 1500];
    for seq in 0..SENT as u16 {
        a.send_to(&rtp(seq), c.legs[0].rtp).unwrap();
        let (n, _) = b.recv_from(&mut buf).expect("relayed");
        assert_eq!(n, rtp(seq).len());
    }
    a.send_to(b"not rtp at all", c.legs[0].rtp).unwrap();

    // Counters are published once per shard turn: wait for them.
    let deadline = Instant::now() + Duration::from_secs(3);
    let m = loop {
        let m = scrape(&e);
        // Engine-wide and per-shard series are read one after the other,
        // so a publish can fall between them: wait for both.
        let done = m["mediarelay_tx_packets_total"] >= SENT as f64
            && m["mediarelay_dropped_packets_total{reason=\"malformed_rtp\"}"] >= 1.0
            && m["mediarelay_rx_packets_total"] >= (SENT + 1) as f64
            && m["mediarelay_shard_rx_packets_total{shard=\"0\"}"] >= (SENT + 1) as f64;
        if done || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let v = |k: &str| *m.get(k).unwrap_or_else(|| panic!("missing {k}: {m:?}"));

    assert_eq!(
        v(&format!(
            "mediarelay_info{{version=\"{}\",backend=\"epoll\"}}",
            env!("CARGO_PKG_VERSION")
        )),
        1.0
    );
    assert_eq!(v("mediarelay_shards"), 1.0);
    assert_eq!(v("mediarelay_calls"), 1.0);
    assert_eq!(v("mediarelay_streams"), 4.0, "RTP + RTCP per leg");
    assert!(v("mediarelay_rx_packets_total") >= (SENT + 1) as f64);
    assert!(v("mediarelay_rx_bytes_total") >= (SENT * 172) as f64);
    assert!(v("mediarelay_tx_packets_total") >= SENT as f64);
    assert!(v("mediarelay_tx_bytes_total") >= (SENT * 172) as f64);
    assert_eq!(
        v("mediarelay_dropped_packets_total{reason=\"malformed_rtp\"}"),
        1.0
    );
    for reason in ["source_active", "no_continuity", "strict_source"] {
        assert_eq!(
            v(&format!(
                "mediarelay_dropped_packets_total{{reason=\"{reason}\"}}"
            )),
            0.0
        );
    }
    assert_eq!(v("mediarelay_send_errors_total"), 0.0);
    assert_eq!(v("mediarelay_media_timeouts_total"), 0.0);
    assert_eq!(v("mediarelay_shard_calls{shard=\"0\"}"), 1.0);
    assert!(v("mediarelay_shard_rx_packets_total{shard=\"0\"}") >= (SENT + 1) as f64);
    assert!(v("mediarelay_loop_turns_total{shard=\"0\"}") >= 1.0);
    assert!(v("mediarelay_syscalls_total{shard=\"0\"}") >= 1.0);
    assert!(v("mediarelay_cpu_seconds_total{shard=\"0\"}") >= 0.0);
    assert_eq!(v("mediarelay_port_pairs{state=\"in_use\"}"), 2.0);
    assert_eq!(v("mediarelay_port_pairs_capacity"), 50.0);
    // 50 pairs and one call: nothing needed cutting short.
    assert_eq!(v("mediarelay_ports_quarantine_cut_short_total"), 0.0);
    assert_eq!(
        v("mediarelay_port_pairs{state=\"in_use\"}")
            + v("mediarelay_port_pairs{state=\"quarantined\"}")
            + v("mediarelay_port_pairs{state=\"free\"}"),
        50.0
    );
    assert_eq!(
        v("mediarelay_shard_port_pairs{shard=\"0\",state=\"in_use\"}"),
        2.0
    );
    assert_eq!(v("mediarelay_shard_port_pairs_capacity{shard=\"0\"}"), 50.0);
    assert_eq!(
        v("mediarelay_ng_commands_total{command=\"offer\",result=\"ok\"}"),
        1.0
    );
    assert_eq!(v("mediarelay_ng_malformed_total"), 0.0);

    // After the delete: no calls, the pairs quarantined or reclaimed.
    e.delete_call(c.id).unwrap();
    // Shard gauges are published once per loop turn, after the reply to
    // the delete: wait (bounded) for the next publish.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut m = scrape(&e);
    while m["mediarelay_calls"] != 0.0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        m = scrape(&e);
    }
    assert_eq!(m["mediarelay_calls"], 0.0);
    assert_eq!(m["mediarelay_port_pairs{state=\"in_use\"}"], 0.0);
    e.shutdown();
}
