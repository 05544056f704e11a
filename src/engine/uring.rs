//! io_uring backend: one ring per shard, multishot `RecvMsgMulti` on a
//! provided buffer ring, `Send` with destination straight from the receive
//! buffer, one `io_uring_enter` per loop turn (a few more when a turn
//! collects many completions without waiting, below).
//!
//! Per turn: submit the queued SQEs and wait (with the shard's timer as
//! timeout) in one `io_uring_enter`, or, when the turn must not sleep,
//! enter without waiting and again while the kernel may have left
//! deferred completion work behind; then reap the completion queue in
//! batches (one acquire load of the CQ tail and one release store of its
//! head per batch of up to [`CQE_BATCH`] entries, copied out and then
//! processed, until the queue is empty):
//! - receive completions carry a buffer id; the datagram is handed to the
//!   sink, and a `Forward` verdict becomes a `Send` SQE pointing into the
//!   same buffer (no copy), its destination kept in a per-buffer slot;
//! - send completions return the buffer to the ring and report the result;
//! - a receive completion without `IORING_CQE_F_MORE` ends that socket's
//!   multishot receive. After a delivered datagram (e.g. the CQ ring
//!   overflowed) it is re-armed at the end of the turn; after `-ENOBUFS`
//!   (the ring ran dry) once a buffer is back in the ring; after anything
//!   else (an error, or a completion without a usable datagram) after the
//!   socket's backoff delay, so that a socket failing at once on every
//!   arm cannot spin the shard. `-ECANCELED` for a removed socket ends it.
//!
//! Buffer ownership: a buffer id is in the ring, or owned by exactly one
//! send in flight; reaping a batch never drops a completion, so no buffer
//! is lost. Every multishot receive is counted from arming to its final
//! completion, and every send from submission to completion:
//! [`Backend::in_flight`] is what shutdown waits for.
//!
//! `user_data` = kind (2 high bits) | payload: for receives the stream's
//! index and generation, for sends the buffer id.

use std::io;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use io_uring::{IoUring, Probe, cqueue, opcode, squeue, types};

use super::backend::{
    Backend, BackendCounters, Backoff, Deferred, PacketSink, coalescing_sleep, decode_stream,
    encode_stream, narrow_timer_slack,
};
use super::bufring::BufRing;
use super::sys::{self, RawAddr, SOCKADDR_MAX};
use crate::relay::{Key, StreamKey, Verdict};

const KIND_SHIFT: u32 = 62;
const KIND_RECV: u64 = 0;
const KIND_SEND: u64 = 1;
const KIND_WAKE: u64 = 2;
const KIND_OTHER: u64 = 3;
const PAYLOAD_MASK: u64 = (1 << KIND_SHIFT) - 1;

/// Size of `struct io_uring_recvmsg_out` at the start of each buffer.
const RECVMSG_OUT: usize = 16;
/// Offset of the datagram in a receive buffer.
const PAYLOAD_OFFSET: usize = RECVMSG_OUT + SOCKADDR_MAX;
/// Completions copied out of the CQ ring per batch.
const CQE_BATCH: usize = 256;
/// `IORING_ENTER_GETEVENTS` (uapi `io_uring.h`).
const ENTER_GETEVENTS: u32 = 1 << 0;
/// Deferred task work items an enter runs when it is asked to wait for
/// nothing (`IO_LOCAL_TW_DEFAULT_MAX` since Linux 6.13, twice that when the
/// enter also submits; older kernels run them all). A no-wait collect that
/// yielded at least this many completions of task work may have left work
/// behind and enters again; work left behind otherwise (a send that had
/// to wait for room completes as task work, uncounted) is run by the next
/// turn's enter.
const LOCAL_TW_BATCH: usize = 20;
/// Send buffers for datagrams the sink produces itself (local endpoints,
/// terminated SRTP).
const OWN_BUFS: usize = 512;
/// Bytes per such send buffer: a received datagram grown by SRTP
/// protection fits.
const OWN_BUF_SIZE: usize = super::srtp_side::SRTP_MAX_DATAGRAM;
/// Set in a send's user data when it sends from an own buffer.
const OWN_FLAG: u64 = 1 << 32;

/// How long the probe waits for each of its completions.
const PROBE_WAIT: Duration = Duration::from_millis(500);
/// How long start-up waits for the probe thread at most.
const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// Tunables of the io_uring backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UringConfig {
    /// Submission queue entries.
    pub sq_entries: u32,
    /// Provided buffers (power of two <= 32768).
    pub buffers: u16,
    /// Bytes per buffer, including the 44-byte recvmsg header and address.
    pub buf_size: usize,
    /// Fixed-file table size (sockets per shard).
    pub max_sockets: u32,
    /// Kernel receive timestamps (`SO_TIMESTAMPNS`): the `now` a sink gets
    /// with a datagram is the time the kernel queued it on the socket, not
    /// the time the loop woke up. For measuring tools; the relay's shards
    /// leave it off. The kernel turns timestamping on system-wide shortly
    /// after the first socket asks for it (a deferred static key), so
    /// datagrams in the first milliseconds may carry the time they were
    /// read instead.
    pub rx_timestamps: bool,
    /// Completions a turn waits for before its timeout (1: wake on the
    /// first). A measuring tool with `rx_timestamps` waits for a batch or
    /// its next timer, so arrivals do not each cost a wake-up.
    pub wait_batch: u32,
    /// Coalesced wake-ups (`--batch-wait-us`): after a turn that handled
    /// datagrams, the next turn first sleeps up to this long (on the
    /// wake-up eventfd, so a control command ends the sleep; datagrams do
    /// not, their completions wait in the kernel's deferred task list) and
    /// then takes everything that arrived meanwhile with `io_uring_enter`
    /// calls that do not wait; packets arriving one by one at real call loads are
    /// handled in batches and the thread wakes once per budget, not once
    /// per packet. An idle shard still blocks until its first packet or
    /// its next timer, and the turn's timeout (the next timer) bounds the
    /// sleep. Zero: off.
    pub batch_wait: Duration,
}

impl Default for UringConfig {
    fn default() -> Self {
        UringConfig {
            sq_entries: 2048,
            buffers: 4096,
            buf_size: 2048,
            max_sockets: 65536,
            rx_timestamps: false,
            wait_batch: 1,
            batch_wait: Duration::ZERO,
        }
    }
}

/// What the probe found out about io_uring on this host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UringSupport {
    /// Everything the backend needs is there.
    Available,
    /// Not usable; the reason is for the start-up log.
    Unavailable(String),
}

/// Why the probe found io_uring unusable; its text is the logged reason.
#[derive(Debug, thiserror::Error)]
enum ProbeError {
    /// `io_uring_setup` failed (seccomp, `kernel.io_uring_disabled`, no
    /// io_uring at all).
    #[error("io_uring_setup failed: {0}")]
    Setup(io::Error),
    /// No `IORING_FEAT_EXT_ARG` (timed waits in `io_uring_enter`).
    #[error("kernel lacks IORING_FEAT_EXT_ARG (needs 5.11+)")]
    ExtArg,
    /// `IORING_REGISTER_PROBE` failed.
    #[error("opcode probe failed: {0}")]
    OpcodeProbe(io::Error),
    /// An opcode the backend uses is missing.
    #[error("opcode {0} not supported")]
    Opcode(&'static str),
    /// Mapping or registering the provided buffer ring failed.
    #[error("provided buffer ring unsupported (needs 5.19+): {0}")]
    BufRing(io::Error),
    /// The sparse fixed-file table, or putting a socket in it, failed.
    #[error("sparse fixed-file table unsupported (needs 5.19+): {0}")]
    FixedFiles(io::Error),
    /// The throwaway loopback sockets could not be made.
    #[error("probe sockets: {0}")]
    Socket(io::Error),
    /// `io_uring_enter` failed.
    #[error("io_uring_enter failed: {0}")]
    Enter(io::Error),
    /// The multishot receive completed with an error (kernels before 6.0
    /// reject `IORING_RECV_MULTISHOT` with `EINVAL`).
    #[error("multishot RECVMSG failed (needs 6.0+): {0}")]
    Recv(io::Error),
    /// The receive delivered a datagram but did not stay armed.
    #[error("RECVMSG completed without IORING_CQE_F_MORE: not multishot (needs 6.0+)")]
    RecvNotMultishot,
    /// The receive's completion did not carry the datagram that was sent.
    #[error("multishot RECVMSG delivered something else: {0}")]
    RecvMismatch(&'static str),
    /// The send with a destination address failed (kernels before 6.0
    /// reject a destination on `SEND` with `EINVAL`).
    #[error("SEND with a destination address failed (needs 6.0+): {0}")]
    Send(io::Error),
    /// The send completed short.
    #[error("SEND with a destination address sent {sent} of {len} bytes")]
    SendShort {
        /// Bytes sent.
        sent: i32,
        /// Bytes asked for.
        len: usize,
    },
    /// A completion did not arrive in time.
    #[error("no {what} completion within {wait:?}")]
    Timeout {
        /// Which operation.
        what: &'static str,
        /// How long the probe waited.
        wait: Duration,
    },
    /// Cancelling the multishot receive failed.
    #[error("ASYNC_CANCEL of the multishot RECVMSG failed: {0}")]
    Cancel(io::Error),
}

/// Probes io_uring once per process by using it as the backend does: a ring
/// (fails under seccomp or `kernel.io_uring_disabled`), `EXT_ARG` waits,
/// the opcodes, a provided buffer ring and a sparse fixed-file table, then
/// a real exchange on two throwaway loopback UDP sockets: a multishot
/// `RecvMsgMulti` armed on one must deliver, still armed, the datagram a
/// `Send` with a destination address sends from the other, and must end
/// with `-ECANCELED` when cancelled. The opcode list alone proves too
/// little: multishot receives and `Send` destinations came with 6.0.
///
/// The probe runs on a short-lived thread of its own: a thread that has
/// used io_uring gets kernel task work when its ring is torn down, which
/// interrupts a blocking `recvfrom` with a timeout (`EINTR`) on that
/// thread. The caller's threads stay free of io_uring. Each completion is
/// awaited at most 500 ms, and the caller waits for the thread at most
/// 3 s: start-up never hangs on the probe.
pub fn probe() -> UringSupport {
    static RESULT: std::sync::OnceLock<UringSupport> = std::sync::OnceLock::new();
    RESULT.get_or_init(probe_on_thread).clone()
}

fn probe_on_thread() -> UringSupport {
    let (tx, rx) = mpsc::sync_channel(1);
    let spawned = std::thread::Builder::new()
        .name("mr-uring-probe".into())
        .spawn(move || {
            let _ = tx.send(probe_here());
        });
    let thread = match spawned {
        Ok(t) => t,
        Err(e) => return UringSupport::Unavailable(format!("probe thread failed to start: {e}")),
    };
    match rx.recv_timeout(PROBE_LIMIT) {
        Ok(support) => {
            // It has answered and only returns now.
            let _ = thread.join();
            support
        }
        // Left detached: start-up goes on with epoll.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            UringSupport::Unavailable(format!("probe did not finish within {PROBE_LIMIT:?}"))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            UringSupport::Unavailable("probe thread failed".into())
        }
    }
}

fn probe_here() -> UringSupport {
    match run_probe(None, PROBE_WAIT) {
        Ok(()) => UringSupport::Available,
        Err(e) => UringSupport::Unavailable(e.to_string()),
    }
}

/// The probe's steps; `dest` overrides where the datagram is sent (tests
/// make a step fail with it), `wait` bounds each completion's wait.
fn run_probe(dest: Option<SocketAddr>, wait: Duration) -> Result<(), ProbeError> {
    // Everything the kernel may read or write is declared before the ring,
    // so that on every path the ring (declared last) is dropped first.
    let bufs = BufRing::new(8, 256, 0).map_err(ProbeError::BufRing)?;
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msghdr: libc::msghdr = unsafe { std::mem::zeroed() };
    msghdr.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
    let local = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    let rx = UdpSocket::bind(local).map_err(ProbeError::Socket)?;
    let tx = UdpSocket::bind(local).map_err(ProbeError::Socket)?;
    let to = match dest {
        Some(d) => d,
        None => rx.local_addr().map_err(ProbeError::Socket)?,
    };
    let to = RawAddr::new(&to);
    let from = tx.local_addr().map_err(ProbeError::Socket)?;

    let (mut ring, _) = build_ring(8, 64).map_err(ProbeError::Setup)?;
    if !ring.params().is_feature_ext_arg() {
        return Err(ProbeError::ExtArg);
    }
    let mut p = Probe::new();
    ring.submitter()
        .register_probe(&mut p)
        .map_err(ProbeError::OpcodeProbe)?;
    for (code, name) in [
        (opcode::RecvMsgMulti::CODE, "RECVMSG"),
        (opcode::Send::CODE, "SEND"),
        (opcode::PollAdd::CODE, "POLL_ADD"),
        (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    ] {
        if !p.is_supported(code) {
            return Err(ProbeError::Opcode(name));
        }
    }
    bufs.register(&ring.submitter())
        .map_err(ProbeError::BufRing)?;
    ring.submitter()
        .register_files_sparse(2)
        .map_err(ProbeError::FixedFiles)?;
    ring.submitter()
        .register_files_update(0, &[rx.as_raw_fd(), tx.as_raw_fd()])
        .map_err(ProbeError::FixedFiles)?;
    let mut exchange = ProbeExchange {
        ring: &mut ring,
        bufs: &bufs,
        msghdr: &msghdr,
        wait,
    };
    let result = exchange.round_trip(&to, from);
    // Cancel the receive even after a failure, so that it has ended before
    // the ring goes; report the first failure.
    result.and(exchange.cancel())
}

const PROBE_RECV: u64 = 1;
const PROBE_SEND: u64 = 2;
const PROBE_CANCEL: u64 = 3;
const PROBE_DATAGRAM: &[u8] = b"mediarelay io_uring probe";

/// One exchange of the probe on its ring: fixed file 0 receives, fixed
/// file 1 sends.
struct ProbeExchange<'a> {
    ring: &'a mut IoUring,
    bufs: &'a BufRing,
    msghdr: &'a libc::msghdr,
    wait: Duration,
}

impl ProbeExchange<'_> {
    fn push(&mut self, e: &squeue::Entry) -> Result<(), ProbeError> {
        // SAFETY: the entries point at the msghdr, the buffer ring, the
        // destination address (locals of `run_probe` declared before the
        // ring, so dropped after it) and the datagram (a static).
        let pushed = unsafe { self.ring.submission().push(e) };
        pushed.map_err(|_| ProbeError::Enter(io::Error::other("submission queue full")))
    }

    /// Waits until `done` says so, handing it every completion; at most
    /// `self.wait`.
    fn wait_for(
        &mut self,
        what: &'static str,
        mut done: impl FnMut(&cqueue::Entry) -> Result<bool, ProbeError>,
    ) -> Result<(), ProbeError> {
        let deadline = Instant::now() + self.wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ProbeError::Timeout {
                    what,
                    wait: self.wait,
                });
            }
            let ts = types::Timespec::from(left);
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
                Err(e) => return Err(ProbeError::Enter(e)),
            }
            for cqe in self.ring.completion() {
                if done(&cqe)? {
                    return Ok(());
                }
            }
        }
    }

    /// Arms the multishot receive, sends `PROBE_DATAGRAM` to `to` from fixed
    /// file 1 (bound to `from`) and checks both completions.
    fn round_trip(&mut self, to: &RawAddr, from: SocketAddr) -> Result<(), ProbeError> {
        let recv = opcode::RecvMsgMulti::new(types::Fixed(0), self.msghdr, self.bufs.bgid())
            .build()
            .user_data(PROBE_RECV);
        self.push(&recv)?;
        let send = opcode::Send::new(
            types::Fixed(1),
            PROBE_DATAGRAM.as_ptr(),
            PROBE_DATAGRAM.len() as u32,
        )
        .dest_addr(to.as_ptr())
        .dest_addr_len(to.len())
        .build()
        .user_data(PROBE_SEND);
        self.push(&send)?;
        let (mut sent, mut received) = (false, false);
        let (bufs, msghdr) = (self.bufs, self.msghdr);
        let what = "SEND (with destination) and multishot RECVMSG";
        let result = self.wait_for(what, |cqe| {
            match cqe.user_data() {
                PROBE_SEND => {
                    sent = true;
                    let res = cqe.result();
                    if res < 0 {
                        return Err(ProbeError::Send(io::Error::from_raw_os_error(-res)));
                    }
                    if res as usize != PROBE_DATAGRAM.len() {
                        return Err(ProbeError::SendShort {
                            sent: res,
                            len: PROBE_DATAGRAM.len(),
                        });
                    }
                }
                PROBE_RECV if !received => {
                    check_probe_datagram(cqe, bufs, msghdr, from)?;
                    received = true;
                }
                _ => {}
            }
            Ok(sent && received)
        });
        // Let the send finish if the receive side failed first, so that
        // its completion is not mistaken for a later step's.
        if !sent && result.is_err() {
            let _ = self.wait_for("SEND", |cqe| Ok(cqe.user_data() == PROBE_SEND));
        }
        result
    }

    /// Cancels the receive and waits for its final completion.
    fn cancel(&mut self) -> Result<(), ProbeError> {
        let cancel = opcode::AsyncCancel::new(PROBE_RECV)
            .build()
            .user_data(PROBE_CANCEL);
        self.push(&cancel)?;
        let (mut cancelled, mut ended) = (false, false);
        self.wait_for("cancelled RECVMSG", |cqe| {
            match cqe.user_data() {
                PROBE_CANCEL => {
                    let res = cqe.result();
                    // -ENOENT: the receive had ended on its own already.
                    if res < 0 && -res != libc::ENOENT {
                        return Err(ProbeError::Cancel(io::Error::from_raw_os_error(-res)));
                    }
                    ended |= res < 0;
                    cancelled = true;
                }
                PROBE_RECV if !cqueue::more(cqe.flags()) => ended = true,
                _ => {}
            }
            Ok(cancelled && ended)
        })
    }
}

/// Checks the receive's first completion: still armed, the probe datagram
/// in a provided buffer, from the sending socket.
fn check_probe_datagram(
    cqe: &cqueue::Entry,
    bufs: &BufRing,
    msghdr: &libc::msghdr,
    from: SocketAddr,
) -> Result<(), ProbeError> {
    let res = cqe.result();
    if res < 0 {
        return Err(ProbeError::Recv(io::Error::from_raw_os_error(-res)));
    }
    let Some(bid) = cqueue::buffer_select(cqe.flags()) else {
        return Err(ProbeError::RecvMismatch("no provided buffer"));
    };
    if !cqueue::more(cqe.flags()) {
        return Err(ProbeError::RecvNotMultishot);
    }
    let msg = types::RecvMsgOut::parse(bufs.buffer(bid, res as usize), msghdr)
        .map_err(|()| ProbeError::RecvMismatch("unparsable io_uring_recvmsg_out"))?;
    if msg.payload_data() != PROBE_DATAGRAM {
        return Err(ProbeError::RecvMismatch("wrong payload"));
    }
    if sys::parse_sockaddr(msg.name_data()) != Some(from) {
        return Err(ProbeError::RecvMismatch("wrong source address"));
    }
    Ok(())
}

/// A ring with `SINGLE_ISSUER | DEFER_TASKRUN` where the kernel has them
/// (6.1+: task work runs only when the owning thread waits; the second
/// value says so), else a plain one.
fn build_ring(sq: u32, cq: u32) -> io::Result<(IoUring, bool)> {
    match IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(cq)
        .build(sq)
    {
        Ok(ring) => Ok((ring, true)),
        Err(_) => Ok((IoUring::builder().setup_cqsize(cq).build(sq)?, false)),
    }
}

struct Sock {
    key: StreamKey,
    sock: UdpSocket,
    slot: u32,
    backoff: Backoff,
}

/// What became of a received buffer.
enum Dispatched {
    /// No usable datagram in it (counted); the buffer is free.
    Unusable,
    /// The sink had it; the buffer is free.
    Consumed,
    /// A send from it is in flight; the send owns the buffer.
    Sending,
}

/// The io_uring backend of one shard. Not `Send`: built and used on the
/// shard's thread (the ring is `SINGLE_ISSUER`).
pub struct UringBackend {
    // Field order matters: the ring is dropped (closing every request)
    // before the buffers it writes into.
    ring: IoUring,
    bufs: BufRing,
    /// Template for `RecvMsgMulti`: only the name and control lengths are
    /// read by the kernel. Boxed so its address is stable.
    msghdr: Box<libc::msghdr>,
    /// Sockets by stream index.
    socks: Vec<Option<Sock>>,
    free_slots: Vec<u32>,
    /// Per buffer id: the stream whose socket sends it.
    inflight: Box<[StreamKey]>,
    /// Per buffer id: destination address of its send.
    dests: Box<[RawAddr]>,
    /// `buffers - 1`: the buffer count is a power of two (checked by
    /// [`BufRing::new`]), so `bid & buf_mask` indexes `inflight` and `dests`.
    buf_mask: usize,
    /// Completions copied out of the CQ ring, one batch at a time.
    cqes: Vec<cqueue::Entry>,
    /// Streams whose multishot receive ended and is re-armed this turn.
    rearm: Vec<StreamKey>,
    /// Streams whose receive ended with `-ENOBUFS`: re-armed once a buffer
    /// is back in the ring.
    starved: Vec<StreamKey>,
    /// Streams whose receive failed: re-armed after their backoff.
    deferred: Deferred,
    /// Cancels that could not be queued (submission failed), retried.
    cancels: Vec<u64>,
    wake_fd: i32,
    wake_armed: bool,
    /// Multishot receives armed and not yet terminated.
    armed_recvs: usize,
    /// Sends submitted and not yet completed (from receive buffers and own
    /// buffers).
    sends_in_flight: usize,
    /// Of those, sends from own buffers (they hold no ring buffer).
    own_in_flight: usize,
    /// Send buffers for the sink's own datagrams, [`OWN_BUF_SIZE`] each.
    own_bufs: Box<[u8]>,
    /// Free own send buffers.
    own_free: Vec<u16>,
    /// Per own buffer: the stream whose socket sends it.
    own_via: Box<[StreamKey]>,
    /// Per own buffer: its destination.
    own_dests: Box<[RawAddr]>,
    counters: BackendCounters,
    /// `SO_TIMESTAMPNS` on every socket; datagrams carry the kernel's time.
    rx_timestamps: bool,
    /// Completions a turn waits for (see [`UringConfig::wait_batch`]).
    wait_batch: u32,
    /// The coalescing sleep (see [`UringConfig::batch_wait`]); zero when
    /// off or when the ring lacks deferred task running.
    batch_wait: Duration,
    /// The last turn handled datagrams: the next one sleeps the budget
    /// before it collects (when batching is on).
    busy: bool,
    /// Receive completions after which a turn that collects without
    /// waiting stops entering again: half the completion queue.
    collect_want: usize,
    /// Where a received datagram's payload starts in its buffer.
    payload_offset: usize,
    /// A monotonic and a real-time reading taken together this turn, to
    /// map kernel timestamps (real time) onto `Instant`s.
    clock_pair: Option<(Instant, std::time::SystemTime)>,
}

impl std::fmt::Debug for UringBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringBackend")
            .field("bufs", &self.bufs)
            .field("armed_recvs", &self.armed_recvs)
            .field("sends_in_flight", &self.sends_in_flight)
            .finish_non_exhaustive()
    }
}

impl UringBackend {
    /// Submits what is queued and runs the completions' deferred task
    /// work without waiting for any (`IORING_ENTER_GETEVENTS`,
    /// `min_complete` 0, no timeout, so no timer is armed).
    fn enter_nowait(&mut self) -> io::Result<usize> {
        let to_submit = u32::try_from(self.ring.submission().len()).unwrap_or(u32::MAX);
        // SAFETY: no argument is passed (a null pointer without
        // IORING_ENTER_EXT_ARG: no signal mask). The queued entries point
        // at the backend's own buffers, message header and addresses,
        // which live as long as the ring.
        unsafe {
            self.ring
                .submitter()
                .enter::<libc::sigset_t>(to_submit, 0, ENTER_GETEVENTS, None)
        }
    }

    /// Builds the ring (`SINGLE_ISSUER | DEFER_TASKRUN` where supported),
    /// registers the buffer ring and a sparse fixed-file table, and arms a
    /// multishot poll on `wake_fd`. Call on the shard's own thread.
    pub fn new(cfg: UringConfig, wake_fd: i32) -> io::Result<Self> {
        let (ring, deferred_taskrun) =
            build_ring(cfg.sq_entries, cfg.sq_entries.saturating_mul(8))?;
        // Without deferred task running (Linux 6.1+) each completion is
        // task work that interrupts the sleep: nothing to coalesce.
        let batch_wait = if deferred_taskrun {
            cfg.batch_wait
        } else {
            Duration::ZERO
        };
        if !cfg.batch_wait.is_zero() {
            if deferred_taskrun {
                narrow_timer_slack();
            } else {
                // Said once, not once per shard.
                static WARNED: std::sync::Once = std::sync::Once::new();
                WARNED.call_once(|| {
                    tracing::warn!(
                        "batch-wait: this kernel has no IORING_SETUP_DEFER_TASKRUN (Linux 6.1+): wake-ups are not coalesced"
                    );
                });
            }
        }
        let collect_want = (ring.params().cq_entries() / 2).max(1) as usize;
        // Checks that `buffers` is a power of two, which `buf_mask` needs.
        let bufs = BufRing::new(cfg.buffers, cfg.buf_size, 0)?;
        bufs.register(&ring.submitter())?;
        // The fixed-file table may not exceed RLIMIT_NOFILE.
        let soft = sys::nofile_limit().map_or(1024, |(soft, _)| soft);
        let max_sockets = cfg
            .max_sockets
            .min(u32::try_from(soft).unwrap_or(u32::MAX))
            .max(1);
        ring.submitter().register_files_sparse(max_sockets)?;
        // SAFETY: msghdr is plain old data; all-zero is a valid value.
        let mut msghdr: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msghdr.msg_namelen = SOCKADDR_MAX as libc::socklen_t;
        // With timestamps the kernel writes the control message into the
        // provided buffer, between the address and the payload; the
        // pointer itself is not used by multishot receives.
        msghdr.msg_controllen = if cfg.rx_timestamps {
            sys::RX_TIMESTAMP_CONTROL
        } else {
            0
        };
        let n = usize::from(bufs.entries());
        let mut b = UringBackend {
            ring,
            bufs,
            msghdr,
            socks: Vec::new(),
            free_slots: (0..max_sockets).rev().collect(),
            inflight: vec![Key::from_parts(u32::MAX, 0); n].into_boxed_slice(),
            dests: vec![RawAddr::empty(); n].into_boxed_slice(),
            buf_mask: n - 1,
            cqes: Vec::with_capacity(CQE_BATCH),
            rearm: Vec::new(),
            starved: Vec::new(),
            deferred: Deferred::default(),
            cancels: Vec::new(),
            wake_fd,
            wake_armed: false,
            armed_recvs: 0,
            sends_in_flight: 0,
            own_in_flight: 0,
            own_bufs: vec![0u8; OWN_BUFS * OWN_BUF_SIZE].into_boxed_slice(),
            own_free: (0..OWN_BUFS as u16).rev().collect(),
            own_via: vec![Key::from_parts(u32::MAX, 0); OWN_BUFS].into_boxed_slice(),
            own_dests: vec![RawAddr::empty(); OWN_BUFS].into_boxed_slice(),
            counters: BackendCounters::default(),
            rx_timestamps: cfg.rx_timestamps,
            wait_batch: cfg.wait_batch.max(1),
            batch_wait,
            busy: false,
            collect_want,
            payload_offset: PAYLOAD_OFFSET
                + if cfg.rx_timestamps {
                    sys::RX_TIMESTAMP_CONTROL
                } else {
                    0
                },
            clock_pair: None,
        };
        b.arm_wake()?;
        Ok(b)
    }

    fn push(&mut self, entry: &squeue::Entry) -> io::Result<()> {
        loop {
            // SAFETY: every entry pushed references memory that outlives
            // the operation: the boxed msghdr, the buffer ring slab, the own
            // send buffers (a buffer leaves `own_free` until its send
            // completes) and the per-buffer destination slots, all owned
            // by `self`, whose ring is dropped before them.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return Ok(());
            }
            // Queue full: hand what we have to the kernel, then retry.
            self.ring.submit()?;
            self.counters.syscalls += 1;
        }
    }

    fn arm_wake(&mut self) -> io::Result<()> {
        let e = opcode::PollAdd::new(types::Fd(self.wake_fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(KIND_WAKE << KIND_SHIFT);
        self.push(&e)?;
        self.wake_armed = true;
        Ok(())
    }

    /// Arms `key`'s multishot receive (nothing if it is no longer
    /// registered).
    fn arm_recv(&mut self, key: StreamKey) -> io::Result<()> {
        let Some(Some(s)) = self.socks.get(key.index() as usize) else {
            return Ok(());
        };
        if s.key != key {
            return Ok(());
        }
        let e = opcode::RecvMsgMulti::new(
            types::Fixed(s.slot),
            &raw const *self.msghdr,
            self.bufs.bgid(),
        )
        .build()
        .user_data(KIND_RECV << KIND_SHIFT | encode_stream(key));
        self.push(&e)?;
        self.armed_recvs += 1;
        Ok(())
    }

    fn sock(&self, index: u32, gen24: u32) -> Option<&Sock> {
        let s = self.socks.get(index as usize)?.as_ref()?;
        (s.key.generation() & 0x00ff_ffff == gen24).then_some(s)
    }

    fn sock_mut(&mut self, key: StreamKey) -> Option<&mut Sock> {
        self.socks
            .get_mut(key.index() as usize)?
            .as_mut()
            .filter(|s| s.key == key)
    }

    /// Defers `key`'s re-arm by its next backoff delay.
    fn back_off(&mut self, now: Instant, key: StreamKey) {
        let Some(s) = self.sock_mut(key) else {
            return;
        };
        let delay = s.backoff.fail();
        self.deferred.push(now + delay, key);
        self.counters.recv_backoffs += 1;
    }

    /// Handles one receive completion; decides how an ended multishot
    /// receive is re-armed.
    fn on_recv<S: PacketSink>(&mut self, now: Instant, cqe: &cqueue::Entry, sink: &mut S) {
        let (index, gen24) = decode_stream(cqe.user_data() & PAYLOAD_MASK);
        let (key, backing_off) = self
            .sock(index, gen24)
            .map_or((None, false), |s| (Some(s.key), s.backoff.is_backing_off()));
        let more = cqueue::more(cqe.flags());
        let res = cqe.result();
        let errno = if res < 0 { -res } else { 0 };
        let mut delivered = false;
        let mut counted = false;
        if errno != 0 && errno != libc::ENOBUFS && !(errno == libc::ECANCELED && key.is_none()) {
            self.counters.recv_errors += 1;
            counted = true;
        }
        if errno == libc::ENOBUFS {
            self.counters.no_buffers += 1;
        }
        if let Some(bid) = cqueue::buffer_select(cqe.flags()) {
            let outcome = match key {
                Some(key) if res >= 0 => self.dispatch(now, key, bid, res as usize, sink),
                None if res >= 0 => {
                    self.counters.stale += 1;
                    Dispatched::Consumed
                }
                _ => Dispatched::Consumed,
            };
            delivered = !matches!(outcome, Dispatched::Unusable);
            counted |= matches!(outcome, Dispatched::Unusable);
            // A datagram arrived: a socket that was backing off is healthy
            // again (a second lookup only in that rare case).
            if let (true, true, Some(key)) = (delivered, backing_off, key) {
                if let Some(s) = self.sock_mut(key) {
                    s.backoff.reset();
                }
            }
            if !matches!(outcome, Dispatched::Sending) {
                self.bufs.recycle(bid);
            }
        }
        if more {
            return;
        }
        debug_assert!(self.armed_recvs > 0, "a receive ended that was not armed");
        self.armed_recvs = self.armed_recvs.saturating_sub(1);
        // A removed socket's receive ends here (normally `-ECANCELED`).
        let Some(key) = key else {
            return;
        };
        if errno == libc::ENOBUFS {
            self.starved.push(key);
        } else if delivered {
            // Ended after a datagram (e.g. the CQ ring overflowed): the
            // socket is fine, re-arm at once.
            self.rearm.push(key);
        } else {
            // An error, or an end without a usable datagram: not re-armed
            // at once, as a socket failing on every arm would spin the
            // shard; it waits out its backoff.
            if !counted {
                self.counters.recv_errors += 1;
            }
            self.back_off(now, key);
        }
    }

    /// Runs the sink on a received buffer.
    fn dispatch<S: PacketSink>(
        &mut self,
        now: Instant,
        key: StreamKey,
        bid: u16,
        len: usize,
        sink: &mut S,
    ) -> Dispatched {
        let buf = self.bufs.buffer(bid, len);
        let Ok(msg) = types::RecvMsgOut::parse(buf, &self.msghdr) else {
            self.counters.recv_errors += 1;
            return Dispatched::Unusable;
        };
        let Some(src) = sys::parse_sockaddr(msg.name_data()) else {
            self.counters.recv_errors += 1;
            return Dispatched::Unusable;
        };
        let data = msg.payload_data();
        let now = if self.rx_timestamps {
            kernel_time(&mut self.clock_pair, msg.control_data()).unwrap_or(now)
        } else {
            now
        };
        let verdict = sink.on_packet(now, key, src, data, msg.is_payload_truncated());
        let len = data.len() as u32;
        let Verdict::Forward { via, dest } = verdict else {
            return Dispatched::Consumed;
        };
        let Some(slot) = self
            .socks
            .get(via.index() as usize)
            .and_then(Option::as_ref)
            .filter(|s| s.key == via)
            .map(|s| s.slot)
        else {
            // The sending socket is gone (its call is being removed): the
            // packet was counted as handed over, so it is a send error.
            sink.on_send_error(via, libc::EBADF);
            return Dispatched::Consumed;
        };
        let i = usize::from(bid) & self.buf_mask;
        self.dests[i].set(&dest);
        self.inflight[i] = via;
        let e = opcode::Send::new(
            types::Fixed(slot),
            self.bufs.ptr(bid, self.payload_offset),
            len,
        )
        .dest_addr(self.dests[i].as_ptr())
        .dest_addr_len(self.dests[i].len())
        .build()
        .user_data(KIND_SEND << KIND_SHIFT | u64::from(bid));
        if let Err(e) = self.push(&e) {
            // Not queued: the buffer stays ours and goes back to the ring.
            sink.on_send_error(via, e.raw_os_error().unwrap_or(libc::EIO));
            return Dispatched::Consumed;
        }
        self.sends_in_flight += 1;
        Dispatched::Sending
    }

    /// Queues sends of what the sink produces itself, one own buffer each,
    /// until it has nothing more or the buffers are all in flight.
    fn transmit<S: PacketSink>(&mut self, now: Instant, sink: &mut S) {
        while let Some(idx) = self.own_free.pop() {
            let i = usize::from(idx);
            let buf = &mut self.own_bufs[i * OWN_BUF_SIZE..(i + 1) * OWN_BUF_SIZE];
            let Some(t) = sink.poll_transmit(now, buf) else {
                self.own_free.push(idx);
                return;
            };
            let Some(slot) = self
                .socks
                .get(t.via.index() as usize)
                .and_then(Option::as_ref)
                .filter(|s| s.key == t.via)
                .map(|s| s.slot)
            else {
                self.own_free.push(idx);
                sink.on_send_error(t.via, libc::EBADF);
                continue;
            };
            self.own_via[i] = t.via;
            let len = t.len.min(OWN_BUF_SIZE) as u32;
            let send = opcode::Send::new(types::Fixed(slot), buf.as_ptr(), len);
            // Without a destination the socket's connected peer is used
            // (an address of length 0 would be refused with EINVAL).
            let send = match &t.dest {
                Some(dest) => {
                    self.own_dests[i].set(dest);
                    send.dest_addr(self.own_dests[i].as_ptr())
                        .dest_addr_len(self.own_dests[i].len())
                }
                None => send,
            };
            let e = send
                .build()
                .user_data(KIND_SEND << KIND_SHIFT | OWN_FLAG | u64::from(idx));
            if let Err(e) = self.push(&e) {
                self.own_free.push(idx);
                sink.on_send_error(t.via, e.raw_os_error().unwrap_or(libc::EIO));
                continue;
            }
            self.sends_in_flight += 1;
            self.own_in_flight += 1;
        }
    }

    fn on_send<S: PacketSink>(&mut self, cqe: &cqueue::Entry, sink: &mut S) {
        if cqe.user_data() & OWN_FLAG != 0 {
            let idx = (cqe.user_data() & 0xffff) as u16;
            let i = usize::from(idx) % OWN_BUFS;
            let via = self.own_via[i];
            self.sends_in_flight = self.sends_in_flight.saturating_sub(1);
            self.own_in_flight = self.own_in_flight.saturating_sub(1);
            let res = cqe.result();
            if res >= 0 {
                sink.on_sent(via, res as usize);
            } else {
                sink.on_send_error(via, -res);
            }
            self.own_free.push(i as u16);
            return;
        }
        let bid = (cqe.user_data() & 0xffff) as u16;
        let via = self.inflight[usize::from(bid) & self.buf_mask];
        let res = cqe.result();
        debug_assert!(
            self.sends_in_flight > 0,
            "a send completed that was not sent"
        );
        self.sends_in_flight = self.sends_in_flight.saturating_sub(1);
        if res >= 0 {
            sink.on_sent(via, res as usize);
        } else {
            sink.on_send_error(via, -res);
        }
        self.bufs.recycle(bid);
    }

    /// Re-arms what is due at the end of a turn; returns the first
    /// submission error (what it concerned is retried later).
    fn rearm_due(&mut self, now: Instant) -> io::Result<()> {
        let mut first_err = None;
        if !self.wake_armed {
            if let Err(e) = self.arm_wake() {
                first_err = Some(e);
            }
        }
        while let Some(user_data) = self.cancels.pop() {
            if let Err(e) = self.push_cancel(user_data) {
                self.cancels.push(user_data);
                first_err.get_or_insert(e);
                break;
            }
        }
        // Buffers not in the ring are exactly those owned by forwarding
        // sends (own-buffer sends hold none).
        let ring_sends = self.sends_in_flight - self.own_in_flight;
        if !self.starved.is_empty() && ring_sends < usize::from(self.bufs.entries()) {
            self.rearm.append(&mut self.starved);
        }
        if !self.deferred.is_empty() {
            while let Some(key) = self.deferred.pop_due(now) {
                self.rearm.push(key);
            }
        }
        while let Some(key) = self.rearm.pop() {
            if let Err(e) = self.arm_recv(key) {
                self.back_off(now, key);
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn push_cancel(&mut self, user_data: u64) -> io::Result<()> {
        let cancel = opcode::AsyncCancel::new(user_data)
            .build()
            .user_data(KIND_OTHER << KIND_SHIFT);
        self.push(&cancel)
    }
}

/// The kernel receive time in `control` as an `Instant`, through a pair
/// of clock readings taken once per turn (`pair`); `None` without a
/// timestamp.
fn kernel_time(
    pair: &mut Option<(Instant, std::time::SystemTime)>,
    control: &[u8],
) -> Option<Instant> {
    let (secs, nanos) = sys::parse_rx_timestamp(control)?;
    let (mono, real) = *pair.get_or_insert_with(|| (Instant::now(), std::time::SystemTime::now()));
    let at = std::time::UNIX_EPOCH + Duration::new(u64::try_from(secs).ok()?, nanos);
    Some(match real.duration_since(at) {
        Ok(ago) => mono.checked_sub(ago).unwrap_or(mono),
        // Stamped after the real-time reading: later than `mono`.
        Err(e) => mono + e.duration(),
    })
}

impl Backend for UringBackend {
    fn name(&self) -> &'static str {
        "uring"
    }

    fn register(&mut self, stream: StreamKey, sock: UdpSocket) -> io::Result<()> {
        sock.set_nonblocking(true)?;
        if self.rx_timestamps {
            sys::enable_rx_timestamps(sock.as_raw_fd())?;
        }
        let slot = self
            .free_slots
            .pop()
            .ok_or_else(|| io::Error::other("fixed-file table full (max_sockets)"))?;
        if let Err(e) = self
            .ring
            .submitter()
            .register_files_update(slot, &[sock.as_raw_fd()])
        {
            self.free_slots.push(slot);
            return Err(e);
        }
        let i = stream.index() as usize;
        if self.socks.len() <= i {
            self.socks.resize_with(i + 1, || None);
        }
        self.socks[i] = Some(Sock {
            key: stream,
            sock,
            slot,
            backoff: Backoff::default(),
        });
        self.arm_recv(stream)
    }

    fn deregister(&mut self, stream: StreamKey) {
        let i = stream.index() as usize;
        let Some(slot) = self.socks.get_mut(i) else {
            return;
        };
        if slot.as_ref().is_none_or(|s| s.key != stream) {
            return;
        }
        let Some(s) = slot.take() else {
            return;
        };
        // The receive (if armed: one waiting out a backoff is not) ends
        // with -ECANCELED; until then it holds the socket open, and
        // `in_flight` counts it.
        let user_data = KIND_RECV << KIND_SHIFT | encode_stream(stream);
        if self.push_cancel(user_data).is_err() {
            self.cancels.push(user_data);
        }
        // Queued SQEs name sockets by fixed-file slot, resolved when they
        // are submitted: hand them to the kernel before the slot is emptied
        // (and reused by the next register), so a send queued for this
        // socket never leaves from another.
        if !self.ring.submission().is_empty() && self.ring.submit().is_ok() {
            self.counters.syscalls += 1;
        }
        let _ = self.ring.submitter().register_files_update(s.slot, &[-1]);
        self.free_slots.push(s.slot);
        drop(s.sock);
    }

    fn turn<S: PacketSink>(&mut self, timeout: Option<Duration>, sink: &mut S) -> io::Result<bool> {
        self.counters.turns += 1;
        let mut timeout = timeout;
        let want = self.wait_batch as usize;
        if self.busy && !self.batch_wait.is_zero() {
            // Coalescing: datagrams are flowing, so sleep the budget (never
            // past the next timer) on the wake-up eventfd, then collect
            // whatever arrived without waiting. Arrivals meanwhile only
            // queue deferred task work, which wakes nobody who is not
            // waiting on the ring; a control command's wake-up ends the
            // sleep at once. A failed sleep just collects early.
            // What is queued leaves now, not after the sleep: the last
            // turn's sends, and what the shard's commands queued since
            // (a new call's receives). A failed submit (EBUSY: completions
            // to reap first) leaves them for the collecting enter below.
            if !self.ring.submission().is_empty() {
                self.counters.syscalls += 1;
                let _ = self.ring.submit();
            }
            self.counters.syscalls += 1;
            coalescing_sleep(self.wake_fd, self.batch_wait, timeout);
            // Then collect without waiting.
            timeout = Some(Duration::ZERO);
        }
        self.counters.syscalls += 1;
        // A turn that must not sleep collects without a timeout: a wait
        // with a zero timeout that finds fewer completions than asked for
        // arms an hrtimer already expired and takes its interrupt (a few
        // VM exits on a virtual machine, tens of µs), once per turn.
        let nowait = timeout == Some(Duration::ZERO);
        let wait = match timeout {
            Some(_) if nowait => self.enter_nowait(),
            Some(t) => {
                let ts = types::Timespec::from(t);
                let args = types::SubmitArgs::new().timespec(&ts);
                self.ring.submitter().submit_with_args(want, &args)
            }
            None => self.ring.submit_and_wait(want),
        };
        self.clock_pair = None;
        match wait {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        let mut woken = false;
        let mut received = 0usize;
        // Taken out while the batch is processed (the handlers need
        // `&mut self`), put back after: its capacity is reused.
        let mut cqes = std::mem::take(&mut self.cqes);
        // Completions of deferred task work (receives, the wake-up poll;
        // a send completes at submission) reaped since the last no-wait
        // enter.
        let mut since_enter = 0usize;
        loop {
            // One sync of the CQ ring per batch: the tail is read once, the
            // copied entries are released with one head store on drop.
            cqes.clear();
            cqes.extend(self.ring.completion().take(CQE_BATCH));
            if cqes.is_empty() {
                if nowait && since_enter >= LOCAL_TW_BATCH && received < self.collect_want {
                    // The kernel may have stopped at its batch of task
                    // work: run the rest (up to a bound per turn, so that
                    // arrivals as fast as the loop cannot hold it here),
                    // with the buffers freed so far handed back first. A
                    // failed enter ends the collect; the next turn's enter
                    // runs what is left.
                    since_enter = 0;
                    self.bufs.publish();
                    self.counters.syscalls += 1;
                    if self.enter_nowait().is_ok() {
                        continue;
                    }
                }
                break;
            }
            for cqe in &cqes {
                match cqe.user_data() >> KIND_SHIFT {
                    KIND_RECV => {
                        received += 1;
                        since_enter += 1;
                        self.on_recv(now, cqe, sink);
                    }
                    KIND_SEND => self.on_send(cqe, sink),
                    KIND_WAKE => {
                        woken = true;
                        since_enter += 1;
                        if !cqueue::more(cqe.flags()) {
                            self.wake_armed = false;
                        }
                    }
                    _ => {}
                }
            }
        }
        self.cqes = cqes;
        self.busy = received > 0;
        self.bufs.publish();
        self.transmit(Instant::now(), sink);
        self.rearm_due(now)?;
        Ok(woken)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.deferred.next()
    }

    fn counters(&self) -> BackendCounters {
        self.counters
    }

    fn in_flight(&self) -> usize {
        self.armed_recvs + self.sends_in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this host lets us make a ring at all (a sandbox may not).
    fn rings_allowed() -> bool {
        match IoUring::new(2) {
            Ok(_) => true,
            Err(e) => {
                eprintln!("SKIP: io_uring_setup: {e}");
                false
            }
        }
    }

    #[test]
    fn probe_exchanges_a_datagram_here() {
        if !rings_allowed() {
            return;
        }
        // The full probe: multishot receive, send with destination, cancel.
        run_probe(None, PROBE_WAIT).unwrap();
        assert_eq!(probe_here(), UringSupport::Available);
        assert_eq!(probe(), UringSupport::Available);
    }

    #[test]
    fn probe_reports_a_failed_send() {
        if !rings_allowed() {
            return;
        }
        // An IPv6 destination on the IPv4 socket: the send fails.
        let to: SocketAddr = "[::1]:9".parse().unwrap();
        let err = run_probe(Some(to), PROBE_WAIT).unwrap_err();
        assert!(matches!(err, ProbeError::Send(_)), "{err:?}");
        let why = err.to_string();
        assert!(
            why.starts_with("SEND with a destination address failed (needs 6.0+): "),
            "{why}"
        );
        assert!(
            why.contains(&format!("os error {}", libc::EAFNOSUPPORT)),
            "{why}"
        );
    }

    #[test]
    fn probe_reports_a_missing_completion() {
        if !rings_allowed() {
            return;
        }
        // Sent elsewhere: the receive never completes, the wait is bounded.
        let elsewhere = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let to = elsewhere.local_addr().unwrap();
        let wait = Duration::from_millis(100);
        let err = run_probe(Some(to), wait).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no SEND (with destination) and multishot RECVMSG completion within 100ms"
        );
    }
}
