//! Media direction attributes (RFC 8866 §6.7: `a=sendrecv`, `a=sendonly`,
//! `a=recvonly`, `a=inactive`) and the RFC 3264 §6.1 answer rule.
//!
//! A media-level direction overrides the session-level one; with neither,
//! the direction is `sendrecv` (RFC 8866 §6.7).

use std::fmt;

/// A stream direction, from the point of view of the SDP's author.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Direction {
    /// Send and receive (the default).
    #[default]
    SendRecv,
    /// Send only.
    SendOnly,
    /// Receive only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// All four, in attribute-name order of RFC 8866 §6.7.
    pub const ALL: [Direction; 4] = [
        Direction::RecvOnly,
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::Inactive,
    ];

    /// Parses an attribute name (case-insensitive).
    pub fn from_name(name: &str) -> Option<Direction> {
        Direction::ALL
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(name))
    }

    /// The attribute name.
    pub const fn name(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Builds from the two capabilities.
    pub const fn from_flags(send: bool, recv: bool) -> Direction {
        match (send, recv) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// True when the author sends.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// True when the author receives.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction an answerer wanting `local` may answer to an offer of
    /// `self` (RFC 3264 §6.1): it sends only if the offerer receives and
    /// receives only if the offerer sends. `sendonly` -> `recvonly` (or
    /// `inactive`), `recvonly` -> `sendonly` (or `inactive`),
    /// `inactive` -> `inactive`, `sendrecv` -> `local`.
    pub const fn answer(self, local: Direction) -> Direction {
        Direction::from_flags(
            self.receives() && local.sends(),
            self.sends() && local.receives(),
        )
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Direction::ALL {
            assert_eq!(Direction::from_name(d.name()), Some(d));
            assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
        }
        assert_eq!(Direction::from_name("SendOnly"), Some(Direction::SendOnly));
        assert_eq!(Direction::from_name("sendonl"), None);
    }

    #[test]
    fn rfc3264_answer_table() {
        use Direction::*;
        assert_eq!(SendOnly.answer(SendRecv), RecvOnly);
        assert_eq!(SendOnly.answer(SendOnly), Inactive);
        assert_eq!(RecvOnly.answer(SendRecv), SendOnly);
        assert_eq!(RecvOnly.answer(RecvOnly), Inactive);
        assert_eq!(Inactive.answer(SendRecv), Inactive);
        for d in Direction::ALL {
            assert_eq!(SendRecv.answer(d), d);
        }
    }
}
