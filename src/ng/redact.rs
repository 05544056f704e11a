//! Addresses in log lines: a phone's IP address is personal data, so the
//! info-level NG log shows it only in part. [`Redacted`] displays a text
//! with every IP address literal in it masked: an IPv4 address keeps its
//! first two octets (`192.0.x.x`), an IPv6 address its first two groups
//! (`2001:db8:x`). The full text is logged at debug level only.

use std::fmt;
use std::net::IpAddr;

/// A text displayed with its IP address literals masked.
#[derive(Debug, Clone, Copy)]
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        let is_addr_char = |c: char| c.is_ascii_hexdigit() || c == '.' || c == ':';
        let mut rest = s;
        while let Some(start) = rest.find(is_addr_char) {
            let (before, from) = rest.split_at(start);
            f.write_str(before)?;
            let len = from.find(|c: char| !is_addr_char(c)).unwrap_or(from.len());
            let (token, after) = from.split_at(len);
            // A trailing `:` or `.` (punctuation) is not part of the address.
            let trimmed = token.trim_end_matches(['.', ':']);
            let tail = &token[trimmed.len()..];
            match trimmed.parse::<IpAddr>() {
                Ok(ip) => {
                    mask(ip, f)?;
                    f.write_str(tail)?;
                }
                Err(_) => f.write_str(token)?,
            }
            rest = after;
        }
        f.write_str(rest)
    }
}

fn mask(ip: IpAddr, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            write!(f, "{}.{}.x.x", o[0], o[1])
        }
        IpAddr::V6(v6) => {
            let g = v6.segments();
            write!(f, "{:x}:{:x}:x", g[0], g[1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_masked_and_the_rest_kept() {
        let r = |s: &str| Redacted(s).to_string();
        assert_eq!(
            r("Failed to parse SDP: media 1: `c=IN IP4 203.0.113.7`: an IPv4 address"),
            "Failed to parse SDP: media 1: `c=IN IP4 203.0.x.x`: an IPv4 address"
        );
        assert_eq!(
            r("from 2001:db8::1 and [::1]:5060."),
            "from 2001:db8:x and [0:0:x]:5060."
        );
        assert_eq!(
            r("media 1: port 30000, ab:cd"),
            "media 1: port 30000, ab:cd"
        );
        assert_eq!(r("999.1.1.1 is not one"), "999.1.1.1 is not one");
        assert_eq!(r(""), "");
        assert_eq!(r("é 10.0.0.1é"), "é 10.0.x.xé");
    }
}
