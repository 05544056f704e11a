//! Relay throughput / CPU / latency benchmark, a bench binary.
//!
//! Setup: N calls (default 1000, so 2000 RTP streams) on loopback. A
//! generator thread sends 172-byte RTP packets round-robin over the calls
//! to the relay ports of leg A at a paced rate (one `sendmmsg` per
//! millisecond tick from one socket); a sink thread receives everything
//! that leaves leg B on one socket (`recvmmsg`) and records the latency of
//! each packet from a timestamp in its payload into an HDR histogram. The
//! relay shard is pinned to CPU 0; generator and sink share CPU 1.
//!
//! For each relay (mediarelay/io_uring, mediarelay/epoll, and a naive relay
//! that does one `recvfrom` + one `sendto` per packet from epoll, the way a
//! classic userspace relay works) it reports:
//! - relay CPU per forwarded packet at a fixed offered rate (from
//!   `/proc/self/task/<tid>/schedstat`, i.e. the relay thread's own run
//!   time in ns), syscalls per packet, latency p50/p99/p99.9;
//! - the highest offered rate with loss <= 0.1% (a stepped search).
//!
//! `cargo bench --bench relay -- [--calls N] [--rate PPS] [--secs S]
//!  [--max-rate PPS] [--step PPS] [--shards N] [--only uring|epoll|bare|naive]
//!  [--json FILE]`

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mediarelay::engine::{
    CallSpec, Engine, EngineConfig, IoBackend, LegOptions, UringSupport, uring_support,
};

const PKT: usize = 172;

#[derive(Clone, Debug)]
struct Opts {
    calls: usize,
    rate: u64,
    secs: f64,
    max_rate: u64,
    step: u64,
    shards: usize,
    only: Option<String>,
    json: Option<String>,
}

fn opts() -> Opts {
    let mut o = Opts {
        calls: 1000,
        rate: 200_000,
        secs: 3.0,
        max_rate: 1_000_000,
        step: 50_000,
        shards: 1,
        only: None,
        json: None,
    };
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--calls" => o.calls = v.parse().expect("--calls N"),
            "--rate" => o.rate = v.parse().expect("--rate PPS"),
            "--secs" => o.secs = v.parse().expect("--secs S"),
            "--max-rate" => o.max_rate = v.parse().expect("--max-rate PPS"),
            "--step" => o.step = v.parse().expect("--step PPS"),
            "--shards" => o.shards = v.parse().expect("--shards N"),
            "--only" => o.only = Some(v),
            "--json" => o.json = Some(v),
            // cargo bench passes --bench; ignore unknown flags.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    o
}

/// Run time of a thread in ns (schedstat: time spent on the CPU).
fn thread_ns(tid: u64) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

fn pin(cpu: usize) {
    if let Some(ids) = core_affinity::get_core_ids() {
        if let Some(id) = ids.get(cpu % ids.len().max(1)) {
            core_affinity::set_for_current(*id);
        }
    }
}

/// Where the generator sends and what the relay reports.
trait Relay {
    fn name(&self) -> String;
    /// Relay-side destination for flow i (leg A's RTP port).
    fn target(&self, i: usize) -> SocketAddr;
    /// Relay thread ids (for CPU time).
    fn tids(&self) -> Vec<u64>;
    /// (forwarded packets, syscalls) so far.
    fn counters(&self) -> (u64, u64);
}

struct Mediarelay {
    engine: Engine,
    targets: Vec<SocketAddr>,
}

impl Relay for Mediarelay {
    fn name(&self) -> String {
        format!("mediarelay/{}", self.engine.backend())
    }
    fn target(&self, i: usize) -> SocketAddr {
        self.targets[i]
    }
    fn tids(&self) -> Vec<u64> {
        (0..self.engine.shard_count())
            .filter_map(|s| self.engine.shard_stats(s))
            .map(|s| s.tid.load(Ordering::Relaxed))
            .collect()
    }
    fn counters(&self) -> (u64, u64) {
        let s = self.engine.stats();
        (s.tx_packets, s.syscalls)
    }
}

fn start_mediarelay(
    backend: IoBackend,
    o: &Opts,
    gen_addr: SocketAddr,
    sink_addr: SocketAddr,
) -> Mediarelay {
    // Separate ranges per backend: a stopped engine's sockets may linger
    // briefly while the kernel finishes cancelled operations.
    let port_min = if backend == IoBackend::Uring {
        20000
    } else {
        20000 + (o.calls as u16) * 4 + 400
    };
    let engine = Engine::start(EngineConfig {
        shards: o.shards,
        io_backend: backend,
        port_min,
        port_max: port_min + (o.calls as u16) * 4 + 399,
        socket_rcvbuf: 1 << 20,
        socket_sndbuf: 1 << 20,
        ..EngineConfig::default()
    })
    .expect("engine starts");
    let targets = (0..o.calls)
        .map(|i| {
            let c = engine
                .create_call(CallSpec {
                    tag: i as u64,
                    legs: [
                        LegOptions {
                            remote_rtp: Some(gen_addr),
                            ..LegOptions::default()
                        },
                        LegOptions {
                            remote_rtp: Some(sink_addr),
                            ..LegOptions::default()
                        },
                    ],
                })
                .expect("call created");
            c.legs[0].rtp
        })
        .collect();
    Mediarelay { engine, targets }
}

/// A relay running on one thread of this process (the naive baseline and
/// the bare forwarder): its thread id and counters are shared atomics.
struct ThreadRelay {
    name: &'static str,
    targets: Vec<SocketAddr>,
    tid: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    syscalls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a relay thread reports through.
#[derive(Clone)]
struct ThreadShared {
    tid: Arc<AtomicU64>,
    forwarded: Arc<AtomicU64>,
    syscalls: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl ThreadRelay {
    /// Runs `body` on a new thread pinned to CPU 0.
    fn spawn(
        name: &'static str,
        targets: Vec<SocketAddr>,
        body: impl FnOnce(ThreadShared) + Send + 'static,
    ) -> Self {
        let shared = ThreadShared {
            tid: Arc::new(AtomicU64::new(0)),
            forwarded: Arc::new(AtomicU64::new(0)),
            syscalls: Arc::new(AtomicU64::new(0)),
            stop: Arc::new(AtomicBool::new(false)),
        };
        let s2 = shared.clone();
        let thread = std::thread::spawn(move || {
            pin(0);
            s2.tid
                .store(mediarelay::engine::gettid() as u64, Ordering::Relaxed);
            body(s2);
        });
        ThreadRelay {
            name,
            targets,
            tid: shared.tid,
            forwarded: shared.forwarded,
            syscalls: shared.syscalls,
            stop: shared.stop,
            thread: Some(thread),
        }
    }
}

impl Relay for ThreadRelay {
    fn name(&self) -> String {
        self.name.into()
    }
    fn target(&self, i: usize) -> SocketAddr {
        self.targets[i]
    }
    fn tids(&self) -> Vec<u64> {
        vec![self.tid.load(Ordering::Relaxed)]
    }
    fn counters(&self) -> (u64, u64) {
        (
            self.forwarded.load(Ordering::Relaxed),
            self.syscalls.load(Ordering::Relaxed),
        )
    }
}

impl Drop for ThreadRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The naive baseline: epoll, one recvfrom + one sendto per packet.
fn start_naive(o: &Opts, sink_addr: SocketAddr) -> ThreadRelay {
    // Leg A sockets receive; each forwards from its leg B socket to the sink.
    let base = 20000 + 2 * ((o.calls as u16) * 4 + 400);
    let mut a_socks = Vec::new();
    let mut b_socks = Vec::new();
    for i in 0..o.calls {
        let a = UdpSocket::bind(("127.0.0.1", base + 2 * i as u16)).expect("bind naive A");
        let b = UdpSocket::bind(("127.0.0.1", base + 2 * i as u16 + 1)).expect("bind naive B");
        a.set_nonblocking(true).unwrap();
        a_socks.push(a);
        b_socks.push(b);
    }
    let targets = a_socks.iter().map(|s| s.local_addr().unwrap()).collect();
    ThreadRelay::spawn("naive recvfrom/sendto", targets, move |sh| {
        let ep = Epoll::new();
        for (i, s) in a_socks.iter().enumerate() {
            ep.add(s.as_raw_fd(), i as u64);
        }
        let mut buf = [0u8; 2048];
        let mut events = vec![libc_event(); 256];
        while !sh.stop.load(Ordering::Relaxed) {
            let n = ep.wait(&mut events, 100);
            sh.syscalls.fetch_add(1, Ordering::Relaxed);
            for ev in &events[..n] {
                let i = ev_data(ev) as usize;
                loop {
                    sh.syscalls.fetch_add(1, Ordering::Relaxed);
                    let Ok((len, _from)) = a_socks[i].recv_from(&mut buf) else {
                        break;
                    };
                    sh.syscalls.fetch_add(1, Ordering::Relaxed);
                    if b_socks[i].send_to(&buf[..len], sink_addr).is_ok() {
                        sh.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    })
}

// Minimal epoll for the naive relay (the bench may use libc directly).
struct Epoll(i32);
#[allow(unsafe_code)]
impl Epoll {
    fn new() -> Self {
        // SAFETY: no pointers; checked.
        let fd = unsafe { libc::epoll_create1(0) };
        assert!(fd >= 0);
        Epoll(fd)
    }
    fn add(&self, fd: i32, data: u64) {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: live event struct; checked.
        let r = unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &raw mut ev) };
        assert_eq!(r, 0);
    }
    fn wait(&self, events: &mut [libc::epoll_event], ms: i32) -> usize {
        // SAFETY: live buffer with its length.
        let n = unsafe { libc::epoll_wait(self.0, events.as_mut_ptr(), events.len() as i32, ms) };
        n.max(0) as usize
    }
}
fn libc_event() -> libc::epoll_event {
    libc::epoll_event { events: 0, u64: 0 }
}
fn ev_data(e: &libc::epoll_event) -> u64 {
    e.u64
}

/// The bare forwarder: what io_uring costs with no relay logic at all.
/// Multishot `RecvMsgMulti` per socket on a provided buffer ring, `Send`
/// with destination from the receive buffer via the paired socket,
/// SINGLE_ISSUER | DEFER_TASKRUN, registered files; no parsing, no
/// latching, no counters beyond two atomics.
#[allow(unsafe_code)]
fn start_bare(o: &Opts, sink_addr: SocketAddr, base: u16) -> ThreadRelay {
    use io_uring::{IoUring, cqueue, opcode, types};
    let n = o.calls;
    let mut socks = Vec::new();
    for i in 0..2 * n {
        let s = UdpSocket::bind(("127.0.0.1", base + i as u16)).expect("bind bare");
        let _ = mediarelay::engine::set_socket_buffers(s.as_raw_fd(), 1 << 20, 1 << 20);
        socks.push(s);
    }
    let targets = socks[..n].iter().map(|s| s.local_addr().unwrap()).collect();
    ThreadRelay::spawn("bare io_uring forwarder", targets, move |sh| {
        let mut ring: IoUring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(32768)
            .build(4096)
            .expect("ring");
        let fds: Vec<i32> = socks.iter().map(|s| s.as_raw_fd()).collect();
        ring.submitter()
            .register_files(&fds)
            .expect("register files");
        const ENTRIES: u16 = 4096;
        const BSZ: usize = 2048;
        // SAFETY: anonymous mapping, checked below.
        let ringmem = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                usize::from(ENTRIES) * 16,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        assert_ne!(ringmem, libc::MAP_FAILED);
        let ringmem = ringmem.cast::<types::BufRingEntry>();
        let slab = vec![0u8; usize::from(ENTRIES) * BSZ];
        let mut tail: u16 = 0;
        let recycle = |bid: u16, tail: &mut u16| {
            // SAFETY: index < ENTRIES inside the mapping; entries past the
            // kernel's head are ours until the tail is published.
            let e = unsafe { &mut *ringmem.add(usize::from(*tail & (ENTRIES - 1))) };
            e.set_addr(slab[usize::from(bid) * BSZ..].as_ptr() as u64);
            e.set_len(BSZ as u32);
            e.set_bid(bid);
            *tail = tail.wrapping_add(1);
        };
        let publish = |tail: u16| {
            // SAFETY: the tail lives in the first entry of the live mapping.
            let t = unsafe {
                std::sync::atomic::AtomicU16::from_ptr(
                    types::BufRingEntry::tail(ringmem).cast_mut(),
                )
            };
            t.store(tail, Ordering::Release);
        };
        for b in 0..ENTRIES {
            recycle(b, &mut tail);
        }
        publish(tail);
        // SAFETY: ring memory and slab outlive the ring (dropped after it).
        unsafe {
            ring.submitter()
                .register_buf_ring_with_flags(ringmem as u64, ENTRIES, 0, 0)
                .expect("buf ring")
        };
        // SAFETY: plain data.
        let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
        mh.msg_namelen = 28;
        let mut dest = [0u8; 16];
        dest[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        dest[2..4].copy_from_slice(&sink_addr.port().to_be_bytes());
        dest[4..8].copy_from_slice(&[127, 0, 0, 1]);
        let arm = |ring: &mut IoUring, i: usize| {
            let e = opcode::RecvMsgMulti::new(types::Fixed(i as u32), &raw const mh, 0)
                .build()
                .user_data(i as u64);
            // SAFETY: msghdr outlives the request.
            unsafe { ring.submission().push(&e).expect("sq") };
        };
        for i in 0..n {
            arm(&mut ring, i);
        }
        let mut sends: u64 = 0;
        while !sh.stop.load(Ordering::Relaxed) {
            let ts = types::Timespec::from(Duration::from_millis(50));
            let args = types::SubmitArgs::new().timespec(&ts);
            let _ = ring.submitter().submit_with_args(1, &args);
            sh.syscalls.fetch_add(1, Ordering::Relaxed);
            let cqes: Vec<cqueue::Entry> = ring.completion().collect();
            for c in cqes {
                let ud = c.user_data();
                if ud >> 63 == 1 {
                    sends += 1;
                    recycle((ud & 0xffff) as u16, &mut tail);
                    continue;
                }
                let i = ud as usize;
                if !cqueue::more(c.flags()) {
                    arm(&mut ring, i);
                }
                let Some(bid) = cqueue::buffer_select(c.flags()) else {
                    continue;
                };
                if c.result() < 44 {
                    recycle(bid, &mut tail);
                    continue;
                }
                let len = c.result() as u32 - 44;
                let p = slab[usize::from(bid) * BSZ + 44..].as_ptr();
                let e = opcode::Send::new(types::Fixed((i + n) as u32), p, len)
                    .dest_addr(dest.as_ptr().cast())
                    .dest_addr_len(16)
                    .build()
                    .user_data(1 << 63 | u64::from(bid));
                // SAFETY: buffer and address outlive the send.
                while unsafe { ring.submission().push(&e) }.is_err() {
                    let _ = ring.submit();
                    sh.syscalls.fetch_add(1, Ordering::Relaxed);
                }
            }
            publish(tail);
            sh.forwarded.store(sends, Ordering::Relaxed);
        }
        drop(ring);
        drop(slab);
    })
}

/// One measured interval at `rate` pps.
#[derive(Debug, Clone, Default)]
struct Run {
    offered: u64,
    /// Datagrams the generator actually handed to the kernel.
    sent: u64,
    /// Wall time of the send phase (the offered rate is only achieved if
    /// this is close to the intended duration).
    send_secs: f64,
    /// Wall time from the first send to the end of the drain.
    window_secs: f64,
    received: u64,
    forwarded: u64,
    syscalls: u64,
    relay_ns: u64,
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
}

impl Run {
    fn loss(&self) -> f64 {
        if self.sent == 0 {
            return 1.0;
        }
        1.0 - self.received as f64 / self.sent as f64
    }
    fn ns_per_pkt(&self) -> f64 {
        self.relay_ns as f64 / self.forwarded.max(1) as f64
    }
    /// Rate the generator achieved.
    fn achieved(&self) -> f64 {
        self.sent as f64 / self.send_secs.max(1e-9)
    }
    /// Share of one CPU the relay thread(s) used over the window.
    fn relay_util(&self) -> f64 {
        self.relay_ns as f64 / 1e9 / self.window_secs.max(1e-9)
    }
    fn syscalls_per_pkt(&self) -> f64 {
        self.syscalls as f64 / self.forwarded.max(1) as f64
    }
}

/// Offers `rate` pps for `secs` through `relay`; gen and sink on CPU 1.
fn measure(
    relay: &dyn Relay,
    gen_sock: &UdpSocket,
    sink: &UdpSocket,
    calls: usize,
    rate: u64,
    secs: f64,
) -> Run {
    static RUN_ID: AtomicU64 = AtomicU64::new(1);
    let run_id = RUN_ID.fetch_add(1, Ordering::Relaxed) as u32;
    let epoch = Instant::now();
    let stop = AtomicBool::new(false);
    let received = AtomicU64::new(0);
    let (fwd0, sys0) = relay.counters();
    let tids = relay.tids();
    let cpu0: u64 = tids.iter().map(|&t| thread_ns(t)).sum();
    let targets: Vec<SocketAddr> = (0..calls).map(|i| relay.target(i)).collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
    let mut sent = 0u64;
    let mut send_secs = 0.0;
    let mut window_secs = 0.0;
    std::thread::scope(|s| {
        let sink_t = s.spawn(|| {
            pin(1);
            let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
            let mut mm = Mmsg::new(64);
            sink.set_read_timeout(Some(Duration::from_millis(50)))
                .unwrap();
            loop {
                let n = mm.recv(sink.as_raw_fd());
                if n == 0 && stop.load(Ordering::Relaxed) {
                    break;
                }
                let now = epoch.elapsed().as_nanos() as u64;
                let mut ours = 0;
                for k in 0..n {
                    let b = mm.buf(k);
                    // Only this run's packets count: late ones from an
                    // earlier run carry another run id.
                    if b.len() >= 24 && u32::from_be_bytes(b[20..24].try_into().unwrap()) == run_id
                    {
                        let ts = u64::from_be_bytes(b[12..20].try_into().unwrap());
                        let _ = h.record(now.saturating_sub(ts).max(1));
                        ours += 1;
                    }
                }
                received.fetch_add(ours, Ordering::Relaxed);
            }
            h
        });
        // Generator: paced in 1 ms ticks, one sendmmsg per tick.
        pin(1);
        let per_tick = (rate as f64 / 1000.0).max(1.0);
        let total = (rate as f64 * secs) as u64;
        let mut mm = Mmsg::new(1024);
        let mut owed = 0.0f64;
        let mut flow = 0usize;
        let mut seq = vec![0u16; calls];
        let start = Instant::now();
        let mut tick = 0u64;
        while sent < total {
            tick += 1;
            let due = start + Duration::from_micros(tick * 1000);
            let now = Instant::now();
            if now < due {
                std::thread::sleep(due - now);
            }
            owed += per_tick;
            let mut n = owed as usize;
            owed -= n as f64;
            n = n.min((total - sent) as usize);
            while n > 0 {
                let batch = n.min(1024);
                let now = epoch.elapsed().as_nanos() as u64;
                for k in 0..batch {
                    seq[flow] = seq[flow].wrapping_add(1);
                    mm.fill(k, &targets[flow], flow as u32, seq[flow], now, run_id);
                    flow = (flow + 1) % calls;
                }
                sent += mm.send(gen_sock.as_raw_fd(), batch) as u64;
                n -= batch;
            }
        }
        send_secs = start.elapsed().as_secs_f64();
        // A short drain: a relay that cannot keep up has a backlog in its
        // socket buffers that does not clear in 100 ms, and that counts as
        // loss (large socket buffers would otherwise hide overload).
        std::thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        hist = sink_t.join().expect("sink");
        window_secs = start.elapsed().as_secs_f64();
    });
    let (fwd1, sys1) = relay.counters();
    let cpu1: u64 = tids.iter().map(|&t| thread_ns(t)).sum();
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    Run {
        offered: rate,
        sent,
        send_secs,
        window_secs,
        received: received.load(Ordering::Relaxed),
        forwarded: fwd1 - fwd0,
        syscalls: sys1 - sys0,
        relay_ns: cpu1 - cpu0,
        p50_us: q(0.5),
        p99_us: q(0.99),
        p999_us: q(0.999),
    }
}

/// Batched sendmmsg / recvmmsg buffers for the generator and sink.
struct Mmsg {
    bufs: Vec<[u8; 2048]>,
    names: Vec<libc::sockaddr_in>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

#[allow(unsafe_code)]
impl Mmsg {
    fn new(n: usize) -> Self {
        Mmsg {
            bufs: vec![[0u8; 2048]; n],
            // SAFETY: plain data, zero is valid.
            names: vec![unsafe { std::mem::zeroed() }; n],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                n
            ],
            // SAFETY: plain data, zero is valid.
            hdrs: vec![unsafe { std::mem::zeroed() }; n],
        }
    }
    fn fill(&mut self, k: usize, to: &SocketAddr, ssrc: u32, seq: u16, ts_ns: u64, run: u32) {
        let b = &mut self.bufs[k];
        b[0] = 0x80;
        b[1] = 0;
        b[2..4].copy_from_slice(&seq.to_be_bytes());
        b[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        b[8..12].copy_from_slice(&ssrc.to_be_bytes());
        b[12..20].copy_from_slice(&ts_ns.to_be_bytes());
        b[20..24].copy_from_slice(&run.to_be_bytes());
        let SocketAddr::V4(v4) = to else {
            panic!("IPv4 only")
        };
        self.names[k] = libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
    }
    fn send(&mut self, fd: i32, n: usize) -> usize {
        for k in 0..n {
            self.iovs[k] = libc::iovec {
                iov_base: self.bufs[k].as_mut_ptr().cast(),
                iov_len: PKT,
            };
            let h = &mut self.hdrs[k].msg_hdr;
            h.msg_name = (&raw mut self.names[k]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &raw mut self.iovs[k];
            h.msg_iovlen = 1;
        }
        let mut done = 0;
        let mut ok = 0;
        while done < n {
            // SAFETY: headers point at live buffers owned by self.
            let r =
                unsafe { libc::sendmmsg(fd, self.hdrs[done..].as_mut_ptr(), (n - done) as u32, 0) };
            if r <= 0 {
                // ENOBUFS/EAGAIN: this message was not sent; skip it.
                done += 1;
                continue;
            }
            done += r as usize;
            ok += r as usize;
        }
        ok
    }
    fn recv(&mut self, fd: i32) -> usize {
        let n = self.bufs.len();
        for k in 0..n {
            self.iovs[k] = libc::iovec {
                iov_base: self.bufs[k].as_mut_ptr().cast(),
                iov_len: 2048,
            };
            let h = &mut self.hdrs[k].msg_hdr;
            h.msg_name = std::ptr::null_mut();
            h.msg_namelen = 0;
            h.msg_iov = &raw mut self.iovs[k];
            h.msg_iovlen = 1;
        }
        // SAFETY: headers point at live buffers owned by self. MSG_WAITFORONE
        // returns as soon as one datagram is there (the socket's receive
        // timeout bounds the wait).
        let r = unsafe {
            libc::recvmmsg(
                fd,
                self.hdrs.as_mut_ptr(),
                n as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        r.max(0) as usize
    }
    fn buf(&self, k: usize) -> &[u8] {
        &self.bufs[k][..self.hdrs[k].msg_len as usize]
    }
}

struct Report {
    name: String,
    fixed: Run,
    /// Highest achieved rate with loss <= 0.1%.
    max_rate: f64,
    max_run: Run,
    /// What stopped the search: the relay (loss) or the generator.
    limit: &'static str,
}

fn bench(relay: &dyn Relay, gen_sock: &UdpSocket, sink: &UdpSocket, o: &Opts) -> Report {
    // Warm-up: latch every flow.
    let _ = measure(relay, gen_sock, sink, o.calls, 50_000, 0.5);
    let fixed = measure(relay, gen_sock, sink, o.calls, o.rate, o.secs);
    eprintln!(
        "  {} @ {} pps (achieved {:.0}): loss {:.4}%, relay CPU {:.0}% of a core, {:.0} ns/pkt, {:.3} syscalls/pkt, p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
        relay.name(),
        o.rate,
        fixed.achieved(),
        fixed.loss() * 100.0,
        fixed.relay_util() * 100.0,
        fixed.ns_per_pkt(),
        fixed.syscalls_per_pkt(),
        fixed.p50_us,
        fixed.p99_us,
        fixed.p999_us
    );
    let mut max_rate = 0.0;
    let mut max_run = Run::default();
    let mut limit = "relay";
    let mut rate = o.step;
    while rate <= o.max_rate {
        let r = measure(relay, gen_sock, sink, o.calls, rate, o.secs.min(2.0));
        eprintln!(
            "  {} offered {} pps, achieved {:.0}: loss {:.4}%, relay CPU {:.0}%, {:.0} ns/pkt",
            relay.name(),
            rate,
            r.achieved(),
            r.loss() * 100.0,
            r.relay_util() * 100.0,
            r.ns_per_pkt()
        );
        if r.loss() > 0.001 {
            break;
        }
        if r.achieved() < 0.97 * rate as f64 {
            // The generator, not the relay, is the bottleneck.
            limit = "generator";
            max_rate = r.achieved();
            max_run = r;
            break;
        }
        max_rate = r.achieved();
        max_run = r;
        rate += o.step;
    }
    Report {
        name: relay.name(),
        fixed,
        max_rate,
        max_run,
        limit,
    }
}

fn main() {
    let o = opts();
    let gen_sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Big buffers so the sink is not the bottleneck.
    let _ = mediarelay::engine::set_socket_buffers(sink.as_raw_fd(), 32 << 20, 0);
    let _ = mediarelay::engine::set_socket_buffers(gen_sock.as_raw_fd(), 0, 8 << 20);
    let (gen_addr, sink_addr) = (gen_sock.local_addr().unwrap(), sink.local_addr().unwrap());
    let _ = mediarelay::engine::raise_nofile_limit();
    println!(
        "relay benchmark: {} calls ({} streams), {PKT}-byte RTP, fixed rate {} pps for {} s, {} shard(s); relay on CPU 0, generator+sink on CPU 1",
        o.calls,
        2 * o.calls,
        o.rate,
        o.secs,
        o.shards
    );
    let want = |n: &str| o.only.as_deref().is_none_or(|x| x == n);
    let mut reports = Vec::new();
    if want("uring") {
        match uring_support() {
            UringSupport::Available => {
                let r = start_mediarelay(IoBackend::Uring, &o, gen_addr, sink_addr);
                reports.push(bench(&r, &gen_sock, &sink, &o));
            }
            UringSupport::Unavailable(why) => println!("io_uring unavailable: {why}"),
        }
    }
    if want("epoll") {
        let r = start_mediarelay(IoBackend::Epoll, &o, gen_addr, sink_addr);
        reports.push(bench(&r, &gen_sock, &sink, &o));
    }
    if want("bare") {
        match uring_support() {
            UringSupport::Available => {
                let base = 20000 + 2 * ((o.calls as u16) * 4 + 400) + 2 * o.calls as u16;
                let r = start_bare(&o, sink_addr, base);
                reports.push(bench(&r, &gen_sock, &sink, &o));
            }
            UringSupport::Unavailable(why) => {
                println!("io_uring unavailable for the bare forwarder: {why}")
            }
        }
    }
    if want("naive") {
        let r = start_naive(&o, sink_addr);
        reports.push(bench(&r, &gen_sock, &sink, &o));
    }
    println!();
    println!(
        "| relay | CPU ns/pkt @ {r} pps | relay CPU @ {r} pps | syscalls/pkt | p50 us | p99 us | p99.9 us | loss @ {r} pps | max rate, loss <= 0.1% | limited by |",
        r = o.rate
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in &reports {
        println!(
            "| {} | {:.0} | {:.0}% | {:.3} | {:.1} | {:.1} | {:.1} | {:.4}% | {:.0} pps ({:.0} ns/pkt, CPU {:.0}%) | {} |",
            r.name,
            r.fixed.ns_per_pkt(),
            r.fixed.relay_util() * 100.0,
            r.fixed.syscalls_per_pkt(),
            r.fixed.p50_us,
            r.fixed.p99_us,
            r.fixed.p999_us,
            r.fixed.loss() * 100.0,
            r.max_rate,
            r.max_run.ns_per_pkt(),
            r.max_run.relay_util() * 100.0,
            r.limit
        );
    }
    if let Some(bare) = reports.iter().find(|r| r.name.starts_with("bare")) {
        println!();
        for r in reports.iter().filter(|r| r.name.starts_with("mediarelay")) {
            println!(
                "{} / bare forwarder: CPU per packet {:.2}x",
                r.name,
                r.fixed.ns_per_pkt() / bare.fixed.ns_per_pkt()
            );
        }
    }
    if let Some(naive) = reports.iter().find(|r| r.name.starts_with("naive")) {
        println!();
        for r in reports.iter().filter(|r| !r.name.starts_with("naive")) {
            println!(
                "{} / naive: CPU per packet {:.2}x, syscalls per packet {:.2}x, max rate {:.2}x",
                r.name,
                r.fixed.ns_per_pkt() / naive.fixed.ns_per_pkt(),
                r.fixed.syscalls_per_pkt() / naive.fixed.syscalls_per_pkt(),
                r.max_rate / naive.max_rate.max(1.0)
            );
        }
    }
    if let Some(path) = &o.json {
        let rows: Vec<String> = reports
            .iter()
            .map(|r| {
                format!(
                    "{{\"relay\":\"{}\",\"rate\":{},\"ns_per_pkt\":{:.1},\"syscalls_per_pkt\":{:.4},\"p50_us\":{:.2},\"p99_us\":{:.2},\"p999_us\":{:.2},\"loss\":{:.6},\"max_rate\":{:.0},\"limit\":\"{}\"}}",
                    r.name,
                    r.fixed.offered,
                    r.fixed.ns_per_pkt(),
                    r.fixed.syscalls_per_pkt(),
                    r.fixed.p50_us,
                    r.fixed.p99_us,
                    r.fixed.p999_us,
                    r.fixed.loss(),
                    r.max_rate,
                    r.limit
                )
            })
            .collect();
        let _ = std::fs::write(path, format!("[{}]\n", rows.join(",")));
    }
}
