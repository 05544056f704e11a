//! The in-memory datagram transport under a [`DtlsSession`]: OpenSSL reads
//! and writes a `Read + Write` stream, and this one keeps whole datagrams
//! in two bounded queues, so the session does no I/O of its own.
//!
//! Each `write` is one datagram out (OpenSSL writes one DTLS datagram per
//! call: its records packed up to the MTU); each `read` returns at most one
//! queued datagram, or `WouldBlock` when none is. The transport also keeps
//! a copy of the last flight written, for the session's retransmissions.
//!
//! [`DtlsSession`]: super::DtlsSession

use std::collections::VecDeque;
use std::io;

/// Most datagrams waiting to be read by OpenSSL. The session pushes one and
/// has OpenSSL consume it at once, so one is the most ever queued.
pub(super) const MAX_INBOUND: usize = 4;
/// Most datagrams waiting for `poll_transmit`; more are dropped, as a full
/// socket buffer drops them. A handshake flight is a handful.
pub(super) const MAX_OUTBOUND: usize = 32;
/// Most datagrams of one flight kept for retransmission.
pub(super) const MAX_FLIGHT: usize = 16;

/// Two datagram queues and the last flight.
#[derive(Debug, Default)]
pub(super) struct Datagrams {
    inbound: VecDeque<Vec<u8>>,
    outbound: VecDeque<Vec<u8>>,
    /// The datagrams written in the last step that wrote any.
    flight: Vec<Vec<u8>>,
    /// Whether the current step has written; the first write of a step
    /// starts a new flight.
    step_wrote: bool,
}

impl Datagrams {
    /// Queues one received datagram for OpenSSL, dropping the oldest when
    /// full.
    pub(super) fn push_inbound(&mut self, datagram: &[u8]) {
        if self.inbound.len() >= MAX_INBOUND {
            self.inbound.pop_front();
        }
        self.inbound.push_back(datagram.to_vec());
    }

    /// Drops datagrams OpenSSL left unread.
    pub(super) fn clear_inbound(&mut self) {
        self.inbound.clear();
    }

    /// The next datagram to send.
    pub(super) fn pop_outbound(&mut self) -> Option<Vec<u8>> {
        self.outbound.pop_front()
    }

    /// Starts a step (one call into OpenSSL): its writes, if any, are the
    /// new last flight.
    pub(super) fn begin_step(&mut self) {
        self.step_wrote = false;
    }

    /// Whether the step begun last has written.
    pub(super) fn step_wrote(&self) -> bool {
        self.step_wrote
    }

    /// Queues the last flight again (a retransmission); the number of
    /// datagrams queued.
    pub(super) fn resend_flight(&mut self) -> usize {
        let mut n = 0;
        for d in &self.flight {
            if self.outbound.len() >= MAX_OUTBOUND {
                break;
            }
            self.outbound.push_back(d.clone());
            n += 1;
        }
        n
    }

    /// Forgets the last flight (nothing left to retransmit).
    pub(super) fn clear_flight(&mut self) {
        self.flight.clear();
    }

    /// Whether a flight is kept.
    pub(super) fn has_flight(&self) -> bool {
        !self.flight.is_empty()
    }
}

impl io::Read for Datagrams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.inbound.pop_front() else {
            return Err(io::ErrorKind::WouldBlock.into());
        };
        // Datagram semantics: what does not fit is lost (OpenSSL reads
        // with a buffer larger than any record).
        let n = d.len().min(buf.len());
        buf[..n].copy_from_slice(&d[..n]);
        Ok(n)
    }
}

impl io::Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.step_wrote {
            self.flight.clear();
            self.step_wrote = true;
        }
        if self.flight.len() < MAX_FLIGHT {
            self.flight.push(buf.to_vec());
        }
        if self.outbound.len() < MAX_OUTBOUND {
            self.outbound.push_back(buf.to_vec());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn datagrams_and_flights() {
        let mut t = Datagrams::default();
        let mut buf = [0u8; 4];
        assert_eq!(
            t.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        t.push_inbound(b"abcdef");
        t.push_inbound(b"xy");
        assert_eq!(t.read(&mut buf).unwrap(), 4, "truncated to the buffer");
        assert_eq!(&buf, b"abcd");
        assert_eq!(t.read(&mut buf).unwrap(), 2, "one datagram per read");
        for i in 0..10u8 {
            t.push_inbound(&[i]);
        }
        assert_eq!(t.inbound.len(), MAX_INBOUND);

        t.begin_step();
        assert!(!t.step_wrote());
        t.write_all(b"one").unwrap();
        t.write_all(b"two").unwrap();
        assert!(t.step_wrote());
        t.begin_step();
        t.write_all(b"three").unwrap();
        assert_eq!(t.pop_outbound().unwrap(), b"one");
        assert_eq!(t.pop_outbound().unwrap(), b"two");
        assert_eq!(t.pop_outbound().unwrap(), b"three");
        assert_eq!(t.pop_outbound(), None);
        assert_eq!(t.resend_flight(), 1);
        assert_eq!(t.pop_outbound().unwrap(), b"three");
        for _ in 0..100 {
            t.write_all(b"x").unwrap();
        }
        assert_eq!(t.outbound.len(), MAX_OUTBOUND);
        assert_eq!(t.flight.len(), MAX_FLIGHT);
        t.clear_flight();
        assert!(!t.has_flight());
    }
}
