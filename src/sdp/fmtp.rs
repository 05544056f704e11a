//! `a=fmtp:<format> <format specific parameters>` (RFC 8866 §6.15).
//!
//! The parameter text is format-specific; [`Fmtp::params`] splits the common
//! `key=value;key=value` convention, yielding bare items (such as the RFC
//! 4733 event list `0-15`) with no value.

use std::fmt;

use super::rtpmap::parse_payload_type;
use crate::rtp::PayloadType;

/// A borrowed view of one `fmtp` attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fmtp<'a> {
    /// The format (a payload type number for RTP media).
    pub format: &'a str,
    /// Everything after the format, trimmed.
    pub params: &'a str,
}

/// Iterator over `key[=value]` items of an fmtp parameter string.
#[derive(Debug, Clone)]
pub struct FmtpParams<'a> {
    items: std::str::Split<'a, char>,
}

impl<'a> Fmtp<'a> {
    /// Parses the value of an `fmtp` attribute (after `fmtp:`).
    pub fn parse(value: &'a str) -> Option<Fmtp<'a>> {
        let value = value.trim();
        let (format, params) = match value.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((f, p)) => (f, p.trim()),
            None => (value, ""),
        };
        if format.is_empty() {
            return None;
        }
        Some(Fmtp { format, params })
    }

    /// The format as a payload type, when it is one (RFC 8866 §6.6: plain
    /// decimal, so `096` or `+96` is not one).
    pub fn pt(&self) -> Option<PayloadType> {
        parse_payload_type(self.format)
    }

    /// The `;`-separated items, each split at its first `=` and trimmed;
    /// empty items are skipped.
    pub fn params(&self) -> FmtpParams<'a> {
        FmtpParams {
            items: self.params.split(';'),
        }
    }

    /// The value of the first parameter named `key` (case-insensitive).
    pub fn param(&self, key: &str) -> Option<&'a str> {
        self.params()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .and_then(|(_, v)| v)
    }
}

impl<'a> Iterator for FmtpParams<'a> {
    type Item = (&'a str, Option<&'a str>);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let item = self.items.next()?.trim();
            if item.is_empty() {
                continue;
            }
            return Some(match item.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim())),
                None => (item, None),
            });
        }
    }
}

impl fmt::Display for Fmtp<'_> {
    /// The value of an `fmtp` attribute (after `fmtp:`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.params.is_empty() {
            return f.write_str(self.format);
        }
        write!(f, "{} {}", self.format, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn splits_params() {
        let f = Fmtp::parse("111 minptime=10; useinbandfec=1;;stereo").unwrap();
        assert_eq!(f.pt(), PayloadType::new(111));
        let items: Vec<_> = f.params().collect();
        assert_eq!(
            items,
            vec![
                ("minptime", Some("10")),
                ("useinbandfec", Some("1")),
                ("stereo", None)
            ]
        );
        assert_eq!(f.param("USEINBANDFEC"), Some("1"));
        assert_eq!(f.param("stereo"), None);
        let te = Fmtp::parse("101 0-15").unwrap();
        assert_eq!(te.params().next(), Some(("0-15", None)));
        let t38 = Fmtp::parse("t38").unwrap();
        assert_eq!((t38.format, t38.params, t38.pt()), ("t38", "", None));
        assert!(Fmtp::parse("  ").is_none());
    }

    proptest! {
        #[test]
        fn round_trip(fmt in "[0-9a-z]{1,4}", params in "([a-z-]{1,6}=[0-9]{1,3};){0,3}") {
            let f = Fmtp { format: &fmt, params: params.trim() };
            let text = f.to_string();
            prop_assert_eq!(Fmtp::parse(&text), Some(f));
        }
    }
}
