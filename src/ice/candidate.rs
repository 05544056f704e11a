//! ICE candidates as the SDP `a=candidate` attribute carries them
//! (RFC 8839 §5.1), and candidate priorities (RFC 8445 §5.1.2).
//!
//! ```text
//! candidate-attribute = "candidate" ":" foundation SP component-id SP
//!                       transport SP priority SP connection-address SP
//!                       port SP "typ" SP cand-type [SP "raddr" SP addr]
//!                       [SP "rport" SP port] *(SP extension-att-name SP
//!                       extension-att-value)
//! ```

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::credentials::is_ice_char;

/// Type preference of host candidates (RFC 8445 §5.1.2.2: 126).
pub const HOST_TYPE_PREFERENCE: u32 = 126;
/// Type preference of peer-reflexive candidates (RFC 8445 §5.1.2.2: 110).
pub const PRFLX_TYPE_PREFERENCE: u32 = 110;

/// Priority of a host candidate (RFC 8445 §5.1.2.1):
/// `2^24 * 126 + 2^8 * local_pref + (256 - component)`. `component` is
/// 1..=256 (clamped). Component 1 with local preference 65535 gives
/// 2130706431.
pub fn host_priority(component: u16, local_pref: u16) -> u32 {
    priority(HOST_TYPE_PREFERENCE, component, local_pref)
}

/// Priority that a peer-reflexive candidate learned from this agent's
/// checks would get (RFC 8445 §7.1.1): type preference 110, carried in
/// PRIORITY.
pub fn prflx_priority(component: u16, local_pref: u16) -> u32 {
    priority(PRFLX_TYPE_PREFERENCE, component, local_pref)
}

fn priority(type_pref: u32, component: u16, local_pref: u16) -> u32 {
    let component = u32::from(component.clamp(1, 256));
    (type_pref << 24) | (u32::from(local_pref) << 8) | (256 - component)
}

/// Why an `a=candidate` value did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CandidateError {
    /// The value ends before the named field.
    #[error("candidate ends before {0}")]
    Missing(&'static str),
    /// The foundation is not 1..=32 ice-chars.
    #[error("bad foundation")]
    BadFoundation,
    /// The component id is not 1..=256.
    #[error("bad component id")]
    BadComponent,
    /// The priority is not a decimal 32-bit unsigned number.
    #[error("bad priority")]
    BadPriority,
    /// The connection address (or `raddr`) is empty.
    #[error("bad connection address")]
    BadAddress,
    /// The port (or `rport`) is not 0..=65535.
    #[error("bad port")]
    BadPort,
    /// The word after the port is not `typ`.
    #[error("expected \"typ\"")]
    NoTyp,
    /// The candidate type is not host, srflx, prflx or relay.
    #[error("unknown candidate type {0:?}")]
    UnknownType(String),
    /// An extension attribute has a name but no value.
    #[error("extension {0:?} has no value")]
    NoExtensionValue(String),
}

/// Candidate type (RFC 8839 §5.1 cand-type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CandidateType {
    /// `host`.
    Host,
    /// `srflx`: server reflexive.
    Srflx,
    /// `prflx`: peer reflexive.
    Prflx,
    /// `relay`: on a TURN server.
    Relay,
}

impl CandidateType {
    /// The SDP token.
    pub fn as_str(self) -> &'static str {
        match self {
            CandidateType::Host => "host",
            CandidateType::Srflx => "srflx",
            CandidateType::Prflx => "prflx",
            CandidateType::Relay => "relay",
        }
    }
}

/// A connection address: an IP address, or a name (an FQDN or an mDNS
/// `.local` name) that this crate does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ConnectionAddress {
    /// An IPv4 or IPv6 address.
    Ip(IpAddr),
    /// Anything else, as written.
    Name(String),
}

impl fmt::Display for ConnectionAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionAddress::Ip(ip) => write!(f, "{ip}"),
            ConnectionAddress::Name(n) => f.write_str(n),
        }
    }
}

impl ConnectionAddress {
    fn parse(s: &str) -> Result<Self, CandidateError> {
        if s.is_empty() {
            return Err(CandidateError::BadAddress);
        }
        Ok(match s.parse::<IpAddr>() {
            Ok(ip) => ConnectionAddress::Ip(ip),
            Err(_) => ConnectionAddress::Name(s.to_owned()),
        })
    }
}

/// One ICE candidate: the value of an `a=candidate` attribute
/// (RFC 8839 §5.1). Parsing keeps extension attributes in order, and
/// [`fmt::Display`] writes the value back (without `candidate:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Foundation: 1..=32 ice-chars.
    pub foundation: String,
    /// Component id: 1 = RTP, 2 = RTCP.
    pub component: u16,
    /// Transport as written (`UDP`, `udp`, `TCP`, ...).
    pub transport: String,
    /// Priority (RFC 8445 §5.1.2).
    pub priority: u32,
    /// Connection address.
    pub address: ConnectionAddress,
    /// Port.
    pub port: u16,
    /// Candidate type.
    pub typ: CandidateType,
    /// `raddr`: related address.
    pub related_address: Option<ConnectionAddress>,
    /// `rport`: related port.
    pub related_port: Option<u16>,
    /// Other `name value` pairs (`generation 0`, `network-id 1`, ...).
    pub extensions: Vec<(String, String)>,
}

impl Candidate {
    /// A host candidate for a relay socket `addr` of `component`, with
    /// foundation `foundation` and [`host_priority`] with local
    /// preference 65535.
    pub fn host(foundation: &str, component: u16, addr: SocketAddr) -> Candidate {
        Candidate {
            foundation: foundation.to_owned(),
            component,
            transport: "UDP".to_owned(),
            priority: host_priority(component, 65535),
            address: ConnectionAddress::Ip(addr.ip()),
            port: addr.port(),
            typ: CandidateType::Host,
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        }
    }

    /// Parses an `a=candidate` value; a leading `candidate:` (the trickle
    /// and SDP-line form) is accepted too.
    pub fn parse(value: &str) -> Result<Candidate, CandidateError> {
        let value = value.strip_prefix("candidate:").unwrap_or(value);
        let mut it = value.split_ascii_whitespace();
        let foundation = it.next().ok_or(CandidateError::Missing("foundation"))?;
        if foundation.len() > 32 || !foundation.bytes().all(is_ice_char) {
            return Err(CandidateError::BadFoundation);
        }
        let component: u16 = it
            .next()
            .ok_or(CandidateError::Missing("component-id"))?
            .parse()
            .map_err(|_| CandidateError::BadComponent)?;
        if !(1..=256).contains(&component) {
            return Err(CandidateError::BadComponent);
        }
        let transport = it.next().ok_or(CandidateError::Missing("transport"))?;
        let priority: u32 = it
            .next()
            .ok_or(CandidateError::Missing("priority"))?
            .parse()
            .map_err(|_| CandidateError::BadPriority)?;
        let address =
            ConnectionAddress::parse(it.next().ok_or(CandidateError::Missing("address"))?)?;
        let port = parse_port(it.next().ok_or(CandidateError::Missing("port"))?)?;
        if it.next().ok_or(CandidateError::Missing("typ"))? != "typ" {
            return Err(CandidateError::NoTyp);
        }
        let typ = match it.next().ok_or(CandidateError::Missing("cand-type"))? {
            "host" => CandidateType::Host,
            "srflx" => CandidateType::Srflx,
            "prflx" => CandidateType::Prflx,
            "relay" => CandidateType::Relay,
            other => return Err(CandidateError::UnknownType(other.to_owned())),
        };
        let mut c = Candidate {
            foundation: foundation.to_owned(),
            component,
            transport: transport.to_owned(),
            priority,
            address,
            port,
            typ,
            related_address: None,
            related_port: None,
            extensions: Vec::new(),
        };
        while let Some(name) = it.next() {
            let value = it
                .next()
                .ok_or_else(|| CandidateError::NoExtensionValue(name.to_owned()))?;
            match name {
                "raddr" if c.related_address.is_none() => {
                    c.related_address = Some(ConnectionAddress::parse(value)?);
                }
                "rport" if c.related_port.is_none() => c.related_port = Some(parse_port(value)?),
                _ => c.extensions.push((name.to_owned(), value.to_owned())),
            }
        }
        Ok(c)
    }

    /// Whether the transport is UDP (compared case-insensitively,
    /// RFC 8839 §5.1).
    pub fn is_udp(&self) -> bool {
        self.transport.eq_ignore_ascii_case("udp")
    }

    /// The transport address, when the connection address is an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        match self.address {
            ConnectionAddress::Ip(ip) => Some(SocketAddr::new(ip, self.port)),
            ConnectionAddress::Name(_) => None,
        }
    }
}

fn parse_port(s: &str) -> Result<u16, CandidateError> {
    s.parse().map_err(|_| CandidateError::BadPort)
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} typ {}",
            self.foundation,
            self.component,
            self.transport,
            self.priority,
            self.address,
            self.port,
            self.typ.as_str()
        )?;
        if let Some(a) = &self.related_address {
            write!(f, " raddr {a}")?;
        }
        if let Some(p) = self.related_port {
            write!(f, " rport {p}")?;
        }
        for (k, v) in &self.extensions {
            write!(f, " {k} {v}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Candidate {
    type Err = CandidateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Candidate::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn priorities() {
        assert_eq!(host_priority(1, 65535), 2_130_706_431);
        assert_eq!(host_priority(2, 65535), 2_130_706_430);
        assert_eq!(prflx_priority(1, 65535), 1_862_270_975);
        assert_eq!(host_priority(0, 0), host_priority(1, 0));
    }

    #[test]
    fn parse_and_display() {
        let s = "1 1 UDP 2130706431 192.0.2.1 30000 typ host";
        let c = Candidate::parse(s).expect("parses");
        assert_eq!(c.component, 1);
        assert_eq!(c.socket_addr(), "192.0.2.1:30000".parse().ok());
        assert_eq!(c.typ, CandidateType::Host);
        assert!(c.is_udp());
        assert_eq!(c.to_string(), s);
        assert_eq!(
            Candidate::host("1", 1, "192.0.2.1:30000".parse().expect("addr")),
            c
        );

        let s = "842163049 2 udp 1677729535 2001:db8::1 50000 typ srflx raddr 10.0.0.1 rport 40000 generation 0 network-cost 999";
        let c = Candidate::parse(&format!("candidate:{s}")).expect("parses");
        assert_eq!(c.typ, CandidateType::Srflx);
        assert_eq!(c.related_port, Some(40000));
        assert_eq!(c.extensions.len(), 2);
        assert_eq!(c.to_string(), s);

        let c = Candidate::parse("a 1 UDP 1 abcd-1234.local 9 typ host").expect("mdns name");
        assert_eq!(c.socket_addr(), None);
        let c = Candidate::parse("a 1 TCP 1 192.0.2.1 9 typ host tcptype active").expect("tcp");
        assert!(!c.is_udp());
    }

    #[test]
    fn errors() {
        use CandidateError as E;
        let cases: [(&str, E); 10] = [
            ("", E::Missing("foundation")),
            ("1 1 UDP 1 192.0.2.1", E::Missing("port")),
            ("1 0 UDP 1 192.0.2.1 9 typ host", E::BadComponent),
            ("1 257 UDP 1 192.0.2.1 9 typ host", E::BadComponent),
            ("1 1 UDP -1 192.0.2.1 9 typ host", E::BadPriority),
            ("1 1 UDP 1 192.0.2.1 65536 typ host", E::BadPort),
            ("1 1 UDP 1 192.0.2.1 9 type host", E::NoTyp),
            (
                "1 1 UDP 1 192.0.2.1 9 typ foo",
                E::UnknownType("foo".into()),
            ),
            (
                "1 1 UDP 1 192.0.2.1 9 typ host generation",
                E::NoExtensionValue("generation".into()),
            ),
            ("a:b 1 UDP 1 192.0.2.1 9 typ host", E::BadFoundation),
        ];
        for (s, e) in cases {
            assert_eq!(Candidate::parse(s), Err(e), "{s:?}");
        }
    }

    fn arb_candidate() -> impl Strategy<Value = Candidate> {
        (
            "[a-zA-Z0-9+/]{1,32}",
            1u16..=256,
            prop_oneof![Just("UDP"), Just("udp"), Just("TCP")],
            any::<u32>(),
            any::<[u8; 4]>(),
            any::<u16>(),
            prop_oneof![
                Just(CandidateType::Host),
                Just(CandidateType::Srflx),
                Just(CandidateType::Prflx),
                Just(CandidateType::Relay)
            ],
            proptest::option::of((any::<[u8; 16]>(), any::<u16>())),
            proptest::collection::vec(("[a-z][a-z-]{0,10}", "[a-z0-9]{1,6}"), 0..3),
        )
            .prop_map(
                |(f, component, t, priority, ip, port, typ, rel, ext)| Candidate {
                    foundation: f,
                    component,
                    transport: t.to_owned(),
                    priority,
                    address: ConnectionAddress::Ip(IpAddr::from(ip)),
                    port,
                    typ,
                    related_address: rel.map(|(ip, _)| ConnectionAddress::Ip(IpAddr::from(ip))),
                    related_port: rel.map(|(_, p)| p),
                    extensions: ext
                        .into_iter()
                        .filter(|(k, _)| k != "raddr" && k != "rport")
                        .collect(),
                },
            )
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(c in arb_candidate()) {
            prop_assert_eq!(Candidate::parse(&c.to_string()), Ok(c));
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = Candidate::parse(&s);
        }
    }
}
