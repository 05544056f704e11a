//! Where the kernel would send a packet: one `RTM_GETROUTE` query over
//! rtnetlink (as `ip route get DST from SRC`), for the fast path's egress
//! interface. rtnetlink(7), rtnetlink.h.

use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The route's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Egress {
    /// Output interface.
    pub ifindex: u32,
    /// The destination is an address of this host (`RTN_LOCAL`).
    pub local: bool,
}

const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;
const RTA_HDRLEN: usize = 4;

/// Asks the kernel for the route from `src` (a local address) to `dst`.
pub(super) fn egress(dst: Ipv4Addr, src: Ipv4Addr) -> io::Result<Egress> {
    if dst.is_loopback() {
        return Ok(Egress {
            ifindex: 1,
            local: true,
        });
    }
    query(dst, src)
}

/// The `RTM_GETROUTE` round trip.
fn query(dst: Ipv4Addr, src: Ipv4Addr) -> io::Result<Egress> {
    // SAFETY: socket() takes no pointers; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor owned by nothing else.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let with_src = !src.is_unspecified();
    let mut req = Vec::with_capacity(NLMSG_HDRLEN + RTMSG_LEN + 16);
    let len = NLMSG_HDRLEN + RTMSG_LEN + 8 + if with_src { 8 } else { 0 };
    // struct nlmsghdr
    req.extend_from_slice(&(len as u32).to_ne_bytes());
    req.extend_from_slice(&libc::RTM_GETROUTE.to_ne_bytes());
    req.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // seq
    req.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
    // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope,
    // type, flags
    req.extend_from_slice(&[
        libc::AF_INET as u8,
        32,
        if with_src { 32 } else { 0 },
        0,
        0,
        0,
        0,
        0,
    ]);
    req.extend_from_slice(&0u32.to_ne_bytes());
    // RTA_DST, RTA_SRC
    let mut attr = |kind: u16, addr: Ipv4Addr| {
        req.extend_from_slice(&((RTA_HDRLEN + 4) as u16).to_ne_bytes());
        req.extend_from_slice(&kind.to_ne_bytes());
        req.extend_from_slice(&addr.octets());
    };
    attr(libc::RTA_DST, dst);
    if with_src {
        attr(libc::RTA_SRC, src);
    }
    // SAFETY: sends `req`, a live buffer of req.len() bytes, to the kernel
    // (an unconnected netlink socket's default destination).
    let sent = unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 4096];
    // SAFETY: receives into `buf`, a live buffer of buf.len() bytes.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_reply(&buf[..n as usize])
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Reads the `RTM_NEWROUTE` answer (or the error) to the query.
fn parse_reply(b: &[u8]) -> io::Result<Egress> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "malformed rtnetlink reply");
    let len = u32_at(b, 0).ok_or_else(bad)? as usize;
    let kind = u16_at(b, 4).ok_or_else(bad)?;
    let msg = b.get(..len).ok_or_else(bad)?;
    if kind == libc::NLMSG_ERROR as u16 {
        let errno = u32_at(msg, NLMSG_HDRLEN).ok_or_else(bad)? as i32;
        return Err(io::Error::from_raw_os_error(-errno));
    }
    if kind != libc::RTM_NEWROUTE {
        return Err(bad());
    }
    let rtm_type = *msg.get(NLMSG_HDRLEN + 7).ok_or_else(bad)?;
    let mut at = NLMSG_HDRLEN + RTMSG_LEN;
    let mut ifindex = None;
    while at + RTA_HDRLEN <= msg.len() {
        let alen = u16_at(msg, at).ok_or_else(bad)? as usize;
        let akind = u16_at(msg, at + 2).ok_or_else(bad)?;
        if alen < RTA_HDRLEN {
            return Err(bad());
        }
        if akind == libc::RTA_OIF {
            ifindex = u32_at(msg, at + RTA_HDRLEN);
        }
        at += alen.div_ceil(4) * 4;
    }
    Ok(Egress {
        ifindex: ifindex.ok_or_else(bad)?,
        local: rtm_type == libc::RTN_LOCAL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_local() {
        let e = egress(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST).unwrap();
        assert!(e.local);
        assert_eq!(e.ifindex, 1);
    }

    #[test]
    fn asks_the_kernel() {
        // 127.0.0.0/8 is local through the local table; a query for
        // another loopback address answers from the kernel.
        let e = query(Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::UNSPECIFIED).unwrap();
        assert!(e.local);
        assert_eq!(e.ifindex, 1);
    }

    #[test]
    fn malformed_replies_are_errors() {
        assert!(parse_reply(&[]).is_err());
        assert!(parse_reply(&[200, 0, 0, 0, 24, 0]).is_err());
        // An error reply carrying ENETUNREACH.
        let mut m = vec![0u8; 36];
        m[0..4].copy_from_slice(&36u32.to_ne_bytes());
        m[4..6].copy_from_slice(&(libc::NLMSG_ERROR as u16).to_ne_bytes());
        m[16..20].copy_from_slice(&(-libc::ENETUNREACH).to_ne_bytes());
        let e = parse_reply(&m).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENETUNREACH));
    }
}
