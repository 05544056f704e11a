//! Per-packet CPU of the media endpoint logic alone (no sockets): two
//! sessions exchanging G.711 at 20 ms in memory on a virtual clock.
//!
//! - `send`: one 20 ms tick of the sender: PCM in through the input ring,
//!   G.711 encode, RTP write, RTCP amortised (every 5 s of media).
//! - `receive`: one packet into the receiver through the jitter buffer and
//!   its playout: decode, concealment history, quality, frame handed out.
//! - `exchange`: both directions, both ends (four packet operations).
//! - `send_only_both_ends_polled`: A sends, B receives and plays out, B's
//!   own tick finds no input (two packet operations and an idle tick).
//!
//! Each iteration is one packet interval of media; the clock is virtual,
//! so only the CPU of the logic is measured.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use mediarelay::media::{Endpoint, MediaEndpoint, MediaHandle, SessionConfig, endpoint};
use mediarelay::relay::Component;
use mediarelay::rtcp::NtpTime;

const PTIME: Duration = Duration::from_millis(20);

struct Pair {
    a: MediaEndpoint,
    ha: MediaHandle,
    b: MediaEndpoint,
    hb: MediaHandle,
    now: Instant,
    pcm: [i16; 160],
    buf: Vec<u8>,
    from: SocketAddr,
}

impl Pair {
    fn new() -> Pair {
        let start = Instant::now();
        let cfg = SessionConfig::new(NtpTime::from_unix(Duration::from_secs(1_700_000_000)));
        let (a, ha) = endpoint(cfg.clone(), start).unwrap();
        let (b, hb) = endpoint(cfg, start).unwrap();
        let mut pcm = [0i16; 160];
        for (i, s) in pcm.iter_mut().enumerate() {
            *s = ((i as f64 * 0.3).sin() * 6000.0) as i16;
        }
        Pair {
            a,
            ha,
            b,
            hb,
            now: start,
            pcm,
            buf: vec![0u8; 1500],
            from: "127.0.0.1:4000".parse().unwrap(),
        }
    }

    /// One packet interval: each `send` end gets a frame and is polled;
    /// what it sends goes to the other end (when `deliver`).
    fn step(&mut self, a_sends: bool, b_sends: bool) {
        self.now += PTIME;
        let now = self.now;
        if a_sends {
            self.ha.write_pcm(&self.pcm).unwrap();
        }
        if b_sends {
            self.hb.write_pcm(&self.pcm).unwrap();
        }
        for (x, y) in [(0, 1), (1, 0)] {
            let (src, dst) = if x == 0 {
                (&mut self.a, &mut self.b)
            } else {
                (&mut self.b, &mut self.a)
            };
            if src.poll_timeout().is_some_and(|t| t <= now) {
                src.handle_timeout(now);
            }
            while let Some(t) = src.poll_transmit(now, &mut self.buf) {
                dst.handle_input(now, t.component, self.from, &self.buf[..t.len]);
            }
            src.flush(now);
            let _ = y;
        }
        while let Some(e) = self.ha.try_recv() {
            black_box(e);
        }
        while let Some(e) = self.hb.try_recv() {
            black_box(e);
        }
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("media");
    // Warm both ends past the jitter buffer's start.
    let mut send = Pair::new();
    for _ in 0..100 {
        send.step(true, false);
    }
    g.bench_function("send_only_both_ends_polled", |bch| {
        bch.iter(|| send.step(true, false))
    });
    // Send alone: A's tick, its packet discarded.
    let mut tx = Pair::new();
    g.bench_function("send_pacing_encode", |bch| {
        bch.iter(|| {
            tx.now += PTIME;
            let now = tx.now;
            tx.ha.write_pcm(&tx.pcm).unwrap();
            if tx.a.poll_timeout().is_some_and(|t| t <= now) {
                tx.a.handle_timeout(now);
            }
            while let Some(t) = tx.a.poll_transmit(now, &mut tx.buf) {
                black_box(t);
            }
            tx.a.flush(now);
            while let Some(e) = tx.ha.try_recv() {
                black_box(e);
            }
        })
    });
    let mut ex = Pair::new();
    for _ in 0..100 {
        ex.step(true, true);
    }
    g.bench_function("exchange_two_packets_four_ops", |bch| {
        bch.iter(|| ex.step(true, true))
    });
    // Receive alone: feed B pre-built packets from A.
    let mut rx = Pair::new();
    let mut pkts = Vec::new();
    for _ in 0..10 {
        rx.now += PTIME;
        rx.ha.write_pcm(&rx.pcm).unwrap();
        let now = rx.now;
        if rx.a.poll_timeout().is_some_and(|t| t <= now) {
            rx.a.handle_timeout(now);
        }
        while let Some(t) = rx.a.poll_transmit(now, &mut rx.buf) {
            if t.component == Component::Rtp {
                pkts.push(rx.buf[..t.len].to_vec());
            }
        }
        rx.a.flush(now);
    }
    // One packet, renumbered each iteration: a stream that never ends.
    let mut pkt = pkts[0].clone();
    let mut i = 0u32;
    let mut now = Instant::now();
    let (mut b, hb) = endpoint(
        SessionConfig::new(NtpTime::from_unix(Duration::from_secs(1_700_000_000))),
        now,
    )
    .unwrap();
    let from = rx.from;
    g.bench_function("receive_jitter_buffer_playout", |bch| {
        bch.iter(|| {
            now += PTIME;
            pkt[2..4].copy_from_slice(&(i as u16).to_be_bytes());
            pkt[4..8].copy_from_slice(&i.wrapping_mul(160).to_be_bytes());
            b.handle_input(now, Component::Rtp, from, &pkt);
            i = i.wrapping_add(1);
            if b.poll_timeout().is_some_and(|t| t <= now) {
                b.handle_timeout(now);
            }
            while b.poll_transmit(now, &mut rx.buf).is_some() {}
            b.flush(now);
            while let Some(e) = hb.try_recv() {
                black_box(e);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
