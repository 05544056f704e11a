//! [`MediaStreamInfo`]: what a builder knows about one `m=` line.

use std::net::SocketAddr;

use crate::sdp::{Direction, MediaKind, Rejection};

/// One media stream (`m=` line) of a builder, as negotiated so far.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaStreamInfo {
    /// `a=label` when the SDP has one, else `<builder id>_<media>_<index>`.
    pub id: String,
    /// The media kind of the `m=` line.
    pub media_type: MediaKind,
    /// Position of the `m=` line (0-based).
    pub index: usize,
    /// Our address and port for it as advertised (`None`: rejected, port
    /// 0).
    pub local: Option<SocketAddr>,
    /// The far end's address and port (`None`: not known yet, rejected, or
    /// on hold with `c=0.0.0.0`).
    pub remote: Option<SocketAddr>,
    /// Payload type we send (the first common codec), once negotiated.
    pub payload_type: Option<u8>,
    /// Its encoding name.
    pub codec: Option<String>,
    /// Negotiated RFC 4733 telephone-event payload type.
    pub telephone_event: Option<u8>,
    /// Our direction for it, as negotiated (complemented from the
    /// peer's, RFC 3264 §6.1).
    pub direction: Direction,
    /// `a=label` (RFC 4574), when the SDP has one.
    pub label: Option<String>,
    /// RTP and RTCP share the port (RFC 5761).
    pub rtcp_mux: bool,
    /// Sockets are bound (after the answer).
    pub bound: bool,
    /// Why it was rejected, when it was.
    pub rejection: Option<Rejection>,
}

impl MediaStreamInfo {
    /// Whether its sockets are bound and it is not rejected.
    pub fn is_active(&self) -> bool {
        self.bound && self.rejection.is_none()
    }

    /// Whether we send on it (`sendrecv` or `sendonly`).
    pub fn is_send_enabled(&self) -> bool {
        self.rejection.is_none() && self.direction.sends()
    }

    /// Whether we receive on it (`sendrecv` or `recvonly`).
    pub fn is_recv_enabled(&self) -> bool {
        self.rejection.is_none() && self.direction.receives()
    }
}
