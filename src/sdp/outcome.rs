//! The result of an offer/answer exchange (RFC 3264), per media stream:
//! accepted or why rejected, the payload-type mapping a transcoder needs,
//! the negotiated direction and ptime, and the remote transport address.

use super::connection::Address;
use super::direction::Direction;
use super::rtcp::Rtcp;
use crate::rtp::PayloadType;

/// One codec both sides use, and its payload type on each side.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PtMapping {
    /// Our payload type for it ([`Codec::pt`](super::Codec::pt), or the one
    /// we offered).
    pub local: PayloadType,
    /// The payload type the peer's SDP uses (on the wire, RFC 3264 §6.1).
    pub remote: PayloadType,
    /// Encoding name as the peer wrote it.
    pub name: String,
    /// Clock rate in Hz.
    pub clock_rate: u32,
    /// Channels (`None`: one).
    pub channels: Option<u16>,
}

/// Why a media stream was rejected (answered or seen with port 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rejection {
    /// The offer itself had port 0 (RFC 3264 §8.2: the stream is removed).
    Disabled,
    /// No local capability for this media kind (or all already used).
    UnsupportedMedia,
    /// The transport protocol is not one we accept.
    UnsupportedProto,
    /// No codec in common (RFC 3264 §6.1).
    NoCommonCodec,
    /// The peer answered our offered stream with port 0.
    RejectedByPeer,
}

/// The overall result, so a caller can tell a full rejection apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Every stream accepted.
    Accepted,
    /// Some streams accepted, some rejected.
    Partial,
    /// No stream accepted (also for an SDP without any `m=`): the call has
    /// no media; a SIP layer typically answers 488.
    Rejected,
}

/// The peer's transport for one stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteMedia {
    /// Address from the media or session `c=`, if any.
    pub address: Option<Address>,
    /// RTP port from `m=`.
    pub port: u16,
    /// Explicit RTCP port/address (RFC 3605), if given.
    pub rtcp: Option<Rtcp>,
}

/// The negotiated state of one media stream, in `m=` order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOutcome {
    /// `None` when accepted.
    pub rejection: Option<Rejection>,
    /// Index of the [`MediaCapabilities`](super::MediaCapabilities) entry
    /// used, when accepted.
    pub local: Option<usize>,
    /// Common codecs, in the order of the SDP that listed them last.
    pub codecs: Vec<PtMapping>,
    /// Common RFC 4733 telephone-event formats.
    pub telephone_events: Vec<PtMapping>,
    /// Packetization time to use, ms.
    pub ptime: Option<u32>,
    /// What we do: `Inactive` for a rejected stream.
    pub direction: Direction,
    /// RTP/RTCP multiplexing agreed (RFC 5761 §5.1.1).
    pub rtcp_mux: bool,
    /// The peer's transport.
    pub remote: RemoteMedia,
}

/// The result of an exchange: overall outcome and one entry per `m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Overall outcome.
    pub outcome: Outcome,
    /// Per media stream, in `m=` order.
    pub media: Vec<MediaOutcome>,
}

impl MediaOutcome {
    /// A rejected stream.
    pub(crate) fn rejected(rejection: Rejection, remote: RemoteMedia) -> MediaOutcome {
        MediaOutcome {
            rejection: Some(rejection),
            local: None,
            codecs: Vec::new(),
            telephone_events: Vec::new(),
            ptime: None,
            direction: Direction::Inactive,
            rtcp_mux: false,
            remote,
        }
    }

    /// True when the stream was accepted.
    pub fn is_accepted(&self) -> bool {
        self.rejection.is_none()
    }
}

impl RemoteMedia {
    /// True for the RFC 2543 hold address `0.0.0.0` (RFC 3264 §8.4: send
    /// the peer neither RTP nor RTCP).
    pub fn is_hold_address(&self) -> bool {
        self.address
            .as_ref()
            .and_then(Address::ip)
            .is_some_and(|ip| ip == std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }
}

impl Negotiated {
    /// Derives the overall outcome from the per-stream ones.
    pub(crate) fn new(media: Vec<MediaOutcome>) -> Negotiated {
        let accepted = media.iter().filter(|m| m.is_accepted()).count();
        let outcome = if accepted == 0 {
            Outcome::Rejected
        } else if accepted == media.len() {
            Outcome::Accepted
        } else {
            Outcome::Partial
        };
        Negotiated { outcome, media }
    }
}
