//! Errors of the SDP module: what makes a body unparsable ([`ParseError`]),
//! why an edit was refused ([`EditError`]) and why offer/answer could not
//! proceed ([`NegotiationError`]).
//!
//! Parsing is deliberately tolerant (see `docs/sdp.md`): only input a relay
//! cannot work with is an error. Line numbers are 1-based.

/// Why a byte string is not an SDP body this module accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input has no line other than blank ones.
    #[error("SDP body is empty")]
    Empty,
    /// The input is longer than [`ParseLimits::max_bytes`](super::ParseLimits).
    #[error("SDP body of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Input length in bytes.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The input has more lines than [`ParseLimits::max_lines`](super::ParseLimits).
    #[error("SDP body has more than {max} lines")]
    TooManyLines {
        /// The configured limit.
        max: usize,
    },
    /// The input has more `m=` sections than [`ParseLimits::max_media`](super::ParseLimits).
    #[error("SDP body has more than {max} media sections")]
    TooManyMedia {
        /// The configured limit.
        max: usize,
    },
    /// A non-blank line is not `<letter>=...` (RFC 8866 §5): the body is not
    /// SDP, or is corrupt.
    #[error("line {line} is not of the form <type>=<value>")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line is not UTF-8; the media structure cannot be read.
    #[error("media line {line} is not UTF-8")]
    MediaNotUtf8 {
        /// 1-based line number.
        line: usize,
    },
    /// An `m=` line lacks `<media> <port> <proto>` or has a port that is not
    /// a 16-bit number (RFC 8866 §5.14).
    #[error("media line {line} is malformed")]
    MalformedMedia {
        /// 1-based line number.
        line: usize,
    },
}

/// Why an edit of a parsed SDP was refused. The SDP is left unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EditError {
    /// An attribute name is empty or contains characters outside the RFC 8866
    /// §9 `token` set.
    #[error("invalid attribute name {0:?}")]
    InvalidName(String),
    /// A value contains CR, LF or NUL, which would inject lines.
    #[error("value contains a line break or NUL")]
    InvalidValue,
    /// The SDP has no parsable `o=` line to modify.
    #[error("no parsable o= line")]
    NoOrigin,
    /// No media section with this index.
    #[error("no media section {0}")]
    NoSuchMedia(usize),
}

/// Why an offer could not be built or answered, or an answer not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// A local capability or identity field cannot be written into SDP (a
    /// line break, whitespace in a token, duplicate payload type, ...).
    #[error("invalid local configuration: {0}")]
    InvalidLocal(&'static str),
    /// An answer arrived while no offer of ours was outstanding.
    #[error("answer without an outstanding offer")]
    NoPendingOffer,
    /// An offer arrived while one of ours is outstanding (RFC 3264 §4 glare).
    #[error("offer received while our offer is outstanding")]
    OfferPending,
    /// The answer does not have exactly one `m=` line per offered one
    /// (RFC 3264 §6).
    #[error("answer has {answered} media sections, offer had {offered}")]
    MediaCountMismatch {
        /// `m=` lines in our offer.
        offered: usize,
        /// `m=` lines in the answer.
        answered: usize,
    },
}
