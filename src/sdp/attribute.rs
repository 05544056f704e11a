//! Attributes (RFC 8866 §5.13): `a=<name>` or `a=<name>:<value>`.
//!
//! [`Attribute`] is a borrowed view of one `a=` line: the text after `a=`
//! is trimmed and split at the first `:`. Names are compared
//! ASCII-case-insensitively by the lookup helpers. This file also holds the
//! checks applied to names and values written by edits.

use super::error::EditError;

/// Attributes of Interactive Connectivity Establishment (RFC 8839 §5) that a
/// relay anchoring media removes: `candidate`, `ice-ufrag`, `ice-pwd`,
/// `ice-options`, `end-of-candidates`, `remote-candidates`, plus the
/// session-level `ice-lite`, `ice-mismatch` and `ice-pacing`.
pub const ICE_ATTRIBUTES: [&str; 9] = [
    "candidate",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "end-of-candidates",
    "remote-candidates",
    "ice-lite",
    "ice-mismatch",
    "ice-pacing",
];

/// A borrowed view of one `a=` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attribute<'a> {
    /// The name, as written (may be empty for a bare `a=`).
    pub name: &'a str,
    /// The text after the first `:`, or `None` for a property attribute.
    pub value: Option<&'a str>,
}

impl<'a> Attribute<'a> {
    /// Splits the (trimmed) text after `a=`.
    pub fn parse(text: &'a str) -> Attribute<'a> {
        match text.split_once(':') {
            Some((name, value)) => Attribute {
                name,
                value: Some(value),
            },
            None => Attribute {
                name: text,
                value: None,
            },
        }
    }

    /// True when the name equals `name`, ignoring ASCII case.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// RFC 8866 §9 `token-char`.
fn is_token_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x27 | 0x2a..=0x2b | 0x2d..=0x2e | 0x30..=0x39 | 0x41..=0x5a | 0x5e..=0x7e)
}

/// Checks a name for an attribute line written by an edit.
pub(crate) fn check_name(name: &str) -> Result<(), EditError> {
    if name.is_empty() || !name.bytes().all(is_token_char) {
        return Err(EditError::InvalidName(name.to_owned()));
    }
    Ok(())
}

/// Checks text written into a line by an edit: no line break, no NUL.
pub(crate) fn check_value(value: &str) -> Result<(), EditError> {
    if value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(EditError::InvalidValue);
    }
    Ok(())
}

/// The text of a generated `a=` line.
pub(crate) fn line_text(name: &str, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("a={name}:{v}"),
        None => format!("a={name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn round_trip(name in "[!#-'*+\\-.0-9A-Z^-~]{1,12}",
                      value in proptest::option::of("[!-~]([ -~]{0,20}[!-~])?")) {
            prop_assert!(check_name(&name).is_ok());
            let text = line_text(&name, value.as_deref());
            let a = Attribute::parse(text.strip_prefix("a=").unwrap_or(""));
            prop_assert_eq!(a.name, name.as_str());
            prop_assert_eq!(a.value, value.as_deref());
        }
    }

    #[test]
    fn splits_at_first_colon() {
        let a = Attribute::parse("fmtp:101 0-15");
        assert_eq!((a.name, a.value), ("fmtp", Some("101 0-15")));
        let a = Attribute::parse("setup:actpass:x");
        assert_eq!(a.value, Some("actpass:x"));
        let a = Attribute::parse("rtcp-mux");
        assert_eq!((a.name, a.value), ("rtcp-mux", None));
        let a = Attribute::parse("x:");
        assert_eq!(a.value, Some(""));
        assert!(Attribute::parse("SendOnly").is("sendonly"));
    }

    #[test]
    fn edit_checks() {
        assert!(check_name("rtcp").is_ok());
        assert!(check_name("X-foo.bar").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a:b").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_value("5000 IN IP4 1.2.3.4").is_ok());
        assert_eq!(check_value("x\r\na=evil"), Err(EditError::InvalidValue));
        assert_eq!(check_value("x\0"), Err(EditError::InvalidValue));
        assert_eq!(line_text("rtcp-mux", None), "a=rtcp-mux");
        assert_eq!(line_text("rtcp", Some("5001")), "a=rtcp:5001");
    }
}
