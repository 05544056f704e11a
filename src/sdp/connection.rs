//! Connection data (RFC 8866 §5.7, `c=<nettype> <addrtype> <connection-address>`)
//! and the address types shared with `o=` and `a=rtcp`.
//!
//! Addresses that are not IP literals (FQDNs, RFC 8866 §5.7) are kept as
//! text in [`Address::Name`]; the relay cannot send to them but must not
//! reject the body for them.

use std::fmt;
use std::net::IpAddr;

/// `<addrtype>` (RFC 8866 §5.7, IANA "addrtype" registry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AddrType {
    /// `IP4`.
    Ip4,
    /// `IP6`.
    Ip6,
    /// Anything else, verbatim.
    Other(String),
}

/// A unicast or multicast address as written in SDP.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// An IPv4 or IPv6 literal.
    Ip(IpAddr),
    /// Not an IP literal (an FQDN, or garbage), verbatim.
    Name(String),
}

/// A parsed `c=` line (or the address part of `a=rtcp`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// `<nettype>`, in practice `IN`.
    pub nettype: String,
    /// `<addrtype>`.
    pub addrtype: AddrType,
    /// The address without the `/ttl` and `/count` suffixes.
    pub address: Address,
    /// IPv4 multicast TTL (`addr/ttl[/count]`).
    pub ttl: Option<u8>,
    /// Number of multicast addresses (`addr/ttl/count` for IP4, `addr/count` for IP6).
    pub count: Option<u32>,
}

impl AddrType {
    /// Parses the token (case-insensitive for the two known types).
    pub fn parse(s: &str) -> AddrType {
        if s.eq_ignore_ascii_case("IP4") {
            AddrType::Ip4
        } else if s.eq_ignore_ascii_case("IP6") {
            AddrType::Ip6
        } else {
            AddrType::Other(s.to_owned())
        }
    }

    /// The type matching an IP address.
    pub fn of(ip: IpAddr) -> AddrType {
        match ip {
            IpAddr::V4(_) => AddrType::Ip4,
            IpAddr::V6(_) => AddrType::Ip6,
        }
    }

    /// The token as written.
    pub fn as_str(&self) -> &str {
        match self {
            AddrType::Ip4 => "IP4",
            AddrType::Ip6 => "IP6",
            AddrType::Other(s) => s,
        }
    }
}

impl Address {
    /// Parses an address token: an IP literal (IPv6 optionally in brackets)
    /// or any other text.
    pub fn parse(s: &str) -> Address {
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Address::Ip(ip),
            Err(_) => Address::Name(s.to_owned()),
        }
    }

    /// The IP literal, if this is one.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ip(ip) => Some(*ip),
            Address::Name(_) => None,
        }
    }
}

impl Connection {
    /// A unicast `IN IP4|IP6 <ip>` connection.
    pub fn new(ip: IpAddr) -> Connection {
        Connection {
            nettype: "IN".to_owned(),
            addrtype: AddrType::of(ip),
            address: Address::Ip(ip),
            ttl: None,
            count: None,
        }
    }

    /// Parses the value of a `c=` line (after `c=`). `None` when fewer than
    /// three fields are present or a `/` suffix is not a number.
    pub fn parse(value: &str) -> Option<Connection> {
        let mut fields = value.split_ascii_whitespace();
        let nettype = fields.next()?;
        let addrtype = AddrType::parse(fields.next()?);
        let conn = fields.next()?;
        if fields.next().is_some() {
            return None;
        }
        Self::from_parts(nettype, addrtype, conn)
    }

    /// Builds from already split fields; `conn` is `addr[/n[/m]]`.
    pub(crate) fn from_parts(nettype: &str, addrtype: AddrType, conn: &str) -> Option<Connection> {
        let mut parts = conn.split('/');
        let address = Address::parse(parts.next()?);
        let first = parts.next().map(str::parse::<u32>).transpose().ok()?;
        let second = parts.next().map(str::parse::<u32>).transpose().ok()?;
        if parts.next().is_some() {
            return None;
        }
        // RFC 8866 §5.7: IP4 multicast is addr/ttl[/count]; IP6 is addr[/count].
        let (ttl, count) = match (&addrtype, first, second) {
            (_, None, _) => (None, None),
            (AddrType::Ip6, Some(n), None) => (None, Some(n)),
            (_, Some(t), c) => (Some(u8::try_from(t).ok()?), c),
        };
        Some(Connection {
            nettype: nettype.to_owned(),
            addrtype,
            address,
            ttl,
            count,
        })
    }
}

impl fmt::Display for AddrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => write!(f, "{ip}"),
            Address::Name(s) => f.write_str(s),
        }
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Self {
        Address::Ip(ip)
    }
}

impl fmt::Display for Connection {
    /// The value of a `c=` line (without `c=`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.nettype, self.addrtype, self.address)?;
        if let Some(ttl) = self.ttl {
            write!(f, "/{ttl}")?;
        }
        if let Some(count) = self.count {
            write!(f, "/{count}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn parses_unicast_multicast_and_names() {
        let c = Connection::parse("IN IP4 192.0.2.1").unwrap();
        assert_eq!(c, Connection::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))));
        let m = Connection::parse("IN IP4 224.2.36.42/127/3").unwrap();
        assert_eq!((m.ttl, m.count), (Some(127), Some(3)));
        let v6 = Connection::parse("IN IP6 FF15::101/3").unwrap();
        assert_eq!((v6.ttl, v6.count), (None, Some(3)));
        assert_eq!(v6.address.ip(), Some("ff15::101".parse().unwrap()));
        let name = Connection::parse("IN IP4 media.example.com").unwrap();
        assert_eq!(name.address, Address::Name("media.example.com".into()));
        assert_eq!(name.address.ip(), None);
        assert!(Connection::parse("IN IP4").is_none());
        assert!(Connection::parse("IN IP4 1.2.3.4/x").is_none());
        assert!(Connection::parse("IN IP4 224.1.1.1/300").is_none());
        assert!(Connection::parse("IN IP4 1.2.3.4 extra").is_none());
    }

    #[test]
    fn writes_canonically() {
        let c = Connection::new(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(c.to_string(), "IN IP6 ::1");
        let m = Connection::parse("IN  IP4   224.2.36.42/127").unwrap();
        assert_eq!(m.to_string(), "IN IP4 224.2.36.42/127");
        assert_eq!(
            Connection::parse("IN IP6 [::1]").unwrap().address,
            Address::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
    }

    proptest! {
        #[test]
        fn round_trip(ip in any::<IpAddr>(), ttl in proptest::option::of(any::<u8>()),
                      count in proptest::option::of(any::<u32>())) {
            let mut c = Connection::new(ip);
            if ip.is_ipv4() {
                c.ttl = ttl;
                c.count = if ttl.is_some() { count } else { None };
            } else {
                c.count = count;
            }
            prop_assert_eq!(Connection::parse(&c.to_string()), Some(c));
        }
    }
}
