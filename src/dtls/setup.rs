//! The SDP `a=setup` attribute (RFC 4145 §4) as DTLS-SRTP uses it to pick
//! the DTLS roles (RFC 5763 §5): the `active` side opens the connection and
//! is the DTLS client, the `passive` side is the DTLS server.

use std::fmt;
use std::str::FromStr;

use super::DtlsRole;

/// An `a=setup` value (RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `active`: this endpoint initiates (the DTLS client).
    Active,
    /// `passive`: this endpoint accepts (the DTLS server).
    Passive,
    /// `actpass`: either; the offerer's value (RFC 5763 §5 makes it the
    /// offerer's MUST), the answerer decides.
    ActPass,
    /// `holdconn`: no connection for now.
    HoldConn,
}

impl Setup {
    /// Every value.
    pub const ALL: [Setup; 4] = [
        Setup::Active,
        Setup::Passive,
        Setup::ActPass,
        Setup::HoldConn,
    ];

    /// The attribute value.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }

    /// The DTLS role of the endpoint that wrote this value: `active` is the
    /// client, `passive` the server (RFC 5763 §5); `actpass` and
    /// `holdconn` decide no role.
    pub fn role(self) -> Option<DtlsRole> {
        match self {
            Setup::Active => Some(DtlsRole::Client),
            Setup::Passive => Some(DtlsRole::Server),
            Setup::ActPass | Setup::HoldConn => None,
        }
    }

    /// The value an answerer writes to an offer of `self` (RFC 4145 §4.1
    /// table; RFC 5763 §5: to `actpass` the answerer SHOULD be `active`).
    pub fn answer(self) -> Setup {
        match self {
            Setup::Active => Setup::Passive,
            Setup::Passive | Setup::ActPass => Setup::Active,
            Setup::HoldConn => Setup::HoldConn,
        }
    }
}

impl FromStr for Setup {
    type Err = SetupError;

    /// Reads the value, compared case-insensitively as peers vary; blanks
    /// around it are ignored.
    fn from_str(s: &str) -> Result<Setup, SetupError> {
        let s = s.trim();
        Setup::ALL
            .into_iter()
            .find(|v| v.name().eq_ignore_ascii_case(s))
            .ok_or(SetupError)
    }
}

impl fmt::Display for Setup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `a=setup` value is none of `active`, `passive`, `actpass`,
/// `holdconn` (RFC 4145 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a=setup is not active, passive, actpass or holdconn")]
pub struct SetupError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_roles() {
        for v in Setup::ALL {
            assert_eq!(v.to_string().parse(), Ok(v));
            assert_eq!(v.name().to_uppercase().parse(), Ok(v));
        }
        assert_eq!(" actpass\r".parse(), Ok(Setup::ActPass));
        for bad in ["", "act pass", "activ", "passive2", "new"] {
            assert_eq!(bad.parse::<Setup>(), Err(SetupError), "{bad:?}");
        }
        assert_eq!(Setup::Active.role(), Some(DtlsRole::Client));
        assert_eq!(Setup::Passive.role(), Some(DtlsRole::Server));
        assert_eq!(Setup::ActPass.role(), None);
        assert_eq!(Setup::HoldConn.role(), None);
        assert_eq!(Setup::ActPass.answer(), Setup::Active);
        assert_eq!(Setup::Active.answer(), Setup::Passive);
        assert_eq!(Setup::Passive.answer(), Setup::Active);
        assert_eq!(Setup::HoldConn.answer(), Setup::HoldConn);
    }
}
