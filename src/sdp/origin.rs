//! Origin (RFC 8866 §5.2):
//! `o=<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
//!
//! `sess-id` is kept as text (real stacks send values beyond 64 bits);
//! `sess-version` must be a 64-bit number because offer/answer increments it
//! (RFC 3264 §8).

use std::fmt;

use super::connection::{AddrType, Address};

/// A parsed `o=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// `<username>`, `-` when the host has no user concept.
    pub username: String,
    /// `<sess-id>`, a numeric string, kept verbatim.
    pub session_id: String,
    /// `<sess-version>`.
    pub session_version: u64,
    /// `<nettype>`, in practice `IN`.
    pub nettype: String,
    /// `<addrtype>`.
    pub addrtype: AddrType,
    /// `<unicast-address>`: IP literal or FQDN.
    pub address: Address,
}

impl Origin {
    /// Parses the value of an `o=` line (after `o=`). `None` unless there are
    /// exactly six fields and the version is a 64-bit number.
    pub fn parse(value: &str) -> Option<Origin> {
        let mut f = value.split_ascii_whitespace();
        let username = f.next()?;
        let session_id = f.next()?;
        let session_version = f.next()?.parse::<u64>().ok()?;
        let nettype = f.next()?;
        let addrtype = AddrType::parse(f.next()?);
        let address = Address::parse(f.next()?);
        if f.next().is_some() {
            return None;
        }
        Some(Origin {
            username: username.to_owned(),
            session_id: session_id.to_owned(),
            session_version,
            nettype: nettype.to_owned(),
            addrtype,
            address,
        })
    }
}

impl fmt::Display for Origin {
    /// The value of an `o=` line (without `o=`), single-space separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {}",
            self.username,
            self.session_id,
            self.session_version,
            self.nettype,
            self.addrtype,
            self.address
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_rejects() {
        let o = Origin::parse("- 18446744073709551616123 42 IN IP4 host.example.com").unwrap();
        assert_eq!(o.session_id, "18446744073709551616123");
        assert_eq!(o.session_version, 42);
        assert_eq!(o.address, Address::Name("host.example.com".into()));
        let v6 = Origin::parse("jdoe 1 2 IN IP6 2001:db8::1").unwrap();
        assert_eq!(v6.addrtype, AddrType::Ip6);
        assert_eq!(v6.address.ip(), Some("2001:db8::1".parse().unwrap()));
        assert!(Origin::parse("- 1 x IN IP4 1.2.3.4").is_none());
        assert!(Origin::parse("- 1 2 IN IP4").is_none());
        assert!(Origin::parse("- 1 2 IN IP4 1.2.3.4 x").is_none());
    }

    proptest! {
        #[test]
        fn round_trip(user in "[a-zA-Z0-9-]{1,8}", id in any::<u64>(), ver in any::<u64>(),
                      ip in any::<std::net::IpAddr>()) {
            let o = Origin {
                username: user,
                session_id: id.to_string(),
                session_version: ver,
                nettype: "IN".into(),
                addrtype: AddrType::of(ip),
                address: Address::Ip(ip),
            };
            prop_assert_eq!(Origin::parse(&o.to_string()), Some(o));
        }
    }
}
