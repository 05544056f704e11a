//! The I/O backend seam: one trait, two implementations (io_uring and
//! epoll + `recvmmsg`/`sendmmsg`), chosen at start by an opcode probe with an
//! override.
//!
//! A backend owns the shard's sockets and buffers. Each loop turn it waits
//! for I/O (bounded by the shard's next timer), hands every received
//! datagram to the shard's [`PacketSink`], performs the sends the sink asks
//! for, and reports send outcomes back. The sink holds all protocol logic;
//! the backend holds none.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::relay::{StreamKey, Verdict};

/// Which I/O backend the shards use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum IoBackend {
    /// io_uring when the probe finds everything needed, else epoll.
    #[default]
    Auto,
    /// io_uring; starting fails when it is unavailable.
    Uring,
    /// epoll with `recvmmsg`/`sendmmsg`.
    Epoll,
}

impl IoBackend {
    /// `auto`, `uring` or `epoll`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IoBackend::Auto => "auto",
            IoBackend::Uring => "uring",
            IoBackend::Epoll => "epoll",
        }
    }
}

impl std::str::FromStr for IoBackend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(IoBackend::Auto),
            "uring" | "io_uring" | "io-uring" => Ok(IoBackend::Uring),
            "epoll" => Ok(IoBackend::Epoll),
            other => Err(format!(
                "unknown I/O backend {other:?} (expected auto, uring or epoll)"
            )),
        }
    }
}

impl std::fmt::Display for IoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives what a backend reads, and decides what it writes.
pub trait PacketSink {
    /// One datagram received on `stream`'s socket from `src`. `truncated`:
    /// it did not fit the buffer. The returned verdict's `Forward` makes the
    /// backend send the same bytes.
    fn on_packet(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) -> Verdict;
    /// A forwarded packet of `bytes` left `via`'s socket.
    fn on_sent(&mut self, via: StreamKey, bytes: usize);
    /// A send from `via`'s socket failed with `errno` (never fatal).
    fn on_send_error(&mut self, via: StreamKey, errno: i32);
}

/// Counters a backend keeps about itself (published by the shard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BackendCounters {
    /// Syscalls made on the data path (io_uring_enter, epoll_wait,
    /// recvmmsg, sendmmsg...).
    pub syscalls: u64,
    /// Loop turns.
    pub turns: u64,
    /// Receive attempts that found no buffer (io_uring `-ENOBUFS`).
    pub no_buffers: u64,
    /// Receive errors other than no-buffer.
    pub recv_errors: u64,
    /// Datagrams received on sockets that were already deregistered.
    pub stale: u64,
}

/// A shard's I/O backend.
pub trait Backend {
    /// `uring` or `epoll`.
    fn name(&self) -> &'static str;
    /// Starts receiving on `sock`; its datagrams are reported as `stream`.
    fn register(&mut self, stream: StreamKey, sock: UdpSocket) -> io::Result<()>;
    /// Stops receiving on `stream`'s socket and closes it.
    fn deregister(&mut self, stream: StreamKey);
    /// One loop turn: wait up to `timeout` (None: until I/O or a wake-up),
    /// then process everything ready. Returns whether the wake-up eventfd
    /// fired (the caller then drains it; no read syscall otherwise).
    fn turn<S: PacketSink>(&mut self, timeout: Option<Duration>, sink: &mut S) -> io::Result<bool>;
    /// The backend's own counters.
    fn counters(&self) -> BackendCounters;
    /// Operations still owned by the kernel (armed receives, sends in
    /// flight); shutdown turns the loop until this reaches zero so that
    /// closed sockets are really released.
    fn in_flight(&self) -> usize;
}

/// user_data / epoll data encoding for a stream key: index in the low 32
/// bits, the low 24 bits of the generation above.
pub(crate) fn encode_stream(key: StreamKey) -> u64 {
    u64::from(key.index()) | (u64::from(key.generation() & 0x00ff_ffff) << 32)
}

/// Index and truncated generation from [`encode_stream`].
pub(crate) fn decode_stream(v: u64) -> (u32, u32) {
    ((v & 0xffff_ffff) as u32, ((v >> 32) & 0x00ff_ffff) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::Key;

    #[test]
    fn stream_encoding_round_trips() {
        let k = Key::from_parts(123_456, 0x0abc_def1);
        assert_eq!(decode_stream(encode_stream(k)), (123_456, 0x00bc_def1));
        assert_eq!("epoll".parse::<IoBackend>(), Ok(IoBackend::Epoll));
        assert!("kqueue".parse::<IoBackend>().is_err());
    }
}
