//! epoll backend: level-triggered readiness, `recvmmsg` batches per ready
//! socket, `sendmmsg` batches per sending socket. For hosts where io_uring
//! is off (container seccomp profiles, `kernel.io_uring_disabled`, old
//! kernels) or when asked with `--io-backend epoll`.
//!
//! A batch of up to [`BATCH`] datagrams is read into the backend's own
//! buffers; each forwarded datagram is sent from the same buffer (no copy)
//! before the buffers are reused by the next `recvmmsg`. Consecutive
//! forwards from the same socket go out in one `sendmmsg`.
//!
//! A socket reported readable whose first `recvmmsg` of the turn fails, or
//! finds nothing while it reports a hang-up or an error (a UDP socket after
//! `shutdown(SHUT_RD)` stays readable, with `EPOLLRDHUP`, for ever while
//! `recvmmsg` returns `EAGAIN`), is counted and taken out of the epoll set
//! (`EPOLL_CTL_DEL`: `EPOLLHUP` and `EPOLLERR` cannot be masked by
//! `EPOLL_CTL_MOD`) for its backoff delay, then added back. Level
//! triggering would otherwise report it on every turn and spin the shard.
//! A plain `EAGAIN` (the datagram that made it readable was dropped, e.g.
//! for a bad checksum) is not reported again and costs no backoff, so a
//! third party spraying such datagrams cannot delay the real stream.

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::backend::{
    Backend, BackendCounters, Backoff, Deferred, PacketSink, coalescing_sleep, decode_stream,
    encode_stream, narrow_timer_slack,
};
use super::sys::{self, RawAddr, SOCKADDR_MAX};
use crate::relay::{StreamKey, Verdict};

/// Datagrams per `recvmmsg` / `sendmmsg`.
pub const BATCH: usize = 32;
/// Bytes per receive buffer; larger datagrams are truncated and dropped.
pub const BUF_SIZE: usize = 2048;
/// `recvmmsg` rounds per ready socket per turn (fairness across sockets).
const ROUNDS_PER_SOCKET: usize = 4;
/// Batches of own datagrams sent per turn at most.
const TRANSMIT_BATCHES: usize = 16;
/// epoll data value of the wake-up eventfd.
const WAKE: u64 = u64::MAX;

struct Sock {
    key: StreamKey,
    sock: UdpSocket,
    backoff: Backoff,
    /// Out of the epoll set until its deferred receive is due.
    parked: bool,
}

/// Outcome of one `recvmmsg`.
enum Batch {
    /// This many datagrams (at least one).
    Got(usize),
    /// Nothing queued (`EAGAIN`).
    Empty,
    /// Interrupted; try again next turn.
    Interrupted,
    /// Failed with an error.
    Failed,
}

/// The epoll backend of one shard.
pub struct EpollBackend {
    epfd: OwnedFd,
    socks: Vec<Option<Sock>>,
    events: Vec<libc::epoll_event>,
    bufs: Box<[[u8; BUF_SIZE]]>,
    names: Box<[[u8; SOCKADDR_MAX]]>,
    iovs: Box<[libc::iovec]>,
    msgs: Box<[libc::mmsghdr]>,
    /// Pending sends of the current batch: (slot, via, dest). A slot below
    /// [`BATCH`] is a receive buffer (a forwarded datagram), from [`BATCH`]
    /// on a send buffer (`slot - BATCH`) the sink wrote its own datagram
    /// into.
    sends: Vec<(usize, StreamKey, RawAddr)>,
    /// Send buffers for datagrams the sink produces (local endpoints).
    own_bufs: Box<[[u8; BUF_SIZE]]>,
    /// Length of each send buffer's datagram.
    own_lens: [usize; BATCH],
    /// `epoll_pwait2` (nanosecond timeouts, Linux 5.11+) works here; else
    /// `epoll_wait` with the timeout rounded up to a millisecond.
    pwait2: bool,
    send_iovs: Box<[libc::iovec]>,
    send_msgs: Box<[libc::mmsghdr]>,
    /// Parked sockets, re-added to the epoll set when due.
    deferred: Deferred,
    counters: BackendCounters,
    /// Coalesced wake-ups (`--batch-wait-us`): after a turn that handled
    /// datagrams, the next turn first sleeps this long on the wake-up
    /// eventfd (a control command ends the sleep, datagrams do not), then
    /// drains every ready socket at once.
    batch_wait: Duration,
    /// The last turn handled datagrams and left none behind (a full event
    /// buffer, or a socket read up to its per-turn cap: the next turn then
    /// takes the rest without sleeping).
    busy: bool,
    /// The wake-up eventfd (also in the epoll set).
    wake_fd: RawFd,
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
    /// Sets the coalescing budget (see the `batch_wait` field; zero: off).
    /// Call on the thread that turns the backend: it also narrows that
    /// thread's timer slack so the sleeps end on time.
    pub fn set_batch_wait(&mut self, budget: Duration) {
        self.batch_wait = budget;
        if !budget.is_zero() {
            narrow_timer_slack();
        }
    }

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
            sends: Vec::with_capacity(2 * BATCH),
            own_bufs: vec![[0u8; BUF_SIZE]; BATCH].into_boxed_slice(),
            own_lens: [0; BATCH],
            pwait2: true,
            send_iovs: (0..BATCH).map(|_| empty_iov()).collect(),
            send_msgs: (0..BATCH).map(|_| zeroed_mmsg()).collect(),
            deferred: Deferred::default(),
            batch_wait: Duration::ZERO,
            busy: false,
            wake_fd,
            counters: BackendCounters::default(),
        };
        b.ctl(libc::EPOLL_CTL_ADD, wake_fd, WAKE)?;
        Ok(b)
    }

    fn ctl(&self, op: i32, fd: RawFd, data: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
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
        let s = self.socks.get(index as usize)?.as_ref()?;
        (s.key.generation() & 0x00ff_ffff == gen24).then(|| (s.key, s.sock.as_raw_fd()))
    }

    fn sock_mut(&mut self, key: StreamKey) -> Option<&mut Sock> {
        self.socks
            .get_mut(key.index() as usize)?
            .as_mut()
            .filter(|s| s.key == key)
    }

    /// One `recvmmsg` on `fd`.
    fn recv_batch(&mut self, fd: RawFd) -> Batch {
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
        if n > 0 {
            return Batch::Got(n as usize);
        }
        if n == 0 {
            return Batch::Empty;
        }
        match io::Error::last_os_error().kind() {
            io::ErrorKind::WouldBlock => Batch::Empty,
            io::ErrorKind::Interrupted => Batch::Interrupted,
            _ => Batch::Failed,
        }
    }

    /// Sends `self.sends`, one `sendmmsg` per run of the same socket.
    fn flush_sends<S: PacketSink>(&mut self, sink: &mut S) {
        let mut start = 0;
        while start < self.sends.len() {
            let via = self.sends[start].1;
            let mut end = start + 1;
            while end < self.sends.len() && self.sends[end].1 == via && end - start < BATCH {
                end += 1;
            }
            let fd = self
                .socks
                .get(via.index() as usize)
                .and_then(Option::as_ref)
                .filter(|s| s.key == via)
                .map(|s| s.sock.as_raw_fd());
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
            let (base, len) = if slot < BATCH {
                (
                    self.bufs[slot].as_mut_ptr(),
                    self.msgs[slot].msg_len as usize,
                )
            } else {
                let own = slot - BATCH;
                (self.own_bufs[own].as_mut_ptr(), self.own_lens[own])
            };
            self.send_iovs[j] = libc::iovec {
                iov_base: base.cast(),
                iov_len: len,
            };
            let h = &mut self.send_msgs[j].msg_hdr;
            // No address (a connected socket's own send): a null name.
            h.msg_name = if dest.len() == 0 {
                std::ptr::null_mut()
            } else {
                dest.as_ptr().cast_mut().cast()
            };
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
            // SAFETY: entries done..count point at live iovecs, receive or
            // send buffers and destination addresses owned by `self`.
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

    /// Reads and dispatches what `key`'s socket has; `events` is what epoll
    /// reported for it. Returns whether it stopped at its per-turn cap with
    /// datagrams possibly still queued.
    fn service<S: PacketSink>(
        &mut self,
        now: Instant,
        key: StreamKey,
        fd: RawFd,
        events: u32,
        sink: &mut S,
    ) -> bool {
        let hung_up = events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0;
        for round in 0..ROUNDS_PER_SOCKET {
            let n = match self.recv_batch(fd) {
                Batch::Got(n) => n,
                Batch::Interrupted => return false,
                // Later rounds drain what the first left; finding the queue
                // empty there is the normal end.
                Batch::Empty if round > 0 || !hung_up => return false,
                Batch::Failed if round > 0 => {
                    self.counters.recv_errors += 1;
                    return false;
                }
                // Reported readable and hung up or in error, yet nothing to
                // read, or a receive error: a level-triggered socket in this
                // state is reported on every turn, so it waits out a backoff
                // before the next try.
                Batch::Empty | Batch::Failed => {
                    self.counters.recv_errors += 1;
                    self.park(now, key, fd);
                    return false;
                }
            };
            if round == 0 {
                if let Some(s) = self.sock_mut(key) {
                    s.backoff.reset();
                }
            }
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
                return false;
            }
        }
        true
    }

    /// Sends what the sink produces itself, a batch of send buffers at a
    /// time, at most [`TRANSMIT_BATCHES`] batches per turn (the rest goes
    /// next turn, which the shard runs without waiting).
    fn transmit<S: PacketSink>(&mut self, now: Instant, sink: &mut S) {
        for _ in 0..TRANSMIT_BATCHES {
            let mut n = 0;
            while n < BATCH {
                let Some(t) = sink.poll_transmit(now, &mut self.own_bufs[n]) else {
                    break;
                };
                self.own_lens[n] = t.len.min(BUF_SIZE);
                let dest = t.dest.as_ref().map_or(RawAddr::empty(), RawAddr::new);
                self.sends.push((BATCH + n, t.via, dest));
                n += 1;
            }
            if n == 0 {
                return;
            }
            self.flush_sends(sink);
            if n < BATCH {
                return;
            }
        }
    }

    /// Waits for events up to `timeout`; returns how many (negative: error).
    fn wait(&mut self, timeout: Option<Duration>) -> i32 {
        if self.pwait2 {
            let ts = timeout.map(|t| libc::timespec {
                tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: the events buffer is live and its length is passed;
            // `tsp` is null or points at `ts`, alive for the call.
            let n = unsafe {
                libc::epoll_pwait2(
                    self.epfd.as_raw_fd(),
                    self.events.as_mut_ptr(),
                    self.events.len() as i32,
                    tsp,
                    std::ptr::null(),
                )
            };
            if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ENOSYS) {
                return n;
            }
            self.pwait2 = false;
        }
        let ms = match timeout {
            None => -1,
            // Round up so a timer is never woken for early.
            Some(t) => i32::try_from(t.as_micros().div_ceil(1000)).unwrap_or(i32::MAX),
        };
        // SAFETY: the events buffer is live and its length is passed.
        unsafe {
            libc::epoll_wait(
                self.epfd.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                ms,
            )
        }
    }

    /// Takes `key`'s socket out of the epoll set for its next backoff delay.
    fn park(&mut self, now: Instant, key: StreamKey, fd: RawFd) {
        let Some(s) = self.sock_mut(key) else {
            return;
        };
        let delay = s.backoff.fail();
        s.parked = true;
        // A failed delete (it cannot fail for a registered fd) leaves the
        // socket in the set: it is then just retried when reported.
        let _ = self.ctl(libc::EPOLL_CTL_DEL, fd, 0);
        self.deferred.push(now + delay, key);
        self.counters.recv_backoffs += 1;
    }

    /// Puts parked sockets whose delay is over back into the epoll set.
    fn unpark_due(&mut self, now: Instant) {
        while let Some(key) = self.deferred.pop_due(now) {
            let Some(s) = self.sock_mut(key) else {
                // Deregistered meanwhile.
                continue;
            };
            s.parked = false;
            let fd = s.sock.as_raw_fd();
            if self
                .ctl(libc::EPOLL_CTL_ADD, fd, encode_stream(key))
                .is_err()
            {
                // Not expected for a live socket; try again after a backoff.
                self.counters.recv_errors += 1;
                self.park(now, key, fd);
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
        self.socks[i] = Some(Sock {
            key: stream,
            sock,
            backoff: Backoff::default(),
            parked: false,
        });
        Ok(())
    }

    fn deregister(&mut self, stream: StreamKey) {
        let Some(slot) = self.socks.get_mut(stream.index() as usize) else {
            return;
        };
        if slot.as_ref().is_none_or(|s| s.key != stream) {
            return;
        }
        if let Some(s) = slot.take() {
            // Closing the socket removes it from the epoll set as well; the
            // explicit delete keeps the set exact even if the fd is shared.
            // A parked socket is not in the set, and its deferred entry
            // finds no socket when due.
            if !s.parked {
                let _ = self.ctl(libc::EPOLL_CTL_DEL, s.sock.as_raw_fd(), 0);
            }
        }
    }

    fn turn<S: PacketSink>(&mut self, timeout: Option<Duration>, sink: &mut S) -> io::Result<bool> {
        self.counters.turns += 1;
        let mut timeout = timeout;
        if self.busy && !self.batch_wait.is_zero() {
            // Coalescing: datagrams are flowing, so sleep the budget (never
            // past the next timer) on the wake-up eventfd only, then take
            // the whole ready set at once. A control command's wake-up
            // ends the sleep; a failed sleep just drains early.
            self.counters.syscalls += 1;
            coalescing_sleep(self.wake_fd, self.batch_wait, timeout);
            timeout = Some(Duration::ZERO);
        }
        self.counters.syscalls += 1;
        let n = self.wait(timeout);
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
        self.busy = false;
        let mut backlog = n as usize == self.events.len();
        for e in 0..n as usize {
            let (data, events) = (self.events[e].u64, self.events[e].events);
            if data == WAKE {
                woken = true;
                continue;
            }
            self.busy = true;
            let (index, gen24) = decode_stream(data);
            let Some((key, fd)) = self.sock_fd(index, gen24) else {
                self.counters.stale += 1;
                continue;
            };
            backlog |= self.service(now, key, fd, events, sink);
        }
        if backlog {
            self.busy = false;
        }
        if !self.deferred.is_empty() {
            self.unpark_due(now);
        }
        self.transmit(Instant::now(), sink);
        Ok(woken)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deferred.next()
    }

    fn counters(&self) -> BackendCounters {
        self.counters
    }

    fn in_flight(&self) -> usize {
        0
    }
}
