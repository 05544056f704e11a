//! [`PortPair`]: the unit the allocator hands out, an RTP port and its RTCP
//! companion.
//!
//! RFC 3550 §11: RTP uses an even port and RTCP the next higher (odd) port.
//! A `PortPair` is therefore named by its even RTP port; the RTCP port is
//! always `rtp + 1`, which cannot overflow because the largest even `u16`
//! is 65534.

use std::fmt;

/// An RTP port (even, non-zero) and its RTCP port (`rtp + 1`), RFC 3550 §11.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortPair(u16);

impl PortPair {
    /// The pair whose RTP port is `rtp`, or `None` when `rtp` is odd or 0
    /// (port 0 is "any port" to the socket API, never a real port).
    pub const fn new(rtp: u16) -> Option<Self> {
        if rtp == 0 || !rtp.is_multiple_of(2) {
            return None;
        }
        Some(PortPair(rtp))
    }

    /// The even RTP port.
    pub const fn rtp(self) -> u16 {
        self.0
    }

    /// The odd RTCP port, `rtp + 1` (RFC 3550 §11).
    pub const fn rtcp(self) -> u16 {
        // Cannot overflow: `self.0` is even, so at most 65534.
        self.0 + 1
    }
}

impl fmt::Display for PortPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.rtp(), self.rtcp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ports_make_pairs() {
        let p = PortPair::new(30000).unwrap();
        assert_eq!((p.rtp(), p.rtcp()), (30000, 30001));
        let top = PortPair::new(65534).unwrap();
        assert_eq!(top.rtcp(), 65535);
        assert_eq!(p.to_string(), "30000/30001");
    }

    #[test]
    fn odd_and_zero_ports_are_rejected() {
        assert_eq!(PortPair::new(30001), None);
        assert_eq!(PortPair::new(65535), None);
        assert_eq!(PortPair::new(0), None);
    }
}
