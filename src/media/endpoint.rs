//! The endpoint seam: what a shard needs of media that ends in the
//! application instead of being relayed to another leg.
//!
//! An [`Endpoint`] is a sans-IO state machine in the shape of quinn-proto's
//! `Connection` or str0m's `Rtc`: datagrams go in through
//! [`handle_input`](Endpoint::handle_input), its own datagrams come out of
//! [`poll_transmit`](Endpoint::poll_transmit) into a buffer the caller owns,
//! and it asks for the clock through [`poll_timeout`](Endpoint::poll_timeout)
//! / [`handle_timeout`](Endpoint::handle_timeout). The engine's shard drives
//! it on the same loop and buffers as relayed media; a test drives it on a
//! virtual clock over [`crate::netsim`]. Where its packets go is the caller's
//! business (the relay leg it ends: [`crate::relay::RelayTable::egress`]).

use std::net::SocketAddr;
use std::time::Instant;

use crate::relay::Component;

/// One datagram an endpoint wants sent: the first `len` bytes of the buffer
/// given to [`Endpoint::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// RTP or RTCP (sent from the RTP or RTCP socket of the leg, or both
    /// from the RTP socket under rtcp-mux).
    pub component: Component,
    /// Bytes written.
    pub len: usize,
}

/// A sans-IO media endpoint. `Send` so that it can be handed to the shard
/// thread that runs it; it is then used on that thread only.
pub trait Endpoint: Send {
    /// A datagram the relay accepted for this endpoint, from `src`.
    fn handle_input(&mut self, now: Instant, component: Component, src: SocketAddr, data: &[u8]);
    /// The next datagram to send, written into `buf`; `None` when there is
    /// nothing to send now.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>;
    /// When [`handle_timeout`](Endpoint::handle_timeout) next has work.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Runs what is due at `now` (pacing, reports, timers).
    fn handle_timeout(&mut self, now: Instant);
    /// The end of a burst of work (one loop turn): hand what accumulated
    /// to the application, pick up what it queued. Called after
    /// [`poll_transmit`](Endpoint::poll_transmit) returned `None`.
    fn flush(&mut self, _now: Instant) {}
    /// A packet this endpoint produced could not be sent (no destination
    /// known yet, or the send failed).
    fn on_send_failed(&mut self, _component: Component) {}
}
