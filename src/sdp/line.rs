//! One SDP line (RFC 8866 §5: `<type>=<value>`), kept verbatim.
//!
//! A [`Line`] owns the exact bytes of one input line (without its
//! terminator) and remembers how it was terminated, so writing it back
//! reproduces the input byte for byte. Lines that are valid UTF-8 are held
//! as text; others are kept as opaque bytes and never interpreted.

use std::fmt;

/// How a line was terminated in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LineEnding {
    /// `\r\n`, the RFC 8866 §5 terminator.
    CrLf,
    /// A bare `\n` (tolerated, common in the wild).
    Lf,
    /// No terminator: the last line of an input without a final newline.
    Missing,
}

/// Storage of a line's bytes: text when UTF-8, bytes otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Raw {
    Text(String),
    Bytes(Vec<u8>),
}

/// One line of an SDP body, verbatim, with its own terminator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    raw: Raw,
    ending: LineEnding,
}

/// Iterator over the lines of an input: each item is the line's bytes
/// (terminator excluded) and its [`LineEnding`].
pub(crate) struct SplitLines<'a> {
    rest: &'a [u8],
}

impl LineEnding {
    /// The terminator bytes.
    pub const fn as_bytes(self) -> &'static [u8] {
        match self {
            LineEnding::CrLf => b"\r\n",
            LineEnding::Lf => b"\n",
            LineEnding::Missing => b"",
        }
    }
}

impl Line {
    /// Wraps input bytes; text when they are UTF-8.
    pub(crate) fn from_bytes(bytes: &[u8], ending: LineEnding) -> Line {
        let raw = match std::str::from_utf8(bytes) {
            Ok(s) => Raw::Text(s.to_owned()),
            Err(_) => Raw::Bytes(bytes.to_vec()),
        };
        Line { raw, ending }
    }

    /// A generated line. The caller guarantees `text` has no line break.
    pub(crate) fn generated(text: String, ending: LineEnding) -> Line {
        Line {
            raw: Raw::Text(text),
            ending,
        }
    }

    /// The line's bytes, terminator excluded.
    pub fn bytes(&self) -> &[u8] {
        match &self.raw {
            Raw::Text(s) => s.as_bytes(),
            Raw::Bytes(b) => b,
        }
    }

    /// The line as text, or `None` when it is not UTF-8.
    pub fn text(&self) -> Option<&str> {
        match &self.raw {
            Raw::Text(s) => Some(s),
            Raw::Bytes(_) => None,
        }
    }

    /// How the line was terminated.
    pub fn ending(&self) -> LineEnding {
        self.ending
    }

    pub(crate) fn set_ending(&mut self, ending: LineEnding) {
        self.ending = ending;
    }

    /// The type letter (`b'a'` for `a=...`), or `None` for a blank line.
    ///
    /// RFC 8866 §5: a type is one case-significant letter followed by `=`.
    pub fn kind(&self) -> Option<u8> {
        match self.bytes() {
            [t, b'=', ..] if t.is_ascii_alphabetic() => Some(*t),
            _ => None,
        }
    }

    /// True when the line is empty or whitespace only.
    pub fn is_blank(&self) -> bool {
        self.bytes().iter().all(u8::is_ascii_whitespace)
    }

    /// The text after `<type>=`, trimmed, when the line is typed UTF-8 text.
    pub fn value(&self) -> Option<&str> {
        self.kind()?;
        // kind() checked that bytes 0 and 1 are ASCII, so 2 is a char boundary.
        self.text()?.get(2..).map(str::trim)
    }

    /// The number of bytes this line writes, terminator included.
    pub fn encoded_len(&self) -> usize {
        self.bytes().len() + self.ending.as_bytes().len()
    }

    /// Appends the line and its terminator to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.bytes());
        out.extend_from_slice(self.ending.as_bytes());
    }
}

impl<'a> SplitLines<'a> {
    pub(crate) fn new(input: &'a [u8]) -> Self {
        SplitLines { rest: input }
    }
}

impl fmt::Display for Line {
    /// Writes the line without its terminator; non-UTF-8 bytes are shown
    /// lossily.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.raw {
            Raw::Text(s) => f.write_str(s),
            Raw::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
        }
    }
}

impl<'a> Iterator for SplitLines<'a> {
    type Item = (&'a [u8], LineEnding);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let Some(nl) = self.rest.iter().position(|&b| b == b'\n') else {
            let line = self.rest;
            self.rest = &[];
            return Some((line, LineEnding::Missing));
        };
        let (head, tail) = self.rest.split_at(nl);
        self.rest = tail.get(1..).unwrap_or(&[]);
        match head.strip_suffix(b"\r") {
            Some(line) => Some((line, LineEnding::CrLf)),
            None => Some((head, LineEnding::Lf)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &[u8]) -> Vec<(&[u8], LineEnding)> {
        SplitLines::new(input).collect()
    }

    #[test]
    fn splits_mixed_endings() {
        let got = split(b"v=0\r\no=x\ns=\r\n\nt=0 0");
        assert_eq!(
            got,
            vec![
                (&b"v=0"[..], LineEnding::CrLf),
                (&b"o=x"[..], LineEnding::Lf),
                (&b"s="[..], LineEnding::CrLf),
                (&b""[..], LineEnding::Lf),
                (&b"t=0 0"[..], LineEnding::Missing),
            ]
        );
        assert!(split(b"").is_empty());
        assert_eq!(split(b"\r"), vec![(&b"\r"[..], LineEnding::Missing)]);
        assert_eq!(split(b"a\r\r\n"), vec![(&b"a\r"[..], LineEnding::CrLf)]);
    }

    #[test]
    fn kind_value_and_blank() {
        let l = Line::from_bytes(b"a=rtpmap:0 PCMU/8000  ", LineEnding::CrLf);
        assert_eq!(l.kind(), Some(b'a'));
        assert_eq!(l.value(), Some("rtpmap:0 PCMU/8000"));
        let blank = Line::from_bytes(b" \t", LineEnding::Lf);
        assert!(blank.is_blank());
        assert_eq!(blank.kind(), None);
        let junk = Line::from_bytes(b"1=x", LineEnding::Lf);
        assert_eq!(junk.kind(), None);
        let latin1 = Line::from_bytes(b"s=Sess\xe3o", LineEnding::CrLf);
        assert_eq!(latin1.text(), None);
        assert_eq!(latin1.kind(), Some(b's'));
        assert_eq!(latin1.value(), None);
        let mut out = Vec::new();
        latin1.write_to(&mut out);
        assert_eq!(out, b"s=Sess\xe3o\r\n");
        assert_eq!(latin1.encoded_len(), out.len());
    }
}
