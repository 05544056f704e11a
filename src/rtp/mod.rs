//! RTP (RFC 3550 §5): the packet view and writer, header-field newtypes, and
//! per-source receive statistics.
//!
//! Contract: parsing never panics and never allocates; malformed input is a
//! typed [`RtpError`]. Everything here is sans-IO.

mod fields;
mod packet;

pub use fields::{PayloadType, SeqNo, Ssrc};
pub use packet::{
    FIXED_HEADER_LEN, HeaderExtension, MAX_CSRCS, RTP_VERSION, RtpError, RtpHeader, RtpPacket,
    RtpWriteError,
};
pub mod source;
pub mod stats;

pub use source::RtpSource;
pub use stats::ReceiveStats;
