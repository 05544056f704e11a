//! Criterion benches for the rtp module: the per-packet receive path of the
//! relay (RTP parse + RFC 3550 receive statistics) and RTCP compound parsing
//! and report generation.
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mediarelay::rtcp::{
    Compound, LocalSource, NtpTime, RtcpPacket, SenderInfo, demux, write_report,
};
use mediarelay::rtp::stats::{ClockRate, ReceiveStats};
use mediarelay::rtp::{PayloadType, RtpHeader, RtpPacket, Ssrc};

const SSRC: Ssrc = Ssrc(0x1234_5678);

/// A 172-byte PCMU packet (12-byte header, 160 bytes = 20 ms at 8 kHz).
fn pcmu(seq: u16, ts: u32) -> [u8; 172] {
    let mut buf = [0u8; 172];
    let n = RtpHeader::new(PayloadType::PCMU, seq, ts, SSRC)
        .write(&[0xff; 160], &mut buf)
        .expect("172 bytes fit");
    assert_eq!(n, 172);
    buf
}

/// Receive statistics for one source, past probation.
fn warm_stats(now: Instant) -> ReceiveStats {
    let mut stats = ReceiveStats::new(SSRC, ClockRate::G711);
    for seq in 0..3u16 {
        let buf = pcmu(seq, 160 * u32::from(seq));
        stats.handle_packet(now, &RtpPacket::parse(&buf).expect("valid"));
    }
    stats
}

/// An SR + SDES compound as a receiver sees it (2 report blocks).
fn compound() -> Vec<u8> {
    let t0 = Instant::now();
    let mut sources = [warm_stats(t0), {
        let mut s = ReceiveStats::new(Ssrc(2), ClockRate::G711);
        for seq in 0..3u16 {
            let mut buf = pcmu(seq, 0);
            buf[8..12].copy_from_slice(&2u32.to_be_bytes());
            s.handle_packet(t0, &RtpPacket::parse(&buf).expect("valid"));
        }
        s
    }];
    let local = LocalSource {
        ssrc: Ssrc(7),
        cname: b"relay@example.net",
        sender_info: Some(SenderInfo::default()),
    };
    let mut out = vec![0u8; 256];
    let n = write_report(&mut out, t0, &local, &mut sources).expect("fits");
    out.truncate(n);
    out
}

fn rtp(c: &mut Criterion) {
    let mut g = c.benchmark_group("rtp");
    g.throughput(Throughput::Elements(1));

    g.bench_function("parse_pcmu_172", |b| {
        let buf = pcmu(1, 160);
        b.iter(|| RtpPacket::parse(black_box(&buf)).map(|p| p.payload().len()))
    });

    // The relay's per-packet receive work: parse, then account the packet
    // (sequence validation, loss, jitter) with advancing seq/ts/time.
    g.bench_function("parse_and_stats_pcmu_172", |b| {
        let mut now = Instant::now();
        let mut stats = warm_stats(now);
        let mut buf = pcmu(3, 480);
        let mut seq = 3u16;
        let mut ts = 480u32;
        b.iter(|| {
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            now += Duration::from_millis(20);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            buf[4..8].copy_from_slice(&ts.to_be_bytes());
            let pkt = RtpPacket::parse(black_box(&buf)).expect("valid");
            black_box(stats.handle_packet(now, &pkt))
        })
    });

    g.bench_function("rtcp_compound_parse_sr_sdes", |b| {
        let buf = compound();
        b.iter(|| {
            let mut jitter = 0u64;
            for p in Compound::new(black_box(&buf)) {
                if let Ok(RtcpPacket::SenderReport(sr)) = p {
                    jitter += sr
                        .report_blocks
                        .iter()
                        .map(|r| u64::from(r.jitter))
                        .sum::<u64>();
                }
            }
            jitter
        })
    });

    g.bench_function("demux", |b| {
        let rtp = pcmu(1, 160);
        b.iter(|| demux(black_box(&rtp)))
    });

    g.bench_function("rtcp_write_report_2_sources", |b| {
        let t0 = Instant::now();
        let sources = [warm_stats(t0), warm_stats(t0)];
        let local = LocalSource {
            ssrc: Ssrc(7),
            cname: b"relay@example.net",
            sender_info: Some(SenderInfo {
                ntp: NtpTime(0xe8f3_0000_0000_0000),
                ..SenderInfo::default()
            }),
        };
        let mut out = [0u8; 256];
        // Fresh copies each time (no allocation), so every report carries
        // both blocks.
        b.iter(|| {
            let mut fresh = sources.clone();
            write_report(&mut out, t0, black_box(&local), &mut fresh)
        })
    });

    g.finish();
}

criterion_group!(benches, rtp);
criterion_main!(benches);
