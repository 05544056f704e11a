//! RTCP (RFC 3550 §6): compound packets, extended reports (RFC 3611),
//! RTP/RTCP demultiplexing for rtcp-mux (RFC 5761 §4, RFC 7983), and report
//! generation from the RTP receive statistics ([`crate::rtp::stats`]).
//!
//! Contract: parsing is zero-copy, never panics and never allocates;
//! malformed input is a typed [`RtcpError`]. Writers fill caller-provided
//! buffers and fail with [`RtcpWriteError`] instead of truncating. Wall-clock
//! time enters as an [`NtpTime`] parameter and monotonic time as
//! `now: Instant`: everything here is sans-IO.
//!
//! | file | owns |
//! |---|---|
//! | `header.rs` | common header, framing, [`PacketType`] |
//! | `packet.rs` | [`RtcpPacket`] dispatch, [`Unknown`] passthrough |
//! | `sr.rs`, `rr.rs`, `report_block.rs` | SR, RR, report blocks, RTT |
//! | `sdes.rs`, `bye.rs`, `app.rs` | SDES, BYE, APP |
//! | `xr.rs` | XR (RFC 3611), [`VoipMetrics`] blocks |
//! | `compound.rs` | [`Compound`] iterator, strict check, [`CompoundWriter`] |
//! | `demux.rs` | [`demux`] for rtcp-mux ports |
//! | `report.rs` | [`write_report`] from [`crate::rtp::stats::ReceiveStats`] |
//! | `ntp.rs` | [`NtpTime`], [`NtpShort`] |
//!
//! Deviations from the RFCs are listed in `docs/rtcp.md`.

mod app;
mod bye;
mod compound;
mod demux;
mod error;
mod header;
mod ntp;
mod packet;
mod report;
mod report_block;
mod rr;
mod sdes;
mod sr;
mod xr;

pub use app::App;
pub use bye::{Bye, SsrcIter, SsrcList};
pub use compound::{Compound, CompoundWriter, parse_compound, validate_strict, write_compound};
pub use demux::{PacketKind, demux};
pub use error::{RtcpError, RtcpWriteError};
pub use header::{HEADER_LEN, Header, MAX_COUNT, MAX_PACKET_LEN, PacketType, RTCP_VERSION};
pub use ntp::{NTP_UNIX_OFFSET_SECS, NtpShort, NtpTime};
pub use packet::{RtcpPacket, Unknown};
pub use report::{LocalSource, write_report};
pub use report_block::{REPORT_BLOCK_LEN, ReportBlock, ReportBlockIter, ReportBlocks};
pub use rr::ReceiverReport;
pub use sdes::{
    SdesChunk, SdesChunkIter, SdesChunks, SdesItem, SdesItemIter, SdesItems, SourceDescription,
};
pub use sr::{SENDER_INFO_LEN, SenderInfo, SenderReport};
pub use xr::{
    ExtendedReport, JitterBufferMode, Plc, RxConfig, VOIP_METRICS_BLOCK_TYPE, VOIP_METRICS_LEN,
    VoipMetrics, XR_BLOCK_HEADER_LEN, XrBlock, XrBlockIter,
};
