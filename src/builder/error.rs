//! Typed errors of the builder layer: match on variants, never on text.

use super::config::ConfigError;
use crate::engine::EngineError;
use crate::media::{HandleError, SessionError};
use crate::sdp::{EditError, NegotiationError};

/// Errors of [`BuilderManager`](super::BuilderManager).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ManagerError {
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The media engine could not start (address not bindable, threads).
    #[error("media engine: {0}")]
    Engine(EngineError),
    /// [`shutdown`](super::BuilderManager::shutdown) was called.
    #[error("manager is shut down")]
    Closed,
    /// A builder with this id exists.
    #[error("builder {0:?} already exists")]
    Duplicate(String),
    /// The id is empty.
    #[error("builder id is empty")]
    EmptyId,
    /// `max_concurrent_builders` are alive.
    #[error("{0} builders are alive, the configured maximum")]
    Limit(usize),
    /// No port pair is left in the range.
    #[error("no port pair available: {0}")]
    NoPorts(String),
}

/// Where a builder is in offer/answer (RFC 3264).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Nothing sent or received yet.
    Idle,
    /// Our offer is out; waiting for the answer.
    OfferSent,
    /// A peer's offer is in; our answer is next.
    OfferReceived,
    /// Media is negotiated (a re-offer either way may follow).
    Established,
    /// Our re-offer (hold, resume) is out.
    ReofferSent,
    /// A peer's re-offer is in.
    ReofferReceived,
    /// Closed.
    Closed,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Idle => "idle",
            Phase::OfferSent => "offer sent",
            Phase::OfferReceived => "offer received",
            Phase::Established => "established",
            Phase::ReofferSent => "re-offer sent",
            Phase::ReofferReceived => "re-offer received",
            Phase::Closed => "closed",
        })
    }
}

/// Errors of [`Builder`](super::Builder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuilderError {
    /// The operation does not fit the offer/answer state (e.g. an offer
    /// after our offer, an answer before any offer). Nothing changed.
    #[error("{op} is not allowed while {phase}")]
    State {
        /// The operation.
        op: &'static str,
        /// The builder's phase.
        phase: Phase,
    },
    /// The builder is closed (a second `close` included).
    #[error("builder is closed")]
    Closed,
    /// Its manager is shut down.
    #[error("manager is shut down")]
    ManagerClosed,
    /// Offer/answer failed (malformed, mismatched m-lines, ...). Nothing
    /// changed.
    #[error("negotiation: {0}")]
    Negotiation(#[from] NegotiationError),
    /// The SDP has no `m=` line.
    #[error("SDP has no media")]
    NoMedia,
    /// No offered audio stream has a codec in common with ours; every
    /// stream is rejected.
    #[error("no supported audio stream")]
    NoSupportedMedia,
    /// An accepted stream names no address to send to (no `c=` at media
    /// or session level).
    #[error("stream {0} has no connection address")]
    NoAddress(usize),
    /// A custom attribute cannot be written in SDP.
    #[error("attribute: {0}")]
    Attribute(#[from] EditError),
    /// The stream index does not exist.
    #[error("no stream {0}")]
    NoStream(usize),
    /// No port pair left for an extra stream.
    #[error("no port pair available: {0}")]
    NoPorts(String),
    /// Binding or installing a stream in the engine failed.
    #[error("media engine: {0}")]
    Engine(EngineError),
    /// A payload type this library does not implement, or listed twice.
    #[error("payload type {0} is not supported here (PCMU 0, PCMA 8), or repeated")]
    PayloadType(u8),
    /// At least one stream must be offered (or one payload type given).
    #[error("at least one audio stream must be offered")]
    NoStreams,
}

/// Errors of [`MediaSession`](super::MediaSession).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Not started yet ([`start`](super::MediaSession::start)).
    #[error("media session not started")]
    NotStarted,
    /// Stopped; a session does not restart (negotiate a new one).
    #[error("media session stopped")]
    Stopped,
    /// No stream of the session sends (every one is `recvonly` or
    /// `inactive`, or rejected).
    #[error("no stream sends")]
    NotSending,
    /// No stream with this id.
    #[error("no stream {0:?}")]
    NoStream(String),
    /// The session core refused the settings negotiated.
    #[error("session: {0}")]
    Session(SessionError),
    /// A request to a running stream failed.
    #[error("stream: {0}")]
    Handle(#[from] HandleError),
    /// Installing a stream in the engine failed.
    #[error("media engine: {0}")]
    Engine(EngineError),
    /// The impairment settings are invalid.
    #[error("impairment: {0}")]
    Impairment(String),
    /// The session was started without capture.
    #[error("capture was not enabled at start")]
    NoCapture,
    /// Writing the capture failed.
    #[error("capture: {0}")]
    Capture(String),
    /// The event thread could not be spawned.
    #[error("thread: {0}")]
    Thread(String),
}
