//! The I/O backend seam: one trait, two implementations (io_uring and
//! epoll + `recvmmsg`/`sendmmsg`), chosen at start by an opcode probe with an
//! override.
//!
//! A backend owns the shard's sockets and buffers. Each loop turn it waits
//! for I/O (bounded by the shard's next timer), hands every received
//! datagram to the shard's [`PacketSink`], performs the sends the sink asks
//! for, and reports send outcomes back. The sink holds all protocol logic;
//! the backend holds none.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use crate::relay::{StreamKey, Verdict};

/// Which I/O backend the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum IoBackend {
    /// io_uring when the probe finds everything needed, else epoll.
    #[default]
    Auto,
    /// io_uring; starting fails when it is unavailable.
    Uring,
    /// epoll with `recvmmsg`/`sendmmsg`.
    Epoll,
}

impl IoBackend {
    /// `auto`, `uring` or `epoll`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IoBackend::Auto => "auto",
            IoBackend::Uring => "uring",
            IoBackend::Epoll => "epoll",
        }
    }
}

impl std::str::FromStr for IoBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(IoBackend::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(IoBackend::Uring),
            "epoll" => Ok(IoBackend::Epoll),
            other => Err(format!(
                "unknown I/O backend {other:?} (expected auto, uring or epoll)"
            )),
        }
    }
}

impl std::fmt::Display for IoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives what a backend reads, and decides what it writes.
pub trait PacketSink {
    /// One datagram received on `stream`'s socket from `src`. `truncated`:
    /// it did not fit the buffer. The returned verdict's `Forward` makes the
    /// backend send the same bytes.
    fn on_packet(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) -> Verdict;
    /// A forwarded packet of `bytes` left `via`'s socket.
    fn on_sent(&mut self, via: StreamKey, bytes: usize);
    /// A send from `via`'s socket failed with `errno` (never fatal).
    fn on_send_error(&mut self, via: StreamKey, errno: i32);
    /// A datagram the sink produces itself (a local media endpoint's), once
    /// the received datagrams of a turn are handled: written into `buf`, a
    /// send buffer the backend owns, and sent from `via`'s socket to `dest`
    /// in the same batch as forwarded packets. Called until it returns
    /// `None` or the backend runs out of send buffers (then again next
    /// turn, which the shard then runs without waiting).
    fn poll_transmit(&mut self, _now: Instant, _buf: &mut [u8]) -> Option<OwnTransmit> {
        None
    }
}

/// A datagram a [`PacketSink`] produced: the first `len` bytes of the
/// buffer it was given, to send from `via`'s socket to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnTransmit {
    /// Stream whose socket sends.
    pub via: StreamKey,
    /// Destination; `None` sends without an address, to the peer a
    /// connected socket was connected to (the kernel then skips the route
    /// lookup of each send).
    pub dest: Option<SocketAddr>,
    /// Bytes written.
    pub len: usize,
}

/// Counters a backend keeps about itself (published by the shard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Syscalls made on the data path (io_uring_enter, epoll_wait,
    /// recvmmsg, sendmmsg...).
    pub syscalls: u64,
    /// Loop turns.
    pub turns: u64,
    /// Receive attempts that found no buffer (io_uring `-ENOBUFS`).
    pub no_buffers: u64,
    /// Receive errors other than no-buffer: error completions, failed
    /// `recvmmsg`, a socket reported readable that yielded nothing.
    pub recv_errors: u64,
    /// Receives deferred by the per-socket error backoff.
    pub recv_backoffs: u64,
    /// Datagrams received on sockets that were already deregistered.
    pub stale: u64,
}

/// A shard's I/O backend.
pub trait Backend {
    /// `uring` or `epoll`.
    fn name(&self) -> &'static str;
    /// Starts receiving on `sock`; its datagrams are reported as `stream`.
    fn register(&mut self, stream: StreamKey, sock: UdpSocket) -> io::Result<()>;
    /// Stops receiving on `stream`'s socket and closes it.
    fn deregister(&mut self, stream: StreamKey);
    /// One loop turn: wait up to `timeout` (None: until I/O or a wake-up),
    /// then process everything ready. Returns whether the wake-up eventfd
    /// fired (the caller then drains it; no read syscall otherwise).
    fn turn<S: PacketSink>(&mut self, timeout: Option<Duration>, sink: &mut S) -> io::Result<bool>;
    /// The earliest instant at which the backend has deferred work of its
    /// own (a backed-off receive to restart); `None` when there is none. The
    /// caller bounds the wait of its next [`turn`](Backend::turn) by it.
    fn poll_timeout(&self) -> Option<Instant>;
    /// The backend's own counters.
    fn counters(&self) -> BackendCounters;
    /// Operations still owned by the kernel (armed receives, sends in
    /// flight); shutdown turns the loop until this reaches zero so that
    /// closed sockets are really released.
    fn in_flight(&self) -> usize;
}

/// The coalescing sleep of a shard that has just handled datagrams
/// (`--batch-wait-us`): up to `budget`, never past the turn's `timeout`
/// (the next timer), on the wake-up eventfd, so that a control command
/// ends it and arriving datagrams do not. A failed sleep just collects
/// early.
pub(crate) fn coalescing_sleep(wake_fd: RawFd, budget: Duration, timeout: Option<Duration>) {
    let nap = timeout.map_or(budget, |t| t.min(budget));
    let _ = super::sys::wait_readable(wake_fd, nap);
}

/// Narrows the calling thread's timer slack so that its coalescing sleeps
/// of a few hundred microseconds end on time.
pub(crate) fn narrow_timer_slack() {
    if let Err(e) = super::sys::set_timer_slack(Duration::from_micros(1)) {
        tracing::debug!("batch-wait: timer slack unchanged: {e}");
    }
}

/// First delay of a failing socket's receive.
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(1);
/// Longest delay of a failing socket's receive.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Per-socket receive backoff: exponential from [`BACKOFF_MIN`] to
/// [`BACKOFF_MAX`] while failures go on, reset by a delivered datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Backoff {
    /// The delay applied at the last failure; zero when healthy.
    delay: Duration,
}

impl Backoff {
    /// Records a failure; returns how long to wait before the next receive.
    pub(crate) fn fail(&mut self) -> Duration {
        self.delay = if self.delay.is_zero() {
            BACKOFF_MIN
        } else {
            (self.delay * 2).min(BACKOFF_MAX)
        };
        self.delay
    }

    /// Records a delivered datagram (no-op when healthy).
    pub(crate) fn reset(&mut self) {
        self.delay = Duration::ZERO;
    }

    /// True after a failure not yet followed by a delivered datagram.
    pub(crate) fn is_backing_off(&self) -> bool {
        !self.delay.is_zero()
    }
}

/// Receives deferred by [`Backoff`], due at an instant. Short (only
/// failing sockets are here); the shard's wait is bounded by
/// [`Deferred::next`].
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    due: Vec<(Instant, StreamKey)>,
}

impl Deferred {
    /// Defers `key`'s receive until `at`.
    pub(crate) fn push(&mut self, at: Instant, key: StreamKey) {
        self.due.push((at, key));
    }

    /// The earliest due instant.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.due.iter().map(|&(at, _)| at).min()
    }

    /// Removes and returns one entry due at `now`, if any.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<StreamKey> {
        let i = self.due.iter().position(|&(at, _)| at <= now)?;
        Some(self.due.swap_remove(i).1)
    }

    /// Whether nothing is deferred.
    pub(crate) fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

/// user_data / epoll data encoding for a stream key: index in the low 32
/// bits, the low 24 bits of the generation above.
pub(crate) fn encode_stream(key: StreamKey) -> u64 {
    u64::from(key.index()) | (u64::from(key.generation() & 0x00ff_ffff) << 32)
}

/// Index and truncated generation from [`encode_stream`].
pub(crate) fn decode_stream(v: u64) -> (u32, u32) {
    ((v & 0xffff_ffff) as u32, ((v >> 32) & 0x00ff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::epoll::EpollBackend;
    use crate::engine::sys::{self, EventFd};
    use crate::engine::uring::{self, UringBackend, UringConfig, UringSupport};
    use crate::relay::{DropReason, Key};
    use std::net::{Ipv4Addr, TcpListener, TcpStream};
    use std::os::fd::{AsRawFd, OwnedFd};

    /// Forwards what arrives on `from` out of `via` to `dest`; drops the
    /// rest. Counts everything.
    #[derive(Debug)]
    struct Sink {
        route: Option<(StreamKey, StreamKey, SocketAddr)>,
        packets: usize,
        sent: usize,
        send_errors: usize,
    }

    impl Sink {
        fn new(route: Option<(StreamKey, StreamKey, SocketAddr)>) -> Self {
            Sink {
                route,
                packets: 0,
                sent: 0,
                send_errors: 0,
            }
        }
    }

    impl PacketSink for Sink {
        fn on_packet(
            &mut self,
            _now: Instant,
            stream: StreamKey,
            _src: SocketAddr,
            _data: &[u8],
            _truncated: bool,
        ) -> Verdict {
            self.packets += 1;
            match self.route {
                Some((from, via, dest)) if from == stream => Verdict::Forward { via, dest },
                _ => Verdict::Drop(DropReason::NoPeer),
            }
        }
        fn on_sent(&mut self, _via: StreamKey, _bytes: usize) {
            self.sent += 1;
        }
        fn on_send_error(&mut self, _via: StreamKey, _errno: i32) {
            self.send_errors += 1;
        }
    }

    fn uring_ok() -> bool {
        match uring::probe() {
            UringSupport::Available => true,
            UringSupport::Unavailable(why) => {
                eprintln!("SKIP io_uring: {why}");
                false
            }
        }
    }

    fn uring_backend(wake: &EventFd, buffers: u16) -> UringBackend {
        let cfg = UringConfig {
            sq_entries: 64,
            buffers,
            buf_size: 2048,
            max_sockets: 64,
            ..UringConfig::default()
        };
        UringBackend::new(cfg, wake.raw()).unwrap()
    }

    fn udp() -> UdpSocket {
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap()
    }

    /// One shard-like turn: bounded by the backend's own deadline and by
    /// `end`, as `shard::run` bounds it by the relay's timers.
    fn turn_until<B: Backend>(b: &mut B, sink: &mut Sink, end: Instant) {
        let now = Instant::now();
        let until = b.poll_timeout().map_or(end, |d| d.min(end));
        b.turn(Some(until.saturating_duration_since(now)), sink)
            .unwrap();
    }

    /// Turns until `done` or 2 s; returns whether `done` held.
    fn turn_while<B: Backend>(
        b: &mut B,
        sink: &mut Sink,
        mut done: impl FnMut(&B, &Sink) -> bool,
    ) -> bool {
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end {
            if done(b, sink) {
                return true;
            }
            turn_until(
                b,
                sink,
                (Instant::now() + Duration::from_millis(20)).min(end),
            );
        }
        done(b, sink)
    }

    /// A UDP socket after `shutdown(SHUT_RD)`. For an unconnected UDP
    /// socket the call fails with `ENOTCONN` yet marks the socket shut: it
    /// then polls readable (`EPOLLIN | EPOLLRDHUP`) for ever while a
    /// non-blocking receive finds nothing (`EAGAIN`); datagrams sent to it
    /// are still queued and delivered.
    fn shut_rd_socket() -> UdpSocket {
        let s = udp();
        // SAFETY: shutdown takes no pointers; `s` owns a live socket.
        let r = unsafe { libc::shutdown(s.as_raw_fd(), libc::SHUT_RD) };
        let err = std::io::Error::last_os_error();
        assert!(
            r == 0 || err.raw_os_error() == Some(libc::ENOTCONN),
            "{err}"
        );
        s
    }

    /// A listening TCP socket with a connection waiting, posing as a UDP
    /// socket: readable for ever, and every receive fails at once with
    /// `ENOTCONN` (an io_uring multishot receive completes with it, without
    /// `IORING_CQE_F_MORE`, as soon as it is armed).
    fn failing_socket() -> (UdpSocket, TcpStream) {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        (UdpSocket::from(OwnedFd::from(l)), c)
    }

    /// Sockets that fail on every receive do not spin the backend: in
    /// 300 ms it turns and calls the kernel only as often as the backoff
    /// schedule allows (1, 2, 4 ... ms: about 9 retries per socket), uses
    /// little CPU, counts the failures, and the healthy sockets beside
    /// them keep relaying.
    fn failing_sockets_back_off<B: Backend>(mut b: B) {
        let (ra, rb, dest) = (udp(), udp(), udp());
        dest.set_nonblocking(true).unwrap();
        let client = udp();
        let (ka, kb) = (Key::from_parts(0, 1), Key::from_parts(1, 1));
        let (kshut, kfail) = (Key::from_parts(2, 1), Key::from_parts(3, 1));
        let a_addr = ra.local_addr().unwrap();
        b.register(ka, ra).unwrap();
        b.register(kb, rb).unwrap();
        b.register(kshut, shut_rd_socket()).unwrap();
        let (failing, _conn) = failing_socket();
        b.register(kfail, failing).unwrap();
        let mut sink = Sink::new(Some((ka, kb, dest.local_addr().unwrap())));
        b.turn(Some(Duration::ZERO), &mut sink).unwrap();

        let before = b.counters();
        let cpu = sys::thread_cpu_time();
        let start = Instant::now();
        let end = start + Duration::from_millis(300);
        while Instant::now() < end {
            turn_until(&mut b, &mut sink, end);
        }
        let wall = start.elapsed();
        let cpu = sys::thread_cpu_time() - cpu;
        let after = b.counters();
        let turns = after.turns - before.turns;
        let syscalls = after.syscalls - before.syscalls;
        eprintln!(
            "{}: {turns} turns, {syscalls} syscalls, {} recv errors, {} backoffs, cpu {cpu:?} in {wall:?}",
            b.name(),
            after.recv_errors - before.recv_errors,
            after.recv_backoffs - before.recv_backoffs,
        );
        assert!(turns < 50, "{} turned {turns} times in {wall:?}", b.name());
        assert!(syscalls < 100, "{} made {syscalls} syscalls", b.name());
        assert!(after.recv_errors - before.recv_errors >= 3);
        assert!(after.recv_backoffs - before.recv_backoffs >= 3);
        assert_eq!(sink.packets, 0);

        // The healthy pair relays meanwhile.
        for i in 0..10u8 {
            client.send_to(&[i; 40], a_addr).unwrap();
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        assert!(turn_while(&mut b, &mut sink, |_, _| {
            while let Ok((n, _)) = dest.recv_from(&mut buf) {
                got.push(buf[..n].to_vec());
            }
            got.len() == 10
        }));
        assert_eq!(got, (0..10u8).map(|i| vec![i; 40]).collect::<Vec<_>>());
        assert_eq!((sink.packets, sink.sent, sink.send_errors), (10, 10, 0));
    }

    #[test]
    fn failing_sockets_back_off_epoll() {
        let wake = EventFd::new().unwrap();
        failing_sockets_back_off(EpollBackend::new(wake.raw()).unwrap());
    }

    #[test]
    fn failing_sockets_back_off_uring() {
        if !uring_ok() {
            return;
        }
        let wake = EventFd::new().unwrap();
        failing_sockets_back_off(uring_backend(&wake, 256));
    }

    /// A socket that failed and was backed off delivers again once its
    /// delay is over, and its next delay starts from the minimum.
    fn backed_off_socket_recovers<B: Backend>(mut b: B) {
        // Datagrams sent to a socket shut for reading are still delivered.
        let s = shut_rd_socket();
        let addr = s.local_addr().unwrap();
        let k = Key::from_parts(0, 1);
        b.register(k, s).unwrap();
        let mut sink = Sink::new(None);
        let end = Instant::now() + Duration::from_millis(50);
        while Instant::now() < end {
            turn_until(&mut b, &mut sink, end);
        }
        let client = udp();
        client.send_to(b"late", addr).unwrap();
        assert!(turn_while(&mut b, &mut sink, |_, s| s.packets == 1));
    }

    #[test]
    fn backed_off_socket_recovers_epoll() {
        let wake = EventFd::new().unwrap();
        backed_off_socket_recovers(EpollBackend::new(wake.raw()).unwrap());
    }

    #[test]
    fn backed_off_socket_recovers_uring() {
        if !uring_ok() {
            return;
        }
        let wake = EventFd::new().unwrap();
        backed_off_socket_recovers(uring_backend(&wake, 256));
    }

    /// After deregistration, turning until `in_flight` is zero leaves the
    /// sockets closed: their ports can be bound again at once.
    fn deregistered_sockets_are_released<B: Backend>(mut b: B, armed: bool) {
        let socks: Vec<UdpSocket> = (0..4).map(|_| udp()).collect();
        let addrs: Vec<SocketAddr> = socks.iter().map(|s| s.local_addr().unwrap()).collect();
        let keys: Vec<StreamKey> = (0..4).map(|i| Key::from_parts(i, 1)).collect();
        for (k, s) in keys.iter().zip(socks) {
            b.register(*k, s).unwrap();
        }
        let mut sink = Sink::new(None);
        b.turn(Some(Duration::ZERO), &mut sink).unwrap();
        // Every multishot receive is counted while armed.
        assert_eq!(b.in_flight(), if armed { 4 } else { 0 });
        for k in &keys {
            b.deregister(*k);
        }
        // Cancelled, not yet ended: the kernel still holds the sockets.
        assert_eq!(b.in_flight(), if armed { 4 } else { 0 });
        let mut turns = 0;
        while b.in_flight() > 0 && turns < 20 {
            b.turn(Some(Duration::from_millis(50)), &mut sink).unwrap();
            turns += 1;
        }
        assert_eq!(b.in_flight(), 0, "{} turns", turns);
        for a in addrs {
            UdpSocket::bind(a).unwrap_or_else(|e| panic!("{a} still bound: {e}"));
        }
    }

    #[test]
    fn deregistered_sockets_are_released_epoll() {
        let wake = EventFd::new().unwrap();
        deregistered_sockets_are_released(EpollBackend::new(wake.raw()).unwrap(), false);
    }

    #[test]
    fn deregistered_sockets_are_released_uring() {
        if !uring_ok() {
            return;
        }
        let wake = EventFd::new().unwrap();
        deregistered_sockets_are_released(uring_backend(&wake, 256), true);
    }

    /// Bursts larger than a receive batch (and, for io_uring, than a
    /// completion batch) arrive intact, each datagram once, and every
    /// buffer comes back.
    fn bursts_relay_intact<B: Backend>(mut b: B) {
        let (ra, rb, dest) = (udp(), udp(), udp());
        dest.set_nonblocking(true).unwrap();
        sys::set_socket_buffers(dest.as_raw_fd(), 4 << 20, 0).unwrap();
        let client = udp();
        let (ka, kb) = (Key::from_parts(0, 1), Key::from_parts(1, 1));
        let a_addr = ra.local_addr().unwrap();
        sys::set_socket_buffers(ra.as_raw_fd(), 4 << 20, 0).unwrap();
        b.register(ka, ra).unwrap();
        b.register(kb, rb).unwrap();
        let mut sink = Sink::new(Some((ka, kb, dest.local_addr().unwrap())));
        let mut seen = vec![0u8; 2000];
        let mut buf = [0u8; 128];
        for burst in 0..5u32 {
            for i in burst * 400..(burst + 1) * 400 {
                let mut pkt = [0u8; 100];
                pkt[..4].copy_from_slice(&i.to_be_bytes());
                pkt[4..].fill(i as u8);
                client.send_to(&pkt, a_addr).unwrap();
            }
            let want = (burst as usize + 1) * 400;
            let mut got = burst as usize * 400;
            assert!(
                turn_while(&mut b, &mut sink, |_, _| {
                    while let Ok((n, _)) = dest.recv_from(&mut buf) {
                        assert_eq!(n, 100);
                        let i = u32::from_be_bytes(buf[..4].try_into().unwrap());
                        assert!(buf[4..n].iter().all(|&x| x == i as u8));
                        seen[i as usize] += 1;
                        got += 1;
                    }
                    got == want
                }),
                "burst {burst}: {got} of {want}"
            );
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!((sink.packets, sink.sent), (2000, 2000));
        // Only the two receives remain in flight: every send completed.
        assert!(b.in_flight() <= 2);
        assert_eq!(b.counters().recv_errors, 0);
        assert_eq!(b.counters().recv_backoffs, 0);
    }

    #[test]
    fn bursts_relay_intact_epoll() {
        let wake = EventFd::new().unwrap();
        bursts_relay_intact(EpollBackend::new(wake.raw()).unwrap());
    }

    #[test]
    fn bursts_relay_intact_uring() {
        if !uring_ok() {
            return;
        }
        let wake = EventFd::new().unwrap();
        bursts_relay_intact(uring_backend(&wake, 1024));
    }

    /// io_uring: a receive that ran out of buffers (`-ENOBUFS`) is re-armed
    /// once buffers are back, without backoff, and nothing is lost.
    #[test]
    fn ring_running_dry_is_not_backed_off() {
        if !uring_ok() {
            return;
        }
        let wake = EventFd::new().unwrap();
        let mut b = uring_backend(&wake, 2);
        let s = udp();
        let addr = s.local_addr().unwrap();
        b.register(Key::from_parts(0, 1), s).unwrap();
        let mut sink = Sink::new(None);
        b.turn(Some(Duration::ZERO), &mut sink).unwrap();
        let client = udp();
        for _ in 0..40 {
            client.send_to(&[0x80; 20], addr).unwrap();
        }
        assert!(turn_while(&mut b, &mut sink, |_, s| s.packets == 40));
        let c = b.counters();
        assert!(c.no_buffers > 0);
        assert_eq!((c.recv_errors, c.recv_backoffs), (0, 0));
        assert_eq!(b.in_flight(), 1);
    }

    #[test]
    fn stream_encoding_round_trips() {
        let k = Key::from_parts(123_456, 0x0abc_def1);
        assert_eq!(decode_stream(encode_stream(k)), (123_456, 0x00bc_def1));
        assert_eq!("epoll".parse::<IoBackend>(), Ok(IoBackend::Epoll));
        assert!("kqueue".parse::<IoBackend>().is_err());
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..12).map(|_| b.fail()).collect();
        assert_eq!(delays[0], BACKOFF_MIN);
        assert_eq!(delays[1], BACKOFF_MIN * 2);
        assert_eq!(delays[5], BACKOFF_MIN * 32);
        assert_eq!(delays[11], BACKOFF_MAX);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        b.reset();
        assert_eq!(b.fail(), BACKOFF_MIN);
    }

    #[test]
    fn deferred_pops_only_due_entries() {
        let t = Instant::now();
        let mut d = Deferred::default();
        assert_eq!(d.next(), None);
        d.push(t + Duration::from_millis(5), Key::from_parts(1, 1));
        d.push(t + Duration::from_millis(2), Key::from_parts(2, 1));
        assert_eq!(d.next(), Some(t + Duration::from_millis(2)));
        assert_eq!(d.pop_due(t), None);
        assert_eq!(
            d.pop_due(t + Duration::from_millis(3)),
            Some(Key::from_parts(2, 1))
        );
        assert_eq!(d.pop_due(t + Duration::from_millis(3)), None);
        assert_eq!(
            d.pop_due(t + Duration::from_millis(5)),
            Some(Key::from_parts(1, 1))
        );
        assert!(d.is_empty());
    }
}
