//! Density of media endpoints on the engine: `CALLS` calls (default 2000)
//! with both ends as endpoints on this host's shards, G.711 at 50 pps each
//! way over loopback, jitter buffer and RTCP (with XR) on, for `SECS`
//! seconds (default 60). One application thread writes every endpoint's
//! audio (pre-encoded G.711, 20 ms per endpoint every 20 ms) and takes its
//! events.
//!
//! Reports loss (packets received by the far endpoints / packets sent),
//! the endpoints' pacing error (send instant behind the media clock) as a
//! distribution, user + system CPU of the process per call, and resident
//! memory per endpoint.
//!
//! `DENSITY_CALLS=2000 DENSITY_SECS=60 cargo bench --bench endpoint_density`
//! (`DENSITY_SHARDS`: shard threads, default one per core;
//! `DENSITY_BACKEND`: `uring` or `epoll`, default the probe's choice).

use std::time::{Duration, Instant};

use mediarelay::codec::G711;
use mediarelay::engine::{
    EndpointInfo, EndpointSpec, Engine, EngineConfig, IoBackend, LegOptions, LegUpdate,
};
use mediarelay::media::{CodecSpec, InputMode, MediaEvent, MediaHandle, SessionConfig, endpoint};
use mediarelay::rtcp::NtpTime;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Resident memory of this process, bytes (/proc/self/statm).
fn rss() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// User + system CPU of this process (/proc/self/stat, clock ticks).
fn cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|v| v.parse().unwrap_or(0))
        .collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the name.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn config() -> SessionConfig {
    let mut c = SessionConfig::new(NtpTime::from_system_time(std::time::SystemTime::now()));
    c.input = InputMode::Payload(CodecSpec::G711(G711::Pcmu));
    c.deliver_audio = false;
    c.event_capacity = 8;
    c.frames = 1;
    c.quality_interval = Duration::from_secs(5);
    // The application refills every 20 ms: 100 ms of room is plenty.
    c.input_buffer = Duration::from_millis(100);
    c
}

/// How late this host wakes a thread from a 700 µs sleep: the floor under
/// any pacing figure (100 µs buckets, the last from 1.5 ms), over 2 s.
fn wake_floor() -> ([u64; 16], u64) {
    let mut h = [0u64; 16];
    let mut max = 0;
    for _ in 0..2000 {
        let t = Instant::now();
        std::thread::sleep(Duration::from_micros(700));
        let late = (t.elapsed().as_micros() as u64).saturating_sub(700);
        h[((late / 100) as usize).min(15)] += 1;
        max = max.max(late);
    }
    (h, max)
}

fn main() {
    let (floor, floor_max) = wake_floor();
    let calls = env("DENSITY_CALLS", 2000) as usize;
    let secs = env("DENSITY_SECS", 60);
    let backend = match std::env::var("DENSITY_BACKEND").as_deref() {
        Ok("epoll") => IoBackend::Epoll,
        Ok("uring") => IoBackend::Uring,
        _ => IoBackend::Auto,
    };
    let _ = mediarelay::engine::raise_nofile_limit();
    let shards = env("DENSITY_SHARDS", 0) as usize;
    let e = Engine::start(EngineConfig {
        shards,
        io_backend: backend,
        port_min: 20000,
        port_max: 29999,
        ..EngineConfig::default()
    })
    .expect("engine");
    println!(
        "density: {calls} calls, {} endpoints, {secs} s, {} shards on {}",
        2 * calls,
        e.shard_count(),
        e.backend()
    );
    let rss0 = rss();
    // Sessions first (the media state), then their sockets and relay legs
    // on the shards; each endpoint's media clock starts when it is made,
    // as calls start at any instant.
    // Calls start at any instant: media clocks spread over the packet
    // interval.
    let mut sessions = Vec::with_capacity(calls);
    let base = Instant::now();
    let phase = |i: usize| base + Duration::from_micros((i as u64 * 20_000) / (2 * calls as u64));
    for i in 0..calls {
        let (ea, ha) = endpoint(config(), phase(2 * i)).expect("endpoint");
        let (eb, hb) = endpoint(config(), phase(2 * i + 1)).expect("endpoint");
        sessions.push((ea, ha, eb, hb));
    }
    let rss_sessions = rss();
    let mut handles: Vec<MediaHandle> = Vec::with_capacity(2 * calls);
    let mut infos: Vec<EndpointInfo> = Vec::with_capacity(2 * calls);
    for (ea, ha, eb, hb) in sessions {
        let a = e
            .create_endpoint(EndpointSpec::default(), Box::new(ea))
            .expect("create");
        let b = e
            .create_endpoint(
                EndpointSpec {
                    tag: 0,
                    leg: LegOptions {
                        remote_rtp: Some(a.leg.rtp),
                        ..LegOptions::default()
                    },
                },
                Box::new(eb),
            )
            .expect("create");
        e.update_leg(
            a.id,
            0,
            LegUpdate {
                remote_rtp: Some(b.leg.rtp),
                ..LegUpdate::default()
            },
        )
        .expect("update");
        handles.push(ha);
        handles.push(hb);
        infos.push(a);
        infos.push(b);
    }
    let rss1 = rss();
    let frame = [0x55u8; 160];
    let mut events = 0u64;
    let mut quality_sum = 0.0;
    let mut quality_n = 0u64;
    let feed = |handles: &mut [MediaHandle], events: &mut u64, q: &mut f64, qn: &mut u64| {
        for h in handles.iter_mut() {
            while h.input_free() >= 160 {
                if h.write_payload(&frame).unwrap_or(0) < 160 {
                    break;
                }
            }
            while let Some(ev) = h.try_recv() {
                *events += 1;
                if let MediaEvent::Quality(r) = ev {
                    *q += r.mos_cq;
                    *qn += 1;
                }
            }
        }
    };
    // Warm-up: 5 s, then the measured window.
    let warm_until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < warm_until {
        feed(&mut handles, &mut events, &mut quality_sum, &mut quality_n);
        std::thread::sleep(Duration::from_millis(20));
    }
    let before: Vec<_> = handles.iter().map(MediaHandle::stats).collect();
    let engine0 = e.stats();
    let cpu0 = cpu();
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(secs);
    while Instant::now() < end {
        feed(&mut handles, &mut events, &mut quality_sum, &mut quality_n);
        std::thread::sleep(Duration::from_millis(20));
    }
    let elapsed = t0.elapsed();
    let cpu1 = cpu();
    let engine1 = e.stats();
    let after: Vec<_> = handles.iter().map(MediaHandle::stats).collect();
    // Loss over the whole run: stop feeding, let what is queued go out and
    // land, then compare every endpoint's packets sent with what its peer
    // received.
    std::thread::sleep(Duration::from_millis(500));
    let last: Vec<_> = handles.iter().map(MediaHandle::stats).collect();
    let mut sent = 0u64;
    let mut received = 0u64;
    for s in &last {
        sent += s.audio_sent;
        received += s.received;
    }
    let mut lag = [0u64; 16];
    let mut lag_max = 0u64;
    let mut underruns = 0u64;
    let window_sent: u64 = after
        .iter()
        .zip(&before)
        .map(|(x, y)| x.audio_sent - y.audio_sent)
        .sum();
    for (x, y) in after.iter().zip(&before) {
        for (i, l) in lag.iter_mut().enumerate() {
            *l += x.pacing_lag[i] - y.pacing_lag[i];
        }
        lag_max = lag_max.max(x.pacing_lag_max_us);
        underruns += x.underruns - y.underruns;
    }
    let total: u64 = lag.iter().sum();
    let pct = |q: f64| -> String {
        let want = (total as f64 * q).ceil() as u64;
        let mut acc = 0;
        for (i, n) in lag.iter().enumerate() {
            acc += n;
            if acc >= want {
                return if i == 15 {
                    ">= 1.5 ms".into()
                } else {
                    format!("< {:.1} ms", (i + 1) as f64 * 0.1)
                };
            }
        }
        "n/a".into()
    };
    let loss = if sent == 0 {
        1.0
    } else {
        1.0 - received as f64 / sent as f64
    };
    let cpu_s = (cpu1 - cpu0).as_secs_f64();
    let per_call_us = cpu_s * 1e6 / elapsed.as_secs_f64() / calls as f64;
    let per_packet_ns = cpu_s * 1e9 / (2 * window_sent).max(1) as f64;
    println!("measured {:.1} s", elapsed.as_secs_f64());
    let rate = |a: u64, b: u64| (b - a) as f64 / elapsed.as_secs_f64();
    println!(
        "shards: {:.0} turns/s, {:.0} data-path syscalls/s, {:.0} datagrams received/s, {:.0} sent/s",
        rate(engine0.turns, engine1.turns),
        rate(engine0.syscalls, engine1.syscalls),
        rate(engine0.rx_packets, engine1.rx_packets),
        rate(engine0.tx_packets, engine1.tx_packets),
    );
    println!(
        "packets sent {sent}, received {received} (whole run), loss {:.4}%; {window_sent} sent in the measured window",
        loss * 100.0
    );
    println!("pacing lag histogram (100 µs buckets, the last from 1.5 ms): {lag:?}");
    println!(
        "this host's wake-up lateness from a 700 µs sleep, idle, same buckets: {floor:?}, max {:.2} ms",
        floor_max as f64 / 1000.0
    );
    println!(
        "pacing error: p50 {}, p99 {}, p99.9 {}, max {:.2} ms, underruns {underruns}",
        pct(0.5),
        pct(0.99),
        pct(0.999),
        lag_max as f64 / 1000.0
    );
    println!(
        "CPU (process, user+system): {:.2} s = {:.1}% of one core; {:.1} µs per call per second; {:.0} ns per packet (sent or received)",
        cpu_s,
        cpu_s * 100.0 / elapsed.as_secs_f64(),
        per_call_us,
        per_packet_ns
    );
    let per = |bytes: u64| bytes as f64 / 1024.0 / (2 * calls) as f64;
    println!(
        "memory: {:.1} KiB resident per endpoint: {:.1} KiB media session and application side, {:.1} KiB sockets and relay legs on the shards ({} MiB for {} endpoints)",
        per(rss1.saturating_sub(rss0)),
        per(rss_sessions.saturating_sub(rss0)),
        per(rss1.saturating_sub(rss_sessions)),
        (rss1.saturating_sub(rss0)) / (1 << 20),
        2 * calls
    );
    if quality_n > 0 {
        println!(
            "mean MOS-CQ reported: {:.2} ({quality_n} reports, {events} events)",
            quality_sum / quality_n as f64
        );
    }
    for i in infos {
        let _ = e.delete_call(i.id);
    }
    e.shutdown();
}
