//! Endpoints driven by a virtual clock over the in-memory network
//! ([`crate::netsim`]): the shard loop without sockets or real time, for
//! tests that run minutes of media in milliseconds and reproduce exactly
//! from a seed.
//!
//! Each turn: the clock jumps to the earliest deadline (an endpoint's
//! timer, a datagram's delivery, or the end of the run), due datagrams are
//! delivered (by destination address; RTP and RTCP told apart by port, or
//! by the RFC 5761 / RFC 7983 first-byte rule when muxed), due timers run,
//! and every endpoint is polled for transmits until it has none, then
//! flushed: the same order as an engine shard.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::endpoint::Endpoint;
use crate::netsim::{Network, VirtualClock};
use crate::relay::Component;
use crate::rtcp::{PacketKind, demux};

/// One endpoint in a simulation and its addresses.
#[derive(Debug)]
pub struct SimNode<E> {
    /// The endpoint.
    pub endpoint: E,
    /// Its local RTP address.
    pub rtp: SocketAddr,
    /// Its local RTCP address (equal to `rtp` for rtcp-mux).
    pub rtcp: SocketAddr,
    /// Where its RTP goes.
    pub remote_rtp: SocketAddr,
    /// Where its RTCP goes.
    pub remote_rtcp: SocketAddr,
    /// How fast this endpoint's clock runs against the simulation's, in
    /// parts per million (positive: fast). The endpoint sees
    /// `start + elapsed · (1 + skew_ppm / 10⁶)`.
    pub skew_ppm: f64,
}

impl<E> SimNode<E> {
    /// A node with no clock skew.
    pub fn new(
        endpoint: E,
        rtp: SocketAddr,
        rtcp: SocketAddr,
        remote_rtp: SocketAddr,
        remote_rtcp: SocketAddr,
    ) -> Self {
        SimNode {
            endpoint,
            rtp,
            rtcp,
            remote_rtp,
            remote_rtcp,
            skew_ppm: 0.0,
        }
    }

    fn factor(&self) -> f64 {
        1.0 + self.skew_ppm / 1e6
    }

    /// The node's local time at simulation time `t`.
    fn local(&self, start: Instant, t: Instant) -> Instant {
        if self.skew_ppm == 0.0 {
            return t;
        }
        start + t.saturating_duration_since(start).mul_f64(self.factor())
    }

    /// The simulation time at node-local time `t` (rounded up, so the
    /// node is never woken early).
    fn global(&self, start: Instant, t: Instant) -> Instant {
        if self.skew_ppm == 0.0 {
            return t;
        }
        start + t.saturating_duration_since(start).div_f64(self.factor()) + Duration::from_nanos(1)
    }

    fn deadline(&self, start: Instant) -> Option<Instant>
    where
        E: Endpoint,
    {
        self.endpoint.poll_timeout().map(|t| self.global(start, t))
    }
}

/// A simulation: endpoints, a network and a virtual clock.
#[derive(Debug)]
pub struct Sim<E> {
    /// The network (set impairments on it).
    pub net: Network,
    /// The clock.
    pub clock: VirtualClock,
    nodes: Vec<SimNode<E>>,
    buf: Vec<u8>,
}

impl<E: Endpoint> Sim<E> {
    /// An empty simulation on a network seeded with `seed`, its clock at
    /// `start`.
    pub fn new(seed: u64, start: Instant) -> Self {
        Sim {
            net: Network::new(seed),
            clock: VirtualClock::starting_at(start),
            nodes: Vec::new(),
            buf: vec![0u8; 2048],
        }
    }

    /// Adds an endpoint; returns its index.
    pub fn add(&mut self, node: SimNode<E>) -> usize {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &SimNode<E> {
        &self.nodes[i]
    }

    /// Node `i`, mutably (to drive its application side).
    pub fn node_mut(&mut self, i: usize) -> &mut SimNode<E> {
        &mut self.nodes[i]
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Runs until `d` of virtual time has passed.
    pub fn run_for(&mut self, d: Duration) {
        let end = self.clock.now() + d;
        self.run_until(end);
    }

    /// Runs until the clock reaches `end`.
    pub fn run_until(&mut self, end: Instant) {
        loop {
            self.turn();
            let next = self
                .nodes
                .iter()
                .filter_map(|n| n.deadline(self.clock.start()))
                .chain(self.net.poll_timeout())
                .min()
                .unwrap_or(end)
                .max(self.clock.now());
            if next > end {
                self.clock.advance_to(end);
                self.turn();
                return;
            }
            if next == self.clock.now() && !self.has_due_work(next) {
                // Nothing moves at this instant: step 1 µs to avoid a spin.
                self.clock.advance(Duration::from_micros(1));
            } else {
                self.clock.advance_to(next);
            }
        }
    }

    fn has_due_work(&self, now: Instant) -> bool {
        let start = self.clock.start();
        self.net.poll_timeout().is_some_and(|t| t <= now)
            || self
                .nodes
                .iter()
                .any(|n| n.deadline(start).is_some_and(|t| t <= now))
    }

    /// One turn at the current instant.
    fn turn(&mut self) {
        let now = self.clock.now();
        let start = self.clock.start();
        while let Some(d) = self.net.poll_deliver(now) {
            let Some(node) = self
                .nodes
                .iter_mut()
                .find(|n| n.rtp == d.dst || n.rtcp == d.dst)
            else {
                continue;
            };
            let component = if node.rtp == node.rtcp {
                match demux(&d.data) {
                    PacketKind::Rtcp => Component::Rtcp,
                    _ => Component::Rtp,
                }
            } else if d.dst == node.rtcp {
                Component::Rtcp
            } else {
                Component::Rtp
            };
            let local = node.local(start, now);
            node.endpoint.handle_input(local, component, d.src, &d.data);
        }
        for node in &mut self.nodes {
            let local = node.local(start, now);
            if node.endpoint.poll_timeout().is_some_and(|t| t <= local) {
                node.endpoint.handle_timeout(local);
            }
            while let Some(t) = node.endpoint.poll_transmit(local, &mut self.buf) {
                let (src, dst) = match t.component {
                    Component::Rtp => (node.rtp, node.remote_rtp),
                    Component::Rtcp => (node.rtcp, node.remote_rtcp),
                };
                self.net.send(now, src, dst, &self.buf[..t.len]);
            }
            node.endpoint.flush(local);
        }
    }
}
