//! The relay table of one shard: calls, legs, streams, and the per-packet
//! forwarding decision.
//!
//! Contract: [`RelayTable::handle_packet`] is called once per received
//! datagram with the stream (local socket) it arrived on. It classifies the
//! packet (RTP, RTCP, rtcp-mux), applies the stream's [`Latch`], updates
//! counters, and answers [`Verdict::Forward`] with the stream whose socket
//! must send it (symmetric RTP: the port the far end was given) and the
//! destination, or [`Verdict::Drop`] with a counted reason. It never
//! allocates and never performs I/O: the shard's backend does the sending
//! and reports the outcome through [`RelayTable::record_sent`] and
//! [`RelayTable::record_send_error`].
//!
//! Media timeouts run on a [`TimerWheel`]: each call is checked once per
//! `timeout` period (no per-packet timer work); a call whose streams saw no
//! packet for `timeout` yields [`RelayEvent::CallTimedOut`], and the shard
//! removes it with [`RelayTable::remove_call`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::counters::{DropReason, RtpSummary, StreamCounters};
use super::latch::{AddressMode, Latch, LatchPolicy, LatchVerdict, RTCP_MIN_INTERVAL};
use super::slab::{Key, Slab};
use super::timer::TimerWheel;
use crate::rtcp::{self, PacketKind};
use crate::rtp::stats::{ClockRate, Outcome, ReceiveStats};
use crate::rtp::{RtpPacket, Ssrc};

/// Key of a call in a [`RelayTable`].
pub type CallKey = Key;
/// Key of a leg in a [`RelayTable`].
pub type LegKey = Key;
/// Key of a stream (one local socket) in a [`RelayTable`].
pub type StreamKey = Key;
/// Key of a local media endpoint, given by the shard that owns it.
pub type EndpointKey = Key;

/// Where media received on a leg goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Peer {
    /// Nowhere yet: dropped as [`DropReason::NoPeer`].
    None,
    /// Out of the other leg's sockets to its far end (relaying).
    Leg(LegKey),
    /// Into a local media endpoint, which sends through this leg's
    /// sockets ([`RelayTable::egress`]).
    Endpoint(EndpointKey),
}

/// Errors of the relay table's control operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The call key is unknown or stale.
    #[error("no such call")]
    NoSuchCall,
    /// The leg key is unknown or stale.
    #[error("no such leg")]
    NoSuchLeg,
    /// Legs of different calls cannot be paired.
    #[error("legs belong to different calls")]
    CrossCall,
    /// A leg cannot be paired with itself.
    #[error("a leg cannot be its own peer")]
    SelfPeer,
    /// The leg was created with rtcp-mux (one socket) and has no RTCP
    /// socket to demultiplex to.
    #[error("leg has no RTCP socket")]
    NoRtcpSocket,
}

/// Shard-wide relay settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// A call whose streams see no packet for this long is timed out
    /// (rtpengine `--timeout`, default 60 s).
    pub timeout: Duration,
    /// The same for a call with a leg on hold (`sendonly`, `recvonly`,
    /// `inactive`, `c=0.0.0.0`; see [`RelayTable::set_on_hold`]), where no
    /// media is expected (rtpengine `--silent-timeout`, default 3600 s).
    pub silent_timeout: Duration,
    /// A call is removed this long after creation whatever its media
    /// (rtpengine `--final-timeout`); `None`: no limit.
    pub final_timeout: Option<Duration>,
    /// The media timeout of a call with a leg still awaiting its answer
    /// (see [`RelayTable::set_awaiting_answer`]): a call may ring for long
    /// without early media (rtpengine `--offer-timeout`, default 3600 s).
    pub offer_timeout: Duration,
    /// Resolution of the shard's timer wheel.
    pub timer_tick: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            timeout: Duration::from_secs(60),
            silent_timeout: Duration::from_secs(3600),
            final_timeout: None,
            offer_timeout: Duration::from_secs(3600),
            timer_tick: Duration::from_millis(100),
        }
    }
}

/// Which RTP session component a packet or socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// RTP media.
    Rtp,
    /// RTCP control.
    Rtcp,
}

impl Component {
    /// 0 for RTP, 1 for RTCP.
    pub const fn index(self) -> usize {
        match self {
            Component::Rtp => 0,
            Component::Rtcp => 1,
        }
    }
}

/// What a stream's socket carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// RTP only (RTCP on port + 1).
    Rtp,
    /// RTCP only (the odd port).
    Rtcp,
    /// RTP and RTCP on one port (rtcp-mux, RFC 5761).
    Muxed,
}

/// How to set up one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegSpec {
    /// Local RTP port (the socket is the caller's business).
    pub rtp_port: u16,
    /// Local RTCP port, or `None` for rtcp-mux on the RTP port.
    pub rtcp_port: Option<u16>,
    /// Address learning policy for this leg's streams.
    pub policy: LatchPolicy,
    /// Signalled RTP address of the far end, if known.
    pub remote_rtp: Option<SocketAddr>,
    /// Signalled RTCP address (RFC 3605 `a=rtcp`), if known; otherwise
    /// RTP port + 1, or the RTP address under rtcp-mux.
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP clock rate of the media received on this leg (for jitter).
    pub clock_rate: ClockRate,
    /// The leg's far end has not answered yet: the call gets
    /// [`RelayConfig::offer_timeout`] (see [`RelayTable::set_awaiting_answer`]).
    pub awaiting_answer: bool,
}

/// The keys of a new leg's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegStreams {
    /// The leg.
    pub leg: LegKey,
    /// Its RTP (or muxed) stream.
    pub rtp: StreamKey,
    /// Its RTCP stream; equal to `rtp` under rtcp-mux.
    pub rtcp: StreamKey,
}

/// The per-packet decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send the same bytes from `via`'s socket to `dest`.
    Forward {
        /// Stream whose socket sends.
        via: StreamKey,
        /// Destination address.
        dest: SocketAddr,
    },
    /// Hand the packet to the local media endpoint the leg ends in (see
    /// [`RelayTable::attach_endpoint`]); the latch has accepted it and it
    /// is counted on the receiving stream.
    Deliver {
        /// The endpoint (the shard's own key for it).
        endpoint: EndpointKey,
        /// What the packet is.
        component: Component,
    },
    /// Drop; already counted on the receiving stream.
    Drop(DropReason),
    /// Taken by the packet sink, which sends what it made of the packet
    /// itself (e.g. the packet re-encrypted for SRTP termination). The
    /// table never answers this; a sink answers its backend with it.
    Taken,
    /// The stream key is stale (its call was removed): the caller counts it
    /// at shard level.
    UnknownStream,
}

/// Something the shard must act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// The call must go: no media for its timeout, or its final timeout.
    CallTimedOut {
        /// The call.
        call: CallKey,
        /// The caller's tag given at [`RelayTable::add_call`].
        tag: u64,
        /// Which timeout.
        reason: TimeoutReason,
    },
    /// Where a stream's packets of one component go changed (a far end
    /// latched or moved, signalling, pairing, rtcp-mux): `route` is the
    /// stream's new forwarding entry, the decision every such packet now
    /// gets once the latch has accepted it. A forwarding path outside the
    /// table (a kernel fast path) keeps its copy up to date from these.
    RouteChanged {
        /// The receiving stream.
        stream: StreamKey,
        /// RTP or RTCP.
        component: Component,
        /// The new entry: `Forward`, `Deliver` or `Drop`.
        route: Verdict,
    },
    /// A stream's RTP may now be forwarded outside the table (a kernel
    /// fast path; see [`RelayTable::set_offload`]): its far end is latched
    /// and out of its learning window, and its RTP is forwarded. Only RTP
    /// from `source` with a payload type not in `userspace_payload_types`
    /// may be forwarded there; everything else must still come to
    /// [`RelayTable::handle_packet`]. What is forwarded there is merged
    /// back with [`RelayTable::merge_offloaded`].
    Offload {
        /// The receiving stream.
        stream: StreamKey,
        /// The latched source.
        source: SocketAddr,
        /// Stream whose socket sends.
        via: StreamKey,
        /// Destination address.
        dest: SocketAddr,
        /// RTP payload types (bit n = payload type n) the table must see
        /// ([`RelayTable::set_userspace_payload_types`]).
        userspace_payload_types: u128,
    },
    /// The entry given by the last [`RelayEvent::Offload`] of `stream` no
    /// longer holds (re-latch, signalling, policy, removal): forwarding it
    /// outside the table must stop, and what was forwarded until then is
    /// merged with `via` as the sending stream.
    OffloadEnded {
        /// The receiving stream.
        stream: StreamKey,
        /// The sending stream of the ended entry.
        via: StreamKey,
    },
}

/// What a forwarding path outside the table forwarded for one offloaded
/// stream since the last merge ([`RelayTable::merge_offloaded`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OffloadedTraffic {
    /// Packets forwarded.
    pub packets: u64,
    /// Their bytes (UDP payload).
    pub bytes: u64,
    /// Arrival of the last one.
    pub last: Option<Instant>,
    /// SSRC and sequence number of the last one.
    pub last_rtp: Option<(Ssrc, u16)>,
    /// Packets among them whose sequence number was not the previous
    /// one + 1.
    pub seq_jumps: u64,
}

/// Ends `st`'s offload, if it has one: reports
/// [`RelayEvent::OffloadEnded`] with the sending stream of its RTP entry
/// (call it before that entry changes).
fn take_offload(st: &mut Stream, stream: StreamKey, events: &mut VecDeque<RelayEvent>) {
    if std::mem::take(&mut st.offloaded) {
        if let Verdict::Forward { via, .. } = st.routes[Component::Rtp.index()].verdict {
            events.push_back(RelayEvent::OffloadEnded { stream, via });
        }
    }
}

/// Why a call timed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutReason {
    /// No packet for `timeout` (or `silent_timeout` while on hold).
    NoMedia,
    /// `final_timeout` after creation.
    Final,
}

/// A point-in-time copy of one stream's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// The stream.
    pub key: StreamKey,
    /// Its leg.
    pub leg: LegKey,
    /// What its socket carries.
    pub kind: StreamKind,
    /// Local port.
    pub local_port: u16,
    /// Learned address, if any.
    pub latched: Option<SocketAddr>,
    /// Signalled address, if any.
    pub signalled: Option<SocketAddr>,
    /// Counters.
    pub counters: StreamCounters,
    /// RTP statistics of the current source, for RTP-carrying streams.
    pub rtp: Option<RtpSummary>,
}

/// What [`RelayTable::remove_call`] hands back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovedCall {
    /// The caller's tag.
    pub tag: u64,
    /// Final state of each stream (the caller closes their sockets and
    /// releases their ports).
    pub streams: Vec<StreamSnapshot>,
}

#[derive(Debug)]
struct Stream {
    leg: LegKey,
    kind: StreamKind,
    local_port: u16,
    latch: Latch,
    counters: StreamCounters,
    clock_rate: ClockRate,
    /// Receive statistics of the current RTP source (replaced when the
    /// SSRC changes).
    rtp_stats: Option<ReceiveStats>,
    /// The forwarding entry per component ([`Component::index`]): where an
    /// accepted packet goes, kept up to date by every change that moves it
    /// ([`RelayTable::refresh_routes`]), so that a packet costs one stream
    /// lookup.
    routes: [Route; 2],
    /// Its RTP entry is handed to a forwarding path outside the table
    /// ([`RelayEvent::Offload`]); the entry's sending stream is that of
    /// `routes[Rtp]`, which ends the offload whenever it changes.
    offloaded: bool,
}

/// A stream's forwarding entry for one component, with what it forwarded
/// since it was set (counted on the sending stream when it changes, see
/// [`RelayTable::sent_totals`]).
#[derive(Debug, Clone, Copy)]
struct Route {
    verdict: Verdict,
    packets: u64,
    bytes: u64,
}

impl Route {
    const NONE: Route = Route {
        verdict: Verdict::Drop(DropReason::NoPeer),
        packets: 0,
        bytes: 0,
    };
}

#[derive(Debug)]
struct Leg {
    call: CallKey,
    peer: Peer,
    rtp: StreamKey,
    /// The leg's own RTCP socket; equal to `rtp` when created muxed.
    rtcp: StreamKey,
    /// RTCP to this leg's far end leaves from the RTP socket (RFC 5761);
    /// set at creation without an RTCP socket, or by
    /// [`RelayTable::set_rtcp_mux`].
    muxed: bool,
    /// No media expected from this leg's far end (hold):
    /// [`RelayTable::set_on_hold`].
    on_hold: bool,
    /// The far end has not answered: [`RelayTable::set_awaiting_answer`].
    awaiting_answer: bool,
    /// RTP payload types received on this leg that must not be offloaded
    /// (bit n = type n, low word first; two words keep the leg 8-byte
    /// aligned): [`RelayTable::set_userspace_payload_types`].
    userspace_payload_types: [u64; 2],
    /// The far end's consent to receive is lost, per socket (RTP, RTCP):
    /// [`RelayTable::set_consent`].
    consent_lost: [bool; 2],
}

impl Leg {
    /// The leg's sockets' streams: RTP, then RTCP unless muxed at creation.
    fn streams(&self) -> impl Iterator<Item = StreamKey> + use<> {
        let rtcp = (self.rtcp != self.rtp).then_some(self.rtcp);
        std::iter::once(self.rtp).chain(rtcp)
    }
}

#[derive(Debug)]
struct Call {
    tag: u64,
    created: Instant,
    /// When the call's armed timer fires; an earlier-firing timer for
    /// this call is stale and ignored.
    next_check: Instant,
    /// Last signalling activity (creation, leg changes): counts as activity
    /// for the media timeout, so a fresh call is not timed out at once.
    last_signal: Instant,
    legs: Vec<LegKey>,
}

/// Calls, legs and streams of one shard, and the forwarding decision.
#[derive(Debug)]
pub struct RelayTable {
    config: RelayConfig,
    calls: Slab<Call>,
    legs: Slab<Leg>,
    streams: Slab<Stream>,
    timers: TimerWheel<CallKey>,
    expired: Vec<CallKey>,
    events: VecDeque<RelayEvent>,
    /// Emit [`RelayEvent::Offload`] for streams that qualify.
    offload: bool,
}

impl RelayTable {
    /// An empty table; `now` starts its timer wheel.
    pub fn new(now: Instant, config: RelayConfig) -> Self {
        RelayTable {
            config,
            calls: Slab::default(),
            legs: Slab::default(),
            streams: Slab::default(),
            timers: TimerWheel::new(now, config.timer_tick, 1024),
            expired: Vec::new(),
            events: VecDeque::new(),
            offload: false,
        }
    }

    /// The settings.
    pub fn config(&self) -> RelayConfig {
        self.config
    }

    /// Number of calls.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// Number of streams (local sockets).
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Keys of every live call.
    pub fn call_keys(&self) -> impl Iterator<Item = CallKey> + '_ {
        self.calls.iter().map(|(k, _)| k)
    }

    /// The legs of a call, in the order they were added.
    pub fn legs_of(&self, call: CallKey) -> Option<&[LegKey]> {
        self.calls.get(call).map(|c| c.legs.as_slice())
    }

    /// Creates an empty call carrying an opaque `tag`.
    pub fn add_call(&mut self, now: Instant, tag: u64) -> CallKey {
        let first = self
            .config
            .final_timeout
            .map_or(self.config.timeout, |f| f.min(self.config.timeout));
        let key = self.calls.insert(Call {
            tag,
            created: now,
            next_check: now + first,
            last_signal: now,
            legs: Vec::with_capacity(2),
        });
        self.timers.insert(now + first, key);
        key
    }

    /// Adds a leg to `call`, with its RTP and RTCP (or one muxed) streams.
    pub fn add_leg(
        &mut self,
        now: Instant,
        call: CallKey,
        spec: LegSpec,
    ) -> Result<LegStreams, RelayError> {
        let c = self.calls.get_mut(call).ok_or(RelayError::NoSuchCall)?;
        c.last_signal = now;
        // Keys are needed before the leg exists: insert the leg with
        // placeholder stream keys, then fix them up.
        let leg = self.legs.insert(Leg {
            call,
            peer: Peer::None,
            rtp: Key::from_parts(u32::MAX, 0),
            rtcp: Key::from_parts(u32::MAX, 0),
            muxed: spec.rtcp_port.is_none(),
            on_hold: false,
            consent_lost: [false; 2],
            awaiting_answer: spec.awaiting_answer,
            userspace_payload_types: [0; 2],
        });
        c.legs.push(leg);
        let rtp_kind = if spec.rtcp_port.is_some() {
            StreamKind::Rtp
        } else {
            StreamKind::Muxed
        };
        let mut rtp_latch = Latch::new(spec.policy, now);
        rtp_latch.set_signalled(spec.remote_rtp);
        let rtp = self.streams.insert(Stream {
            leg,
            kind: rtp_kind,
            local_port: spec.rtp_port,
            latch: rtp_latch,
            counters: StreamCounters::default(),
            clock_rate: spec.clock_rate,
            rtp_stats: None,
            routes: [Route::NONE; 2],
            offloaded: false,
        });
        let rtcp = match spec.rtcp_port {
            None => rtp,
            Some(port) => {
                // RTCP reports come seconds apart (RFC 3550 §6.2): hold the
                // source for its report interval, not for an RTP ptime.
                let mut latch = Latch::new(spec.policy, now).with_interval_floor(RTCP_MIN_INTERVAL);
                latch.set_signalled(spec.remote_rtcp.or_else(|| rtcp_of(spec.remote_rtp)));
                self.streams.insert(Stream {
                    leg,
                    kind: StreamKind::Rtcp,
                    local_port: port,
                    latch,
                    counters: StreamCounters::default(),
                    clock_rate: spec.clock_rate,
                    rtp_stats: None,
                    routes: [Route::NONE; 2],
                    offloaded: false,
                })
            }
        };
        if let Some(l) = self.legs.get_mut(leg) {
            l.rtp = rtp;
            l.rtcp = rtcp;
        }
        self.refresh_routes(leg);
        Ok(LegStreams { leg, rtp, rtcp })
    }

    /// Makes `a` and `b` each other's peer: media received on one leaves
    /// from the other.
    pub fn pair(&mut self, a: LegKey, b: LegKey) -> Result<(), RelayError> {
        if a == b {
            return Err(RelayError::SelfPeer);
        }
        let ca = self.legs.get(a).ok_or(RelayError::NoSuchLeg)?.call;
        let cb = self.legs.get(b).ok_or(RelayError::NoSuchLeg)?.call;
        if ca != cb {
            return Err(RelayError::CrossCall);
        }
        for (x, y) in [(a, b), (b, a)] {
            if let Some(l) = self.legs.get_mut(x) {
                l.peer = Peer::Leg(y);
            }
        }
        self.refresh_routes(a);
        self.refresh_routes(b);
        Ok(())
    }

    /// Ends `leg` in a local media endpoint instead of a peer leg: what its
    /// latch accepts is [`Verdict::Deliver`]ed to `endpoint`, and the
    /// endpoint's own packets leave from the leg's sockets to its far end
    /// ([`egress`](Self::egress)). A leg paired with another becomes
    /// unpaired on both sides.
    pub fn attach_endpoint(
        &mut self,
        leg: LegKey,
        endpoint: EndpointKey,
    ) -> Result<(), RelayError> {
        let l = self.legs.get_mut(leg).ok_or(RelayError::NoSuchLeg)?;
        let old = std::mem::replace(&mut l.peer, Peer::Endpoint(endpoint));
        if let Peer::Leg(other) = old {
            if let Some(o) = self.legs.get_mut(other) {
                o.peer = Peer::None;
            }
            self.refresh_routes(other);
        }
        self.refresh_routes(leg);
        Ok(())
    }

    /// The endpoint `leg` ends in, if any.
    pub fn endpoint_of(&self, leg: LegKey) -> Option<EndpointKey> {
        match self.legs.get(leg)?.peer {
            Peer::Endpoint(e) => Some(e),
            _ => None,
        }
    }

    /// Sets the signalled addresses of a leg's far end (answer, re-offer).
    /// `rtcp: None` derives RTP port + 1 (or the RTP address under mux).
    pub fn set_remote(
        &mut self,
        leg: LegKey,
        rtp: Option<SocketAddr>,
        rtcp: Option<SocketAddr>,
    ) -> Result<(), RelayError> {
        let l = self.legs.get(leg).ok_or(RelayError::NoSuchLeg)?;
        let (rtp_key, rtcp_key) = (l.rtp, l.rtcp);
        if let Some(s) = self.streams.get_mut(rtp_key) {
            s.latch.set_signalled(rtp);
        }
        if rtcp_key != rtp_key {
            if let Some(s) = self.streams.get_mut(rtcp_key) {
                s.latch.set_signalled(rtcp.or_else(|| rtcp_of(rtp)));
            }
        }
        self.refresh_peer_routes(leg);
        Ok(())
    }

    /// Switches a leg's RTCP between its own socket (`false`) and rtcp-mux
    /// on the RTP socket (`true`, RFC 5761), e.g. when the answer accepts
    /// or declines the mux that was offered. Under mux, packets to this
    /// leg's far end (RTCP included) leave from its RTP socket to its RTP
    /// send address. RTCP arriving on the RTP socket is classified as RTCP
    /// either way (RFC 5761 §4). A leg created with two sockets keeps its
    /// RTCP socket open while muxed (packets arriving there are still
    /// relayed); a leg created muxed cannot be demultiplexed
    /// ([`RelayError::NoRtcpSocket`]).
    pub fn set_rtcp_mux(&mut self, leg: LegKey, mux: bool) -> Result<(), RelayError> {
        let l = self.legs.get_mut(leg).ok_or(RelayError::NoSuchLeg)?;
        if l.rtcp == l.rtp {
            return if mux {
                Ok(())
            } else {
                Err(RelayError::NoRtcpSocket)
            };
        }
        l.muxed = mux;
        let rtp = l.rtp;
        if let Some(s) = self.streams.get_mut(rtp) {
            s.kind = if mux {
                StreamKind::Muxed
            } else {
                StreamKind::Rtp
            };
        }
        self.refresh_peer_routes(leg);
        Ok(())
    }

    /// Whether a leg's RTCP is muxed on its RTP socket (`None`: no such leg).
    pub fn rtcp_mux(&self, leg: LegKey) -> Option<bool> {
        self.legs.get(leg).map(|l| l.muxed)
    }

    /// Replaces a leg's learning policy and opens a new learning window
    /// (re-offer); signalling counts as call activity.
    pub fn update_policy(
        &mut self,
        now: Instant,
        leg: LegKey,
        policy: LatchPolicy,
    ) -> Result<(), RelayError> {
        let l = self.legs.get(leg).ok_or(RelayError::NoSuchLeg)?;
        let (call, rtp, rtcp) = (l.call, l.rtp, l.rtcp);
        for key in [rtp, rtcp] {
            if let Some(s) = self.streams.get_mut(key) {
                s.latch.set_policy(policy, now);
            }
            // Learning starts over: the table judges every packet again.
            self.end_offload(key);
        }
        if let Some(c) = self.calls.get_mut(call) {
            c.last_signal = now;
        }
        self.refresh_peer_routes(leg);
        Ok(())
    }

    /// Removes a call with its legs and streams; returns their final state.
    pub fn remove_call(&mut self, call: CallKey) -> Option<RemovedCall> {
        // Snapshots first: a stream's sent totals are read from its peer's
        // forwarding entries. Legs pair only within their call, so no
        // entry outside it points at what goes.
        let streams = self.call_snapshot(call)?;
        let c = self.calls.remove(call)?;
        for leg_key in c.legs {
            let Some(leg) = self.legs.remove(leg_key) else {
                continue;
            };
            for key in leg.streams() {
                self.streams.remove(key);
            }
        }
        Some(RemovedCall {
            tag: c.tag,
            streams,
        })
    }

    /// The per-packet decision for `data` received on `stream` from `src`.
    /// `truncated`: the datagram did not fit the receive buffer.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) -> Verdict {
        let Some(st) = self.streams.get_mut(stream) else {
            return Verdict::UnknownStream;
        };
        if truncated {
            st.counters.drop_packet(DropReason::Oversize);
            return Verdict::Drop(DropReason::Oversize);
        }
        let (component, rtp) = match classify(st.kind, data) {
            Ok(c) => c,
            Err(reason) => {
                st.counters.drop_packet(reason);
                return Verdict::Drop(reason);
            }
        };
        let rtp_id = rtp.as_ref().map(|p| (p.ssrc(), p.sequence()));
        let st = match st.latch.check(now, src, rtp_id) {
            LatchVerdict::Accept => st,
            LatchVerdict::Latched { previous } => {
                if previous.is_some() {
                    st.counters.relatches += 1;
                }
                take_offload(st, stream, &mut self.events);
                // Packets towards this far end now go to where it sends
                // from: the peer's forwarding entries change (rare: once
                // per stream, or when the far end moves).
                let leg = st.leg;
                self.refresh_peer_routes(leg);
                match self.streams.get_mut(stream) {
                    Some(st) => st,
                    None => return Verdict::UnknownStream,
                }
            }
            LatchVerdict::Drop(reason) => {
                st.counters.drop_packet(reason);
                return Verdict::Drop(reason);
            }
        };
        st.counters.packets += 1;
        st.counters.bytes += data.len() as u64;
        st.counters.last_packet = Some(now);
        if let Some(p) = &rtp {
            st.counters.last_ssrc = Some(p.ssrc());
            update_stats(&mut st.rtp_stats, st.clock_rate, now, p);
        }
        let route = &mut st.routes[component.index()];
        match route.verdict {
            Verdict::Forward { via, dest } => {
                route.packets += 1;
                route.bytes += data.len() as u64;
                // A leg whose every payload type stays in userspace (its
                // packets are transformed there, e.g. SRTP) is never offloaded.
                let all_userspace = self
                    .legs
                    .get(st.leg)
                    .is_some_and(|l| l.userspace_payload_types == [u64::MAX; 2]);
                if self.offload
                    && !all_userspace
                    && component == Component::Rtp
                    && !st.offloaded
                    && st.kind != StreamKind::Rtcp
                    && st.latch.policy().mode == AddressMode::Symmetric
                    && st.latch.latched() == Some(src)
                    && !st.latch.is_learning(now)
                {
                    st.offloaded = true;
                    let userspace_payload_types = self.legs.get(st.leg).map_or(0, |l| {
                        u128::from(l.userspace_payload_types[0])
                            | u128::from(l.userspace_payload_types[1]) << 64
                    });
                    self.events.push_back(RelayEvent::Offload {
                        stream,
                        source: src,
                        via,
                        dest,
                        userspace_payload_types,
                    });
                }
            }
            Verdict::Drop(reason) => st.counters.drop_packet(reason),
            Verdict::Deliver { .. } | Verdict::Taken | Verdict::UnknownStream => {}
        }
        route.verdict
    }

    /// Recomputes the forwarding entries of `leg`'s streams (after its
    /// peer, or the peer's sockets or far-end addresses, changed); a
    /// changed entry is reported as [`RelayEvent::RouteChanged`], and what
    /// the old entry forwarded is counted on the stream it sent from.
    fn refresh_routes(&mut self, leg: LegKey) {
        let Some(l) = self.legs.get(leg) else {
            return;
        };
        for key in l.streams() {
            for component in [Component::Rtp, Component::Rtcp] {
                let verdict = self.route(leg, component);
                let Some(st) = self.streams.get_mut(key) else {
                    continue;
                };
                if st.routes[component.index()].verdict == verdict {
                    continue;
                }
                // The offloaded entry goes with the entry it copied.
                if component == Component::Rtp {
                    take_offload(st, key, &mut self.events);
                }
                let old = std::mem::replace(
                    &mut st.routes[component.index()],
                    Route {
                        verdict,
                        packets: 0,
                        bytes: 0,
                    },
                );
                if let Verdict::Forward { via, .. } = old.verdict {
                    if let Some(out) = self.streams.get_mut(via) {
                        out.counters.sent_packets += old.packets;
                        out.counters.sent_bytes += old.bytes;
                    }
                }
                self.events.push_back(RelayEvent::RouteChanged {
                    stream: key,
                    component,
                    route: verdict,
                });
            }
        }
    }

    /// Recomputes the forwarding entries of the leg `leg` is paired with:
    /// after something about `leg` (its far-end addresses, its sockets)
    /// changed where packets towards it go.
    fn refresh_peer_routes(&mut self, leg: LegKey) {
        if let Some(Peer::Leg(peer)) = self.legs.get(leg).map(|l| l.peer) {
            self.refresh_routes(peer);
        }
    }

    /// Packets and bytes `via`'s socket was handed to send: what entries
    /// that forwarded through it before they changed, and local endpoint
    /// packets ([`record_sent`](Self::record_sent)), plus what the current
    /// entries of its leg's peer forward through it.
    fn sent_totals(&self, via: StreamKey, s: &Stream) -> (u64, u64) {
        let (mut packets, mut bytes) = (s.counters.sent_packets, s.counters.sent_bytes);
        let Some(Peer::Leg(peer)) = self.legs.get(s.leg).map(|l| l.peer) else {
            return (packets, bytes);
        };
        let Some(p) = self.legs.get(peer) else {
            return (packets, bytes);
        };
        for st in p.streams().filter_map(|k| self.streams.get(k)) {
            for r in &st.routes {
                if matches!(r.verdict, Verdict::Forward { via: v, .. } if v == via) {
                    packets += r.packets;
                    bytes += r.bytes;
                }
            }
        }
        (packets, bytes)
    }

    /// Where a `component` packet received on `leg` goes.
    fn route(&self, leg: LegKey, component: Component) -> Verdict {
        let peer = match self.legs.get(leg).map(|l| l.peer) {
            Some(Peer::Leg(p)) => p,
            Some(Peer::Endpoint(endpoint)) => {
                return Verdict::Deliver {
                    endpoint,
                    component,
                };
            }
            _ => return Verdict::Drop(DropReason::NoPeer),
        };
        match self.egress(peer, component) {
            Ok((via, dest)) => Verdict::Forward { via, dest },
            Err(reason) => Verdict::Drop(reason),
        }
    }

    /// The socket a `component` packet leaves `leg` from, and its far end's
    /// address (latched, else signalled): where a relayed packet or a local
    /// endpoint's own packet for that leg goes. RFC 5761 §4: a muxed leg
    /// sends RTCP from its RTP socket; an RTCP socket with nothing learned
    /// or signalled follows the RTP address, port + 1 (RFC 3550 §11).
    pub fn egress(
        &self,
        leg: LegKey,
        component: Component,
    ) -> Result<(StreamKey, SocketAddr), DropReason> {
        let peer = self.legs.get(leg).ok_or(DropReason::NoPeer)?;
        let via = match component {
            Component::Rtp => peer.rtp,
            Component::Rtcp if peer.muxed => peer.rtp,
            Component::Rtcp => peer.rtcp,
        };
        let out = self.streams.get(via).ok_or(DropReason::NoPeer)?;
        // RFC 7675 §5.1: no consent, no transmission (the RTP socket's
        // consent covers what leaves from it under rtcp-mux).
        let socket = if via == peer.rtp {
            Component::Rtp
        } else {
            Component::Rtcp
        };
        if peer.consent_lost[socket.index()] {
            return Err(DropReason::NoConsent);
        }
        let dest = out.latch.send_addr().or_else(|| {
            if component == Component::Rtcp && via != peer.rtp {
                let rtp = self.streams.get(peer.rtp)?;
                rtcp_of(rtp.latch.send_addr())
            } else {
                None
            }
        });
        dest.map(|d| (via, d)).ok_or(DropReason::NoDestination)
    }

    /// Records a local endpoint's packet of `bytes` handed to `via`'s
    /// socket for sending. Relayed packets are counted by the forwarding
    /// entry that sends them, so their send completions never come back
    /// here (only errors do: [`record_send_error`](Self::record_send_error)).
    pub fn record_sent(&mut self, via: StreamKey, bytes: usize) {
        if let Some(s) = self.streams.get_mut(via) {
            s.counters.sent_packets += 1;
            s.counters.sent_bytes += bytes as u64;
        }
    }

    /// Records a failed send from `via`'s socket (never fatal).
    pub fn record_send_error(&mut self, via: StreamKey) {
        if let Some(s) = self.streams.get_mut(via) {
            s.counters.errors += 1;
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) next has work.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Runs the timers due at `now`: checks media timeouts.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.expired);
        self.timers.expire(now, &mut expired);
        for call in expired.drain(..) {
            let Some(c) = self.calls.get(call) else {
                continue;
            };
            if now < c.next_check {
                // Superseded by a timer armed for an earlier check.
                continue;
            }
            let (media_due, final_due) = self.deadlines(c);
            let tag = c.tag;
            let reason = if final_due.is_some_and(|d| d <= now) {
                Some(TimeoutReason::Final)
            } else if media_due <= now {
                Some(TimeoutReason::NoMedia)
            } else {
                None
            };
            match reason {
                Some(reason) => {
                    self.events
                        .push_back(RelayEvent::CallTimedOut { call, tag, reason })
                }
                None => {
                    let due = final_due.map_or(media_due, |f| f.min(media_due));
                    self.rearm(call, due);
                }
            }
        }
        self.expired = expired;
    }

    /// When the call times out for lack of media, and for its final
    /// timeout. A call awaiting its answer gets the offer timeout, one with
    /// a leg on hold the silent timeout, others the media timeout.
    fn deadlines(&self, c: &Call) -> (Instant, Option<Instant>) {
        let any = |f: fn(&Leg) -> bool| c.legs.iter().any(|l| self.legs.get(*l).is_some_and(f));
        let timeout = if any(|l| l.awaiting_answer) {
            self.config.offer_timeout
        } else if any(|l| l.on_hold) {
            self.config.silent_timeout
        } else {
            self.config.timeout
        };
        (
            self.last_activity(c) + timeout,
            self.config.final_timeout.map(|f| c.created + f),
        )
    }

    fn rearm(&mut self, call: CallKey, due: Instant) {
        if let Some(c) = self.calls.get_mut(call) {
            c.next_check = due;
            self.timers.insert(due, call);
        }
    }

    /// Records whether `leg`'s far end consents to receive on the socket of
    /// `component` (RFC 7675: ICE consent freshness, checked by the leg's
    /// ICE agent). Without consent nothing is sent there, relayed or
    /// local, and packets for it are dropped as
    /// [`DropReason::NoConsent`]; a kernel fast-path entry forwarding to it
    /// ends. Under rtcp-mux the RTP socket's consent covers RTCP too.
    pub fn set_consent(
        &mut self,
        leg: LegKey,
        component: Component,
        granted: bool,
    ) -> Result<(), RelayError> {
        let l = self.legs.get_mut(leg).ok_or(RelayError::NoSuchLeg)?;
        let lost = &mut l.consent_lost[component.index()];
        if *lost != granted {
            return Ok(());
        }
        *lost = !granted;
        self.refresh_peer_routes(leg);
        Ok(())
    }

    /// Marks a leg on hold (no media expected: `sendonly`, `recvonly`,
    /// `inactive`, `c=0.0.0.0`) or back; a call with a leg on hold times
    /// out after `silent_timeout` instead of `timeout`.
    pub fn set_on_hold(&mut self, leg: LegKey, on_hold: bool) -> Result<(), RelayError> {
        let l = self.legs.get_mut(leg).ok_or(RelayError::NoSuchLeg)?;
        l.on_hold = on_hold;
        let call = l.call;
        self.deadline_changed(call);
        Ok(())
    }

    /// Marks a leg as still awaiting its far end's answer (an offer went
    /// out, no answer came back) or answered. While any leg awaits its
    /// answer the call times out after `offer_timeout` instead of
    /// `timeout`, so a call that rings for minutes without early media
    /// keeps its relay.
    pub fn set_awaiting_answer(&mut self, leg: LegKey, awaiting: bool) -> Result<(), RelayError> {
        let l = self.legs.get_mut(leg).ok_or(RelayError::NoSuchLeg)?;
        l.awaiting_answer = awaiting;
        let call = l.call;
        self.deadline_changed(call);
        Ok(())
    }

    /// Re-arms `call`'s timer when its deadline moved earlier.
    fn deadline_changed(&mut self, call: CallKey) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        // A shorter deadline than the armed one needs its own timer.
        let (media_due, final_due) = self.deadlines(c);
        let due = final_due.map_or(media_due, |f| f.min(media_due));
        if due < c.next_check {
            self.rearm(call, due);
        }
    }

    fn last_activity(&self, c: &Call) -> Instant {
        let mut last = c.last_signal;
        for leg in &c.legs {
            let Some(l) = self.legs.get(*leg) else {
                continue;
            };
            for key in [l.rtp, l.rtcp] {
                if let Some(t) = self.streams.get(key).and_then(|s| s.counters.last_packet) {
                    last = last.max(t);
                }
            }
        }
        last
    }

    /// Lets streams be forwarded outside the table (a kernel fast path):
    /// from now on a stream whose far end is latched (symmetric) and out of
    /// its learning window is reported once as [`RelayEvent::Offload`] when
    /// its next RTP packet is forwarded, and as
    /// [`RelayEvent::OffloadEnded`] when that no longer holds. Turning it
    /// off ends every offload.
    pub fn set_offload(&mut self, on: bool) {
        self.offload = on;
        if !on {
            let keys: Vec<StreamKey> = self
                .streams
                .iter()
                .filter(|(_, s)| s.offloaded)
                .map(|(k, _)| k)
                .collect();
            for k in keys {
                self.end_offload(k);
            }
        }
    }

    /// Sets the RTP payload types (bit n = payload type n) received on
    /// `leg` that must reach the table even when the stream is offloaded,
    /// e.g. telephone-event (RFC 4733). A change ends the offload; the next
    /// packet offers it again.
    pub fn set_userspace_payload_types(
        &mut self,
        leg: LegKey,
        types: u128,
    ) -> Result<(), RelayError> {
        let l = self.legs.get_mut(leg).ok_or(RelayError::NoSuchLeg)?;
        let words = [types as u64, (types >> 64) as u64];
        if l.userspace_payload_types != words {
            l.userspace_payload_types = words;
            let (rtp, rtcp) = (l.rtp, l.rtcp);
            self.end_offload(rtp);
            self.end_offload(rtcp);
        }
        Ok(())
    }

    /// The sending stream of `stream`'s offloaded entry, if it has one.
    pub fn offloaded(&self, stream: StreamKey) -> Option<StreamKey> {
        let st = self.streams.get(stream)?;
        match st.routes[Component::Rtp.index()].verdict {
            Verdict::Forward { via, .. } if st.offloaded => Some(via),
            _ => None,
        }
    }

    /// Ends `stream`'s offload, if it has one.
    fn end_offload(&mut self, stream: StreamKey) {
        if let Some(st) = self.streams.get_mut(stream) {
            take_offload(st, stream, &mut self.events);
        }
    }

    /// Ends the offload of every stream of `call` (before it is removed, so
    /// that what was forwarded outside can still be merged).
    pub fn end_call_offloads(&mut self, call: CallKey) {
        for k in self.call_streams(call) {
            self.end_offload(k);
        }
    }

    /// Counts a packet received on `stream` that the caller dropped before
    /// or after the table's decision (e.g. SRTP authentication failed),
    /// so the stream's counters (NG `query`) show it.
    pub fn count_drop(&mut self, stream: StreamKey, reason: DropReason) {
        if let Some(st) = self.streams.get_mut(stream) {
            st.counters.drop_packet(reason);
        }
    }

    /// `leg`'s streams: its RTP (or muxed) socket's and its RTCP socket's
    /// (the same under rtcp-mux at creation).
    pub fn leg_streams(&self, leg: LegKey) -> Option<LegStreams> {
        let l = self.legs.get(leg)?;
        Some(LegStreams {
            leg,
            rtp: l.rtp,
            rtcp: l.rtcp,
        })
    }

    /// The streams (sockets) of `call`'s legs; empty for no such call.
    pub fn call_streams(&self, call: CallKey) -> Vec<StreamKey> {
        let Some(c) = self.calls.get(call) else {
            return Vec::new();
        };
        c.legs
            .iter()
            .filter_map(|l| self.legs.get(*l))
            .flat_map(|l| l.streams())
            .collect()
    }

    /// Whether a packet from `src` for `stream` is one the latch must judge
    /// against its source's latest state: the stream is offloaded and `src`
    /// is not its latched source (a contender; the forwarding path outside
    /// the table passes those on). The caller merges that path's counts
    /// ([`merge_offloaded`](Self::merge_offloaded)) first.
    pub fn is_offload_contender(&self, stream: StreamKey, src: SocketAddr) -> bool {
        self.streams
            .get(stream)
            .is_some_and(|st| st.offloaded && st.latch.latched() != Some(src))
    }

    /// Merges what a forwarding path outside the table forwarded for
    /// `stream` (offloaded now or until its [`RelayEvent::OffloadEnded`]),
    /// sent from `via`: the receive and send counters, the last packet's
    /// time and SSRC (media timeouts), and the latch's view of its source
    /// (so that a contender is judged against a source known to be
    /// active).
    pub fn merge_offloaded(&mut self, stream: StreamKey, via: StreamKey, t: OffloadedTraffic) {
        if t.packets == 0 {
            return;
        }
        if let Some(st) = self.streams.get_mut(stream) {
            st.counters.packets += t.packets;
            st.counters.bytes += t.bytes;
            st.counters.offloaded_seq_jumps += t.seq_jumps;
            if let Some(last) = t.last {
                st.counters.last_packet =
                    Some(st.counters.last_packet.map_or(last, |p| p.max(last)));
                st.latch.observe(last, t.last_rtp, t.packets);
            }
            if let Some((ssrc, _)) = t.last_rtp {
                st.counters.last_ssrc = Some(ssrc);
            }
        }
        if let Some(out) = self.streams.get_mut(via) {
            out.counters.sent_packets += t.packets;
            out.counters.sent_bytes += t.bytes;
        }
    }

    /// The next event for the shard, if any.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// A stream's counters.
    pub fn stream_counters(&self, stream: StreamKey) -> Option<StreamCounters> {
        let s = self.streams.get(stream)?;
        let mut c = s.counters;
        (c.sent_packets, c.sent_bytes) = self.sent_totals(stream, s);
        Some(c)
    }

    /// Snapshots of every stream of a call.
    pub fn call_snapshot(&self, call: CallKey) -> Option<Vec<StreamSnapshot>> {
        let c = self.calls.get(call)?;
        let mut out = Vec::with_capacity(c.legs.len() * 2);
        for leg in &c.legs {
            let Some(l) = self.legs.get(*leg) else {
                continue;
            };
            for key in l.streams() {
                if let Some(s) = self.streams.get(key) {
                    let mut snap = snapshot(key, s);
                    (snap.counters.sent_packets, snap.counters.sent_bytes) =
                        self.sent_totals(key, s);
                    out.push(snap);
                }
            }
        }
        Some(out)
    }
}

/// RTP receive statistics (RFC 3550 A.1-A.8) of the stream's current
/// source; a new SSRC starts fresh statistics.
fn update_stats(
    stats: &mut Option<ReceiveStats>,
    clock: ClockRate,
    now: Instant,
    p: &RtpPacket<'_>,
) {
    let s = stats.get_or_insert_with(|| ReceiveStats::new(p.ssrc(), clock));
    if s.handle_packet(now, p) == Outcome::ForeignSsrc {
        let mut fresh = ReceiveStats::new(p.ssrc(), clock);
        fresh.handle_packet(now, p);
        *s = fresh;
    }
}

fn snapshot(key: StreamKey, s: &Stream) -> StreamSnapshot {
    StreamSnapshot {
        key,
        leg: s.leg,
        kind: s.kind,
        local_port: s.local_port,
        latched: s.latch.latched(),
        signalled: s.latch.signalled(),
        counters: s.counters,
        rtp: s.rtp_stats.as_ref().map(RtpSummary::from),
    }
}

/// RTCP address paired with an RTP address (RFC 3550 §11: port + 1).
fn rtcp_of(rtp: Option<SocketAddr>) -> Option<SocketAddr> {
    let mut a = rtp?;
    a.set_port(a.port().checked_add(1)?);
    Some(a)
}

/// Classifies a datagram on a stream of `kind` (RFC 7983 / RFC 5761 §4
/// demultiplexing) and validates it: RTP must parse (RFC 3550 §5.1), RTCP
/// must have a version-2 header whose length fits the datagram (§6.4.1).
/// Returns the component and, for RTP, the parsed packet.
fn classify(
    kind: StreamKind,
    data: &[u8],
) -> Result<(Component, Option<RtpPacket<'_>>), DropReason> {
    let garbage = match kind {
        StreamKind::Rtp => DropReason::MalformedRtp,
        StreamKind::Rtcp => DropReason::MalformedRtcp,
        StreamKind::Muxed => DropReason::NotMedia,
    };
    match rtcp::demux(data) {
        PacketKind::Rtcp => match rtcp::Header::parse(data) {
            Ok(h) if h.packet_len() <= data.len() => Ok((Component::Rtcp, None)),
            _ => Err(DropReason::MalformedRtcp),
        },
        PacketKind::Rtp if kind != StreamKind::Rtcp => match RtpPacket::parse(data) {
            Ok(p) => Ok((Component::Rtp, Some(p))),
            Err(_) => Err(garbage),
        },
        _ => Err(garbage),
    }
}

#[cfg(test)]
mod tests;
