//! Resource accounting of the media builder at scale: 500 concurrent calls
//! (1000 builders, 1000 engine endpoints, about 2000 sockets) with audio
//! flowing both ways for 2 s, then `shutdown()`. The process's open file
//! descriptors and threads are counted before the manager exists and after
//! shutdown: they must be equal. While the calls run, the manager may have
//! only its shard threads and its cleanup thread, however many calls there
//! are. Run on both I/O backends (io_uring when this host allows it).
//!
//! This guards against the Go `media_builder` package's leaks, the library
//! this one replaces: per stream a session manager and a source manager
//! goroutine that were never stopped, and goroutines polling every socket.
//!
//! `harness = false`: libtest's own threads would come and go while the
//! threads are counted. Ports 55000-59999.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mediarelay::builder::{Builder, BuilderManager, ManagerConfig, MediaSession};
use mediarelay::engine::{IoBackend, UringSupport, raise_nofile_limit, uring_support};

const PAIRS: usize = 500;
const SHARDS: usize = 2;
const SENDERS: usize = 4;
const TICKS: u32 = 100;
const FRAME: Duration = Duration::from_millis(20);

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

fn check(ok: bool, what: String) -> Result<(), String> {
    if ok { Ok(()) } else { Err(what) }
}

/// Waits up to 2 s for `f` to return `want` (a thread that was joined can
/// linger in `/proc` for a moment); returns the last value.
fn settle(want: usize, f: fn() -> usize) -> usize {
    let end = Instant::now() + Duration::from_secs(2);
    loop {
        let n = f();
        if n == want || Instant::now() >= end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn run(backend: IoBackend) -> Result<(), String> {
    let (fd0, th0, rss0) = (fds(), threads(), rss_mib());
    let t = Instant::now();
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: "127.0.0.1".parse().map_err(|e| format!("{e}"))?,
        min_port: 55_000,
        max_port: 59_999,
        max_concurrent_builders: 2 * PAIRS,
        io_backend: backend,
        shards: SHARDS,
        ..ManagerConfig::default()
    })
    .map_err(|e| format!("manager: {e}"))?;
    let mut calls: Vec<(Arc<Builder>, Arc<Builder>)> = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        let a = mgr
            .create_builder(&format!("a{i}"))
            .map_err(|e| format!("create a{i}: {e}"))?;
        let b = mgr
            .create_builder(&format!("b{i}"))
            .map_err(|e| format!("create b{i}: {e}"))?;
        let offer = a.create_offer().map_err(|e| format!("offer {i}: {e}"))?;
        b.process_offer(&offer)
            .map_err(|e| format!("process_offer {i}: {e}"))?;
        let answer = b.create_answer().map_err(|e| format!("answer {i}: {e}"))?;
        a.process_answer(&answer)
            .map_err(|e| format!("process_answer {i}: {e}"))?;
        calls.push((a, b));
    }
    let negotiated = t.elapsed();
    let sessions: Vec<(MediaSession, MediaSession)> = calls
        .iter()
        .map(|(a, b)| (a.media_session(), b.media_session()))
        .map(|(a, b)| a.zip(b).ok_or("no session"))
        .collect::<Result<_, _>>()?;
    for (a, b) in &sessions {
        a.start().map_err(|e| format!("start: {e}"))?;
        b.start().map_err(|e| format!("start: {e}"))?;
    }
    let st = mgr.statistics();
    check(
        st.ports_in_use as usize == 2 * PAIRS && st.active_builders == 2 * PAIRS,
        format!("statistics with {PAIRS} calls: {st:?}"),
    )?;
    let (fd1, th1) = (fds(), threads());
    // Media runs on the shards: the manager adds them and its cleanup
    // thread, nothing per call.
    check(
        th1 - th0 == SHARDS + 1,
        format!(
            "{} threads for {PAIRS} calls (want {})",
            th1 - th0,
            SHARDS + 1
        ),
    )?;
    // Audio both ways on every call, each sender thread pacing a chunk.
    let frame: Vec<i16> = (0..160)
        .map(|i| ((f64::from(i) * 0.3).sin() * 8000.0) as i16)
        .collect();
    let t = Instant::now();
    let short_writes = std::thread::scope(|sc| {
        let workers: Vec<_> = sessions
            .chunks(PAIRS.div_ceil(SENDERS))
            .map(|chunk| {
                let frame = &frame;
                sc.spawn(move || {
                    let mut short = 0u64;
                    let t0 = Instant::now();
                    for k in 0..TICKS {
                        for (a, b) in chunk {
                            for s in [a, b] {
                                match s.send_audio(frame) {
                                    Ok(n) if n == frame.len() => {}
                                    _ => short += 1,
                                }
                            }
                        }
                        let next = t0 + FRAME * (k + 1);
                        std::thread::sleep(next.saturating_duration_since(Instant::now()));
                    }
                    short
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(u64::MAX))
            .sum::<u64>()
    });
    let media_time = t.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let mut received: Vec<u64> = Vec::with_capacity(2 * PAIRS);
    let (mut sent, mut skipped) = (0u64, 0u64);
    for (a, b) in &sessions {
        for s in [a, b] {
            let st = s.statistics();
            received.push(st.packets_received - st.dtmf_packets_received);
            sent += st.audio_packets_sent;
            skipped += st.streams.iter().map(|e| e.1.ticks_skipped).sum::<u64>();
        }
    }
    received.sort_unstable();
    let total: u64 = received.iter().sum();
    println!(
        "{backend:?}: {PAIRS} calls negotiated in {negotiated:?}; +{} fds, +{} threads; \
         media {media_time:?}: sent {sent}, received {total} (per session min {} median {} \
         max {}), {short_writes} short writes, {skipped} ticks skipped; RSS {rss0:.1} -> {:.1} MiB",
        fd1 - fd0,
        th1 - th0,
        received[0],
        received[received.len() / 2],
        received[received.len() - 1],
        rss_mib(),
    );
    check(
        received[0] > 0,
        format!(
            "{} sessions received nothing",
            received.iter().filter(|&&n| n == 0).count()
        ),
    )?;
    check(total <= sent, format!("received {total} > sent {sent}"))?;
    drop(sessions);
    drop(calls);
    let t = Instant::now();
    mgr.shutdown();
    let shutdown = t.elapsed();
    drop(mgr);
    let (fd2, th2) = (settle(fd0, fds), settle(th0, threads));
    println!(
        "{backend:?}: shutdown in {shutdown:?}; fds {fd0} -> {fd1} -> {fd2}, threads {th0} -> {th1} -> {th2}"
    );
    check(
        fd2 == fd0,
        format!("{} fds leaked", fd2 as i64 - fd0 as i64),
    )?;
    check(
        th2 == th0,
        format!("{} threads leaked", th2 as i64 - th0 as i64),
    )?;
    Ok(())
}

fn main() {
    if let Err(e) = raise_nofile_limit() {
        println!("could not raise the fd limit: {e}");
    }
    // Probe once (on a thread of its own) before any counting.
    let mut cases = vec![IoBackend::Epoll];
    match uring_support() {
        UringSupport::Available => cases.push(IoBackend::Uring),
        UringSupport::Unavailable(why) => println!("SKIP io_uring: {why}"),
    }
    let (mut passed, mut failed) = (0, 0);
    for backend in cases {
        match run(backend) {
            Ok(()) => passed += 1,
            Err(e) => {
                println!("FAIL {backend:?}: {e}");
                failed += 1;
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
