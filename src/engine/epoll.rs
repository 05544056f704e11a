//! epoll backend: level-triggered readiness, `recvmmsg` batches per ready
//! socket, `sendmmsg` batches per sending socket. For hosts where io_uring
//! is off (container seccomp profiles, `kernel.io_uring_disabled`, old
//! kernels) or when asked with `--io-backend epoll`.
//!
//! A batch of up to [`BATCH`] datagrams is read into the backend's own
//! buffers; each forwarded datagram is sent from the same buffer (no copy)
//! before the buffers are reused by the next `recvmmsg`. Consecutive
//! forwards from the same socket go out in one `sendmmsg`.

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendCounters, PacketSink, decode_stream, encode_stream};
use super::sys::{self, RawAddr, SOCKADDR_MAX};
use crate::relay::{StreamKey, Verdict};

/// Datagrams per `recvmmsg` / `sendmmsg`.
pub const BATCH: usize = 32;
/// Bytes per receive buffer; larger datagrams are truncated and dropped.
pub const BUF_SIZE: usize = 2048;
/// `recvmmsg` rounds per ready socket per turn (fairness across sockets).
const ROUNDS_PER_SOCKET: usize = 4;
/// epoll data value of the wake-up eventfd.
const WAKE: u64 = u64::MAX;

/// The epoll backend of one shard.
pub struct EpollBackend {
    epfd: OwnedFd,
    socks: Vec<Option<(StreamKey, UdpSocket)>>,
    events: Vec<libc::epoll_event>,
    bufs: Box<[[u8; BUF_SIZE]]>,
    names: Box<[[u8; SOCKADDR_MAX]]>,
    iovs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
    /// Pending sends of the current batch: (receive slot, via, dest).
    sends: Vec<(usize, StreamKey, RawAddr)>,
    send_iovs: Box<[libc::iovec]>,
    send_msgs: Box<[libc::mmsghdr]>,
    counters: BackendCounters,
}

impl std::fmt::Debug for EpollBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EpollBackend").finish_non_exhaustive()
    }
}

fn zeroed_mmsg() -> libc::mmsghdr {
    // SAFETY: mmsghdr is plain old data (integers and raw pointers); the
    // all-zero value is valid and is filled in before every use.
    unsafe { std::mem::zeroed() }
}

fn empty_iov() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

impl EpollBackend {
    /// An epoll instance watching `wake_fd`.
    pub fn new(wake_fd: RawFd) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just created and is owned by nothing else.
        let epfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let b = EpollBackend {
            epfd,
            socks: Vec::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            bufs: vec![[0u8; BUF_SIZE]; BATCH].into_boxed_slice(),
            names: vec![[0u8; SOCKADDR_MAX]; BATCH].into_boxed_slice(),
            iovs: (0..BATCH).map(|_| empty_iov()).collect(),
            msgs: (0..BATCH).map(|_| zeroed_mmsg()).collect(),
            sends: Vec::with_capacity(BATCH),
            send_iovs: (0..BATCH).map(|_| empty_iov()).collect(),
            send_msgs: (0..BATCH).map(|_| zeroed_mmsg()).collect(),
            counters: BackendCounters::default(),
        };
        b.ctl(libc::EPOLL_CTL_ADD, wake_fd, WAKE)?;
        Ok(b)
    }

    fn ctl(&self, op: i32, fd: RawFd, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: data,
        };
        // SAFETY: passes a live epoll_event to epoll_ctl on owned fds.
        let r = unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &raw mut ev) };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn sock_fd(&self, index: u32, gen24: u32) -> Option<(StreamKey, RawFd)> {
        let (key, s) = self.socks.get(index as usize)?.as_ref()?;
        (key.generation() & 0x00ff_ffff == gen24).then(|| (*key, s.as_raw_fd()))
    }

    /// One `recvmmsg` on `fd`; returns the number of datagrams.
    fn recv_batch(&mut self, fd: RawFd) -> usize {
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: BUF_SIZE,
            };
            let h = &mut self.msgs[i].msg_hdr;
            h.msg_name = self.names[i].as_mut_ptr().cast();
            h.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
            h.msg_iov = &raw mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.msgs[i].msg_len = 0;
        }
        self.counters.syscalls += 1;
        // SAFETY: every mmsghdr points at a live iovec, name buffer and data
        // buffer owned by `self`, with their true lengths; recvmmsg writes
        // only within them.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                self.msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::WouldBlock && e.kind() != io::ErrorKind::Interrupted {
                self.counters.recv_errors += 1;
            }
            return 0;
        }
        n as usize
    }

    /// Sends `self.sends`, one `sendmmsg` per run of the same socket.
    fn flush_sends<S: PacketSink>(&mut self, sink: &mut S) {
        let mut start = 0;
        while start < self.sends.len() {
            let via = self.sends[start].1;
            let mut end = start + 1;
            while end < self.sends.len() && self.sends[end].1 == via {
                end += 1;
            }
            let fd = self
                .socks
                .get(via.index() as usize)
                .and_then(Option::as_ref)
                .filter(|(k, _)| *k == via)
                .map(|(_, s)| s.as_raw_fd());
            if let Some(fd) = fd {
                self.send_run(fd, start, end, sink);
            }
            start = end;
        }
        self.sends.clear();
    }

    fn send_run<S: PacketSink>(&mut self, fd: RawFd, start: usize, end: usize, sink: &mut S) {
        let count = end - start;
        for j in 0..count {
            let (slot, _, ref dest) = self.sends[start + j];
            let len = self.msgs[slot].msg_len as usize;
            self.send_iovs[j] = libc::iovec {
                iov_base: self.bufs[slot].as_mut_ptr().cast(),
                iov_len: len,
            };
            let h = &mut self.send_msgs[j].msg_hdr;
            h.msg_name = dest.as_ptr().cast_mut().cast();
            h.msg_namelen = dest.len();
            h.msg_iov = &raw mut self.send_iovs[j];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        let via = self.sends[start].1;
        let mut done = 0;
        while done < count {
            self.counters.syscalls += 1;
            // SAFETY: entries done..count point at live iovecs, receive
            // buffers and destination addresses owned by `self`.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    self.send_msgs[done..].as_mut_ptr(),
                    (count - done) as u32,
                    libc::MSG_DONTWAIT,
                )
            };
            if n < 0 {
                // The first remaining message failed: count it, skip it.
                let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
                sink.on_send_error(via, errno);
                done += 1;
                continue;
            }
            for j in done..done + n as usize {
                sink.on_sent(via, self.send_iovs[j].iov_len);
            }
            done += n as usize;
        }
    }

    fn service<S: PacketSink>(&mut self, now: Instant, key: StreamKey, fd: RawFd, sink: &mut S) {
        for _ in 0..ROUNDS_PER_SOCKET {
            let n = self.recv_batch(fd);
            for i in 0..n {
                let len = (self.msgs[i].msg_len as usize).min(BUF_SIZE);
                let truncated = self.msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
                let namelen = (self.msgs[i].msg_hdr.msg_namelen as usize).min(SOCKADDR_MAX);
                let Some(src) = sys::parse_sockaddr(&self.names[i][..namelen]) else {
                    self.counters.recv_errors += 1;
                    continue;
                };
                if let Verdict::Forward { via, dest } =
                    sink.on_packet(now, key, src, &self.bufs[i][..len], truncated)
                {
                    self.sends.push((i, via, RawAddr::new(&dest)));
                }
            }
            self.flush_sends(sink);
            if n < BATCH {
                break;
            }
        }
    }
}

impl Backend for EpollBackend {
    fn name(&self) -> &'static str {
        "epoll"
    }

    fn register(&mut self, stream: StreamKey, sock: UdpSocket) -> io::Result<()> {
        sock.set_nonblocking(true)?;
        self.ctl(libc::EPOLL_CTL_ADD, sock.as_raw_fd(), encode_stream(stream))?;
        let i = stream.index() as usize;
        if self.socks.len() <= i {
            self.socks.resize_with(i + 1, || None);
        }
        self.socks[i] = Some((stream, sock));
        Ok(())
    }

    fn deregister(&mut self, stream: StreamKey) {
        let Some(slot) = self.socks.get_mut(stream.index() as usize) else {
            return;
        };
        if slot.as_ref().is_none_or(|(k, _)| *k != stream) {
            return;
        }
        if let Some((_, sock)) = slot.take() {
            // Closing the socket removes it from the epoll set as well; the
            // explicit delete keeps the set exact even if the fd is shared.
            let _ = self.ctl(libc::EPOLL_CTL_DEL, sock.as_raw_fd(), 0);
        }
    }

    fn turn<S: PacketSink>(&mut self, timeout: Option<Duration>, sink: &mut S) -> io::Result<bool> {
        self.counters.turns += 1;
        self.counters.syscalls += 1;
        let ms = match timeout {
            None => -1,
            // Round up so a timer is never woken for early.
            Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
        };
        // SAFETY: the events buffer is live and its length is passed.
        let n = unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        let now = Instant::now();
        let mut woken = false;
        for e in 0..n as usize {
            let data = self.events[e].u64;
            if data == WAKE {
                woken = true;
                continue;
            }
            let (index, gen24) = decode_stream(data);
            let Some((key, fd)) = self.sock_fd(index, gen24) else {
                self.counters.stale += 1;
                continue;
            };
            self.service(now, key, fd, sink);
        }
        Ok(woken)
    }

    fn counters(&self) -> BackendCounters {
        self.counters
    }

    fn in_flight(&self) -> usize {
        0
    }
}
