//! The relay's sans-IO core: calls with legs, symmetric RTP latching with
//! RTP-bleed protection, strict source, RTCP on port + 1 or rtcp-mux, media
//! timeouts and per-stream counters.
//!
//! Contract: nothing here performs I/O or reads a clock. The engine's shards
//! own sockets and feed every received datagram to
//! [`RelayTable::handle_packet`], which answers with a [`Verdict`]. The
//! same decision logic is what a future in-kernel fast path must mirror.

mod counters;
mod latch;
mod slab;
mod table;
mod timer;

pub use counters::{DropReason, RtpSummary, StreamCounters};
pub use latch::{
    AddressMode, ESTABLISHED_PACKETS, Intervals, Latch, LatchPolicy, LatchVerdict,
    RTCP_MIN_INTERVAL,
};
pub use slab::{Key, Slab};
pub use table::{
    CallKey, Component, EndpointKey, LegKey, LegSpec, LegStreams, OffloadedTraffic, RelayConfig,
    RelayError, RelayEvent, RelayTable, RemovedCall, StreamKey, StreamKind, StreamSnapshot,
    TimeoutReason, Verdict,
};
pub use timer::TimerWheel;
