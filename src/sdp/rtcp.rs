//! `a=rtcp:<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605 §2.1):
//! an explicit RTCP port (and address) when RTCP is not on RTP port + 1.

use std::fmt;
use std::net::IpAddr;

use super::connection::{AddrType, Connection};

/// A parsed `a=rtcp` value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rtcp {
    /// The RTCP port.
    pub port: u16,
    /// The RTCP address, when it differs from the media's `c=`.
    pub connection: Option<Connection>,
}

impl Rtcp {
    /// An RTCP port, optionally with a unicast address.
    pub fn new(port: u16, ip: Option<IpAddr>) -> Rtcp {
        Rtcp {
            port,
            connection: ip.map(Connection::new),
        }
    }

    /// Parses the value of an `rtcp` attribute (after `rtcp:`).
    pub fn parse(value: &str) -> Option<Rtcp> {
        let mut f = value.split_ascii_whitespace();
        let port = f.next()?.parse().ok()?;
        let Some(nettype) = f.next() else {
            return Some(Rtcp {
                port,
                connection: None,
            });
        };
        let addrtype = AddrType::parse(f.next()?);
        let connection = Connection::from_parts(nettype, addrtype, f.next()?)?;
        if f.next().is_some() {
            return None;
        }
        Some(Rtcp {
            port,
            connection: Some(connection),
        })
    }
}

impl fmt::Display for Rtcp {
    /// The value of an `rtcp` attribute (after `rtcp:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.port)?;
        if let Some(c) = &self.connection {
            write!(f, " {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_port_and_address() {
        assert_eq!(Rtcp::parse("53020"), Some(Rtcp::new(53020, None)));
        let r = Rtcp::parse("53020 IN IP6 2001:2345:6789:ABCD:EF01:2345:6789:ABCD").unwrap();
        assert_eq!(
            r.connection.unwrap().address.ip(),
            Some("2001:2345:6789:abcd:ef01:2345:6789:abcd".parse().unwrap())
        );
        assert!(Rtcp::parse("70000").is_none());
        assert!(Rtcp::parse("5000 IN").is_none());
        assert!(Rtcp::parse("").is_none());
    }

    proptest! {
        #[test]
        fn round_trip(port in any::<u16>(), ip in proptest::option::of(any::<IpAddr>())) {
            let r = Rtcp::new(port, ip);
            prop_assert_eq!(Rtcp::parse(&r.to_string()), Some(r));
        }
    }
}
