//! Thin, safe wrappers over the Linux calls the engine needs beyond `std`:
//! raw socket addresses, eventfd, epoll, socket options and thread CPU time.
//!
//! Every `unsafe` block here passes valid pointers with correct lengths to a
//! syscall and checks its return value; nothing else in the engine calls
//! `libc` for these.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Size of `sockaddr_in6`, the largest address the engine handles.
pub const SOCKADDR_MAX: usize = 28;

/// A socket address in kernel layout (`sockaddr_in` or `sockaddr_in6`),
/// built without pointer casts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct RawAddr {
    bytes: [u8; SOCKADDR_MAX],
    len: u32,
}

impl RawAddr {
    /// An empty (zero-length) address.
    pub const fn empty() -> Self {
        RawAddr {
            bytes: [0; SOCKADDR_MAX],
            len: 0,
        }
    }

    /// Encodes `addr` (`sockaddr_in` for IPv4, `sockaddr_in6` for IPv6).
    pub fn new(addr: &SocketAddr) -> Self {
        let mut r = RawAddr::empty();
        r.set(addr);
        r
    }

    /// Re-encodes in place (no allocation; used per packet).
    pub fn set(&mut self, addr: &SocketAddr) {
        match addr {
            SocketAddr::V4(a) => {
                self.bytes[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
                self.bytes[2..4].copy_from_slice(&a.port().to_be_bytes());
                self.bytes[4..8].copy_from_slice(&a.ip().octets());
                self.bytes[8..16].fill(0);
                self.len = 16;
            }
            SocketAddr::V6(a) => {
                self.bytes[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
                self.bytes[2..4].copy_from_slice(&a.port().to_be_bytes());
                self.bytes[4..8].copy_from_slice(&a.flowinfo().to_be_bytes());
                self.bytes[8..24].copy_from_slice(&a.ip().octets());
                self.bytes[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
                self.len = 28;
            }
        }
    }

    /// Pointer for the kernel.
    pub fn as_ptr(&self) -> *const libc::sockaddr {
        self.bytes.as_ptr().cast()
    }

    /// Length for the kernel.
    pub fn len(&self) -> libc::socklen_t {
        self.len
    }
}

/// Decodes a kernel socket address (`sockaddr_in` / `sockaddr_in6`).
pub fn parse_sockaddr(b: &[u8]) -> Option<SocketAddr> {
    let family = u16::from_ne_bytes([*b.first()?, *b.get(1)?]);
    let port = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    if i32::from(family) == libc::AF_INET {
        let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
        return Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)));
    }
    if i32::from(family) == libc::AF_INET6 {
        let flow = u32::from_be_bytes(b.get(4..8)?.try_into().ok()?);
        let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
        let scope = u32::from_ne_bytes(b.get(24..28)?.try_into().ok()?);
        return Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            flow,
            scope,
        )));
    }
    None
}

/// An eventfd used to wake a shard from another thread.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

impl EventFd {
    /// A non-blocking, close-on-exec eventfd.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a freshly created descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(EventFd { fd })
    }

    /// Adds one to the counter (wakes a waiter).
    pub fn notify(&self) -> io::Result<()> {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to an owned eventfd.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), (&raw const one).cast(), 8) };
        if n == 8 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        // EAGAIN: counter saturated, the waiter is already due to wake.
        if err.kind() == io::ErrorKind::WouldBlock {
            return Ok(());
        }
        Err(err)
    }

    /// Resets the counter; returns whether it was non-zero.
    pub fn drain(&self) -> bool {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from an owned eventfd.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), (&raw mut v).cast(), 8) };
        n == 8 && v > 0
    }

    /// Descriptor for registration with a ring or epoll.
    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Sleeps up to `timeout` unless `fd` is, or becomes, readable (`ppoll`,
/// nanosecond timeout); returns whether it is readable. The coalescing
/// wait of the shards sleeps on their wake-up eventfd this way: datagrams
/// arriving meanwhile do not end the sleep (they queue on their sockets, and
/// with io_uring's deferred task running their completions wait for the
/// next `io_uring_enter`), a control command's wake-up does.
pub fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one live pollfd and a live timespec, both locals that outlive
    // the call; no signal mask.
    let n = unsafe { libc::ppoll(&raw mut pfd, 1, &raw const ts, std::ptr::null()) };
    match n {
        0 => Ok(false),
        n if n > 0 => Ok(pfd.revents & libc::POLLIN != 0),
        _ => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// Sets the calling thread's timer slack (how late the kernel may end its
/// timed sleeps, 50 µs by default) to `slack`, so that a coalescing wait of
/// a few hundred microseconds ends close to its deadline.
pub fn set_timer_slack(slack: Duration) -> io::Result<()> {
    let ns = libc::c_ulong::try_from(slack.as_nanos())
        .unwrap_or(libc::c_ulong::MAX)
        .max(1);
    // SAFETY: PR_SET_TIMERSLACK takes an integer and no pointers.
    let r = unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, ns, 0, 0, 0) };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets `SO_RCVBUF` and `SO_SNDBUF` (0 leaves the kernel default).
pub fn set_socket_buffers(fd: RawFd, rcv: usize, snd: usize) -> io::Result<()> {
    for (opt, size) in [(libc::SO_RCVBUF, rcv), (libc::SO_SNDBUF, snd)] {
        if size == 0 {
            continue;
        }
        let v = libc::c_int::try_from(size).unwrap_or(libc::c_int::MAX);
        // SAFETY: passes a live c_int and its size to setsockopt; checked.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&raw const v).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Turns on `SO_TIMESTAMPNS`: each datagram received with `recvmsg`
/// carries the kernel's receive time (`CLOCK_REALTIME`) as an
/// `SCM_TIMESTAMPNS` control message.
pub fn enable_rx_timestamps(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: passes a live c_int and its size to setsockopt; checked.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Control-message space a receive reserves for an `SCM_TIMESTAMPNS`
/// (header and a `timespec`, aligned).
pub const RX_TIMESTAMP_CONTROL: usize = 64;

/// The `SCM_TIMESTAMPNS` receive time in the control data of a `recvmsg`
/// (a `cmsghdr` sequence, `man 3 cmsg`), as (seconds, nanoseconds) of
/// `CLOCK_REALTIME`; `None` when absent. Parsed from bytes, no pointer
/// casts.
pub fn parse_rx_timestamp(control: &[u8]) -> Option<(i64, u32)> {
    let (_, _, d) = control_messages(control)
        .find(|&(level, kind, _)| level == libc::SOL_SOCKET && kind == libc::SCM_TIMESTAMPNS)?;
    let secs = i64::from_ne_bytes(d.get(..8)?.try_into().ok()?);
    let nanos = i64::from_ne_bytes(d.get(8..16)?.try_into().ok()?);
    Some((secs, u32::try_from(nanos).ok()?))
}

/// The control messages of a received message's control buffer, as
/// (level, type, data) (`CMSG_FIRSTHDR`/`CMSG_NXTHDR`: a `cmsghdr`, the
/// data, padding to the word size). Ends at the first header that is
/// truncated or whose length does not fit.
fn control_messages(control: &[u8]) -> impl Iterator<Item = (i32, i32, &[u8])> {
    const HDR: usize = size_of::<libc::cmsghdr>();
    const W: usize = size_of::<usize>();
    let int = |b: &[u8]| -> Option<i32> { Some(i32::from_ne_bytes(b.try_into().ok()?)) };
    let mut off = 0;
    std::iter::from_fn(move || {
        let len = usize::from_ne_bytes(control.get(off..off + W)?.try_into().ok()?);
        let level = int(control.get(off + W..off + W + 4)?)?;
        let kind = int(control.get(off + W + 4..off + W + 8)?)?;
        if len < HDR {
            return None;
        }
        let data = control.get(off + HDR..off + len)?;
        off += len.div_ceil(W) * W;
        Some((level, kind, data))
    })
}

/// `setsockopt` of one `c_int` value.
fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    opt: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: passes a live c_int and its size to setsockopt; checked.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&raw const v).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sets the TOS byte (DSCP << 2 | ECN) of the datagrams a UDP socket
/// sends: `IP_TOS`; on an IPv6 socket (`ipv6`) `IPV6_TCLASS` as well, and
/// `IP_TOS` still covers its IPv4-mapped peers. Needs no privilege.
pub fn set_tos(fd: RawFd, ipv6: bool, tos: u8) -> io::Result<()> {
    if ipv6 {
        setsockopt_int(
            fd,
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            libc::c_int::from(tos),
        )?;
    }
    setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, libc::c_int::from(tos))
}

/// Turns on `IP_RECVTOS` (and `IPV6_RECVTCLASS` on an IPv6 socket): each
/// datagram [`recv_with_tos`] receives then carries its TOS byte.
pub fn enable_recv_tos(fd: RawFd, ipv6: bool) -> io::Result<()> {
    if ipv6 {
        setsockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVTCLASS, 1)?;
    }
    setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_RECVTOS, 1)
}

/// Receives one datagram into `buf` (blocking, or up to the socket's read
/// timeout): its length, its source, and its TOS byte when the socket has
/// [`enable_recv_tos`] on (`None` otherwise). For tests and diagnostics,
/// not the packet path.
pub fn recv_with_tos(
    sock: &std::net::UdpSocket,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    // u64 words: aligned for sockaddr_in6 and cmsghdr.
    let mut name = [0u64; 16];
    let mut control = [0u64; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain old data (integers and raw pointers); all-zero
    // is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name.as_mut_ptr().cast();
    msg.msg_namelen = size_of_val(&name) as libc::socklen_t;
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control) as _;
    // SAFETY: `msg` points at a live iovec over `buf`, and at the live
    // `name` and `control` arrays with their true sizes; all outlive the
    // call; the result is checked.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &raw mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let bytes = |words: &[u64], len: usize| -> Vec<u8> {
        let mut v: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
        v.truncate(len);
        v
    };
    let name = bytes(&name, msg.msg_namelen as usize);
    let from = parse_sockaddr(&name).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidData, "unknown source address family")
    })?;
    let control = bytes(&control, msg.msg_controllen as usize);
    Ok((n as usize, from, parse_rx_tos(&control)))
}

/// The TOS byte in the control data of a `recvmsg` (an `IP_TOS` or
/// `IPV6_TCLASS` control message, `man 7 ip`, `man 7 ipv6`); `None` when
/// absent. Parsed from bytes, no pointer casts.
pub fn parse_rx_tos(control: &[u8]) -> Option<u8> {
    control_messages(control).find_map(|(level, kind, data)| {
        if level == libc::IPPROTO_IP && kind == libc::IP_TOS {
            data.first().copied()
        } else if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_TCLASS {
            u8::try_from(i32::from_ne_bytes(data.get(..4)?.try_into().ok()?)).ok()
        } else {
            None
        }
    })
}

/// CPU time consumed by the calling thread (user + system).
pub fn thread_cpu_time() -> Duration {
    clock_time(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `clock`'s reading (zero if it cannot be read).
pub fn clock_time(clock: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into a live local.
    let r = unsafe { libc::clock_gettime(clock, &raw mut ts) };
    if r != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The calling thread's kernel thread id.
pub fn gettid() -> i32 {
    // SAFETY: gettid takes no arguments and cannot fail.
    unsafe { libc::gettid() }
}

/// Current `RLIMIT_NOFILE` (soft, hard).
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a live local; checked.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r.rlim_cur, r.rlim_max))
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit.
pub fn raise_nofile_limit() -> io::Result<u64> {
    let (_, hard) = nofile_limit()?;
    let r = libc::rlimit {
        rlim_cur: hard,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads one live rlimit; checked.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const r) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(hard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_addr_round_trips() {
        for s in ["127.0.0.1:30000", "[::1]:5004", "[2001:db8::7]:1"] {
            let a: SocketAddr = s.parse().unwrap();
            let r = RawAddr::new(&a);
            assert_eq!(parse_sockaddr(&r.bytes[..r.len as usize]), Some(a));
        }
        assert_eq!(parse_sockaddr(&[0, 0]), None);
        assert_eq!(parse_sockaddr(&[]), None);
    }

    /// One control message as the kernel lays it out.
    fn cmsg(level: i32, kind: i32, data: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(size_of::<libc::cmsghdr>() + data.len()).to_ne_bytes());
        v.extend_from_slice(&level.to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(data);
        while v.len() % size_of::<usize>() != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn rx_timestamp_is_found_among_control_messages() {
        let mut ts = Vec::new();
        ts.extend_from_slice(&1_700_000_000i64.to_ne_bytes());
        ts.extend_from_slice(&123_456_789i64.to_ne_bytes());
        let other = cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[0x2e]);
        let stamp = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &ts);
        let mut both = other.clone();
        both.extend_from_slice(&stamp);
        assert_eq!(
            parse_rx_timestamp(&stamp),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(
            parse_rx_timestamp(&both),
            Some((1_700_000_000, 123_456_789))
        );
        assert_eq!(parse_rx_timestamp(&other), None);
        assert_eq!(parse_rx_timestamp(&[]), None);
        // Truncated or with a length below the header: nothing, no panic.
        assert_eq!(parse_rx_timestamp(&stamp[..stamp.len() - 4]), None);
        let mut bad = stamp.clone();
        bad[..8].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse_rx_timestamp(&bad), None);
    }

    #[test]
    fn tos_is_set_and_read_back_over_loopback() {
        use std::net::UdpSocket;
        for (ip, v6) in [("127.0.0.1:0", false), ("[::1]:0", true)] {
            let Ok(rx) = UdpSocket::bind(ip) else {
                eprintln!("{ip}: cannot bind, skipped");
                continue;
            };
            let tx = UdpSocket::bind(ip).unwrap();
            rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            enable_recv_tos(rx.as_raw_fd(), v6).unwrap();
            let to = rx.local_addr().unwrap();
            let mut buf = [0u8; 64];
            tx.send_to(b"plain", to).unwrap();
            let (n, from, tos) = recv_with_tos(&rx, &mut buf).unwrap();
            assert_eq!(
                (&buf[..n], from, tos),
                (&b"plain"[..], tx.local_addr().unwrap(), Some(0))
            );
            set_tos(tx.as_raw_fd(), v6, 0xb8).unwrap();
            tx.send_to(b"ef", to).unwrap();
            let (n, _, tos) = recv_with_tos(&rx, &mut buf).unwrap();
            assert_eq!((&buf[..n], tos), (&b"ef"[..], Some(0xb8)), "{ip}");
        }
    }

    #[test]
    fn rx_tos_is_found_among_control_messages() {
        let stamp = cmsg(libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS, &[0; 16]);
        let v4 = cmsg(libc::IPPROTO_IP, libc::IP_TOS, &[0xb8]);
        let v6 = cmsg(
            libc::IPPROTO_IPV6,
            libc::IPV6_TCLASS,
            &0x2ei32.to_ne_bytes(),
        );
        let mut both = stamp.clone();
        both.extend_from_slice(&v4);
        assert_eq!(parse_rx_tos(&v4), Some(0xb8));
        assert_eq!(parse_rx_tos(&both), Some(0xb8));
        assert_eq!(parse_rx_tos(&v6), Some(0x2e));
        assert_eq!(parse_rx_tos(&stamp), None);
        assert_eq!(parse_rx_tos(&[]), None);
        assert_eq!(parse_rx_tos(&v6[..v6.len() - 8]), None, "truncated");
        let mut bad = v4.clone();
        bad[..size_of::<usize>()].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse_rx_tos(&bad), None);
    }

    #[test]
    fn eventfd_notify_drain() {
        let e = EventFd::new().unwrap();
        assert!(!e.drain());
        e.notify().unwrap();
        e.notify().unwrap();
        assert!(e.drain());
        assert!(!e.drain());
    }

    #[test]
    fn thread_cpu_time_advances() {
        let a = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time() > a);
    }
}
