//! [`Sdp`]: a whole session description (RFC 8866 §5), parsed tolerantly
//! and written back losslessly.
//!
//! Contract:
//! - `Sdp::parse(x)?.to_bytes() == x` byte for byte for every accepted input.
//! - Accepted: any line order, unknown line types, missing `v=`/`o=`/`s=`/
//!   `t=`, LF or mixed line endings, no final newline, trailing whitespace,
//!   blank lines, non-UTF-8 text outside `m=` lines (kept opaque).
//! - Rejected ([`ParseError`]): empty input, size limits, a non-blank line
//!   that is not `<letter>=...`, an `m=` line that is not UTF-8 or lacks a
//!   numeric port / proto.
//! - Edits rewrite only the lines they touch (see [`Section`]).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use super::connection::Connection;
use super::direction::Direction;
use super::error::{EditError, ParseError};
use super::limits::ParseLimits;
use super::line::{Line, LineEnding, SplitLines};
use super::media::{MediaLine, MediaSection};
use super::origin::Origin;
use super::section::Section;

/// A parsed SDP body: the session level and its media descriptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    session: Section,
    media: Vec<MediaSection>,
    /// The dominant line ending, used for rewritten and inserted lines.
    eol: LineEnding,
}

impl Sdp {
    /// Parses with the default [`ParseLimits`].
    pub fn parse(input: &[u8]) -> Result<Sdp, ParseError> {
        Sdp::parse_with_limits(input, &ParseLimits::default())
    }

    /// Parses, enforcing `limits`.
    pub fn parse_with_limits(input: &[u8], limits: &ParseLimits) -> Result<Sdp, ParseError> {
        if input.len() > limits.max_bytes {
            return Err(ParseError::TooLarge {
                len: input.len(),
                max: limits.max_bytes,
            });
        }
        let mut session = Section::new(LineEnding::CrLf);
        let mut media: Vec<MediaSection> = Vec::new();
        let mut current: Option<(MediaLine, Section)> = None;
        let (mut crlf, mut lf) = (0usize, 0usize);
        let mut any = false;
        for (i, (bytes, ending)) in SplitLines::new(input).enumerate() {
            if i >= limits.max_lines {
                return Err(ParseError::TooManyLines {
                    max: limits.max_lines,
                });
            }
            match ending {
                LineEnding::CrLf => crlf += 1,
                LineEnding::Lf => lf += 1,
                LineEnding::Missing => {}
            }
            let line = Line::from_bytes(bytes, ending);
            let number = i + 1;
            if !line.is_blank() {
                any = true;
                match line.kind() {
                    None => return Err(ParseError::MalformedLine { line: number }),
                    Some(b'm') => {
                        let m = media_line(&line, number)?;
                        let open = media.len() + usize::from(current.is_some());
                        if open >= limits.max_media {
                            return Err(ParseError::TooManyMedia {
                                max: limits.max_media,
                            });
                        }
                        if let Some((ml, sec)) = current.take() {
                            media.push(MediaSection::new(ml, sec));
                        }
                        let mut sec = Section::new(LineEnding::CrLf);
                        sec.push(line);
                        current = Some((m, sec));
                        continue;
                    }
                    Some(_) => {}
                }
            }
            match current.as_mut() {
                Some((_, sec)) => sec.push(line),
                None => session.push(line),
            }
        }
        if !any {
            return Err(ParseError::Empty);
        }
        if let Some((ml, sec)) = current {
            media.push(MediaSection::new(ml, sec));
        }
        // RFC 8866 §5 mandates CRLF; keep whatever the body mostly uses.
        let eol = if lf > crlf {
            LineEnding::Lf
        } else {
            LineEnding::CrLf
        };
        session.set_eol(eol);
        for m in &mut media {
            m.section_mut().set_eol(eol);
        }
        Ok(Sdp {
            session,
            media,
            eol,
        })
    }

    /// Appends the body to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        for line in self.lines() {
            line.write_to(out);
        }
    }

    /// The body as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// The number of bytes [`Sdp::write_to`] appends.
    pub fn encoded_len(&self) -> usize {
        self.lines().map(Line::encoded_len).sum()
    }

    /// Every line, session level first, then each media section in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.session
            .lines()
            .iter()
            .chain(self.media.iter().flat_map(|m| m.section().lines()))
    }

    /// The line ending used by most lines (CRLF on a tie); rewritten and
    /// inserted lines use it.
    pub fn line_ending(&self) -> LineEnding {
        self.eol
    }

    /// The session level.
    pub fn session(&self) -> &Section {
        &self.session
    }

    /// Mutable session level, for attribute and `c=` edits.
    pub fn session_mut(&mut self) -> &mut Section {
        &mut self.session
    }

    /// The media descriptions, in order.
    pub fn media(&self) -> &[MediaSection] {
        &self.media
    }

    /// Mutable media descriptions (their number cannot change).
    pub fn media_mut(&mut self) -> &mut [MediaSection] {
        &mut self.media
    }

    /// `v=` (RFC 8866 §5.1), when present.
    pub fn version(&self) -> Option<&str> {
        self.session.values(b'v').next()
    }

    /// The first `o=` line, parsed (RFC 8866 §5.2); `None` when missing or
    /// unparsable.
    pub fn origin(&self) -> Option<Origin> {
        Origin::parse(self.session.values(b'o').next()?)
    }

    /// `s=` (RFC 8866 §5.3), when present and UTF-8.
    pub fn session_name(&self) -> Option<&str> {
        self.session.values(b's').next()
    }

    /// The session-level `c=`, parsed.
    pub fn connection(&self) -> Option<Connection> {
        self.session.connection()
    }

    /// The connection that applies to media section `idx`: its own `c=`,
    /// else the session's (RFC 8866 §5.7).
    pub fn media_connection(&self, idx: usize) -> Option<Connection> {
        self.media
            .get(idx)?
            .section()
            .connection()
            .or_else(|| self.connection())
    }

    /// The direction that applies to media section `idx`: its own
    /// attribute, else the session's, else `sendrecv` (RFC 8866 §6.7).
    pub fn media_direction(&self, idx: usize) -> Direction {
        self.media
            .get(idx)
            .and_then(|m| m.section().direction())
            .or_else(|| self.session.direction())
            .unwrap_or_default()
    }

    /// Rewrites the first `o=` line with `origin`, or inserts one after `v=`
    /// (at the top without `v=`).
    pub fn set_origin(&mut self, origin: &Origin) -> Result<(), EditError> {
        let text = origin.to_string();
        super::attribute::check_value(&text)?;
        // Fields containing whitespace would not read back as the same origin.
        if Origin::parse(&text).as_ref() != Some(origin) {
            return Err(EditError::InvalidValue);
        }
        let text = format!("o={text}");
        match self.session.position(b'o') {
            Some(i) => self.session.rewrite_line(i, text),
            None => {
                let at = self.session.position(b'v').map_or(0, |v| v + 1);
                self.session.insert_line(at, text);
            }
        }
        Ok(())
    }

    /// Sets `<sess-version>` of the `o=` line (RFC 3264 §8).
    pub fn set_origin_version(&mut self, version: u64) -> Result<(), EditError> {
        let mut o = self.origin().ok_or(EditError::NoOrigin)?;
        o.session_version = version;
        self.set_origin(&o)
    }

    /// Sets `<addrtype> <unicast-address>` of the `o=` line.
    pub fn set_origin_address(&mut self, ip: IpAddr) -> Result<(), EditError> {
        let mut o = self.origin().ok_or(EditError::NoOrigin)?;
        o.addrtype = super::connection::AddrType::of(ip);
        o.address = ip.into();
        self.set_origin(&o)
    }

    /// Points every connection at `ip` (rtpengine-style anchoring): the
    /// session `c=` when present, every media `c=`, and a new media `c=`
    /// for media sections that have none when the session level has none
    /// either (RFC 8866 §5.7 requires one at either level).
    pub fn rewrite_connections(&mut self, ip: IpAddr) {
        let session_has = self.session.has_connection_line();
        if session_has {
            self.session.set_connection(ip);
        }
        for m in &mut self.media {
            if m.section().has_connection_line() || !session_has {
                m.section_mut().set_connection(ip);
            }
        }
    }

    /// Removes the ICE attributes ([`ICE_ATTRIBUTES`](super::ICE_ATTRIBUTES))
    /// at every level; returns how many lines were removed.
    pub fn remove_ice(&mut self) -> usize {
        let mut n = self.session.remove_ice();
        for m in &mut self.media {
            n += m.section_mut().remove_ice();
        }
        n
    }
}

/// Parses an `m=` line of the input.
fn media_line(line: &Line, number: usize) -> Result<MediaLine, ParseError> {
    let Some(value) = line.value() else {
        return Err(ParseError::MediaNotUtf8 { line: number });
    };
    MediaLine::parse(value).ok_or(ParseError::MalformedMedia { line: number })
}

impl FromStr for Sdp {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sdp::parse(s.as_bytes())
    }
}

impl fmt::Display for Sdp {
    /// The body as text; non-UTF-8 lines are shown lossily (use
    /// [`Sdp::to_bytes`] for the exact bytes).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines() {
            write!(f, "{line}")?;
            f.write_str(match line.ending() {
                LineEnding::CrLf => "\r\n",
                LineEnding::Lf => "\n",
                LineEnding::Missing => "",
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::media::MediaKind;
    use super::*;
    use proptest::prelude::*;

    const CARRIER: &str = "v=0\r\n\
        o=- 3862112486 3862112486 IN IP4 10.0.0.1\r\n\
        s=SBC call\r\n\
        c=IN IP4 10.0.0.1\r\n\
        t=0 0\r\n\
        m=audio 20000 RTP/AVP 0 8 18 101\r\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:8 PCMA/8000\r\n\
        a=rtpmap:18 G729/8000\r\n\
        a=fmtp:18 annexb=no\r\n\
        a=rtpmap:101 telephone-event/8000\r\n\
        a=fmtp:101 0-15\r\n\
        a=ptime:20\r\n\
        a=sendrecv\r\n";

    #[test]
    fn typed_view_of_a_carrier_offer() {
        let sdp: Sdp = CARRIER.parse().unwrap();
        assert_eq!(sdp.version(), Some("0"));
        let o = sdp.origin().unwrap();
        assert_eq!(
            (o.session_id.as_str(), o.session_version),
            ("3862112486", 3862112486)
        );
        assert_eq!(sdp.session_name(), Some("SBC call"));
        assert_eq!(sdp.media().len(), 1);
        let m = &sdp.media()[0];
        assert_eq!(m.kind(), MediaKind::Audio);
        assert_eq!(m.port(), 20000);
        let names: Vec<_> = m.codecs().map(|c| c.encoding).collect();
        assert_eq!(names, vec!["PCMU", "PCMA", "G729", "telephone-event"]);
        assert_eq!(
            sdp.media_connection(0).unwrap().address.ip(),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(sdp.media_direction(0), Direction::SendRecv);
        assert_eq!(sdp.line_ending(), LineEnding::CrLf);
        assert_eq!(sdp.to_bytes(), CARRIER.as_bytes());
        assert_eq!(sdp.to_string(), CARRIER);
    }

    #[test]
    fn tolerates_messy_bodies() {
        let messy = "a=tool:x\n\
            m=audio 1234 RTP/AVP 0\r\n\
            a=recvonly   \n\
            \n\
            c=IN IP4 192.0.2.2\n\
            x=unknown line\n\
            a=\n\
            o=- 1 2 IN IP4 192.0.2.2\n\
            m=video 0 RTP/AVP\n\
            s=Sess\u{e3}o";
        let sdp = Sdp::parse(messy.as_bytes()).unwrap();
        assert_eq!(sdp.to_bytes(), messy.as_bytes());
        assert_eq!(sdp.media().len(), 2);
        assert_eq!(sdp.media_direction(0), Direction::RecvOnly);
        assert_eq!(sdp.session().attribute("tool").unwrap().value, Some("x"));
        // o= inside a media section belongs to that section.
        assert!(sdp.origin().is_none());
        assert_eq!(sdp.line_ending(), LineEnding::Lf);
        let latin1 = b"v=0\r\ns=Sess\xe3o\r\nm=audio 1 RTP/AVP 0\r\na=tool:\xff\r\n";
        let sdp = Sdp::parse(latin1).unwrap();
        assert_eq!(sdp.to_bytes(), latin1);
        assert_eq!(sdp.session_name(), None);
        assert_eq!(sdp.media()[0].section().attributes().count(), 0);
    }

    #[test]
    fn rejects_what_a_relay_cannot_use() {
        assert_eq!(Sdp::parse(b""), Err(ParseError::Empty));
        assert_eq!(Sdp::parse(b"\r\n \n"), Err(ParseError::Empty));
        assert_eq!(
            Sdp::parse(b"v=0\r\nINVITE sip:x SIP/2.0\r\n"),
            Err(ParseError::MalformedLine { line: 2 })
        );
        assert_eq!(
            Sdp::parse(b" v=0"),
            Err(ParseError::MalformedLine { line: 1 })
        );
        assert_eq!(
            Sdp::parse(b"v=0\nm=audio x RTP/AVP 0\n"),
            Err(ParseError::MalformedMedia { line: 2 })
        );
        assert_eq!(
            Sdp::parse(b"v=0\nm=audio 1 RTP/AVP \xff\n"),
            Err(ParseError::MediaNotUtf8 { line: 2 })
        );
        let limits = ParseLimits {
            max_bytes: 100,
            max_lines: 3,
            max_media: 1,
        };
        assert_eq!(
            Sdp::parse_with_limits(&[b'a'; 101], &limits),
            Err(ParseError::TooLarge { len: 101, max: 100 })
        );
        assert_eq!(
            Sdp::parse_with_limits(b"v=0\n\n\n\n", &limits),
            Err(ParseError::TooManyLines { max: 3 })
        );
        assert_eq!(
            Sdp::parse_with_limits(b"m=audio 1 A 0\nm=audio 2 A 0\n", &limits),
            Err(ParseError::TooManyMedia { max: 1 })
        );
    }

    #[test]
    fn relay_rewrite_touches_only_its_lines() {
        let offer = format!(
            "{CARRIER}a=candidate:1 1 UDP 2130706431 10.0.0.1 20000 typ host\r\n\
             a=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\na=end-of-candidates\r\n"
        );
        let mut sdp = Sdp::parse(offer.as_bytes()).unwrap();
        let relay: IpAddr = "203.0.113.5".parse().unwrap();
        sdp.rewrite_connections(relay);
        sdp.media_mut()[0].set_port(40000);
        sdp.media_mut()[0]
            .section_mut()
            .set_rtcp(&super::super::Rtcp::new(40001, None));
        assert_eq!(sdp.remove_ice(), 4);
        sdp.set_origin_version(3862112487).unwrap();
        sdp.set_origin_address(relay).unwrap();
        let expected = CARRIER
            .replace(
                "o=- 3862112486 3862112486 IN IP4 10.0.0.1",
                "o=- 3862112486 3862112487 IN IP4 203.0.113.5",
            )
            .replace("c=IN IP4 10.0.0.1", "c=IN IP4 203.0.113.5")
            .replace("m=audio 20000", "m=audio 40000")
            + "a=rtcp:40001\r\n";
        assert_eq!(String::from_utf8(sdp.to_bytes()).unwrap(), expected);
    }

    #[test]
    fn connection_added_per_media_when_session_has_none() {
        let mut sdp = Sdp::parse(b"v=0\nm=audio 1 RTP/AVP 0\nm=audio 2 RTP/AVP 0").unwrap();
        sdp.rewrite_connections("2001:db8::1".parse().unwrap());
        assert_eq!(
            String::from_utf8(sdp.to_bytes()).unwrap(),
            "v=0\nm=audio 1 RTP/AVP 0\nc=IN IP6 2001:db8::1\nm=audio 2 RTP/AVP 0\nc=IN IP6 2001:db8::1"
        );
        assert!(sdp.connection().is_none());
        assert!(sdp.media_connection(1).is_some());
        assert_eq!(sdp.set_origin_version(1), Err(EditError::NoOrigin));
        let o = Origin::parse("- 1 1 IN IP4 192.0.2.1").unwrap();
        sdp.set_origin(&o).unwrap();
        assert!(
            sdp.to_bytes()
                .starts_with(b"v=0\no=- 1 1 IN IP4 192.0.2.1\nm=")
        );
        let mut bad = o.clone();
        bad.username = "a b".into();
        assert_eq!(sdp.set_origin(&bad), Err(EditError::InvalidValue));
    }

    proptest! {
        #[test]
        fn accepted_input_round_trips(lines in proptest::collection::vec(
            ("[a-z]=[ -~]{0,20}|m=audio [0-9]{1,5} RTP/AVP [0-9 ]{0,8}|[ \t]{0,2}|s=\\PC{0,6}",
             prop_oneof![Just("\r\n"), Just("\n"), Just("")]), 1..20)) {
            let input: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
            if let Ok(sdp) = Sdp::parse(input.as_bytes()) {
                prop_assert_eq!(sdp.to_bytes(), input.as_bytes());
                let mut edited = sdp.clone();
                for m in edited.media_mut() {
                    m.set_port(9);
                }
                edited.rewrite_connections("192.0.2.1".parse().unwrap());
                let back = Sdp::parse_with_limits(&edited.to_bytes(), &ParseLimits::UNLIMITED).unwrap();
                prop_assert_eq!(back.media().len(), sdp.media().len());
                prop_assert!(back.media().iter().all(|m| m.port() == 9));
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(sdp) = Sdp::parse(&bytes) {
                prop_assert_eq!(sdp.to_bytes(), bytes);
            }
        }
    }
}
