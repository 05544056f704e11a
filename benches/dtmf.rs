//! Criterion benches for RFC 4733 telephone-events and G.711.
//!
//! - `rfc4733`: encoding one telephone-event payload; a full sender run for
//!   one 100 ms digit (7 packets: 5 updates, 2 repeated ends) on a virtual
//!   clock.
//! - `g711`: decode, encode and transcode of one 20 ms frame (160 samples).
use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mediarelay::codec::g711::{self, G711};
use mediarelay::dtmf::{
    DtmfDigit, DtmfSender, DtmfSenderConfig, EventCode, TelephoneEvent, Volume,
};
use mediarelay::rtp::source::{RtpSource, SourceConfig};
use mediarelay::rtp::{PayloadType, Ssrc};

fn rfc4733(c: &mut Criterion) {
    let mut g = c.benchmark_group("rfc4733");
    g.bench_function("encode_payload", |b| {
        let mut out = [0u8; 4];
        let mut d = 0u16;
        b.iter(|| {
            d = d.wrapping_add(160);
            let ev = TelephoneEvent {
                event: EventCode(black_box(5)),
                end: black_box(false),
                volume: Volume::DEFAULT,
                duration: d,
            };
            ev.write(black_box(&mut out)).ok()
        });
    });

    g.bench_function("sender_one_digit", |b| {
        let base = Instant::now();
        let cfg = SourceConfig::new(Ssrc(1), 0, 0, 8000, Duration::from_millis(20));
        let src = RtpSource::new(cfg, base).expect("valid source");
        let pt = PayloadType::new(101).expect("7-bit payload type");
        let mut tx = DtmfSender::new(src, DtmfSenderConfig::new(pt));
        let mut now = base;
        let mut buf = [0u8; 64];
        b.iter(|| {
            tx.queue(DtmfDigit::D5, Duration::from_millis(100), Volume::DEFAULT)
                .ok();
            let mut packets = 0u32;
            while let Some(next) = tx.poll_timeout() {
                now = now.max(next);
                while let Ok(Some(n)) = tx.poll_transmit(now, &mut buf) {
                    black_box(&buf[..n]);
                    packets += 1;
                }
            }
            packets
        });
    });
    g.finish();
}

fn g711_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("g711");
    g.throughput(Throughput::Elements(160));
    // A 1 kHz-ish tone at -6 dBFS.
    let pcm: [i16; 160] = std::array::from_fn(|i| {
        let phase = i as f64 * std::f64::consts::TAU / 8.0;
        (phase.sin() * 16384.0) as i16
    });
    let mut ulaw = [0u8; 160];
    G711::Pcmu.encode_into(&pcm, &mut ulaw);

    g.bench_function("decode_pcmu_160", |b| {
        let mut out = [0i16; 160];
        b.iter(|| G711::Pcmu.decode_into(black_box(&ulaw), &mut out));
    });
    g.bench_function("encode_pcmu_160", |b| {
        let mut out = [0u8; 160];
        b.iter(|| G711::Pcmu.encode_into(black_box(&pcm), &mut out));
    });
    g.bench_function("encode_pcma_160", |b| {
        let mut out = [0u8; 160];
        b.iter(|| G711::Pcma.encode_into(black_box(&pcm), &mut out));
    });
    g.bench_function("transcode_pcmu_to_pcma_160", |b| {
        let mut out = [0u8; 160];
        b.iter(|| g711::transcode(G711::Pcmu, black_box(&ulaw), &mut out));
    });
    g.bench_function("transcode_in_place_160", |b| {
        let mut buf = ulaw;
        b.iter(|| g711::transcode_in_place(G711::Pcmu, black_box(&mut buf)));
    });
    g.finish();
}

criterion_group!(benches, rfc4733, g711_frame);
criterion_main!(benches);
