//! One shard: a pinned thread that owns every socket bound for its calls
//! (ports from its slice of the range by preference, from another slice
//! when its own has nothing to give), a [`RelayTable`] and an I/O backend.
//! Ports are released by number, so each goes back to the slice it came
//! from.
//!
//! The loop: wait for I/O, the next timer or the backend's next deferred
//! receive ([`Backend::poll_timeout`]; one backend turn), drain the
//! control mailbox, run due timers (media timeouts: the call is removed, its
//! sockets closed, its ports released, and an event reported), publish
//! counters. Nothing on the per-packet path allocates, locks or touches
//! another thread's memory; counters are plain integers published once per
//! turn with relaxed stores into this shard's cache-padded stats block.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use super::backend::{Backend, OwnTransmit, PacketSink};
use super::fastpath::{FastPath, FastPathError, KernelCounters, KernelRoute};
use super::mailbox::Queue;
use super::sys::{self, EventFd};
use super::{CallId, EngineError, EngineEvent, LegInfo, LegUpdate};
use crate::media::Endpoint;
use crate::ports::{PortAllocator, PortPair, ShardId};
use crate::relay::{
    CallKey, DropReason, EndpointKey, LegKey, LegSpec, OffloadedTraffic, RelayConfig, RelayEvent,
    RelayTable, RemovedCall, Slab, StreamKey, StreamKind, StreamSnapshot, Verdict,
};
use crate::rtp::Ssrc;
use std::collections::HashMap;

use super::dtls_side::DtlsSide;
use super::ice_side::IceSide;
use super::schedule::Schedule;
use super::srtp_side::SrtpSide;

/// A leg ready to be installed: bound sockets and what to do with them.
#[derive(Debug)]
pub(crate) struct NewLeg {
    pub spec: LegSpec,
    pub ports: PortPair,
    pub rtp: UdpSocket,
    /// `None` under rtcp-mux.
    pub rtcp: Option<UdpSocket>,
    pub local_ip: std::net::IpAddr,
    /// [`LegOptions::userspace_payload_types`](super::LegOptions).
    pub userspace_payload_types: u128,
}

/// Control messages to a shard.
#[derive(Debug)]
pub(crate) enum Command {
    AddCall {
        tag: u64,
        legs: Vec<NewLeg>,
        reply: SyncSender<Result<(CallKey, Vec<LegInfo>), EngineError>>,
    },
    UpdateLeg {
        call: CallKey,
        leg: usize,
        update: LegUpdate,
        reply: SyncSender<Result<(), EngineError>>,
    },
    Query {
        call: CallKey,
        reply: SyncSender<Option<Vec<StreamSnapshot>>>,
    },
    Delete {
        call: CallKey,
        reply: SyncSender<Option<RemovedCall>>,
    },
    /// A one-leg call whose leg ends in `endpoint`.
    AddEndpoint {
        tag: u64,
        leg: NewLeg,
        endpoint: Box<dyn Endpoint>,
        reply: SyncSender<Result<(CallKey, LegInfo), EngineError>>,
    },
    /// Serve the call's endpoints now: the application queued a request
    /// (stop, DTMF) that should not wait for their next timer.
    WakeEndpoints {
        call: CallKey,
    },
    /// Ends leg `leg` of an existing call in `endpoint`.
    AttachEndpoint {
        call: CallKey,
        leg: usize,
        endpoint: Box<dyn Endpoint>,
        reply: SyncSender<Result<(), EngineError>>,
    },
    Shutdown,
}

impl std::fmt::Debug for dyn Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Endpoint")
    }
}

/// Counters of one shard, written by the shard only (relaxed stores once
/// per turn), read by anyone. Each field is summed across shards when read.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Live calls.
    pub calls: CachePadded<AtomicU64>,
    /// Live streams (sockets).
    pub streams: AtomicU64,
    /// Datagrams received.
    pub rx_packets: AtomicU64,
    /// Bytes received.
    pub rx_bytes: AtomicU64,
    /// Datagrams forwarded (send completed).
    pub tx_packets: AtomicU64,
    /// Bytes forwarded.
    pub tx_bytes: AtomicU64,
    /// Failed sends.
    pub send_errors: AtomicU64,
    /// Drops by [`DropReason::index`].
    pub drops: [AtomicU64; DropReason::COUNT],
    /// Datagrams for streams already removed.
    pub unknown_stream: AtomicU64,
    /// Data-path syscalls.
    pub syscalls: AtomicU64,
    /// Loop turns.
    pub turns: AtomicU64,
    /// Receives that found the buffer ring empty.
    pub no_buffers: AtomicU64,
    /// Receive errors.
    pub recv_errors: AtomicU64,
    /// Receives deferred by the per-socket error backoff.
    pub recv_backoffs: AtomicU64,
    /// Calls removed by the media timeout.
    pub timeouts: AtomicU64,
    /// Live local media endpoints.
    pub endpoints: AtomicU64,
    /// Datagrams delivered to local media endpoints.
    pub delivered: AtomicU64,
    /// Datagrams local media endpoints produced (sent or not).
    pub produced: AtomicU64,
    /// STUN datagrams ICE agents received or sent.
    pub ice_packets: AtomicU64,
    /// DTLS datagrams of the relay's DTLS-SRTP handshakes, received or sent.
    pub dtls_packets: AtomicU64,
    /// Thread CPU time in nanoseconds (updated about every 100 ms).
    pub cpu_ns: AtomicU64,
    /// Kernel thread id of the shard (for /proc-based measurements).
    pub tid: AtomicU64,
    /// Streams whose RTP the kernel fast path forwards now.
    pub offloaded_streams: AtomicU64,
    /// Packets the kernel fast path forwarded (merged into `rx_packets`
    /// and `tx_packets` too).
    pub kernel_packets: AtomicU64,
    /// Their bytes.
    pub kernel_bytes: AtomicU64,
    /// Fast path entries that could not be installed or removed.
    pub offload_errors: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct Local {
    rx_packets: u64,
    rx_bytes: u64,
    tx_packets: u64,
    tx_bytes: u64,
    send_errors: u64,
    drops: [u64; DropReason::COUNT],
    unknown_stream: u64,
    timeouts: u64,
    delivered: u64,
    produced: u64,
    kernel_packets: u64,
    kernel_bytes: u64,
    offload_errors: u64,
    ice_packets: u64,
    dtls_packets: u64,
}

/// A local media endpoint and the leg it ends.
struct EndpointSlot {
    endpoint: Box<dyn Endpoint>,
    leg: LegKey,
    /// The deadline of its entry in [`Core::timers`]; an entry with another
    /// instant is stale.
    armed: Option<Instant>,
    /// In [`Core::ready`] already.
    queued: bool,
    /// Datagrams taken from it in the current service.
    served: u32,
}

/// Granularity of endpoint wake-ups: a shard serving many endpoints wakes
/// at most once per grain for their timers (each timer runs at most this
/// late, never early).
pub(crate) const ENDPOINT_TIMER_GRAIN: Duration = Duration::from_micros(250);

/// Datagrams one endpoint may produce per service (a 20 ms audio tick
/// makes one or two; a catch-up a few more).
const MAX_PER_SERVICE: u32 = 32;

/// Room reserved for endpoint bookkeeping, so that the steady state does
/// not grow it.
const ENDPOINT_RESERVE: usize = 1024;

/// The shard's sans-IO side, handed to the backend as its sink.
struct Core {
    table: RelayTable,
    local: Local,
    endpoints: Slab<EndpointSlot>,
    /// Endpoints with work (input delivered, timer due, just added), in
    /// order, served by [`PacketSink::poll_transmit`]; and their deadlines
    /// (an entry whose instant is not its slot's `armed` is stale).
    schedule: Schedule<EndpointKey>,
    /// The kernel fast path's side, when it is on.
    fast: Option<FastSide>,
    /// SDES-SRTP termination of this shard's terminated legs.
    srtp: SrtpSide,
    /// ICE agents of this shard's legs whose far ends speak ICE.
    ice: IceSide,
    /// DTLS-SRTP sessions of this shard's legs keyed by DTLS.
    dtls: DtlsSide,
    /// The relay's DTLS certificate.
    identity: Arc<super::DtlsIdentity>,
}

/// A stream whose RTP the kernel fast path forwards.
#[derive(Debug)]
struct Offloaded {
    /// Its socket's address: the key of its kernel entry.
    local: SocketAddr,
    /// The kernel's totals merged so far.
    seen: KernelCounters,
    /// When they were last read.
    read_at: Instant,
}

/// How often a packet from another source for an offloaded stream (a
/// contender) may trigger a read of the kernel's counters first.
const CONTENDER_SYNC: Duration = Duration::from_millis(10);

/// The shard's side of the kernel fast path: installs and withdraws the
/// entries the relay table offers ([`RelayEvent::Offload`]), and merges the
/// kernel's counters back into the table (periodically, before a query or
/// removal, and before judging a packet for an offloaded stream).
struct FastSide {
    path: Arc<FastPath>,
    tos: Option<u8>,
    /// Local address of each of this shard's streams.
    addrs: HashMap<StreamKey, SocketAddr>,
    offloaded: HashMap<StreamKey, Offloaded>,
    sync_every: Duration,
    next_sync: Instant,
}

impl FastSide {
    /// Reads the kernel counters of `stream` and merges what is new.
    fn sync(&mut self, table: &mut RelayTable, local: &mut Local, stream: StreamKey, now: Instant) {
        // An entry the table has just ended is merged whole when the
        // shard withdraws it.
        let (Some(o), Some(via)) = (self.offloaded.get_mut(&stream), table.offloaded(stream))
        else {
            return;
        };
        o.read_at = now;
        match self.path.counters(o.local) {
            Ok(c) => {
                let t = traffic(&o.seen, &c);
                o.seen = c;
                merge(table, local, stream, via, t);
            }
            Err(e) => {
                local.offload_errors += 1;
                tracing::debug!(error = %e, "fast path counters unreadable");
            }
        }
    }

    fn sync_all(&mut self, table: &mut RelayTable, local: &mut Local, now: Instant) {
        let keys: Vec<StreamKey> = self.offloaded.keys().copied().collect();
        for k in keys {
            self.sync(table, local, k, now);
        }
        self.next_sync = now + self.sync_every;
    }

    /// Acts on an offload event of the table.
    fn on_event(
        &mut self,
        table: &mut RelayTable,
        local: &mut Local,
        event: RelayEvent,
        now: Instant,
    ) {
        match event {
            RelayEvent::Offload {
                stream,
                source,
                via,
                dest,
                userspace_payload_types,
            } => {
                let (Some(&l), Some(&out)) = (self.addrs.get(&stream), self.addrs.get(&via)) else {
                    return;
                };
                let route = KernelRoute {
                    local: l,
                    source,
                    out,
                    dest,
                    userspace_payload_types,
                    tos: self.tos,
                };
                match self.path.install(&route) {
                    Ok(()) => {
                        if self.offloaded.is_empty() {
                            self.next_sync = now + self.sync_every;
                        }
                        self.offloaded.insert(
                            stream,
                            Offloaded {
                                local: l,
                                seen: KernelCounters::default(),
                                read_at: now,
                            },
                        );
                    }
                    Err(FastPathError::Unsupported(why)) => {
                        tracing::debug!(why, "stream stays in userspace");
                    }
                    Err(e) => {
                        // Once at warn (a full map fails every stream
                        // after it); the count is in the metrics.
                        if local.offload_errors == 0 {
                            tracing::warn!(error = %e, "fast path entry not installed; the stream stays in userspace");
                        } else {
                            tracing::debug!(error = %e, "fast path entry not installed");
                        }
                        local.offload_errors += 1;
                    }
                }
            }
            RelayEvent::OffloadEnded { stream, via } => self.withdraw(table, local, stream, via),
            _ => {}
        }
    }

    /// Removes `stream`'s kernel entry and merges its last counters.
    fn withdraw(
        &mut self,
        table: &mut RelayTable,
        local: &mut Local,
        stream: StreamKey,
        via: StreamKey,
    ) {
        let Some(o) = self.offloaded.remove(&stream) else {
            return;
        };
        match self.path.withdraw(o.local) {
            Ok(c) => merge(table, local, stream, via, traffic(&o.seen, &c)),
            Err(e) => {
                local.offload_errors += 1;
                tracing::warn!(error = %e, "fast path entry not removed");
            }
        }
    }

    /// Merges the kernel's counters of every offloaded stream of `call`
    /// (before a query).
    fn sync_call(
        &mut self,
        table: &mut RelayTable,
        local: &mut Local,
        call: CallKey,
        now: Instant,
    ) {
        if self.offloaded.is_empty() {
            return;
        }
        for key in table.call_streams(call) {
            self.sync(table, local, key, now);
        }
    }

    /// Ends the offloads of `call`'s streams and forgets their addresses
    /// (before it is removed).
    fn end_call(&mut self, table: &mut RelayTable, local: &mut Local, call: CallKey) {
        for key in table.call_streams(call) {
            if let Some(via) = table.offloaded(key) {
                self.withdraw(table, local, key, via);
            }
            self.addrs.remove(&key);
        }
        // The table's own OffloadEnded events for them find nothing left.
        table.end_call_offloads(call);
    }
}

/// What the kernel forwarded between two readings of a stream's counters.
fn traffic(seen: &KernelCounters, now: &KernelCounters) -> OffloadedTraffic {
    let packets = now.packets.saturating_sub(seen.packets);
    OffloadedTraffic {
        packets,
        bytes: now.bytes.saturating_sub(seen.bytes),
        last: now.last,
        last_rtp: (packets > 0).then_some((Ssrc(now.ssrc), now.seq)),
        seq_jumps: now.seq_jumps.saturating_sub(seen.seq_jumps),
    }
}

/// Merges kernel-forwarded traffic into the table and the shard counters
/// (received and sent, as userspace forwarding would count them).
fn merge(
    table: &mut RelayTable,
    local: &mut Local,
    stream: StreamKey,
    via: StreamKey,
    t: OffloadedTraffic,
) {
    if t.packets == 0 {
        return;
    }
    table.merge_offloaded(stream, via, t);
    local.rx_packets += t.packets;
    local.rx_bytes += t.bytes;
    local.tx_packets += t.packets;
    local.tx_bytes += t.bytes;
    local.kernel_packets += t.packets;
    local.kernel_bytes += t.bytes;
}

impl Core {
    /// Applies the ICE agents' consent changes (RFC 7675 §5.1) to the
    /// table: no consent, nothing sent to that far end.
    fn apply_consent(&mut self) {
        while let Some((leg, component, granted)) = self.ice.poll_consent() {
            let component = if component == 2 {
                crate::relay::Component::Rtcp
            } else {
                crate::relay::Component::Rtp
            };
            // A leg gone with its call has nothing left to send to.
            let _ = self.table.set_consent(leg, component, granted);
        }
    }

    fn new(now: Instant, relay: RelayConfig, identity: Arc<super::DtlsIdentity>) -> Self {
        Core {
            table: RelayTable::new(now, relay),
            local: Local::default(),
            endpoints: Slab::with_capacity(64),
            schedule: Schedule::with_capacity(ENDPOINT_RESERVE),
            fast: None,
            srtp: SrtpSide::default(),
            ice: IceSide::default(),
            dtls: DtlsSide::default(),
            identity,
        }
    }

    /// Queues `key` for service in this or the next turn.
    fn mark_ready(&mut self, key: EndpointKey) {
        if let Some(slot) = self.endpoints.get_mut(key) {
            if !slot.queued {
                slot.queued = true;
                self.schedule.push_ready(key);
            }
        }
    }

    /// When the shard must turn next for its endpoints: now when some are
    /// ready, else the earliest endpoint deadline rounded up to the next
    /// multiple of [`ENDPOINT_TIMER_GRAIN`] since `epoch`. Endpoints whose
    /// deadlines fall in one grain are served by one wake-up: thousands of
    /// endpoints cost at most one wake-up per grain, not one each, and no
    /// timer runs early or more than a grain late.
    fn endpoint_deadline(&self, epoch: Instant, now: Instant) -> Option<Instant> {
        if self.schedule.has_ready() {
            return Some(now);
        }
        let at = self.schedule.next_deadline()?;
        let grain = ENDPOINT_TIMER_GRAIN.as_nanos();
        let since = at.saturating_duration_since(epoch).as_nanos();
        let rounded = since.div_ceil(grain) * grain;
        let extra = u64::try_from(rounded - since).unwrap_or(0);
        Some(at + Duration::from_nanos(extra))
    }

    /// Moves the endpoints whose deadline is due to `ready`, running their
    /// timeout.
    fn run_due_timers(&mut self, now: Instant) {
        while let Some((at, key)) = self.schedule.pop_due(now) {
            let Some(slot) = self.endpoints.get_mut(key) else {
                continue;
            };
            if slot.armed != Some(at) {
                continue;
            }
            slot.armed = None;
            slot.endpoint.handle_timeout(now);
            self.mark_ready(key);
        }
    }

    /// Ends the service of `key` for this turn: flushes it and re-arms its
    /// timer. A deadline not after `now` (an endpoint with nothing it can
    /// do yet) is taken as the next grain, so a misbehaving endpoint cannot
    /// spin the shard.
    fn finish(&mut self, now: Instant, key: EndpointKey) {
        let Some(slot) = self.endpoints.get_mut(key) else {
            return;
        };
        slot.queued = false;
        slot.served = 0;
        slot.endpoint.flush(now);
        let next = slot
            .endpoint
            .poll_timeout()
            .map(|t| t.max(now + ENDPOINT_TIMER_GRAIN));
        if next != slot.armed {
            slot.armed = next;
            if let Some(at) = next {
                self.schedule.arm(at, key);
            }
        }
    }
}

impl Core {
    /// The verdict on a packet on a shard with SRTP-terminated streams: a
    /// packet from a terminated far end is authenticated and decrypted
    /// before the latch sees it; one forwarded where either side is
    /// terminated is queued (encrypted when its destination is) and sent
    /// as the shard's own transmit ([`Verdict::Taken`]).
    fn srtp_verdict(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) -> Verdict {
        let v = match self.srtp.inbound(stream, data) {
            Ok(plain) => {
                let plain = plain.unwrap_or(data);
                self.table.handle_packet(now, stream, src, plain, truncated)
            }
            Err(r) => {
                self.table.count_drop(stream, r);
                return Verdict::Drop(r);
            }
        };
        let Verdict::Forward { via, dest } = v else {
            return v;
        };
        match self.srtp.forward(via, dest, data) {
            Ok(true) => Verdict::Taken,
            Ok(false) => v,
            Err(r) => {
                self.table.count_drop(stream, r);
                Verdict::Drop(r)
            }
        }
    }
}

impl PacketSink for Core {
    fn on_packet(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) -> Verdict {
        self.local.rx_packets += 1;
        self.local.rx_bytes += data.len() as u64;
        if let Some(f) = &mut self.fast {
            // Another source for a stream the kernel forwards: judge it
            // against the source's latest state (the table answers from
            // the stream it looks up anyway; the map only for contenders).
            if self.table.is_offload_contender(stream, src)
                && f.offloaded
                    .get(&stream)
                    .is_some_and(|o| now.saturating_duration_since(o.read_at) >= CONTENDER_SYNC)
            {
                f.sync(&mut self.table, &mut self.local, stream, now);
            }
        }
        // STUN for a leg's ICE agent (RFC 7983 §7) never reaches the table.
        if !self.ice.is_empty() && self.ice.handle(now, stream, src, data) {
            self.local.ice_packets += 1;
            return Verdict::Taken;
        }
        // DTLS for a leg's handshake (RFC 7983 §7) neither; only the leg's
        // far end may speak to it.
        if let Some(leg) = (!self.dtls.is_empty())
            .then(|| self.dtls.leg_of(stream, data))
            .flatten()
        {
            let expected = [
                self.ice.selected_rtp(leg),
                self.table
                    .egress(leg, crate::relay::Component::Rtp)
                    .ok()
                    .map(|(_, d)| d),
            ];
            if self.dtls.handle(now, leg, src, data, &expected) {
                self.local.dtls_packets += 1;
                return Verdict::Taken;
            }
            let reason = DropReason::StrictSource;
            self.table.count_drop(stream, reason);
            self.local.drops[reason.index()] += 1;
            return Verdict::Drop(reason);
        }
        let v = if self.srtp.is_empty() {
            self.table.handle_packet(now, stream, src, data, truncated)
        } else {
            self.srtp_verdict(now, stream, src, data, truncated)
        };
        match v {
            Verdict::Forward { .. } | Verdict::Taken => {}
            Verdict::Deliver {
                endpoint,
                component,
            } => {
                if let Some(slot) = self.endpoints.get_mut(endpoint) {
                    self.local.delivered += 1;
                    slot.endpoint.handle_input(now, component, src, data);
                    self.mark_ready(endpoint);
                }
            }
            Verdict::Drop(r) => self.local.drops[r.index()] += 1,
            Verdict::UnknownStream => self.local.unknown_stream += 1,
        }
        v
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
        // Terminated SRTP first: the packets of this turn's receives.
        while let Some(r) = self.srtp.poll(buf) {
            match r {
                Ok((via, dest, len)) => {
                    return Some(OwnTransmit {
                        via,
                        dest: Some(dest),
                        len,
                    });
                }
                Err(_) => self.local.drops[DropReason::Srtp.index()] += 1,
            }
        }
        // Consent withdrawn or given back before anything is sent (also
        // after the last agent went).
        self.apply_consent();
        // ICE checks and responses; a selected pair becomes the far end.
        if !self.ice.is_empty() {
            let sent = self.ice.poll_transmit(now, buf);
            self.apply_consent();
            while let Some((leg, rtp, rtcp)) = self.ice.poll_selected() {
                if rtp.is_some() {
                    let _ = self.table.set_remote(leg, rtp, rtcp);
                    // A DTLS client waiting for its far end starts now.
                    if !self.dtls.is_empty() {
                        if let Ok(cert) = self.identity.cert() {
                            self.dtls.far_end_known(now, cert, leg);
                        }
                    }
                }
            }
            if let Some(t) = sent {
                self.local.ice_packets += 1;
                return Some(OwnTransmit {
                    via: t.via,
                    dest: Some(t.dest),
                    len: t.len,
                });
            }
        }
        // DTLS flights; a completed handshake keys the leg's SRTP.
        if !self.dtls.is_empty() {
            let mut out = None;
            while let Some(t) = self.dtls.poll_transmit(now, buf) {
                // A client with no far end yet: its retransmission timer
                // sends the flight again later.
                let egress = self.table.egress(t.leg, crate::relay::Component::Rtp);
                // RFC 7675 §5.1: nothing to a far end without consent,
                // DTLS included (the retransmission timer tries again).
                if egress == Err(DropReason::NoConsent) {
                    continue;
                }
                let dest = t.dest.or_else(|| egress.ok().map(|(_, d)| d));
                if let Some(dest) = dest {
                    self.dtls.mark_sent(t.leg);
                    self.local.dtls_packets += 1;
                    out = Some(OwnTransmit {
                        via: t.via,
                        dest: Some(dest),
                        len: t.len,
                    });
                    break;
                }
            }
            while let Some((streams, keys)) = self.dtls.poll_keyed() {
                let muxed = self.table.rtcp_mux(streams.leg).unwrap_or(false);
                let key = |k| super::SrtpKey {
                    suite: keys.suite,
                    key: k,
                    mki: None,
                };
                let state = super::SrtpState::Keys(super::LegSrtp {
                    inbound: key(keys.remote),
                    outbound: key(keys.local),
                });
                self.srtp.set(streams, state, muxed);
            }
            if out.is_some() {
                return out;
            }
        }
        loop {
            let Some(key) = self.schedule.current() else {
                // Served through: the timers due now may queue some again.
                self.run_due_timers(now);
                if !self.schedule.has_ready() {
                    return None;
                }
                continue;
            };
            let Some(slot) = self.endpoints.get_mut(key) else {
                self.schedule.advance();
                continue;
            };
            let leg = slot.leg;
            // At most MAX_PER_SERVICE datagrams per endpoint and service: an
            // endpoint that keeps producing yields to the others and the
            // rest of the loop.
            let produced = if slot.served < MAX_PER_SERVICE {
                slot.served += 1;
                slot.endpoint.poll_transmit(now, buf)
            } else {
                None
            };
            let Some(t) = produced else {
                self.schedule.advance();
                self.finish(now, key);
                continue;
            };
            self.local.produced += 1;
            match self.table.egress(leg, t.component) {
                Ok((via, dest)) => {
                    let len = t.len.min(buf.len());
                    self.table.record_sent(via, len);
                    return Some(OwnTransmit {
                        via,
                        dest: Some(dest),
                        len,
                    });
                }
                Err(reason) => {
                    self.local.drops[reason.index()] += 1;
                    if let Some(slot) = self.endpoints.get_mut(key) {
                        slot.endpoint.on_send_failed(t.component);
                    }
                }
            }
        }
    }

    fn on_sent(&mut self, _via: StreamKey, bytes: usize) {
        // The stream's own counters counted the packet when it was handed
        // to the socket (its forwarding entry, or `poll_transmit`): a
        // completion re-enters the table only for an error.
        self.local.tx_packets += 1;
        self.local.tx_bytes += bytes as u64;
    }

    fn on_send_error(&mut self, via: StreamKey, _errno: i32) {
        self.local.send_errors += 1;
        self.table.record_send_error(via);
    }
}

/// Everything a shard thread needs.
pub(crate) struct ShardParts {
    pub id: ShardId,
    pub relay: RelayConfig,
    pub mailbox: Arc<Queue<Command>>,
    pub wake: Arc<EventFd>,
    pub stats: Arc<ShardStats>,
    pub ports: Arc<PortAllocator>,
    pub events: Sender<EngineEvent>,
    /// The kernel fast path, when on.
    pub fast: Option<Arc<FastPath>>,
    /// TOS byte of relay sockets, for packets the kernel forwards.
    pub tos: Option<u8>,
    /// The relay's DTLS certificate.
    pub dtls: Arc<super::DtlsIdentity>,
}

/// Runs the shard loop until `Command::Shutdown`.
pub(crate) fn run<B: Backend>(mut backend: B, parts: ShardParts) {
    let ShardParts {
        id,
        relay,
        mailbox,
        wake,
        stats,
        ports,
        events,
        fast,
        tos,
        dtls,
    } = parts;
    stats.tid.store(sys::gettid() as u64, Ordering::Relaxed);
    let epoch = Instant::now();
    let mut core = Core::new(epoch, relay, dtls);
    if let Some(path) = fast {
        core.table.set_offload(true);
        // Media timeouts judge kernel-forwarded streams by merged
        // counters: read them several times per timeout.
        let sync_every =
            (relay.timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
        core.fast = Some(FastSide {
            path,
            tos,
            addrs: HashMap::new(),
            offloaded: HashMap::new(),
            sync_every,
            next_sync: epoch + sync_every,
        });
    }
    let mut next_cpu_sample = Instant::now();
    loop {
        let now = Instant::now();
        // The earlier of the relay's next timer and the backend's next
        // deferred receive, at most 1 s away.
        let deadline = [
            core.table.poll_timeout(),
            backend.poll_timeout(),
            core.endpoint_deadline(epoch, now),
            core.fast
                .as_ref()
                .filter(|f| !f.offloaded.is_empty())
                .map(|f| f.next_sync),
            // Terminated SRTP packets the backend had no send buffer for.
            core.srtp.has_queued().then_some(now),
            core.ice.poll_timeout(now),
            core.dtls.poll_timeout(now),
        ]
        .into_iter()
        .flatten()
        .min();
        let timeout = deadline
            .map(|d| d.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(1))
            .min(Duration::from_secs(1));
        match backend.turn(Some(timeout), &mut core) {
            // The eventfd is read only when it fired: no syscall per turn.
            Ok(true) => {
                wake.drain();
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(shard = id.0, error = %e, "backend turn failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let now = Instant::now();
        while let Some(cmd) = mailbox.pop() {
            if matches!(cmd, Command::Shutdown) {
                shutdown(&mut backend, &mut core, &ports, now);
                publish(&stats, &core, &backend);
                return;
            }
            handle_command(cmd, &mut backend, &mut core, &ports, now);
        }
        if core.table.poll_timeout().is_some_and(|d| d <= now) {
            core.table.handle_timeout(now);
        }
        while let Some(event) = core.table.poll_event() {
            // A changed forwarding entry needs nothing here: the shard
            // forwards from the table's entries themselves.
            if matches!(
                event,
                RelayEvent::Offload { .. } | RelayEvent::OffloadEnded { .. }
            ) {
                if let Some(f) = &mut core.fast {
                    f.on_event(&mut core.table, &mut core.local, event, now);
                }
                continue;
            }
            if let RelayEvent::CallTimedOut { call, tag, reason } = event {
                if let Some(removed) = remove_call(&mut backend, &mut core, &ports, call, now) {
                    core.local.timeouts += 1;
                    let _ = events.send(EngineEvent::CallTimedOut {
                        id: CallId {
                            shard: id,
                            key: call,
                        },
                        tag,
                        reason,
                        removed,
                    });
                }
            }
        }
        if let Some(f) = &mut core.fast {
            if !f.offloaded.is_empty() && now >= f.next_sync {
                f.sync_all(&mut core.table, &mut core.local, now);
            }
        }
        if now >= next_cpu_sample {
            stats
                .cpu_ns
                .store(sys::thread_cpu_time().as_nanos() as u64, Ordering::Relaxed);
            next_cpu_sample = now + Duration::from_millis(100);
        }
        publish(&stats, &core, &backend);
    }
}

fn publish<B: Backend>(stats: &ShardStats, core: &Core, backend: &B) {
    let l = &core.local;
    let r = Ordering::Relaxed;
    stats.calls.store(core.table.call_count() as u64, r);
    stats.streams.store(core.table.stream_count() as u64, r);
    stats.rx_packets.store(l.rx_packets, r);
    stats.rx_bytes.store(l.rx_bytes, r);
    stats.tx_packets.store(l.tx_packets, r);
    stats.tx_bytes.store(l.tx_bytes, r);
    stats.send_errors.store(l.send_errors, r);
    for (a, v) in stats.drops.iter().zip(l.drops) {
        a.store(v, r);
    }
    stats.unknown_stream.store(l.unknown_stream, r);
    stats.timeouts.store(l.timeouts, r);
    stats.endpoints.store(core.endpoints.len() as u64, r);
    let offloaded = core.fast.as_ref().map_or(0, |f| f.offloaded.len());
    stats.offloaded_streams.store(offloaded as u64, r);
    stats.kernel_packets.store(l.kernel_packets, r);
    stats.kernel_bytes.store(l.kernel_bytes, r);
    stats.offload_errors.store(l.offload_errors, r);
    stats.delivered.store(l.delivered, r);
    stats.produced.store(l.produced, r);
    stats.ice_packets.store(l.ice_packets, r);
    stats.dtls_packets.store(l.dtls_packets, r);
    let b = backend.counters();
    stats.syscalls.store(b.syscalls, r);
    stats.turns.store(b.turns, r);
    stats.no_buffers.store(b.no_buffers, r);
    stats.recv_errors.store(b.recv_errors, r);
    stats.recv_backoffs.store(b.recv_backoffs, r);
}

fn handle_command<B: Backend>(
    cmd: Command,
    backend: &mut B,
    core: &mut Core,
    ports: &PortAllocator,
    now: Instant,
) {
    match cmd {
        Command::AddCall { tag, legs, reply } => {
            let result = add_call(backend, core, ports, tag, legs, now);
            let key = result.as_ref().ok().map(|(key, _)| *key);
            // The caller gave up waiting (it reported an error): a call it
            // does not know of would only hold ports until its timeout.
            if reply.send(result).is_err() {
                if let Some(key) = key {
                    remove_call(backend, core, ports, key, now);
                }
            }
        }
        Command::UpdateLeg {
            call,
            leg,
            update,
            reply,
        } => {
            let _ = reply.send(update_leg(core, call, leg, update, now));
        }
        Command::Query { call, reply } => {
            if let Some(f) = &mut core.fast {
                f.sync_call(&mut core.table, &mut core.local, call, now);
            }
            let _ = reply.send(core.table.call_snapshot(call));
        }
        Command::Delete { call, reply } => {
            let _ = reply.send(remove_call(backend, core, ports, call, now));
        }
        Command::AddEndpoint {
            tag,
            leg,
            endpoint,
            reply,
        } => {
            let result = add_endpoint(backend, core, ports, tag, leg, endpoint, now);
            let key = result.as_ref().ok().map(|(key, _)| *key);
            if reply.send(result).is_err() {
                if let Some(key) = key {
                    remove_call(backend, core, ports, key, now);
                }
            }
        }
        Command::AttachEndpoint {
            call,
            leg,
            endpoint,
            reply,
        } => {
            let _ = reply.send(attach_endpoint(core, call, leg, endpoint));
        }
        Command::WakeEndpoints { call } => {
            let keys: Vec<EndpointKey> = core
                .table
                .legs_of(call)
                .map(|legs| {
                    legs.iter()
                        .filter_map(|&l| core.table.endpoint_of(l))
                        .collect()
                })
                .unwrap_or_default();
            for k in keys {
                core.mark_ready(k);
            }
        }
        Command::Shutdown => {}
    }
}

fn add_call<B: Backend>(
    backend: &mut B,
    core: &mut Core,
    ports: &PortAllocator,
    tag: u64,
    legs: Vec<NewLeg>,
    now: Instant,
) -> Result<(CallKey, Vec<LegInfo>), EngineError> {
    let call = core.table.add_call(now, tag);
    let mut infos = Vec::with_capacity(legs.len());
    let mut failure = None;
    for leg in legs {
        if failure.is_some() {
            let _ = ports.release(leg.ports, now);
            continue;
        }
        let streams = match core.table.add_leg(now, call, leg.spec) {
            Ok(s) => {
                if leg.userspace_payload_types != 0 {
                    let _ = core
                        .table
                        .set_userspace_payload_types(s.leg, leg.userspace_payload_types);
                }
                s
            }
            Err(e) => {
                failure = Some(EngineError::Relay(e));
                let _ = ports.release(leg.ports, now);
                continue;
            }
        };
        let mut res = backend.register(streams.rtp, leg.rtp);
        if let (Ok(()), Some(sock)) = (&res, leg.rtcp) {
            res = backend.register(streams.rtcp, sock);
        }
        if let Err(e) = res {
            failure = Some(EngineError::Io(e.to_string()));
        }
        let rtp_local = SocketAddr::new(leg.local_ip, leg.ports.rtp());
        let rtcp_local = if streams.rtcp == streams.rtp {
            rtp_local
        } else {
            SocketAddr::new(leg.local_ip, leg.ports.rtcp())
        };
        if let Some(f) = &mut core.fast {
            f.addrs.insert(streams.rtp, rtp_local);
            f.addrs.insert(streams.rtcp, rtcp_local);
        }
        infos.push(LegInfo {
            key: streams.leg,
            rtp: rtp_local,
            rtcp: rtcp_local,
        });
    }
    if let Some(e) = failure {
        remove_call(backend, core, ports, call, now);
        return Err(e);
    }
    if let [a, b] = infos[..] {
        core.table.pair(a.key, b.key).map_err(EngineError::Relay)?;
    }
    Ok((call, infos))
}

fn add_endpoint<B: Backend>(
    backend: &mut B,
    core: &mut Core,
    ports: &PortAllocator,
    tag: u64,
    leg: NewLeg,
    endpoint: Box<dyn Endpoint>,
    now: Instant,
) -> Result<(CallKey, LegInfo), EngineError> {
    let (call, infos) = add_call(backend, core, ports, tag, vec![leg], now)?;
    let [info] = infos[..] else {
        remove_call(backend, core, ports, call, now);
        return Err(EngineError::NoSuchLeg);
    };
    if let Err(e) = attach(core, info.key, endpoint) {
        remove_call(backend, core, ports, call, now);
        return Err(e);
    }
    Ok((call, info))
}

fn attach_endpoint(
    core: &mut Core,
    call: CallKey,
    leg: usize,
    endpoint: Box<dyn Endpoint>,
) -> Result<(), EngineError> {
    let legs = core.table.legs_of(call).ok_or(EngineError::NoSuchCall)?;
    let key = *legs.get(leg).ok_or(EngineError::NoSuchLeg)?;
    attach(core, key, endpoint)
}

/// Installs `endpoint` at the end of `leg` (replacing one already there)
/// and queues it for its first service.
fn attach(core: &mut Core, leg: LegKey, endpoint: Box<dyn Endpoint>) -> Result<(), EngineError> {
    if let Some(old) = core.table.endpoint_of(leg) {
        core.endpoints.remove(old);
    }
    let key = core.endpoints.insert(EndpointSlot {
        endpoint,
        leg,
        armed: None,
        queued: false,
        served: 0,
    });
    if let Err(e) = core.table.attach_endpoint(leg, key) {
        core.endpoints.remove(key);
        return Err(EngineError::Relay(e));
    }
    core.mark_ready(key);
    Ok(())
}

fn update_leg(
    core: &mut Core,
    call: CallKey,
    leg: usize,
    update: LegUpdate,
    now: Instant,
) -> Result<(), EngineError> {
    let legs = core.table.legs_of(call).ok_or(EngineError::NoSuchCall)?;
    let key = *legs.get(leg).ok_or(EngineError::NoSuchLeg)?;
    if let Some(p) = update.policy {
        core.table
            .update_policy(now, key, p)
            .map_err(EngineError::Relay)?;
    }
    if update.remote_rtp.is_some() || update.remote_rtcp.is_some() {
        core.table
            .set_remote(key, update.remote_rtp, update.remote_rtcp)
            .map_err(EngineError::Relay)?;
    }
    if let Some(mux) = update.rtcp_mux {
        core.table
            .set_rtcp_mux(key, mux)
            .map_err(EngineError::Relay)?;
    }
    if let Some(hold) = update.on_hold {
        core.table
            .set_on_hold(key, hold)
            .map_err(EngineError::Relay)?;
    }
    if let Some(awaiting) = update.awaiting_answer {
        core.table
            .set_awaiting_answer(key, awaiting)
            .map_err(EngineError::Relay)?;
    }
    if let Some(types) = update.userspace_payload_types {
        core.table
            .set_userspace_payload_types(key, types)
            .map_err(EngineError::Relay)?;
    }
    let streams = core.table.leg_streams(key).ok_or(EngineError::NoSuchLeg)?;
    let muxed = core.table.rtcp_mux(key).unwrap_or(false);
    if let Some(state) = update.srtp {
        core.srtp.set(streams, state, muxed);
    } else if update.rtcp_mux.is_some() {
        core.srtp.set_muxed(streams, muxed);
    }
    if let Some(ice) = update.ice {
        core.ice.set(now, streams, ice, muxed);
        // A removed or restarted agent gives its leg's consent back now,
        // before this turn's packets are judged.
        core.apply_consent();
    }
    if let Some(dtls) = update.dtls {
        let params = match dtls {
            super::DtlsUpdate::Off => None,
            super::DtlsUpdate::On(p) => Some((p, core.identity.cert().map_err(EngineError::Dtls)?)),
        };
        core.dtls
            .set(now, streams, params)
            .map_err(EngineError::Dtls)?;
    }
    Ok(())
}

fn remove_call<B: Backend>(
    backend: &mut B,
    core: &mut Core,
    ports: &PortAllocator,
    call: CallKey,
    now: Instant,
) -> Option<RemovedCall> {
    if let Some(legs) = core.table.legs_of(call) {
        for &leg in legs {
            if let Some(e) = core.table.endpoint_of(leg) {
                core.endpoints.remove(e);
            }
        }
    }
    if let Some(f) = &mut core.fast {
        f.end_call(&mut core.table, &mut core.local, call);
    }
    let removed = core.table.remove_call(call)?;
    if !core.srtp.is_empty() || !core.ice.is_empty() || !core.dtls.is_empty() {
        let keys: Vec<StreamKey> = removed.streams.iter().map(|s| s.key).collect();
        core.srtp.remove(&keys);
        core.ice.remove(&keys);
        core.dtls.remove(&keys);
    }
    for s in &removed.streams {
        backend.deregister(s.key);
        if s.kind != StreamKind::Rtcp {
            if let Err(e) = ports.release_port(s.local_port, now) {
                tracing::warn!(port = s.local_port, error = %e, "port release failed");
            }
        }
    }
    Some(removed)
}

fn shutdown<B: Backend>(backend: &mut B, core: &mut Core, ports: &PortAllocator, now: Instant) {
    let calls: Vec<CallKey> = core.table.call_keys().collect();
    for call in calls {
        remove_call(backend, core, ports, call, now);
    }
    // Turn until the kernel has finished every cancelled receive and send
    // (`in_flight` counts both), so the sockets are really closed (ports
    // free) when shutdown returns.
    let deadline = Instant::now() + Duration::from_secs(2);
    while backend.in_flight() > 0 && Instant::now() < deadline {
        let _ = backend.turn(Some(Duration::from_millis(10)), core);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortConfig;
    use std::sync::Mutex;

    /// A backend with a deferred receive due at `due`; it records the wait
    /// each turn was given and waits it out (at most 50 ms, to keep the
    /// test short).
    struct Deadline {
        due: Option<Instant>,
        waits: Arc<Mutex<Vec<Option<Duration>>>>,
    }

    impl Backend for Deadline {
        fn name(&self) -> &'static str {
            "deadline"
        }
        fn register(&mut self, _: StreamKey, _: UdpSocket) -> std::io::Result<()> {
            Ok(())
        }
        fn deregister(&mut self, _: StreamKey) {}
        fn turn<S: PacketSink>(
            &mut self,
            timeout: Option<Duration>,
            _: &mut S,
        ) -> std::io::Result<bool> {
            self.waits.lock().unwrap().push(timeout);
            let cap = Duration::from_millis(50);
            std::thread::sleep(timeout.map_or(cap, |t| t.min(cap)));
            if self.due.is_some_and(|d| d <= Instant::now()) {
                self.due = None;
            }
            Ok(false)
        }
        fn poll_timeout(&self) -> Option<Instant> {
            self.due
        }
        fn counters(&self) -> crate::engine::BackendCounters {
            crate::engine::BackendCounters::default()
        }
        fn in_flight(&self) -> usize {
            0
        }
    }

    /// Runs a shard (no calls, so no relay timer) on `backend` until it has
    /// turned `turns` times; returns the waits it gave the backend.
    fn waits_of(due: Option<Instant>, turns: usize) -> Vec<Option<Duration>> {
        let waits = Arc::new(Mutex::new(Vec::new()));
        let backend = Deadline {
            due,
            waits: waits.clone(),
        };
        let mailbox = Arc::new(Queue::new(8));
        let wake = Arc::new(EventFd::new().unwrap());
        let (events, _rx) = std::sync::mpsc::channel();
        let parts = ShardParts {
            id: ShardId(0),
            relay: RelayConfig::default(),
            mailbox: mailbox.clone(),
            wake: wake.clone(),
            stats: Arc::new(ShardStats::default()),
            ports: Arc::new(PortAllocator::new(
                PortConfig::new(40000, 40099, 1).unwrap(),
                Instant::now(),
            )),
            events,
            fast: None,
            tos: None,
            dtls: Arc::default(),
        };
        let shard = std::thread::spawn(move || run(backend, parts));
        while waits.lock().unwrap().len() < turns {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(mailbox.push(Command::Shutdown).is_ok());
        wake.notify().unwrap();
        shard.join().unwrap();
        let w = waits.lock().unwrap();
        w[..turns].to_vec()
    }

    #[test]
    fn wait_is_bounded_by_the_backend_deadline() {
        let due = Instant::now() + Duration::from_millis(30);
        let waits = waits_of(Some(due), 2);
        let first = waits[0].expect("a bounded wait");
        assert!(first <= Duration::from_millis(30), "{first:?}");
        // Once the deferred work is done, the shard waits its idle maximum.
        assert_eq!(waits[1], Some(Duration::from_secs(1)));
    }

    #[test]
    fn idle_wait_stays_capped() {
        let far = Instant::now() + Duration::from_secs(60);
        assert_eq!(waits_of(Some(far), 1), [Some(Duration::from_secs(1))]);
    }
}
