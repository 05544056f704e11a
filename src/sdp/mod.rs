//! SDP (RFC 8866): a tolerant, lossless parser/writer, the typed views and
//! edits a relay needs, and RFC 3264 offer/answer, all sans-IO.
//!
//! # Model
//! An [`Sdp`] is a list of verbatim [`Line`]s split into the session
//! [`Section`] and one [`MediaSection`] per `m=`. Writing concatenates the
//! lines with their own endings, so `Sdp::parse(x)?.to_bytes() == x` for
//! every accepted `x`. Typed values ([`Origin`], [`Connection`],
//! [`MediaLine`], [`Rtpmap`], [`Fmtp`], [`Rtcp`], [`Direction`], ...) are
//! read from the lines; edits rewrite only the lines they touch.
//! What is accepted and rejected is listed on [`Sdp`] and in `docs/sdp.md`.
//!
//! # Offer/answer
//! [`build_offer`] and [`answer_offer`] are stateless; [`Negotiator`] adds
//! the `o=` version rules of RFC 3264 §8 and applies answers to our offers.
//! Results ([`Negotiated`]) carry per-stream [`PtMapping`]s for transcoding.

mod answer;
mod attribute;
mod capability;
mod connection;
mod direction;
mod error;
mod fmtp;
mod limits;
mod line;
mod media;
mod negotiator;
mod offer;
mod origin;
mod outcome;
mod rtcp;
mod rtpmap;
mod section;
mod session;
mod telephone_event;
mod writer;

pub use answer::{Answer, answer_offer};
pub use attribute::{Attribute, ICE_ATTRIBUTES};
pub use capability::{Codec, LocalIdentity, MediaCapabilities, TelephoneEventCaps};
pub use connection::{AddrType, Address, Connection};
pub use direction::Direction;
pub use error::{EditError, NegotiationError, ParseError};
pub use fmtp::{Fmtp, FmtpParams};
pub use limits::ParseLimits;
pub use line::{Line, LineEnding};
pub use media::{MediaKind, MediaLine, MediaSection, Proto};
pub use negotiator::Negotiator;
pub use offer::build_offer;
pub use origin::Origin;
pub use outcome::{MediaOutcome, Negotiated, Outcome, PtMapping, Rejection, RemoteMedia};
pub use rtcp::Rtcp;
pub use rtpmap::Rtpmap;
// Used by the NG handler's SDP layout (feature `daemon`).
#[cfg(feature = "daemon")]
pub(crate) use rtpmap::parse_payload_type;
pub use section::Section;
pub use session::Sdp;
pub use telephone_event::TelephoneEvents;

/// Checks that `a=<name>[:<value>]` can be written (RFC 8866 §5.13 token
/// name, no line break in the value).
pub(crate) fn check_attribute(name: &str, value: Option<&str>) -> Result<(), EditError> {
    attribute::check_name(name)?;
    if let Some(v) = value {
        attribute::check_value(v)?;
    }
    Ok(())
}
