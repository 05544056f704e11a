//! No allocation on the forwarding path: with a counting global allocator,
//! 100,000 packets are relayed after warm-up and the process (the shard
//! thread and this driver, the only threads) performs zero allocations.
//! Then the same for media endpoints: two endpoints on the shard exchange
//! G.711 at 50 pps each way with a jitter buffer, RTCP every second with
//! XR, and this driver writing PCM and taking every event, for 4 s after
//! warm-up: zero allocations.
//!
//! `harness = false`: libtest's own threads would allocate concurrently.
//! `unsafe` is allowed here only for the `GlobalAlloc` impl, which must be.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use mediarelay::engine::{
    EndpointSpec, Engine, EngineConfig, IoBackend, UringSupport, uring_support,
};
use mediarelay::media::MediaEvent;
use mediarelay::media::handle::{MediaHandle, endpoint};
use mediarelay::media::session::SessionConfig;
use mediarelay::rtcp::NtpTime;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated and not yet freed (always tracked).
static LIVE: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        LIVE.fetch_add(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        LIVE.fetch_add(new_size as u64, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size() as u64, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Relays `n` packets A -> B in bursts, draining B; returns how many arrived.
fn relay(
    a: &UdpSocket,
    b: &UdpSocket,
    to: std::net::SocketAddr,
    pkt: &mut [u8; 172],
    n: u32,
    buf: &mut [u8],
) -> u32 {
    let mut got = 0;
    let mut seq: u16 = 0;
    let mut sent = 0;
    while sent < n {
        for _ in 0..32 {
            seq = seq.wrapping_add(1);
            pkt[2..4].copy_from_slice(&seq.to_be_bytes());
            if a.send_to(&pkt[..], to).is_ok() {
                sent += 1;
            }
        }
        // Drain what has arrived; a short timeout ends the burst.
        while b.recv_from(buf).is_ok() {
            got += 1;
            if got + 4 >= sent {
                break;
            }
        }
    }
    while b.recv_from(buf).is_ok() {
        got += 1;
    }
    got
}

fn run(backend: IoBackend, base: u16) -> Result<(), String> {
    let e = Engine::start(EngineConfig {
        shards: 1,
        io_backend: backend,
        port_min: base,
        port_max: base + 99,
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let a = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let b = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    b.set_read_timeout(Some(Duration::from_millis(20)))
        .map_err(|e| e.to_string())?;
    let call = e
        .create_call(common::two_legs(1, &a, &b))
        .map_err(|e| e.to_string())?;
    let mut pkt = [0u8; 172];
    pkt[0] = 0x80;
    let mut buf = vec![0u8; 2048];
    let warm = relay(&a, &b, call.legs[0].rtp, &mut pkt, 20_000, &mut buf);
    let before_tx = e.stats().tx_packets;
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let got = relay(&a, &b, call.legs[0].rtp, &mut pkt, 100_000, &mut buf);
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let forwarded = e.stats().tx_packets - before_tx;
    println!(
        "{backend}: warm-up {warm}, measured: {got} received, {forwarded} forwarded, {allocs} allocations"
    );
    if got < 90_000 {
        return Err(format!("{backend}: only {got} of 100000 packets arrived"));
    }
    if allocs != 0 {
        return Err(format!("{backend}: {allocs} allocations while forwarding"));
    }
    endpoints(&e, backend)?;
    e.shutdown();
    let e = Engine::start(EngineConfig {
        shards: 1,
        io_backend: backend,
        port_min: base - 2000,
        port_max: base - 1201,
        ..EngineConfig::default()
    })
    .map_err(|e| e.to_string())?;
    footprint(&e, backend)?;
    e.shutdown();
    Ok(())
}

/// Heap per endpoint in the density configuration (pre-encoded G.711 in,
/// 100 ms of input room, jitter buffer, RTCP with XR, 8 events, no decoded
/// audio handed out), the shard's share included: 300 endpoints created
/// on a fresh engine, live bytes before and after.
fn footprint(e: &Engine, backend: IoBackend) -> Result<(), String> {
    const N: usize = 300;
    let mut cfg = SessionConfig::new(NtpTime::from_unix(Duration::from_secs(1_700_000_000)));
    cfg.input = mediarelay::media::InputMode::Payload(mediarelay::media::CodecSpec::G711(
        mediarelay::codec::G711::Pcmu,
    ));
    cfg.input_buffer = Duration::from_millis(100);
    cfg.deliver_audio = false;
    cfg.event_capacity = 8;
    cfg.frames = 1;
    let mut kept = Vec::with_capacity(N);
    let mut ids = Vec::with_capacity(N);
    let before = LIVE.load(Ordering::SeqCst);
    for _ in 0..N {
        let (ep, h) =
            endpoint(cfg.clone(), std::time::Instant::now()).map_err(|e| e.to_string())?;
        let info = e
            .create_endpoint(EndpointSpec::default(), Box::new(ep))
            .map_err(|e| e.to_string())?;
        kept.push(h);
        ids.push(info.id);
    }
    let per = (LIVE.load(Ordering::SeqCst) - before) as f64 / N as f64;
    println!("{backend} endpoint footprint: {per:.0} bytes of heap per endpoint ({N} endpoints)");
    for id in ids {
        let _ = e.delete_call(id);
    }
    if per > 16.0 * 1024.0 {
        return Err(format!(
            "{backend}: {per:.0} bytes per endpoint, above 16 KiB"
        ));
    }
    Ok(())
}

/// Runs two endpoints on `e` for `for_` writing a 20 ms frame of PCM into
/// each every 20 ms and taking every event; returns the audio frames
/// received.
fn talk(ha: &mut MediaHandle, hb: &mut MediaHandle, pcm: &[i16; 160], for_: Duration) -> u64 {
    let start = std::time::Instant::now();
    let mut next = start;
    let mut frames = 0;
    while start.elapsed() < for_ {
        for h in [&mut *ha, &mut *hb] {
            if h.input_free() >= 160 {
                let _ = h.write_pcm(pcm);
            }
            while let Some(ev) = h.try_recv() {
                if matches!(ev, MediaEvent::Audio(_)) {
                    frames += 1;
                }
            }
        }
        next += Duration::from_millis(20);
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
    frames
}

fn endpoints(e: &Engine, backend: IoBackend) -> Result<(), String> {
    let mut cfg = SessionConfig::new(NtpTime::from_unix(Duration::from_secs(1_700_000_000)));
    cfg.rtcp_interval = Duration::from_secs(1);
    let ((_, mut ha), (_, mut hb)) = common::endpoint_pair(e, cfg.clone(), cfg, false)?;
    let mut pcm = [0i16; 160];
    for (i, s) in pcm.iter_mut().enumerate() {
        *s = ((i as i32 * 409) % 8000 - 4000) as i16;
    }
    let _ = ha.send_dtmf('5', Duration::from_millis(100));
    let warm = talk(&mut ha, &mut hb, &pcm, Duration::from_secs(3));
    ALLOCS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::SeqCst);
    let frames = talk(&mut ha, &mut hb, &pcm, Duration::from_secs(4));
    COUNTING.store(false, Ordering::SeqCst);
    let allocs = ALLOCS.load(Ordering::Relaxed);
    let sa = ha.stats();
    println!(
        "{backend} endpoints: warm-up {warm} frames, measured {frames} frames, {} RTCP sent, {allocs} allocations",
        sa.rtcp_sent
    );
    if frames < 300 {
        return Err(format!("{backend}: only {frames} audio frames in 4 s"));
    }
    if sa.rtcp_sent < 4 {
        return Err(format!("{backend}: only {} RTCP reports", sa.rtcp_sent));
    }
    if allocs != 0 {
        return Err(format!(
            "{backend}: {allocs} allocations while running endpoints"
        ));
    }
    Ok(())
}

fn main() {
    let mut failed = 0;
    let mut passed = 0;
    let mut cases = vec![(IoBackend::Epoll, 38000)];
    match uring_support() {
        UringSupport::Available => cases.push((IoBackend::Uring, 38200)),
        UringSupport::Unavailable(why) => println!("SKIP io_uring: {why}"),
    }
    for (backend, base) in cases {
        match run(backend, base) {
            Ok(()) => passed += 1,
            Err(e) => {
                println!("FAIL {e}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
