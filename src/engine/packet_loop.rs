//! A single-threaded batched packet loop on the engine's I/O backends, for
//! applications that produce and consume raw datagrams on many sockets at
//! once: load generators, probes, test tools.
//!
//! It is the shards' own loop without the relay: the same io_uring backend
//! (multishot receive on a provided buffer ring across every socket, sends
//! queued in the submission ring and handed to the kernel together, one
//! `io_uring_enter` per turn) or the epoll backend (`recvmmsg`/`sendmmsg`).
//! The application's [`LoopSink`] gets every datagram received and, once a
//! turn's receives are handled, produces datagrams to send, written
//! straight into the backend's send buffers.
//!
//! ```
//! use std::net::{SocketAddr, UdpSocket};
//! use std::time::{Duration, Instant};
//! use mediarelay::engine::{IoBackend, LoopSink, OwnTransmit, PacketLoop, StreamKey};
//!
//! /// Sends one datagram from socket 0 to socket 1 and counts arrivals.
//! struct Once { to: SocketAddr, sent: bool, got: usize }
//! impl LoopSink for Once {
//!     fn on_datagram(&mut self, _: Instant, key: StreamKey, _: SocketAddr, data: &[u8], _: bool) {
//!         assert_eq!((key.index(), data), (1, &b"hello"[..]));
//!         self.got += 1;
//!     }
//!     fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
//!         if self.sent { return None; }
//!         self.sent = true;
//!         buf[..5].copy_from_slice(b"hello");
//!         Some(OwnTransmit { via: StreamKey::from_parts(0, 0), dest: Some(self.to), len: 5 })
//!     }
//! }
//!
//! let mut lp = PacketLoop::new(IoBackend::Auto)?;
//! let a = UdpSocket::bind("127.0.0.1:0")?;
//! let b = UdpSocket::bind("127.0.0.1:0")?;
//! let mut sink = Once { to: b.local_addr()?, sent: false, got: 0 };
//! lp.register(StreamKey::from_parts(0, 0), a)?;
//! lp.register(StreamKey::from_parts(1, 0), b)?;
//! let deadline = Instant::now() + Duration::from_secs(5);
//! while sink.got == 0 && Instant::now() < deadline {
//!     lp.turn(Some(Duration::from_millis(10)), &mut sink)?;
//! }
//! assert_eq!(sink.got, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::backend::{Backend, BackendCounters, IoBackend, OwnTransmit, PacketSink};
use super::epoll::EpollBackend;
use super::sys::EventFd;
use super::uring::{UringBackend, UringConfig};
use super::{EngineError, resolve_backend};
use crate::relay::{StreamKey, Verdict};

/// What a [`PacketLoop`] reports to, and asks of, the application.
pub trait LoopSink {
    /// One datagram received on `key`'s socket from `src`; `truncated`: it
    /// did not fit the receive buffer (2 KiB with io_uring).
    fn on_datagram(
        &mut self,
        now: Instant,
        key: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    );
    /// Called once the received datagrams of a turn are handled, until it
    /// returns `None` or the backend's send buffers are all in flight (then
    /// again next turn): write a datagram into `buf` and say from which
    /// socket it leaves and where to.
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<OwnTransmit>;
    /// A datagram of `bytes` left `key`'s socket.
    fn on_sent(&mut self, _key: StreamKey, _bytes: usize) {}
    /// A send from `key`'s socket failed with `errno` (e.g. `ENOBUFS`,
    /// `EAGAIN`, `ECONNREFUSED`); never fatal to the loop.
    fn on_send_error(&mut self, _key: StreamKey, _errno: i32) {}
}

/// Adapts a [`LoopSink`] to the backends' relay-shaped sink: every datagram
/// is the application's (nothing is forwarded by the backend).
struct Adapter<'a, S: LoopSink>(&'a mut S);

impl<S: LoopSink> PacketSink for Adapter<'_, S> {
    fn on_packet(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) -> Verdict {
        self.0.on_datagram(now, stream, src, data, truncated);
        // Consumed by the application: the backend only recycles the buffer.
        Verdict::UnknownStream
    }
    fn on_sent(&mut self, via: StreamKey, bytes: usize) {
        self.0.on_sent(via, bytes);
    }
    fn on_send_error(&mut self, via: StreamKey, errno: i32) {
        self.0.on_send_error(via, errno);
    }
    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
        self.0.poll_transmit(now, buf)
    }
}

/// The loop lives once per thread and is not moved per packet: the size
/// difference between the variants costs nothing.
#[allow(clippy::large_enum_variant)]
enum Inner {
    Uring(UringBackend),
    Epoll(EpollBackend),
}

/// Wakes a [`PacketLoop`] blocked in [`PacketLoop::turn`] from another
/// thread (the turn returns `true`).
#[derive(Debug, Clone)]
pub struct LoopWaker(Arc<EventFd>);

impl LoopWaker {
    /// Makes the loop's current or next turn return.
    pub fn wake(&self) -> io::Result<()> {
        self.0.notify()
    }
}

/// A batched packet loop over many sockets on one thread (see the module
/// documentation). Build it on the thread that turns it: the io_uring ring
/// is single-issuer.
pub struct PacketLoop {
    inner: Inner,
    wake: Arc<EventFd>,
    backend: IoBackend,
    reason: String,
}

impl std::fmt::Debug for PacketLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PacketLoop")
            .field("backend", &self.backend)
            .field("reason", &self.reason)
            .finish_non_exhaustive()
    }
}

impl PacketLoop {
    /// A loop on `backend` (`Auto`: io_uring when the probe finds it usable,
    /// else epoll) with the shards' default io_uring sizes.
    pub fn new(backend: IoBackend) -> Result<PacketLoop, EngineError> {
        PacketLoop::with_uring_config(backend, UringConfig::default())
    }

    /// As [`new`](PacketLoop::new) with explicit io_uring sizes.
    pub fn with_uring_config(
        backend: IoBackend,
        cfg: UringConfig,
    ) -> Result<PacketLoop, EngineError> {
        let (backend, reason) = resolve_backend(backend)?;
        let wake = Arc::new(EventFd::new().map_err(|e| EngineError::Io(e.to_string()))?);
        let inner = match backend {
            IoBackend::Uring => Inner::Uring(
                UringBackend::new(cfg, wake.raw())
                    .map_err(|e| EngineError::Io(format!("io_uring loop setup: {e}")))?,
            ),
            _ => Inner::Epoll(
                EpollBackend::new(wake.raw())
                    .map_err(|e| EngineError::Io(format!("epoll loop setup: {e}")))?,
            ),
        };
        Ok(PacketLoop {
            inner,
            wake,
            backend,
            reason,
        })
    }

    /// The backend in use (`Uring` or `Epoll`, never `Auto`).
    pub fn backend(&self) -> IoBackend {
        self.backend
    }

    /// Why that backend was chosen.
    pub fn backend_reason(&self) -> &str {
        &self.reason
    }

    /// A handle that wakes this loop from another thread.
    pub fn waker(&self) -> LoopWaker {
        LoopWaker(Arc::clone(&self.wake))
    }

    /// Starts receiving on `sock` (made non-blocking); its datagrams and
    /// sends are reported as `key`. Keys index a table: keep their indices
    /// small and dense.
    pub fn register(&mut self, key: StreamKey, sock: UdpSocket) -> io::Result<()> {
        match &mut self.inner {
            Inner::Uring(b) => b.register(key, sock),
            Inner::Epoll(b) => b.register(key, sock),
        }
    }

    /// Stops receiving on `key`'s socket and closes it.
    pub fn deregister(&mut self, key: StreamKey) {
        match &mut self.inner {
            Inner::Uring(b) => b.deregister(key),
            Inner::Epoll(b) => b.deregister(key),
        }
    }

    /// One turn: sends what earlier turns queued, waits up to `timeout`
    /// (`None`: until I/O or a wake-up) for I/O, hands every datagram
    /// received to `sink`, then asks it for datagrams to send. Returns
    /// whether a [`LoopWaker`] fired.
    pub fn turn<S: LoopSink>(
        &mut self,
        timeout: Option<Duration>,
        sink: &mut S,
    ) -> io::Result<bool> {
        let mut adapter = Adapter(sink);
        let timeout = match self.poll_timeout() {
            Some(at) => {
                let until = at.saturating_duration_since(Instant::now());
                Some(timeout.map_or(until, |t| t.min(until)))
            }
            None => timeout,
        };
        let woken = match &mut self.inner {
            Inner::Uring(b) => b.turn(timeout, &mut adapter)?,
            Inner::Epoll(b) => b.turn(timeout, &mut adapter)?,
        };
        if woken {
            self.wake.drain();
        }
        Ok(woken)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match &self.inner {
            Inner::Uring(b) => b.poll_timeout(),
            Inner::Epoll(b) => b.poll_timeout(),
        }
    }

    /// The backend's counters (syscalls, turns, receive errors...).
    pub fn counters(&self) -> BackendCounters {
        match &self.inner {
            Inner::Uring(b) => b.counters(),
            Inner::Epoll(b) => b.counters(),
        }
    }

    /// Operations the kernel still owns (armed receives, sends in flight).
    pub fn in_flight(&self) -> usize {
        match &self.inner {
            Inner::Uring(b) => b.in_flight(),
            Inner::Epoll(b) => b.in_flight(),
        }
    }
}
