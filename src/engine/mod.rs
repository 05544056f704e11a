//! The data plane: per-core shards that relay RTP and RTCP.
//!
//! An [`Engine`] runs N shard threads (default: one per CPU the process may
//! use), each pinned to a core, each with a preferred slice of the port
//! range (the [`PortAllocator`]'s per-shard slices; a call's ports come from
//! another slice when its shard's has nothing to give), every socket bound
//! for its calls, and one I/O loop: io_uring (multishot receive on a provided buffer ring, batched
//! sends, about one `io_uring_enter` per turn) or epoll with `recvmmsg` /
//! `sendmmsg`, chosen at start by a probe that really exchanges a datagram
//! through io_uring (see [`uring_support`]) unless [`IoBackend`] forces one.
//! A socket whose receives keep failing is backed off (1 ms doubling to
//! 1 s) rather than retried on every turn.
//! Both legs of a call live on the same shard, so forwarding never crosses
//! cores. The forwarding decision itself is the sans-IO
//! [`RelayTable`](crate::relay::RelayTable).
//!
//! Control (create, update, query, delete) goes to the owning shard through
//! a bounded lock-free mailbox plus an eventfd wake-up; the caller blocks
//! for the reply. Sockets are bound by the caller's thread, so the shard's
//! loop never waits for `bind`.
//!
//! This is the only module allowed `unsafe` (io_uring, buffer rings,
//! `recvmmsg`); every block states its invariant.
//!
//! ```
//! use std::net::UdpSocket;
//! use std::time::Duration;
//! use mediarelay::engine::{CallSpec, Engine, EngineConfig, LegOptions};
//!
//! let engine = Engine::start(EngineConfig {
//!     shards: 1,
//!     port_min: 41000,
//!     port_max: 41099,
//!     ..EngineConfig::default()
//! })?;
//! // Two endpoints on loopback.
//! let a = UdpSocket::bind("127.0.0.1:0")?;
//! let b = UdpSocket::bind("127.0.0.1:0")?;
//! b.set_read_timeout(Some(Duration::from_secs(5)))?;
//! let call = engine.create_call(CallSpec {
//!     tag: 1,
//!     legs: [
//!         LegOptions { remote_rtp: Some(a.local_addr()?), ..LegOptions::default() },
//!         LegOptions { remote_rtp: Some(b.local_addr()?), ..LegOptions::default() },
//!     ],
//! })?;
//! // A sends an RTP packet to the relay port of its leg...
//! let mut pkt = [0u8; 172];
//! pkt[0] = 0x80;
//! a.send_to(&pkt, call.legs[0].rtp)?;
//! // ...and B receives it from the relay port of B's leg (symmetric RTP).
//! let mut buf = [0u8; 2048];
//! let (n, from) = b.recv_from(&mut buf)?;
//! assert_eq!(&buf[..n], &pkt[..]);
//! assert_eq!(from, call.legs[1].rtp);
//! let removed = engine.delete_call(call.id)?;
//! assert_eq!(removed.streams.len(), 4);
//! engine.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod bufring;
mod dtls_side;
mod epoll;
pub mod fastpath;
mod ice_side;
mod mailbox;
mod packet_loop;
mod schedule;
mod shard;
mod srtp_side;
pub(crate) mod sys;
mod uring;

use crate::rtp::stats::ClockRate;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::relay::StreamKey;
pub use backend::{Backend, BackendCounters, IoBackend, OwnTransmit, PacketSink};
pub use mailbox::{Full, Queue};
pub use packet_loop::{LoopSink, LoopWaker, PacketLoop};
pub use shard::ShardStats;
pub use sys::{
    enable_recv_tos, gettid, nofile_limit, raise_nofile_limit, recv_with_tos, set_socket_buffers,
    set_tos, thread_cpu_time,
};
pub use uring::{UringConfig, UringSupport};

use self::fastpath::{FastPath, FastPathMode};
use self::shard::{Command, NewLeg, ShardParts};
use self::sys::EventFd;
use crate::ports::{AllocError, PortAllocator, PortConfig, PortPair, ShardId, Strategy};
use crate::relay::{
    CallKey, DropReason, LatchPolicy, LegKey, LegSpec, RelayConfig, RelayError, RemovedCall,
    StreamSnapshot, TimeoutReason,
};

/// Errors of the engine's control API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// Invalid configuration.
    #[error("invalid engine configuration: {0}")]
    Config(String),
    /// `--io-backend uring` was asked for but io_uring is not usable.
    #[error("io_uring unavailable: {0}")]
    UringUnavailable(String),
    /// No free port pair in any shard.
    #[error("port allocation failed: {0}")]
    Ports(String),
    /// An OS error (socket, bind, thread spawn...).
    #[error("I/O error: {0}")]
    Io(String),
    /// The call does not exist (deleted or timed out).
    #[error("no such call")]
    NoSuchCall,
    /// The leg index does not exist in the call.
    #[error("no such leg")]
    NoSuchLeg,
    /// The relay table refused the operation.
    #[error("relay: {0}")]
    Relay(RelayError),
    /// The shard's mailbox is full (the shard is overloaded or stuck).
    #[error("shard {0} mailbox full")]
    Busy(u16),
    /// The shard did not answer in time, or has stopped.
    #[error("shard {0} did not answer")]
    ShardGone(u16),
    /// The relay's DTLS certificate could not be made, or a DTLS session
    /// could not be set up (OpenSSL's reason).
    #[error("DTLS: {0}")]
    Dtls(String),
}

/// Engine settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// Shard threads; 0 = one per CPU this process may run on.
    pub shards: usize,
    /// I/O backend choice.
    pub io_backend: IoBackend,
    /// Local address relay sockets bind to.
    pub bind_ip: IpAddr,
    /// Lowest relay port (rounded up to even).
    pub port_min: u16,
    /// Highest relay port.
    pub port_max: u16,
    /// Port allocation strategy.
    pub port_strategy: Strategy,
    /// Quarantine of a released port pair: how long it is passed over while
    /// other pairs are left (cut short rather than failing a call; see
    /// [`PortAllocator::allocate_any`]).
    pub release_delay: Duration,
    /// Media timeout and timer resolution.
    pub relay: RelayConfig,
    /// io_uring tunables.
    pub uring: UringConfig,
    /// Coalesced wake-ups of every shard, whichever the backend
    /// (`--batch-wait-us`; zero: off): a shard that has handled packets
    /// sleeps up to this long (a control command ends the sleep), then
    /// takes everything that arrived meanwhile at once. It overrides
    /// [`UringConfig::batch_wait`].
    pub batch_wait: Duration,
    /// Pin shard i to the i-th allowed CPU.
    pub pin_cores: bool,
    /// `SO_RCVBUF` for relay sockets (0 = kernel default).
    pub socket_rcvbuf: usize,
    /// `SO_SNDBUF` for relay sockets (0 = kernel default).
    pub socket_sndbuf: usize,
    /// TOS byte (DSCP and ECN bits) of every relay socket's packets:
    /// `IP_TOS`, and on IPv6 sockets `IPV6_TCLASS` too (rtpengine `--tos`);
    /// `None` leaves the kernel's default (0).
    pub tos: Option<u8>,
    /// Control mailbox capacity per shard.
    pub mailbox_capacity: usize,
    /// The kernel fast path ([`fastpath`]): `Off`, `Auto` (on where the
    /// kernel and privileges allow, else off with the reason in
    /// [`Engine::fast_path_status`]) or `Ebpf` (start fails without it).
    pub fast_path: FastPathMode,
    /// Interfaces the fast path attaches to; empty: every interface
    /// present at start.
    pub fast_path_interfaces: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            shards: 0,
            io_backend: IoBackend::Auto,
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port_min: 30000,
            port_max: 40000,
            port_strategy: Strategy::Random,
            release_delay: Duration::from_secs(1),
            relay: RelayConfig::default(),
            uring: UringConfig::default(),
            batch_wait: Duration::ZERO,
            pin_cores: true,
            socket_rcvbuf: 0,
            socket_sndbuf: 0,
            tos: None,
            mailbox_capacity: 1024,
            fast_path: FastPathMode::Off,
            fast_path_interfaces: Vec::new(),
        }
    }
}

/// Per-leg options of a new call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LegOptions {
    /// RTP and RTCP on one port (RFC 5761).
    pub rtcp_mux: bool,
    /// Address learning policy.
    pub policy: LatchPolicy,
    /// Signalled RTP address of this leg's far end.
    pub remote_rtp: Option<SocketAddr>,
    /// Signalled RTCP address (default RTP port + 1).
    pub remote_rtcp: Option<SocketAddr>,
    /// RTP clock rate of the media arriving on this leg (default 8000).
    pub clock_rate: Option<ClockRate>,
    /// This leg's far end was offered the call and has not answered: the
    /// call times out after [`RelayConfig::offer_timeout`] until
    /// [`LegUpdate::awaiting_answer`] clears it.
    pub awaiting_answer: bool,
    /// Local address this leg's sockets bind to (another interface than
    /// [`EngineConfig::bind_ip`], e.g. to bridge an internal and an
    /// external network, or IPv4 and IPv6); `None`: `bind_ip`.
    pub local_ip: Option<IpAddr>,
    /// RTP payload types (bit n = payload type n) arriving on this leg
    /// that the relay must handle itself when the kernel fast path
    /// forwards the rest, e.g. telephone-event (RFC 4733).
    pub userspace_payload_types: u128,
}

/// A two-leg call to create. Media received on leg 0's ports is sent from
/// leg 1's ports to leg 1's far end, and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CallSpec {
    /// Opaque tag returned in events (e.g. the control plane's call index).
    pub tag: u64,
    /// The two legs.
    pub legs: [LegOptions; 2],
}

/// Changes to a leg (answer, re-offer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegUpdate {
    /// New signalled RTP address.
    pub remote_rtp: Option<SocketAddr>,
    /// New signalled RTCP address.
    pub remote_rtcp: Option<SocketAddr>,
    /// New policy; restarts address learning.
    pub policy: Option<LatchPolicy>,
    /// Switch the leg's RTCP to rtcp-mux on its RTP socket (`true`, RFC
    /// 5761) or back to its own socket (`false`), e.g. when the answer
    /// accepts or declines an offered mux. A leg created with two sockets
    /// keeps its RTCP socket bound (and relaying what arrives there) while
    /// muxed; a leg created with [`LegOptions::rtcp_mux`] cannot be
    /// switched back (`EngineError::Relay(RelayError::NoRtcpSocket)`).
    pub rtcp_mux: Option<bool>,
    /// Mark the leg on hold (no media expected from its far end) or back:
    /// a call with a leg on hold times out after
    /// [`RelayConfig::silent_timeout`] instead of `timeout`.
    pub on_hold: Option<bool>,
    /// Mark the leg as awaiting its far end's answer or answered (see
    /// [`LegOptions::awaiting_answer`]).
    pub awaiting_answer: Option<bool>,
    /// New [`LegOptions::userspace_payload_types`].
    pub userspace_payload_types: Option<u128>,
    /// SDES-SRTP termination of this leg (see [`SrtpState`]). The caller
    /// must keep every payload type of both legs in userspace while it is
    /// on (the kernel fast path cannot encrypt).
    pub srtp: Option<SrtpState>,
    /// ICE (RFC 8445) on this leg's sockets (see [`IceUpdate`]).
    pub ice: Option<IceUpdate>,
    /// DTLS-SRTP keying of this leg (see [`DtlsUpdate`]); the caller
    /// keeps the leg's SRTP state `AwaitingKeys` until the handshake
    /// installs the keys, and every payload type of both legs in
    /// userspace.
    pub dtls: Option<DtlsUpdate>,
}

/// DTLS-SRTP (RFC 5763, RFC 5764) on a leg's RTP socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsUpdate {
    /// No DTLS: DTLS records are relayed like any other packet.
    Off,
    /// A handshake in this role with a peer of this certificate
    /// fingerprint; its keys become the leg's SRTP keys. The same
    /// parameters again keep the running session.
    On(LegDtls),
}

/// One leg's DTLS parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegDtls {
    /// The relay's role (from `a=setup`, RFC 5763 §5).
    pub role: crate::dtls::DtlsRole,
    /// The far end's certificate fingerprint (`a=fingerprint`).
    pub remote: crate::dtls::Fingerprint,
}

/// The relay's DTLS certificate, made on first use and shared by the
/// engine (whose fingerprint goes into SDP) and its shards (which
/// present it).
#[derive(Default)]
pub(crate) struct DtlsIdentity(std::sync::OnceLock<Result<crate::dtls::DtlsCert, String>>);

impl DtlsIdentity {
    /// The certificate, made now if it was not yet.
    pub(crate) fn cert(&self) -> Result<&crate::dtls::DtlsCert, String> {
        self.0
            .get_or_init(|| {
                crate::dtls::DtlsCert::generate(std::time::SystemTime::now())
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// ICE connectivity checks on a leg's sockets: the relay is an ICE agent
/// toward the leg's far end, with its sockets as host candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IceUpdate {
    /// No ICE: STUN packets are relayed like any other.
    Off,
    /// ICE with these parameters. The same credentials and role again keep
    /// the running agent (its checks and selected pairs) and add the
    /// candidates it does not have; new remote credentials restart it
    /// (RFC 8445 §9).
    On(Box<LegIce>),
}

/// One leg's ICE parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegIce {
    /// The relay's credentials, given to the far end in SDP.
    pub local: crate::ice::IceCredentials,
    /// The far end's credentials.
    pub remote: crate::ice::IceCredentials,
    /// The far end's candidates.
    pub candidates: Vec<crate::ice::Candidate>,
    /// The relay is the controlling agent (it sent the offer, or the far
    /// end is an ICE lite agent).
    pub controlling: bool,
    /// The far end is an ICE lite agent (`a=ice-lite`).
    pub remote_lite: bool,
    /// The relay's tie-breaker (RFC 8445 §7.1.1).
    pub tie_breaker: u64,
    /// The leg's RTP socket address ([`LegInfo::rtp`]): host candidate of
    /// component 1.
    pub local_rtp: SocketAddr,
    /// The leg's RTCP socket address ([`LegInfo::rtcp`]): host candidate
    /// of component 2 unless RTCP is muxed.
    pub local_rtcp: SocketAddr,
}

/// SDES-SRTP termination of a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpState {
    /// None: the leg relays what it gets.
    Off,
    /// The leg will speak SRTP but its keys are not known yet (the relay
    /// offered SRTP and awaits the answer): everything it receives or
    /// would send is dropped (counted as SRTP drops), so no plain media
    /// leaves on an SRTP leg and no unauthenticated packet latches it. A
    /// leg that has keys keeps them.
    AwaitingKeys,
    /// Terminated with these keys; for each direction, the same key again
    /// keeps its running state (rollover counters, replay window).
    Keys(LegSrtp),
}

/// One direction's SDES key (RFC 4568): suite, master key and salt, MKI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrtpKey {
    /// The crypto suite.
    pub suite: crate::srtp::Suite,
    /// Master key and salt.
    pub key: crate::srtp::MasterKey,
    /// The MKI the packets carry, if any (RFC 3711 §3.1).
    pub mki: Option<crate::srtp::Mki>,
}

/// SRTP termination of a leg: what its far end sends is unprotected with
/// `inbound` (the far end's key), what the relay sends it is protected
/// with `outbound` (the relay's key, given to the far end in SDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegSrtp {
    /// The far end's key.
    pub inbound: SrtpKey,
    /// The relay's key.
    pub outbound: SrtpKey,
}

/// A leg that ends in a local media endpoint (see [`Engine::create_endpoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EndpointSpec {
    /// Opaque tag returned in events.
    pub tag: u64,
    /// The leg: its far end's signalled addresses, latching policy, mux.
    pub leg: LegOptions,
}

/// A created endpoint: the one-leg call it lives in and the leg's local
/// addresses (what its far end is told to send to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndpointInfo {
    /// The call; [`Engine::delete_call`] removes the endpoint.
    pub id: CallId,
    /// The leg.
    pub leg: LegInfo,
}

/// A call's identity: its shard and its key there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId {
    /// Owning shard.
    pub shard: ShardId,
    /// Key in that shard's table.
    pub key: CallKey,
}

/// A created leg's local addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegInfo {
    /// Leg key.
    pub key: LegKey,
    /// Local RTP address (what the far end is told to send to).
    pub rtp: SocketAddr,
    /// Local RTCP address (RTP port + 1, or the RTP address under mux).
    pub rtcp: SocketAddr,
}

/// A created call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallInfo {
    /// Its identity.
    pub id: CallId,
    /// Its two legs.
    pub legs: [LegInfo; 2],
}

/// Something that happened on a shard on its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineEvent {
    /// Media or final timeout: the call was removed.
    CallTimedOut {
        /// The call.
        id: CallId,
        /// Its tag.
        tag: u64,
        /// Which timeout (no media, or the final timeout).
        reason: TimeoutReason,
        /// Its final state.
        removed: RemovedCall,
    },
}

/// Engine-wide counters, summed over shards. Each shard publishes its
/// counters at the end of its loop turn, so a control call's effect (a
/// deleted call) shows a moment after the call returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Live calls.
    pub calls: u64,
    /// Live streams.
    pub streams: u64,
    /// Datagrams received.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Datagrams sent: forwarded, and produced by local endpoints.
    pub tx_packets: u64,
    /// Bytes forwarded.
    pub tx_bytes: u64,
    /// Failed sends.
    pub send_errors: u64,
    /// Drops by reason ([`DropReason::index`]).
    pub drops: [u64; DropReason::COUNT],
    /// Datagrams for removed streams.
    pub unknown_stream: u64,
    /// Data-path syscalls.
    pub syscalls: u64,
    /// Loop turns.
    pub turns: u64,
    /// Buffer-ring exhaustion events.
    pub no_buffers: u64,
    /// Receive errors.
    pub recv_errors: u64,
    /// Receives deferred by the per-socket error backoff.
    pub recv_backoffs: u64,
    /// Calls removed by media timeout.
    pub timeouts: u64,
    /// Live local media endpoints.
    pub endpoints: u64,
    /// Datagrams delivered to local media endpoints.
    pub delivered: u64,
    /// Datagrams local media endpoints produced.
    pub produced: u64,
    /// STUN datagrams the relay's ICE agents received or sent (RFC 8445
    /// connectivity checks and their responses).
    pub ice_packets: u64,
    /// DTLS datagrams of the relay's DTLS-SRTP handshakes, received and
    /// sent (RFC 5764).
    pub dtls_packets: u64,
    /// Streams whose RTP the kernel fast path forwards now.
    pub offloaded_streams: u64,
    /// Packets the kernel fast path forwarded (also in `rx_packets` and
    /// `tx_packets`).
    pub kernel_packets: u64,
    /// Their bytes (also in `rx_bytes` and `tx_bytes`).
    pub kernel_bytes: u64,
    /// Fast path entries that could not be installed or removed (the
    /// stream stays in userspace).
    pub offload_errors: u64,
}

impl EngineStats {
    fn add(&mut self, s: &ShardStats) {
        let r = Ordering::Relaxed;
        self.calls += s.calls.load(r);
        self.streams += s.streams.load(r);
        self.rx_packets += s.rx_packets.load(r);
        self.rx_bytes += s.rx_bytes.load(r);
        self.tx_packets += s.tx_packets.load(r);
        self.tx_bytes += s.tx_bytes.load(r);
        self.send_errors += s.send_errors.load(r);
        for (d, a) in self.drops.iter_mut().zip(&s.drops) {
            *d += a.load(r);
        }
        self.unknown_stream += s.unknown_stream.load(r);
        self.syscalls += s.syscalls.load(r);
        self.turns += s.turns.load(r);
        self.no_buffers += s.no_buffers.load(r);
        self.recv_errors += s.recv_errors.load(r);
        self.recv_backoffs += s.recv_backoffs.load(r);
        self.timeouts += s.timeouts.load(r);
        self.endpoints += s.endpoints.load(r);
        self.delivered += s.delivered.load(r);
        self.produced += s.produced.load(r);
        self.ice_packets += s.ice_packets.load(r);
        self.dtls_packets += s.dtls_packets.load(r);
        self.offloaded_streams += s.offloaded_streams.load(r);
        self.kernel_packets += s.kernel_packets.load(r);
        self.kernel_bytes += s.kernel_bytes.load(r);
        self.offload_errors += s.offload_errors.load(r);
    }

    /// All drops.
    pub fn dropped(&self) -> u64 {
        self.drops.iter().sum()
    }
}

struct ShardHandle {
    id: ShardId,
    mailbox: Arc<Queue<Command>>,
    wake: Arc<EventFd>,
    stats: Arc<ShardStats>,
    thread: Option<JoinHandle<()>>,
}

/// A running relay engine. `Sync`: share it (e.g. in an `Arc`) between
/// control threads.
pub struct Engine {
    shards: Vec<ShardHandle>,
    ports: Arc<PortAllocator>,
    backend: IoBackend,
    backend_reason: String,
    bind_ip: IpAddr,
    rcvbuf: usize,
    sndbuf: usize,
    tos: Option<u8>,
    next_shard: AtomicUsize,
    events: Mutex<Receiver<EngineEvent>>,
    /// The kernel fast path, shared with the shards; dropped (detached)
    /// with the last of them.
    fast: Option<Arc<FastPath>>,
    fast_reason: String,
    /// The DTLS certificate, shared with the shards.
    dtls: Arc<DtlsIdentity>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shards", &self.shards.len())
            .field("backend", &self.backend)
            .finish()
    }
}

/// Loads the fast path as `cfg.fast_path` asks: `(None, why)` when off.
fn start_fast_path(cfg: &EngineConfig) -> Result<(Option<Arc<FastPath>>, String), EngineError> {
    match cfg.fast_path {
        FastPathMode::Off => Ok((None, "off (--fast-path=off)".into())),
        // One entry per relay socket at most.
        mode => match FastPath::start(
            &cfg.fast_path_interfaces,
            u32::from(cfg.port_max.saturating_sub(cfg.port_min)) + 1,
        ) {
            Ok(f) => {
                let why = format!("eBPF on tc ingress of {}", f.interfaces().join(", "));
                tracing::info!(interfaces = ?f.interfaces(), "kernel fast path on");
                Ok((Some(Arc::new(f)), why))
            }
            Err(e) if mode == FastPathMode::Auto => {
                tracing::warn!(reason = %e, "kernel fast path off: relaying in userspace only");
                Ok((None, format!("off: {e}")))
            }
            Err(e) => Err(EngineError::Config(format!("--fast-path=ebpf: {e}"))),
        },
    }
}

/// How long a control call waits for its shard.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

impl Engine {
    /// Probes the I/O backend, builds the port allocator and starts the
    /// shard threads.
    pub fn start(cfg: EngineConfig) -> Result<Engine, EngineError> {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let n = if cfg.shards == 0 {
            cores.len().max(1)
        } else {
            cfg.shards
        };
        let n16 =
            u16::try_from(n).map_err(|_| EngineError::Config(format!("{n} shards is too many")))?;
        check_bind_ip(cfg.bind_ip)?;
        let (backend, backend_reason) = resolve_backend(cfg.io_backend)?;
        tracing::info!(backend = backend.as_str(), reason = %backend_reason, shards = n, "I/O backend selected");
        let port_cfg = PortConfig::new(cfg.port_min, cfg.port_max, n16)
            .map_err(|e| EngineError::Config(e.to_string()))?
            .with_strategy(cfg.port_strategy)
            .with_release_delay(cfg.release_delay)
            .with_seed(seed());
        let ports = Arc::new(PortAllocator::new(port_cfg, Instant::now()));
        let (fast, fast_reason) = start_fast_path(&cfg)?;
        let dtls = Arc::new(DtlsIdentity::default());
        let (ev_tx, ev_rx) = mpsc::channel();
        let mut shards = Vec::with_capacity(n);
        for i in 0..n {
            let id = ShardId(i as u16);
            let mailbox = Arc::new(Queue::new(cfg.mailbox_capacity));
            let wake = Arc::new(EventFd::new().map_err(|e| EngineError::Io(e.to_string()))?);
            let stats = Arc::new(ShardStats::default());
            let parts = ShardParts {
                id,
                relay: cfg.relay,
                mailbox: mailbox.clone(),
                wake: wake.clone(),
                stats: stats.clone(),
                ports: ports.clone(),
                events: ev_tx.clone(),
                fast: fast.clone(),
                tos: cfg.tos,
                dtls: dtls.clone(),
            };
            let core = if cfg.pin_cores && !cores.is_empty() {
                Some(cores[i % cores.len()])
            } else {
                None
            };
            let uring_cfg = UringConfig {
                batch_wait: cfg.batch_wait,
                ..cfg.uring
            };
            let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), String>>(1);
            let thread = std::thread::Builder::new()
                .name(format!("mr-shard-{i}"))
                .spawn(move || {
                    if let Some(c) = core {
                        core_affinity::set_for_current(c);
                    }
                    let wake_fd = parts.wake.raw();
                    match backend {
                        IoBackend::Uring => match uring::UringBackend::new(uring_cfg, wake_fd) {
                            Ok(b) => {
                                let _ = ready_tx.send(Ok(()));
                                shard::run(b, parts);
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(format!("io_uring shard setup: {e}")));
                            }
                        },
                        _ => match epoll::EpollBackend::new(wake_fd) {
                            Ok(mut b) => {
                                b.set_batch_wait(cfg.batch_wait);
                                let _ = ready_tx.send(Ok(()));
                                shard::run(b, parts);
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(format!("epoll shard setup: {e}")));
                            }
                        },
                    }
                })
                .map_err(|e| EngineError::Io(e.to_string()))?;
            let mut handle = ShardHandle {
                id,
                mailbox,
                wake,
                stats,
                thread: Some(thread),
            };
            let ready = ready_rx
                .recv()
                .map_err(|_| "shard thread exited during setup".to_string())
                .and_then(|r| r);
            if let Err(e) = ready {
                stop_shards(&mut shards);
                if let Some(t) = handle.thread.take() {
                    let _ = t.join();
                }
                return Err(EngineError::Io(e));
            }
            shards.push(handle);
        }
        Ok(Engine {
            shards,
            ports,
            backend,
            backend_reason,
            bind_ip: cfg.bind_ip,
            rcvbuf: cfg.socket_rcvbuf,
            sndbuf: cfg.socket_sndbuf,
            tos: cfg.tos,
            next_shard: AtomicUsize::new(0),
            events: Mutex::new(ev_rx),
            fast,
            fast_reason,
            dtls,
        })
    }

    /// The fingerprint (SHA-256, RFC 8122 §5) of the certificate the
    /// relay presents in DTLS-SRTP handshakes; the certificate is made on
    /// the first call.
    pub fn dtls_fingerprint(&self) -> Result<crate::dtls::Fingerprint, EngineError> {
        self.dtls
            .cert()
            .map(crate::dtls::DtlsCert::fingerprint)
            .map_err(EngineError::Dtls)
    }

    /// Whether the kernel fast path is on, and why (or why not): the
    /// interfaces it is attached to, or the reason it could not start.
    pub fn fast_path_status(&self) -> (bool, &str) {
        (self.fast.is_some(), &self.fast_reason)
    }

    /// The backend in use (`Uring` or `Epoll`).
    pub fn backend(&self) -> IoBackend {
        self.backend
    }

    /// Why that backend was chosen.
    pub fn backend_reason(&self) -> &str {
        &self.backend_reason
    }

    /// Number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The port allocator (counters for metrics).
    pub fn ports(&self) -> &PortAllocator {
        &self.ports
    }

    /// Live counters of one shard.
    pub fn shard_stats(&self, shard: usize) -> Option<&ShardStats> {
        self.shards.get(shard).map(|s| &*s.stats)
    }

    /// Counters summed over shards (lock-free reads).
    pub fn stats(&self) -> EngineStats {
        let mut total = EngineStats::default();
        for s in &self.shards {
            total.add(&s.stats);
        }
        total
    }

    /// The next shard event, if any (non-blocking).
    pub fn try_event(&self) -> Option<EngineEvent> {
        self.events.lock().ok()?.try_recv().ok()
    }

    /// Creates a two-leg call on one shard (chosen round-robin): allocates a
    /// port pair per leg, that shard's slice preferred, any other slice
    /// otherwise ([`PortAllocator::allocate_any`]), binds the sockets, and
    /// installs the legs. So a call is placeable whenever the range has two
    /// pairs not in use, whatever the shard count; [`EngineError::Ports`]
    /// means the range really is exhausted.
    pub fn create_call(&self, spec: CallSpec) -> Result<CallInfo, EngineError> {
        let n = self.shards.len();
        if n == 0 {
            return Err(EngineError::Ports("no shards".into()));
        }
        let start = self.next_shard.fetch_add(1, Ordering::Relaxed);
        let shard = &self.shards[start % n];
        let legs = self.bind_legs(shard.id, &spec)?;
        self.install(shard, spec.tag, legs)
    }

    /// Creates a local media endpoint: a one-leg call (port pair from a
    /// shard chosen round-robin, as [`create_call`](Self::create_call))
    /// whose leg ends in `endpoint` instead of another leg. What the leg's
    /// latch accepts goes to the endpoint; what the endpoint sends leaves
    /// from the leg's sockets to the far end (latched, else signalled:
    /// set it with [`update_leg`](Self::update_leg) once known). The
    /// endpoint runs on that shard's loop, beside relayed calls.
    pub fn create_endpoint(
        &self,
        spec: EndpointSpec,
        endpoint: Box<dyn crate::media::Endpoint>,
    ) -> Result<EndpointInfo, EngineError> {
        let n = self.shards.len();
        if n == 0 {
            return Err(EngineError::Ports("no shards".into()));
        }
        let start = self.next_shard.fetch_add(1, Ordering::Relaxed);
        let shard = &self.shards[start % n];
        let leg = self.bind_leg(shard.id, &spec.leg)?;
        let (key, info) = self.request(shard, |reply| Command::AddEndpoint {
            tag: spec.tag,
            leg,
            endpoint,
            reply,
        })??;
        Ok(EndpointInfo {
            id: CallId {
                shard: shard.id,
                key,
            },
            leg: info,
        })
    }

    /// Creates a local media endpoint, as
    /// [`create_endpoint`](Self::create_endpoint), on a port pair the caller
    /// allocated beforehand from [`ports`](Self::ports) (e.g. one already
    /// advertised in an SDP offer, bound only once the far end's address is
    /// known). The call runs on the shard whose slice holds the pair. The
    /// engine takes the pair over: it is released when the call is deleted,
    /// or at once when this fails (the port is taken by another process:
    /// `EngineError::Io`).
    pub fn create_endpoint_on(
        &self,
        spec: EndpointSpec,
        pair: PortPair,
        endpoint: Box<dyn crate::media::Endpoint>,
    ) -> Result<EndpointInfo, EngineError> {
        let idx = self
            .ports
            .shard_of(pair.rtp())
            .map_or(0, |s| usize::from(s.0));
        let Some(shard) = self.shards.get(idx).or_else(|| self.shards.first()) else {
            let _ = self.ports.release(pair, Instant::now());
            return Err(EngineError::Ports("no shards".into()));
        };
        let opts = &spec.leg;
        let ip = opts.local_ip.unwrap_or(self.bind_ip);
        let (rtp, rtcp) =
            match self.bind_pair(ip, pair.rtp(), (!opts.rtcp_mux).then_some(pair.rtcp())) {
                Ok(s) => s,
                Err(e) => {
                    let _ = self.ports.release(pair, Instant::now());
                    return Err(EngineError::Io(format!(
                        "could not bind port {}: {e}",
                        pair.rtp()
                    )));
                }
            };
        let leg = self.new_leg(pair, opts, ip, rtp, rtcp);
        let (key, info) = self.request(shard, |reply| Command::AddEndpoint {
            tag: spec.tag,
            leg,
            endpoint,
            reply,
        })??;
        Ok(EndpointInfo {
            id: CallId {
                shard: shard.id,
                key,
            },
            leg: info,
        })
    }

    /// Has the shard serve the call's endpoints at once (their
    /// [`flush`](crate::media::Endpoint::flush) picks up what the
    /// application queued, e.g. a stop whose RTCP BYE should leave now
    /// rather than at the endpoint's next timer). Does not wait.
    pub fn wake_endpoints(&self, id: CallId) -> Result<(), EngineError> {
        let call = id.key;
        self.send(self.shard(id)?, Command::WakeEndpoints { call })
    }

    /// Ends leg `leg` (0 or 1) of a call in `endpoint`, bridging that leg's
    /// far end to local media (an announcement, a recorder, DTMF
    /// injection): the leg no longer relays to the other, whose media is
    /// then dropped (`no_peer`). An endpoint already there is replaced.
    pub fn attach_endpoint(
        &self,
        id: CallId,
        leg: usize,
        endpoint: Box<dyn crate::media::Endpoint>,
    ) -> Result<(), EngineError> {
        let call = id.key;
        self.request(self.shard(id)?, |reply| Command::AttachEndpoint {
            call,
            leg,
            endpoint,
            reply,
        })?
    }

    fn bind_legs(&self, shard: ShardId, spec: &CallSpec) -> Result<Vec<NewLeg>, EngineError> {
        let mut legs = Vec::with_capacity(2);
        for opts in &spec.legs {
            match self.bind_leg(shard, opts) {
                Ok(l) => legs.push(l),
                Err(e) => {
                    let now = Instant::now();
                    for l in legs {
                        let _ = self.ports.release(l.ports, now);
                    }
                    return Err(e);
                }
            }
        }
        Ok(legs)
    }

    /// Allocates and binds one leg for a call on `shard`, from that shard's
    /// slice if it has a pair to give, else from another's (the socket then
    /// uses a port of another slice; its release finds that slice by port
    /// number). A pair whose port is taken by another process is released
    /// (quarantined: passed over while others are left) and the next one
    /// tried.
    ///
    /// A port this engine closed a moment ago can still be bound too: the
    /// io_uring backend closes a deleted stream's socket only once the
    /// shard's next turn has completed its cancelled receive. When the range
    /// has no pair to spare, the allocator hands those very pairs back
    /// (their quarantine cut short), so after [`QUICK_BIND_ATTEMPTS`] failed
    /// binds in a row with `EADDRINUSE`, the attempts are spaced by a short
    /// sleep (50 µs doubling up to 2 ms; at most about 0.1 s in all) on
    /// this, the caller's, thread.
    fn bind_leg(&self, shard: ShardId, opts: &LegOptions) -> Result<NewLeg, EngineError> {
        // Other processes may hold ports in the range (a client socket in
        // the ephemeral range, another relay): skip past them.
        const ATTEMPTS: u32 = 64;
        let mut last: Option<std::io::Error> = None;
        let mut in_use_streak = 0;
        for _ in 0..ATTEMPTS {
            if let Some(wait) = bind_backoff(in_use_streak) {
                std::thread::sleep(wait);
            }
            let now = Instant::now();
            let (_, pair) = self
                .ports
                .allocate_any(shard, now)
                .map_err(|e: AllocError| EngineError::Ports(e.to_string()))?;
            let ip = opts.local_ip.unwrap_or(self.bind_ip);
            match self.bind_pair(ip, pair.rtp(), (!opts.rtcp_mux).then_some(pair.rtcp())) {
                Ok((rtp, rtcp)) => {
                    return Ok(self.new_leg(pair, opts, ip, rtp, rtcp));
                }
                Err(e) => {
                    in_use_streak = if e.kind() == std::io::ErrorKind::AddrInUse {
                        in_use_streak + 1
                    } else {
                        0
                    };
                    last = Some(e);
                    let _ = self.ports.release(pair, now);
                }
            }
        }
        let last = last.map(|e| e.to_string()).unwrap_or_default();
        Err(EngineError::Io(format!(
            "could not bind a port pair after {ATTEMPTS} attempts: {last}"
        )))
    }

    /// A bound leg for `pair` with `opts`, its sockets bound on `ip`,
    /// ready for its shard.
    fn new_leg(
        &self,
        pair: PortPair,
        opts: &LegOptions,
        ip: IpAddr,
        rtp: UdpSocket,
        rtcp: Option<UdpSocket>,
    ) -> NewLeg {
        NewLeg {
            spec: LegSpec {
                rtp_port: pair.rtp(),
                rtcp_port: (!opts.rtcp_mux).then_some(pair.rtcp()),
                policy: opts.policy,
                remote_rtp: opts.remote_rtp,
                remote_rtcp: opts.remote_rtcp,
                clock_rate: opts.clock_rate.unwrap_or(ClockRate::G711),
                awaiting_answer: opts.awaiting_answer,
            },
            ports: pair,
            rtp,
            rtcp,
            local_ip: ip,
            userspace_payload_types: opts.userspace_payload_types,
        }
    }

    fn bind_pair(
        &self,
        ip: IpAddr,
        rtp: u16,
        rtcp: Option<u16>,
    ) -> std::io::Result<(UdpSocket, Option<UdpSocket>)> {
        let bind = |port: u16| -> std::io::Result<UdpSocket> {
            let s = UdpSocket::bind(SocketAddr::new(ip, port))?;
            s.set_nonblocking(true)?;
            let fd = std::os::fd::AsRawFd::as_raw_fd(&s);
            sys::set_socket_buffers(fd, self.rcvbuf, self.sndbuf)?;
            if let Some(tos) = self.tos {
                sys::set_tos(fd, ip.is_ipv6(), tos)?;
            }
            Ok(s)
        };
        let a = bind(rtp)?;
        let b = rtcp.map(bind).transpose()?;
        Ok((a, b))
    }

    fn install(
        &self,
        shard: &ShardHandle,
        tag: u64,
        legs: Vec<NewLeg>,
    ) -> Result<CallInfo, EngineError> {
        let (key, infos) = self.request(shard, |reply| Command::AddCall { tag, legs, reply })??;
        let legs = match infos[..] {
            [a, b] => [a, b],
            _ => return Err(EngineError::NoSuchLeg),
        };
        Ok(CallInfo {
            id: CallId {
                shard: shard.id,
                key,
            },
            legs,
        })
    }

    fn send(&self, shard: &ShardHandle, cmd: Command) -> Result<(), EngineError> {
        if let Err(Full(cmd)) = shard.mailbox.push(cmd) {
            // Dropping the command closes its reply channel; an AddCall's
            // sockets close and its ports are released here.
            let now = Instant::now();
            match cmd {
                Command::AddCall { legs, .. } => {
                    for l in legs {
                        let _ = self.ports.release(l.ports, now);
                    }
                }
                Command::AddEndpoint { leg, .. } => {
                    let _ = self.ports.release(leg.ports, now);
                }
                _ => {}
            }
            return Err(EngineError::Busy(shard.id.0));
        }
        shard
            .wake
            .notify()
            .map_err(|e| EngineError::Io(e.to_string()))
    }

    fn shard(&self, id: CallId) -> Result<&ShardHandle, EngineError> {
        self.shards
            .get(usize::from(id.shard.0))
            .ok_or(EngineError::NoSuchCall)
    }

    /// Sends a command built around a reply channel to `shard` and waits
    /// for the answer.
    fn request<T>(
        &self,
        shard: &ShardHandle,
        make: impl FnOnce(mpsc::SyncSender<T>) -> Command,
    ) -> Result<T, EngineError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(shard, make(tx))?;
        rx.recv_timeout(REPLY_TIMEOUT)
            .map_err(|_| EngineError::ShardGone(shard.id.0))
    }

    /// Updates leg `leg` (0 or 1) of a call.
    pub fn update_leg(&self, id: CallId, leg: usize, update: LegUpdate) -> Result<(), EngineError> {
        let call = id.key;
        self.request(self.shard(id)?, |reply| Command::UpdateLeg {
            call,
            leg,
            update,
            reply,
        })?
    }

    /// Snapshots of the call's streams.
    pub fn query(&self, id: CallId) -> Result<Vec<StreamSnapshot>, EngineError> {
        let call = id.key;
        self.request(self.shard(id)?, |reply| Command::Query { call, reply })?
            .ok_or(EngineError::NoSuchCall)
    }

    /// Removes a call: closes its sockets, releases its ports, returns its
    /// final counters.
    pub fn delete_call(&self, id: CallId) -> Result<RemovedCall, EngineError> {
        let call = id.key;
        self.request(self.shard(id)?, |reply| Command::Delete { call, reply })?
            .ok_or(EngineError::NoSuchCall)
    }

    /// Stops every shard: calls are removed, sockets closed, ports released.
    pub fn shutdown(mut self) {
        stop_shards(&mut self.shards);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        stop_shards(&mut self.shards);
    }
}

fn stop_shards(shards: &mut [ShardHandle]) {
    for s in shards.iter() {
        if s.thread.is_some() {
            // A full mailbox still sees Shutdown once it drains: retry.
            let mut cmd = Command::Shutdown;
            for _ in 0..1000 {
                match s.mailbox.push(cmd) {
                    Ok(()) => break,
                    Err(Full(c)) => {
                        cmd = c;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            let _ = s.wake.notify();
        }
    }
    for s in shards.iter_mut() {
        if let Some(t) = s.thread.take() {
            let _ = t.join();
        }
    }
}

fn resolve_backend(want: IoBackend) -> Result<(IoBackend, String), EngineError> {
    match want {
        IoBackend::Epoll => Ok((IoBackend::Epoll, "requested".into())),
        IoBackend::Uring => match uring::probe() {
            UringSupport::Available => Ok((IoBackend::Uring, "requested".into())),
            UringSupport::Unavailable(why) => Err(EngineError::UringUnavailable(why)),
        },
        IoBackend::Auto => match uring::probe() {
            UringSupport::Available => Ok((IoBackend::Uring, "probe: io_uring available".into())),
            UringSupport::Unavailable(why) => Ok((IoBackend::Epoll, format!("probe: {why}"))),
        },
    }
}

/// Failed binds in a row with `EADDRINUSE` that [`Engine::bind_leg`] retries
/// at once; from then on it sleeps [`bind_backoff`] before each attempt.
const QUICK_BIND_ATTEMPTS: u32 = 8;

/// The sleep before the next bind attempt after `in_use_streak` failures in
/// a row with `EADDRINUSE`: none for the first [`QUICK_BIND_ATTEMPTS`], then
/// 50 µs doubling up to 2 ms (56 more attempts: about 0.1 s at most).
fn bind_backoff(in_use_streak: u32) -> Option<Duration> {
    let k = in_use_streak.checked_sub(QUICK_BIND_ATTEMPTS)?;
    Some(Duration::from_micros(50 << k.min(6)).min(Duration::from_millis(2)))
}

/// Checks that relay sockets can bind `ip` here: an address that is not on
/// this host would make every call fail at bind time. [`Engine::start`]
/// refuses to start without it.
pub fn check_bind_ip(ip: IpAddr) -> Result<(), EngineError> {
    UdpSocket::bind(SocketAddr::new(ip, 0))
        .map(drop)
        .map_err(|e| {
            EngineError::Config(format!(
                "relay address {ip} cannot be bound on this host: {e}"
            ))
        })
}

/// Probes whether io_uring is usable here (for tests and start-up logs):
/// once per process, on a thread of its own, bounded in time; a multishot
/// receive on a provided buffer ring must deliver a datagram sent by a
/// `Send` with a destination address.
pub fn uring_support() -> UringSupport {
    uring::probe()
}

/// A seed for the port allocator's random strategy, from the clock and the
/// process id (unpredictable enough for port choice; not cryptographic).
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ (u64::from(std::process::id()) << 32) ^ 0x9e37_79b9_7f4a_7c15
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_backoff_is_bounded() {
        let waits: Vec<Option<Duration>> = (0..64).map(bind_backoff).collect();
        assert!(waits[..8].iter().all(Option::is_none));
        assert_eq!(waits[8], Some(Duration::from_micros(50)));
        assert_eq!(waits[9], Some(Duration::from_micros(100)));
        assert_eq!(waits[63], Some(Duration::from_millis(2)));
        let total: Duration = waits.iter().flatten().sum();
        assert!(total <= Duration::from_millis(110), "{total:?}");
        assert_eq!(bind_backoff(u32::MAX), Some(Duration::from_millis(2)));
    }
}
